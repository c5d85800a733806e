//! The tenants' SLA configuration in the `sla` schema, and the per-ticket facts its clocks are
//! rebuilt from.
//!
//! Owns the policy versions (`sla.policy_versions`), the named calendars (`sla.calendars`) and
//! the base policy of `sla.tenant_policies`, and turns them into the `csmp-sla` engine's
//! [`PolicyHistory`] and [`Calendars`]. The `sla` projector, the query service and the SLA timer
//! all load a tenant's configuration through [`load_tenant_sla`], so that they measure the
//! same promises. It also owns [`SlaFacts`], the part of a ticket's history the clocks need,
//! which the projector stores and the timer keeps in memory.
//!
//! Every tenant has a **base version 0**, effective from 1970: the wall-clock table stored by
//! [`set_sla_policy`](crate::set_sla_policy), or [`WallClockPolicy::default`], converted by
//! [`policy_from_wall_clock`] into a 24x7 policy. Versions stored with
//! [`set_sla_policy_version`] follow it. This module never writes a read model.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use csmp_domain::sla::SlaPolicy as WallClockPolicy;
use csmp_domain::{EventEnvelope, EventPayload, Priority, TenantId, TicketId};
use csmp_sla::policy::DEFAULT_WARNING_PERCENT;
use csmp_sla::{
    Calendar, Calendars, ClockError, ClockReport, ClockStatus, EscalationAction, EscalationRule,
    Measure, Opening, PolicyHistory, PolicyVersion, SignalKind, SlaClocks, SlaTarget, Target,
    TargetTable, TicketFact, TierTargets,
};
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, GenericClient};
use tracing::info;

use crate::error::ProjectorError;
use crate::schema::{load_policies, migrate};
use crate::ProjectorKind;

/// The number of every tenant's base version.
pub const BASE_VERSION: u32 = 0;

/// A tenant's SLA configuration: its policy versions and its calendars by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSla {
    pub history: PolicyHistory,
    pub calendars: Calendars,
}

impl TenantSla {
    /// The base version alone, from `base` (a tenant's wall-clock table), without calendars.
    pub fn base(tenant: TenantId, base: &WallClockPolicy) -> TenantSla {
        let version = base_version(base);
        let history = PolicyHistory::new(tenant, vec![version]).expect("the base version is valid");
        TenantSla { history, calendars: Calendars::new() }
    }
}

fn base_version(base: &WallClockPolicy) -> PolicyVersion {
    PolicyVersion {
        version: BASE_VERSION,
        effective_from: DateTime::UNIX_EPOCH,
        policy: policy_from_wall_clock(base),
    }
}

/// The wall-clock table as an engine policy measured around the clock.
///
/// First response and resolution keep their targets; next response gets the first-response
/// targets, complaint acknowledgement the shortest first-response target of the table. The
/// at-risk share becomes the warning share (capped at 99 %). One escalation rule comes with
/// it: a breached first response on a critical ticket moves the ticket up one support tier.
pub fn policy_from_wall_clock(policy: &WallClockPolicy) -> csmp_sla::SlaPolicy {
    let table = |pick: fn(&csmp_domain::sla::SlaTargets) -> chrono::Duration| {
        let row = |priority: Priority| {
            let cells = &policy.targets[priority as usize];
            TierTargets {
                enterprise: Target::within(pick(&cells[0])),
                business: Target::within(pick(&cells[1])),
                standard: Target::within(pick(&cells[2])),
            }
        };
        TargetTable {
            measured_in: None,
            low: row(Priority::Low),
            medium: row(Priority::Medium),
            high: row(Priority::High),
            critical: row(Priority::Critical),
        }
    };
    let shortest = policy
        .targets
        .iter()
        .flatten()
        .map(|t| t.first_response)
        .min()
        .expect("the table has cells");
    let warning_percent = match policy.at_risk_percent {
        0 => DEFAULT_WARNING_PERCENT,
        percent => percent.min(99),
    };
    csmp_sla::SlaPolicy {
        measured_in: Measure::Always,
        first_response: table(|t| t.first_response),
        next_response: table(|t| t.first_response),
        resolution: table(|t| t.resolution),
        complaint_acknowledgement: Target::within(shortest),
        warning_percent,
        escalations: vec![EscalationRule {
            target: SlaTarget::FirstResponse,
            priority: Some(Priority::Critical),
            customer_tier: None,
            on: SignalKind::Breach,
            action: EscalationAction::EscalateOneTier,
        }],
    }
}

