//! The SLA timer: it follows the ticket event stream, keeps the SLA clocks of every open ticket
//! in memory, and records each warning and breach as it comes due, through the command API.
//!
//! What it owns: the in-memory clocks (rebuilt from the stream at every start, so it stores
//! nothing), and the decision of when a signal is sent. What it must not touch: the event
//! stream and the read models; every event it causes is appended by the command service.
//!
//! # Exactly once
//!
//! A signal is sent as `RecordSlaSignal` by the system actor `sla-timer`, with the signal's
//! key (`sla:<target>:<cycle>:<warning|breach>`, unique within its ticket) as the request id.
//! The command service answers a request id seen before with its first result (`duplicate`), and
//! the ticket refuses a signal it has recorded already (`FAILED_PRECONDITION`); both mean the
//! signal is on the stream. So a timer that restarts, or two timers running at once, record
//! each signal once. An auto-escalation the policy calls for is sent after its signal, as
//! `EscalateTicket` with request id `<key>:escalate` and the key as causation id, with the same
//! guarantee. The timer also reads the `sla.*` and escalation events back from the stream, so
//! that after a restart it does not even ask again.
//!
//! Layout:
//! - [`TimerConfig`], [`run`] and [`connect_commands`]: the service;
//! - [`TimerError`]: what ends a run, and how to handle it;
//! - `tickets`: the open tickets' facts and what has been sent for them.

mod tickets;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::push::OrderedConfig, consumer::DeliverPolicy};
use chrono::{DateTime, Utc};
use csmp_domain::{Clock, TenantId};
use csmp_eventstore::EventStoreConfig;
use csmp_projector::{load_tenant_sla, ProjectorError, ProjectorKind, TenantSla};
use csmp_proto::v1 as pb;
use csmp_proto::v1::ticket_commands_client::TicketCommandsClient;
use csmp_sla::{SignalKind, SlaSignal};
use futures::StreamExt;
use tonic::transport::Channel;
use tonic::Code;
use tracing::{debug, error, info, warn};

use crate::tickets::Tickets;

/// The actor id the timer's commands are recorded under, with `ROLE_SYSTEM`.
pub const ACTOR_ID: &str = "sla-timer";

/// Everything a timer needs besides its connections.
#[derive(Debug, Clone)]
pub struct TimerConfig {
    pub store: EventStoreConfig,
    /// The database of the `sla` schema, where tenants' policies and calendars are stored.
    pub database_url: String,
    /// How often due signals are looked for; 1 s suits production.
    pub tick: Duration,
    /// How often tenants' policies and calendars are read again.
    pub config_refresh: Duration,
    /// Tickets opened before this instant are not watched: a timer started beside a bulk
    /// import of history leaves the imported tickets alone. `None` watches every ticket.
    pub watch_opened_from: Option<DateTime<Utc>>,
}

impl TimerConfig {
    /// The default stream, a tick of a second, and configurations read every 30 seconds.
    pub fn new(database_url: impl Into<String>) -> TimerConfig {
        TimerConfig {
            store: EventStoreConfig::default(),
            database_url: database_url.into(),
            tick: Duration::from_secs(1),
            config_refresh: Duration::from_secs(30),
            watch_opened_from: None,
        }
    }
}

/// Why a timer run ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TimerError {
    /// NATS did not answer, or the stream could not be followed. Transient: start the timer
    /// again once NATS is reachable; it rebuilds its state from the stream.
    #[error("failed to {action}: {source}")]
    Nats {
        action: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// PostgreSQL (the `sla` schema) could not be reached. Transient, like `Nats`.
    #[error("failed to connect to the SLA database: {0}")]
    Postgres(#[source] tokio_postgres::Error),
    /// The `sla` schema could not be created or upgraded. Transient when PostgreSQL failed
    /// ([`ProjectorError::is_transient`]).
    #[error("failed to prepare the sla schema: {0}")]
    Schema(#[source] ProjectorError),
    /// The command service URL is malformed. Permanent: fix the configuration.
    #[error("invalid command service url {url:?}: {detail}")]
    InvalidCommandUrl { url: String, detail: String },
}

impl TimerError {
    /// Whether starting the timer again later can succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            TimerError::Schema(err) => err.is_transient(),
            TimerError::InvalidCommandUrl { .. } => false,
            TimerError::Nats { .. } | TimerError::Postgres(_) => true,
        }
    }

    fn nats<E: std::error::Error + Send + Sync + 'static>(
        action: &'static str,
    ) -> impl FnOnce(E) -> Self {
        move |source| TimerError::Nats { action, source: Box::new(source) }
    }
}

