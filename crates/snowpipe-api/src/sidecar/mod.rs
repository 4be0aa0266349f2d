//! The sidecar service (a Snowpipe Streaming service holding Snowflake's ingest SDK channels), over its
//! HTTP/JSON protocol: the one place that knows its paths, status codes, bodies and gzip.
//!
//! - [`HttpClient`]: the protocol call by call, with a pooled, capped, timed connection and retries.
//! - [`Sidecar`]: the [`Backend`](crate::Backend) over it.
//! - [`wire`]: the protocol's bodies.

mod backend;
mod classify;
mod client;
mod config;
mod error;
mod transport;
pub mod wire;

pub use backend::Sidecar;
pub use classify::is_retryable;
pub use client::{HttpClient, Inserted};
pub use config::{ConfigError, DEFAULT_BASE_URL, HttpConfig};
pub use error::{Delivery, Endpoint, HttpError};
pub use wire::Account;
