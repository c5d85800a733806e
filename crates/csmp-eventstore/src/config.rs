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
        Err(e) if is_stream_not_found(&e) => match js.create_stream(wanted.clone()).await {
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

fn is_stream_not_found(err: &jetstream::context::GetStreamError) -> bool {
    matches!(
        err.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(e)
            if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}
