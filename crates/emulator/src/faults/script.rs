//! Faults a test can script per endpoint: fail the next calls with a status (or, for create-channel, a
//! failure code), drop the connection after reading a request (applied or not), and added latency; and
//! inserts held in transit (accepted for processing only after a delay). Also the call log, so a test
//! can assert what the client did and did not call.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    time::Duration,
};

use serde::{Deserialize, Serialize};

/// The endpoints the emulator serves, for faults and the call log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /channels`.
    CreateChannel,
    /// `DELETE /channels/{id}`.
    DeleteChannel,
    /// `GET /channels/{id}`.
    GetChannel,
    /// `POST /channels/{id}/insert`.
    Insert,
    /// `GET /channels/{id}/status`.
    Status,
    /// `GET /channels/bulk-status`.
    BulkStatus,
    /// `GET /health`.
    Health,
    /// `POST /api/v2/statements` (the SQL API).
    Statements,
    /// REST: `GET /v2/streaming/hostname`.
    RestHostname,
    /// REST: `POST /oauth/token`.
    RestToken,
    /// REST: `PUT .../pipes/{pipe}/channels/{channel}`.
    RestOpenChannel,
    /// REST: `POST /v2/streaming/data/.../channels/{channel}/rows`.
    RestAppend,
    /// REST: `DELETE .../pipes/{pipe}/channels/{channel}`.
    RestDropChannel,
    /// REST: `POST .../pipes/{pipe}:bulk-channel-status`.
    RestBulkStatus,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Self; 14] = [
        Self::CreateChannel,
        Self::DeleteChannel,
        Self::GetChannel,
        Self::Insert,
        Self::Status,
        Self::BulkStatus,
        Self::Health,
        Self::Statements,
        Self::RestHostname,
        Self::RestToken,
        Self::RestOpenChannel,
        Self::RestAppend,
        Self::RestDropChannel,
        Self::RestBulkStatus,
    ];

    /// The snake_case name used by the admin API and in logs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::CreateChannel => "create_channel",
            Self::DeleteChannel => "delete_channel",
            Self::GetChannel => "get_channel",
            Self::Insert => "insert",
            Self::Status => "status",
            Self::BulkStatus => "bulk_status",
            Self::Health => "health",
            Self::Statements => "statements",
            Self::RestHostname => "rest_hostname",
            Self::RestToken => "rest_token",
            Self::RestOpenChannel => "rest_open_channel",
            Self::RestAppend => "rest_append",
            Self::RestDropChannel => "rest_drop_channel",
            Self::RestBulkStatus => "rest_bulk_status",
        }
    }

    /// Is this an endpoint of the REST API (whose errors have their own shapes)?
    #[must_use]
    pub fn is_rest(self) -> bool {
        matches!(
            self,
            Self::RestHostname
                | Self::RestToken
                | Self::RestOpenChannel
                | Self::RestAppend
                | Self::RestDropChannel
                | Self::RestBulkStatus
        )
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a scripted failure answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
#[non_exhaustive]
pub enum Failure {
    /// Answer this HTTP status with a JSON error body (e.g. 500, 503, 429).
    Status {
        /// The HTTP status.
        status: u16,
    },
    /// Create-channel only: answer 200 with `success:false` and this code (e.g.
    /// `ERR_AUTHENTICATION_FAILED`) and `snowflakeAPIHttpCode`. On a REST endpoint: answer
    /// `http_code` with the documented `{"code", "message"}` body.
    ChannelCode {
        /// The `code` field.
        code: String,
        /// The `snowflakeAPIHttpCode` field.
        http_code: u16,
    },
    /// REST endpoints: answer `status` with a body of the given shape carrying `code` (e.g.
    /// `ERR_GENERAL_EXCEPTION_RETRY_REQUEST`), as live accounts answer in several shapes. On a
    /// sidecar endpoint it answers as [`Failure::Status`].
    Shaped {
        /// The HTTP status.
        status: u16,
        /// The error code the body carries (ignored by the empty and HTML shapes).
        code: String,
        /// How the body is written.
        shape: BodyShape,
    },
}

/// The shapes of error bodies Snowflake's REST API is seen to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BodyShape {
    /// The documented `{"code": "...", "message": "..."}`.
    Documented,
    /// `{"error_code": "..."}`.
    ErrorCode,
    /// A bare JSON string, `"ERR_..."`.
    BareString,
    /// No body at all.
    Empty,
    /// An HTML page, as a proxy in front of the service answers.
    Html,
}

