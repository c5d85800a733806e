//! The live shift: a few minutes of a support team at work on a demo tenant, through the command
//! API like any other client.
//!
//! Tickets arrive over the shift on every channel. Agents assign and acknowledge them (some too
//! late for their SLA), escalate some to tier 2 and tier 3, ask customers who then reply, refund
//! (some above a tier 1 agent's limit, which a lead approves or rejects), resolve and close; the
//! customers rate the resolutions. Every journey is drawn from a seeded random generator, so a
//! seed gives the same shift.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use csmp_proto::v1::ticket_commands_client::TicketCommandsClient;
use csmp_proto::v1::{self as pb, CommandMeta, CommandResult};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Mutex;
use tonic::transport::Channel;

/// What the shift should look like.
#[derive(Debug, Clone)]
pub struct ShiftOptions {
    pub tenant: String,
    /// Distinguishes this shift's request ids from an earlier shift's on the same tenant.
    pub run_id: String,
    pub tickets: usize,
    /// Tickets arrive over the first 60% of this; the rest lets journeys finish.
    pub duration: Duration,
    pub seed: u64,
}

/// What the shift did, counted from the command API's answers.
#[derive(Debug, Default)]
pub struct ShiftSummary {
    pub opened: u64,
    pub acknowledged: u64,
    pub escalated: u64,
    pub asked: u64,
    pub replied: u64,
    pub refunds_issued: u64,
    pub refunds_requested: u64,
    pub refunds_approved: u64,
    pub refunds_rejected: u64,
    pub resolved: u64,
    pub rated: u64,
    pub closed: u64,
    /// Commands the API refused; a correct shift has none.
    pub errors: Vec<String>,
    /// The highest stream position any command returned.
    pub last_position: u64,
    /// From the first arrival to the end of the last journey; at most the shift's duration.
    pub took: Duration,
}

const CATEGORIES: &[&str] =
    &["Billing inquiry", "Technical issue", "Refund request", "Product inquiry", "Outage"];
const PRODUCTS: &[&str] = &["Compute", "Object Storage", "Managed Postgres", "CDN", "DNS"];
const TIER1_AGENTS: &[&str] = &["ana", "ben", "chloe", "dev", "emil"];
const TIER2_AGENTS: &[&str] = &["farah", "gus"];
const TIER3_AGENTS: &[&str] = &["hiro"];
const LEAD: &str = "lead-ines";

/// Runs the shift to its end and returns what happened.
pub async fn run(
    client: TicketCommandsClient<Channel>,
    options: ShiftOptions,
) -> anyhow::Result<ShiftSummary> {
    let started = tokio::time::Instant::now();
    let summary = Arc::new(Mutex::new(ShiftSummary::default()));
    let last_position = Arc::new(AtomicU64::new(0));
    let mut master = StdRng::seed_from_u64(options.seed);
    let arrival_window = options.duration.mul_f64(0.6);

    let mut journeys = Vec::with_capacity(options.tickets);
    for n in 0..options.tickets {
        let seed = master.random::<u64>();
        let arrival = arrival_window.mul_f64(n as f64 / options.tickets.max(1) as f64);
        let shift = Shift {
            client: client.clone(),
            options: options.clone(),
            summary: summary.clone(),
            last_position: last_position.clone(),
        };
        journeys.push(tokio::spawn(async move {
            tokio::time::sleep(arrival).await;
            shift.journey(n, StdRng::seed_from_u64(seed)).await
        }));
    }
    for journey in journeys {
        journey.await.context("a ticket journey panicked")?;
    }

    let mut summary = std::mem::take(&mut *summary.lock().await);
    summary.last_position = last_position.load(Ordering::Relaxed);
    summary.took = started.elapsed();
    Ok(summary)
}

#[derive(Clone)]
struct Shift {
    client: TicketCommandsClient<Channel>,
    options: ShiftOptions,
    summary: Arc<Mutex<ShiftSummary>>,
    last_position: Arc<AtomicU64>,
}

/// One step of a journey: the request and how to count its success.
type Count = fn(&mut ShiftSummary, &CommandResult);

