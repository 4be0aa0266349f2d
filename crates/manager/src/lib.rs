//! The Snowpipe Streaming upload manager: upload a batch of events, poll its import and report, job by job,
//! what landed, what must be retried and what never will.
//!
//! A caller (a batch router) hands [`Manager::upload`] one file of events per batch, then calls
//! [`Manager::poll`] with the returned import id until it answers complete, then
//! [`Manager::upload_stats`] with poll's failed job parameters to learn which jobs succeeded. Every job id
//! that goes in comes out in exactly one outcome: importing (then succeeded or failed), failed (retry it
//! later) or aborted (never retry).
//!
//! The manager is built from the layers below through their traits, so it is tested with mocks and runs
//! for real with the HTTP clients ([`Manager::connect`]).

mod import;
mod manager;
mod outcomes;
mod output;
mod poll;
mod settings;
mod stats;
pub mod telemetry;
mod upload;

pub use import::{DecodeError, ImportEntry, ImportParameters, JobIdRange, decode_entries};
pub use manager::{ConnectError, Connection, Destination, Manager};
pub use output::{PollOutput, StatsMetadata, UploadOutput, UploadStatsOutput};
pub use settings::Settings;
pub use stats::upload_stats;
