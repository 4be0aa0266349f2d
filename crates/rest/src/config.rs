//! Settings of the REST client, with sane defaults, checked when the client is built.

use std::{sync::Arc, time::Duration};

use snowpipe_api::{
    RetryConfig, Secret,
    retry::{Sleep, TokioSleep},
};

use crate::body::{Compression, MAX_REQUEST_BYTES};

/// How the client proves who it is.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// A private key (PEM: PKCS#8, encrypted PKCS#8 or PKCS#1) whose public key is registered with the user
    /// (`ALTER USER ... SET RSA_PUBLIC_KEY`). The client signs key-pair JWTs with it and exchanges them for
    /// scoped tokens.
    KeyPair {
        /// The key's PEM text.
        private_key: Secret,
        /// Its passphrase, empty when the key is not encrypted.
        passphrase: Secret,
    },
    /// A programmatic access token of the user, sent as it is to both hosts.
    ProgrammaticAccessToken(Secret),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::KeyPair { .. } => "KeyPair([REDACTED])",
            Self::ProgrammaticAccessToken(_) => "ProgrammaticAccessToken([REDACTED])",
        })
    }
}

impl Credentials {
    /// A key pair from the private key's PEM text and its passphrase (empty when unencrypted).
    pub fn key_pair(private_key: impl Into<String>, passphrase: impl Into<String>) -> Self {
        Self::KeyPair {
            private_key: Secret::new(private_key),
            passphrase: Secret::new(passphrase),
        }
    }
}

/// Settings of [`RestClient`](crate::RestClient). Start from [`RestConfig::new`] and change what differs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestConfig {
    /// The account identifier, e.g. `myorg-myaccount` or `xy12345.us-east-2.aws`.
    pub account: String,
    /// The user.
    pub user: String,
    /// The role the scoped token is bound to (`session:role:<ROLE>` in its scope); `None`: the user's
    /// default role.
    pub role: Option<String>,
    /// How the client authenticates.
    pub credentials: Credentials,
    /// The account host's base URL; `None`: `https://<account>.snowflakecomputing.com`. Set it for
    /// PrivateLink or the emulator.
    pub account_url: Option<String>,
    /// The ingest host's base URL; `None`: discovered from the account host.
    pub ingest_url: Option<String>,
    /// How append bodies are compressed.
    pub compression: Compression,
    /// The most bytes one append request may hold as sent.
    pub max_request_bytes: usize,
    /// Longest time one HTTP attempt may take, from sending the request to reading the whole answer.
    pub timeout: Duration,
    /// Longest time to open a connection.
    pub connect_timeout: Duration,
    /// When and how often to retry calls the protocol allows to retry.
    pub retry: RetryConfig,
    /// How long an open waits, in all, for an earlier writer's uncommitted rows to commit (`409`) before it
    /// fails retry-kind, having discarded nothing.
    pub uncommitted_wait: Duration,
    /// How long before its expiry a scoped token is renewed.
    pub token_refresh_margin: Duration,
    /// Most channel names in one bulk-status request.
    pub status_chunk: usize,
    /// How the client waits between attempts.
    pub sleep: Arc<dyn Sleep>,
}

impl RestConfig {
    /// Settings for `user` of `account` with the defaults: Snowflake's hosts, zstd, 4 MiB requests,
    /// 60 s per attempt, five retries, a minute's wait for uncommitted rows at an open.
    pub fn new(
        account: impl Into<String>,
        user: impl Into<String>,
        credentials: Credentials,
    ) -> Self {
        Self {
            account: account.into(),
            user: user.into(),
            role: None,
            credentials,
            account_url: None,
            ingest_url: None,
            compression: Compression::default(),
            max_request_bytes: MAX_REQUEST_BYTES,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retry: RetryConfig::default(),
            uncommitted_wait: Duration::from_secs(60),
            token_refresh_margin: Duration::from_secs(60),
            status_chunk: 100,
            sleep: Arc::new(TokioSleep),
        }
    }

