//! Versioned SLA policies: what is promised, measured under which calendar, and what happens
//! when a promise is at risk.
//!
//! Owns [`SlaPolicy`] (targets by priority and customer tier, the complaint acknowledgement
//! target, the warning share, auto-escalation rules), [`PolicyVersion`] and [`PolicyHistory`],
//! and their JSON form. It decides which version governs a ticket; it does not run clocks
//! ([`crate::clocks`]) or compute business time ([`crate::calendar`]).
//!
//! Durations are whole seconds in JSON, as in `csmp_domain::sla`. A target's calendar is
//! looked up from the most specific place that names one: the cell, then its table, then the
//! policy; with none named it is measured around the clock.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use csmp_domain::{CustomerTier, Priority, SupportTier, TenantId};
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::error::PolicyError;

/// A tenant's calendars by name, as SLA policies refer to them.
pub type Calendars = BTreeMap<String, Calendar>;

/// The warning share used when a policy names none, in percent.
pub const DEFAULT_WARNING_PERCENT: u8 = 75;

/// The promises an SLA makes about a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaTarget {
    /// From opening until the first agent response.
    FirstResponse,
    /// From a customer reply until the next agent response; one cycle per reply.
    NextResponse,
    /// From opening until resolved, paused while waiting on the customer.
    Resolution,
    /// For complaints: from opening until acknowledged.
    ComplaintAcknowledgement,
}

impl SlaTarget {
    /// Every target, in declaration order.
    pub const ALL: [SlaTarget; 4] = [
        SlaTarget::FirstResponse,
        SlaTarget::NextResponse,
        SlaTarget::Resolution,
        SlaTarget::ComplaintAcknowledgement,
    ];

    /// The name used in JSON, signal keys and read models.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaTarget::FirstResponse => "first_response",
            SlaTarget::NextResponse => "next_response",
            SlaTarget::Resolution => "resolution",
            SlaTarget::ComplaintAcknowledgement => "complaint_acknowledgement",
        }
    }
}

impl fmt::Display for SlaTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a signal warns that a target is at risk or reports that it was missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// The warning share of the target has elapsed.
    Warning,
    /// The whole target has elapsed.
    Breach,
}

impl SignalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Warning => "warning",
            SignalKind::Breach => "breach",
        }
    }
}

/// The clock a target runs on: JSON `"always"` or `{"calendar": "berlin-office"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Around the clock (24x7).
    #[default]
    Always,
    /// Business time under the tenant's calendar of this name.
    Calendar(String),
}

/// One promise: how long, and optionally under which calendar.
///
/// JSON: a number of seconds (`3600`), or `{"within": 3600, "measured_in": "always"}` to name
/// the calendar for this cell alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "TargetSpec", into = "TargetSpec")]
pub struct Target {
    pub within: Duration,
    /// `None` takes the table's or the policy's calendar.
    pub measured_in: Option<Measure>,
}

impl Target {
    /// `within`, measured under the table's or the policy's calendar.
    pub fn within(within: Duration) -> Target {
        Target { within, measured_in: None }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum TargetSpec {
    Seconds(i64),
    Detailed { within: i64, measured_in: Measure },
}

impl From<TargetSpec> for Target {
    fn from(spec: TargetSpec) -> Self {
        // Out-of-range seconds saturate and are then refused by validation as too long or not
        // positive; the error names the cell.
        let seconds = |s: i64| Duration::try_seconds(s).unwrap_or(Duration::MAX);
        match spec {
            TargetSpec::Seconds(s) => Target { within: seconds(s), measured_in: None },
            TargetSpec::Detailed { within, measured_in } => {
                Target { within: seconds(within), measured_in: Some(measured_in) }
            }
        }
    }
}

impl From<Target> for TargetSpec {
    fn from(target: Target) -> Self {
        let within = target.within.num_seconds();
        match target.measured_in {
            None => TargetSpec::Seconds(within),
            Some(measured_in) => TargetSpec::Detailed { within, measured_in },
        }
    }
}

/// Targets for the three customer tiers at one priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierTargets {
    pub enterprise: Target,
    pub business: Target,
    pub standard: Target,
}

impl TierTargets {
    pub fn get(&self, tier: CustomerTier) -> &Target {
        match tier {
            CustomerTier::Enterprise => &self.enterprise,
            CustomerTier::Business => &self.business,
            CustomerTier::Standard => &self.standard,
        }
    }
}

/// One SLA target's promises for every priority and customer tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetTable {
    /// The calendar of every cell that names none; `None` takes the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_in: Option<Measure>,
    pub low: TierTargets,
    pub medium: TierTargets,
    pub high: TierTargets,
    pub critical: TierTargets,
}

