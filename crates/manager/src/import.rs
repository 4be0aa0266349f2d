//! The import id that upload hands out and poll and upload stats take back, in rudder-server's field names so
//! a batch router can persist it as it is.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use snowpipe_channels::token::Epoch;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// The scheme of entries whose rows are judged by their segments' positions ([`ImportEntry::scheme`]).
/// Entries without a scheme are of the one before: offsets were job ids.
pub const SCHEME: &str = "v2";

/// One table's share of an upload: what poll checks, and what upload stats judges jobs by.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportEntry {
    /// The channel the rows went to last.
    pub channel_id: String,
    /// The end token of the entry's last request (for people; poll judges by `segments`). In entries of the
    /// scheme before, the highest job id among the rows.
    pub offset: String,
    /// The table.
    pub table: String,
    /// How many jobs (rows) the entry covers.
    #[serde(default)]
    pub count: u64,
    /// The lowest job id in the insert; a lost insert fails every job from here (or from the committed offset
    /// + 1, when lower) to `offset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_job_id: Option<i64>,
    /// When the rows were uploaded (RFC 3339, UTC, as in `UUID_TS`). Not one of rudder-server's fields: it lets
    /// a poll in a fresh process, which has not seen the import before, still count the stuck threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
    /// Set by poll: the entry failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// Set by poll: why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// `"v2"` ([`SCHEME`]): the rows are judged by `segments`. Absent in entries of the scheme before,
    /// which poll judges by the old rule only while the channel's committed token is still a job id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The rows, by the epoch and positions they went out in, each with its jobs in row order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<EntrySegment>,
    /// Set by poll for lost rows of an entry of the scheme before: only jobs in this range failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_job_ids: Option<JobIdRange>,
    /// Set by poll: exactly the jobs that failed (the others succeeded).
    #[serde(default, skip_serializing_if = "JobRuns::is_empty")]
    pub failed_jobs: JobRuns,
    /// Set by poll: jobs whose rows committed but may have been rejected by Snowflake at commit (REST
    /// backend). They are aborted, not retried: a retry would write their other rows twice and be rejected
    /// again.
    #[serde(default, skip_serializing_if = "JobRuns::is_empty")]
    pub aborted_jobs: JobRuns,
    /// Set by poll: why `abortedJobs` were aborted (Snowflake's message).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub aborted_reason: String,
    /// The backend the rows went through (`rest` or `sidecar`): a poll must ask the same one. Absent in
    /// import ids of releases that knew only the sidecar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
}

impl ImportEntry {
    /// The backend the entry's rows went through: `sidecar` for entries written before the REST backend.
    pub fn backend_name(&self) -> &str {
        self.backend.as_deref().unwrap_or("sidecar")
    }
}

/// Rows of an entry that went out in one epoch: positions `first..=last`, one per row, and the rows' jobs in
/// the same order.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntrySegment {
    /// The epoch.
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub epoch: Epoch,
    /// The first row's position.
    pub first: u64,
    /// The last row's position.
    pub last: u64,
    /// The rows' jobs, in row order: `last - first + 1` of them.
    pub jobs: JobRuns,
    /// The channel's counters when the epoch was fenced (REST): `[inserted, rejected, created_on_ms]`, so
    /// that a poll in any process tells counters that lag the committed token. Absent on the sidecar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<[i64; 3]>,
}

impl EntrySegment {
    /// The fence counters, as the channel layer takes them.
    pub(crate) fn fence_counters(&self) -> Option<snowpipe_channels::FenceCounters> {
        let [inserted, errors, created_on_ms] = self.fence?;
        Some(snowpipe_channels::FenceCounters {
            inserted: u64::try_from(inserted).ok()?,
            errors: u64::try_from(errors).ok()?,
            created_on_ms,
        })
    }
}

/// Job ids in order, written as runs of consecutive ids (`[[1001, 1500], [7, 7]]`), so the import id of a
/// large batch stays small.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobRuns(Vec<(i64, i64)>);

impl JobRuns {
    /// The runs of `ids`, in order.
    pub fn of(ids: impl IntoIterator<Item = i64>) -> Self {
        let mut runs: Vec<(i64, i64)> = Vec::new();
        for id in ids {
            match runs.last_mut() {
                Some((_, end)) if end.checked_add(1) == Some(id) => *end = id,
                _ => runs.push((id, id)),
            }
        }
        Self(runs)
    }

    /// The ids, in order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.0.iter().flat_map(|&(start, end)| start..=end)
    }

    /// How many ids.
    pub fn len(&self) -> u64 {
        self.0
            .iter()
            .map(|&(start, end)| end.abs_diff(start) + 1)
            .sum()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `id` is one of them.
    pub fn contains(&self, id: i64) -> bool {
        self.0
            .iter()
            .any(|&(start, end)| (start..=end).contains(&id))
    }
}

/// An inclusive range of job ids.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobIdRange {
    /// First job id.
    pub start: i64,
    /// Last job id.
    pub end: i64,
}

impl ImportEntry {
    /// [`ImportEntry::uploaded_at`] as a time; `None` when absent or unreadable (an import id from elsewhere).
    pub fn upload_time(&self) -> Option<SystemTime> {
        let text = self.uploaded_at.as_deref()?;
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(SystemTime::from)
    }
}

impl JobIdRange {
    /// Whether `job_id` is in the range.
    pub fn contains(&self, job_id: i64) -> bool {
        (self.start..=self.end).contains(&job_id)
    }
}

