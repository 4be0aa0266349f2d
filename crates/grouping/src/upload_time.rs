//! The upload time, written into `UUID_TS` and into discard rows: RFC 3339 with milliseconds, UTC.

use std::fmt;

use serde::{Serialize, Serializer};
use time::{OffsetDateTime, UtcOffset, format_description::FormatItem, macros::format_description};

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// The time of an upload, already formatted as `2024-01-02T03:04:05.678Z` (UTC, milliseconds truncated).
///
/// The pure-logic crates read no clock: the caller takes the time once per upload and hands it in.
///
/// ```
/// use snowpipe_grouping::UploadTime;
/// use time::macros::datetime;
///
/// let t = UploadTime::new(datetime!(2024-01-02 04:04:05.678912 +01:00));
/// assert_eq!(t.as_str(), "2024-01-02T03:04:05.678Z");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UploadTime {
    formatted: Box<str>,
    // Kept as a JSON string literal too, because it is spliced into every row that has `UUID_TS`.
    json: Box<str>,
}

impl UploadTime {
    /// The upload time `at`, converted to UTC.
    ///
    /// # Panics
    /// Never for the years `time` supports by default (-9999 to 9999): the format has no fallible parts for
    /// them.
    #[must_use]
    pub fn new(at: OffsetDateTime) -> Self {
        let formatted = at
            .to_offset(UtcOffset::UTC)
            .format(FORMAT)
            .expect("a fixed numeric format of a valid date cannot fail");
        let json = format!("\"{formatted}\"");
        Self {
            formatted: formatted.into_boxed_str(),
            json: json.into_boxed_str(),
        }
    }

    /// The formatted time, e.g. `2024-01-02T03:04:05.678Z`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.formatted
    }

    /// The formatted time as a JSON string literal, quotes included.
    #[must_use]
    pub fn as_json(&self) -> &str {
        &self.json
    }
}

impl fmt::Display for UploadTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.formatted)
    }
}

impl fmt::Debug for UploadTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UploadTime({})", self.formatted)
    }
}

impl Serialize for UploadTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.formatted)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::UploadTime;

    #[test]
    fn milliseconds_are_truncated_and_padded() {
        assert_eq!(
            UploadTime::new(datetime!(2024-01-02 03:04:05.9999 UTC)).as_str(),
            "2024-01-02T03:04:05.999Z"
        );
        assert_eq!(
            UploadTime::new(datetime!(2024-01-02 03:04:05 UTC)).as_str(),
            "2024-01-02T03:04:05.000Z"
        );
        assert_eq!(
            UploadTime::new(datetime!(2024-01-02 03:04:05.07 UTC)).as_json(),
            "\"2024-01-02T03:04:05.070Z\""
        );
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let t = UploadTime::new(datetime!(2024-01-01 23:30:00.5 -05:00));
        assert_eq!(t.as_str(), "2024-01-02T04:30:00.500Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2024-01-02T04:30:00.500Z\""
        );
    }
}
