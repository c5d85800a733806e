//! A ticket's SLA clocks: a pure state machine fed with the ticket's facts.
//!
//! Owns [`SlaClocks`], the facts it takes ([`TicketFact`], or the domain's
//! [`EventEnvelope`]s), what it reports ([`ClockReport`]) and the signals a timer service
//! emits from it ([`SlaSignal`]). It reads no clock and stores nothing: `now` is an argument of
//! every query, and the state is rebuilt by replaying the ticket's events.
//!
//! # Rules
//!
//! - An *agent response* is `ticket.acknowledged`, `ticket.customer_asked` or
//!   `ticket.resolved`. Assignment, priority changes and escalation are not responses.
//! - First response runs from opening to the first agent response. For a complaint, the
//!   complaint acknowledgement clock runs over the same stretch against its own target.
//! - Next response: a customer reply after the first agent response starts a cycle (1, 2, ...)
//!   that the next agent response ends. A reply while a cycle runs joins that cycle, which keeps
//!   counting from the earliest unanswered reply; a reply before the first agent response starts
//!   none, as first response already runs.
//! - Resolution runs from opening to `ticket.resolved`, paused from `ticket.customer_asked` to
//!   the customer's reply; a reopen resumes it with the business time already used, and the
//!   next resolve stops it again.
//! - A priority change re-targets every clock not yet stopped (paused ones too) from its
//!   original start: the due time is where the new target's business time is used up, counting
//!   only running stretches. Complaint acknowledgement has one target for every priority.
//! - Escalation changes the support tier and stops nothing; closing stops whatever still runs,
//!   and facts after closing are ignored.
//! - Business time is measured under each target's calendar, so outside its hours no clock
//!   advances.
//! - A clock stopped at or before its due time met its target; one still running at its due
//!   time is breached from then on.
//! - Facts are taken in the order given; one timed earlier than the fact before it counts at
//!   that fact's time, since replicas' clocks may disagree slightly.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use csmp_domain::event::EventPayload;
use csmp_domain::{CustomerTier, EventEnvelope, Priority, SupportTier, TenantId, TicketId};
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::error::{CalendarError, ClockError};
use crate::policy::{
    Calendars, EscalationAction, Measure, PolicyHistory, PolicyVersion, SignalKind, SlaTarget,
};

/// What the SLA needs to know about a ticket's opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    pub priority: Priority,
    pub customer_tier: CustomerTier,
    pub is_complaint: bool,
}

/// A fact about a ticket after its opening that moves its SLA clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketFact {
    /// The first agent response.
    Acknowledged,
    /// An agent asked the customer; the ticket waits on the customer.
    CustomerAsked,
    /// The customer replied.
    CustomerReplied,
    PriorityChanged {
        to: Priority,
    },
    Escalated {
        to: SupportTier,
    },
    Resolved,
    Reopened,
    Closed,
}

impl TicketFact {
    /// The fact a domain event carries, if it carries one the SLA uses; `None` for the opening
    /// (see [`SlaClocks::replay`]), assignment, refunds and feedback.
    pub fn from_payload(payload: &EventPayload) -> Option<TicketFact> {
        Some(match payload {
            EventPayload::Acknowledged(_) => TicketFact::Acknowledged,
            EventPayload::CustomerAsked(_) => TicketFact::CustomerAsked,
            EventPayload::CustomerReplied(_) => TicketFact::CustomerReplied,
            EventPayload::PriorityChanged(change) => TicketFact::PriorityChanged { to: change.to },
            EventPayload::Escalated(escalation) => TicketFact::Escalated { to: escalation.to },
            EventPayload::Resolved(_) => TicketFact::Resolved,
            EventPayload::Reopened(_) => TicketFact::Reopened,
            EventPayload::Closed(_) => TicketFact::Closed,
            EventPayload::Opened(_)
            | EventPayload::Assigned(_)
            | EventPayload::RefundIssued(_)
            | EventPayload::RefundRequested(_)
            | EventPayload::RefundApproved(_)
            | EventPayload::RefundRejected(_)
            | EventPayload::FeedbackGiven(_)
            | EventPayload::SlaWarningReached(_)
            | EventPayload::SlaBreached(_) => return None,
        })
    }
}

/// Where a clock stands at a given `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockStatus {
    /// Counting business time, within its target.
    Running,
    /// Waiting on the customer, within its target.
    Paused,
    /// Stopped at or before its due time.
    Met,
    /// Its due time has passed while it ran, whether it has stopped since or not.
    Breached,
}

