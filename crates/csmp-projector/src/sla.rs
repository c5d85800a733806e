//! The `sla` read model: a first-response clock and a resolution clock per ticket.
//!
//! Both clocks live in one `sla.tickets` row per ticket (`fr_*` for the first response,
//! `res_*` for the resolution), so that an event costs one row write. A clock stores what the
//! events fix: its target, its start, its due time, the time spent
//! paused and when it stopped. States that depend on the present (running past due, at risk)
//! are computed by the query service from `due_at` and its clock, never stored here. The rules
//! (pausing while waiting on the customer, reopening, re-targeting on a priority change) are
//! described with a worked example in `docs/sla.md`. Clocks count whole seconds on wall-clock
//! time: event times are cut to the second.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, SubsecRound, Utc};
use csmp_domain::sla::{SlaPolicy, SlaTargets};
use csmp_domain::{CustomerTier, EventPayload, Priority, RecordedEvent};
use tokio_postgres::{Client, Statement, Transaction};
use tracing::debug;
use uuid::Uuid;

use crate::error::ProjectorError;
use crate::intake::check_place;
use crate::queues::batch_keys;
use crate::rows::{parse_column, ColumnArrays, RowTable};
use crate::runner::Rejected;
use crate::schema::load_policies;

const SCHEMA: &str = "sla";

const COLUMNS: &[(&str, &str)] = &[
    ("tenant", "text"),
    ("ticket_id", "uuid"),
    ("priority", "text"),
    ("customer_tier", "text"),
    ("opened_at", "timestamptz"),
    ("fr_target_seconds", "int8"),
    ("fr_at_risk_percent", "int2"),
    ("fr_due_at", "timestamptz"),
    ("fr_stopped_at", "timestamptz"),
    ("fr_outcome", "text"),
    ("res_target_seconds", "int8"),
    ("res_at_risk_percent", "int2"),
    ("res_due_at", "timestamptz"),
    ("res_paused_since", "timestamptz"),
    ("res_paused_seconds", "int8"),
    ("res_resolved_seconds", "int8"),
    ("res_stopped_at", "timestamptz"),
    ("res_outcome", "text"),
    ("version", "int8"),
    ("last_position", "int8"),
];

const TICKETS: RowTable = RowTable {
    name: "sla.tickets",
    columns: COLUMNS,
    key: &["tenant", "ticket_id"],
    fixed: &["customer_tier", "opened_at"],
};

/// Whether a stopped clock kept its promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Met,
    Breached,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Met => "met",
            Outcome::Breached => "breached",
        }
    }
}

/// One SLA clock, as stored in `sla.clocks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clock {
    pub target_seconds: i64,
    pub at_risk_percent: i16,
    /// The ticket's opening time; `None` when unknown, and then so is everything derived.
    pub started_at: Option<DateTime<Utc>>,
    /// Start plus target plus the time paused and the time spent resolved before a reopen.
    pub due_at: Option<DateTime<Utc>>,
    pub paused_since: Option<DateTime<Utc>>,
    /// Time spent waiting on the customer, in closed pauses.
    pub paused_seconds: i64,
    /// Time spent resolved before a reopen.
    pub resolved_seconds: i64,
    pub stopped_at: Option<DateTime<Utc>>,
    pub outcome: Option<Outcome>,
}

impl Clock {
    fn start(target: Duration, at_risk_percent: u8, started_at: Option<DateTime<Utc>>) -> Self {
        Clock {
            target_seconds: target.num_seconds(),
            at_risk_percent: i16::from(at_risk_percent),
            started_at,
            due_at: started_at.map(|start| start + target),
            paused_since: None,
            paused_seconds: 0,
            resolved_seconds: 0,
            stopped_at: None,
            outcome: None,
        }
    }

    /// Stops a clock that runs or is paused; met when stopped at or before its due time.
    fn stop(&mut self, at: DateTime<Utc>) {
        if self.stopped_at.is_some() {
            return;
        }
        self.resume(at);
        self.stopped_at = Some(at);
        self.outcome =
            self.due_at.map(|due| if at <= due { Outcome::Met } else { Outcome::Breached });
    }

    /// Waiting on the customer: the clock stands still from `at`.
    fn pause(&mut self, at: DateTime<Utc>) {
        if self.stopped_at.is_none() && self.paused_since.is_none() {
            self.paused_since = Some(at);
        }
    }

