//! Rebuilding a read model from the first event into a fresh schema, and the atomic switch to it.
//!
//! [`rebuild`] creates the schema `<kind>_rebuild_<unix time>`, projects the whole stream into it
//! through a consumer of its own with the live projector's batch transaction, and once its
//! checkpoint has reached the live one renames the schemas in one transaction:
//!
//! ```sql
//! ALTER SCHEMA queues RENAME TO queues_retired_<unix time>;
//! ALTER SCHEMA queues_rebuild_<unix time> RENAME TO queues;
//! ```
//!
//! Queries never stop: renaming a schema invalidates every cached plan in every session, so the
//! query service's and the live projector's prepared statements, which name `queues.tickets`
//! and so on, resolve to the new tables at their next execution. The live projector's batch
//! transactions take the read model's switch lock shared and the switch takes it exclusively,
//! so no batch straddles the switch; after it the live projector finds the rebuilt checkpoint,
//! skips what it delivers at or below it and goes on from there. The retired schema is kept for
//! the operator to drop unless [`RebuildOptions::drop_retired`] says otherwise.
//!
//! The `sla` projector reads the tenants' SLA configuration (base policies, policy versions,
//! calendars) from the live `sla` schema while rebuilding; the switch copies those rows into the
//! rebuilt schema under a share lock on the live tables, so that no configuration change is lost
//! between the copy and the rename.
//!
//! This module never touches the live read model's rows; it writes only the schema it creates.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use futures::{FutureExt, StreamExt};
use tokio_postgres::{Client, GenericClient};
use tracing::{debug, info, warn};

use crate::error::ProjectorError;
use crate::runner::{self, AbortOnDrop, BatchEnd, Batches};
use crate::schema::{check_schema_name, migrate, migrate_schema, switch_lock};
use crate::{FaultInjection, ProjectorConfig, ProjectorKind};

/// How long the last events may take to project while the live projector waits on the switch
/// lock; past it the lock is released and the rebuild catches up once more before trying again.
pub(crate) const LOCKED_CATCH_UP: Duration = Duration::from_secs(5);
/// How long a catch-up waits for a message it knows the stream holds.
const MESSAGE_WAIT: Duration = Duration::from_secs(30);
/// How long a batch that is filling waits for its next message.
const FILL_WAIT: Duration = Duration::from_millis(2);
/// How often the stream's last position is asked for, for progress reports.
const STREAM_INFO_EVERY: Duration = Duration::from_secs(1);

/// The SLA configuration tables and their columns: not derived from events, copied from the live
/// `sla` schema into the rebuilt one at the switch.
const SLA_CONFIGURATION: &[(&str, &str)] = &[
    ("tenant_policies", "tenant, policy, updated_at"),
    ("policy_versions", "tenant, version, effective_from, policy, updated_at"),
    ("calendars", "tenant, name, effective_from, calendar, updated_at"),
];

/// Choices of a rebuild.
#[derive(Debug, Clone, Default)]
pub struct RebuildOptions {
    /// Drop the retired schema right after the switch instead of keeping it for the operator.
    pub drop_retired: bool,
}

/// Where a rebuild or a verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildPhase {
    /// Projecting into the new schema while the live projector goes on.
    CatchingUp,
    /// Holding the switch lock: the live projector waits while the last events are projected.
    Locked,
}

/// A progress report, given after every batch and when the phase changes.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildProgress {
    pub kind: ProjectorKind,
    /// The schema being built.
    pub schema: String,
    pub phase: RebuildPhase,
    /// The last stream position applied to the new schema.
    pub checkpoint: u64,
    /// Stream positions applied by this run (events and dead letters).
    pub applied: u64,
    /// The stream's last position, asked for at most once a second.
    pub stream_last: u64,
    /// The live read model's checkpoint when last read.
    pub live_checkpoint: u64,
    /// Positions applied per second since the start.
    pub events_per_second: f64,
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub kind: ProjectorKind,
    /// The name the rebuilt schema had before it became the live one.
    pub rebuilt: String,
    /// The former live schema, now retired.
    pub retired: String,
    /// Whether the retired schema was dropped ([`RebuildOptions::drop_retired`]).
    pub retired_dropped: bool,
    /// The rebuilt checkpoint at the switch.
    pub checkpoint: u64,
    /// The live checkpoint at the switch; at most `checkpoint`.
    pub live_checkpoint: u64,
    /// Stream positions applied by the rebuild.
    pub applied: u64,
    pub elapsed: Duration,
}

