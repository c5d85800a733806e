//! Every way a command is refused: wrong state, bad input, wrong role, wrong time.

mod support;

use chrono::Duration;
use csmp_domain::command::limits;
use csmp_domain::event;
use csmp_domain::{
    Command, CustomerId, DomainError, EventPayload, Priority, SupportTier, TicketStatus,
};
use support::*;
use uuid::Uuid;

fn resolve() -> Command {
    Command::Resolve { resolution_summary: "Duplicate refunded".into() }
}

fn feedback_command(csat: u8) -> Command {
    give_feedback(csat)
}

fn refund(id: &str, amount: csmp_domain::Money) -> Command {
    Command::Refund { refund_id: refund_id(id), amount, reason: "duplicate charge".into() }
}

fn transition(action: &'static str, status: TicketStatus) -> DomainError {
    DomainError::InvalidTransition { action, status }
}

fn too_long(field: &'static str, len: usize, max: usize) -> DomainError {
    DomainError::TooLong { field, len, max }
}

fn invalid(field: &'static str, reason: &str) -> DomainError {
    DomainError::InvalidField { field, reason: reason.into() }
}

fn role_not_allowed(role: &str, action: &'static str) -> DomainError {
    DomainError::RoleNotAllowed { role: role.into(), action }
}

fn given_closed() -> Scenario {
    given([
        by(customer(), at(0), opened()),
        by(tier1(), at(5), acknowledged("agent-1")),
        by(tier1(), at(30), resolved()),
        by(tier1(), at(60), closed()),
    ])
}

#[test]
fn resolve_a_closed_ticket() {
    given_closed()
        .when(resolve(), ctx(tier1(), at(70)))
        .then_error(transition("resolve", TicketStatus::Closed));
}

#[test]
fn resolve_a_resolved_ticket() {
    given_resolved()
        .when(resolve(), ctx(tier1(), at(70)))
        .then_error(transition("resolve", TicketStatus::Resolved));
}

#[test]
fn every_command_but_first_feedback_is_refused_on_a_closed_ticket() {
    let cases = [
        (Command::Acknowledge, transition("acknowledge", TicketStatus::Closed)),
        (
            Command::Assign { agent_id: agent_id("agent-2") },
            transition("assign", TicketStatus::Closed),
        ),
        (
            Command::ChangePriority { priority: Priority::Low, reason: String::new() },
            transition("change the priority of", TicketStatus::Closed),
        ),
        (
            Command::Escalate { to: SupportTier::Tier2, reason: "late".into() },
            transition("escalate", TicketStatus::Closed),
        ),
        (
            Command::AskCustomer { question: "Still there?".into() },
            transition("ask the customer on", TicketStatus::Closed),
        ),
        (resolve(), transition("resolve", TicketStatus::Closed)),
        (Command::Reopen { reason: String::new() }, transition("reopen", TicketStatus::Closed)),
        (Command::Close, transition("close", TicketStatus::Closed)),
        (refund("rf-1", eur(100)), transition("refund", TicketStatus::Closed)),
    ];

    for (command, expected) in cases {
        given_closed().when(command, ctx(lead(), at(70))).then_error(expected);
    }
    given_closed()
        .when(Command::CustomerReply { message: "Thanks".into() }, ctx(customer(), at(70)))
        .then_error(transition("reply to", TicketStatus::Closed));
}

#[test]
fn refund_decisions_are_refused_on_a_closed_ticket() {
    // A history recorded before closing required every refund to be decided.
    let history = || {
        given([
            by(customer(), at(0), opened()),
            by(tier1(), at(5), refund_requested("rf-1", eur(12_000), 5_000)),
            by(tier1(), at(30), resolved()),
            by(tier1(), at(60), closed()),
        ])
    };

    history()
        .when(Command::ApproveRefund { refund_id: refund_id("rf-1") }, ctx(lead(), at(70)))
        .then_error(transition("approve a refund on", TicketStatus::Closed));
    history()
        .when(
            Command::RejectRefund { refund_id: refund_id("rf-1"), reason: "late".into() },
            ctx(lead(), at(70)),
        )
        .then_error(transition("reject a refund on", TicketStatus::Closed));
}

