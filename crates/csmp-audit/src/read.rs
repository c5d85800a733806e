//! The handle on the stream, and the ordered scans every view of the history is built on.
//!
//! A scan reads stored messages in stream order through an ordered consumer (ephemeral, no
//! acknowledgements, recreated by the client after a gap), filtered on a subject. It stops where
//! the stream ended when the scan began, or earlier when the consumer has nothing more pending
//! or the caller has seen enough, so that a busy stream does not keep an audit running.
//!
//! Every scan deletes its consumer when it ends, however it ends, so that audits run one after
//! the other leave no consumers behind on the stream. A consumer the client recreated after a
//! gap has a name of the client's making; if one is left, the server removes it once it has been
//! idle for its inactive threshold (30 seconds).

use std::time::Duration;

use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::consumer::{Consumer, DeliverPolicy};
use async_nats::jetstream::context::{ContextBuilder, GetStreamErrorKind};
use async_nats::jetstream::{self, stream::Stream, ErrorCode};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use csmp_eventstore::EventStoreConfig;
use futures::StreamExt;
use tracing::{debug, info};

use crate::error::AuditError;

/// How long to wait for JetStream when the client sets no request time-out of its own.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a scan waits for the next message before it calls NATS unavailable. The server
/// sends what is pending at once, so a silence this long means the connection is in trouble.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One message of the stream, exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The stream sequence.
    pub position: u64,
    pub subject: String,
    /// The body as stored: the JSON envelope, for events this version wrote.
    pub body: Bytes,
    /// When JetStream stored the message, by the server's clock.
    pub stored_at: DateTime<Utc>,
}

/// Whether a scan goes on after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// Read access to the event stream for audits.
#[derive(Debug, Clone)]
pub struct Audit {
    client: async_nats::Client,
    stream: Stream,
    config: EventStoreConfig,
}

impl Audit {
    /// Looks the stream up and returns a handle on it. Unlike the services, an audit never
    /// creates the stream nor changes its configuration: a missing stream is
    /// [`AuditError::StreamNotFound`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use csmp_audit::{Audit, VerifyScope};
    /// use csmp_eventstore::EventStoreConfig;
    ///
    /// let client = async_nats::connect("nats://127.0.0.1:4222").await?;
    /// let audit = Audit::connect(client, EventStoreConfig::default()).await?;
    /// let report = audit.verify(&VerifyScope::All).await?;
    /// print!("{}", report.render_text());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(
        client: async_nats::Client,
        config: EventStoreConfig,
    ) -> Result<Audit, AuditError> {
        let timeout = client.timeout().unwrap_or(DEFAULT_TIMEOUT);
        let js = ContextBuilder::new().timeout(timeout).build(client.clone());
        let stream = match js.get_stream(&config.stream).await {
            Ok(stream) => stream,
            Err(err) if is_stream_not_found(&err) => {
                return Err(AuditError::StreamNotFound { stream: config.stream.clone() });
            }
            Err(err) => {
                return Err(AuditError::Unavailable {
                    operation: "look up the stream",
                    source: Box::new(err),
                })
            }
        };
        info!(stream = %config.stream, prefix = %config.subject_prefix, "audit reading the stream");
        Ok(Audit { client, stream, config })
    }

    pub fn config(&self) -> &EventStoreConfig {
        &self.config
    }

    /// Reads the messages on `filter` from `start` in stream order and hands each to `visit`,
    /// until `visit` stops, nothing matching is pending, or the position where the stream ended
    /// when the scan began is reached, then deletes the consumer. Returns the number of messages
    /// read.
    pub(crate) async fn scan<F>(
        &self,
        filter: String,
        start: DeliverPolicy,
        visit: F,
    ) -> Result<u64, AuditError>
    where
        F: FnMut(StoredEvent) -> Result<Flow, AuditError>,
    {
        // 1. Where the stream ends now.
        let state = self
            .stream
            .get_info()
            .await
            .map_err(|err| AuditError::unavailable("read the stream's state")(Box::new(err)))?
            .state;
        if state.messages == 0 {
            return Ok(0);
        }
        let end = state.last_sequence;

        // 2. An ordered consumer; the server says at once how many messages match.
        let consumer = self
            .stream
            .create_consumer(OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                description: Some("csmp audit read".to_owned()),
                filter_subject: filter.clone(),
                deliver_policy: start,
                ..Default::default()
            })
            .await
            .map_err(|err| AuditError::unavailable("create an ordered consumer")(Box::new(err)))?;
        let name = consumer.cached_info().name.clone();

        // 3. The messages, then the consumer deleted whatever the read came to.
        let read = if consumer.cached_info().num_pending == 0 {
            debug!(filter = %filter, "nothing to read");
            Ok(0)
        } else {
            read_until(consumer, end, visit).await
        };
        if let Err(err) = self.stream.delete_consumer(&name).await {
            debug!(consumer = %name, cause = %err, "audit consumer not deleted");
        }
        read
    }

    /// Every stored message of one ticket's subject, in stream order.
    pub(crate) async fn ticket_messages(
        &self,
        subject: String,
    ) -> Result<Vec<StoredEvent>, AuditError> {
        let mut events = Vec::new();
        self.scan(subject, DeliverPolicy::All, |event| {
            events.push(event);
            Ok(Flow::Continue)
        })
        .await?;
        Ok(events)
    }
}