    /// The customer answered: the pause ends and the due time moves by its length.
    fn resume(&mut self, at: DateTime<Utc>) {
        if let Some(since) = self.paused_since.take() {
            let paused = at - since;
            self.paused_seconds += paused.num_seconds();
            self.due_at = self.due_at.map(|due| due + paused);
        }
    }

    /// A reopen: the clock goes on with the time it had used; the time spent resolved is not
    /// counted, so the due time moves by it.
    fn reopen(&mut self, at: DateTime<Utc>) {
        if let Some(stopped) = self.stopped_at.take() {
            let resolved = at - stopped;
            self.resolved_seconds += resolved.num_seconds();
            self.due_at = self.due_at.map(|due| due + resolved);
            self.outcome = None;
        }
    }

    /// A new target for a clock that has not stopped, counted from its original start.
    fn retarget(&mut self, target: Duration, at_risk_percent: u8) {
        if self.stopped_at.is_some() {
            return;
        }
        self.target_seconds = target.num_seconds();
        self.at_risk_percent = i16::from(at_risk_percent);
        let excluded = Duration::seconds(self.paused_seconds + self.resolved_seconds);
        self.due_at = self.started_at.map(|start| start + target + excluded);
    }
}

/// A ticket's SLA state: what picks its targets, and its two clocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlaTicket {
    pub tenant: String,
    pub ticket_id: Uuid,
    pub priority: Priority,
    pub customer_tier: CustomerTier,
    pub opened_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub last_position: i64,
    pub first_response: Clock,
    pub resolution: Clock,
}

impl SlaTicket {
    /// The state an opening starts, with `policy`'s targets for its priority and tier.
    pub fn open(event: &RecordedEvent, policy: &SlaPolicy) -> Self {
        let envelope = &event.envelope;
        let EventPayload::Opened(opened) = &envelope.payload else {
            unreachable!("SLA clocks start at the opening")
        };
        let started_at = envelope.occurred_at.map(|at| at.trunc_subsecs(0));
        let targets = policy.targets(opened.priority, opened.customer_tier);
        let percent = policy.at_risk_percent;
        SlaTicket {
            tenant: envelope.tenant.as_str().to_owned(),
            ticket_id: envelope.ticket_id.0,
            priority: opened.priority,
            customer_tier: opened.customer_tier,
            opened_at: started_at,
            version: envelope.version as i64,
            last_position: event.stream_seq as i64,
            first_response: Clock::start(targets.first_response, percent, started_at),
            resolution: Clock::start(targets.resolution, percent, started_at),
        }
    }

    /// Folds an event after the opening; `policy` is the tenant's policy in force now.
    pub fn fold(&mut self, event: &RecordedEvent, policy: &SlaPolicy) {
        let envelope = &event.envelope;
        let at = envelope.effective_time().trunc_subsecs(0);
        match &envelope.payload {
            EventPayload::Acknowledged(_) => self.first_response.stop(at),
            EventPayload::PriorityChanged(changed) => {
                self.priority = changed.to;
                let SlaTargets { first_response, resolution } =
                    policy.targets(self.priority, self.customer_tier);
                self.first_response.retarget(first_response, policy.at_risk_percent);
                self.resolution.retarget(resolution, policy.at_risk_percent);
            }
            EventPayload::CustomerAsked(_) => self.resolution.pause(at),
            EventPayload::CustomerReplied(_) => self.resolution.resume(at),
            EventPayload::Resolved(_) => {
                // A resolution is also an answer: a ticket resolved before any acknowledgement
                // has had its first response then.
                self.first_response.stop(at);
                self.resolution.stop(at);
            }
            EventPayload::Reopened(_) => self.resolution.reopen(at),
            _ => {}
        }
        self.version = envelope.version as i64;
        self.last_position = event.stream_seq as i64;
    }
}

/// The prepared statements of the sla projector.
pub(crate) struct Sla {
    load: Statement,
    insert: Statement,
    update: Statement,
}

type Key = (String, Uuid);

impl Sla {
    pub async fn prepare(pg: &Client) -> Result<Self, ProjectorError> {
        let load = format!(
            "SELECT {} FROM {SCHEMA}.tickets t
             JOIN UNNEST($1::text[], $2::uuid[]) AS k(tenant, ticket_id) USING (tenant, ticket_id)",
            COLUMNS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
        );
        let prepare = |sql: String| async move {
            pg.prepare(&sql).await.map_err(ProjectorError::postgres("prepare sla statement"))
        };
        Ok(Sla {
            load: prepare(load).await?,
            insert: prepare(TICKETS.insert_sql()).await?,
            update: prepare(TICKETS.update_sql()).await?,
        })
    }

