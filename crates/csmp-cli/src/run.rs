//! The main job and the client subcommands it is made of: import, shift and report.
//!
//! `csmp run` starts the command service, the three projectors and the query service as child
//! processes of this binary, waits until they answer, imports the ticket export, runs a live
//! shift on a demo tenant whose SLA targets are short enough to breach during the run, prints a
//! report read from the query API, and stops the services.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use csmp_proto::v1::ticket_commands_client::TicketCommandsClient;
use csmp_proto::v1::ticket_queries_client::TicketQueriesClient;
use tokio::process::{Child, Command};
use tonic::transport::Channel;

use crate::{report, shift, GlobalArgs};

/// The export shipped with the project: the structured columns of the real export.
const SHIPPED_EXPORT: &str = "data/tickets-structured.csv";
/// The full export, where the shared data sits beside the project.
const SHARED_EXPORT: &str = "../shared/data/support-tickets/tickets.csv";

#[derive(Args, Clone, Debug)]
pub struct ImportArgs {
    /// The ticket export (CSV). Default: the shared export beside the project if present, else
    /// the structured columns shipped in data/.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Tenant the export is imported into.
    #[arg(long, default_value = "export")]
    pub tenant: String,
    /// The export has no customer tier column; every imported customer gets this one.
    #[arg(long, default_value = "standard")]
    pub customer_tier: String,
    /// Where rejected and failed rows are written, with their row numbers and reasons.
    /// Default: import-rejects.csv in the output directory (out/, or `run`'s --out).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Tickets imported concurrently.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `csmp import`: the import, sent to a running command service.
#[derive(Args, Clone, Debug)]
pub struct ImportCommand {
    #[command(flatten)]
    pub import: ImportArgs,
    /// The command service to send the commands to.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub command_url: String,
}

#[derive(Args, Clone, Debug)]
pub struct ShiftArgs {
    /// Tenant the shift works on.
    #[arg(long, default_value = "shift")]
    pub tenant: String,
    /// New tickets arriving during the shift.
    #[arg(long, default_value_t = 240)]
    pub tickets: usize,
    /// Length of the shift in seconds: tickets arrive over its first 60%, and the work on them
    /// ends by its end.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Seed of the random journeys; the same seed gives the same shift.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Distinguishes this shift's requests from an earlier one's; default: the current time.
    #[arg(long)]
    pub run_id: Option<String>,
    /// The command service to send the commands to.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub command_url: String,
}

#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub import: ImportArgs,
    /// Tenant of the live shift.
    #[arg(long, default_value = "shift")]
    pub shift_tenant: String,
    /// New tickets arriving during the live shift.
    #[arg(long, default_value_t = 240)]
    pub shift_tickets: usize,
    /// Length of the live shift in seconds.
    #[arg(long, default_value_t = 60)]
    pub shift_seconds: u64,
    /// The shift tenant's SLA targets are the defaults divided by this, so that some breach.
    #[arg(long, default_value_t = 240)]
    pub shift_sla_scale_down: i32,
    /// Seed of the live shift's random journeys.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Where logs, rejects and the report are written.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

/// Imports the export named by `args`; prints and returns the summary.
/// Rejected rows go to `--rejects`, or else to `import-rejects.csv` in `out`; returns the
/// summary and the rejects file's path.
pub async fn import(
    args: &ImportArgs,
    command_url: &str,
    out: &Path,
) -> anyhow::Result<(csmp_import::ImportSummary, PathBuf)> {
    let file = export_path(args.file.as_deref())?;
    let tenant = csmp_domain::TenantId::parse(&args.tenant)?;
    let tier = csmp_domain::CustomerTier::parse(&args.customer_tier)?;
    eprintln!("importing {} into tenant {tenant}", file.display());
    let mut plan_options = csmp_import::PlanOptions::new(tenant);
    plan_options.customer_tier = tier;
    let plan = csmp_import::plan_file(&file, &plan_options)
        .with_context(|| format!("failed to read {}", file.display()))?;
    let client = TicketCommandsClient::new(connect(command_url).await?);
    let options = csmp_import::ImportOptions {
        concurrency: args.concurrency,
        progress: !args.quiet,
        ..csmp_import::ImportOptions::default()
    };
    let summary = csmp_import::import(client, &plan, &options).await;
    let rejects = args.rejects.clone().unwrap_or_else(|| out.join("import-rejects.csv"));
    if let Some(dir) = rejects.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    summary
        .write_rejects(&rejects)
        .with_context(|| format!("failed to write {}", rejects.display()))?;
    println!("{summary}");
    println!("rejected and failed rows, with their reasons: {}", rejects.display());
    Ok((summary, rejects))
}

pub async fn shift(args: &ShiftArgs) -> anyhow::Result<shift::ShiftSummary> {
    let client = TicketCommandsClient::new(connect(&args.command_url).await?);
    let options = shift::ShiftOptions {
        tenant: args.tenant.clone(),
        run_id: args.run_id.clone().unwrap_or_else(|| chrono::Utc::now().timestamp().to_string()),
        tickets: args.tickets,
        duration: Duration::from_secs(args.seconds),
        seed: args.seed,
    };
    eprintln!(
        "live shift on tenant {}: {} tickets arriving over {:.0}s, all work done within {}s",
        options.tenant,
        options.tickets,
        options.duration.mul_f64(0.6).as_secs_f64(),
        args.seconds
    );
    let summary = shift::run(client, options).await?;
    println!("{}", describe_shift(&summary));
    Ok(summary)
}

/// The report of `tenants`, as the read models stand now.
pub async fn report(query_url: &str, tenants: &[String]) -> anyhow::Result<String> {
    let mut client = TicketQueriesClient::new(connect(query_url).await?);
    let mut text = String::new();
    for tenant in tenants {
        text.push_str(
            &report::tenant_section(&mut client, tenant, "Every ticket, earlier runs' included")
                .await?,
        );
    }
    text.push_str(&report::projector_section(&mut client).await?);
    Ok(text)
}

/// The main job.
pub async fn main_job(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let logs = args.out.join("logs");
    std::fs::create_dir_all(&logs)
        .with_context(|| format!("failed to create {}", logs.display()))?;

    // 1. The services, each its own process, on free ports.
    let command_port = free_port()?;
    let query_port = free_port()?;
    let command_url = format!("http://127.0.0.1:{command_port}");
    let query_url = format!("http://127.0.0.1:{query_port}");
    let mut services = Services::default();
    services.start(
        global,
        &logs,
        "command-service",
        &["command-service", "--listen", &format!("127.0.0.1:{command_port}")],
    )?;
    for kind in ["queues", "sla", "feedback"] {
        services.start(global, &logs, &format!("projector-{kind}"), &["projector", kind])?;
    }
    services.start(
        global,
        &logs,
        "query-service",
        &["query-service", "--listen", &format!("127.0.0.1:{query_port}")],
    )?;
    let outcome = async {
        wait_until_serving(&command_url, &mut services).await?;

        // The SLA timer, once commands are served. It watches every open ticket with a known
        // opening time: the live shift's, and those an earlier run left open. Imported tickets
        // were opened at an unknown time and have no clocks.
        services.start(
            global,
            &logs,
            "sla-timer",
            &["sla-timer", "--command-url", &command_url],
        )?;
        wait_until_serving(&query_url, &mut services).await?;
        eprintln!(
            "services up: commands {command_url}, queries {query_url}, logs in {}",
            logs.display()
        );

        // 2. Import.
        let (imported, rejects_path) = import(&args.import, &command_url, &args.out).await?;

        // 3. The live shift, on a tenant with short SLA targets.
        crate::services::set_sla_policy(global, &args.shift_tenant, args.shift_sla_scale_down)
            .await?;
        let shift_args = ShiftArgs {
            tenant: args.shift_tenant.clone(),
            tickets: args.shift_tickets,
            seconds: args.shift_seconds,
            seed: args.seed,
            run_id: None,
            command_url: command_url.clone(),
        };
        let shifted = shift(&shift_args).await?;

        // 4. The report, once every projector has applied everything written above; a service
        // that dies meanwhile ends the wait at once, naming its log.
        let mut queries = TicketQueriesClient::new(connect(&query_url).await?);
        let stream_end = stream_end(&mut queries).await?;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            services.check_alive()?;
            let step = Duration::from_secs(2);
            match report::wait_for_projections(&mut queries, stream_end, step).await {
                Ok(()) => break,
                Err(err) if Instant::now() > deadline => return Err(err),
                Err(_) => continue,
            }
        }
        let tenants = [args.import.tenant.clone(), args.shift_tenant.clone()];
        let mut text = String::from("\n================ csmp report ================\n");
        text.push_str(&format!("{imported}\n"));
        text.push_str(&format!(
            "rejected and failed rows, with their reasons: {}; they are in no figure below\n",
            rejects_path.display()
        ));
        text.push_str(&format!("This run's shift: {}\n", describe_shift(&shifted)));
        text.push_str(&report(&query_url, &tenants).await?);
        let took = started.elapsed().as_secs_f64();
        text.push_str(&format!("\nMain job took {took:.0}s after the build\n"));
        println!("{text}");
        let report_path = args.out.join("report.txt");
        std::fs::write(&report_path, &text)
            .with_context(|| format!("failed to write {}", report_path.display()))?;
        eprintln!("report written to {}", report_path.display());
        anyhow::Ok(shifted.errors.len())
    }
    .await;

