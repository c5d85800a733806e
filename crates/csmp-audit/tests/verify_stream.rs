//! Verifying real streams: a clean one, and copies of it with one event altered, removed or
//! moved, made with plain JetStream publishes as someone bypassing the services would.

mod support;

use csmp_audit::{Problem, ProblemKind, VerifyReport, VerifyScope};
use csmp_domain::chain::event_hash;
use csmp_domain::{Command, Ticket};
use csmp_testkit::TestStream;
use serde_json::json;
use support::*;

/// acme's ticket 1 (opened, acknowledged, refunded 12.50 EUR, resolved: positions 1, 2, 4, 6),
/// acme's ticket 2 (opened, acknowledged: 3, 5) and globex's ticket 3 (opened: 7).
async fn three_tickets(stream: &TestStream) {
    let store = store(stream).await;
    let mut one = Ticket::new(tenant("acme"), ticket_id(1));
    let mut two = Ticket::new(tenant("acme"), ticket_id(2));
    let mut three = Ticket::new(tenant("globex"), ticket_id(3));
    let sent = |minute: i64, request_id: &str| Sent::new(agent(), at(minute), request_id);
    append(&store, &mut one, open(), sent(0, "1-1")).await;
    append(&store, &mut one, Command::Acknowledge, sent(1, "1-2")).await;
    append(&store, &mut two, open(), sent(2, "2-1")).await;
    append(&store, &mut one, refund("rf-1", 1250), sent(3, "1-3")).await;
    append(&store, &mut two, Command::Acknowledge, sent(4, "2-2")).await;
    append(&store, &mut one, resolve(), sent(5, "1-4")).await;
    append(&store, &mut three, open(), sent(6, "3-1")).await;
}

fn ticket_one_problem(position: u64, version: u64, kind: ProblemKind) -> Problem {
    Problem {
        position,
        tenant: "acme".into(),
        ticket: ticket_id(1).0.to_string(),
        version: Some(version),
        kind,
    }
}

#[tokio::test]
async fn a_clean_stream_verifies_for_all_tenants_and_for_one() {
    let stream = TestStream::new("audit_verify_clean");
    three_tickets(&stream).await;
    let audit = audit(&stream).await;

    let all = audit.verify(&VerifyScope::All).await.unwrap();
    let acme = audit.verify(&VerifyScope::Tenant(tenant("acme"))).await.unwrap();

    assert_eq!(
        all,
        VerifyReport {
            scope: "all tenants".into(),
            messages: 7,
            tickets: 3,
            events: 7,
            chained_events: 7,
            pre_chain_events: 0,
            last_position: 7,
            problems: vec![],
        }
    );
    assert_eq!((acme.tickets, acme.events, acme.last_position), (2, 6, 6));
    assert_eq!(
        acme.render_text(),
        "verified tenant acme up to position 6: 6 messages, 6 events of 2 tickets (6 chained, 0 \
         from before the hash chain)\nno problems found\n"
    );
}

#[tokio::test]
async fn a_refund_amount_changed_in_a_copy_is_reported_as_altered() {
    let original = TestStream::new("audit_verify_altered_src");
    three_tickets(&original).await;
    let mut messages = raw_messages(&original).await;
    let stored_hash = messages[3].json()["hash"].as_str().unwrap().to_owned();
    messages[3] = edited(&messages[3], |body| {
        body["payload"]["amount"]["amount_minor"] = json!(125_000);
    });
    let computed_hash = event_hash(&messages[3].json());
    let copy = TestStream::new("audit_verify_altered");
    publish_copy(&original, &copy, &messages).await;

    let report = audit(&copy).await.verify(&VerifyScope::All).await.unwrap();

    assert_eq!(
        report.problems,
        vec![ticket_one_problem(4, 3, ProblemKind::Altered { stored_hash, computed_hash })]
    );
    assert_eq!((report.tickets, report.events), (3, 7));
}

