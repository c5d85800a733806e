//! Projectors: they read the ticket event stream and keep the read models in PostgreSQL.
//!
//! Three projectors, one per read model, each in a PostgreSQL schema of its own:
//! - `queues`: one row per ticket with its current state, every event of its timeline, and its
//!   refunds; the work queues and customer histories are read from here;
//! - `sla`: every SLA clock of every ticket (first response, next response per cycle,
//!   resolution, complaint acknowledgement) measured by the `csmp-sla` engine under the
//!   tenant's versioned policies and business-hours calendars, and the SLA signals recorded;
//! - `feedback`: per ticket the facts analytics need (times, agent, ratings) and escalations.
//!
//! Every projector is a durable JetStream pull consumer on all subjects of the stream. A fetched
//! batch is applied in one PostgreSQL transaction together with the projector's checkpoint (the
//! last stream position applied), and acknowledged only after the commit: a redelivered event at
//! or below the checkpoint is skipped, so each event takes effect exactly once. A session-level
//! advisory lock lets one instance project while a second one waits as a standby.
//! `docs/read-models.md` describes the tables and this design.
//!
//! A read model can be rebuilt from the first event into a fresh schema while the live one keeps
//! serving, and switched in atomically ([`rebuild`]); a rebuilt copy can be compared with the
//! live read model table by table ([`checksum`]).
//!
//! Layout:
//! - [`error`]: what can go wrong and how a caller handles it;
//! - [`schema`]: versioned migrations and the tenants' wall-clock base policies;
//! - [`sla_config`]: policy versions and calendars, loaded the same way by the projector, the
//!   query service and the SLA timer, and the per-ticket facts the clocks are rebuilt from;
//! - `runner`: the consumer, the locks and the batch transaction;
//! - [`rebuild`]: a projection into a fresh schema and the atomic switch to it;
//! - [`checksum`]: per-table row counts and checksums of two schemas of one read model;
//! - `intake`: decoding messages, and the dead letters for those that are not events;
//! - `rows`: multi-row statements, one array parameter per column;
//! - `queues`, `sla`, `feedback`: how each read model folds events into its rows.
//!
//! This crate writes read models only; it never appends to the event stream.

pub mod checksum;
pub mod error;
mod feedback;
mod intake;
mod queues;
pub mod rebuild;
mod rows;
mod runner;
pub mod schema;
mod sla;
pub mod sla_config;

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use csmp_eventstore::EventStoreConfig;

pub use checksum::{compare_schemas, verify_read_model, ReadModelReport, SchemaComparison};
pub use error::ProjectorError;
pub use rebuild::{
    rebuild, unfinished_schemas, RebuildOptions, RebuildPhase, RebuildProgress, RebuildReport,
    UnfinishedSchema,
};
pub use schema::{migrate, migrate_schema, set_sla_policy, sla_policy};
pub use sla_config::{
    import_holidays, load_tenant_sla, set_calendar, set_sla_policy_version, CalendarHistory,
    CalendarVersion, SlaFacts, TenantSla,
};

/// Which read model a projector keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProjectorKind {
    Queues,
    Sla,
    Feedback,
}

impl ProjectorKind {
    /// Every projector, in the order status reports list them.
    pub const ALL: [ProjectorKind; 3] =
        [ProjectorKind::Queues, ProjectorKind::Sla, ProjectorKind::Feedback];

    /// The projector's name; also its live PostgreSQL schema and the suffix of its consumer name.
    pub fn name(self) -> &'static str {
        match self {
            ProjectorKind::Queues => "queues",
            ProjectorKind::Sla => "sla",
            ProjectorKind::Feedback => "feedback",
        }
    }

    /// The durable consumer name used when the configuration names none: `csmp-<kind>`.
    pub fn default_consumer_name(self) -> String {
        format!("csmp-{}", self.name())
    }
}

impl fmt::Display for ProjectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A projector name that is not `queues`, `sla` or `feedback`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown projector {0:?}: expected queues, sla or feedback")]
pub struct UnknownProjector(pub String);

