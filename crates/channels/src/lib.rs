//! Channels for the Snowpipe Streaming upload manager.
//!
//! This layer owns every channel the manager uses and every statement that touches the warehouse:
//!
//! - [`Channels`], the boundary the manager depends on, and [`ChannelManager`], its implementation over a
//!   [`SnowpipeApi`](snowpipe_api::SnowpipeApi) and a [`Warehouse`]: a per-table cache, creation with schema
//!   and table creation when they are missing, new columns added with one statement and the channel
//!   reopened, recreation for the poll path, deletion.
//! - [`Warehouse`], the DDL boundary, and [`SqlApiWarehouse`], its implementation over Snowflake's SQL API v2
//!   with key-pair JWT authentication. Every identifier is quoted ([`sql`]); types come only from a fixed map.
//! - [`AuthBackoff`]: after an authentication or authorization failure, DDL is refused without calling the
//!   warehouse until an exponentially growing wait passes, since every statement wakes (and bills) it.
//! - [`FailureKind`]: every error here is auth-, abort- or retry-kind, decided by its type, which decides
//!   whether the jobs fail (and come back) or are aborted.
//!
//! Time comes from a [`Clock`], so the backoff and token expiry are tested without waiting.

mod backoff;
mod clock;
mod destination;
mod error;
mod kind;
mod manager;
pub mod sql;
pub mod sql_api;
mod warehouse;

pub use backoff::{AuthBackoff, BackoffActive, BackoffConfig};
pub use clock::{Clock, ManualClock, SystemClock};
pub use destination::{DestinationConfig, schema_name};
pub use error::{ChannelError, DdlStep};
pub use kind::FailureKind;
#[cfg(any(test, feature = "mock"))]
pub use manager::MockChannels;
pub use manager::{Channel, ChannelManager, ChannelSettings, Channels};
pub use sql_api::{KeyError, SqlApiConfig, SqlApiWarehouse};
#[cfg(any(test, feature = "mock"))]
pub use warehouse::MockWarehouse;
pub use warehouse::{Warehouse, WarehouseError};