/// An import id: the entries upload handed out, one per channel it appended to, in upload order (tables,
/// then the discards channel). What poll takes.
///
/// In JSON it is the array of entries (`importId`'s value); [`ImportId::decode`] also reads the whole
/// `{"importId": [...]}` object and either as a JSON string, as routers persist it.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImportId(pub Vec<ImportEntry>);

impl ImportId {
    /// Reads an import id from the JSON a caller holds: the entries' array, the whole `{"importId": [...]}`
    /// object, or either as a JSON string.
    ///
    /// # Errors
    /// [`DecodeError`] naming what could not be read.
    pub fn decode(value: &Value) -> Result<Self, DecodeError> {
        decode_entries(value, "the import id").map(Self)
    }

    /// The entries.
    pub fn entries(&self) -> &[ImportEntry] {
        &self.0
    }
}

/// Poll's failed job parameters: the import's entries, each with `failed`, `reason` and `failedJobIds` set
/// by poll. What upload stats takes.
///
/// In JSON it is the array of entries, like [`ImportId`]; [`FailedJobParameters::decode`] reads the same
/// forms.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FailedJobParameters(pub Vec<ImportEntry>);

impl FailedJobParameters {
    /// Reads failed job parameters from the JSON a caller holds (the forms [`ImportId::decode`] reads).
    ///
    /// # Errors
    /// [`DecodeError`] naming what could not be read.
    pub fn decode(value: &Value) -> Result<Self, DecodeError> {
        decode_entries(value, "the failed job parameters").map(Self)
    }

    /// The entries.
    pub fn entries(&self) -> &[ImportEntry] {
        &self.0
    }
}

impl From<ImportId> for FailedJobParameters {
    /// An import's entries as they stand before poll judged them: upload stats then calls every job of a
    /// table with an entry succeeded.
    fn from(import_id: ImportId) -> Self {
        Self(import_id.0)
    }
}

/// Upload's importing parameters: `{"importId": [entries]}`.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportParameters {
    /// The import id to hand to poll.
    pub import_id: ImportId,
}

/// Why an import id or failed job parameters could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot decode {what}: {reason}; pass the `importId` array from upload's importingParameters (or the whole object)"
)]
pub struct DecodeError {
    what: &'static str,
    reason: String,
}

/// Reads the entries of an import id given as the array, as the array in a JSON string (as some routers
/// persist it), or as the whole `{"importId": [...]}` object.
fn decode_entries(value: &Value, what: &'static str) -> Result<Vec<ImportEntry>, DecodeError> {
    let error = |reason: String| DecodeError { what, reason };
    match value {
        Value::Array(_) => serde_json::from_value(value.clone()).map_err(|e| error(e.to_string())),
        Value::Object(object) => match object.get("importId") {
            Some(inner) => decode_entries(inner, what),
            None => Err(error("the object has no `importId`".to_owned())),
        },
        Value::String(text) => {
            let inner: Value = serde_json::from_str(text).map_err(|e| error(e.to_string()))?;
            decode_entries(&inner, what)
        }
        other => Err(error(format!(
            "expected an array of entries, got {}",
            kind(other)
        ))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn entries_decode_from_array_object_or_string() {
        let array =
            json!([{"channelId": "c", "offset": "9", "table": "T", "count": 2, "minJobId": 8}]);
        let entries = decode_entries(&array, "import id").unwrap();
        assert_eq!(entries[0].min_job_id, Some(8));
        assert_eq!(
            decode_entries(&json!({"importId": array}), "import id").unwrap(),
            entries
        );
        assert_eq!(
            decode_entries(&json!(array.to_string()), "import id").unwrap(),
            entries
        );
        let error = decode_entries(&json!(5), "import id")
            .unwrap_err()
            .to_string();
        assert!(error.contains("got a number"), "{error}");
        assert!(decode_entries(&json!([{"offset": 1}]), "import id").is_err());
    }

    #[test]
    fn entries_serialise_with_rudders_names_and_no_empty_poll_fields() {
        let entry = ImportEntry {
            channel_id: "c".into(),
            offset: "9".into(),
            table: "T".into(),
            count: 2,
            min_job_id: Some(8),
            ..ImportEntry::default()
        };
        assert_eq!(
            serde_json::to_value(&entry).unwrap(),
            json!({"channelId": "c", "offset": "9", "table": "T", "count": 2, "minJobId": 8})
        );
        let failed = ImportEntry {
            failed: true,
            reason: "lost".into(),
            failed_job_ids: Some(JobIdRange { start: 3, end: 9 }),
            ..entry
        };
        let value = serde_json::to_value(&failed).unwrap();
        assert_eq!(value["failedJobIds"], json!({"start": 3, "end": 9}));
        assert_eq!(value["failed"], json!(true));
    }

    #[test]
    fn the_upload_time_reads_back_and_anything_else_is_ignored() {
        let mut entry = ImportEntry {
            uploaded_at: Some("2024-01-02T03:04:05.678Z".into()),
            ..ImportEntry::default()
        };
        assert_eq!(
            serde_json::to_value(&entry).unwrap()["uploadedAt"],
            json!("2024-01-02T03:04:05.678Z")
        );
        let expected = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_704_164_645_678);
        assert_eq!(entry.upload_time(), Some(expected));
        entry.uploaded_at = Some("yesterday".into());
        assert_eq!(entry.upload_time(), None);
        entry.uploaded_at = None;
        assert_eq!(entry.upload_time(), None);
    }
}
