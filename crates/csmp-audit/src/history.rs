//! A ticket's history: every stored event of its subject, in stream order, with who did what,
//! when, why, and where it stands in the stream and in the hash chain.
//!
//! Two renderings: text, one aligned block per event for people, and JSON lines, one object per
//! event for tools: `{"position": N, "event": <decoded envelope>}`. The decoded envelope is
//! what [`csmp_eventstore::decode`] makes of the stored body (older schema versions upcast),
//! always with `hash` and `prev_hash`: the stored ones, or for events stored before the hash
//! chain the hash computed from the stored body and a `null` previous hash. A stored body that
//! does not decode is shown, not skipped: `{"position": N, "error": "...", "stored": <body>}`.

use chrono::{DateTime, SecondsFormat, Utc};
use csmp_domain::chain::{event_hash, HASH_FIELD, PREV_HASH_FIELD};
use csmp_domain::{EventEnvelope, TenantId, TicketId};
use serde_json::{json, Value};

use crate::error::AuditError;
use crate::read::{Audit, StoredEvent};
use crate::summary::{one_line, summary, why};

/// One stored event of a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The stream sequence.
    pub position: u64,
    /// The body as stored; a body that is not JSON at all appears as a JSON string of its text.
    pub stored: Value,
    /// The stored `hash`, or for an event stored before the hash chain the hash computed from
    /// its body.
    pub hash: String,
    /// The stored `prev_hash`; `None` for the first event and for events stored before the
    /// chain.
    pub prev_hash: Option<String>,
    /// The decoded envelope, or why the body does not decode.
    pub event: Result<EventEnvelope, String>,
}

impl HistoryEntry {
    /// Reads a stored message: its body as JSON, its hashes and its decoded envelope.
    pub fn from_stored(stored: &StoredEvent) -> HistoryEntry {
        let value = serde_json::from_slice(&stored.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&stored.body).into_owned()));
        let hash = match value.get(HASH_FIELD).and_then(Value::as_str) {
            Some(hash) => hash.to_owned(),
            None => event_hash(&value),
        };
        let prev_hash = value.get(PREV_HASH_FIELD).and_then(Value::as_str).map(str::to_owned);
        let event = csmp_eventstore::decode(stored.position, &stored.body)
            .map(|recorded| recorded.envelope)
            .map_err(|err| err.to_string());
        HistoryEntry { position: stored.position, stored: value, hash, prev_hash, event }
    }

    /// The version the stored body claims, if it names one.
    pub fn version(&self) -> Option<u64> {
        self.stored.get("version").and_then(Value::as_u64)
    }

    /// The JSON line of this event as a value (see the module doc).
    pub fn to_json(&self) -> Value {
        match &self.event {
            Ok(envelope) => {
                json!({ "position": self.position, "event": self.event_json(envelope) })
            }
            Err(error) => {
                json!({ "position": self.position, "error": error, "stored": self.stored })
            }
        }
    }

    /// The JSON line of this event with `position` first, without the line break.
    pub fn to_json_line(&self) -> String {
        match &self.event {
            Ok(envelope) => {
                format!(
                    "{{\"position\":{},\"event\":{}}}",
                    self.position,
                    self.event_json(envelope)
                )
            }
            Err(error) => format!(
                "{{\"position\":{},\"error\":{},\"stored\":{}}}",
                self.position,
                Value::String(error.clone()),
                self.stored
            ),
        }
    }

    /// The decoded envelope with the hash fields filled in.
    fn event_json(&self, envelope: &EventEnvelope) -> Value {
        let mut event = serde_json::to_value(envelope).expect("an envelope serializes");
        if let Value::Object(fields) = &mut event {
            fields.insert(HASH_FIELD.to_owned(), Value::String(self.hash.clone()));
            fields.insert(
                PREV_HASH_FIELD.to_owned(),
                self.prev_hash.clone().map_or(Value::Null, Value::String),
            );
        }
        event
    }

    /// The text block of this event: a heading line and one aligned line per detail.
    pub fn render_text(&self) -> String {
        let version = self.version().map_or_else(|| "?".to_owned(), |v| v.to_string());
        let mut lines = Vec::new();
        match &self.event {
            Ok(envelope) => {
                let payload = payload_of(envelope);
                let event_type = envelope.event_type();
                lines.push(format!("position {}  version {version}  {event_type}", self.position));
                let actor = format!("{} ({})", envelope.actor.id, envelope.actor.role);
                lines.push(detail("who", &actor));
                lines.push(detail("what", &summary(event_type, &payload)));
                let occurred = envelope.occurred_at.map_or_else(|| "unknown".to_owned(), time);
                lines.push(detail("occurred", &occurred));
                lines.push(detail("recorded", &time(envelope.recorded_at)));
                lines.push(detail("why", &why(event_type, &payload).unwrap_or_else(dash)));
                lines.push(detail("correlation", &one_line(&envelope.correlation_id)));
                let causation = envelope.causation_id.as_deref().map_or_else(dash, one_line);
                lines.push(detail("causation", &causation));
            }
            Err(error) => {
                lines.push(format!("position {}  version {version}  undecodable", self.position));
                lines.push(detail("error", &one_line(error)));
                lines.push(detail("stored", &one_line(&self.stored.to_string())));
            }
        }
        lines.push(detail("hash", &self.hash));
        lines.push(detail("prev hash", self.prev_hash.as_deref().unwrap_or("-")));
        lines.join("\n") + "\n"
    }
}

