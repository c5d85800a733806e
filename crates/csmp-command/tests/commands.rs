//! The command API over gRPC against a real NATS server: a ticket's life, refunds and limits,
//! malformed requests, an unreachable NATS, health and reflection.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Duration as Minutes;
use csmp_command::{CommandServiceConfig, RefundLimitChanges, TenantRules, TenantSettings};
use csmp_domain::{
    Actor, Clock, Currency, EventPayload, Role, Sentiment, TenantId, Theme, TicketId,
};
use csmp_proto::v1 as pb;
use csmp_testkit::TestStream;
use support::{agent, assign, customer, meta, open, start_time, Proxy, Server};
use tonic::Code;
use uuid::Uuid;

fn expect_result(
    result: Result<tonic::Response<pb::CommandResult>, tonic::Status>,
) -> pb::CommandResult {
    result.unwrap_or_else(|status| panic!("command failed: {status:?}")).into_inner()
}

fn expect_status(
    result: Result<tonic::Response<pb::CommandResult>, tonic::Status>,
    code: Code,
) -> String {
    match result {
        Ok(response) => panic!("expected {code:?}, got {:?}", response.into_inner()),
        Err(status) => {
            assert_eq!(status.code(), code, "{status:?}");
            status.message().to_owned()
        }
    }
}

#[tokio::test]
async fn a_ticket_lives_from_open_to_close_with_exact_versions_positions_and_events() {
    let stream = TestStream::new("cmd_life");
    let server = Server::start(support::config(&stream)).await;
    let mut client = server.client.clone();
    let tenant = TenantId::parse("acme").unwrap();
    let ticket_id = TicketId::for_request(&tenant, "open-1").to_string();
    let id = ticket_id.clone();

    let mut results = Vec::new();
    results.push(expect_result(client.open_ticket(open("open-1")).await));
    server.clock.advance(Minutes::minutes(7));
    results.push(expect_result(
        client
            .acknowledge_ticket(pb::AcknowledgeTicketRequest {
                meta: agent("ack-1"),
                ticket_id: id.clone(),
            })
            .await,
    ));
    server.clock.advance(Minutes::minutes(7));
    results.push(expect_result(client.assign_ticket(assign(&id, "agent-9", "assign-1")).await));
    server.clock.advance(Minutes::minutes(7));
    results.push(expect_result(
        client
            .escalate_ticket(pb::EscalateTicketRequest {
                meta: agent("escalate-1"),
                ticket_id: id.clone(),
                to_tier: pb::SupportTier::SupportTier2 as i32,
                reason: "needs billing access".into(),
            })
            .await,
    ));
    server.clock.advance(Minutes::minutes(7));
    results.push(expect_result(
        client
            .ask_customer(pb::AskCustomerRequest {
                meta: agent("ask-1"),
                ticket_id: id.clone(),
                question: "Which order?".into(),
            })
            .await,
    ));
    server.clock.advance(Minutes::minutes(7));
    results.push(expect_result(
        client
            .record_customer_reply(pb::RecordCustomerReplyRequest {
                meta: customer("reply-1"),
                ticket_id: id.clone(),
                message: "Order 1234".into(),
            })
            .await,
    ));
    server.clock.advance(Minutes::minutes(7));
    results.push(expect_result(
        client
            .resolve_ticket(pb::ResolveTicketRequest {
                meta: agent("resolve-1"),
                ticket_id: id.clone(),
                resolution_summary: "Second charge refunded by the bank".into(),
            })
            .await,
    ));
    server.clock.advance(Minutes::minutes(7));
    results.push(expect_result(
        client
            .give_feedback(pb::GiveFeedbackRequest {
                meta: customer("feedback-1"),
                ticket_id: id.clone(),
                csat: 5,
                nps: Some(9),
                comment: Some("quick".into()),
                themes: vec!["billing".into()],
            })
            .await,
    ));
    server.clock.advance(Minutes::minutes(7));
    results.push(expect_result(
        client
            .close_ticket(pb::CloseTicketRequest { meta: agent("close-1"), ticket_id: id.clone() })
            .await,
    ));

    let types = [
        "ticket.opened",
        "ticket.acknowledged",
        "ticket.assigned",
        "ticket.escalated",
        "ticket.customer_asked",
        "ticket.customer_replied",
        "ticket.resolved",
        "feedback.given",
        "ticket.closed",
    ];
    let request_ids = [
        "open-1",
        "ack-1",
        "assign-1",
        "escalate-1",
        "ask-1",
        "reply-1",
        "resolve-1",
        "feedback-1",
        "close-1",
    ];
    for (i, result) in results.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(result.ticket_id, ticket_id);
        assert_eq!(result.version, n);
        assert_eq!(result.stream_position, n);
        assert_eq!(result.event_types, vec![types[i].to_owned()]);
        assert_eq!(result.event_ids.len(), 1);
        assert!(!result.duplicate);
    }
    let history = server.service.store().load(&tenant, TicketId::parse(&id).unwrap()).await;
    let history = history.unwrap();
    assert_eq!(history.len(), 9);
    for (i, event) in history.iter().enumerate() {
        let envelope = &event.envelope;
        assert_eq!(event.stream_seq, i as u64 + 1);
        assert_eq!(envelope.version, i as u64 + 1);
        assert_eq!(envelope.event_type(), types[i]);
        assert_eq!(envelope.request_id, request_ids[i]);
        assert_eq!(envelope.correlation_id, request_ids[i]);
        let at = start_time() + Minutes::minutes(7 * i as i64);
        assert_eq!(envelope.occurred_at, Some(at));
        assert_eq!(envelope.recorded_at, at);
        assert_eq!(envelope.event_id.to_string(), results[i].event_ids[0]);
        let actor = if matches!(request_ids[i], "reply-1" | "feedback-1") {
            Actor::new("cust-1", Role::Customer).unwrap()
        } else {
            Actor::new("agent-7", Role::Tier1Agent).unwrap()
        };
        assert_eq!(envelope.actor, actor);
        let schema_version = if types[i] == "feedback.given" { 2 } else { 1 };
        assert_eq!(envelope.schema_version, schema_version);
        let previous = i.checked_sub(1).map(|p| history[p].envelope.hash.clone().unwrap());
        assert_eq!(envelope.prev_hash, previous, "{}", types[i]);
    }
    let EventPayload::FeedbackGiven(feedback) = &history[7].envelope.payload else {
        panic!("the eighth event is the feedback")
    };
    assert_eq!(feedback.sentiment, Sentiment::Positive);
    assert_eq!(feedback.themes, vec![Theme::Billing, Theme::ResponseTime]);
    assert_eq!(server.clock.now(), start_time() + Minutes::minutes(56));
    server.stop().await;
}

