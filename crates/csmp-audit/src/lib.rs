//! The operators' view of the event history: what happened to a ticket, what it looked like at
//! a given time, a tenant's events for auditors, and whether the stream is intact.
//!
//! Everything here only reads. The stream is looked up, never created or reconfigured, and
//! nothing is appended: an audit must not change what it audits. Stored bodies are read as they
//! are, so that hashes are recomputed over exactly what JetStream holds; decoding (and upcasting
//! older schema versions) happens through [`csmp_eventstore::decode`] only where a typed
//! envelope is needed.
//!
//! Layout:
//! - [`read`]: [`Audit`], the handle on the stream, and the ordered scans every view is built on;
//! - [`history`]: a ticket's events with who, what, when, why, position and hash;
//! - [`state`]: a ticket's state as of a time, by `recorded_at` or `occurred_at`;
//! - [`export`]: a tenant's stored events of a time range as JSON lines;
//! - [`verify`]: versions without gaps and the hash chain of every ticket, and messages stored
//!   off ticket subjects, as a report;
//! - [`summary`]: the short human summary and the "why" of an event;
//! - [`error`]: what auditing fails with, and how a caller handles it.

pub mod error;
pub mod export;
pub mod history;
pub mod read;
pub mod state;
pub mod summary;
pub mod verify;

pub use error::{AuditError, AuditErrorKind};
pub use export::{ExportQuery, ExportSummary, DEFAULT_CLOCK_MARGIN};
pub use history::HistoryEntry;
pub use read::{Audit, StoredEvent};
pub use state::{StateAsOf, TimeBasis};
pub use verify::{Problem, ProblemKind, Verifier, VerifyReport, VerifyScope};
