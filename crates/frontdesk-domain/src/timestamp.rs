//! Timestamps: UTC, millisecond precision, written `2023-01-01T00:00:00.000Z` on the wire.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// A UTC instant truncated to milliseconds, so what is stored is exactly what is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// Truncates to the millisecond and moves to UTC.
    pub fn new(at: OffsetDateTime) -> Self {
        let at = at.to_offset(UtcOffset::UTC);
        let millis = at.millisecond();
        // Replacing the nanosecond with whole milliseconds cannot fail: it stays in range.
        let truncated = at
            .replace_nanosecond(u32::from(millis) * 1_000_000)
            .unwrap_or(at);
        Self(truncated)
    }

    /// Reads a stored UTC wall-clock time.
    pub fn from_utc(at: PrimitiveDateTime) -> Self {
        Self::new(at.assume_utc())
    }

    pub fn as_utc(&self) -> PrimitiveDateTime {
        PrimitiveDateTime::new(self.0.date(), self.0.time())
    }

    pub fn as_offset(&self) -> OffsetDateTime {
        self.0
    }

    pub fn date(&self) -> time::Date {
        self.0.date()
    }

    /// `2023-01-01T00:00:00.000Z`.
    pub fn to_iso(&self) -> String {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        // Years 0..=9999 always format; the store never holds anything else.
        self.0
            .format(&format)
            .unwrap_or_else(|_| self.0.unix_timestamp().to_string())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_iso())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_iso())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        OffsetDateTime::parse(&text, &Rfc3339)
            .map(Timestamp::new)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn writes_milliseconds_and_z() {
        let ts = Timestamp::new(datetime!(2023-01-01 00:00:05.123456789 UTC));
        assert_eq!(ts.to_iso(), "2023-01-01T00:00:05.123Z");
        assert_eq!(ts.to_string(), "2023-01-01T00:00:05.123Z");
        let zero = Timestamp::new(datetime!(2023-01-01 00:00:00 UTC));
        assert_eq!(
            serde_json::to_string(&zero).ok().as_deref(),
            Some("\"2023-01-01T00:00:00.000Z\"")
        );
    }

    #[test]
    fn converts_offsets_to_utc() {
        let ts = Timestamp::new(datetime!(2023-01-01 02:00:00 +02:00));
        assert_eq!(ts.to_iso(), "2023-01-01T00:00:00.000Z");
    }

    #[test]
    fn round_trips_through_storage_form() {
        let ts = Timestamp::new(datetime!(2024-02-29 23:59:59.999 UTC));
        assert_eq!(Timestamp::from_utc(ts.as_utc()), ts);
    }
}
