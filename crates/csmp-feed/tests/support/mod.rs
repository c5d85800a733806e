//! A command service and the event feed on a stream of the test's own, both served on loopback
//! ports; commands that append events; an independent read of the stream; and a reader of a
//! subscription.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use csmp_command::{CommandService, CommandServiceConfig};
use csmp_domain::{ManualClock, TenantId, TicketId};
use csmp_eventstore::{EventStoreConfig, EVENT_TYPE_HEADER};
use csmp_feed::FeedService;
use csmp_proto::v1 as pb;
use csmp_proto::v1::event_feed_client::EventFeedClient;
use csmp_proto::v1::ticket_commands_client::TicketCommandsClient;
use csmp_testkit::TestStream;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::Streaming;

/// How long a test waits for the feed's next message before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A command service and the event feed, both on the same stream. Dropping it stops both.
pub struct Stack {
    pub stream: TestStream,
    pub store: EventStoreConfig,
    pub commands: Commands,
    pub feed_addr: SocketAddr,
    stops: Vec<oneshot::Sender<()>>,
}

impl Stack {
    pub async fn start(label: &str) -> Stack {
        let stream = TestStream::new(label);
        let store = EventStoreConfig {
            stream: stream.stream.clone(),
            subject_prefix: stream.subject_prefix.clone(),
            ..EventStoreConfig::default()
        };
        let mut stops = Vec::new();

        // The command service creates the stream before the feed is asked for it.
        let nats = async_nats::connect(csmp_testkit::nats_url()).await.expect("connect NATS");
        let config =
            CommandServiceConfig { store: store.clone(), ..CommandServiceConfig::default() };
        let start = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 5, 4, 9, 0, 0).unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let service = CommandService::connect(nats, config, clock).await.expect("command service");
        let (commands_addr, stop) = serve_on_loopback(|listener, shutdown| {
            tokio::spawn(csmp_command::serve(listener, service, shutdown));
        })
        .await;
        stops.push(stop);

        let nats = async_nats::connect(csmp_testkit::nats_url()).await.expect("connect NATS");
        let feed = FeedService::new(async_nats::jetstream::new(nats), store.clone());
        let (feed_addr, stop) = serve_feed(feed).await;
        stops.push(stop);
        let commands =
            TicketCommandsClient::connect(format!("http://{commands_addr}")).await.unwrap();
        let commands = Commands(commands);
        Stack { stream, store, commands, feed_addr, stops }
    }

    pub async fn feed(&self) -> EventFeedClient<Channel> {
        EventFeedClient::connect(format!("http://{}", self.feed_addr)).await.unwrap()
    }

    /// Every event of `tenant` in the stream, read message by message, without a consumer.
    pub async fn stored(&self, tenant: &str) -> Vec<Stored> {
        let nats = async_nats::connect(csmp_testkit::nats_url()).await.unwrap();
        let js = async_nats::jetstream::new(nats);
        let stream = js.get_stream(&self.store.stream).await.unwrap();
        let last = stream.get_info().await.unwrap().state.last_sequence;
        let tenant = TenantId::parse(tenant).unwrap();
        let prefix = format!("{}.{}.ticket.", self.store.subject_prefix, tenant);
        let mut events = Vec::new();
        for seq in 1..=last {
            let message = stream.get_raw_message(seq).await.unwrap();
            let Some(ticket_id) = message.subject.strip_prefix(prefix.as_str()) else {
                continue;
            };
            let body: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
            let hash = match body.get("hash").and_then(|h| h.as_str()) {
                Some(hash) => hash.to_owned(),
                None => csmp_domain::chain::event_hash(&body),
            };
            events.push(Stored {
                position: seq,
                event_type: message.headers.get(EVENT_TYPE_HEADER).unwrap().to_string(),
                ticket_id: TicketId::parse(ticket_id).unwrap().to_string(),
                hash,
            });
        }
        events
    }

    /// The stream's last position, any tenant.
    pub async fn last_position(&self) -> u64 {
        let nats = async_nats::connect(csmp_testkit::nats_url()).await.unwrap();
        let js = async_nats::jetstream::new(nats);
        let stream = js.get_stream(&self.store.stream).await.unwrap();
        stream.get_info().await.unwrap().state.last_sequence
    }

    /// The names of the consumers on the test's stream.
    pub async fn consumers(&self) -> Vec<String> {
        use futures::TryStreamExt;
        let nats = async_nats::connect(csmp_testkit::nats_url()).await.unwrap();
        let js = async_nats::jetstream::new(nats);
        let stream = js.get_stream(&self.store.stream).await.unwrap();
        stream.consumer_names().try_collect().await.unwrap()
    }

    /// Publishes `body` on a ticket's subject without the command service, and returns its
    /// position.
    pub async fn publish_raw(
        &self,
        tenant: &str,
        ticket_id: &str,
        event_type: &str,
        body: &[u8],
    ) -> u64 {
        let nats = async_nats::connect(csmp_testkit::nats_url()).await.unwrap();
        let js = async_nats::jetstream::new(nats);
        let subject = format!("{}.{}.ticket.{}", self.store.subject_prefix, tenant, ticket_id);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(EVENT_TYPE_HEADER, event_type);
        let ack = js.publish_with_headers(subject, headers, body.to_vec().into()).await.unwrap();
        ack.await.unwrap().sequence
    }

    /// Deletes a consumer of the test's stream, as an operator or a lost server state would.
    pub async fn delete_consumer(&self, name: &str) {
        let nats = async_nats::connect(csmp_testkit::nats_url()).await.unwrap();
        let js = async_nats::jetstream::new(nats);
        let stream = js.get_stream(&self.store.stream).await.unwrap();
        stream.delete_consumer(name).await.unwrap();
    }
}

