//! From gRPC requests to domain commands: every field checked, every error naming its field.
//!
//! Only the shape of a request is checked here (set, parseable, a known enum value); the
//! ticket's rules are the domain's. Nothing here reads the clock or the store.

use chrono::{DateTime, Utc};
use csmp_domain::command::{limits, OpenTicket};
use csmp_domain::ids::check_opaque_id;
use csmp_domain::{
    Actor, AgentId, Channel, Command, Currency, CustomerId, CustomerTier, DomainError, Money,
    Priority, RefundId, Role, SlaSignalKind, SlaTargetKind, SupportTier, TenantId, Theme, TicketId,
};
use csmp_proto::v1 as pb;
use tonic::Status;

/// A request in domain terms, before the ticket is read.
#[derive(Debug)]
pub(crate) struct CommandRequest {
    pub meta: Meta,
    pub target: Target,
    pub command: Command,
}

/// Which ticket a command is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    Ticket(TicketId),
    /// An open without a ticket id: the id derives from tenant and request id.
    ForRequest,
}

/// The checked [`pb::CommandMeta`].
#[derive(Debug)]
pub(crate) struct Meta {
    pub tenant: TenantId,
    pub actor: Actor,
    pub request_id: String,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
}

/// A request of the command API.
pub(crate) trait IntoCommand {
    fn into_command(self) -> Result<CommandRequest, Status>;
}

/// `INVALID_ARGUMENT` for `field`.
pub(crate) fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("invalid {field}: {reason}"))
}

/// `INVALID_ARGUMENT` for a domain error about the request's input, in the same form as
/// [`invalid`]. `field` replaces the domain's name for the field where the API nests it.
pub(crate) fn invalid_input(err: &DomainError, field: Option<&str>) -> Status {
    let field = field.or(err.field());
    match (err, field) {
        (DomainError::InvalidField { reason, .. }, Some(field)) => invalid(field, reason),
        (DomainError::TooLong { len, max, .. }, Some(field)) => {
            invalid(field, format!("{len} characters long, the limit is {max}"))
        }
        (DomainError::RequestIdReused(event_type), _) => invalid(
            "request_id",
            format!("already used on this ticket for a command that recorded {event_type}"),
        ),
        (DomainError::RequestIdReusedWithOtherValues(event_type), _) => invalid(
            "request_id",
            format!(
                "already used on this ticket for a command that recorded {event_type} with other \
                 values or by another actor; a retry must repeat the first request exactly, a \
                 new request needs a new request_id"
            ),
        ),
        _ => Status::invalid_argument(err.to_string()),
    }
}

fn unset(field: &str) -> Status {
    invalid(field, "must be set")
}

/// The meta is checked before the command's own fields, so that a request without a tenant is
/// refused for that first.
fn check_meta(meta: Option<pb::CommandMeta>) -> Result<Meta, Status> {
    let meta = meta.ok_or_else(|| unset("meta"))?;
    let tenant = TenantId::parse(&meta.tenant).map_err(|e| invalid_input(&e, None))?;
    let actor = meta.actor.ok_or_else(|| unset("actor"))?;
    let role = role(actor.role)?;
    let actor = Actor::new(&actor.id, role).map_err(|e| invalid_input(&e, None))?;
    check_request_id(&meta.request_id)?;
    for (field, id) in
        [("correlation_id", &meta.correlation_id), ("causation_id", &meta.causation_id)]
    {
        if let Some(id) = id {
            check_opaque_id(field, id).map_err(|e| invalid_input(&e, None))?;
        }
    }
    let occurred_at = meta.occurred_at.map(|ts| timestamp("occurred_at", ts)).transpose()?;
    Ok(Meta {
        tenant,
        actor,
        request_id: meta.request_id,
        correlation_id: meta.correlation_id,
        causation_id: meta.causation_id,
        occurred_at,
    })
}

/// The request id becomes part of a NATS header, which cannot carry control characters.
fn check_request_id(request_id: &str) -> Result<(), Status> {
    if request_id.trim().is_empty() {
        return Err(invalid("request_id", "must not be empty"));
    }
    let len = request_id.chars().count();
    if len > limits::REQUEST_ID {
        return Err(invalid(
            "request_id",
            format!("{len} characters long, the limit is {}", limits::REQUEST_ID),
        ));
    }
    if request_id.chars().any(char::is_control) {
        return Err(invalid("request_id", "must not contain control characters"));
    }
    Ok(())
}

