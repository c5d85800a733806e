//! The command service: decides each command on its ticket's history and appends its event.
//!
//! One command is one event. The ticket's state comes from the in-memory cache, or from the
//! store on a miss; the event is appended on the condition that the ticket's last event is still
//! the one the decision saw. A lost race reloads and decides again. The request id is the
//! idempotency key: a ticket that already holds a receipt for it answers with that receipt and
//! records nothing. This module must not touch read models.

use std::collections::HashMap;
use std::sync::Arc;

use csmp_domain::request::command_fingerprint;
use csmp_domain::{
    Clock, Command, CommandContext, DomainError, ErrorKind, RecordedEvent, RefundLimits, TenantId,
    Ticket, TicketId,
};
use csmp_eventstore::{AppendError, Appended, EventStore, StoreError, StoreErrorKind};
use csmp_proto::v1 as pb;
use csmp_proto::v1::ticket_commands_server::TicketCommands;
use tokio::sync::MutexGuard;
use tonic::{Request, Response, Status};
use tracing::{debug, error, info, info_span, warn, Instrument};
use uuid::Uuid;

use crate::cache::TicketCache;
use crate::convert::{invalid_input, CommandRequest, IntoCommand, Meta, Target};
use crate::settings::{CommandServiceConfig, TenantSettings};

/// The `TicketCommands` gRPC service. Cloning is cheap and shares the cache.
#[derive(Clone)]
pub struct CommandService {
    inner: Arc<Inner>,
}

struct Inner {
    store: EventStore,
    limits: Limits,
    max_retries: u32,
    clock: Arc<dyn Clock>,
    tickets: TicketCache,
}

/// Refund limits resolved once at start, so that a command only clones its tenant's.
struct Limits {
    default: RefundLimits,
    by_tenant: HashMap<TenantId, RefundLimits>,
}

impl Limits {
    fn new(settings: &TenantSettings) -> Self {
        let by_tenant = settings
            .tenants
            .keys()
            .map(|tenant| (tenant.clone(), settings.refund_limits(tenant)))
            .collect();
        Limits { default: settings.default_refund_limits(), by_tenant }
    }

    fn of(&self, tenant: &TenantId) -> &RefundLimits {
        self.by_tenant.get(tenant).unwrap_or(&self.default)
    }
}

impl std::fmt::Debug for CommandService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandService")
            .field("stream", &self.inner.store.config().stream)
            .field("max_retries", &self.inner.max_retries)
            .finish_non_exhaustive()
    }
}

impl CommandService {
    /// Connects the event store (creating the stream if needed) and returns the service.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    ///
    /// use csmp_command::{serve, CommandService, CommandServiceConfig};
    /// use csmp_domain::SystemClock;
    ///
    /// let client = async_nats::connect("nats://127.0.0.1:4222").await?;
    /// let service =
    ///     CommandService::connect(client, CommandServiceConfig::default(), Arc::new(SystemClock))
    ///         .await?;
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
    /// serve(listener, service, async {
    ///     let _ = tokio::signal::ctrl_c().await;
    /// })
    /// .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(
        client: async_nats::Client,
        config: CommandServiceConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let store = EventStore::connect(client, config.store).await?;
        info!(
            max_retries = config.max_retries,
            cache_capacity = config.cache_capacity,
            "command service ready"
        );
        Ok(CommandService {
            inner: Arc::new(Inner {
                store,
                limits: Limits::new(&config.tenants),
                max_retries: config.max_retries,
                clock,
                tickets: TicketCache::new(config.cache_capacity),
            }),
        })
    }

    /// The event store the service appends to.
    pub fn store(&self) -> &EventStore {
        &self.inner.store
    }

    async fn run(&self, request: impl IntoCommand) -> Result<Response<pb::CommandResult>, Status> {
        let CommandRequest { meta, target, command } = request.into_command()?;
        let ticket_id = match target {
            Target::Ticket(id) => id,
            Target::ForRequest => TicketId::for_request(&meta.tenant, &meta.request_id),
        };
        let span = info_span!(
            "command",
            action = command.action(),
            tenant = %meta.tenant,
            ticket_id = %ticket_id,
            request_id = %meta.request_id,
        );
        self.inner.handle(meta, ticket_id, command).instrument(span).await.map(Response::new)
    }
}