impl Shift {
    /// One ticket from arrival to its end; stops at the first refused command.
    async fn journey(&self, n: usize, mut rng: StdRng) {
        let step_unit = self.options.duration.mul_f64(0.05);
        let pause = |rng: &mut StdRng| step_unit.mul_f64(rng.random_range(0.1..1.0));
        let customer = format!("cust-{:03}", rng.random_range(0..120));
        let tier1 = TIER1_AGENTS[rng.random_range(0..TIER1_AGENTS.len())];
        let mut owner = (tier1, pb::Role::Tier1Agent);

        // 1. The customer opens the ticket.
        let open = pb::OpenTicketRequest {
            meta: self.meta(n, "open", &customer, pb::Role::Customer),
            ticket_id: String::new(),
            customer_id: customer.clone(),
            customer_tier: pick(&mut rng, &[(1, 20), (2, 35), (3, 45)]),
            channel: pick(&mut rng, &[(1, 30), (2, 15), (3, 25), (4, 10), (5, 20)]),
            category: CATEGORIES[rng.random_range(0..CATEGORIES.len())].to_owned(),
            priority: pick(&mut rng, &[(1, 25), (2, 35), (3, 25), (4, 15)]),
            subject: format!("Shift ticket {n}"),
            description: "Raised during the live shift".to_owned(),
            product: PRODUCTS[rng.random_range(0..PRODUCTS.len())].to_owned(),
            is_complaint: rng.random_bool(0.15),
        };
        let mut c = self.client.clone();
        let Some(opened) = self.send("open", c.open_ticket(open).await, |s, _| s.opened += 1).await
        else {
            return;
        };
        let ticket_id = opened.ticket_id;

        // 2. Some tickets wait long for their first response, so that their SLA breaches.
        if !rng.random_bool(0.88) {
            return;
        }
        let first_response_wait = if rng.random_bool(0.3) { 4.0 } else { 1.0 };
        tokio::time::sleep(pause(&mut rng).mul_f64(first_response_wait)).await;
        let assign = pb::AssignTicketRequest {
            meta: self.meta(n, "assign", LEAD, pb::Role::Lead),
            ticket_id: ticket_id.clone(),
            agent_id: tier1.to_owned(),
        };
        if self.send("assign", c.assign_ticket(assign).await, |_, _| {}).await.is_none() {
            return;
        }
        let ack = pb::AcknowledgeTicketRequest {
            meta: self.meta(n, "ack", tier1, pb::Role::Tier1Agent),
            ticket_id: ticket_id.clone(),
        };
        if self
            .send("ack", c.acknowledge_ticket(ack).await, |s, _| s.acknowledged += 1)
            .await
            .is_none()
        {
            return;
        }

        // 3. Escalation to tier 2, and from there sometimes to tier 3.
        if rng.random_bool(0.25) {
            tokio::time::sleep(pause(&mut rng)).await;
            let to2 = TIER2_AGENTS[rng.random_range(0..TIER2_AGENTS.len())];
            if !self.escalate(&mut c, n, &ticket_id, owner, 2, "needs tier 2 skills").await
                || !self.hand_over(&mut c, n, &ticket_id, to2, "assign-2").await
            {
                return;
            }
            owner = (to2, pb::Role::Tier2Agent);
            if rng.random_bool(0.3) {
                let to3 = TIER3_AGENTS[0];
                if !self.escalate(&mut c, n, &ticket_id, owner, 3, "suspected defect").await
                    || !self.hand_over(&mut c, n, &ticket_id, to3, "assign-3").await
                {
                    return;
                }
                owner = (to3, pb::Role::Tier3Agent);
            }
        }

        // 4. The agent asks the customer; most customers answer.
        if rng.random_bool(0.3) {
            tokio::time::sleep(pause(&mut rng)).await;
            let ask = pb::AskCustomerRequest {
                meta: self.meta(n, "ask", owner.0, owner.1),
                ticket_id: ticket_id.clone(),
                question: "Could you send the request id from the console?".to_owned(),
            };
            if self.send("ask", c.ask_customer(ask).await, |s, _| s.asked += 1).await.is_none() {
                return;
            }
            if !rng.random_bool(0.8) {
                return;
            }
            tokio::time::sleep(pause(&mut rng)).await;
            let reply = pb::RecordCustomerReplyRequest {
                meta: self.meta(n, "reply", &customer, pb::Role::Customer),
                ticket_id: ticket_id.clone(),
                message: "Here it is.".to_owned(),
            };
            let sent = c.record_customer_reply(reply).await;
            if self.send("reply", sent, |s, _| s.replied += 1).await.is_none() {
                return;
            }
        }

        // 5. Refunds: tier 1 agents may refund up to 50.00; above that a lead decides.
        if rng.random_bool(0.2) {
            tokio::time::sleep(pause(&mut rng)).await;
            let amount_minor = rng.random_range(10..200) * 100;
            let refund = pb::RefundTicketRequest {
                meta: self.meta(n, "refund", tier1, pb::Role::Tier1Agent),
                ticket_id: ticket_id.clone(),
                refund_id: format!("rf-{n}"),
                amount: Some(pb::Money { amount_minor, currency: "EUR".to_owned() }),
                reason: "service credit".to_owned(),
            };
            let Some(result) = self
                .send("refund", c.refund_ticket(refund).await, |s, r| {
                    if r.event_types.iter().any(|t| t == "refund.requested") {
                        s.refunds_requested += 1;
                    } else {
                        s.refunds_issued += 1;
                    }
                })
                .await
            else {
                return;
            };
            if result.event_types.iter().any(|t| t == "refund.requested") {
                tokio::time::sleep(pause(&mut rng)).await;
                if rng.random_bool(0.7) {
                    let approve = pb::ApproveRefundRequest {
                        meta: self.meta(n, "approve", LEAD, pb::Role::Lead),
                        ticket_id: ticket_id.clone(),
                        refund_id: format!("rf-{n}"),
                    };
                    let sent = c.approve_refund(approve).await;
                    if self.send("approve", sent, |s, _| s.refunds_approved += 1).await.is_none() {
                        return;
                    }
                } else {
                    let reject = pb::RejectRefundRequest {
                        meta: self.meta(n, "reject", LEAD, pb::Role::Lead),
                        ticket_id: ticket_id.clone(),
                        refund_id: format!("rf-{n}"),
                        reason: "outside the refund policy".to_owned(),
                    };
                    let sent = c.reject_refund(reject).await;
                    if self.send("reject", sent, |s, _| s.refunds_rejected += 1).await.is_none() {
                        return;
                    }
                }
            }
        }

        // 6. Resolution, the customer's rating, and closing.
        if !rng.random_bool(0.75) {
            return;
        }
        tokio::time::sleep(pause(&mut rng)).await;
        let resolve = pb::ResolveTicketRequest {
            meta: self.meta(n, "resolve", owner.0, owner.1),
            ticket_id: ticket_id.clone(),
            resolution_summary: "Fixed and verified with the customer".to_owned(),
        };
        if self
            .send("resolve", c.resolve_ticket(resolve).await, |s, _| s.resolved += 1)
            .await
            .is_none()
        {
            return;
        }
        if rng.random_bool(0.85) {
            let csat = pick(&mut rng, &[(1, 6), (2, 8), (3, 16), (4, 35), (5, 35)]) as u32;
            let nps = rng.random_bool(0.7).then(|| nps_for(csat, &mut rng));
            let feedback = pb::GiveFeedbackRequest {
                meta: self.meta(n, "feedback", &customer, pb::Role::Customer),
                ticket_id: ticket_id.clone(),
                csat,
                nps,
                comment: comment_for(csat, &mut rng),
                themes: Vec::new(),
            };
            let sent = c.give_feedback(feedback).await;
            if self.send("feedback", sent, |s, _| s.rated += 1).await.is_none() {
                return;
            }
        }
        if rng.random_bool(0.5) {
            let close = pb::CloseTicketRequest {
                meta: self.meta(n, "close", owner.0, owner.1),
                ticket_id: ticket_id.clone(),
            };
            self.send("close", c.close_ticket(close).await, |s, _| s.closed += 1).await;
        }
    }

