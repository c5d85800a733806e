//! The wire format: a JSON envelope in the message body, the event type and its schema version
//! in headers.
//!
//! Decoding owns two duties besides parsing. It fills in the hash of events stored before the
//! hash chain existed, computed over the body as stored, so that every decoded envelope has one
//! and a new event appended to an old ticket chains to it. And it raises bodies of an older
//! schema version to the current one ([`csmp_domain::upcast`]) after the hash is taken, so the
//! hash never depends on the upcast form. Nothing here verifies the chain; that is left to
//! whoever audits the stream, with [`csmp_domain::chain::event_hash`] over the raw bodies.

use csmp_domain::upcast::{upcast, UnknownSchemaVersion};
use csmp_domain::{EventEnvelope, RecordedEvent};
use serde_json::Value;

/// Header carrying the event type, for consumers that filter without parsing.
pub const EVENT_TYPE_HEADER: &str = "Csmp-Event-Type";
/// Header carrying the schema version the body was written in, which is the current version of
/// its type ([`csmp_domain::current_schema_version`]) for every event this release writes.
pub const SCHEMA_VERSION_HEADER: &str = "Csmp-Schema-Version";

/// A stored message that is not an event this version understands. The message stays in the
/// stream; a projector records it as a dead letter and goes on. Retrying does not help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body is not JSON or not an envelope of a known event type.
    #[error("message at stream position {stream_seq} is not a valid event: {source}")]
    Payload {
        stream_seq: u64,
        #[source]
        source: serde_json::Error,
    },
    /// The body names a schema version of its type that this release does not know, written by
    /// a newer release; a release that knows it can read the event.
    #[error("message at stream position {stream_seq} cannot be read: {source}")]
    SchemaVersion {
        stream_seq: u64,
        #[source]
        source: UnknownSchemaVersion,
    },
    /// The body parses but breaks a rule every event written through the command service keeps
    /// ([`csmp_domain::EventPayload::contract_violation`]).
    #[error("message at stream position {stream_seq} is not a valid {event_type} event: {reason}")]
    Contract { stream_seq: u64, event_type: &'static str, reason: String },
}

/// Encodes an envelope as the message body.
pub fn encode(envelope: &EventEnvelope) -> Vec<u8> {
    serde_json::to_vec(envelope).expect("an envelope always serializes")
}

/// Decodes a message body read at `stream_seq`: raised to the current schema version of its
/// type, and with `hash` set to [`stored_hash`] of the body as stored.
pub fn decode(stream_seq: u64, body: &[u8]) -> Result<RecordedEvent, DecodeError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|source| DecodeError::Payload { stream_seq, source })?;
    decode_value(stream_seq, value)
}

/// [`decode`] for a body already parsed as JSON, for readers that looked into it first.
pub fn decode_value(stream_seq: u64, mut value: Value) -> Result<RecordedEvent, DecodeError> {
    let payload_error = |source| DecodeError::Payload { stream_seq, source };

    // The hash is taken before the upcast: it must name the bytes that are stored.
    let hash = stored_hash(&value);
    upcast(&mut value).map_err(|source| DecodeError::SchemaVersion { stream_seq, source })?;

    let mut envelope: EventEnvelope = serde_json::from_value(value).map_err(payload_error)?;
    if let Some(reason) = envelope.payload.contract_violation() {
        return Err(DecodeError::Contract {
            stream_seq,
            event_type: envelope.event_type(),
            reason,
        });
    }
    envelope.hash = Some(hash);
    Ok(RecordedEvent { stream_seq, envelope })
}

/// The hash a stored body is chained by, re-exported for readers of the store.
pub use csmp_domain::chain::stored_hash;

#[cfg(test)]
mod tests {
    use super::*;

    /// A `ticket.closed` event as a release before the hash chain wrote it.
    const PRE_CHAIN_CLOSED: &str = concat!(
        r#"{"event_id":"00000000-0000-0000-0000-000000000007","schema_version":1,"#,
        r#""tenant":"acme","ticket_id":"00000000-0000-0000-0000-000000000001","version":2,"#,
        r#""occurred_at":null,"recorded_at":"2026-01-02T03:04:05Z","#,
        r#""actor":{"id":"a","role":"lead"},"correlation_id":"c","causation_id":null,"#,
        r#""request_id":"r","event_type":"ticket.closed","payload":{}}"#
    );

