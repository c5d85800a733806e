//! Test support shared by the projector and query tests: scripted ticket histories decided by
//! the domain and published to a test stream, projectors run as tasks, and read-model dumps.
//!
//! The query crate's tests include this file by path, so it depends only on crates both have.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use chrono::{DateTime, TimeZone, Utc};
use csmp_domain::command::OpenTicket;
use csmp_domain::{
    Actor, AgentId, Channel, Command, CommandContext, CustomerId, CustomerTier, EventEnvelope,
    Money, Priority, RecordedEvent, RefundId, Role, SupportTier, TenantId, Ticket, TicketId,
};
use csmp_eventstore::{EventStoreConfig, EVENT_TYPE_HEADER};
use csmp_projector::{ProjectorConfig, ProjectorError, ProjectorKind};
use csmp_testkit::{TestDatabase, TestStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// A time on the scripted day, 2026-03-02 (UTC).
pub fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, hour, minute, 0).unwrap()
}

/// A time on another day of March 2026.
pub fn on(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0).unwrap()
}

/// The ticket id the scripts use for number `n`: easy to read in failures and sorts by `n`.
pub fn ticket(n: u128) -> TicketId {
    TicketId(Uuid::from_u128(n))
}

/// What an opening says; `Default` is a medium-priority standard-tier email ticket.
#[derive(Debug, Clone)]
pub struct Opening {
    pub customer: &'static str,
    pub customer_tier: CustomerTier,
    pub channel: Channel,
    pub category: &'static str,
    pub product: &'static str,
    pub priority: Priority,
}

impl Default for Opening {
    fn default() -> Self {
        Opening {
            customer: "cust-1",
            customer_tier: CustomerTier::Standard,
            channel: Channel::Email,
            category: "billing",
            product: "router",
            priority: Priority::Medium,
        }
    }
}

/// Ticket histories decided by the domain, in the order they are to be published.
#[derive(Default)]
pub struct Script {
    tickets: HashMap<TicketId, Ticket>,
    pub events: Vec<EventEnvelope>,
    next_event: u128,
}

impl Script {
    pub fn new() -> Self {
        Script::default()
    }

    /// Opens ticket `n` of `tenant` at `time`; `None` is an imported ticket whose opening time
    /// is unknown.
    pub fn open(&mut self, tenant: &str, n: u128, time: Option<DateTime<Utc>>, o: Opening) {
        let id = ticket(n);
        let tenant = TenantId::parse(tenant).unwrap();
        self.tickets.insert(id, Ticket::new(tenant, id));
        let command = Command::Open(OpenTicket {
            customer_id: CustomerId::parse(o.customer).unwrap(),
            customer_tier: o.customer_tier,
            channel: o.channel,
            category: o.category.to_owned(),
            priority: o.priority,
            subject: format!("ticket {n}"),
            description: format!("description of ticket {n}"),
            product: o.product.to_owned(),
            is_complaint: false,
        });
        match time {
            Some(time) => self.act(n, "agent-open", Role::Tier1Agent, time, command),
            None => self.import(n, None, command),
        }
    }

    /// `actor` in `role` gives `command` on ticket `n` at `time`.
    pub fn act(&mut self, n: u128, actor: &str, role: Role, time: DateTime<Utc>, command: Command) {
        let ctx = self.context(actor, role, time);
        self.decide(n, command, ctx);
    }

    /// The importer gives `command` on ticket `n` with the historical time `occurred_at`.
    pub fn import(&mut self, n: u128, occurred_at: Option<DateTime<Utc>>, command: Command) {
        let recorded = on(20, 12, 0);
        let mut ctx = self.context("importer", Role::Importer, recorded);
        ctx.occurred_at = occurred_at;
        self.decide(n, command, ctx);
    }

    pub fn acknowledge(&mut self, n: u128, agent: &str, time: DateTime<Utc>) {
        self.act(n, agent, Role::Tier1Agent, time, Command::Acknowledge);
    }

    pub fn assign(&mut self, n: u128, agent: &str, time: DateTime<Utc>) {
        let command = Command::Assign { agent_id: AgentId::parse(agent).unwrap() };
        self.act(n, "lead-1", Role::Lead, time, command);
    }

    pub fn change_priority(&mut self, n: u128, priority: Priority, time: DateTime<Utc>) {
        let command = Command::ChangePriority { priority, reason: "customer impact".into() };
        self.act(n, "lead-1", Role::Lead, time, command);
    }

