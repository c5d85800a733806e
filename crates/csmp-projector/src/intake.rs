//! From stream messages to events, and the dead letters for messages that are not events.
//!
//! A message becomes an event when its body is a JSON envelope of a known type and schema
//! version, stored under its own ticket's subject. Anything else is a dead letter: recorded with
//! its reason and raw body in the read model's `dead_letters` table, in the same transaction that
//! moves the checkpoint past it, so that one bad message never stops a projector.

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use csmp_domain::event::EVENT_TYPES;
use csmp_domain::RecordedEvent;
use csmp_eventstore::{DecodeError, EventStoreConfig};
use tokio_postgres::Transaction;
use tracing::warn;

use crate::error::ProjectorError;

/// A message as read from the stream.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub position: u64,
    pub subject: String,
    pub body: Bytes,
}

/// A message the projector could not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeadLetter {
    pub position: u64,
    pub subject: String,
    pub event_type: Option<String>,
    pub reason: String,
    pub body: Bytes,
}

impl DeadLetter {
    pub fn new(incoming: &Incoming, event_type: Option<String>, reason: String) -> Self {
        DeadLetter {
            position: incoming.position,
            subject: incoming.subject.clone(),
            event_type,
            reason,
            body: incoming.body.clone(),
        }
    }
}

/// Reads the event in `incoming`, or says why it is not one.
///
/// Event times are cut to whole microseconds, the precision PostgreSQL stores, so that a read
/// model folded in memory across a batch equals one reloaded from its tables between batches.
pub(crate) fn decode(
    store: &EventStoreConfig,
    incoming: &Incoming,
) -> Result<RecordedEvent, DeadLetter> {
    let dead = |event_type: Option<String>, reason: String| {
        Err(DeadLetter::new(incoming, event_type, reason))
    };
    let json: serde_json::Value = match serde_json::from_slice(&incoming.body) {
        Ok(json) => json,
        Err(err) => return dead(None, format!("body is not JSON: {err}")),
    };
    let event_type = json.get("event_type").and_then(|t| t.as_str()).map(str::to_owned);
    match event_type.as_deref() {
        None => return dead(None, "body has no event_type".to_owned()),
        Some(t) if !EVENT_TYPES.contains(&t) => {
            return dead(event_type.clone(), format!("unknown event type {t:?}"));
        }
        Some(_) => {}
    }
    // The decoder reads versions 1 up to the type's current one, upcasting older ones; the
    // reason for any other names the type and version as every reader of the stream does.
    let mut event = match csmp_eventstore::decode_value(incoming.position, json) {
        Ok(event) => event,
        Err(DecodeError::SchemaVersion { source, .. }) => {
            return dead(event_type, source.to_string())
        }
        Err(err) => return dead(event_type, err.to_string()),
    };
    let envelope = &mut event.envelope;
    if !store.is_own_subject(&incoming.subject, envelope) {
        let expected = store.ticket_subject(&envelope.tenant, envelope.ticket_id);
        return dead(
            event_type,
            format!("stored under {} but the event belongs to {expected}", incoming.subject),
        );
    }
    envelope.occurred_at = envelope.occurred_at.map(to_micros);
    envelope.recorded_at = to_micros(envelope.recorded_at);
    Ok(event)
}

fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// Records `letters` in `schema`'s dead-letter table within the batch transaction.
pub(crate) async fn record(
    tx: &Transaction<'_>,
    schema: &str,
    letters: &[DeadLetter],
) -> Result<(), ProjectorError> {
    if letters.is_empty() {
        return Ok(());
    }
    let statement = tx
        .prepare(&format!(
            "INSERT INTO {schema}.dead_letters (position, subject, event_type, reason, body)
             VALUES ($1, $2, $3, $4, $5)"
        ))
        .await
        .map_err(ProjectorError::postgres("prepare dead letter"))?;
    for letter in letters {
        warn!(
            projector = schema,
            seq = letter.position,
            subject = %letter.subject,
            reason = %letter.reason,
            "dead letter: message skipped"
        );
        // The body is bytea and keeps every byte; the text columns cannot hold a NUL, which a
        // raw message may carry in its event type or in a decoder's message quoting it.
        let position = letter.position as i64;
        let subject = escape_nul(&letter.subject);
        let event_type = letter.event_type.as_deref().map(escape_nul);
        let reason = escape_nul(&letter.reason);
        tx.execute(&statement, &[&position, &subject, &event_type, &reason, &&letter.body[..]])
            .await
            .map_err(ProjectorError::postgres("record dead letter"))?;
    }
    Ok(())
}

/// `text` with each NUL written as `\u0000`, as JSON would, since PostgreSQL text holds no NUL.
fn escape_nul(text: &str) -> String {
    text.replace('\0', "\\u0000")
}

/// Checks that `event` is the next event of a ticket whose read-model row is at `version`
/// (`None`: no row yet). Every read model folds only a ticket's events in order, from its
/// opening on; anything else is a dead letter with the returned reason.
pub(crate) fn check_place(version: Option<i64>, event: &RecordedEvent) -> Result<(), String> {
    let envelope = &event.envelope;
    let opened = matches!(envelope.payload, csmp_domain::EventPayload::Opened(_));
    match version {
        None if opened && envelope.version == 1 => Ok(()),
        None if opened => Err(format!("ticket.opened with version {}", envelope.version)),
        None => Err(format!("{} for a ticket that was never opened", envelope.event_type())),
        Some(_) if opened => Err("ticket.opened for a ticket that is already open".to_owned()),
        Some(current) if envelope.version as i64 != current + 1 => Err(format!(
            "{} with version {} follows version {current}",
            envelope.event_type(),
            envelope.version
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(body: &str) -> Incoming {
        Incoming {
            position: 7,
            subject: "csmp.acme.ticket.00000000-0000-0000-0000-000000000001".to_owned(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn decode_dead_letters_a_schema_version_it_cannot_read_naming_the_type_and_version() {
        let store = EventStoreConfig::default();
        let cases = [
            (
                r#"{"event_type":"feedback.given","schema_version":3}"#,
                "feedback.given",
                "feedback.given schema version 3 is not one this release reads (1 to 2)",
            ),
            (
                r#"{"event_type":"ticket.closed","schema_version":2}"#,
                "ticket.closed",
                "ticket.closed schema version 2 is not one this release reads (1 to 1)",
            ),
            (
                r#"{"event_type":"ticket.closed","schema_version":0}"#,
                "ticket.closed",
                "ticket.closed schema version 0 is not one this release reads (1 to 1)",
            ),
        ];
        for (body, event_type, reason) in cases {
            let message = incoming(body);
            let letter = decode(&store, &message).unwrap_err();
            let expected = DeadLetter::new(&message, Some(event_type.to_owned()), reason.into());
            assert_eq!(letter, expected);
        }
    }
}
