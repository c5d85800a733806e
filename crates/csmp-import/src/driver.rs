//! Sending a [`Plan`] to the command service over gRPC, and the summary of a run.
//!
//! Tickets go concurrently, each ticket's commands one after another in plan order. A command
//! that fails for a reason a retry can fix (`UNAVAILABLE`, `ABORTED`, `DEADLINE_EXCEEDED`) is
//! sent again with the same request id, which the command service deduplicates; any other
//! failure stops that ticket and records its row as failed, with the step and the status. This
//! module never touches the event store: the command service owns every rule.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use csmp_domain::{
    Actor, Channel, Command, CustomerTier, Priority, Role, SupportTier, TenantId, TicketId,
};
use csmp_proto::v1;
use csmp_proto::v1::ticket_commands_client::TicketCommandsClient;
use futures::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tonic::{Code, Status};
use tracing::{debug, info, warn, Instrument};

use crate::error::ImportError;
use crate::plan::{Plan, PlannedCommand, TicketPlan};
use crate::rejects::{write_rejects, Reject, RejectReason};

/// How a plan is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// Tickets in flight at once.
    pub concurrency: usize,
    /// Draw a progress bar on standard error.
    pub progress: bool,
    /// Attempts per command, the first included, for failures a retry can fix.
    pub max_attempts: u32,
    /// Deadline of each command.
    pub timeout: Duration,
}

impl Default for ImportOptions {
    /// 32 tickets in flight, no progress bar, 3 attempts, 30 s per command.
    fn default() -> Self {
        ImportOptions {
            concurrency: 32,
            progress: false,
            max_attempts: 3,
            timeout: Duration::from_secs(30),
        }
    }
}

/// What an import did, counted per row of the file.
///
/// `imported + resumed + already_present + rejected + failed == rows_read`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub tenant: TenantId,
    /// Data rows of the file, the header not counted.
    pub rows_read: u64,
    /// Rows whose every command was newly accepted.
    pub imported: u64,
    /// Rows of which an earlier run had recorded some commands and this one the rest.
    pub resumed: u64,
    /// Rows whose every command the command service answered as a duplicate: imported before.
    pub already_present: u64,
    /// Rows planning rejected; none of their commands was sent.
    pub rejected: u64,
    /// Rows a command of which failed; the commands before it were recorded.
    pub failed: u64,
    /// Events the command service appended during this run.
    pub events_appended: u64,
    /// Rejected and failed rows, in file order: what the rejects file holds.
    pub rejects: Vec<Reject>,
    pub elapsed: Duration,
}

impl ImportSummary {
    /// Writes [`ImportSummary::rejects`] to a new rejects file at `path`.
    pub fn write_rejects(&self, path: impl AsRef<Path>) -> Result<(), ImportError> {
        write_rejects(path, &self.rejects)
    }
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Import into tenant {}: {} rows read in {:.1} s",
            self.tenant,
            self.rows_read,
            self.elapsed.as_secs_f64()
        )?;
        let lines = [
            ("imported", self.imported, ""),
            ("resumed", self.resumed, " (partly imported before, completed now)"),
            ("already present", self.already_present, " (imported before, nothing appended)"),
            (
                "rejected",
                self.rejected,
                " (not sent: the row contradicts itself or does not parse)",
            ),
            ("failed", self.failed, " (the command service refused or failed a command)"),
        ];
        for (label, count, note) in lines {
            writeln!(f, "  {label:<16}{count:>7}{note}")?;
        }
        writeln!(f, "  {:<16}{:>7}", "events appended", self.events_appended)?;
        writeln!(
            f,
            "the export's statuses became: Open -> new (open once it has a first response), \
             Pending Customer Response -> waiting on customer, Closed -> closed"
        )?;
        write!(
            f,
            "the export's times carry no zone and were read as UTC; it has no creation time, so \
             tickets were opened at an unknown time"
        )
    }
}

