//! The support ticket domain, free of I/O.
//!
//! A ticket is an event-sourced aggregate: [`Ticket::decide`] checks a [`Command`] against the
//! ticket's current state and returns the events it produces, and [`Ticket::apply`] folds a
//! recorded event into the state. Replaying a ticket's events through `apply` rebuilds exactly the
//! state that produced them. Time, identifiers and refund limits come in through
//! [`CommandContext`]; nothing here reads a clock or touches the network.
//!
//! Layout:
//! - [`chain`]: the per-ticket hash chain that makes history tamper-evident;
//! - [`clock`]: the injected present;
//! - [`ids`]: validated identifiers (tenant, ticket, customer, agent, refund);
//! - [`types`]: tiers, channels, priorities, roles and statuses;
//! - [`money`]: amounts in minor units with ISO 4217 currencies;
//! - [`event`]: the event payloads, the envelope every event travels in, and the schema version of
//!   each event type;
//! - [`feedback`]: the sentiment and theme vocabulary of customer feedback and its classifier;
//! - [`upcast`]: raising stored bodies of older schema versions to the current ones;
//! - [`command`]: the commands and the context they are decided in;
//! - [`ticket`]: the aggregate itself;
//! - [`sla`]: first-response and resolution targets by priority and customer tier;
//! - [`error`]: the typed errors a command can fail with.

pub mod chain;
pub mod clock;
pub mod command;
pub mod error;
pub mod event;
pub mod feedback;
pub mod ids;
pub mod money;
pub mod request;
pub mod sla;
pub mod ticket;
pub mod types;
pub mod upcast;

pub use clock::{Clock, ManualClock, SystemClock};
pub use command::{Command, CommandContext, RefundLimits};
pub use error::{DomainError, ErrorKind};
pub use event::{current_schema_version, EventEnvelope, EventPayload, RecordedEvent};
pub use feedback::{Sentiment, Theme};
pub use ids::{AgentId, CustomerId, RefundId, TenantId, TicketId};
pub use money::{Currency, Money};
pub use ticket::{Receipt, Ticket};
pub use types::{
    Actor, Channel, CustomerTier, Priority, Role, SlaSignalKind, SlaTargetKind, SupportTier,
    TicketStatus,
};
