//! The query API over a scripted day of tickets, every figure computed by hand.
//!
//! Tenant `acme`, Monday 2026-03-02 (UTC), default SLA targets:
//!
//! | # | priority, tier | opened | what happens |
//! |---|---|---|---|
//! | 1 | critical, business | 09:00 | ack a 09:10, asked 09:20, reply 10:20, resolved a 11:00, |
//! | | | | CSAT 5, NPS 10 |
//! | 2 | high, enterprise | 09:00 | ack b 09:02, resolved b 10:00, reopened 12:00, resolved |
//! | | | | 13:00, CSAT 2, NPS 3 |
//! | 3 | medium, standard | 08:00 | ack a 08:05, asked 08:20, reply 08:50, critical 09:00, |
//! | | | | tier 2 09:30, assigned c 09:45 |
//! | 4 | low, enterprise | 10:00 | nothing |
//! | 5 | medium, enterprise | 07:00 | ack b 07:10, refunds: 25.00 issued, 900.00 waiting, |
//! | | | | 600.00 rejected |
//! | 6 | medium, business | unknown | imported: ack 09:30, resolved 10:30, CSAT 4, NPS 8 |
//! | 7 | critical, standard | 06:00 | ack c 07:30 (late), resolved c 16:00, CSAT 4, NPS 9 |
//! | 8 | high, business | 11:00 | ack a 11:05, asked 11:30 (waiting) |
//! | 9 | critical, enterprise | 09:30 | nothing |
//! | 10 | critical, standard | 05:00 | ack c 05:30, refund of 1000.00 approved |
//! | 11 | high, business | 11:30 | nothing |
//!
//! Tenant `globex` has a policy of the default targets divided by 60 and two tickets of its own,
//! with the same customer and agent names as `acme`. Tenant `initech` has two imported tickets,
//! both rated 2 with the comment "Slow", one at a known time and one at an unknown time.

mod harness;

use std::time::Duration;

use chrono::{DateTime, Utc};
use csmp_domain::sla::SlaPolicy;
use csmp_domain::{Channel, CustomerTier, Priority, SupportTier, TenantId, Theme};
use csmp_proto::v1 as pb;
use harness::support::*;
use harness::*;
use tonic::Code;

fn opening(
    customer: &'static str,
    customer_tier: CustomerTier,
    channel: Channel,
    category: &'static str,
    product: &'static str,
    priority: Priority,
) -> Opening {
    Opening { customer, customer_tier, channel, category, product, priority }
}

