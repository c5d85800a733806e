//! The envelope's JSON form: flat fields plus `event_type` and `payload`.

use chrono::{TimeZone, Utc};
use csmp_domain::event::{Acknowledged, SCHEMA_VERSION};
use csmp_domain::{Actor, AgentId, EventEnvelope, EventPayload, Role, TenantId, TicketId};
use uuid::Uuid;

#[test]
fn envelope_round_trips_through_json_with_type_and_payload_fields() {
    let tenant = TenantId::parse("acme").unwrap();
    let envelope = EventEnvelope {
        event_id: Uuid::from_u128(7),
        schema_version: SCHEMA_VERSION,
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
    };

    let json: serde_json::Value = serde_json::to_value(&envelope).unwrap();

    assert_eq!(json["event_type"], "ticket.acknowledged");
    assert_eq!(json["payload"]["agent_id"], "agent-7");
    assert_eq!(json["tenant"], "acme");
    assert_eq!(json["occurred_at"], serde_json::Value::Null);
    assert_eq!(json["recorded_at"], "2026-01-02T03:04:05Z");
    assert_eq!(json["actor"]["role"], "tier1_agent");
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
    use csmp_domain::{SlaTargetKind, SupportTier};

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
        }),
        EventPayload::FeedbackGiven(FeedbackGiven {
            csat: 1,
            nps: None,
            comment: None,
            resolution_cycle: 1,
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
            schema_version: SCHEMA_VERSION,
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