/// The SLA configuration of each of `tenants`; every tenant asked for is in the map.
///
/// Fails with [`ProjectorError::SlaConfig`] when what is stored no longer forms a valid
/// history, and with [`ProjectorError::Postgres`] when the `sla` schema cannot be read.
pub async fn load_tenant_sla(
    pg: &impl GenericClient,
    tenants: &[&str],
) -> Result<HashMap<String, TenantSla>, ProjectorError> {
    let bases = load_policies(pg, tenants).await?;
    let versions = pg
        .query(
            "SELECT tenant, version, effective_from, policy FROM sla.policy_versions
             WHERE tenant = ANY($1) ORDER BY tenant, version",
            &[&tenants],
        )
        .await
        .map_err(ProjectorError::postgres("load SLA policy versions"))?;
    let calendars = pg
        .query(
            "SELECT tenant, name, calendar FROM sla.calendars WHERE tenant = ANY($1)",
            &[&tenants],
        )
        .await
        .map_err(ProjectorError::postgres("load SLA calendars"))?;

    let mut out = HashMap::with_capacity(tenants.len());
    for tenant in tenants {
        let invalid =
            |detail: String| ProjectorError::SlaConfig { tenant: (*tenant).to_owned(), detail };
        let id = TenantId::parse(tenant).map_err(|err| invalid(err.to_string()))?;
        let base = bases.get(*tenant).cloned().unwrap_or_default();
        let mut all = vec![base_version(&base)];
        for row in versions.iter().filter(|row| row.get::<_, &str>("tenant") == *tenant) {
            let version: i32 = row.get("version");
            let policy = serde_json::from_value(row.get("policy"))
                .map_err(|err| invalid(format!("policy version {version}: {err}")))?;
            all.push(PolicyVersion {
                version: version as u32,
                effective_from: row.get("effective_from"),
                policy,
            });
        }
        let history = PolicyHistory::new(id, all).map_err(|err| invalid(err.to_string()))?;
        let mut named = Calendars::new();
        for row in calendars.iter().filter(|row| row.get::<_, &str>("tenant") == *tenant) {
            let name: String = row.get("name");
            let calendar = serde_json::from_value(row.get("calendar"))
                .map_err(|err| invalid(format!("calendar {name:?}: {err}")))?;
            named.insert(name, calendar);
        }
        out.insert((*tenant).to_owned(), TenantSla { history, calendars: named });
    }
    Ok(out)
}

/// Stores the next policy version of `tenant`: tickets opened from its `effective_from` on are
/// measured under it, tickets opened before keep theirs.
///
/// The version must be numbered above and take effect after the last one (the base version 0
/// takes effect in 1970), and every calendar it names must be stored already; otherwise
/// [`ProjectorError::InvalidPolicy`] (`INVALID_ARGUMENT`, do not retry unchanged). Creates the
/// `sla` schema if it is not there yet.
pub async fn set_sla_policy_version(
    pg: &Client,
    tenant: &TenantId,
    version: PolicyVersion,
) -> Result<(), ProjectorError> {
    migrate(pg, ProjectorKind::Sla).await?;
    let mut sla = load_one(pg, tenant).await?;
    version
        .policy
        .validate(&sla.calendars)
        .map_err(|err| ProjectorError::InvalidPolicy(err.to_string()))?;
    sla.history
        .push(version.clone())
        .map_err(|err| ProjectorError::InvalidPolicy(err.to_string()))?;

    let json = serde_json::to_value(&version.policy).expect("a policy always serializes");
    pg.execute(
        "INSERT INTO sla.policy_versions (tenant, version, effective_from, policy)
         VALUES ($1, $2, $3, $4)",
        &[&tenant.as_str(), &(version.version as i32), &version.effective_from, &json],
    )
    .await
    .map_err(ProjectorError::postgres("store SLA policy version"))?;
    info!(tenant = %tenant, version = version.version, "stored SLA policy version");
    Ok(())
}

