//! One subscription: an ordered JetStream consumer on the tenant's subjects, turned into feed
//! messages.
//!
//! The ordered consumer delivers the stream in order and recreates itself from the last stream
//! sequence it delivered when it sees a gap or loses its server-side state, so history and live
//! events come through the same consumer with no switch-over between them. What it cannot know
//! is where the history ends; that is read once, before the consumer is created, as the position
//! of the tenant's last event.

use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::{ConsumerErrorKind, LastRawMessageErrorKind, Stream};
use async_nats::jetstream::{self, Message};
use csmp_eventstore::{decode, EventStoreConfig, EVENT_TYPE_HEADER};
use csmp_proto::v1 as pb;
use futures::StreamExt;
use tokio::sync::mpsc;
use tonic::Status;
use tracing::{debug, info, warn};

use crate::error::FeedError;
use crate::request::Subscription;

/// A started subscription: the consumer exists and the end of the history is known.
pub(crate) struct Feed {
    subscription: Subscription,
    /// Where the events of the subscribed tenant are stored, to check each body against.
    store: EventStoreConfig,
    stream: Stream,
    consumer_name: String,
    messages: Ordered,
    /// The position of the tenant's last event when the subscription started; events after it
    /// are live.
    history_end: u64,
    /// Whether the consumer had nothing to deliver when it was created.
    history_empty: bool,
}

