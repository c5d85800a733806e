//! The wire format: a JSON envelope in the message body, the event type in a header.

use csmp_domain::{EventEnvelope, RecordedEvent};

/// Header carrying the event type, for consumers that filter without parsing.
pub const EVENT_TYPE_HEADER: &str = "Csmp-Event-Type";
/// Header carrying the event's schema version.
pub const SCHEMA_VERSION_HEADER: &str = "Csmp-Schema-Version";

/// A stored message that is not an event this version understands. The message stays in the
/// stream; a projector records it as a dead letter and goes on.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message at stream position {stream_seq} is not a valid event: {source}")]
    Payload {
        stream_seq: u64,
        #[source]
        source: serde_json::Error,
    },
}

/// Encodes an envelope as the message body.
pub fn encode(envelope: &EventEnvelope) -> Vec<u8> {
    serde_json::to_vec(envelope).expect("an envelope always serializes")
}

/// Decodes a message body read at `stream_seq`.
pub fn decode(stream_seq: u64, body: &[u8]) -> Result<RecordedEvent, DecodeError> {
    let envelope = serde_json::from_slice(body)
        .map_err(|source| DecodeError::Payload { stream_seq, source })?;
    Ok(RecordedEvent { stream_seq, envelope })
}
