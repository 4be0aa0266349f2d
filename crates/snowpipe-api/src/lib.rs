//! An async client of the Snowpipe Streaming service.
//!
//! The upload manager does not speak to Snowflake's ingest SDK itself: it speaks HTTP/JSON to a Snowpipe
//! Streaming service (a sidecar that holds the SDK's clients and channels). This crate is that conversation:
//!
//! - [`SnowpipeApi`], the boundary trait the layers above depend on: open and delete channels, insert rows,
//!   read committed offsets one channel at a time or in bulk. It says nothing of HTTP, so another backend
//!   can implement it.
//! - [`HttpClient`], its implementation over the sidecar's protocol (hyper 1, rustls): connection pool with a
//!   cap, per-attempt timeout, gzip-compressed inserts, and retries with exponential backoff and jitter on
//!   the failures [`retry::is_retryable`] allows, honouring `Retry-After`.
//! - [`Instrumented`], a decorator adding a tracing span and metrics to every call of any implementation.
//! - The request and response models, which ignore unknown fields and read `null` as "not set".
//! - [`Error`], whose kinds say what to do next; notably [`Error::is_outcome_unknown`] tells an insert that
//!   may have been applied from one that surely was not.
//! - With the `mock` feature, `MockSnowpipeApi`, a mockall mock of the trait for other crates' tests.
//!
//! # Example
//!
//! ```no_run
//! use snowpipe_api::{
//!     Account, CreateChannelRequest, HttpClient, HttpConfig, InsertRequest, Instrumented, Row, Secret,
//!     SnowpipeApi, TableRef,
//! };
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let api = Instrumented::new(HttpClient::new(HttpConfig::default())?);
//! let channel = api
//!     .create_channel(&CreateChannelRequest {
//!         rudder_identifier: "destination-1".into(),
//!         partition: "1".into(),
//!         account: Account {
//!             account: "myorg-myaccount".into(),
//!             user: "LOADER".into(),
//!             role: "LOADER_ROLE".into(),
//!             private_key: Secret::new(std::fs::read_to_string("rsa_key.p8")?),
//!             private_key_passphrase: Secret::default(),
//!         },
//!         table: TableRef {
//!             database: "ANALYTICS".into(),
//!             schema: "EVENTS".into(),
//!             table: "TRACKS".into(),
//!             enable_iceberg: false,
//!         },
//!     })
//!     .await?;
//! if !channel.success {
//!     eprintln!("cannot open the channel: {} {}", channel.code, channel.error);
//!     return Ok(());
//! }
//! let rows = vec![Row::parse(r#"{"ID":"a1","EVENT":"signed_up"}"#)?];
//! let inserted = api.insert(&channel.channel_id, &InsertRequest { rows, offset: "1001".into() }).await?;
//! println!("sent {} bytes, success: {}", inserted.body_bytes, inserted.response.success);
//! let status = api.channel_status(&channel.channel_id).await?;
//! println!("committed up to {:?}", status.offset);
//! # Ok(()) }
//! ```

mod api;
mod error;
pub mod http;
mod instrumented;
mod model;
pub mod retry;
mod secret;

#[cfg(any(test, feature = "mock"))]
pub use api::MockSnowpipeApi;
pub use api::{Inserted, SnowpipeApi};
pub use error::{BoxError, Call, Delivery, EXCERPT_LIMIT, Error, Excerpt, Result};
pub use http::{ConfigError, HttpClient, HttpConfig};
pub use instrumented::{Instrumented, REQUEST_BODY_SIZE, RESPONSE_TIME};
pub use model::{
    Account, BulkStatusResponse, ChannelErrorCode, ChannelResponse, ColumnInfo,
    CreateChannelRequest, InsertRequest, InsertResponse, Row, RowError, StatusResponse, TableRef,
    WarehouseType,
};
pub use retry::RetryConfig;
pub use secret::Secret;
