//! A ticket's SLA clocks as given (opening) / when (facts) / then (clocks at `now`) tables.
//!
//! Every ticket is measured under the test policy (`support::POLICY_JSON`) and the `ny-office`
//! calendar: New York, Monday to Friday 09:00-17:00. In June 2026 New York is on EDT, UTC-4,
//! so 09:00 local is 13:00Z and 17:00 local is 21:00Z. Mon 15 June 2026 is a Monday.

mod support;

use chrono::Duration;
use csmp_domain::event::{self, EventPayload};
use csmp_domain::{
    Actor, AgentId, Channel, CustomerId, CustomerTier, EventEnvelope, Priority, Role, SupportTier,
    TicketId,
};
use csmp_sla::{
    ClockError, ClockReport, ClockStatus, Escalation, EscalationAction, Opening, SignalKind,
    SlaClocks, SlaTarget, TicketFact,
};
use support::*;
use uuid::Uuid;

fn opening(priority: Priority, customer_tier: CustomerTier, is_complaint: bool) -> Opening {
    Opening { priority, customer_tier, is_complaint }
}

/// Opens the ticket at `opened_at` and feeds `facts`.
fn given(opening: Opening, opened_at: &str, facts: &[(&str, TicketFact)]) -> SlaClocks {
    let mut clocks =
        SlaClocks::open(ticket(), utc(opened_at), opening, &history(), &calendars()).unwrap();
    for (at, fact) in facts {
        clocks.apply(utc(at), *fact);
    }
    clocks
}

