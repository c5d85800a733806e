//! The `feedback` read model: per ticket the facts that analytics group and rank, and every
//! escalation with the agent who made it.
//!
//! Durations (`first_response_seconds`, `resolution_seconds`) are stored only when both ends
//! are known times: a ticket imported without its opening time has none, so that no figure is
//! ever computed from a made-up start. The query service aggregates these rows (medians,
//! percentiles, CSAT, NPS); nothing is aggregated here.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use csmp_domain::{
    Channel, CustomerTier, EventPayload, Priority, RecordedEvent, Sentiment, SupportTier,
};
use tokio_postgres::{Client, Statement, Transaction};
use tracing::debug;
use uuid::Uuid;

use crate::error::ProjectorError;
use crate::intake::check_place;
use crate::queues::batch_keys;
use crate::rows::{parse_column, unnest_upsert, ColumnArrays, RowTable};
use crate::runner::Rejected;

/// The read model's name in errors about its rows, whichever schema holds them.
const SCHEMA: &str = "feedback";

const TICKET_COLUMNS: &[(&str, &str)] = &[
    ("tenant", "text"),
    ("ticket_id", "uuid"),
    ("customer_id", "text"),
    ("customer_tier", "text"),
    ("channel", "text"),
    ("category", "text"),
    ("product", "text"),
    ("priority", "text"),
    ("tier", "text"),
    ("acknowledged_by", "text"),
    ("resolved_by", "text"),
    ("agent", "text"),
    ("opened_at", "timestamptz"),
    ("first_response_at", "timestamptz"),
    ("first_response_seconds", "float8"),
    ("resolved_at", "timestamptz"),
    ("resolved_day", "date"),
    ("resolution_seconds", "float8"),
    ("csat", "int2"),
    ("nps", "int2"),
    ("comment", "text"),
    ("sentiment", "text"),
    ("themes", "text"),
    ("rated_at", "timestamptz"),
    ("escalations", "int4"),
    ("version", "int8"),
    ("last_position", "int8"),
];

const TICKETS: RowTable = RowTable {
    name: "tickets",
    columns: TICKET_COLUMNS,
    key: &["tenant", "ticket_id"],
    fixed: &["customer_id", "customer_tier", "channel", "category", "product", "opened_at"],
};

const ESCALATION_COLUMNS: &[(&str, &str)] = &[
    ("tenant", "text"),
    ("ticket_id", "uuid"),
    ("version", "int8"),
    ("agent", "text"),
    ("from_tier", "text"),
    ("to_tier", "text"),
    ("occurred_at", "timestamptz"),
    ("position", "int8"),
];

/// A `feedback.tickets` row.
#[derive(Debug, Clone)]
struct FeedbackRow {
    tenant: String,
    ticket_id: Uuid,
    customer_id: String,
    customer_tier: CustomerTier,
    channel: Channel,
    category: String,
    product: String,
    priority: Priority,
    tier: SupportTier,
    acknowledged_by: Option<String>,
    resolved_by: Option<String>,
    opened_at: Option<DateTime<Utc>>,
    first_response_at: Option<DateTime<Utc>>,
    first_response_seconds: Option<f64>,
    resolved_at: Option<DateTime<Utc>>,
    resolution_seconds: Option<f64>,
    csat: Option<i16>,
    nps: Option<i16>,
    comment: Option<String>,
    sentiment: Option<Sentiment>,
    /// Theme names, sorted, joined by commas; empty for none.
    themes: String,
    rated_at: Option<DateTime<Utc>>,
    escalations: i32,
    version: i64,
    last_position: i64,
}

impl FeedbackRow {
    /// The agent a ticket's figures count for: who acknowledged it, or else who resolved it.
    fn agent(&self) -> Option<&str> {
        self.acknowledged_by.as_deref().or(self.resolved_by.as_deref())
    }

    fn resolved_day(&self) -> Option<NaiveDate> {
        self.resolved_at.map(|at| at.date_naive())
    }
}

/// A `feedback.escalations` row.
struct EscalationRow {
    tenant: String,
    ticket_id: Uuid,
    version: i64,
    agent: String,
    from_tier: SupportTier,
    to_tier: SupportTier,
    occurred_at: DateTime<Utc>,
    position: i64,
}

