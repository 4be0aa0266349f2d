//! The sidecar service over HTTP/JSON: the one place that knows its paths, status codes and gzip.

mod client;
mod config;
mod transport;

pub use client::HttpClient;
pub use config::{ConfigError, DEFAULT_BASE_URL, HttpConfig};
