//! The export without its free-text columns: what `data/tickets-structured.csv` holds.
//!
//! Customer Name, Ticket Description and Resolution are a person's name and prose written by
//! the export's author; the project keeps no copy of them. The remaining columns are facts and
//! are copied byte for byte, in the export's order.

use std::io;

use csv::ByteRecord;

use crate::error::ImportError;
use crate::source::{Column, Header};

/// The columns kept, in the export's order.
pub fn structured_columns() -> impl Iterator<Item = Column> {
    Column::ALL.into_iter().filter(|column| !column.is_free_text())
}

/// Copies `export` to `out` with only the [`structured_columns`], and returns the number of
/// data rows written. Fails if the export lacks one of them or is not well-formed CSV.
pub fn write_structured(export: impl io::Read, out: impl io::Write) -> Result<u64, ImportError> {
    let mut reader = csv::Reader::from_reader(export);
    let header = Header::new(reader.byte_headers().map_err(ImportError::ReadExport)?)?;
    let columns: Vec<Column> = structured_columns().collect();
    header.require(&columns)?;
    let mut writer = csv::Writer::from_writer(out);
    writer
        .write_record(columns.iter().map(|column| column.name()))
        .map_err(ImportError::WriteStructured)?;

    let mut record = ByteRecord::new();
    let mut kept = ByteRecord::new();
    let mut rows = 0;
    while reader.read_byte_record(&mut record).map_err(ImportError::ReadExport)? {
        kept.clear();
        for column in &columns {
            kept.push_field(header.field_bytes(&record, *column));
        }
        writer.write_byte_record(&kept).map_err(ImportError::WriteStructured)?;
        rows += 1;
    }
    writer.flush().map_err(|err| ImportError::WriteStructured(err.into()))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_structured_drops_free_text_and_keeps_order() {
        let export = "Ticket ID,Customer Name,Customer Email,Product Purchased,Date of Purchase,\
                      Ticket Type,Ticket Subject,Ticket Description,Ticket Status,Resolution,\
                      Ticket Priority,Ticket Channel,First Response Time,Time to Resolution,\
                      Customer Satisfaction Rating\n\
                      7,Customer 00007,customer00007@example.com,\"Dell XPS\",2021-01-02,\
                      Refund request,Battery life,\"line one\nline two, with a comma\",Closed,\
                      \"Some, text\",Low,Chat,2023-06-01 10:00:00,2023-06-01 12:00:00,4.0\n";
        let mut out = Vec::new();

        let rows = write_structured(export.as_bytes(), &mut out).unwrap();

        assert_eq!(rows, 1);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Ticket ID,Customer Email,Product Purchased,Date of Purchase,Ticket Type,\
             Ticket Subject,Ticket Status,Ticket Priority,Ticket Channel,First Response Time,\
             Time to Resolution,Customer Satisfaction Rating\n\
             7,customer00007@example.com,Dell XPS,2021-01-02,Refund request,Battery life,\
             Closed,Low,Chat,2023-06-01 10:00:00,2023-06-01 12:00:00,4.0\n"
        );
    }

    #[test]
    fn write_structured_fails_without_date_of_purchase() {
        let export = "Ticket ID,Customer Email\n1,a@example.com\n";

        let err = write_structured(export.as_bytes(), Vec::new()).unwrap_err();

        assert!(matches!(err, ImportError::MissingColumn { column: "Product Purchased" }));
    }
}
