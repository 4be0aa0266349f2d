//! The sidecar protocol's own errors, by HTTP outcome: what [`HttpClient`](super::HttpClient) returns, and
//! what the [`Sidecar`](super::Sidecar) backend turns into the boundary's [`Error`](crate::Error) kinds.

use std::{fmt, time::Duration};

use crate::{BoxError, Excerpt};

/// A result of a call to the sidecar.
pub(super) type Result<T, E = HttpError> = std::result::Result<T, E>;

/// The sidecar endpoint an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// Opening a channel.
    CreateChannel,
    /// Deleting a channel.
    DeleteChannel,
    /// Reading a channel.
    GetChannel,
    /// Inserting rows.
    Insert,
    /// One channel's status.
    Status,
    /// Many channels' statuses.
    BulkStatus,
}

impl Endpoint {
    /// The call's name in logs and metrics (`create_channel`, `insert`, `status`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateChannel => "create_channel",
            Self::DeleteChannel => "delete_channel",
            Self::GetChannel => "get_channel",
            Self::Insert => "insert",
            Self::Status => "status",
            Self::BulkStatus => "bulk_status",
        }
    }

    /// Whether repeating the call has the same effect as making it once. Inserts are not: a repeated insert
    /// appends its rows again.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Self::Insert)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a failed request may have reached the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The request surely did not reach the service (e.g. the connection could not be made): it had no
    /// effect, and sending it again is safe even for an insert.
    NotSent,
    /// The request may have reached the service and been applied, but no answer came back. For an insert,
    /// look at the channel's latest inserted offset before sending it again.
    MaybeSent,
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotSent => "the request did not reach the service",
            Self::MaybeSent => "the request may have been applied",
        })
    }
}

/// Why a call to the sidecar failed.
///
/// Each kind says whether the call may be retried; the client itself retries the retryable ones (see the
/// `retry` settings) before returning them. Whatever the kind, a `success: false` answer is not an error:
/// it is returned as data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The service does not know the channel: it restarted, or the id is stale. Not retried: open the channel
    /// again and repeat the call with the new id.
    #[error(
        "{call}: channel {channel_id} not found on the service (it restarted or the id is stale); open the channel again"
    )]
    ChannelNotFound {
        /// The call that failed.
        call: Endpoint,
        /// The channel id the service did not know.
        channel_id: String,
    },

    /// The service answered with a status the call does not expect. `429` and `5xx` (but `501`) are retried by
    /// the client for every call, because the service answered without applying the request; the others
    /// are not, as they will not get better.
    #[error("{call}: the service answered HTTP {status}: {body}")]
    UnexpectedStatus {
        /// The call that failed.
        call: Endpoint,
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        body: Excerpt,
        /// How long the service asked to wait before trying again (`Retry-After`).
        retry_after: Option<Duration>,
    },

    /// The connection failed or broke. Retried when the request did not reach the service, or when the call
    /// is idempotent; an insert that may have been applied is returned to the caller to resolve.
    #[error(
        "{call} to {origin}: {failure} ({delivery}): {source}",
        failure = crate::https::describe(.source.as_ref())
    )]
    Transport {
        /// The call that failed.
        call: Endpoint,
        /// The service's scheme, host and port (check the service URL when the failure is refused or DNS).
        origin: String,
        /// Whether the request may have reached the service.
        delivery: Delivery,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// No answer within the request timeout. Retried for idempotent calls only: an insert that timed out
    /// may have been applied.
    #[error("{call}: no answer within {timeout:?} ({delivery})")]
    Timeout {
        /// The call that failed.
        call: Endpoint,
        /// The timeout that passed.
        timeout: Duration,
        /// Whether the request may have reached the service.
        delivery: Delivery,
    },

    /// The answer could not be read as the expected JSON. Never retried: the service answered, and asking
    /// again would not make it answer differently.
    #[error("{call}: cannot decode the service's answer ({source}); body: {body}")]
    Decode {
        /// The call that failed.
        call: Endpoint,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
        /// The start of the response body.
        body: Excerpt,
    },

    /// The request could not be built (e.g. its rows could not be encoded). Never sent, never retried: fix
    /// the input.
    #[error("{call}: cannot build the request: {reason}")]
    InvalidRequest {
        /// The call that failed.
        call: Endpoint,
        /// What was wrong.
        reason: String,
    },
}

impl HttpError {
    /// The call that failed.
    pub fn call(&self) -> Endpoint {
        match self {
            Self::ChannelNotFound { call, .. }
            | Self::UnexpectedStatus { call, .. }
            | Self::Transport { call, .. }
            | Self::Timeout { call, .. }
            | Self::Decode { call, .. }
            | Self::InvalidRequest { call, .. } => *call,
        }
    }

    /// Whether the request may have been applied although no answer came back. For an insert, the caller
    /// must find out (from the channel's latest inserted offset) before inserting the rows again.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::Transport {
                delivery: Delivery::MaybeSent,
                ..
            } | Self::Timeout {
                delivery: Delivery::MaybeSent,
                ..
            }
        )
    }

    /// How long the service asked to wait before trying again, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::UnexpectedStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the service lost the channel (see [`HttpError::ChannelNotFound`]).
    pub fn is_channel_not_found(&self) -> bool {
        matches!(self, Self::ChannelNotFound { .. })
    }

    /// The HTTP status the service answered with, if it answered with an unexpected one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::UnexpectedStatus { status, .. } => Some(*status),
            Self::ChannelNotFound { .. } => Some(404),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unanswered_maybe_sent_errors_have_unknown_outcomes() {
        let timeout = |delivery| HttpError::Timeout {
            call: Endpoint::Insert,
            timeout: Duration::from_secs(1),
            delivery,
        };
        assert!(timeout(Delivery::MaybeSent).is_outcome_unknown());
        assert!(!timeout(Delivery::NotSent).is_outcome_unknown());
        let status = HttpError::UnexpectedStatus {
            call: Endpoint::Insert,
            status: 500,
            body: Excerpt::new(b""),
            retry_after: None,
        };
        assert!(!status.is_outcome_unknown());
        assert_eq!(status.status(), Some(500));
    }
}