#[test]
fn close_while_a_refund_awaits_a_lead() {
    given([
        by(customer(), at(0), opened()),
        by(tier1(), at(5), refund_issued("rf-1", eur(100))),
        by(tier1(), at(6), refund_requested("rf-2", eur(12_000), 5_000)),
        by(tier1(), at(30), resolved()),
    ])
    .when(Command::Close, ctx(tier1(), at(60)))
    .then_error(DomainError::RefundAwaitingApproval("rf-2".into()));
}

#[test]
fn close_a_ticket_that_is_not_resolved() {
    given_acknowledged()
        .when(Command::Close, ctx(tier1(), at(60)))
        .then_error(transition("close", TicketStatus::Open));
}

#[test]
fn reopen_a_ticket_that_is_not_resolved() {
    given_acknowledged()
        .when(Command::Reopen { reason: String::new() }, ctx(customer(), at(60)))
        .then_error(transition("reopen", TicketStatus::Open));
}

#[test]
fn ask_the_customer_before_acknowledging_or_while_already_waiting() {
    given_opened()
        .when(Command::AskCustomer { question: "Which card?".into() }, ctx(tier1(), at(10)))
        .then_error(transition("ask the customer on", TicketStatus::New));
    given([
        by(customer(), at(0), opened()),
        by(tier1(), at(5), acknowledged("agent-1")),
        by(tier1(), at(10), customer_asked()),
    ])
    .when(Command::AskCustomer { question: "And the date?".into() }, ctx(tier1(), at(11)))
    .then_error(transition("ask the customer on", TicketStatus::WaitingOnCustomer));
}

#[test]
fn change_priority_or_escalate_a_resolved_ticket() {
    given_resolved()
        .when(
            Command::ChangePriority { priority: Priority::Low, reason: String::new() },
            ctx(tier1(), at(40)),
        )
        .then_error(transition("change the priority of", TicketStatus::Resolved));
    given_resolved()
        .when(
            Command::Escalate { to: SupportTier::Tier2, reason: "x".into() },
            ctx(tier1(), at(40)),
        )
        .then_error(transition("escalate", TicketStatus::Resolved));
}

#[test]
fn no_change_in_priority_or_assignee() {
    given_opened()
        .when(
            Command::ChangePriority { priority: Priority::High, reason: String::new() },
            ctx(tier1(), at(10)),
        )
        .then_error(DomainError::NoChange { what: "priority", value: "high".into() });

    let assigned =
        EventPayload::Assigned(event::Assigned { agent_id: agent_id("agent-2"), previous: None });
    given([by(customer(), at(0), opened()), by(lead(), at(1), assigned)])
        .when(Command::Assign { agent_id: agent_id("agent-2") }, ctx(lead(), at(2)))
        .then_error(DomainError::NoChange { what: "assignee", value: "agent-2".into() });
}

#[test]
fn feedback_twice_for_one_resolution() {
    given([
        by(customer(), at(0), opened()),
        by(tier1(), at(30), resolved()),
        by(customer(), at(35), feedback(4, 1)),
    ])
    .when(feedback_command(5), ctx(customer(), at(40)))
    .then_error(DomainError::FeedbackAlreadyGiven);
}

#[test]
fn feedback_twice_when_the_second_comes_after_closing() {
    given([
        by(customer(), at(0), opened()),
        by(tier1(), at(30), resolved()),
        by(customer(), at(35), feedback(4, 1)),
        by(tier1(), at(60), closed()),
    ])
    .when(feedback_command(5), ctx(customer(), at(70)))
    .then_error(DomainError::FeedbackAlreadyGiven);
}

