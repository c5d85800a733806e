//! The projector loop: the durable consumer, the projector lock and the batch transaction.
//!
//! Exactly-once effect rests on three rules:
//! 1. a batch's read-model writes, its dead letters and the new checkpoint commit in one
//!    transaction, which first locks the checkpoint row (`SELECT .. FOR UPDATE`);
//! 2. events at or below the checkpoint are skipped, and the batch is acknowledged only after the
//!    commit, so a redelivery changes nothing and a crash loses nothing;
//! 3. stream positions are contiguous, so a message past checkpoint + 1 means the consumer is
//!    not where the checkpoint is: the consumer is re-created to start at checkpoint + 1.
//!
//! When PostgreSQL refuses a value an event carries (a NUL in text, a time outside its range),
//! the batch is rolled back and applied again one event per transaction, each with its
//! checkpoint; the event refused on its own becomes a dead letter with PostgreSQL's message.
//! Each of those transactions loads its rows afresh, so nothing folded before the rollback
//! survives it.
//!
//! Only the instance holding the projector's session-level advisory lock consumes; another
//! instance waits for the lock as a standby and takes over when the first one's connection ends.
//! Every batch transaction of `run` first takes the read model's switch lock shared, so that the
//! switch to a rebuilt schema, which takes it exclusively, falls between two batches.
//!
//! [`Batches`] is the batch transaction on its own, without a consumer: `run` feeds it from the
//! durable consumer, a rebuild from a consumer of its own.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use futures::{FutureExt, StreamExt};
use tokio_postgres::{Client, NoTls, Statement};
use tracing::{debug, error, info, info_span, warn, Instrument};

use crate::error::ProjectorError;
use crate::feedback::Feedback;
use crate::intake::{self, DeadLetter, Incoming};
use crate::queues::Queues;
use crate::schema::{migrate, migrate_schema, projector_lock, switch_lock};
use crate::sla::Sla;
use crate::{FaultInjection, ProjectorConfig, ProjectorKind};

/// First pause after a transient fault; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long a batch that is filling waits for its next message.
const FILL_WAIT: Duration = Duration::from_millis(2);
/// How often a standby asks for the projector lock.
const STANDBY_POLL: Duration = Duration::from_millis(250);

/// A batch of up to `size` messages starting with `first`: those ready at once, and when more
/// than one was ready (a burst or a catch-up), those arriving within [`FILL_WAIT`] each, since
/// a moment's wait costs far less than a transaction more. A lone event goes at once.
pub(crate) async fn fill_batch<M, E>(
    first: M,
    messages: &mut (impl futures::Stream<Item = Result<M, E>> + Unpin),
    size: usize,
) -> Vec<M> {
    let size = size.max(1);
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
    batch
}

/// An event of a batch that a read model could not apply: its index in the batch and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    pub index: usize,
    pub reason: String,
}

/// One read model's prepared statements.
enum Projection {
    Queues(Queues),
    Sla(Sla),
    Feedback(Feedback),
}

impl Projection {
    async fn prepare(
        kind: ProjectorKind,
        pg: &Client,
        schema: &str,
    ) -> Result<Self, ProjectorError> {
        Ok(match kind {
            ProjectorKind::Queues => Projection::Queues(Queues::prepare(pg, schema).await?),
            ProjectorKind::Sla => Projection::Sla(Sla::prepare(pg, schema).await?),
            ProjectorKind::Feedback => Projection::Feedback(Feedback::prepare(pg, schema).await?),
        })
    }

    fn kind(&self) -> ProjectorKind {
        match self {
            Projection::Queues(_) => ProjectorKind::Queues,
            Projection::Sla(_) => ProjectorKind::Sla,
            Projection::Feedback(_) => ProjectorKind::Feedback,
        }
    }

    async fn apply(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        events: &[csmp_domain::RecordedEvent],
    ) -> Result<Vec<Rejected>, ProjectorError> {
        match self {
            Projection::Queues(p) => p.apply(tx, events).await,
            Projection::Sla(p) => p.apply(tx, events).await,
            Projection::Feedback(p) => p.apply(tx, events).await,
        }
    }
}

