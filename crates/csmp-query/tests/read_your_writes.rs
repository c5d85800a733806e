//! Read-your-writes waits, and the projector status the query API reports.

mod harness;

use std::time::{Duration, Instant};

use csmp_domain::TenantId;
use csmp_projector::ProjectorKind;
use csmp_proto::v1 as pb;
use csmp_proto::v1::ticket_queries_server::TicketQueries;
use harness::support::*;
use harness::*;
use tonic::Code;

fn one_ticket() -> Script {
    let mut script = Script::new();
    script.open("acme", 1, Some(at(9, 0)), Opening::default());
    script
}

fn get(min_position: u64) -> pb::GetTicketRequest {
    pb::GetTicketRequest {
        tenant: "acme".into(),
        ticket_id: id(1),
        min_position,
        ..Default::default()
    }
}

#[tokio::test]
async fn min_position_beyond_the_stream_is_refused_at_once() {
    let mut h = Harness::new("ryw_beyond", at(12, 0), Duration::from_secs(20)).await;
    let last = h.publish(&one_ticket()).await;
    h.start_all();
    h.caught_up(last).await;
    let mut client = h.client.clone();

    let started = Instant::now();
    let err = client.get_ticket(get(last + 5)).await.unwrap_err();

    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        format!("invalid min_position: {} is beyond the stream's last position {last}", last + 5)
    );
    let at_the_end = client.get_ticket(get(last)).await.unwrap().into_inner();
    assert_eq!(at_the_end.ticket.unwrap().version, 1);

    // A service pointed at a stream that does not exist, over read models that hold events:
    // the position and the projectors' lag cannot be judged, and the answer says why.
    let missing = format!("{}_MISSING", h.stream.stream);
    let config = csmp_query::QueryServiceConfig {
        store: csmp_eventstore::EventStoreConfig { stream: missing.clone(), ..store(&h.stream) },
        database_url: h.db.url.clone(),
        read_your_writes_timeout: Duration::from_secs(5),
    };
    let misconfigured =
        csmp_query::QueryService::connect(h.nats.clone(), config, h.clock.clone()).await.unwrap();
    let expected = format!(
        "event stream {missing} not found: no command has been stored in it yet, or this service \
         is configured with another stream than the command service and projectors"
    );
    let err = misconfigured.get_ticket(tonic::Request::new(get(1))).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::Unavailable, expected.as_str()));
    let status = pb::ProjectorStatusRequest {};
    let err = misconfigured.get_projector_status(tonic::Request::new(status)).await.unwrap_err();
    assert_eq!((err.code(), err.message()), (Code::Unavailable, expected.as_str()));
    h.shutdown().await;
}

#[tokio::test]
async fn a_position_not_applied_in_time_names_the_position_reached() {
    let mut h = Harness::new("ryw_late", at(12, 0), Duration::from_millis(300)).await;
    let mut script = one_ticket();
    let opened = h.publish(&script).await;
    h.start_all();
    h.caught_up(opened).await;
    h.stop(ProjectorKind::Queues).await;
    script.acknowledge(1, "agent-1", at(9, 10));
    let acknowledged = publish(&h.nats, &store(&h.stream), &script.events[1..]).await;
    let mut client = h.client.clone();

    let started = Instant::now();
    let err = client.get_ticket(get(acknowledged)).await.unwrap_err();

    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    assert_eq!(err.code(), Code::Unavailable);
    let reached = format!("reached stream position {opened}, not min_position {acknowledged}");
    assert!(err.message().contains(&reached), "{}", err.message());
    h.shutdown().await;
}

#[tokio::test]
async fn reachable_min_position_waits_for_the_projector_and_returns_the_fresh_row() {
    let mut h = Harness::new("ryw_fresh", at(12, 0), Duration::from_secs(20)).await;
    let mut script = one_ticket();
    let opened = h.publish(&script).await;
    h.start(ProjectorKind::Queues);
    h.start(ProjectorKind::Sla);
    h.caught_up(opened).await;

    // The acknowledgement lands while the queues projector is down.
    h.stop(ProjectorKind::Queues).await;
    script.acknowledge(1, "agent-1", at(9, 10));
    let acknowledged = publish(&h.nats, &store(&h.stream), &script.events[1..]).await;
    let mut client = h.client.clone();
    let query = tokio::spawn(async move { client.get_ticket(get(acknowledged)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!query.is_finished(), "the query did not wait for the projector");

    h.start(ProjectorKind::Queues);
    let detail = query.await.unwrap().unwrap().into_inner();
    let ticket = detail.ticket.unwrap();
    assert_eq!(ticket.version, 2);
    assert_eq!(ticket.status, pb::TicketStatus::Open as i32);
    assert_eq!(ticket.first_response_at, Some(ts(at(9, 10))));
    h.shutdown().await;
}

#[tokio::test]
async fn projector_status_reports_checkpoints_lag_and_dead_letters() {
    let mut h = Harness::new("status", at(12, 0), Duration::from_secs(5)).await;
    let store = store(&h.stream);
    let mut script = one_ticket();
    h.publish(&script).await;
    let subject = store.ticket_subject(&TenantId::parse("acme").unwrap(), ticket(1));
    publish_raw(
        &h.nats,
        &store,
        subject.clone(),
        "ticket.teleported",
        br#"{"event_type":"ticket.teleported"}"#,
    )
    .await;
    let last = publish_raw(&h.nats, &store, subject, "ticket.opened", b"\xff not json").await;
    h.start_all();
    h.caught_up(last).await;
    let mut client = h.client.clone();

    let status = client.get_projector_status(pb::ProjectorStatusRequest {}).await.unwrap();
    let states: Vec<(String, u64, u64, u64, u64, bool)> = status
        .into_inner()
        .projectors
        .iter()
        .map(|p| {
            let updated = p.updated_at.is_some();
            (p.name.clone(), p.checkpoint, p.stream_last_position, p.lag, p.dead_letters, updated)
        })
        .collect();
    let expected: Vec<_> = ["queues", "sla", "feedback"]
        .iter()
        .map(|name| (name.to_string(), last, last, 0, 2, true))
        .collect();
    assert_eq!(states, expected);

    // With the feedback projector stopped, the next event is its lag.
    h.stop(ProjectorKind::Feedback).await;
    script.acknowledge(1, "agent-1", at(9, 10));
    let newest = publish(&h.nats, &store, &script.events[1..]).await;
    h.caught_up(newest).await;
    let status = client.get_projector_status(pb::ProjectorStatusRequest {}).await.unwrap();
    let lags: Vec<(String, u64, u64)> = status
        .into_inner()
        .projectors
        .iter()
        .map(|p| (p.name.clone(), p.checkpoint, p.lag))
        .collect();
    assert_eq!(
        lags,
        vec![
            ("queues".to_owned(), newest, 0),
            ("sla".to_owned(), newest, 0),
            ("feedback".to_owned(), last, 1),
        ]
    );
    h.shutdown().await;
}
