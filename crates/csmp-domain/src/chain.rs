//! The hash chain that makes a ticket's history tamper-evident.
//!
//! Every event carries `prev_hash`, the hash of the ticket's previous event (`null` on the
//! first), and `hash`, its own. An event's hash is the SHA-256, in lower-case hex, of the
//! canonical JSON of its stored body without the `hash` field: object keys sorted by their UTF-8
//! bytes, no whitespace, strings and numbers as `serde_json` writes them. Because each event
//! names the previous one's hash, altering, removing or reordering an event breaks the chain at
//! that event.
//!
//! The hash is always taken over the body as stored, never over an upcast form, so an old event
//! keeps its hash when a newer schema version of its type is introduced. Events stored before
//! the chain existed carry neither field; their hash is computed the same way when read.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The field holding an event's own hash.
pub const HASH_FIELD: &str = "hash";
/// The field holding the hash of the ticket's previous event.
pub const PREV_HASH_FIELD: &str = "prev_hash";

/// Writes `value` as canonical JSON: keys sorted, no whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, None, &mut out);
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Appends the canonical JSON of `value` to `out`, leaving out the top-level key `skip`.
/// Strings and numbers go through serde_json's own writer, so they read exactly as in a body
/// serde_json wrote.
fn write_canonical(value: &Value, skip: Option<&str>, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> =
                map.iter().filter(|(key, _)| Some(key.as_str()) != skip).collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(key, out);
                out.push(b':');
                write_canonical(item, None, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, None, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &(impl serde::Serialize + ?Sized), out: &mut Vec<u8>) {
    serde_json::to_writer(out, value).expect("a string or a JSON scalar always serializes");
}

/// The hash a stored event body is chained by: its `hash` field, or for an event stored before
/// the chain existed (no `hash` string), [`event_hash`] of the body. This does not verify
/// anything; a body is intact when its `hash` field equals [`event_hash`] of it.
pub fn stored_hash(stored: &Value) -> String {
    match stored.get(HASH_FIELD).and_then(Value::as_str) {
        Some(hash) => hash.to_owned(),
        None => event_hash(stored),
    }
}

/// The hash of a stored event body: SHA-256 of its canonical JSON without the `hash` field.
pub fn event_hash(stored: &Value) -> String {
    let mut canonical = Vec::with_capacity(1024);
    write_canonical(stored, Some(HASH_FIELD), &mut canonical);
    hex(&Sha256::digest(&canonical))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_drops_whitespace() {
        let value = json!({"b": 1, "a": {"z": [true, null, "x"], "c": -2}});
        assert_eq!(canonical_json(&value), r#"{"a":{"c":-2,"z":[true,null,"x"]},"b":1}"#);
    }

    #[test]
    fn canonical_json_writes_strings_and_numbers_as_serde_json_does() {
        let value = json!({"n": 1.5, "\u{e9}\"k": "a\nb\u{1}", "m": -0});
        assert_eq!(canonical_json(&value), "{\"m\":0,\"n\":1.5,\"\u{e9}\\\"k\":\"a\\nb\\u0001\"}");
    }

    #[test]
    fn only_the_top_level_hash_field_is_left_out() {
        // Worked out with `printf '%s' '{"payload":{"hash":1}}' | sha256sum`.
        let expected = "3e8a140511b17652930f2a1a7bc8f9ab6f05c4846e1ab965dba314aab156f121";
        assert_eq!(event_hash(&json!({"payload": {"hash": 1}, "hash": "x"})), expected);
    }

    #[test]
    fn the_hash_ignores_the_hash_field_and_key_order() {
        // sha256("{\"a\":1}") worked out with `printf '{"a":1}' | sha256sum`.
        let expected = "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862";
        assert_eq!(event_hash(&json!({"a": 1})), expected);
        assert_eq!(event_hash(&json!({"hash": "whatever", "a": 1})), expected);
    }

    #[test]
    fn the_stored_hash_is_the_hash_field_or_computed_for_pre_chain_bodies() {
        let chained = json!({"a": 1, "hash": "f00d"});
        let pre_chain = json!({"a": 1});

        assert_eq!(stored_hash(&chained), "f00d");
        assert_eq!(
            stored_hash(&pre_chain),
            "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
        );
    }

    #[test]
    fn any_changed_value_changes_the_hash() {
        let stored = json!({"version": 2, "prev_hash": "ab", "payload": {"csat": 4}});
        let altered = json!({"version": 2, "prev_hash": "ab", "payload": {"csat": 5}});
        assert_ne!(event_hash(&stored), event_hash(&altered));
    }
}