/// One clock's state at a given `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockReport {
    pub target: SlaTarget,
    /// 1, except for next response: one cycle per customer reply that waits for an answer.
    pub cycle: u32,
    pub status: ClockStatus,
    /// The promised business time.
    pub within: Duration,
    pub measured_in: Measure,
    pub started_at: DateTime<Utc>,
    /// When the clock stopped for good, if it has.
    pub stopped_at: Option<DateTime<Utc>>,
    /// When the warning share is (or was) used up; `None` while paused before reaching it, or
    /// if the clock stopped first.
    pub warning_at: Option<DateTime<Utc>>,
    /// When the target is (or was) used up: the breach time if the clock is still running
    /// then. `None` as for `warning_at`.
    pub due_at: Option<DateTime<Utc>>,
    /// Business time counted up to `now`.
    pub elapsed: Duration,
    /// `within - elapsed`: business time left, negative when overdue.
    pub remaining: Duration,
}

impl ClockReport {
    /// Business time left before the due time, zero once overdue.
    pub fn left(&self) -> Duration {
        self.remaining.max(Duration::zero())
    }

    /// Business time past the target, zero while within it.
    pub fn overdue(&self) -> Duration {
        (-self.remaining).max(Duration::zero())
    }
}

/// An auto-escalation an SLA signal calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub action: EscalationAction,
    pub from: SupportTier,
    pub to: SupportTier,
}

/// A warning or breach that is due: a timer service emits each once, by [`SlaSignal::key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaSignal {
    pub tenant: TenantId,
    pub ticket: TicketId,
    pub target: SlaTarget,
    pub cycle: u32,
    pub kind: SignalKind,
    /// The computed instant the warning share or the target was used up.
    pub at: DateTime<Utc>,
    /// The policy version the ticket is measured under.
    pub policy_version: u32,
    /// The escalation the first matching rule calls for, judged against the ticket's priority
    /// and support tier as they are now; `None` without a rule or at the top tier already.
    pub escalation: Option<Escalation>,
}

impl SlaSignal {
    /// `sla:<target>:<cycle>:<warning|breach>`: the same for the same signal however often it
    /// is computed, and different for any other signal of its ticket. Request ids are scoped by
    /// tenant and ticket already, so the key leaves them out and stays short for any tenant.
    pub fn key(&self) -> String {
        signal_key(self.target.as_str(), self.cycle, self.kind.as_str())
    }
}

/// The key of a ticket's signal: see [`SlaSignal::key`].
pub fn signal_key(target: &str, cycle: u32, kind: &str) -> String {
    let prefix = csmp_domain::ticket::SLA_REQUEST_PREFIX;
    format!("{prefix}{target}:{cycle}:{kind}")
}

/// A stretch during which a clock counts, `[from, to)`; `to` is `None` while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct Clock {
    target: SlaTarget,
    cycle: u32,
    within: Duration,
    measure: Measure,
    calendar: Arc<Calendar>,
    runs: Vec<Run>,
    stopped_at: Option<DateTime<Utc>>,
}

impl Clock {
    fn is_running(&self) -> bool {
        self.runs.last().is_some_and(|run| run.to.is_none())
    }

    fn is_stopped(&self) -> bool {
        self.stopped_at.is_some()
    }

    fn pause(&mut self, at: DateTime<Utc>) {
        if let Some(run) = self.runs.last_mut().filter(|run| run.to.is_none()) {
            run.to = Some(at);
        }
    }

    fn resume(&mut self, at: DateTime<Utc>) {
        if !self.is_running() {
            self.runs.push(Run { from: at, to: None });
            self.stopped_at = None;
        }
    }

    fn stop(&mut self, at: DateTime<Utc>) {
        if !self.is_stopped() {
            self.pause(at);
            self.stopped_at = Some(at);
        }
    }

    /// The instant `amount` of business time has been counted over the runs, if it has been
    /// or will be while the last run goes on.
    fn instant_of(&self, amount: Duration) -> Result<Option<DateTime<Utc>>, CalendarError> {
        let mut used = Duration::zero();
        for run in &self.runs {
            let length = match run.to {
                Some(to) => self.calendar.business_time_between(run.from, to),
                None => return self.calendar.add_business_time(run.from, amount - used).map(Some),
            };
            if used + length >= amount {
                return self.calendar.add_business_time(run.from, amount - used).map(Some);
            }
            used += length;
        }
        Ok(None)
    }

