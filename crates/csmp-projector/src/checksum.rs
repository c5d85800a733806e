//! Comparing two schemas of one read model table by table, and verifying the live read model
//! against a copy rebuilt from the stream.
//!
//! Every table of the read model is compared ([`compare_schemas`]) except those listed in
//! [`NOT_COMPARED`] (bookkeeping, and the SLA configuration that operators write rather than
//! events), over every column except those in [`WALL_CLOCK_COLUMNS`], which record when a row
//! was written rather than what the events say. Per table: the number of rows and a checksum,
//! the md5 of the row count and of the sums of each row's md5 halves; a sum does not depend on
//! the order of the rows, needs no sort and no single text value of the whole table (PostgreSQL
//! caps one at 1 GB). For a table that differs, the first few keys (by the primary key's text)
//! whose row is only on one side or differs, with the columns that differ.
//!
//! [`verify_read_model`] builds the scratch copy with the rebuild's machinery, holds the live
//! projector on the switch lock while the copy is at exactly the live checkpoint, compares, and
//! drops the copy, also when it stops at its shutdown signal. Nothing here writes the live read
//! model.

use std::fmt;
use std::future::Future;
use std::time::Instant;

use tokio_postgres::GenericClient;
use tracing::info;

use crate::error::ProjectorError;
use crate::rebuild::{
    read_checkpoint, unless_shutdown, Halt, RebuildPhase, RebuildProgress, Replay, Shutdown,
};
use crate::runner;
use crate::schema::{check_schema_name, hold_switch_lock};
use crate::{ProjectorConfig, ProjectorKind};

/// Tables never compared: the checkpoint and migration bookkeeping, and the SLA configuration,
/// which is not derived from events.
pub const NOT_COMPARED: &[&str] =
    &["checkpoint", "schema_migrations", "tenant_policies", "policy_versions", "calendars"];

/// Columns (table, column) left out of every comparison: they hold the time a row was written,
/// which two projections of the same events never share.
pub const WALL_CLOCK_COLUMNS: &[(&str, &str)] = &[("dead_letters", "dead_lettered_at")];

/// How many differing keys a table report names at most.
pub const EXAMPLES: i64 = 5;

/// The rows of one table on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSum {
    pub rows: i64,
    /// md5 hex of the row count and the sums of the rows' md5 halves.
    pub checksum: String,
}

/// A key whose row is on one side only, or on both with different values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDifference {
    /// The primary key as `column=value` pairs, for example `tenant=acme ticket_id=..`.
    pub key: String,
    /// The schema holding the only row of that key; `None` when both hold one.
    pub only_in: Option<String>,
    /// The columns whose values differ, when both hold a row.
    pub columns: Vec<String>,
}

/// One table compared in two schemas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    pub table: String,
    pub left: TableSum,
    pub right: TableSum,
    /// Up to [`EXAMPLES`] differing keys, empty when the table is equal.
    pub examples: Vec<RowDifference>,
}

impl TableReport {
    /// True if and only if both sides have the same rows.
    pub fn is_equal(&self) -> bool {
        self.left == self.right && self.examples.is_empty()
    }
}

/// Two schemas of one read model compared table by table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaComparison {
    pub kind: ProjectorKind,
    pub left: String,
    pub right: String,
    /// In table-name order.
    pub tables: Vec<TableReport>,
}

impl SchemaComparison {
    /// True if and only if every table is equal.
    pub fn is_equal(&self) -> bool {
        self.tables.iter().all(TableReport::is_equal)
    }

    /// The tables that differ.
    pub fn differences(&self) -> impl Iterator<Item = &TableReport> {
        self.tables.iter().filter(|table| !table.is_equal())
    }
}

impl fmt::Display for SchemaComparison {
    /// One line per table, and one more per differing key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for table in &self.tables {
            let name = format!("{}.{}", self.kind, table.table);
            if table.is_equal() {
                writeln!(
                    f,
                    "{name:<28} equal     {:>9} rows  {}",
                    table.left.rows, table.left.checksum
                )?;
                continue;
            }
            writeln!(
                f,
                "{name:<28} DIFFERENT {}: {} rows {}, {}: {} rows {}",
                self.left,
                table.left.rows,
                table.left.checksum,
                self.right,
                table.right.rows,
                table.right.checksum
            )?;
            for example in &table.examples {
                match &example.only_in {
                    Some(schema) => writeln!(f, "    {}: only in {schema}", example.key)?,
                    None => writeln!(
                        f,
                        "    {}: differs in {}",
                        example.key,
                        example.columns.join(", ")
                    )?,
                }
            }
        }
        Ok(())
    }
}

/// The live read model compared with a copy rebuilt from the stream, both at one position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadModelReport {
    pub kind: ProjectorKind,
    /// The stream position both sides had applied.
    pub position: u64,
    /// The live schema on the left, the rebuilt copy (dropped since) on the right.
    pub comparison: SchemaComparison,
}

impl ReadModelReport {
    /// True if and only if the live read model equals the rebuilt one in every table.
    pub fn is_equal(&self) -> bool {
        self.comparison.is_equal()
    }
}