/// A protobuf time; its nanos must lie in 0..=999,999,999, as protobuf defines them (chrono would
/// read larger ones at second 59 as a leap second).
fn timestamp(field: &str, ts: prost_types::Timestamp) -> Result<DateTime<Utc>, Status> {
    let nanos =
        u32::try_from(ts.nanos).ok().filter(|nanos| *nanos < 1_000_000_000).ok_or_else(|| {
            invalid(field, format!("nanos {} is not within 0 to 999,999,999", ts.nanos))
        })?;
    DateTime::from_timestamp(ts.seconds, nanos).ok_or_else(|| {
        invalid(field, format!("seconds {} is beyond the times this service handles", ts.seconds))
    })
}

fn ticket_id(raw: &str) -> Result<TicketId, Status> {
    if raw.is_empty() {
        return Err(unset("ticket_id"));
    }
    TicketId::parse(raw).map_err(|e| invalid_input(&e, None))
}

fn unknown(field: &str, raw: i32) -> Status {
    invalid(field, format!("{raw} is not a known value"))
}

fn role(raw: i32) -> Result<Role, Status> {
    const FIELD: &str = "actor.role";
    match pb::Role::try_from(raw) {
        Ok(pb::Role::Unspecified) => Err(unset(FIELD)),
        Ok(pb::Role::Tier1Agent) => Ok(Role::Tier1Agent),
        Ok(pb::Role::Tier2Agent) => Ok(Role::Tier2Agent),
        Ok(pb::Role::Tier3Agent) => Ok(Role::Tier3Agent),
        Ok(pb::Role::Lead) => Ok(Role::Lead),
        Ok(pb::Role::Customer) => Ok(Role::Customer),
        Ok(pb::Role::System) => Ok(Role::System),
        Ok(pb::Role::Importer) => Ok(Role::Importer),
        Err(_) => Err(unknown(FIELD, raw)),
    }
}

fn customer_tier(raw: i32) -> Result<CustomerTier, Status> {
    const FIELD: &str = "customer_tier";
    match pb::CustomerTier::try_from(raw) {
        Ok(pb::CustomerTier::Unspecified) => Err(unset(FIELD)),
        Ok(pb::CustomerTier::Enterprise) => Ok(CustomerTier::Enterprise),
        Ok(pb::CustomerTier::Business) => Ok(CustomerTier::Business),
        Ok(pb::CustomerTier::Standard) => Ok(CustomerTier::Standard),
        Err(_) => Err(unknown(FIELD, raw)),
    }
}

fn channel(raw: i32) -> Result<Channel, Status> {
    const FIELD: &str = "channel";
    match pb::Channel::try_from(raw) {
        Ok(pb::Channel::Unspecified) => Err(unset(FIELD)),
        Ok(pb::Channel::Email) => Ok(Channel::Email),
        Ok(pb::Channel::Phone) => Ok(Channel::Phone),
        Ok(pb::Channel::Chat) => Ok(Channel::Chat),
        Ok(pb::Channel::SocialMedia) => Ok(Channel::SocialMedia),
        Ok(pb::Channel::Web) => Ok(Channel::Web),
        Err(_) => Err(unknown(FIELD, raw)),
    }
}

fn priority(raw: i32) -> Result<Priority, Status> {
    const FIELD: &str = "priority";
    match pb::Priority::try_from(raw) {
        Ok(pb::Priority::Unspecified) => Err(unset(FIELD)),
        Ok(pb::Priority::Low) => Ok(Priority::Low),
        Ok(pb::Priority::Medium) => Ok(Priority::Medium),
        Ok(pb::Priority::High) => Ok(Priority::High),
        Ok(pb::Priority::Critical) => Ok(Priority::Critical),
        Err(_) => Err(unknown(FIELD, raw)),
    }
}

fn support_tier(raw: i32) -> Result<SupportTier, Status> {
    const FIELD: &str = "to_tier";
    match pb::SupportTier::try_from(raw) {
        Ok(pb::SupportTier::Unspecified) => Err(unset(FIELD)),
        Ok(pb::SupportTier::SupportTier1) => Ok(SupportTier::Tier1),
        Ok(pb::SupportTier::SupportTier2) => Ok(SupportTier::Tier2),
        Ok(pb::SupportTier::SupportTier3) => Ok(SupportTier::Tier3),
        Err(_) => Err(unknown(FIELD, raw)),
    }
}

