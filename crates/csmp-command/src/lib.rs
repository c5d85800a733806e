//! The command side of csmp: a gRPC service that turns each support action into one event on
//! the ticket's stream.
//!
//! A request is checked field by field, decided by the ticket aggregate against the ticket's
//! history, and its event appended on the condition that the history has not moved since. The
//! request id is the idempotency key: a request seen before returns its first result. The crate
//! must not touch PostgreSQL or any read model.
//!
//! Layout:
//! - [`settings`]: [`CommandServiceConfig`] and the per-tenant [`TenantSettings`];
//! - `convert`: gRPC requests to domain commands, with errors that name the field;
//! - `cache`: ticket states in memory, each behind a per-ticket lock;
//! - [`service`]: [`CommandService`], the decide-and-append loop and the gRPC status mapping;
//! - [`server`]: [`serve`], with health checking and server reflection.
//!
//! Status codes: `INVALID_ARGUMENT` for a malformed request (the message names the field),
//! `NOT_FOUND` for a ticket the tenant does not have, `FAILED_PRECONDITION` for a command the
//! ticket's status does not allow, `PERMISSION_DENIED` for an actor without the right,
//! `ABORTED` when the ticket kept changing under the command, `UNAVAILABLE` when NATS is down or
//! slow. `ABORTED` and `UNAVAILABLE` are worth a retry with the same request id.

mod cache;
mod convert;
pub mod server;
pub mod service;
pub mod settings;

pub use server::serve;
pub use service::CommandService;
pub use settings::{
    CommandServiceConfig, RefundLimitChanges, SettingsError, TenantRules, TenantSettings,
};