/// Compares `kind`'s read model in the schemas `left` and `right`, table by table.
///
/// Reads within whatever transaction `pg` is in; for a read model that is being written, run it
/// where the writer cannot move (see [`verify_read_model`]). Fails with
/// [`ProjectorError::InvalidSchema`] for a schema name that is not a lowercase identifier, and
/// with [`ProjectorError::Postgres`] when a table is missing on one side.
pub async fn compare_schemas(
    pg: &impl GenericClient,
    kind: ProjectorKind,
    left: &str,
    right: &str,
) -> Result<SchemaComparison, ProjectorError> {
    check_schema_name(left)?;
    check_schema_name(right)?;
    let tables = pg
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = $1 AND table_type = 'BASE TABLE' AND table_name <> ALL($2)
             ORDER BY 1",
            &[&left, &NOT_COMPARED],
        )
        .await
        .map_err(ProjectorError::postgres("list read model tables"))?;
    let mut reports = Vec::with_capacity(tables.len());
    for row in tables {
        let table: String = row.get(0);
        reports.push(compare_table(pg, left, right, &table).await?);
    }
    Ok(SchemaComparison { kind, left: left.to_owned(), right: right.to_owned(), tables: reports })
}

async fn compare_table(
    pg: &impl GenericClient,
    left: &str,
    right: &str,
    table: &str,
) -> Result<TableReport, ProjectorError> {
    // 1. The columns compared, in table order, and the primary key.
    let excluded: Vec<&str> =
        WALL_CLOCK_COLUMNS.iter().filter(|(t, _)| *t == table).map(|(_, c)| *c).collect();
    let columns: Vec<String> = pg
        .query(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = $2 AND column_name <> ALL($3)
             ORDER BY ordinal_position",
            &[&left, &table, &excluded],
        )
        .await
        .map_err(ProjectorError::postgres("list read model columns"))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut key: Vec<String> = pg
        .query(
            "SELECT a.attname::text
             FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = format('%I.%I', $1::text, $2::text)::regclass AND i.indisprimary
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
            &[&left, &table],
        )
        .await
        .map_err(ProjectorError::postgres("read primary key"))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if key.is_empty() {
        key = columns.clone();
    }
    let row_text = format!("ROW({})::text", columns.join(", "));
    let key_text = format!("ROW({})::text", key.join(", "));

    // 2. Count and checksum of each side.
    let sum = |schema: &str| {
        format!(
            "SELECT count(*),
                    md5(count(*)::text
                        || '/' || coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint), 0)
                        || '/' || coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint), 0))
             FROM (SELECT md5({row_text}) AS h FROM {schema}.{table}) x"
        )
    };
    let mut sums = Vec::with_capacity(2);
    for schema in [left, right] {
        let row = pg
            .query_one(&sum(schema), &[])
            .await
            .map_err(ProjectorError::postgres("checksum a read model table"))?;
        sums.push(TableSum { rows: row.get(0), checksum: row.get(1) });
    }
    let right_sum = sums.pop().expect("two sides");
    let left_sum = sums.pop().expect("two sides");
    if left_sum == right_sum {
        return Ok(TableReport {
            table: table.to_owned(),
            left: left_sum,
            right: right_sum,
            examples: Vec::new(),
        });
    }

    // 3. A few keys that differ, with both rows as JSON to name the differing columns.
    let side = |schema: &str| {
        format!(
            "SELECT {key_text} AS k, {row_text} AS t, to_jsonb(x) AS j
             FROM (SELECT {} FROM {schema}.{table}) x",
            columns.join(", ")
        )
    };
    let sql = format!(
        "SELECT l.j, r.j FROM ({}) l FULL JOIN ({}) r ON l.k = r.k
         WHERE l.t IS DISTINCT FROM r.t
         ORDER BY coalesce(l.k, r.k) LIMIT {EXAMPLES}",
        side(left),
        side(right)
    );
    let rows =
        pg.query(&sql, &[]).await.map_err(ProjectorError::postgres("find differing rows"))?;
    let examples = rows
        .iter()
        .map(|row| {
            let l: Option<serde_json::Value> = row.get(0);
            let r: Option<serde_json::Value> = row.get(1);
            let shown = l.as_ref().or(r.as_ref()).expect("a full join row has a side");
            let key = key
                .iter()
                .map(|column| format!("{column}={}", plain(&shown[column.as_str()])))
                .collect::<Vec<_>>()
                .join(" ");
            match (&l, &r) {
                (Some(l), Some(r)) => RowDifference {
                    key,
                    only_in: None,
                    columns: columns
                        .iter()
                        .filter(|c| l[c.as_str()] != r[c.as_str()])
                        .cloned()
                        .collect(),
                },
                (Some(_), None) => {
                    RowDifference { key, only_in: Some(left.to_owned()), columns: Vec::new() }
                }
                _ => RowDifference { key, only_in: Some(right.to_owned()), columns: Vec::new() },
            }
        })
        .collect();
    Ok(TableReport { table: table.to_owned(), left: left_sum, right: right_sum, examples })
}