fn scripted_day() -> Script {
    use Channel::*;
    use CustomerTier::*;
    use Priority::*;
    let mut s = Script::new();
    let o = opening;

    s.open("acme", 1, Some(at(9, 0)), o("cust-1", Business, Chat, "login", "app", Critical));
    s.acknowledge(1, "agent-a", at(9, 10));
    s.ask_customer(1, "agent-a", at(9, 20));
    s.customer_reply(1, at(10, 20));
    s.resolve(1, "agent-a", at(11, 0));
    s.feedback(1, 5, Some(10), at(11, 5));

    s.open("acme", 2, Some(at(9, 0)), o("cust-2", Enterprise, Email, "billing", "router", High));
    s.acknowledge(2, "agent-b", at(9, 2));
    s.resolve(2, "agent-b", at(10, 0));
    s.reopen(2, at(12, 0));
    s.resolve(2, "agent-b", at(13, 0));
    // Names response time, communication and billing; agent conduct is ticked.
    let comment = "Slow replies, and I was charged twice";
    s.feedback_with(2, (2, Some(3)), comment, &[Theme::AgentConduct], at(13, 10));

    s.open("acme", 3, Some(at(8, 0)), o("cust-1", Standard, Phone, "billing", "router", Medium));
    s.acknowledge(3, "agent-a", at(8, 5));
    s.ask_customer(3, "agent-a", at(8, 20));
    s.customer_reply(3, at(8, 50));
    s.change_priority(3, Critical, at(9, 0));
    s.escalate(3, "agent-a", SupportTier::Tier2, at(9, 30));
    s.assign(3, "agent-c", at(9, 45));

    s.open("acme", 4, Some(at(10, 0)), o("cust-3", Enterprise, Web, "shipping", "modem", Low));

    s.open("acme", 5, Some(at(7, 0)), o("cust-1", Enterprise, Chat, "login", "app", Medium));
    s.acknowledge(5, "agent-b", at(7, 10));
    s.refund(5, "r5a", 2_500, at(7, 20));
    s.refund(5, "r5b", 90_000, at(7, 21));
    s.refund(5, "r5c", 60_000, at(7, 22));
    s.reject_refund(5, "r5c", at(7, 40));

    s.open("acme", 6, None, o("cust-2", Business, Email, "billing", "router", Medium));
    s.import(6, Some(at(9, 30)), csmp_domain::Command::Acknowledge);
    let resolve = csmp_domain::Command::Resolve { resolution_summary: "fixed".into() };
    s.import(6, Some(at(10, 30)), resolve);
    let rate = csmp_domain::Command::GiveFeedback {
        csat: 4,
        nps: Some(8),
        comment: None,
        themes: Vec::new(),
    };
    s.import(6, Some(at(10, 40)), rate);

    s.open("acme", 7, Some(at(6, 0)), o("cust-3", Standard, Email, "shipping", "router", Critical));
    s.acknowledge(7, "agent-c", at(7, 30));
    s.resolve(7, "agent-c", at(16, 0));
    s.feedback_with(7, (4, Some(9)), "Quick fix, thanks", &[], at(16, 30));

    s.open("acme", 8, Some(at(11, 0)), o("cust-2", Business, Phone, "login", "app", High));
    s.acknowledge(8, "agent-a", at(11, 5));
    s.ask_customer(8, "agent-a", at(11, 30));

    s.open("acme", 9, Some(at(9, 30)), o("cust-3", Enterprise, Chat, "outage", "router", Critical));

    s.open("acme", 10, Some(at(5, 0)), o("cust-1", Standard, Web, "outage", "router", Critical));
    s.acknowledge(10, "agent-c", at(5, 30));
    s.refund(10, "r10", 100_000, at(5, 40));
    s.approve_refund(10, "r10", at(5, 50));

    s.open("acme", 11, Some(at(11, 30)), o("cust-2", Business, Email, "outage", "router", High));

    s.open("globex", 101, Some(at(9, 0)), o("cust-1", Enterprise, Chat, "login", "app", Critical));
    s.acknowledge(101, "agent-a", at(9, 1));
    s.resolve(101, "agent-a", at(9, 5));
    s.feedback(101, 1, Some(0), at(9, 6));
    s.open("globex", 102, Some(at(9, 0)), o("cust-1", Enterprise, Chat, "login", "app", Critical));

    // Initech: imported, one rating with its time known and one without (the export has none).
    for (n, rated_at) in [(201, Some(at(9, 50))), (202, None)] {
        s.open("initech", n, None, o("cust-9", Business, Web, "billing", "app", Low));
        s.import(n, Some(at(9, 0)), csmp_domain::Command::Acknowledge);
        let resolve = csmp_domain::Command::Resolve { resolution_summary: "fixed".into() };
        s.import(n, Some(at(9, 30)), resolve);
        let rate = csmp_domain::Command::GiveFeedback {
            csat: 2,
            nps: None,
            comment: Some("Slow".into()),
            themes: Vec::new(),
        };
        s.import(n, rated_at, rate);
    }
    s
}

/// The scripted day, projected, with the query clock at `now`.
async fn projected_day(label: &str, now: chrono::DateTime<chrono::Utc>) -> Harness {
    let mut h = Harness::new(label, now, Duration::from_secs(5)).await;
    let globex = TenantId::parse("globex").unwrap();
    let policy = SlaPolicy::default().scaled_down(60);
    csmp_projector::set_sla_policy(&h.pg, &globex, &policy).await.unwrap();
    let last = h.publish(&scripted_day()).await;
    h.start_all();
    h.caught_up(last).await;
    h
}

fn ids(page: &pb::TicketPage) -> Vec<String> {
    page.tickets.iter().map(|t| t.ticket_id.clone()).collect()
}

fn expected(numbers: &[u128]) -> Vec<String> {
    numbers.iter().map(|n| id(*n)).collect()
}

