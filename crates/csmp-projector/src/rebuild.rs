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
//! The name of a new schema is picked by `CREATE SCHEMA` itself, trying `_2`, `_3` .. while the
//! name is taken, so two rebuilds (or verifications) started in the same second get a schema
//! each. The process holds a session lock on the schema it builds until it is switched in or
//! dropped: [`unfinished_schemas`] tells the schemas of running rebuilds from those a killed
//! process left behind. A rebuild stops at its shutdown signal, or when its future is dropped,
//! and drops its unfinished schema either way; it never drops the live or a retired schema.
//!
//! The `sla` projector reads the tenants' SLA configuration (base policies, policy versions,
//! calendars) from the live `sla` schema while rebuilding; the switch copies those rows into the
//! rebuilt schema under a share lock on the live tables, so that no configuration change is lost
//! between the copy and the rename.
//!
//! This module never touches the live read model's rows; it writes only the schema it creates.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use futures::StreamExt;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient};
use tracing::{debug, info, warn};

use crate::error::ProjectorError;
use crate::runner::{self, AbortOnDrop, BatchEnd, Batches};
use crate::schema::{
    check_schema_name, hold_switch_lock, migrate, migrate_schema, scratch_lock, SCRATCH_LOCK_CLASS,
};
use crate::{FaultInjection, ProjectorConfig, ProjectorKind};

/// How long the last events may take to project while the live projector waits on the switch
/// lock; past it the lock is released and the rebuild catches up once more before trying again.
pub(crate) const LOCKED_CATCH_UP: Duration = Duration::from_secs(5);
/// How long a catch-up waits for a message it knows the stream holds.
const MESSAGE_WAIT: Duration = Duration::from_secs(30);
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
/// When `shutdown` completes before the switch has begun, the rebuild stops where it is, drops
/// the new schema and fails with [`ProjectorError::Stopped`]; once the switch has begun it is
/// finished first. Dropping the returned future also drops the new schema, from a task of its
/// own on the current runtime.
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
/// let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
/// let report = rebuild(config, client, RebuildOptions::default(), ctrl_c, |p| {
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
    shutdown: impl Future<Output = ()> + Send,
    mut progress: impl FnMut(&RebuildProgress) + Send,
) -> Result<RebuildReport, ProjectorError> {
    let kind = config.kind;
    let mut shutdown: Shutdown<'_> = Box::pin(shutdown);
    let (mut control, _control) = runner::connect(&config.database_url).await?;

    // 1. The live schema up to date, so that the copy gets the same tables; then the copy.
    migrate(&control, kind).await?;
    let mut replay = Replay::start(&config, client, "rebuild", &mut control).await?;
    info!(projector = kind.name(), schema = %replay.schema, "rebuild started");

    // 2. Project, switch; on any error or at the shutdown signal the half-built schema goes.
    let result =
        switch_when_caught_up(&mut control, &mut replay, &options, &mut shutdown, &mut progress)
            .await;
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
        Err(halt) => Err(replay.end_early(&control, halt).await),
    }
}

