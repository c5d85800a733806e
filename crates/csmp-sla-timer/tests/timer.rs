//! The SLA timer against real NATS, PostgreSQL and a command service, with time driven by a
//! `ManualClock` shared by the timer and the command service.
//!
//! Tenant `acme` has no stored policy, so it is measured under the base version 0: the default
//! targets around the clock, a 75 % warning share, and a breached first response on a critical
//! ticket escalates it one tier. A critical enterprise ticket opened Mon 2026-06-15 09:00Z has
//! a 15 min first response (warning at 09:11:15, breach at 09:15) and a 4 h resolution
//! (warning at 12:00, breach at 13:00).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use csmp_command::{CommandService, CommandServiceConfig};
use csmp_domain::{
    EventPayload, ManualClock, RecordedEvent, Role, SupportTier, TenantId, TicketId,
};
use csmp_eventstore::{EventStore, EventStoreConfig};
use csmp_proto::v1 as pb;
use csmp_proto::v1::ticket_commands_client::TicketCommandsClient;
use csmp_sla_timer::{run, TimerConfig, ACTOR_ID};
use csmp_testkit::{TestDatabase, TestStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

fn opened_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 9, 0, 0).unwrap()
}

fn minutes(m: i64) -> DateTime<Utc> {
    opened_at() + chrono::Duration::minutes(m)
}

struct Stack {
    stream: TestStream,
    db: TestDatabase,
    clock: Arc<ManualClock>,
    commands: TicketCommandsClient<Channel>,
    store: EventStore,
    _stop_commands: oneshot::Sender<()>,
}

struct Timer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), csmp_sla_timer::TimerError>>,
}

impl Timer {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

impl Stack {
    async fn start(label: &str) -> Stack {
        let stream = TestStream::new(label);
        let db = TestDatabase::new(label).await;
        let store_config = EventStoreConfig {
            stream: stream.stream.clone(),
            subject_prefix: stream.subject_prefix.clone(),
            ..EventStoreConfig::default()
        };
        let nats = async_nats::connect(&stream.nats_url).await.unwrap();
        let clock = Arc::new(ManualClock::new(opened_at()));
        let config =
            CommandServiceConfig { store: store_config.clone(), ..CommandServiceConfig::default() };
        let service = CommandService::connect(nats.clone(), config, clock.clone()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_commands, stopped) = oneshot::channel::<()>();
        tokio::spawn(csmp_command::serve(listener, service, async move {
            let _ = stopped.await;
        }));
        let commands = TicketCommandsClient::connect(format!("http://{addr}")).await.unwrap();
        let store = EventStore::connect(nats, store_config).await.unwrap();
        Stack { stream, db, clock, commands, store, _stop_commands: stop_commands }
    }

    async fn timer(&self) -> Timer {
        let config = TimerConfig {
            store: self.store.config().clone(),
            database_url: self.db.url.clone(),
            tick: Duration::from_millis(20),
            config_refresh: Duration::from_secs(30),
            watch_opened_from: None,
        };
        let nats = async_nats::connect(&self.stream.nats_url).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task =
            tokio::spawn(run(config, nats, self.commands.clone(), self.clock.clone(), async {
                let _ = stopped.await;
            }));
        Timer { stop, task }
    }

    async fn open_critical(&self, request_id: &str) -> TicketId {
        let request = pb::OpenTicketRequest {
            meta: Some(pb::CommandMeta {
                tenant: "acme".into(),
                actor: Some(pb::Actor { id: "agent-7".into(), role: pb::Role::Tier1Agent as i32 }),
                request_id: request_id.into(),
                ..Default::default()
            }),
            ticket_id: String::new(),
            customer_id: "cust-1".into(),
            customer_tier: pb::CustomerTier::Enterprise as i32,
            channel: pb::Channel::Chat as i32,
            category: "outage".into(),
            priority: pb::Priority::Critical as i32,
            subject: "Router down".into(),
            description: "No connection since 08:50".into(),
            product: "router".into(),
            is_complaint: false,
        };
        let result = self.commands.clone().open_ticket(request).await.unwrap().into_inner();
        TicketId(result.ticket_id.parse().unwrap())
    }

    async fn events(&self, ticket: TicketId) -> Vec<RecordedEvent> {
        self.store.load(&TenantId::parse("acme").unwrap(), ticket).await.unwrap()
    }

    /// The ticket's event types once at least `count` SLA or escalation events are on it,
    /// after a pause long enough for any extra one to show up too.
    async fn settled(&self, ticket: TicketId, count: usize) -> Vec<&'static str> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let events = self.events(ticket).await;
            let automatic = events.iter().filter(|e| e.envelope.actor.id == ACTOR_ID).count();
            if automatic >= count {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "only {automatic} timer events");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Ten ticks or more: a duplicate would have been sent by now.
        tokio::time::sleep(Duration::from_millis(400)).await;
        self.events(ticket).await.iter().map(|e| e.envelope.event_type()).collect()
    }
}

