//! A request id sent again is told apart from a request id reused for another request: the
//! digest of a command agrees with the digest of the event it recorded only when the retry
//! repeats the first request, actor included.

mod support;

use csmp_domain::request::{command_fingerprint, event_fingerprint};
use csmp_domain::{Actor, Command, EventEnvelope, Theme, Ticket};
use support::*;

/// The envelope `command` records on an acknowledged ticket, by `actor`.
fn recorded(command: &Command, actor: Actor) -> EventEnvelope {
    let ctx = ctx(actor, at(30));
    let ticket: Ticket = given_acknowledged().ticket;
    let payload = ticket.decide(command, &ctx).unwrap();
    ticket.envelope(payload, &ctx, uuid::Uuid::from_u128(99))
}

fn refund(id: &str, amount_minor: i64) -> Command {
    Command::Refund { refund_id: refund_id(id), amount: eur(amount_minor), reason: "late".into() }
}

#[test]
fn a_retry_of_the_same_request_matches_its_event() {
    for command in [
        refund("r1", 1_000),
        Command::Assign { agent_id: agent_id("bob") },
        Command::AskCustomer { question: "Which region?".into() },
        Command::Resolve { resolution_summary: "Restarted the node".into() },
    ] {
        let event = recorded(&command, tier1());
        assert_eq!(
            command_fingerprint(&command, &tier1()),
            event_fingerprint(&event),
            "{command:?}"
        );
    }
}

#[test]
fn other_values_or_another_actor_do_not_match() {
    let event = recorded(&refund("r1", 1_000), tier1());
    assert_ne!(command_fingerprint(&refund("r2", 1_000), &tier1()), event_fingerprint(&event));
    assert_ne!(command_fingerprint(&refund("r1", 4_000), &tier1()), event_fingerprint(&event));
    assert_ne!(command_fingerprint(&refund("r1", 1_000), &tier2()), event_fingerprint(&event));
    let mallory = Actor { id: "mallory".into(), ..tier1() };
    assert_ne!(command_fingerprint(&refund("r1", 1_000), &mallory), event_fingerprint(&event));

    let bob = Command::Assign { agent_id: agent_id("bob") };
    let carol = Command::Assign { agent_id: agent_id("carol") };
    let event = recorded(&bob, tier1());
    assert_ne!(command_fingerprint(&carol, &tier1()), event_fingerprint(&event));
}

#[test]
fn an_opening_matches_with_the_spaces_the_ticket_trims() {
    let open = open_command();
    let ctx = ctx(customer(), at(0));
    let ticket = Ticket::new(tenant(), ticket_id());
    let payload = ticket.decide(&Command::Open(open.clone()), &ctx).unwrap();
    let event = ticket.envelope(payload, &ctx, uuid::Uuid::from_u128(1));

    let padded = csmp_domain::command::OpenTicket {
        subject: format!("  {}  ", open.subject),
        ..open.clone()
    };
    assert_eq!(command_fingerprint(&Command::Open(padded), &customer()), event_fingerprint(&event));
    let other = csmp_domain::command::OpenTicket { subject: "Another subject".into(), ..open };
    assert_ne!(command_fingerprint(&Command::Open(other), &customer()), event_fingerprint(&event));
}

#[test]
fn a_rating_matches_whether_its_comment_or_its_survey_names_a_theme() {
    let ctx = ctx(customer(), at(60));
    let ticket: Ticket = given_resolved().ticket;
    let commented = Command::GiveFeedback {
        csat: 2,
        nps: Some(3),
        comment: Some("the refund took weeks".into()),
        themes: vec![],
    };
    let payload = ticket.decide(&commented, &ctx).unwrap();
    let event = ticket.envelope(payload, &ctx, uuid::Uuid::from_u128(7));

    // The comment names billing; ticking billing too asks for the same event.
    let ticked = Command::GiveFeedback {
        csat: 2,
        nps: Some(3),
        comment: Some("the refund took weeks".into()),
        themes: vec![Theme::Billing],
    };
    assert_eq!(command_fingerprint(&ticked, &customer()), event_fingerprint(&event));
    let other_score =
        Command::GiveFeedback { csat: 3, nps: Some(3), comment: None, themes: vec![] };
    assert_ne!(command_fingerprint(&other_score, &customer()), event_fingerprint(&event));
}
