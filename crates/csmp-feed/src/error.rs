//! Why a subscription fails, and the gRPC status of each failure.
//!
//! A failure before the first message ends the call with its status; a failure after it ends the
//! response stream with its status. Either way the client subscribes again after the last
//! position it received, once the code says a retry can succeed.

use std::error::Error as StdError;

use async_nats::jetstream::ErrorCode;
use tonic::Status;

/// A boxed error from the NATS client.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// What kind of failure a [`FeedError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedErrorKind {
    /// The request is at fault. Permanent: do not retry unchanged (`INVALID_ARGUMENT`).
    InvalidArgument,
    /// NATS or the stream is not there. Transient: subscribe again later (`UNAVAILABLE`).
    Unavailable,
    /// JetStream refused a request. Permanent until an operator acts (`INTERNAL`).
    Rejected,
}

/// A subscription could not start or could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// A request field is not valid; `message` names it. Fix the request; a gRPC service
    /// answers `INVALID_ARGUMENT`.
    #[error("{message}")]
    InvalidArgument { field: &'static str, message: String },
    /// NATS is unreachable or did not answer in time, or the event stream does not exist yet
    /// (no command has been stored). Subscribe again later, after the last position received;
    /// a gRPC service answers `UNAVAILABLE`.
    #[error("event feed unavailable: failed to {operation}: {source}")]
    Unavailable {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    /// JetStream answered a request with an error. Do not retry; a gRPC service answers
    /// `INTERNAL` and an operator must look.
    #[error("event store refused to {operation}: {source}")]
    Rejected {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
}

impl FeedError {
    pub fn kind(&self) -> FeedErrorKind {
        match self {
            FeedError::InvalidArgument { .. } => FeedErrorKind::InvalidArgument,
            FeedError::Unavailable { .. } => FeedErrorKind::Unavailable,
            FeedError::Rejected { .. } => FeedErrorKind::Rejected,
        }
    }

    /// Whether subscribing again later can succeed with the same request.
    pub fn is_transient(&self) -> bool {
        self.kind() == FeedErrorKind::Unavailable
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        FeedError::InvalidArgument { field, message: message.into() }
    }

    /// Sorts a failed NATS request by the JetStream API error it was answered with, if any: such
    /// an answer is a refusal, except "stream not found", which lasts only until the command
    /// service has started; no answer (time-out, no responders, connection lost) means NATS is
    /// unavailable.
    pub(crate) fn from_nats(
        operation: &'static str,
        answer: Option<ErrorCode>,
        source: impl Into<BoxError>,
    ) -> Self {
        let source = source.into();
        match answer {
            Some(code) if code != ErrorCode::STREAM_NOT_FOUND => {
                FeedError::Rejected { operation, source }
            }
            _ => FeedError::Unavailable { operation, source },
        }
    }
}

impl From<FeedError> for Status {
    fn from(err: FeedError) -> Status {
        match err.kind() {
            FeedErrorKind::InvalidArgument => Status::invalid_argument(err.to_string()),
            FeedErrorKind::Unavailable => Status::unavailable(err.to_string()),
            FeedErrorKind::Rejected => Status::internal(err.to_string()),
        }
    }
}
