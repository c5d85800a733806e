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
