//! A ticket's state as of a point in time, from a real stream.

mod support;

use chrono::{TimeZone, Utc};
use csmp_audit::TimeBasis;
use csmp_domain::{Actor, Command, Role, Ticket, TicketStatus};
use csmp_testkit::TestStream;
use serde_json::json;
use support::*;

/// Ticket 1 of acme at positions 1 to 7: opened at minute 0, acknowledged at 10, assigned to
/// agent-9 at 12, refunded 12.50 EUR at 14, escalated to tier 2 at 20, resolved at 30, rated by
/// the customer at 40.
async fn worked_ticket(stream: &TestStream) {
    let store = store(stream).await;
    let mut ticket = Ticket::new(tenant("acme"), ticket_id(1));
    let steps = [
        (open(), 0),
        (Command::Acknowledge, 10),
        (assign("agent-9"), 12),
        (refund("rf-1", 1250), 14),
        (escalate(), 20),
        (resolve(), 30),
    ];
    for (i, (command, minute)) in steps.into_iter().enumerate() {
        let sent = Sent::new(agent(), at(minute), &format!("s-{i}"));
        append(&store, &mut ticket, command, sent).await;
    }
    let customer = Actor::new("cust-1", Role::Customer).unwrap();
    let feedback = Command::GiveFeedback {
        csat: 5,
        nps: Some(9),
        comment: Some("quick fix".into()),
        themes: vec![],
    };
    append(&store, &mut ticket, feedback, Sent::new(customer, at(40), "s-7")).await;
}

#[tokio::test]
async fn the_state_between_two_events_is_the_state_after_the_earlier_one() {
    let stream = TestStream::new("audit_state_between");
    worked_ticket(&stream).await;
    let audit = audit(&stream).await;

    let state = audit
        .state_as_of(&tenant("acme"), ticket_id(1), at(15), TimeBasis::Recorded)
        .await
        .unwrap();

    assert_eq!(state.ticket.status, TicketStatus::Open);
    assert_eq!(state.ticket.version, 4);
    assert_eq!(
        state.render_text(),
        "ticket 00000000-0000-0000-0000-000000000001 of tenant acme as of 2026-03-04T05:21:07Z \
         by recorded_at: 4 of 7 events
  status      open
  priority    high
  tier        tier1
  assignee    agent-9
  refunds     rf-1 12.50 EUR issued
  refunded    12.50 EUR
  feedback    -
  version     4
  last event  position 4, version 4, refund.issued, recorded 2026-03-04T05:20:07Z
"
    );
}

#[tokio::test]
async fn an_event_counts_from_the_instant_it_was_recorded_and_the_state_renders_as_json() {
    let stream = TestStream::new("audit_state_json");
    worked_ticket(&stream).await;
    let audit = audit(&stream).await;

    let resolved = audit
        .state_as_of(&tenant("acme"), ticket_id(1), at(30), TimeBasis::Recorded)
        .await
        .unwrap();
    let rated = audit
        .state_as_of(&tenant("acme"), ticket_id(1), at(40), TimeBasis::Recorded)
        .await
        .unwrap();

    assert_eq!(resolved.ticket.status, TicketStatus::Resolved);
    assert_eq!(resolved.events_applied, 6);
    assert_eq!(
        rated.to_json(),
        json!({
            "tenant": "acme",
            "ticket_id": "00000000-0000-0000-0000-000000000001",
            "as_of": "2026-03-04T05:46:07Z",
            "by": "recorded_at",
            "events_applied": 7,
            "events_total": 7,
            "exists": true,
            "version": 7,
            "status": "resolved",
            "priority": "high",
            "tier": "tier2",
            "assignee": "agent-9",
            "acknowledged": true,
            "resolution_cycle": 1,
            "refunds": [{
                "refund_id": "rf-1",
                "amount": {"amount_minor": 1250, "currency": "EUR"},
                "status": "issued",
            }],
            "refunded": {"EUR": 1250},
            "feedback": {
                "csat": 5,
                "nps": 9,
                "comment": "quick fix",
                "resolution_cycle": 1,
                "sentiment": "positive",
                "themes": ["resolution_quality", "response_time"],
            },
            "last_event": {
                "position": 7,
                "version": 7,
                "event_type": "feedback.given",
                "occurred_at": "2026-03-04T05:46:07Z",
                "recorded_at": "2026-03-04T05:46:07Z",
            },
        })
    );
    assert!(rated.render_text().contains(
        "\n  feedback    CSAT 5/5, NPS 9, positive, themes resolution_quality, response_time, \
         for resolution 1\n"
    ));
}

#[tokio::test]
async fn by_occurred_at_imported_history_counts_when_it_happened() {
    let stream = TestStream::new("audit_state_occurred");
    let store = store(&stream).await;
    let mut ticket = Ticket::new(tenant("acme"), ticket_id(1));
    // The export has no opening time: the opening event's occurred_at is unknown.
    append(&store, &mut ticket, open(), Sent::new(importer(), at(0), "i-1")).await;
    let mut ack = Sent::new(importer(), at(1), "i-2");
    ack.occurred_at = Some(Utc.with_ymd_and_hms(2025, 6, 1, 10, 0, 0).unwrap());
    append(&store, &mut ticket, Command::Acknowledge, ack).await;
    let mut resolved = Sent::new(importer(), at(2), "i-3");
    resolved.occurred_at = Some(Utc.with_ymd_and_hms(2025, 6, 2, 10, 0, 0).unwrap());
    append(&store, &mut ticket, resolve(), resolved).await;
    let audit = audit(&stream).await;
    let noon = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
    let morning = Utc.with_ymd_and_hms(2025, 6, 1, 9, 0, 0).unwrap();

    let by_occurred =
        audit.state_as_of(&tenant("acme"), ticket_id(1), noon, TimeBasis::Occurred).await.unwrap();
    let by_recorded =
        audit.state_as_of(&tenant("acme"), ticket_id(1), noon, TimeBasis::Recorded).await.unwrap();
    let too_early = audit
        .state_as_of(&tenant("acme"), ticket_id(1), morning, TimeBasis::Occurred)
        .await
        .unwrap();

    assert_eq!(by_occurred.events_applied, 2);
    assert_eq!(by_occurred.ticket.status, TicketStatus::Open);
    assert_eq!(
        by_recorded.render_text(),
        "ticket 00000000-0000-0000-0000-000000000001 of tenant acme as of 2025-06-01T12:00:00Z \
         by recorded_at: 0 of 3 events
  not opened yet: its first event counts at 2026-03-04T05:06:07Z
"
    );
    assert_eq!(
        too_early.render_text(),
        "ticket 00000000-0000-0000-0000-000000000001 of tenant acme as of 2025-06-01T09:00:00Z \
         by occurred_at: 0 of 3 events
  not opened yet: its first event counts at 2025-06-01T10:00:00Z
"
    );
    assert_eq!(too_early.to_json()["status"], json!(null));
    assert_eq!(too_early.to_json()["exists"], json!(false));
}