#[test]
fn feedback_after_reopen_waits_for_the_next_resolution() {
    given([
        by(customer(), at(0), opened()),
        by(tier1(), at(5), acknowledged("agent-1")),
        by(tier1(), at(30), resolved()),
        by(customer(), at(35), feedback(2, 1)),
        by(customer(), at(40), reopened()),
    ])
    .when(feedback_command(5), ctx(customer(), at(50)))
    .then_error(transition("give feedback on", TicketStatus::Open));
}

#[test]
fn feedback_before_resolve() {
    given_opened()
        .when(feedback_command(5), ctx(customer(), at(10)))
        .then_error(transition("give feedback on", TicketStatus::New));
    given_acknowledged()
        .when(feedback_command(5), ctx(customer(), at(10)))
        .then_error(transition("give feedback on", TicketStatus::Open));
}

#[test]
fn feedback_scores_out_of_range() {
    given_resolved()
        .when(feedback_command(0), ctx(customer(), at(40)))
        .then_error(invalid("csat", "0 is not within 1 to 5"));
    given_resolved()
        .when(feedback_command(6), ctx(customer(), at(40)))
        .then_error(invalid("csat", "6 is not within 1 to 5"));
    given_resolved()
        .when(
            Command::GiveFeedback { csat: 5, nps: Some(11), comment: None, themes: vec![] },
            ctx(customer(), at(40)),
        )
        .then_error(invalid("nps", "11 is not within 0 to 10"));
}

#[test]
fn escalation_past_tier_3_is_not_a_tier() {
    assert_eq!(
        SupportTier::parse("tier4"),
        Err(invalid("tier", "\"tier4\" is not one of tier1, tier2, tier3"))
    );
}

#[test]
fn escalation_from_tier_3_same_tier_or_downwards() {
    let escalate = |to| Command::Escalate { to, reason: "again".into() };
    let not_upward = |from: &str, to: &str| DomainError::EscalationNotUpward {
        from: from.into(),
        to: to.into(),
    };
    let at_tier = |tier| {
        let mut history =
            vec![by(customer(), at(0), opened()), by(tier1(), at(5), acknowledged("agent-1"))];
        if tier != SupportTier::Tier1 {
            history.push(by(tier1(), at(10), escalated(SupportTier::Tier1, tier)));
        }
        given(history)
    };

    at_tier(SupportTier::Tier3)
        .when(escalate(SupportTier::Tier3), ctx(tier3(), at(20)))
        .then_error(not_upward("tier3", "tier3"));
    at_tier(SupportTier::Tier3)
        .when(escalate(SupportTier::Tier2), ctx(tier3(), at(20)))
        .then_error(not_upward("tier3", "tier2"));
    at_tier(SupportTier::Tier2)
        .when(escalate(SupportTier::Tier1), ctx(tier2(), at(20)))
        .then_error(not_upward("tier2", "tier1"));
    at_tier(SupportTier::Tier1)
        .when(escalate(SupportTier::Tier1), ctx(tier1(), at(20)))
        .then_error(not_upward("tier1", "tier1"));
}

#[test]
fn escalation_needs_a_reason() {
    given_acknowledged()
        .when(
            Command::Escalate { to: SupportTier::Tier2, reason: "  ".into() },
            ctx(tier1(), at(10)),
        )
        .then_error(invalid("reason", "must not be empty"));
}

#[test]
fn refund_of_zero_or_a_negative_amount() {
    given_acknowledged()
        .when(refund("rf-1", eur(0)), ctx(tier1(), at(10)))
        .then_error(invalid("amount.amount_minor", "0 is not a positive amount"));
    given_acknowledged()
        .when(refund("rf-1", eur(-100)), ctx(tier1(), at(10)))
        .then_error(invalid("amount.amount_minor", "-100 is not a positive amount"));
    assert_eq!(
        csmp_domain::Money::positive(0, csmp_domain::Currency::parse("EUR").unwrap()),
        Err(invalid("amount.amount_minor", "0 is not a positive amount"))
    );
}