/// The prepared statements of the feedback projector.
pub(crate) struct Feedback {
    load: Statement,
    insert_tickets: Statement,
    update_tickets: Statement,
    insert_escalations: Statement,
}

type Key = (String, Uuid);

impl Feedback {
    /// Prepares the statements writing the read model in `schema`.
    pub async fn prepare(pg: &Client, schema: &str) -> Result<Self, ProjectorError> {
        let prepare = |sql: String| async move {
            pg.prepare(&sql).await.map_err(ProjectorError::postgres("prepare feedback statement"))
        };
        let load = format!(
            "SELECT {} FROM {schema}.tickets t
             JOIN UNNEST($1::text[], $2::uuid[]) AS k(tenant, ticket_id) USING (tenant, ticket_id)",
            TICKET_COLUMNS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
        );
        Ok(Feedback {
            load: prepare(load).await?,
            insert_tickets: prepare(TICKETS.insert_sql(schema)).await?,
            update_tickets: prepare(TICKETS.update_sql(schema)).await?,
            insert_escalations: prepare(unnest_upsert(
                &format!("{schema}.escalations"),
                ESCALATION_COLUMNS,
                &[],
            ))
            .await?,
        })
    }

    /// Applies `events` (in stream order) within `tx`; returns those it could not apply.
    pub async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<Vec<Rejected>, ProjectorError> {
        // 1. The current rows of the batch's tickets.
        let mut tickets = self.load(tx, events).await?;

        // 2. Fold in memory, in stream order.
        let mut changed: Vec<Key> = Vec::new();
        let mut created: HashSet<Key> = HashSet::new();
        let mut escalations = Vec::new();
        let mut rejected = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let envelope = &event.envelope;
            let key = (envelope.tenant.as_str().to_owned(), envelope.ticket_id.0);
            let row = tickets.get_mut(&key);
            if let Err(reason) = check_place(row.as_ref().map(|r| r.version), event) {
                rejected.push(Rejected { index, reason });
                continue;
            }
            match row {
                Some(row) => fold(row, event, &mut escalations),
                None => {
                    tickets.insert(key.clone(), open(event));
                    created.insert(key.clone());
                }
            }
            if !changed.contains(&key) {
                changed.push(key);
            }
            debug!(seq = event.stream_seq, event_type = envelope.event_type(), "feedback applied");
        }

