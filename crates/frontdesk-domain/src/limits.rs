//! Limits from contract.md, in one place so the server, the store and the docs agree.

/// Message `content`: characters (Unicode scalar values), inclusive range.
pub const CONTENT_MIN_CHARS: usize = 1;
pub const CONTENT_MAX_CHARS: usize = 10_000;
/// `metadata`: a JSON object whose compact serialisation is at most this many bytes.
pub const METADATA_MAX_BYTES: usize = 16 * 1024;
/// Any request body.
pub const BODY_MAX_BYTES: usize = 64 * 1024;
/// `customerId` length, characters.
pub const CUSTOMER_ID_MAX_CHARS: usize = 128;
/// `clientMessageId` length, characters.
pub const CLIENT_MESSAGE_ID_MAX_CHARS: usize = 128;
/// Partner `name` and customer `name`.
pub const NAME_MAX_CHARS: usize = 200;
/// DNS names are at most 253 characters.
pub const DOMAIN_MAX_CHARS: usize = 253;
/// RFC 5321's path limit.
pub const EMAIL_MAX_CHARS: usize = 254;
/// Message pages: default and maximum `limit` of a history request.
pub const PAGE_MAX_MESSAGES: i64 = 1_000;
/// A customer session token lives this long.
pub const CUSTOMER_SESSION_SECONDS: i64 = 60 * 60;
/// An agent session token lasts a working day.
pub const AGENT_SESSION_SECONDS: i64 = 12 * 60 * 60;

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers contract.md states, written out: a change here is a change of contract.
    #[test]
    fn the_contracts_numbers() {
        assert_eq!((CONTENT_MIN_CHARS, CONTENT_MAX_CHARS), (1, 10_000));
        assert_eq!(METADATA_MAX_BYTES, 16_384, "16 KiB");
        assert_eq!(BODY_MAX_BYTES, 65_536, "64 KiB");
        assert_eq!(CUSTOMER_SESSION_SECONDS, 3_600, "one hour");
        assert_eq!(AGENT_SESSION_SECONDS, 43_200, "twelve hours");
    }
}
