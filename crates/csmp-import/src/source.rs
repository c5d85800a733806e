//! The export's columns, found by header name, so that both the full export (15 columns) and
//! the structured copy in `data/` (12 columns) are read the same way. Columns the importer does
//! not know are ignored; their order does not matter.

use std::fmt;

use csv::ByteRecord;

use crate::error::ImportError;
use crate::rejects::RejectReason;

/// A column of the ticket export, named as in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    TicketId,
    CustomerName,
    CustomerEmail,
    ProductPurchased,
    DateOfPurchase,
    TicketType,
    TicketSubject,
    TicketDescription,
    TicketStatus,
    Resolution,
    TicketPriority,
    TicketChannel,
    FirstResponseTime,
    TimeToResolution,
    CustomerSatisfactionRating,
}

impl Column {
    /// Every column, in the export's order.
    pub const ALL: [Column; 15] = [
        Column::TicketId,
        Column::CustomerName,
        Column::CustomerEmail,
        Column::ProductPurchased,
        Column::DateOfPurchase,
        Column::TicketType,
        Column::TicketSubject,
        Column::TicketDescription,
        Column::TicketStatus,
        Column::Resolution,
        Column::TicketPriority,
        Column::TicketChannel,
        Column::FirstResponseTime,
        Column::TimeToResolution,
        Column::CustomerSatisfactionRating,
    ];

    /// The columns planning needs. Ticket Description and Resolution are used when present;
    /// Customer Name and Date of Purchase have no place in a command.
    pub const REQUIRED: [Column; 11] = [
        Column::TicketId,
        Column::CustomerEmail,
        Column::ProductPurchased,
        Column::TicketType,
        Column::TicketSubject,
        Column::TicketStatus,
        Column::TicketPriority,
        Column::TicketChannel,
        Column::FirstResponseTime,
        Column::TimeToResolution,
        Column::CustomerSatisfactionRating,
    ];

    /// The name in the export's header.
    pub fn name(self) -> &'static str {
        match self {
            Column::TicketId => "Ticket ID",
            Column::CustomerName => "Customer Name",
            Column::CustomerEmail => "Customer Email",
            Column::ProductPurchased => "Product Purchased",
            Column::DateOfPurchase => "Date of Purchase",
            Column::TicketType => "Ticket Type",
            Column::TicketSubject => "Ticket Subject",
            Column::TicketDescription => "Ticket Description",
            Column::TicketStatus => "Ticket Status",
            Column::Resolution => "Resolution",
            Column::TicketPriority => "Ticket Priority",
            Column::TicketChannel => "Ticket Channel",
            Column::FirstResponseTime => "First Response Time",
            Column::TimeToResolution => "Time to Resolution",
            Column::CustomerSatisfactionRating => "Customer Satisfaction Rating",
        }
    }

    /// Whether the column holds a person's name or prose written by someone, which the project
    /// does not keep a copy of.
    pub fn is_free_text(self) -> bool {
        matches!(self, Column::CustomerName | Column::TicketDescription | Column::Resolution)
    }

    fn position(self) -> usize {
        Column::ALL.iter().position(|c| *c == self).expect("every column is in ALL")
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where each known column sits in the records of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    index: [Option<usize>; Column::ALL.len()],
    len: usize,
}

impl Header {
    /// Maps the header record's names (surrounding spaces ignored) to columns.
    pub fn new(record: &ByteRecord) -> Result<Self, ImportError> {
        let mut index = [None; Column::ALL.len()];
        for (at, raw) in record.iter().enumerate() {
            let name = String::from_utf8_lossy(raw);
            let Some(column) = Column::ALL.iter().find(|c| c.name() == name.trim()) else {
                continue;
            };
            let slot = &mut index[column.position()];
            if slot.is_some() {
                return Err(ImportError::DuplicateColumn { column: column.name().to_owned() });
            }
            *slot = Some(at);
        }
        Ok(Header { index, len: record.len() })
    }

    /// Fails on the first of `columns` the header lacks.
    pub fn require(&self, columns: &[Column]) -> Result<(), ImportError> {
        match columns.iter().find(|c| !self.has(**c)) {
            Some(missing) => Err(ImportError::MissingColumn { column: missing.name() }),
            None => Ok(()),
        }
    }

    pub fn has(&self, column: Column) -> bool {
        self.index[column.position()].is_some()
    }

    /// The number of fields of the header, which every record must have too.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The raw bytes of `column` in `record`; empty when the file has no such column.
    pub fn field_bytes<'r>(&self, record: &'r ByteRecord, column: Column) -> &'r [u8] {
        self.index[column.position()].and_then(|at| record.get(at)).unwrap_or_default()
    }

    /// The value of `column` in `record`: `None` when the file has no such column.
    pub fn get<'r>(
        &self,
        record: &'r ByteRecord,
        column: Column,
    ) -> Result<Option<&'r str>, RejectReason> {
        let Some(at) = self.index[column.position()] else {
            return Ok(None);
        };
        let raw = record.get(at).unwrap_or_default();
        std::str::from_utf8(raw).map(Some).map_err(|_| RejectReason::NotUtf8 { column })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_finds_columns_by_name_in_any_order() {
        let record = ByteRecord::from(vec!["Ticket Status", "Extra", " Ticket ID "]);

        let header = Header::new(&record).unwrap();

        assert_eq!(header.len(), 3);
        assert!(header.has(Column::TicketId));
        assert!(header.has(Column::TicketStatus));
        assert!(!header.has(Column::Resolution));
        let row = ByteRecord::from(vec!["Open", "x", "42"]);
        assert_eq!(header.get(&row, Column::TicketId), Ok(Some("42")));
        assert_eq!(header.get(&row, Column::Resolution), Ok(None));
    }

    #[test]
    fn new_fails_with_duplicate_column() {
        let record = ByteRecord::from(vec!["Ticket ID", "Ticket ID"]);

        let err = Header::new(&record).unwrap_err();

        assert!(matches!(err, ImportError::DuplicateColumn { column } if column == "Ticket ID"));
    }

    #[test]
    fn require_names_the_first_missing_column() {
        let header = Header::new(&ByteRecord::from(vec!["Ticket ID"])).unwrap();

        let err = header.require(&Column::REQUIRED).unwrap_err();

        assert_eq!(err.to_string(), "the export has no \"Customer Email\" column");
    }

    #[test]
    fn get_rejects_invalid_utf8() {
        let header = Header::new(&ByteRecord::from(vec!["Ticket ID"])).unwrap();
        let row = ByteRecord::from(vec![&b"\xff"[..]]);

        assert_eq!(
            header.get(&row, Column::TicketId),
            Err(RejectReason::NotUtf8 { column: Column::TicketId })
        );
    }
}