/// A client of the command service, to append events from any task.
#[derive(Clone)]
pub struct Commands(TicketCommandsClient<Channel>);

impl Commands {
    /// Opens a ticket for `tenant`; its id is derived from `request_id`.
    pub async fn open(&self, tenant: &str, request_id: &str) -> pb::CommandResult {
        let request = pb::OpenTicketRequest {
            meta: meta(tenant, request_id),
            ticket_id: String::new(),
            customer_id: "cust-1".into(),
            customer_tier: pb::CustomerTier::Business as i32,
            channel: pb::Channel::Email as i32,
            category: "billing".into(),
            priority: pb::Priority::High as i32,
            subject: "Charged twice".into(),
            description: "Two charges for one order".into(),
            product: "shop".into(),
            is_complaint: false,
        };
        self.0.clone().open_ticket(request).await.expect("open").into_inner()
    }

    pub async fn acknowledge(&self, tenant: &str, ticket_id: &str, request_id: &str) -> u64 {
        let request = pb::AcknowledgeTicketRequest {
            meta: meta(tenant, request_id),
            ticket_id: ticket_id.to_owned(),
        };
        let result = self.0.clone().acknowledge_ticket(request).await.expect("ack");
        result.into_inner().stream_position
    }

    pub async fn assign(&self, tenant: &str, ticket_id: &str, request_id: &str) -> u64 {
        let request = pb::AssignTicketRequest {
            meta: meta(tenant, request_id),
            ticket_id: ticket_id.to_owned(),
            agent_id: "agent-9".into(),
        };
        let result = self.0.clone().assign_ticket(request).await.expect("assign");
        result.into_inner().stream_position
    }

    /// Opens, acknowledges and assigns one ticket: three events.
    pub async fn ticket_life(&self, tenant: &str, name: &str) {
        let id = self.open(tenant, &format!("{name}-open")).await.ticket_id;
        self.acknowledge(tenant, &id, &format!("{name}-ack")).await;
        self.assign(tenant, &id, &format!("{name}-assign")).await;
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }
}

/// Serves `feed` alone on a loopback port until the sender is used or dropped.
pub async fn serve_feed(feed: FeedService) -> (SocketAddr, oneshot::Sender<()>) {
    serve_on_loopback(|listener, shutdown| {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(feed.into_server())
                .serve_with_incoming_shutdown(incoming, shutdown),
        );
    })
    .await
}

