//! The one error type of the client, with kinds a caller can act on.

use std::{fmt, time::Duration};

/// A boxed error from the transport layer (connection, TLS, HTTP framing).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A result of a service call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The service call an error or a metric belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Call {
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

impl Call {
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

impl fmt::Display for Call {
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

/// At most this many bytes of a response body are kept in an error.
pub const EXCERPT_LIMIT: usize = 512;

/// The start of a response body, bounded by [`EXCERPT_LIMIT`] bytes, for error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Excerpt(String);

impl Excerpt {
    /// Keeps at most [`EXCERPT_LIMIT`] bytes of `body`, cut at a character boundary, noting what was cut.
    pub fn new(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_LIMIT * 2)]);
        if text.len() <= EXCERPT_LIMIT && body.len() <= EXCERPT_LIMIT {
            return Self(text.into_owned());
        }
        let mut end = EXCERPT_LIMIT.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self(format!("{}… ({} bytes in all)", &text[..end], body.len()))
    }

    /// Like [`Excerpt::new`], but first replaces every occurrence of each secret (as written, and as
    /// written inside a JSON string) with `[REDACTED]`, for answers that might echo the request.
    pub fn redacted(body: &[u8], secrets: &[&str]) -> Self {
        let secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
        if secrets.is_empty() {
            return Self::new(body);
        }
        let mut text = String::from_utf8_lossy(body).into_owned();
        for secret in secrets {
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            for form in [secret, escaped.trim_matches('"')] {
                if !form.is_empty() {
                    text = text.replace(form, "[REDACTED]");
                }
            }
        }
        Self::new(text.as_bytes())
    }

    /// The excerpt's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("<empty body>")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// Why a service call failed.
///
/// Each kind says whether the call may be retried; the client itself retries the retryable ones (see the
/// `retry` settings) before returning them. Whatever the kind, a `success: false` answer is not an error:
/// it is returned as data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service does not know the channel: it restarted, or the id is stale. Not retried: open the channel
    /// again and repeat the call with the new id.
    #[error(
        "{call}: channel {channel_id} not found on the service (it restarted or the id is stale); open the channel again"
    )]
    ChannelNotFound {
        /// The call that failed.
        call: Call,
        /// The channel id the service did not know.
        channel_id: String,
    },

    /// The service answered with a status the call does not expect. `429` and `5xx` (but `501`) are retried by
    /// the client for every call, because the service answered without applying the request; the others
    /// are not, as they will not get better.
    #[error("{call}: the service answered HTTP {status}: {body}")]
    UnexpectedStatus {
        /// The call that failed.
        call: Call,
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        body: Excerpt,
        /// How long the service asked to wait before trying again (`Retry-After`).
        retry_after: Option<Duration>,
    },

    /// The connection failed or broke. Retried when the request did not reach the service, or when the call
    /// is idempotent; an insert that may have been applied is returned to the caller to resolve.
    #[error("{call}: transport error ({delivery}): {source}")]
    Transport {
        /// The call that failed.
        call: Call,
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
        call: Call,
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
        call: Call,
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
        call: Call,
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// The call that failed.
    pub fn call(&self) -> Call {
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

    /// Whether the service lost the channel (see [`Error::ChannelNotFound`]).
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
    fn excerpt_keeps_short_bodies_and_bounds_long_ones() {
        assert_eq!(Excerpt::new(b"oops").as_str(), "oops");
        assert_eq!(Excerpt::new(b"").to_string(), "<empty body>");
        let long = "é".repeat(1000);
        let excerpt = Excerpt::new(long.as_bytes());
        assert!(
            excerpt.as_str().len() < EXCERPT_LIMIT + 40,
            "{}",
            excerpt.as_str().len()
        );
        assert!(excerpt.as_str().ends_with("(2000 bytes in all)"));
    }

    #[test]
    fn redaction_covers_plain_and_json_escaped_secrets() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIIabc\n-----END PRIVATE KEY-----";
        let escaped = serde_json::to_string(key).unwrap();
        let body = format!(r#"{{"privateKey":{escaped},"raw":"{key}","pass":"hunter2"}}"#);
        let excerpt = Excerpt::redacted(body.as_bytes(), &[key, "hunter2", ""]);
        assert!(!excerpt.as_str().contains("MIIabc"), "{excerpt}");
        assert!(!excerpt.as_str().contains("hunter2"), "{excerpt}");
        assert_eq!(
            excerpt.as_str().matches("[REDACTED]").count(),
            3,
            "{excerpt}"
        );
    }

    #[test]
    fn only_unanswered_maybe_sent_errors_have_unknown_outcomes() {
        let timeout = |delivery| Error::Timeout {
            call: Call::Insert,
            timeout: Duration::from_secs(1),
            delivery,
        };
        assert!(timeout(Delivery::MaybeSent).is_outcome_unknown());
        assert!(!timeout(Delivery::NotSent).is_outcome_unknown());
        let status = Error::UnexpectedStatus {
            call: Call::Insert,
            status: 500,
            body: Excerpt::new(b""),
            retry_after: None,
        };
        assert!(!status.is_outcome_unknown());
        assert_eq!(status.status(), Some(500));
    }
}