/// Stores `calendar` as `tenant`'s calendar `name`, replacing one of that name.
///
/// Tickets are measured under the calendars as they are when their clocks are next computed:
/// calendars are not versioned. Creates the `sla` schema if it is not there yet.
pub async fn set_calendar(
    pg: &Client,
    tenant: &TenantId,
    name: &str,
    calendar: &Calendar,
) -> Result<(), ProjectorError> {
    if name.is_empty() || name == "always" {
        return Err(ProjectorError::InvalidCalendar(format!(
            "calendar name {name:?} is empty or reserved"
        )));
    }
    migrate(pg, ProjectorKind::Sla).await?;
    let json = serde_json::to_value(calendar).expect("a calendar always serializes");
    pg.execute(
        "INSERT INTO sla.calendars (tenant, name, calendar, updated_at) VALUES ($1, $2, $3, now())
         ON CONFLICT (tenant, name) DO UPDATE
         SET calendar = EXCLUDED.calendar, updated_at = now()",
        &[&tenant.as_str(), &name, &json],
    )
    .await
    .map_err(ProjectorError::postgres("store SLA calendar"))?;
    info!(tenant = %tenant, calendar = name, "stored SLA calendar");
    Ok(())
}

/// Adds the holidays of an iCalendar file to `tenant`'s stored calendar `name`, and returns the
/// calendar as stored.
///
/// Fails with [`ProjectorError::InvalidCalendar`] when there is no such calendar or the file is
/// refused (the message names the line); nothing is stored then.
pub async fn import_holidays(
    pg: &Client,
    tenant: &TenantId,
    name: &str,
    ical: &str,
) -> Result<Calendar, ProjectorError> {
    migrate(pg, ProjectorKind::Sla).await?;
    let sla = load_one(pg, tenant).await?;
    let Some(calendar) = sla.calendars.get(name) else {
        return Err(ProjectorError::InvalidCalendar(format!(
            "tenant {tenant} has no calendar {name:?}"
        )));
    };
    let calendar = calendar
        .clone()
        .with_holidays_from_ical(ical)
        .map_err(|err| ProjectorError::InvalidCalendar(err.to_string()))?;
    set_calendar(pg, tenant, name, &calendar).await?;
    Ok(calendar)
}

async fn load_one(pg: &Client, tenant: &TenantId) -> Result<TenantSla, ProjectorError> {
    let mut all = load_tenant_sla(pg, &[tenant.as_str()]).await?;
    Ok(all.remove(tenant.as_str()).expect("every tenant asked for is loaded"))
}

/// One fact of a ticket's SLA history and when it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactAt {
    pub at: DateTime<Utc>,
    pub fact: TicketFact,
}

/// What a ticket's SLA clocks are rebuilt from: its opening and the facts after it, in stream
/// order. Stored as JSON on the ticket's `sla.tickets` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaFacts {
    /// `None` for imported history without an opening time: such a ticket has no clocks.
    pub opened_at: Option<DateTime<Utc>>,
    pub opening: Opening,
    pub facts: Vec<FactAt>,
}

impl SlaFacts {
    /// The facts an opening starts; `None` for any other event.
    pub fn opened(envelope: &EventEnvelope) -> Option<SlaFacts> {
        let EventPayload::Opened(opened) = &envelope.payload else {
            return None;
        };
        Some(SlaFacts {
            opened_at: envelope.occurred_at,
            opening: Opening {
                priority: opened.priority,
                customer_tier: opened.customer_tier,
                is_complaint: opened.is_complaint,
            },
            facts: Vec::new(),
        })
    }

    /// Adds the fact `envelope` carries, if the SLA uses it; true if it did. A fact without a
    /// time of its own counts when it was recorded.
    pub fn record(&mut self, envelope: &EventEnvelope) -> bool {
        match TicketFact::from_payload(&envelope.payload) {
            Some(fact) => {
                self.facts.push(FactAt { at: envelope.effective_time(), fact });
                true
            }
            None => false,
        }
    }

    /// True once the ticket is closed: its clocks have all stopped for good.
    pub fn is_closed(&self) -> bool {
        self.facts.iter().any(|f| f.fact == TicketFact::Closed)
    }