/// The whole history as text: a heading, then one block per event, blocks apart by a blank line.
pub fn render_text(tenant: &TenantId, ticket: TicketId, entries: &[HistoryEntry]) -> String {
    let noun = if entries.len() == 1 { "event" } else { "events" };
    let mut out = format!("ticket {ticket} of tenant {tenant}: {} {noun}\n", entries.len());
    for entry in entries {
        out.push('\n');
        out.push_str(&entry.render_text());
    }
    out
}

/// The whole history as JSON lines, each ending in a line break.
pub fn render_json_lines(entries: &[HistoryEntry]) -> String {
    entries.iter().map(|entry| entry.to_json_line() + "\n").collect()
}

impl Audit {
    /// Every stored event of one ticket, in stream order. A ticket without events is
    /// [`AuditError::TicketNotFound`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(audit: csmp_audit::Audit) -> Result<(), Box<dyn std::error::Error>> {
    /// use csmp_domain::{TenantId, TicketId};
    ///
    /// let tenant = TenantId::parse("acme")?;
    /// let ticket = TicketId("0191e9a4-1c2b-7c3d-8e4f-5a6b7c8d9e0f".parse()?);
    /// let entries = audit.history(&tenant, ticket).await?;
    /// print!("{}", csmp_audit::history::render_text(&tenant, ticket, &entries));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn history(
        &self,
        tenant: &TenantId,
        ticket: TicketId,
    ) -> Result<Vec<HistoryEntry>, AuditError> {
        let subject = self.config().ticket_subject(tenant, ticket);
        let stored = self.ticket_messages(subject).await?;
        if stored.is_empty() {
            return Err(AuditError::TicketNotFound { tenant: tenant.clone(), ticket });
        }
        Ok(stored.iter().map(HistoryEntry::from_stored).collect())
    }
}

/// The `payload` of an envelope as JSON, for summaries that must not depend on the structs.
pub(crate) fn payload_of(envelope: &EventEnvelope) -> Value {
    serde_json::to_value(&envelope.payload)
        .ok()
        .and_then(|mut tagged| tagged.get_mut("payload").map(Value::take))
        .unwrap_or(Value::Null)
}

/// An instant as RFC 3339 in UTC, with as many fraction digits as it needs.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn detail(label: &str, value: &str) -> String {
    format!("  {label:<12}{value}")
}

fn dash() -> String {
    "-".to_owned()
}