pub(crate) async fn run(
    config: ProjectorConfig,
    client: async_nats::Client,
    shutdown: impl Future<Output = ()> + Send,
    faults: FaultInjection,
) -> Result<(), ProjectorError> {
    let projector = config.kind.name();
    crate::schema::check_schema_name(config.schema())?;
    let pg_config: tokio_postgres::Config =
        config.database_url.parse().map_err(ProjectorError::InvalidDatabaseUrl)?;
    let js = jetstream::new(client);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = FIRST_BACKOFF;
    info!(projector, consumer = %config.consumer_name(), "projector starting");

    loop {
        let mut session =
            Session { config: &config, js: &js, faults: &faults, backoff: &mut backoff };
        let err = match session.run(&pg_config, shutdown.as_mut()).await {
            Ok(()) => {
                info!(projector, "projector stopped");
                return Ok(());
            }
            Err(err) => err,
        };
        if !err.is_transient() {
            error!(projector, error = %err, "projector failed");
            return Err(err);
        }

        // A server restarting or a dropped connection: start a new session after a pause.
        warn!(projector, error = %err, retry_in_ms = backoff.as_millis() as u64, "projector fault");
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.as_mut() => return Ok(()),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's worth of projecting: from connecting to the first fault or shutdown.
struct Session<'a> {
    config: &'a ProjectorConfig,
    js: &'a jetstream::Context,
    faults: &'a FaultInjection,
    backoff: &'a mut Duration,
}

/// How a batch ended.
pub(crate) enum BatchEnd {
    /// Applied, or only skipped redeliveries; the consumer is where it should be.
    Done,
    /// A message past checkpoint + 1 came: the consumer must start again after `checkpoint`.
    Gap { checkpoint: u64 },
}

/// The batch transaction of one read model in one schema, with its statements prepared on the
/// connection it runs on.
pub(crate) struct Batches {
    schema: String,
    store: csmp_eventstore::EventStoreConfig,
    faults: FaultInjection,
    /// `SELECT pg_advisory_xact_lock_shared(..)` on the switch lock, for the live projector.
    switch_lock: Option<Statement>,
    lock_checkpoint: Statement,
    set_checkpoint: Statement,
    projection: Projection,
}

impl Session<'_> {
    async fn run<F: Future<Output = ()>>(
        &mut self,
        pg_config: &tokio_postgres::Config,
        mut shutdown: Pin<&mut F>,
    ) -> Result<(), ProjectorError> {
        let kind = self.config.kind;
        let schema = self.config.schema();

        // 1. Connect, and bring the schema up to date before anything reads it. The sla
        //    projector reads the tenants' configuration from the live schema, whatever its own.
        let (mut pg, connection) =
            pg_config.connect(NoTls).await.map_err(ProjectorError::postgres("connect"))?;
        let connection = tokio::spawn(async move {
            if let Err(err) = connection.await {
                warn!(error = %err, "projector database connection ended");
            }
        });
        let _connection = AbortOnDrop(connection);
        if kind == ProjectorKind::Sla && schema != kind.name() {
            migrate(&pg, kind).await?;
        }
        migrate_schema(&pg, kind, schema).await?;
        csmp_eventstore::ensure_stream(self.js, &self.config.store).await?;

        // 2. Only the lock holder projects; a second instance waits here as a standby.
        let (class, key) = projector_lock(kind, schema);
        let mut announced = false;
        loop {
            let locked: bool = pg
                .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&class, &key])
                .await
                .map_err(ProjectorError::postgres("take the projector lock"))?
                .get(0);
            if locked {
                break;
            }
            if !announced {
                info!(projector = schema, "standby: another instance holds the projector lock");
                announced = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(STANDBY_POLL) => {}
                _ = shutdown.as_mut() => return Ok(()),
            }
        }
        info!(projector = schema, "holding the projector lock");

        // 3. Statements, and the consumer placed right after the checkpoint.
        let batches = Batches::prepare(&pg, self.config, self.faults.clone(), true).await?;
        let checkpoint = batches.checkpoint(&pg).await?;
        let mut consumer = self.open_consumer(checkpoint, false).await?;
        let mut messages = self.messages(&consumer).await?;

        // 4. Batches until shutdown: wait for one message, then take what is already buffered.
        loop {
            let first = tokio::select! {
                biased;
                _ = shutdown.as_mut() => return Ok(()),
                next = messages.next() => next,
            };
            let first = match first {
                Some(Ok(message)) => message,
                Some(Err(err)) => return Err(ProjectorError::nats("read the consumer")(err)),
                None => {
                    return Err(ProjectorError::Nats {
                        action: "read the consumer",
                        source: "message stream ended".into(),
                    })
                }
            };
            let batch = fill_batch(first, &mut messages, self.config.batch_size).await;

            if let BatchEnd::Gap { checkpoint } = self.apply_batch(&mut pg, &batches, batch).await?
            {
                info!(
                    projector = schema,
                    checkpoint, "consumer is past the checkpoint: re-creating it"
                );
                drop(messages);
                consumer = self.open_consumer(checkpoint, true).await?;
                messages = self.messages(&consumer).await?;
            }
        }
    }

    /// The durable consumer, re-created to start at `checkpoint + 1` when it is missing, set up
    /// differently, `force`d, or ahead of the checkpoint (it would skip events). A consumer
    /// behind the checkpoint is kept: what it redelivers is skipped.
    async fn open_consumer(
        &self,
        checkpoint: u64,
        force: bool,
    ) -> Result<jetstream::consumer::PullConsumer, ProjectorError> {
        let store = &self.config.store;
        let name = self.config.consumer_name();
        let stream = self
            .js
            .get_stream(&store.stream)
            .await
            .map_err(ProjectorError::nats("get the event stream"))?;
        if !force {
            if let Ok(consumer) = stream.get_consumer::<pull::Config>(&name).await {
                let info = consumer.cached_info();
                let delivered = info.delivered.stream_sequence;
                let fits = info.config.filter_subject == store.all_subjects()
                    && info.config.ack_policy == AckPolicy::All;
                if fits && delivered <= checkpoint {
                    debug!(consumer = %name, delivered, checkpoint, "consumer kept");
                    return Ok(consumer);
                }
                info!(
                    consumer = %name,
                    delivered,
                    checkpoint,
                    "consumer disagrees with the checkpoint: re-creating it"
                );
            }
        }

        // Deleting a consumer that is not there fails harmlessly; creating tells the truth.
        let _ = stream.delete_consumer(&name).await;
        let batch = self.config.batch_size.max(1) as i64;
        stream
            .create_consumer(pull::Config {
                durable_name: Some(name.clone()),
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: checkpoint + 1 },
                ack_policy: AckPolicy::All,
                ack_wait: Duration::from_secs(30),
                filter_subject: store.all_subjects(),
                max_ack_pending: (batch * 10).max(1_000),
                description: Some(format!("csmp {} projector", self.config.kind)),
                ..Default::default()
            })
            .await
            .map_err(ProjectorError::nats("create the consumer"))
    }

    async fn messages(
        &self,
        consumer: &jetstream::consumer::PullConsumer,
    ) -> Result<pull::Stream, ProjectorError> {
        consumer
            .stream()
            .max_messages_per_batch(self.config.batch_size.max(1))
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(ProjectorError::nats("pull from the consumer"))
    }

    /// Applies one batch in one transaction with the checkpoint, then acknowledges it.
    async fn apply_batch(
        &mut self,
        pg: &mut Client,
        batches: &Batches,
        batch: Vec<jetstream::Message>,
    ) -> Result<BatchEnd, ProjectorError> {
        let incoming = batch.iter().map(incoming).collect::<Result<Vec<_>, _>>()?;
        let (end, acknowledge) = batches.apply(pg, &incoming).await?;

        // Acknowledging the last handled message acknowledges every earlier one (ack policy
        // "all"). A lost acknowledgement only means a redelivery, which the checkpoint skips.
        if let Some(index) = acknowledge {
            if let Err(err) = batch[index].ack().await {
                warn!(error = %err, seq = incoming[index].position, "failed to acknowledge batch");
            }
        }
        *self.backoff = FIRST_BACKOFF;
        Ok(end)
    }
}

