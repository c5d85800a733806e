//! Queries over the `queues` read model: tickets, queues, customer histories, counts, refunds.
//!
//! Queue order joins each ticket's earliest running SLA due time from the `sla` read model,
//! which lives in the same database.

use std::collections::BTreeMap;

use csmp_domain::{SupportTier, TicketStatus};
use csmp_proto::v1 as pb;
use deadpool_postgres::Client;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use tonic::Status;
use uuid::Uuid;

use crate::convert::{self, opt_timestamp, timestamp};
use crate::error::db_status;

/// The columns of a [`pb::TicketSummary`], from `queues.tickets t` and the SLA due time `due`.
const SUMMARY_COLUMNS: &str = "t.ticket_id, t.customer_id, t.customer_tier, t.channel, \
     t.category, t.product, t.priority, t.tier, t.status, t.subject, t.assignee, \
     t.is_complaint, t.opened_at, t.first_response_at, t.resolved_at, t.version, \
     due.due_at AS sla_due_at";

/// The earliest due time among a ticket's running clocks (neither paused nor stopped).
const DUE_JOIN: &str = "CROSS JOIN LATERAL (
         SELECT min(c.due_at) AS due_at FROM sla.clocks c
         WHERE c.tenant = t.tenant AND c.ticket_id = t.ticket_id AND c.running
     ) due";

fn summary(row: &Row) -> pb::TicketSummary {
    let ticket_id: Uuid = row.get("ticket_id");
    pb::TicketSummary {
        ticket_id: ticket_id.to_string(),
        customer_id: row.get("customer_id"),
        customer_tier: convert::customer_tier(row.get("customer_tier")),
        channel: convert::channel(row.get("channel")),
        category: row.get("category"),
        product: row.get("product"),
        priority: convert::priority(row.get("priority")),
        tier: convert::support_tier(row.get("tier")),
        status: convert::status(row.get("status")),
        subject: row.get("subject"),
        assignee: row.get::<_, Option<String>>("assignee").unwrap_or_default(),
        is_complaint: row.get("is_complaint"),
        opened_at: opt_timestamp(row.get("opened_at")),
        first_response_at: opt_timestamp(row.get("first_response_at")),
        resolved_at: opt_timestamp(row.get("resolved_at")),
        sla_due_at: opt_timestamp(row.get("sla_due_at")),
        version: row.get::<_, i64>("version") as u64,
    }
}

/// Which part of a ticket's timeline a detail carries.
pub(crate) struct TimelinePage {
    /// Entries after this version.
    pub after_version: i64,
    /// At most this many entries.
    pub limit: i64,
}

/// One ticket with a page of its timeline and its refunds; `None` when the tenant has no such
/// ticket.
pub(crate) async fn ticket(
    pg: &Client,
    tenant: &str,
    ticket_id: Uuid,
    page: TimelinePage,
) -> Result<Option<pb::TicketDetail>, Status> {
    let ticket_sql = format!(
        "SELECT {SUMMARY_COLUMNS}, t.description, t.csat, t.nps
         FROM queues.tickets t {DUE_JOIN}
         WHERE t.tenant = $1 AND t.ticket_id = $2"
    );
    let timeline_sql = "SELECT version, position, event_id, event_type, actor_id, actor_role,
                occurred_at, recorded_at, payload::text AS payload
         FROM queues.timeline WHERE tenant = $1 AND ticket_id = $2 AND version > $3
         ORDER BY version LIMIT $4";
    let refunds_sql = "SELECT currency,
                coalesce(sum(amount_minor) FILTER (WHERE status IN ('issued', 'approved')), 0)
                    ::int8 AS refunded,
                coalesce(sum(amount_minor) FILTER (WHERE status = 'awaiting_approval'), 0)
                    ::int8 AS awaiting,
                count(*) FILTER (WHERE status IN ('issued', 'approved')) AS refunded_count,
                count(*) FILTER (WHERE status = 'awaiting_approval') AS awaiting_count
         FROM queues.refunds WHERE tenant = $1 AND ticket_id = $2
         GROUP BY currency ORDER BY currency";

    // The three reads are pipelined on one connection.
    let params: [&(dyn ToSql + Sync); 2] = [&tenant, &ticket_id];
    // One entry more than asked tells whether the timeline goes on.
    let fetch = page.limit + 1;
    let timeline_params: [&(dyn ToSql + Sync); 4] =
        [&tenant, &ticket_id, &page.after_version, &fetch];
    let (row, mut timeline, refunds) = futures::try_join!(
        pg.query_opt(&ticket_sql, &params),
        pg.query(timeline_sql, &timeline_params),
        pg.query(refunds_sql, &params),
    )
    .map_err(db_status)?;
    let Some(row) = row else { return Ok(None) };

    let more = timeline.len() as i64 > page.limit;
    timeline.truncate(page.limit as usize);
    let timeline_next_after_version = match timeline.last() {
        Some(last) if more => last.get::<_, i64>("version") as u64,
        _ => 0,
    };
    let timeline = timeline
        .iter()
        .map(|e| pb::TimelineEntry {
            version: e.get::<_, i64>("version") as u64,
            stream_position: e.get::<_, i64>("position") as u64,
            event_id: e.get::<_, Uuid>("event_id").to_string(),
            event_type: e.get("event_type"),
            actor: Some(pb::Actor {
                id: e.get("actor_id"),
                role: convert::role(e.get("actor_role")),
            }),
            occurred_at: opt_timestamp(e.get("occurred_at")),
            recorded_at: Some(timestamp(e.get("recorded_at"))),
            payload_json: e.get("payload"),
        })
        .collect();
    let money = |r: &Row, column: &str| pb::Money {
        amount_minor: r.get(column),
        currency: r.get("currency"),
    };
    Ok(Some(pb::TicketDetail {
        ticket: Some(summary(&row)),
        description: row.get("description"),
        timeline,
        refunded: refunds
            .iter()
            .filter(|r| r.get::<_, i64>("refunded_count") > 0)
            .map(|r| money(r, "refunded"))
            .collect(),
        awaiting_approval: refunds
            .iter()
            .filter(|r| r.get::<_, i64>("awaiting_count") > 0)
            .map(|r| money(r, "awaiting"))
            .collect(),
        csat: row.get::<_, Option<i16>>("csat").map(|v| v as u32),
        nps: row.get::<_, Option<i16>>("nps").map(|v| v as u32),
        timeline_next_after_version,
    }))
}