impl Inner {
    async fn handle(
        &self,
        meta: Meta,
        ticket_id: TicketId,
        command: Command,
    ) -> Result<pb::CommandResult, Status> {
        let ctx = CommandContext {
            actor: meta.actor,
            now: self.clock.now(),
            occurred_at: meta.occurred_at,
            request_id: meta.request_id,
            correlation_id: meta.correlation_id,
            causation_id: meta.causation_id,
            refund_limits: self.limits.of(&meta.tenant).clone(),
        };

        // 1. Hold the ticket's lock for the whole command: this process's commands on one
        // ticket queue here instead of racing each other to the stream.
        let slot = self.tickets.slot(&meta.tenant, ticket_id);
        let mut cached = slot.lock().await;

        // 2. The ticket's state. An open assumes a ticket without events and saves the read:
        // the append expects the subject to be empty, so an existing ticket shows up as a
        // conflict and is read then.
        let mut assumed_new = false;
        let (mut ticket, mut fresh) = match cached.take() {
            Some(ticket) => (ticket, false),
            None if matches!(command, Command::Open(_)) => {
                assumed_new = true;
                (Ticket::new(meta.tenant.clone(), ticket_id), false)
            }
            None => (self.load(&meta.tenant, ticket_id).await?, true),
        };

        let mut conflicts = 0;
        loop {
            // 3. A request handled before is answered from its receipt, unless the ticket is
            // hidden from the caller (another customer's).
            if ticket.hidden_from(&ctx.actor) {
                keep(&mut cached, ticket);
                return Err(Status::not_found(format!("ticket {ticket_id} not found")));
            }
            if let Some(answer) = answer_from_receipt(&ticket, &command, &ctx) {
                keep(&mut cached, ticket);
                return answer;
            }

            // 4. Decide. A rejection decided on a cached state is confirmed on the stored
            // history first: another process may have moved the ticket on.
            let payload = match ticket.decide(&command, &ctx) {
                Ok(payload) => payload,
                Err(err) if !fresh && depends_on_state(&err) => {
                    debug!(cause = %err, "rejected on cached state; reading newer events");
                    self.catch_up(&mut ticket).await?;
                    fresh = true;
                    continue;
                }
                Err(err) => {
                    let status = domain_status(&err, &ticket);
                    keep(&mut cached, ticket);
                    return Err(status);
                }
            };
            let envelope = ticket.envelope(payload, &ctx, Uuid::now_v7());

            // 5. Append on the condition that the ticket has not moved since.
            match self.store.append(&envelope, ticket.last_stream_seq).await {
                Ok(Appended { stream_seq, duplicate: false }) => {
                    let result = result(
                        ticket_id,
                        envelope.version,
                        stream_seq,
                        envelope.event_id,
                        envelope.event_type(),
                        false,
                    );
                    debug!(version = envelope.version, seq = stream_seq, "event appended");
                    if let Err(err) = ticket.apply(&RecordedEvent { stream_seq, envelope }) {
                        // The event is stored; only the cached state is lost.
                        error!(cause = %err, "appended event does not apply to the ticket");
                        return Ok(result);
                    }
                    keep(&mut cached, ticket);
                    return Ok(result);
                }
                Ok(Appended { stream_seq, duplicate: true }) => {
                    // This request was stored before, by another process or by an attempt whose
                    // acknowledgement got lost; its receipt is in the history.
                    debug!(seq = stream_seq, "request stored before; reading its receipt");
                    self.catch_up(&mut ticket).await?;
                    fresh = true;
                    if ticket.receipt(&ctx.request_id).is_none() {
                        return Err(Status::aborted(format!(
                            "request {} was stored at position {stream_seq} but is not in \
                             ticket {ticket_id}'s history yet; retry",
                            ctx.request_id
                        )));
                    }
                }
                Err(AppendError::Conflict { .. }) if std::mem::take(&mut assumed_new) => {
                    debug!("the ticket has events already; reading them");
                    self.catch_up(&mut ticket).await?;
                    fresh = true;
                }
                Err(AppendError::Conflict { .. }) => {
                    conflicts += 1;
                    if conflicts > self.max_retries {
                        warn!(attempts = conflicts, "gave up after losing every race");
                        return Err(Status::aborted(format!(
                            "ticket {ticket_id} kept changing; gave up after {conflicts} attempts"
                        )));
                    }
                    warn!(attempt = conflicts, "ticket changed concurrently; deciding again");
                    self.catch_up(&mut ticket).await?;
                    fresh = true;
                }
                Err(err @ AppendError::Unavailable { .. }) => {
                    // The event may or may not be stored; the next command reads the history.
                    warn!(cause = %err, "append failed");
                    return Err(Status::unavailable(err.to_string()));
                }
                Err(err) => {
                    error!(cause = %err, "append refused");
                    return Err(Status::internal(err.to_string()));
                }
            }
        }
    }

