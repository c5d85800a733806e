//! Raising a stored event body to the current schema version of its type.
//!
//! Stored events are never rewritten, so a body written under an older schema version is
//! brought up to date each time it is read, on its JSON form and before it is decoded into an
//! [`EventEnvelope`](crate::EventEnvelope). This module owns those steps and nothing else; the
//! hash chain is never computed over their output, only over the body as stored.
//!
//! The only step today raises `feedback.given` from version 1 to 2: `sentiment` follows from
//! `csat` and `themes` from the comment by the rules of [`feedback`](crate::feedback), as if the
//! customer had ticked no themes.

use serde_json::Value;

use crate::event::{current_schema_version, EVENT_TYPES};
use crate::feedback::{comment_themes, Sentiment};

/// A stored body with a schema version this release cannot read. It stays in the stream;
/// readers treat the event as corrupt (gRPC `INTERNAL`, or a projector's dead letter) until a
/// release that knows the version runs. Retrying does not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type} schema version {version} is not one this release reads (1 to {current})")]
pub struct UnknownSchemaVersion {
    pub event_type: String,
    pub version: u64,
    /// The newest version of the type this release knows.
    pub current: u32,
}

/// Raises `body`, a stored event as JSON, to the current schema version of its type, in place.
///
/// A body whose type is current is left as it is. A body that is not an object, or lacks a
/// known `event_type` or a numeric `schema_version`, is left as it is too: decoding it reports
/// what is wrong. A version of 0 or above the current one is refused.
pub fn upcast(body: &mut Value) -> Result<(), UnknownSchemaVersion> {
    let Some(event_type) = body.get("event_type").and_then(Value::as_str) else {
        return Ok(());
    };
    let Some(event_type) = EVENT_TYPES.iter().copied().find(|known| *known == event_type) else {
        return Ok(());
    };
    let Some(version) = body.get("schema_version").and_then(Value::as_u64) else {
        return Ok(());
    };
    let current = current_schema_version(event_type);
    if version == 0 || version > u64::from(current) {
        return Err(UnknownSchemaVersion { event_type: event_type.to_owned(), version, current });
    }

    if event_type == "feedback.given" && version == 1 {
        if let Some(payload) = body.get_mut("payload").and_then(Value::as_object_mut) {
            feedback_v1_to_v2(payload);
        }
    }
    body["schema_version"] = Value::from(current);
    Ok(())
}

/// Adds what version 2 of `feedback.given` has and version 1 lacked. A missing or malformed
/// `csat` gets no sentiment, so that decoding names `csat` as the fault.
fn feedback_v1_to_v2(payload: &mut serde_json::Map<String, Value>) {
    if let Some(csat) = payload.get("csat").and_then(Value::as_u64) {
        let sentiment = Sentiment::from_csat(u8::try_from(csat).unwrap_or(u8::MAX));
        payload.insert("sentiment".to_owned(), Value::from(sentiment.as_str()));
    }
    let themes = payload.get("comment").and_then(Value::as_str).map(comment_themes);
    let names: Vec<Value> =
        themes.unwrap_or_default().iter().map(|theme| Value::from(theme.as_str())).collect();
    payload.insert("themes".to_owned(), Value::Array(names));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn feedback_version_1_gains_sentiment_and_themes() {
        let mut body = json!({
            "event_type": "feedback.given",
            "schema_version": 1,
            "payload": {"csat": 2, "nps": 3, "comment": "Slow reply", "resolution_cycle": 1}
        });

        upcast(&mut body).unwrap();

        assert_eq!(
            body,
            json!({
                "event_type": "feedback.given",
                "schema_version": 2,
                "payload": {
                    "csat": 2, "nps": 3, "comment": "Slow reply", "resolution_cycle": 1,
                    "sentiment": "negative", "themes": ["communication", "response_time"]
                }
            })
        );
    }

    #[test]
    fn current_bodies_and_other_types_are_left_as_they_are() {
        let current = json!({
            "event_type": "feedback.given",
            "schema_version": 2,
            "payload": {"csat": 5, "nps": null, "comment": "slow", "resolution_cycle": 1,
                        "sentiment": "positive", "themes": []}
        });
        let other = json!({"event_type": "ticket.closed", "schema_version": 1, "payload": {}});
        let unknown_type = json!({"event_type": "ticket.teleported", "schema_version": 9});

        for body in [current, other, unknown_type] {
            let mut upcast_body = body.clone();
            upcast(&mut upcast_body).unwrap();
            assert_eq!(upcast_body, body);
        }
    }

    #[test]
    fn versions_this_release_does_not_know_are_refused() {
        let cases = [
            (
                "feedback.given",
                3,
                "feedback.given schema version 3 is not one this release reads (1 to 2)",
            ),
            (
                "ticket.closed",
                2,
                "ticket.closed schema version 2 is not one this release reads (1 to 1)",
            ),
            (
                "ticket.closed",
                0,
                "ticket.closed schema version 0 is not one this release reads (1 to 1)",
            ),
        ];

        for (event_type, version, expected) in cases {
            let mut body = json!({"event_type": event_type, "schema_version": version});
            let err = upcast(&mut body).unwrap_err();
            assert_eq!(err.to_string(), expected);
        }
    }
}
