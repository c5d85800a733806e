//! Errors a command can fail with, each with the way a caller should handle it.

use crate::types::TicketStatus;

/// What kind of failure a [`DomainError`] is; the gRPC layer maps each kind to one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command itself is malformed. Do not retry unchanged (`INVALID_ARGUMENT`).
    InvalidInput,
    /// The ticket does not exist for this tenant. Do not retry (`NOT_FOUND`).
    NotFound,
    /// The ticket is in a state that does not allow the command (`FAILED_PRECONDITION`).
    WrongState,
    /// The actor may not do this, for example a refund approval by an agent
    /// (`PERMISSION_DENIED`).
    NotPermitted,
}

/// A command rejected by the ticket's rules. Nothing was recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A field is missing, malformed or out of range; `field` names it as the API spells it.
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// A text field is longer than its documented limit.
    #[error("invalid {field}: {len} characters long, the limit is {max}")]
    TooLong { field: &'static str, len: usize, max: usize },
    /// No ticket with this id exists for the tenant; a customer gets this for another
    /// customer's ticket too.
    #[error("ticket not found")]
    TicketNotFound,
    /// An open command named a ticket id that already has events.
    #[error("ticket already exists")]
    TicketExists,
    /// The command is not allowed while the ticket is in `status`.
    #[error("cannot {action} a ticket that is {status}")]
    InvalidTransition { action: &'static str, status: TicketStatus },
    /// The ticket has already had its first agent response.
    #[error("ticket is already acknowledged")]
    AlreadyAcknowledged,
    /// The command would change nothing (same agent, same priority).
    #[error("{what} is already {value}")]
    NoChange { what: &'static str, value: String },
    /// Escalation only moves up, one or more tiers, and never past tier 3.
    #[error("cannot escalate from {from} to {to}: escalation only moves to a higher tier")]
    EscalationNotUpward { from: String, to: String },
    /// Feedback was already given for the current resolution.
    #[error("feedback was already given for this resolution")]
    FeedbackAlreadyGiven,
    /// The refund id is already used on this ticket.
    #[error("refund {0} already exists on this ticket")]
    RefundExists(String),
    /// No refund with this id is waiting for approval on this ticket.
    #[error("no refund {0} awaits approval on this ticket")]
    RefundNotPending(String),
    /// The ticket cannot close while this refund waits for a lead (`FAILED_PRECONDITION`); retry
    /// once the refund is approved or rejected.
    #[error("refund {0} awaits a lead's approval; approve or reject it before closing")]
    RefundAwaitingApproval(String),
    /// The actor's role may not issue this command.
    #[error("{role} may not {action} a ticket")]
    RoleNotAllowed { role: String, action: &'static str },
    /// Only a lead approves or rejects a refund that waits for approval, whatever the amount and
    /// whatever the other role's own refund limit.
    #[error("only a lead may {decision} a refund awaiting approval; {role} may not")]
    ApprovalNeedsLead { role: String, decision: &'static str },
    /// This SLA signal is already in the ticket's history (`FAILED_PRECONDITION`); the timer
    /// treats it as done.
    #[error("the {kind} of the {target} clock (cycle {cycle}) is already recorded")]
    SlaSignalRecorded { target: String, cycle: u32, kind: String },
    /// Whoever asked for a refund may not approve it (`PERMISSION_DENIED`); another lead must.
    #[error("refund {0} was requested by the approver; another lead must approve it")]
    SelfApproval(String),
    /// The request id was already used on this ticket for a different command.
    #[error("request_id was already used on this ticket for {0}")]
    RequestIdReused(String),
    /// The request id was already used on this ticket for the same command with other values
    /// or by another actor: a retry must repeat its request exactly.
    #[error(
        "request_id was already used on this ticket for a command that recorded {0} with other \
         values or by another actor"
    )]
    RequestIdReusedWithOtherValues(String),
}

impl DomainError {
    /// The kind of failure, which decides the gRPC status and whether a retry can help.
    pub fn kind(&self) -> ErrorKind {
        match self {
            DomainError::InvalidField { .. }
            | DomainError::TooLong { .. }
            | DomainError::RequestIdReused(_)
            | DomainError::RequestIdReusedWithOtherValues(_) => ErrorKind::InvalidInput,
            DomainError::TicketNotFound => ErrorKind::NotFound,
            DomainError::RoleNotAllowed { .. }
            | DomainError::ApprovalNeedsLead { .. }
            | DomainError::SelfApproval(_) => ErrorKind::NotPermitted,
            DomainError::TicketExists
            | DomainError::InvalidTransition { .. }
            | DomainError::AlreadyAcknowledged
            | DomainError::NoChange { .. }
            | DomainError::EscalationNotUpward { .. }
            | DomainError::FeedbackAlreadyGiven
            | DomainError::RefundExists(_)
            | DomainError::RefundNotPending(_)
            | DomainError::RefundAwaitingApproval(_)
            | DomainError::SlaSignalRecorded { .. } => ErrorKind::WrongState,
        }
    }

    /// The request field at fault, for `InvalidInput` errors.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            DomainError::InvalidField { field, .. } | DomainError::TooLong { field, .. } => {
                Some(field)
            }
            DomainError::RequestIdReused(_) | DomainError::RequestIdReusedWithOtherValues(_) => {
                Some("request_id")
            }
            _ => None,
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DomainError::InvalidField { field, reason: reason.into() }
    }
}

/// Most characters of a refused value that an error message repeats.
pub const QUOTED_CHARS: usize = 64;

/// A refused value as an error message shows it: quoted, and cut after [`QUOTED_CHARS`]
/// characters with its full length, so that a huge value cannot swell the message (gRPC caps
/// the size of the status it travels in).
pub fn quoted(raw: &str) -> String {
    let count = raw.chars().count();
    if count <= QUOTED_CHARS {
        return format!("{raw:?}");
    }
    let head: String = raw.chars().take(QUOTED_CHARS).collect();
    format!("{head:?}... ({count} characters)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_keeps_short_values_and_cuts_long_ones_with_their_length() {
        assert_eq!(quoted("Billing"), "\"Billing\"");
        let long = "é".repeat(9_000);
        let shown = quoted(&long);
        assert_eq!(shown, format!("\"{}\"... (9000 characters)", "é".repeat(64)));
    }
}