        // 3. Write back, pipelined.
        let (new_rows, old_rows): (Vec<&FeedbackRow>, Vec<&FeedbackRow>) = changed
            .iter()
            .map(|key| &tickets[key])
            .partition(|row| created.contains(&(row.tenant.clone(), row.ticket_id)));
        let update_columns = TICKETS.update_columns();
        futures::try_join!(
            self.write_tickets(tx, &self.insert_tickets, &new_rows, TICKETS.columns),
            self.write_tickets(tx, &self.update_tickets, &old_rows, &update_columns),
            self.write_escalations(tx, &escalations)
        )?;
        Ok(rejected)
    }

    async fn load(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<HashMap<Key, FeedbackRow>, ProjectorError> {
        let (tenants, ids) = batch_keys(events);
        let rows = tx
            .query(&self.load, &[&tenants, &ids])
            .await
            .map_err(ProjectorError::postgres("load feedback tickets"))?;
        let mut tickets = HashMap::with_capacity(rows.len());
        for row in rows {
            let ticket = FeedbackRow {
                tenant: row.get("tenant"),
                ticket_id: row.get("ticket_id"),
                customer_id: row.get("customer_id"),
                customer_tier: parse_column(
                    SCHEMA,
                    "customer_tier",
                    row.get("customer_tier"),
                    CustomerTier::parse,
                )?,
                channel: parse_column(SCHEMA, "channel", row.get("channel"), Channel::parse)?,
                category: row.get("category"),
                product: row.get("product"),
                priority: parse_column(SCHEMA, "priority", row.get("priority"), Priority::parse)?,
                tier: parse_column(SCHEMA, "tier", row.get("tier"), SupportTier::parse)?,
                acknowledged_by: row.get("acknowledged_by"),
                resolved_by: row.get("resolved_by"),
                opened_at: row.get("opened_at"),
                first_response_at: row.get("first_response_at"),
                first_response_seconds: row.get("first_response_seconds"),
                resolved_at: row.get("resolved_at"),
                resolution_seconds: row.get("resolution_seconds"),
                csat: row.get("csat"),
                nps: row.get("nps"),
                comment: row.get("comment"),
                sentiment: row
                    .get::<_, Option<&str>>("sentiment")
                    .map(|raw| parse_column(SCHEMA, "sentiment", raw, Sentiment::parse))
                    .transpose()?,
                themes: row.get("themes"),
                rated_at: row.get("rated_at"),
                escalations: row.get("escalations"),
                version: row.get("version"),
                last_position: row.get("last_position"),
            };
            tickets.insert((ticket.tenant.clone(), ticket.ticket_id), ticket);
        }
        Ok(tickets)
    }

    /// Runs `statement` (the insert or the update of [`TICKETS`]) over `rows`.
    async fn write_tickets(
        &self,
        tx: &Transaction<'_>,
        statement: &Statement,
        rows: &[&FeedbackRow],
        columns: &[(&'static str, &'static str)],
    ) -> Result<(), ProjectorError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut a = ColumnArrays::default();
        a.set("tenant", rows.iter().map(|r| r.tenant.as_str()).collect());
        a.set("ticket_id", rows.iter().map(|r| r.ticket_id).collect());
        a.set("customer_id", rows.iter().map(|r| r.customer_id.as_str()).collect());
        a.set("customer_tier", rows.iter().map(|r| r.customer_tier.as_str()).collect());
        a.set("channel", rows.iter().map(|r| r.channel.as_str()).collect());
        a.set("category", rows.iter().map(|r| r.category.as_str()).collect());
        a.set("product", rows.iter().map(|r| r.product.as_str()).collect());
        a.set("priority", rows.iter().map(|r| r.priority.as_str()).collect());
        a.set("tier", rows.iter().map(|r| r.tier.as_str()).collect());
        a.set("acknowledged_by", rows.iter().map(|r| r.acknowledged_by.as_deref()).collect());
        a.set("resolved_by", rows.iter().map(|r| r.resolved_by.as_deref()).collect());
        a.set("agent", rows.iter().map(|r| r.agent()).collect());
        a.set("opened_at", rows.iter().map(|r| r.opened_at).collect());
        a.set("first_response_at", rows.iter().map(|r| r.first_response_at).collect());
        a.set("first_response_seconds", rows.iter().map(|r| r.first_response_seconds).collect());
        a.set("resolved_at", rows.iter().map(|r| r.resolved_at).collect());
        a.set("resolved_day", rows.iter().map(|r| r.resolved_day()).collect());
        a.set("resolution_seconds", rows.iter().map(|r| r.resolution_seconds).collect());
        a.set("csat", rows.iter().map(|r| r.csat).collect());
        a.set("nps", rows.iter().map(|r| r.nps).collect());
        a.set("comment", rows.iter().map(|r| r.comment.as_deref()).collect());
        a.set(
            "sentiment",
            rows.iter().map(|r| r.sentiment.as_ref().map(Sentiment::as_str)).collect(),
        );
        a.set("themes", rows.iter().map(|r| r.themes.as_str()).collect());
        a.set("rated_at", rows.iter().map(|r| r.rated_at).collect());
        a.set("escalations", rows.iter().map(|r| r.escalations).collect());
        a.set("version", rows.iter().map(|r| r.version).collect());
        a.set("last_position", rows.iter().map(|r| r.last_position).collect());
        tx.execute(statement, &a.params(columns))
            .await
            .map_err(ProjectorError::postgres("write feedback tickets"))?;
        Ok(())
    }

    async fn write_escalations(
        &self,
        tx: &Transaction<'_>,
        rows: &[EscalationRow],
    ) -> Result<(), ProjectorError> {
        if rows.is_empty() {
            return Ok(());
        }
        let tenant: Vec<&str> = rows.iter().map(|r| r.tenant.as_str()).collect();
        let ticket_id: Vec<Uuid> = rows.iter().map(|r| r.ticket_id).collect();
        let version: Vec<i64> = rows.iter().map(|r| r.version).collect();
        let agent: Vec<&str> = rows.iter().map(|r| r.agent.as_str()).collect();
        let from_tier: Vec<&str> = rows.iter().map(|r| r.from_tier.as_str()).collect();
        let to_tier: Vec<&str> = rows.iter().map(|r| r.to_tier.as_str()).collect();
        let occurred_at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.occurred_at).collect();
        let position: Vec<i64> = rows.iter().map(|r| r.position).collect();
        tx.execute(
            &self.insert_escalations,
            &[&tenant, &ticket_id, &version, &agent, &from_tier, &to_tier, &occurred_at, &position],
        )
        .await
        .map_err(ProjectorError::postgres("write escalations"))?;
        Ok(())
    }
}

