//! Errors that stop a whole import. A single bad row never does: it becomes a
//! [`Reject`](crate::Reject).

use std::path::PathBuf;

/// An import could not read its input or write its rejects file. Nothing about the command
/// service is reported here: a command that fails is recorded against its row instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The export file could not be opened. Check the path; retrying unchanged does not help.
    #[error("failed to open the export {}", path.display())]
    OpenExport {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The export is not readable CSV (an I/O error, or a quote that never closes). The file
    /// must be fixed or exported again.
    #[error("failed to read the export")]
    ReadExport(#[source] csv::Error),
    /// A column the importer needs is not in the header. The file is not a ticket export (or
    /// its columns were renamed); nothing was planned.
    #[error("the export has no {column:?} column")]
    MissingColumn { column: &'static str },
    /// A column name appears twice in the header, so its values are ambiguous.
    #[error("the export has the column {column:?} more than once")]
    DuplicateColumn { column: String },
    /// The rejects file could not be created or written. The import itself may have run; the
    /// summary still holds every rejected row.
    #[error("failed to write the rejects file {}", path.display())]
    WriteRejects {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    /// The structured copy of the export could not be written.
    #[error("failed to write the structured export")]
    WriteStructured(#[source] csv::Error),
}