    pub fn escalate(&mut self, n: u128, agent: &str, to: SupportTier, time: DateTime<Utc>) {
        let command = Command::Escalate { to, reason: "needs a specialist".into() };
        self.act(n, agent, Role::Tier1Agent, time, command);
    }

    pub fn ask_customer(&mut self, n: u128, agent: &str, time: DateTime<Utc>) {
        let command = Command::AskCustomer { question: "which firmware?".into() };
        self.act(n, agent, Role::Tier1Agent, time, command);
    }

    pub fn customer_reply(&mut self, n: u128, time: DateTime<Utc>) {
        let customer = self.customer_of(n);
        let command = Command::CustomerReply { message: "version 2".into() };
        self.act(n, &customer, Role::Customer, time, command);
    }

    pub fn resolve(&mut self, n: u128, agent: &str, time: DateTime<Utc>) {
        let command = Command::Resolve { resolution_summary: "fixed".into() };
        self.act(n, agent, Role::Tier1Agent, time, command);
    }

    pub fn reopen(&mut self, n: u128, time: DateTime<Utc>) {
        let customer = self.customer_of(n);
        let command = Command::Reopen { reason: "still broken".into() };
        self.act(n, &customer, Role::Customer, time, command);
    }

    pub fn close(&mut self, n: u128, time: DateTime<Utc>) {
        self.act(n, "lead-1", Role::Lead, time, Command::Close);
    }

    pub fn feedback(&mut self, n: u128, csat: u8, nps: Option<u8>, time: DateTime<Utc>) {
        let customer = self.customer_of(n);
        let comment = Some(format!("rated {csat}"));
        let command = Command::GiveFeedback { csat, nps, comment, themes: Vec::new() };
        self.act(n, &customer, Role::Customer, time, command);
    }

    /// The customer rates ticket `n` with a comment and the themes they ticked.
    pub fn feedback_with(
        &mut self,
        n: u128,
        (csat, nps): (u8, Option<u8>),
        comment: &str,
        themes: &[csmp_domain::Theme],
        time: DateTime<Utc>,
    ) {
        let customer = self.customer_of(n);
        let command = Command::GiveFeedback {
            csat,
            nps,
            comment: Some(comment.to_owned()),
            themes: themes.to_vec(),
        };
        self.act(n, &customer, Role::Customer, time, command);
    }

    /// A refund by a tier 1 agent: issued within 50.00, otherwise it waits for a lead.
    pub fn refund(&mut self, n: u128, refund: &str, minor: i64, time: DateTime<Utc>) {
        let currency = csmp_domain::Currency::parse("EUR").unwrap();
        let command = Command::Refund {
            refund_id: RefundId::parse(refund).unwrap(),
            amount: Money::positive(minor, currency).unwrap(),
            reason: "broken on arrival".into(),
        };
        self.act(n, "agent-refund", Role::Tier1Agent, time, command);
    }

    pub fn approve_refund(&mut self, n: u128, refund: &str, time: DateTime<Utc>) {
        let command = Command::ApproveRefund { refund_id: RefundId::parse(refund).unwrap() };
        self.act(n, "lead-1", Role::Lead, time, command);
    }

    pub fn reject_refund(&mut self, n: u128, refund: &str, time: DateTime<Utc>) {
        let command = Command::RejectRefund {
            refund_id: RefundId::parse(refund).unwrap(),
            reason: "outside policy".into(),
        };
        self.act(n, "lead-1", Role::Lead, time, command);
    }

    /// The events ordered by the time they count at; one ticket's events keep their order
    /// (an event of unknown time counts at the latest time of its ticket so far).
    pub fn in_time_order(&self) -> Vec<EventEnvelope> {
        let mut latest: HashMap<TicketId, DateTime<Utc>> = HashMap::new();
        let mut keyed: Vec<(DateTime<Utc>, EventEnvelope)> = Vec::new();
        for event in &self.events {
            let own = event.occurred_at;
            let key = match (latest.get(&event.ticket_id), own) {
                (Some(before), Some(own)) => own.max(*before),
                (Some(before), None) => *before,
                (None, own) => own.unwrap_or(event.recorded_at),
            };
            latest.insert(event.ticket_id, key);
            keyed.push((key, event.clone()));
        }
        keyed.sort_by_key(|(key, _)| *key);
        keyed.into_iter().map(|(_, event)| event).collect()
    }

