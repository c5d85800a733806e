//! Opaque page tokens: the offset of the next row, tagged with the listing it belongs to.
//!
//! The token is hex text, so that clients treat it as opaque; it is not a secret. An offset
//! (rather than a keyset) keeps the token valid for listings ordered by SLA due times, which a
//! keyset over a joined, nullable column would complicate; a row that moves between two pages
//! may be seen twice or not at all, as with any offset paging.

use tonic::Status;

use crate::error::invalid;

/// Rows per page when the request gives no size.
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest page served; larger requests are cut to it.
pub(crate) const MAX_PAGE_SIZE: u32 = 500;

/// The page size to use for a requested `size` (0: the default).
pub(crate) fn page_size(size: u32) -> i64 {
    i64::from(if size == 0 { DEFAULT_PAGE_SIZE } else { size.min(MAX_PAGE_SIZE) })
}

/// The token of the page starting at `offset` of the listing `kind`.
pub(crate) fn encode(kind: &str, offset: i64) -> String {
    format!("{kind}:{offset}").bytes().map(|b| format!("{b:02x}")).collect()
}

/// The offset a token names, 0 for an empty token; `INVALID_ARGUMENT page_token` otherwise.
pub(crate) fn decode(kind: &str, token: &str) -> Result<i64, Status> {
    if token.is_empty() {
        return Ok(0);
    }
    let bad = || invalid("page_token", "not a token of this listing");
    if token.len() % 2 == 1 || !token.is_ascii() {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (tag, offset) = text.split_once(':').ok_or_else(bad)?;
    if tag != kind {
        return Err(bad());
    }
    offset.parse::<i64>().ok().filter(|o| *o >= 0).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_belong_to_their_listing() {
        let token = encode("queue", 150);

        assert_eq!(decode("queue", &token).unwrap(), 150);
        assert_eq!(decode("queue", "").unwrap(), 0);
        let wrong = decode("history", &token).unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::InvalidArgument);
        assert!(wrong.message().contains("page_token"), "{}", wrong.message());
        assert_eq!(decode("queue", "zz").unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(
            decode("queue", &encode("queue", -1)).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
