//! The event store against a real NATS server, each test on a stream of its own.

use std::time::Duration;

use async_nats::jetstream;
use chrono::{DateTime, TimeZone, Utc};
use csmp_domain::command::OpenTicket;
use csmp_domain::{
    Actor, AgentId, Channel, Command, CommandContext, CustomerId, CustomerTier, EventEnvelope,
    Priority, RecordedEvent, Role, TenantId, Ticket, TicketId,
};
use csmp_eventstore::{
    ensure_stream, AppendError, AppendErrorKind, Appended, EventStore, EventStoreConfig,
    StoreErrorKind,
};
use csmp_testkit::TestStream;
use uuid::Uuid;

fn config(stream: &TestStream) -> EventStoreConfig {
    EventStoreConfig {
        stream: stream.stream.clone(),
        subject_prefix: stream.subject_prefix.clone(),
        ..EventStoreConfig::default()
    }
}

async fn store(stream: &TestStream) -> EventStore {
    let client = async_nats::connect(&stream.nats_url).await.expect("connect to NATS");
    EventStore::connect(client, config(stream)).await.expect("connect the event store")
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

/// Decides `command` on `ticket` and returns the envelope of its event.
fn next_event(ticket: &Ticket, command: &Command, request_id: &str) -> EventEnvelope {
    let actor = Actor::new("agent-7", Role::Tier1Agent).unwrap();
    let ctx = CommandContext::new(actor, at(), request_id);
    let payload = ticket.decide(command, &ctx).expect("command is valid");
    ticket.envelope(payload, &ctx, Uuid::now_v7())
}

/// Appends `command`'s event to `ticket` and applies it.
async fn append(store: &EventStore, ticket: &mut Ticket, command: Command, request_id: &str) {
    let envelope = next_event(ticket, &command, request_id);
    let appended = store.append(&envelope, ticket.last_stream_seq).await.expect("append");
    assert!(!appended.duplicate);
    ticket.apply(&RecordedEvent { stream_seq: appended.stream_seq, envelope }).unwrap();
}

fn assign(agent: &str) -> Command {
    Command::Assign { agent_id: AgentId::parse(agent).unwrap() }
}

#[tokio::test]
async fn append_then_load_returns_a_tickets_events_in_order_with_their_positions() {
    let stream = TestStream::new("store_round_trip");
    let store = store(&stream).await;
    let mut a = Ticket::new(tenant(), TicketId(Uuid::from_u128(1)));
    let mut b = Ticket::new(tenant(), TicketId(Uuid::from_u128(2)));

    let open_a = next_event(&a, &open_command(), "a-1");
    let first = store.append(&open_a, 0).await.unwrap();
    a.apply(&RecordedEvent { stream_seq: first.stream_seq, envelope: open_a.clone() }).unwrap();
    append(&store, &mut b, open_command(), "b-1").await;
    let ack_a = next_event(&a, &Command::Acknowledge, "a-2");
    let second = store.append(&ack_a, a.last_stream_seq).await.unwrap();
    a.apply(&RecordedEvent { stream_seq: second.stream_seq, envelope: ack_a.clone() }).unwrap();
    let assign_a = next_event(&a, &assign("agent-9"), "a-3");
    let third = store.append(&assign_a, a.last_stream_seq).await.unwrap();

    assert_eq!(first, Appended { stream_seq: 1, duplicate: false });
    assert_eq!(second, Appended { stream_seq: 3, duplicate: false });
    assert_eq!(third, Appended { stream_seq: 4, duplicate: false });
    let loaded = store.load(&tenant(), a.id).await.unwrap();
    assert_eq!(
        loaded,
        vec![
            RecordedEvent { stream_seq: 1, envelope: open_a },
            RecordedEvent { stream_seq: 3, envelope: ack_a },
            RecordedEvent { stream_seq: 4, envelope: assign_a },
        ]
    );
    let loaded_b = store.load(&tenant(), b.id).await.unwrap();
    assert_eq!(loaded_b.iter().map(|e| e.stream_seq).collect::<Vec<_>>(), vec![2]);
    assert_eq!(store.load(&tenant(), TicketId(Uuid::from_u128(3))).await.unwrap(), vec![]);
    let other_tenant = TenantId::parse("globex").unwrap();
    assert_eq!(store.load(&other_tenant, a.id).await.unwrap(), vec![]);
    assert_eq!(store.last_position().await.unwrap(), 4);
}

#[tokio::test]
async fn stored_messages_carry_the_message_id_and_event_headers() {
    let stream = TestStream::new("store_headers");
    let store = store(&stream).await;
    let ticket = Ticket::new(tenant(), TicketId(Uuid::from_u128(10)));
    let envelope = next_event(&ticket, &open_command(), "req-1");

    store.append(&envelope, 0).await.unwrap();

    let client = async_nats::connect(&stream.nats_url).await.unwrap();
    let js = jetstream::new(client);
    let raw = js.get_stream(&stream.stream).await.unwrap().get_raw_message(1).await.unwrap();
    let header = |name: &str| raw.headers.get(name).map(|v| v.as_str().to_owned());
    assert_eq!(
        header("Nats-Msg-Id").as_deref(),
        Some("acme:00000000-0000-0000-0000-00000000000a:req-1")
    );
    assert_eq!(header("Csmp-Event-Type").as_deref(), Some("ticket.opened"));
    assert_eq!(header("Csmp-Schema-Version").as_deref(), Some("1"));
    assert_eq!(header("Nats-Expected-Last-Subject-Sequence").as_deref(), Some("0"));
    assert_eq!(
        raw.subject.as_str(),
        format!("{}.acme.ticket.00000000-0000-0000-0000-00000000000a", stream.subject_prefix)
    );
}

#[tokio::test]
async fn append_with_a_stale_expected_sequence_is_a_conflict() {
    let stream = TestStream::new("store_conflict");
    let store = store(&stream).await;
    let mut ticket = Ticket::new(tenant(), TicketId(Uuid::from_u128(20)));
    let stale = ticket.clone();
    append(&store, &mut ticket, open_command(), "r-1").await;

    let second_open = next_event(&stale, &open_command(), "r-2");
    let err = store.append(&second_open, 0).await.unwrap_err();
    let behind = next_event(&ticket, &assign("agent-1"), "r-3");
    let accepted = store.append(&behind, 1).await.unwrap();
    let late = next_event(&ticket, &assign("agent-2"), "r-4");
    let late_err = store.append(&late, 1).await.unwrap_err();

    assert_eq!(err.kind(), AppendErrorKind::Conflict);
    assert!(matches!(&err, AppendError::Conflict { expected: 0, .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(accepted, Appended { stream_seq: 2, duplicate: false });
    assert!(matches!(&late_err, AppendError::Conflict { expected: 1, .. }), "{late_err:?}");
    let history = store.load(&tenant(), ticket.id).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.envelope.request_id.as_str()).collect::<Vec<_>>(),
        ["r-1", "r-3"]
    );
    assert_eq!(store.last_position().await.unwrap(), 2);
}

#[tokio::test]
async fn a_repeated_message_id_is_acknowledged_as_a_duplicate_of_the_first() {
    let stream = TestStream::new("store_duplicate");
    let store = store(&stream).await;
    let mut ticket = Ticket::new(tenant(), TicketId(Uuid::from_u128(30)));
    append(&store, &mut ticket, open_command(), "r-1").await;
    let assign = next_event(&ticket, &assign("agent-1"), "r-2");
    let first = store.append(&assign, 1).await.unwrap();

    // The same command decided again: a new event id, the same request id.
    let again = next_event(&ticket, &self::assign("agent-1"), "r-2");
    let second = store.append(&again, 1).await;

    assert_eq!(first, Appended { stream_seq: 2, duplicate: false });
    // nats-server 2.9 drops the repeat as a duplicate of position 2; from 2.10 on the expected
    // sequence is checked first and the repeat is a conflict. Either way nothing is appended.
    match second {
        Ok(appended) => assert_eq!(appended, Appended { stream_seq: 2, duplicate: true }),
        Err(err) => assert_eq!(err.kind(), AppendErrorKind::Conflict, "{err}"),
    }
    assert_eq!(store.last_position().await.unwrap(), 2);
    assert_eq!(store.load(&tenant(), ticket.id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_long_history_loads_completely_and_replays() {
    let stream = TestStream::new("store_long");
    let store = store(&stream).await;
    let mut ticket = Ticket::new(tenant(), TicketId(Uuid::from_u128(40)));
    let mut other = Ticket::new(tenant(), TicketId(Uuid::from_u128(41)));
    append(&store, &mut ticket, open_command(), "r-0").await;
    append(&store, &mut other, open_command(), "o-0").await;
    for i in 1..40 {
        let agent = if i % 2 == 0 { "agent-a" } else { "agent-b" };
        append(&store, &mut ticket, assign(agent), &format!("r-{i}")).await;
        if i % 10 == 0 {
            append(&store, &mut other, assign(&format!("agent-{i}")), &format!("o-{i}")).await;
        }
    }

    let history = store.load(&tenant(), ticket.id).await.unwrap();

    assert_eq!(history.len(), 40);
    assert_eq!(
        history.iter().map(|e| e.envelope.version).collect::<Vec<_>>(),
        (1..=40).collect::<Vec<u64>>()
    );
    let replayed = Ticket::replay(tenant(), ticket.id, &history).unwrap();
    assert_eq!(replayed, ticket);
    let position_of_30 = history[29].stream_seq;
    let missed = store.load_after(&tenant(), ticket.id, position_of_30).await.unwrap();
    assert_eq!(missed, history[30..].to_vec());
    let last = ticket.last_stream_seq;
    assert_eq!(store.load_after(&tenant(), ticket.id, last).await.unwrap(), vec![]);
    assert_eq!(store.load_after(&tenant(), ticket.id, 0).await.unwrap(), history);
    assert_eq!(store.load(&tenant(), other.id).await.unwrap().len(), 4);
}

#[tokio::test]
async fn concurrent_setup_creates_one_stream_that_refuses_purges_and_deletes() {
    let stream = TestStream::new("store_setup");
    let client = async_nats::connect(&stream.nats_url).await.unwrap();
    let js = jetstream::new(client.clone());
    let config = config(&stream);

    let (first, second) = tokio::join!(ensure_stream(&js, &config), ensure_stream(&js, &config));
    first.expect("first ensure_stream");
    second.expect("second ensure_stream");
    let store = EventStore::connect(client, config.clone()).await.expect("third, sequential");
    let mut ticket = Ticket::new(tenant(), TicketId(Uuid::from_u128(50)));
    append(&store, &mut ticket, open_command(), "r-1").await;

    let mut handle = js.get_stream(&stream.stream).await.unwrap();
    let info = handle.info().await.unwrap().clone();
    assert!(info.config.deny_purge);
    assert!(info.config.deny_delete);
    assert!(info.config.allow_direct);
    assert_eq!(info.config.subjects, vec![format!("{}.>", stream.subject_prefix)]);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    assert_eq!(info.config.storage, jetstream::stream::StorageType::File);
    let purge = handle.purge().await;
    assert!(purge.is_err(), "purge was accepted: {purge:?}");
    let delete = handle.delete_message(1).await;
    assert!(delete.is_err(), "delete was accepted: {delete:?}");
    assert_eq!(store.last_position().await.unwrap(), 1);
    assert_eq!(store.load(&tenant(), ticket.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .request_timeout(Some(Duration::from_millis(300)))
        .connect(format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap();

    let err = EventStore::connect(client, EventStoreConfig::default()).await.unwrap_err();

    assert_eq!(err.kind(), StoreErrorKind::Unavailable);
    assert!(err.is_transient());
}
