//! The ticket export importer: turns each row of the support ticket export into the commands
//! that replay its history, and sends them to the command service.
//!
//! Importing is two parts. Planning ([`plan_file`], [`plan_reader`]) is pure apart from reading
//! the CSV: every row becomes either a [`TicketPlan`], the commands that rebuild that ticket, or a
//! [`Reject`] that names the row, the column and the value at fault. A row that contradicts
//! itself is rejected, never repaired, and nothing the export lacks is invented: the export has
//! no creation time, so a ticket is opened at an unknown time. Sending ([`import`]) is a gRPC
//! client of the command service; it never touches the event store directly.
//!
//! Every command's request id is derived from the source ticket id and the step, and the ticket
//! id from the open command's request id, so importing the same file again appends nothing: the
//! command service answers each command as a duplicate.
//!
//! Timestamps in the export (`YYYY-MM-DD HH:MM:SS`, no zone) are read as UTC.
//!
//! Layout:
//! - [`source`]: the export's columns, found by header name;
//! - [`plan`]: rows to commands, and the rules a row is rejected by;
//! - [`rejects`]: rejected rows and the rejects file;
//! - [`driver`]: sending a plan to the command service, and the summary of a run;
//! - [`structured`]: the export without its free-text columns, as kept in `data/`;
//! - [`error`]: what stops a whole import.

pub mod driver;
pub mod error;
pub mod plan;
pub mod rejects;
pub mod source;
pub mod structured;

pub use driver::{import, ImportOptions, ImportSummary};
pub use error::ImportError;
pub use plan::{plan_file, plan_reader, Plan, PlanOptions, PlannedCommand, Step, TicketPlan};
pub use rejects::{write_rejects, Reject, RejectReason, RejectsWriter};
