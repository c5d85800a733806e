//! Read-your-writes: waiting until the projectors a query reads from have applied a position.
//!
//! A command answers with the stream position of its event; a query given that position as
//! `min_position` polls the checkpoints of the read models it reads, every few milliseconds,
//! until the slowest of them reaches it or the configured timeout runs out.

use std::time::Duration;

use deadpool_postgres::{Client, Pool};
use tokio::time::Instant;
use tonic::Status;

use crate::error::{db_status, pool_status};

/// The read models, by schema name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Model {
    Queues,
    Sla,
    Feedback,
}

impl Model {
    pub const ALL: [Model; 3] = [Model::Queues, Model::Sla, Model::Feedback];

    pub fn schema(self) -> &'static str {
        match self {
            Model::Queues => "queues",
            Model::Sla => "sla",
            Model::Feedback => "feedback",
        }
    }
}

/// Pause between two looks at the checkpoints.
const POLL: Duration = Duration::from_millis(5);

/// Returns once every one of `models` has applied `min_position` (at once for 0), or
/// `UNAVAILABLE` naming the position reached when `timeout` runs out first.
pub(crate) async fn until_applied(
    pool: &Pool,
    models: &[Model],
    min_position: u64,
    timeout: Duration,
) -> Result<(), Status> {
    if min_position == 0 {
        return Ok(());
    }
    let deadline = Instant::now() + timeout;
    loop {
        let reached = {
            let pg = pool.get().await.map_err(pool_status)?;
            slowest_checkpoint(&pg, models).await?
        };
        if reached >= min_position {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            let names: Vec<&str> = models.iter().map(|m| m.schema()).collect();
            return Err(Status::unavailable(format!(
                "read models {} reached stream position {reached}, not min_position \
                 {min_position}, within {} ms; retry later",
                names.join(", "),
                timeout.as_millis()
            )));
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
}

/// The lowest checkpoint among `models`; a read model not created yet counts as 0.
async fn slowest_checkpoint(pg: &Client, models: &[Model]) -> Result<u64, Status> {
    let mut slowest = u64::MAX;
    for model in models {
        let sql = format!("SELECT position FROM {}.checkpoint", model.schema());
        let position = match pg.query_one(&sql, &[]).await {
            Ok(row) => row.get::<_, i64>(0) as u64,
            Err(err) if is_missing(&err) => 0,
            Err(err) => return Err(db_status(err)),
        };
        slowest = slowest.min(position);
    }
    Ok(slowest)
}

/// A read model's checkpoint, last update and dead-letter count; zeros when it does not exist.
pub(crate) async fn checkpoint(
    pg: &Client,
    model: Model,
) -> Result<(u64, Option<chrono::DateTime<chrono::Utc>>, u64), Status> {
    let sql = format!("SELECT checkpoint, updated_at, dead_letters FROM {}.status", model.schema());
    match pg.query_one(&sql, &[]).await {
        Ok(row) => Ok((row.get::<_, i64>(0) as u64, Some(row.get(1)), row.get::<_, i64>(2) as u64)),
        Err(err) if is_missing(&err) => Ok((0, None, 0)),
        Err(err) => Err(db_status(err)),
    }
}

fn is_missing(err: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    err.code().is_some_and(|code| {
        *code == SqlState::UNDEFINED_TABLE || *code == SqlState::INVALID_SCHEMA_NAME
    })
}