    fn elapsed(&self, now: DateTime<Utc>) -> Duration {
        self.runs
            .iter()
            .map(|run| {
                let to = run.to.map_or(now, |to| to.min(now));
                self.calendar.business_time_between(run.from, to)
            })
            .sum()
    }
}

/// The SLA clocks of one ticket, under the policy version in force when it opened.
#[derive(Debug, Clone)]
pub struct SlaClocks {
    tenant: TenantId,
    ticket: TicketId,
    policy: PolicyVersion,
    /// The calendars the policy names, shared by the clocks measured under them.
    calendars: BTreeMap<String, Arc<Calendar>>,
    always: Arc<Calendar>,
    opening: Opening,
    opened_at: DateTime<Utc>,
    priority: Priority,
    support_tier: SupportTier,
    answered: bool,
    waiting_on_customer: bool,
    resolved: bool,
    closed: bool,
    last_fact_at: DateTime<Utc>,
    /// In the order they started.
    clocks: Vec<Clock>,
}

impl SlaClocks {
    /// Starts the clocks of `ticket`, opened at `opened_at`, under the version of `policies` in
    /// force then.
    ///
    /// Fails with [`ClockError::Policy`] if no version is in force or the version names a
    /// calendar missing from `calendars`.
    pub fn open(
        ticket: TicketId,
        opened_at: DateTime<Utc>,
        opening: Opening,
        policies: &PolicyHistory,
        calendars: &Calendars,
    ) -> Result<SlaClocks, ClockError> {
        let policy = policies.in_force_at(opened_at)?.clone();
        policy.policy.validate(calendars)?;

        let mut clocks = SlaClocks {
            tenant: policies.tenant().clone(),
            ticket,
            calendars: calendars
                .iter()
                .map(|(name, calendar)| (name.clone(), Arc::new(calendar.clone())))
                .collect(),
            always: Arc::new(Calendar::always()),
            policy,
            opening,
            opened_at,
            priority: opening.priority,
            support_tier: SupportTier::Tier1,
            answered: false,
            waiting_on_customer: false,
            resolved: false,
            closed: false,
            last_fact_at: opened_at,
            clocks: Vec::new(),
        };
        clocks.start(SlaTarget::FirstResponse, 1, opened_at);
        if opening.is_complaint {
            clocks.start(SlaTarget::ComplaintAcknowledgement, 1, opened_at);
        }
        clocks.start(SlaTarget::Resolution, 1, opened_at);
        Ok(clocks)
    }