#[test]
fn refund_totals_that_would_overflow() {
    given([
        by(customer(), at(0), opened()),
        by(lead(), at(5), refund_issued("rf-1", eur(i64::MAX - 10))),
        by(tier1(), at(6), refund_requested("rf-2", eur(10), 5_000)),
    ])
    .when(refund("rf-3", eur(1)), ctx(lead(), at(10)))
    .then_error(invalid(
        "amount.amount_minor",
        "1 would take the ticket's refunds in EUR past the largest total",
    ));

    // Another currency has a total of its own.
    given([
        by(customer(), at(0), opened()),
        by(lead(), at(5), refund_issued("rf-1", eur(i64::MAX))),
    ])
    .when(refund("rf-2", money(1, "USD")), ctx(lead(), at(10)))
    .then(refund_issued("rf-2", money(1, "USD")));
}

#[test]
fn unknown_currency() {
    assert_eq!(
        csmp_domain::Currency::parse("XYZ"),
        Err(invalid("currency", "\"XYZ\" is not an ISO 4217 currency code"))
    );
    assert_eq!(
        csmp_domain::Currency::parse("eur"),
        Err(invalid("currency", "\"eur\" is not an ISO 4217 currency code"))
    );
}

#[test]
fn refund_id_reused() {
    for earlier in [
        refund_issued("rf-1", eur(100)),
        refund_requested("rf-1", eur(12_000), 5_000),
        EventPayload::RefundRejected(event::RefundRejected {
            refund_id: refund_id("rf-1"),
            amount: eur(12_000),
            reason: "no".into(),
        }),
    ] {
        let history = match earlier {
            EventPayload::RefundRejected(_) => vec![
                by(customer(), at(0), opened()),
                by(tier1(), at(5), refund_requested("rf-1", eur(12_000), 5_000)),
                by(lead(), at(6), earlier),
            ],
            _ => vec![by(customer(), at(0), opened()), by(tier1(), at(5), earlier)],
        };
        given(history)
            .when(refund("rf-1", eur(100)), ctx(tier1(), at(10)))
            .then_error(DomainError::RefundExists("rf-1".into()));
    }
}

#[test]
fn approve_or_reject_a_refund_that_is_not_pending() {
    let approved = EventPayload::RefundApproved(event::RefundApproved {
        refund_id: refund_id("rf-2"),
        amount: eur(12_000),
    });
    let history = || {
        given([
            by(customer(), at(0), opened()),
            by(tier1(), at(5), refund_issued("rf-1", eur(100))),
            by(tier1(), at(6), refund_requested("rf-2", eur(12_000), 5_000)),
            by(lead(), at(7), approved.clone()),
        ])
    };

    for id in ["rf-1", "rf-2", "rf-9"] {
        history()
            .when(Command::ApproveRefund { refund_id: refund_id(id) }, ctx(lead(), at(10)))
            .then_error(DomainError::RefundNotPending(id.into()));
        history()
            .when(
                Command::RejectRefund { refund_id: refund_id(id), reason: "no".into() },
                ctx(lead(), at(10)),
            )
            .then_error(DomainError::RefundNotPending(id.into()));
    }
}

#[test]
fn approve_or_reject_by_an_agent_needs_a_lead() {
    let history = || {
        given([
            by(customer(), at(0), opened()),
            by(tier1(), at(5), refund_requested("rf-1", eur(12_000), 5_000)),
        ])
    };
    let needs_lead =
        |role: &str, decision| DomainError::ApprovalNeedsLead { role: role.into(), decision };

    history()
        .when(Command::ApproveRefund { refund_id: refund_id("rf-1") }, ctx(tier1(), at(10)))
        .then_error(needs_lead("tier1_agent", "approve"));
    // Also where the amount lies within the role's own refund limit.
    history()
        .when(Command::ApproveRefund { refund_id: refund_id("rf-1") }, ctx(tier2(), at(10)))
        .then_error(needs_lead("tier2_agent", "approve"));
    history()
        .when(Command::ApproveRefund { refund_id: refund_id("rf-1") }, ctx(tier3(), at(10)))
        .then_error(needs_lead("tier3_agent", "approve"));
    history()
        .when(
            Command::RejectRefund { refund_id: refund_id("rf-1"), reason: "no".into() },
            ctx(tier2(), at(10)),
        )
        .then_error(needs_lead("tier2_agent", "reject"));
    // A refund that does not exist tells an agent nothing more.
    history()
        .when(Command::ApproveRefund { refund_id: refund_id("nope") }, ctx(tier1(), at(10)))
        .then_error(needs_lead("tier1_agent", "approve"));
}

