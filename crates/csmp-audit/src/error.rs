//! What auditing fails with. Each variant says how a caller handles it.
//!
//! A broken stream is not an error here: [`verify`](crate::verify) reports altered, missing and
//! reordered events as findings. These errors mean the audit itself could not be done.

use chrono::{DateTime, Utc};
use csmp_domain::ticket::HistoryError;
use csmp_domain::{TenantId, TicketId};

/// A boxed error from the NATS client.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What kind of failure an [`AuditError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditErrorKind {
    /// NATS is unreachable or slow. Transient: retry later.
    Unavailable,
    /// The stream, or the ticket asked about, is not there. Check the names given.
    NotFound,
    /// The input asked for something impossible. Fix the input.
    InvalidInput,
    /// Stored events cannot be read as a ticket's history. Run `csmp audit verify`.
    BrokenHistory,
    /// The output could not be written.
    Output,
}

/// Auditing failed; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// NATS is unreachable, did not answer in time, or JetStream refused a read. Retry when
    /// NATS is reachable.
    #[error("event store unavailable: failed to {operation}")]
    Unavailable {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    /// No stream of this name: the stream name (`--stream`) is wrong or the store was never
    /// set up. Do not retry; an audit never creates the stream.
    #[error("stream {stream} does not exist")]
    StreamNotFound { stream: String },
    /// The ticket has no events. Check the tenant and the ticket id.
    #[error("ticket {ticket} of tenant {tenant} has no events")]
    TicketNotFound { tenant: TenantId, ticket: TicketId },
    /// An export range whose start is not before its end. Fix the range.
    #[error("the range start {from} is not before its end {to}")]
    InvalidRange { from: DateTime<Utc>, to: DateTime<Utc> },
    /// A stored event of the ticket is not an event this version understands, so the ticket's
    /// state cannot be rebuilt. Do not retry; run `csmp audit verify`.
    #[error("the event at stream position {position} cannot be read: {detail}")]
    Unreadable { position: u64, detail: String },
    /// The ticket's events do not replay: a version is missing or out of place. Do not retry;
    /// run `csmp audit verify`.
    #[error("ticket {ticket} of tenant {tenant} does not replay at stream position {position}")]
    Replay {
        tenant: TenantId,
        ticket: TicketId,
        position: u64,
        #[source]
        source: HistoryError,
    },
    /// Writing the output failed, for example because the reader of a pipe went away (see
    /// [`AuditError::is_broken_pipe`]).
    #[error("failed to write the output")]
    Output(#[from] std::io::Error),
}

impl AuditError {
    pub fn kind(&self) -> AuditErrorKind {
        match self {
            AuditError::Unavailable { .. } => AuditErrorKind::Unavailable,
            AuditError::StreamNotFound { .. } | AuditError::TicketNotFound { .. } => {
                AuditErrorKind::NotFound
            }
            AuditError::InvalidRange { .. } => AuditErrorKind::InvalidInput,
            AuditError::Unreadable { .. } | AuditError::Replay { .. } => {
                AuditErrorKind::BrokenHistory
            }
            AuditError::Output(_) => AuditErrorKind::Output,
        }
    }

    /// Whether writing the output failed because its reader went away, as when the output is
    /// piped into `head`. A command-line caller treats this as the normal end of the output.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, AuditError::Output(err) if err.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// Whether trying again later can succeed.
    pub fn is_transient(&self) -> bool {
        self.kind() == AuditErrorKind::Unavailable
    }

    pub(crate) fn unavailable(
        operation: &'static str,
    ) -> impl FnOnce(BoxError) -> AuditError + 'static {
        move |source| AuditError::Unavailable { operation, source }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind};

    use super::*;

    #[test]
    fn is_broken_pipe_is_true_only_for_an_output_whose_reader_went_away() {
        let closed = AuditError::Output(Error::from(ErrorKind::BrokenPipe));
        let full = AuditError::Output(Error::from(ErrorKind::StorageFull));
        let down = AuditError::unavailable("read the stream")("timed out".into());

        assert_eq!(
            [closed.is_broken_pipe(), full.is_broken_pipe(), down.is_broken_pipe()],
            [true, false, false]
        );
        assert_eq!(closed.kind(), AuditErrorKind::Output);
    }
}
