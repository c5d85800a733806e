//! `csmp`: the support backend's one binary. Each service runs as its own process through a
//! subcommand; `csmp run` is the main job that starts them all and puts them to work.

mod audit;
mod projection;
mod report;
mod run;
mod services;
mod sla;

mod shift;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use csmp_eventstore::EventStoreConfig;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "csmp", version, about = "Event-sourced support ticketing backend")]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Commands,
}

/// Where the event stream and the read models live; shared by every subcommand.
#[derive(Args, Clone, Debug)]
pub struct GlobalArgs {
    /// NATS server with JetStream.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222", global = true)]
    pub nats_url: String,
    /// PostgreSQL server of the read models.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432",
        global = true
    )]
    pub database_url: String,
    /// JetStream stream holding every event.
    #[arg(long, env = "CSMP_STREAM", default_value = "CSMP_EVENTS", global = true)]
    pub stream: String,
    /// First token of every event subject.
    #[arg(long, env = "CSMP_SUBJECT_PREFIX", default_value = "csmp", global = true)]
    pub subject_prefix: String,
}

impl GlobalArgs {
    pub fn store(&self) -> EventStoreConfig {
        EventStoreConfig {
            stream: self.stream.clone(),
            subject_prefix: self.subject_prefix.clone(),
            ..EventStoreConfig::default()
        }
    }
}

#[derive(Subcommand)]
enum Commands {
    /// Run the command gRPC service.
    CommandService {
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// JSON file with per-tenant settings (refund limits); see docs/configuration.md.
        #[arg(long)]
        tenant_settings: Option<PathBuf>,
    },
    /// Run one projector: queues, sla or feedback.
    Projector {
        kind: String,
        #[arg(long, default_value_t = 500)]
        batch_size: usize,
    },
    /// Run the query gRPC service.
    QueryService {
        #[arg(long, default_value = "127.0.0.1:50052")]
        listen: SocketAddr,
    },
    /// Import a ticket export through the command API.
    Import(run::ImportCommand),
    /// Run a live shift of support work on a tenant through the command API.
    Shift(run::ShiftArgs),
    /// Set a tenant's SLA targets to the defaults divided by a factor (for demos and drills).
    SlaPolicy {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value_t = 1)]
        scale_down: i32,
    },
    /// Run the SLA timer: record due SLA warnings and breaches through the command API.
    SlaTimer(sla::TimerArgs),
    /// Store a business-hours calendar of a tenant (JSON, optional iCalendar holidays).
    SlaCalendar(sla::CalendarArgs),
    /// Store the next SLA policy version of a tenant (JSON).
    SlaPolicyVersion(sla::PolicyVersionArgs),
    /// Print the report of one or more tenants from the query API.
    Report {
        #[arg(long, default_value = "http://127.0.0.1:50052")]
        query_url: String,
        #[arg(long, required = true)]
        tenant: Vec<String>,
    },
    /// The main job: start every service, import the export, run a live shift, print the report.
    Run(run::RunArgs),
    /// Read the event history: a ticket's history or state as of a time, a tenant's export,
    /// verification of the stream.
    Audit(audit::AuditArgs),
    /// Rebuild a read model and switch to it, or verify one against a rebuild.
    Projection(projection::ProjectionArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tokio_postgres=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match dispatch(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error with its causes, each said once: many errors repeat their cause in their own
/// message, which anyhow's `{:#}` would then print twice.
fn describe(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let global = cli.global;
    match cli.command {
        Commands::CommandService { listen, tenant_settings } => {
            services::command_service(&global, listen, tenant_settings).await
        }
        Commands::Projector { kind, batch_size } => {
            services::projector(&global, &kind, batch_size).await
        }
        Commands::QueryService { listen } => services::query_service(&global, listen).await,
        Commands::Import(args) => {
            run::import(&args.import, &args.command_url, Path::new("out")).await.map(|_| ())
        }
        Commands::Shift(args) => run::shift(&args).await.map(|_| ()),
        Commands::SlaPolicy { tenant, scale_down } => {
            services::set_sla_policy(&global, &tenant, scale_down).await
        }
        Commands::SlaTimer(args) => sla::timer(&global, &args).await,
        Commands::SlaCalendar(args) => sla::set_calendar(&global, &args).await,
        Commands::SlaPolicyVersion(args) => sla::set_policy_version(&global, &args).await,
        Commands::Report { query_url, tenant } => {
            let text = run::report(&query_url, &tenant).await?;
            println!("{text}");
            Ok(())
        }
        Commands::Run(args) => run::main_job(&global, args).await,
        Commands::Audit(args) => audit::run(&global, args).await,
        Commands::Projection(args) => projection::run(&global, &args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    /// An error that names its cause in its message and also gives it as its source.
    #[derive(Debug)]
    struct Repeats(std::io::Error);

    impl std::fmt::Display for Repeats {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "failed to parse settings.json: {}", self.0)
        }
    }

    impl std::error::Error for Repeats {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = || std::io::Error::other("expected value at line 1 column 2");
        let err = anyhow::Error::new(Repeats(io())).context("command service");
        assert_eq!(
            describe(&err),
            "command service: failed to parse settings.json: expected value at line 1 column 2"
        );
        let plain = anyhow::Error::new(io()).context("failed to read settings.json");
        assert_eq!(
            describe(&plain),
            "failed to read settings.json: expected value at line 1 column 2"
        );
    }
}
