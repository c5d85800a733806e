//! The ticket aggregate: its state, the rules a command is checked against, and how each event
//! changes the state.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::chain;
use crate::command::{limits, Command, CommandContext, OpenTicket, RefundLimits};
use crate::error::DomainError;
use crate::event::{self, current_schema_version, EventEnvelope, EventPayload, RecordedEvent};
use crate::feedback::{feedback_themes, Sentiment};
use crate::ids::{check_opaque_id, is_blank, AgentId, CustomerId, RefundId, TenantId, TicketId};
use crate::money::{Currency, Money};
use crate::types::{
    Actor, Channel, CustomerTier, Priority, Role, SlaSignalKind, SlaTargetKind, SupportTier,
    TicketStatus,
};

/// How far in the future an importer's historical time may lie, to allow for clock skew.
const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// What a handled command produced; returned again when the same request id comes back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub event_type: String,
    /// What the request fixed of its event: [`crate::request::event_fingerprint`].
    pub fingerprint: u64,
    pub version: u64,
    pub stream_seq: u64,
    pub event_id: Uuid,
}

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefundStatus {
    Issued,
    AwaitingApproval,
    Approved,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub amount: Money,
    pub status: RefundStatus,
    /// Who asked for a refund that waits for approval; they may not approve it themselves.
    pub requested_by: Option<String>,
}

/// The facts fixed when the ticket was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    pub customer_id: CustomerId,
    pub customer_tier: CustomerTier,
    pub channel: Channel,
    pub category: String,
    pub product: String,
    pub is_complaint: bool,
    pub opened_at: Option<DateTime<Utc>>,
}

/// A ticket's current state, rebuilt from its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub tenant: TenantId,
    pub id: TicketId,
    /// Number of events applied; 0 for a ticket that does not exist yet.
    pub version: u64,
    /// Stream sequence of the last applied event; the expected sequence for the next append.
    pub last_stream_seq: u64,
    pub opening: Option<Opening>,
    pub status: TicketStatus,
    pub priority: Priority,
    pub tier: SupportTier,
    pub assignee: Option<AgentId>,
    pub acknowledged: bool,
    /// How many times the ticket was resolved; feedback rates the latest resolution.
    pub resolution_cycle: u32,
    /// The resolution cycle the last feedback was given for.
    pub feedback_cycle: Option<u32>,
    /// Customer replies so far; each can start at most one next-response cycle.
    #[serde(default)]
    pub customer_replies: u32,
    pub refunds: BTreeMap<RefundId, Refund>,
    /// Issued refunds (within limit or approved), summed per currency.
    pub refunded: BTreeMap<Currency, i64>,
    /// Latest known time of an event, so that history never runs backwards.
    pub last_occurred_at: Option<DateTime<Utc>>,
    /// Request ids handled on this ticket; the command service's record for idempotency.
    pub receipts: HashMap<String, Receipt>,
    /// SLA warnings and breaches recorded on this ticket, by target, cycle and kind.
    pub sla_signals: BTreeSet<(SlaTargetKind, u32, SlaSignalKind)>,
    /// The `hash` of the last applied event: the next event's `prev_hash`.
    #[serde(default)]
    pub last_hash: Option<String>,
}

impl Ticket {
    /// A ticket with no events: only `open` applies to it.
    pub fn new(tenant: TenantId, id: TicketId) -> Self {
        Ticket {
            tenant,
            id,
            version: 0,
            last_stream_seq: 0,
            opening: None,
            status: TicketStatus::New,
            priority: Priority::Medium,
            tier: SupportTier::Tier1,
            assignee: None,
            acknowledged: false,
            resolution_cycle: 0,
            feedback_cycle: None,
            customer_replies: 0,
            refunds: BTreeMap::new(),
            refunded: BTreeMap::new(),
            last_occurred_at: None,
            receipts: HashMap::new(),
            sla_signals: BTreeSet::new(),
            last_hash: None,
        }
    }

