//! `csmp projection`: rebuild a read model into a fresh schema and switch the live one to it, or
//! verify the live read model against a copy rebuilt from the stream.
//!
//! The work is done by `csmp_projector::rebuild` and `csmp_projector::verify_read_model`; this
//! module parses the options, draws the progress bar and prints the reports. A verification
//! that finds a difference ends with an error, so the process exits non-zero.
//!
//! SIGINT and SIGTERM stop a rebuild or a verification before its switch: the schema it was
//! building is dropped, a line says so, and the process exits with 130 (SIGINT) or 143
//! (SIGTERM). Schemas of rebuilds or verifications that never finished (a killed process) are
//! named before a new one starts; they are not dropped, since they may be an older release's
//! that is still running.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use std::sync::OnceLock;

use csmp_projector::{
    ProjectorConfig, ProjectorError, ProjectorKind, RebuildOptions, RebuildPhase, RebuildProgress,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::GlobalArgs;

#[derive(Args, Debug)]
pub struct ProjectionArgs {
    #[command(subcommand)]
    command: ProjectionCommand,
}

#[derive(Subcommand, Debug)]
enum ProjectionCommand {
    /// Rebuild a read model from the first event into a fresh schema and switch to it, while
    /// the live projector and the queries go on.
    Rebuild {
        /// The read model to rebuild.
        #[arg(long, value_parser = ["queues", "sla", "feedback"])]
        projector: String,
        /// Most events applied in one transaction.
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
        /// Drop the retired schema right after the switch instead of keeping it.
        #[arg(long)]
        drop_retired: bool,
    },
    /// Rebuild read models into scratch schemas and compare them table by table with the live
    /// ones at the same stream position; exits non-zero when a table differs.
    Verify {
        /// The read model to verify, or all of them.
        #[arg(long, value_parser = ["queues", "sla", "feedback", "all"])]
        projector: String,
        /// Most events applied in one transaction.
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
    },
}

pub async fn run(global: &GlobalArgs, args: &ProjectionArgs) -> anyhow::Result<()> {
    let nats = async_nats::connect(&global.nats_url)
        .await
        .with_context(|| format!("failed to connect to NATS at {}", global.nats_url))?;
    match &args.command {
        ProjectionCommand::Rebuild { projector, batch_size, drop_retired } => {
            let kind = parse_kind(projector)?;
            rebuild(global, nats, kind, *batch_size, *drop_retired).await
        }
        ProjectionCommand::Verify { projector, batch_size } => {
            let kinds = match projector.as_str() {
                "all" => ProjectorKind::ALL.to_vec(),
                one => vec![parse_kind(one)?],
            };
            verify(global, nats, &kinds, *batch_size).await
        }
    }
}

fn parse_kind(name: &str) -> anyhow::Result<ProjectorKind> {
    name.parse().map_err(|err| anyhow::anyhow!("{err}"))
}

fn config(global: &GlobalArgs, kind: ProjectorKind, batch_size: usize) -> ProjectorConfig {
    ProjectorConfig {
        kind,
        store: global.store(),
        database_url: global.database_url.clone(),
        batch_size,
        consumer_name: None,
        schema: None,
    }
}

async fn rebuild(
    global: &GlobalArgs,
    nats: async_nats::Client,
    kind: ProjectorKind,
    batch_size: usize,
    drop_retired: bool,
) -> anyhow::Result<()> {
    let mut signals = Signals::listen()?;
    report_unfinished(global, kind).await;
    let bar = progress_bar(kind);
    let options = RebuildOptions { drop_retired };
    let caught = OnceLock::new();
    let shutdown = async {
        let _ = caught.set(signals.next().await);
    };
    let config = config(global, kind, batch_size);
    let report = csmp_projector::rebuild(config, nats, options, shutdown, |p| draw(&bar, p)).await;
    bar.finish_and_clear();
    if let Err(ProjectorError::Stopped { schema, dropped }) = &report {
        exit_stopped(kind, "rebuild", caught.get(), schema, *dropped);
    }
    let report = report.with_context(|| format!("failed to rebuild {kind}"))?;

    println!(
        "{kind}: switched to the rebuilt read model at position {} (live was at {}), {} events \
         in {:.1} s",
        report.checkpoint,
        report.live_checkpoint,
        report.applied,
        report.elapsed.as_secs_f64()
    );
    if report.retired_dropped {
        println!("{kind}: the former read model was dropped");
    } else {
        println!(
            "{kind}: the former read model is kept as schema {0}; drop it with \
             DROP SCHEMA {0} CASCADE",
            report.retired
        );
    }
    Ok(())
}

async fn verify(
    global: &GlobalArgs,
    nats: async_nats::Client,
    kinds: &[ProjectorKind],
    batch_size: usize,
) -> anyhow::Result<()> {
    let verdicts = verify_read_models(global, nats, kinds, batch_size, Details::Stdout).await?;
    let different: Vec<&str> = verdicts.iter().filter(|v| !v.equal).map(|v| v.read_model).collect();
    if !different.is_empty() {
        anyhow::bail!("read models differ from a rebuild: {}", different.join(", "));
    }
    Ok(())
}

/// Where the table-by-table comparisons go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Details {
    Stdout,
    /// Standard output is kept for a machine-readable report.
    Stderr,
}

/// The outcome of comparing one read model with a rebuild.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Verdict {
    pub read_model: &'static str,
    pub position: u64,
    pub equal: bool,
}

