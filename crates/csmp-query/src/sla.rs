//! Queries over the `sla` read model, with the time-based states computed at query time.
//!
//! The projector stores what events fix (target, due time, pauses, stop); whether a running
//! clock is past due or at risk depends on the present, which comes from the injected clock.
//! Both clocks are columns of one `sla.tickets` row (`fr_*`, `res_*`). The SQL filters of
//! [`list`] and the state of [`clock_view`] follow the same rules:
//! - a clock whose start is unknown is `UNKNOWN`;
//! - a stopped clock is `MET` when it stopped at or before its due time, else `BREACHED`;
//! - a paused clock is `PAUSED`, or `BREACHED` when it was paused after its due time;
//! - a running clock is `BREACHED` once the present is past its due time, else `RUNNING`, and
//!   at risk from `due_at - target × (100 - at_risk_percent) / 100` on.

use chrono::{DateTime, Duration, Utc};
use csmp_proto::v1 as pb;
use deadpool_postgres::Client;
use tokio_postgres::Row;
use tonic::Status;
use uuid::Uuid;

use crate::convert::{self, opt_timestamp};
use crate::error::db_status;

/// One clock as stored: the `fr_*` or `res_*` columns of a `sla.tickets` row.
struct StoredClock<'a> {
    target: pb::SlaTarget,
    target_seconds: i64,
    at_risk_percent: i16,
    started_at: Option<DateTime<Utc>>,
    due_at: Option<DateTime<Utc>>,
    paused_since: Option<DateTime<Utc>>,
    stopped_at: Option<DateTime<Utc>>,
    outcome: Option<&'a str>,
}

impl<'a> StoredClock<'a> {
    fn first_response(row: &'a Row) -> Self {
        StoredClock {
            target: pb::SlaTarget::FirstResponse,
            target_seconds: row.get("fr_target_seconds"),
            at_risk_percent: row.get("fr_at_risk_percent"),
            started_at: row.get("opened_at"),
            due_at: row.get("fr_due_at"),
            paused_since: None,
            stopped_at: row.get("fr_stopped_at"),
            outcome: row.get("fr_outcome"),
        }
    }

    fn resolution(row: &'a Row) -> Self {
        StoredClock {
            target: pb::SlaTarget::Resolution,
            target_seconds: row.get("res_target_seconds"),
            at_risk_percent: row.get("res_at_risk_percent"),
            started_at: row.get("opened_at"),
            due_at: row.get("res_due_at"),
            paused_since: row.get("res_paused_since"),
            stopped_at: row.get("res_stopped_at"),
            outcome: row.get("res_outcome"),
        }
    }
}

/// A stored clock's state at `now`.
fn clock_view(clock: StoredClock<'_>, now: DateTime<Utc>) -> pb::SlaClock {
    let StoredClock {
        target,
        target_seconds,
        at_risk_percent,
        started_at,
        due_at,
        paused_since,
        stopped_at,
        outcome,
    } = clock;
    let (state, left, at_risk) = match (started_at, due_at) {
        (Some(_), Some(due)) => match (stopped_at, paused_since) {
            (Some(stopped), _) => {
                let state = match outcome {
                    Some("met") => pb::SlaState::Met,
                    Some("breached") => pb::SlaState::Breached,
                    _ => pb::SlaState::Unknown,
                };
                (state, due - stopped, false)
            }
            (None, Some(paused)) => {
                let state =
                    if paused > due { pb::SlaState::Breached } else { pb::SlaState::Paused };
                (state, due - paused, false)
            }
            (None, None) if now > due => (pb::SlaState::Breached, due - now, false),
            (None, None) => {
                let at_risk_from = due - at_risk_margin(target_seconds, i64::from(at_risk_percent));
                (pb::SlaState::Running, due - now, now >= at_risk_from)
            }
        },
        _ => (pb::SlaState::Unknown, Duration::zero(), false),
    };
    pb::SlaClock {
        target: target as i32,
        state: state as i32,
        target_seconds,
        due_at: opt_timestamp(due_at),
        seconds_left: left.num_seconds(),
        at_risk,
        stopped_at: opt_timestamp(stopped_at),
    }
}