    fn customer_of(&self, n: u128) -> String {
        let ticket = &self.tickets[&ticket(n)];
        ticket.opening.as_ref().unwrap().customer_id.as_str().to_owned()
    }

    fn context(&self, actor: &str, role: Role, time: DateTime<Utc>) -> CommandContext {
        let request = format!("req-{}", self.next_event);
        CommandContext::new(Actor::new(actor, role).unwrap(), time, &request)
    }

    fn decide(&mut self, n: u128, command: Command, ctx: CommandContext) {
        let ticket = self.tickets.get_mut(&ticket(n)).expect("ticket opened in the script");
        let payload = ticket
            .decide(&command, &ctx)
            .unwrap_or_else(|e| panic!("ticket {n}: {} rejected: {e}", command.action()));
        self.next_event += 1;
        let envelope = ticket.envelope(payload, &ctx, Uuid::from_u128(self.next_event));
        let recorded = RecordedEvent { stream_seq: self.next_event as u64, envelope };
        ticket.apply(&recorded).unwrap();
        self.events.push(recorded.envelope);
    }
}

/// A mixed workload of `count` tickets per tenant of `tenants`, touching every event type:
/// pauses, reopens, priority changes, escalations, refunds, feedback and imported tickets.
pub fn workload(tenants: &[&str], count: u128) -> Script {
    let mut script = Script::new();
    for (t, tenant) in tenants.iter().enumerate() {
        for i in 0..count {
            let n = (t as u128 + 1) * 10_000 + i;
            let start = on(2 + (i % 5) as u32, 8 + (i % 7) as u32, (i * 7 % 60) as u32);
            let minutes = |m: i64| start + chrono::Duration::minutes(m);
            let opening = Opening {
                customer: ["cust-1", "cust-2", "cust-3"][(i % 3) as usize],
                customer_tier: CustomerTier::ALL[(i % 3) as usize],
                channel: Channel::ALL[(i % 5) as usize],
                category: ["billing", "shipping", "login"][(i % 3) as usize],
                product: ["router", "modem"][(i % 2) as usize],
                priority: Priority::ALL[(i % 4) as usize],
            };
            let opening_priority = opening.priority;
            if i % 9 == 8 {
                script.open(tenant, n, None, opening);
                script.import(n, Some(minutes(30)), Command::Acknowledge);
                continue;
            }
            script.open(tenant, n, Some(start), opening);
            let agent = format!("agent-{}", i % 4);
            match i % 6 {
                0 => {}
                1 => script.acknowledge(n, &agent, minutes(10)),
                2 => {
                    script.acknowledge(n, &agent, minutes(5));
                    script.ask_customer(n, &agent, minutes(20));
                    script.customer_reply(n, minutes(65));
                    script.resolve(n, &agent, minutes(120));
                    script.feedback(n, (i % 5 + 1) as u8, Some((i % 11) as u8), minutes(130));
                }
                3 => {
                    let raised = match opening_priority {
                        Priority::Critical => Priority::High,
                        _ => Priority::Critical,
                    };
                    script.assign(n, &agent, minutes(1));
                    script.change_priority(n, raised, minutes(2));
                    script.escalate(n, &agent, SupportTier::Tier2, minutes(3));
                    script.acknowledge(n, &agent, minutes(4));
                    script.refund(n, &format!("r{n}"), 2_500, minutes(6));
                    script.refund(n, &format!("big{n}"), 90_000, minutes(7));
                    script.approve_refund(n, &format!("big{n}"), minutes(8));
                }
                4 => {
                    script.acknowledge(n, &agent, minutes(30));
                    script.resolve(n, &agent, minutes(200));
                    script.reopen(n, minutes(300));
                    script.resolve(n, &agent, minutes(400));
                    script.feedback(n, 2, None, minutes(410));
                    script.close(n, minutes(500));
                }
                _ => {
                    script.acknowledge(n, &agent, minutes(15));
                    script.refund(n, &format!("big{n}"), 70_000, minutes(20));
                    script.reject_refund(n, &format!("big{n}"), minutes(25));
                    script.resolve(n, &agent, minutes(90));
                }
            }
        }
    }
    script
}

/// The event store configuration of a test stream.
pub fn store(stream: &TestStream) -> EventStoreConfig {
    EventStoreConfig {
        stream: stream.stream.clone(),
        subject_prefix: stream.subject_prefix.clone(),
        duplicate_window: Duration::from_secs(120),
    }
}

