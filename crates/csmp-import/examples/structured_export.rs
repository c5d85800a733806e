//! Writes the structured copy of the ticket export that `data/tickets-structured.csv` holds:
//! the export without Customer Name, Ticket Description and Resolution.
//!
//! ```text
//! cargo run -p csmp-import --example structured_export -- EXPORT.csv data/tickets-structured.csv
//! ```

use std::fs::File;
use std::io::{BufReader, BufWriter};

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(export), Some(out), None) = (args.next(), args.next(), args.next()) else {
        anyhow::bail!("usage: structured_export EXPORT.csv OUT.csv");
    };

    let input = File::open(&export).with_context(|| format!("failed to open {export}"))?;
    let output = File::create(&out).with_context(|| format!("failed to create {out}"))?;
    let rows =
        csmp_import::structured::write_structured(BufReader::new(input), BufWriter::new(output))?;
    eprintln!("wrote {rows} rows to {out}");
    Ok(())
}