/// A client of the command service at `url`, connecting on first use, so that the timer can
/// start before the command service does.
pub fn connect_commands(url: &str) -> Result<TicketCommandsClient<Channel>, TimerError> {
    let endpoint = Channel::from_shared(url.to_owned()).map_err(|err| {
        TimerError::InvalidCommandUrl { url: url.to_owned(), detail: err.to_string() }
    })?;
    Ok(TicketCommandsClient::new(endpoint.connect_lazy()))
}

/// Runs the timer until `shutdown` completes.
///
/// Reads the whole stream from its start with an ordered consumer, and looks for due signals
/// on every tick once it has caught up with the stream as it was at start. `now` comes from
/// `clock`, so a test drives time. A command that fails with a code worth a retry
/// (`UNAVAILABLE`, `ABORTED`, ...) is sent again on a later tick; `FAILED_PRECONDITION` means
/// the ticket refuses it for good (already recorded, closed, top tier) and is not.
///
/// # Examples
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
///
/// use csmp_sla_timer::{connect_commands, run, TimerConfig};
///
/// let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
/// let commands = connect_commands("http://127.0.0.1:50051")?;
/// let config = TimerConfig::new("postgres://postgres@127.0.0.1:5432");
/// let clock = Arc::new(csmp_domain::SystemClock);
/// run(config, nats, commands, clock, async { tokio::signal::ctrl_c().await.unwrap_or(()) })
///     .await?;
/// # Ok(())
/// # }
/// ```
pub async fn run(
    config: TimerConfig,
    nats: async_nats::Client,
    commands: TicketCommandsClient<Channel>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), TimerError> {
    // 1. The database of tenants' policies and calendars.
    let (pg, connection) = tokio_postgres::connect(&config.database_url, tokio_postgres::NoTls)
        .await
        .map_err(TimerError::Postgres)?;
    let connection = tokio::spawn(async move {
        if let Err(err) = connection.await {
            warn!(cause = %err, "SLA database connection ended");
        }
    });
    csmp_projector::migrate(&pg, ProjectorKind::Sla).await.map_err(TimerError::Schema)?;

    // 2. The whole stream, from its first event; what is there now must be read before the
    // first tick, or signals already recorded would be asked for again.
    let js = jetstream::new(nats.clone());
    let mut stream = csmp_eventstore::ensure_stream(&js, &config.store)
        .await
        .map_err(TimerError::nats("set up the event stream"))?;
    let caught_up_at =
        stream.info().await.map_err(TimerError::nats("read the stream state"))?.state.last_sequence;
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_subject: nats.new_inbox(),
            filter_subject: config.store.all_subjects(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(TimerError::nats("create the ordered consumer"))?;
    let mut messages =
        consumer.messages().await.map_err(TimerError::nats("follow the event stream"))?;
    info!(stream = %config.store.stream, caught_up_at, "SLA timer reading the stream");

    let mut timer = Timer {
        commands,
        clock,
        pg,
        tickets: Tickets::new(config.watch_opened_from),
        configs: HashMap::new(),
    };
    let mut caught_up = caught_up_at == 0;
    let mut ticks = tokio::time::interval(config.tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refresh = tokio::time::interval(config.config_refresh);
    tokio::pin!(shutdown);

    // 3. Events and ticks, until shutdown.
    let result = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            message = messages.next() => {
                let Some(message) = message else {
                    break Err(TimerError::Nats {
                        action: "follow the event stream",
                        source: "the ordered consumer ended".into(),
                    });
                };
                let message = match message {
                    Ok(message) => message,
                    Err(err) => break Err(TimerError::nats("read the event stream")(err)),
                };
                let seq = match message.info() {
                    Ok(info) => info.stream_sequence,
                    Err(err) => {
                        warn!(cause = %err, "message without stream metadata skipped");
                        continue;
                    }
                };
                match csmp_eventstore::decode(seq, &message.payload) {
                    Ok(event) => timer.tickets.apply(&event),
                    Err(err) => debug!(seq, cause = %err, "undecodable message skipped"),
                }
                if !caught_up && seq >= caught_up_at {
                    caught_up = true;
                    info!(seq, open_tickets = timer.tickets.len(), "SLA timer caught up");
                }
            }
            _ = ticks.tick(), if caught_up => timer.tick().await,
            _ = refresh.tick() => timer.forget_configs(),
        }
    };
    connection.abort();
    info!("SLA timer stopped");
    result
}

struct Timer {
    commands: TicketCommandsClient<Channel>,
    clock: Arc<dyn Clock>,
    pg: tokio_postgres::Client,
    tickets: Tickets,
    configs: HashMap<String, TenantSla>,
}

/// What became of a command.
enum Sent {
    /// On the stream, now or before.
    Done,
    /// Worth another try on a later tick.
    Retry,
}

