//! The JSON of the ingest host's calls, as `rest-protocol.md` gives it. Unknown fields are ignored: the
//! service adds fields without notice.

use serde::{Deserialize, Serialize};
use snowpipe_api::{ChannelStatus, Progress, RowCounters};

/// The body of an open (`PUT .../channels/{channel}`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OpenBody<'a> {
    /// Refuse with 409 rather than discard rows appended earlier and not committed yet.
    pub(crate) fail_on_uncommitted_rows: bool,
    /// A token to store as the committed token at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) offset_token: Option<&'a str>,
}

/// The answer to an open.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OpenAnswer {
    pub(crate) next_continuation_token: String,
    pub(crate) channel_status: Status,
}

/// The answer to an append.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AppendAnswer {
    pub(crate) next_continuation_token: String,
}

/// The body of a bulk status call.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BulkStatusBody<'a> {
    pub(crate) channel_names: &'a [String],
}

/// The answer to a bulk status call: channels the service does not know are missing from the map.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BulkStatusAnswer {
    #[serde(default)]
    pub(crate) channel_statuses: std::collections::HashMap<String, Status>,
}

/// A channel's status, every field the page names. Counters are optional on the wire: a missing one reads
/// as zero, never as an error.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Status {
    /// The database.
    pub database_name: Option<String>,
    /// The schema.
    pub schema_name: Option<String>,
    /// The pipe.
    pub pipe_name: Option<String>,
    /// The channel.
    pub channel_name: Option<String>,
    /// `SUCCESS` (or `ACTIVE`) for a healthy channel; anything else: invalid, to be reopened.
    pub channel_status_code: Option<String>,
    /// The end token of the last committed request.
    pub last_committed_offset_token: Option<String>,
    /// When this incarnation of the channel was created (ms since the epoch).
    pub created_on_ms: Option<i64>,
    /// Rows committed.
    pub rows_inserted: Option<u64>,
    /// Rows parsed.
    pub rows_parsed: Option<u64>,
    /// Rows rejected at commit (live answers).
    pub rows_error_count: Option<u64>,
    /// Rows rejected at commit (the documented name in bulk status).
    pub rows_errors: Option<u64>,
    /// The end token of the last request that held a rejected row.
    pub last_error_offset_upper_bound: Option<String>,
    /// The service's message about the last rejected row.
    pub last_error_message: Option<String>,
    /// When the last row was rejected (ms since the epoch).
    pub last_error_timestamp: Option<i64>,
    /// The service's average processing latency.
    pub snowflake_avg_processing_latency_ms: Option<u64>,
}

impl Status {
    /// Whether the channel can commit: `SUCCESS`, or the documented example's `ACTIVE`.
    pub fn is_valid(&self) -> bool {
        matches!(
            self.channel_status_code.as_deref(),
            Some("SUCCESS" | "ACTIVE")
        )
    }

    /// Rows rejected at commit, whichever name the answer used.
    pub fn rows_error_count(&self) -> u64 {
        self.rows_error_count.or(self.rows_errors).unwrap_or(0)
    }

    /// The boundary's view of this status.
    pub(crate) fn to_boundary(&self) -> ChannelStatus {
        ChannelStatus {
            valid: self.is_valid(),
            // An empty token is how a fresh channel may answer "nothing committed".
            committed: self
                .last_committed_offset_token
                .clone()
                .filter(|t| !t.is_empty()),
            progress: Progress::Counters(RowCounters {
                rows_inserted: self.rows_inserted.unwrap_or(0),
                rows_parsed: self.rows_parsed.unwrap_or(0),
                rows_error_count: self.rows_error_count(),
                last_error_offset_upper_bound: self
                    .last_error_offset_upper_bound
                    .clone()
                    .filter(|t| !t.is_empty()),
                last_error_message: self.last_error_message.clone(),
                created_on_ms: self.created_on_ms.unwrap_or(0),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_reads_either_error_counter_and_ignores_unknown_fields() {
        let live: Status = serde_json::from_str(
            r#"{"channel_status_code":"SUCCESS","last_committed_offset_token":"7","rows_error_count":2,
                "created_on_ms":1700000000000,"brand_new_field":{"x":1}}"#,
        )
        .unwrap();
        assert!(live.is_valid());
        assert_eq!(live.rows_error_count(), 2);
        let documented: Status =
            serde_json::from_str(r#"{"channel_status_code":"ACTIVE","rows_errors":3}"#).unwrap();
        assert!(documented.is_valid());
        assert_eq!(documented.rows_error_count(), 3);
        let broken: Status =
            serde_json::from_str(r#"{"channel_status_code":"ERR_CHANNEL_MUST_BE_REOPENED"}"#)
                .unwrap();
        assert!(!broken.is_valid());
        let boundary = live.to_boundary();
        assert_eq!(boundary.committed.as_deref(), Some("7"));
        let Progress::Counters(counters) = boundary.progress else {
            panic!("counters");
        };
        assert_eq!(
            (counters.rows_error_count, counters.created_on_ms),
            (2, 1_700_000_000_000)
        );
    }

    #[test]
    fn an_open_body_sends_the_token_only_when_given() {
        let plain = serde_json::to_string(&OpenBody {
            fail_on_uncommitted_rows: true,
            offset_token: None,
        })
        .unwrap();
        assert_eq!(plain, r#"{"fail_on_uncommitted_rows":true}"#);
        let fenced = serde_json::to_string(&OpenBody {
            fail_on_uncommitted_rows: false,
            offset_token: Some("e2.0000000001"),
        })
        .unwrap();
        assert_eq!(
            fenced,
            r#"{"fail_on_uncommitted_rows":false,"offset_token":"e2.0000000001"}"#
        );
    }
}
