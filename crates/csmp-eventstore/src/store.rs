//! Loading one ticket's events and appending the next one.
//!
//! A ticket's events are the messages of its own subject, so the stream's per-subject sequence
//! check (`Nats-Expected-Last-Subject-Sequence`) makes every append conditional on the history
//! the caller decided on. The message id (`Nats-Msg-Id`) is the command's idempotency key, so
//! JetStream itself drops a repeated command within its duplicate window. Reads go to the stream
//! leader (`STREAM.MSG.GET`), so a reload after a lost race sees the event that won it.

use std::time::Duration;

use async_nats::header::{NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream::context::{ContextBuilder, PublishErrorKind};
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use async_nats::jetstream::{self, context::PublishError};
use async_nats::{HeaderMap, HeaderValue};
use csmp_domain::{EventEnvelope, RecordedEvent, TenantId, TicketId};
use tracing::{debug, info};

use crate::codec::{decode, encode, EVENT_TYPE_HEADER, SCHEMA_VERSION_HEADER};
use crate::config::{ensure_stream, EventStoreConfig};
use crate::error::{AppendError, StoreError};

/// How long to wait for JetStream when the client sets no request time-out of its own.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A history longer than this is still read, but the vector grows as it goes; a corrupt version
/// number must not reserve memory up front.
const MAX_PRESIZED_HISTORY: usize = 1024;

/// The outcome of an accepted append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The stream sequence of the event: its position.
    pub stream_seq: u64,
    /// JetStream had already stored a message with this id within its duplicate window and
    /// stored nothing now; `stream_seq` is the position of the earlier message.
    pub duplicate: bool,
}

/// Every ticket's events on one JetStream stream.
#[derive(Debug, Clone)]
pub struct EventStore {
    js: jetstream::Context,
    stream: Stream,
    config: EventStoreConfig,
}

