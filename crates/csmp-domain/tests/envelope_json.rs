//! The envelope's JSON form: flat fields plus `event_type` and `payload`, then the hash chain.

use chrono::{TimeZone, Utc};
use csmp_domain::command::OpenTicket;
use csmp_domain::event::Acknowledged;
use csmp_domain::{
    Actor, AgentId, Channel, Command, CommandContext, CustomerId, CustomerTier, EventEnvelope,
    EventPayload, Priority, RecordedEvent, Role, TenantId, Ticket, TicketId,
};
use uuid::Uuid;

#[test]
fn envelope_round_trips_through_json_with_type_and_payload_fields() {
    let tenant = TenantId::parse("acme").unwrap();
    let envelope = EventEnvelope {
        event_id: Uuid::from_u128(7),
        schema_version: 1,
        tenant: tenant.clone(),
        ticket_id: TicketId::for_request(&tenant, "r-1"),
        version: 2,
        occurred_at: None,
        recorded_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        actor: Actor::new("agent-7", Role::Tier1Agent).unwrap(),
        correlation_id: "c".into(),
        causation_id: None,
        request_id: "r-2".into(),
        payload: EventPayload::Acknowledged(Acknowledged {
            agent_id: AgentId::parse("agent-7").unwrap(),
        }),
        prev_hash: Some("ab".repeat(32)),
        hash: Some("cd".repeat(32)),
    };

    let json: serde_json::Value = serde_json::to_value(&envelope).unwrap();

    assert_eq!(json["event_type"], "ticket.acknowledged");
    assert_eq!(json["payload"]["agent_id"], "agent-7");
    assert_eq!(json["tenant"], "acme");
    assert_eq!(json["occurred_at"], serde_json::Value::Null);
    assert_eq!(json["recorded_at"], "2026-01-02T03:04:05Z");
    assert_eq!(json["actor"]["role"], "tier1_agent");
    assert_eq!(json["prev_hash"], "ab".repeat(32));
    assert_eq!(json["hash"], "cd".repeat(32));
    let back: EventEnvelope = serde_json::from_value(json).unwrap();
    assert_eq!(back, envelope);
}

#[test]
fn unknown_event_type_fails_to_parse() {
    let text = r#"{"event_id":"00000000-0000-0000-0000-000000000007","schema_version":1,
        "tenant":"acme","ticket_id":"00000000-0000-0000-0000-000000000001","version":1,
        "occurred_at":null,"recorded_at":"2026-01-02T03:04:05Z",
        "actor":{"id":"a","role":"lead"},"correlation_id":"c","causation_id":null,
        "request_id":"r","event_type":"ticket.teleported","payload":{}}"#;

    let err = serde_json::from_str::<EventEnvelope>(text).unwrap_err();

    assert!(err.to_string().contains("ticket.teleported"), "{err}");
}

fn every_event() -> Vec<EventPayload> {
    use csmp_domain::event::*;
    use csmp_domain::{Channel, Currency, CustomerId, CustomerTier, Money, Priority, RefundId};
    use csmp_domain::{Sentiment, SlaTargetKind, SupportTier, Theme};

    let eur = |amount_minor| Money { amount_minor, currency: Currency::parse("EUR").unwrap() };
    let refund_id = || RefundId::parse("rf-1").unwrap();
    vec![
        EventPayload::Opened(Opened {
            customer_id: CustomerId::parse("cust-1").unwrap(),
            customer_tier: CustomerTier::Enterprise,
            channel: Channel::SocialMedia,
            category: "billing".into(),
            priority: Priority::Critical,
            subject: "Charged twice \u{1F4B8}".into(),
            description: "line one\nline \"two\"".into(),
            product: String::new(),
            is_complaint: true,
        }),
        EventPayload::Acknowledged(Acknowledged { agent_id: AgentId::parse("agent-1").unwrap() }),
        EventPayload::Assigned(Assigned {
            agent_id: AgentId::parse("agent-2").unwrap(),
            previous: Some(AgentId::parse("agent-1").unwrap()),
        }),
        EventPayload::PriorityChanged(PriorityChanged {
            from: Priority::Low,
            to: Priority::High,
            reason: String::new(),
        }),
        EventPayload::Escalated(Escalated {
            from: SupportTier::Tier1,
            to: SupportTier::Tier3,
            reason: "outage".into(),
        }),
        EventPayload::CustomerAsked(CustomerAsked { question: "Which card?".into() }),
        EventPayload::CustomerReplied(CustomerReplied { message: "Visa".into() }),
        EventPayload::Resolved(Resolved { resolution_summary: "refunded".into() }),
        EventPayload::Reopened(Reopened { reason: "again".into() }),
        EventPayload::Closed(Closed {}),
        EventPayload::RefundIssued(RefundIssued {
            refund_id: refund_id(),
            amount: eur(5_000),
            reason: "duplicate".into(),
        }),
        EventPayload::RefundRequested(RefundRequested {
            refund_id: refund_id(),
            amount: eur(i64::MAX),
            reason: "duplicate".into(),
            actor_limit_minor: 0,
        }),
        EventPayload::RefundApproved(RefundApproved {
            refund_id: refund_id(),
            amount: Money { amount_minor: 1_500, currency: Currency::parse("BHD").unwrap() },
        }),
        EventPayload::RefundRejected(RefundRejected {
            refund_id: refund_id(),
            amount: Money { amount_minor: 12_000, currency: Currency::parse("JPY").unwrap() },
            reason: "not a duplicate".into(),
        }),
        EventPayload::FeedbackGiven(FeedbackGiven {
            csat: 5,
            nps: Some(10),
            comment: Some("fast".into()),
            resolution_cycle: 2,
            sentiment: Sentiment::Positive,
            themes: vec![Theme::ResponseTime],
        }),
        EventPayload::FeedbackGiven(FeedbackGiven {
            csat: 1,
            nps: None,
            comment: None,
            resolution_cycle: 1,
            sentiment: Sentiment::Negative,
            themes: vec![],
        }),
        EventPayload::SlaWarningReached(SlaSignal {
            target: SlaTargetKind::FirstResponse,
            cycle: 1,
            due_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 19, 5).unwrap(),
            policy_version: 1,
        }),
        EventPayload::SlaBreached(SlaSignal {
            target: SlaTargetKind::NextResponse,
            cycle: 4,
            due_at: Utc.with_ymd_and_hms(2026, 1, 2, 4, 0, 0).unwrap(),
            policy_version: 2,
        }),
    ]
}