fn refund(
    meta: Option<pb::CommandMeta>,
    ticket_id: &str,
    refund_id: &str,
    amount_minor: i64,
) -> pb::RefundTicketRequest {
    pb::RefundTicketRequest {
        meta,
        ticket_id: ticket_id.to_owned(),
        refund_id: refund_id.to_owned(),
        amount: Some(pb::Money { amount_minor, currency: "EUR".into() }),
        reason: "double charge".into(),
    }
}

#[tokio::test]
async fn a_refund_above_the_tenants_limit_waits_for_a_lead() {
    let stream = TestStream::new("cmd_refund");
    let mut config = support::config(&stream);
    let eur = Currency::parse("EUR").unwrap();
    let acme_rules = TenantRules {
        refund_limits: RefundLimitChanges {
            by_role: BTreeMap::from([(Role::Tier1Agent, BTreeMap::from([(eur, 10_000)]))]),
            default_by_role: BTreeMap::new(),
        },
    };
    config.tenants = TenantSettings {
        tenants: BTreeMap::from([(TenantId::parse("acme").unwrap(), acme_rules)]),
        ..TenantSettings::default()
    };
    let server = Server::start(config).await;
    let mut client = server.client.clone();
    let acme = expect_result(client.open_ticket(open("open-1")).await).ticket_id;
    let mut globex_open = open("open-1");
    globex_open.meta = meta("globex", "agent-7", pb::Role::Tier1Agent, "open-1");
    let globex = expect_result(client.open_ticket(globex_open).await).ticket_id;
    let globex_agent = |request_id| meta("globex", "agent-7", pb::Role::Tier1Agent, request_id);

    let within =
        expect_result(client.refund_ticket(refund(agent("rf-a"), &acme, "a", 8_000)).await);
    let above =
        expect_result(client.refund_ticket(refund(agent("rf-b"), &acme, "b", 15_000)).await);
    let by_agent = client
        .approve_refund(pb::ApproveRefundRequest {
            meta: agent("approve-1"),
            ticket_id: acme.clone(),
            refund_id: "b".into(),
        })
        .await;
    let by_lead = expect_result(
        client
            .approve_refund(pb::ApproveRefundRequest {
                meta: meta("acme", "lead-1", pb::Role::Lead, "approve-2"),
                ticket_id: acme.clone(),
                refund_id: "b".into(),
            })
            .await,
    );
    let globex_refund = expect_result(
        client.refund_ticket(refund(globex_agent("rf-a"), &globex, "a", 8_000)).await,
    );

    assert_eq!(within.event_types, ["refund.issued"]);
    assert_eq!(above.event_types, ["refund.requested"]);
    assert_eq!(
        expect_status(by_agent, Code::PermissionDenied),
        "only a lead may approve a refund awaiting approval; tier1_agent may not"
    );
    assert_eq!(by_lead.event_types, ["refund.approved"]);
    assert_eq!(by_lead.version, 4);
    assert_eq!(globex_refund.event_types, ["refund.requested"]);
    assert_eq!(server.last_position().await, 6);
}

