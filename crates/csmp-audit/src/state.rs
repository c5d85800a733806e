//! A ticket's state as of a point in time, rebuilt by replaying the events that count up to it.
//!
//! By default an event counts at its `recorded_at`, when the command service accepted it: the
//! state is then what the system knew at that time, which is what an operator asking "why did
//! the queue show this" needs. [`TimeBasis::Occurred`] counts an event at its `occurred_at`
//! instead, when it happened, which differs for imported history. An imported opening event
//! carries no `occurred_at` (the export has no opening times); it counts at the time of the
//! ticket's next event whose time is known, or at its `recorded_at` when there is none.
//!
//! The events replayed are the longest run from the ticket's first event whose times are all
//! at or before the point asked for: a ticket's history replays only from its start and without
//! gaps, so an event counting later stops the replay even if an event after it counts earlier.

use std::fmt;

use chrono::{DateTime, Utc};
use csmp_domain::ticket::RefundStatus;
use csmp_domain::{RecordedEvent, TenantId, Ticket, TicketId};
use serde_json::{json, Map, Value};

use crate::error::AuditError;
use crate::history::{payload_of, time, HistoryEntry};
use crate::read::Audit;
use crate::summary::feedback;

/// Which of an event's times decides whether it counts as of a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeBasis {
    /// `recorded_at`: what the system knew then.
    #[default]
    Recorded,
    /// `occurred_at`: what had happened by then, as far as the events say.
    Occurred,
}

impl TimeBasis {
    /// The envelope field the basis reads: `recorded_at` or `occurred_at`.
    pub fn field(self) -> &'static str {
        match self {
            TimeBasis::Recorded => "recorded_at",
            TimeBasis::Occurred => "occurred_at",
        }
    }
}

impl fmt::Display for TimeBasis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field())
    }
}

/// The last event a state was rebuilt up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastEvent {
    pub position: u64,
    pub version: u64,
    pub event_type: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub recorded_at: DateTime<Utc>,
}

/// A ticket as it stood at a point in time.
#[derive(Debug, Clone, PartialEq)]
pub struct StateAsOf {
    pub at: DateTime<Utc>,
    pub basis: TimeBasis,
    /// How many of the ticket's events count by `at`; 0 when it did not exist yet.
    pub events_applied: usize,
    /// How many events the ticket has now.
    pub events_total: usize,
    /// When the first event counts: shown when the ticket did not exist yet.
    pub first_counts_at: DateTime<Utc>,
    /// The replayed state; version 0 when the ticket did not exist yet.
    pub ticket: Ticket,
    pub last_event: Option<LastEvent>,
    /// The payload of the last `feedback.given` replayed, as decoded.
    pub feedback: Option<Value>,
}

impl StateAsOf {
    /// The state as aligned text lines.
    pub fn render_text(&self) -> String {
        let t = &self.ticket;
        let mut out = format!(
            "ticket {} of tenant {} as of {} by {}: {} of {} events\n",
            t.id,
            t.tenant,
            time(self.at),
            self.basis,
            self.events_applied,
            self.events_total
        );
        if !t.exists() {
            out.push_str(&format!(
                "  not opened yet: its first event counts at {}\n",
                time(self.first_counts_at)
            ));
            return out;
        }
        let refunds: Vec<String> = t
            .refunds
            .iter()
            .map(|(id, refund)| format!("{id} {} {}", refund.amount, status_name(refund.status)))
            .collect();
        let refunded: Vec<String> = t
            .refunded
            .iter()
            .map(|(currency, minor)| {
                csmp_domain::Money { amount_minor: *minor, currency: *currency }.to_string()
            })
            .collect();
        let lines = [
            ("status", t.status.to_string()),
            ("priority", t.priority.to_string()),
            ("tier", t.tier.to_string()),
            ("assignee", t.assignee.as_ref().map_or_else(|| "-".to_owned(), |a| a.to_string())),
            ("refunds", if refunds.is_empty() { "none".to_owned() } else { refunds.join(", ") }),
            ("refunded", if refunded.is_empty() { "none".to_owned() } else { refunded.join(", ") }),
            ("feedback", self.feedback.as_ref().map_or_else(|| "-".to_owned(), feedback)),
            ("version", t.version.to_string()),
            ("last event", self.last_event.as_ref().map_or_else(|| "-".to_owned(), describe)),
        ];
        for (label, value) in lines {
            out.push_str(&format!("  {label:<12}{value}\n"));
        }
        out
    }

