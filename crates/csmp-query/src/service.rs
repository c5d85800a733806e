//! The `TicketQueries` RPCs: validate the request, wait for its `min_position`, read, answer.

use chrono::Duration;
use csmp_domain::{TenantId, TicketId, TicketStatus};
use csmp_proto::v1 as pb;
use csmp_proto::v1::ticket_queries_server::TicketQueries;
use deadpool_postgres::Client;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::convert::{
    from_timestamp, id_filter, status_filter, tier_filter, time_range, timestamp,
};
use crate::error::{invalid, pool_status};
use crate::wait::{self, Model};
use crate::{analytics, page, sla, tickets, QueryService};

/// Statuses a queue shows when the request names none.
const OPEN_STATUSES: [TicketStatus; 3] =
    [TicketStatus::New, TicketStatus::Open, TicketStatus::WaitingOnCustomer];
/// Rows of a lowest-rated list when the request gives no limit, and the most served.
const DEFAULT_LIMIT: u32 = 10;
const MAX_LIMIT: u32 = 100;
/// Timeline entries of a ticket detail when the request gives no limit, and the most served.
const DEFAULT_TIMELINE_LIMIT: u32 = 200;
const MAX_TIMELINE_LIMIT: u32 = 1000;
/// Length of the recurring-issues window when the request gives none.
const DEFAULT_WINDOW_DAYS: u32 = 7;
/// The longest recurring-issues window served.
const MAX_WINDOW_DAYS: u32 = 366;

fn tenant(raw: &str) -> Result<TenantId, Status> {
    TenantId::parse(raw).map_err(|err| Status::invalid_argument(err.to_string()))
}

fn ticket_id(raw: &str) -> Result<TicketId, Status> {
    TicketId::parse(raw).map_err(|err| Status::invalid_argument(err.to_string()))
}

fn not_found(ticket: TicketId) -> Status {
    Status::not_found(format!("ticket {ticket} not found"))
}

impl QueryService {
    /// A pooled connection, after the read models in `models` have applied `min_position`.
    ///
    /// A position the stream has not reached is refused at once: no command returned it, and
    /// waiting for it would only hold the caller. The wait itself takes a connection only for
    /// each look at the checkpoints, so that waiting queries cannot starve the pool.
    async fn read(&self, models: &[Model], min_position: u64) -> Result<Client, Status> {
        if min_position > 0 {
            // No position was handed out by a stream that does not exist.
            let last = self.stream_last_position().await?.ok_or_else(|| self.no_stream())?;
            if min_position > last {
                return Err(Status::invalid_argument(format!(
                    "invalid min_position: {min_position} is beyond the stream's last position {last}"
                )));
            }
            let timeout = self.inner.config.read_your_writes_timeout;
            wait::until_applied(&self.inner.pool, models, min_position, timeout).await?;
        }
        self.inner.pool.get().await.map_err(pool_status)
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }
}

/// Splits a page fetched with one extra row into the page and the next page's token.
fn paged(mut rows: Vec<pb::TicketSummary>, kind: &str, offset: i64, size: i64) -> pb::TicketPage {
    let more = rows.len() as i64 > size;
    rows.truncate(size as usize);
    let next_page_token = if more { page::encode(kind, offset + size) } else { String::new() };
    pb::TicketPage { tickets: rows, next_page_token }
}

#[tonic::async_trait]
impl TicketQueries for QueryService {
    #[instrument(skip_all, fields(rpc = "get_ticket"))]
    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::TicketDetail>, Status> {
        let request = request.into_inner();
        let tenant = tenant(&request.tenant)?;
        let id = ticket_id(&request.ticket_id)?;
        let after_version = i64::try_from(request.timeline_after_version).map_err(|_| {
            invalid(
                "timeline_after_version",
                format!("{} is too large", request.timeline_after_version),
            )
        })?;
        let limit = match request.timeline_limit {
            0 => DEFAULT_TIMELINE_LIMIT,
            n => n.min(MAX_TIMELINE_LIMIT),
        };
        let page = tickets::TimelinePage { after_version, limit: i64::from(limit) };
        let pg = self.read(&[Model::Queues, Model::Sla], request.min_position).await?;
        let detail = tickets::ticket(&pg, tenant.as_str(), id.0, page).await?;
        detail.map(Response::new).ok_or_else(|| not_found(id))
    }

