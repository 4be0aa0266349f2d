//! Settings of the HTTP client, with the defaults of the behaviour contract, validated when built.

use std::{sync::Arc, time::Duration};

use crate::{
    RetryConfig,
    retry::{Sleep, TokioSleep},
};

/// Where the service runs by default: the sidecar on the same host.
pub const DEFAULT_BASE_URL: &str = "http://localhost:9078";

/// Settings of [`HttpClient`](super::HttpClient). Start from `HttpConfig::default()` and change what differs.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Base URL of the service, `http://` or `https://`, optionally with a path prefix.
    pub base_url: String,
    /// Longest time one attempt may take, from sending the request to reading the whole answer.
    pub timeout: Duration,
    /// Longest time to open a connection (bounded by `timeout`). A connect that fails is surely not sent.
    pub connect_timeout: Duration,
    /// Most requests in flight at once, i.e. connections in use.
    pub max_connections: usize,
    /// Most idle connections kept open for reuse.
    pub max_idle_connections: usize,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// Whether connections are reused (HTTP keep-alive, plus TCP keep-alive probes).
    pub keep_alive: bool,
    /// gzip level (0-9) for insert bodies, or `None` to send them uncompressed. Level 1 by default: JSON rows
    /// compress well even at the fastest level, and the insert path should cost little more than reading.
    pub insert_gzip_level: Option<u32>,
    /// When and how often to retry.
    pub retry: RetryConfig,
    /// How the client waits between attempts.
    pub sleep: Arc<dyn Sleep>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_connections: 10,
            max_idle_connections: 5,
            idle_timeout: Duration::from_secs(30),
            keep_alive: true,
            insert_gzip_level: Some(1),
            retry: RetryConfig::default(),
            sleep: Arc::new(TokioSleep),
        }
    }
}

/// A setting that cannot work, found when the client is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The base URL is not an `http` or `https` URL with a host.
    #[error("invalid service base URL {url:?}: {reason}; give e.g. http://localhost:9078")]
    BaseUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting is out of range.
    #[error("invalid HTTP client setting `{setting}`: {reason}")]
    Setting {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// TLS could not be set up.
    #[error("cannot set up TLS for the service client: {0}")]
    Tls(String),
}

impl HttpConfig {
    /// Checks every setting.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let setting = |setting, ok: bool, reason| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Setting { setting, reason })
            }
        };
        setting("timeout", !self.timeout.is_zero(), "must be above zero")?;
        setting(
            "connect_timeout",
            !self.connect_timeout.is_zero(),
            "must be above zero",
        )?;
        setting(
            "max_connections",
            self.max_connections > 0,
            "must be at least 1",
        )?;
        setting(
            "retry.min_delay",
            self.retry.min_delay <= self.retry.max_delay,
            "must not exceed retry.max_delay",
        )?;
        setting(
            "insert_gzip_level",
            self.insert_gzip_level.is_none_or(|l| l <= 9),
            "must be 0 to 9",
        )?;
        Ok(())
    }
}