/// A JSON value as a person reads it in a key: strings without their quotes.
fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Rebuilds `config.kind`'s read model from the stream into a scratch schema up to the live
/// checkpoint, compares it with the live read model at exactly that position, and drops the
/// scratch schema.
///
/// The live projector goes on while the copy catches up; for the last events and the
/// comparison it waits on the switch lock (it finishes the batch it is in first). `progress`
/// is called after every batch. Fails with [`ProjectorError::Rebuild`] when there is no live
/// read model or its checkpoint went back during the run; nothing is written to it either way.
/// When `shutdown` completes first, the verification stops, drops the scratch schema and fails
/// with [`ProjectorError::Stopped`]; dropping the returned future drops the schema too.
///
/// # Examples
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use csmp_projector::{verify_read_model, ProjectorConfig};
///
/// let client = async_nats::connect("nats://127.0.0.1:4222").await?;
/// let config = ProjectorConfig {
///     kind: "sla".parse()?,
///     store: csmp_eventstore::EventStoreConfig::default(),
///     database_url: "postgres://postgres@127.0.0.1:5432".to_owned(),
///     batch_size: 1000,
///     consumer_name: None,
///     schema: None,
/// };
/// let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
/// let report = verify_read_model(config, client, ctrl_c, |_| {}).await?;
/// print!("{}", report.comparison);
/// # Ok(())
/// # }
/// ```
pub async fn verify_read_model(
    config: ProjectorConfig,
    client: async_nats::Client,
    shutdown: impl Future<Output = ()> + Send,
    mut progress: impl FnMut(&RebuildProgress) + Send,
) -> Result<ReadModelReport, ProjectorError> {
    let kind = config.kind;
    let live_schema = kind.name();
    let mut shutdown: Shutdown<'_> = Box::pin(shutdown);
    let (mut control, _control) = runner::connect(&config.database_url).await?;

    // 1. There must be a live read model; nothing here creates one.
    let exists = control
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&live_schema])
        .await
        .map_err(ProjectorError::postgres("look up schema"))?
        .is_some();
    if !exists {
        return Err(ProjectorError::Rebuild {
            schema: live_schema.to_owned(),
            detail: "there is no live read model to verify".to_owned(),
        });
    }

    // 2. The scratch copy, compared, and dropped whatever happened.
    let mut replay = Replay::start(&config, client, "verify", &mut control).await?;
    info!(projector = live_schema, schema = %replay.schema, "verification started");
    let result =
        compare_at_live_checkpoint(&mut control, &mut replay, &mut shutdown, &mut progress).await;
    match result {
        Ok(report) => {
            let _ = replay.discard(&control).await;
            Ok(report)
        }
        Err(halt) => Err(replay.end_early(&control, halt).await),
    }
}

async fn compare_at_live_checkpoint(
    control: &mut tokio_postgres::Client,
    replay: &mut Replay,
    shutdown: &mut Shutdown<'_>,
    progress: &mut (dyn FnMut(&RebuildProgress) + Send),
) -> Result<ReadModelReport, Halt> {
    let kind = replay.kind;
    let live_schema = kind.name();
    loop {
        // 1. Up to the live checkpoint, the live projector going on.
        replay.live_checkpoint = read_checkpoint(&*control, live_schema).await?;
        let target = replay.live_checkpoint;
        let caught_up = replay.catch_up(target, None, RebuildPhase::CatchingUp, &mut *progress);
        unless_shutdown(shutdown, caught_up).await?;

        // 2. The live projector held between batches; the copy brought to exactly its position.
        let tx = control.transaction().await.map_err(ProjectorError::postgres("begin verify"))?;
        let locked = hold_switch_lock(&tx, kind);
        unless_shutdown(shutdown, locked).await?;
        let live = read_checkpoint(&tx, live_schema).await?;
        replay.live_checkpoint = live;
        if replay.checkpoint > live {
            return Err(Halt::Failed(ProjectorError::Rebuild {
                schema: live_schema.to_owned(),
                detail: format!(
                    "the live checkpoint went back to {live} below {} during the verification",
                    replay.checkpoint
                ),
            }));
        }
        let deadline = Instant::now() + crate::rebuild::LOCKED_CATCH_UP;
        let caught_up = replay.catch_up(live, Some(deadline), RebuildPhase::Locked, &mut *progress);
        if !unless_shutdown(shutdown, caught_up).await? {
            tx.rollback().await.map_err(ProjectorError::postgres("end verify"))?;
            continue;
        }

        // 3. Both at `live`: compare, and let the live projector go.
        let compared = compare_schemas(&tx, kind, live_schema, &replay.schema);
        let comparison = unless_shutdown(shutdown, compared).await?;
        tx.rollback().await.map_err(ProjectorError::postgres("end verify"))?;
        info!(
            projector = live_schema,
            position = live,
            equal = comparison.is_equal(),
            "verification done"
        );
        return Ok(ReadModelReport { kind, position: live, comparison });
    }
}