#[tokio::test]
async fn malformed_requests_are_refused_naming_the_field_and_record_nothing() {
    let stream = TestStream::new("cmd_invalid");
    let server = Server::start(support::config(&stream)).await;
    let mut client = server.client.clone();
    let id = expect_result(client.open_ticket(open("open-1")).await).ticket_id;
    let before = server.last_position().await;

    let mut no_tenant = open("open-2");
    no_tenant.meta = meta("", "agent-7", pb::Role::Tier1Agent, "open-2");
    let mut bad_tenant = open("open-3");
    bad_tenant.meta = meta("Acme Corp", "agent-7", pb::Role::Tier1Agent, "open-3");
    let mut unspecified_tier = open("open-4");
    unspecified_tier.customer_tier = pb::CustomerTier::Unspecified as i32;
    let mut long_subject = open("open-5");
    long_subject.subject = "x".repeat(201);
    let mut historical = open("open-6");
    if let Some(meta) = historical.meta.as_mut() {
        meta.occurred_at = Some(prost_types_timestamp(1_700_000_000));
    }
    let csat_nine = pb::GiveFeedbackRequest {
        meta: customer("feedback-1"),
        ticket_id: id.clone(),
        csat: 9,
        nps: None,
        comment: None,
        themes: vec![],
    };
    let unknown_theme = pb::GiveFeedbackRequest {
        csat: 4,
        themes: vec!["billing".into(), "speed".into()],
        ..csat_nine.clone()
    };
    let mut unknown_currency = refund(agent("rf-1"), &id, "a", 500);
    unknown_currency.amount = Some(pb::Money { amount_minor: 500, currency: "EUX".into() });

    let cases = vec![
        (client.open_ticket(no_tenant).await, "invalid tenant: must not be empty"),
        (
            client.open_ticket(bad_tenant).await,
            "invalid tenant: \"Acme Corp\" must be lowercase letters, digits, '-' or '_'",
        ),
        (client.open_ticket(unspecified_tier).await, "invalid customer_tier: must be set"),
        (
            client.open_ticket(long_subject).await,
            "invalid subject: 201 characters long, the limit is 200",
        ),
        (
            client.open_ticket(historical).await,
            "invalid occurred_at: only the importer may give a historical time",
        ),
        (client.give_feedback(csat_nine).await, "invalid csat: 9 is not within 1 to 5"),
        (
            client.give_feedback(unknown_theme).await,
            "invalid themes: \"speed\" is not one of account_access, agent_conduct, billing, \
             communication, product_quality, resolution_quality, response_time",
        ),
        (
            client.refund_ticket(refund(agent("rf-2"), &id, "a", -500)).await,
            "invalid amount.amount_minor: -500 is not a positive amount",
        ),
        (
            client.refund_ticket(unknown_currency).await,
            "invalid amount.currency: \"EUX\" is not an ISO 4217 currency code",
        ),
        (
            client.assign_ticket(assign("ticket-7", "agent-9", "assign-1")).await,
            "invalid ticket_id: \"ticket-7\" is not a UUID: invalid character: found `t` at 0",
        ),
        (
            client
                .change_priority(pb::ChangePriorityRequest {
                    meta: agent("prio-1"),
                    ticket_id: id.clone(),
                    priority: pb::Priority::Unspecified as i32,
                    reason: String::new(),
                })
                .await,
            "invalid priority: must be set",
        ),
    ];

    for (result, message) in cases {
        assert_eq!(expect_status(result, Code::InvalidArgument), message);
    }
    assert_eq!(server.last_position().await, before);
}