    async fn escalate(
        &self,
        c: &mut TicketCommandsClient<Channel>,
        n: usize,
        ticket_id: &str,
        by: (&str, pb::Role),
        to: i32,
        reason: &str,
    ) -> bool {
        let request = pb::EscalateTicketRequest {
            meta: self.meta(n, &format!("escalate-{to}"), by.0, by.1),
            ticket_id: ticket_id.to_owned(),
            to_tier: to,
            reason: reason.to_owned(),
        };
        let sent = c.escalate_ticket(request).await;
        // The SLA timer may have escalated the ticket already (a breached first response on a
        // critical ticket): it is at that tier or above, which is what this step is for.
        if sent.as_ref().is_err_and(|status| status.code() == tonic::Code::FailedPrecondition) {
            return true;
        }
        self.send("escalate", sent, |s, _| s.escalated += 1).await.is_some()
    }

    /// The lead assigns an escalated ticket to the agent of the tier it went to.
    async fn hand_over(
        &self,
        c: &mut TicketCommandsClient<Channel>,
        n: usize,
        ticket_id: &str,
        agent: &str,
        step: &str,
    ) -> bool {
        let assign = pb::AssignTicketRequest {
            meta: self.meta(n, step, LEAD, pb::Role::Lead),
            ticket_id: ticket_id.to_owned(),
            agent_id: agent.to_owned(),
        };
        self.send("assign", c.assign_ticket(assign).await, |_, _| {}).await.is_some()
    }

