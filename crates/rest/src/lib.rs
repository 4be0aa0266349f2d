//! A client of Snowflake's Snowpipe Streaming REST API (the high-performance architecture): rows land in
//! Snowflake tables over HTTPS, with an account and a key pair, and nothing else to run.
//!
//! [`RestClient`] implements the backend-neutral [`Backend`](snowpipe_api::Backend) trait of
//! `snowpipe-api`, so the upload manager's channel layer (and its conformance suite) use it unchanged; it is
//! also usable on its own.
//!
//! - **Auth** ([`Credentials`]): a key-pair JWT, exchanged for a token scoped to the ingest host (and a
//!   role), renewed ahead of its expiry and once more after a 401; or a programmatic access token.
//!   Hostname discovery reads JSON, a quoted string or bare text. `HTTPS_PROXY`/`NO_PROXY` are honoured.
//! - **Channels**: opened on the table's default pipe (`<TABLE>-STREAMING`), with both options of the
//!   API: `fail_on_uncommitted_rows` (waiting out `409`s, bounded) and an `offset_token` to store. Each
//!   open's answer (token, status code, counters, `created_on_ms`) is returned; the continuation token is
//!   kept per channel and chained through every append.
//! - **Appends**: rows written as NDJSON from their own bytes, compressed with zstd (or gzip, or not at
//!   all), cut into requests of at most 4,194,304 bytes as sent ([`body`]), each labelled with the
//!   caller's start and end offset tokens. An append whose answer is lost is reported
//!   [`Error::OutcomeUnknown`](snowpipe_api::Error::OutcomeUnknown): this crate never resends blindly,
//!   and takes no further append on the channel until it is reopened.
//! - **Errors** are typed by what to do (reopen, create the table, fix credentials, retry, give up), from
//!   the status and code of the answer, whatever shape its body has; messages name the channel and table
//!   and never carry a token.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use snowpipe_api::{Backend, BackendExt, ChannelRef, OpenOptions, Row, TableRef};
//! use snowpipe_rest::{Credentials, RestClient, RestConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let key = std::fs::read_to_string("rsa_key.p8")?;
//! let mut config = RestConfig::new("myorg-myaccount", "LOADER", Credentials::key_pair(key, ""));
//! config.role = Some("LOADER_ROLE".into());
//! let client = RestClient::new(config)?;
//! println!("ingest host: {}", client.ingest_url().await?);
//!
//! let channel = ChannelRef {
//!     table: TableRef {
//!         database: "ANALYTICS".into(),
//!         schema: "EVENTS".into(),
//!         table: "TRACKS".into(),
//!         enable_iceberg: false,
//!     },
//!     destination: "destination-1".into(),
//!     instance: "0".into(),
//! };
//! // Wait for rows an earlier writer left uncommitted rather than discard them.
//! let opened = client.open_channel(&channel, &OpenOptions::wait()).await?;
//! let rows = vec![Row::parse(r#"{"ID":"a1","EVENT":"signed_up"}"#)?];
//! client.append_rows(&opened.handle, rows, "0000000001").await?;
//! loop {
//!     let status = client.channel_status(&opened.handle).await?;
//!     if status.and_then(|s| s.committed).as_deref() == Some("0000000001") {
//!         break;
//!     }
//!     tokio::time::sleep(Duration::from_millis(500)).await;
//! }
//! # Ok(()) }
//! ```

mod auth;
mod backend;
pub mod body;
mod classify;
mod client;
mod config;
mod error;
mod http;
mod names;
mod wire;

pub use body::Compression;
pub use client::RestClient;
pub use config::{ConfigError, Credentials, RestConfig};
pub use error::RestError;
pub use names::{channel_name, pipe_name};
pub use wire::Status;

/// The README's example compiles as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
