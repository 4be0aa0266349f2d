//! A local stand-in for the Snowpipe Streaming service and the slice of Snowflake the upload manager
//! uses, for tests, the demo and benchmarks.
//!
//! One port serves:
//! - the service protocol of `docs/service-protocol.md` (channels, inserts, statuses, bulk status,
//!   health), with Snowflake's behaviours: channel ids invalidated on reopen, commits after a lag, rows
//!   validated against the table's schema, offset tokens kept as given (the last to commit, never a
//!   maximum) that survive restarts, and scriptable service-side traps;
//! - Snowflake's SQL API v2 for the DDL the manager runs (`CREATE SCHEMA`/`CREATE TABLE IF NOT EXISTS`,
//!   `ALTER TABLE ... ADD COLUMN IF NOT EXISTS`, `CREATE OR REPLACE TABLE`) and `DESCRIBE TABLE`, with
//!   key-pair JWT authentication (plus `SELECT COUNT(*)`/`SELECT *` of a table and `DROP SCHEMA`, for
//!   checks that read rows back);
//! - Snowflake's Snowpipe Streaming REST API (`docs/rest-protocol.md`): hostname discovery, the scoped
//!   token exchange, open, append (NDJSON, gzip or zstd), drop and bulk status, with continuation tokens,
//!   rows checked at commit against the table as it is then, and scriptable service-side traps
//!   (see [`RestChannelName`] and the `rest` methods of [`Control`]). Rows landed through either
//!   protocol go into the same tables;
//! - an admin API under [`ADMIN_PREFIX`] to script faults and inspect state, the same as [`Control`].
//!
//! A demo account, user, key pair and database are built in ([`demo`]), so nothing needs configuring.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use snowpipe_emulator::{DropMode, Emulator, Endpoint};
//!
//! let emulator = Emulator::builder().commit_lag(Duration::ZERO).start().await?;
//! // Point the client under test at emulator.base_url(), then script faults...
//! emulator.control().drop_next(Endpoint::Insert, 1, DropMode::Applied);
//! // ...and inspect what reached the "warehouse" and what was called.
//! assert!(emulator.control().calls().is_empty());
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod admin;
mod auth;
mod config;
pub mod demo;
mod faults;
mod http;
#[cfg(test)]
mod input_props;
mod rest;
pub mod sample;
mod server;
mod sidecar;
mod sql;
mod state;
mod store;

pub use admin::ADMIN_PREFIX;
pub use auth::{KeyError, fingerprint, jwt, public_key_der, public_key_der_of_private};
pub use config::{
    ConfigError, DEFAULT_BODY_LIMIT, DEFAULT_CALL_LOG_CAPACITY, DEFAULT_COMMIT_LAG,
    DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_ROWS_PER_TABLE, DEFAULT_SCOPED_TOKEN_LIFETIME,
    Database, EmulatorConfig, User, parse_duration,
};
pub use faults::{BodyShape, CallRecord, DropMode, Endpoint, Failure};
#[doc(no_inline)]
pub use jwt::JwtError;
pub use rest::MAX_APPEND_BYTES;
pub use server::{Emulator, EmulatorBuilder, StartError};
pub use state::{Control, RestChannelName, SetupError};
pub use store::{
    ChannelInfo, ColumnInfo, ColumnType, PendingRequest, RejectedRow, RestChannelInfo, RestRequest,
    SqlError, TableInfo,
};