/// Rebuilds `config.kind`'s read model from the first event into a fresh schema and switches
/// the live read model to it, while the live projector and the queries go on.
///
/// `config.schema` is ignored (the live schema is always `kind.name()`); `config.batch_size`
/// sizes the rebuild's batches. `progress` is called after every batch. On an error nothing is
/// switched and the new schema is dropped. Needs the right to create and rename schemas.
///
/// # Examples
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use csmp_projector::{rebuild, ProjectorConfig, RebuildOptions};
///
/// let client = async_nats::connect("nats://127.0.0.1:4222").await?;
/// let config = ProjectorConfig {
///     kind: "queues".parse()?,
///     store: csmp_eventstore::EventStoreConfig::default(),
///     database_url: "postgres://postgres@127.0.0.1:5432".to_owned(),
///     batch_size: 1000,
///     consumer_name: None,
///     schema: None,
/// };
/// let report = rebuild(config, client, RebuildOptions::default(), |p| {
///     eprintln!("{} of {}", p.checkpoint, p.stream_last)
/// })
/// .await?;
/// println!("retired schema: {}", report.retired);
/// # Ok(())
/// # }
/// ```
pub async fn rebuild(
    config: ProjectorConfig,
    client: async_nats::Client,
    options: RebuildOptions,
    mut progress: impl FnMut(&RebuildProgress),
) -> Result<RebuildReport, ProjectorError> {
    let kind = config.kind;
    let (mut control, _control) = runner::connect(&config.database_url).await?;

    // 1. The live schema up to date, so that the copy gets the same tables; then the copy.
    migrate(&control, kind).await?;
    let mut replay = Replay::start(&config, client, "rebuild", &control).await?;
    info!(projector = kind.name(), schema = %replay.schema, "rebuild started");

    // 2. Project, switch; on any error the half-built schema goes.
    let result = switch_when_caught_up(&mut control, &mut replay, &options, &mut progress).await;
    match result {
        Ok(report) => {
            replay.delete_consumer().await;
            info!(
                projector = kind.name(),
                retired = %report.retired,
                checkpoint = report.checkpoint,
                "rebuilt read model switched in"
            );
            Ok(report)
        }
        Err(err) => {
            replay.discard(&control).await;
            Err(err)
        }
    }
}

async fn switch_when_caught_up(
    control: &mut Client,
    replay: &mut Replay,
    options: &RebuildOptions,
    progress: &mut dyn FnMut(&RebuildProgress),
) -> Result<RebuildReport, ProjectorError> {
    let kind = replay.kind;
    let live_schema = kind.name();
    loop {
        // 1. Up to the end of the stream as it is now, the live projector going on.
        replay.live_checkpoint = read_checkpoint(&*control, live_schema).await?;
        replay.refresh_stream_last(true).await?;
        let target = replay.stream_last.max(replay.live_checkpoint);
        replay.catch_up(target, None, RebuildPhase::CatchingUp, progress).await?;

        // 2. The switch lock: the live projector's next batch waits until the switch is done.
        let tx = control.transaction().await.map_err(ProjectorError::postgres("begin switch"))?;
        let (class, key) = switch_lock(kind);
        tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&class, &key])
            .await
            .map_err(ProjectorError::postgres("take the switch lock"))?;
        let live = read_checkpoint(&tx, live_schema).await?;
        replay.live_checkpoint = live;
        let deadline = Instant::now() + LOCKED_CATCH_UP;
        if !replay.catch_up(live, Some(deadline), RebuildPhase::Locked, progress).await? {
            // The live projector has run too far ahead to wait for: let it go and catch up.
            tx.rollback().await.map_err(ProjectorError::postgres("end switch"))?;
            info!(projector = live_schema, live, "live projector ahead: catching up again");
            continue;
        }

        // 3. Re-checked inside the transaction, from the tables themselves.
        let rebuilt = read_checkpoint(&tx, &replay.schema).await?;
        if rebuilt < live {
            tx.rollback().await.map_err(ProjectorError::postgres("end switch"))?;
            continue;
        }

        // 4. The operator configuration, then the two renames, in one commit.
        if kind == ProjectorKind::Sla {
            copy_sla_configuration(&tx, &replay.schema).await?;
        }
        let retired =
            free_schema_name(&tx, &format!("{live_schema}_retired_{}", unix_time())).await?;
        tx.batch_execute(&format!(
            "ALTER SCHEMA {live_schema} RENAME TO {retired};
             ALTER SCHEMA {} RENAME TO {live_schema};",
            replay.schema
        ))
        .await
        .map_err(ProjectorError::postgres("switch schemas"))?;
        tx.commit().await.map_err(ProjectorError::postgres("commit switch"))?;

        // 5. The retired schema stays for the operator, unless asked otherwise.
        let mut retired_dropped = false;
        if options.drop_retired {
            match control.batch_execute(&format!("DROP SCHEMA {retired} CASCADE")).await {
                Ok(()) => retired_dropped = true,
                Err(err) => warn!(schema = %retired, error = %err, "failed to drop retired schema"),
            }
        }
        return Ok(RebuildReport {
            kind,
            rebuilt: replay.schema.clone(),
            retired,
            retired_dropped,
            checkpoint: rebuilt,
            live_checkpoint: live,
            applied: replay.applied,
            elapsed: replay.started.elapsed(),
        });
    }
}

