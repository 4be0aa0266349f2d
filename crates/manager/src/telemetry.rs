//! The manager's metrics, named once here, each tagged with workspace, destination and destination type.

use metrics::Label;

/// Jobs by outcome: `status` = importing, succeeded, failed or aborted.
pub const JOBS: &str = "snowpipe_streaming_jobs_total";
/// Discard rows inserted.
pub const DISCARDS: &str = "snowpipe_streaming_discards_total";
/// Polls answered "in progress".
pub const POLLING_IN_PROGRESS: &str = "snowpipe_streaming_polls_in_progress_total";
/// Duplicate events seen at upload: `reason` = batch (an `ID` repeated in the batch).
pub const DUPLICATE_EVENTS: &str = "snowpipe_streaming_duplicate_events_total";
/// Jobs failed because whether their rows committed cannot be told, by `cause` (see
/// `snowpipe_channels::verdict::Undecidable`): retried, and their rows may land twice.
pub const UNDECIDABLE_JOBS: &str = "snowpipe_streaming_undecidable_jobs_total";

/// Channels whose committed position has not moved for the stall threshold while an import still waits
/// on them, and which the service still calls valid (a gauge, set at each poll).
pub const CHANNELS_STALLED: &str = "snowpipe_streaming_channels_stalled";

/// Describes every metric of the manager and the layers below it to the installed recorder (the
/// `# HELP` lines of Prometheus text). Call it once the recorder is installed.
pub fn describe_metrics() {
    metrics::describe_counter!(
        JOBS,
        "Jobs by outcome: status = importing, succeeded, failed, aborted"
    );
    metrics::describe_counter!(
        DISCARDS,
        "Discard rows inserted (values their column's type cannot hold)"
    );
    metrics::describe_counter!(POLLING_IN_PROGRESS, "Polls answered in progress");
    metrics::describe_counter!(
        DUPLICATE_EVENTS,
        "Duplicate events seen at upload, by reason"
    );
    metrics::describe_counter!(
        UNDECIDABLE_JOBS,
        "Jobs failed because whether their rows committed cannot be told, by cause; their rows may land twice"
    );
    metrics::describe_counter!(
        REJECTED_ROWS,
        "Rows Snowflake rejected at commit, by table, from the channels' counters (REST); their jobs are aborted"
    );
    metrics::describe_counter!(
        BILLED_BYTES,
        "Bytes of the values of rows handed to Snowflake, by table (keys not counted): the volume the high-performance architecture bills"
    );
    metrics::describe_gauge!(
        CHANNELS_STALLED,
        "Channels the service calls valid whose committed position has not moved for --stall-after while an import waits on them"
    );
    snowpipe_api::describe_metrics();
    snowpipe_channels::timed::describe_metrics();
}

/// Rows Snowflake rejected at commit, by `table`, as the channels' counters show them (REST backend).
pub const REJECTED_ROWS: &str = "snowpipe_streaming_rejected_rows_total";

/// The volume Snowflake bills, by `table`: the bytes of the values of the rows (and discard rows) handed to
/// the service, keys not counted — what Snowpipe Streaming's high-performance architecture charges for.
/// A row sent again (a retried job) is billed again, so it is counted again.
pub const BILLED_BYTES: &str = "snowpipe_streaming_billed_bytes_total";

/// The labels every metric of one manager carries.
#[derive(Debug, Clone)]
pub(crate) struct Labels(Vec<Label>);

impl Labels {
    pub(crate) fn new(workspace_id: &str, destination_id: &str) -> Self {
        Self(vec![
            Label::new("workspaceId", workspace_id.to_owned()),
            Label::new("destinationId", destination_id.to_owned()),
            Label::new("destType", "SNOWPIPE_STREAMING"),
        ])
    }

    fn with(&self, key: &'static str, value: &'static str) -> Vec<Label> {
        let mut labels = self.0.clone();
        labels.push(Label::new(key, value));
        labels
    }

    pub(crate) fn jobs(&self, status: &'static str, count: usize) {
        if count > 0 {
            metrics::counter!(JOBS, self.with("status", status)).increment(count as u64);
        }
    }

    pub(crate) fn rejected_rows(&self, table: &str, count: u64) {
        if count > 0 {
            let mut labels = self.0.clone();
            labels.push(Label::new("table", table.to_owned()));
            metrics::counter!(REJECTED_ROWS, labels).increment(count);
        }
    }

    pub(crate) fn billed_bytes(&self, table: &str, bytes: u64) {
        if bytes > 0 {
            let mut labels = self.0.clone();
            labels.push(Label::new("table", table.to_owned()));
            metrics::counter!(BILLED_BYTES, labels).increment(bytes);
        }
    }

    pub(crate) fn discards(&self, count: usize) {
        if count > 0 {
            metrics::counter!(DISCARDS, self.0.clone()).increment(count as u64);
        }
    }

    pub(crate) fn polling_in_progress(&self) {
        metrics::counter!(POLLING_IN_PROGRESS, self.0.clone()).increment(1);
    }

    pub(crate) fn undecidable(&self, cause: &'static str, count: usize) {
        if count > 0 {
            metrics::counter!(UNDECIDABLE_JOBS, self.with("cause", cause)).increment(count as u64);
        }
    }

    pub(crate) fn channels_stalled(&self, count: usize) {
        #[allow(clippy::cast_precision_loss)] // a count of channels
        metrics::gauge!(CHANNELS_STALLED, self.0.clone()).set(count as f64);
    }

    pub(crate) fn duplicates(&self, reason: &'static str, count: usize) {
        if count > 0 {
            metrics::counter!(DUPLICATE_EVENTS, self.with("reason", reason))
                .increment(count as u64);
        }
    }
}