#[test]
fn amounts_show_in_the_currencys_minor_unit() {
    assert_eq!(money(12_000, "JPY").to_string(), "12000 JPY");
    assert_eq!(money(12_345, "BHD").to_string(), "12.345 BHD");
    assert_eq!(money(5_000, "BHD").to_string(), "5.000 BHD");
    assert_eq!(money(12_000, "EUR").to_string(), "120.00 EUR");
}

#[test]
fn open_text_over_its_limits() {
    let open_with = |change: fn(&mut csmp_domain::command::OpenTicket)| {
        let mut open = open_command();
        change(&mut open);
        given([]).when(Command::Open(open), ctx(customer(), at(0)))
    };

    open_with(|o| o.subject = "s".repeat(201)).then_error(too_long("subject", 201, 200));
    // Characters are counted, not bytes.
    open_with(|o| o.subject = "é".repeat(201)).then_error(too_long("subject", 201, 200));
    open_with(|o| o.description = "d".repeat(10_001)).then_error(too_long(
        "description",
        10_001,
        10_000,
    ));
    open_with(|o| o.category = "c".repeat(101)).then_error(too_long("category", 101, 100));
    open_with(|o| o.product = "p".repeat(101)).then_error(too_long("product", 101, 100));
}

#[test]
fn open_text_exactly_at_its_limits() {
    let mut open = open_command();
    open.subject = "é".repeat(limits::SUBJECT);
    open.description = "d".repeat(limits::DESCRIPTION);

    let result = given([]).ticket.decide(&Command::Open(open), &ctx(customer(), at(0)));

    assert!(matches!(result, Ok(EventPayload::Opened(_))), "{result:?}");
}

#[test]
fn open_without_subject_or_category() {
    let mut open = open_command();
    open.subject = " \t ".into();
    given([])
        .when(Command::Open(open), ctx(customer(), at(0)))
        .then_error(invalid("subject", "must not be empty"));

    let mut open = open_command();
    open.category = String::new();
    given([])
        .when(Command::Open(open), ctx(customer(), at(0)))
        .then_error(invalid("category", "must not be empty"));

    // Characters that show nothing make no subject either.
    let mut open = open_command();
    open.subject = "\u{200B}\u{FEFF} \u{2800}".into();
    given([])
        .when(Command::Open(open), ctx(customer(), at(0)))
        .then_error(invalid("subject", "must not be empty"));
}

#[test]
fn notes_over_2000_characters() {
    let long = "n".repeat(2_001);
    let cases = [
        (
            given_acknowledged(),
            Command::ChangePriority { priority: Priority::Low, reason: long.clone() },
            tier1(),
            "reason",
        ),
        (
            given_acknowledged(),
            Command::Escalate { to: SupportTier::Tier2, reason: long.clone() },
            tier1(),
            "reason",
        ),
        (
            given_acknowledged(),
            Command::AskCustomer { question: long.clone() },
            tier1(),
            "question",
        ),
        (
            given_acknowledged(),
            Command::CustomerReply { message: long.clone() },
            customer(),
            "message",
        ),
        (
            given_acknowledged(),
            Command::Resolve { resolution_summary: long.clone() },
            tier1(),
            "resolution_summary",
        ),
        (given_resolved(), Command::Reopen { reason: long.clone() }, customer(), "reason"),
        (
            given_acknowledged(),
            Command::Refund { refund_id: refund_id("rf-1"), amount: eur(1), reason: long.clone() },
            tier1(),
            "reason",
        ),
        (
            given_acknowledged(),
            Command::RejectRefund { refund_id: refund_id("rf-1"), reason: long.clone() },
            lead(),
            "reason",
        ),
        (
            given_resolved(),
            Command::GiveFeedback {
                csat: 5,
                nps: None,
                comment: Some(long.clone()),
                themes: vec![],
            },
            customer(),
            "comment",
        ),
    ];

    for (scenario, command, actor, field) in cases {
        scenario.when(command, ctx(actor, at(40))).then_error(too_long(field, 2_001, 2_000));
    }
}