/// Hands the consumer's messages to `visit` until it stops, nothing more is pending, or the
/// position `end` is reached; the consumer's subscription ends with the call.
async fn read_until<F>(
    consumer: Consumer<OrderedConfig>,
    end: u64,
    mut visit: F,
) -> Result<u64, AuditError>
where
    F: FnMut(StoredEvent) -> Result<Flow, AuditError>,
{
    let mut messages = consumer
        .messages()
        .await
        .map_err(|err| AuditError::unavailable("read the stream")(Box::new(err)))?;
    let mut read = 0;
    loop {
        let next = tokio::time::timeout(IDLE_TIMEOUT, messages.next()).await.map_err(|_| {
            AuditError::unavailable("read the stream")(
                format!("no message within {} seconds", IDLE_TIMEOUT.as_secs()).into(),
            )
        })?;
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(err)) => {
                return Err(AuditError::unavailable("read the stream")(Box::new(err)))
            }
            None => {
                return Err(AuditError::unavailable("read the stream")(
                    "the ordered consumer ended".into(),
                ))
            }
        };
        let info = message
            .info()
            .map_err(|err| AuditError::unavailable("read a message's position")(err))?;
        let (position, pending) = (info.stream_sequence, info.pending);
        let stored_at = to_chrono(info.published);
        read += 1;
        debug!(position, subject = %message.subject, "read stored event");
        let flow = visit(StoredEvent {
            position,
            subject: message.subject.to_string(),
            body: message.payload.clone(),
            stored_at,
        })?;
        if flow == Flow::Stop || pending == 0 || position >= end {
            return Ok(read);
        }
    }
}

fn is_stream_not_found(err: &jetstream::context::GetStreamError) -> bool {
    matches!(
        err.kind(),
        GetStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND
    )
}

fn to_chrono(at: time::OffsetDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(at.unix_timestamp(), at.nanosecond()).unwrap_or_default()
}

/// The consumer start time for `at`; times the server cannot take start at the beginning,
/// which reads more but misses nothing.
pub(crate) fn to_start_time(at: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(at.timestamp())
        .ok()
        .and_then(|t| t.replace_nanosecond(at.timestamp_subsec_nanos()).ok())
        .filter(|t| t.unix_timestamp() >= 0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn start_times_keep_the_instant_and_clamp_to_the_epoch() {
        let at =
            Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap() + chrono::Duration::nanoseconds(250);
        let start = to_start_time(at);
        assert_eq!(start.unix_timestamp(), 1_772_600_767);
        assert_eq!(start.nanosecond(), 250);
        assert_eq!(to_chrono(start), at);
        let before_epoch = Utc.with_ymd_and_hms(1969, 12, 31, 23, 0, 0).unwrap();
        assert_eq!(to_start_time(before_epoch), time::OffsetDateTime::UNIX_EPOCH);
    }
}
