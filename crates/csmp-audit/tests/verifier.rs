//! The verifier on stored bodies built in memory: no NATS, every finding worked out by hand.

mod support;

use csmp_audit::{Problem, ProblemKind, Verifier, VerifyReport};
use csmp_domain::chain::event_hash;
use csmp_domain::Ticket;
use serde_json::{json, Value};
use support::*;

const PREFIX: &str = "csmp";

/// A stored message as the verifier sees it.
struct Stored {
    position: u64,
    subject: String,
    body: Value,
}

/// The four events of ticket 1 of acme as stored at positions 1 to 4: opened, acknowledged,
/// refunded 12.50 EUR, resolved.
fn ticket_events() -> Vec<Stored> {
    let mut ticket = Ticket::new(tenant("acme"), ticket_id(1));
    let commands = [
        (open(), "r-1"),
        (csmp_domain::Command::Acknowledge, "r-2"),
        (refund("rf-1", 1250), "r-3"),
        (resolve(), "r-4"),
    ];
    let mut stored = Vec::new();
    for (i, (command, request_id)) in commands.into_iter().enumerate() {
        let position = i as u64 + 1;
        let sent = Sent::new(agent(), at(i as i64), request_id);
        let envelope = record(&mut ticket, command, sent, position);
        stored.push(Stored {
            position,
            subject: format!("csmp.acme.ticket.{}", ticket_id(1).0),
            body: serde_json::to_value(&envelope).unwrap(),
        });
    }
    stored
}

fn verify(events: &[Stored]) -> VerifyReport {
    let mut verifier = Verifier::new(PREFIX);
    for event in events {
        verifier.check(event.position, &event.subject, &serde_json::to_vec(&event.body).unwrap());
    }
    verifier.finish()
}

/// The body without its hash fields, as events were stored before the chain existed.
fn pre_chain(mut body: Value) -> Value {
    let fields = body.as_object_mut().unwrap();
    fields.remove("hash");
    fields.remove("prev_hash");
    body
}

fn problem(position: u64, version: u64, kind: ProblemKind) -> Problem {
    Problem {
        position,
        tenant: "acme".into(),
        ticket: ticket_id(1).0.to_string(),
        version: Some(version),
        kind,
    }
}

fn hash_of(event: &Stored) -> String {
    event.body["hash"].as_str().unwrap().to_owned()
}

#[test]
fn an_intact_chain_has_no_problems() {
    let events = ticket_events();

    let report = verify(&events);

    assert_eq!(report.messages, 4);
    assert_eq!(report.tickets, 1);
    assert_eq!(report.events, 4);
    assert_eq!(report.chained_events, 4);
    assert_eq!(report.pre_chain_events, 0);
    assert_eq!(report.last_position, 4);
    assert_eq!(report.problems, vec![]);
    assert!(report.is_clean());
}

#[test]
fn events_from_before_the_chain_are_counted_apart_and_the_chain_starts_from_their_hash() {
    let mut events = ticket_events();
    events[0].body = pre_chain(events[0].body.clone());
    events[1].body = pre_chain(events[1].body.clone());
    // The first chained event names the hash computed from the last pre-chain body.
    let link = event_hash(&events[1].body);
    events[2].body["prev_hash"] = json!(link);
    let rehashed = event_hash(&events[2].body);
    events[2].body["hash"] = json!(rehashed);
    events[3].body["prev_hash"] = json!(rehashed);
    let rehashed = event_hash(&events[3].body);
    events[3].body["hash"] = json!(rehashed);

    let report = verify(&events);

    assert_eq!((report.chained_events, report.pre_chain_events), (2, 2));
    assert_eq!(report.problems, vec![]);
}

