//! A given / when / then builder for the ticket aggregate, with no I/O.
//!
//! `given` folds a history of events into a ticket, `when` decides one command against it, and
//! `then` / `then_error` check the exact outcome. Time is fixed: `at(minutes)` counts minutes from
//! 2026-03-02 09:00 UTC, and every context carries its own `now`.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use csmp_domain::command::OpenTicket;
use csmp_domain::event::{self, Opened};
use csmp_domain::{
    Actor, AgentId, Channel, Command, CommandContext, Currency, CustomerId, CustomerTier,
    DomainError, EventPayload, Money, Priority, RecordedEvent, RefundId, Role, Sentiment, TenantId,
    Ticket, TicketId,
};
use uuid::Uuid;

/// The tenant every scenario runs in.
pub fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

/// The ticket every scenario acts on.
pub fn ticket_id() -> TicketId {
    TicketId::for_request(&tenant(), "open-1")
}

/// `minutes` after 2026-03-02 09:00:00 UTC.
pub fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

pub const CUSTOMER_ID: &str = "cust-1";

pub fn customer() -> Actor {
    Actor::new(CUSTOMER_ID, Role::Customer).unwrap()
}

pub fn other_customer() -> Actor {
    Actor::new("cust-2", Role::Customer).unwrap()
}

pub fn tier1() -> Actor {
    Actor::new("agent-1", Role::Tier1Agent).unwrap()
}

pub fn tier2() -> Actor {
    Actor::new("agent-2", Role::Tier2Agent).unwrap()
}

pub fn tier3() -> Actor {
    Actor::new("agent-3", Role::Tier3Agent).unwrap()
}

pub fn lead() -> Actor {
    Actor::new("lead-1", Role::Lead).unwrap()
}

pub fn system() -> Actor {
    Actor::new("sla-rules", Role::System).unwrap()
}

pub fn importer() -> Actor {
    Actor::new("export-2025", Role::Importer).unwrap()
}

pub fn agent_id(raw: &str) -> AgentId {
    AgentId::parse(raw).unwrap()
}

pub fn refund_id(raw: &str) -> RefundId {
    RefundId::parse(raw).unwrap()
}

pub fn eur(amount_minor: i64) -> Money {
    Money { amount_minor, currency: Currency::parse("EUR").unwrap() }
}

pub fn money(amount_minor: i64, currency: &str) -> Money {
    Money { amount_minor, currency: Currency::parse(currency).unwrap() }
}

/// A context for `actor` at `now`, with default refund limits and no historical time.
pub fn ctx(actor: Actor, now: DateTime<Utc>) -> CommandContext {
    CommandContext::new(actor, now, "req-when")
}

/// The open command of most scenarios: cust-1, business tier, email, high priority.
pub fn open_command() -> OpenTicket {
    OpenTicket {
        customer_id: CustomerId::parse(CUSTOMER_ID).unwrap(),
        customer_tier: CustomerTier::Business,
        channel: Channel::Email,
        category: "billing".into(),
        priority: Priority::High,
        subject: "Charged twice".into(),
        description: "My card was charged twice for the March invoice.".into(),
        product: "payments".into(),
        is_complaint: false,
    }
}

/// The event `open_command` produces.
pub fn opened() -> EventPayload {
    let open = open_command();
    EventPayload::Opened(Opened {
        customer_id: open.customer_id,
        customer_tier: open.customer_tier,
        channel: open.channel,
        category: open.category,
        priority: open.priority,
        subject: open.subject,
        description: open.description,
        product: open.product,
        is_complaint: open.is_complaint,
    })
}

pub fn acknowledged(agent: &str) -> EventPayload {
    EventPayload::Acknowledged(event::Acknowledged { agent_id: agent_id(agent) })
}

pub fn customer_asked() -> EventPayload {
    EventPayload::CustomerAsked(event::CustomerAsked { question: "Which card?".into() })
}

pub fn resolved() -> EventPayload {
    EventPayload::Resolved(event::Resolved { resolution_summary: "Duplicate refunded".into() })
}

pub fn reopened() -> EventPayload {
    EventPayload::Reopened(event::Reopened { reason: "Charged again".into() })
}

pub fn closed() -> EventPayload {
    EventPayload::Closed(event::Closed {})
}

pub fn escalated(from: csmp_domain::SupportTier, to: csmp_domain::SupportTier) -> EventPayload {
    EventPayload::Escalated(event::Escalated { from, to, reason: "needs billing access".into() })
}

pub fn refund_issued(id: &str, amount: Money) -> EventPayload {
    EventPayload::RefundIssued(event::RefundIssued {
        refund_id: refund_id(id),
        amount,
        reason: "duplicate charge".into(),
    })
}