    #[instrument(skip_all, fields(rpc = "list_queue"))]
    async fn list_queue(
        &self,
        request: Request<pb::ListQueueRequest>,
    ) -> Result<Response<pb::TicketPage>, Status> {
        let request = request.into_inner();
        let tenant = tenant(&request.tenant)?;
        let tier = tier_filter(request.tier)?;
        let statuses = if request.statuses.is_empty() {
            OPEN_STATUSES.to_vec()
        } else {
            request.statuses.iter().map(|s| status_filter(*s)).collect::<Result<_, _>>()?
        };
        let assignee = Some(request.assignee.as_str()).filter(|a| !a.is_empty());
        if let Some(assignee) = assignee {
            id_filter("assignee", assignee)?;
        }
        let size = page::page_size(request.page_size);
        let offset = page::decode("queue", &request.page_token)?;
        let pg = self.read(&[Model::Queues, Model::Sla], request.min_position).await?;
        let filter = tickets::QueueFilter { tenant: tenant.as_str(), tier, assignee, statuses };
        let rows = tickets::queue(&pg, &filter, size + 1, offset).await?;
        Ok(Response::new(paged(rows, "queue", offset, size)))
    }

    #[instrument(skip_all, fields(rpc = "get_customer_history"))]
    async fn get_customer_history(
        &self,
        request: Request<pb::GetCustomerHistoryRequest>,
    ) -> Result<Response<pb::TicketPage>, Status> {
        let request = request.into_inner();
        let tenant = tenant(&request.tenant)?;
        id_filter("customer_id", &request.customer_id)?;
        let size = page::page_size(request.page_size);
        let offset = page::decode("history", &request.page_token)?;
        let pg = self.read(&[Model::Queues, Model::Sla], request.min_position).await?;
        let rows =
            tickets::customer_history(&pg, tenant.as_str(), &request.customer_id, size + 1, offset)
                .await?;
        Ok(Response::new(paged(rows, "history", offset, size)))
    }

    #[instrument(skip_all, fields(rpc = "count_tickets"))]
    async fn count_tickets(
        &self,
        request: Request<pb::CountTicketsRequest>,
    ) -> Result<Response<pb::TicketCounts>, Status> {
        let request = request.into_inner();
        let tenant = tenant(&request.tenant)?;
        let pg = self.read(&[Model::Queues], request.min_position).await?;
        Ok(Response::new(tickets::counts(&pg, tenant.as_str()).await?))
    }

    #[instrument(skip_all, fields(rpc = "get_sla_status"))]
    async fn get_sla_status(
        &self,
        request: Request<pb::GetSlaStatusRequest>,
    ) -> Result<Response<pb::SlaStatus>, Status> {
        let request = request.into_inner();
        let tenant = tenant(&request.tenant)?;
        let id = ticket_id(&request.ticket_id)?;
        let pg = self.read(&[Model::Sla], request.min_position).await?;
        let status = sla::status(&pg, tenant.as_str(), id.0, self.now()).await?;
        status.map(Response::new).ok_or_else(|| not_found(id))
    }

    #[instrument(skip_all, fields(rpc = "list_sla_tickets"))]
    async fn list_sla_tickets(
        &self,
        request: Request<pb::ListSlaTicketsRequest>,
    ) -> Result<Response<pb::SlaPage>, Status> {
        use pb::list_sla_tickets_request::Kind;
        let request = request.into_inner();
        let tenant = tenant(&request.tenant)?;
        let listing = match Kind::try_from(request.kind) {
            Ok(Kind::AtRisk) => sla::Listing::AtRisk,
            Ok(Kind::Breached) => sla::Listing::Breached,
            Ok(Kind::Unspecified) | Err(_) => {
                return Err(invalid("kind", "must be KIND_AT_RISK or KIND_BREACHED"))
            }
        };
        let size = page::page_size(request.page_size);
        let pg = self.read(&[Model::Sla], request.min_position).await?;
        let page = sla::list(&pg, tenant.as_str(), listing, size, self.now()).await?;
        Ok(Response::new(page))
    }

    #[instrument(skip_all, fields(rpc = "get_feedback_summary"))]
    async fn get_feedback_summary(
        &self,
        request: Request<pb::FeedbackSummaryRequest>,
    ) -> Result<Response<pb::FeedbackSummary>, Status> {
        let request = request.into_inner();
        let tenant = tenant(&request.tenant)?;
        let (from, to) = time_range(request.from.as_ref(), request.to.as_ref())?;
        let grouping = pb::FeedbackGrouping::try_from(request.group_by)
            .map_err(|_| invalid("group_by", format!("{} is not a grouping", request.group_by)))?;
        let pg = self.read(&[Model::Feedback], request.min_position).await?;
        let summary = analytics::summary(&pg, tenant.as_str(), from, to, grouping).await?;
        Ok(Response::new(summary))
    }

    #[instrument(skip_all, fields(rpc = "get_feedback_themes"))]
    async fn get_feedback_themes(
        &self,
        request: Request<pb::FeedbackThemesRequest>,
    ) -> Result<Response<pb::FeedbackThemes>, Status> {
        let request = request.into_inner();
        let tenant = tenant(&request.tenant)?;
        let (from, to) = time_range(request.from.as_ref(), request.to.as_ref())?;
        let pg = self.read(&[Model::Feedback], request.min_position).await?;
        Ok(Response::new(analytics::themes(&pg, tenant.as_str(), from, to).await?))
    }

