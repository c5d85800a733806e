//! Every command accepted: given a history, when the command comes, then exactly this event.

mod support;

use std::collections::BTreeMap;

use csmp_domain::command::OpenTicket;
use csmp_domain::event::{self, Opened};
use csmp_domain::{
    Channel, Command, Currency, CustomerId, CustomerTier, EventPayload, Priority, RefundLimits,
    Role, Sentiment, SupportTier, Theme, Ticket, TicketStatus,
};
use support::*;

#[test]
fn open_trims_subject_category_and_product_but_keeps_the_description_as_written() {
    let command = Command::Open(OpenTicket {
        customer_id: CustomerId::parse("cust-1").unwrap(),
        customer_tier: CustomerTier::Enterprise,
        channel: Channel::Chat,
        category: "  billing ".into(),
        priority: Priority::Critical,
        subject: "  Charged twice\t".into(),
        description: "  Two charges on 1 March.\n".into(),
        product: " payments ".into(),
        is_complaint: true,
    });

    let ticket =
        given([]).when(command, ctx(customer(), at(0))).then(EventPayload::Opened(Opened {
            customer_id: CustomerId::parse("cust-1").unwrap(),
            customer_tier: CustomerTier::Enterprise,
            channel: Channel::Chat,
            category: "billing".into(),
            priority: Priority::Critical,
            subject: "Charged twice".into(),
            description: "  Two charges on 1 March.\n".into(),
            product: "payments".into(),
            is_complaint: true,
        }));

    assert_eq!(ticket.version, 1);
    assert_eq!(ticket.status, TicketStatus::New);
    assert_eq!(ticket.priority, Priority::Critical);
    assert_eq!(ticket.tier, SupportTier::Tier1);
    let opening = ticket.opening.unwrap();
    assert_eq!(opening.opened_at, Some(at(0)));
    assert!(opening.is_complaint);
}

#[test]
fn open_by_an_agent_on_the_customers_behalf() {
    given([]).when(Command::Open(open_command()), ctx(tier1(), at(0))).then(opened());
}

#[test]
fn open_by_the_importer_keeps_an_unknown_opening_time_unknown() {
    let ticket =
        given([]).when(Command::Open(open_command()), ctx(importer(), at(0))).then(opened());

    assert_eq!(ticket.opening.unwrap().opened_at, None);
    assert_eq!(ticket.last_occurred_at, None);
}

#[test]
fn acknowledge_records_the_responding_agent_and_opens_the_ticket() {
    let ticket = given_opened()
        .when(Command::Acknowledge, ctx(tier1(), at(5)))
        .then(acknowledged("agent-1"));

    assert!(ticket.acknowledged);
    assert_eq!(ticket.status, TicketStatus::Open);
}

#[test]
fn assign_an_unassigned_ticket() {
    let ticket = given_opened()
        .when(Command::Assign { agent_id: agent_id("agent-2") }, ctx(lead(), at(1)))
        .then(EventPayload::Assigned(event::Assigned {
            agent_id: agent_id("agent-2"),
            previous: None,
        }));

    assert_eq!(ticket.assignee, Some(agent_id("agent-2")));
    assert_eq!(ticket.status, TicketStatus::New);
}

#[test]
fn reassign_names_the_previous_agent() {
    let assigned =
        EventPayload::Assigned(event::Assigned { agent_id: agent_id("agent-2"), previous: None });

    given([by(customer(), at(0), opened()), by(lead(), at(1), assigned)])
        .when(Command::Assign { agent_id: agent_id("agent-3") }, ctx(lead(), at(2)))
        .then(EventPayload::Assigned(event::Assigned {
            agent_id: agent_id("agent-3"),
            previous: Some(agent_id("agent-2")),
        }));
}

#[test]
fn assign_is_allowed_on_a_resolved_ticket() {
    given_resolved()
        .when(Command::Assign { agent_id: agent_id("agent-2") }, ctx(tier1(), at(40)))
        .then(EventPayload::Assigned(event::Assigned {
            agent_id: agent_id("agent-2"),
            previous: None,
        }));
}

#[test]
fn change_priority_records_old_and_new() {
    let ticket = given_acknowledged()
        .when(
            Command::ChangePriority { priority: Priority::Critical, reason: "site down".into() },
            ctx(tier1(), at(10)),
        )
        .then(EventPayload::PriorityChanged(event::PriorityChanged {
            from: Priority::High,
            to: Priority::Critical,
            reason: "site down".into(),
        }));

    assert_eq!(ticket.priority, Priority::Critical);
}

