//! Validated identifiers.
//!
//! A tenant id becomes a token of a NATS subject and part of every read-model key, so it is
//! restricted to lowercase ASCII letters, digits, `-` and `_`. Customer, agent and refund ids are
//! opaque to us but bounded and printable.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{quoted, DomainError};

/// Longest tenant id accepted.
pub const MAX_TENANT_LEN: usize = 64;
/// Longest customer, agent or refund id accepted.
pub const MAX_ID_LEN: usize = 128;

/// The client organisation a ticket belongs to; a key everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// Checks `raw` against the tenant id rules: 1 to 64 characters of `a-z`, `0-9`, `-`, `_`,
    /// starting with a letter or digit.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.is_empty() {
            return Err(DomainError::invalid("tenant", "must not be empty"));
        }
        // Counted in characters, as the error reports it; a byte count would call a tenant of
        // 33 two-byte letters "33 characters long" yet over a limit of 64.
        let len = raw.chars().count();
        if len > MAX_TENANT_LEN {
            return Err(DomainError::TooLong { field: "tenant", len, max: MAX_TENANT_LEN });
        }
        let valid_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if !raw.chars().all(valid_char) || raw.starts_with(['-', '_']) {
            return Err(DomainError::invalid(
                "tenant",
                format!("{} must be lowercase letters, digits, '-' or '_'", quoted(raw)),
            ));
        }
        Ok(TenantId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        TenantId::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A ticket's id: a UUID, chosen by the caller or derived from the open command's request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketId(pub Uuid);

/// Namespace for ticket ids derived from a tenant and an open command's request id.
const TICKET_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_3f3e_8a4b_4d52_9a0e_5b7c_2d1e_0f39);

impl TicketId {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Uuid::parse_str(raw).map(TicketId).map_err(|e| {
            DomainError::invalid("ticket_id", format!("{} is not a UUID: {e}", quoted(raw)))
        })
    }

    /// The ticket id an open command gets when the caller names none: the same tenant and request
    /// id always give the same ticket, so a retried open lands on the ticket it opened first.
    pub fn for_request(tenant: &TenantId, request_id: &str) -> Self {
        let name = format!("{}/{}", tenant.as_str(), request_id);
        TicketId(Uuid::new_v5(&TICKET_ID_NAMESPACE, name.as_bytes()))
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Checks an opaque id: not blank, at most [`MAX_ID_LEN`] characters, no space at either end, no
/// control or invisible characters, in Unicode's composed form (NFC). Two ids that look the same
/// are the same id: otherwise `"lead-1 "` would be another person than `"lead-1"`, and could
/// approve lead-1's refund; so would `"jose\u{301}"` (e and a combining accent) beside
/// `"jos\u{e9}"`.
pub fn check_opaque_id(field: &'static str, raw: &str) -> Result<(), DomainError> {
    if is_blank(raw) {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    let len = raw.chars().count();
    if len > MAX_ID_LEN {
        return Err(DomainError::TooLong { field, len, max: MAX_ID_LEN });
    }
    if raw.chars().any(char::is_control) {
        return Err(DomainError::invalid(field, "must not contain control characters"));
    }
    if raw.trim() != raw {
        return Err(DomainError::invalid(
            field,
            format!("{} starts or ends with space", quoted(raw)),
        ));
    }
    if let Some(c) = raw.chars().find(|c| is_invisible(*c)) {
        return Err(DomainError::invalid(
            field,
            format!("must not contain the invisible character U+{:04X}", u32::from(c)),
        ));
    }
    if !unicode_normalization::is_nfc(raw) {
        return Err(DomainError::invalid(
            field,
            format!("{} is not in Unicode's composed form (NFC)", quoted(raw)),
        ));
    }
    Ok(())
}

/// Whether `text` shows nothing: empty, or only spaces and invisible characters.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| c.is_whitespace() || is_invisible(c))
}

/// Characters that print as nothing: Unicode's default-ignorable code points (zero-width spaces
/// and joiners, direction marks and overrides, variation selectors, the soft hyphen, tag
/// characters, Hangul fillers, ...), the other format characters that show no glyph of their
/// own (the byte order mark, interlinear annotation and Egyptian format controls), and the
/// braille blank.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, DomainError> {
                check_opaque_id($field, raw)?;
                Ok($name(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

opaque_id!(
    /// The customer who raised the ticket; their history spans tickets.
    CustomerId,
    "customer_id"
);
opaque_id!(
    /// A support agent or lead.
    AgentId,
    "agent_id"
);
opaque_id!(
    /// A refund on a ticket, chosen by the caller; approval and rejection name it.
    RefundId,
    "refund_id"
);