    // 5. Stop the services whatever happened.
    services.stop().await;
    let errors = outcome?;
    if errors > 0 {
        bail!("{errors} shift commands were refused; see the shift summary above");
    }
    Ok(())
}

fn describe_shift(s: &shift::ShiftSummary) -> String {
    let mut text = format!(
        "{} opened, {} acknowledged, {} escalations by agents (the SLA timer's come on top), \
         {} asked, {} replied, refunds: {} issued within the agent's limit, {} above it \
         ({} approved and {} rejected by a lead), {} resolved, {} rated, {} closed, in {:.0}s",
        s.opened,
        s.acknowledged,
        s.escalated,
        s.asked,
        s.replied,
        s.refunds_issued,
        s.refunds_requested,
        s.refunds_approved,
        s.refunds_rejected,
        s.resolved,
        s.rated,
        s.closed,
        s.took.as_secs_f64()
    );
    if !s.errors.is_empty() {
        text.push_str(&format!("; {} commands refused:", s.errors.len()));
        for e in s.errors.iter().take(10) {
            text.push_str(&format!("\n  {e}"));
        }
    }
    text
}

async fn stream_end(queries: &mut TicketQueriesClient<Channel>) -> anyhow::Result<u64> {
    let status = queries
        .get_projector_status(csmp_proto::v1::ProjectorStatusRequest {})
        .await
        .context("failed to read projector status")?
        .into_inner();
    Ok(status.projectors.iter().map(|p| p.stream_last_position).max().unwrap_or(0))
}

