//! The event feed over gRPC against a real NATS server, with events appended by a real command
//! service: history then live while commands keep arriving, resuming after a dropped
//! subscription, the event type filter, malformed requests and an unreachable NATS.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use csmp_feed::FeedService;
use csmp_proto::v1::feed_message::Message;
use support::{events, next, next_raw, read_events, subscribe, Received, Stack, Stored};
use tonic::Code;

/// Positions of `events`, in the order given.
fn positions(events: &[Stored]) -> Vec<u64> {
    events.iter().map(|e| e.position).collect()
}

#[tokio::test]
async fn a_subscription_from_the_start_delivers_history_then_live_events_each_once_in_order() {
    let stack = Stack::start("feed_live").await;
    // History: four tickets of each tenant, three events each, interleaved.
    for n in 0..4 {
        stack.commands.ticket_life("acme", &format!("h{n}")).await;
        stack.commands.ticket_life("globex", &format!("h{n}")).await;
    }
    let history = stack.stored("acme").await;
    assert_eq!(history.len(), 12);
    let history_end = history.last().unwrap().position;
    let mut feed = stack.feed().await;

    let mut messages = subscribe(&mut feed, "acme", 0, &[]).await;
    // Appended while the subscription reads its history: five tickets of each tenant.
    let appender = {
        let commands = stack.commands.clone();
        tokio::spawn(async move {
            for n in 0..5 {
                commands.ticket_life("globex", &format!("l{n}")).await;
                commands.ticket_life("acme", &format!("l{n}")).await;
            }
        })
    };
    let received = read_events(&mut messages, "acme", 12 + 15).await;
    appender.await.unwrap();

    let stored = stack.stored("acme").await;
    assert_eq!(stored.len(), 27);
    assert_eq!(events(&received), stored);
    let mark = received.iter().position(|r| *r == Received::CaughtUp(history_end));
    assert_eq!(mark, Some(12), "{received:?}");
    assert_eq!(received.iter().filter(|r| matches!(r, Received::CaughtUp(_))).count(), 1);
    let after_mark = positions(&events(&received[13..]));
    assert!(after_mark.iter().all(|p| *p > history_end), "{after_mark:?}");
}

