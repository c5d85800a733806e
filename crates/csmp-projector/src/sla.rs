//! The `sla` read model: every SLA clock of every ticket, measured in business time by the
//! `csmp-sla` engine, and the SLA signals recorded on the stream.
//!
//! A ticket's `sla.tickets` row keeps its [`SlaFacts`] (the opening and each later fact the
//! clocks use) and the policy version it is measured under. From the facts and the tenant's
//! configuration ([`load_tenant_sla`]) the projector rebuilds the ticket's clocks whenever one
//! of its events arrives, and rewrites one `sla.clocks` row per clock (first response, each
//! next-response cycle, resolution, complaint acknowledgement) with what events fix: target,
//! start, stop, whether it runs, and its warning and due instants, so that queries can order
//! and filter by due time. What depends on the present (breached now, time left) is computed
//! by the query service with its own clock. `sla.warning_reached` and `sla.breached` events
//! become `sla.signals` rows. A ticket whose opening time is unknown has no clocks.
//!
//! The configuration is always read from the live `sla` schema, also when the read model is
//! written to another schema (a rebuild): there is one configuration, and the switch to a
//! rebuilt schema carries it over.
//!
//! Everything here is a function of the events and the stored configuration, so a batch that
//! is applied again after a crash writes the same rows. The rules, with worked examples, are
//! in `docs/sla.md` and `docs/sla-business-hours.md`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use csmp_domain::{CustomerTier, EventPayload, Priority, RecordedEvent, TicketId};
use csmp_sla::{Measure, SlaClocks};
use tokio_postgres::{Client, Statement, Transaction};
use tracing::{debug, warn};
use uuid::Uuid;

use crate::error::ProjectorError;
use crate::intake::check_place;
use crate::queues::batch_keys;
use crate::rows::{parse_column, unnest_upsert, ColumnArrays, RowTable};
use crate::runner::Rejected;
use crate::sla_config::{due_time, load_tenant_sla, SlaFacts, TenantSla};

/// The read model's name in errors about its rows, whichever schema holds them.
const SCHEMA: &str = "sla";

const COLUMNS: &[(&str, &str)] = &[
    ("tenant", "text"),
    ("ticket_id", "uuid"),
    ("priority", "text"),
    ("customer_tier", "text"),
    ("opened_at", "timestamptz"),
    ("policy_version", "int4"),
    ("facts", "jsonb"),
    ("version", "int8"),
    ("last_position", "int8"),
];

const TICKETS: RowTable = RowTable {
    name: "tickets",
    columns: COLUMNS,
    key: &["tenant", "ticket_id"],
    fixed: &["customer_tier", "opened_at"],
};

const CLOCK_COLUMNS: &[(&str, &str)] = &[
    ("tenant", "text"),
    ("ticket_id", "uuid"),
    ("target", "text"),
    ("cycle", "int4"),
    ("within_seconds", "int8"),
    ("measured_in", "text"),
    ("calendar_from", "timestamptz"),
    ("started_at", "timestamptz"),
    ("stopped_at", "timestamptz"),
    ("running", "bool"),
    ("warning_at", "timestamptz"),
    ("due_at", "timestamptz"),
];

const SIGNAL_COLUMNS: &[(&str, &str)] = &[
    ("tenant", "text"),
    ("ticket_id", "uuid"),
    ("target", "text"),
    ("cycle", "int4"),
    ("kind", "text"),
    ("due_at", "timestamptz"),
    ("recorded_at", "timestamptz"),
    ("policy_version", "int4"),
    ("position", "int8"),
];

/// A ticket's SLA state: its facts and what they were last measured under.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SlaTicket {
    tenant: String,
    ticket_id: Uuid,
    priority: Priority,
    customer_tier: CustomerTier,
    facts: SlaFacts,
    policy_version: Option<i32>,
    version: i64,
    last_position: i64,
}

/// One `sla.clocks` row.
struct ClockRow {
    tenant: String,
    ticket_id: Uuid,
    target: &'static str,
    cycle: i32,
    within_seconds: i64,
    measured_in: String,
    /// When the calendar version measured in took effect; `None` around the clock.
    calendar_from: Option<DateTime<Utc>>,
    started_at: DateTime<Utc>,
    stopped_at: Option<DateTime<Utc>>,
    running: bool,
    warning_at: Option<DateTime<Utc>>,
    due_at: Option<DateTime<Utc>>,
}

