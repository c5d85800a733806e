//! The JSON Schemas of `docs/schemas/` against the events the code writes.
//!
//! One schema per event type and schema version, `<type>.v<version>.json`. The checks:
//! - the files are exactly every type of `EVENT_TYPES` in versions 1 to its current version;
//! - every event a full ticket life produces (every type, made by the domain's own `decide` and
//!   `envelope`, as the command service stores them) validates against its type's current schema;
//! - a `feedback.given` body as stored by the first release validates against version 1;
//! - the schemas are strict: an unknown field, a missing field or a value of the wrong kind is
//!   refused, so a field added to or dropped from the code cannot pass unnoticed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone, Utc};
use csmp_domain::command::OpenTicket;
use csmp_domain::event::{current_schema_version, EVENT_TYPES};
use csmp_domain::{
    Actor, AgentId, Channel, Command, CommandContext, Currency, CustomerId, CustomerTier, Money,
    Priority, RecordedEvent, RefundId, Role, SlaSignalKind, SlaTargetKind, SupportTier, TenantId,
    Theme, Ticket, TicketId,
};
use serde_json::{json, Value};
use uuid::Uuid;

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas")
}

fn load_schema(event_type: &str, version: u32) -> Value {
    let path = schema_dir().join(format!("{event_type}.v{version}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read the schema {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn validator(event_type: &str, version: u32) -> jsonschema::Validator {
    let schema = load_schema(event_type, version);
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("the schema of {event_type} v{version} is invalid: {e}"))
}

/// Every error the schema finds in `event`, as text; empty when it is valid.
fn errors(event_type: &str, version: u32, event: &Value) -> Vec<String> {
    validator(event_type, version)
        .iter_errors(event)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn actor(id: &str, role: Role) -> Actor {
    Actor::new(id, role).unwrap()
}

fn eur(amount_minor: i64) -> Money {
    Money { amount_minor, currency: Currency::parse("EUR").unwrap() }
}

/// A ticket's whole life in commands, touching every event type at least once.
fn life() -> Vec<(Actor, Command)> {
    let agent = actor("agent-1", Role::Tier1Agent);
    let lead = actor("lead-1", Role::Lead);
    let customer = actor("cust-1", Role::Customer);
    let timer = actor("sla-timer", Role::System);
    let refund = |id: &str| RefundId::parse(id).unwrap();
    vec![
        (
            customer.clone(),
            Command::Open(OpenTicket {
                customer_id: CustomerId::parse("cust-1").unwrap(),
                customer_tier: CustomerTier::Enterprise,
                channel: Channel::SocialMedia,
                category: "billing".into(),
                priority: Priority::Medium,
                subject: "Charged twice".into(),
                description: "Two charges for one invoice.\nPlease help.".into(),
                product: "payments".into(),
                is_complaint: true,
            }),
        ),
        (
            timer.clone(),
            Command::RecordSlaSignal {
                target: SlaTargetKind::FirstResponse,
                cycle: 1,
                kind: SlaSignalKind::Warning,
                due_at: at(60),
                policy_version: 1,
            },
        ),
        (
            timer.clone(),
            Command::RecordSlaSignal {
                target: SlaTargetKind::FirstResponse,
                cycle: 1,
                kind: SlaSignalKind::Breach,
                due_at: at(60),
                policy_version: 1,
            },
        ),
        (agent.clone(), Command::Acknowledge),
        (agent.clone(), Command::Assign { agent_id: AgentId::parse("agent-1").unwrap() }),
        (
            agent.clone(),
            Command::ChangePriority { priority: Priority::Critical, reason: "outage".into() },
        ),
        (
            agent.clone(),
            Command::Escalate { to: SupportTier::Tier2, reason: "needs billing access".into() },
        ),
        (agent.clone(), Command::AskCustomer { question: "Which invoice?".into() }),
        (customer.clone(), Command::CustomerReply { message: "March.".into() }),
        (
            agent.clone(),
            Command::Refund { refund_id: refund("r-1"), amount: eur(1_500), reason: "fee".into() },
        ),
        (
            agent.clone(),
            Command::Refund {
                refund_id: refund("r-2"),
                amount: eur(9_900),
                reason: "double charge".into(),
            },
        ),
        (lead.clone(), Command::ApproveRefund { refund_id: refund("r-2") }),
        (
            agent.clone(),
            Command::Refund { refund_id: refund("r-3"), amount: eur(20_000), reason: "x".into() },
        ),
        (lead.clone(), Command::RejectRefund { refund_id: refund("r-3"), reason: "dup".into() }),
        (agent.clone(), Command::Resolve { resolution_summary: "Refunded the fee.".into() }),
        (
            customer.clone(),
            Command::GiveFeedback {
                csat: 2,
                nps: Some(3),
                comment: Some("Slow, and the refund took days".into()),
                themes: vec![Theme::Communication],
            },
        ),
        (customer.clone(), Command::Reopen { reason: "charged again".into() }),
        (agent.clone(), Command::Resolve { resolution_summary: "Blocked the card.".into() }),
        (customer, Command::GiveFeedback { csat: 5, nps: None, comment: None, themes: Vec::new() }),
        (agent, Command::Close),
    ]
}

/// The stored bodies of `life()`, as the command service would write them.
fn stored_life() -> Vec<Value> {
    let tenant = TenantId::parse("acme").unwrap();
    let mut ticket = Ticket::new(tenant.clone(), TicketId::for_request(&tenant, "open-1"));
    let mut bodies = Vec::new();
    for (i, (actor, command)) in life().into_iter().enumerate() {
        let step = i64::try_from(i).unwrap();
        let ctx = CommandContext::new(actor, at(step * 10), &format!("req-{i}"));
        let payload = ticket
            .decide(&command, &ctx)
            .unwrap_or_else(|e| panic!("step {i} ({}) refused: {e}", command.action()));
        let envelope = ticket.envelope(payload, &ctx, Uuid::from_u128(i as u128 + 1));
        let body = csmp_eventstore::codec::encode(&envelope);
        bodies.push(serde_json::from_slice(&body).unwrap());
        let recorded = RecordedEvent { stream_seq: i as u64 + 1, envelope };
        ticket.apply(&recorded).unwrap();
    }
    bodies
}

#[test]
fn there_is_one_schema_per_event_type_and_version() {
    let mut expected = BTreeSet::new();
    for event_type in EVENT_TYPES {
        for version in 1..=current_schema_version(event_type) {
            expected.insert(format!("{event_type}.v{version}.json"));
        }
    }
    let found: BTreeSet<String> = std::fs::read_dir(schema_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(found, expected);
    assert_eq!(expected.len(), 18, "17 types, and feedback.given in two versions");
}

#[test]
fn every_event_the_code_writes_matches_its_current_schema() {
    let bodies = stored_life();
    let mut seen = BTreeSet::new();
    for body in &bodies {
        let event_type = body["event_type"].as_str().unwrap();
        let version = u32::try_from(body["schema_version"].as_u64().unwrap()).unwrap();
        assert_eq!(version, current_schema_version(event_type), "{event_type}");
        let found = errors(event_type, version, body);
        assert!(found.is_empty(), "{event_type} v{version}: {found:?}\n{body:#}");
        seen.insert(event_type.to_owned());
    }
    let all: BTreeSet<String> = EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(seen, all, "the scenario writes every event type");
}

#[test]
fn a_first_release_feedback_body_matches_version_1_only() {
    // The body of a `feedback.given` as the first release stored it: no hash chain fields,
    // schema version 1, no sentiment or themes.
    let stored = json!({
        "event_id": "0193a7c2-5d0e-7c51-9d8e-3f1b2c4d5e6f",
        "schema_version": 1,
        "tenant": "acme",
        "ticket_id": "0193a7c2-5d0e-7c51-9d8e-3f1b2c4d5e70",
        "version": 5,
        "occurred_at": "2026-03-02T10:00:00Z",
        "recorded_at": "2026-03-02T10:00:00Z",
        "actor": {"id": "cust-1", "role": "customer"},
        "correlation_id": "req-5",
        "causation_id": null,
        "request_id": "req-5",
        "event_type": "feedback.given",
        "payload": {"csat": 4, "nps": 9, "comment": "quick fix", "resolution_cycle": 1}
    });
    assert_eq!(errors("feedback.given", 1, &stored), Vec::<String>::new());
    assert!(!errors("feedback.given", 2, &stored).is_empty());
}

#[test]
fn the_schemas_refuse_unknown_missing_and_mistyped_fields() {
    for body in stored_life() {
        let event_type = body["event_type"].as_str().unwrap().to_owned();
        let version = u32::try_from(body["schema_version"].as_u64().unwrap()).unwrap();

        let mut extra = body.clone();
        extra["payload"]["unexpected"] = json!(1);
        assert!(!errors(&event_type, version, &extra).is_empty(), "{event_type}: extra field");

        let mut extra_top = body.clone();
        extra_top["unexpected"] = json!("x");
        assert!(!errors(&event_type, version, &extra_top).is_empty(), "{event_type}: top");

        let mut missing = body.clone();
        missing.as_object_mut().unwrap().remove("actor");
        assert!(!errors(&event_type, version, &missing).is_empty(), "{event_type}: no actor");

        if let Some(first) = body["payload"].as_object().unwrap().keys().next().cloned() {
            let mut without = body.clone();
            without["payload"].as_object_mut().unwrap().remove(&first);
            assert!(
                !errors(&event_type, version, &without).is_empty(),
                "{event_type}: payload without {first}"
            );
        }

        let mut bad_time = body.clone();
        bad_time["recorded_at"] = json!("yesterday");
        assert!(!errors(&event_type, version, &bad_time).is_empty(), "{event_type}: time");

        let mut bad_hash = body.clone();
        bad_hash["hash"] = json!("not-a-hash");
        assert!(!errors(&event_type, version, &bad_hash).is_empty(), "{event_type}: hash");
    }
}
