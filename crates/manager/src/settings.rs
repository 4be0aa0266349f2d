//! The manager's settings, with the defaults of the behaviour contract.

use std::time::Duration;

use snowpipe_grouping::{DEFAULT_MAX_INSERT_BYTES, DEFAULT_MAX_LINE_BYTES};

/// How the manager uploads and polls. Start from `Settings::default()` and change what differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The instance id, used as the channels' partition.
    pub instance_id: String,
    /// Longest line of an event file.
    pub max_line_bytes: usize,
    /// Largest rows array of one insert request.
    pub max_insert_request_bytes: usize,
    /// Most channel ids in one bulk status request.
    pub bulk_status_batch_size: usize,
    /// How long an import may stay in progress before its channels are checked one by one and the import
    /// failed as stuck.
    pub stuck_threshold: Duration,
    /// How long an in-progress entry's channel may keep its committed position still before the channel
    /// is checked on its own status: invalid → its rows are settled at once (failed with a reason naming
    /// the stall); valid → a warning and the `snowpipe_streaming_channels_stalled` gauge, and the stuck
    /// threshold stays the last resort. At or above `stuck_threshold`, stalls are left to it.
    pub stall_after: Duration,
    /// Most tables inserted at once. Each insert holds its request body (up to
    /// `max_insert_request_bytes`, and its compressed copy) while it is sent, so this bounds the memory an
    /// upload needs beyond its batch.
    pub table_concurrency: usize,
    /// Most tables whose channels are being opened (with any DDL) at once. Opening costs waiting on the
    /// service and the warehouse, not memory, so it runs ahead of the inserts.
    pub channel_concurrency: usize,
    /// Longest wait for a batch's discard rows to commit before the rows of their tables go out; past it,
    /// those tables' jobs fail (and come back) rather than succeed with their discard rows lost.
    pub discards_commit_wait: Duration,
    /// Longest wait, before reopening a channel, for the rows written to it before to commit (on a backend
    /// that cannot wait itself, the sidecar), so back-to-back uploads do not discard each other.
    pub reopen_wait: Duration,
    /// How long after an append's answer was lost to wait before reopening the channel to settle it, so a
    /// request still in transit reaches the service before the reopen, not after it.
    pub lost_answer_margin: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            instance_id: "1".to_owned(),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_insert_request_bytes: DEFAULT_MAX_INSERT_BYTES,
            bulk_status_batch_size: 100,
            stuck_threshold: Duration::from_secs(15 * 60),
            stall_after: Duration::from_secs(60),
            table_concurrency: 4,
            channel_concurrency: 8,
            discards_commit_wait: Duration::from_secs(60),
            reopen_wait: Duration::from_secs(30),
            lost_answer_margin: Duration::from_secs(1),
        }
    }
}