/// One `sla.signals` row: a warning or breach recorded on the stream.
struct SignalRow {
    tenant: String,
    ticket_id: Uuid,
    target: &'static str,
    cycle: i32,
    kind: &'static str,
    due_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    policy_version: i32,
    position: i64,
}

/// The prepared statements of the sla projector.
pub(crate) struct Sla {
    load: Statement,
    insert: Statement,
    update: Statement,
    delete_clocks: Statement,
    insert_clocks: Statement,
    insert_signals: Statement,
}

type Key = (String, Uuid);

impl Sla {
    /// Prepares the statements writing the read model in `schema`.
    pub async fn prepare(pg: &Client, schema: &str) -> Result<Self, ProjectorError> {
        let load = format!(
            "SELECT {} FROM {schema}.tickets t
             JOIN UNNEST($1::text[], $2::uuid[]) AS k(tenant, ticket_id) USING (tenant, ticket_id)",
            COLUMNS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
        );
        let delete_clocks = format!(
            "DELETE FROM {schema}.clocks c
             USING UNNEST($1::text[], $2::uuid[]) AS k(tenant, ticket_id)
             WHERE c.tenant = k.tenant AND c.ticket_id = k.ticket_id"
        );
        let signals = unnest_upsert(&format!("{schema}.signals"), SIGNAL_COLUMNS, &[]);
        let insert_signals = format!("{signals} ON CONFLICT DO NOTHING");
        let prepare = |sql: String| async move {
            pg.prepare(&sql).await.map_err(ProjectorError::postgres("prepare sla statement"))
        };
        Ok(Sla {
            load: prepare(load).await?,
            insert: prepare(TICKETS.insert_sql(schema)).await?,
            update: prepare(TICKETS.update_sql(schema)).await?,
            delete_clocks: prepare(delete_clocks).await?,
            insert_clocks: prepare(unnest_upsert(&format!("{schema}.clocks"), CLOCK_COLUMNS, &[]))
                .await?,
            insert_signals: prepare(insert_signals).await?,
        })
    }

    /// Applies `events` (in stream order) within `tx`; returns those it could not apply.
    pub async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<Vec<Rejected>, ProjectorError> {
        // 1. The batch's tickets with their facts, and the SLA configuration of its tenants.
        let mut tickets = self.load(tx, events).await?;
        let (tenants, _) = batch_keys(events);
        let mut distinct: Vec<&str> = tenants.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let config = load_tenant_sla(tx, &distinct).await?;

        // 2. Fold the facts in memory, in stream order; signals become rows of their own.
        let mut changed: Vec<Key> = Vec::new();
        let mut created: HashSet<Key> = HashSet::new();
        let mut signals = Vec::new();
        let mut rejected = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let envelope = &event.envelope;
            let key = (envelope.tenant.as_str().to_owned(), envelope.ticket_id.0);
            let ticket = tickets.get_mut(&key);
            if let Err(reason) = check_place(ticket.as_ref().map(|t| t.version), event) {
                rejected.push(Rejected { index, reason });
                continue;
            }
            match ticket {
                Some(ticket) => {
                    if let EventPayload::PriorityChanged(change) = &envelope.payload {
                        ticket.priority = change.to;
                    }
                    if let Some(signal) = signal_row(event) {
                        signals.push(signal);
                    }
                    ticket.facts.record(envelope);
                    ticket.version = envelope.version as i64;
                    ticket.last_position = event.stream_seq as i64;
                }
                None => {
                    let facts =
                        SlaFacts::opened(envelope).expect("check_place lets only openings start");
                    tickets.insert(
                        key.clone(),
                        SlaTicket {
                            tenant: key.0.clone(),
                            ticket_id: key.1,
                            priority: facts.opening.priority,
                            customer_tier: facts.opening.customer_tier,
                            facts,
                            policy_version: None,
                            version: envelope.version as i64,
                            last_position: event.stream_seq as i64,
                        },
                    );
                    created.insert(key.clone());
                }
            }
            if !changed.contains(&key) {
                changed.push(key);
            }
            debug!(seq = event.stream_seq, event_type = envelope.event_type(), "sla applied");
        }

        // 3. Each changed ticket's clocks, rebuilt from its facts under its tenant's policy.
        let mut clocks = Vec::new();
        for key in &changed {
            let ticket = tickets.get_mut(key).expect("changed tickets are loaded");
            let sla = &config[&ticket.tenant];
            ticket.policy_version = None;
            if let Some(measured) = measure(ticket, sla) {
                ticket.policy_version = Some(measured.policy_version() as i32);
                clocks.extend(clock_rows(ticket, &measured, sla)?);
            }
        }