fn agent_id(raw: &str) -> Result<AgentId, Status> {
    AgentId::parse(raw).map_err(|e| invalid_input(&e, None))
}

fn refund_id(raw: &str) -> Result<RefundId, Status> {
    RefundId::parse(raw).map_err(|e| invalid_input(&e, None))
}

fn money(amount: Option<pb::Money>) -> Result<Money, Status> {
    let amount = amount.ok_or_else(|| unset("amount"))?;
    let currency = Currency::parse(&amount.currency)
        .map_err(|e| invalid_input(&e, Some("amount.currency")))?;
    Money::positive(amount.amount_minor, currency)
        .map_err(|e| invalid_input(&e, Some("amount.amount_minor")))
}

/// A score in 0..=255; the domain checks the range it accepts.
fn score(field: &str, raw: u32) -> Result<u8, Status> {
    u8::try_from(raw).map_err(|_| invalid(field, format!("{raw} is out of range")))
}

fn existing(meta: Option<pb::CommandMeta>, ticket: &str) -> Result<(Meta, Target), Status> {
    let meta = check_meta(meta)?;
    Ok((meta, Target::Ticket(ticket_id(ticket)?)))
}

fn request(meta: Meta, target: Target, command: Command) -> Result<CommandRequest, Status> {
    Ok(CommandRequest { meta, target, command })
}

impl IntoCommand for pb::OpenTicketRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let meta = check_meta(self.meta)?;
        let target = match self.ticket_id.as_str() {
            "" => Target::ForRequest,
            raw => Target::Ticket(ticket_id(raw)?),
        };
        let open = OpenTicket {
            customer_id: CustomerId::parse(&self.customer_id)
                .map_err(|e| invalid_input(&e, None))?,
            customer_tier: customer_tier(self.customer_tier)?,
            channel: channel(self.channel)?,
            category: self.category,
            priority: priority(self.priority)?,
            subject: self.subject,
            description: self.description,
            product: self.product,
            is_complaint: self.is_complaint,
        };
        request(meta, target, Command::Open(open))
    }
}

impl IntoCommand for pb::AcknowledgeTicketRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let (meta, target) = existing(self.meta, &self.ticket_id)?;
        request(meta, target, Command::Acknowledge)
    }
}

impl IntoCommand for pb::AssignTicketRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let (meta, target) = existing(self.meta, &self.ticket_id)?;
        request(meta, target, Command::Assign { agent_id: agent_id(&self.agent_id)? })
    }
}

impl IntoCommand for pb::ChangePriorityRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let (meta, target) = existing(self.meta, &self.ticket_id)?;
        let command =
            Command::ChangePriority { priority: priority(self.priority)?, reason: self.reason };
        request(meta, target, command)
    }
}

impl IntoCommand for pb::EscalateTicketRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let (meta, target) = existing(self.meta, &self.ticket_id)?;
        let command = Command::Escalate { to: support_tier(self.to_tier)?, reason: self.reason };
        request(meta, target, command)
    }
}

impl IntoCommand for pb::AskCustomerRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let (meta, target) = existing(self.meta, &self.ticket_id)?;
        request(meta, target, Command::AskCustomer { question: self.question })
    }
}

impl IntoCommand for pb::RecordCustomerReplyRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let (meta, target) = existing(self.meta, &self.ticket_id)?;
        request(meta, target, Command::CustomerReply { message: self.message })
    }
}

impl IntoCommand for pb::ResolveTicketRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let (meta, target) = existing(self.meta, &self.ticket_id)?;
        let command = Command::Resolve { resolution_summary: self.resolution_summary };
        request(meta, target, command)
    }
}

impl IntoCommand for pb::ReopenTicketRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let (meta, target) = existing(self.meta, &self.ticket_id)?;
        request(meta, target, Command::Reopen { reason: self.reason })
    }
}

impl IntoCommand for pb::CloseTicketRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let (meta, target) = existing(self.meta, &self.ticket_id)?;
        request(meta, target, Command::Close)
    }
}

impl IntoCommand for pb::RefundTicketRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let (meta, target) = existing(self.meta, &self.ticket_id)?;
        let command = Command::Refund {
            refund_id: refund_id(&self.refund_id)?,
            amount: money(self.amount)?,
            reason: self.reason,
        };
        request(meta, target, command)
    }
}