/// Sends every ticket of `plan` to the command service behind `client` and counts the outcome
/// per row. Never fails as a whole: a command that fails is recorded against its row in
/// [`ImportSummary::rejects`], beside the rows planning rejected.
///
/// # Examples
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use csmp_domain::TenantId;
/// use csmp_import::{import, plan_file, ImportOptions, PlanOptions};
/// use csmp_proto::v1::ticket_commands_client::TicketCommandsClient;
///
/// let options = PlanOptions::new(TenantId::parse("acme")?);
/// let plan = plan_file("data/tickets-structured.csv", &options)?;
/// let client = TicketCommandsClient::connect("http://127.0.0.1:50051").await?;
/// let options = ImportOptions { progress: true, ..ImportOptions::default() };
/// let summary = import(client, &plan, &options).await;
/// summary.write_rejects("tickets.rejects.csv")?;
/// println!("{summary}");
/// # Ok(())
/// # }
/// ```
pub async fn import(
    client: TicketCommandsClient<tonic::transport::Channel>,
    plan: &Plan,
    options: &ImportOptions,
) -> ImportSummary {
    let started = Instant::now();
    info!(
        tenant = %plan.tenant,
        rows = plan.rows_read,
        tickets = plan.tickets.len(),
        rejected = plan.rejects.len(),
        "import started"
    );
    let progress = progress_bar(plan.tickets.len(), options.progress);

    // 1. Every ticket, `concurrency` at a time; a ticket's own commands stay in order.
    let outcomes: Vec<Outcome> = stream::iter(&plan.tickets)
        .map(|ticket| {
            let client = client.clone();
            let progress = &progress;
            let span = tracing::debug_span!(
                "import_ticket",
                source_id = %ticket.source_id,
                ticket_id = %ticket.ticket_id
            );
            async move {
                let outcome = import_ticket(client, plan, ticket, options).await;
                progress.inc(1);
                outcome
            }
            .instrument(span)
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    progress.finish_and_clear();

    // 2. Count per row; a failed row joins the planning rejects for the rejects file.
    let mut summary = ImportSummary {
        tenant: plan.tenant.clone(),
        rows_read: plan.rows_read,
        imported: 0,
        resumed: 0,
        already_present: 0,
        rejected: plan.rejects.len() as u64,
        failed: 0,
        events_appended: 0,
        rejects: plan.rejects.clone(),
        elapsed: Duration::ZERO,
    };
    for outcome in outcomes {
        summary.events_appended += outcome.appended;
        match outcome.failure {
            Some(reject) => {
                summary.failed += 1;
                summary.rejects.push(reject);
            }
            None if outcome.appended == 0 => summary.already_present += 1,
            None if outcome.duplicates == 0 => summary.imported += 1,
            None => summary.resumed += 1,
        }
    }
    summary.rejects.sort_by_key(|reject| reject.row);
    summary.elapsed = started.elapsed();
    info!(
        tenant = %summary.tenant,
        imported = summary.imported,
        resumed = summary.resumed,
        already_present = summary.already_present,
        rejected = summary.rejected,
        failed = summary.failed,
        events = summary.events_appended,
        elapsed_ms = summary.elapsed.as_millis() as u64,
        "import finished"
    );
    summary
}

/// What happened to one ticket's commands.
#[derive(Debug, Default)]
struct Outcome {
    appended: u64,
    duplicates: u64,
    failure: Option<Reject>,
}

async fn import_ticket(
    mut client: TicketCommandsClient<tonic::transport::Channel>,
    plan: &Plan,
    ticket: &TicketPlan,
    options: &ImportOptions,
) -> Outcome {
    let mut outcome = Outcome::default();
    let fail = |reason| Reject {
        row: ticket.row,
        line: ticket.line,
        ticket_id: ticket.source_id.clone(),
        reasons: vec![reason],
    };
    for planned in &ticket.commands {
        let result = match send_with_retries(&mut client, plan, ticket, planned, options).await {
            Ok(result) => result,
            Err(status) => {
                warn!(
                    step = %planned.step,
                    code = ?status.code(),
                    message = status.message(),
                    "command failed, row recorded as failed"
                );
                outcome.failure = Some(fail(RejectReason::CommandFailed {
                    step: planned.step,
                    code: status.code(),
                    message: status.message().to_owned(),
                }));
                return outcome;
            }
        };

        // The later commands name the planned ticket: an open that landed elsewhere (another
        // derivation of ticket ids) would send them to a ticket that does not exist.
        if TicketId::parse(&result.ticket_id).ok() != Some(ticket.ticket_id) {
            outcome.failure = Some(fail(RejectReason::UnexpectedTicket {
                step: planned.step,
                expected: ticket.ticket_id,
                found: result.ticket_id,
            }));
            return outcome;
        }
        debug!(
            step = %planned.step,
            duplicate = result.duplicate,
            position = result.stream_position,
            "command handled"
        );
        if result.duplicate {
            outcome.duplicates += 1;
        } else {
            outcome.appended += 1;
        }
    }
    outcome
}

async fn send_with_retries(
    client: &mut TicketCommandsClient<tonic::transport::Channel>,
    plan: &Plan,
    ticket: &TicketPlan,
    planned: &PlannedCommand,
    options: &ImportOptions,
) -> Result<v1::CommandResult, Status> {
    let mut attempt = 1;
    loop {
        let meta = v1::CommandMeta {
            tenant: plan.tenant.to_string(),
            actor: Some(actor(&plan.actor)),
            request_id: planned.request_id.clone(),
            correlation_id: None,
            causation_id: None,
            occurred_at: planned.occurred_at.map(|at| prost_types::Timestamp {
                seconds: at.timestamp(),
                nanos: at.timestamp_subsec_nanos() as i32,
            }),
        };
        let result =
            send(client, meta, ticket.ticket_id.to_string(), &planned.command, options.timeout)
                .await;
        match result {
            Err(status) if attempt < options.max_attempts && is_transient(status.code()) => {
                warn!(
                    step = %planned.step,
                    attempt,
                    code = ?status.code(),
                    message = status.message(),
                    "command failed, retrying"
                );
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Failures the same request may get past when sent again: the service was down or busy, or
/// lost a race on the ticket. The request id keeps a retry from recording anything twice.
fn is_transient(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::Aborted | Code::DeadlineExceeded)
}

async fn send(
    client: &mut TicketCommandsClient<tonic::transport::Channel>,
    meta: v1::CommandMeta,
    ticket_id: String,
    command: &Command,
    timeout: Duration,
) -> Result<v1::CommandResult, Status> {
    fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        request
    }

    let meta = Some(meta);
    let response = match command {
        Command::Open(open) => {
            let message = v1::OpenTicketRequest {
                meta,
                ticket_id,
                customer_id: open.customer_id.to_string(),
                customer_tier: customer_tier(open.customer_tier) as i32,
                channel: channel(open.channel) as i32,
                category: open.category.clone(),
                priority: priority(open.priority) as i32,
                subject: open.subject.clone(),
                description: open.description.clone(),
                product: open.product.clone(),
                is_complaint: open.is_complaint,
            };
            client.open_ticket(request(message, timeout)).await
        }
        Command::Acknowledge => {
            let message = v1::AcknowledgeTicketRequest { meta, ticket_id };
            client.acknowledge_ticket(request(message, timeout)).await
        }
        Command::Assign { agent_id } => {
            let message =
                v1::AssignTicketRequest { meta, ticket_id, agent_id: agent_id.to_string() };
            client.assign_ticket(request(message, timeout)).await
        }
        Command::ChangePriority { priority: to, reason } => {
            let message = v1::ChangePriorityRequest {
                meta,
                ticket_id,
                priority: priority(*to) as i32,
                reason: reason.clone(),
            };
            client.change_priority(request(message, timeout)).await
        }
        Command::Escalate { to, reason } => {
            let message = v1::EscalateTicketRequest {
                meta,
                ticket_id,
                to_tier: support_tier(*to) as i32,
                reason: reason.clone(),
            };
            client.escalate_ticket(request(message, timeout)).await
        }
        Command::AskCustomer { question } => {
            let message = v1::AskCustomerRequest { meta, ticket_id, question: question.clone() };
            client.ask_customer(request(message, timeout)).await
        }
        Command::CustomerReply { message: text } => {
            let message = v1::RecordCustomerReplyRequest { meta, ticket_id, message: text.clone() };
            client.record_customer_reply(request(message, timeout)).await
        }
        Command::Resolve { resolution_summary } => {
            let message = v1::ResolveTicketRequest {
                meta,
                ticket_id,
                resolution_summary: resolution_summary.clone(),
            };
            client.resolve_ticket(request(message, timeout)).await
        }
        Command::Reopen { reason } => {
            let message = v1::ReopenTicketRequest { meta, ticket_id, reason: reason.clone() };
            client.reopen_ticket(request(message, timeout)).await
        }
        Command::Close => {
            let message = v1::CloseTicketRequest { meta, ticket_id };
            client.close_ticket(request(message, timeout)).await
        }
        Command::Refund { refund_id, amount, reason } => {
            let message = v1::RefundTicketRequest {
                meta,
                ticket_id,
                refund_id: refund_id.to_string(),
                amount: Some(v1::Money {
                    amount_minor: amount.amount_minor,
                    currency: amount.currency.code().to_owned(),
                }),
                reason: reason.clone(),
            };
            client.refund_ticket(request(message, timeout)).await
        }
        Command::ApproveRefund { refund_id } => {
            let message =
                v1::ApproveRefundRequest { meta, ticket_id, refund_id: refund_id.to_string() };
            client.approve_refund(request(message, timeout)).await
        }
        Command::RejectRefund { refund_id, reason } => {
            let message = v1::RejectRefundRequest {
                meta,
                ticket_id,
                refund_id: refund_id.to_string(),
                reason: reason.clone(),
            };
            client.reject_refund(request(message, timeout)).await
        }
        Command::GiveFeedback { csat, nps, comment, themes } => {
            let message = v1::GiveFeedbackRequest {
                meta,
                ticket_id,
                csat: u32::from(*csat),
                nps: nps.map(u32::from),
                comment: comment.clone(),
                themes: themes.iter().map(|theme| theme.as_str().to_owned()).collect(),
            };
            client.give_feedback(request(message, timeout)).await
        }
        Command::RecordSlaSignal { target, cycle, kind, due_at, policy_version } => {
            let kind = match kind {
                csmp_domain::SlaSignalKind::Warning => v1::SlaSignalKind::Warning,
                csmp_domain::SlaSignalKind::Breach => v1::SlaSignalKind::Breach,
            };
            let message = v1::RecordSlaSignalRequest {
                meta,
                ticket_id,
                target: target.to_string(),
                cycle: *cycle,
                kind: kind as i32,
                due_at: Some(prost_types::Timestamp {
                    seconds: due_at.timestamp(),
                    nanos: due_at.timestamp_subsec_nanos() as i32,
                }),
                policy_version: *policy_version,
            };
            client.record_sla_signal(request(message, timeout)).await
        }
    };
    response.map(tonic::Response::into_inner)
}

fn actor(actor: &Actor) -> v1::Actor {
    let role = match actor.role {
        Role::Tier1Agent => v1::Role::Tier1Agent,
        Role::Tier2Agent => v1::Role::Tier2Agent,
        Role::Tier3Agent => v1::Role::Tier3Agent,
        Role::Lead => v1::Role::Lead,
        Role::Customer => v1::Role::Customer,
        Role::System => v1::Role::System,
        Role::Importer => v1::Role::Importer,
    };
    v1::Actor { id: actor.id.clone(), role: role as i32 }
}

fn customer_tier(tier: CustomerTier) -> v1::CustomerTier {
    match tier {
        CustomerTier::Enterprise => v1::CustomerTier::Enterprise,
        CustomerTier::Business => v1::CustomerTier::Business,
        CustomerTier::Standard => v1::CustomerTier::Standard,
    }
}

fn channel(channel: Channel) -> v1::Channel {
    match channel {
        Channel::Email => v1::Channel::Email,
        Channel::Phone => v1::Channel::Phone,
        Channel::Chat => v1::Channel::Chat,
        Channel::SocialMedia => v1::Channel::SocialMedia,
        Channel::Web => v1::Channel::Web,
    }
}

fn priority(priority: Priority) -> v1::Priority {
    match priority {
        Priority::Low => v1::Priority::Low,
        Priority::Medium => v1::Priority::Medium,
        Priority::High => v1::Priority::High,
        Priority::Critical => v1::Priority::Critical,
    }
}

fn support_tier(tier: SupportTier) -> v1::SupportTier {
    match tier {
        SupportTier::Tier1 => v1::SupportTier::SupportTier1,
        SupportTier::Tier2 => v1::SupportTier::SupportTier2,
        SupportTier::Tier3 => v1::SupportTier::SupportTier3,
    }
}

fn progress_bar(tickets: usize, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(tickets as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "importing {bar:40} {pos}/{len} tickets, {per_sec}, {eta} left",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}