fn export_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    for candidate in [SHARED_EXPORT, SHIPPED_EXPORT] {
        if Path::new(candidate).exists() {
            return Ok(PathBuf::from(candidate));
        }
    }
    bail!("no ticket export found at {SHARED_EXPORT} or {SHIPPED_EXPORT}; pass --file")
}

async fn connect(url: &str) -> anyhow::Result<Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("invalid URL {url}"))?;
    endpoint.connect().await.with_context(|| format!("failed to connect to {url}"))
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free port")?;
    Ok(listener.local_addr()?.port())
}

/// Polls gRPC health until the service at `url` reports SERVING.
async fn wait_until_serving(url: &str, services: &mut Services) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        services.check_alive()?;
        if let Ok(channel) = connect(url).await {
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
            let request = tonic_health::pb::HealthCheckRequest { service: String::new() };
            if let Ok(answer) = health.check(request).await {
                if answer.into_inner().status
                    == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
                {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            bail!("service at {url} did not become ready within 60s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The child processes of the main job.
#[derive(Default)]
struct Services {
    children: Vec<(String, Child)>,
}

impl Services {
    fn start(
        &mut self,
        global: &GlobalArgs,
        logs: &Path,
        name: &str,
        args: &[&str],
    ) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("cannot find the csmp binary")?;
        let log_path = logs.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("failed to create {}", log_path.display()))?;
        let child = Command::new(exe)
            .args(args)
            .env("NATS_URL", &global.nats_url)
            .env("DATABASE_URL", &global.database_url)
            .env("CSMP_STREAM", &global.stream)
            .env("CSMP_SUBJECT_PREFIX", &global.subject_prefix)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("failed to start {name}"))?;
        self.children.push((name.to_owned(), child));
        Ok(())
    }

    /// Fails if a service has exited: its log says why.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited with {status}; see its log, {name}.log in the logs folder");
            }
        }
        Ok(())
    }

    /// Asks every service to stop (SIGTERM), then kills what is still running after 10 s.
    async fn stop(&mut self) {
        for (_, child) in &self.children {
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) with a pid of our own child and a valid signal number.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGTERM);
                }
            }
        }
        for (name, child) in &mut self.children {
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    eprintln!("{name} did not stop within 10s; killing it");
                    let _ = child.kill().await;
                }
            }
        }
    }
}
