//! Start-up errors of the query service, and the gRPC status of each read-model fault.
//!
//! Requests fail with a `tonic::Status` whose code tells the client what to do:
//! `INVALID_ARGUMENT` names the request field at fault (do not retry unchanged), `NOT_FOUND`
//! means no such ticket for this tenant, `UNAVAILABLE` means a dependency is down, a read model
//! is not there yet, or a read-your-writes wait ran out (retry later), and `INTERNAL` is a fault
//! of ours (do not retry; it is logged).

use tonic::Status;
use tracing::error;

/// Why [`QueryService::connect`](crate::QueryService::connect) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The database URL does not parse. Permanent: fix the configuration.
    #[error("invalid database url: {0}")]
    InvalidDatabaseUrl(#[source] tokio_postgres::Error),
    /// The connection pool could not be built. Permanent: a configuration fault.
    #[error("failed to build the connection pool: {0}")]
    Pool(#[source] deadpool_postgres::BuildError),
    /// The read-model database did not accept a connection. Transient: retry once PostgreSQL is
    /// reachable.
    #[error("failed to connect to the read-model database: {0}")]
    Database(#[source] deadpool_postgres::PoolError),
}

impl QueryError {
    /// Whether retrying later can succeed without a configuration change.
    pub fn is_transient(&self) -> bool {
        matches!(self, QueryError::Database(_))
    }
}

/// `INVALID_ARGUMENT` naming `field`.
pub(crate) fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("invalid {field}: {reason}"))
}

/// No connection from the pool: the database is down or saturated.
pub(crate) fn pool_status(err: deadpool_postgres::PoolError) -> Status {
    Status::unavailable(format!("read-model database unavailable: {err}"))
}

/// The status of a failed read-model query.
pub(crate) fn db_status(err: tokio_postgres::Error) -> Status {
    let Some(db) = err.as_db_error() else {
        return Status::unavailable(format!("read-model database unavailable: {err}"));
    };
    let code = db.code();
    if *code == tokio_postgres::error::SqlState::UNDEFINED_TABLE
        || *code == tokio_postgres::error::SqlState::INVALID_SCHEMA_NAME
    {
        return Status::unavailable(format!(
            "read model not there yet (has its projector run?): {}",
            db.message()
        ));
    }
    error!(error = %err, "read-model query failed");
    Status::internal(format!("read-model query failed: {}", db.message()))
}