    /// Rebuilds a ticket from its recorded events, in order.
    pub fn replay<'a>(
        tenant: TenantId,
        id: TicketId,
        events: impl IntoIterator<Item = &'a RecordedEvent>,
    ) -> Result<Self, HistoryError> {
        let mut ticket = Ticket::new(tenant, id);
        for event in events {
            ticket.apply(event)?;
        }
        Ok(ticket)
    }

    pub fn exists(&self) -> bool {
        self.version > 0
    }

    /// Whether `actor` is a customer other than the one who opened the ticket: to them the
    /// ticket does not exist, so that its existence does not leak.
    pub fn hidden_from(&self, actor: &Actor) -> bool {
        actor.role == Role::Customer
            && self.opening.as_ref().is_some_and(|o| o.customer_id.as_str() != actor.id)
    }

    /// The result of an earlier command with this request id, if this ticket handled one.
    pub fn receipt(&self, request_id: &str) -> Option<&Receipt> {
        self.receipts.get(request_id)
    }

    /// Checks `command` against the ticket's rules and returns the event it produces.
    pub fn decide(
        &self,
        command: &Command,
        ctx: &CommandContext,
    ) -> Result<EventPayload, DomainError> {
        check_context(ctx)?;
        if let Some(occurred_at) = ctx.occurred_at {
            if let Some(last) = self.last_occurred_at {
                if occurred_at < last {
                    return Err(DomainError::invalid(
                        "occurred_at",
                        format!("{occurred_at} is before the ticket's previous event at {last}"),
                    ));
                }
            }
        }

        let Command::Open(open) = command else {
            if !self.exists() {
                return Err(DomainError::TicketNotFound);
            }
            return self.decide_on_existing(command, ctx);
        };
        if self.exists() {
            return Err(DomainError::TicketExists);
        }
        check_open(open)?;
        if ctx.actor.role == Role::Customer && open.customer_id.as_str() != ctx.actor.id {
            return Err(DomainError::invalid(
                "customer_id",
                "a customer may open tickets only for themselves",
            ));
        }
        Ok(EventPayload::Opened(event::Opened {
            customer_id: open.customer_id.clone(),
            customer_tier: open.customer_tier,
            channel: open.channel,
            category: open.category.trim().to_owned(),
            priority: open.priority,
            subject: open.subject.trim().to_owned(),
            description: open.description.clone(),
            product: open.product.trim().to_owned(),
            is_complaint: open.is_complaint,
        }))
    }

    fn decide_on_existing(
        &self,
        command: &Command,
        ctx: &CommandContext,
    ) -> Result<EventPayload, DomainError> {
        let role = ctx.actor.role;
        let action = command.action();
        if self.hidden_from(&ctx.actor) {
            return Err(DomainError::TicketNotFound);
        }
        let staff_only = || {
            if role.is_staff() {
                Ok(())
            } else {
                Err(DomainError::RoleNotAllowed { role: role.to_string(), action })
            }
        };
        let customer_only = || {
            if role.speaks_for_customer() {
                Ok(())
            } else {
                Err(DomainError::RoleNotAllowed { role: role.to_string(), action })
            }
        };
        let wrong_state = || DomainError::InvalidTransition { action, status: self.status };
        let in_progress = matches!(
            self.status,
            TicketStatus::New | TicketStatus::Open | TicketStatus::WaitingOnCustomer
        );

        match command {
            Command::Open(_) => unreachable!("open is decided before"),
            Command::Acknowledge => {
                // An automated reply is not a first response: letting the system acknowledge
                // would stop the first-response clock without anyone having looked.
                if role == Role::System {
                    return Err(DomainError::RoleNotAllowed { role: role.to_string(), action });
                }
                staff_only()?;
                if !in_progress {
                    return Err(wrong_state());
                }
                if self.acknowledged {
                    return Err(DomainError::AlreadyAcknowledged);
                }
                let agent_id = AgentId::parse(&ctx.actor.id)?;
                Ok(EventPayload::Acknowledged(event::Acknowledged { agent_id }))
            }
            Command::Assign { agent_id } => {
                staff_only()?;
                if self.status == TicketStatus::Closed {
                    return Err(wrong_state());
                }
                if self.assignee.as_ref() == Some(agent_id) {
                    return Err(DomainError::NoChange {
                        what: "assignee",
                        value: agent_id.to_string(),
                    });
                }
                Ok(EventPayload::Assigned(event::Assigned {
                    agent_id: agent_id.clone(),
                    previous: self.assignee.clone(),
                }))
            }
            Command::ChangePriority { priority, reason } => {
                staff_only()?;
                check_note("reason", reason, false)?;
                if !in_progress {
                    return Err(wrong_state());
                }
                if *priority == self.priority {
                    return Err(DomainError::NoChange {
                        what: "priority",
                        value: priority.to_string(),
                    });
                }
                Ok(EventPayload::PriorityChanged(event::PriorityChanged {
                    from: self.priority,
                    to: *priority,
                    reason: reason.clone(),
                }))
            }
            Command::Escalate { to, reason } => {
                staff_only()?;
                check_note("reason", reason, true)?;
                if !in_progress {
                    return Err(wrong_state());
                }
                if *to <= self.tier {
                    return Err(DomainError::EscalationNotUpward {
                        from: self.tier.to_string(),
                        to: to.to_string(),
                    });
                }
                Ok(EventPayload::Escalated(event::Escalated {
                    from: self.tier,
                    to: *to,
                    reason: reason.clone(),
                }))
            }
            Command::AskCustomer { question } => {
                staff_only()?;
                check_note("question", question, false)?;
                if self.status != TicketStatus::Open {
                    return Err(wrong_state());
                }
                Ok(EventPayload::CustomerAsked(event::CustomerAsked { question: question.clone() }))
            }
            Command::CustomerReply { message } => {
                customer_only()?;
                check_note("message", message, false)?;
                if !in_progress {
                    return Err(wrong_state());
                }
                Ok(EventPayload::CustomerReplied(event::CustomerReplied {
                    message: message.clone(),
                }))
            }
            Command::Resolve { resolution_summary } => {
                staff_only()?;
                check_note("resolution_summary", resolution_summary, true)?;
                if !in_progress {
                    return Err(wrong_state());
                }
                Ok(EventPayload::Resolved(event::Resolved {
                    resolution_summary: resolution_summary.clone(),
                }))
            }
            Command::Reopen { reason } => {
                if !(role.is_staff() || role.speaks_for_customer()) {
                    return Err(DomainError::RoleNotAllowed { role: role.to_string(), action });
                }
                check_note("reason", reason, false)?;
                if self.status != TicketStatus::Resolved {
                    return Err(wrong_state());
                }
                Ok(EventPayload::Reopened(event::Reopened { reason: reason.clone() }))
            }
            Command::Close => {
                staff_only()?;
                if self.status != TicketStatus::Resolved {
                    return Err(wrong_state());
                }
                // A closed ticket takes no refund decision, so a request left waiting would never
                // be approved nor rejected.
                if let Some((refund_id, _)) =
                    self.refunds.iter().find(|(_, r)| r.status == RefundStatus::AwaitingApproval)
                {
                    return Err(DomainError::RefundAwaitingApproval(refund_id.to_string()));
                }
                Ok(EventPayload::Closed(event::Closed {}))
            }
            Command::Refund { refund_id, amount, reason } => {
                staff_only()?;
                check_note("reason", reason, true)?;
                if amount.amount_minor <= 0 {
                    return Err(DomainError::invalid(
                        "amount.amount_minor",
                        format!("{} is not a positive amount", amount.amount_minor),
                    ));
                }
                if amount.amount_minor > limits::MAX_REFUND_MINOR {
                    return Err(DomainError::invalid(
                        "amount.amount_minor",
                        format!(
                            "{} is above the largest refund, {}",
                            amount.amount_minor,
                            limits::MAX_REFUND_MINOR
                        ),
                    ));
                }
                if self.status == TicketStatus::Closed {
                    return Err(wrong_state());
                }
                if self.refunds.contains_key(refund_id) {
                    return Err(DomainError::RefundExists(refund_id.to_string()));
                }
                // Issued and waiting refunds together must fit the per-currency total, or
                // applying the events would overflow it.
                let committed: i128 = self
                    .refunds
                    .values()
                    .filter(|r| r.amount.currency == amount.currency)
                    .filter(|r| r.status != RefundStatus::Rejected)
                    .map(|r| i128::from(r.amount.amount_minor))
                    .sum();
                if committed + i128::from(amount.amount_minor) > i128::from(i64::MAX) {
                    return Err(DomainError::invalid(
                        "amount.amount_minor",
                        format!(
                            "{} would take the ticket's refunds in {} past the largest total",
                            amount.amount_minor, amount.currency
                        ),
                    ));
                }
                match ctx.refund_limits.limit(role, amount.currency) {
                    Some(limit) if amount.amount_minor > limit => {
                        Ok(EventPayload::RefundRequested(event::RefundRequested {
                            refund_id: refund_id.clone(),
                            amount: *amount,
                            reason: reason.clone(),
                            actor_limit_minor: limit,
                        }))
                    }
                    _ => Ok(EventPayload::RefundIssued(event::RefundIssued {
                        refund_id: refund_id.clone(),
                        amount: *amount,
                        reason: reason.clone(),
                    })),
                }
            }
            // The role is checked first: who may not decide learns nothing of the refund.
            Command::ApproveRefund { refund_id } => {
                if !RefundLimits::may_approve(role) {
                    return Err(DomainError::ApprovalNeedsLead {
                        role: role.to_string(),
                        decision: "approve",
                    });
                }
                let amount = self.pending_refund(refund_id)?;
                if self.requester(refund_id).as_deref() == Some(ctx.actor.id.as_str()) {
                    return Err(DomainError::SelfApproval(refund_id.to_string()));
                }
                if self.status == TicketStatus::Closed {
                    return Err(wrong_state());
                }
                Ok(EventPayload::RefundApproved(event::RefundApproved {
                    refund_id: refund_id.clone(),
                    amount,
                }))
            }
            Command::RejectRefund { refund_id, reason } => {
                check_note("reason", reason, true)?;
                if !RefundLimits::may_approve(role) {
                    return Err(DomainError::ApprovalNeedsLead {
                        role: role.to_string(),
                        decision: "reject",
                    });
                }
                let amount = self.pending_refund(refund_id)?;
                if self.status == TicketStatus::Closed {
                    return Err(wrong_state());
                }
                Ok(EventPayload::RefundRejected(event::RefundRejected {
                    refund_id: refund_id.clone(),
                    amount,
                    reason: reason.clone(),
                }))
            }
            Command::RecordSlaSignal { target, cycle, kind, due_at, policy_version } => {
                if role != Role::System {
                    return Err(DomainError::RoleNotAllowed { role: role.to_string(), action });
                }
                if *cycle == 0 {
                    return Err(DomainError::invalid("cycle", "cycles count from 1"));
                }
                // Only next response starts a new cycle, at most one per customer reply.
                if *target == SlaTargetKind::NextResponse && *cycle > self.customer_replies {
                    return Err(DomainError::invalid(
                        "cycle",
                        format!(
                            "next_response cycle {cycle} cannot have started after {} customer \
                             replies",
                            self.customer_replies
                        ),
                    ));
                }
                if *target != SlaTargetKind::NextResponse && *cycle != 1 {
                    return Err(DomainError::invalid(
                        "cycle",
                        format!("{target} runs once, so its only cycle is 1, not {cycle}"),
                    ));
                }
                let complaint = self.opening.as_ref().is_some_and(|o| o.is_complaint);
                if *target == SlaTargetKind::ComplaintAcknowledgement && !complaint {
                    return Err(DomainError::invalid(
                        "target",
                        "complaint_acknowledgement is measured on complaints only",
                    ));
                }
                // A closed ticket has no clock left to warn or breach, and one opened at an
                // unknown time never had one.
                if self.status == TicketStatus::Closed {
                    return Err(wrong_state());
                }
                if self.opening.as_ref().is_some_and(|o| o.opened_at.is_none()) {
                    return Err(DomainError::invalid(
                        "ticket_id",
                        "the ticket has no SLA clocks: it was opened at an unknown time",
                    ));
                }
                check_time("due_at", *due_at)?;
                if self.sla_signals.contains(&(*target, *cycle, *kind)) {
                    return Err(DomainError::SlaSignalRecorded {
                        target: target.to_string(),
                        cycle: *cycle,
                        kind: kind.to_string(),
                    });
                }
                let signal = event::SlaSignal {
                    target: *target,
                    cycle: *cycle,
                    due_at: *due_at,
                    policy_version: *policy_version,
                };
                Ok(match kind {
                    SlaSignalKind::Warning => EventPayload::SlaWarningReached(signal),
                    SlaSignalKind::Breach => EventPayload::SlaBreached(signal),
                })
            }
            Command::GiveFeedback { csat, nps, comment, themes } => {
                customer_only()?;
                if !(1..=5).contains(csat) {
                    return Err(DomainError::invalid(
                        "csat",
                        format!("{csat} is not within 1 to 5"),
                    ));
                }
                if let Some(nps) = nps {
                    if *nps > 10 {
                        return Err(DomainError::invalid(
                            "nps",
                            format!("{nps} is not within 0 to 10"),
                        ));
                    }
                }
                if let Some(comment) = comment {
                    check_note("comment", comment, false)?;
                }
                if !matches!(self.status, TicketStatus::Resolved | TicketStatus::Closed) {
                    return Err(wrong_state());
                }
                if self.feedback_cycle == Some(self.resolution_cycle) {
                    return Err(DomainError::FeedbackAlreadyGiven);
                }
                Ok(EventPayload::FeedbackGiven(event::FeedbackGiven {
                    csat: *csat,
                    nps: *nps,
                    comment: comment.clone(),
                    resolution_cycle: self.resolution_cycle,
                    sentiment: Sentiment::from_csat(*csat),
                    themes: feedback_themes(themes, comment.as_deref()),
                }))
            }
        }
    }

    fn requester(&self, refund_id: &RefundId) -> Option<String> {
        self.refunds.get(refund_id).and_then(|refund| refund.requested_by.clone())
    }

    fn pending_refund(&self, refund_id: &RefundId) -> Result<Money, DomainError> {
        match self.refunds.get(refund_id) {
            Some(Refund { amount, status: RefundStatus::AwaitingApproval, .. }) => Ok(*amount),
            _ => Err(DomainError::RefundNotPending(refund_id.to_string())),
        }
    }

    /// Wraps the event `decide` returned in its envelope, as the next version of this ticket,
    /// written in the current schema version of its type and chained to the last applied event.
    pub fn envelope(
        &self,
        payload: EventPayload,
        ctx: &CommandContext,
        event_id: Uuid,
    ) -> EventEnvelope {
        let mut envelope = EventEnvelope {
            event_id,
            schema_version: current_schema_version(payload.event_type()),
            tenant: self.tenant.clone(),
            ticket_id: self.id,
            version: self.version + 1,
            occurred_at: self.event_time(ctx),
            recorded_at: ctx.now,
            actor: ctx.actor.clone(),
            correlation_id: ctx.correlation_id.clone().unwrap_or_else(|| ctx.request_id.clone()),
            causation_id: ctx.causation_id.clone(),
            request_id: ctx.request_id.clone(),
            payload,
            prev_hash: self.last_hash.clone(),
            hash: None,
        };
        // Without `hash`, the envelope serializes to exactly the body that is hashed.
        let body = serde_json::to_value(&envelope).expect("an envelope always serializes");
        envelope.hash = Some(chain::event_hash(&body));
        envelope
    }

    /// When the event of a command in `ctx` happened, as recorded: the importer's historical
    /// time, or now for everyone else; never after now (a historical time ahead of this clock,
    /// within the allowed skew, is taken as now) and never before the ticket's previous event,
    /// so that a ticket's times do not go backwards even when this clock is behind the one that
    /// recorded the previous event. `None` for imported history of unknown time.
    fn event_time(&self, ctx: &CommandContext) -> Option<DateTime<Utc>> {
        let at = match ctx.actor.role {
            Role::Importer => ctx.occurred_at?.min(ctx.now),
            _ => ctx.now,
        };
        Some(self.last_occurred_at.map_or(at, |last| at.max(last)))
    }

    /// Folds one recorded event into the state.
    pub fn apply(&mut self, recorded: &RecordedEvent) -> Result<(), HistoryError> {
        let event = &recorded.envelope;
        if event.tenant != self.tenant || event.ticket_id != self.id {
            return Err(HistoryError::ForeignEvent { event_id: event.event_id });
        }
        if event.version != self.version + 1 {
            return Err(HistoryError::VersionGap {
                expected: self.version + 1,
                found: event.version,
            });
        }
        if matches!(event.payload, EventPayload::Opened(_)) != (self.version == 0) {
            return Err(HistoryError::OutOfPlace { event_type: event.event_type() });
        }

        match &event.payload {
            EventPayload::Opened(opened) => {
                self.opening = Some(Opening {
                    customer_id: opened.customer_id.clone(),
                    customer_tier: opened.customer_tier,
                    channel: opened.channel,
                    category: opened.category.clone(),
                    product: opened.product.clone(),
                    is_complaint: opened.is_complaint,
                    opened_at: event.occurred_at,
                });
                self.status = TicketStatus::New;
                self.priority = opened.priority;
            }
            EventPayload::Acknowledged(_) => {
                self.acknowledged = true;
                if self.status == TicketStatus::New {
                    self.status = TicketStatus::Open;
                }
            }
            EventPayload::Assigned(assigned) => self.assignee = Some(assigned.agent_id.clone()),
            EventPayload::PriorityChanged(changed) => self.priority = changed.to,
            EventPayload::Escalated(escalated) => self.tier = escalated.to,
            EventPayload::CustomerAsked(_) => self.status = TicketStatus::WaitingOnCustomer,
            EventPayload::CustomerReplied(_) => {
                self.customer_replies = self.customer_replies.saturating_add(1);
                if self.status == TicketStatus::WaitingOnCustomer {
                    self.status = TicketStatus::Open;
                }
            }
            EventPayload::Resolved(_) => {
                self.status = TicketStatus::Resolved;
                self.resolution_cycle += 1;
            }
            EventPayload::Reopened(_) => {
                self.status =
                    if self.acknowledged { TicketStatus::Open } else { TicketStatus::New };
            }
            EventPayload::Closed(_) => self.status = TicketStatus::Closed,
            EventPayload::RefundIssued(issued) => {
                self.refunds.insert(
                    issued.refund_id.clone(),
                    Refund {
                        amount: issued.amount,
                        status: RefundStatus::Issued,
                        requested_by: None,
                    },
                );
                *self.refunded.entry(issued.amount.currency).or_default() +=
                    issued.amount.amount_minor;
            }
            EventPayload::RefundRequested(requested) => {
                self.refunds.insert(
                    requested.refund_id.clone(),
                    Refund {
                        amount: requested.amount,
                        status: RefundStatus::AwaitingApproval,
                        requested_by: Some(event.actor.id.clone()),
                    },
                );
            }
            EventPayload::RefundApproved(approved) => {
                self.refunds.insert(
                    approved.refund_id.clone(),
                    Refund {
                        amount: approved.amount,
                        status: RefundStatus::Approved,
                        requested_by: self.requester(&approved.refund_id),
                    },
                );
                *self.refunded.entry(approved.amount.currency).or_default() +=
                    approved.amount.amount_minor;
            }
            EventPayload::RefundRejected(rejected) => {
                self.refunds.insert(
                    rejected.refund_id.clone(),
                    Refund {
                        amount: rejected.amount,
                        status: RefundStatus::Rejected,
                        requested_by: self.requester(&rejected.refund_id),
                    },
                );
            }
            EventPayload::FeedbackGiven(feedback) => {
                self.feedback_cycle = Some(feedback.resolution_cycle);
            }
            EventPayload::SlaWarningReached(signal) => {
                self.sla_signals.insert((signal.target, signal.cycle, SlaSignalKind::Warning));
            }
            EventPayload::SlaBreached(signal) => {
                self.sla_signals.insert((signal.target, signal.cycle, SlaSignalKind::Breach));
            }
        }

        self.version = event.version;
        self.last_stream_seq = recorded.stream_seq;
        self.last_hash = event.hash.clone();
        if let Some(at) = event.occurred_at {
            self.last_occurred_at = Some(self.last_occurred_at.map_or(at, |last| last.max(at)));
        }
        self.receipts.insert(
            event.request_id.clone(),
            Receipt {
                event_type: event.event_type().to_owned(),
                fingerprint: crate::request::event_fingerprint(event),
                version: event.version,
                stream_seq: recorded.stream_seq,
                event_id: event.event_id,
            },
        );
        Ok(())
    }

    /// Issued refunds in `currency`, in minor units.
    pub fn refunded_minor(&self, currency: Currency) -> i64 {
        self.refunded.get(&currency).copied().unwrap_or(0)
    }
}

