//! Queries over the `sla` read model, with the time-based states computed at query time.
//!
//! The projector stores each ticket's SLA facts and one `sla.clocks` row per clock with what
//! events fix (target, start, stop, whether it runs, warning and due instants). A status is
//! computed here by rebuilding the ticket's clocks with the `csmp-sla` engine from its facts
//! and its tenant's configuration, at the injected clock's `now`: business time left or
//! overdue, and the state:
//! - a clock of a ticket whose opening time is unknown is `UNKNOWN`;
//! - a stopped clock is `MET` when it stopped at or before its due time, else `BREACHED`;
//! - a paused clock is `PAUSED`, or `BREACHED` when its target was used up before the pause;
//! - a running clock is `BREACHED` from its due time on, else `RUNNING`, and at risk from its
//!   warning instant on.
//!
//! The SQL filters of [`list`] follow the same rules over the stored instants.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use csmp_domain::TicketId;
use csmp_projector::sla_config::due_time;
use csmp_projector::{load_tenant_sla, ProjectorError, SlaFacts, TenantSla};
use csmp_proto::v1 as pb;
use csmp_sla::{ClockReport, ClockStatus, Measure, SlaClocks, SlaTarget};
use deadpool_postgres::Client;
use tonic::Status;
use uuid::Uuid;

use crate::convert::{self, opt_timestamp};
use crate::error::db_status;

fn target(target: SlaTarget) -> pb::SlaTarget {
    match target {
        SlaTarget::FirstResponse => pb::SlaTarget::FirstResponse,
        SlaTarget::NextResponse => pb::SlaTarget::NextResponse,
        SlaTarget::Resolution => pb::SlaTarget::Resolution,
        SlaTarget::ComplaintAcknowledgement => pb::SlaTarget::ComplaintAcknowledgement,
    }
}

fn state(status: ClockStatus) -> pb::SlaState {
    match status {
        ClockStatus::Running => pb::SlaState::Running,
        ClockStatus::Paused => pb::SlaState::Paused,
        ClockStatus::Met => pb::SlaState::Met,
        ClockStatus::Breached => pb::SlaState::Breached,
    }
}

/// When the warning and the breach of each clock and cycle were recorded on the stream.
type Recorded = HashMap<(Uuid, String, i32, String), DateTime<Utc>>;

/// One clock's state at `now`.
fn clock_view(
    ticket: Uuid,
    clocks: &SlaClocks,
    report: &ClockReport,
    sla: &TenantSla,
    recorded: &Recorded,
    now: DateTime<Utc>,
) -> pb::SlaClock {
    let signal = |kind: &str| {
        let key = (ticket, report.target.as_str().to_owned(), report.cycle as i32, kind.to_owned());
        opt_timestamp(recorded.get(&key).copied())
    };
    let running = clocks.is_running(report.target, report.cycle);
    let at_risk = report.status == ClockStatus::Running
        && report.warning_at.is_some_and(|warning| warning <= now);
    pb::SlaClock {
        target: target(report.target) as i32,
        state: state(report.status) as i32,
        target_seconds: report.within.num_seconds(),
        due_at: opt_timestamp(due_time(report, &sla.calendars_at(clocks.opened_at()))),
        seconds_left: report.remaining.num_seconds(),
        at_risk,
        stopped_at: opt_timestamp(report.stopped_at),
        cycle: report.cycle,
        running,
        business_seconds_left: report.left().num_seconds(),
        business_seconds_overdue: report.overdue().num_seconds(),
        warning_due_at: opt_timestamp(report.warning_at),
        warning_at: signal("warning"),
        breached_at: signal("breach"),
        measured_in: match &report.measured_in {
            Measure::Always => "always".to_owned(),
            Measure::Calendar(name) => name.clone(),
        },
    }
}

/// The first-response and resolution clocks of a ticket that has none: `UNKNOWN`, with the
/// targets of the tenant's latest policy version.
fn unknown_clocks(facts: &SlaFacts, sla: &TenantSla) -> Vec<pb::SlaClock> {
    let latest = sla.history.versions().last().expect("every history has its base version");
    [SlaTarget::FirstResponse, SlaTarget::Resolution]
        .into_iter()
        .map(|t| {
            let (within, measure) =
                latest.policy.target(t, facts.opening.priority, facts.opening.customer_tier);
            pb::SlaClock {
                target: target(t) as i32,
                state: pb::SlaState::Unknown as i32,
                target_seconds: within.num_seconds(),
                cycle: 1,
                measured_in: match measure {
                    Measure::Always => "always".to_owned(),
                    Measure::Calendar(name) => name.clone(),
                },
                ..Default::default()
            }
        })
        .collect()
}