        // 4. One row per changed ticket, its clocks replaced, the new signals added.
        let (new_rows, old_rows): (Vec<&SlaTicket>, Vec<&SlaTicket>) = changed
            .iter()
            .map(|key| &tickets[key])
            .partition(|row| created.contains(&(row.tenant.clone(), row.ticket_id)));
        let update_columns = TICKETS.update_columns();
        futures::try_join!(
            self.write(tx, &self.insert, &new_rows, TICKETS.columns),
            self.write(tx, &self.update, &old_rows, &update_columns),
        )?;
        let changed_tenants: Vec<&str> = changed.iter().map(|(t, _)| t.as_str()).collect();
        let changed_ids: Vec<Uuid> = changed.iter().map(|(_, id)| *id).collect();
        tx.execute(&self.delete_clocks, &[&changed_tenants, &changed_ids])
            .await
            .map_err(ProjectorError::postgres("clear sla clocks"))?;
        futures::try_join!(self.write_clocks(tx, &clocks), self.write_signals(tx, &signals))?;
        Ok(rejected)
    }

    async fn load(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<HashMap<Key, SlaTicket>, ProjectorError> {
        let (tenants, ids) = batch_keys(events);
        let rows = tx
            .query(&self.load, &[&tenants, &ids])
            .await
            .map_err(ProjectorError::postgres("load sla tickets"))?;
        let mut tickets = HashMap::with_capacity(rows.len());
        for row in rows {
            let facts: serde_json::Value = row.get("facts");
            let facts: SlaFacts = serde_json::from_value(facts)
                .map_err(|err| ProjectorError::read_model(SCHEMA, format!("facts: {err}")))?;
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
                facts,
                policy_version: row.get("policy_version"),
                version: row.get("version"),
                last_position: row.get("last_position"),
            };
            tickets.insert((ticket.tenant.clone(), ticket.ticket_id), ticket);
        }
        Ok(tickets)
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
        let facts: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| serde_json::to_value(&r.facts).expect("facts always serialize"))
            .collect();
        let mut a = ColumnArrays::default();
        a.set("tenant", rows.iter().map(|r| r.tenant.as_str()).collect());
        a.set("ticket_id", rows.iter().map(|r| r.ticket_id).collect());
        a.set("priority", rows.iter().map(|r| r.priority.as_str()).collect());
        a.set("customer_tier", rows.iter().map(|r| r.customer_tier.as_str()).collect());
        a.set("opened_at", rows.iter().map(|r| r.facts.opened_at).collect());
        a.set("policy_version", rows.iter().map(|r| r.policy_version).collect());
        a.set("facts", facts);
        a.set("version", rows.iter().map(|r| r.version).collect());
        a.set("last_position", rows.iter().map(|r| r.last_position).collect());
        tx.execute(statement, &a.params(columns))
            .await
            .map_err(ProjectorError::postgres("write sla tickets"))?;
        Ok(())
    }

    async fn write_clocks(
        &self,
        tx: &Transaction<'_>,
        rows: &[ClockRow],
    ) -> Result<(), ProjectorError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut a = ColumnArrays::default();
        a.set("tenant", rows.iter().map(|r| r.tenant.as_str()).collect());
        a.set("ticket_id", rows.iter().map(|r| r.ticket_id).collect());
        a.set("target", rows.iter().map(|r| r.target).collect());
        a.set("cycle", rows.iter().map(|r| r.cycle).collect());
        a.set("within_seconds", rows.iter().map(|r| r.within_seconds).collect());
        a.set("measured_in", rows.iter().map(|r| r.measured_in.as_str()).collect());
        a.set("calendar_from", rows.iter().map(|r| r.calendar_from).collect());
        a.set("started_at", rows.iter().map(|r| r.started_at).collect());
        a.set("stopped_at", rows.iter().map(|r| r.stopped_at).collect());
        a.set("running", rows.iter().map(|r| r.running).collect());
        a.set("warning_at", rows.iter().map(|r| r.warning_at).collect());
        a.set("due_at", rows.iter().map(|r| r.due_at).collect());
        tx.execute(&self.insert_clocks, &a.params(CLOCK_COLUMNS))
            .await
            .map_err(ProjectorError::postgres("write sla clocks"))?;
        Ok(())
    }

    async fn write_signals(
        &self,
        tx: &Transaction<'_>,
        rows: &[SignalRow],
    ) -> Result<(), ProjectorError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut a = ColumnArrays::default();
        a.set("tenant", rows.iter().map(|r| r.tenant.as_str()).collect());
        a.set("ticket_id", rows.iter().map(|r| r.ticket_id).collect());
        a.set("target", rows.iter().map(|r| r.target).collect());
        a.set("cycle", rows.iter().map(|r| r.cycle).collect());
        a.set("kind", rows.iter().map(|r| r.kind).collect());
        a.set("due_at", rows.iter().map(|r| r.due_at).collect());
        a.set("recorded_at", rows.iter().map(|r| r.recorded_at).collect());
        a.set("policy_version", rows.iter().map(|r| r.policy_version).collect());
        a.set("position", rows.iter().map(|r| r.position).collect());
        tx.execute(&self.insert_signals, &a.params(SIGNAL_COLUMNS))
            .await
            .map_err(ProjectorError::postgres("write sla signals"))?;
        Ok(())
    }
}

