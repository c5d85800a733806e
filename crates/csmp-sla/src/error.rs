//! The typed errors of the SLA engine, each with the way a caller should handle it.
//!
//! Owns [`CalendarError`], [`PolicyError`] and [`ClockError`] and the [`ErrorKind`] they map to.
//! Nothing here retries: every failure is a property of the configuration or of the facts given,
//! so the same call fails the same way until one of them changes.

use chrono::{DateTime, Duration, Utc};

use crate::policy::SlaTarget;

/// What kind of failure an error is; a gRPC layer maps each kind to one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A calendar, policy or amount is malformed. Do not retry unchanged (`INVALID_ARGUMENT`,
    /// naming the field the error names).
    InvalidInput,
    /// The configuration is valid but cannot answer the question: no working time, no policy
    /// in force, facts in an order the clocks cannot use. Retry only after fixing the
    /// configuration (`FAILED_PRECONDITION`).
    FailedPrecondition,
}

/// A calendar that cannot be built, or a business-time computation it cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    /// The time zone is not an IANA name known to the time zone database (`INVALID_ARGUMENT`,
    /// field `time_zone`).
    #[error("invalid time_zone: {name:?} is not an IANA time zone name")]
    UnknownTimeZone { name: String },
    /// An opening interval does not parse as `HH:MM-HH:MM` (`INVALID_ARGUMENT`, field
    /// `opening_hours.<day>`).
    #[error("invalid opening_hours.{day}: {text:?}: {reason}")]
    InvalidInterval { day: &'static str, text: String, reason: String },
    /// An opening interval starts and ends at the same time (`INVALID_ARGUMENT`).
    #[error("invalid opening_hours.{day}: {interval} is empty")]
    EmptyInterval { day: &'static str, interval: String },
    /// Two opening intervals share working time, possibly across midnight (`INVALID_ARGUMENT`).
    #[error("invalid opening_hours: {first} overlaps {second}")]
    OverlappingIntervals { first: String, second: String },
    /// A holiday file is not iCalendar this importer accepts; `line` is the 1-based line of
    /// the input where the problem is (`INVALID_ARGUMENT`, field `holidays`).
    #[error("invalid holidays: line {line}: {reason}")]
    Ical { line: usize, reason: String },
    /// A business-time amount below zero (`INVALID_ARGUMENT`); a caller bug, never retried.
    #[error("business time to add must not be negative, got {} seconds", amount.num_seconds())]
    NegativeAmount { amount: Duration },
    /// The calendar has no opening hours on any day of the week, so no amount of business
    /// time ever elapses (`FAILED_PRECONDITION`: give the calendar opening hours).
    #[error("calendar has no opening hours on any day of the week")]
    NoOpeningHours,
    /// Holidays leave no working time for `days` days in a row from `from`
    /// (`FAILED_PRECONDITION`: remove holidays or add opening hours).
    #[error("calendar has no working time within {days} days from {from}")]
    NoWorkingTime { from: DateTime<Utc>, days: u32 },
    /// The amount of business time does not fit before the search horizon, `years` after
    /// `from` (`INVALID_ARGUMENT`: the amount is far larger than any SLA target).
    #[error(
        "{} seconds of business time do not elapse within {years} years from {from}",
        amount.num_seconds()
    )]
    BeyondHorizon { amount: Duration, from: DateTime<Utc>, years: u32 },
}

impl CalendarError {
    /// The kind of failure, which decides the gRPC status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CalendarError::NoOpeningHours | CalendarError::NoWorkingTime { .. } => {
                ErrorKind::FailedPrecondition
            }
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// An SLA policy or policy history that is malformed, or has no answer for a ticket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A target is zero or negative; `target` names it as `first_response.critical.enterprise`
    /// (`INVALID_ARGUMENT`).
    #[error("invalid {target}: must be longer than zero, got {} seconds", within.num_seconds())]
    InvalidTarget { target: String, within: Duration },
    /// The warning share is not within 1 to 99 percent (`INVALID_ARGUMENT`, field
    /// `warning_percent`).
    #[error("invalid warning_percent: {0} is not within 1 to 99")]
    InvalidWarningPercent(u8),
    /// A target is measured under a calendar the tenant does not have (`INVALID_ARGUMENT` when
    /// configuring; `FAILED_PRECONDITION` when a stored calendar was removed).
    #[error("{target} is measured under calendar {name:?}, which does not exist")]
    UnknownCalendar { target: String, name: String },
    /// Versions must rise, and take effect later, one after the other (`INVALID_ARGUMENT`).
    #[error(
        "policy version {version} effective from {effective_from} does not follow version \
         {previous} effective from {previous_from}"
    )]
    OutOfOrder {
        version: u32,
        effective_from: DateTime<Utc>,
        previous: u32,
        previous_from: DateTime<Utc>,
    },
    /// No version was in force when the ticket opened (`FAILED_PRECONDITION`: add a version
    /// effective from that time or earlier).
    #[error("no SLA policy version is in force at {at}")]
    NoneInForce { at: DateTime<Utc> },
}

impl PolicyError {
    /// The kind of failure, which decides the gRPC status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PolicyError::NoneInForce { .. } => ErrorKind::FailedPrecondition,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// A ticket's SLA clocks could not take a fact.
///
/// The clocks are left as they were before the failing fact, so a caller may log the error
/// and go on with the ticket's next fact, or mark the ticket's SLA as not measurable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClockError {
    /// The calendar of `target` cannot place its due time; `source` says how to handle it.
    #[error("failed to compute the {target} due time: {source}")]
    Calendar { target: SlaTarget, source: CalendarError },
    /// The tenant's policies have no answer for this ticket; see the source.
    #[error("failed to pick the SLA policy: {0}")]
    Policy(#[from] PolicyError),
    /// A replay's first event is not `ticket.opened` (`FAILED_PRECONDITION`: replay from the
    /// ticket's first event).
    #[error("cannot start SLA clocks from {event_type}: the first event must be ticket.opened")]
    NotOpened { event_type: &'static str },
    /// A second `ticket.opened` for the same ticket (`FAILED_PRECONDITION`).
    #[error("ticket is already opened")]
    AlreadyOpened,
    /// An event of another ticket was fed to these clocks (`FAILED_PRECONDITION`: a routing
    /// bug in the caller).
    #[error("event of ticket {found} fed to the clocks of ticket {expected}")]
    ForeignEvent { expected: String, found: String },
    /// The event's `occurred_at` is unknown, so no duration can be measured from it
    /// (`FAILED_PRECONDITION`: imported history without times has no SLA).
    #[error("event version {version} has no occurred_at; SLA clocks need event times")]
    UnknownEventTime { version: u64 },
}

impl ClockError {
    /// The kind of failure, which decides the gRPC status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClockError::Calendar { source, .. } => source.kind(),
            ClockError::Policy(e) => e.kind(),
            _ => ErrorKind::FailedPrecondition,
        }
    }
}