#[tokio::test]
async fn a_dropped_subscription_resumed_after_its_last_position_misses_and_repeats_nothing() {
    let stack = Stack::start("feed_resume").await;
    for n in 0..3 {
        stack.commands.ticket_life("acme", &format!("h{n}")).await;
        stack.commands.ticket_life("globex", &format!("h{n}")).await;
    }
    let mut feed = stack.feed().await;
    let appender = {
        let commands = stack.commands.clone();
        tokio::spawn(async move {
            for n in 0..6 {
                commands.ticket_life("acme", &format!("l{n}")).await;
                commands.ticket_life("globex", &format!("l{n}")).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // 1. Read part of the history, then go away.
    let mut first = subscribe(&mut feed, "acme", 0, &[]).await;
    let first_part = events(&read_events(&mut first, "acme", 5).await);
    drop(first);
    let last_seen = first_part.last().unwrap().position;

    // 2. Resume after the last position seen while the appender goes on.
    let mut second = subscribe(&mut feed, "acme", last_seen, &[]).await;
    let second_part = events(&read_events(&mut second, "acme", 9 + 18 - 5).await);
    appender.await.unwrap();
    drop(second);

    let stored = stack.stored("acme").await;
    assert_eq!(stored.len(), 27);
    let union: Vec<Stored> = first_part.into_iter().chain(second_part).collect();
    assert_eq!(union, stored);

    // The consumers went with their clients.
    let mut consumers = stack.consumers().await;
    for _ in 0..50 {
        if consumers.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        consumers = stack.consumers().await;
    }
    assert_eq!(consumers, Vec::<String>::new());
}

#[tokio::test]
async fn an_event_type_filter_delivers_exactly_the_matching_events() {
    let stack = Stack::start("feed_filter").await;
    for n in 0..3 {
        stack.commands.ticket_life("acme", &format!("h{n}")).await;
        stack.commands.ticket_life("globex", &format!("h{n}")).await;
    }
    let wanted = ["ticket.acknowledged", "ticket.assigned"];
    let stored = stack.stored("acme").await;
    let matching: Vec<Stored> =
        stored.iter().filter(|e| wanted.contains(&e.event_type.as_str())).cloned().collect();
    assert_eq!(matching.len(), 6);
    let mut feed = stack.feed().await;

    // 1. The history: the matching events, then the mark at the tenant's last event.
    let mut messages = subscribe(&mut feed, "acme", 0, &wanted).await;
    let history = read_events(&mut messages, "acme", 6).await;
    let mark = next(&mut messages, "acme").await;

    // 2. Live: an open is left out, its acknowledgement comes.
    let opened = stack.commands.open("acme", "live-open").await;
    let acknowledged = stack.commands.acknowledge("acme", &opened.ticket_id, "live-ack").await;
    let live = next(&mut messages, "acme").await;

    assert_eq!(events(&history), matching);
    assert_eq!(mark, Received::CaughtUp(stored.last().unwrap().position));
    let Received::Event(live) = live else { panic!("expected an event, got {live:?}") };
    assert_eq!(live.position, acknowledged);
    assert_eq!(live.event_type, "ticket.acknowledged");
    assert_eq!(live.ticket_id, opened.ticket_id);
    assert_eq!(live, stack.stored("acme").await.pop().unwrap());
}

#[tokio::test]
async fn a_subscription_after_the_last_event_is_caught_up_at_once_at_its_position() {
    let stack = Stack::start("feed_empty").await;
    stack.commands.ticket_life("acme", "h0").await;
    stack.commands.ticket_life("globex", "h0").await;
    let last = stack.last_position().await;
    let mut feed = stack.feed().await;

    let mut known = subscribe(&mut feed, "acme", last, &[]).await;
    let mut unknown = subscribe(&mut feed, "initech", 0, &[]).await;
    let known_mark = next(&mut known, "acme").await;
    let unknown_mark = next(&mut unknown, "initech").await;
    let opened = stack.commands.open("initech", "first").await;
    let first = next(&mut unknown, "initech").await;

    assert_eq!(known_mark, Received::CaughtUp(6));
    assert_eq!(unknown_mark, Received::CaughtUp(0));
    let Received::Event(first) = first else { panic!("expected an event, got {first:?}") };
    assert_eq!(first.position, 7);
    assert_eq!(first.ticket_id, opened.ticket_id);
    assert_eq!(first.event_type, "ticket.opened");

    // A position the stream has not reached is refused, not waited for.
    let beyond = csmp_proto::v1::SubscribeRequest {
        tenant: "acme".to_owned(),
        after_position: 8,
        event_types: Vec::new(),
    };
    let status = feed.subscribe(beyond).await.expect_err("a position not reached fails");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        status.message(),
        "invalid after_position: 8 is beyond the stream's last position 7"
    );
}

#[tokio::test]
async fn malformed_requests_fail_naming_the_field() {
    let stack = Stack::start("feed_invalid").await;
    let mut feed = stack.feed().await;
    let cases = [
        ("", vec![], "invalid tenant: must not be empty"),
        (
            "Acme Corp",
            vec![],
            "invalid tenant: \"Acme Corp\" must be lowercase letters, digits, '-' or '_'",
        ),
        (
            "acme",
            vec!["ticket.opened", "ticket.deleted"],
            "invalid event_types: \"ticket.deleted\" is not a known event type",
        ),
        ("acme", vec![""], "invalid event_types: \"\" is not a known event type"),
    ];

    for (tenant, event_types, message) in cases {
        let request = csmp_proto::v1::SubscribeRequest {
            tenant: tenant.to_owned(),
            after_position: 0,
            event_types: event_types.into_iter().map(str::to_owned).collect(),
        };
        let status = feed.subscribe(request).await.expect_err("a malformed request fails");

        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(status.message(), message);
    }
}

#[tokio::test]
async fn an_unreachable_nats_answers_unavailable() {
    let stack = Stack::start("feed_unavailable").await;
    let proxy = support::Proxy::start().await;
    let nats = async_nats::connect(format!("nats://{}", proxy.addr)).await.unwrap();
    let js = async_nats::jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(500))
        .build(nats);
    let (addr, _stop) = support::serve_feed(FeedService::new(js, stack.store.clone())).await;
    let mut feed =
        csmp_proto::v1::event_feed_client::EventFeedClient::connect(format!("http://{addr}"))
            .await
            .unwrap();

    proxy.cut().await;
    let request = csmp_proto::v1::SubscribeRequest {
        tenant: "acme".to_owned(),
        after_position: 0,
        event_types: Vec::new(),
    };
    let status = feed.subscribe(request).await.expect_err("NATS is unreachable");

    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().starts_with("event feed unavailable: failed to find the event stream: "),
        "{status:?}"
    );
}

#[tokio::test]
async fn every_position_is_delivered_once_across_many_resumptions() {
    let stack = Stack::start("feed_many").await;
    for n in 0..4 {
        stack.commands.ticket_life("acme", &format!("h{n}")).await;
    }
    let mut feed = stack.feed().await;

    let mut seen = Vec::new();
    let mut after = 0;
    for _ in 0..4 {
        let mut messages = subscribe(&mut feed, "acme", after, &[]).await;
        let part = events(&read_events(&mut messages, "acme", 3).await);
        after = part.last().unwrap().position;
        seen.extend(part);
    }

    let unique: BTreeSet<u64> = positions(&seen).into_iter().collect();
    assert_eq!(unique.len(), 12);
    assert_eq!(seen, stack.stored("acme").await);
}

#[tokio::test]
async fn a_consumer_recreated_before_its_first_event_repeats_nothing() {
    let stack = Stack::start("feed_recreate").await;
    for n in 0..2 {
        stack.commands.ticket_life("acme", &format!("h{n}")).await;
    }
    let mut feed = stack.feed().await;
    let mut messages = subscribe(&mut feed, "acme", 6, &[]).await;
    let mark = next(&mut messages, "acme").await;

    // Deleted under it, the ordered consumer comes back from the stream's start, as it has
    // delivered nothing to resume after.
    let consumers = stack.consumers().await;
    assert_eq!(consumers.len(), 1, "{consumers:?}");
    stack.delete_consumer(&consumers[0]).await;
    let opened = stack.commands.open("acme", "after-recreate").await;
    let first = next(&mut messages, "acme").await;

    assert_eq!(mark, Received::CaughtUp(6));
    let Received::Event(first) = first else { panic!("expected an event, got {first:?}") };
    assert_eq!(first.position, opened.stream_position);
    assert_eq!(first.position, 7);
    assert_eq!(first.ticket_id, opened.ticket_id);
}

#[tokio::test]
async fn an_undecodable_message_is_skipped_and_an_old_schema_version_arrives_raised() {
    let stack = Stack::start("feed_stored").await;
    let opened = stack.commands.open("acme", "h0").await;
    // Written straight to the stream, as an older release or a faulty writer would have.
    let garbage_ticket = "00000000-0000-4000-8000-000000000001";
    let garbage = stack.publish_raw("acme", garbage_ticket, "ticket.opened", b"not an event").await;
    let old_ticket = "00000000-0000-4000-8000-000000000002";
    let old_body = serde_json::json!({
        "event_id": "0193a7c2-5d0e-7c51-9d8e-3f1b2c4d5e6f",
        "event_type": "feedback.given",
        "schema_version": 1,
        "tenant": "acme",
        "ticket_id": old_ticket,
        "version": 1,
        "occurred_at": null,
        "recorded_at": "2025-01-02T03:04:05Z",
        "actor": {"id": "cust-1", "role": "customer"},
        "correlation_id": "rate-1",
        "causation_id": null,
        "request_id": "rate-1",
        "payload": {"csat": 5, "nps": 9, "comment": null, "resolution_cycle": 1}
    });
    let old = stack
        .publish_raw("acme", old_ticket, "feedback.given", &serde_json::to_vec(&old_body).unwrap())
        .await;
    let mut feed = stack.feed().await;

    let mut messages = subscribe(&mut feed, "acme", 0, &[]).await;
    let first = next_raw(&mut messages).await;
    let second = next_raw(&mut messages).await;
    let mark = next(&mut messages, "acme").await;

    let Message::Event(first) = first else { panic!("expected an event, got {first:?}") };
    assert_eq!((first.position, first.ticket_id.as_str()), (1, opened.ticket_id.as_str()));
    assert_eq!(garbage, 2);
    let Message::Event(second) = second else { panic!("expected an event, got {second:?}") };
    assert_eq!(second.position, old);
    assert_eq!(second.position, 3);
    assert_eq!(second.event_type, "feedback.given");
    assert_eq!(second.schema_version, csmp_domain::current_schema_version("feedback.given"));
    assert_eq!(second.ticket_id, old_ticket);
    assert_eq!(second.hash, csmp_domain::chain::event_hash(&old_body));
    let envelope: serde_json::Value = serde_json::from_str(&second.envelope_json).unwrap();
    assert_eq!(envelope["schema_version"], second.schema_version);
    assert_eq!(
        envelope["payload"]["sentiment"],
        serde_json::to_value(csmp_domain::Sentiment::from_csat(5)).unwrap()
    );
    assert_eq!(mark, Received::CaughtUp(3));
}

#[tokio::test]
async fn a_body_naming_another_tenant_or_ticket_than_its_subject_is_not_delivered() {
    let stack = Stack::start("feed_misplaced").await;
    let acme = stack.commands.open("acme", "a0").await;
    let beta = stack.commands.open("beta", "b0").await;
    let stored_acme = stack.stored("acme").await;
    let nats = async_nats::connect(csmp_testkit::nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let stream = js.get_stream(&stack.store.stream).await.unwrap();
    let acme_body = stream.get_raw_message(stored_acme[0].position).await.unwrap().payload;
    let beta_ack = stack.commands.acknowledge("beta", &beta.ticket_id, "b1").await;
    // Acme's opening copied under a beta subject, and under another acme ticket's subject.
    let under_beta = stack.publish_raw("beta", &beta.ticket_id, "ticket.opened", &acme_body).await;
    let other_ticket = "00000000-0000-4000-8000-000000000009";
    let under_other = stack.publish_raw("acme", other_ticket, "ticket.opened", &acme_body).await;
    let mut feed = stack.feed().await;

    let mut messages = subscribe(&mut feed, "beta", 0, &[]).await;
    let received = vec![next(&mut messages, "beta").await, next(&mut messages, "beta").await];
    let mut acme_messages = subscribe(&mut feed, "acme", 0, &[]).await;
    let acme_received =
        vec![next(&mut acme_messages, "acme").await, next(&mut acme_messages, "acme").await];

    assert_eq!((beta_ack, under_beta, under_other), (3, 4, 5));
    let positions = |received: &[Received]| -> Vec<Option<u64>> {
        received
            .iter()
            .map(|r| match r {
                Received::Event(event) => Some(event.position),
                Received::CaughtUp(_) => None,
            })
            .collect()
    };
    // Beta: its opening (2) and acknowledgement (3), then the mark at its history's end (4,
    // skipped); never position 4 itself.
    assert_eq!(positions(&received), [Some(2), Some(3)]);
    assert_eq!(next(&mut messages, "beta").await, Received::CaughtUp(4));
    // Acme: its opening (1), then the mark at its history's end (5, skipped).
    assert_eq!(positions(&acme_received), [Some(1), None]);
    assert_eq!(acme_received[1], Received::CaughtUp(5));
    assert_eq!(acme.ticket_id, stored_acme[0].ticket_id);
}
