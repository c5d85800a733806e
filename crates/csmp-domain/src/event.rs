//! Events: what happened to a ticket, in the envelope every event is stored and published in.
//!
//! Events are immutable facts. Each has a type name (`ticket.opened`, ...), a schema version of
//! its own type ([`current_schema_version`]) and a JSON payload; the envelope adds who, when, for
//! which tenant and ticket, the per-ticket version, the ids that tie it to the command that
//! caused it, and its place in the ticket's hash chain ([`chain`](crate::chain)).
//! `docs/events.md` describes every type and version.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::feedback::{Sentiment, Theme};
use crate::ids::{AgentId, CustomerId, RefundId, TenantId, TicketId};
use crate::money::Money;
use crate::types::{Actor, Channel, CustomerTier, Priority, SlaTargetKind, SupportTier};

/// The schema version new events of `event_type` are written with: 2 for `feedback.given`
/// (which added `sentiment` and `themes`), 1 for every other type, known or not.
///
/// Reading accepts every version from 1 up to this one; older bodies are raised to it by
/// [`upcast`](crate::upcast).
pub fn current_schema_version(event_type: &str) -> u32 {
    match event_type {
        "feedback.given" => 2,
        _ => 1,
    }
}

/// What happened. The serialized form is `{"event_type": "...", "payload": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "payload")]
pub enum EventPayload {
    #[serde(rename = "ticket.opened")]
    Opened(Opened),
    #[serde(rename = "ticket.acknowledged")]
    Acknowledged(Acknowledged),
    #[serde(rename = "ticket.assigned")]
    Assigned(Assigned),
    #[serde(rename = "ticket.priority_changed")]
    PriorityChanged(PriorityChanged),
    #[serde(rename = "ticket.escalated")]
    Escalated(Escalated),
    #[serde(rename = "ticket.customer_asked")]
    CustomerAsked(CustomerAsked),
    #[serde(rename = "ticket.customer_replied")]
    CustomerReplied(CustomerReplied),
    #[serde(rename = "ticket.resolved")]
    Resolved(Resolved),
    #[serde(rename = "ticket.reopened")]
    Reopened(Reopened),
    #[serde(rename = "ticket.closed")]
    Closed(Closed),
    #[serde(rename = "refund.issued")]
    RefundIssued(RefundIssued),
    #[serde(rename = "refund.requested")]
    RefundRequested(RefundRequested),
    #[serde(rename = "refund.approved")]
    RefundApproved(RefundApproved),
    #[serde(rename = "refund.rejected")]
    RefundRejected(RefundRejected),
    #[serde(rename = "feedback.given")]
    FeedbackGiven(FeedbackGiven),
    #[serde(rename = "sla.warning_reached")]
    SlaWarningReached(SlaSignal),
    #[serde(rename = "sla.breached")]
    SlaBreached(SlaSignal),
}

/// A ticket was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opened {
    pub customer_id: CustomerId,
    pub customer_tier: CustomerTier,
    pub channel: Channel,
    pub category: String,
    pub priority: Priority,
    pub subject: String,
    pub description: String,
    pub product: String,
    pub is_complaint: bool,
}

/// The first agent response: ends the first-response clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledged {
    pub agent_id: AgentId,
}

/// The ticket was given to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assigned {
    pub agent_id: AgentId,
    pub previous: Option<AgentId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityChanged {
    pub from: Priority,
    pub to: Priority,
    pub reason: String,
}

/// The ticket moved to a higher support tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalated {
    pub from: SupportTier,
    pub to: SupportTier,
    pub reason: String,
}

/// An agent asked the customer; the ticket waits on the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerAsked {
    pub question: String,
}

/// The customer answered; the ticket is back with support.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerReplied {
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    pub resolution_summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reopened {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {}

/// A refund within the actor's limit: issued at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundIssued {
    pub refund_id: RefundId,
    pub amount: Money,
    pub reason: String,
}

