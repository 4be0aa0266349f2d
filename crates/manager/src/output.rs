//! What upload, poll and upload stats answer, in the JSON shapes a batch router reads.

use std::{collections::BTreeMap, sync::Arc};

use serde::Serialize;

use crate::{FailedJobParameters, ImportParameters};

/// Upload's answer: every job id of the batch is in exactly one of importing, failed and aborted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct UploadOutput {
    /// The destination.
    pub destination_id: String,
    /// Jobs whose rows were handed to Snowflake; poll tells whether they landed.
    pub importing_job_ids: Vec<i64>,
    /// `importing_job_ids.len()`.
    pub importing_count: usize,
    /// What to hand to poll (its `importId` array); `None` when nothing is importing.
    pub importing_parameters: Option<ImportParameters>,
    /// Jobs to retry in a later batch.
    pub failed_job_ids: Vec<i64>,
    /// `failed_job_ids.len()`.
    pub failed_count: usize,
    /// Why they failed (the distinct reasons, joined).
    pub failed_reason: String,
    /// Jobs never to retry.
    pub aborted_job_ids: Vec<i64>,
    /// `aborted_job_ids.len()`.
    pub abort_count: usize,
    /// Why they were aborted.
    pub abort_reason: String,
    /// The reason of each failed or aborted job (not part of the router's JSON).
    #[serde(skip)]
    pub reasons: BTreeMap<i64, String>,
    /// Each importing job with its table, as upload stats takes them (not part of the router's JSON).
    #[serde(skip)]
    pub importing_tables: Vec<(i64, Arc<str>)>,
}

/// Poll's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PollOutput {
    /// Every entry reached a terminal state.
    pub complete: bool,
    /// Some entry is still flushing: poll again later.
    pub in_progress: bool,
    /// 200, or 400 when the import id could not be decoded.
    pub status_code: u16,
    /// Some entry failed; `failed_job_parameters` says which jobs.
    pub has_failed: bool,
    /// Some entry failed as stuck (committed offsets stopped moving): a warning names the pipeline.
    pub has_warning: bool,
    /// The import entries with `failed`, `reason` and `failedJobIds` set, for upload stats.
    pub failed_job_parameters: Option<FailedJobParameters>,
    /// The decode error, when `status_code` is 400.
    pub error: String,
}

/// Upload stats' answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct UploadStatsOutput {
    /// 200, or 400 when the failed job parameters could not be decoded.
    pub status_code: u16,
    /// Jobs and their outcomes.
    pub metadata: StatsMetadata,
    /// The decode error, when `status_code` is 400.
    pub error: String,
}

/// Per-job outcomes of an import.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct StatsMetadata {
    /// Jobs whose rows are in their table.
    pub succeeded_keys: Vec<i64>,
    /// Jobs to retry.
    pub failed_keys: Vec<i64>,
    /// Why each failed job failed.
    pub failed_reasons: BTreeMap<i64, String>,
    /// Jobs that will never succeed as they are (their rows were rejected by Snowflake at commit): not to
    /// be retried. Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aborted_keys: Vec<i64>,
    /// Why each aborted job was aborted. Absent when none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aborted_reasons: BTreeMap<i64, String>,
}
