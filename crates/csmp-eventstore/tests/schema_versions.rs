//! Events stored by earlier releases, read back through the event store against a real NATS
//! server: pre-chain bodies get their hash, and `feedback.given` version 1 is raised to
//! version 2.

use async_nats::jetstream;
use chrono::{DateTime, TimeZone, Utc};
use csmp_domain::command::OpenTicket;
use csmp_domain::event::FeedbackGiven;
use csmp_domain::{
    Actor, Channel, Command, CommandContext, CustomerId, CustomerTier, EventPayload, Priority,
    RecordedEvent, Role, Sentiment, TenantId, Theme, Ticket, TicketId,
};
use csmp_eventstore::{EventStore, EventStoreConfig};
use csmp_testkit::TestStream;
use uuid::Uuid;

/// A `feedback.given` event exactly as a release before schema version 2 and the hash chain
/// wrote it: no `prev_hash`, no `hash`, no `sentiment`, no `themes`.
const FEEDBACK_V1: &str = concat!(
    r#"{"event_id":"00000000-0000-0000-0000-000000000104","schema_version":1,"#,
    r#""tenant":"acme","ticket_id":"00000000-0000-0000-0000-0000000000f1","version":4,"#,
    r#""occurred_at":"2026-03-04T06:00:00Z","recorded_at":"2026-03-04T06:00:00Z","#,
    r#""actor":{"id":"cust-1","role":"customer"},"correlation_id":"fb-1","#,
    r#""causation_id":null,"request_id":"fb-1","event_type":"feedback.given","#,
    r#""payload":{"csat":2,"nps":3,"comment":"Waited two days for my refund","#,
    r#""resolution_cycle":1}}"#
);

/// SHA-256 of the canonical form of [`FEEDBACK_V1`], sorted by hand and run through
/// `printf '%s' '{"actor":{"id":"cust-1","role":"customer"},"causation_id":null,...}' | sha256sum`.
const FEEDBACK_V1_HASH: &str = "0c2744eb9af57dbbc38d07f101e441b6f5a3789dd5741aadffd87126562782f5";