fn prost_types_timestamp(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

#[tokio::test]
async fn commands_the_ticket_does_not_allow_get_their_own_codes() {
    let stream = TestStream::new("cmd_codes");
    let server = Server::start(support::config(&stream)).await;
    let mut client = server.client.clone();
    let id = expect_result(client.open_ticket(open("open-1")).await).ticket_id;
    let unknown = Uuid::from_u128(99).to_string();
    let mut other_tenant = assign(&id, "agent-9", "assign-9");
    other_tenant.meta = meta("globex", "agent-7", pb::Role::Tier1Agent, "assign-9");

    let close = client
        .close_ticket(pb::CloseTicketRequest { meta: agent("close-1"), ticket_id: id.clone() })
        .await;
    let missing = client.assign_ticket(assign(&unknown, "agent-9", "assign-1")).await;
    let foreign = client.assign_ticket(other_tenant).await;
    expect_result(client.assign_ticket(assign(&id, "agent-9", "assign-2")).await);
    let same_agent = client.assign_ticket(assign(&id, "agent-9", "assign-3")).await;
    let reused = client
        .acknowledge_ticket(pb::AcknowledgeTicketRequest {
            meta: agent("assign-2"),
            ticket_id: id.clone(),
        })
        .await;
    let reused_for_another_agent = client.assign_ticket(assign(&id, "agent-4", "assign-2")).await;
    let mut by_another_actor = assign(&id, "agent-9", "assign-2");
    by_another_actor.meta = meta("acme", "mallory", pb::Role::Lead, "assign-2");
    let reused_by_another_actor = client.assign_ticket(by_another_actor).await;

    assert_eq!(expect_status(close, Code::FailedPrecondition), "cannot close a ticket that is new");
    assert_eq!(expect_status(missing, Code::NotFound), format!("ticket {unknown} not found"));
    assert_eq!(expect_status(foreign, Code::NotFound), format!("ticket {id} not found"));
    assert_eq!(
        expect_status(same_agent, Code::FailedPrecondition),
        "assignee is already agent-9 (ticket is new)"
    );
    assert_eq!(
        expect_status(reused, Code::InvalidArgument),
        "invalid request_id: already used on this ticket for a command that recorded \
         ticket.assigned"
    );
    let other_values = "invalid request_id: already used on this ticket for a command that \
         recorded ticket.assigned with other values or by another actor; a retry must repeat the \
         first request exactly, a new request needs a new request_id";
    assert_eq!(expect_status(reused_for_another_agent, Code::InvalidArgument), other_values);
    assert_eq!(expect_status(reused_by_another_actor, Code::InvalidArgument), other_values);
    assert_eq!(server.last_position().await, 2);
}

#[tokio::test]
async fn an_unreachable_nats_answers_unavailable() {
    let stream = TestStream::new("cmd_unavailable");
    let proxy = Proxy::start().await;
    let client = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_millis(500)))
        .connect(format!("nats://{}", proxy.addr))
        .await
        .unwrap();
    let server = Server::start_on(client, support::config(&stream)).await;
    let mut grpc = server.client.clone();
    let id = expect_result(grpc.open_ticket(open("open-1")).await).ticket_id;

    proxy.cut().await;
    let cached = grpc.assign_ticket(assign(&id, "agent-9", "assign-1")).await;
    let uncached = grpc.assign_ticket(assign(&Uuid::from_u128(5).to_string(), "a-1", "r-2")).await;
    let opened = grpc.open_ticket(open("open-2")).await;

    for result in [cached, uncached, opened] {
        let message = expect_status(result, Code::Unavailable);
        assert!(message.starts_with("event store unavailable: "), "{message}");
    }
    let observer = Server::start(support::config(&stream)).await;
    assert_eq!(observer.last_position().await, 1);
}

#[tokio::test]
async fn health_reports_serving_and_reflection_lists_the_service() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let stream = TestStream::new("cmd_health");
    let server = Server::start(support::config(&stream)).await;
    let mut health = HealthClient::new(server.channel().await);
    let mut reflection = ServerReflectionClient::new(server.channel().await);

    let service = health
        .check(HealthCheckRequest { service: "csmp.v1.TicketCommands".into() })
        .await
        .unwrap()
        .into_inner();
    let overall = health.check(HealthCheckRequest { service: String::new() }).await.unwrap();
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();

    assert_eq!(service.status(), ServingStatus::Serving);
    assert_eq!(overall.into_inner().status(), ServingStatus::Serving);
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer: {answer:?}");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        ["csmp.v1.TicketCommands", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]
    );
}

#[test]
fn the_default_config_retries_five_times() {
    let config = CommandServiceConfig::default();

    assert_eq!(config.max_retries, 5);
    assert_eq!(config.cache_capacity, 10_000);
    assert_eq!(config.store.stream, "CSMP_EVENTS");
}

#[tokio::test]
async fn another_customer_cannot_read_a_result_through_a_reused_request_id() {
    let stream = TestStream::new("cmd_foreign_customer");
    let server = Server::start(support::config(&stream)).await;
    let mut client = server.client.clone();
    let id = expect_result(client.open_ticket(open("open-1")).await).ticket_id;
    let reply = |who: &str| pb::RecordCustomerReplyRequest {
        meta: meta("acme", who, pb::Role::Customer, "reply-1"),
        ticket_id: id.clone(),
        message: "Order 42".into(),
    };
    expect_result(client.record_customer_reply(reply("cust-1")).await);
    let before = server.last_position().await;

    let foreign = client.record_customer_reply(reply("cust-2")).await;

    assert_eq!(expect_status(foreign, Code::NotFound), format!("ticket {id} not found"));
    assert_eq!(server.last_position().await, before);
}
