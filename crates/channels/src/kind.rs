//! The three kinds of channel and DDL failure, which decide a job's outcome.

use std::fmt;

/// What a failure means for the jobs it touches. Every error of this crate has exactly one kind, decided by
/// its type and typed fields (codes, statuses), never by matching message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Credentials or grants are wrong: jobs fail (retried later) and the auth backoff starts, so the
    /// warehouse is not woken on every batch until the user fixes them.
    Auth,
    /// Retrying cannot help (a bad request, an invalid statement, an undecodable config): jobs are aborted.
    Abort,
    /// Anything else (transport errors, timeouts, 5xx, unknown codes): jobs fail and are retried later.
    Retry,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auth => "auth",
            Self::Abort => "abort",
            Self::Retry => "retry",
        })
    }
}