/// Copies the SLA configuration rows of the live `sla` schema into `schema`, after waiting for
/// and then holding off every writer of them until the transaction ends.
async fn copy_sla_configuration(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
) -> Result<(), ProjectorError> {
    let live: Vec<String> = SLA_CONFIGURATION.iter().map(|(t, _)| format!("sla.{t}")).collect();
    let mut sql = format!("LOCK TABLE {} IN SHARE MODE;", live.join(", "));
    for (table, columns) in SLA_CONFIGURATION {
        sql.push_str(&format!(
            "DELETE FROM {schema}.{table};
             INSERT INTO {schema}.{table} ({columns}) SELECT {columns} FROM sla.{table};"
        ));
    }
    tx.batch_execute(&sql).await.map_err(ProjectorError::postgres("copy SLA configuration"))
}

/// `base`, or `base_2`, `base_3` .. : the first name no schema has.
pub(crate) async fn free_schema_name(
    pg: &impl GenericClient,
    base: &str,
) -> Result<String, ProjectorError> {
    let mut name = base.to_owned();
    for n in 2.. {
        let taken = pg
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&name])
            .await
            .map_err(ProjectorError::postgres("look up schema"))?
            .is_some();
        if !taken {
            break;
        }
        name = format!("{base}_{n}");
    }
    check_schema_name(&name)?;
    Ok(name)
}

pub(crate) async fn read_checkpoint(
    pg: &impl GenericClient,
    schema: &str,
) -> Result<u64, ProjectorError> {
    let position: i64 = pg
        .query_one(&format!("SELECT position FROM {schema}.checkpoint WHERE id = 1"), &[])
        .await
        .map_err(ProjectorError::postgres("read checkpoint"))?
        .get(0);
    Ok(position as u64)
}

/// Seconds since 1970, for the names of new schemas.
pub(crate) fn unix_time() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A projection from the first event into a schema of its own, driven up to chosen positions.
pub(crate) struct Replay {
    pub kind: ProjectorKind,
    pub schema: String,
    pub checkpoint: u64,
    pub applied: u64,
    pub stream_last: u64,
    pub live_checkpoint: u64,
    pub started: Instant,
    config: ProjectorConfig,
    consumer_name: String,
    pg: Client,
    _connection: AbortOnDrop,
    batches: Batches,
    stream: jetstream::stream::Stream,
    stream_info_at: Option<Instant>,
}

impl Replay {
    /// Creates the schema `<kind>_<label>_<unix time>` (or the first free name after it) with
    /// the read model's tables, and prepares the batch transaction on a connection of its own.
    pub async fn start(
        config: &ProjectorConfig,
        client: async_nats::Client,
        label: &str,
        control: &Client,
    ) -> Result<Replay, ProjectorError> {
        let kind = config.kind;
        let js = jetstream::new(client);
        let stream = js
            .get_stream(&config.store.stream)
            .await
            .map_err(ProjectorError::nats("get the event stream"))?;

        // CREATE SCHEMA without IF NOT EXISTS: a name taken since the look-up fails here.
        let schema = free_schema_name(control, &format!("{kind}_{label}_{}", unix_time())).await?;
        control
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .map_err(ProjectorError::postgres("create schema"))?;
        let (pg, connection) = runner::connect(&config.database_url).await?;
        let mut config = config.clone();
        config.schema = Some(schema.clone());
        let prepared = async {
            migrate_schema(&pg, kind, &schema).await?;
            Batches::prepare(&pg, &config, FaultInjection::default(), false).await
        };
        let batches = match prepared.await {
            Ok(batches) => batches,
            Err(err) => {
                let _ = control.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await;
                return Err(err);
            }
        };
        Ok(Replay {
            kind,
            consumer_name: format!("csmp-{schema}"),
            schema,
            checkpoint: 0,
            applied: 0,
            stream_last: 0,
            live_checkpoint: 0,
            started: Instant::now(),
            config,
            pg,
            _connection: connection,
            batches,
            stream,
            stream_info_at: None,
        })
    }

    /// Asks the stream for its last position, at most once a second unless `now`.
    async fn refresh_stream_last(&mut self, now: bool) -> Result<(), ProjectorError> {
        let due = self.stream_info_at.is_none_or(|at| at.elapsed() >= STREAM_INFO_EVERY);
        if now || due {
            let info =
                self.stream.info().await.map_err(ProjectorError::nats("read stream info"))?;
            self.stream_last = info.state.last_sequence;
            self.stream_info_at = Some(Instant::now());
        }
        Ok(())
    }

