//! The query service: the `csmp.v1.TicketQueries` gRPC API over the read models.
//!
//! Every query reads the PostgreSQL schemas the projectors keep (`queues`, `sla`, `feedback`)
//! through a connection pool, filtered by the request's tenant: another tenant's ticket is
//! `NOT_FOUND`, never visible. A request with `min_position` first waits, bounded by
//! [`QueryServiceConfig::read_your_writes_timeout`], until the projectors it reads from have
//! applied that stream position. States that depend on the present (an SLA clock running past
//! due, at risk) are computed from the injected [`Clock`].
//!
//! Layout:
//! - [`error`]: start-up errors, and how read-model faults map to gRPC codes;
//! - `service`: the RPCs, one method each;
//! - `wait`: read-your-writes, polling the projectors' checkpoints;
//! - `tickets`, `sla`, `analytics`: the SQL and row conversions of each read model;
//! - `convert`: domain names to protobuf enums and timestamps;
//! - `page`: opaque page tokens.
//!
//! [`serve`] also serves the event feed of [`csmp_feed`], so that one process answers both.
//!
//! This crate only reads: it never writes a read model nor the event stream.

pub mod error;

mod analytics;
mod convert;
mod page;
mod service;
mod sla;
mod tickets;
mod wait;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use csmp_domain::Clock;
use csmp_eventstore::EventStoreConfig;
use csmp_feed::FeedService;
use csmp_proto::v1::event_feed_server::EventFeedServer;
use csmp_proto::v1::ticket_queries_server::TicketQueriesServer;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

pub use error::QueryError;

/// Most connections the service opens to the read-model database.
const POOL_SIZE: usize = 16;

/// Where the query service reads from.
#[derive(Debug, Clone)]
pub struct QueryServiceConfig {
    /// The event stream, for the last position in projector status reports and for the event
    /// feed served beside the queries.
    pub store: EventStoreConfig,
    /// The database the projectors write, for example `postgres://postgres@127.0.0.1:5432`.
    pub database_url: String,
    /// How long a query with `min_position` waits for the projectors before `UNAVAILABLE`.
    pub read_your_writes_timeout: Duration,
}

/// The `TicketQueries` service. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct QueryService {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    js: async_nats::jetstream::Context,
    config: QueryServiceConfig,
    clock: Arc<dyn Clock>,
}

impl QueryService {
    /// Builds the service and checks that the read-model database answers.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use csmp_query::{QueryService, QueryServiceConfig};
    ///
    /// let client = async_nats::connect("nats://127.0.0.1:4222").await?;
    /// let config = QueryServiceConfig {
    ///     store: csmp_eventstore::EventStoreConfig::default(),
    ///     database_url: "postgres://postgres@127.0.0.1:5432".to_owned(),
    ///     read_your_writes_timeout: Duration::from_secs(2),
    /// };
    /// let service =
    ///     QueryService::connect(client, config, Arc::new(csmp_domain::SystemClock)).await?;
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:50052").await?;
    /// csmp_query::serve(listener, service, std::future::pending()).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(
        client: async_nats::Client,
        config: QueryServiceConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, QueryError> {
        let pg_config: tokio_postgres::Config =
            config.database_url.parse().map_err(QueryError::InvalidDatabaseUrl)?;
        let manager = Manager::from_config(
            pg_config,
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager).max_size(POOL_SIZE).build().map_err(QueryError::Pool)?;
        // Fail at start-up rather than at the first request when the database is unreachable.
        drop(pool.get().await.map_err(QueryError::Database)?);
        let js = async_nats::jetstream::new(client);
        Ok(QueryService { inner: Arc::new(Inner { pool, js, config, clock }) })
    }
}

/// Serves `service` on `listener`, and beside it the event feed (`csmp.v1.EventFeed`, see
/// [`csmp_feed`]) on the same NATS connection and stream, with gRPC health (`SERVING` for both)
/// and server reflection, until `shutdown` completes; requests in flight are finished first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: QueryService,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let feed = FeedService::new(service.inner.js.clone(), service.inner.config.store.clone());
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<TicketQueriesServer<QueryService>>().await;
    health.set_serving::<EventFeedServer<FeedService>>().await;
    let (reflection_v1, reflection_v1alpha) = csmp_proto::reflection(&[
        csmp_proto::v1::ticket_queries_server::SERVICE_NAME,
        csmp_proto::v1::event_feed_server::SERVICE_NAME,
    ]);
    // Without TCP_NODELAY an answer's trailers wait for the client's delayed acknowledgement.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha)
        .add_service(TicketQueriesServer::new(service))
        .add_service(feed.into_server())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