/// A recorded history that cannot be the history of one ticket. Stored events are never
/// rewritten, so this means the stream was altered or events of another ticket were mixed in;
/// an operator must look.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("event {event_id} belongs to another ticket")]
    ForeignEvent { event_id: Uuid },
    #[error("expected ticket version {expected}, found {found}")]
    VersionGap { expected: u64, found: u64 },
    #[error("{event_type} cannot stand at this place in a ticket's history")]
    OutOfPlace { event_type: &'static str },
}

/// The request ids of the SLA timer's signals and escalations start with this.
pub const SLA_REQUEST_PREFIX: &str = "sla:";

fn check_context(ctx: &CommandContext) -> Result<(), DomainError> {
    check_opaque_id("actor.id", &ctx.actor.id)?;
    if ctx.request_id.trim().is_empty() {
        return Err(DomainError::invalid("request_id", "must not be empty"));
    }
    check_len("request_id", &ctx.request_id, limits::REQUEST_ID)?;
    // The SLA timer's request ids are its signals' keys; another caller taking one would make
    // the timer's signal a reused request id, refused for ever.
    if ctx.request_id.starts_with(SLA_REQUEST_PREFIX) && ctx.actor.role != Role::System {
        return Err(DomainError::invalid(
            "request_id",
            format!("the prefix {SLA_REQUEST_PREFIX:?} is kept for the SLA timer's signals"),
        ));
    }
    if let Some(at) = ctx.occurred_at {
        if ctx.actor.role != Role::Importer {
            return Err(DomainError::invalid(
                "occurred_at",
                "only the importer may give a historical time",
            ));
        }
        check_time("occurred_at", at)?;
        if at - ctx.now > chrono::Duration::seconds(MAX_CLOCK_SKEW_SECS) {
            return Err(DomainError::invalid("occurred_at", format!("{at} is in the future")));
        }
    }
    Ok(())
}