    #[instrument(skip_all, fields(rpc = "list_lowest_rated"))]
    async fn list_lowest_rated(
        &self,
        request: Request<pb::ListLowestRatedRequest>,
    ) -> Result<Response<pb::LowestRated>, Status> {
        let request = request.into_inner();
        let tenant = tenant(&request.tenant)?;
        let limit = if request.limit == 0 { DEFAULT_LIMIT } else { request.limit.min(MAX_LIMIT) };
        let pg = self.read(&[Model::Feedback], request.min_position).await?;
        Ok(Response::new(analytics::lowest_rated(&pg, tenant.as_str(), i64::from(limit)).await?))
    }

    #[instrument(skip_all, fields(rpc = "list_recurring_issues"))]
    async fn list_recurring_issues(
        &self,
        request: Request<pb::RecurringIssuesRequest>,
    ) -> Result<Response<pb::RecurringIssues>, Status> {
        let request = request.into_inner();
        let tenant = tenant(&request.tenant)?;
        let days = match request.window_days {
            0 => DEFAULT_WINDOW_DAYS,
            days if days <= MAX_WINDOW_DAYS => days,
            days => {
                return Err(invalid(
                    "window_days",
                    format!("{days} is more than {MAX_WINDOW_DAYS}"),
                ))
            }
        };
        let now = from_timestamp("now", request.now.as_ref())?.unwrap_or_else(|| self.now());
        let pg = self.read(&[Model::Feedback], request.min_position).await?;
        let window = Duration::days(i64::from(days));
        Ok(Response::new(analytics::recurring(&pg, tenant.as_str(), window, now).await?))
    }

    #[instrument(skip_all, fields(rpc = "get_agent_performance"))]
    async fn get_agent_performance(
        &self,
        request: Request<pb::AgentPerformanceRequest>,
    ) -> Result<Response<pb::AgentPerformance>, Status> {
        let request = request.into_inner();
        let tenant = tenant(&request.tenant)?;
        let (from, to) = time_range(request.from.as_ref(), request.to.as_ref())?;
        let pg = self.read(&[Model::Feedback], request.min_position).await?;
        Ok(Response::new(analytics::agents(&pg, tenant.as_str(), from, to).await?))
    }

    #[instrument(skip_all, fields(rpc = "get_refund_summary"))]
    async fn get_refund_summary(
        &self,
        request: Request<pb::RefundSummaryRequest>,
    ) -> Result<Response<pb::RefundSummary>, Status> {
        let request = request.into_inner();
        let tenant = tenant(&request.tenant)?;
        let pg = self.read(&[Model::Queues], request.min_position).await?;
        Ok(Response::new(tickets::refunds(&pg, tenant.as_str()).await?))
    }

    #[instrument(skip_all, fields(rpc = "get_projector_status"))]
    async fn get_projector_status(
        &self,
        _request: Request<pb::ProjectorStatusRequest>,
    ) -> Result<Response<pb::ProjectorStatus>, Status> {
        let pg = self.inner.pool.get().await.map_err(pool_status)?;
        let stream_last = self.stream_last_position().await?;
        let last = stream_last.unwrap_or(0);
        let mut projectors = Vec::new();
        for model in Model::ALL {
            let (checkpoint, updated_at, dead_letters) = wait::checkpoint(&pg, model).await?;
            // Read models ahead of a stream that is not there: this service reads another
            // stream than the projectors did.
            if stream_last.is_none() && checkpoint > 0 {
                return Err(self.no_stream());
            }
            projectors.push(pb::ProjectorState {
                name: model.schema().to_owned(),
                checkpoint,
                stream_last_position: last,
                lag: last.saturating_sub(checkpoint),
                dead_letters,
                updated_at: updated_at.map(timestamp),
            });
        }
        Ok(Response::new(pb::ProjectorStatus { projectors }))
    }
}

impl QueryService {
    fn no_stream(&self) -> Status {
        Status::unavailable(format!(
            "event stream {} not found: no command has been stored in it yet, or this service \
             is configured with another stream than the command service and projectors",
            self.inner.config.store.stream
        ))
    }

    /// The stream's last position; `None` while the stream does not exist.
    async fn stream_last_position(&self) -> Result<Option<u64>, Status> {
        use async_nats::jetstream::context::GetStreamErrorKind;
        let name = &self.inner.config.store.stream;
        match self.inner.js.get_stream(name).await {
            // Finding the stream reads its info: one request, not two.
            Ok(stream) => Ok(Some(stream.cached_info().state.last_sequence)),
            Err(err)
                if matches!(
                    err.kind(),
                    GetStreamErrorKind::JetStream(js)
                        if js.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(Status::unavailable(format!("failed to read stream {name}: {err}"))),
        }
    }
}
