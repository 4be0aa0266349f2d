//! The Snowpipe Streaming upload manager: upload a batch of events, poll its import and report, job by job,
//! what landed, what must be retried and what never will.
//!
//! A caller (a batch router) hands [`Manager::upload`] one file of events per batch, then calls
//! [`Manager::poll`] with the returned import id until it answers complete, then
//! [`Manager::upload_stats`] with poll's failed job parameters to learn which jobs succeeded. Every job id
//! that goes in comes out in exactly one outcome: importing (then succeeded or failed), failed (retry it
//! later) or aborted (never retry).
//!
//! The manager talks to the channel layer only (`snowpipe_channels::Channels`), which talks to the backend
//! and the warehouse; so it is tested with a mock of that one trait, and runs for real with the backend
//! [`Manager::connect`] picks from the [`Connection`]. The configuration types a caller needs are
//! re-exported here.

mod import;
mod manager;
mod outcomes;
mod output;
mod poll;
mod settings;
mod stats;
pub mod telemetry;
mod upload;

pub use import::{
    DecodeError, EntrySegment, FailedJobParameters, ImportEntry, ImportId, ImportParameters,
    JobIdRange, JobRuns, SCHEME,
};
pub use manager::{
    BackendConfig, ConnectError, Connection, Destination, Manager, RestOptions, check_rest_access,
};
pub use output::{PollOutput, StatsMetadata, UploadOutput, UploadStatsOutput};
pub use settings::Settings;
/// The REST client's compression choice, for [`RestOptions`].
pub use snowpipe_rest::Compression;
pub use stats::upload_stats;

/// Whether one line of an event file (without its line break) is an event: `Err` says what is wrong with
/// it, as upload's reason would. For callers that tell a user what a file looks like before uploading it.
///
/// ```
/// assert!(snowpipe_manager::check_event_line(br#"{"a": 1}"#).is_err());
/// ```
pub fn check_event_line(line: &[u8]) -> Result<(), String> {
    let time = snowpipe_grouping::UploadTime::new(time::OffsetDateTime::UNIX_EPOCH);
    snowpipe_grouping::Event::from_line(line, &time)
        .map(drop)
        .map_err(|problem| problem.to_string())
}

// The configuration a caller builds a manager from, so that it need not depend on the layers below.
pub use snowpipe_api::{
    RetryConfig,
    retry::Sleep,
    sidecar::{DEFAULT_BASE_URL as DEFAULT_SIDECAR_URL, HttpConfig},
};
pub use snowpipe_channels::{
    BackoffConfig, Clock, DestinationConfig, ManualClock, SystemClock, schema_name,
    state::{MemoryState, StateStore, TableState},
};