/// A refund above the actor's limit: it waits for a lead's approval and is not issued yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequested {
    pub refund_id: RefundId,
    pub amount: Money,
    pub reason: String,
    /// The requesting actor's limit in the refund's currency, for the approver's context.
    pub actor_limit_minor: i64,
}

/// A lead approved a requested refund; from now on it counts as issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundApproved {
    pub refund_id: RefundId,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRejected {
    pub refund_id: RefundId,
    pub amount: Money,
    pub reason: String,
}

/// The customer rated the resolution. Schema version 2; version 1 lacked `sentiment` and
/// `themes`, which reading derives for it (see [`upcast`](crate::upcast)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackGiven {
    /// Customer satisfaction, 1 to 5.
    pub csat: u8,
    /// Net promoter score answer, 0 to 10.
    pub nps: Option<u8>,
    pub comment: Option<String>,
    /// Which resolution of the ticket this rates (1 for the first).
    pub resolution_cycle: u32,
    /// Follows from `csat` alone: see [`Sentiment::from_csat`].
    pub sentiment: Sentiment,
    /// The themes the customer ticked together with those found in the comment; sorted by
    /// name, each once.
    pub themes: Vec<Theme>,
}

/// An SLA clock reached its warning share (`sla.warning_reached`) or its due time
/// (`sla.breached`) while running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaSignal {
    pub target: SlaTargetKind,
    /// Which run of the clock: 1 for first response and resolution, one more per customer reply
    /// for next response.
    pub cycle: u32,
    /// The clock's due time when the signal was recorded.
    pub due_at: DateTime<Utc>,
    /// The version of the tenant's SLA policy the clock runs under.
    pub policy_version: u32,
}

impl EventPayload {
    /// What in this payload breaks a rule every event the domain writes keeps (a CSAT outside
    /// 1 to 5, a sentiment that does not follow the CSAT, themes out of order, a refund of
    /// nothing, an escalation downwards, ...), or `None`. Events that parse but break such a
    /// rule were written around the command service; readers refuse them like undecodable ones.
    pub fn contract_violation(&self) -> Option<String> {
        // Only positive: the upper limit on one refund came after refunds above it were
        // accepted, and those stay readable.
        let refund = |amount: &Money| {
            (amount.amount_minor < 1)
                .then(|| format!("refund amount {} is not positive", amount.amount_minor))
        };
        match self {
            EventPayload::FeedbackGiven(f) => {
                if !(1..=5).contains(&f.csat) {
                    return Some(format!("csat {} is not between 1 and 5", f.csat));
                }
                if let Some(nps) = f.nps.filter(|nps| *nps > 10) {
                    return Some(format!("nps {nps} is not between 0 and 10"));
                }
                if f.sentiment != Sentiment::from_csat(f.csat) {
                    return Some(format!(
                        "sentiment {} does not follow csat {}",
                        f.sentiment.as_str(),
                        f.csat
                    ));
                }
                if f.themes.windows(2).any(|pair| pair[0].as_str() >= pair[1].as_str()) {
                    return Some("themes are not sorted by name, each once".to_owned());
                }
                (f.resolution_cycle == 0).then(|| "resolution_cycle 0 rates no resolution".into())
            }
            EventPayload::RefundIssued(r) => refund(&r.amount),
            EventPayload::RefundRequested(r) => refund(&r.amount),
            EventPayload::RefundApproved(r) => refund(&r.amount),
            EventPayload::RefundRejected(r) => refund(&r.amount),
            EventPayload::Escalated(e) if e.to <= e.from => {
                Some(format!("an escalation from {} to {} does not go up", e.from, e.to))
            }
            EventPayload::PriorityChanged(p) if p.to == p.from => {
                Some(format!("a priority change from {} to {} changes nothing", p.from, p.to))
            }
            EventPayload::SlaWarningReached(s) | EventPayload::SlaBreached(s) if s.cycle == 0 => {
                Some("an SLA signal of cycle 0 names no run of its clock".to_owned())
            }
            _ => None,
        }
    }

