//! Building tickets for audit tests: decided through the domain, written through the event
//! store, and copies of a stream made with plain JetStream publishes so that a test can alter,
//! drop or reorder stored messages the way only someone bypassing the services could.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use async_nats::jetstream;
use async_nats::HeaderMap;
use chrono::{DateTime, Duration, TimeZone, Utc};
use csmp_audit::Audit;
use csmp_domain::command::OpenTicket;
use csmp_domain::{
    Actor, AgentId, Channel, Command, CommandContext, Currency, CustomerId, CustomerTier,
    EventEnvelope, Money, Priority, RecordedEvent, RefundId, Role, SupportTier, TenantId, Ticket,
    TicketId,
};
use csmp_eventstore::{EventStore, EventStoreConfig};
use csmp_testkit::TestStream;
use serde_json::Value;
use uuid::Uuid;

pub fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

pub fn ticket_id(n: u128) -> TicketId {
    TicketId(Uuid::from_u128(n))
}

/// `minutes` after 2026-03-04 05:06:07 UTC.
pub fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap() + Duration::minutes(minutes)
}

pub fn agent() -> Actor {
    Actor::new("agent-7", Role::Tier1Agent).unwrap()
}

pub fn importer() -> Actor {
    Actor::new("export-2025", Role::Importer).unwrap()
}

pub fn open() -> Command {
    Command::Open(OpenTicket {
        customer_id: CustomerId::parse("cust-1").unwrap(),
        customer_tier: CustomerTier::Business,
        channel: Channel::Email,
        category: "billing".into(),
        priority: Priority::High,
        subject: "Charged twice".into(),
        description: "Two charges on my card".into(),
        product: "shop".into(),
        is_complaint: false,
    })
}

pub fn assign(agent: &str) -> Command {
    Command::Assign { agent_id: AgentId::parse(agent).unwrap() }
}

pub fn escalate() -> Command {
    Command::Escalate { to: SupportTier::Tier2, reason: "needs billing access".into() }
}

pub fn resolve() -> Command {
    Command::Resolve { resolution_summary: "second charge refunded".into() }
}

/// A refund within a tier 1 agent's limit, so it is issued at once.
pub fn refund(id: &str, amount_minor: i64) -> Command {
    Command::Refund {
        refund_id: RefundId::parse(id).unwrap(),
        amount: Money { amount_minor, currency: Currency::parse("EUR").unwrap() },
        reason: "double charge".into(),
    }
}

pub fn config(stream: &TestStream) -> EventStoreConfig {
    EventStoreConfig {
        stream: stream.stream.clone(),
        subject_prefix: stream.subject_prefix.clone(),
        ..EventStoreConfig::default()
    }
}

pub async fn store(stream: &TestStream) -> EventStore {
    let client = async_nats::connect(&stream.nats_url).await.expect("connect to NATS");
    EventStore::connect(client, config(stream)).await.expect("connect the event store")
}

pub async fn audit(stream: &TestStream) -> Audit {
    let client = async_nats::connect(&stream.nats_url).await.expect("connect to NATS");
    Audit::connect(client, config(stream)).await.expect("open the audit")
}

/// How one command is sent: by whom, when, and with which ids.
pub struct Sent {
    pub actor: Actor,
    pub now: DateTime<Utc>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub request_id: String,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
}

impl Sent {
    pub fn new(actor: Actor, now: DateTime<Utc>, request_id: &str) -> Self {
        Sent {
            actor,
            now,
            occurred_at: None,
            request_id: request_id.to_owned(),
            correlation_id: None,
            causation_id: None,
        }
    }

    fn context(&self) -> CommandContext {
        let mut ctx = CommandContext::new(self.actor.clone(), self.now, &self.request_id);
        ctx.occurred_at = self.occurred_at;
        ctx.correlation_id = self.correlation_id.clone();
        ctx.causation_id = self.causation_id.clone();
        ctx
    }
}

/// The envelope of `command` decided on `ticket`, with an event id made from the ticket id and
/// the version so that every run stores the same bodies.
pub fn decide(ticket: &Ticket, command: &Command, sent: &Sent) -> EventEnvelope {
    let ctx = sent.context();
    let payload = ticket.decide(command, &ctx).expect("the command is valid");
    let event_id = Uuid::from_u128((ticket.id.0.as_u128() << 16) + u128::from(ticket.version + 1));
    ticket.envelope(payload, &ctx, event_id)
}

/// Decides and appends `command` and applies its event; returns the event's position.
pub async fn append(store: &EventStore, ticket: &mut Ticket, command: Command, sent: Sent) -> u64 {
    let envelope = decide(ticket, &command, &sent);
    let appended = store.append(&envelope, ticket.last_stream_seq).await.expect("append");
    assert!(!appended.duplicate);
    ticket.apply(&RecordedEvent { stream_seq: appended.stream_seq, envelope }).unwrap();
    appended.stream_seq
}

/// Decides `command` on `ticket` and applies its event as if stored at `position`, without any
/// store; returns the envelope.
pub fn record(ticket: &mut Ticket, command: Command, sent: Sent, position: u64) -> EventEnvelope {
    let envelope = decide(ticket, &command, &sent);
    ticket.apply(&RecordedEvent { stream_seq: position, envelope: envelope.clone() }).unwrap();
    envelope
}

/// One stored message: subject, headers and body.
pub struct RawMessage {
    pub position: u64,
    pub subject: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawMessage {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Every message of the test's stream, in stream order.
pub async fn raw_messages(stream: &TestStream) -> Vec<RawMessage> {
    let client = async_nats::connect(&stream.nats_url).await.unwrap();
    let js = jetstream::new(client);
    let source = js.get_stream(&stream.stream).await.unwrap();
    let last = source.get_info().await.unwrap().state.last_sequence;
    let mut messages = Vec::new();
    for seq in 1..=last {
        let raw = source.get_raw_message(seq).await.unwrap();
        messages.push(RawMessage {
            position: raw.sequence,
            subject: raw.subject.to_string(),
            headers: raw.headers,
            body: raw.payload.to_vec(),
        });
    }
    messages
}

/// Publishes `messages` in the given order into the stream of `copy` (created like the event
/// store creates its own), on the same subjects under the copy's prefix, with their headers
/// except the expected-sequence guards, which name positions of the original stream.
pub async fn publish_copy(original: &TestStream, copy: &TestStream, messages: &[RawMessage]) {
    store(copy).await;
    let client = async_nats::connect(&copy.nats_url).await.unwrap();
    let js = jetstream::new(client);
    for message in messages {
        let rest = message.subject.strip_prefix(&original.subject_prefix).unwrap();
        let subject = format!("{}{rest}", copy.subject_prefix);
        let mut headers = HeaderMap::new();
        for (name, values) in message.headers.iter() {
            if name.to_string().starts_with("Nats-Expected") {
                continue;
            }
            for value in values {
                headers.append(name.clone(), value.clone());
            }
        }
        let ack = js
            .publish_with_headers(subject, headers, message.body.clone().into())
            .await
            .expect("publish a copied message");
        ack.await.expect("the copy stores the message");
    }
}

/// The body of `message` with its JSON changed by `edit`, everything else kept.
pub fn edited(message: &RawMessage, edit: impl FnOnce(&mut Value)) -> RawMessage {
    let mut body = message.json();
    edit(&mut body);
    RawMessage {
        position: message.position,
        subject: message.subject.clone(),
        headers: message.headers.clone(),
        body: serde_json::to_vec(&body).unwrap(),
    }
}