async fn serve_on_loopback(
    spawn: impl FnOnce(tokio::net::TcpListener, futures::future::BoxFuture<'static, ()>),
) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    spawn(
        listener,
        Box::pin(async move {
            let _ = stopped.await;
        }),
    );
    (addr, stop)
}

fn meta(tenant: &str, request_id: &str) -> Option<pb::CommandMeta> {
    Some(pb::CommandMeta {
        tenant: tenant.to_owned(),
        actor: Some(pb::Actor { id: "agent-7".into(), role: pb::Role::Tier1Agent as i32 }),
        request_id: request_id.to_owned(),
        ..Default::default()
    })
}

/// What the stream holds for one event, read without the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub position: u64,
    pub event_type: String,
    pub ticket_id: String,
    pub hash: String,
}

/// One received feed message, reduced to what tests compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Event(Stored),
    CaughtUp(u64),
}

/// Starts a subscription.
pub async fn subscribe(
    feed: &mut EventFeedClient<Channel>,
    tenant: &str,
    after_position: u64,
    event_types: &[&str],
) -> Streaming<pb::FeedMessage> {
    let request = pb::SubscribeRequest {
        tenant: tenant.to_owned(),
        after_position,
        event_types: event_types.iter().map(|t| (*t).to_owned()).collect(),
    };
    feed.subscribe(request).await.expect("subscribe").into_inner()
}

/// The next message of a subscription, as received.
pub async fn next_raw(messages: &mut Streaming<pb::FeedMessage>) -> pb::feed_message::Message {
    let message = tokio::time::timeout(PATIENCE, messages.message())
        .await
        .expect("a feed message in time")
        .expect("a feed message, not an error")
        .expect("the feed goes on");
    message.message.expect("a feed message has content")
}

/// The next message of a subscription, checking that an event's JSON agrees with its fields.
pub async fn next(messages: &mut Streaming<pb::FeedMessage>, tenant: &str) -> Received {
    match next_raw(messages).await {
        pb::feed_message::Message::CaughtUp(mark) => Received::CaughtUp(mark.position),
        pb::feed_message::Message::Event(event) => {
            let json: serde_json::Value = serde_json::from_str(&event.envelope_json).unwrap();
            assert_eq!(json["tenant"], tenant);
            assert_eq!(json["event_type"], event.event_type.as_str());
            assert_eq!(json["ticket_id"], event.ticket_id.as_str());
            assert_eq!(json["schema_version"], event.schema_version);
            assert_eq!(
                event.schema_version,
                csmp_domain::current_schema_version(&event.event_type)
            );
            Received::Event(Stored {
                position: event.position,
                event_type: event.event_type,
                ticket_id: event.ticket_id,
                hash: event.hash,
            })
        }
    }
}

/// Reads until `events` events have come, and returns everything received, marks included.
pub async fn read_events(
    messages: &mut Streaming<pb::FeedMessage>,
    tenant: &str,
    events: usize,
) -> Vec<Received> {
    let mut received = Vec::new();
    let mut seen = 0;
    while seen < events {
        let message = next(messages, tenant).await;
        if matches!(message, Received::Event(_)) {
            seen += 1;
        }
        received.push(message);
    }
    received
}

/// The events of `received`, marks left out.
pub fn events(received: &[Received]) -> Vec<Stored> {
    received
        .iter()
        .filter_map(|r| match r {
            Received::Event(event) => Some(event.clone()),
            Received::CaughtUp(_) => None,
        })
        .collect()
}

/// A TCP forwarder to the NATS server that can be cut, to make NATS unreachable for one client.
pub struct Proxy {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let upstream = csmp_testkit::nats_url().trim_start_matches("nats://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            // Dropping the set when this task is aborted cuts every forwarded connection.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy { addr, task }
    }

    /// Closes the listener and every forwarded connection.
    pub async fn cut(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
