//! `csmp audit`: the operators' view of the event history, read-only.
//!
//! - `history`: every event of a ticket, as text or JSON lines;
//! - `state`: a ticket's state as of a time, by `recorded_at` (default) or `occurred_at`;
//! - `export`: a tenant's stored events of a `recorded_at` range, as JSON lines for auditors;
//! - `verify`: versions and hash chain of every ticket, then each read model against a rebuild;
//!   exits non-zero when anything is wrong.
//!
//! The work is done by `csmp-audit`; this module parses flags, connects and prints. Times are
//! RFC 3339. A reader of standard output that goes away (`| head -1`) ends the output, not the
//! command with an error. `docs/operations.md` shows each with examples.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use crate::projection::Details;
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use csmp_audit::history;
use csmp_audit::{Audit, ExportQuery, TimeBasis, VerifyScope};
use csmp_domain::{TenantId, TicketId};

use crate::GlobalArgs;

/// `csmp audit`.
#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Every event of a ticket in stream order: who, what, when, why, position, version, hash.
    History {
        #[command(flatten)]
        ticket: TicketArgs,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// A ticket's state as of a point in time, replayed from the events that count by then.
    State {
        #[command(flatten)]
        ticket: TicketArgs,
        /// The point in time (RFC 3339, e.g. 2026-03-04T12:00:00Z).
        #[arg(long, value_parser = parse_time)]
        at: DateTime<Utc>,
        /// Count events by when they were recorded (what the system knew then) or by when they
        /// occurred.
        #[arg(long, value_enum, default_value_t = By::Recorded)]
        by: By,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// A tenant's events recorded in [--from, --to), exactly as stored, as JSON lines.
    Export(ExportArgs),
    /// Check every ticket's versions and hash chain; exit non-zero if anything is wrong.
    Verify(VerifyArgs),
}

/// Which ticket.
#[derive(Args, Debug)]
pub struct TicketArgs {
    #[arg(long, value_parser = parse_tenant)]
    pub tenant: TenantId,
    /// The ticket id (a UUID).
    #[arg(long, value_parser = parse_ticket)]
    pub ticket: TicketId,
}

/// `csmp audit export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    #[arg(long, value_parser = parse_tenant)]
    pub tenant: TenantId,
    /// The first recorded_at exported (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub from: DateTime<Utc>,
    /// The first recorded_at past the range (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub to: DateTime<Utc>,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// How far recorded_at and the stream's own storage time may lie apart, in seconds.
    #[arg(long, default_value_t = 300)]
    pub clock_margin_secs: u32,
}

/// Events per transaction when `verify` rebuilds the read models to compare them.
const READ_MODEL_BATCH: usize = 1000;

/// `csmp audit verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Verify only this tenant's tickets; all tenants when not given.
    #[arg(long, value_parser = parse_tenant)]
    pub tenant: Option<TenantId>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Check only the event stream, not the read models. Without it, each read model is also
    /// rebuilt into a scratch schema up to the live position and compared table by table (all
    /// tenants' rows, whatever `--tenant` says).
    #[arg(long)]
    pub stream_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    Text,
    /// JSON for tools: one object per line for histories, one object for a state or report.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum By {
    /// recorded_at: when the command service accepted the event.
    Recorded,
    /// occurred_at: when it happened (differs for imported history).
    Occurred,
}

/// Runs one `csmp audit` subcommand.
pub async fn run(global: &GlobalArgs, args: AuditArgs) -> anyhow::Result<()> {
    // Refused before connecting, so that the answer does not depend on NATS being up.
    if let AuditCommand::Export(export) = &args.command {
        if export.from >= export.to {
            anyhow::bail!(
                "--from {} is not before --to {}",
                rfc3339(export.from),
                rfc3339(export.to)
            );
        }
    }
    let client = async_nats::connect(&global.nats_url)
        .await
        .with_context(|| format!("failed to connect to NATS at {}", global.nats_url))?;
    let audit = Audit::connect(client.clone(), global.store()).await?;
    match args.command {
        AuditCommand::History { ticket, format } => {
            let entries = audit.history(&ticket.tenant, ticket.ticket).await?;
            let out = match format {
                Format::Text => history::render_text(&ticket.tenant, ticket.ticket, &entries),
                Format::Json => history::render_json_lines(&entries),
            };
            print_out(&out).map(drop)
        }
        AuditCommand::State { ticket, at, by, format } => {
            let basis = match by {
                By::Recorded => TimeBasis::Recorded,
                By::Occurred => TimeBasis::Occurred,
            };
            let state = audit.state_as_of(&ticket.tenant, ticket.ticket, at, basis).await?;
            let out = match format {
                Format::Text => state.render_text(),
                Format::Json => state.to_json().to_string() + "\n",
            };
            print_out(&out).map(drop)
        }
        AuditCommand::Export(args) => export(&audit, args).await,
        AuditCommand::Verify(args) => verify(global, &audit, client, args).await,
    }
}

