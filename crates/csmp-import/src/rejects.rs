//! Rows that were not imported, why, and the rejects file they are written to.
//!
//! A row is rejected when planning finds it contradicts itself or holds a value that does not
//! parse, and recorded the same way when the command service fails one of its commands. The
//! rejects file is CSV with the columns `row`, `line`, `ticket_id` and `reason`: `row` is the
//! 1-based number of the data row (the header is not counted), `line` the 1-based physical line
//! of the file the record starts on; they differ because quoted fields span several lines.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use csmp_domain::TicketId;

use crate::error::ImportError;
use crate::plan::Step;
use crate::source::Column;

/// Why a row was not imported. Each reason names the column and the value at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// The record has another number of fields than the header.
    FieldCount { found: usize, expected: usize },
    /// A field is not valid UTF-8.
    NotUtf8 { column: Column },
    /// A value the row needs is empty.
    Empty { column: Column },
    /// A value does not parse; `problem` says what was expected.
    Invalid { column: Column, value: String, problem: String },
    /// A text is longer than the command it goes into allows.
    TooLong { column: Column, len: usize, max: usize },
    /// The row's status needs a value the row lacks, as a closed ticket needs its resolution
    /// time.
    MissingForStatus { status: String, column: Column },
    /// The row has a value its status rules out, as an open ticket with a resolution time.
    UnexpectedForStatus { status: String, column: Column, value: String },
    /// The ticket was resolved before its first response, which no history can hold.
    ResolvedBeforeFirstResponse { first_response: String, resolution: String },
    /// The ticket id is on more than one row (`rows` lists them all), so no row of it is
    /// known to be the ticket's.
    DuplicateTicketId { rows: Vec<u64> },
    /// The command service failed one of the row's commands; the steps before it were
    /// recorded. Importing again resumes the row.
    CommandFailed { step: Step, code: tonic::Code, message: String },
    /// The command service answered for another ticket than the plan derived, so the row's
    /// later commands were not sent. The service derives ticket ids differently from this
    /// importer: a bug to report, not a fault of the row.
    UnexpectedTicket { step: Step, expected: TicketId, found: String },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::FieldCount { found, expected } => {
                write!(f, "the record has {found} fields, the header has {expected}")
            }
            RejectReason::NotUtf8 { column } => write!(f, "{column} is not valid UTF-8"),
            RejectReason::Empty { column } => write!(f, "{column} is empty"),
            RejectReason::Invalid { column, value, problem } => {
                write!(f, "{column} {value:?} {problem}")
            }
            RejectReason::TooLong { column, len, max } => {
                write!(f, "{column} is {len} characters long, the limit is {max}")
            }
            RejectReason::MissingForStatus { status, column } => {
                write!(f, "Ticket Status {status:?} needs a {column}")
            }
            RejectReason::UnexpectedForStatus { status, column, value } => {
                write!(f, "Ticket Status {status:?} contradicts {column} {value:?}")
            }
            RejectReason::ResolvedBeforeFirstResponse { first_response, resolution } => write!(
                f,
                "Time to Resolution {resolution:?} is earlier than \
                 First Response Time {first_response:?}"
            ),
            RejectReason::DuplicateTicketId { rows } => {
                let rows: Vec<String> = rows.iter().map(u64::to_string).collect();
                write!(f, "Ticket ID is on more than one row (rows {})", rows.join(", "))
            }
            RejectReason::CommandFailed { step, code, message } => {
                write!(f, "command {step} failed with {code:?}: {message}")
            }
            RejectReason::UnexpectedTicket { step, expected, found } => {
                write!(f, "command {step} answered for ticket {found:?}, expected {expected}")
            }
        }
    }
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// 1-based number of the data row, the header not counted.
    pub row: u64,
    /// 1-based physical line the record starts on.
    pub line: u64,
    /// The row's Ticket ID as written, possibly empty.
    pub ticket_id: String,
    /// Every problem found on the row, at least one.
    pub reasons: Vec<RejectReason>,
}

