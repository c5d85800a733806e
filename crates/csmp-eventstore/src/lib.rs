//! The event store: every ticket's history on one NATS JetStream stream.
//!
//! Layout: one stream (file storage, no limits, deletes and purges denied) holding the subjects
//! `<prefix>.>`; each ticket's events on `<prefix>.<tenant>.ticket.<ticket id>`, so that the
//! `Nats-Expected-Last-Subject-Sequence` header guards every append to a ticket. The message body
//! is the JSON [`EventEnvelope`](csmp_domain::EventEnvelope); the event type also travels in the
//! `Csmp-Event-Type` header so that consumers can filter without parsing.
//!
//! This crate owns the stream's configuration and the wire format. It knows nothing of commands
//! or read models.

pub mod codec;
pub mod config;

pub use codec::{decode, encode, DecodeError, EVENT_TYPE_HEADER, SCHEMA_VERSION_HEADER};
pub use config::{ensure_stream, EventStoreConfig, StreamSetupError};