#[test]
fn change_priority_without_a_reason() {
    given_opened()
        .when(
            Command::ChangePriority { priority: Priority::Low, reason: String::new() },
            ctx(system(), at(10)),
        )
        .then(EventPayload::PriorityChanged(event::PriorityChanged {
            from: Priority::High,
            to: Priority::Low,
            reason: String::new(),
        }));
}

fn escalate(to: SupportTier) -> Command {
    Command::Escalate { to, reason: "needs billing access".into() }
}

#[test]
fn escalate_from_tier_1_to_tier_2() {
    let ticket = given_acknowledged()
        .when(escalate(SupportTier::Tier2), ctx(tier1(), at(10)))
        .then(escalated(SupportTier::Tier1, SupportTier::Tier2));

    assert_eq!(ticket.tier, SupportTier::Tier2);
    assert_eq!(ticket.status, TicketStatus::Open);
}

#[test]
fn escalate_from_tier_2_to_tier_3() {
    let ticket = given([
        by(customer(), at(0), opened()),
        by(tier1(), at(5), acknowledged("agent-1")),
        by(tier1(), at(10), escalated(SupportTier::Tier1, SupportTier::Tier2)),
    ])
    .when(escalate(SupportTier::Tier3), ctx(tier2(), at(20)))
    .then(escalated(SupportTier::Tier2, SupportTier::Tier3));

    assert_eq!(ticket.tier, SupportTier::Tier3);
}

#[test]
fn escalate_from_tier_1_straight_to_tier_3() {
    let ticket = given_opened()
        .when(escalate(SupportTier::Tier3), ctx(system(), at(120)))
        .then(escalated(SupportTier::Tier1, SupportTier::Tier3));

    assert_eq!(ticket.tier, SupportTier::Tier3);
    assert_eq!(ticket.status, TicketStatus::New);
}

#[test]
fn ask_customer_waits_on_the_customer() {
    let ticket = given_acknowledged()
        .when(Command::AskCustomer { question: "Which card?".into() }, ctx(tier1(), at(10)))
        .then(customer_asked());

    assert_eq!(ticket.status, TicketStatus::WaitingOnCustomer);
}

#[test]
fn customer_reply_hands_the_ticket_back_to_support() {
    let ticket = given([
        by(customer(), at(0), opened()),
        by(tier1(), at(5), acknowledged("agent-1")),
        by(tier1(), at(10), customer_asked()),
    ])
    .when(Command::CustomerReply { message: "The Visa one".into() }, ctx(customer(), at(20)))
    .then(EventPayload::CustomerReplied(event::CustomerReplied { message: "The Visa one".into() }));

    assert_eq!(ticket.status, TicketStatus::Open);
}

#[test]
fn customer_reply_before_any_response_leaves_the_ticket_new() {
    let ticket = given_opened()
        .when(Command::CustomerReply { message: "Any news?".into() }, ctx(customer(), at(20)))
        .then(EventPayload::CustomerReplied(event::CustomerReplied {
            message: "Any news?".into(),
        }));

    assert_eq!(ticket.status, TicketStatus::New);
}

#[test]
fn resolve_starts_a_resolution_cycle() {
    let ticket = given_acknowledged()
        .when(
            Command::Resolve { resolution_summary: "Duplicate refunded".into() },
            ctx(tier1(), at(30)),
        )
        .then(resolved());

    assert_eq!(ticket.status, TicketStatus::Resolved);
    assert_eq!(ticket.resolution_cycle, 1);
}

#[test]
fn resolve_while_waiting_on_the_customer() {
    given([
        by(customer(), at(0), opened()),
        by(tier1(), at(5), acknowledged("agent-1")),
        by(tier1(), at(10), customer_asked()),
    ])
    .when(
        Command::Resolve { resolution_summary: "Duplicate refunded".into() },
        ctx(tier2(), at(30)),
    )
    .then(resolved());
}

#[test]
fn reopen_by_the_customer_returns_an_acknowledged_ticket_to_open() {
    let ticket = given_resolved()
        .when(Command::Reopen { reason: "Charged again".into() }, ctx(customer(), at(40)))
        .then(reopened());

    assert_eq!(ticket.status, TicketStatus::Open);
    assert_eq!(ticket.resolution_cycle, 1);
}