#[test]
fn a_note_of_exactly_2000_characters_is_accepted() {
    given_acknowledged()
        .when(Command::AskCustomer { question: "q".repeat(2_000) }, ctx(tier1(), at(10)))
        .then(EventPayload::CustomerAsked(event::CustomerAsked { question: "q".repeat(2_000) }));
}

#[test]
fn commands_on_a_ticket_that_does_not_exist() {
    let commands = [
        (Command::Acknowledge, tier1()),
        (Command::Assign { agent_id: agent_id("agent-1") }, lead()),
        (Command::ChangePriority { priority: Priority::Low, reason: String::new() }, tier1()),
        (Command::Escalate { to: SupportTier::Tier2, reason: "x".into() }, tier1()),
        (Command::AskCustomer { question: "q".into() }, tier1()),
        (Command::CustomerReply { message: "m".into() }, customer()),
        (resolve(), tier1()),
        (Command::Reopen { reason: String::new() }, customer()),
        (Command::Close, tier1()),
        (refund("rf-1", eur(1)), tier1()),
        (Command::ApproveRefund { refund_id: refund_id("rf-1") }, lead()),
        (Command::RejectRefund { refund_id: refund_id("rf-1"), reason: "no".into() }, lead()),
        (feedback_command(5), customer()),
    ];

    for (command, actor) in commands {
        given([]).when(command, ctx(actor, at(0))).then_error(DomainError::TicketNotFound);
    }
}

#[test]
fn open_twice() {
    given_opened()
        .when(Command::Open(open_command()), ctx(customer(), at(1)))
        .then_error(DomainError::TicketExists);
}

#[test]
fn acknowledge_twice() {
    given_acknowledged()
        .when(Command::Acknowledge, ctx(tier2(), at(10)))
        .then_error(DomainError::AlreadyAcknowledged);
    given([
        by(customer(), at(0), opened()),
        by(tier1(), at(5), acknowledged("agent-1")),
        by(tier1(), at(10), customer_asked()),
    ])
    .when(Command::Acknowledge, ctx(tier2(), at(20)))
    .then_error(DomainError::AlreadyAcknowledged);
}

#[test]
fn acknowledge_a_resolved_ticket() {
    given([by(customer(), at(0), opened()), by(tier1(), at(30), resolved())])
        .when(Command::Acknowledge, ctx(tier1(), at(40)))
        .then_error(transition("acknowledge", TicketStatus::Resolved));
}

#[test]
fn the_system_cannot_acknowledge() {
    given_opened()
        .when(Command::Acknowledge, ctx(system(), at(1)))
        .then_error(role_not_allowed("system", "acknowledge"));
}

#[test]
fn customers_cannot_act_for_support() {
    let cases = [
        (Command::Acknowledge, "acknowledge"),
        (Command::Assign { agent_id: agent_id("agent-1") }, "assign"),
        (
            Command::ChangePriority { priority: Priority::Critical, reason: String::new() },
            "change the priority of",
        ),
        (Command::Escalate { to: SupportTier::Tier3, reason: "x".into() }, "escalate"),
        (Command::AskCustomer { question: "q".into() }, "ask the customer on"),
        (resolve(), "resolve"),
        (refund("rf-1", eur(1)), "refund"),
    ];

    for (command, action) in cases {
        given_acknowledged()
            .when(command, ctx(customer(), at(10)))
            .then_error(role_not_allowed("customer", action));
    }
    given_resolved()
        .when(Command::Close, ctx(customer(), at(40)))
        .then_error(role_not_allowed("customer", "close"));
}