    fn report(&self, phase: RebuildPhase) -> RebuildProgress {
        let seconds = self.started.elapsed().as_secs_f64();
        RebuildProgress {
            kind: self.kind,
            schema: self.schema.clone(),
            phase,
            checkpoint: self.checkpoint,
            applied: self.applied,
            stream_last: self.stream_last.max(self.checkpoint),
            live_checkpoint: self.live_checkpoint,
            events_per_second: if seconds > 0.0 { self.applied as f64 / seconds } else { 0.0 },
        }
    }

    /// Projects up to `target` and never past it. Returns false when `deadline` came first.
    pub async fn catch_up(
        &mut self,
        target: u64,
        deadline: Option<Instant>,
        phase: RebuildPhase,
        progress: &mut dyn FnMut(&RebuildProgress),
    ) -> Result<bool, ProjectorError> {
        progress(&self.report(phase));
        if self.checkpoint >= target {
            return Ok(true);
        }
        let mut messages = self.open_consumer().await?;
        let size = self.config.batch_size.max(1);
        let reached = loop {
            if self.checkpoint >= target {
                break true;
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                break false;
            }

            // 1. A batch: the first message, what is buffered, and a moment's wait for more.
            let wait = deadline.map_or(MESSAGE_WAIT, |d| (d - now).min(MESSAGE_WAIT));
            let first = match tokio::time::timeout(wait, messages.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(err))) => return Err(ProjectorError::nats("read the consumer")(err)),
                Ok(None) => {
                    return Err(ProjectorError::Nats {
                        action: "read the consumer",
                        source: "message stream ended".into(),
                    })
                }
                Err(_) if deadline.is_some() => continue,
                Err(_) => {
                    return Err(ProjectorError::Nats {
                        action: "read the consumer",
                        source: format!("no message after position {}", self.checkpoint).into(),
                    })
                }
            };
            let mut batch = vec![first];
            while batch.len() < size {
                match messages.next().now_or_never() {
                    Some(Some(Ok(message))) => batch.push(message),
                    _ => break,
                }
            }
            while batch.len() > 1 && batch.len() < size {
                match tokio::time::timeout(FILL_WAIT, messages.next()).await {
                    Ok(Some(Ok(message))) => batch.push(message),
                    _ => break,
                }
            }

            // 2. Never past the target: a verification compares at exactly that position.
            let mut incoming = batch.iter().map(runner::incoming).collect::<Result<Vec<_>, _>>()?;
            incoming.retain(|message| message.position <= target);
            if incoming.is_empty() {
                continue;
            }
            let (end, _) = self.batches.apply(&mut self.pg, &incoming).await?;
            let checkpoint = self.batches.checkpoint(&self.pg).await?;
            self.applied += checkpoint.saturating_sub(self.checkpoint);
            self.checkpoint = checkpoint;
            self.refresh_stream_last(false).await?;
            progress(&self.report(phase));

            // 3. A gap means the consumer is not after the checkpoint: start it there again.
            if let BatchEnd::Gap { checkpoint } = end {
                debug!(schema = %self.schema, checkpoint, "replay consumer re-created");
                drop(messages);
                messages = self.open_consumer().await?;
            }
        };
        self.delete_consumer().await;
        Ok(reached)
    }

    /// A consumer of this replay's own, starting right after its checkpoint. It needs no
    /// acknowledgements (the checkpoint is the position) and the server removes it a minute
    /// after its last use, should this process die.
    async fn open_consumer(&self) -> Result<pull::Stream, ProjectorError> {
        self.delete_consumer().await;
        let consumer = self
            .stream
            .create_consumer(pull::Config {
                name: Some(self.consumer_name.clone()),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: self.checkpoint + 1,
                },
                ack_policy: AckPolicy::None,
                filter_subject: self.config.store.all_subjects(),
                inactive_threshold: Duration::from_secs(60),
                description: Some(format!("csmp projection into {}", self.schema)),
                ..Default::default()
            })
            .await
            .map_err(ProjectorError::nats("create the replay consumer"))?;
        consumer
            .stream()
            .max_messages_per_batch(self.config.batch_size.max(1))
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(ProjectorError::nats("pull from the replay consumer"))
    }

    pub async fn delete_consumer(&self) {
        // Deleting a consumer that is not there fails harmlessly.
        let _ = self.stream.delete_consumer(&self.consumer_name).await;
    }

    /// Drops the schema and the consumer: after a failure, or when a verification is done.
    pub async fn discard(&self, control: &Client) {
        self.delete_consumer().await;
        let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        if let Err(err) = control.batch_execute(&drop).await {
            warn!(schema = %self.schema, error = %err, "failed to drop schema");
        }
    }
}