impl TargetTable {
    pub fn get(&self, priority: Priority, tier: CustomerTier) -> &Target {
        let row = match priority {
            Priority::Low => &self.low,
            Priority::Medium => &self.medium,
            Priority::High => &self.high,
            Priority::Critical => &self.critical,
        };
        row.get(tier)
    }

    fn cells(&self) -> impl Iterator<Item = (Priority, CustomerTier, &Target)> {
        Priority::ALL
            .iter()
            .flat_map(move |p| CustomerTier::ALL.iter().map(move |t| (*p, *t, self.get(*p, *t))))
    }
}

/// What an auto-escalation rule does when its signal comes due.
///
/// JSON: `"escalate_one_tier"` or `{"escalate_to": "tier3"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationAction {
    /// To the next support tier up; nothing at tier 3.
    EscalateOneTier,
    /// Straight to this tier; nothing if the ticket is already there or higher.
    EscalateTo(SupportTier),
}

impl EscalationAction {
    /// The tier a ticket at `current` moves to, if it moves at all: escalation only goes up.
    pub fn next_tier(self, current: SupportTier) -> Option<SupportTier> {
        let to = match self {
            EscalationAction::EscalateOneTier => match current {
                SupportTier::Tier1 => SupportTier::Tier2,
                SupportTier::Tier2 | SupportTier::Tier3 => SupportTier::Tier3,
            },
            EscalationAction::EscalateTo(tier) => tier,
        };
        (to > current).then_some(to)
    }
}

/// Escalate a ticket automatically when one of its SLA signals comes due.
///
/// `{"target": "first_response", "priority": "critical", "action": "escalate_one_tier"}`;
/// `priority` and `customer_tier` left out match any; `on` defaults to `breach`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationRule {
    pub target: SlaTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_tier: Option<CustomerTier>,
    #[serde(default = "breach")]
    pub on: SignalKind,
    pub action: EscalationAction,
}

fn breach() -> SignalKind {
    SignalKind::Breach
}

impl EscalationRule {
    /// True if and only if the rule applies to a `kind` signal of `target` on a ticket of
    /// `priority` (as it is now) and `tier`.
    pub fn matches(
        &self,
        target: SlaTarget,
        kind: SignalKind,
        priority: Priority,
        tier: CustomerTier,
    ) -> bool {
        self.target == target
            && self.on == kind
            && self.priority.is_none_or(|p| p == priority)
            && self.customer_tier.is_none_or(|t| t == tier)
    }
}

/// A tenant's SLA: targets, calendars, warning share and auto-escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicy {
    /// The calendar of every target that names none; around the clock when left out.
    #[serde(default)]
    pub measured_in: Measure,
    pub first_response: TargetTable,
    pub next_response: TargetTable,
    pub resolution: TargetTable,
    /// For complaints, whatever their priority and tier.
    pub complaint_acknowledgement: Target,
    /// Share of a target after which a warning is due, 1 to 99 percent.
    #[serde(default = "default_warning_percent")]
    pub warning_percent: u8,
    /// Checked in order; the first rule that matches a signal decides its escalation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalations: Vec<EscalationRule>,
}

fn default_warning_percent() -> u8 {
    DEFAULT_WARNING_PERCENT
}

impl SlaPolicy {
    /// The promise of `target` for a ticket of `priority` and `tier`, with its calendar
    /// resolved to the most specific one named.
    pub fn target(
        &self,
        target: SlaTarget,
        priority: Priority,
        tier: CustomerTier,
    ) -> (Duration, &Measure) {
        let (cell, table_measure) = match target {
            SlaTarget::FirstResponse => {
                (self.first_response.get(priority, tier), &self.first_response.measured_in)
            }
            SlaTarget::NextResponse => {
                (self.next_response.get(priority, tier), &self.next_response.measured_in)
            }
            SlaTarget::Resolution => {
                (self.resolution.get(priority, tier), &self.resolution.measured_in)
            }
            SlaTarget::ComplaintAcknowledgement => (&self.complaint_acknowledgement, &None),
        };
        let measure =
            cell.measured_in.as_ref().or(table_measure.as_ref()).unwrap_or(&self.measured_in);
        (cell.within, measure)
    }

    /// The warning share of `within`, rounded down to the second.
    pub fn warning_after(&self, within: Duration) -> Duration {
        Duration::seconds(within.num_seconds() * i64::from(self.warning_percent) / 100)
    }

    /// The first escalation rule that applies, if any.
    pub fn escalation(
        &self,
        target: SlaTarget,
        kind: SignalKind,
        priority: Priority,
        tier: CustomerTier,
    ) -> Option<&EscalationRule> {
        self.escalations.iter().find(|rule| rule.matches(target, kind, priority, tier))
    }