    #[test]
    fn an_event_stored_without_hash_gets_the_hash_of_its_stored_body() {
        // The canonical body, sorted by hand, through `printf '%s' '...' | sha256sum`.
        let expected = "974272251fd1de6aa46813ea3ef95d6c37dd6fab7af5cc93f4d20732a66c1ba1";

        let event = decode(9, PRE_CHAIN_CLOSED.as_bytes()).unwrap();

        assert_eq!(event.stream_seq, 9);
        assert_eq!(event.envelope.prev_hash, None);
        assert_eq!(event.envelope.hash.as_deref(), Some(expected));
        let body: Value = serde_json::from_str(PRE_CHAIN_CLOSED).unwrap();
        assert_eq!(stored_hash(&body), expected);
    }

    #[test]
    fn a_stored_hash_is_kept_as_written() {
        let mut body: Value = serde_json::from_str(PRE_CHAIN_CLOSED).unwrap();
        body["prev_hash"] = Value::from("ab".repeat(32));
        body["hash"] = Value::from("cd".repeat(32));

        let event = decode(9, &serde_json::to_vec(&body).unwrap()).unwrap();

        assert_eq!(event.envelope.prev_hash, Some("ab".repeat(32)));
        assert_eq!(event.envelope.hash, Some("cd".repeat(32)));
    }

    #[test]
    fn encode_then_decode_gives_the_envelope_back() {
        let mut envelope = decode(9, PRE_CHAIN_CLOSED.as_bytes()).unwrap().envelope;
        envelope.prev_hash = Some("ab".repeat(32));

        let decoded = decode(10, &encode(&envelope)).unwrap();

        assert_eq!(decoded.envelope, envelope);
    }

    #[test]
    fn a_schema_version_from_a_newer_release_is_refused_naming_type_and_version() {
        let body = PRE_CHAIN_CLOSED.replace(r#""schema_version":1"#, r#""schema_version":4"#);

        let err = decode(9, body.as_bytes()).unwrap_err();

        assert_eq!(
            err.to_string(),
            "message at stream position 9 cannot be read: ticket.closed schema version 4 is not \
             one this release reads (1 to 1)"
        );
    }

    /// A v2 `feedback.given` body with `payload` in place of its own.
    fn feedback_body(payload: &str) -> String {
        PRE_CHAIN_CLOSED
            .replace(r#""event_type":"ticket.closed","payload":{}"#, "")
            .replace(r#""schema_version":1"#, r#""schema_version":2"#)
            .replace(
                r#","request_id":"r","#,
                &format!(r#","request_id":"r","event_type":"feedback.given","payload":{payload},"#),
            )
            .replace(",}", "}")
    }

    #[test]
    fn a_body_that_breaks_the_events_rules_is_refused_naming_the_rule() {
        let valid = r#"{"csat":2,"nps":null,"comment":null,"resolution_cycle":1,
            "sentiment":"negative","themes":["billing","response_time"]}"#;
        assert!(decode(9, feedback_body(valid).as_bytes()).is_ok());

        let cases = [
            (valid.replace(r#""csat":2"#, r#""csat":9"#), "csat 9 is not between 1 and 5"),
            (
                valid.replace(r#""negative""#, r#""positive""#),
                "sentiment positive does not follow csat 2",
            ),
            (
                valid.replace(r#""response_time""#, r#""billing""#),
                "themes are not sorted by name, each once",
            ),
        ];
        for (payload, reason) in cases {
            let err = decode(9, feedback_body(&payload).as_bytes()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "message at stream position 9 is not a valid feedback.given event: {reason}"
                )
            );
        }
    }

    #[test]
    fn a_refund_above_todays_limit_stays_readable_and_one_of_nothing_is_refused() {
        let refund = |minor: i64| {
            PRE_CHAIN_CLOSED.replace(
                r#""event_type":"ticket.closed","payload":{}"#,
                &format!(
                    r#""event_type":"refund.issued","payload":{{"refund_id":"r-1",
                    "amount":{{"amount_minor":{minor},"currency":"EUR"}},"reason":"x"}}"#
                ),
            )
        };

        assert!(decode(9, refund(2_000_000_000_000).as_bytes()).is_ok());
        assert_eq!(
            decode(9, refund(0).as_bytes()).unwrap_err().to_string(),
            "message at stream position 9 is not a valid refund.issued event: refund amount 0 is \
             not positive"
        );
    }
}