fn config(stream: &TestStream) -> EventStoreConfig {
    EventStoreConfig {
        stream: stream.stream.clone(),
        subject_prefix: stream.subject_prefix.clone(),
        ..EventStoreConfig::default()
    }
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap()
}

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn open_command() -> Command {
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

/// Decides `command` as `actor` on `ticket`, appends its event and applies it.
async fn append(store: &EventStore, ticket: &mut Ticket, actor: Actor, command: Command) {
    let request_id = format!("r-{}", ticket.version + 1);
    let ctx = CommandContext::new(actor, at(), &request_id);
    let payload = ticket.decide(&command, &ctx).expect("command is valid");
    let envelope = ticket.envelope(payload, &ctx, Uuid::now_v7());
    let appended = store.append(&envelope, ticket.last_stream_seq).await.expect("append");
    ticket.apply(&RecordedEvent { stream_seq: appended.stream_seq, envelope }).unwrap();
}

fn agent() -> Actor {
    Actor::new("agent-7", Role::Tier1Agent).unwrap()
}

#[tokio::test]
async fn stored_feedback_version_1_loads_as_version_2_and_keeps_the_hash_of_its_stored_body() {
    let stream = TestStream::new("store_feedback_v1");
    let client = async_nats::connect(&stream.nats_url).await.expect("connect to NATS");
    let store = EventStore::connect(client.clone(), config(&stream)).await.unwrap();
    let ticket_id = TicketId(Uuid::from_u128(0xf1));
    let mut ticket = Ticket::new(tenant(), ticket_id);
    append(&store, &mut ticket, agent(), open_command()).await;
    append(&store, &mut ticket, agent(), Command::Acknowledge).await;
    let resolve = Command::Resolve { resolution_summary: "Second charge refunded".into() };
    append(&store, &mut ticket, agent(), resolve).await;
    let resolved_hash = ticket.last_hash.clone();
    // An earlier release wrote the feedback: a bare publish, without our headers.
    let subject = store.config().ticket_subject(&tenant(), ticket_id);
    let js = jetstream::new(client);
    let ack = js.publish(subject, FEEDBACK_V1.into()).await.unwrap().await.unwrap();

    let history = store.load(&tenant(), ticket_id).await.unwrap();

    assert_eq!(history.len(), 4);
    let feedback = &history[3];
    assert_eq!(feedback.stream_seq, ack.sequence);
    assert_eq!(feedback.envelope.schema_version, 2);
    assert_eq!(
        feedback.envelope.payload,
        EventPayload::FeedbackGiven(FeedbackGiven {
            csat: 2,
            nps: Some(3),
            comment: Some("Waited two days for my refund".into()),
            resolution_cycle: 1,
            sentiment: Sentiment::Negative,
            themes: vec![Theme::Billing, Theme::ResponseTime],
        })
    );
    assert_eq!(feedback.envelope.prev_hash, None);
    assert_eq!(feedback.envelope.hash.as_deref(), Some(FEEDBACK_V1_HASH));
    let stored: serde_json::Value = serde_json::from_str(FEEDBACK_V1).unwrap();
    assert_eq!(csmp_domain::chain::event_hash(&stored), FEEDBACK_V1_HASH);
    assert_eq!(csmp_eventstore::stored_hash(&stored), FEEDBACK_V1_HASH);
    assert_eq!(history[2].envelope.hash, resolved_hash);

    let mut replayed = Ticket::replay(tenant(), ticket_id, &history).unwrap();
    assert_eq!(replayed.version, 4);
    assert_eq!(replayed.feedback_cycle, Some(1));
    assert_eq!(replayed.last_hash.as_deref(), Some(FEEDBACK_V1_HASH));

    // The next event chains to the old one by the hash of its stored body.
    append(&store, &mut replayed, agent(), Command::Close).await;
    let history = store.load(&tenant(), ticket_id).await.unwrap();
    assert_eq!(history.len(), 5);
    assert_eq!(history[4].envelope.event_type(), "ticket.closed");
    assert_eq!(history[4].envelope.prev_hash.as_deref(), Some(FEEDBACK_V1_HASH));
}

#[tokio::test]
async fn feedback_is_stored_in_version_2_with_a_matching_header_and_reads_back_unchanged() {
    let stream = TestStream::new("store_feedback_v2");
    let client = async_nats::connect(&stream.nats_url).await.expect("connect to NATS");
    let store = EventStore::connect(client.clone(), config(&stream)).await.unwrap();
    let ticket_id = TicketId(Uuid::from_u128(0xf2));
    let mut ticket = Ticket::new(tenant(), ticket_id);
    append(&store, &mut ticket, agent(), open_command()).await;
    let resolve = Command::Resolve { resolution_summary: "Second charge refunded".into() };
    append(&store, &mut ticket, agent(), resolve).await;
    let customer = Actor::new("cust-1", Role::Customer).unwrap();
    let feedback = Command::GiveFeedback {
        csat: 5,
        nps: None,
        comment: Some("Friendly and fast".into()),
        themes: vec![Theme::Billing],
    };

    append(&store, &mut ticket, customer, feedback).await;

    let raw = jetstream::new(client)
        .get_stream(&stream.stream)
        .await
        .unwrap()
        .get_raw_message(ticket.last_stream_seq)
        .await
        .unwrap();
    let header = raw.headers.get("Csmp-Schema-Version").map(|v| v.as_str().to_owned());
    assert_eq!(header.as_deref(), Some("2"));
    let body: serde_json::Value = serde_json::from_slice(&raw.payload).unwrap();
    assert_eq!(body["schema_version"], 2);
    assert_eq!(body["payload"]["sentiment"], "positive");
    assert_eq!(
        body["payload"]["themes"],
        serde_json::json!(["agent_conduct", "billing", "response_time"])
    );
    assert_eq!(body["hash"].as_str(), Some(csmp_domain::chain::event_hash(&body).as_str()));
    let history = store.load(&tenant(), ticket_id).await.unwrap();
    assert_eq!(Ticket::replay(tenant(), ticket_id, &history).unwrap(), ticket);
}