async fn export(audit: &Audit, args: ExportArgs) -> anyhow::Result<()> {
    let query = ExportQuery {
        clock_margin: chrono::Duration::seconds(i64::from(args.clock_margin_secs)),
        ..ExportQuery::new(args.tenant, args.from, args.to)
    };
    let exported = match &args.output {
        Some(path) => {
            let file = File::create(path)
                .with_context(|| format!("failed to create --output {}", path.display()))?;
            audit.export(&query, &mut BufWriter::new(file)).await
        }
        None => audit.export(&query, &mut BufWriter::new(std::io::stdout())).await,
    };
    let summary = match exported {
        Ok(summary) => summary,
        // The reader has what it wanted; a summary of a cut-off export would mislead.
        Err(err) if err.is_broken_pipe() => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    let positions = match (summary.first_position, summary.last_position) {
        (Some(first), Some(last)) => format!(" (positions {first} to {last})"),
        _ => String::new(),
    };
    eprintln!(
        "exported {} events of tenant {} recorded in [{}, {}){positions}",
        summary.exported,
        query.tenant,
        rfc3339(query.from),
        rfc3339(query.to)
    );
    if !summary.unreadable.is_empty() {
        let list: Vec<String> = summary.unreadable.iter().map(u64::to_string).collect();
        eprintln!("left out unreadable bodies at positions {}", list.join(", "));
    }
    Ok(())
}

/// Runs each check, prints its report, and fails naming every check that found something.
async fn verify(
    global: &GlobalArgs,
    audit: &Audit,
    client: async_nats::Client,
    args: VerifyArgs,
) -> anyhow::Result<()> {
    let mut failures = Vec::new();

    // 1. The event stream: every ticket's versions and hash chain.
    let scope = args.tenant.map_or(VerifyScope::All, VerifyScope::Tenant);
    let report = audit.verify(&scope).await?;
    let output = match args.format {
        Format::Text => print_out(&report.render_text())?,
        Format::Json => Output::Open,
    };
    if !report.is_clean() {
        failures.push(format!("the event stream has {} problems", report.problems.len()));
    }

    // 2. The read models: each equals a rebuild from the stream, table by table. Their report
    // goes to standard output too (to standard error with JSON), so without a reader there is
    // no one to compare them for.
    let mut verdicts = Vec::new();
    if !args.stream_only && output == Output::Open {
        let kinds = csmp_projector::ProjectorKind::ALL;
        let details = match args.format {
            Format::Text => Details::Stdout,
            Format::Json => Details::Stderr,
        };
        verdicts = crate::projection::verify_read_models(
            global,
            client,
            &kinds,
            READ_MODEL_BATCH,
            details,
        )
        .await?;
        let different: Vec<&str> =
            verdicts.iter().filter(|v| !v.equal).map(|v| v.read_model).collect();
        if !different.is_empty() {
            failures.push(format!("read models differ from a rebuild: {}", different.join(", ")));
        }
    }
    if args.format == Format::Json {
        let both = serde_json::json!({ "stream": report, "read_models": verdicts });
        print_out(&(both.to_string() + "\n"))?;
    }

    if !failures.is_empty() {
        anyhow::bail!("verification failed: {}", failures.join("; "));
    }
    Ok(())
}

/// Whether standard output still has a reader after a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Open,
    /// The reader went away (a broken pipe): the output ends, without an error.
    Closed,
}

fn print_out(text: &str) -> anyhow::Result<Output> {
    write_out(&mut std::io::stdout().lock(), text)
}

fn write_out(out: &mut impl Write, text: &str) -> anyhow::Result<Output> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(Output::Open),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(Output::Closed),
        Err(err) => Err(err).context("failed to write the output"),
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|err| format!("expected an RFC 3339 time such as 2026-03-04T05:06:07Z ({err})"))
}

fn parse_tenant(raw: &str) -> Result<TenantId, String> {
    TenantId::parse(raw).map_err(|err| err.to_string())
}

fn parse_ticket(raw: &str) -> Result<TicketId, String> {
    TicketId::parse(raw).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_times_and_ids_say_what_is_expected() {
        assert_eq!(
            parse_time("yesterday").unwrap_err(),
            "expected an RFC 3339 time such as 2026-03-04T05:06:07Z (premature end of input)"
        );
        assert_eq!(
            parse_time("2026-03-04T06:06:07+01:00").unwrap().to_rfc3339(),
            "2026-03-04T05:06:07+00:00"
        );
        assert_eq!(
            parse_tenant("Acme").unwrap_err(),
            "invalid tenant: \"Acme\" must be lowercase letters, digits, '-' or '_'"
        );
        assert_eq!(
            parse_ticket("42").unwrap_err(),
            "invalid ticket_id: \"42\" is not a UUID: invalid length: found 2"
        );
    }

    /// A writer that fails every write with `kind`.
    struct Failing(std::io::ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(self.0.into())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_reader_going_away_ends_the_output_and_other_write_failures_are_errors() {
        let mut written = Vec::new();

        let open = write_out(&mut written, "line\n").unwrap();
        let closed = write_out(&mut Failing(std::io::ErrorKind::BrokenPipe), "line\n").unwrap();
        let full = write_out(&mut Failing(std::io::ErrorKind::StorageFull), "line\n").unwrap_err();

        assert_eq!((open, closed), (Output::Open, Output::Closed));
        assert_eq!(written, b"line\n");
        assert_eq!(format!("{full:#}"), "failed to write the output: no storage space");
    }
}