#[tokio::test]
async fn an_event_left_out_of_a_copy_is_reported_as_removed_with_its_version() {
    let original = TestStream::new("audit_verify_removed_src");
    three_tickets(&original).await;
    let mut messages = raw_messages(&original).await;
    // Ticket 1's acknowledgement, version 2.
    messages.remove(1);
    let copy = TestStream::new("audit_verify_removed");
    publish_copy(&original, &copy, &messages).await;

    let report = audit(&copy).await.verify(&VerifyScope::Tenant(tenant("acme"))).await.unwrap();

    // The refund, version 3, now at position 3, follows version 1.
    let removed = ProblemKind::Removed { first: 2, last: 2, after_version: 1, next_version: 3 };
    assert_eq!(report.problems, vec![ticket_one_problem(3, 2, removed)]);
    assert_eq!(
        report.problems[0].to_string(),
        format!(
            "position 3: tenant acme, ticket {}, version 2: removed: version 2 is missing \
             (version 3 follows version 1)",
            ticket_id(1).0
        )
    );
}

#[tokio::test]
async fn two_events_of_a_ticket_swapped_in_a_copy_are_reported_as_reordered() {
    let original = TestStream::new("audit_verify_reordered_src");
    three_tickets(&original).await;
    let mut messages = raw_messages(&original).await;
    // Ticket 1's acknowledgement (version 2, position 2) and refund (version 3, position 4).
    messages.swap(1, 3);
    let copy = TestStream::new("audit_verify_reordered");
    publish_copy(&original, &copy, &messages).await;

    let report = audit(&copy).await.verify(&VerifyScope::All).await.unwrap();

    assert_eq!(
        report.problems,
        vec![ticket_one_problem(4, 2, ProblemKind::Reordered { after_version: 3 })]
    );
    assert!(!report.is_clean());
}

#[tokio::test]
async fn messages_on_other_subjects_under_the_prefix_are_reported_as_stray() {
    let stream = TestStream::new("audit_verify_stray");
    three_tickets(&stream).await;
    let js = async_nats::jetstream::new(async_nats::connect(&stream.nats_url).await.unwrap());
    let prefix = &stream.subject_prefix;
    let strays = [
        (format!("{prefix}.acme.notes"), &br#"{"x":1}"#[..]),
        (format!("{prefix}.acme.ticket"), &b"x"[..]),
        (format!("{prefix}.foo"), &b"garbage"[..]),
    ];
    for (subject, body) in &strays {
        let ack = js.publish(subject.clone(), body.to_vec().into()).await.unwrap();
        ack.await.expect("the stream stores the message");
    }
    let audit = audit(&stream).await;

    let all = audit.verify(&VerifyScope::All).await.unwrap();
    let acme = audit.verify(&VerifyScope::Tenant(tenant("acme"))).await.unwrap();

    let stray = |position: u64, subject: &str| Problem {
        position,
        tenant: "?".into(),
        ticket: "?".into(),
        version: None,
        kind: ProblemKind::Stray { subject: subject.into() },
    };
    let (notes, bare, foo) = (&strays[0].0, &strays[1].0, &strays[2].0);
    assert_eq!(all.problems, vec![stray(8, notes), stray(9, bare), stray(10, foo)]);
    assert_eq!((all.messages, all.events, all.tickets, all.last_position), (10, 7, 3, 10));
    assert_eq!(acme.problems, vec![stray(8, notes), stray(9, bare)]);
    assert_eq!((acme.messages, acme.events, acme.tickets, acme.last_position), (8, 6, 2, 9));
    assert_eq!(
        all.render_text().lines().take(3).collect::<Vec<_>>(),
        [
            "verified all tenants up to position 10: 10 messages, 7 events of 3 tickets (7 \
             chained, 0 from before the hash chain)"
                .to_owned(),
            "3 problems:".to_owned(),
            format!(
                "  position 8: tenant ?, ticket ?: stray: stored on {notes}, which is not a \
                 ticket's subject"
            ),
        ]
    );
}