#[test]
fn support_cannot_speak_for_the_customer() {
    for (actor, role) in [
        (tier1(), "tier1_agent"),
        (tier2(), "tier2_agent"),
        (tier3(), "tier3_agent"),
        (lead(), "lead"),
        (system(), "system"),
    ] {
        given_resolved()
            .when(feedback_command(5), ctx(actor.clone(), at(40)))
            .then_error(role_not_allowed(role, "give feedback on"));
        given_acknowledged()
            .when(Command::CustomerReply { message: "m".into() }, ctx(actor, at(40)))
            .then_error(role_not_allowed(role, "reply to"));
    }
}

#[test]
fn another_customers_ticket_is_not_found() {
    for command in [
        Command::CustomerReply { message: "m".into() },
        Command::Reopen { reason: String::new() },
        feedback_command(1),
        resolve(),
    ] {
        given_resolved()
            .when(command, ctx(other_customer(), at(40)))
            .then_error(DomainError::TicketNotFound);
    }
}

#[test]
fn a_customer_opens_tickets_only_for_themselves() {
    let mut open = open_command();
    open.customer_id = CustomerId::parse("cust-2").unwrap();

    given([])
        .when(Command::Open(open), ctx(customer(), at(0)))
        .then_error(invalid("customer_id", "a customer may open tickets only for themselves"));
}

#[test]
fn occurred_at_from_a_role_other_than_the_importer() {
    for actor in [customer(), tier1(), tier2(), tier3(), lead(), system()] {
        let mut ctx = ctx(actor, at(10));
        ctx.occurred_at = Some(at(9));
        given_acknowledged()
            .when(Command::AskCustomer { question: "q".into() }, ctx)
            .then_error(invalid("occurred_at", "only the importer may give a historical time"));
    }
}

#[test]
fn importer_time_before_the_previous_event() {
    let mut ctx = ctx(importer(), at(600));
    ctx.occurred_at = Some(at(4));

    given_acknowledged()
        .when(Command::Resolve { resolution_summary: "done".into() }, ctx)
        .then_error(invalid(
        "occurred_at",
        "2026-03-02 09:04:00 UTC is before the ticket's previous event at 2026-03-02 09:05:00 UTC",
    ));
}

#[test]
fn importer_time_equal_to_the_previous_event_is_accepted() {
    let mut ctx = ctx(importer(), at(600));
    ctx.occurred_at = Some(at(5));

    given_acknowledged()
        .when(Command::Resolve { resolution_summary: "done".into() }, ctx)
        .then(EventPayload::Resolved(event::Resolved { resolution_summary: "done".into() }));
}

#[test]
fn importer_time_in_the_future_beyond_clock_skew() {
    let mut ctx = ctx(importer(), at(10));
    ctx.occurred_at = Some(at(10) + Duration::seconds(301));
    given_acknowledged()
        .when(resolve(), ctx.clone())
        .then_error(invalid("occurred_at", "2026-03-02 09:15:01 UTC is in the future"));

    ctx.occurred_at = Some(at(10) + Duration::milliseconds(300_001));
    given_acknowledged()
        .when(resolve(), ctx.clone())
        .then_error(invalid("occurred_at", "2026-03-02 09:15:00.001 UTC is in the future"));

    ctx.occurred_at = Some(at(10) + Duration::seconds(300));
    given_acknowledged().when(resolve(), ctx).then(resolved());
}

#[test]
fn importer_time_that_is_a_leap_second() {
    let mut ctx = ctx(importer(), at(10));
    let leap = chrono::DateTime::from_timestamp(at(5).timestamp() + 59, 1_500_000_000).unwrap();
    ctx.occurred_at = Some(leap);

    given_acknowledged()
        .when(resolve(), ctx)
        .then_error(invalid("occurred_at", "2026-03-02 09:05:60.500 UTC is a leap second"));
}

