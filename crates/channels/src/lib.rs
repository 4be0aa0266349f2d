//! Channels for the Snowpipe Streaming upload manager.
//!
//! This layer owns every channel the manager uses and every statement that touches the warehouse, on any
//! backend (`snowpipe_api::Backend`):
//!
//! - [`Channels`], the boundary the manager depends on, and [`ChannelManager`], its implementation over a
//!   backend and a [`Warehouse`]: a per-table cache; creation with schema and table creation when they are
//!   missing; the table's columns from the backend's open or, when it gives none, from the warehouse; new
//!   columns added with one statement and the channel reopened; appends that recover lost channels and lost
//!   answers without putting rows in twice; bulk statuses in bounded calls; recreation for the poll path;
//!   deletion.
//! - [`Warehouse`], the DDL boundary, and [`SqlApiWarehouse`], its implementation over Snowflake's SQL API v2
//!   with key-pair JWT authentication (`snowpipe-auth`). Every identifier is quoted ([`sql`]); types come
//!   only from a fixed map.
//! - [`AuthBackoff`]: after an authentication or authorization failure, DDL is refused without calling the
//!   warehouse until an exponentially growing wait passes, since every statement wakes (and bills) it.
//! - [`FailureKind`]: every error here is auth-, abort- or retry-kind, decided by its type, which decides
//!   whether the jobs fail (and come back) or are aborted.
//! - With the `test-util` feature, [`memory::MemoryWarehouse`]: with snowpipe-api's in-memory backend, the
//!   whole layer runs in memory; with `mock`, mockall mocks of [`Channels`] and [`Warehouse`].
//!
//! Time comes from a [`Clock`], so the backoff and token expiry are tested without waiting.

mod backoff;
mod clock;
mod destination;
mod error;
mod kind;
mod manager;
#[cfg(feature = "test-util")]
pub mod memory;
pub mod sql;
pub mod sql_api;
pub mod state;
pub mod timed;
pub mod token;
pub mod verdict;
mod warehouse;

pub use backoff::{AuthBackoff, BackoffActive, BackoffConfig};
pub use clock::{Clock, ManualClock, SystemClock};
pub use destination::{DestinationConfig, schema_name};
pub use error::{ChannelError, DdlStep};
pub use kind::FailureKind;
#[cfg(any(test, feature = "mock"))]
pub use manager::MockChannels;
pub use manager::{
    AppendOutcome, Channel, ChannelId, ChannelManager, ChannelSettings, Channels, CommitWait,
    EntryRows, EntryVerdict, FailedRows, FenceCounters, Positions, Rejected, Segment,
};
pub use snowpipe_auth::KeyError;
pub use sql_api::{SqlApiConfig, SqlApiWarehouse};
pub use timed::TimedWarehouse;
#[cfg(any(test, feature = "mock"))]
pub use warehouse::MockWarehouse;
pub use warehouse::{Warehouse, WarehouseError};