/// A row of the table: case, opening, opened at, facts, now, what the clocks report.
type Case =
    (&'static str, Opening, &'static str, Vec<(&'static str, TicketFact)>, &'static str, Vec<Then>);

/// What one clock should report.
struct Then {
    target: SlaTarget,
    cycle: u32,
    status: ClockStatus,
    within: Duration,
    warning_at: Option<&'static str>,
    due_at: Option<&'static str>,
    elapsed: Duration,
}

#[allow(clippy::too_many_arguments)]
fn then(
    target: SlaTarget,
    cycle: u32,
    status: ClockStatus,
    within: Duration,
    warning_at: Option<&'static str>,
    due_at: Option<&'static str>,
    elapsed: Duration,
) -> Then {
    Then { target, cycle, status, within, warning_at, due_at, elapsed }
}

fn check(case: &str, reports: &[ClockReport], expected: &Then) {
    let report = reports
        .iter()
        .find(|r| r.target == expected.target && r.cycle == expected.cycle)
        .unwrap_or_else(|| panic!("{case}: no {} cycle {}", expected.target, expected.cycle));
    let what = format!("{case}: {} cycle {}", expected.target, expected.cycle);

    assert_eq!(report.status, expected.status, "{what}: status");
    assert_eq!(report.within, expected.within, "{what}: within");
    assert_eq!(report.warning_at, expected.warning_at.map(utc), "{what}: warning_at");
    assert_eq!(report.due_at, expected.due_at.map(utc), "{what}: due_at");
    assert_eq!(report.elapsed, expected.elapsed, "{what}: elapsed");
    assert_eq!(report.remaining, expected.within - expected.elapsed, "{what}: remaining");
}

use ClockStatus::{Breached, Met, Paused, Running};
use Priority::{Critical, High, Low, Medium};
use SlaTarget::{ComplaintAcknowledgement, FirstResponse, NextResponse, Resolution};
use TicketFact::{
    Acknowledged, Closed, CustomerAsked, CustomerReplied, Escalated, PriorityChanged, Reopened,
    Resolved,
};

#[test]
fn clocks_follow_the_ticket() {
    let low_enterprise = opening(Low, CustomerTier::Enterprise, false);
    let low_business = opening(Low, CustomerTier::Business, false);
    let medium_business = opening(Medium, CustomerTier::Business, false);
    let medium_standard = opening(Medium, CustomerTier::Standard, false);
    let high_enterprise = opening(High, CustomerTier::Enterprise, false);
    let critical_enterprise = opening(Critical, CustomerTier::Enterprise, false);
    let medium_standard_complaint = opening(Medium, CustomerTier::Standard, true);
    let low_standard = opening(Low, CustomerTier::Standard, false);

    // (case, opening, opened at, facts, now, then)
    let cases: Vec<Case> = vec![
        (
            // Opened Fri 19 June 16:00 EDT. First response low/enterprise is 4 h: 1 h on Friday,
            // the weekend closed, 3 h on Monday: due Mon 12:00 EDT; the warning at 75 % (3 h)
            // Mon 11:00 EDT. At Mon 10:00 EDT, 2 h are used.
            // Resolution low/enterprise is 40 h: Fri 1 h + Mon-Thu 32 h + Fri 26 June 7 h, due
            // 16:00 EDT; its warning (30 h) is Thu 25 June 14:00 EDT.
            "weekend crossing",
            low_enterprise,
            "2026-06-19T20:00:00Z",
            vec![],
            "2026-06-22T14:00:00Z",
            vec![
                then(
                    FirstResponse,
                    1,
                    Running,
                    hm(4, 0),
                    Some("2026-06-22T15:00:00Z"),
                    Some("2026-06-22T16:00:00Z"),
                    hm(2, 0),
                ),
                then(
                    Resolution,
                    1,
                    Running,
                    hm(40, 0),
                    Some("2026-06-25T18:00:00Z"),
                    Some("2026-06-26T20:00:00Z"),
                    hm(2, 0),
                ),
            ],
        ),
        (
            // Acknowledged Mon 11:30 EDT, 3 h 30 in: met. The warning was reached at 11:00;
            // the target never was, so no due time.
            "first response met",
            low_enterprise,
            "2026-06-19T20:00:00Z",
            vec![("2026-06-22T15:30:00Z", Acknowledged)],
            "2026-06-22T16:00:00Z",
            vec![then(
                FirstResponse,
                1,
                Met,
                hm(4, 0),
                Some("2026-06-22T15:00:00Z"),
                None,
                hm(3, 30),
            )],
        ),
        (
            // No response at Mon 12:00 EDT, the due time itself: breached from then on.
            "first response breached at its due time",
            low_enterprise,
            "2026-06-19T20:00:00Z",
            vec![],
            "2026-06-22T16:00:00Z",
            vec![then(
                FirstResponse,
                1,
                Breached,
                hm(4, 0),
                Some("2026-06-22T15:00:00Z"),
                Some("2026-06-22T16:00:00Z"),
                hm(4, 0),
            )],
        ),
        (
            // Mon 15 June: opened 09:00 EDT, acknowledged 10:00, customer asked 11:00 (2 h of
            // resolution used), the customer replies Wed 17 June 14:00 EDT. Resolution
            // medium/business is 24 h: 22 h left from Wed 14:00 = Wed 3 h, Thu 8 h, Fri 8 h,
            // Mon 22 June 3 h: due Mon 12:00 EDT. The same as opening + 24 h + the pause's 19
            // business hours (Mon 11-17, Tue, Wed 09-14). Warning at 18 h: 16 h after the
            // reply, Fri 19 June 14:00 EDT. At Wed 15:00 EDT: 2 h + 1 h used.
            // The reply starts next response cycle 1, medium/business 4 h: Wed 14:00-17:00 and
            // Thu 09:00-10:00 EDT; warning (3 h) at Wed 17:00 EDT.
            "pause and resume",
            medium_business,
            "2026-06-15T13:00:00Z",
            vec![
                ("2026-06-15T14:00:00Z", Acknowledged),
                ("2026-06-15T15:00:00Z", CustomerAsked),
                ("2026-06-17T18:00:00Z", CustomerReplied),
            ],
            "2026-06-17T19:00:00Z",
            vec![
                then(FirstResponse, 1, Met, hm(4, 0), None, None, hm(1, 0)),
                then(
                    Resolution,
                    1,
                    Running,
                    hm(24, 0),
                    Some("2026-06-19T18:00:00Z"),
                    Some("2026-06-22T16:00:00Z"),
                    hm(3, 0),
                ),
                then(
                    NextResponse,
                    1,
                    Running,
                    hm(4, 0),
                    Some("2026-06-17T21:00:00Z"),
                    Some("2026-06-18T14:00:00Z"),
                    hm(1, 0),
                ),
            ],
        ),
        (
            // While waiting on the customer the clock holds at 2 h, with no due time.
            "paused while waiting on the customer",
            medium_business,
            "2026-06-15T13:00:00Z",
            vec![("2026-06-15T14:00:00Z", Acknowledged), ("2026-06-15T15:00:00Z", CustomerAsked)],
            "2026-06-16T16:00:00Z",
            vec![then(Resolution, 1, Paused, hm(24, 0), None, None, hm(2, 0))],
        ),
        (
            // Resolution high/enterprise is 8 h. Resolved Mon 14:00 EDT after 5 h; reopened
            // Tue 10:00 EDT with 3 h left: due Tue 13:00 EDT; warning (6 h) Tue 11:00 EDT.
            "reopen resumes with the time used",
            high_enterprise,
            "2026-06-15T13:00:00Z",
            vec![
                ("2026-06-15T13:30:00Z", Acknowledged),
                ("2026-06-15T18:00:00Z", Resolved),
                ("2026-06-16T14:00:00Z", Reopened),
            ],
            "2026-06-16T15:00:00Z",
            vec![then(
                Resolution,
                1,
                Running,
                hm(8, 0),
                Some("2026-06-16T15:00:00Z"),
                Some("2026-06-16T17:00:00Z"),
                hm(6, 0),
            )],
        ),
        (
            // Resolved again Tue 12:30 EDT: 5 h + 2 h 30, within 8 h.
            "reopened and resolved in time",
            high_enterprise,
            "2026-06-15T13:00:00Z",
            vec![
                ("2026-06-15T13:30:00Z", Acknowledged),
                ("2026-06-15T18:00:00Z", Resolved),
                ("2026-06-16T14:00:00Z", Reopened),
                ("2026-06-16T16:30:00Z", Resolved),
            ],
            "2026-06-16T20:00:00Z",
            vec![then(Resolution, 1, Met, hm(8, 0), Some("2026-06-16T15:00:00Z"), None, hm(7, 30))],
        ),
        (
            // Resolved again Tue 15:00 EDT: 2 h after the 13:00 due time.
            "reopened and resolved late",
            high_enterprise,
            "2026-06-15T13:00:00Z",
            vec![
                ("2026-06-15T13:30:00Z", Acknowledged),
                ("2026-06-15T18:00:00Z", Resolved),
                ("2026-06-16T14:00:00Z", Reopened),
                ("2026-06-16T19:00:00Z", Resolved),
            ],
            "2026-06-16T20:00:00Z",
            vec![then(
                Resolution,
                1,
                Breached,
                hm(8, 0),
                Some("2026-06-16T15:00:00Z"),
                Some("2026-06-16T17:00:00Z"),
                hm(10, 0),
            )],
        ),
        (
            // Opened Mon 09:00 EDT as low/business (first response 8 h, resolution 40 h). At
            // 10:00 EDT it becomes high: first response high/business is 2 h from the original
            // start, due 11:00 EDT, warning (1 h 30) 10:30; resolution high/business 16 h, due
            // Tue 17:00 EDT, warning (12 h) Tue 13:00 EDT.
            "priority raised mid-clock",
            low_business,
            "2026-06-15T13:00:00Z",
            vec![("2026-06-15T14:00:00Z", PriorityChanged { to: High })],
            "2026-06-15T14:00:00Z",
            vec![
                then(
                    FirstResponse,
                    1,
                    Running,
                    hm(2, 0),
                    Some("2026-06-15T14:30:00Z"),
                    Some("2026-06-15T15:00:00Z"),
                    hm(1, 0),
                ),
                then(
                    Resolution,
                    1,
                    Running,
                    hm(16, 0),
                    Some("2026-06-16T17:00:00Z"),
                    Some("2026-06-16T21:00:00Z"),
                    hm(1, 0),
                ),
            ],
        ),
        (
            // Opened Mon 09:00 EDT low/business; acknowledged 09:30; customer asked 10:00 (1 h
            // of resolution used); reply Tue 09:00; high at Tue 10:00 EDT. Resolution 16 h from
            // the original start plus the pause (Mon 10:00-17:00, 7 h): Mon 09:00 + 23 h = Wed
            // 16:00 EDT. Warning 12 h: 11 h after Tue 09:00, Wed 12:00 EDT.
            // Next response cycle 1 started at the reply as low/business (8 h) and becomes
            // high/business 2 h: due Tue 11:00 EDT, warning 10:30.
            "priority raised after a pause",
            low_business,
            "2026-06-15T13:00:00Z",
            vec![
                ("2026-06-15T13:30:00Z", Acknowledged),
                ("2026-06-15T14:00:00Z", CustomerAsked),
                ("2026-06-16T13:00:00Z", CustomerReplied),
                ("2026-06-16T14:00:00Z", PriorityChanged { to: High }),
            ],
            "2026-06-16T14:00:00Z",
            vec![
                then(
                    Resolution,
                    1,
                    Running,
                    hm(16, 0),
                    Some("2026-06-17T16:00:00Z"),
                    Some("2026-06-17T20:00:00Z"),
                    hm(2, 0),
                ),
                then(
                    NextResponse,
                    1,
                    Running,
                    hm(2, 0),
                    Some("2026-06-16T14:30:00Z"),
                    Some("2026-06-16T15:00:00Z"),
                    hm(1, 0),
                ),
            ],
        ),
        (
            // Raised to critical at Mon 13:00 EDT, 4 h in: first response critical/business is
            // 30 min, so it was due at 09:30 EDT and is breached at once; the warning (22 min
            // 30 s) was 09:22:30. Resolution critical/business 8 h: due 17:00 EDT, warning
            // 15:00.
            "priority raised past the target",
            low_business,
            "2026-06-15T13:00:00Z",
            vec![("2026-06-15T17:00:00Z", PriorityChanged { to: Critical })],
            "2026-06-15T17:00:00Z",
            vec![
                then(
                    FirstResponse,
                    1,
                    Breached,
                    hm(0, 30),
                    Some("2026-06-15T13:22:30Z"),
                    Some("2026-06-15T13:30:00Z"),
                    hm(4, 0),
                ),
                then(
                    Resolution,
                    1,
                    Running,
                    hm(8, 0),
                    Some("2026-06-15T19:00:00Z"),
                    Some("2026-06-15T21:00:00Z"),
                    hm(4, 0),
                ),
            ],
        ),
        (
            // Critical/enterprise first response runs around the clock (30 min): opened Sat
            // 03:00 EDT, due 03:30. Resolution stays on office hours: 4 h from Mon 09:00 EDT,
            // due Mon 13:00, warning (3 h) Mon 12:00.
            "24x7 target",
            critical_enterprise,
            "2026-06-20T07:00:00Z",
            vec![],
            "2026-06-20T07:40:00Z",
            vec![
                then(
                    FirstResponse,
                    1,
                    Breached,
                    hm(0, 30),
                    Some("2026-06-20T07:22:30Z"),
                    Some("2026-06-20T07:30:00Z"),
                    hm(0, 40),
                ),
                then(
                    Resolution,
                    1,
                    Running,
                    hm(4, 0),
                    Some("2026-06-22T16:00:00Z"),
                    Some("2026-06-22T17:00:00Z"),
                    Duration::zero(),
                ),
            ],
        ),
        (
            // Escalating to tier 3 at 03:35 changes nothing on the clocks.
            "escalation does not stop a clock",
            critical_enterprise,
            "2026-06-20T07:00:00Z",
            vec![("2026-06-20T07:35:00Z", Escalated { to: SupportTier::Tier3 })],
            "2026-06-20T07:40:00Z",
            vec![then(
                FirstResponse,
                1,
                Breached,
                hm(0, 30),
                Some("2026-06-20T07:22:30Z"),
                Some("2026-06-20T07:30:00Z"),
                hm(0, 40),
            )],
        ),
        (
            // A complaint opened Mon 16:00 EDT: acknowledgement 2 h = Mon 1 h + Tue 1 h, due
            // Tue 10:00 EDT, warning (1 h 30) Tue 09:30. First response medium/standard 8 h:
            // due Tue 16:00 EDT, warning (6 h) Tue 14:00.
            "complaint acknowledgement running",
            medium_standard_complaint,
            "2026-06-15T20:00:00Z",
            vec![],
            "2026-06-16T13:30:00Z",
            vec![
                then(
                    ComplaintAcknowledgement,
                    1,
                    Running,
                    hm(2, 0),
                    Some("2026-06-16T13:30:00Z"),
                    Some("2026-06-16T14:00:00Z"),
                    hm(1, 30),
                ),
                then(
                    FirstResponse,
                    1,
                    Running,
                    hm(8, 0),
                    Some("2026-06-16T18:00:00Z"),
                    Some("2026-06-16T20:00:00Z"),
                    hm(1, 30),
                ),
            ],
        ),
        (
            // Acknowledged Tue 09:45 EDT, 1 h 45 in: both met.
            "complaint acknowledged",
            medium_standard_complaint,
            "2026-06-15T20:00:00Z",
            vec![("2026-06-16T13:45:00Z", Acknowledged)],
            "2026-06-16T20:00:00Z",
            vec![
                then(
                    ComplaintAcknowledgement,
                    1,
                    Met,
                    hm(2, 0),
                    Some("2026-06-16T13:30:00Z"),
                    None,
                    hm(1, 45),
                ),
                then(FirstResponse, 1, Met, hm(8, 0), None, None, hm(1, 45)),
            ],
        ),
        (
            // Mon: opened 09:00 EDT, acknowledged 09:15, replies at 10:00 and 11:00 (one cycle,
            // from the first unanswered reply), agent asks at 12:00: cycle 1 met after 2 h.
            // Reply Tue 16:00 EDT: cycle 2, medium/standard 8 h = Tue 1 h + Wed 7 h, due Wed
            // 16:00 EDT, warning (6 h) Wed 14:00. At Wed 14:00 EDT, 6 h used.
            // Resolution 40 h: Mon 09:00-12:00 (3 h), paused, then from Tue 16:00: at Wed 14:00
            // 9 h used; warning 30 h is Mon 22 June 11:00 EDT, due 40 h Tue 23 June 13:00.
            "next response cycles",
            medium_standard,
            "2026-06-15T13:00:00Z",
            vec![
                ("2026-06-15T13:15:00Z", Acknowledged),
                ("2026-06-15T14:00:00Z", CustomerReplied),
                ("2026-06-15T15:00:00Z", CustomerReplied),
                ("2026-06-15T16:00:00Z", CustomerAsked),
                ("2026-06-16T20:00:00Z", CustomerReplied),
            ],
            "2026-06-17T18:00:00Z",
            vec![
                then(NextResponse, 1, Met, hm(8, 0), None, None, hm(2, 0)),
                then(
                    NextResponse,
                    2,
                    Running,
                    hm(8, 0),
                    Some("2026-06-17T18:00:00Z"),
                    Some("2026-06-17T20:00:00Z"),
                    hm(6, 0),
                ),
                then(
                    Resolution,
                    1,
                    Running,
                    hm(40, 0),
                    Some("2026-06-22T15:00:00Z"),
                    Some("2026-06-23T17:00:00Z"),
                    hm(9, 0),
                ),
            ],
        ),
        (
            // Opened Sat 12:00 EDT; at Sun 19:00 EDT nothing has counted. First response
            // low/standard 24 h: Mon, Tue, Wed, due Wed 24 June 17:00 EDT; warning 18 h Wed
            // 11:00.
            "outside business hours no clock runs",
            low_standard,
            "2026-06-20T16:00:00Z",
            vec![],
            "2026-06-21T23:00:00Z",
            vec![then(
                FirstResponse,
                1,
                Running,
                hm(24, 0),
                Some("2026-06-24T15:00:00Z"),
                Some("2026-06-24T21:00:00Z"),
                Duration::zero(),
            )],
        ),
        (
            // Resolved Mon 10:00 EDT (1 h), closed 11:00; a reopen after closing is ignored.
            "closing stops the clocks for good",
            high_enterprise,
            "2026-06-15T13:00:00Z",
            vec![
                ("2026-06-15T13:30:00Z", Acknowledged),
                ("2026-06-15T14:00:00Z", Resolved),
                ("2026-06-15T15:00:00Z", Closed),
                ("2026-06-15T16:00:00Z", Reopened),
            ],
            "2026-06-16T13:00:00Z",
            vec![then(Resolution, 1, Met, hm(8, 0), None, None, hm(1, 0))],
        ),
        (
            // The ask is timed 10:00 EDT but follows an acknowledgement timed 11:00: it counts
            // at 11:00, so resolution paused after 2 h.
            "a fact timed before the previous counts at the previous",
            low_business,
            "2026-06-15T13:00:00Z",
            vec![("2026-06-15T15:00:00Z", Acknowledged), ("2026-06-15T14:00:00Z", CustomerAsked)],
            "2026-06-16T13:00:00Z",
            vec![then(Resolution, 1, Paused, hm(40, 0), None, None, hm(2, 0))],
        ),
    ];

    for (case, opening, opened_at, facts, now, expected) in cases {
        let clocks = given(opening, opened_at, &facts);

        let reports = clocks.report(utc(now)).unwrap();

        for then in &expected {
            check(case, &reports, then);
        }
    }
}

#[test]
fn a_reply_before_the_first_response_starts_no_cycle() {
    let clocks = given(
        opening(Medium, CustomerTier::Standard, false),
        "2026-06-15T13:00:00Z",
        &[("2026-06-15T13:30:00Z", CustomerReplied)],
    );

    let next = clocks.clock(NextResponse, utc("2026-06-15T14:00:00Z")).unwrap();
    let targets: Vec<SlaTarget> =
        clocks.report(utc("2026-06-15T14:00:00Z")).unwrap().iter().map(|r| r.target).collect();

    assert_eq!(next, None);
    // Not a complaint: no acknowledgement clock either.
    assert_eq!(targets, [FirstResponse, Resolution]);
}

fn keys(clocks: &SlaClocks, now: &str) -> Vec<String> {
    clocks.due_events(utc(now)).unwrap().iter().map(|s| s.key()).collect()
}

#[test]
fn due_events_are_keyed_once_per_ticket_target_cycle_and_kind() {
    let key = |target: &str, cycle: u32, kind: &str| format!("sla:{target}:{cycle}:{kind}");
    // The weekend-crossing ticket: first response warning Mon 11:00 EDT, due 12:00.
    let weekend = given(opening(Low, CustomerTier::Enterprise, false), "2026-06-19T20:00:00Z", &[]);
    let answered = given(
        opening(Low, CustomerTier::Enterprise, false),
        "2026-06-19T20:00:00Z",
        &[("2026-06-22T15:30:00Z", Acknowledged)],
    );
    // The next-response ticket: cycle 2's warning is Wed 17 June 14:00 EDT.
    let cycles = given(
        opening(Medium, CustomerTier::Standard, false),
        "2026-06-15T13:00:00Z",
        &[
            ("2026-06-15T13:15:00Z", Acknowledged),
            ("2026-06-15T14:00:00Z", CustomerReplied),
            ("2026-06-15T16:00:00Z", CustomerAsked),
            ("2026-06-16T20:00:00Z", CustomerReplied),
        ],
    );

    // (case, clocks, now, expected keys)
    let cases = [
        ("before the warning", &weekend, "2026-06-22T14:59:59Z", vec![]),
        (
            "at the warning",
            &weekend,
            "2026-06-22T15:00:00Z",
            vec![key("first_response", 1, "warning")],
        ),
        (
            "at the due time",
            &weekend,
            "2026-06-22T16:00:00Z",
            vec![key("first_response", 1, "warning"), key("first_response", 1, "breach")],
        ),
        (
            "answered after the warning",
            &answered,
            "2026-06-22T16:00:00Z",
            vec![key("first_response", 1, "warning")],
        ),
        ("second cycle", &cycles, "2026-06-17T18:00:00Z", vec![key("next_response", 2, "warning")]),
    ];

    for (case, clocks, now, expected) in cases {
        assert_eq!(keys(clocks, now), expected, "{case}");
        // Asking again gives the same keys: the caller's record of emitted keys makes each
        // signal go out once.
        assert_eq!(keys(clocks, now), expected, "{case}, again");
    }
}

#[test]
fn due_events_carry_the_computed_time_and_escalation() {
    // First response raised to critical 4 h in: breached at 09:30 EDT, and the rule for
    // critical first response escalates one tier.
    let raised = given(
        opening(Low, CustomerTier::Business, false),
        "2026-06-15T13:00:00Z",
        &[("2026-06-15T17:00:00Z", PriorityChanged { to: Critical })],
    );
    // Resolution of the reopened high/enterprise ticket warns Tue 11:00 EDT; enterprise
    // resolution warnings go straight to tier 3.
    let reopened = given(
        opening(High, CustomerTier::Enterprise, false),
        "2026-06-15T13:00:00Z",
        &[
            ("2026-06-15T13:30:00Z", Acknowledged),
            ("2026-06-15T18:00:00Z", Resolved),
            ("2026-06-16T14:00:00Z", Reopened),
        ],
    );
    // Already at tier 3: the rule has nowhere to go.
    let at_top = given(
        opening(Critical, CustomerTier::Enterprise, false),
        "2026-06-20T07:00:00Z",
        &[("2026-06-20T07:35:00Z", Escalated { to: SupportTier::Tier3 })],
    );

    let raised = raised.due_events(utc("2026-06-15T17:00:00Z")).unwrap();
    let reopened = reopened.due_events(utc("2026-06-16T15:00:00Z")).unwrap();
    let at_top = at_top.due_events(utc("2026-06-20T07:40:00Z")).unwrap();

    let one_up = Escalation {
        action: EscalationAction::EscalateOneTier,
        from: SupportTier::Tier1,
        to: SupportTier::Tier2,
    };
    let summary = |signals: &[csmp_sla::SlaSignal]| {
        signals
            .iter()
            .map(|s| (s.target, s.kind, s.at, s.escalation, s.policy_version))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        summary(&raised),
        [
            (FirstResponse, SignalKind::Warning, utc("2026-06-15T13:22:30Z"), None, 1),
            (FirstResponse, SignalKind::Breach, utc("2026-06-15T13:30:00Z"), Some(one_up), 1),
        ]
    );
    assert_eq!(
        summary(&reopened),
        [(
            Resolution,
            SignalKind::Warning,
            utc("2026-06-16T15:00:00Z"),
            Some(Escalation {
                action: EscalationAction::EscalateTo(SupportTier::Tier3),
                from: SupportTier::Tier1,
                to: SupportTier::Tier3,
            }),
            1,
        )]
    );
    assert_eq!(
        summary(&at_top),
        [
            (FirstResponse, SignalKind::Warning, utc("2026-06-20T07:22:30Z"), None, 1),
            (FirstResponse, SignalKind::Breach, utc("2026-06-20T07:30:00Z"), None, 1),
        ]
    );
}

#[test]
fn next_due_tells_a_timer_when_to_wake() {
    let clocks = given(opening(Low, CustomerTier::Enterprise, false), "2026-06-19T20:00:00Z", &[]);

    // (now, expected): first response warning, its breach, then resolution's warning
    // (Thu 25 June 14:00 EDT).
    let cases = [
        ("2026-06-22T14:00:00Z", "2026-06-22T15:00:00Z"),
        ("2026-06-22T15:00:00Z", "2026-06-22T16:00:00Z"),
        ("2026-06-22T16:00:00Z", "2026-06-25T18:00:00Z"),
    ];

    for (now, expected) in cases {
        assert_eq!(clocks.next_due(utc(now)).unwrap(), Some(utc(expected)), "{now}");
    }
}

fn envelope(version: u64, at: Option<&str>, payload: EventPayload) -> EventEnvelope {
    EventEnvelope {
        event_id: Uuid::from_u128(u128::from(version)),
        schema_version: 1,
        tenant: tenant(),
        ticket_id: ticket(),
        version,
        occurred_at: at.map(utc),
        recorded_at: utc("2026-06-30T00:00:00Z"),
        actor: Actor::new("agent-1", Role::Tier1Agent).unwrap(),
        correlation_id: format!("request-{version}"),
        causation_id: None,
        request_id: format!("request-{version}"),
        payload,
        prev_hash: None,
        hash: None,
    }
}

fn opened_event(at: Option<&str>) -> EventEnvelope {
    envelope(
        1,
        at,
        EventPayload::Opened(event::Opened {
            customer_id: CustomerId::parse("cust-1").unwrap(),
            customer_tier: CustomerTier::Business,
            channel: Channel::Email,
            category: "billing".into(),
            priority: Medium,
            subject: "Invoice is wrong".into(),
            description: String::new(),
            product: "csmp".into(),
            is_complaint: false,
        }),
    )
}

#[test]
fn replaying_events_gives_the_same_clocks_as_facts() {
    let agent = || AgentId::parse("agent-1").unwrap();
    let events = [
        opened_event(Some("2026-06-15T13:00:00Z")),
        envelope(
            2,
            Some("2026-06-15T14:00:00Z"),
            EventPayload::Acknowledged(event::Acknowledged { agent_id: agent() }),
        ),
        // Assignment is not an SLA fact.
        envelope(
            3,
            Some("2026-06-15T14:30:00Z"),
            EventPayload::Assigned(event::Assigned { agent_id: agent(), previous: None }),
        ),
        envelope(
            4,
            Some("2026-06-15T15:00:00Z"),
            EventPayload::CustomerAsked(event::CustomerAsked { question: "Which invoice?".into() }),
        ),
        envelope(
            5,
            Some("2026-06-17T18:00:00Z"),
            EventPayload::CustomerReplied(event::CustomerReplied { message: "No. 42".into() }),
        ),
    ];
    let facts = given(
        opening(Medium, CustomerTier::Business, false),
        "2026-06-15T13:00:00Z",
        &[
            ("2026-06-15T14:00:00Z", Acknowledged),
            ("2026-06-15T15:00:00Z", CustomerAsked),
            ("2026-06-17T18:00:00Z", CustomerReplied),
        ],
    );

    let replayed = SlaClocks::replay(&history(), &calendars(), &events).unwrap();

    let now = utc("2026-06-17T19:00:00Z");
    assert_eq!(replayed.report(now).unwrap(), facts.report(now).unwrap());
    assert_eq!(replayed.due_events(now).unwrap(), facts.due_events(now).unwrap());
    assert_eq!(replayed.policy_version(), 1);
}

#[test]
fn replay_refuses_events_it_cannot_measure() {
    let agent = AgentId::parse("agent-1").unwrap();
    let acknowledged = envelope(
        2,
        Some("2026-06-15T14:00:00Z"),
        EventPayload::Acknowledged(event::Acknowledged { agent_id: agent.clone() }),
    );
    let untimed = envelope(
        2,
        None,
        EventPayload::Acknowledged(event::Acknowledged { agent_id: agent.clone() }),
    );
    let mut foreign = acknowledged.clone();
    foreign.ticket_id = TicketId::for_request(&tenant(), "open-2");

    // (case, events, expected error)
    let cases = [
        (
            "no opening",
            vec![acknowledged.clone()],
            ClockError::NotOpened { event_type: "ticket.acknowledged" },
        ),
        (
            "opened without a time",
            vec![opened_event(None)],
            ClockError::UnknownEventTime { version: 1 },
        ),
        (
            "event without a time",
            vec![opened_event(Some("2026-06-15T13:00:00Z")), untimed],
            ClockError::UnknownEventTime { version: 2 },
        ),
        (
            "opened twice",
            vec![
                opened_event(Some("2026-06-15T13:00:00Z")),
                opened_event(Some("2026-06-15T13:00:00Z")),
            ],
            ClockError::AlreadyOpened,
        ),
        (
            "another ticket's event",
            vec![opened_event(Some("2026-06-15T13:00:00Z")), foreign.clone()],
            ClockError::ForeignEvent {
                expected: format!("{} of tenant acme", ticket()),
                found: format!("{} of tenant acme", foreign.ticket_id),
            },
        ),
    ];

    for (case, events, expected) in cases {
        let err = SlaClocks::replay(&history(), &calendars(), &events).unwrap_err();

        assert_eq!(err, expected, "{case}");
        assert_eq!(err.kind(), csmp_sla::ErrorKind::FailedPrecondition, "{case}");
    }
}

#[test]
fn a_calendar_without_working_time_fails_the_query_not_the_fact() {
    let mut calendars = calendars();
    calendars.insert(
        "ny-office".into(),
        csmp_sla::Calendar::new(chrono_tz::Tz::America__New_York, csmp_sla::WeeklyHours::closed())
            .unwrap(),
    );
    let mut clocks = SlaClocks::open(
        ticket(),
        utc("2026-06-15T13:00:00Z"),
        opening(Low, CustomerTier::Standard, false),
        &history(),
        &calendars,
    )
    .unwrap();

    clocks.apply(utc("2026-06-15T14:00:00Z"), Acknowledged);
    let err = clocks.report(utc("2026-06-15T15:00:00Z")).unwrap_err();

    assert_eq!(
        err.to_string(),
        "failed to compute the resolution due time: calendar has no opening hours on any day of \
         the week"
    );
    assert_eq!(err.kind(), csmp_sla::ErrorKind::FailedPrecondition);
}

#[test]
fn the_longest_signal_key_fits_a_request_id_with_its_escalation_suffix() {
    // The key is a request id, and `<key>:escalate` is the request id of the escalation it causes.
    let longest = SlaTarget::ALL.iter().map(|t| t.as_str().len()).max().unwrap();
    let target = SlaTarget::ALL.iter().find(|t| t.as_str().len() == longest).unwrap();
    let key = csmp_sla::clocks::signal_key(target.as_str(), u32::MAX, "warning");
    assert_eq!(key, "sla:complaint_acknowledgement:4294967295:warning");
    let escalate = format!("{key}:escalate");
    assert!(escalate.len() <= csmp_domain::command::limits::REQUEST_ID, "{escalate}");
}
