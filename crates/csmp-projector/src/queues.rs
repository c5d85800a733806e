//! The `queues` read model: each ticket's current state, its timeline and its refunds.
//!
//! A batch loads the rows of the tickets it touches in one query, folds its events into them in
//! memory, and writes every changed row back with one multi-row statement per table. The queue
//! order and customer history queries of the query service read these tables; nothing here
//! knows about SLA clocks or feedback figures.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use csmp_domain::{
    Channel, CustomerTier, EventPayload, Priority, RecordedEvent, SupportTier, TicketStatus,
};
use tokio_postgres::{Client, Statement, Transaction};
use tracing::debug;
use uuid::Uuid;

use crate::error::ProjectorError;
use crate::intake::check_place;
use crate::rows::{parse_column, unnest_upsert, ColumnArrays, RowTable};
use crate::runner::Rejected;

/// The read model's name in errors about its rows, whichever schema holds them.
const SCHEMA: &str = "queues";

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
    ("status", "text"),
    ("subject", "text"),
    ("description", "text"),
    ("assignee", "text"),
    ("is_complaint", "bool"),
    ("opened_at", "timestamptz"),
    ("opened_position", "int8"),
    ("first_response_at", "timestamptz"),
    ("resolved_at", "timestamptz"),
    ("closed_at", "timestamptz"),
    ("version", "int8"),
    ("last_position", "int8"),
    ("csat", "int2"),
    ("nps", "int2"),
];

const TICKETS: RowTable = RowTable {
    name: "tickets",
    columns: TICKET_COLUMNS,
    key: &["tenant", "ticket_id"],
    fixed: &[
        "customer_id",
        "customer_tier",
        "channel",
        "category",
        "product",
        "subject",
        "description",
        "is_complaint",
        "opened_at",
        "opened_position",
    ],
};

const TIMELINE_COLUMNS: &[(&str, &str)] = &[
    ("tenant", "text"),
    ("ticket_id", "uuid"),
    ("version", "int8"),
    ("position", "int8"),
    ("event_id", "uuid"),
    ("event_type", "text"),
    ("actor_id", "text"),
    ("actor_role", "text"),
    ("occurred_at", "timestamptz"),
    ("recorded_at", "timestamptz"),
    ("payload", "jsonb"),
];

const REFUND_COLUMNS: &[(&str, &str)] = &[
    ("tenant", "text"),
    ("ticket_id", "uuid"),
    ("refund_id", "text"),
    ("status", "text"),
    ("amount_minor", "int8"),
    ("currency", "text"),
    ("reason", "text"),
    ("requested_by", "text"),
    ("requested_at", "timestamptz"),
    ("changed_at", "timestamptz"),
    ("last_position", "int8"),
];

/// The prepared statements of the queues projector, valid on the client they were prepared on.
pub(crate) struct Queues {
    load: Statement,
    insert_tickets: Statement,
    update_tickets: Statement,
    insert_timeline: Statement,
    upsert_refunds: Statement,
    update_refunds: Statement,
}

/// A `queues.tickets` row.
#[derive(Debug, Clone)]
struct TicketRow {
    tenant: String,
    ticket_id: Uuid,
    customer_id: String,
    customer_tier: CustomerTier,
    channel: Channel,
    category: String,
    product: String,
    priority: Priority,
    tier: SupportTier,
    status: TicketStatus,
    subject: String,
    description: String,
    assignee: Option<String>,
    is_complaint: bool,
    opened_at: Option<DateTime<Utc>>,
    opened_position: i64,
    first_response_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    version: i64,
    last_position: i64,
    csat: Option<i16>,
    nps: Option<i16>,
}

/// A refund as the batch leaves it.
#[derive(Debug, Clone)]
struct RefundRow {
    tenant: String,
    ticket_id: Uuid,
    refund_id: String,
    status: &'static str,
    amount_minor: i64,
    currency: String,
    reason: String,
    requested_by: String,
    requested_at: DateTime<Utc>,
    changed_at: DateTime<Utc>,
    last_position: i64,
    /// Whether this batch created the refund; a later event only changes status and amount.
    created: bool,
}

type Key = (String, Uuid);