#[test]
fn reopen_of_a_ticket_never_acknowledged_returns_it_to_new() {
    let ticket = given([by(customer(), at(0), opened()), by(tier1(), at(30), resolved())])
        .when(Command::Reopen { reason: "Charged again".into() }, ctx(tier1(), at(40)))
        .then(reopened());

    assert_eq!(ticket.status, TicketStatus::New);
}

#[test]
fn close_a_resolved_ticket() {
    let ticket = given_resolved().when(Command::Close, ctx(tier1(), at(60))).then(closed());

    assert_eq!(ticket.status, TicketStatus::Closed);
}

#[test]
fn close_after_every_refund_request_was_decided() {
    let approved = EventPayload::RefundApproved(event::RefundApproved {
        refund_id: refund_id("rf-1"),
        amount: eur(12_000),
    });

    given([
        by(customer(), at(0), opened()),
        by(tier1(), at(5), refund_requested("rf-1", eur(12_000), 5_000)),
        by(lead(), at(10), approved),
        by(tier1(), at(30), resolved()),
    ])
    .when(Command::Close, ctx(system(), at(60)))
    .then(closed());
}

fn refund(id: &str, amount: csmp_domain::Money) -> Command {
    Command::Refund { refund_id: refund_id(id), amount, reason: "duplicate charge".into() }
}

#[test]
fn refund_up_to_the_agents_limit_is_issued_at_once() {
    let ticket = given_acknowledged()
        .when(refund("rf-1", eur(5_000)), ctx(tier1(), at(10)))
        .then(refund_issued("rf-1", eur(5_000)));

    assert_eq!(ticket.refunded_minor(Currency::parse("EUR").unwrap()), 5_000);
}

#[test]
fn refund_one_cent_above_the_agents_limit_waits_for_a_lead() {
    let ticket = given_acknowledged()
        .when(refund("rf-1", eur(5_001)), ctx(tier1(), at(10)))
        .then(refund_requested("rf-1", eur(5_001), 5_000));

    assert_eq!(ticket.refunded_minor(Currency::parse("EUR").unwrap()), 0);
}

#[test]
fn refund_limits_by_role_and_currency() {
    // Tier 2 agents: 500.00 by default; 800.00 in EUR for this tenant.
    let cases = [
        (tier1(), eur(5_000), None),
        (tier2(), eur(80_000), None),
        (tier2(), eur(80_001), Some(80_000)),
        (tier2(), money(50_000, "USD"), None),
        (tier2(), money(50_001, "USD"), Some(50_000)),
        (tier3(), eur(10_000_000), None),
        (lead(), eur(10_000_000), None),
        (system(), eur(10_000_000), None),
        (importer(), eur(1), Some(0)),
    ];

    for (actor, amount, limit) in cases {
        let mut ctx = ctx(actor.clone(), at(10));
        ctx.refund_limits
            .by_role
            .insert(Role::Tier2Agent, BTreeMap::from([(Currency::parse("EUR").unwrap(), 80_000)]));
        let expected = match limit {
            None => refund_issued("rf-1", amount),
            Some(limit) => refund_requested("rf-1", amount, limit),
        };
        let result = given_acknowledged().ticket.decide(&refund("rf-1", amount), &ctx);
        assert_eq!(result, Ok(expected), "{actor:?} refunding {amount}");
    }
}

#[test]
fn tenant_limit_replaces_the_default_only_in_its_currency() {
    let mut limits = RefundLimits::default();
    limits
        .by_role
        .insert(Role::Tier1Agent, BTreeMap::from([(Currency::parse("JPY").unwrap(), 10_000)]));
    let mut ctx = ctx(tier1(), at(10));
    ctx.refund_limits = limits;

    given_acknowledged()
        .when(refund("rf-1", money(10_000, "JPY")), ctx.clone())
        .then(refund_issued("rf-1", money(10_000, "JPY")));
    given_acknowledged().when(refund("rf-1", money(5_001, "GBP")), ctx).then(refund_requested(
        "rf-1",
        money(5_001, "GBP"),
        5_000,
    ));
}

#[test]
fn refund_on_a_resolved_ticket() {
    given_resolved()
        .when(refund("rf-1", eur(100)), ctx(tier1(), at(40)))
        .then(refund_issued("rf-1", eur(100)));
}

