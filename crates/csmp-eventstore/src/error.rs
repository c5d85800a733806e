//! Errors of loading and appending events, each documented with how a caller handles it.
//!
//! Both error types sort every failure into a kind: a dependency that is down or slow (retry
//! later), a lost race for a ticket (reload and decide again), and a refusal that only an
//! operator can fix. Services map the kinds to gRPC codes; they never inspect NATS errors.

use std::error::Error as StdError;

use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::ErrorCode;
use async_nats::RequestErrorKind;

use crate::codec::DecodeError;
use crate::config::StreamSetupError;

/// A boxed error from the NATS client.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// NATS is unreachable or did not answer in time. Transient: retry later (`UNAVAILABLE`).
    Unavailable,
    /// JetStream refused the request. Permanent until an operator acts (`INTERNAL`).
    Rejected,
    /// A stored message is not an event this version understands (`INTERNAL`).
    Corrupt,
}

/// Reading the stream failed. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// NATS is unreachable or did not answer in time. Retry later; a gRPC service answers
    /// `UNAVAILABLE`.
    #[error("event store unavailable: failed to {operation}: {source}")]
    Unavailable {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    /// JetStream answered with an error, for example because the stream is missing. Do not
    /// retry; a gRPC service answers `INTERNAL` and an operator must look.
    #[error("event store refused to {operation}: {source}")]
    Rejected {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    /// A stored message is not a valid event. Do not retry (`INTERNAL`); stored events are never
    /// rewritten, so an operator must look at the message.
    #[error(transparent)]
    Corrupt(#[from] DecodeError),
    /// The stream could not be created or brought to our configuration at start-up. Retry when
    /// NATS is reachable (`UNAVAILABLE`).
    #[error(transparent)]
    Setup(#[from] StreamSetupError),
}

impl StoreError {
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::Unavailable { .. } | StoreError::Setup(_) => StoreErrorKind::Unavailable,
            StoreError::Rejected { .. } => StoreErrorKind::Rejected,
            StoreError::Corrupt(_) => StoreErrorKind::Corrupt,
        }
    }

    /// Whether trying again later can succeed.
    pub fn is_transient(&self) -> bool {
        self.kind() == StoreErrorKind::Unavailable
    }

    /// Sorts a failed raw message read: a JetStream answer is a refusal, anything else (time-out,
    /// no responders, connection lost) means NATS is unavailable.
    pub(crate) fn from_read(
        operation: &'static str,
        err: async_nats::jetstream::stream::RawMessageError,
    ) -> Self {
        match err.kind() {
            LastRawMessageErrorKind::JetStream(_)
            | LastRawMessageErrorKind::InvalidSubject
            | LastRawMessageErrorKind::NoMessageFound => {
                StoreError::Rejected { operation, source: Box::new(err) }
            }
            LastRawMessageErrorKind::Other => StoreError::from_source(operation, Box::new(err)),
        }
    }

    /// Sorts any NATS client error by what its chain of sources contains.
    pub(crate) fn from_source(operation: &'static str, source: BoxError) -> Self {
        if is_jetstream_refusal(source.as_ref()) {
            StoreError::Rejected { operation, source }
        } else {
            StoreError::Unavailable { operation, source }
        }
    }
}

/// What kind of failure an [`AppendError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppendErrorKind {
    /// Another append to the ticket came first. Reload, decide again, retry.
    Conflict,
    /// NATS is unreachable or the acknowledgement did not come in time. Transient.
    Unavailable,
    /// JetStream refused the event for another reason. Permanent.
    Rejected,
}

/// Appending an event failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The ticket's last stream sequence is no longer `expected`: another writer appended to it
    /// first, and nothing was written. Reload the ticket, decide the command again and retry;
    /// when the retries run out a gRPC service answers `ABORTED`.
    #[error("ticket events on {subject} have moved past stream position {expected}")]
    Conflict { subject: String, expected: u64 },
    /// NATS is unreachable or did not acknowledge in time. The event may or may not be stored:
    /// forget any cached state of the ticket. Sending the same envelope again is safe, as the
    /// message id makes JetStream drop a second copy within its duplicate window; a gRPC service
    /// answers `UNAVAILABLE` and the client retries with the same request id.
    #[error("event store unavailable: failed to append to {subject}: {source}")]
    Unavailable {
        subject: String,
        #[source]
        source: BoxError,
    },
    /// JetStream refused the event for a reason a retry does not change: the stream is missing
    /// or full, the message is too large, or a header value is not valid. Nothing was written;
    /// do not retry (`INTERNAL`).
    #[error("event store refused the append to {subject}: {source}")]
    Rejected {
        subject: String,
        #[source]
        source: BoxError,
    },
}

impl AppendError {
    pub fn kind(&self) -> AppendErrorKind {
        match self {
            AppendError::Conflict { .. } => AppendErrorKind::Conflict,
            AppendError::Unavailable { .. } => AppendErrorKind::Unavailable,
            AppendError::Rejected { .. } => AppendErrorKind::Rejected,
        }
    }

    /// Whether sending the same envelope again later can succeed.
    pub fn is_transient(&self) -> bool {
        self.kind() == AppendErrorKind::Unavailable
    }
}

/// Whether an error chain holds an error answer of the JetStream API (other than "wrong last
/// sequence", which callers sort out before).
fn is_jetstream_refusal(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(js) = err.downcast_ref::<async_nats::jetstream::Error>() {
            return js.error_code() != ErrorCode::STREAM_WRONG_LAST_SEQUENCE;
        }
        if let Some(request) = err.downcast_ref::<async_nats::RequestError>() {
            return matches!(
                request.kind(),
                RequestErrorKind::InvalidSubject | RequestErrorKind::MaxPayloadExceeded
            );
        }
        current = err.source();
    }
    false
}