pub fn refund_requested(id: &str, amount: Money, actor_limit_minor: i64) -> EventPayload {
    EventPayload::RefundRequested(event::RefundRequested {
        refund_id: refund_id(id),
        amount,
        reason: "duplicate charge".into(),
        actor_limit_minor,
    })
}

/// Feedback without NPS, comment or themes; the sentiment written out by the documented rule.
pub fn feedback(csat: u8, resolution_cycle: u32) -> EventPayload {
    let sentiment = match csat {
        4 | 5 => Sentiment::Positive,
        3 => Sentiment::Neutral,
        _ => Sentiment::Negative,
    };
    EventPayload::FeedbackGiven(event::FeedbackGiven {
        csat,
        nps: None,
        comment: None,
        resolution_cycle,
        sentiment,
        themes: vec![],
    })
}

/// The feedback command behind [`feedback`].
pub fn give_feedback(csat: u8) -> Command {
    Command::GiveFeedback { csat, nps: None, comment: None, themes: vec![] }
}

/// One event of a given history: what happened, who did it and when.
pub struct Given {
    payload: EventPayload,
    actor: Actor,
    now: DateTime<Utc>,
    occurred_at: Option<DateTime<Utc>>,
}

/// `payload` recorded for `actor` at `now`.
pub fn by(actor: Actor, now: DateTime<Utc>, payload: EventPayload) -> Given {
    Given { payload, actor, now, occurred_at: None }
}

impl Given {
    /// A historical time, as the importer gives it.
    pub fn occurred(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.occurred_at = at;
        self
    }
}

/// A ticket built from `history`, each event enveloped as the next version and recorded at a
/// rising stream sequence with gaps, as other tickets share the stream.
pub fn given(history: impl IntoIterator<Item = Given>) -> Scenario {
    let mut ticket = Ticket::new(tenant(), ticket_id());
    let mut recorded = Vec::new();
    for (i, given) in history.into_iter().enumerate() {
        let i = i as u64;
        let mut ctx = CommandContext::new(given.actor, given.now, &format!("req-given-{i}"));
        ctx.occurred_at = given.occurred_at;
        let envelope = ticket.envelope(given.payload, &ctx, Uuid::from_u128(1_000 + u128::from(i)));
        let event = RecordedEvent { stream_seq: 100 + 7 * i, envelope };
        ticket.apply(&event).expect("a given history applies");
        recorded.push(event);
    }
    Scenario { ticket, recorded }
}

/// The history most scenarios start from: cust-1 opened the ticket at 09:00.
pub fn given_opened() -> Scenario {
    given([by(customer(), at(0), opened())])
}

/// Opened at 09:00, acknowledged by agent-1 at 09:05.
pub fn given_acknowledged() -> Scenario {
    given([by(customer(), at(0), opened()), by(tier1(), at(5), acknowledged("agent-1"))])
}

/// Opened, acknowledged, resolved by agent-1 at 09:30.
pub fn given_resolved() -> Scenario {
    given([
        by(customer(), at(0), opened()),
        by(tier1(), at(5), acknowledged("agent-1")),
        by(tier1(), at(30), resolved()),
    ])
}

pub struct Scenario {
    pub ticket: Ticket,
    pub recorded: Vec<RecordedEvent>,
}

impl Scenario {
    /// Decides `command` in `ctx` against the given history.
    pub fn when(self, command: Command, ctx: CommandContext) -> Outcome {
        let result = self.ticket.decide(&command, &ctx);
        Outcome { ticket: self.ticket, ctx, result }
    }
}

pub struct Outcome {
    ticket: Ticket,
    ctx: CommandContext,
    result: Result<EventPayload, DomainError>,
}

impl Outcome {
    /// Asserts the command produced exactly `expected`, and returns the ticket with that event
    /// applied, for checks on the state it leads to.
    #[track_caller]
    pub fn then(self, expected: EventPayload) -> Ticket {
        assert_eq!(self.result, Ok(expected));
        let payload = self.result.unwrap();
        let mut ticket = self.ticket;
        let envelope = ticket.envelope(payload, &self.ctx, Uuid::from_u128(9_999));
        let stream_seq = ticket.last_stream_seq + 1;
        ticket.apply(&RecordedEvent { stream_seq, envelope }).expect("the new event applies");
        ticket
    }

    /// Asserts the command was rejected with exactly `expected`.
    #[track_caller]
    pub fn then_error(self, expected: DomainError) {
        assert_eq!(self.result, Err(expected));
    }
}
