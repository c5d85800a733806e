//! A query service on a port of its own over projectors running on a test stream and database.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use csmp_domain::ManualClock;
use csmp_projector::ProjectorKind;
use csmp_proto::v1::ticket_queries_client::TicketQueriesClient;
use csmp_query::{QueryService, QueryServiceConfig};
use csmp_testkit::{TestDatabase, TestStream};
use tokio::sync::oneshot;
use tonic::transport::Channel;

#[path = "../../../csmp-projector/tests/support/mod.rs"]
pub mod support;

use support::*;

pub struct Harness {
    pub stream: TestStream,
    pub db: TestDatabase,
    pub nats: async_nats::Client,
    pub pg: tokio_postgres::Client,
    pub clock: Arc<ManualClock>,
    pub client: TicketQueriesClient<Channel>,
    pub projectors: Vec<(ProjectorKind, Running)>,
    stop_server: Option<oneshot::Sender<()>>,
}

impl Harness {
    /// A stream and a database of the test's own, the query service on port 0 with its clock
    /// at `now`, and no projector running yet.
    pub async fn new(label: &str, now: DateTime<Utc>, timeout: Duration) -> Harness {
        let stream = TestStream::new(label);
        let db = TestDatabase::new(label).await;
        let nats = nats(&stream).await;
        let pg = pg(&db).await;
        let clock = Arc::new(ManualClock::new(now));
        let config = QueryServiceConfig {
            store: store(&stream),
            database_url: db.url.clone(),
            read_your_writes_timeout: timeout,
        };
        let service = QueryService::connect(nats.clone(), config, clock.clone()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_server, stopped) = oneshot::channel::<()>();
        tokio::spawn(csmp_query::serve(listener, service, async move {
            let _ = stopped.await;
        }));
        let client = TicketQueriesClient::connect(format!("http://{addr}")).await.unwrap();
        Harness {
            stream,
            db,
            nats,
            pg,
            clock,
            client,
            projectors: Vec::new(),
            stop_server: Some(stop_server),
        }
    }

    /// Starts a projector of `kind`.
    pub fn start(&mut self, kind: ProjectorKind) {
        let running = spawn(config(kind, &self.stream, &self.db, 100), self.nats.clone());
        self.projectors.push((kind, running));
    }

    pub fn start_all(&mut self) {
        for kind in ProjectorKind::ALL {
            self.start(kind);
        }
    }

    /// Stops the projector of `kind`.
    pub async fn stop(&mut self, kind: ProjectorKind) {
        let index = self.projectors.iter().position(|(k, _)| *k == kind).unwrap();
        let (_, running) = self.projectors.remove(index);
        running.stop().await.unwrap();
    }

    pub async fn publish(&self, script: &Script) -> u64 {
        publish(&self.nats, &store(&self.stream), &script.in_time_order()).await
    }

    /// Waits until every running projector has applied `position`.
    pub async fn caught_up(&self, position: u64) {
        for (kind, _) in &self.projectors {
            wait_for(&self.pg, kind.name(), position).await;
        }
    }

    pub async fn shutdown(mut self) {
        for (_, running) in self.projectors.drain(..) {
            running.stop().await.unwrap();
        }
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
    }
}

/// The ticket id text of scripted ticket `n`.
pub fn id(n: u128) -> String {
    ticket(n).to_string()
}

/// `expected` to a millionth, for figures PostgreSQL computes in floating point.
#[track_caller]
pub fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.unwrap_or_else(|| panic!("no value, expected {expected}"));
    assert!((actual - expected).abs() < 1e-6, "{actual} is not {expected}");
}

/// A protobuf timestamp of a scripted time.
pub fn ts(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }
}