/// What a queue listing selects.
pub(crate) struct QueueFilter<'a> {
    pub tenant: &'a str,
    pub tier: Option<SupportTier>,
    pub assignee: Option<&'a str>,
    pub statuses: Vec<TicketStatus>,
}

/// One page of a queue in queue order, fetching one row more to tell whether another follows.
pub(crate) async fn queue(
    pg: &Client,
    filter: &QueueFilter<'_>,
    limit: i64,
    offset: i64,
) -> Result<Vec<pb::TicketSummary>, Status> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM queues.tickets t {DUE_JOIN}
         WHERE t.tenant = $1 AND t.status = ANY($2)
           AND ($3::text IS NULL OR t.tier = $3)
           AND ($4::text IS NULL OR t.assignee = $4)
         ORDER BY t.priority_rank, t.customer_tier_rank, due.due_at NULLS LAST, t.ticket_id
         LIMIT $5 OFFSET $6"
    );
    let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
    let tier = filter.tier.map(|t| t.as_str());
    let rows = pg
        .query(&sql, &[&filter.tenant, &statuses, &tier, &filter.assignee, &limit, &offset])
        .await
        .map_err(db_status)?;
    Ok(rows.iter().map(summary).collect())
}

/// One page of a customer's tickets, the most recently opened first.
pub(crate) async fn customer_history(
    pg: &Client,
    tenant: &str,
    customer_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<pb::TicketSummary>, Status> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM queues.tickets t {DUE_JOIN}
         WHERE t.tenant = $1 AND t.customer_id = $2
         ORDER BY t.opened_at DESC NULLS LAST, t.opened_position DESC
         LIMIT $3 OFFSET $4"
    );
    let rows =
        pg.query(&sql, &[&tenant, &customer_id, &limit, &offset]).await.map_err(db_status)?;
    Ok(rows.iter().map(summary).collect())
}

/// Tickets per status and support tier, in status then tier order.
pub(crate) async fn counts(pg: &Client, tenant: &str) -> Result<pb::TicketCounts, Status> {
    let rows = pg
        .query(
            "SELECT status, tier, count(*) FROM queues.tickets WHERE tenant = $1
             GROUP BY status, tier",
            &[&tenant],
        )
        .await
        .map_err(db_status)?;
    let mut counts: Vec<pb::TicketCount> = rows
        .iter()
        .map(|r| pb::TicketCount {
            status: convert::status(r.get(0)),
            tier: convert::support_tier(r.get(1)),
            count: r.get::<_, i64>(2) as u64,
        })
        .collect();
    counts.sort_by_key(|c| (c.status, c.tier));
    let total = counts.iter().map(|c| c.count).sum();
    Ok(pb::TicketCounts { counts, total })
}

/// Refund counts and sums per currency.
pub(crate) async fn refunds(pg: &Client, tenant: &str) -> Result<pb::RefundSummary, Status> {
    let rows = pg
        .query(
            "SELECT currency,
                    count(*) FILTER (WHERE status IN ('issued', 'approved')),
                    coalesce(sum(amount_minor) FILTER (WHERE status IN ('issued', 'approved')),
                             0)::int8,
                    count(*) FILTER (WHERE status = 'awaiting_approval'),
                    coalesce(sum(amount_minor) FILTER (WHERE status = 'awaiting_approval'),
                             0)::int8,
                    count(*) FILTER (WHERE status = 'rejected')
             FROM queues.refunds WHERE tenant = $1
             GROUP BY currency ORDER BY currency",
            &[&tenant],
        )
        .await
        .map_err(db_status)?;
    let mut by_currency = BTreeMap::new();
    for r in rows {
        let currency: String = r.get(0);
        by_currency.insert(
            currency.clone(),
            pb::RefundTotals {
                currency,
                issued_count: r.get::<_, i64>(1) as u64,
                issued_minor: r.get(2),
                awaiting_count: r.get::<_, i64>(3) as u64,
                awaiting_minor: r.get(4),
                rejected_count: r.get::<_, i64>(5) as u64,
            },
        );
    }
    Ok(pb::RefundSummary { currencies: by_currency.into_values().collect() })
}