/// The part of a target left when a clock becomes at risk: `target × (100 - percent) / 100`,
/// exact to the millisecond as in the SQL filter.
fn at_risk_margin(target_seconds: i64, percent: i64) -> Duration {
    Duration::milliseconds(target_seconds * (100 - percent) * 10)
}

/// The SLA status of one ticket; `None` when the tenant has no such ticket.
pub(crate) async fn status(
    pg: &Client,
    tenant: &str,
    ticket_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<pb::SlaStatus>, Status> {
    let mut statuses = statuses(pg, tenant, &[ticket_id], now).await?;
    Ok(statuses.pop())
}

/// The SLA status of `ids`, in that order; tickets without an SLA row are left out.
async fn statuses(
    pg: &Client,
    tenant: &str,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<pb::SlaStatus>, Status> {
    let rows = pg
        .query(
            "SELECT * FROM sla.tickets WHERE tenant = $1 AND ticket_id = ANY($2)",
            &[&tenant, &ids],
        )
        .await
        .map_err(db_status)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(row) = rows.iter().find(|t| t.get::<_, Uuid>("ticket_id") == *id) else {
            continue;
        };
        out.push(pb::SlaStatus {
            ticket_id: id.to_string(),
            priority: convert::priority(row.get("priority")),
            customer_tier: convert::customer_tier(row.get("customer_tier")),
            clocks: vec![
                clock_view(StoredClock::first_response(row), now),
                clock_view(StoredClock::resolution(row), now),
            ],
        });
    }
    Ok(out)
}

/// Which clocks a listing selects.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Listing {
    AtRisk,
    Breached,
}

/// Tickets with at least one clock in `listing` at `now`, the earliest due first, and how many
/// there are in all.
pub(crate) async fn list(
    pg: &Client,
    tenant: &str,
    listing: Listing,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<pb::SlaPage, Status> {
    let running = "c.started_at IS NOT NULL AND c.due_at IS NOT NULL \
                   AND c.stopped_at IS NULL AND c.paused_since IS NULL";
    let condition = match listing {
        Listing::AtRisk => format!(
            "{running} AND $2 <= c.due_at
             AND $2 >= c.due_at
                 - (c.target_seconds * (100 - c.at_risk_percent) * 10) * interval '1 millisecond'"
        ),
        Listing::Breached => format!(
            "({running} AND $2 > c.due_at)
             OR (c.stopped_at IS NULL AND c.paused_since > c.due_at)
             OR c.outcome = 'breached'"
        ),
    };
    let sql = format!(
        "WITH clocks AS (
             SELECT s.ticket_id, s.opened_at AS started_at, c.*
             FROM sla.tickets s
             CROSS JOIN LATERAL (VALUES
                 (s.fr_target_seconds, s.fr_at_risk_percent, s.fr_due_at, NULL::timestamptz,
                  s.fr_stopped_at, s.fr_outcome),
                 (s.res_target_seconds, s.res_at_risk_percent, s.res_due_at, s.res_paused_since,
                  s.res_stopped_at, s.res_outcome)
             ) AS c(target_seconds, at_risk_percent, due_at, paused_since, stopped_at, outcome)
             WHERE s.tenant = $1
         ), matching AS (
             SELECT c.ticket_id, min(c.due_at) AS due_at FROM clocks c
             WHERE {condition}
             GROUP BY c.ticket_id
         )
         SELECT ticket_id, count(*) OVER () AS total FROM matching
         ORDER BY due_at NULLS LAST, ticket_id LIMIT $3"
    );
    let rows = pg.query(&sql, &[&tenant, &now, &limit]).await.map_err(db_status)?;
    let total = rows.first().map_or(0, |r| r.get::<_, i64>("total") as u64);
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get("ticket_id")).collect();
    let tickets = statuses(pg, tenant, &ids, now).await?;
    Ok(pb::SlaPage { tickets, total })
}