impl IntoCommand for pb::ApproveRefundRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let (meta, target) = existing(self.meta, &self.ticket_id)?;
        request(meta, target, Command::ApproveRefund { refund_id: refund_id(&self.refund_id)? })
    }
}

impl IntoCommand for pb::RejectRefundRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let (meta, target) = existing(self.meta, &self.ticket_id)?;
        let command =
            Command::RejectRefund { refund_id: refund_id(&self.refund_id)?, reason: self.reason };
        request(meta, target, command)
    }
}

impl IntoCommand for pb::GiveFeedbackRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let (meta, target) = existing(self.meta, &self.ticket_id)?;
        let command = Command::GiveFeedback {
            csat: score("csat", self.csat)?,
            nps: self.nps.map(|nps| score("nps", nps)).transpose()?,
            comment: self.comment,
            themes: self
                .themes
                .iter()
                .map(|theme| Theme::parse(theme).map_err(|e| invalid_input(&e, None)))
                .collect::<Result<_, _>>()?,
        };
        request(meta, target, command)
    }
}

impl IntoCommand for pb::RecordSlaSignalRequest {
    fn into_command(self) -> Result<CommandRequest, Status> {
        let (meta, target) = existing(self.meta, &self.ticket_id)?;
        let kind = match pb::SlaSignalKind::try_from(self.kind) {
            Ok(pb::SlaSignalKind::Warning) => SlaSignalKind::Warning,
            Ok(pb::SlaSignalKind::Breach) => SlaSignalKind::Breach,
            Ok(pb::SlaSignalKind::Unspecified) => return Err(unset("kind")),
            Err(_) => return Err(invalid("kind", format!("{} is not a known value", self.kind))),
        };
        let due_at = self.due_at.ok_or_else(|| unset("due_at"))?;
        let due_at = timestamp("due_at", due_at)?;
        let command = Command::RecordSlaSignal {
            target: SlaTargetKind::parse(&self.target).map_err(|e| invalid_input(&e, None))?,
            cycle: self.cycle,
            kind,
            due_at,
            policy_version: self.policy_version,
        };
        request(meta, target, command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> pb::CommandMeta {
        pb::CommandMeta {
            tenant: "acme".into(),
            actor: Some(pb::Actor { id: "agent-1".into(), role: pb::Role::Tier1Agent as i32 }),
            request_id: "r-1".into(),
            ..Default::default()
        }
    }

    fn message(result: Result<CommandRequest, Status>) -> String {
        let status = result.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        status.message().to_owned()
    }

    #[test]
    fn each_malformed_field_is_named() {
        let open = pb::OpenTicketRequest {
            meta: Some(meta()),
            customer_id: "c-1".into(),
            customer_tier: pb::CustomerTier::Business as i32,
            channel: pb::Channel::Email as i32,
            priority: pb::Priority::High as i32,
            ..Default::default()
        };
        let refund = pb::RefundTicketRequest {
            meta: Some(meta()),
            ticket_id: uuid::Uuid::nil().to_string(),
            refund_id: "rf-1".into(),
            amount: Some(pb::Money { amount_minor: 100, currency: "EUR".into() }),
            reason: "broken".into(),
        };

        let cases: Vec<(Result<CommandRequest, Status>, &str)> = vec![
            (
                pb::OpenTicketRequest { meta: None, ..open.clone() }.into_command(),
                "invalid meta: must be set",
            ),
            (
                pb::OpenTicketRequest {
                    meta: Some(pb::CommandMeta { tenant: "ACME".into(), ..meta() }),
                    ..open.clone()
                }
                .into_command(),
                "invalid tenant: \"ACME\" must be lowercase letters, digits, '-' or '_'",
            ),
            (
                pb::OpenTicketRequest { customer_tier: 0, ..open.clone() }.into_command(),
                "invalid customer_tier: must be set",
            ),
            (
                pb::OpenTicketRequest { channel: 42, ..open.clone() }.into_command(),
                "invalid channel: 42 is not a known value",
            ),
            (
                pb::OpenTicketRequest { ticket_id: "nope".into(), ..open.clone() }.into_command(),
                "invalid ticket_id: \"nope\" is not a UUID: invalid character: found `n` at 0",
            ),
            (
                pb::OpenTicketRequest {
                    meta: Some(pb::CommandMeta { request_id: "a\nb".into(), ..meta() }),
                    ..open.clone()
                }
                .into_command(),
                "invalid request_id: must not contain control characters",
            ),
            (
                pb::OpenTicketRequest {
                    meta: Some(pb::CommandMeta {
                        occurred_at: Some(prost_types::Timestamp { seconds: 0, nanos: -1 }),
                        ..meta()
                    }),
                    ..open.clone()
                }
                .into_command(),
                "invalid occurred_at: nanos -1 is not within 0 to 999,999,999",
            ),
            (
                // Past protobuf's nanos range: chrono would take it for a leap second.
                pb::OpenTicketRequest {
                    meta: Some(pb::CommandMeta {
                        occurred_at: Some(prost_types::Timestamp {
                            seconds: 59,
                            nanos: 1_500_000_000,
                        }),
                        ..meta()
                    }),
                    ..open.clone()
                }
                .into_command(),
                "invalid occurred_at: nanos 1500000000 is not within 0 to 999,999,999",
            ),
            (
                pb::OpenTicketRequest {
                    meta: Some(pb::CommandMeta {
                        occurred_at: Some(prost_types::Timestamp { seconds: i64::MAX, nanos: 0 }),
                        ..meta()
                    }),
                    ..open.clone()
                }
                .into_command(),
                "invalid occurred_at: seconds 9223372036854775807 is beyond the times this \
                 service handles",
            ),
            (
                pb::RefundTicketRequest {
                    amount: Some(pb::Money { amount_minor: 100, currency: "XYZ".into() }),
                    ..refund.clone()
                }
                .into_command(),
                "invalid amount.currency: \"XYZ\" is not an ISO 4217 currency code",
            ),
            (
                pb::RefundTicketRequest {
                    amount: Some(pb::Money { amount_minor: -5, currency: "EUR".into() }),
                    ..refund.clone()
                }
                .into_command(),
                "invalid amount.amount_minor: -5 is not a positive amount",
            ),
            (
                pb::RefundTicketRequest { amount: None, ..refund.clone() }.into_command(),
                "invalid amount: must be set",
            ),
            (
                pb::GiveFeedbackRequest {
                    meta: Some(meta()),
                    ticket_id: uuid::Uuid::nil().to_string(),
                    csat: 300,
                    ..Default::default()
                }
                .into_command(),
                "invalid csat: 300 is out of range",
            ),
            (
                pb::GiveFeedbackRequest {
                    meta: Some(meta()),
                    ticket_id: uuid::Uuid::nil().to_string(),
                    csat: 4,
                    themes: vec!["billing".into(), "Billing".into()],
                    ..Default::default()
                }
                .into_command(),
                "invalid themes: \"Billing\" is not one of account_access, agent_conduct, billing, \
                 communication, product_quality, resolution_quality, response_time",
            ),
            (
                pb::CloseTicketRequest { meta: Some(meta()), ticket_id: String::new() }
                    .into_command(),
                "invalid ticket_id: must be set",
            ),
        ];

        for (result, expected) in cases {
            assert_eq!(message(result), expected);
        }
    }

    #[test]
    fn feedback_themes_become_domain_themes_in_the_order_given() {
        let feedback = pb::GiveFeedbackRequest {
            meta: Some(meta()),
            ticket_id: uuid::Uuid::nil().to_string(),
            csat: 3,
            nps: Some(7),
            comment: Some("ok".into()),
            themes: vec!["response_time".into(), "billing".into(), "response_time".into()],
        };

        let request = feedback.into_command().unwrap();

        assert_eq!(
            request.command,
            Command::GiveFeedback {
                csat: 3,
                nps: Some(7),
                comment: Some("ok".into()),
                themes: vec![Theme::ResponseTime, Theme::Billing, Theme::ResponseTime],
            }
        );
    }

    #[test]
    fn an_open_without_ticket_id_targets_the_derived_ticket() {
        let open = pb::OpenTicketRequest {
            meta: Some(meta()),
            customer_id: "c-1".into(),
            customer_tier: pb::CustomerTier::Business as i32,
            channel: pb::Channel::Email as i32,
            priority: pb::Priority::High as i32,
            ..Default::default()
        };

        let request = open.into_command().unwrap();

        assert!(matches!(request.target, Target::ForRequest));
        assert_eq!(request.meta.tenant.as_str(), "acme");
        assert_eq!(request.meta.actor, Actor::new("agent-1", Role::Tier1Agent).unwrap());
    }
}