impl EventStore {
    /// Creates the stream if needed (see [`ensure_stream`]) and returns a store on it.
    ///
    /// JetStream requests and publish acknowledgements wait as long as the client's request
    /// time-out (`ConnectOptions::request_timeout`), 5 seconds when it has none.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use csmp_eventstore::{EventStore, EventStoreConfig};
    ///
    /// let client = async_nats::connect("nats://127.0.0.1:4222").await?;
    /// let store = EventStore::connect(client, EventStoreConfig::default()).await?;
    /// println!("the stream ends at {}", store.last_position().await?);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(
        client: async_nats::Client,
        config: EventStoreConfig,
    ) -> Result<EventStore, StoreError> {
        let timeout = client.timeout().unwrap_or(DEFAULT_TIMEOUT);
        let js =
            ContextBuilder::new().timeout(timeout).backpressure_on_inflight(true).build(client);
        let stream = ensure_stream(&js, &config).await?;
        info!(stream = %config.stream, prefix = %config.subject_prefix, "event store ready");
        Ok(EventStore { js, stream, config })
    }

    pub fn config(&self) -> &EventStoreConfig {
        &self.config
    }

    /// The `Nats-Msg-Id` of a command's event: unique across the stream because it names the
    /// tenant and the ticket besides the request id.
    pub fn message_id(tenant: &TenantId, ticket: TicketId, request_id: &str) -> String {
        format!("{tenant}:{ticket}:{request_id}")
    }

    /// Reads all events of one ticket, oldest first; empty if the ticket has none.
    ///
    /// The last event is read first: it tells whether the ticket exists and, by its version, how
    /// many events come before it. Those are then read one request each, every request skipping
    /// to the next message of the ticket's subject. Tickets have tens of events, so this costs
    /// tens of round trips and needs no consumer.
    pub async fn load(
        &self,
        tenant: &TenantId,
        ticket: TicketId,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let subject = self.config.ticket_subject(tenant, ticket);

        let last = match self.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => decode(message.sequence, &message.payload)?,
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => {
                return Ok(Vec::new());
            }
            Err(err) => return Err(StoreError::from_read("read a ticket's last event", err)),
        };
        let before = usize::try_from(last.envelope.version.saturating_sub(1)).unwrap_or(usize::MAX);

        // A history shorter than the last version claims stops at the last event; replaying it
        // then reports the gap.
        let mut events = Vec::with_capacity(before.min(MAX_PRESIZED_HISTORY) + 1);
        let mut from = 1;
        while events.len() < before {
            let message = self
                .stream
                .get_first_raw_message_by_subject(&subject, from)
                .await
                .map_err(|err| StoreError::from_read("read a ticket's events", err))?;
            if message.sequence >= last.stream_seq {
                break;
            }
            events.push(decode(message.sequence, &message.payload)?);
            from = message.sequence + 1;
        }
        events.push(last);
        debug!(subject = %subject, events = events.len(), "loaded ticket events");
        Ok(events)
    }

    /// Reads the events of one ticket past stream position `after`, oldest first: what a cached
    /// state of the ticket at `after` has missed. Costs one request per event and one more.
    pub async fn load_after(
        &self,
        tenant: &TenantId,
        ticket: TicketId,
        after: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let subject = self.config.ticket_subject(tenant, ticket);
        let mut events = Vec::new();
        let mut from = after + 1;
        loop {
            let message = match self.stream.get_first_raw_message_by_subject(&subject, from).await {
                Ok(message) => message,
                Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => break,
                Err(err) => return Err(StoreError::from_read("read a ticket's new events", err)),
            };
            events.push(decode(message.sequence, &message.payload)?);
            from = message.sequence + 1;
        }
        debug!(subject = %subject, after, events = events.len(), "caught up with ticket events");
        Ok(events)
    }

    /// Appends `envelope` to its ticket's subject if the subject's last event is still at
    /// `expected_last_subject_seq` (0 for a ticket without events), and waits for the
    /// acknowledgement.
    ///
    /// The message id is [`EventStore::message_id`] of the envelope's request id. JetStream
    /// checks it before the expected sequence, so a command that was stored already within the
    /// duplicate window comes back as `duplicate` with the earlier position, not as a conflict.
    pub async fn append(
        &self,
        envelope: &EventEnvelope,
        expected_last_subject_seq: u64,
    ) -> Result<Appended, AppendError> {
        let subject = self.config.ticket_subject(&envelope.tenant, envelope.ticket_id);
        let message_id =
            EventStore::message_id(&envelope.tenant, envelope.ticket_id, &envelope.request_id);
        let message_id = match message_id.parse::<HeaderValue>() {
            Ok(value) => value,
            Err(err) => return Err(AppendError::Rejected { subject, source: Box::new(err) }),
        };

        let mut headers = HeaderMap::new();
        headers.insert(NATS_MESSAGE_ID, message_id);
        headers.insert(
            NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            HeaderValue::from(expected_last_subject_seq),
        );
        headers.insert(EVENT_TYPE_HEADER, envelope.event_type());
        headers.insert(SCHEMA_VERSION_HEADER, HeaderValue::from(envelope.schema_version));
        let payload = encode(envelope);

        let sent = self.js.publish_with_headers(subject.clone(), headers, payload.into()).await;
        let acked = match sent {
            Ok(ack) => ack.await,
            Err(err) => Err(err),
        };
        match acked {
            Ok(ack) => Ok(Appended { stream_seq: ack.sequence, duplicate: ack.duplicate }),
            Err(err) => Err(append_error(subject, expected_last_subject_seq, err)),
        }
    }

    /// The stream's last sequence: the position of the newest event of any ticket.
    pub async fn last_position(&self) -> Result<u64, StoreError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|err| StoreError::from_source("read the stream's state", Box::new(err)))?;
        Ok(info.state.last_sequence)
    }
}

fn append_error(subject: String, expected: u64, err: PublishError) -> AppendError {
    match err.kind() {
        PublishErrorKind::WrongLastSequence => AppendError::Conflict { subject, expected },
        // No responders: JetStream is restarting, or the stream is gone; either way nothing was
        // stored and a later try may land.
        PublishErrorKind::TimedOut
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::MaxAckPending
        | PublishErrorKind::StreamNotFound => {
            AppendError::Unavailable { subject, source: Box::new(err) }
        }
        PublishErrorKind::MaxPayloadExceeded | PublishErrorKind::WrongLastMessageId => {
            AppendError::Rejected { subject, source: Box::new(err) }
        }
        _ => match StoreError::from_source("append", Box::new(err)) {
            StoreError::Rejected { source, .. } => AppendError::Rejected { subject, source },
            StoreError::Unavailable { source, .. } => AppendError::Unavailable { subject, source },
            other => AppendError::Rejected { subject, source: Box::new(other) },
        },
    }
}
