//! Appending rows: the rows, the offset tokens that label them, and what the backend did with them.
//!
//! A backend may send one append as several requests (Snowflake's REST API takes at most 4 MiB per request),
//! and each request carries its own start and end token. The caller owns the tokens' meaning, so it is the
//! caller that gives the token of any range of rows ([`OffsetTokens`]); the backend says which requests it
//! sent ([`SentRequest`]).

use std::{fmt, ops::Range, sync::Arc};

use crate::{Error, Row};

/// The start and end token of one request: the tokens of its first and last row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenRange {
    /// The token of the request's first row.
    pub start: String,
    /// The token of the request's last row: what the channel's committed token becomes when the request
    /// commits.
    pub end: String,
}

impl TokenRange {
    /// A range whose start and end are one token.
    pub fn single(token: impl Into<String>) -> Self {
        let token = token.into();
        Self {
            start: token.clone(),
            end: token,
        }
    }
}

/// The caller's offset tokens for the rows of an append: the backend asks for the tokens of each request it
/// sends, by the request's rows (indexes into [`AppendRequest::rows`]).
pub trait OffsetTokens: Send + Sync + fmt::Debug {
    /// The start and end token of a request holding `rows` (never empty).
    fn tokens(&self, rows: Range<usize>) -> TokenRange;
}

/// Every request of an append carries one token as its start and end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SameToken(pub String);

impl OffsetTokens for SameToken {
    fn tokens(&self, _rows: Range<usize>) -> TokenRange {
        TokenRange::single(self.0.clone())
    }
}

/// Rows to append to a channel.
///
/// The rows are shared ([`Arc`]) so that a backend can hand them to a compressing thread, and a caller can
/// send them again after a reopen, without copying a row.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// The rows, each a JSON object of column name to value.
    pub rows: Arc<[Row]>,
    /// Their tokens.
    pub tokens: Arc<dyn OffsetTokens>,
}

impl AppendRequest {
    /// Rows that all carry one token.
    pub fn with_token(rows: impl Into<Arc<[Row]>>, token: impl Into<String>) -> Self {
        Self {
            rows: rows.into(),
            tokens: Arc::new(SameToken(token.into())),
        }
    }

    /// The sum of the rows' sizes.
    pub fn row_bytes(&self) -> usize {
        self.rows.iter().map(Row::len).sum()
    }
}

/// One request a backend sent and the service accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    /// The rows it held.
    pub rows: Range<usize>,
    /// Its tokens.
    pub tokens: TokenRange,
    /// Its body as sent (after compression), in bytes.
    pub body_bytes: u64,
}

/// An append the service accepted: every row was handed over. Accepted is not committed: the channel's
/// committed token says when the rows are in the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    /// The requests, in order; their rows cover the append's rows in order.
    pub requests: Vec<SentRequest>,
}

impl Appended {
    /// Bytes sent, after compression.
    pub fn body_bytes(&self) -> u64 {
        self.requests.iter().map(|r| r.body_bytes).sum()
    }
}

/// An append that did not go through whole.
///
/// The requests in `accepted` were accepted; `error` says what became of the next request (for
/// [`Error::OutcomeUnknown`], its rows may or may not be in the channel); no request after it was sent.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct AppendError {
    /// Requests accepted before the failure.
    pub accepted: Vec<SentRequest>,
    /// What went wrong.
    #[source]
    pub error: Error,
}

impl From<Error> for AppendError {
    fn from(error: Error) -> Self {
        Self {
            accepted: Vec::new(),
            error,
        }
    }
}