#[test]
fn every_event_type_round_trips_through_json() {
    let tenant = TenantId::parse("acme").unwrap();
    let mut seen = Vec::new();

    for (i, payload) in every_event().into_iter().enumerate() {
        let i = i as u64;
        let event_type = payload.event_type();
        let envelope = EventEnvelope {
            event_id: Uuid::from_u128(u128::from(i) + 1),
            schema_version: csmp_domain::current_schema_version(event_type),
            tenant: tenant.clone(),
            ticket_id: TicketId::for_request(&tenant, "r-1"),
            version: i + 1,
            // Importer events may not know when they happened.
            occurred_at: [Some(Utc.with_ymd_and_hms(2025, 12, 1, 8, 0, 0).unwrap()), None]
                [i as usize % 2],
            recorded_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            actor: Actor::new("agent-7", Role::Tier2Agent).unwrap(),
            correlation_id: format!("c-{i}"),
            causation_id: Some(format!("e-{i}")).filter(|_| i % 2 == 1),
            request_id: format!("r-{i}"),
            payload,
            prev_hash: Some(format!("{i:064x}")).filter(|_| i > 0),
            hash: Some(format!("{:064x}", i + 1)),
        };

        let text = serde_json::to_string(&envelope).unwrap();
        let back: EventEnvelope = serde_json::from_str(&text).unwrap();

        assert_eq!(back, envelope, "{text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["event_type"], event_type);
        seen.push(event_type);
    }

    seen.dedup();
    assert_eq!(seen, csmp_domain::event::EVENT_TYPES);
}

#[test]
fn money_travels_as_minor_units_and_an_iso_code() {
    let json = serde_json::to_value(&every_event()[10]).unwrap();

    assert_eq!(
        json["payload"]["amount"],
        serde_json::json!({"amount_minor": 5_000, "currency": "EUR"})
    );
}

#[test]
fn unknown_currency_fails_to_parse() {
    let err = serde_json::from_str::<csmp_domain::Money>(r#"{"amount_minor":1,"currency":"XYZ"}"#)
        .unwrap_err();

    assert!(err.to_string().contains("not an ISO 4217 currency code"), "{err}");
}

fn opening() -> Command {
    Command::Open(OpenTicket {
        customer_id: CustomerId::parse("cust-1").unwrap(),
        customer_tier: CustomerTier::Business,
        channel: Channel::Email,
        category: "billing".into(),
        priority: Priority::High,
        subject: "Charged twice".into(),
        description: "Two charges".into(),
        product: "payments".into(),
        is_complaint: false,
    })
}

/// The hashes below were worked out apart from this crate: the canonical JSON of each body
/// (keys sorted, no whitespace, `hash` left out) written by hand and run through
/// `printf '%s' '...' | sha256sum`. The first body is
/// `{"actor":{"id":"cust-1","role":"customer"},"causation_id":null,"correlation_id":"req-1",
/// "event_id":"00000000-0000-0000-0000-000000000001","event_type":"ticket.opened",
/// "occurred_at":"2026-03-02T09:00:00Z","payload":{"category":"billing","channel":"email",
/// "customer_id":"cust-1","customer_tier":"business","description":"Two charges",
/// "is_complaint":false,"priority":"high","product":"payments","subject":"Charged twice"},
/// "prev_hash":null,"recorded_at":"2026-03-02T09:00:00Z","request_id":"req-1",
/// "schema_version":1,"tenant":"acme","ticket_id":"00000000-0000-0000-0000-000000000002",
/// "version":1}` on one line; the second is the acknowledgement as asserted below, sorted.
#[test]
fn new_events_are_written_with_prev_hash_then_hash_after_the_payload() {
    let first_hash = "27e7395ce2d84dfdc3b3fbb8e16551824e1ef6248dc3332a26e0b1703b1b4442";
    let second_hash = "b481e6aa3e4fd737bdf5f6626c7757f3b101ee3ec9dc7adb1e31045959c696a5";
    let at = |minute| Utc.with_ymd_and_hms(2026, 3, 2, 9, minute, 0).unwrap();
    let customer = Actor::new("cust-1", Role::Customer).unwrap();
    let agent = Actor::new("agent-1", Role::Tier1Agent).unwrap();
    let mut ticket = Ticket::new(TenantId::parse("acme").unwrap(), TicketId(Uuid::from_u128(2)));
    let open_ctx = CommandContext::new(customer, at(0), "req-1");
    let opened = ticket.decide(&opening(), &open_ctx).unwrap();
    let first = ticket.envelope(opened, &open_ctx, Uuid::from_u128(1));
    ticket.apply(&RecordedEvent { stream_seq: 1, envelope: first.clone() }).unwrap();
    let ack_ctx = CommandContext::new(agent, at(5), "req-2");
    let acknowledged = ticket.decide(&Command::Acknowledge, &ack_ctx).unwrap();

    let second = ticket.envelope(acknowledged, &ack_ctx, Uuid::from_u128(3));

    assert_eq!(first.prev_hash, None);
    assert_eq!(first.hash.as_deref(), Some(first_hash));
    let text = serde_json::to_string(&second).unwrap();
    let expected = [
        r#"{"event_id":"00000000-0000-0000-0000-000000000003","schema_version":1,"#,
        r#""tenant":"acme","ticket_id":"00000000-0000-0000-0000-000000000002","version":2,"#,
        r#""occurred_at":"2026-03-02T09:05:00Z","recorded_at":"2026-03-02T09:05:00Z","#,
        r#""actor":{"id":"agent-1","role":"tier1_agent"},"correlation_id":"req-2","#,
        r#""causation_id":null,"request_id":"req-2","event_type":"ticket.acknowledged","#,
        r#""payload":{"agent_id":"agent-1"},"#,
        r#""prev_hash":"27e7395ce2d84dfdc3b3fbb8e16551824e1ef6248dc3332a26e0b1703b1b4442","#,
        r#""hash":"b481e6aa3e4fd737bdf5f6626c7757f3b101ee3ec9dc7adb1e31045959c696a5"}"#,
    ]
    .concat();
    assert_eq!(text, expected);
    assert_eq!(second.hash.as_deref(), Some(second_hash));
}

#[test]
fn the_first_event_writes_prev_hash_as_null() {
    let ticket = Ticket::new(TenantId::parse("acme").unwrap(), TicketId(Uuid::from_u128(2)));
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let ctx = CommandContext::new(Actor::new("cust-1", Role::Customer).unwrap(), now, "r");
    let opened = ticket.decide(&opening(), &ctx).unwrap();

    let json = serde_json::to_value(ticket.envelope(opened, &ctx, Uuid::from_u128(1))).unwrap();

    assert_eq!(json.get("prev_hash"), Some(&serde_json::Value::Null));
}

#[test]
fn an_event_stored_before_the_chain_decodes_without_hashes() {
    let text = r#"{"event_id":"00000000-0000-0000-0000-000000000007","schema_version":1,
        "tenant":"acme","ticket_id":"00000000-0000-0000-0000-000000000001","version":2,
        "occurred_at":null,"recorded_at":"2026-01-02T03:04:05Z",
        "actor":{"id":"a","role":"lead"},"correlation_id":"c","causation_id":null,
        "request_id":"r","event_type":"ticket.closed","payload":{}}"#;

    let envelope: EventEnvelope = serde_json::from_str(text).unwrap();

    assert_eq!((envelope.prev_hash, envelope.hash), (None, None));
}

#[test]
fn feedback_version_2_writes_sentiment_and_sorted_themes() {
    use csmp_domain::event::FeedbackGiven;
    use csmp_domain::{Sentiment, Theme};
    let payload = EventPayload::FeedbackGiven(FeedbackGiven {
        csat: 2,
        nps: Some(4),
        comment: Some("Refund took days".into()),
        resolution_cycle: 1,
        sentiment: Sentiment::Negative,
        themes: vec![Theme::Billing, Theme::ResponseTime],
    });

    let text = serde_json::to_string(&payload).unwrap();

    assert_eq!(
        text,
        r#"{"event_type":"feedback.given","payload":{"csat":2,"nps":4,"#.to_owned()
            + r#""comment":"Refund took days","resolution_cycle":1,"sentiment":"negative","#
            + r#""themes":["billing","response_time"]}}"#
    );
}
