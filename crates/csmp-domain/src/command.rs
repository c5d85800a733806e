//! Commands: what a caller asks to happen to a ticket, and the context it is decided in.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::feedback::Theme;
use crate::ids::{AgentId, CustomerId, RefundId};
use crate::money::{Currency, Money};
use crate::types::{
    Actor, Channel, CustomerTier, Priority, Role, SlaSignalKind, SlaTargetKind, SupportTier,
};

/// Documented text limits, in characters.
pub mod limits {
    pub const SUBJECT: usize = 200;
    pub const DESCRIPTION: usize = 10_000;
    pub const CATEGORY: usize = 100;
    pub const PRODUCT: usize = 100;
    /// Reasons, questions, replies, resolution summaries and feedback comments.
    pub const NOTE: usize = 2_000;
    pub const REQUEST_ID: usize = 128;
    /// The largest single refund, in minor units: 10,000,000,000.00 in a two-digit currency.
    /// Sums over a tenant's refunds then stay far inside 64 bits.
    pub const MAX_REFUND_MINOR: i64 = 1_000_000_000_000;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTicket {
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

/// One support action on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Open(OpenTicket),
    /// The first agent response.
    Acknowledge,
    Assign {
        agent_id: AgentId,
    },
    ChangePriority {
        priority: Priority,
        reason: String,
    },
    Escalate {
        to: SupportTier,
        reason: String,
    },
    AskCustomer {
        question: String,
    },
    CustomerReply {
        message: String,
    },
    Resolve {
        resolution_summary: String,
    },
    Reopen {
        reason: String,
    },
    /// Refused while a refund waits for a lead's approval.
    Close,
    /// Issued at once within the actor's limit, otherwise requested for a lead's approval.
    Refund {
        refund_id: RefundId,
        amount: Money,
        reason: String,
    },
    ApproveRefund {
        refund_id: RefundId,
    },
    RejectRefund {
        refund_id: RefundId,
        reason: String,
    },
    /// The event also carries themes found in the comment besides the `themes` given here.
    GiveFeedback {
        csat: u8,
        nps: Option<u8>,
        comment: Option<String>,
        /// Themes the customer ticked in a survey; may repeat, order does not matter.
        themes: Vec<Theme>,
    },
    /// Records that an SLA clock reached its warning share or its due time; the SLA timer
    /// sends it as the system actor, once per ticket, target, cycle and kind.
    RecordSlaSignal {
        target: SlaTargetKind,
        cycle: u32,
        kind: SlaSignalKind,
        due_at: DateTime<Utc>,
        policy_version: u32,
    },
}

impl Command {
    /// A short verb for messages ("resolve", "give feedback on").
    pub fn action(&self) -> &'static str {
        match self {
            Command::Open(_) => "open",
            Command::Acknowledge => "acknowledge",
            Command::Assign { .. } => "assign",
            Command::ChangePriority { .. } => "change the priority of",
            Command::Escalate { .. } => "escalate",
            Command::AskCustomer { .. } => "ask the customer on",
            Command::CustomerReply { .. } => "reply to",
            Command::Resolve { .. } => "resolve",
            Command::Reopen { .. } => "reopen",
            Command::Close => "close",
            Command::Refund { .. } => "refund",
            Command::ApproveRefund { .. } => "approve a refund on",
            Command::RejectRefund { .. } => "reject a refund on",
            Command::GiveFeedback { .. } => "give feedback on",
            Command::RecordSlaSignal { .. } => "record an SLA signal on",
        }
    }
}

/// How much each role may refund without a lead's approval, per currency, in minor units.
/// A role or currency without an entry has no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLimits {
    pub by_role: BTreeMap<Role, BTreeMap<Currency, i64>>,
    /// The limit for a currency the role has no entry for; `None` means unlimited.
    pub default_by_role: BTreeMap<Role, i64>,
}

impl Default for RefundLimits {
    /// Tier 1 agents 50.00, tier 2 agents 500.00 (in any currency's minor unit, so 5,000 and
    /// 50,000), tier 3 agents, leads and the system unlimited. The importer and customers may not
    /// refund at all (limit 0).
    fn default() -> Self {
        let mut default_by_role = BTreeMap::new();
        default_by_role.insert(Role::Tier1Agent, 5_000);
        default_by_role.insert(Role::Tier2Agent, 50_000);
        default_by_role.insert(Role::Customer, 0);
        default_by_role.insert(Role::Importer, 0);
        RefundLimits { by_role: BTreeMap::new(), default_by_role }
    }
}

impl RefundLimits {
    /// The largest amount `role` may refund in `currency` without approval; `None` if unlimited.
    pub fn limit(&self, role: Role, currency: Currency) -> Option<i64> {
        self.by_role
            .get(&role)
            .and_then(|per_currency| per_currency.get(&currency))
            .or_else(|| self.default_by_role.get(&role))
            .copied()
    }

    /// Whether `role` may approve or reject a refund that waits for approval: only a lead.
    pub fn may_approve(role: Role) -> bool {
        role == Role::Lead
    }
}

/// Everything a command is decided with besides the ticket's own state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    pub actor: Actor,
    /// The injected present.
    pub now: DateTime<Utc>,
    /// A historical time given by the importer; other roles may not give one.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The command's idempotency key.
    pub request_id: String,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub refund_limits: RefundLimits,
}

impl CommandContext {
    /// A context for `actor` at `now` with default refund limits.
    pub fn new(actor: Actor, now: DateTime<Utc>, request_id: &str) -> Self {
        CommandContext {
            actor,
            now,
            occurred_at: None,
            request_id: request_id.to_owned(),
            correlation_id: None,
            causation_id: None,
            refund_limits: RefundLimits::default(),
        }
    }
}