#[tokio::test]
async fn queue_follows_priority_customer_tier_due_time_and_id() {
    let h = projected_day("queue", at(12, 0)).await;
    let mut client = h.client.clone();
    let queue = |page_token: &str, page_size| pb::ListQueueRequest {
        tenant: "acme".into(),
        page_size,
        page_token: page_token.into(),
        ..Default::default()
    };

    // Critical: enterprise #9, then standard #3 (its next response, cycle 1 from the reply at
    // 08:50, re-targeted to the critical 1 h: due 09:50) before #10 (due 17:00); high
    // business: #11 (due 13:30) before #8 (paused: no running clock); medium #5; low #4.
    let all = client.list_queue(queue("", 0)).await.unwrap().into_inner();
    assert_eq!(ids(&all), expected(&[9, 3, 10, 11, 8, 5, 4]));
    assert_eq!(all.next_page_token, "");
    let sla_due: Vec<Option<i64>> =
        all.tickets.iter().map(|t| t.sla_due_at.as_ref().map(|d| d.seconds)).collect();
    let due = |h: u32, m: u32| Some(at(h, m).timestamp());
    let tomorrow = |h: u32, m: u32| Some(on(3, h, m).timestamp());
    assert_eq!(
        sla_due,
        vec![due(9, 45), due(9, 50), due(17, 0), due(13, 30), None, tomorrow(7, 0), due(14, 0)]
    );

    // Pages of two, chained by their tokens.
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = client.list_queue(queue(&token, 2)).await.unwrap().into_inner();
        pages.push(ids(&page));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected_pages =
        vec![expected(&[9, 3]), expected(&[10, 11]), expected(&[8, 5]), expected(&[4])];
    assert_eq!(pages, expected_pages);

    // Filters: support tier, assignee, statuses.
    let tier2 = pb::ListQueueRequest { tier: pb::SupportTier::SupportTier2 as i32, ..queue("", 0) };
    assert_eq!(ids(&client.list_queue(tier2).await.unwrap().into_inner()), expected(&[3]));
    let mine = pb::ListQueueRequest { assignee: "agent-c".into(), ..queue("", 0) };
    assert_eq!(ids(&client.list_queue(mine).await.unwrap().into_inner()), expected(&[3]));
    let resolved =
        pb::ListQueueRequest { statuses: vec![pb::TicketStatus::Resolved as i32], ..queue("", 0) };
    let resolved = client.list_queue(resolved).await.unwrap().into_inner();
    assert_eq!(ids(&resolved), expected(&[1, 7, 2, 6]));

    // Another tenant sees only its own tickets.
    let globex = pb::ListQueueRequest { tenant: "globex".into(), ..queue("", 0) };
    assert_eq!(ids(&client.list_queue(globex).await.unwrap().into_inner()), expected(&[102]));

    // Bad input names its field.
    let err = client.list_queue(queue("zz", 0)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("page_token"), "{}", err.message());
    let err = client
        .list_queue(pb::ListQueueRequest { tenant: "ACME".into(), ..queue("", 0) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("tenant"), "{}", err.message());
    h.shutdown().await;
}

#[tokio::test]
async fn ticket_detail_history_counts_and_refunds() {
    let h = projected_day("detail", at(12, 0)).await;
    let mut client = h.client.clone();
    let get = |tenant: &str, n: u128| pb::GetTicketRequest {
        tenant: tenant.into(),
        ticket_id: id(n),
        ..Default::default()
    };

    let detail = client.get_ticket(get("acme", 1)).await.unwrap().into_inner();
    let ticket = detail.ticket.unwrap();
    assert_eq!(ticket.status, pb::TicketStatus::Resolved as i32);
    assert_eq!(ticket.priority, pb::Priority::Critical as i32);
    assert_eq!(ticket.customer_tier, pb::CustomerTier::Business as i32);
    assert_eq!(ticket.opened_at, Some(ts(at(9, 0))));
    assert_eq!(ticket.first_response_at, Some(ts(at(9, 10))));
    assert_eq!(ticket.resolved_at, Some(ts(at(11, 0))));
    assert_eq!(ticket.sla_due_at, None);
    assert_eq!(ticket.version, 6);
    assert_eq!((detail.csat, detail.nps), (Some(5), Some(10)));
    let types: Vec<&str> = detail.timeline.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "ticket.opened",
            "ticket.acknowledged",
            "ticket.customer_asked",
            "ticket.customer_replied",
            "ticket.resolved",
            "feedback.given"
        ]
    );
    let ack = &detail.timeline[1];
    assert_eq!(ack.version, 2);
    assert_eq!(ack.actor.as_ref().unwrap().id, "agent-a");
    assert_eq!(ack.occurred_at, Some(ts(at(9, 10))));
    let payload: serde_json::Value = serde_json::from_str(&ack.payload_json).unwrap();
    assert_eq!(payload, serde_json::json!({"agent_id": "agent-a"}));
    assert_eq!(detail.timeline_next_after_version, 0);

    // The timeline in pages of four: versions 1-4, then 5-6 and the end.
    let page = |after: u64| pb::GetTicketRequest {
        timeline_after_version: after,
        timeline_limit: 4,
        ..get("acme", 1)
    };
    let versions = |d: &pb::TicketDetail| d.timeline.iter().map(|e| e.version).collect::<Vec<_>>();
    let first = client.get_ticket(page(0)).await.unwrap().into_inner();
    assert_eq!((versions(&first), first.timeline_next_after_version), (vec![1, 2, 3, 4], 4));
    let second = client.get_ticket(page(4)).await.unwrap().into_inner();
    assert_eq!((versions(&second), second.timeline_next_after_version), (vec![5, 6], 0));
    assert_eq!(second.ticket.unwrap().version, 6);
    let exactly_the_rest = client.get_ticket(page(2)).await.unwrap().into_inner();
    assert_eq!(
        (versions(&exactly_the_rest), exactly_the_rest.timeline_next_after_version),
        (vec![3, 4, 5, 6], 0)
    );
    let past_the_end = client.get_ticket(page(6)).await.unwrap().into_inner();
    assert_eq!((versions(&past_the_end), past_the_end.timeline_next_after_version), (vec![], 0));
    let err = client.get_ticket(page(u64::MAX)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("timeline_after_version"), "{}", err.message());

    // Refunds of #5: 25.00 issued, 900.00 waiting, 600.00 rejected (counted nowhere).
    let detail = client.get_ticket(get("acme", 5)).await.unwrap().into_inner();
    let money = |m: &[pb::Money]| -> Vec<(i64, String)> {
        m.iter().map(|m| (m.amount_minor, m.currency.clone())).collect()
    };
    assert_eq!(money(&detail.refunded), vec![(2_500, "EUR".to_owned())]);
    assert_eq!(money(&detail.awaiting_approval), vec![(90_000, "EUR".to_owned())]);
    assert_eq!(detail.timeline.len(), 6);
    let refunds = client
        .get_refund_summary(pb::RefundSummaryRequest { tenant: "acme".into(), min_position: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        refunds.currencies,
        vec![pb::RefundTotals {
            currency: "EUR".into(),
            issued_count: 2,
            issued_minor: 102_500,
            awaiting_count: 1,
            awaiting_minor: 90_000,
            rejected_count: 1,
        }]
    );

    // A tenant never reads another tenant's ticket, nor an unparsable id.
    let err = client.get_ticket(get("globex", 1)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .get_ticket(pb::GetTicketRequest { ticket_id: "x".into(), ..get("acme", 1) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("ticket_id"), "{}", err.message());

    // Customer histories: the latest opened first, unknown opening times last.
    let history = |tenant: &str, customer: &str| pb::GetCustomerHistoryRequest {
        tenant: tenant.into(),
        customer_id: customer.into(),
        ..Default::default()
    };
    let cust1 = client.get_customer_history(history("acme", "cust-1")).await.unwrap();
    assert_eq!(ids(&cust1.into_inner()), expected(&[1, 3, 5, 10]));
    let cust2 = client.get_customer_history(history("acme", "cust-2")).await.unwrap();
    assert_eq!(ids(&cust2.into_inner()), expected(&[11, 8, 2, 6]));
    // Both opened at 09:00: the later recorded first.
    let globex = client.get_customer_history(history("globex", "cust-1")).await.unwrap();
    assert_eq!(ids(&globex.into_inner()), expected(&[102, 101]));

    // Counts per status and tier.
    let counts = client
        .count_tickets(pb::CountTicketsRequest { tenant: "acme".into(), min_position: 0 })
        .await
        .unwrap()
        .into_inner();
    let rows: Vec<(i32, i32, u64)> =
        counts.counts.iter().map(|c| (c.status, c.tier, c.count)).collect();
    let tier1 = pb::SupportTier::SupportTier1 as i32;
    let tier2 = pb::SupportTier::SupportTier2 as i32;
    assert_eq!(
        rows,
        vec![
            (pb::TicketStatus::New as i32, tier1, 3),
            (pb::TicketStatus::Open as i32, tier1, 2),
            (pb::TicketStatus::Open as i32, tier2, 1),
            (pb::TicketStatus::WaitingOnCustomer as i32, tier1, 1),
            (pb::TicketStatus::Resolved as i32, tier1, 4),
        ]
    );
    assert_eq!(counts.total, 11);
    h.shutdown().await;
}

/// A clock's target, state, due time, seconds left and at-risk flag.
fn clock(c: &pb::SlaClock) -> (i32, i64, Option<i64>, i64, bool) {
    (c.state, c.target_seconds, c.due_at.as_ref().map(|d| d.seconds), c.seconds_left, c.at_risk)
}

#[tokio::test]
async fn sla_clocks_pause_reopen_retarget_and_breach_by_the_injected_clock() {
    let h = projected_day("sla", at(12, 0)).await;
    let mut client = h.client.clone();
    let status = |tenant: &str, n: u128| pb::GetSlaStatusRequest {
        tenant: tenant.into(),
        ticket_id: id(n),
        min_position: 0,
    };
    use pb::SlaState::*;
    let (running, paused, met, breached, unknown) =
        (Running as i32, Paused as i32, Met as i32, Breached as i32, Unknown as i32);
    let t = |h: u32, m: u32| Some(at(h, m).timestamp());

    // #1: first response due 09:30, met at 09:10; resolution 8 h from 09:00 plus the hour
    // waiting on the customer: due 18:00, met at 11:00 with 7 h left.
    let s = client.get_sla_status(status("acme", 1)).await.unwrap().into_inner();
    assert_eq!(s.priority, pb::Priority::Critical as i32);
    assert_eq!(clock(&s.clocks[0]), (met, 1_800, t(9, 30), 1_200, false));
    assert_eq!(s.clocks[0].target, pb::SlaTarget::FirstResponse as i32);
    assert_eq!(clock(&s.clocks[1]), (met, 28_800, t(18, 0), 25_200, false));
    assert_eq!(s.clocks[1].stopped_at, Some(ts(at(11, 0))));
    // The reply at 10:20 started next-response cycle 1 (30 min), answered only by the
    // resolution at 11:00: breached at 10:50, 10 minutes over.
    assert_eq!(clock(&s.clocks[2]), (breached, 1_800, t(10, 50), -600, false));

    // #2: resolved 10:00, reopened 12:00: the two hours resolved move the due time to 19:00.
    let s = client.get_sla_status(status("acme", 2)).await.unwrap().into_inner();
    assert_eq!(clock(&s.clocks[1]), (met, 28_800, t(19, 0), 21_600, false));

    // #3: medium → critical at 09:00: resolution re-targeted to 12 h from 08:00, plus the
    // 30 minutes paused: due 20:30. The stopped first-response clock keeps its target.
    // The reply at 08:50 started next-response cycle 1 (8 h, re-targeted to 1 h with the
    // priority): due 09:50, still running and 2 h 10 min over at 12:00.
    let s = client.get_sla_status(status("acme", 3)).await.unwrap().into_inner();
    assert_eq!(s.policy_version, Some(0));
    assert_eq!(clock(&s.clocks[0]), (met, 28_800, t(16, 0), 28_500, false));
    assert_eq!(clock(&s.clocks[1]), (running, 43_200, t(20, 30), 30_600, false));
    assert_eq!(clock(&s.clocks[2]), (breached, 3_600, t(9, 50), -7_800, false));
    let next = &s.clocks[2];
    assert_eq!(next.target, pb::SlaTarget::NextResponse as i32);
    assert_eq!((next.cycle, next.running), (1, true));
    assert_eq!((next.business_seconds_left, next.business_seconds_overdue), (0, 7_800));
    assert_eq!(next.warning_due_at, Some(ts(at(9, 35))));
    assert_eq!((next.warning_at, next.breached_at), (None, None));
    assert_eq!(s.clocks.len(), 3);

    // #8: paused since 11:30 with 15.5 h left of 16 h; a paused clock has no due time.
    let s = client.get_sla_status(status("acme", 8)).await.unwrap().into_inner();
    assert_eq!(clock(&s.clocks[1]), (paused, 57_600, None, 55_800, false));
    assert!(!s.clocks[1].running);

    // #6: imported without an opening time: no clock can be computed.
    let s = client.get_sla_status(status("acme", 6)).await.unwrap().into_inner();
    assert_eq!(clock(&s.clocks[0]), (unknown, 14_400, None, 0, false));
    assert_eq!(clock(&s.clocks[1]), (unknown, 172_800, None, 0, false));

    // #7: acknowledged 30 minutes after its due time.
    let s = client.get_sla_status(status("acme", 7)).await.unwrap().into_inner();
    assert_eq!(clock(&s.clocks[0]), (breached, 3_600, t(7, 0), -1_800, false));

    // The stored clocks of #3, to the second: the resolution's due time includes the pause.
    let rows =
        h.pg.query(
            "SELECT target, cycle, running, due_at FROM sla.clocks
             WHERE tenant = 'acme' AND ticket_id = $1 ORDER BY target, cycle",
            &[&ticket(3).0],
        )
        .await
        .unwrap();
    let stored: Vec<(String, i32, bool, Option<chrono::DateTime<chrono::Utc>>)> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    assert_eq!(
        stored,
        vec![
            ("first_response".to_owned(), 1, false, Some(at(16, 0))),
            ("next_response".to_owned(), 1, true, Some(at(9, 50))),
            ("resolution".to_owned(), 1, true, Some(at(20, 30))),
        ]
    );

    // #9 at 13:15: first response 3.5 h late; resolution due 13:30, at risk since 12:30.
    h.clock.set(at(13, 15));
    let s = client.get_sla_status(status("acme", 9)).await.unwrap().into_inner();
    assert_eq!(clock(&s.clocks[0]), (breached, 900, t(9, 45), -12_600, false));
    assert_eq!(clock(&s.clocks[1]), (running, 14_400, t(13, 30), 900, true));

    let list = |kind: pb::list_sla_tickets_request::Kind, page_size| pb::ListSlaTicketsRequest {
        tenant: "acme".into(),
        kind: kind as i32,
        page_size,
        min_position: 0,
    };
    use pb::list_sla_tickets_request::Kind;
    let listed = |page: &pb::SlaPage| -> Vec<String> {
        page.tickets.iter().map(|t| t.ticket_id.clone()).collect()
    };
    let at_risk = client.list_sla_tickets(list(Kind::AtRisk, 0)).await.unwrap().into_inner();
    assert_eq!(listed(&at_risk), expected(&[9, 11, 4]));
    assert_eq!(at_risk.total, 3);
    let late = client.list_sla_tickets(list(Kind::Breached, 0)).await.unwrap().into_inner();
    assert_eq!(listed(&late), expected(&[7, 9, 3, 1]));
    assert_eq!((late.warnings_recorded, late.breaches_recorded), (0, 0));

    // At 14:30 the first responses of #11 (13:30) and #4 (14:00) are late too.
    h.clock.set(at(14, 30));
    let late = client.list_sla_tickets(list(Kind::Breached, 2)).await.unwrap().into_inner();
    assert_eq!(listed(&late), expected(&[7, 9]));
    assert_eq!(late.total, 6);
    let late = client.list_sla_tickets(list(Kind::Breached, 0)).await.unwrap().into_inner();
    assert_eq!(listed(&late), expected(&[7, 9, 3, 1, 11, 4]));

    // Globex's own policy: critical enterprise first response in 15 s, resolution in 240 s.
    let s = client.get_sla_status(status("globex", 102)).await.unwrap().into_inner();
    assert_eq!(s.clocks[0].target_seconds, 15);
    assert_eq!(s.clocks[0].due_at.as_ref().unwrap().seconds, at(9, 0).timestamp() + 15);
    assert_eq!(s.clocks[1].target_seconds, 240);
    let err = client.get_sla_status(status("globex", 1)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client.list_sla_tickets(list(Kind::Unspecified, 0)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    h.shutdown().await;
}

#[tokio::test]
async fn feedback_figures_percentiles_and_agents() {
    let h = projected_day("feedback", at(12, 0)).await;
    let mut client = h.client.clone();
    let summary = |group_by: pb::FeedbackGrouping| pb::FeedbackSummaryRequest {
        tenant: "acme".into(),
        group_by: group_by as i32,
        ..Default::default()
    };

    // All of acme: CSAT 5, 2, 4, 4; NPS 10, 3, 8, 9; first responses (s) 120, 300, 300, 600,
    // 600, 1800, 5400; first resolutions 3600, 7200, 36000; #6 has no opening time.
    let all = client.get_feedback_summary(summary(pb::FeedbackGrouping::None)).await.unwrap();
    let all = &all.into_inner().groups;
    assert_eq!(all.len(), 1);
    let g = &all[0];
    assert_eq!((g.key.as_str(), g.tickets, g.rated, g.nps_responses), ("all", 11, 4, 4));
    assert_eq!(g.csat_average, Some(3.75));
    assert_eq!(g.csat_satisfied_share, Some(0.75));
    assert_eq!(g.nps, Some(25.0));
    assert_close(g.first_response_median_seconds, 600.0);
    assert_close(g.first_response_p90_seconds, 3_240.0);
    assert_close(g.resolution_median_seconds, 7_200.0);
    assert_close(g.resolution_p90_seconds, 30_240.0);
    assert_eq!(g.unknown_open_time, 1);
    // CSAT 5, 4, 4 positive; 2 negative.
    assert_eq!((g.positive, g.neutral, g.negative), (3, 0, 1));

    // By category.
    let by = client.get_feedback_summary(summary(pb::FeedbackGrouping::Category)).await.unwrap();
    let by = by.into_inner().groups;
    let keys: Vec<&str> = by.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["billing", "login", "outage", "shipping"]);
    let billing = &by[0];
    assert_eq!((billing.tickets, billing.rated, billing.unknown_open_time), (3, 2, 1));
    assert_eq!(billing.csat_average, Some(3.0));
    assert_eq!(billing.csat_satisfied_share, Some(0.5));
    assert_eq!(billing.nps, Some(-50.0));
    assert_close(billing.first_response_median_seconds, 210.0);
    assert_close(billing.first_response_p90_seconds, 282.0);
    assert_close(billing.resolution_median_seconds, 3_600.0);
    assert_eq!((billing.positive, billing.neutral, billing.negative), (1, 0, 1));
    let outage = &by[2];
    assert_eq!((outage.tickets, outage.rated, outage.nps_responses), (3, 0, 0));
    assert_eq!((outage.csat_average, outage.nps), (None, None));
    assert_close(outage.first_response_median_seconds, 1_800.0);
    assert_eq!(outage.resolution_median_seconds, None);

    // Resolved in [11:00, 17:00): #1 and #7.
    let window = pb::FeedbackSummaryRequest {
        from: Some(ts(at(11, 0))),
        to: Some(ts(at(17, 0))),
        ..summary(pb::FeedbackGrouping::None)
    };
    let g = &client.get_feedback_summary(window).await.unwrap().into_inner().groups[0];
    assert_eq!((g.tickets, g.rated, g.unknown_open_time), (2, 2, 0));
    assert_eq!(
        (g.csat_average, g.csat_satisfied_share, g.nps),
        (Some(4.5), Some(1.0), Some(100.0))
    );
    assert_close(g.first_response_median_seconds, 3_000.0);
    assert_close(g.first_response_p90_seconds, 4_920.0);
    assert_close(g.resolution_median_seconds, 21_600.0);
    assert_close(g.resolution_p90_seconds, 33_120.0);

    // Globex alone: one rating of 1 with NPS 0.
    let globex = pb::FeedbackSummaryRequest {
        tenant: "globex".into(),
        ..summary(pb::FeedbackGrouping::None)
    };
    let g = &client.get_feedback_summary(globex).await.unwrap().into_inner().groups[0];
    assert_eq!((g.tickets, g.rated, g.nps), (2, 1, Some(-100.0)));
    assert_close(g.first_response_median_seconds, 60.0);

    // Themes of acme's four ratings: #2 (CSAT 2) names response time ("slow"), communication
    // ("replies") and billing ("charged") and ticks agent conduct; #7 (CSAT 4) names response
    // time ("quick") and resolution quality ("fix"); #1 and #6 name none.
    let themes = client
        .get_feedback_themes(pb::FeedbackThemesRequest {
            tenant: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(themes.rated, 4);
    let figures: Vec<(&str, u64, f64, f64, f64)> = themes
        .themes
        .iter()
        .map(|t| (t.theme.as_str(), t.tickets, t.share_of_rated, t.csat_average, t.negative_share))
        .collect();
    assert_eq!(
        figures,
        [
            ("response_time", 2, 0.5, 3.0, 0.5),
            ("agent_conduct", 1, 0.25, 2.0, 1.0),
            ("billing", 1, 0.25, 2.0, 1.0),
            ("communication", 1, 0.25, 2.0, 1.0),
            ("resolution_quality", 1, 0.25, 4.0, 0.0),
        ]
    );
    // Rated in [16:00, 17:00): #7 alone. Globex's one rating names no theme.
    let late = pb::FeedbackThemesRequest {
        tenant: "acme".into(),
        from: Some(ts(at(16, 0))),
        to: Some(ts(at(17, 0))),
        min_position: 0,
    };
    let late = client.get_feedback_themes(late).await.unwrap().into_inner();
    let names: Vec<&str> = late.themes.iter().map(|t| t.theme.as_str()).collect();
    assert_eq!((late.rated, names), (1, vec!["resolution_quality", "response_time"]));
    let globex = pb::FeedbackThemesRequest { tenant: "globex".into(), ..Default::default() };
    let globex = client.get_feedback_themes(globex).await.unwrap().into_inner();
    assert_eq!((globex.rated, globex.themes.len(), globex.unknown_rating_time), (1, 0, 0));
    // Initech without bounds counts both ratings; a bound counts #201 (rated at 9:50) and
    // leaves out #202, whose rating time is unknown, saying so.
    let initech = |from: Option<DateTime<Utc>>| pb::FeedbackThemesRequest {
        tenant: "initech".into(),
        from: from.map(ts),
        ..Default::default()
    };
    let all = client.get_feedback_themes(initech(None)).await.unwrap().into_inner();
    let names: Vec<(&str, u64)> =
        all.themes.iter().map(|t| (t.theme.as_str(), t.tickets)).collect();
    assert_eq!((all.rated, all.unknown_rating_time, names), (2, 0, vec![("response_time", 2)]));
    let since = client.get_feedback_themes(initech(Some(at(9, 0)))).await.unwrap().into_inner();
    let names: Vec<(&str, u64)> =
        since.themes.iter().map(|t| (t.theme.as_str(), t.tickets)).collect();
    assert_eq!((since.rated, since.unknown_rating_time, names), (1, 1, vec![("response_time", 1)]));

    // Lowest rated: #2 (CSAT 2), then #6 (CSAT 4, NPS 8) before #7 (CSAT 4, NPS 9).
    let lowest = client
        .list_lowest_rated(pb::ListLowestRatedRequest {
            tenant: "acme".into(),
            limit: 2,
            min_position: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let rated: Vec<(String, u32, Option<u32>, String)> = lowest
        .tickets
        .iter()
        .map(|t| (t.ticket_id.clone(), t.csat, t.nps, t.agent.clone()))
        .collect();
    assert_eq!(
        rated,
        vec![(id(2), 2, Some(3), "agent-b".to_owned()), (id(6), 4, Some(8), "importer".to_owned())]
    );
    let first = &lowest.tickets[0];
    assert_eq!(first.sentiment, "negative");
    assert_eq!(first.themes, ["agent_conduct", "billing", "communication", "response_time"]);
    assert_eq!(
        (lowest.tickets[1].sentiment.as_str(), lowest.tickets[1].themes.len()),
        ("positive", 0)
    );

    // Agents: acknowledgements, first resolutions, escalations and ratings, acme's only.
    let agents = client
        .get_agent_performance(pb::AgentPerformanceRequest {
            tenant: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .agents;
    type Counts<'a> = (&'a str, u64, u64, u64, u64, Option<f64>);
    let counts: Vec<Counts> = agents
        .iter()
        .map(|a| {
            (a.agent.as_str(), a.acknowledged, a.resolved, a.escalated, a.rated, a.csat_average)
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            ("agent-a", 3, 1, 1, 1, Some(5.0)),
            ("agent-b", 2, 1, 0, 1, Some(2.0)),
            ("agent-c", 2, 1, 0, 1, Some(4.0)),
            ("importer", 1, 1, 0, 1, Some(4.0)),
        ]
    );
    let medians: Vec<(Option<f64>, Option<f64>)> = agents
        .iter()
        .map(|a| (a.first_response_median_seconds, a.resolution_median_seconds))
        .collect();
    assert_eq!(
        medians,
        vec![
            (Some(300.0), Some(7_200.0)),
            (Some(360.0), Some(3_600.0)),
            (Some(3_600.0), Some(36_000.0)),
            (None, None),
        ]
    );

    // Recurring issues over the day, none the day before: volumes of three and more rise.
    let issues = client
        .list_recurring_issues(pb::RecurringIssuesRequest {
            tenant: "acme".into(),
            window_days: 1,
            now: Some(ts(on(3, 0, 0))),
            min_position: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .issues;
    let found: Vec<(&str, &str, u64, u64, &str)> = issues
        .iter()
        .map(|i| {
            (
                i.dimension.as_str(),
                i.key.as_str(),
                i.recent_tickets,
                i.previous_tickets,
                i.signal.as_str(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("product", "router", 7, 0, "rising volume"),
            ("category", "billing", 3, 0, "rising volume"),
            ("category", "login", 3, 0, "rising volume"),
            ("category", "outage", 3, 0, "rising volume"),
            ("product", "app", 3, 0, "rising volume"),
        ]
    );
    h.shutdown().await;
}