impl Reject {
    /// The reasons as one text, separated by `; `.
    pub fn reason(&self) -> String {
        let reasons: Vec<String> = self.reasons.iter().map(ToString::to_string).collect();
        reasons.join("; ")
    }
}

/// Writes rejected rows as CSV with the columns `row`, `line`, `ticket_id`, `reason`.
pub struct RejectsWriter<W: io::Write> {
    csv: csv::Writer<W>,
    path: PathBuf,
}

impl RejectsWriter<File> {
    /// Creates (or truncates) the file at `path` and writes the header.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, ImportError> {
        let path = path.as_ref().to_owned();
        let csv = csv::Writer::from_path(&path)
            .map_err(|source| ImportError::WriteRejects { path: path.clone(), source })?;
        RejectsWriter::start(csv, path)
    }
}

impl<W: io::Write> RejectsWriter<W> {
    /// Writes the header to `inner`; `name` stands for it in error messages.
    pub fn new(inner: W, name: impl Into<PathBuf>) -> Result<Self, ImportError> {
        RejectsWriter::start(csv::Writer::from_writer(inner), name.into())
    }

    fn start(csv: csv::Writer<W>, path: PathBuf) -> Result<Self, ImportError> {
        let mut writer = RejectsWriter { csv, path };
        writer.record(["row", "line", "ticket_id", "reason"])?;
        Ok(writer)
    }

    pub fn write(&mut self, reject: &Reject) -> Result<(), ImportError> {
        let row = reject.row.to_string();
        let line = reject.line.to_string();
        self.record([row.as_str(), line.as_str(), reject.ticket_id.as_str(), &reject.reason()])
    }

    /// Flushes the file and returns what it was written to.
    pub fn finish(self) -> Result<W, ImportError> {
        let path = self.path;
        self.csv
            .into_inner()
            .map_err(|err| ImportError::WriteRejects { path, source: err.into_error().into() })
    }

    fn record(&mut self, fields: [&str; 4]) -> Result<(), ImportError> {
        self.csv
            .write_record(fields)
            .map_err(|source| ImportError::WriteRejects { path: self.path.clone(), source })
    }
}

/// Writes `rejects` to a new file at `path`, header first, in the order given.
pub fn write_rejects(path: impl AsRef<Path>, rejects: &[Reject]) -> Result<(), ImportError> {
    let mut writer = RejectsWriter::create(path)?;
    for reject in rejects {
        writer.write(reject)?;
    }
    writer.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_quotes_reasons_with_commas_and_quotes() {
        let reject = Reject {
            row: 4,
            line: 12,
            ticket_id: "4".to_owned(),
            reasons: vec![
                RejectReason::ResolvedBeforeFirstResponse {
                    first_response: "2023-06-01 07:29:40".to_owned(),
                    resolution: "2023-06-01 01:57:40".to_owned(),
                },
                RejectReason::DuplicateTicketId { rows: vec![4, 9] },
            ],
        };
        let mut writer = RejectsWriter::new(Vec::new(), "memory").unwrap();

        writer.write(&reject).unwrap();
        let written = String::from_utf8(writer.finish().unwrap()).unwrap();

        assert_eq!(
            written,
            "row,line,ticket_id,reason\n\
             4,12,4,\"Time to Resolution \"\"2023-06-01 01:57:40\"\" is earlier than \
             First Response Time \"\"2023-06-01 07:29:40\"\"; \
             Ticket ID is on more than one row (rows 4, 9)\"\n"
        );
    }

    #[test]
    fn write_rejects_fails_with_the_path_when_the_directory_is_missing() {
        let path = std::env::temp_dir().join("csmp-import-no-such-dir").join("rejects.csv");

        let err = write_rejects(&path, &[]).unwrap_err();

        assert!(matches!(&err, ImportError::WriteRejects { path: p, .. } if *p == path));
    }
}
