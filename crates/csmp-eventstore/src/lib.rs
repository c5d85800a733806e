//! The event store: every ticket's history on one NATS JetStream stream.
//!
//! One stream (file storage, no limits, deletes and purges denied) holding the subjects
//! `<prefix>.>`; each ticket's events on `<prefix>.<tenant>.ticket.<ticket id>`, so that the
//! `Nats-Expected-Last-Subject-Sequence` header guards every append to a ticket. The message body
//! is the JSON [`EventEnvelope`](csmp_domain::EventEnvelope), carrying its place in the ticket's
//! hash chain; the event type and its schema version also travel in the `Csmp-Event-Type` and
//! `Csmp-Schema-Version` headers so that consumers can filter without parsing.
//!
//! This crate owns the stream's configuration, the wire format, and reading and appending one
//! ticket's events. It knows nothing of commands or read models.
//!
//! Layout:
//! - [`config`]: stream and subject names, and the idempotent creation of the stream;
//! - [`codec`]: the message body and headers, the hash of pre-chain events and the upcast of
//!   older schema versions on reading;
//! - [`store`]: [`EventStore`], which loads a ticket's events and appends the next one;
//! - [`error`]: what loading and appending fail with, and how a caller handles each.

pub mod codec;
pub mod config;
pub mod error;
pub mod store;

pub use codec::{
    decode, decode_value, encode, stored_hash, DecodeError, EVENT_TYPE_HEADER,
    SCHEMA_VERSION_HEADER,
};
pub use config::{ensure_stream, EventStoreConfig, StreamSetupError};
pub use error::{AppendError, AppendErrorKind, StoreError, StoreErrorKind};
pub use store::{Appended, EventStore};