    /// The account host's base URL, without a trailing slash.
    pub fn account_base(&self) -> String {
        match &self.account_url {
            Some(url) => url.trim().trim_end_matches('/').to_owned(),
            None => format!(
                "https://{}.snowflakecomputing.com",
                self.account.trim().to_lowercase().replace('_', "-")
            ),
        }
    }

    /// Checks every setting.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let setting = |setting, ok: bool, reason| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Setting { setting, reason })
            }
        };
        setting(
            "account",
            !self.account.trim().is_empty(),
            "must not be empty",
        )?;
        setting("user", !self.user.trim().is_empty(), "must not be empty")?;
        setting(
            "max_request_bytes",
            (1024..=MAX_REQUEST_BYTES).contains(&self.max_request_bytes),
            "must be 1 KiB to 4 MiB (4194304): the service refuses larger requests",
        )?;
        setting("timeout", !self.timeout.is_zero(), "must be above zero")?;
        setting(
            "connect_timeout",
            !self.connect_timeout.is_zero(),
            "must be above zero",
        )?;
        setting("status_chunk", self.status_chunk > 0, "must be at least 1")?;
        setting(
            "retry.min_delay",
            self.retry.min_delay <= self.retry.max_delay,
            "must not exceed retry.max_delay",
        )?;
        let level_ok = match self.compression {
            Compression::Zstd(level) => zstd::compression_level_range().contains(&level),
            Compression::Gzip(level) => level <= 9,
            Compression::None => true,
        };
        setting(
            "compression",
            level_ok,
            "level out of range (zstd 1-22, gzip 0-9)",
        )?;
        match &self.credentials {
            Credentials::KeyPair { private_key, .. } => setting(
                "credentials.private_key",
                !private_key.is_empty(),
                "must not be empty",
            )?,
            Credentials::ProgrammaticAccessToken(token) => setting(
                "credentials.programmatic_access_token",
                !token.is_empty(),
                "must not be empty",
            )?,
        }
        for (name, url) in [
            ("account_url", Some(self.account_base())),
            ("ingest_url", self.ingest_url.clone()),
        ] {
            if let Some(url) = url {
                check_base_url(name, &url)?;
            }
        }
        Ok(())
    }
}

fn check_base_url(setting: &'static str, url: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Url {
        setting,
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(invalid("the scheme must be http or https"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    Ok(())
}

/// A setting that cannot work, found when the client is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A URL is not an `http` or `https` URL with a host.
    #[error(
        "invalid {setting} {url:?}: {reason}; give e.g. https://myorg-myaccount.snowflakecomputing.com"
    )]
    Url {
        /// The setting.
        setting: &'static str,
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting is out of range.
    #[error("invalid REST client setting `{setting}`: {reason}")]
    Setting {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// TLS could not be set up.
    #[error("{0}")]
    Tls(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RestConfig {
        RestConfig::new("myorg-acct", "loader", Credentials::key_pair("pem", ""))
    }

    #[test]
    fn the_account_host_follows_the_account_unless_given() {
        assert_eq!(
            config().account_base(),
            "https://myorg-acct.snowflakecomputing.com"
        );
        let mut emulator = config();
        emulator.account_url = Some("http://127.0.0.1:9/".into());
        assert_eq!(emulator.account_base(), "http://127.0.0.1:9");
    }

    #[test]
    fn bad_settings_are_named() {
        let mut big = config();
        big.max_request_bytes = MAX_REQUEST_BYTES + 1;
        assert!(matches!(
            big.validate(),
            Err(ConfigError::Setting {
                setting: "max_request_bytes",
                ..
            })
        ));
        let mut url = config();
        url.ingest_url = Some("ftp://x".into());
        assert!(matches!(
            url.validate(),
            Err(ConfigError::Url {
                setting: "ingest_url",
                ..
            })
        ));
        let mut level = config();
        level.compression = Compression::Zstd(99);
        assert!(level.validate().is_err());
        assert!(config().validate().is_ok());
    }

    #[test]
    fn debug_never_shows_credentials() {
        let config = RestConfig::new(
            "a",
            "u",
            Credentials::ProgrammaticAccessToken(Secret::new("pat-secret-value")),
        );
        assert!(!format!("{config:?}").contains("pat-secret-value"));
    }
}