    /// Checks the values that need no calendar: every target positive, the warning share
    /// within 1 to 99 percent.
    pub fn check(&self) -> Result<(), PolicyError> {
        if !(1..=99).contains(&self.warning_percent) {
            return Err(PolicyError::InvalidWarningPercent(self.warning_percent));
        }
        for (name, target) in self.named_targets() {
            if target.within <= Duration::zero() || target.within == Duration::MAX {
                return Err(PolicyError::InvalidTarget { target: name, within: target.within });
            }
        }
        Ok(())
    }

    /// [`SlaPolicy::check`], and that every calendar named is one of `calendars`.
    pub fn validate(&self, calendars: &Calendars) -> Result<(), PolicyError> {
        self.check()?;
        let unknown = |name: &str, at: String| match calendars.contains_key(name) {
            true => Ok(()),
            false => Err(PolicyError::UnknownCalendar { target: at, name: name.to_owned() }),
        };
        if let Measure::Calendar(name) = &self.measured_in {
            unknown(name, "measured_in".to_owned())?;
        }
        for (table_name, table) in self.tables() {
            if let Some(Measure::Calendar(name)) = &table.measured_in {
                unknown(name, format!("{table_name}.measured_in"))?;
            }
        }
        for (at, target) in self.named_targets() {
            if let Some(Measure::Calendar(name)) = &target.measured_in {
                unknown(name, at)?;
            }
        }
        Ok(())
    }

    fn tables(&self) -> [(&'static str, &TargetTable); 3] {
        [
            ("first_response", &self.first_response),
            ("next_response", &self.next_response),
            ("resolution", &self.resolution),
        ]
    }

    /// Every cell with its path, such as `resolution.high.business`.
    fn named_targets(&self) -> Vec<(String, &Target)> {
        let mut named: Vec<(String, &Target)> = self
            .tables()
            .into_iter()
            .flat_map(|(table_name, table)| {
                table.cells().map(move |(p, t, target)| (format!("{table_name}.{p}.{t}"), target))
            })
            .collect();
        named.push(("complaint_acknowledgement".to_owned(), &self.complaint_acknowledgement));
        named
    }
}

/// One version of a tenant's policy and the instant from which newly opened tickets get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyVersion {
    pub version: u32,
    pub effective_from: DateTime<Utc>,
    pub policy: SlaPolicy,
}

/// Every version of one tenant's policy, oldest first.
///
/// A ticket keeps the version in force when it opened for its whole life: a change applies to
/// tickets opened from its `effective_from` on, and running tickets are not re-targeted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HistorySpec", into = "HistorySpec")]
pub struct PolicyHistory {
    tenant: TenantId,
    versions: Vec<PolicyVersion>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistorySpec {
    tenant: TenantId,
    versions: Vec<PolicyVersion>,
}

impl TryFrom<HistorySpec> for PolicyHistory {
    type Error = PolicyError;

    fn try_from(spec: HistorySpec) -> Result<Self, Self::Error> {
        PolicyHistory::new(spec.tenant, spec.versions)
    }
}

impl From<PolicyHistory> for HistorySpec {
    fn from(history: PolicyHistory) -> Self {
        HistorySpec { tenant: history.tenant, versions: history.versions }
    }
}

impl PolicyHistory {
    /// The history of `versions`, in any order; each version is [checked](SlaPolicy::check),
    /// and ordered by number their `effective_from` must rise too.
    pub fn new(
        tenant: TenantId,
        mut versions: Vec<PolicyVersion>,
    ) -> Result<PolicyHistory, PolicyError> {
        versions.sort_by_key(|v| v.version);
        let mut history = PolicyHistory { tenant, versions: Vec::with_capacity(versions.len()) };
        for version in versions {
            history.push(version)?;
        }
        Ok(history)
    }

    /// Adds the next version: a higher number, effective later than the last one.
    pub fn push(&mut self, version: PolicyVersion) -> Result<(), PolicyError> {
        version.policy.check()?;
        if let Some(last) = self.versions.last() {
            if version.version <= last.version || version.effective_from <= last.effective_from {
                return Err(PolicyError::OutOfOrder {
                    version: version.version,
                    effective_from: version.effective_from,
                    previous: last.version,
                    previous_from: last.effective_from,
                });
            }
        }
        self.versions.push(version);
        Ok(())
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn versions(&self) -> &[PolicyVersion] {
        &self.versions
    }

    /// The version for a ticket opened at `opened_at`: the latest whose `effective_from` is at
    /// or before it. Record its `version` on the ticket.
    pub fn in_force_at(&self, opened_at: DateTime<Utc>) -> Result<&PolicyVersion, PolicyError> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.effective_from <= opened_at)
            .ok_or(PolicyError::NoneInForce { at: opened_at })
    }
}