    /// The state as one JSON object. Fields of the ticket are `null` when it did not exist yet.
    pub fn to_json(&self) -> Value {
        let t = &self.ticket;
        let mut out = Map::new();
        out.insert("tenant".into(), json!(t.tenant));
        out.insert("ticket_id".into(), json!(t.id));
        out.insert("as_of".into(), json!(time(self.at)));
        out.insert("by".into(), json!(self.basis.field()));
        out.insert("events_applied".into(), json!(self.events_applied));
        out.insert("events_total".into(), json!(self.events_total));
        out.insert("exists".into(), json!(t.exists()));
        let exists = t.exists();
        let when = |value: Value| if exists { value } else { Value::Null };
        out.insert("version".into(), json!(t.version));
        out.insert("status".into(), when(json!(t.status)));
        out.insert("priority".into(), when(json!(t.priority)));
        out.insert("tier".into(), when(json!(t.tier)));
        out.insert("assignee".into(), json!(t.assignee));
        out.insert("acknowledged".into(), json!(t.acknowledged));
        out.insert("resolution_cycle".into(), json!(t.resolution_cycle));
        let refunds: Vec<Value> = t
            .refunds
            .iter()
            .map(|(id, refund)| {
                json!({
                    "refund_id": id,
                    "amount": refund.amount,
                    "status": status_name(refund.status),
                })
            })
            .collect();
        out.insert("refunds".into(), Value::Array(refunds));
        out.insert("refunded".into(), json!(t.refunded));
        out.insert("feedback".into(), self.feedback.clone().unwrap_or(Value::Null));
        let last = self.last_event.as_ref().map(|last| {
            json!({
                "position": last.position,
                "version": last.version,
                "event_type": last.event_type,
                "occurred_at": last.occurred_at.map(time),
                "recorded_at": time(last.recorded_at),
            })
        });
        out.insert("last_event".into(), last.unwrap_or(Value::Null));
        Value::Object(out)
    }
}

impl Audit {
    /// The ticket as it stood at `at`, counting events by `basis`; see the module doc for which
    /// events count. A ticket without events is [`AuditError::TicketNotFound`]; one whose
    /// counted events do not decode or replay is [`AuditError::Unreadable`] or
    /// [`AuditError::Replay`].
    pub async fn state_as_of(
        &self,
        tenant: &TenantId,
        ticket: TicketId,
        at: DateTime<Utc>,
        basis: TimeBasis,
    ) -> Result<StateAsOf, AuditError> {
        let entries = self.history(tenant, ticket).await?;
        state_from_history(tenant, ticket, &entries, at, basis)
    }
}

/// Rebuilds the state as of `at` from a ticket's history as [`Audit::history`] returns it.
pub fn state_from_history(
    tenant: &TenantId,
    ticket: TicketId,
    entries: &[HistoryEntry],
    at: DateTime<Utc>,
    basis: TimeBasis,
) -> Result<StateAsOf, AuditError> {
    // 1. When each event counts.
    let counts_at = counting_times(entries, basis)?;

    // 2. The run of events from the first that all count by `at`, decoded.
    let mut events = Vec::new();
    for (entry, counts_at) in entries.iter().zip(&counts_at) {
        if *counts_at > at {
            break;
        }
        let envelope = entry
            .event
            .clone()
            .map_err(|detail| AuditError::Unreadable { position: entry.position, detail })?;
        events.push(RecordedEvent { stream_seq: entry.position, envelope });
    }

    // 3. Replayed one by one, as `Ticket::replay` does, to name the event a failure is at.
    let mut state = Ticket::new(tenant.clone(), ticket);
    for event in &events {
        state.apply(event).map_err(|source| AuditError::Replay {
            tenant: tenant.clone(),
            ticket,
            position: event.stream_seq,
            source,
        })?;
    }

    let feedback = events
        .iter()
        .rev()
        .find(|event| event.envelope.event_type() == "feedback.given")
        .map(|event| payload_of(&event.envelope));
    let last_event = events.last().map(|event| LastEvent {
        position: event.stream_seq,
        version: event.envelope.version,
        event_type: event.envelope.event_type().to_owned(),
        occurred_at: event.envelope.occurred_at,
        recorded_at: event.envelope.recorded_at,
    });
    Ok(StateAsOf {
        at,
        basis,
        events_applied: events.len(),
        events_total: entries.len(),
        first_counts_at: counts_at.first().copied().unwrap_or(at),
        ticket: state,
        last_event,
        feedback,
    })
}

/// The time each event counts at, read from the stored bodies.
fn counting_times(
    entries: &[HistoryEntry],
    basis: TimeBasis,
) -> Result<Vec<DateTime<Utc>>, AuditError> {
    let mut recorded = Vec::with_capacity(entries.len());
    for entry in entries {
        match stored_time(&entry.stored, "recorded_at") {
            Some(at) => recorded.push(at),
            None => {
                return Err(AuditError::Unreadable {
                    position: entry.position,
                    detail: "no valid recorded_at".to_owned(),
                })
            }
        }
    }
    if basis == TimeBasis::Recorded {
        return Ok(recorded);
    }

    // From the newest event back, so that an unknown time takes the next known one.
    let mut times = vec![DateTime::<Utc>::UNIX_EPOCH; entries.len()];
    let mut next_known: Option<DateTime<Utc>> = None;
    for (i, entry) in entries.iter().enumerate().rev() {
        if let Some(at) = stored_time(&entry.stored, "occurred_at") {
            next_known = Some(at);
        }
        times[i] = next_known.unwrap_or(recorded[i]);
    }
    Ok(times)
}

fn stored_time(stored: &Value, field: &str) -> Option<DateTime<Utc>> {
    let text = stored.get(field)?.as_str()?;
    DateTime::parse_from_rfc3339(text).ok().map(|at| at.with_timezone(&Utc))
}

fn status_name(status: RefundStatus) -> &'static str {
    match status {
        RefundStatus::Issued => "issued",
        RefundStatus::AwaitingApproval => "awaiting_approval",
        RefundStatus::Approved => "approved",
        RefundStatus::Rejected => "rejected",
    }
}

fn describe(last: &LastEvent) -> String {
    format!(
        "position {}, version {}, {}, recorded {}",
        last.position,
        last.version,
        last.event_type,
        time(last.recorded_at)
    )
}
