//! The tenants' SLA configuration in the `sla` schema, and the per-ticket facts its clocks are
//! rebuilt from.
//!
//! Owns the policy versions (`sla.policy_versions`), the calendar versions (`sla.calendars`) and
//! the base policy of `sla.tenant_policies`, and turns them into the `csmp-sla` engine's
//! [`PolicyHistory`] and, through [`CalendarHistory::in_force_at`], its [`Calendars`]. The
//! `sla` projector, the query service and the SLA timer all load a tenant's configuration
//! through [`load_tenant_sla`] and pick the versions in force at a ticket's opening, so that
//! they measure the same promises. It also owns [`SlaFacts`], the part of a ticket's history
//! the clocks need, which the projector stores and the timer keeps in memory.
//!
//! Every tenant has a **base version 0**, effective from 1970: the wall-clock table stored by
//! [`set_sla_policy`](crate::set_sla_policy), or [`WallClockPolicy::default`], converted by
//! [`policy_from_wall_clock`] into a 24x7 policy. Versions stored with
//! [`set_sla_policy_version`] follow it.
//!
//! Calendars are versioned by time in the same way: [`set_calendar`] and [`import_holidays`]
//! store a new version of a named calendar, effective from a given instant, and never replace
//! one. A ticket is measured under the policy version and the calendar versions in force at its
//! opening, so its opening time determines both; the `sla.clocks` rows record the calendar
//! version each clock was measured in (`calendar_from`). This module never writes a read model.

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

/// A tenant's SLA configuration: its policy versions and its calendar versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSla {
    pub history: PolicyHistory,
    pub calendars: CalendarHistory,
}

impl TenantSla {
    /// The base version alone, from `base` (a tenant's wall-clock table), without calendars.
    pub fn base(tenant: TenantId, base: &WallClockPolicy) -> TenantSla {
        let version = base_version(base);
        let history = PolicyHistory::new(tenant, vec![version]).expect("the base version is valid");
        TenantSla { history, calendars: CalendarHistory::default() }
    }

    /// The calendars a ticket opened at `opened_at` is measured in.
    pub fn calendars_at(&self, opened_at: DateTime<Utc>) -> Calendars {
        self.calendars.in_force_at(opened_at)
    }
}

/// One stored version of a named calendar: it applies to tickets opened from `effective_from`
/// until the next version of the same name takes effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarVersion {
    pub name: String,
    pub effective_from: DateTime<Utc>,
    pub calendar: Calendar,
}

/// Every stored version of a tenant's calendars, by name and then by `effective_from`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalendarHistory {
    versions: Vec<CalendarVersion>,
}

impl CalendarHistory {
    /// The history of `versions`, in any order.
    pub fn new(mut versions: Vec<CalendarVersion>) -> CalendarHistory {
        versions.sort_by(|a, b| (&a.name, a.effective_from).cmp(&(&b.name, b.effective_from)));
        CalendarHistory { versions }
    }

    /// Every version, by name and then oldest first.
    pub fn versions(&self) -> &[CalendarVersion] {
        &self.versions
    }

    /// The version of calendar `name` in force at `at`: the last one effective at or before it.
    /// `None` when the calendar has no version yet at `at`.
    pub fn version_at(&self, name: &str, at: DateTime<Utc>) -> Option<&CalendarVersion> {
        self.versions.iter().rfind(|v| v.name == name && v.effective_from <= at)
    }

    /// The latest version of calendar `name`, whenever it takes effect.
    pub fn latest(&self, name: &str) -> Option<&CalendarVersion> {
        self.versions.iter().rfind(|v| v.name == name)
    }

    /// Each calendar as in force at `at`; calendars without a version yet are left out.
    pub fn in_force_at(&self, at: DateTime<Utc>) -> Calendars {
        let mut out = Calendars::new();
        for version in self.versions.iter().filter(|v| v.effective_from <= at) {
            // Versions come oldest first, so the last one inserted under a name wins.
            out.insert(version.name.clone(), version.calendar.clone());
        }
        out
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
            "SELECT tenant, name, effective_from, calendar FROM sla.calendars
             WHERE tenant = ANY($1)",
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
        let mut named = Vec::new();
        for row in calendars.iter().filter(|row| row.get::<_, &str>("tenant") == *tenant) {
            let name: String = row.get("name");
            let effective_from: DateTime<Utc> = row.get("effective_from");
            let calendar = serde_json::from_value(row.get("calendar")).map_err(|err| {
                invalid(format!("calendar {name:?} effective from {effective_from}: {err}"))
            })?;
            named.push(CalendarVersion { name, effective_from, calendar });
        }
        let calendars = CalendarHistory::new(named);
        out.insert((*tenant).to_owned(), TenantSla { history, calendars });
    }
    Ok(out)
}

/// Stores the next policy version of `tenant`: tickets opened from its `effective_from` on are
/// measured under it, tickets opened before keep theirs.
///
/// The version must be numbered above and take effect after the last one (the base version 0
/// takes effect in 1970), and every calendar it names must have a version in force at its
/// `effective_from`; otherwise
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
        .validate(&sla.calendars_at(version.effective_from))
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