impl FromStr for ProjectorKind {
    type Err = UnknownProjector;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "queues" => Ok(ProjectorKind::Queues),
            "sla" => Ok(ProjectorKind::Sla),
            "feedback" => Ok(ProjectorKind::Feedback),
            _ => Err(UnknownProjector(raw.to_owned())),
        }
    }
}

/// Everything one projector process needs.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    pub kind: ProjectorKind,
    pub store: EventStoreConfig,
    /// The database holding the read models, for example `postgres://postgres@127.0.0.1:5432`.
    pub database_url: String,
    /// Most events applied in one transaction; 500 to 1000 suits a catch-up.
    pub batch_size: usize,
    /// The durable consumer's name; `csmp-<kind>` when `None` and the schema is the live one,
    /// `csmp-<schema>` for another schema.
    pub consumer_name: Option<String>,
    /// The PostgreSQL schema the read model is written to; the live one, named after the kind
    /// (`queues`, `sla`, `feedback`), when `None`. Another schema holds a copy of the read model
    /// that no query reads, for example one being rebuilt. The `sla` projector reads the
    /// tenants' SLA configuration from the live `sla` schema whatever its own.
    pub schema: Option<String>,
}

impl ProjectorConfig {
    /// The durable consumer this projector reads through.
    pub fn consumer_name(&self) -> String {
        match (&self.consumer_name, &self.schema) {
            (Some(name), _) => name.clone(),
            (None, Some(schema)) if schema != self.kind.name() => format!("csmp-{schema}"),
            (None, _) => self.kind.default_consumer_name(),
        }
    }

    /// The PostgreSQL schema this projector writes.
    pub fn schema(&self) -> &str {
        self.schema.as_deref().unwrap_or(self.kind.name())
    }
}

/// Runs a projector until `shutdown` completes.
///
/// Applies the read model's migrations, then waits for the projector lock (a second instance
/// stays a standby until the first one stops), then projects batches as they arrive. A batch
/// that is being applied when `shutdown` completes is finished first. Faults of NATS or
/// PostgreSQL that may pass ([`ProjectorError::is_transient`]) are logged and retried with a
/// growing pause; the others end the run with the error.
///
/// # Examples
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use csmp_projector::{run, ProjectorConfig, ProjectorKind};
///
/// let client = async_nats::connect("nats://127.0.0.1:4222").await?;
/// let config = ProjectorConfig {
///     kind: "queues".parse()?,
///     store: csmp_eventstore::EventStoreConfig::default(),
///     database_url: "postgres://postgres@127.0.0.1:5432".to_owned(),
///     batch_size: 500,
///     consumer_name: None,
///     schema: None,
/// };
/// run(config, client, async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await?;
/// # Ok(())
/// # }
/// ```
pub async fn run(
    config: ProjectorConfig,
    client: async_nats::Client,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ProjectorError> {
    runner::run(config, client, shutdown, FaultInjection::default()).await
}

/// Like [`run`], with a fault injected inside batch transactions: for crash-safety tests.
///
/// Production code calls [`run`]; this exists so that tests can fail a batch after its rows are
/// written and before its commit, the worst moment for a crash.
pub async fn run_with_faults(
    config: ProjectorConfig,
    client: async_nats::Client,
    shutdown: impl Future<Output = ()> + Send,
    faults: FaultInjection,
) -> Result<(), ProjectorError> {
    runner::run(config, client, shutdown, faults).await
}

/// A test hook called inside every batch transaction before its commit.
#[derive(Clone, Default)]
pub struct FaultInjection {
    /// Given the first and last stream position of the batch; `true` fails the batch with
    /// [`ProjectorError::Injected`], which rolls it back and ends the run.
    pub fail_batch: Option<Arc<dyn Fn(u64, u64) -> bool + Send + Sync>>,
}

impl fmt::Debug for FaultInjection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjection").field("fail_batch", &self.fail_batch.is_some()).finish()
    }
}