#[test]
fn approve_by_a_lead_counts_the_refund_as_issued() {
    let ticket = given([
        by(customer(), at(0), opened()),
        by(tier1(), at(5), refund_requested("rf-1", eur(12_000), 5_000)),
    ])
    .when(Command::ApproveRefund { refund_id: refund_id("rf-1") }, ctx(lead(), at(10)))
    .then(EventPayload::RefundApproved(event::RefundApproved {
        refund_id: refund_id("rf-1"),
        amount: eur(12_000),
    }));

    assert_eq!(ticket.refunded_minor(Currency::parse("EUR").unwrap()), 12_000);
}

#[test]
fn reject_by_a_lead_issues_nothing() {
    let ticket = given([
        by(customer(), at(0), opened()),
        by(tier1(), at(5), refund_requested("rf-1", eur(12_000), 5_000)),
    ])
    .when(
        Command::RejectRefund { refund_id: refund_id("rf-1"), reason: "not a duplicate".into() },
        ctx(lead(), at(10)),
    )
    .then(EventPayload::RefundRejected(event::RefundRejected {
        refund_id: refund_id("rf-1"),
        amount: eur(12_000),
        reason: "not a duplicate".into(),
    }));

    assert_eq!(ticket.refunded_minor(Currency::parse("EUR").unwrap()), 0);
}

#[test]
fn feedback_with_csat_nps_and_comment_rates_the_latest_resolution() {
    let ticket = given_resolved()
        .when(
            Command::GiveFeedback {
                csat: 4,
                nps: Some(9),
                comment: Some("Quick".into()),
                themes: vec![],
            },
            ctx(customer(), at(45)),
        )
        .then(EventPayload::FeedbackGiven(event::FeedbackGiven {
            csat: 4,
            nps: Some(9),
            comment: Some("Quick".into()),
            resolution_cycle: 1,
            sentiment: Sentiment::Positive,
            themes: vec![Theme::ResponseTime],
        }));

    assert_eq!(ticket.feedback_cycle, Some(1));
}

#[test]
fn feedback_at_the_ends_of_each_scale() {
    let table = [
        (1, Some(0), Sentiment::Negative),
        (2, Some(3), Sentiment::Negative),
        (3, None, Sentiment::Neutral),
        (4, None, Sentiment::Positive),
        (5, Some(10), Sentiment::Positive),
    ];

    for (csat, nps, sentiment) in table {
        given_resolved()
            .when(
                Command::GiveFeedback { csat, nps, comment: None, themes: vec![] },
                ctx(customer(), at(45)),
            )
            .then(EventPayload::FeedbackGiven(event::FeedbackGiven {
                csat,
                nps,
                comment: None,
                resolution_cycle: 1,
                sentiment,
                themes: vec![],
            }));
    }
}

#[test]
fn feedback_themes_are_the_ticked_ones_and_those_the_comment_names_sorted_once_each() {
    given_resolved()
        .when(
            Command::GiveFeedback {
                csat: 2,
                nps: None,
                comment: Some("Still broken after DAYS, and the agent never replied".into()),
                themes: vec![Theme::ResponseTime, Theme::Billing, Theme::Billing],
            },
            ctx(customer(), at(45)),
        )
        .then(EventPayload::FeedbackGiven(event::FeedbackGiven {
            csat: 2,
            nps: None,
            comment: Some("Still broken after DAYS, and the agent never replied".into()),
            resolution_cycle: 1,
            sentiment: Sentiment::Negative,
            themes: vec![
                Theme::AgentConduct,
                Theme::Billing,
                Theme::Communication,
                Theme::ProductQuality,
                Theme::ResolutionQuality,
                Theme::ResponseTime,
            ],
        }));
}

#[test]
fn feedback_on_a_closed_ticket_not_yet_rated() {
    given([
        by(customer(), at(0), opened()),
        by(tier1(), at(5), acknowledged("agent-1")),
        by(tier1(), at(30), resolved()),
        by(tier1(), at(60), closed()),
    ])
    .when(give_feedback(2), ctx(customer(), at(90)))
    .then(feedback(2, 1));
}

