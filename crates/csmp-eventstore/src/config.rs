//! Stream naming and the idempotent creation of the stream.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use csmp_domain::{TenantId, TicketId};

/// Where the events live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStoreConfig {
    /// The JetStream stream name, for example `CSMP_EVENTS`.
    pub stream: String,
    /// The first subject token, for example `csmp`.
    pub subject_prefix: String,
    /// How long JetStream remembers a `Nats-Msg-Id` to drop a duplicate publish.
    pub duplicate_window: Duration,
}

impl Default for EventStoreConfig {
    fn default() -> Self {
        EventStoreConfig {
            stream: "CSMP_EVENTS".to_owned(),
            subject_prefix: "csmp".to_owned(),
            duplicate_window: Duration::from_secs(120),
        }
    }
}

impl EventStoreConfig {
    /// Whether an event read from `subject` is stored where the command service stores it: under
    /// its own tenant's and ticket's subject. One that is not was written around the service.
    pub fn is_own_subject(&self, subject: &str, envelope: &csmp_domain::EventEnvelope) -> bool {
        subject == self.ticket_subject(&envelope.tenant, envelope.ticket_id)
    }

    /// The subject of one ticket's events.
    pub fn ticket_subject(&self, tenant: &TenantId, ticket: TicketId) -> String {
        format!("{}.{}.ticket.{}", self.subject_prefix, tenant, ticket)
    }

    /// The subjects of one tenant's events.
    pub fn tenant_subjects(&self, tenant: &TenantId) -> String {
        format!("{}.{}.>", self.subject_prefix, tenant)
    }

    /// Every subject of the stream.
    pub fn all_subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            subjects: vec![self.all_subjects()],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::New,
            max_messages: -1,
            max_bytes: -1,
            max_age: Duration::ZERO,
            duplicate_window: self.duplicate_window,
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            ..Default::default()
        }
    }
}

/// The stream could not be created or brought to our configuration.
#[derive(Debug, thiserror::Error)]
pub enum StreamSetupError {
    /// JetStream refused or did not answer; retry when NATS is reachable (`UNAVAILABLE`).
    #[error("failed to create or update stream {stream}: {source}")]
    Nats {
        stream: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Creates the stream, or updates an existing one to our configuration. Safe to call from every
/// service at start-up, concurrently.
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: &EventStoreConfig,
) -> Result<stream::Stream, StreamSetupError> {
    let wanted = config.stream_config();
    let err = |e: Box<dyn std::error::Error + Send + Sync>| StreamSetupError::Nats {
        stream: config.stream.clone(),
        source: e,
    };
    match js.get_stream(&config.stream).await {
        Ok(mut existing) => {
            let info = existing.info().await.map_err(|e| err(Box::new(e)))?;
            let current = &info.config;
            let differs = current.subjects != wanted.subjects
                || current.duplicate_window != wanted.duplicate_window
                || !current.deny_delete
                || !current.deny_purge
                || !current.allow_direct;
            if differs {
                js.update_stream(&wanted).await.map_err(|e| err(Box::new(e)))?;
            }
            Ok(existing)
        }
        Err(e) if is_stream_not_found(&e) => match create_stream(js, &wanted).await {
            Ok(stream) => Ok(stream),
            // Another service created it in between; if not, the refusal says why (subjects
            // that another stream takes, for one).
            Err(refused) => match js.get_stream(&config.stream).await {
                Ok(stream) => Ok(stream),
                Err(_) => Err(err(Box::new(refused))),
            },
        },
        // NATS is down or slow: creating would fail the same way.
        Err(e) => Err(err(Box::new(e))),
    }
}

/// How often a stream creation the server failed to store is tried, in all.
const STORE_CREATE_ATTEMPTS: u32 = 5;

/// Creates the stream, trying again when the server failed to make its storage. nats-server 2.9
/// removes an account's empty streams directory when its last stream is deleted, and a stream
/// created at that moment fails with "error creating store for stream" although nothing is wrong
/// with the request; a second try finds the directory made anew.
async fn create_stream(
    js: &jetstream::Context,
    wanted: &stream::Config,
) -> Result<stream::Stream, jetstream::context::CreateStreamError> {
    let mut attempt = 1;
    loop {
        match js.create_stream(wanted.clone()).await {
            Err(e) if is_store_failure(&e) && attempt < STORE_CREATE_ATTEMPTS => {
                tracing::warn!(stream = %wanted.name, attempt, "stream storage not created: {e}");
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// JetStream's code for "error creating store for stream".
const STREAM_STORE_FAILED: jetstream::ErrorCode = jetstream::ErrorCode(10049);

fn is_store_failure(err: &jetstream::context::CreateStreamError) -> bool {
    matches!(
        err.kind(),
        jetstream::context::CreateStreamErrorKind::JetStream(e)
            if e.error_code() == STREAM_STORE_FAILED
    )
}

fn is_stream_not_found(err: &jetstream::context::GetStreamError) -> bool {
    matches!(
        err.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(e)
            if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}