impl Feed {
    /// Finds the stream, reads where the tenant's history ends, and creates the consumer.
    pub async fn start(
        js: &jetstream::Context,
        store: &EventStoreConfig,
        subscription: Subscription,
    ) -> Result<Feed, FeedError> {
        let stream = js.get_stream(&store.stream).await.map_err(|err| {
            let answer = match err.kind() {
                GetStreamErrorKind::JetStream(js) => Some(js.error_code()),
                _ => None,
            };
            FeedError::from_nats("find the event stream", answer, err)
        })?;
        // A position the stream has not reached was never handed out; a consumer started past
        // it would wait silently until the stream grew that far.
        let stream_end = stream.cached_info().state.last_sequence;
        if subscription.after_position > stream_end {
            return Err(FeedError::invalid(
                "after_position",
                format!(
                    "invalid after_position: {} is beyond the stream's last position {stream_end}",
                    subscription.after_position
                ),
            ));
        }
        let filter = format!("{}.{}.ticket.>", store.subject_prefix, subscription.tenant);

        // Read before the consumer exists: whatever is appended in between is live, and is
        // delivered after the mark either way.
        let history_end = match stream.get_last_raw_message_by_subject(&filter).await {
            Ok(message) => message.sequence,
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => 0,
            Err(err) => {
                let answer = match err.kind() {
                    LastRawMessageErrorKind::JetStream(js) => Some(js.error_code()),
                    _ => None,
                };
                return Err(FeedError::from_nats("read the tenant's last event", answer, err));
            }
        };

        let deliver_policy = match subscription.after_position {
            0 => DeliverPolicy::All,
            after => DeliverPolicy::ByStartSequence { start_sequence: after + 1 },
        };
        let consumer_name = format!("csmp_feed_{}", uuid::Uuid::new_v4().simple());
        let consumer = stream
            .create_consumer(OrderedConfig {
                name: Some(consumer_name.clone()),
                description: Some(format!("event feed of tenant {}", subscription.tenant)),
                filter_subject: filter,
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|err| {
                let answer = match err.kind() {
                    ConsumerErrorKind::JetStream(js) => Some(js.error_code()),
                    _ => None,
                };
                FeedError::from_nats("create the feed consumer", answer, err)
            })?;
        let history_empty = consumer.cached_info().num_pending == 0;
        let messages = consumer
            .messages()
            .await
            .map_err(|err| FeedError::from_nats("read the feed consumer", None, err))?;

        Ok(Feed {
            subscription,
            store: store.clone(),
            stream,
            consumer_name,
            messages,
            history_end,
            history_empty,
        })
    }

    /// Sends feed messages to `out` until the client goes away or the consumer fails, then
    /// deletes the consumer.
    pub async fn run(mut self, out: mpsc::Sender<Result<pb::FeedMessage, Status>>) {
        let tenant = self.subscription.tenant.clone();
        let after = self.subscription.after_position;
        info!(%tenant, after, history_end = self.history_end, "subscription started");

        let end = self.forward(&out).await;
        match end {
            Ok(()) => info!(%tenant, "subscription ended: the client went away"),
            Err(err) => {
                warn!(%tenant, cause = %err, "subscription ended: the consumer failed");
                let _ = out.send(Err(err.into())).await;
            }
        }

        // Dropping the consumer's messages stops its pull requests; deleting it frees the
        // server at once. A consumer recreated under another name expires on its own once idle.
        drop(self.messages);
        if let Err(err) = self.stream.delete_consumer(&self.consumer_name).await {
            debug!(consumer = %self.consumer_name, cause = %err, "feed consumer not deleted");
        }
    }

    /// The loop of [`Feed::run`]: `Ok` when the client went away.
    async fn forward(
        &mut self,
        out: &mpsc::Sender<Result<pb::FeedMessage, Status>>,
    ) -> Result<(), FeedError> {
        // 1. Nothing after `after_position` yet: the history is empty.
        let after = self.subscription.after_position;
        let mut caught_up = false;
        if self.history_empty || self.history_end <= after {
            caught_up = true;
            if !send(out, caught_up_message(after)).await {
                return Ok(());
            }
        }

        // 2. Every message once, in order. A recreated consumer restarts after the last stream
        // sequence it delivered, or from the stream's start if it had delivered none yet, so a
        // position already handled can come again and is dropped here.
        let mut last_position = after;
        loop {
            let message = tokio::select! {
                () = out.closed() => return Ok(()),
                next = self.messages.next() => next,
            };
            let message = match message {
                Some(Ok(message)) => message,
                Some(Err(err)) => {
                    return Err(FeedError::from_nats("read the feed consumer", None, err));
                }
                None => {
                    return Err(FeedError::from_nats(
                        "read the feed consumer",
                        None,
                        "the consumer's messages ended",
                    ));
                }
            };
            let (position, pending) = match message.info() {
                Ok(info) => (info.stream_sequence, info.pending),
                Err(err) => {
                    return Err(FeedError::from_nats("read a message's position", None, err))
                }
            };
            if position <= last_position {
                debug!(position, last_position, "dropped a position delivered before");
                continue;
            }
            last_position = position;

            // 3. The event, if it is of a wanted type and decodes.
            if let Some(event) = self.event(position, &message) {
                if !send(out, pb::feed_message::Message::Event(event)).await {
                    return Ok(());
                }
            }

            // 4. The mark, after the history's last message whether or not it was delivered. A
            // pending count of 0 says the same from the server's side: nothing older is left.
            if !caught_up && (position >= self.history_end || pending == 0) {
                caught_up = true;
                if !send(out, caught_up_message(position)).await {
                    return Ok(());
                }
            }
        }
    }

    /// The feed event of the message at `position`: `None` for an unwanted type, and for a
    /// message that is not an event or not stored under its own ticket's subject, which stays
    /// in the stream for an operator to look at (`csmp audit verify` names it).
    fn event(&self, position: u64, message: &Message) -> Option<pb::FeedEvent> {
        // The header spares decoding unwanted events; a message without it is decoded to learn
        // its type.
        let header = message.headers.as_ref().and_then(|h| h.get(EVENT_TYPE_HEADER));
        if let Some(event_type) = header {
            if !self.subscription.wants(event_type.as_str()) {
                return None;
            }
        }

        let recorded = match decode(position, &message.payload) {
            Ok(recorded) => recorded,
            Err(err) => {
                warn!(position, cause = %err, "skipped a message the feed cannot decode");
                return None;
            }
        };
        let envelope = recorded.envelope;
        // Only the command service writes the stream, always under the event's own ticket
        // subject, which the consumer's filter keeps within the subscribed tenant; a body
        // naming another tenant or ticket was written around it and is not this tenant's.
        if !self.store.is_own_subject(message.subject.as_str(), &envelope) {
            warn!(
                position,
                subject = %message.subject,
                "skipped an event whose body names another tenant or ticket than its subject"
            );
            return None;
        }
        let event_type = envelope.event_type();
        if !self.subscription.wants(event_type) {
            return None;
        }
        let envelope_json =
            serde_json::to_string(&envelope).expect("an envelope always serializes");
        debug!(position, event_type, ticket_id = %envelope.ticket_id, "delivering event");
        Some(pb::FeedEvent {
            position,
            event_type: event_type.to_owned(),
            schema_version: envelope.schema_version,
            ticket_id: envelope.ticket_id.to_string(),
            envelope_json,
            hash: envelope.hash.clone().unwrap_or_default(),
        })
    }
}

fn caught_up_message(position: u64) -> pb::feed_message::Message {
    pb::feed_message::Message::CaughtUp(pb::CaughtUp { position })
}

/// Sends one feed message; `false` when the client has gone away.
async fn send(
    out: &mpsc::Sender<Result<pb::FeedMessage, Status>>,
    message: pb::feed_message::Message,
) -> bool {
    out.send(Ok(pb::FeedMessage { message: Some(message) })).await.is_ok()
}
