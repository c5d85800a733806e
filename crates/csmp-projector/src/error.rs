//! The projector's errors, each with the way a caller handles it.

use std::error::Error as StdError;

use csmp_eventstore::StreamSetupError;

/// Why a projector, a migration or a policy change failed.
///
/// [`ProjectorError::is_transient`] tells faults that may pass (a server restarting, a dropped
/// connection) from those that need a person. [`run`](crate::run) retries the transient ones
/// itself; the other functions leave the retry to the caller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectorError {
    /// The database URL does not parse. Permanent: fix the configuration.
    #[error("invalid database url: {0}")]
    InvalidDatabaseUrl(#[source] tokio_postgres::Error),
    /// PostgreSQL refused a statement or the connection failed. Transient when the connection
    /// broke or the server asked to retry (serialization failure, deadlock, shutdown); a
    /// rejected statement is permanent.
    #[error("failed to {action}: {source}")]
    Postgres {
        action: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    /// NATS or JetStream did not answer or refused a request. Transient: retry when NATS is
    /// reachable.
    #[error("failed to {action}: {source}")]
    Nats {
        action: &'static str,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The event stream could not be created or brought to its configuration. Transient.
    #[error(transparent)]
    Stream(#[from] StreamSetupError),
    /// A read-model row holds a value this version cannot read, for example an unknown status.
    /// Permanent: the read model was changed by hand or by a newer version; an operator must
    /// look, or reset the read model to rebuild it from the stream.
    #[error("read model {schema} holds an unreadable value: {detail}")]
    ReadModel { schema: &'static str, detail: String },
    /// The stored SLA policy of a tenant does not parse. Permanent, like `ReadModel`.
    #[error("stored SLA policy of tenant {tenant} is unreadable: {source}")]
    Policy {
        tenant: String,
        #[source]
        source: serde_json::Error,
    },
    /// A policy given to [`set_sla_policy`](crate::set_sla_policy) has a target that is not
    /// positive or an at-risk share outside 1 to 100 percent. Do not retry unchanged
    /// (`INVALID_ARGUMENT`).
    #[error("invalid SLA policy: {0}")]
    InvalidPolicy(String),
    /// The stored SLA configuration of a tenant (policy versions, calendars) no longer forms a
    /// valid history, for example after a hand edit. Permanent: an operator must fix the rows.
    #[error("stored SLA configuration of tenant {tenant} is invalid: {detail}")]
    SlaConfig { tenant: String, detail: String },
    /// A calendar given to [`set_calendar`](crate::set_calendar) or a holiday file given to
    /// [`import_holidays`](crate::import_holidays) is refused; the message names the field or
    /// line. Do not retry unchanged (`INVALID_ARGUMENT`).
    #[error("invalid SLA calendar: {0}")]
    InvalidCalendar(String),
    /// A schema name given to a projector, a rebuild or a comparison is not a lowercase
    /// identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes). Permanent: fix the configuration.
    #[error("invalid schema name {0:?}: expected a lowercase identifier")]
    InvalidSchema(String),
    /// A rebuild or a verification cannot go on: the live read model is missing, its
    /// checkpoint went back while a copy was being built, or the name of the new or retired
    /// schema is taken. Permanent as it stands: the detail says what an operator must look at;
    /// nothing was switched.
    #[error("rebuild of {schema} failed: {detail}")]
    Rebuild { schema: String, detail: String },
    /// A rebuild or a verification stopped because its shutdown signal came, before the switch
    /// (or the comparison). Nothing was switched and the live read model is untouched; the
    /// unfinished schema was dropped unless `dropped` is false, in which case an operator drops
    /// it (`DROP SCHEMA <schema> CASCADE`). Not a fault: run it again when wanted.
    #[error("{}", stopped_message(.schema, *.dropped))]
    Stopped { schema: String, dropped: bool },
    /// A fault injected by a test ([`FaultInjection`](crate::FaultInjection)); the batch was
    /// rolled back. Permanent, so that the run ends and the test restarts it.
    #[error("injected fault in the batch at stream positions {first}..={last}")]
    Injected { first: u64, last: u64 },
}

impl ProjectorError {
    /// Whether retrying the same work later can succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            ProjectorError::Postgres { source, .. } => is_transient_postgres(source),
            ProjectorError::Nats { .. } | ProjectorError::Stream(_) => true,
            ProjectorError::InvalidDatabaseUrl(_)
            | ProjectorError::ReadModel { .. }
            | ProjectorError::Policy { .. }
            | ProjectorError::InvalidPolicy(_)
            | ProjectorError::SlaConfig { .. }
            | ProjectorError::InvalidCalendar(_)
            | ProjectorError::InvalidSchema(_)
            | ProjectorError::Rebuild { .. }
            | ProjectorError::Stopped { .. }
            | ProjectorError::Injected { .. } => false,
        }
    }

    /// Whether PostgreSQL refused the values of a statement rather than the statement itself or
    /// the connection: a data exception (class 22, such as a NUL in text or a time outside the
    /// timestamp range), an integrity constraint (23) or a size limit (54). Such an error, met
    /// while applying one event alone, is that event's fault and makes it a dead letter.
    pub(crate) fn refuses_values(&self) -> bool {
        self.refused_values_message().is_some()
    }

    /// PostgreSQL's message when [`refuses_values`](Self::refuses_values), prefixed with what
    /// the projector was doing.
    pub(crate) fn refused_values_message(&self) -> Option<String> {
        let ProjectorError::Postgres { action, source } = self else {
            return None;
        };
        let db = source.as_db_error()?;
        let code = db.code().code();
        ["22", "23", "54"]
            .iter()
            .any(|class| code.starts_with(class))
            .then(|| format!("failed to {action}: {}", db.message()))
    }

    pub(crate) fn postgres(action: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Self {
        move |source| ProjectorError::Postgres { action, source }
    }

    pub(crate) fn nats<E: StdError + Send + Sync + 'static>(
        action: &'static str,
    ) -> impl FnOnce(E) -> Self {
        move |source| ProjectorError::Nats { action, source: Box::new(source) }
    }

    pub(crate) fn read_model(schema: &'static str, detail: impl Into<String>) -> Self {
        ProjectorError::ReadModel { schema, detail: detail.into() }
    }
}

fn stopped_message(schema: &str, dropped: bool) -> String {
    if dropped {
        format!("stopped before the end: the unfinished schema {schema} was dropped")
    } else {
        format!(
            "stopped before the end: the unfinished schema {schema} could not be dropped, \
             drop it with DROP SCHEMA {schema} CASCADE"
        )
    }
}

/// A closed or failed connection, or a server error of a class that asks for a retry:
/// 08 connection, 40 transaction rollback, 53 insufficient resources, 57 operator intervention,
/// 58 system. A conversion error or a rejected statement is permanent.
fn is_transient_postgres(err: &tokio_postgres::Error) -> bool {
    match err.as_db_error() {
        None => err.is_closed() || err.source().is_some_and(|source| source.is::<std::io::Error>()),
        Some(db) => {
            let code = db.code().code();
            ["08", "40", "53", "57", "58"].iter().any(|class| code.starts_with(class))
        }
    }
}