async fn switch_when_caught_up(
    control: &mut Client,
    replay: &mut Replay,
    options: &RebuildOptions,
    shutdown: &mut Shutdown<'_>,
    progress: &mut (dyn FnMut(&RebuildProgress) + Send),
) -> Result<RebuildReport, Halt> {
    let kind = replay.kind;
    let live_schema = kind.name();
    loop {
        // 1. Up to the end of the stream as it is now, the live projector going on.
        replay.live_checkpoint = read_checkpoint(&*control, live_schema).await?;
        replay.refresh_stream_last(true).await?;
        let target = replay.stream_last.max(replay.live_checkpoint);
        let caught_up = replay.catch_up(target, None, RebuildPhase::CatchingUp, &mut *progress);
        unless_shutdown(shutdown, caught_up).await?;

        // 2. The switch lock: the live projector's next batch waits until the switch is done.
        let tx = control.transaction().await.map_err(ProjectorError::postgres("begin switch"))?;
        let locked = hold_switch_lock(&tx, kind);
        unless_shutdown(shutdown, locked).await?;
        let live = read_checkpoint(&tx, live_schema).await?;
        replay.live_checkpoint = live;
        let deadline = Instant::now() + LOCKED_CATCH_UP;
        let caught_up = replay.catch_up(live, Some(deadline), RebuildPhase::Locked, &mut *progress);
        if !unless_shutdown(shutdown, caught_up).await? {
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

        // 4. The operator configuration, then the two renames, in one commit. From here on the
        //    shutdown signal waits: the switch is short and must not be left in doubt.
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
        replay.scratch.switched();

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

/// `base`, or `base_2`, `base_3` .. : the first name no schema has. Only for the retired name,
/// chosen under the switch lock; new schemas are named by [`create_scratch_schema`].
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

/// Creates the schema `base`, or `base_2`, `base_3` .. : the first name no schema has. `CREATE
/// SCHEMA` itself is the test, so two processes starting at once get a name each; the one that
/// loses moves on to the next suffix. In the same transaction the session lock on the schema
/// is taken, which `control` holds until the schema is dropped or the session ends. Returns
/// the name and the schema's oid.
pub(crate) async fn create_scratch_schema(
    control: &mut Client,
    base: &str,
) -> Result<(String, u32), ProjectorError> {
    let mut n = 1_u32;
    loop {
        let name = if n == 1 { base.to_owned() } else { format!("{base}_{n}") };
        check_schema_name(&name)?;
        let tx = control.transaction().await.map_err(ProjectorError::postgres("begin"))?;

        // Taken before: duplicate_schema. Taken by a transaction that commits while this one
        // waits on it: the unique index of schema names.
        match tx.batch_execute(&format!("CREATE SCHEMA {name}")).await {
            Err(err)
                if matches!(
                    err.code(),
                    Some(&SqlState::DUPLICATE_SCHEMA | &SqlState::UNIQUE_VIOLATION)
                ) =>
            {
                tx.rollback().await.map_err(ProjectorError::postgres("roll back"))?;
                n += 1;
                continue;
            }
            result => result.map_err(ProjectorError::postgres("create schema"))?,
        }
        let oid: u32 = tx
            .query_one("SELECT oid FROM pg_namespace WHERE nspname = $1", &[&name])
            .await
            .map_err(ProjectorError::postgres("look up schema"))?
            .get(0);
        tx.execute("SELECT pg_advisory_lock($1)", &[&scratch_lock(oid)])
            .await
            .map_err(ProjectorError::postgres("lock the new schema"))?;
        tx.commit().await.map_err(ProjectorError::postgres("create schema"))?;
        return Ok((name, oid));
    }
}

/// Drops the schema `name` if the schema of oid `oid` still has that name. A schema switched in
/// has been renamed to the live name since, and is left alone. Returns whether it was dropped.
async fn drop_unswitched(pg: &Client, name: &str, oid: u32) -> Result<bool, ProjectorError> {
    let current: Option<String> = pg
        .query_opt("SELECT nspname::text FROM pg_namespace WHERE oid = $1", &[&oid])
        .await
        .map_err(ProjectorError::postgres("look up schema"))?
        .map(|row| row.get(0));
    if current.as_deref() != Some(name) {
        return Ok(false);
    }
    pg.batch_execute(&format!("DROP SCHEMA {name} CASCADE"))
        .await
        .map_err(ProjectorError::postgres("drop schema"))?;
    Ok(true)
}

/// A schema named like a rebuild's or a verification's of one read model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfinishedSchema {
    pub name: String,
    /// True if and only if a running rebuild or verification holds the schema's lock; a schema
    /// nobody holds was left by a process that was killed, or by a release before this one.
    pub in_use: bool,
}

/// The schemas `<kind>_rebuild_<time>` and `<kind>_verify_<time>` (with or without a `_<n>`
/// suffix) in the database of `pg`, by name, each with whether a running process builds it.
///
/// Nothing here drops them: a schema of a rebuild started by an older release holds no lock
/// either. One that is not in use can be dropped with `DROP SCHEMA <name> CASCADE`; neither the
/// live schema nor a retired one is ever listed.
pub async fn unfinished_schemas(
    pg: &impl GenericClient,
    kind: ProjectorKind,
) -> Result<Vec<UnfinishedSchema>, ProjectorError> {
    let pattern = format!("^{kind}_(rebuild|verify)_[0-9]+(_[0-9]+)?$");
    let rows = pg
        .query(
            "SELECT n.nspname::text, EXISTS (
                 SELECT 1 FROM pg_locks l
                 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                   AND l.database = (SELECT oid FROM pg_database
                                     WHERE datname = current_database())
                   AND l.classid = $2 AND l.objid = n.oid)
             FROM pg_namespace n WHERE n.nspname ~ $1 ORDER BY 1",
            &[&pattern, &SCRATCH_LOCK_CLASS],
        )
        .await
        .map_err(ProjectorError::postgres("list unfinished schemas"))?;
    Ok(rows.iter().map(|row| UnfinishedSchema { name: row.get(0), in_use: row.get(1) }).collect())
}

/// The shutdown signal of a rebuild or a verification, polled wherever the work may stop.
pub(crate) type Shutdown<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Why a replay ended before its work was done.
pub(crate) enum Halt {
    /// The shutdown signal came.
    Shutdown,
    Failed(ProjectorError),
}

impl From<ProjectorError> for Halt {
    fn from(err: ProjectorError) -> Self {
        Halt::Failed(err)
    }
}

/// `work`, unless `shutdown` completes first: `work` is then dropped where it stands, and the
/// transactions it was in roll back.
pub(crate) async fn unless_shutdown<T>(
    shutdown: &mut Shutdown<'_>,
    work: impl Future<Output = Result<T, ProjectorError>>,
) -> Result<T, Halt> {
    tokio::select! {
        biased;
        () = shutdown => Err(Halt::Shutdown),
        result = work => Ok(result?),
    }
}

/// The schema a replay builds, dropped unless it was switched in: by [`Replay::discard`], or,
/// when the replay is dropped first, by a task of its own on the current runtime.
struct ScratchSchema {
    name: String,
    oid: u32,
    database_url: String,
    /// The replay's consumer, deleted with the schema.
    stream: jetstream::stream::Stream,
    consumer_name: String,
    /// False once the schema was switched in or dropped.
    armed: bool,
}

impl ScratchSchema {
    fn switched(&mut self) {
        self.armed = false;
    }

    /// Drops the schema and the consumer through `control`, or a connection of its own when
    /// `control` fails (after a broken connection, for one).
    async fn discard(mut self, control: &Client) -> Result<(), ProjectorError> {
        self.armed = false;
        let _ = self.stream.delete_consumer(&self.consumer_name).await;
        let dropped = match drop_unswitched(control, &self.name, self.oid).await {
            Ok(_) => {
                let unlock = "SELECT pg_advisory_unlock($1)";
                let _ = control.execute(unlock, &[&scratch_lock(self.oid)]).await;
                Ok(())
            }
            Err(err) => {
                warn!(schema = %self.name, error = %err, "failed to drop schema: trying anew");
                let (pg, _connection) = runner::connect(&self.database_url).await?;
                drop_unswitched(&pg, &self.name, self.oid).await.map(|_| ())
            }
        };
        if let Err(err) = &dropped {
            warn!(schema = %self.name, error = %err, "failed to drop schema");
        }
        dropped
    }
}

impl Drop for ScratchSchema {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            warn!(schema = %self.name, "schema left behind: no runtime to drop it");
            return;
        };
        let (name, oid, url) = (self.name.clone(), self.oid, self.database_url.clone());
        let (stream, consumer) = (self.stream.clone(), self.consumer_name.clone());
        runtime.spawn(async move {
            let _ = stream.delete_consumer(&consumer).await;
            let dropped = match runner::connect(&url).await {
                Ok((pg, _connection)) => drop_unswitched(&pg, &name, oid).await,
                Err(err) => Err(err),
            };
            match dropped {
                Ok(_) => info!(schema = %name, "unfinished schema dropped"),
                Err(err) => warn!(schema = %name, error = %err, "failed to drop schema"),
            }
        });
    }
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
    scratch: ScratchSchema,
}