/// Stores `calendar` as a new version of `tenant`'s calendar `name`: tickets opened from
/// `effective_from` on are measured in it, tickets opened before keep the version they had.
///
/// The version must take effect after the calendar's latest one, and the name must not be
/// empty or `always`; otherwise [`ProjectorError::InvalidCalendar`] (`INVALID_ARGUMENT`, do not
/// retry unchanged). Creates the `sla` schema if it is not there yet.
pub async fn set_calendar(
    pg: &Client,
    tenant: &TenantId,
    name: &str,
    calendar: &Calendar,
    effective_from: DateTime<Utc>,
) -> Result<(), ProjectorError> {
    if name.is_empty() || name == "always" {
        return Err(ProjectorError::InvalidCalendar(format!(
            "calendar name {name:?} is empty or reserved"
        )));
    }
    migrate(pg, ProjectorKind::Sla).await?;
    let sla = load_one(pg, tenant).await?;
    if let Some(latest) = sla.calendars.latest(name) {
        if latest.effective_from >= effective_from {
            return Err(ProjectorError::InvalidCalendar(format!(
                "calendar {name:?} effective from {effective_from} does not come after its \
                 version effective from {}",
                latest.effective_from
            )));
        }
    }

    let json = serde_json::to_value(calendar).expect("a calendar always serializes");
    pg.execute(
        "INSERT INTO sla.calendars (tenant, name, effective_from, calendar, updated_at)
         VALUES ($1, $2, $3, $4, now())",
        &[&tenant.as_str(), &name, &effective_from, &json],
    )
    .await
    .map_err(ProjectorError::postgres("store SLA calendar"))?;
    info!(tenant = %tenant, calendar = name, effective_from = %effective_from,
        "stored SLA calendar version");
    Ok(())
}

/// Adds the holidays of an iCalendar file to the latest version of `tenant`'s calendar `name`,
/// stores the result as a new version effective from `effective_from` (see [`set_calendar`]),
/// and returns the calendar as stored.
///
/// Fails with [`ProjectorError::InvalidCalendar`] when there is no such calendar, the file is
/// refused (the message names the line) or the version would not come after the latest one;
/// nothing is stored then.
pub async fn import_holidays(
    pg: &Client,
    tenant: &TenantId,
    name: &str,
    ical: &str,
    effective_from: DateTime<Utc>,
) -> Result<Calendar, ProjectorError> {
    migrate(pg, ProjectorKind::Sla).await?;
    let sla = load_one(pg, tenant).await?;
    let Some(CalendarVersion { calendar, .. }) = sla.calendars.latest(name) else {
        return Err(ProjectorError::InvalidCalendar(format!(
            "tenant {tenant} has no calendar {name:?}"
        )));
    };
    let calendar = calendar
        .clone()
        .with_holidays_from_ical(ical)
        .map_err(|err| ProjectorError::InvalidCalendar(err.to_string()))?;
    set_calendar(pg, tenant, name, &calendar, effective_from).await?;
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
    /// The policy version and the calendar versions are those in force at the opening.
    /// Fails with [`ClockError::Policy`] when no version is in force at the opening or the
    /// version names a calendar the tenant does not have at the opening.
    pub fn clocks(
        &self,
        ticket: TicketId,
        sla: &TenantSla,
    ) -> Result<Option<SlaClocks>, ClockError> {
        let Some(opened_at) = self.opened_at else {
            return Ok(None);
        };
        let calendars = sla.calendars_at(opened_at);
        let mut clocks =
            SlaClocks::open(ticket, opened_at, self.opening, &sla.history, &calendars)?;
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
    fn the_calendar_versions_in_force_at_an_instant_are_the_latest_effective_by_then() {
        let at = |day, hour| Utc.with_ymd_and_hms(2026, 1, day, hour, 0, 0).unwrap();
        let office = |holidays: &[&str]| -> Calendar {
            serde_json::from_value(serde_json::json!({
                "time_zone": "Europe/Berlin",
                "opening_hours": { "mon": ["09:00-17:00"] },
                "holidays": holidays
            }))
            .unwrap()
        };
        let version = |name: &str, effective_from, calendar| CalendarVersion {
            name: name.to_owned(),
            effective_from,
            calendar,
        };
        let history = CalendarHistory::new(vec![
            version("office", at(16, 15), office(&["2026-01-19"])),
            version("office", at(1, 0), office(&[])),
            version("support", at(20, 0), office(&[])),
        ]);

        assert_eq!(history.in_force_at(at(1, 0))["office"], office(&[]));
        assert!(!history.in_force_at(at(16, 14)).contains_key("support"));
        assert_eq!(history.in_force_at(at(16, 15))["office"], office(&["2026-01-19"]));
        assert_eq!(history.in_force_at(at(20, 0)).len(), 2);
        assert!(history.in_force_at(at(1, 0) - Duration::seconds(1)).is_empty());
        assert_eq!(history.version_at("office", at(16, 14)).unwrap().effective_from, at(1, 0));
        assert_eq!(history.latest("office").unwrap().effective_from, at(16, 15));
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
        let calendars = sla.calendars_at(opened);
        assert_eq!(due_time(&first, &calendars), Some(opened + Duration::hours(2)));
        let json = serde_json::to_value(&facts).unwrap();
        assert_eq!(json["facts"][0]["fact"], "acknowledged");
        let unknown = SlaFacts { opened_at: None, ..facts };
        assert!(unknown.clocks(ticket, &sla).unwrap().is_none());
    }
}