    /// The event type name, as in the `event_type` field and the `Csmp-Event-Type` header.
    pub fn event_type(&self) -> &'static str {
        match self {
            EventPayload::Opened(_) => "ticket.opened",
            EventPayload::Acknowledged(_) => "ticket.acknowledged",
            EventPayload::Assigned(_) => "ticket.assigned",
            EventPayload::PriorityChanged(_) => "ticket.priority_changed",
            EventPayload::Escalated(_) => "ticket.escalated",
            EventPayload::CustomerAsked(_) => "ticket.customer_asked",
            EventPayload::CustomerReplied(_) => "ticket.customer_replied",
            EventPayload::Resolved(_) => "ticket.resolved",
            EventPayload::Reopened(_) => "ticket.reopened",
            EventPayload::Closed(_) => "ticket.closed",
            EventPayload::RefundIssued(_) => "refund.issued",
            EventPayload::RefundRequested(_) => "refund.requested",
            EventPayload::RefundApproved(_) => "refund.approved",
            EventPayload::RefundRejected(_) => "refund.rejected",
            EventPayload::FeedbackGiven(_) => "feedback.given",
            EventPayload::SlaWarningReached(_) => "sla.warning_reached",
            EventPayload::SlaBreached(_) => "sla.breached",
        }
    }
}

/// Every event type name, for documentation checks and consumer filters.
pub const EVENT_TYPES: &[&str] = &[
    "ticket.opened",
    "ticket.acknowledged",
    "ticket.assigned",
    "ticket.priority_changed",
    "ticket.escalated",
    "ticket.customer_asked",
    "ticket.customer_replied",
    "ticket.resolved",
    "ticket.reopened",
    "ticket.closed",
    "refund.issued",
    "refund.requested",
    "refund.approved",
    "refund.rejected",
    "feedback.given",
    "sla.warning_reached",
    "sla.breached",
];

/// An event with everything needed to store, route and audit it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// UUID v7: unique, and ordered by creation time.
    pub event_id: Uuid,
    pub schema_version: u32,
    pub tenant: TenantId,
    pub ticket_id: TicketId,
    /// 1 for the ticket's first event, then one more per event, with no gaps.
    pub version: u64,
    /// When it happened. Only the importer may give a time in the past; `None` means the source
    /// of a historical event does not know (the ticket export has no opening times).
    pub occurred_at: Option<DateTime<Utc>>,
    /// When the command service accepted it.
    pub recorded_at: DateTime<Utc>,
    pub actor: Actor,
    /// Ties together every event of one business flow; the request id when the caller gives none.
    pub correlation_id: String,
    /// The event or request that caused this one, when the caller names it.
    pub causation_id: Option<String>,
    /// The idempotency key of the command that produced this event.
    pub request_id: String,
    #[serde(flatten)]
    pub payload: EventPayload,
    /// The `hash` of the ticket's previous event; `None` (written as `null`) for the first
    /// event, and absent from events stored before the hash chain existed.
    #[serde(default)]
    pub prev_hash: Option<String>,
    /// This event's own hash, [`chain::event_hash`](crate::chain::event_hash) of its stored
    /// body. Absent from events stored before the chain existed; reading fills it in for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

impl EventEnvelope {
    pub fn event_type(&self) -> &'static str {
        self.payload.event_type()
    }

    /// The time the event counts at: when it happened, or when recorded if that is all we know.
    /// Durations must not use this for events whose `occurred_at` is unknown.
    pub fn effective_time(&self) -> DateTime<Utc> {
        self.occurred_at.unwrap_or(self.recorded_at)
    }
}

/// An event as read back from the stream, with its position there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// The stream sequence: a position that increases across all tickets and tenants.
    pub stream_seq: u64,
    pub envelope: EventEnvelope,
}