/// Rebuilds each read model of `kinds` into a scratch schema up to the live position, prints
/// the table-by-table comparison, and returns each read model's verdict.
///
/// SIGINT or SIGTERM stops the verification in progress, drops its scratch schema and ends the
/// process (see the module documentation).
pub(crate) async fn verify_read_models(
    global: &GlobalArgs,
    nats: async_nats::Client,
    kinds: &[ProjectorKind],
    batch_size: usize,
    details: Details,
) -> anyhow::Result<Vec<Verdict>> {
    let mut signals = Signals::listen()?;
    let mut verdicts = Vec::new();
    for &kind in kinds {
        report_unfinished(global, kind).await;
        let bar = progress_bar(kind);
        let caught = OnceLock::new();
        let shutdown = async {
            let _ = caught.set(signals.next().await);
        };
        let config = config(global, kind, batch_size);
        let report =
            csmp_projector::verify_read_model(config, nats.clone(), shutdown, |p| draw(&bar, p))
                .await;
        bar.finish_and_clear();
        if let Err(ProjectorError::Stopped { schema, dropped }) = &report {
            exit_stopped(kind, "verification", caught.get(), schema, *dropped);
        }
        let report = report.with_context(|| format!("failed to verify {kind}"))?;

        let verdict = if report.is_equal() { "equal" } else { "DIFFERENT" };
        let text =
            format!("{kind} at position {}: {verdict}\n{}", report.position, report.comparison);
        match details {
            Details::Stdout => print!("{text}"),
            Details::Stderr => eprint!("{text}"),
        }
        verdicts.push(Verdict {
            read_model: kind.name(),
            position: report.position,
            equal: report.is_equal(),
        });
    }
    Ok(verdicts)
}

fn progress_bar(kind: ProjectorKind) -> ProgressBar {
    let bar = ProgressBar::new(0);
    let style =
        ProgressStyle::with_template("{prefix:>8} [{bar:40}] {pos}/{len} {msg}, {eta} left")
            .expect("the template is valid")
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(kind.name());
    bar.set_message("starting");
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn draw(bar: &ProgressBar, progress: &RebuildProgress) {
    bar.set_length(progress.stream_last);
    bar.set_position(progress.checkpoint);
    let phase = match progress.phase {
        RebuildPhase::CatchingUp => "",
        RebuildPhase::Locked => " (live projector held for the last events)",
    };
    bar.set_message(format!("{:.0} events/s{phase}", progress.events_per_second));
}

/// A signal that asks the process to stop.
#[derive(Debug, Clone, Copy)]
enum Caught {
    Interrupt,
    Terminate,
}

impl Caught {
    fn name(self) -> &'static str {
        match self {
            Caught::Interrupt => "SIGINT",
            Caught::Terminate => "SIGTERM",
        }
    }

    /// 128 plus the signal's number, as a shell reports a process the signal ended.
    fn exit_code(self) -> i32 {
        match self {
            Caught::Interrupt => 130,
            Caught::Terminate => 143,
        }
    }
}

/// SIGINT and SIGTERM, listened for from the start of a rebuild or verification to its end, so
/// that neither ends the process with a half-built schema left behind.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let interrupt =
                signal(SignalKind::interrupt()).context("failed to listen for SIGINT")?;
            let terminate =
                signal(SignalKind::terminate()).context("failed to listen for SIGTERM")?;
            Ok(Signals { interrupt, terminate })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next signal; one that came since [`Signals::listen`] and was not taken yet counts.
    async fn next(&mut self) -> Caught {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Caught::Interrupt,
                _ = self.terminate.recv() => Caught::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Caught::Interrupt
        }
    }
}

/// Says what a rebuild or verification stopped by a signal did, and ends the process the way
/// the signal would have.
fn exit_stopped(
    kind: ProjectorKind,
    what: &str,
    caught: Option<&Caught>,
    schema: &str,
    dropped: bool,
) -> ! {
    let caught = caught.copied().unwrap_or(Caught::Interrupt);
    let signal = caught.name();
    if dropped {
        eprintln!(
            "{kind}: {what} stopped by {signal}; its unfinished schema {schema} was dropped and \
             the live read model is untouched"
        );
    } else {
        eprintln!(
            "{kind}: {what} stopped by {signal}; its unfinished schema {schema} could not be \
             dropped, drop it with DROP SCHEMA {schema} CASCADE; the live read model is untouched"
        );
    }
    std::process::exit(caught.exit_code())
}

/// Names the schemas of `kind`'s rebuilds and verifications that are running or never finished.
/// A failure to list them is only logged: the rebuild or verification reports its own.
async fn report_unfinished(global: &GlobalArgs, kind: ProjectorKind) {
    let listed = async {
        let (pg, connection) =
            tokio_postgres::connect(&global.database_url, tokio_postgres::NoTls).await?;
        let connection = tokio::spawn(connection);
        let listed = csmp_projector::unfinished_schemas(&pg, kind).await;
        drop(pg);
        let _ = connection.await;
        anyhow::Ok(listed?)
    };
    match listed.await {
        Ok(schemas) => {
            for schema in schemas {
                let name = schema.name;
                if schema.in_use {
                    eprintln!(
                        "{kind}: schema {name} belongs to a rebuild or verification running now"
                    );
                } else {
                    eprintln!(
                        "{kind}: schema {name} was left by a rebuild or verification that did not \
                         finish; drop it with DROP SCHEMA {name} CASCADE"
                    );
                }
            }
        }
        Err(err) => tracing::warn!(error = %err, "failed to list unfinished schemas"),
    }
}