impl Replay {
    /// Creates the schema `<kind>_<label>_<unix time>` (or the first free name after it) with
    /// the read model's tables, and prepares the batch transaction on a connection of its own.
    /// `control` holds the schema's lock until [`Replay::discard`] or the end of its session.
    pub async fn start(
        config: &ProjectorConfig,
        client: async_nats::Client,
        label: &str,
        control: &mut Client,
    ) -> Result<Replay, ProjectorError> {
        let kind = config.kind;
        let js = jetstream::new(client);
        let stream = js
            .get_stream(&config.store.stream)
            .await
            .map_err(ProjectorError::nats("get the event stream"))?;

        // From here on the schema is dropped again should anything fail or the future be dropped.
        let base = format!("{kind}_{label}_{}", unix_time());
        let (schema, oid) = create_scratch_schema(control, &base).await?;
        let consumer_name = format!("csmp-{schema}");
        let scratch = ScratchSchema {
            name: schema.clone(),
            oid,
            database_url: config.database_url.clone(),
            stream: stream.clone(),
            consumer_name: consumer_name.clone(),
            armed: true,
        };
        let mut config = config.clone();
        config.schema = Some(schema.clone());
        let prepared = async {
            let (pg, connection) = runner::connect(&config.database_url).await?;
            migrate_schema(&pg, kind, &schema).await?;
            let batches = Batches::prepare(&pg, &config, FaultInjection::default(), false).await?;
            Ok::<_, ProjectorError>((pg, connection, batches))
        };
        let (pg, connection, batches) = match prepared.await {
            Ok(prepared) => prepared,
            Err(err) => {
                let _ = scratch.discard(control).await;
                return Err(err);
            }
        };
        Ok(Replay {
            kind,
            consumer_name,
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
            scratch,
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
        progress: &mut (dyn FnMut(&RebuildProgress) + Send),
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
            let batch = runner::fill_batch(first, &mut messages, size).await;

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

    /// Drops the schema and the consumer: after a failure or a shutdown, or when a
    /// verification is done. The replay's own session ends first, so that a batch transaction
    /// it was in the middle of rolls back and holds no lock the drop would wait for.
    pub async fn discard(self, control: &Client) -> Result<(), ProjectorError> {
        let Replay { pg, _connection, scratch, .. } = self;
        drop(pg);
        drop(_connection);
        scratch.discard(control).await
    }

    /// Discards the replay after it ended early: the error to return, [`ProjectorError::Stopped`]
    /// at the shutdown signal.
    pub async fn end_early(self, control: &Client, halt: Halt) -> ProjectorError {
        let schema = self.schema.clone();
        let dropped = self.discard(control).await.is_ok();
        match halt {
            Halt::Failed(err) => err,
            Halt::Shutdown => {
                info!(schema = %schema, dropped, "stopped at the shutdown signal");
                ProjectorError::Stopped { schema, dropped }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use csmp_testkit::TestDatabase;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn create_scratch_schema_gives_each_of_many_at_once_a_name_of_its_own() {
        let db = TestDatabase::new("scratch").await;
        let mut sessions = Vec::new();
        for _ in 0..6 {
            sessions.push(runner::connect(&db.url).await.unwrap());
        }
        let (admin, _admin) = runner::connect(&db.url).await.unwrap();
        let others = "CREATE SCHEMA queues; CREATE SCHEMA queues_retired_5; \
                      CREATE SCHEMA sla_rebuild_5; CREATE SCHEMA queues_rebuild_5x";
        admin.batch_execute(others).await.unwrap();

        // 1. Six sessions create the same name at once: one gets it, the others the suffixes.
        let created = futures::future::join_all(
            sessions.iter_mut().map(|(pg, _)| create_scratch_schema(pg, "queues_rebuild_5")),
        )
        .await;
        let names: Vec<String> = created.into_iter().map(|c| c.unwrap().0).collect();
        let mut sorted = names.clone();
        sorted.sort();
        let expected = [
            "queues_rebuild_5",
            "queues_rebuild_5_2",
            "queues_rebuild_5_3",
            "queues_rebuild_5_4",
            "queues_rebuild_5_5",
            "queues_rebuild_5_6",
        ];
        assert_eq!(sorted, expected);

        // 2. Each is in use while its session holds it; the live, retired and other read
        //    models' schemas are not listed.
        let listed = unfinished_schemas(&admin, ProjectorKind::Queues).await.unwrap();
        let unfinished = |name: &str, in_use| UnfinishedSchema { name: name.to_owned(), in_use };
        assert_eq!(listed, expected.map(|name| unfinished(name, true)));

        // 3. The one whose session ended, as a killed process's does, is left behind.
        drop(sessions.remove(0));
        let left_behind = |listed: &[UnfinishedSchema]| -> Vec<String> {
            listed.iter().filter(|s| !s.in_use).map(|s| s.name.clone()).collect()
        };
        let mut listed = unfinished_schemas(&admin, ProjectorKind::Queues).await.unwrap();
        for _ in 0..250 {
            if !left_behind(&listed).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            listed = unfinished_schemas(&admin, ProjectorKind::Queues).await.unwrap();
        }
        assert_eq!(left_behind(&listed), [names[0].clone()]);
        assert_eq!(listed.len(), 6);
    }
}
