//! The SLA subcommands: the SLA timer service, and storing a tenant's calendars and policy
//! versions in the `sla` schema.
//!
//! The timer's logic lives in `csmp-sla-timer` and the storage in `csmp-projector`; this module
//! only reads files and flags and connects.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use csmp_domain::{SystemClock, TenantId};
use csmp_sla::{Calendar, PolicyVersion};
use csmp_sla_timer::TimerConfig;

use crate::services::shutdown_signal;
use crate::GlobalArgs;

/// `csmp sla-timer`.
#[derive(Args, Clone, Debug)]
pub struct TimerArgs {
    /// The command service the signals and escalations are sent to.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub command_url: String,
    /// How often due signals are looked for, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub tick_ms: u64,
    /// Watch only tickets opened at or after this instant (RFC 3339), e.g. to leave imported
    /// history alone.
    #[arg(long)]
    pub watch_opened_from: Option<DateTime<Utc>>,
}

/// `csmp sla-calendar`.
#[derive(Args, Clone, Debug)]
pub struct CalendarArgs {
    #[arg(long)]
    pub tenant: String,
    /// The name policies refer to the calendar by.
    #[arg(long)]
    pub name: String,
    /// JSON file: `{"time_zone": .., "opening_hours": {..}, "holidays": [..]}`.
    #[arg(long)]
    pub file: PathBuf,
    /// iCalendar file whose events' dates are added as holidays.
    #[arg(long)]
    pub holidays_ics: Option<PathBuf>,
    /// When this calendar version takes effect (RFC 3339); tickets opened before keep the
    /// version they were opened under. Defaults to now.
    #[arg(long)]
    pub effective_from: Option<DateTime<Utc>>,
}

/// `csmp sla-policy-version`.
#[derive(Args, Clone, Debug)]
pub struct PolicyVersionArgs {
    #[arg(long)]
    pub tenant: String,
    /// JSON file: `{"version": 1, "effective_from": "2026-01-01T00:00:00Z", "policy": {..}}`.
    #[arg(long)]
    pub file: PathBuf,
}

/// Runs the SLA timer until Ctrl-C or SIGTERM.
pub async fn timer(global: &GlobalArgs, args: &TimerArgs) -> anyhow::Result<()> {
    let nats = async_nats::connect(&global.nats_url)
        .await
        .with_context(|| format!("failed to connect to NATS at {}", global.nats_url))?;
    let commands = csmp_sla_timer::connect_commands(&args.command_url)?;
    let config = TimerConfig {
        store: global.store(),
        tick: Duration::from_millis(args.tick_ms.max(1)),
        watch_opened_from: args.watch_opened_from,
        ..TimerConfig::new(global.database_url.clone())
    };
    tracing::info!(command_url = %args.command_url, "SLA timer starting");
    csmp_sla_timer::run(config, nats, commands, Arc::new(SystemClock), shutdown_signal()).await?;
    Ok(())
}

/// Stores a new calendar version, with the holidays of an iCalendar file if one is given.
pub async fn set_calendar(global: &GlobalArgs, args: &CalendarArgs) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant)?;
    let mut calendar: Calendar = serde_json::from_str(&read(&args.file)?)
        .with_context(|| format!("invalid calendar in {}", args.file.display()))?;
    if let Some(ics) = &args.holidays_ics {
        calendar = calendar
            .with_holidays_from_ical(&read(ics)?)
            .with_context(|| format!("invalid holidays in {}", ics.display()))?;
    }
    let effective_from = args.effective_from.unwrap_or_else(Utc::now);
    let pg = connect_pg(global).await?;
    csmp_projector::set_calendar(&pg, &tenant, &args.name, &calendar, effective_from).await?;
    eprintln!(
        "stored calendar {:?} of tenant {tenant} effective from {effective_from} with {} holidays",
        args.name,
        calendar.holidays().len()
    );
    Ok(())
}

/// Stores the next policy version of a tenant.
pub async fn set_policy_version(
    global: &GlobalArgs,
    args: &PolicyVersionArgs,
) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant)?;
    let version: PolicyVersion = serde_json::from_str(&read(&args.file)?)
        .with_context(|| format!("invalid policy version in {}", args.file.display()))?;
    let pg = connect_pg(global).await?;
    let number = version.version;
    csmp_projector::set_sla_policy_version(&pg, &tenant, version).await?;
    eprintln!("stored SLA policy version {number} of tenant {tenant}");
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))
}

async fn connect_pg(global: &GlobalArgs) -> anyhow::Result<tokio_postgres::Client> {
    let (pg, conn) = tokio_postgres::connect(&global.database_url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("failed to connect to PostgreSQL at {}", global.database_url))?;
    tokio::spawn(conn);
    Ok(pg)
}