/// A stream message as the batch transaction takes it.
pub(crate) fn incoming(message: &jetstream::Message) -> Result<Incoming, ProjectorError> {
    let position = message
        .info()
        .map_err(|source| ProjectorError::Nats { action: "read a message's position", source })?
        .stream_sequence;
    Ok(Incoming { position, subject: message.subject.to_string(), body: message.payload.clone() })
}

impl Batches {
    /// Prepares the statements of `config`'s read model in its schema on `pg`. With
    /// `switch_lock`, every transaction first takes the read model's switch lock shared: the
    /// live projector does, a rebuild writing its own schema must not (the switch that waits
    /// for it holds the lock exclusively).
    pub(crate) async fn prepare(
        pg: &Client,
        config: &ProjectorConfig,
        faults: FaultInjection,
        switch_lock: bool,
    ) -> Result<Self, ProjectorError> {
        let schema = config.schema();
        let switch_lock = match switch_lock {
            true => Some(
                pg.prepare("SELECT pg_advisory_xact_lock_shared($1, $2)")
                    .await
                    .map_err(ProjectorError::postgres("prepare switch lock"))?,
            ),
            false => None,
        };
        Ok(Batches {
            schema: schema.to_owned(),
            store: config.store.clone(),
            faults,
            switch_lock,
            lock_checkpoint: pg
                .prepare(&format!(
                    "SELECT position FROM {schema}.checkpoint WHERE id = 1 FOR UPDATE"
                ))
                .await
                .map_err(ProjectorError::postgres("prepare checkpoint lock"))?,
            set_checkpoint: pg
                .prepare(&format!(
                    "UPDATE {schema}.checkpoint SET position = $1, updated_at = now() WHERE id = 1"
                ))
                .await
                .map_err(ProjectorError::postgres("prepare checkpoint update"))?,
            projection: Projection::prepare(config.kind, pg, schema).await?,
        })
    }