fn open(event: &RecordedEvent) -> FeedbackRow {
    let envelope = &event.envelope;
    let EventPayload::Opened(opened) = &envelope.payload else {
        unreachable!("a feedback row starts from its opening")
    };
    FeedbackRow {
        tenant: envelope.tenant.as_str().to_owned(),
        ticket_id: envelope.ticket_id.0,
        customer_id: opened.customer_id.as_str().to_owned(),
        customer_tier: opened.customer_tier,
        channel: opened.channel,
        category: opened.category.clone(),
        product: opened.product.clone(),
        priority: opened.priority,
        tier: SupportTier::Tier1,
        acknowledged_by: None,
        resolved_by: None,
        opened_at: envelope.occurred_at,
        first_response_at: None,
        first_response_seconds: None,
        resolved_at: None,
        resolution_seconds: None,
        csat: None,
        nps: None,
        comment: None,
        sentiment: None,
        themes: String::new(),
        rated_at: None,
        escalations: 0,
        version: envelope.version as i64,
        last_position: event.stream_seq as i64,
    }
}

fn fold(row: &mut FeedbackRow, event: &RecordedEvent, escalations: &mut Vec<EscalationRow>) {
    let envelope = &event.envelope;
    let at = envelope.effective_time();
    match &envelope.payload {
        EventPayload::Acknowledged(acknowledged) if row.acknowledged_by.is_none() => {
            row.acknowledged_by = Some(acknowledged.agent_id.as_str().to_owned());
            row.first_response_at = Some(at);
            row.first_response_seconds = seconds_between(row.opened_at, envelope.occurred_at);
        }
        EventPayload::PriorityChanged(changed) => row.priority = changed.to,
        EventPayload::Escalated(escalated) => {
            row.tier = escalated.to;
            row.escalations += 1;
            escalations.push(EscalationRow {
                tenant: row.tenant.clone(),
                ticket_id: row.ticket_id,
                version: envelope.version as i64,
                agent: envelope.actor.id.clone(),
                from_tier: escalated.from,
                to_tier: escalated.to,
                occurred_at: at,
                position: event.stream_seq as i64,
            });
        }
        // Analytics count the first resolution; a reopened ticket keeps it.
        EventPayload::Resolved(_) if row.resolved_at.is_none() => {
            row.resolved_at = Some(at);
            row.resolved_by = Some(envelope.actor.id.clone());
            row.resolution_seconds = seconds_between(row.opened_at, envelope.occurred_at);
        }
        EventPayload::FeedbackGiven(feedback) => {
            row.csat = Some(i16::from(feedback.csat));
            row.nps = feedback.nps.map(i16::from);
            row.comment = feedback.comment.clone();
            row.sentiment = Some(feedback.sentiment);
            row.themes = feedback.themes.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",");
            row.rated_at = envelope.occurred_at;
        }
        _ => {}
    }
    row.version = envelope.version as i64;
    row.last_position = event.stream_seq as i64;
}

/// Seconds from `start` to `end` when both are known; never a made-up or negative duration.
fn seconds_between(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Option<f64> {
    let micros = (end? - start?).num_microseconds()?;
    (micros >= 0).then(|| micros as f64 / 1_000_000.0)
}
