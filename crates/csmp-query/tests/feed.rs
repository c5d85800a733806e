//! The event feed served by the query service's own server: health, reflection and a
//! subscription on the query port.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use csmp_domain::ManualClock;
use csmp_eventstore::{EventStore, EventStoreConfig};
use csmp_proto::v1 as pb;
use csmp_proto::v1::event_feed_client::EventFeedClient;
use csmp_query::{QueryService, QueryServiceConfig};
use csmp_testkit::{TestDatabase, TestStream};
use tokio::sync::oneshot;
use tonic::transport::Channel;

#[tokio::test]
async fn the_query_server_serves_the_event_feed_with_health_and_reflection() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let stream = TestStream::new("query_feed");
    let db = TestDatabase::new("query_feed").await;
    let store = EventStoreConfig {
        stream: stream.stream.clone(),
        subject_prefix: stream.subject_prefix.clone(),
        ..EventStoreConfig::default()
    };
    let nats = async_nats::connect(csmp_testkit::nats_url()).await.unwrap();
    // The command service creates the stream in production; here the store does.
    EventStore::connect(nats.clone(), store.clone()).await.unwrap();
    let config = QueryServiceConfig {
        store,
        database_url: db.url.clone(),
        read_your_writes_timeout: std::time::Duration::from_secs(1),
    };
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap()));
    let service = QueryService::connect(nats, config, clock).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(csmp_query::serve(listener, service, async move {
        let _ = stopped.await;
    }));
    let channel: Channel =
        Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();

    let feed_health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest { service: "csmp.v1.EventFeed".into() })
        .await
        .unwrap()
        .into_inner();
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let answer = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    let subscription =
        pb::SubscribeRequest { tenant: "acme".into(), after_position: 0, event_types: Vec::new() };
    let first = EventFeedClient::new(channel)
        .subscribe(subscription)
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();

    assert_eq!(feed_health.status(), ServingStatus::Serving);
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer: {answer:?}");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "csmp.v1.EventFeed",
            "csmp.v1.TicketQueries",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ]
    );
    assert_eq!(
        first.message,
        Some(pb::feed_message::Message::CaughtUp(pb::CaughtUp { position: 0 }))
    );
}