fn signal_of(event: &RecordedEvent) -> Option<(&'static str, String, u32, DateTime<Utc>, u32)> {
    match &event.envelope.payload {
        EventPayload::SlaWarningReached(s) | EventPayload::SlaBreached(s) => Some((
            event.envelope.event_type(),
            s.target.as_str().to_owned(),
            s.cycle,
            s.due_at,
            s.policy_version,
        )),
        _ => None,
    }
}

#[tokio::test]
async fn warnings_and_breaches_are_recorded_once_across_restarts_and_two_timers() {
    let stack = Stack::start("timer_once").await;
    let ticket = stack.open_critical("open-1").await;

    // 1. One timer: at 09:12 the first-response warning (09:11:15) is due, nothing else.
    let first = stack.timer().await;
    stack.clock.set(minutes(12));
    let types = stack.settled(ticket, 1).await;
    assert_eq!(types, vec!["ticket.opened", "sla.warning_reached"]);
    first.stop().await;

    // 2. Restarted, and a second instance beside it: at 09:16 the breach (09:15) and its
    // escalation go out once, and the warning is not sent again.
    stack.clock.set(minutes(16));
    let (a, b) = (stack.timer().await, stack.timer().await);
    let types = stack.settled(ticket, 3).await;
    assert_eq!(
        types,
        vec!["ticket.opened", "sla.warning_reached", "sla.breached", "ticket.escalated"]
    );

    // 3. Both still running at 13:00: the resolution's warning (12:00) and breach (13:00).
    stack.clock.set(minutes(240));
    let types = stack.settled(ticket, 5).await;
    assert_eq!(
        types,
        vec![
            "ticket.opened",
            "sla.warning_reached",
            "sla.breached",
            "ticket.escalated",
            "sla.warning_reached",
            "sla.breached",
        ]
    );
    a.stop().await;
    b.stop().await;

    // 4. A third start after everything was sent sends nothing.
    let again = stack.timer().await;
    let types = stack.settled(ticket, 5).await;
    assert_eq!(types.len(), 6);
    again.stop().await;

    let events = stack.events(ticket).await;
    let signals: Vec<_> = events.iter().filter_map(signal_of).collect();
    let at = |h: u32, m: u32, s: u32| Utc.with_ymd_and_hms(2026, 6, 15, h, m, s).unwrap();
    assert_eq!(
        signals,
        vec![
            ("sla.warning_reached", "first_response".to_owned(), 1, at(9, 11, 15), 0),
            ("sla.breached", "first_response".to_owned(), 1, at(9, 15, 0), 0),
            ("sla.warning_reached", "resolution".to_owned(), 1, at(12, 0, 0), 0),
            ("sla.breached", "resolution".to_owned(), 1, at(13, 0, 0), 0),
        ]
    );
    let keys: Vec<&str> = events
        .iter()
        .filter(|e| e.envelope.actor.id == ACTOR_ID)
        .map(|e| e.envelope.request_id.as_str())
        .collect();
    let key = |rest: &str| format!("sla:{rest}");
    assert_eq!(
        keys,
        vec![
            key("first_response:1:warning"),
            key("first_response:1:breach"),
            key("first_response:1:breach:escalate"),
            key("resolution:1:warning"),
            key("resolution:1:breach"),
        ]
    );
}

#[tokio::test]
async fn a_critical_first_response_breach_escalates_once_by_the_system_actor() {
    let stack = Stack::start("timer_escalate").await;
    let ticket = stack.open_critical("open-2").await;

    let timer = stack.timer().await;
    stack.clock.set(minutes(15));
    stack.settled(ticket, 3).await;
    timer.stop().await;

    let events = stack.events(ticket).await;
    let escalated: Vec<&RecordedEvent> = events
        .iter()
        .filter(|e| matches!(e.envelope.payload, EventPayload::Escalated(_)))
        .collect();
    assert_eq!(escalated.len(), 1);
    let envelope = &escalated[0].envelope;
    let breach_key = "sla:first_response:1:breach";
    assert_eq!((envelope.actor.id.as_str(), envelope.actor.role), (ACTOR_ID, Role::System));
    assert_eq!(envelope.causation_id.as_deref(), Some(breach_key));
    assert_eq!(envelope.request_id, format!("{breach_key}:escalate"));
    assert_eq!(envelope.occurred_at, Some(minutes(15)));
    let EventPayload::Escalated(escalation) = &envelope.payload else { unreachable!() };
    assert_eq!((escalation.from, escalation.to), (SupportTier::Tier1, SupportTier::Tier2));
    assert_eq!(escalation.reason, "SLA first_response breached (cycle 1)");
}