    /// Reads a ticket's whole history.
    async fn load(&self, tenant: &TenantId, ticket_id: TicketId) -> Result<Ticket, Status> {
        let events = self.store.load(tenant, ticket_id).await.map_err(read_failed)?;
        Ticket::replay(tenant.clone(), ticket_id, &events).map_err(|err| {
            error!(cause = %err, "the ticket's history does not replay");
            Status::internal(format!("ticket {ticket_id}'s history does not replay: {err}"))
        })
    }

    /// Applies the events `ticket` has missed. A state that failed halfway must not be kept.
    async fn catch_up(&self, ticket: &mut Ticket) -> Result<(), Status> {
        let after = ticket.last_stream_seq;
        let events =
            self.store.load_after(&ticket.tenant, ticket.id, after).await.map_err(read_failed)?;
        for event in &events {
            ticket.apply(event).map_err(|err| {
                error!(cause = %err, seq = event.stream_seq, "a newer event does not apply");
                Status::internal(format!("ticket {}'s history does not replay: {err}", ticket.id))
            })?;
        }
        Ok(())
    }
}

/// Puts the state back into the cache; a ticket without events is not worth a place there.
fn keep(cached: &mut MutexGuard<'_, Option<Ticket>>, ticket: Ticket) {
    if ticket.exists() {
        **cached = Some(ticket);
    }
}

/// The answer for a request id the ticket has handled before, if it has.
fn answer_from_receipt(
    ticket: &Ticket,
    command: &Command,
    ctx: &CommandContext,
) -> Option<Result<pb::CommandResult, Status>> {
    let receipt = ticket.receipt(&ctx.request_id)?;
    if !records(command).contains(&receipt.event_type.as_str()) {
        let err = DomainError::RequestIdReused(receipt.event_type.clone());
        return Some(Err(invalid_input(&err, None)));
    }
    if command_fingerprint(command, &ctx.actor) != receipt.fingerprint {
        let err = DomainError::RequestIdReusedWithOtherValues(receipt.event_type.clone());
        return Some(Err(invalid_input(&err, None)));
    }
    debug!(version = receipt.version, "request handled before");
    Some(Ok(result(
        ticket.id,
        receipt.version,
        receipt.stream_seq,
        receipt.event_id,
        &receipt.event_type,
        true,
    )))
}