#[test]
fn feedback_again_after_reopen_and_a_second_resolution() {
    given([
        by(customer(), at(0), opened()),
        by(tier1(), at(5), acknowledged("agent-1")),
        by(tier1(), at(30), resolved()),
        by(customer(), at(35), feedback(2, 1)),
        by(customer(), at(40), reopened()),
        by(tier2(), at(90), resolved()),
    ])
    .when(give_feedback(5), ctx(customer(), at(95)))
    .then(feedback(5, 2));
}

#[test]
fn the_importer_gives_feedback_and_historical_times() {
    let mut ctx = ctx(importer(), at(0));
    ctx.occurred_at = Some(at(-60 * 24));

    let ticket = given([
        by(importer(), at(-1), opened()).occurred(Some(at(-60 * 48))),
        by(importer(), at(-1), resolved()).occurred(Some(at(-60 * 30))),
    ])
    .when(give_feedback(3), ctx)
    .then(feedback(3, 1));

    assert_eq!(ticket.last_occurred_at, Some(at(-60 * 24)));
}

#[test]
fn envelope_carries_the_next_version_context_and_time() {
    let scenario = given_acknowledged();
    let mut ctx = ctx(tier1(), at(10));
    ctx.correlation_id = None;
    ctx.causation_id = Some("evt-9".into());

    let envelope = scenario.ticket.envelope(closed(), &ctx, uuid::Uuid::from_u128(5));

    assert_eq!(envelope.version, 3);
    assert_eq!(envelope.tenant, tenant());
    assert_eq!(envelope.ticket_id, ticket_id());
    assert_eq!(envelope.occurred_at, Some(at(10)));
    assert_eq!(envelope.recorded_at, at(10));
    assert_eq!(envelope.correlation_id, "req-when");
    assert_eq!(envelope.causation_id.as_deref(), Some("evt-9"));
    assert_eq!(envelope.request_id, "req-when");
    assert_eq!(envelope.schema_version, 1);
    assert_eq!(envelope.event_type(), "ticket.closed");
}

#[test]
fn feedback_is_written_in_schema_version_2() {
    let scenario = given_resolved();
    let ctx = ctx(customer(), at(45));

    let envelope = scenario.ticket.envelope(feedback(4, 1), &ctx, uuid::Uuid::from_u128(5));

    assert_eq!(envelope.schema_version, 2);
}

#[test]
fn two_events_in_a_row_chain_the_second_to_the_first() {
    let scenario = given_acknowledged();

    let [opened, acknowledged] = &scenario.recorded[..] else { panic!("two events") };

    assert_eq!(opened.envelope.prev_hash, None);
    assert_eq!(acknowledged.envelope.prev_hash, opened.envelope.hash);
    assert_ne!(acknowledged.envelope.hash, opened.envelope.hash);
    for event in &scenario.recorded {
        let mut body = serde_json::to_value(&event.envelope).unwrap();
        body.as_object_mut().unwrap().remove("hash");
        let canonical = csmp_domain::chain::canonical_json(&body);
        assert_eq!(event.envelope.hash, Some(sha256_hex(&canonical)));
    }
}

#[test]
fn the_next_envelope_chains_to_the_last_applied_event() {
    let scenario = given_resolved();
    let ctx = ctx(customer(), at(45));

    let envelope = scenario.ticket.envelope(feedback(4, 1), &ctx, uuid::Uuid::from_u128(5));

    assert_eq!(envelope.prev_hash, scenario.recorded[2].envelope.hash);
    assert_eq!(scenario.ticket.last_hash, scenario.recorded[2].envelope.hash);
}

#[test]
fn replay_keeps_the_last_events_hash() {
    let scenario = given_resolved();

    let replayed = Ticket::replay(tenant(), ticket_id(), &scenario.recorded).unwrap();

    assert_eq!(replayed.last_hash, scenario.recorded[2].envelope.hash);
    assert_eq!(replayed, scenario.ticket);
}

/// SHA-256 in lower-case hex through `sha2` directly, apart from the chain module.
fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn applied_events_leave_receipts_for_their_request_ids() {
    let scenario = given_acknowledged();

    let receipt = scenario.ticket.receipt("req-given-1").unwrap();

    assert_eq!(receipt.event_type, "ticket.acknowledged");
    assert_eq!(receipt.version, 2);
    assert_eq!(receipt.stream_seq, 107);
    assert_eq!(receipt.event_id, uuid::Uuid::from_u128(1_001));
    assert_eq!(scenario.ticket.last_stream_seq, 107);
    assert!(scenario.ticket.receipt("req-when").is_none());
}
