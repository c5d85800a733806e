//! A command service on a stream of the test's own, served on a loopback port, and request
//! builders.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use csmp_command::{serve, CommandService, CommandServiceConfig};
use csmp_domain::ManualClock;
use csmp_eventstore::EventStoreConfig;
use csmp_proto::v1 as pb;
use csmp_proto::v1::ticket_commands_client::TicketCommandsClient;
use csmp_testkit::TestStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The time the manual clock starts at.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap()
}

pub fn config(stream: &TestStream) -> CommandServiceConfig {
    CommandServiceConfig {
        store: EventStoreConfig {
            stream: stream.stream.clone(),
            subject_prefix: stream.subject_prefix.clone(),
            ..EventStoreConfig::default()
        },
        ..CommandServiceConfig::default()
    }
}

/// A served command service and a client of it. Dropping it stops the server.
pub struct Server {
    pub addr: SocketAddr,
    pub client: TicketCommandsClient<Channel>,
    pub service: CommandService,
    pub clock: Arc<ManualClock>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Server {
    /// A service with `config` on a NATS connection of its own.
    pub async fn start(config: CommandServiceConfig) -> Server {
        let client = async_nats::connect(csmp_testkit::nats_url()).await.expect("connect NATS");
        Server::start_on(client, config).await
    }

    /// A service with `config` on `client`.
    pub async fn start_on(client: async_nats::Client, config: CommandServiceConfig) -> Server {
        let clock = Arc::new(ManualClock::new(start_time()));
        let service =
            CommandService::connect(client, config, clock.clone()).await.expect("connect service");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, service.clone(), async move {
            let _ = stop.await;
        }));
        let client = TicketCommandsClient::connect(format!("http://{addr}")).await.unwrap();
        Server { addr, client, service, clock, shutdown: Some(shutdown), task }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect().await.unwrap()
    }

    pub async fn last_position(&self) -> u64 {
        self.service.store().last_position().await.unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        result.expect("server stops").expect("server task").expect("server result");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub fn meta(
    tenant: &str,
    actor: &str,
    role: pb::Role,
    request_id: &str,
) -> Option<pb::CommandMeta> {
    Some(pb::CommandMeta {
        tenant: tenant.to_owned(),
        actor: Some(pb::Actor { id: actor.to_owned(), role: role as i32 }),
        request_id: request_id.to_owned(),
        ..Default::default()
    })
}

/// An agent's command meta for tenant `acme`.
pub fn agent(request_id: &str) -> Option<pb::CommandMeta> {
    meta("acme", "agent-7", pb::Role::Tier1Agent, request_id)
}

/// The customer `cust-1`'s command meta for tenant `acme`.
pub fn customer(request_id: &str) -> Option<pb::CommandMeta> {
    meta("acme", "cust-1", pb::Role::Customer, request_id)
}

/// An open for customer `cust-1` of tenant `acme`, ticket id derived from the request id.
pub fn open(request_id: &str) -> pb::OpenTicketRequest {
    pb::OpenTicketRequest {
        meta: agent(request_id),
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
    }
}

pub fn assign(ticket_id: &str, agent_id: &str, request_id: &str) -> pb::AssignTicketRequest {
    pb::AssignTicketRequest {
        meta: agent(request_id),
        ticket_id: ticket_id.to_owned(),
        agent_id: agent_id.to_owned(),
    }
}

/// A TCP forwarder to the NATS server that can be cut, to make NATS unreachable for one client.
pub struct Proxy {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let upstream = csmp_testkit::nats_url();
        let upstream = upstream.trim_start_matches("nats://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            // Dropping the set when this task is aborted cuts every forwarded connection.
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