/// The event types a command may record.
fn records(command: &Command) -> &'static [&'static str] {
    match command {
        Command::Open(_) => &["ticket.opened"],
        Command::Acknowledge => &["ticket.acknowledged"],
        Command::Assign { .. } => &["ticket.assigned"],
        Command::ChangePriority { .. } => &["ticket.priority_changed"],
        Command::Escalate { .. } => &["ticket.escalated"],
        Command::AskCustomer { .. } => &["ticket.customer_asked"],
        Command::CustomerReply { .. } => &["ticket.customer_replied"],
        Command::Resolve { .. } => &["ticket.resolved"],
        Command::Reopen { .. } => &["ticket.reopened"],
        Command::Close => &["ticket.closed"],
        Command::Refund { .. } => &["refund.issued", "refund.requested"],
        Command::ApproveRefund { .. } => &["refund.approved"],
        Command::RejectRefund { .. } => &["refund.rejected"],
        Command::GiveFeedback { .. } => &["feedback.given"],
        Command::RecordSlaSignal { .. } => &["sla.warning_reached", "sla.breached"],
    }
}

/// Whether a rejection could go away on a newer state of the ticket.
fn depends_on_state(err: &DomainError) -> bool {
    matches!(err.kind(), ErrorKind::WrongState | ErrorKind::NotFound | ErrorKind::NotPermitted)
}

fn result(
    ticket_id: TicketId,
    version: u64,
    stream_position: u64,
    event_id: Uuid,
    event_type: &str,
    duplicate: bool,
) -> pb::CommandResult {
    pb::CommandResult {
        ticket_id: ticket_id.to_string(),
        version,
        stream_position,
        event_ids: vec![event_id.to_string()],
        event_types: vec![event_type.to_owned()],
        duplicate,
    }
}

/// The gRPC status of a rejected command.
fn domain_status(err: &DomainError, ticket: &Ticket) -> Status {
    match err.kind() {
        ErrorKind::InvalidInput => invalid_input(err, None),
        ErrorKind::NotFound => Status::not_found(format!("ticket {} not found", ticket.id)),
        ErrorKind::WrongState => match err {
            DomainError::InvalidTransition { .. } => Status::failed_precondition(err.to_string()),
            _ => Status::failed_precondition(format!("{err} (ticket is {})", ticket.status)),
        },
        ErrorKind::NotPermitted => Status::permission_denied(err.to_string()),
    }
}

fn read_failed(err: StoreError) -> Status {
    match err.kind() {
        StoreErrorKind::Unavailable => warn!(cause = %err, "failed to read the ticket"),
        _ => error!(cause = %err, "failed to read the ticket"),
    }
    store_status(&err)
}

fn store_status(err: &StoreError) -> Status {
    match err.kind() {
        StoreErrorKind::Unavailable => Status::unavailable(err.to_string()),
        _ => Status::internal(err.to_string()),
    }
}

#[tonic::async_trait]
impl TicketCommands for CommandService {
    async fn open_ticket(
        &self,
        request: Request<pb::OpenTicketRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }

    async fn acknowledge_ticket(
        &self,
        request: Request<pb::AcknowledgeTicketRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }

    async fn assign_ticket(
        &self,
        request: Request<pb::AssignTicketRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }

    async fn change_priority(
        &self,
        request: Request<pb::ChangePriorityRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }

    async fn escalate_ticket(
        &self,
        request: Request<pb::EscalateTicketRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }

    async fn ask_customer(
        &self,
        request: Request<pb::AskCustomerRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }

    async fn record_customer_reply(
        &self,
        request: Request<pb::RecordCustomerReplyRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }

    async fn resolve_ticket(
        &self,
        request: Request<pb::ResolveTicketRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }

    async fn reopen_ticket(
        &self,
        request: Request<pb::ReopenTicketRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }

    async fn close_ticket(
        &self,
        request: Request<pb::CloseTicketRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }

    async fn refund_ticket(
        &self,
        request: Request<pb::RefundTicketRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }

    async fn approve_refund(
        &self,
        request: Request<pb::ApproveRefundRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }

    async fn reject_refund(
        &self,
        request: Request<pb::RejectRefundRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }

    async fn give_feedback(
        &self,
        request: Request<pb::GiveFeedbackRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }

    async fn record_sla_signal(
        &self,
        request: Request<pb::RecordSlaSignalRequest>,
    ) -> Result<Response<pb::CommandResult>, Status> {
        self.run(request.into_inner()).await
    }
}