pub async fn nats(stream: &TestStream) -> async_nats::Client {
    async_nats::connect(&stream.nats_url).await.expect("connect to NATS")
}

/// Creates the stream and publishes `events` in order; returns the last stream position.
pub async fn publish(
    client: &async_nats::Client,
    store: &EventStoreConfig,
    events: &[EventEnvelope],
) -> u64 {
    let js = jetstream::new(client.clone());
    csmp_eventstore::ensure_stream(&js, store).await.expect("create stream");
    let mut last = 0;
    for envelope in events {
        let subject = store.ticket_subject(&envelope.tenant, envelope.ticket_id);
        let mut headers = HeaderMap::new();
        headers.insert(EVENT_TYPE_HEADER, envelope.event_type());
        let body = csmp_eventstore::encode(envelope);
        let ack = js
            .publish_with_headers(subject, headers, body.into())
            .await
            .expect("publish")
            .await
            .expect("publish ack");
        last = ack.sequence;
    }
    last
}

/// Publishes a raw body under `subject`; returns its stream position.
pub async fn publish_raw(
    client: &async_nats::Client,
    store: &EventStoreConfig,
    subject: String,
    event_type: &str,
    body: &'static [u8],
) -> u64 {
    let js = jetstream::new(client.clone());
    csmp_eventstore::ensure_stream(&js, store).await.expect("create stream");
    let mut headers = HeaderMap::new();
    headers.insert(EVENT_TYPE_HEADER, event_type);
    let ack = js
        .publish_with_headers(subject, headers, body.into())
        .await
        .expect("publish")
        .await
        .expect("publish ack");
    ack.sequence
}

pub fn config(
    kind: ProjectorKind,
    stream: &TestStream,
    db: &TestDatabase,
    batch_size: usize,
) -> ProjectorConfig {
    ProjectorConfig {
        kind,
        store: store(stream),
        database_url: db.url.clone(),
        batch_size,
        consumer_name: None,
        schema: None,
    }
}

/// A projector running as a task.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<Result<(), ProjectorError>>,
}

impl Running {
    /// Asks the projector to stop and waits for it.
    pub async fn stop(mut self) -> Result<(), ProjectorError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("projector task")
    }

    /// Ends the task wherever it is, like a killed process.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

pub fn spawn(config: ProjectorConfig, client: async_nats::Client) -> Running {
    spawn_with(config, client, csmp_projector::FaultInjection::default())
}

pub fn spawn_with(
    config: ProjectorConfig,
    client: async_nats::Client,
    faults: csmp_projector::FaultInjection,
) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let task = tokio::spawn(csmp_projector::run_with_faults(config, client, shutdown, faults));
    Running { stop: Some(stop), task }
}

/// The checkpoint of `schema`, 0 while the schema does not exist.
pub async fn checkpoint(pg: &tokio_postgres::Client, schema: &str) -> u64 {
    match pg.query_one(&format!("SELECT position FROM {schema}.checkpoint"), &[]).await {
        Ok(row) => row.get::<_, i64>(0) as u64,
        Err(_) => 0,
    }
}

/// Waits until `schema`'s checkpoint reaches `position`, for at most 30 seconds.
pub async fn wait_for(pg: &tokio_postgres::Client, schema: &str, position: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let reached = checkpoint(pg, schema).await;
        if reached >= position {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{schema} reached {reached}, not {position}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every row of every table of `schema` as JSON text, sorted, without the columns that record
/// when a row was written (they differ between two runs by nature).
pub async fn dump(pg: &tokio_postgres::Client, schema: &str) -> Vec<String> {
    let tables = pg
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = $1 AND table_type = 'BASE TABLE'
               AND table_name <> 'schema_migrations'
             ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap();
    let mut rows = Vec::new();
    for table in tables {
        let table: String = table.get(0);
        let text = pg
            .query(
                &format!(
                    "SELECT (to_jsonb(t) - 'updated_at' - 'dead_lettered_at')::text
                     FROM {schema}.{table} t ORDER BY 1"
                ),
                &[],
            )
            .await
            .unwrap();
        rows.extend(text.into_iter().map(|row| format!("{table}: {}", row.get::<_, String>(0))));
    }
    rows
}

/// A connection to the test database.
pub async fn pg(db: &TestDatabase) -> tokio_postgres::Client {
    db.client().await
}
