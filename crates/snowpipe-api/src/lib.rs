//! The service boundary of the Snowpipe Streaming upload manager, and the sidecar service's client.
//!
//! The manager lands rows in Snowflake through Snowpipe Streaming channels, on one of two backends: a
//! sidecar service that holds Snowflake's ingest SDK (its client is here, [`sidecar`]), or Snowflake's own
//! REST API (the `snowpipe-rest` crate). This crate holds what they share:
//!
//! - [`Backend`], the boundary trait: open (or reopen) a channel named by the caller, append rows labelled
//!   with offset tokens, read channel statuses one at a time or in bulk, drop a channel. Conveniences are in
//!   [`BackendExt`]; what a backend can do beyond the common calls is in [`Capabilities`].
//! - [`Error`], whose kinds say what the caller must do (fix credentials, create the table, reopen,
//!   retry, give up, find out whether an append went in), never an HTTP status.
//! - [`Instrumented`], a decorator adding a tracing span and metrics to every call of any backend.
//! - [`Row`]: a JSON object's text as shared bytes, sent as it is; [`Column`] and [`WarehouseType`] for
//!   tables' columns.
//! - [`https`]: the HTTP client every client shares (TLS, proxies from the environment, connection
//!   failures named by cause).
//! - [`retry`]: the one retry policy ([`RetryConfig`]) that every client's own classifier plugs into.
//! - With the `test-util` feature, [`memory::InMemory`], a deterministic backend in memory, and the
//!   [`conformance`] suite every backend passes; with `mock`, `MockBackend` (mockall).
//!
//! # Example
//!
//! ```no_run
//! use snowpipe_api::{
//!     Backend, BackendExt, ChannelRef, Instrumented, OpenOptions, Row, Secret, TableRef,
//!     sidecar::{Account, HttpClient, HttpConfig, Sidecar},
//! };
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let account = Account {
//!     account: "myorg-myaccount".into(),
//!     user: "LOADER".into(),
//!     role: "LOADER_ROLE".into(),
//!     private_key: Secret::new(std::fs::read_to_string("rsa_key.p8")?),
//!     private_key_passphrase: Secret::default(),
//! };
//! let backend = Instrumented::new(Sidecar::new(HttpClient::new(HttpConfig::default())?, account));
//! let channel = ChannelRef {
//!     table: TableRef {
//!         database: "ANALYTICS".into(),
//!         schema: "EVENTS".into(),
//!         table: "TRACKS".into(),
//!         enable_iceberg: false,
//!     },
//!     destination: "destination-1".into(),
//!     instance: "1".into(),
//! };
//! let opened = backend.open_channel(&channel, &OpenOptions::discard()).await?;
//! let rows = vec![Row::parse(r#"{"ID":"a1","EVENT":"signed_up"}"#)?];
//! let appended = backend.append_rows(&opened.handle, rows, "1001").await?;
//! println!("sent {} bytes", appended.body_bytes());
//! if let Some(status) = backend.channel_status(&opened.handle).await? {
//!     println!("committed up to {:?}", status.committed);
//! }
//! # Ok(()) }
//! ```

mod append;
mod backend;
mod channel;
mod columns;
#[cfg(feature = "test-util")]
pub mod conformance;
mod error;
mod excerpt;
pub mod https;
mod instrumented;
#[cfg(feature = "test-util")]
pub mod memory;
pub mod retry;
mod row;
pub mod sidecar;

pub use append::{
    AppendError, AppendRequest, Appended, OffsetTokens, SameToken, SentRequest, TokenRange,
};
#[cfg(any(test, feature = "mock"))]
pub use backend::MockBackend;
pub use backend::{Backend, BackendExt};
pub use channel::{
    Capabilities, ChannelHandle, ChannelRef, ChannelStatus, DropOptions, OnUncommitted,
    OpenOptions, OpenedChannel, Progress, RowCounters, TableRef,
};
pub use columns::{Column, WarehouseType};
pub use error::{BoxError, Call, Error, MissingObject, RejectedRow, Result};
pub use excerpt::{EXCERPT_LIMIT, Excerpt};
pub use instrumented::{Instrumented, REQUEST_BODY_SIZE, RESPONSE_TIME, describe_metrics};
pub use retry::RetryConfig;
pub use row::Row;
/// Secrets (private keys, passphrases, tokens) are one type across the workspace: `snowpipe-auth`'s.
pub use snowpipe_auth::Secret;