impl Timer {
    /// Policies and calendars are read again on the next tick; clocks are rebuilt with them.
    fn forget_configs(&mut self) {
        self.configs.clear();
        self.tickets.forget_clocks();
    }

    /// Sends every signal due now that is not on the stream yet, and the escalations they
    /// call for.
    async fn tick(&mut self) {
        let now = self.clock.now();
        let tenants = self.tickets.tenants();
        let missing: Vec<&str> =
            tenants.iter().map(String::as_str).filter(|t| !self.configs.contains_key(*t)).collect();
        if !missing.is_empty() {
            match load_tenant_sla(&self.pg, &missing).await {
                Ok(loaded) => self.configs.extend(loaded),
                Err(err) => {
                    log_config_error(&err);
                    return;
                }
            }
        }

        for signal in self.tickets.due(&self.configs, now) {
            let key = signal.key();
            if !self.tickets.is_done(&signal, &key) {
                match self.record(&signal, &key).await {
                    Sent::Done => self.tickets.mark_done(&signal, key.clone()),
                    Sent::Retry => continue,
                }
            }
            let escalate_key = format!("{key}:escalate");
            if signal.escalation.is_some() && !self.tickets.is_done(&signal, &escalate_key) {
                if let Sent::Done = self.escalate(&signal, &key, &escalate_key).await {
                    self.tickets.mark_done(&signal, escalate_key);
                }
            }
        }
    }

    async fn record(&mut self, signal: &SlaSignal, key: &str) -> Sent {
        let request = pb::RecordSlaSignalRequest {
            meta: Some(meta(&signal.tenant, key, None)),
            ticket_id: signal.ticket.to_string(),
            target: signal.target.as_str().to_owned(),
            cycle: signal.cycle,
            kind: match signal.kind {
                SignalKind::Warning => pb::SlaSignalKind::Warning,
                SignalKind::Breach => pb::SlaSignalKind::Breach,
            } as i32,
            due_at: Some(timestamp(signal.at)),
            policy_version: signal.policy_version,
        };
        let result = self.commands.record_sla_signal(request).await;
        outcome(key, result.map(|r| r.into_inner()))
    }

    async fn escalate(&mut self, signal: &SlaSignal, key: &str, escalate_key: &str) -> Sent {
        let escalation = signal.escalation.expect("only signals with an escalation");
        let to = match escalation.to {
            csmp_domain::SupportTier::Tier1 => pb::SupportTier::SupportTier1,
            csmp_domain::SupportTier::Tier2 => pb::SupportTier::SupportTier2,
            csmp_domain::SupportTier::Tier3 => pb::SupportTier::SupportTier3,
        };
        let what = match signal.kind {
            SignalKind::Warning => "at risk",
            SignalKind::Breach => "breached",
        };
        let request = pb::EscalateTicketRequest {
            meta: Some(meta(&signal.tenant, escalate_key, Some(key))),
            ticket_id: signal.ticket.to_string(),
            to_tier: to as i32,
            reason: format!("SLA {} {what} (cycle {})", signal.target, signal.cycle),
        };
        let result = self.commands.escalate_ticket(request).await;
        outcome(escalate_key, result.map(|r| r.into_inner()))
    }
}

fn outcome(key: &str, result: Result<pb::CommandResult, tonic::Status>) -> Sent {
    match result {
        Ok(result) => {
            info!(request_id = key, duplicate = result.duplicate, "SLA command recorded");
            Sent::Done
        }
        Err(status) if status.code() == Code::FailedPrecondition => {
            debug!(request_id = key, reason = status.message(), "SLA command refused for good");
            Sent::Done
        }
        Err(status) => {
            warn!(request_id = key, code = ?status.code(), reason = status.message(),
                "SLA command failed, retrying on a later tick");
            Sent::Retry
        }
    }
}

fn log_config_error(err: &ProjectorError) {
    if err.is_transient() {
        warn!(cause = %err, "SLA configuration unreadable, retrying on the next tick");
    } else {
        error!(cause = %err, "SLA configuration invalid: fix the stored policy or calendar");
    }
}

fn meta(tenant: &TenantId, request_id: &str, causation_id: Option<&str>) -> pb::CommandMeta {
    pb::CommandMeta {
        tenant: tenant.as_str().to_owned(),
        actor: Some(pb::Actor { id: ACTOR_ID.to_owned(), role: pb::Role::System as i32 }),
        request_id: request_id.to_owned(),
        correlation_id: None,
        causation_id: causation_id.map(str::to_owned),
        occurred_at: None,
    }
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.timestamp(), nanos: at.timestamp_subsec_nanos() as i32 }
}