    /// The ticket's clocks under `sla`; `None` when the opening time is unknown.
    ///
    /// Fails with [`ClockError::Policy`] when no version is in force at the opening or the
    /// version names a calendar the tenant does not have.
    pub fn clocks(
        &self,
        ticket: TicketId,
        sla: &TenantSla,
    ) -> Result<Option<SlaClocks>, ClockError> {
        let Some(opened_at) = self.opened_at else {
            return Ok(None);
        };
        let mut clocks =
            SlaClocks::open(ticket, opened_at, self.opening, &sla.history, &sla.calendars)?;
        for fact in &self.facts {
            clocks.apply(fact.at, fact.fact);
        }
        Ok(Some(clocks))
    }
}

/// The due time of a clock as a person reads it: the report's `due_at`, or for a clock that
/// met its target before its due time, the instant the rest of its target would have been
/// used up had it gone on running from its stop. `None` while paused within its target.
/// The report must be taken at or after the clock's stop, so that its time left is final.
pub fn due_time(report: &ClockReport, calendars: &Calendars) -> Option<DateTime<Utc>> {
    if report.due_at.is_some() {
        return report.due_at;
    }
    let stopped = report.stopped_at.filter(|_| report.status == ClockStatus::Met)?;
    let always;
    let calendar = match &report.measured_in {
        Measure::Always => {
            always = Calendar::always();
            &always
        }
        Measure::Calendar(name) => calendars.get(name)?,
    };
    calendar.add_business_time(stopped, report.left()).ok()
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use csmp_domain::CustomerTier;

    use super::*;

    #[test]
    fn the_wall_clock_table_becomes_a_24x7_base_policy_with_the_critical_escalation() {
        let policy = policy_from_wall_clock(&WallClockPolicy::default());

        let target = |t, p, c| policy.target(t, p, c).0.num_seconds();
        use CustomerTier::*;
        use Priority::*;
        assert_eq!(target(SlaTarget::FirstResponse, Critical, Enterprise), 900);
        assert_eq!(target(SlaTarget::NextResponse, Medium, Standard), 28_800);
        assert_eq!(target(SlaTarget::Resolution, Low, Business), 432_000);
        assert_eq!(target(SlaTarget::ComplaintAcknowledgement, Low, Standard), 900);
        assert_eq!(policy.measured_in, Measure::Always);
        assert_eq!(policy.warning_percent, 75);
        let rule =
            policy.escalation(SlaTarget::FirstResponse, SignalKind::Breach, Critical, Business);
        assert_eq!(rule.map(|r| r.action), Some(EscalationAction::EscalateOneTier));
        assert_eq!(
            policy.escalation(SlaTarget::FirstResponse, SignalKind::Breach, High, Business),
            None
        );
    }

    #[test]
    fn facts_rebuild_the_clocks_and_an_unknown_opening_has_none() {
        let tenant = TenantId::parse("acme").unwrap();
        let sla = TenantSla::base(tenant, &WallClockPolicy::default());
        let opened = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let opening = Opening {
            priority: Priority::High,
            customer_tier: CustomerTier::Business,
            is_complaint: false,
        };
        let mut facts = SlaFacts { opened_at: Some(opened), opening, facts: Vec::new() };
        facts
            .facts
            .push(FactAt { at: opened + Duration::minutes(30), fact: TicketFact::Acknowledged });
        let ticket = TicketId(uuid::Uuid::from_u128(1));

        let clocks = facts.clocks(ticket, &sla).unwrap().unwrap();

        assert_eq!(clocks.policy_version(), BASE_VERSION);
        let first = clocks.clock(SlaTarget::FirstResponse, opened + Duration::hours(1));
        let first = first.unwrap().unwrap();
        assert_eq!(first.status, ClockStatus::Met);
        assert_eq!(due_time(&first, &sla.calendars), Some(opened + Duration::hours(2)));
        let json = serde_json::to_value(&facts).unwrap();
        assert_eq!(json["facts"][0]["fact"], "acknowledged");
        let unknown = SlaFacts { opened_at: None, ..facts };
        assert!(unknown.clocks(ticket, &sla).unwrap().is_none());
    }
}
