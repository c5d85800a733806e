//! Optimistic concurrency and idempotency across two command service processes sharing a
//! stream: no lost update, no event recorded twice.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use csmp_command::CommandServiceConfig;
use csmp_domain::{TenantId, TicketId};
use csmp_proto::v1 as pb;
use csmp_testkit::TestStream;
use futures::future::join_all;
use support::{agent, assign, open, Server};
use tonic::Code;

async fn load(server: &Server, ticket_id: &str) -> Vec<csmp_domain::RecordedEvent> {
    let tenant = TenantId::parse("acme").unwrap();
    server.service.store().load(&tenant, TicketId::parse(ticket_id).unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_conflicting_commands_through_two_services_lose_no_update() {
    let stream = TestStream::new("cmd_race");
    let first = Server::start(support::config(&stream)).await;
    let second = Server::start(support::config(&stream)).await;
    let id = first.client.clone().open_ticket(open("open-1")).await.unwrap().into_inner();
    let id = id.ticket_id;
    // Both services have the ticket cached, so each must learn of the other's events through a
    // failed append.
    second.client.clone().assign_ticket(assign(&id, "agent-0", "warm-up")).await.unwrap();
    first
        .client
        .clone()
        .change_priority(pb::ChangePriorityRequest {
            meta: agent("warm-up-2"),
            ticket_id: id.clone(),
            priority: pb::Priority::Low as i32,
            reason: String::new(),
        })
        .await
        .unwrap();

    let priorities = [pb::Priority::Medium, pb::Priority::High, pb::Priority::Critical];
    let calls = (0..50).map(|i| {
        let mut client = if i % 2 == 0 { first.client.clone() } else { second.client.clone() };
        let id = id.clone();
        let request_id = format!("cmd-{i}");
        async move {
            let result = if i % 3 == 0 {
                let request = pb::ChangePriorityRequest {
                    meta: agent(&request_id),
                    ticket_id: id,
                    priority: priorities[(i / 3) % 3] as i32,
                    reason: "load".into(),
                };
                client.change_priority(request).await
            } else {
                client.assign_ticket(assign(&id, &format!("agent-{i}"), &request_id)).await
            };
            (request_id, result.map(tonic::Response::into_inner))
        }
    });
    let tasks: Vec<_> = calls.map(tokio::spawn).collect();
    let answers: Vec<_> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();

    let history = load(&first, &id).await;
    let versions: Vec<u64> = history.iter().map(|e| e.envelope.version).collect();
    assert_eq!(versions, (1..=history.len() as u64).collect::<Vec<_>>());
    let mut recorded: HashMap<&str, Vec<&csmp_domain::RecordedEvent>> = HashMap::new();
    for event in &history {
        recorded.entry(event.envelope.request_id.as_str()).or_default().push(event);
    }
    let (mut ok, mut refused) = (0, 0);
    for (request_id, answer) in &answers {
        match answer {
            Ok(result) => {
                ok += 1;
                let events = &recorded[request_id.as_str()];
                assert_eq!(events.len(), 1, "{request_id} recorded {} times", events.len());
                assert_eq!(events[0].stream_seq, result.stream_position);
                assert_eq!(events[0].envelope.version, result.version);
                assert_eq!(events[0].envelope.event_id.to_string(), result.event_ids[0]);
                assert!(!result.duplicate);
            }
            Err(status) => {
                assert!(
                    matches!(status.code(), Code::FailedPrecondition | Code::Aborted),
                    "{request_id}: {status:?}"
                );
                assert!(!recorded.contains_key(request_id.as_str()), "{request_id} recorded");
                refused += 1;
            }
        }
    }
    assert_eq!(ok + refused, 50);
    // The open, the two warm-ups and one event per accepted command: nothing else.
    assert_eq!(history.len(), 3 + ok);
    // Every assignment names a new agent, so only a command that lost six races in a row is
    // refused besides priority changes to the priority the ticket already has.
    assert!(ok >= 25, "only {ok} of 50 commands were accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_records_one_event_and_gets_the_same_answer() {
    let stream = TestStream::new("cmd_idem");
    let first = Server::start(support::config(&stream)).await;
    let second = Server::start(support::config(&stream)).await;
    let mut client = first.client.clone();
    let opened = client.open_ticket(open("open-1")).await.unwrap().into_inner();
    let id = opened.ticket_id.clone();

    let again = client.open_ticket(open("open-1")).await.unwrap().into_inner();
    let assigned = client.assign_ticket(assign(&id, "agent-9", "assign-1")).await.unwrap();
    let assigned = assigned.into_inner();
    let repeated = client.assign_ticket(assign(&id, "agent-9", "assign-1")).await.unwrap();
    let concurrent = join_all((0..10).map(|i| {
        let mut client = if i % 2 == 0 { first.client.clone() } else { second.client.clone() };
        let id = id.clone();
        async move { client.assign_ticket(assign(&id, "agent-3", "assign-2")).await }
    }))
    .await;

    assert_eq!(again, pb::CommandResult { duplicate: true, ..opened.clone() });
    assert_eq!(repeated.into_inner(), pb::CommandResult { duplicate: true, ..assigned.clone() });
    let concurrent: Vec<pb::CommandResult> =
        concurrent.into_iter().map(|r| r.unwrap().into_inner()).collect();
    let firsts: Vec<_> = concurrent.iter().filter(|r| !r.duplicate).collect();
    assert_eq!(firsts.len(), 1, "{concurrent:?}");
    let original = firsts[0].clone();
    assert_eq!(original.version, 3);
    assert_eq!(original.stream_position, 3);
    assert_eq!(original.event_types, ["ticket.assigned"]);
    for result in &concurrent {
        assert_eq!(result, &pb::CommandResult { duplicate: result.duplicate, ..original.clone() });
    }
    let history = load(&first, &id).await;
    let request_ids: Vec<_> = history.iter().map(|e| e.envelope.request_id.as_str()).collect();
    assert_eq!(request_ids, ["open-1", "assign-1", "assign-2"]);
    assert_eq!(first.last_position().await, 3);
}

#[tokio::test]
async fn a_request_repeated_after_the_duplicate_window_is_answered_from_history() {
    let stream = TestStream::new("cmd_window");
    let mut config = support::config(&stream);
    config.store.duplicate_window = Duration::from_secs(1);
    let first = Server::start(config.clone()).await;
    let stale = Server::start(config.clone()).await;
    let mut client = first.client.clone();
    let opened = client.open_ticket(open("open-1")).await.unwrap().into_inner();
    let id = opened.ticket_id.clone();
    // `stale` caches the ticket before the assignment it then does not see.
    let prioritised = stale
        .client
        .clone()
        .change_priority(pb::ChangePriorityRequest {
            meta: agent("prio-1"),
            ticket_id: id.clone(),
            priority: pb::Priority::Low as i32,
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let assigned = client.assign_ticket(assign(&id, "agent-9", "assign-1")).await.unwrap();
    let assigned = assigned.into_inner();

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let fresh = Server::start(config).await;
    let from_fresh = fresh.client.clone().assign_ticket(assign(&id, "agent-9", "assign-1")).await;
    let reopened = fresh.client.clone().open_ticket(open("open-1")).await;
    let from_stale = stale.client.clone().assign_ticket(assign(&id, "agent-9", "assign-1")).await;
    let stale_open = stale.client.clone().open_ticket(open("open-1")).await;

    let duplicate_of =
        |result: &pb::CommandResult| pb::CommandResult { duplicate: true, ..result.clone() };
    assert_eq!(prioritised.version, 2);
    assert_eq!(from_fresh.unwrap().into_inner(), duplicate_of(&assigned));
    assert_eq!(reopened.unwrap().into_inner(), duplicate_of(&opened));
    assert_eq!(from_stale.unwrap().into_inner(), duplicate_of(&assigned));
    assert_eq!(stale_open.unwrap().into_inner(), duplicate_of(&opened));
    assert_eq!(fresh.last_position().await, 3);
}

#[tokio::test]
async fn retries_run_out_as_aborted_when_the_ticket_keeps_moving() {
    let stream = TestStream::new("cmd_aborted");
    let config = CommandServiceConfig { max_retries: 0, ..support::config(&stream) };
    let first = Server::start(config.clone()).await;
    let second = Server::start(config.clone()).await;
    let id = first.client.clone().open_ticket(open("open-1")).await.unwrap().into_inner();
    let id = id.ticket_id;
    // `second` caches the ticket, then a third process moves it on.
    second.client.clone().assign_ticket(assign(&id, "agent-2", "assign-2")).await.unwrap();
    let third = Server::start(config).await;
    third.client.clone().assign_ticket(assign(&id, "agent-3", "assign-3")).await.unwrap();

    let lost = second.client.clone().assign_ticket(assign(&id, "agent-4", "assign-4")).await;
    let retried = second.client.clone().assign_ticket(assign(&id, "agent-4", "assign-4")).await;

    let status = lost.unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(status.message(), format!("ticket {id} kept changing; gave up after 1 attempts"));
    assert_eq!(retried.unwrap().into_inner().version, 4);
    assert_eq!(third.last_position().await, 4);
}