fn config_status(err: ProjectorError) -> Status {
    match err {
        ProjectorError::Postgres { source, .. } => db_status(source),
        other => Status::failed_precondition(other.to_string()),
    }
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
    if ids.is_empty() {
        return Ok(Vec::new());
    }

    // 1. The tickets' facts, their recorded signals and the tenant's configuration.
    let rows = pg
        .query(
            "SELECT ticket_id, priority, customer_tier, policy_version, facts FROM sla.tickets
             WHERE tenant = $1 AND ticket_id = ANY($2)",
            &[&tenant, &ids],
        )
        .await
        .map_err(db_status)?;
    let signals = pg
        .query(
            "SELECT ticket_id, target, cycle, kind, recorded_at FROM sla.signals
             WHERE tenant = $1 AND ticket_id = ANY($2)",
            &[&tenant, &ids],
        )
        .await
        .map_err(db_status)?;
    let recorded: Recorded = signals
        .iter()
        .map(|r| {
            let key = (r.get("ticket_id"), r.get("target"), r.get("cycle"), r.get("kind"));
            (key, r.get("recorded_at"))
        })
        .collect();
    let client: &tokio_postgres::Client = pg;
    let mut config = load_tenant_sla(client, &[tenant]).await.map_err(config_status)?;
    let sla = config.remove(tenant).expect("every tenant asked for is loaded");

    // 2. Each ticket's clocks rebuilt and reported at `now`.
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(row) = rows.iter().find(|t| t.get::<_, Uuid>("ticket_id") == *id) else {
            continue;
        };
        let facts: SlaFacts = serde_json::from_value(row.get("facts"))
            .map_err(|err| Status::internal(format!("unreadable SLA facts of {id}: {err}")))?;
        let policy_version: Option<i32> = row.get("policy_version");
        let clocks = match facts.clocks(TicketId(*id), &sla) {
            Ok(Some(clocks)) => {
                // A fact recorded with a time after `now` (another replica's clock) counts in
                // full: the ticket is reported no earlier than its last fact.
                let now = facts.facts.last().map_or(now, |last| now.max(last.at));
                let reports = clocks
                    .report(now)
                    .map_err(|err| Status::failed_precondition(format!("ticket {id}: {err}")))?;
                reports
                    .iter()
                    .map(|report| clock_view(*id, &clocks, report, &sla, &recorded, now))
                    .collect()
            }
            Ok(None) | Err(_) => unknown_clocks(&facts, &sla),
        };
        out.push(pb::SlaStatus {
            ticket_id: id.to_string(),
            priority: convert::priority(row.get("priority")),
            customer_tier: convert::customer_tier(row.get("customer_tier")),
            clocks,
            policy_version: policy_version.map(|v| v as u32),
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

/// Tickets with at least one clock in `listing` at `now`, the earliest due first, how many
/// there are in all, and the tenant's recorded warnings and breaches.
pub(crate) async fn list(
    pg: &Client,
    tenant: &str,
    listing: Listing,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<pb::SlaPage, Status> {
    let condition = match listing {
        Listing::AtRisk => {
            "c.running AND c.stopped_at IS NULL AND c.warning_at <= $2 AND $2 < c.due_at"
        }
        Listing::Breached => {
            "c.due_at IS NOT NULL
             AND ((c.stopped_at IS NULL AND c.due_at <= $2) OR c.due_at < c.stopped_at)"
        }
    };
    let sql = format!(
        "WITH matching AS (
             SELECT c.ticket_id, min(c.due_at) AS due_at FROM sla.clocks c
             WHERE c.tenant = $1 AND ({condition})
             GROUP BY c.ticket_id
         )
         SELECT ticket_id, count(*) OVER () AS total FROM matching
         ORDER BY due_at NULLS LAST, ticket_id LIMIT $3"
    );
    let rows = pg.query(&sql, &[&tenant, &now, &limit]).await.map_err(db_status)?;
    let total = rows.first().map_or(0, |r| r.get::<_, i64>("total") as u64);
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get("ticket_id")).collect();
    let tickets = statuses(pg, tenant, &ids, now).await?;
    let counts = pg
        .query_one(
            "SELECT count(*) FILTER (WHERE kind = 'warning') AS warnings,
                    count(*) FILTER (WHERE kind = 'breach') AS breaches
             FROM sla.signals WHERE tenant = $1",
            &[&tenant],
        )
        .await
        .map_err(db_status)?;
    Ok(pb::SlaPage {
        tickets,
        total,
        warnings_recorded: counts.get::<_, i64>("warnings") as u64,
        breaches_recorded: counts.get::<_, i64>("breaches") as u64,
    })
}