    fn meta(&self, n: usize, step: &str, actor: &str, role: pb::Role) -> Option<CommandMeta> {
        Some(CommandMeta {
            tenant: self.options.tenant.clone(),
            actor: Some(pb::Actor { id: actor.to_owned(), role: role as i32 }),
            request_id: format!("shift:{}:{n}:{step}", self.options.run_id),
            correlation_id: Some(format!("shift:{}:{n}", self.options.run_id)),
            causation_id: None,
            occurred_at: None,
        })
    }

    /// Counts an answer; a refused command is recorded as an error and ends the journey.
    async fn send(
        &self,
        step: &str,
        answer: Result<tonic::Response<CommandResult>, tonic::Status>,
        count: Count,
    ) -> Option<CommandResult> {
        let mut summary = self.summary.lock().await;
        match answer {
            Ok(response) => {
                let result = response.into_inner();
                self.last_position.fetch_max(result.stream_position, Ordering::Relaxed);
                count(&mut summary, &result);
                Some(result)
            }
            Err(status) => {
                summary.errors.push(format!("{step}: {:?}: {}", status.code(), status.message()));
                None
            }
        }
    }
}

/// Draws one of `choices` (value, weight).
fn pick(rng: &mut StdRng, choices: &[(i32, u32)]) -> i32 {
    let total: u32 = choices.iter().map(|(_, w)| w).sum();
    let mut draw = rng.random_range(0..total);
    for (value, weight) in choices {
        if draw < *weight {
            return *value;
        }
        draw -= weight;
    }
    choices[choices.len() - 1].0
}

/// A comment that goes with the rating, or none (half of the customers write one). The
/// feedback themes are derived from such comments by keyword.
fn comment_for(csat: u32, rng: &mut StdRng) -> Option<String> {
    const UNHAPPY: &[&str] = &[
        "Slow replies, and the issue is still broken",
        "Waited days for an update",
        "Charged twice and nobody replied",
        "The agent was rude and the app keeps crashing",
    ];
    const MIXED: &[&str] =
        &["Fixed in the end, but it took hours", "Could not get into my account for a day"];
    const HAPPY: &[&str] =
        &["Quick fix, friendly agent", "Helpful and fast", "Refund arrived the same day"];
    if !rng.random_bool(0.5) {
        return None;
    }
    let choices = match csat {
        1 | 2 => UNHAPPY,
        3 => MIXED,
        _ => HAPPY,
    };
    Some(choices[rng.random_range(0..choices.len())].to_owned())
}

/// An NPS answer that goes with the rating: happy customers recommend more.
fn nps_for(csat: u32, rng: &mut StdRng) -> u32 {
    match csat {
        5 => rng.random_range(8..=10),
        4 => rng.random_range(6..=10),
        3 => rng.random_range(4..=8),
        _ => rng.random_range(0..=6),
    }
}