/// What happens to a request whose connection is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropMode {
    /// The request takes effect, then the connection drops before the answer.
    Applied,
    /// The connection drops and the request has no effect.
    NotApplied,
}

/// One call received, as the call log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// Order of arrival, from 1.
    pub seq: u64,
    /// Which endpoint (unknown paths and the admin API are not logged).
    pub endpoint: Endpoint,
    /// The channel id the call named (path or created).
    pub channel_id: Option<String>,
    /// The insert's offset.
    pub offset: Option<String>,
    /// The insert's row count.
    pub row_count: Option<usize>,
    /// The SQL statement, for the SQL API.
    pub statement: Option<String>,
    /// The HTTP status answered; `None` when the connection was dropped.
    pub status: Option<u16>,
    /// The fault applied, if any: `fail`, `drop_applied`, `drop_not_applied`, `in_transit` (an insert
    /// held back; with another fault after it, `in_transit,fail` and so on), `held_in_transit` (a REST
    /// append taken and held until the channel's next open, its answer lost; `drop_applied,held_in_transit`
    /// when a dropped answer hit a held append).
    pub fault: Option<String>,
}

#[derive(Default)]
struct EndpointFaults {
    fail: Option<(u32, Failure)>,
    drop: Option<(u32, DropMode)>,
    latency: Duration,
}

/// What to do with one call, decided when it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    Normal,
    Fail(Failure),
    Drop(DropMode),
}

/// The scripted faults and the call log.
#[derive(Default)]
pub(crate) struct Faults {
    per_endpoint: HashMap<Endpoint, EndpointFaults>,
    pub(crate) bulk_status_lie: bool,
    /// Inserts still to hold in transit, and for how long each.
    in_transit: Option<(u32, Duration)>,
    calls: VecDeque<CallRecord>,
    next_seq: u64,
}

impl Faults {
    pub(crate) fn fail_next(&mut self, endpoint: Endpoint, count: u32, failure: Failure) {
        self.per_endpoint.entry(endpoint).or_default().fail =
            (count > 0).then_some((count, failure));
    }

    pub(crate) fn drop_next(&mut self, endpoint: Endpoint, count: u32, mode: DropMode) {
        self.per_endpoint.entry(endpoint).or_default().drop = (count > 0).then_some((count, mode));
    }

    pub(crate) fn set_latency(&mut self, endpoint: Endpoint, latency: Duration) {
        self.per_endpoint.entry(endpoint).or_default().latency = latency;
    }

    pub(crate) fn latency(&self, endpoint: Endpoint) -> Duration {
        self.per_endpoint
            .get(&endpoint)
            .map_or(Duration::ZERO, |f| f.latency)
    }

    /// Holds the next `count` inserts in transit for `delay` each before they are processed.
    pub(crate) fn delay_next_insert(&mut self, count: u32, delay: Duration) {
        self.in_transit = (count > 0 && !delay.is_zero()).then_some((count, delay));
    }

    /// Uses up one scripted in-transit delay, if `endpoint` is the insert and one is left.
    pub(crate) fn take_in_transit(&mut self, endpoint: Endpoint) -> Option<Duration> {
        if endpoint != Endpoint::Insert {
            return None;
        }
        let (n, delay) = self.in_transit.as_mut()?;
        let delay = *delay;
        *n -= 1;
        if *n == 0 {
            self.in_transit = None;
        }
        Some(delay)
    }

