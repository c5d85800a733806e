//! A ticket's history read back from a real stream, as text and as JSON lines.

mod support;

use csmp_audit::history::{render_json_lines, render_text};
use csmp_audit::{AuditError, AuditErrorKind};
use csmp_domain::chain::event_hash;
use csmp_domain::{Command, Ticket};
use csmp_testkit::TestStream;
use serde_json::{json, Value};
use support::*;

/// Ticket 1 of acme: opened (position 1), acknowledged (3) and refunded (4) by agent-7, one
/// minute apart, with ticket 2's opening at position 2 in between. Returns the stored hashes of
/// ticket 1's events.
async fn small_ticket(stream: &TestStream) -> [String; 3] {
    let store = store(stream).await;
    let mut ticket = Ticket::new(tenant("acme"), ticket_id(1));
    let mut other = Ticket::new(tenant("acme"), ticket_id(2));
    append(&store, &mut ticket, open(), Sent::new(agent(), at(0), "h-1")).await;
    append(&store, &mut other, open(), Sent::new(agent(), at(0), "o-1")).await;
    append(&store, &mut ticket, Command::Acknowledge, Sent::new(agent(), at(1), "h-2")).await;
    let mut sent = Sent::new(agent(), at(2), "h-3");
    sent.correlation_id = Some("flow-9".into());
    sent.causation_id = Some("h-2".into());
    append(&store, &mut ticket, refund("rf-1", 1250), sent).await;

    // The hashes the history must show: as stored, and each the hash of its own body.
    let raw = raw_messages(stream).await;
    [0, 2, 3].map(|i| {
        let body = raw[i].json();
        let hash = body["hash"].as_str().expect("new events carry a hash").to_owned();
        assert_eq!(hash, event_hash(&body));
        hash
    })
}

#[tokio::test]
async fn history_text_shows_who_what_when_why_and_the_chain_of_every_event() {
    let stream = TestStream::new("audit_history_text");
    let [h1, h2, h3] = small_ticket(&stream).await;
    let audit = audit(&stream).await;

    let entries = audit.history(&tenant("acme"), ticket_id(1)).await.unwrap();
    let text = render_text(&tenant("acme"), ticket_id(1), &entries);

    let expected = format!(
        "ticket 00000000-0000-0000-0000-000000000001 of tenant acme: 3 events

position 1  version 1  ticket.opened
  who         agent-7 (tier1_agent)
  what        opened high billing ticket \"Charged twice\" for customer cust-1 (business) via email
  occurred    2026-03-04T05:06:07Z
  recorded    2026-03-04T05:06:07Z
  why         -
  correlation h-1
  causation   -
  hash        {h1}
  prev hash   -

position 3  version 2  ticket.acknowledged
  who         agent-7 (tier1_agent)
  what        first response by agent-7
  occurred    2026-03-04T05:07:07Z
  recorded    2026-03-04T05:07:07Z
  why         -
  correlation h-2
  causation   -
  hash        {h2}
  prev hash   {h1}

position 4  version 3  refund.issued
  who         agent-7 (tier1_agent)
  what        refund rf-1 of 12.50 EUR issued
  occurred    2026-03-04T05:08:07Z
  recorded    2026-03-04T05:08:07Z
  why         double charge
  correlation flow-9
  causation   h-2
  hash        {h3}
  prev hash   {h2}
"
    );
    assert_eq!(text, expected);
}

#[tokio::test]
async fn history_json_lines_are_the_decoded_envelopes_with_their_positions() {
    let stream = TestStream::new("audit_history_json");
    let [h1, h2, h3] = small_ticket(&stream).await;
    let audit = audit(&stream).await;

    let entries = audit.history(&tenant("acme"), ticket_id(1)).await.unwrap();
    let lines = render_json_lines(&entries);

    let parsed: Vec<Value> =
        lines.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let actor = json!({"id": "agent-7", "role": "tier1_agent"});
    let ticket = "00000000-0000-0000-0000-000000000001";
    assert_eq!(
        parsed,
        vec![
            json!({"position": 1, "event": {
                "event_id": "00000000-0000-0000-0000-000000010001",
                "schema_version": 1,
                "tenant": "acme",
                "ticket_id": ticket,
                "version": 1,
                "occurred_at": "2026-03-04T05:06:07Z",
                "recorded_at": "2026-03-04T05:06:07Z",
                "actor": actor,
                "correlation_id": "h-1",
                "causation_id": null,
                "request_id": "h-1",
                "event_type": "ticket.opened",
                "payload": {
                    "customer_id": "cust-1",
                    "customer_tier": "business",
                    "channel": "email",
                    "category": "billing",
                    "priority": "high",
                    "subject": "Charged twice",
                    "description": "Two charges on my card",
                    "product": "shop",
                    "is_complaint": false,
                },
                "prev_hash": null,
                "hash": h1,
            }}),
            json!({"position": 3, "event": {
                "event_id": "00000000-0000-0000-0000-000000010002",
                "schema_version": 1,
                "tenant": "acme",
                "ticket_id": ticket,
                "version": 2,
                "occurred_at": "2026-03-04T05:07:07Z",
                "recorded_at": "2026-03-04T05:07:07Z",
                "actor": actor,
                "correlation_id": "h-2",
                "causation_id": null,
                "request_id": "h-2",
                "event_type": "ticket.acknowledged",
                "payload": {"agent_id": "agent-7"},
                "prev_hash": h1,
                "hash": h2,
            }}),
            json!({"position": 4, "event": {
                "event_id": "00000000-0000-0000-0000-000000010003",
                "schema_version": 1,
                "tenant": "acme",
                "ticket_id": ticket,
                "version": 3,
                "occurred_at": "2026-03-04T05:08:07Z",
                "recorded_at": "2026-03-04T05:08:07Z",
                "actor": actor,
                "correlation_id": "flow-9",
                "causation_id": "h-2",
                "request_id": "h-3",
                "event_type": "refund.issued",
                "payload": {
                    "refund_id": "rf-1",
                    "amount": {"amount_minor": 1250, "currency": "EUR"},
                    "reason": "double charge",
                },
                "prev_hash": h2,
                "hash": h3,
            }}),
        ]
    );
    let starts: Vec<&str> = lines.lines().map(|line| &line[..15]).collect();
    assert_eq!(starts, ["{\"position\":1,\"", "{\"position\":3,\"", "{\"position\":4,\""]);
    assert!(lines.ends_with('\n'));
}

#[tokio::test]
async fn a_ticket_without_events_and_a_missing_stream_are_not_found() {
    let stream = TestStream::new("audit_history_missing");
    small_ticket(&stream).await;
    let audit = audit(&stream).await;

    let err = audit.history(&tenant("globex"), ticket_id(1)).await.unwrap_err();

    assert!(matches!(err, AuditError::TicketNotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "ticket 00000000-0000-0000-0000-000000000001 of tenant globex has no events"
    );
    let never_created = TestStream::new("audit_no_stream");
    let client = async_nats::connect(&never_created.nats_url).await.unwrap();
    let err = csmp_audit::Audit::connect(client, config(&never_created)).await.unwrap_err();
    assert_eq!(err.kind(), AuditErrorKind::NotFound);
    assert_eq!(err.to_string(), format!("stream {} does not exist", never_created.stream));
}