    /// The checkpoint as committed.
    pub(crate) async fn checkpoint(&self, pg: &Client) -> Result<u64, ProjectorError> {
        let schema = &self.schema;
        let checkpoint: i64 = pg
            .query_one(&format!("SELECT position FROM {schema}.checkpoint WHERE id = 1"), &[])
            .await
            .map_err(ProjectorError::postgres("read checkpoint"))?
            .get(0);
        Ok(checkpoint as u64)
    }

    /// Applies `incoming` in one transaction with the checkpoint (or, when PostgreSQL refuses a
    /// value, one event per transaction). Returns how the batch ended and the index of the last
    /// message handled (applied or skipped), which is the one to acknowledge.
    pub(crate) async fn apply(
        &self,
        pg: &mut Client,
        incoming: &[Incoming],
    ) -> Result<(BatchEnd, Option<usize>), ProjectorError> {
        let first = incoming.first().map_or(0, |m| m.position);
        let last = incoming.last().map_or(0, |m| m.position);
        let span = info_span!(
            "projector_batch",
            schema = %self.schema,
            first_seq = first,
            last_seq = last,
            size = incoming.len()
        );
        self.apply_in_transaction(pg, incoming).instrument(span).await
    }

    /// A transaction behind the switch lock, when this projector takes it.
    async fn begin<'c>(
        &self,
        pg: &'c mut Client,
        action: &'static str,
    ) -> Result<tokio_postgres::Transaction<'c>, ProjectorError> {
        let tx = pg.transaction().await.map_err(ProjectorError::postgres(action))?;
        if let Some(statement) = &self.switch_lock {
            let kind = self.projection.kind();
            let (class, key) = switch_lock(kind);
            tx.execute(statement, &[&class, &key])
                .await
                .map_err(ProjectorError::postgres("take the switch lock"))?;
        }
        Ok(tx)
    }

    /// Returns how the batch ended and the index of the last message handled (applied or
    /// skipped), which is the one to acknowledge.
    async fn apply_in_transaction(
        &self,
        pg: &mut Client,
        incoming: &[Incoming],
    ) -> Result<(BatchEnd, Option<usize>), ProjectorError> {
        let tx = self.begin(pg, "begin batch").await?;

        // 1. The checkpoint, locked: a second writer waits here and then sees our commit.
        let checkpoint: i64 = tx
            .query_one(&self.lock_checkpoint, &[])
            .await
            .map_err(ProjectorError::postgres("lock checkpoint"))?
            .get(0);
        let checkpoint = checkpoint as u64;

        // 2. The contiguous run after the checkpoint; earlier positions are redeliveries.
        let mut next = checkpoint + 1;
        let mut taken: Vec<&Incoming> = Vec::new();
        let mut handled = None;
        let mut gap = false;
        for (index, message) in incoming.iter().enumerate() {
            if message.position < next {
                debug!(seq = message.position, checkpoint, "skipped redelivery");
                handled = Some(index);
                continue;
            }
            if message.position > next {
                gap = true;
                break;
            }
            taken.push(message);
            handled = Some(index);
            next += 1;
        }
        if taken.is_empty() {
            tx.rollback().await.map_err(ProjectorError::postgres("end empty batch"))?;
            let end = if gap { BatchEnd::Gap { checkpoint } } else { BatchEnd::Done };
            return Ok((end, handled));
        }

        // 3. Decode, apply and move the checkpoint; commit only when all of it went through.
        let last = taken.last().map_or(checkpoint, |m| m.position);
        match self.project(&tx, &taken).await {
            Ok(()) => {
                tx.commit().await.map_err(ProjectorError::postgres("commit batch"))?;
            }
            Err(err) if err.refuses_values() => {
                // 4. PostgreSQL refused a value some event carries. The rollback also drops
                //    what was folded in memory; one event per transaction finds the culprit
                //    and reloads the rows from the tables each time.
                warn!(error = %err, "batch refused: applying its events one at a time");
                tx.rollback().await.map_err(ProjectorError::postgres("roll back batch"))?;
                if let Some(checkpoint) = self.apply_one_by_one(pg, &taken).await? {
                    return Ok((BatchEnd::Gap { checkpoint }, None));
                }
            }
            Err(err) => return Err(err),
        }

        let end = if gap { BatchEnd::Gap { checkpoint: last } } else { BatchEnd::Done };
        Ok((end, handled))
    }

    /// Decodes `taken` (the run right after the checkpoint), applies it to the read model,
    /// records its dead letters and moves the checkpoint past it, all within `tx`.
    async fn project(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        taken: &[&Incoming],
    ) -> Result<(), ProjectorError> {
        let schema = &self.schema;

        // 1. Decode; what is not an event becomes a dead letter.
        let mut events = Vec::with_capacity(taken.len());
        let mut sources = Vec::with_capacity(taken.len());
        let mut dead = Vec::new();
        for message in taken {
            match intake::decode(&self.store, message) {
                Ok(event) => {
                    events.push(event);
                    sources.push(*message);
                }
                Err(letter) => dead.push(letter),
            }
        }

        // 2. The read model's writes and the checkpoint past everything taken (dead letters
        //    included), pipelined: they commit together or not at all.
        let first = taken.first().map_or(0, |m| m.position);
        let last = taken.last().map_or(0, |m| m.position);
        let (rejected, _) = futures::try_join!(self.projection.apply(tx, &events), async {
            tx.execute(&self.set_checkpoint, &[&(last as i64)])
                .await
                .map_err(ProjectorError::postgres("move checkpoint"))
        },)?;

        // 3. Events the read model could not place become dead letters too.
        for Rejected { index, reason } in rejected {
            let event_type = events[index].envelope.event_type().to_owned();
            dead.push(DeadLetter::new(sources[index], Some(event_type), reason));
        }
        dead.sort_by_key(|letter| letter.position);
        intake::record(tx, schema, &dead).await?;
        if let Some(fail) = &self.faults.fail_batch {
            if fail(first, last) {
                return Err(ProjectorError::Injected { first, last });
            }
        }
        debug!(
            events = events.len(),
            dead_letters = dead.len(),
            checkpoint = last,
            "batch applied"
        );
        Ok(())
    }

    /// Applies `taken` one message per transaction, after PostgreSQL refused the batch as a
    /// whole. A message whose values PostgreSQL refuses on its own becomes a dead letter with
    /// PostgreSQL's message, committed with the checkpoint moving past it. Returns the
    /// checkpoint when it is no longer right before the next message, which only another
    /// writer can cause: the consumer must then start again after it.
    async fn apply_one_by_one(
        &self,
        pg: &mut Client,
        taken: &[&Incoming],
    ) -> Result<Option<u64>, ProjectorError> {
        let schema = &self.schema;
        for message in taken {
            // 1. Each message in a transaction of its own, behind the locked checkpoint.
            let tx = self.begin(pg, "begin event").await?;
            let checkpoint: i64 = tx
                .query_one(&self.lock_checkpoint, &[])
                .await
                .map_err(ProjectorError::postgres("lock checkpoint"))?
                .get(0);
            let checkpoint = checkpoint as u64;
            if message.position <= checkpoint {
                tx.rollback().await.map_err(ProjectorError::postgres("end event"))?;
                continue;
            }
            if message.position > checkpoint + 1 {
                tx.rollback().await.map_err(ProjectorError::postgres("end event"))?;
                return Ok(Some(checkpoint));
            }
            let err = match self.project(&tx, &[message]).await {
                Ok(()) => {
                    tx.commit().await.map_err(ProjectorError::postgres("commit event"))?;
                    continue;
                }
                Err(err) => err,
            };
            let Some(reason) = err.refused_values_message() else {
                return Err(err);
            };

            // 2. Refused on its own: the dead letter and the checkpoint past it, nothing else.
            tx.rollback().await.map_err(ProjectorError::postgres("roll back event"))?;
            let tx = self.begin(pg, "begin event").await?;
            let checkpoint: i64 = tx
                .query_one(&self.lock_checkpoint, &[])
                .await
                .map_err(ProjectorError::postgres("lock checkpoint"))?
                .get(0);
            if checkpoint as u64 + 1 != message.position {
                tx.rollback().await.map_err(ProjectorError::postgres("end event"))?;
                return Ok(Some(checkpoint as u64));
            }
            tx.execute(&self.set_checkpoint, &[&(message.position as i64)])
                .await
                .map_err(ProjectorError::postgres("move checkpoint"))?;
            let event_type = intake::decode(&self.store, message)
                .ok()
                .map(|event| event.envelope.event_type().to_owned());
            intake::record(&tx, schema, &[DeadLetter::new(message, event_type, reason)]).await?;
            tx.commit().await.map_err(ProjectorError::postgres("commit dead letter"))?;
        }
        Ok(None)
    }
}

/// Connects to the read models' database, with the connection driven by a task that ends
/// when the returned guard is dropped.
pub(crate) async fn connect(database_url: &str) -> Result<(Client, AbortOnDrop), ProjectorError> {
    let pg_config: tokio_postgres::Config =
        database_url.parse().map_err(ProjectorError::InvalidDatabaseUrl)?;
    let (pg, connection) =
        pg_config.connect(NoTls).await.map_err(ProjectorError::postgres("connect"))?;
    let connection = tokio::spawn(async move {
        if let Err(err) = connection.await {
            warn!(error = %err, "database connection ended");
        }
    });
    Ok((pg, AbortOnDrop(connection)))
}

/// Ends the connection task with the session, so the projector lock is released at once.
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