/// The ticket's clocks, or `None` without an opening time or without a usable policy (logged:
/// such a ticket has no clocks until its tenant's configuration is fixed).
fn measure(ticket: &SlaTicket, sla: &TenantSla) -> Option<SlaClocks> {
    match ticket.facts.clocks(TicketId(ticket.ticket_id), sla) {
        Ok(clocks) => clocks,
        Err(err) => {
            warn!(
                tenant = %ticket.tenant,
                ticket_id = %ticket.ticket_id,
                cause = %err,
                "ticket has no SLA clocks"
            );
            None
        }
    }
}

/// The `sla.clocks` rows of a ticket, reported as of its last fact: what events fix does not
/// depend on the instant chosen.
fn clock_rows(
    ticket: &SlaTicket,
    clocks: &SlaClocks,
    sla: &TenantSla,
) -> Result<Vec<ClockRow>, ProjectorError> {
    let last = ticket.facts.facts.last().map(|f| f.at);
    let at = last.into_iter().chain([clocks.opened_at()]).max().expect("one instant at least");
    let reports = match clocks.report(at) {
        Ok(reports) => reports,
        Err(err) => {
            // A calendar that cannot place a due time: the clocks are kept without due times
            // until the calendar is fixed and the ticket's next event arrives.
            warn!(tenant = %ticket.tenant, ticket_id = %ticket.ticket_id, cause = %err,
                "SLA due times cannot be computed");
            return Ok(Vec::new());
        }
    };
    let calendars = sla.calendars_at(clocks.opened_at());
    Ok(reports
        .iter()
        .map(|report| ClockRow {
            tenant: ticket.tenant.clone(),
            ticket_id: ticket.ticket_id,
            target: report.target.as_str(),
            cycle: report.cycle as i32,
            within_seconds: report.within.num_seconds(),
            measured_in: match &report.measured_in {
                Measure::Always => "always".to_owned(),
                Measure::Calendar(name) => name.clone(),
            },
            calendar_from: match &report.measured_in {
                Measure::Always => None,
                Measure::Calendar(name) => sla
                    .calendars
                    .version_at(name, clocks.opened_at())
                    .map(|version| version.effective_from),
            },
            started_at: report.started_at,
            stopped_at: report.stopped_at,
            running: clocks.is_running(report.target, report.cycle),
            warning_at: report.warning_at,
            due_at: due_time(report, &calendars),
        })
        .collect())
}

/// The `sla.signals` row of an `sla.warning_reached` or `sla.breached` event.
fn signal_row(event: &RecordedEvent) -> Option<SignalRow> {
    let envelope = &event.envelope;
    let (kind, signal) = match &envelope.payload {
        EventPayload::SlaWarningReached(signal) => ("warning", signal),
        EventPayload::SlaBreached(signal) => ("breach", signal),
        _ => return None,
    };
    Some(SignalRow {
        tenant: envelope.tenant.as_str().to_owned(),
        ticket_id: envelope.ticket_id.0,
        target: signal.target.as_str(),
        cycle: signal.cycle as i32,
        kind,
        due_at: signal.due_at,
        recorded_at: envelope.effective_time(),
        policy_version: signal.policy_version as i32,
        position: event.stream_seq as i64,
    })
}