#[test]
fn a_changed_body_with_its_old_hash_is_altered() {
    let mut events = ticket_events();
    let stored_hash = hash_of(&events[2]);
    events[2].body["payload"]["amount"]["amount_minor"] = json!(125_000);
    let computed_hash = event_hash(&events[2].body);

    let report = verify(&events);

    let message = format!(
        "position 3: tenant acme, ticket {}, version 3: altered: the stored hash {} is not the \
         hash of the stored body, {}",
        ticket_id(1).0,
        &stored_hash[..12],
        &computed_hash[..12]
    );
    assert_eq!(
        report.problems,
        vec![problem(3, 3, ProblemKind::Altered { stored_hash, computed_hash })]
    );
    assert_eq!(report.problems[0].to_string(), message);
}

#[test]
fn a_changed_body_with_a_fresh_hash_breaks_the_chain_at_the_next_event() {
    let mut events = ticket_events();
    let old_hash = hash_of(&events[2]);
    events[2].body["payload"]["amount"]["amount_minor"] = json!(125_000);
    let fresh = event_hash(&events[2].body);
    events[2].body["hash"] = json!(fresh);

    let report = verify(&events);

    assert_eq!(
        report.problems,
        vec![problem(
            4,
            4,
            ProblemKind::ChainBroken { expected: Some(fresh), found: Some(old_hash) }
        )]
    );
}

#[test]
fn a_missing_version_is_reported_as_removed_at_the_event_after_it() {
    let mut events = ticket_events();
    events.remove(1);

    let report = verify(&events);

    let removed = ProblemKind::Removed { first: 2, last: 2, after_version: 1, next_version: 3 };
    assert_eq!(report.problems, vec![problem(3, 2, removed)]);
    assert_eq!(
        report.problems[0].to_string(),
        format!(
            "position 3: tenant acme, ticket {}, version 2: removed: version 2 is missing \
             (version 3 follows version 1)",
            ticket_id(1).0
        )
    );
}

#[test]
fn two_swapped_events_are_one_reordering() {
    let mut events = ticket_events();
    events.swap(1, 2);
    events[1].position = 2;
    events[2].position = 3;

    let report = verify(&events);

    assert_eq!(report.problems, vec![problem(3, 2, ProblemKind::Reordered { after_version: 3 })]);
    assert_eq!(report.problems[0].kind.to_string(), "reordered: stored after version 3");
}

#[test]
fn a_repeated_version_and_stripped_hash_fields_are_reported() {
    let mut events = ticket_events();
    let again =
        Stored { position: 5, subject: events[1].subject.clone(), body: events[1].body.clone() };
    events.push(again);
    events[3].body = pre_chain(events[3].body.clone());

    let report = verify(&events);

    assert_eq!(
        report.problems,
        vec![problem(4, 4, ProblemKind::Unchained), problem(5, 2, ProblemKind::Duplicate)]
    );
    // The stripped event is unchained, not from before the chain; the duplicate has its hash.
    assert_eq!((report.events, report.chained_events, report.pre_chain_events), (5, 4, 0));
}

#[test]
fn versions_after_the_highest_possible_one_are_reordered_or_duplicates() {
    let mut events = ticket_events();
    // Version 2 raised to the last u64 and hashed afresh, so only the versions are wrong.
    events[1].body["version"] = json!(u64::MAX);
    let rehashed = event_hash(&events[1].body);
    events[1].body["hash"] = json!(rehashed);
    let again =
        Stored { position: 5, subject: events[1].subject.clone(), body: events[1].body.clone() };
    events.push(again);

    let report = verify(&events);

    let after = u64::MAX;
    let removed =
        |first, last| ProblemKind::Removed { first, last, after_version: 1, next_version: after };
    assert_eq!(
        report.problems,
        vec![
            problem(2, 2, removed(2, 2)),
            problem(2, 5, removed(5, after - 1)),
            problem(3, 3, ProblemKind::Reordered { after_version: after }),
            problem(4, 4, ProblemKind::Reordered { after_version: after }),
            problem(5, after, ProblemKind::Duplicate),
        ]
    );
    assert_eq!(
        report.problems[1].kind.to_string(),
        "removed: versions 5 to 18446744073709551614 are missing (version 18446744073709551615 \
         follows version 1)"
    );
}