    /// Applies `events` (in stream order) within `tx`; returns those it could not apply.
    pub async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<Vec<Rejected>, ProjectorError> {
        // 1. The batch's tickets with their clocks, and the policies of its tenants.
        let (mut tickets, policies) = self.load(tx, events).await?;
        let default_policy = SlaPolicy::default();

        // 2. Fold in memory, in stream order.
        let mut changed: Vec<Key> = Vec::new();
        let mut created: HashSet<Key> = HashSet::new();
        let mut rejected = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let envelope = &event.envelope;
            let key = (envelope.tenant.as_str().to_owned(), envelope.ticket_id.0);
            let policy = policies.get(envelope.tenant.as_str()).unwrap_or(&default_policy);
            let ticket = tickets.get_mut(&key);
            if let Err(reason) = check_place(ticket.as_ref().map(|t| t.version), event) {
                rejected.push(Rejected { index, reason });
                continue;
            }
            match ticket {
                Some(ticket) => ticket.fold(event, policy),
                None => {
                    tickets.insert(key.clone(), SlaTicket::open(event, policy));
                    created.insert(key.clone());
                }
            }
            if !changed.contains(&key) {
                changed.push(key);
            }
            debug!(seq = event.stream_seq, event_type = envelope.event_type(), "sla applied");
        }

        // 3. One row per changed ticket, both clocks in it.
        let (new_rows, old_rows): (Vec<&SlaTicket>, Vec<&SlaTicket>) = changed
            .iter()
            .map(|key| &tickets[key])
            .partition(|row| created.contains(&(row.tenant.clone(), row.ticket_id)));
        let update_columns = TICKETS.update_columns();
        futures::try_join!(
            self.write(tx, &self.insert, &new_rows, TICKETS.columns),
            self.write(tx, &self.update, &old_rows, &update_columns),
        )?;
        Ok(rejected)
    }

    async fn load(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<(HashMap<Key, SlaTicket>, HashMap<String, SlaPolicy>), ProjectorError> {
        let (tenants, ids) = batch_keys(events);
        let mut distinct_tenants = tenants.clone();
        distinct_tenants.sort_unstable();
        distinct_tenants.dedup();
        let (rows, policies) = futures::try_join!(
            async {
                tx.query(&self.load, &[&tenants, &ids])
                    .await
                    .map_err(ProjectorError::postgres("load sla tickets"))
            },
            load_policies(tx, &distinct_tenants),
        )?;

        let mut tickets = HashMap::with_capacity(rows.len());
        for row in rows {
            let opened_at: Option<DateTime<Utc>> = row.get("opened_at");
            let ticket = SlaTicket {
                tenant: row.get("tenant"),
                ticket_id: row.get("ticket_id"),
                priority: parse_column(SCHEMA, "priority", row.get("priority"), Priority::parse)?,
                customer_tier: parse_column(
                    SCHEMA,
                    "customer_tier",
                    row.get("customer_tier"),
                    CustomerTier::parse,
                )?,
                opened_at,
                version: row.get("version"),
                last_position: row.get("last_position"),
                first_response: Clock {
                    target_seconds: row.get("fr_target_seconds"),
                    at_risk_percent: row.get("fr_at_risk_percent"),
                    started_at: opened_at,
                    due_at: row.get("fr_due_at"),
                    paused_since: None,
                    paused_seconds: 0,
                    resolved_seconds: 0,
                    stopped_at: row.get("fr_stopped_at"),
                    outcome: outcome(row.get("fr_outcome"))?,
                },
                resolution: Clock {
                    target_seconds: row.get("res_target_seconds"),
                    at_risk_percent: row.get("res_at_risk_percent"),
                    started_at: opened_at,
                    due_at: row.get("res_due_at"),
                    paused_since: row.get("res_paused_since"),
                    paused_seconds: row.get("res_paused_seconds"),
                    resolved_seconds: row.get("res_resolved_seconds"),
                    stopped_at: row.get("res_stopped_at"),
                    outcome: outcome(row.get("res_outcome"))?,
                },
            };
            tickets.insert((ticket.tenant.clone(), ticket.ticket_id), ticket);
        }
        Ok((tickets, policies))
    }

    /// Runs `statement` (the insert or the update of [`TICKETS`]) over `rows`.
    async fn write(
        &self,
        tx: &Transaction<'_>,
        statement: &Statement,
        rows: &[&SlaTicket],
        columns: &[(&'static str, &'static str)],
    ) -> Result<(), ProjectorError> {
        if rows.is_empty() {
            return Ok(());
        }
        let fr: Vec<&Clock> = rows.iter().map(|r| &r.first_response).collect();
        let res: Vec<&Clock> = rows.iter().map(|r| &r.resolution).collect();
        let mut a = ColumnArrays::default();
        a.set("tenant", rows.iter().map(|r| r.tenant.as_str()).collect());
        a.set("ticket_id", rows.iter().map(|r| r.ticket_id).collect());
        a.set("priority", rows.iter().map(|r| r.priority.as_str()).collect());
        a.set("customer_tier", rows.iter().map(|r| r.customer_tier.as_str()).collect());
        a.set("opened_at", rows.iter().map(|r| r.opened_at).collect());
        a.set("fr_target_seconds", fr.iter().map(|c| c.target_seconds).collect());
        a.set("fr_at_risk_percent", fr.iter().map(|c| c.at_risk_percent).collect());
        a.set("fr_due_at", fr.iter().map(|c| c.due_at).collect());
        a.set("fr_stopped_at", fr.iter().map(|c| c.stopped_at).collect());
        a.set("fr_outcome", fr.iter().map(|c| c.outcome.map(Outcome::as_str)).collect());
        a.set("res_target_seconds", res.iter().map(|c| c.target_seconds).collect());
        a.set("res_at_risk_percent", res.iter().map(|c| c.at_risk_percent).collect());
        a.set("res_due_at", res.iter().map(|c| c.due_at).collect());
        a.set("res_paused_since", res.iter().map(|c| c.paused_since).collect());
        a.set("res_paused_seconds", res.iter().map(|c| c.paused_seconds).collect());
        a.set("res_resolved_seconds", res.iter().map(|c| c.resolved_seconds).collect());
        a.set("res_stopped_at", res.iter().map(|c| c.stopped_at).collect());
        a.set("res_outcome", res.iter().map(|c| c.outcome.map(Outcome::as_str)).collect());
        a.set("version", rows.iter().map(|r| r.version).collect());
        a.set("last_position", rows.iter().map(|r| r.last_position).collect());
        tx.execute(statement, &a.params(columns))
            .await
            .map_err(ProjectorError::postgres("write sla tickets"))?;
        Ok(())
    }
}