    /// The clocks of the ticket whose events, first to last, are `events`; the first must be
    /// its `ticket.opened`.
    pub fn replay<'a>(
        policies: &PolicyHistory,
        calendars: &Calendars,
        events: impl IntoIterator<Item = &'a EventEnvelope>,
    ) -> Result<SlaClocks, ClockError> {
        let mut events = events.into_iter();
        let Some(first) = events.next() else {
            return Err(ClockError::NotOpened { event_type: "no event" });
        };
        let EventPayload::Opened(opened) = &first.payload else {
            return Err(ClockError::NotOpened { event_type: first.event_type() });
        };
        if &first.tenant != policies.tenant() {
            return Err(ClockError::ForeignEvent {
                expected: format!("of tenant {}", policies.tenant()),
                found: format!("{} of tenant {}", first.ticket_id, first.tenant),
            });
        }
        let opened_at =
            first.occurred_at.ok_or(ClockError::UnknownEventTime { version: first.version })?;
        let opening = Opening {
            priority: opened.priority,
            customer_tier: opened.customer_tier,
            is_complaint: opened.is_complaint,
        };

        let mut clocks = SlaClocks::open(first.ticket_id, opened_at, opening, policies, calendars)?;
        for event in events {
            clocks.apply_event(event)?;
        }
        Ok(clocks)
    }

    /// Feeds one of the ticket's events after its opening; events the SLA does not use are
    /// accepted and ignored.
    pub fn apply_event(&mut self, event: &EventEnvelope) -> Result<(), ClockError> {
        if event.ticket_id != self.ticket || event.tenant != self.tenant {
            return Err(ClockError::ForeignEvent {
                expected: format!("{} of tenant {}", self.ticket, self.tenant),
                found: format!("{} of tenant {}", event.ticket_id, event.tenant),
            });
        }
        if matches!(event.payload, EventPayload::Opened(_)) {
            return Err(ClockError::AlreadyOpened);
        }
        let Some(fact) = TicketFact::from_payload(&event.payload) else {
            return Ok(());
        };
        let at =
            event.occurred_at.ok_or(ClockError::UnknownEventTime { version: event.version })?;
        self.apply(at, fact);
        Ok(())
    }

    /// Feeds one fact that happened at `at`.
    pub fn apply(&mut self, at: DateTime<Utc>, fact: TicketFact) {
        if self.closed {
            return;
        }
        let at = at.max(self.last_fact_at);
        self.last_fact_at = at;

        match fact {
            TicketFact::Acknowledged => self.agent_responded(at),
            TicketFact::CustomerAsked => {
                self.agent_responded(at);
                if !self.resolved {
                    self.waiting_on_customer = true;
                    self.each(SlaTarget::Resolution, |clock| clock.pause(at));
                }
            }
            TicketFact::CustomerReplied => {
                if self.waiting_on_customer {
                    self.waiting_on_customer = false;
                    self.each(SlaTarget::Resolution, |clock| clock.resume(at));
                }
                let cycle_running = self
                    .clocks
                    .iter()
                    .any(|c| c.target == SlaTarget::NextResponse && c.is_running());
                if self.answered && !self.resolved && !cycle_running {
                    let cycle = 1 + self
                        .clocks
                        .iter()
                        .filter(|c| c.target == SlaTarget::NextResponse)
                        .count() as u32;
                    self.start(SlaTarget::NextResponse, cycle, at);
                }
            }
            TicketFact::PriorityChanged { to } => {
                self.priority = to;
                for index in 0..self.clocks.len() {
                    let clock = &self.clocks[index];
                    if clock.is_stopped() || clock.target == SlaTarget::ComplaintAcknowledgement {
                        continue;
                    }
                    let (within, measure, calendar) = self.target_of(clock.target);
                    let clock = &mut self.clocks[index];
                    (clock.within, clock.measure, clock.calendar) = (within, measure, calendar);
                }
            }
            TicketFact::Escalated { to } => self.support_tier = to,
            TicketFact::Resolved => {
                self.agent_responded(at);
                self.resolved = true;
                self.waiting_on_customer = false;
                self.each(SlaTarget::Resolution, |clock| clock.stop(at));
            }
            TicketFact::Reopened => {
                if self.resolved {
                    self.resolved = false;
                    self.each(SlaTarget::Resolution, |clock| clock.resume(at));
                }
            }
            TicketFact::Closed => {
                self.closed = true;
                for clock in &mut self.clocks {
                    clock.stop(at);
                }
            }
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn ticket(&self) -> TicketId {
        self.ticket
    }

    pub fn opened_at(&self) -> DateTime<Utc> {
        self.opened_at
    }

    /// The policy version the ticket is measured under: record it on the ticket.
    pub fn policy_version(&self) -> u32 {
        self.policy.version
    }

    pub fn priority(&self) -> Priority {
        self.priority
    }

    pub fn support_tier(&self) -> SupportTier {
        self.support_tier
    }

    /// Every clock at `now`: first response, complaint acknowledgement (for complaints),
    /// resolution, then each next-response cycle, in the order they started.
    ///
    /// `now` measures the running stretch; facts already fed count even if timed after `now`.
    /// Fails with [`ClockError::Calendar`] when a target's calendar cannot place a due time.
    pub fn report(&self, now: DateTime<Utc>) -> Result<Vec<ClockReport>, ClockError> {
        self.clocks.iter().map(|clock| self.report_clock(clock, now)).collect()
    }

    /// The clock of `target` at `now`, the latest cycle for next response; `None` if it never
    /// started.
    pub fn clock(
        &self,
        target: SlaTarget,
        now: DateTime<Utc>,
    ) -> Result<Option<ClockReport>, ClockError> {
        let clock = self.clocks.iter().rev().find(|clock| clock.target == target);
        clock.map(|clock| self.report_clock(clock, now)).transpose()
    }

    /// True if and only if the clock of `target` and `cycle` is counting time now: started,
    /// neither paused nor stopped. A breached clock may still be running.
    pub fn is_running(&self, target: SlaTarget, cycle: u32) -> bool {
        self.clocks.iter().any(|c| c.target == target && c.cycle == cycle && c.is_running())
    }

    /// Warnings and breaches due at `now`, whether or not they were due before: the caller
    /// emits each [`SlaSignal::key`] once. Warnings come before breaches, per clock.
    pub fn due_events(&self, now: DateTime<Utc>) -> Result<Vec<SlaSignal>, ClockError> {
        let mut signals = Vec::new();
        for report in self.report(now)? {
            if let Some(at) = report.warning_at.filter(|at| *at <= now) {
                signals.push(self.signal(&report, SignalKind::Warning, at));
            }
            if report.status == ClockStatus::Breached {
                let at = report.due_at.expect("a breached clock has a due time");
                signals.push(self.signal(&report, SignalKind::Breach, at));
            }
        }
        Ok(signals)
    }

    /// The earliest instant after `now` at which [`SlaClocks::due_events`] will have a new
    /// signal, given no further facts: when to wake a timer.
    pub fn next_due(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, ClockError> {
        let reports = self.report(now)?;
        let next = reports
            .iter()
            .filter(|report| report.stopped_at.is_none())
            .flat_map(|report| [report.warning_at, report.due_at])
            .flatten()
            .filter(|at| *at > now)
            .min();
        Ok(next)
    }

    fn report_clock(&self, clock: &Clock, now: DateTime<Utc>) -> Result<ClockReport, ClockError> {
        let calendar_error = |source| ClockError::Calendar { target: clock.target, source };
        let warning_at = clock
            .instant_of(self.policy.policy.warning_after(clock.within))
            .map_err(calendar_error)?;
        let due_at = clock.instant_of(clock.within).map_err(calendar_error)?;
        let elapsed = clock.elapsed(now);

        let status = match (clock.stopped_at, due_at) {
            (Some(stopped), Some(due)) if due < stopped => ClockStatus::Breached,
            (Some(_), _) => ClockStatus::Met,
            (None, Some(due)) if due <= now => ClockStatus::Breached,
            (None, _) if clock.is_running() => ClockStatus::Running,
            (None, _) => ClockStatus::Paused,
        };
        Ok(ClockReport {
            target: clock.target,
            cycle: clock.cycle,
            status,
            within: clock.within,
            measured_in: clock.measure.clone(),
            started_at: clock.runs[0].from,
            stopped_at: clock.stopped_at,
            warning_at,
            due_at,
            elapsed,
            remaining: clock.within - elapsed,
        })
    }

    fn signal(&self, report: &ClockReport, kind: SignalKind, at: DateTime<Utc>) -> SlaSignal {
        let rule = self.policy.policy.escalation(
            report.target,
            kind,
            self.priority,
            self.opening.customer_tier,
        );
        let escalation = rule.and_then(|rule| {
            let to = rule.action.next_tier(self.support_tier)?;
            Some(Escalation { action: rule.action, from: self.support_tier, to })
        });
        SlaSignal {
            tenant: self.tenant.clone(),
            ticket: self.ticket,
            target: report.target,
            cycle: report.cycle,
            kind,
            at,
            policy_version: self.policy.version,
            escalation,
        }
    }

    /// The target, calendar name and calendar of `target` at the current priority.
    fn target_of(&self, target: SlaTarget) -> (Duration, Measure, Arc<Calendar>) {
        let (within, measure) =
            self.policy.policy.target(target, self.priority, self.opening.customer_tier);
        let calendar = match measure {
            Measure::Always => Arc::clone(&self.always),
            Measure::Calendar(name) => Arc::clone(
                self.calendars.get(name).expect("calendars were checked against the policy"),
            ),
        };
        (within, measure.clone(), calendar)
    }

    fn start(&mut self, target: SlaTarget, cycle: u32, at: DateTime<Utc>) {
        let (within, measure, calendar) = self.target_of(target);
        self.clocks.push(Clock {
            target,
            cycle,
            within,
            measure,
            calendar,
            runs: vec![Run { from: at, to: None }],
            stopped_at: None,
        });
    }

    fn each(&mut self, target: SlaTarget, change: impl FnMut(&mut Clock)) {
        self.clocks.iter_mut().filter(|clock| clock.target == target).for_each(change);
    }

    /// An agent response meets first response and complaint acknowledgement if they still run,
    /// and ends the running next-response cycle.
    fn agent_responded(&mut self, at: DateTime<Utc>) {
        self.answered = true;
        for clock in &mut self.clocks {
            let answers = matches!(
                clock.target,
                SlaTarget::FirstResponse
                    | SlaTarget::ComplaintAcknowledgement
                    | SlaTarget::NextResponse
            );
            if answers && clock.is_running() {
                clock.stop(at);
            }
        }
    }
}