#[test]
fn bodies_that_are_not_events_or_stored_on_another_ticket_are_reported() {
    let mut events = ticket_events();
    let subject = events[0].subject.clone();
    events[3].subject = format!("csmp.acme.ticket.{}", ticket_id(2).0);
    let mut verifier = Verifier::new(PREFIX);
    for event in &events {
        verifier.check(event.position, &event.subject, &serde_json::to_vec(&event.body).unwrap());
    }
    verifier.check(5, &subject, b"not json");
    verifier.check(6, "csmp.acme.queue", b"{}");

    let report = verifier.finish();

    let other = ticket_id(2).0.to_string();
    assert_eq!((report.messages, report.events, report.tickets), (6, 5, 2));
    assert_eq!(report.problems.len(), 4);
    assert_eq!(
        report.problems[0],
        Problem {
            position: 4,
            tenant: "acme".into(),
            ticket: other.clone(),
            version: Some(4),
            kind: ProblemKind::Misplaced {
                detail: format!("the body names tenant acme and ticket {}", ticket_id(1).0)
            },
        }
    );
    assert_eq!(
        report.problems[1],
        Problem {
            position: 4,
            tenant: "acme".into(),
            ticket: other,
            version: Some(1),
            kind: ProblemKind::Removed { first: 1, last: 3, after_version: 0, next_version: 4 },
        }
    );
    assert_eq!(report.problems[2].position, 5);
    assert!(
        matches!(&report.problems[2].kind, ProblemKind::Unreadable { detail }
            if detail.starts_with("the body is not JSON")),
        "{:?}",
        report.problems[2]
    );
    assert_eq!(
        report.problems[3].to_string(),
        "position 6: tenant ?, ticket ?: stray: stored on csmp.acme.queue, which is not a \
         ticket's subject"
    );
}

#[test]
fn messages_on_subjects_that_are_not_a_tickets_are_stray_and_not_events() {
    let events = ticket_events();
    let mut verifier = Verifier::new(PREFIX);
    verifier.check(1, "csmp.acme.notes", br#"{"x":1}"#);
    for event in &events {
        let body = serde_json::to_vec(&event.body).unwrap();
        verifier.check(event.position + 1, &event.subject, &body);
    }
    verifier.check(6, "csmp.acme.ticket", b"x");
    verifier.check(7, "csmp.foo", b"garbage");
    verifier.check(8, "elsewhere.acme.ticket.1", b"{}");

    let report = verifier.finish();

    let stray = |position: u64, subject: &str| Problem {
        position,
        tenant: "?".into(),
        ticket: "?".into(),
        version: None,
        kind: ProblemKind::Stray { subject: subject.into() },
    };
    assert_eq!(
        report.problems,
        vec![
            stray(1, "csmp.acme.notes"),
            stray(6, "csmp.acme.ticket"),
            stray(7, "csmp.foo"),
            stray(8, "elsewhere.acme.ticket.1"),
        ]
    );
    assert_eq!(
        (report.messages, report.events, report.tickets, report.chained_events),
        (8, 4, 1, 4)
    );
    assert_eq!(report.last_position, 8);
}

#[test]
fn the_report_reads_as_a_summary_and_one_line_per_problem() {
    let mut events = ticket_events();
    events.remove(1);
    let mut report = verify(&events);
    report.scope = "tenant acme".into();

    assert_eq!(
        report.render_text(),
        format!(
            "verified tenant acme up to position 4: 3 messages, 3 events of 1 tickets (3 \
             chained, 0 from before the hash chain)\n1 problem:\n  position 3: tenant acme, \
             ticket {}, version 2: removed: version 2 is missing (version 3 follows version 1)\n",
            ticket_id(1).0
        )
    );
}