fn outcome(raw: Option<&str>) -> Result<Option<Outcome>, ProjectorError> {
    match raw {
        None => Ok(None),
        Some("met") => Ok(Some(Outcome::Met)),
        Some("breached") => Ok(Some(Outcome::Breached)),
        Some(other) => Err(ProjectorError::read_model(SCHEMA, format!("outcome {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
    }

    #[test]
    fn pause_moves_the_due_time_by_its_length() {
        let mut clock = Clock::start(Duration::hours(8), 75, Some(at(9, 0)));

        clock.pause(at(10, 0));
        clock.resume(at(11, 30));

        assert_eq!(clock.due_at, Some(at(18, 30)));
        assert_eq!(clock.paused_seconds, 5_400);
    }

    #[test]
    fn stop_while_paused_closes_the_pause_and_judges_against_the_moved_due_time() {
        let mut clock = Clock::start(Duration::hours(1), 75, Some(at(9, 0)));
        clock.pause(at(9, 30));

        clock.stop(at(10, 15));

        assert_eq!(clock.paused_seconds, 2_700);
        assert_eq!(clock.due_at, Some(at(10, 45)));
        assert_eq!(clock.outcome, Some(Outcome::Met));
    }

    #[test]
    fn reopen_resumes_with_the_time_used_and_retarget_counts_from_the_start() {
        let mut clock = Clock::start(Duration::hours(8), 75, Some(at(9, 0)));
        clock.stop(at(10, 0));
        clock.reopen(at(12, 0));

        assert_eq!(clock.due_at, Some(at(19, 0)));
        assert_eq!(clock.outcome, None);

        clock.retarget(Duration::hours(4), 75);

        assert_eq!(clock.due_at, Some(at(15, 0)));
        assert_eq!(clock.target_seconds, 14_400);
    }

    #[test]
    fn unknown_start_leaves_due_time_and_outcome_unknown() {
        let mut clock = Clock::start(Duration::hours(1), 75, None);

        clock.stop(at(10, 0));

        assert_eq!(clock.due_at, None);
        assert_eq!(clock.outcome, None);
        assert_eq!(clock.stopped_at, Some(at(10, 0)));
    }
}
