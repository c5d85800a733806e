//! The SLA engine: business-hours calendars, versioned SLA policies and per-ticket SLA clocks.
//!
//! Pure domain logic like `csmp-domain`, on which it builds: no I/O, and no clock of its own.
//! Every instant comes in as an argument, so replaying a ticket's events with the same `now`
//! gives the same due times and signals. Storing policies, calendars and clock state, and
//! emitting the signals, belong to the services that use this crate.
//!
//! Layout:
//! - [`calendar`]: time zone, weekly opening hours and holidays; business-time arithmetic
//!   that is exact to the second across DST changes;
//! - [`ical`]: holidays from iCalendar text;
//! - [`policy`]: targets by priority and customer tier, warning share, auto-escalation rules,
//!   and the version history that picks a ticket's policy;
//! - [`clocks`]: the per-ticket state machine, its reports and its due signals;
//! - [`error`]: the typed errors and how to handle each.
//!
//! The rules, each with a worked example, are in `docs/sla-business-hours.md`.

pub mod calendar;
pub mod clocks;
pub mod error;
pub mod ical;
pub mod policy;

pub use calendar::{Calendar, OpeningInterval, WeeklyHours};
pub use clocks::{ClockReport, ClockStatus, Escalation, Opening, SlaClocks, SlaSignal, TicketFact};
pub use error::{CalendarError, ClockError, ErrorKind, PolicyError};
pub use policy::{
    Calendars, EscalationAction, EscalationRule, Measure, PolicyHistory, PolicyVersion, SignalKind,
    SlaPolicy, SlaTarget, Target, TargetTable, TierTargets,
};
