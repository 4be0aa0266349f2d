//! What went wrong in one REST exchange: the cause kept inside the boundary's
//! [`Error`](snowpipe_api::Error), which says what to do about it.

use std::time::Duration;

use snowpipe_api::{BoxError, Excerpt, https::ConnectFailure};
use snowpipe_auth::KeyError;

/// A failed exchange with the account host or the ingest host. Messages name the call, the host and the
/// service's code; no message carries a token or key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestError {
    /// The service answered with an error.
    #[error("{what} at {origin}: HTTP {status}{}: {message}", code_suffix(.code.as_deref()))]
    Service {
        /// The call, with the channel or table it concerned.
        what: String,
        /// The host's scheme, host and port.
        origin: String,
        /// The HTTP status.
        status: u16,
        /// The service's error code, when the answer named one.
        code: Option<String>,
        /// The service's message, secrets scrubbed.
        message: Excerpt,
    },
    /// The connection failed or broke.
    #[error("{what} at {origin}: {failure}: {source}")]
    Transport {
        /// The call, with the channel or table it concerned.
        what: String,
        /// The host's scheme, host and port.
        origin: String,
        /// The cause, as far as the error tells.
        failure: ConnectFailure,
        /// The transport's error.
        #[source]
        source: BoxError,
    },
    /// No answer within the attempt's timeout.
    #[error("{what} at {origin}: no answer within {timeout:?}")]
    Timeout {
        /// The call, with the channel or table it concerned.
        what: String,
        /// The host's scheme, host and port.
        origin: String,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// A success answer that could not be read.
    #[error("{what} at {origin}: cannot read the answer: {reason}")]
    Decode {
        /// The call, with the channel or table it concerned.
        what: String,
        /// The host's scheme, host and port.
        origin: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The private key cannot be used.
    #[error("the private key cannot be used: {0}; check the key and its passphrase")]
    Key(#[from] KeyError),
    /// An open kept finding rows it must not discard.
    #[error(
        "{what}: rows appended earlier were still not committed after waiting {waited:?} ({code}); nothing was discarded, try again later"
    )]
    StillUncommitted {
        /// The call, with the channel it concerned.
        what: String,
        /// The service's last code.
        code: String,
        /// How long the open waited.
        waited: Duration,
    },
    /// The open answered a channel that cannot commit.
    #[error(
        "{what}: the service opened the channel as {code}, which cannot commit; try again later"
    )]
    InvalidOnOpen {
        /// The call, with the channel it concerned.
        what: String,
        /// The channel's status code.
        code: String,
    },
}

fn code_suffix(code: Option<&str>) -> String {
    code.map(|c| format!(" {c}")).unwrap_or_default()
}

impl RestError {
    /// A short label of the cause, for metrics and the boundary's `code` fields.
    pub fn code(&self) -> String {
        match self {
            Self::Service { status, code, .. } => {
                code.clone().unwrap_or_else(|| format!("http_{status}"))
            }
            Self::Transport { failure, .. } => match failure {
                ConnectFailure::Refused => "connection_refused",
                ConnectFailure::Dns => "dns",
                ConnectFailure::Tls => "tls",
                ConnectFailure::Timeout => "connect_timeout",
                ConnectFailure::Proxy => "proxy",
                ConnectFailure::Reset => "connection_reset",
                _ => "transport",
            }
            .to_owned(),
            Self::Timeout { .. } => "timeout".to_owned(),
            Self::Decode { .. } => "decode".to_owned(),
            Self::Key(_) => "private_key".to_owned(),
            Self::StillUncommitted { code, .. } | Self::InvalidOnOpen { code, .. } => code.clone(),
        }
    }
}