#[test]
fn importer_time_ahead_of_the_clock_is_recorded_as_now_and_later_live_events_follow_it() {
    let mut ahead = ctx(importer(), at(10));
    ahead.occurred_at = Some(at(13));

    let ticket = given_acknowledged().when(resolve(), ahead).then(resolved());

    assert_eq!(ticket.last_occurred_at, Some(at(10)));
    let reopen = Command::Reopen { reason: "still broken".into() };
    let live = ctx(customer(), at(11));
    let payload = ticket.decide(&reopen, &live).unwrap();
    assert_eq!(ticket.envelope(payload, &live, Uuid::nil()).occurred_at, Some(at(11)));
}

#[test]
fn an_event_is_never_dated_before_the_previous_one_when_this_clock_is_behind() {
    // The previous event, acknowledged at 09:05, was recorded by a clock ahead of this one.
    let live = ctx(tier1(), at(4));
    let ticket = given_acknowledged().when(resolve(), live).then(resolved());
    assert_eq!(ticket.last_occurred_at, Some(at(5)));

    let mut imported = ctx(importer(), at(4));
    imported.occurred_at = Some(at(6));
    let ticket = given_acknowledged().when(resolve(), imported.clone()).then(resolved());
    assert_eq!(ticket.last_occurred_at, Some(at(5)));
}

#[test]
fn request_id_and_actor_id_must_be_usable() {
    let mut ctx = ctx(tier1(), at(10));
    ctx.request_id = " ".into();
    given_acknowledged()
        .when(resolve(), ctx.clone())
        .then_error(invalid("request_id", "must not be empty"));

    ctx.request_id = "r".repeat(129);
    given_acknowledged().when(resolve(), ctx.clone()).then_error(too_long("request_id", 129, 128));

    ctx.request_id = "req-1".into();
    ctx.actor.id = "agent\n1".into();
    given_acknowledged()
        .when(resolve(), ctx.clone())
        .then_error(invalid("actor.id", "must not contain control characters"));

    // An id that looks like another is refused, not taken for a second person.
    ctx.actor.id = "agent-1 ".into();
    given_acknowledged()
        .when(resolve(), ctx.clone())
        .then_error(invalid("actor.id", "\"agent-1 \" starts or ends with space"));
    ctx.actor.id = "\u{3000}agent-1".into();
    given_acknowledged()
        .when(resolve(), ctx.clone())
        .then_error(invalid("actor.id", "\"\\u{3000}agent-1\" starts or ends with space"));
    ctx.actor.id = "agent\u{200B}-1".into();
    given_acknowledged()
        .when(resolve(), ctx.clone())
        .then_error(invalid("actor.id", "must not contain the invisible character U+200B"));
    ctx.actor.id = "\u{FEFF}agent-1".into();
    given_acknowledged()
        .when(resolve(), ctx.clone())
        .then_error(invalid("actor.id", "must not contain the invisible character U+FEFF"));
    ctx.actor.id = "lead-1\u{E0020}".into();
    given_acknowledged()
        .when(resolve(), ctx.clone())
        .then_error(invalid("actor.id", "must not contain the invisible character U+E0020"));
    ctx.actor.id = "\u{2800}".into();
    given_acknowledged()
        .when(resolve(), ctx.clone())
        .then_error(invalid("actor.id", "must not be empty"));
    // The same name, once composed and once as e plus a combining accent.
    ctx.actor.id = "jose\u{301}".into();
    given_acknowledged().when(resolve(), ctx.clone()).then_error(invalid(
        "actor.id",
        "\"jose\\u{301}\" is not in Unicode's composed form (NFC)",
    ));
    ctx.actor.id = "jos\u{E9}".into();
    given_acknowledged().when(resolve(), ctx.clone()).then(resolved());
    // Spaces inside an id, and letters of any script, are fine.
    ctx.actor.id = "Ana María".into();
    given_acknowledged().when(resolve(), ctx).then(resolved());
}