fn check_open(open: &OpenTicket) -> Result<(), DomainError> {
    if is_blank(&open.subject) {
        return Err(DomainError::invalid("subject", "must not be empty"));
    }
    check_len("subject", &open.subject, limits::SUBJECT)?;
    check_len("description", &open.description, limits::DESCRIPTION)?;
    if is_blank(&open.category) {
        return Err(DomainError::invalid("category", "must not be empty"));
    }
    check_len("category", &open.category, limits::CATEGORY)?;
    check_len("product", &open.product, limits::PRODUCT)?;
    Ok(())
}

/// Checks a free-text note: within [`limits::NOTE`], and non-empty when `required`.
fn check_note(field: &'static str, text: &str, required: bool) -> Result<(), DomainError> {
    if required && is_blank(text) {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    check_len(field, text, limits::NOTE)
}

/// Checks a text against its limit, and refuses control characters other than tab and line
/// breaks: they have no place in a ticket, and PostgreSQL cannot store NUL in text at all.
fn check_len(field: &'static str, text: &str, max: usize) -> Result<(), DomainError> {
    let len = text.chars().count();
    if len > max {
        return Err(DomainError::TooLong { field, len, max });
    }
    if let Some(c) = text.chars().find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
        return Err(DomainError::invalid(
            field,
            format!("must not contain control character U+{:04X}", u32::from(c)),
        ));
    }
    Ok(())
}

/// Checks that a time given in a command or query lies between 1970 and the year 9999, the
/// range every read model stores.
pub fn check_time(field: &'static str, at: DateTime<Utc>) -> Result<(), DomainError> {
    let latest = DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z").expect("a valid time");
    if at < DateTime::UNIX_EPOCH || at > latest {
        return Err(DomainError::invalid(
            field,
            format!("{at} is not between 1970-01-01 00:00:00 and 9999-12-31 23:59:59 UTC"),
        ));
    }
    // chrono keeps a leap second as nanoseconds past a second's end; PostgreSQL and most readers
    // of RFC 3339 would order or parse it differently.
    if at.timestamp_subsec_nanos() >= 1_000_000_000 {
        return Err(DomainError::invalid(field, format!("{at} is a leap second")));
    }
    Ok(())
}