    /// Clears every scripted fault (not the call log). Inserts already in transit stay so.
    pub(crate) fn clear(&mut self) {
        self.per_endpoint.clear();
        self.bulk_status_lie = false;
        self.in_transit = None;
    }

    /// Decides the fate of one call and uses up one scripted fault. Failures go before drops.
    pub(crate) fn plan(&mut self, endpoint: Endpoint) -> Plan {
        let Some(f) = self.per_endpoint.get_mut(&endpoint) else {
            return Plan::Normal;
        };
        if let Some((n, failure)) = f.fail.as_mut() {
            let failure = failure.clone();
            *n -= 1;
            if *n == 0 {
                f.fail = None;
            }
            return Plan::Fail(failure);
        }
        if let Some((n, mode)) = f.drop.as_mut() {
            let mode = *mode;
            *n -= 1;
            if *n == 0 {
                f.drop = None;
            }
            return Plan::Drop(mode);
        }
        Plan::Normal
    }

    pub(crate) fn record(&mut self, mut record: CallRecord, capacity: usize) {
        self.next_seq += 1;
        record.seq = self.next_seq;
        self.calls.push_back(record);
        while self.calls.len() > capacity {
            self.calls.pop_front();
        }
    }

    pub(crate) fn calls(&self) -> Vec<CallRecord> {
        self.calls.iter().cloned().collect()
    }

    pub(crate) fn call_count(&self) -> usize {
        self.calls.len()
    }

    pub(crate) fn clear_calls(&mut self) {
        self.calls.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_then_drops_then_normal() {
        let mut f = Faults::default();
        f.fail_next(Endpoint::Insert, 2, Failure::Status { status: 503 });
        f.drop_next(Endpoint::Insert, 1, DropMode::Applied);
        assert_eq!(f.plan(Endpoint::Status), Plan::Normal);
        assert_eq!(
            f.plan(Endpoint::Insert),
            Plan::Fail(Failure::Status { status: 503 })
        );
        assert_eq!(
            f.plan(Endpoint::Insert),
            Plan::Fail(Failure::Status { status: 503 })
        );
        assert_eq!(f.plan(Endpoint::Insert), Plan::Drop(DropMode::Applied));
        assert_eq!(f.plan(Endpoint::Insert), Plan::Normal);
    }

    #[test]
    fn in_transit_delays_only_inserts_and_run_out() {
        let mut f = Faults::default();
        let d = Duration::from_millis(5);
        f.delay_next_insert(2, d);
        assert_eq!(f.take_in_transit(Endpoint::Status), None);
        assert_eq!(f.take_in_transit(Endpoint::Insert), Some(d));
        assert_eq!(f.take_in_transit(Endpoint::Insert), Some(d));
        assert_eq!(f.take_in_transit(Endpoint::Insert), None);
        f.delay_next_insert(1, d);
        f.clear();
        assert_eq!(f.take_in_transit(Endpoint::Insert), None);
        f.delay_next_insert(1, Duration::ZERO);
        assert_eq!(
            f.take_in_transit(Endpoint::Insert),
            None,
            "no delay, no fault"
        );
    }

    #[test]
    fn call_log_is_bounded() {
        let mut f = Faults::default();
        let rec = CallRecord {
            seq: 0,
            endpoint: Endpoint::Health,
            channel_id: None,
            offset: None,
            row_count: None,
            statement: None,
            status: Some(200),
            fault: None,
        };
        for _ in 0..5 {
            f.record(rec.clone(), 3);
        }
        let seqs: Vec<u64> = f.calls().iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
    }

    #[test]
    fn endpoint_names_match_serde() {
        for e in Endpoint::ALL {
            assert_eq!(
                serde_json::to_value(e).unwrap(),
                serde_json::Value::String(e.name().to_owned())
            );
        }
    }
}