impl Queues {
    /// Prepares the statements writing the read model in `schema`.
    pub async fn prepare(pg: &Client, schema: &str) -> Result<Self, ProjectorError> {
        let prepare = |sql: String| async move {
            pg.prepare(&sql).await.map_err(ProjectorError::postgres("prepare queues statement"))
        };
        let load = format!(
            "SELECT {} FROM {schema}.tickets t
             JOIN UNNEST($1::text[], $2::uuid[]) AS k(tenant, ticket_id) USING (tenant, ticket_id)",
            TICKET_COLUMNS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
        );
        Ok(Queues {
            load: prepare(load).await?,
            insert_tickets: prepare(TICKETS.insert_sql(schema)).await?,
            update_tickets: prepare(TICKETS.update_sql(schema)).await?,
            insert_timeline: prepare(unnest_upsert(
                &format!("{schema}.timeline"),
                TIMELINE_COLUMNS,
                &[],
            ))
            .await?,
            upsert_refunds: prepare(unnest_upsert(
                &format!("{schema}.refunds"),
                REFUND_COLUMNS,
                &["tenant", "ticket_id", "refund_id"],
            ))
            .await?,
            update_refunds: prepare(format!(
                "UPDATE {schema}.refunds r
                 SET status = u.status, amount_minor = u.amount_minor,
                     changed_at = u.changed_at, last_position = u.last_position
                 FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::int8[],
                             $6::timestamptz[], $7::int8[])
                      AS u(tenant, ticket_id, refund_id, status, amount_minor, changed_at,
                           last_position)
                 WHERE r.tenant = u.tenant AND r.ticket_id = u.ticket_id
                   AND r.refund_id = u.refund_id"
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
        // 1. The current rows of every ticket the batch touches, in one query.
        let mut tickets = self.load(tx, events).await?;

        // 2. Fold the events in memory, in stream order.
        let mut changed: Vec<Key> = Vec::new();
        let mut created: HashSet<Key> = HashSet::new();
        let mut timeline = TimelineColumns::default();
        let mut refunds: Vec<RefundRow> = Vec::new();
        let mut rejected = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let envelope = &event.envelope;
            let key = (envelope.tenant.as_str().to_owned(), envelope.ticket_id.0);
            let row = tickets.get_mut(&key);
            if let Err(reason) = check_place(row.as_ref().map(|row| row.version), event) {
                rejected.push(Rejected { index, reason });
                continue;
            }
            match row {
                Some(row) => fold(row, event, &mut refunds),
                None => {
                    let EventPayload::Opened(_) = &envelope.payload else {
                        unreachable!("check_place admits only an opening for a new ticket")
                    };
                    tickets.insert(key.clone(), open(event));
                    created.insert(key.clone());
                }
            }
            if !changed.contains(&key) {
                changed.push(key);
            }
            timeline.push(event);
            debug!(seq = event.stream_seq, event_type = envelope.event_type(), "queues applied");
        }

        // 3. Write the changed rows back; the statements are pipelined on the connection.
        let (new_rows, old_rows): (Vec<&TicketRow>, Vec<&TicketRow>) = changed
            .iter()
            .map(|key| &tickets[key])
            .partition(|row| created.contains(&(row.tenant.clone(), row.ticket_id)));
        let (new_refunds, old_refunds): (Vec<&RefundRow>, Vec<&RefundRow>) =
            refunds.iter().partition(|refund| refund.created);
        let update_columns = TICKETS.update_columns();
        futures::try_join!(
            self.write_tickets(tx, &self.insert_tickets, &new_rows, TICKETS.columns),
            self.write_tickets(tx, &self.update_tickets, &old_rows, &update_columns),
            self.write_timeline(tx, &timeline),
            self.write_refunds(tx, &new_refunds, &old_refunds),
        )?;
        Ok(rejected)
    }

    async fn load(
        &self,
        tx: &Transaction<'_>,
        events: &[RecordedEvent],
    ) -> Result<HashMap<Key, TicketRow>, ProjectorError> {
        let (tenants, ids) = batch_keys(events);
        let rows = tx
            .query(&self.load, &[&tenants, &ids])
            .await
            .map_err(ProjectorError::postgres("load queue tickets"))?;
        let mut tickets = HashMap::with_capacity(rows.len());
        for row in rows {
            let ticket = TicketRow {
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
                status: parse_column(SCHEMA, "status", row.get("status"), TicketStatus::parse)?,
                subject: row.get("subject"),
                description: row.get("description"),
                assignee: row.get("assignee"),
                is_complaint: row.get("is_complaint"),
                opened_at: row.get("opened_at"),
                opened_position: row.get("opened_position"),
                first_response_at: row.get("first_response_at"),
                resolved_at: row.get("resolved_at"),
                closed_at: row.get("closed_at"),
                version: row.get("version"),
                last_position: row.get("last_position"),
                csat: row.get("csat"),
                nps: row.get("nps"),
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
        rows: &[&TicketRow],
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
        a.set("status", rows.iter().map(|r| r.status.as_str()).collect());
        a.set("subject", rows.iter().map(|r| r.subject.as_str()).collect());
        a.set("description", rows.iter().map(|r| r.description.as_str()).collect());
        a.set("assignee", rows.iter().map(|r| r.assignee.as_deref()).collect());
        a.set("is_complaint", rows.iter().map(|r| r.is_complaint).collect());
        a.set("opened_at", rows.iter().map(|r| r.opened_at).collect());
        a.set("opened_position", rows.iter().map(|r| r.opened_position).collect());
        a.set("first_response_at", rows.iter().map(|r| r.first_response_at).collect());
        a.set("resolved_at", rows.iter().map(|r| r.resolved_at).collect());
        a.set("closed_at", rows.iter().map(|r| r.closed_at).collect());
        a.set("version", rows.iter().map(|r| r.version).collect());
        a.set("last_position", rows.iter().map(|r| r.last_position).collect());
        a.set("csat", rows.iter().map(|r| r.csat).collect());
        a.set("nps", rows.iter().map(|r| r.nps).collect());
        tx.execute(statement, &a.params(columns))
            .await
            .map_err(ProjectorError::postgres("write queue tickets"))?;
        Ok(())
    }

    async fn write_timeline(
        &self,
        tx: &Transaction<'_>,
        timeline: &TimelineColumns,
    ) -> Result<(), ProjectorError> {
        if timeline.tenant.is_empty() {
            return Ok(());
        }
        let t = timeline;
        tx.execute(
            &self.insert_timeline,
            &[
                &t.tenant,
                &t.ticket_id,
                &t.version,
                &t.position,
                &t.event_id,
                &t.event_type,
                &t.actor_id,
                &t.actor_role,
                &t.occurred_at,
                &t.recorded_at,
                &t.payload,
            ],
        )
        .await
        .map_err(ProjectorError::postgres("write timeline"))?;
        Ok(())
    }

    async fn write_refunds(
        &self,
        tx: &Transaction<'_>,
        created: &[&RefundRow],
        updated: &[&RefundRow],
    ) -> Result<(), ProjectorError> {
        if !created.is_empty() {
            let rows = created;
            let tenant: Vec<&str> = rows.iter().map(|r| r.tenant.as_str()).collect();
            let ticket_id: Vec<Uuid> = rows.iter().map(|r| r.ticket_id).collect();
            let refund_id: Vec<&str> = rows.iter().map(|r| r.refund_id.as_str()).collect();
            let status: Vec<&str> = rows.iter().map(|r| r.status).collect();
            let amount: Vec<i64> = rows.iter().map(|r| r.amount_minor).collect();
            let currency: Vec<&str> = rows.iter().map(|r| r.currency.as_str()).collect();
            let reason: Vec<&str> = rows.iter().map(|r| r.reason.as_str()).collect();
            let requested_by: Vec<&str> = rows.iter().map(|r| r.requested_by.as_str()).collect();
            let requested_at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.requested_at).collect();
            let changed_at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.changed_at).collect();
            let last_position: Vec<i64> = rows.iter().map(|r| r.last_position).collect();
            tx.execute(
                &self.upsert_refunds,
                &[
                    &tenant,
                    &ticket_id,
                    &refund_id,
                    &status,
                    &amount,
                    &currency,
                    &reason,
                    &requested_by,
                    &requested_at,
                    &changed_at,
                    &last_position,
                ],
            )
            .await
            .map_err(ProjectorError::postgres("write refunds"))?;
        }
        if !updated.is_empty() {
            let rows = updated;
            let tenant: Vec<&str> = rows.iter().map(|r| r.tenant.as_str()).collect();
            let ticket_id: Vec<Uuid> = rows.iter().map(|r| r.ticket_id).collect();
            let refund_id: Vec<&str> = rows.iter().map(|r| r.refund_id.as_str()).collect();
            let status: Vec<&str> = rows.iter().map(|r| r.status).collect();
            let amount: Vec<i64> = rows.iter().map(|r| r.amount_minor).collect();
            let changed_at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.changed_at).collect();
            let last_position: Vec<i64> = rows.iter().map(|r| r.last_position).collect();
            tx.execute(
                &self.update_refunds,
                &[&tenant, &ticket_id, &refund_id, &status, &amount, &changed_at, &last_position],
            )
            .await
            .map_err(ProjectorError::postgres("update refunds"))?;
        }
        Ok(())
    }
}

/// The distinct (tenant, ticket) keys of a batch as two parallel arrays.
pub(crate) fn batch_keys(events: &[RecordedEvent]) -> (Vec<&str>, Vec<Uuid>) {
    let mut seen = std::collections::HashSet::new();
    let mut tenants = Vec::new();
    let mut ids = Vec::new();
    for event in events {
        let key = (event.envelope.tenant.as_str(), event.envelope.ticket_id.0);
        if seen.insert(key) {
            tenants.push(key.0);
            ids.push(key.1);
        }
    }
    (tenants, ids)
}

/// The row of a ticket that `event`, its opening, creates.
fn open(event: &RecordedEvent) -> TicketRow {
    let envelope = &event.envelope;
    let EventPayload::Opened(opened) = &envelope.payload else {
        unreachable!("a ticket row starts from its opening")
    };
    let position = event.stream_seq as i64;
    TicketRow {
        tenant: envelope.tenant.as_str().to_owned(),
        ticket_id: envelope.ticket_id.0,
        customer_id: opened.customer_id.as_str().to_owned(),
        customer_tier: opened.customer_tier,
        channel: opened.channel,
        category: opened.category.clone(),
        product: opened.product.clone(),
        priority: opened.priority,
        tier: SupportTier::Tier1,
        status: TicketStatus::New,
        subject: opened.subject.clone(),
        description: opened.description.clone(),
        assignee: None,
        is_complaint: opened.is_complaint,
        opened_at: envelope.occurred_at,
        opened_position: position,
        first_response_at: None,
        resolved_at: None,
        closed_at: None,
        version: envelope.version as i64,
        last_position: position,
        csat: None,
        nps: None,
    }
}

/// Folds one event after the opening into its ticket's row and the batch's refund changes.
fn fold(row: &mut TicketRow, event: &RecordedEvent, refunds: &mut Vec<RefundRow>) {
    let envelope = &event.envelope;
    let at = envelope.effective_time();
    let position = event.stream_seq as i64;
    match &envelope.payload {
        EventPayload::Opened(_) => unreachable!("check_place admits one opening per ticket"),
        EventPayload::Acknowledged(_) => {
            row.first_response_at.get_or_insert(at);
            if row.status == TicketStatus::New {
                row.status = TicketStatus::Open;
            }
        }
        EventPayload::Assigned(assigned) => {
            row.assignee = Some(assigned.agent_id.as_str().to_owned())
        }
        EventPayload::PriorityChanged(changed) => row.priority = changed.to,
        EventPayload::Escalated(escalated) => row.tier = escalated.to,
        EventPayload::CustomerAsked(_) => row.status = TicketStatus::WaitingOnCustomer,
        EventPayload::CustomerReplied(_) => {
            if row.status == TicketStatus::WaitingOnCustomer {
                row.status = TicketStatus::Open;
            }
        }
        EventPayload::Resolved(_) => {
            row.status = TicketStatus::Resolved;
            row.resolved_at = Some(at);
        }
        EventPayload::Reopened(_) => {
            row.resolved_at = None;
            row.status = if row.first_response_at.is_some() {
                TicketStatus::Open
            } else {
                TicketStatus::New
            };
        }
        EventPayload::Closed(_) => {
            row.status = TicketStatus::Closed;
            row.closed_at = Some(at);
        }
        EventPayload::RefundIssued(issued) => {
            let refund = new_refund(row, envelope, &issued.refund_id, "issued", position);
            refunds.push(RefundRow {
                amount_minor: issued.amount.amount_minor,
                currency: issued.amount.currency.code().to_owned(),
                reason: issued.reason.clone(),
                ..refund
            });
        }
        EventPayload::RefundRequested(requested) => {
            let refund =
                new_refund(row, envelope, &requested.refund_id, "awaiting_approval", position);
            refunds.push(RefundRow {
                amount_minor: requested.amount.amount_minor,
                currency: requested.amount.currency.code().to_owned(),
                reason: requested.reason.clone(),
                ..refund
            });
        }
        EventPayload::RefundApproved(approved) => change_refund(
            refunds,
            row,
            envelope,
            &approved.refund_id,
            "approved",
            approved.amount.amount_minor,
            position,
        ),
        EventPayload::RefundRejected(rejected) => change_refund(
            refunds,
            row,
            envelope,
            &rejected.refund_id,
            "rejected",
            rejected.amount.amount_minor,
            position,
        ),
        EventPayload::FeedbackGiven(feedback) => {
            row.csat = Some(i16::from(feedback.csat));
            row.nps = feedback.nps.map(i16::from);
        }
        // SLA signals are in the timeline; the SLA read model keeps the clocks.
        EventPayload::SlaWarningReached(_) | EventPayload::SlaBreached(_) => {}
    }
    row.version = envelope.version as i64;
    row.last_position = position;
}

fn new_refund(
    row: &TicketRow,
    envelope: &csmp_domain::EventEnvelope,
    refund_id: &csmp_domain::RefundId,
    status: &'static str,
    position: i64,
) -> RefundRow {
    let at = envelope.effective_time();
    RefundRow {
        tenant: row.tenant.clone(),
        ticket_id: row.ticket_id,
        refund_id: refund_id.as_str().to_owned(),
        status,
        amount_minor: 0,
        currency: String::new(),
        reason: String::new(),
        requested_by: envelope.actor.id.clone(),
        requested_at: at,
        changed_at: at,
        last_position: position,
        created: true,
    }
}

/// An approval or rejection: changes the refund created earlier in this batch, or records an
/// update of the stored row.
fn change_refund(
    refunds: &mut Vec<RefundRow>,
    row: &TicketRow,
    envelope: &csmp_domain::EventEnvelope,
    refund_id: &csmp_domain::RefundId,
    status: &'static str,
    amount_minor: i64,
    position: i64,
) {
    let at = envelope.effective_time();
    let in_batch = refunds.iter_mut().find(|r| {
        r.tenant == row.tenant && r.ticket_id == row.ticket_id && r.refund_id == refund_id.as_str()
    });
    match in_batch {
        Some(refund) => {
            refund.status = status;
            refund.amount_minor = amount_minor;
            refund.changed_at = at;
            refund.last_position = position;
        }
        None => refunds.push(RefundRow {
            amount_minor,
            created: false,
            ..new_refund(row, envelope, refund_id, status, position)
        }),
    }
}

/// The `queues.timeline` rows of a batch, one array per column.
#[derive(Default)]
struct TimelineColumns {
    tenant: Vec<String>,
    ticket_id: Vec<Uuid>,
    version: Vec<i64>,
    position: Vec<i64>,
    event_id: Vec<Uuid>,
    event_type: Vec<&'static str>,
    actor_id: Vec<String>,
    actor_role: Vec<&'static str>,
    occurred_at: Vec<Option<DateTime<Utc>>>,
    recorded_at: Vec<DateTime<Utc>>,
    payload: Vec<serde_json::Value>,
}

impl TimelineColumns {
    fn push(&mut self, event: &RecordedEvent) {
        let envelope = &event.envelope;
        self.tenant.push(envelope.tenant.as_str().to_owned());
        self.ticket_id.push(envelope.ticket_id.0);
        self.version.push(envelope.version as i64);
        self.position.push(event.stream_seq as i64);
        self.event_id.push(envelope.event_id);
        self.event_type.push(envelope.event_type());
        self.actor_id.push(envelope.actor.id.clone());
        self.actor_role.push(envelope.actor.role.as_str());
        self.occurred_at.push(envelope.occurred_at);
        self.recorded_at.push(envelope.recorded_at);
        self.payload.push(payload_json(&envelope.payload));
    }
}

/// The event's own fields, without the `event_type` tag around them.
fn payload_json(payload: &EventPayload) -> serde_json::Value {
    let mut tagged = serde_json::to_value(payload).expect("an event payload always serializes");
    tagged.get_mut("payload").map(serde_json::Value::take).unwrap_or_default()
}
