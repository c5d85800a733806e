//! The event feed: the `csmp.v1.EventFeed` gRPC service, which streams one tenant's events to
//! analytics consumers, first its history and then every new event as it is appended.
//!
//! Each subscription reads the event stream through a JetStream ordered consumer of its own,
//! filtered to the tenant's subjects and starting after the position the client gives. Events go
//! out in stream order, each once, with the stream position a client resumes after; one
//! `CaughtUp` separates the history (what the stream held when the subscription started) from
//! live events. The consumer is deleted when the client goes away.
//!
//! Layout:
//! - [`error`]: why a subscription fails, and the gRPC code of each failure;
//! - `request`: checking the tenant and the event types asked for;
//! - `subscription`: the consumer of one subscription and the loop that forwards its messages.
//!
//! This crate only reads the event stream. It neither writes it nor knows the read models; it is
//! served beside the query API by `csmp_query::serve`.

pub mod error;

mod request;
mod subscription;

use async_nats::jetstream;
use csmp_eventstore::EventStoreConfig;
use csmp_proto::v1 as pb;
use csmp_proto::v1::event_feed_server::{EventFeed, EventFeedServer};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{instrument, Instrument};

pub use error::{FeedError, FeedErrorKind};

use crate::request::Subscription;
use crate::subscription::Feed;

/// Feed messages buffered for a client that reads slower than the stream delivers; the consumer
/// waits while the buffer is full.
const BUFFER: usize = 64;

/// The `EventFeed` service. Cheap to clone: clones share the NATS connection.
#[derive(Debug, Clone)]
pub struct FeedService {
    js: jetstream::Context,
    store: EventStoreConfig,
}

impl FeedService {
    /// A service reading the stream `store` names through `js`. Nothing is asked of NATS until
    /// a client subscribes, so a stream that does not exist yet is `UNAVAILABLE` per request.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// use csmp_feed::FeedService;
    ///
    /// let client = async_nats::connect("nats://127.0.0.1:4222").await?;
    /// let feed = FeedService::new(
    ///     async_nats::jetstream::new(client),
    ///     csmp_eventstore::EventStoreConfig::default(),
    /// );
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:50053").await?;
    /// tonic::transport::Server::builder()
    ///     .add_service(feed.into_server())
    ///     .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(js: jetstream::Context, store: EventStoreConfig) -> FeedService {
        FeedService { js, store }
    }

    /// The tonic service to add to a server.
    pub fn into_server(self) -> EventFeedServer<FeedService> {
        EventFeedServer::new(self)
    }
}

#[tonic::async_trait]
impl EventFeed for FeedService {
    type SubscribeStream = ReceiverStream<Result<pb::FeedMessage, Status>>;

    #[instrument(skip_all, fields(rpc = "subscribe"))]
    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let subscription = Subscription::parse(request.get_ref())?;

        // Started before answering, so that an unreachable NATS fails the call itself.
        let feed = Feed::start(&self.js, &self.store, subscription).await?;

        let (out, messages) = mpsc::channel(BUFFER);
        tokio::spawn(feed.run(out).in_current_span());
        Ok(Response::new(ReceiverStream::new(messages)))
    }
}
