//! The boundary's error: every failure of a backend call, typed by what the caller must do about it, never by
//! the transport's status codes.

use std::fmt;

/// A boxed error, kept as the cause of a failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A result of a backend call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The backend call an error or a metric belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Call {
    /// Opening (or reopening) a channel.
    OpenChannel,
    /// Appending rows.
    Append,
    /// One channel's status.
    ChannelStatus,
    /// Many channels' statuses.
    BulkStatus,
    /// Dropping a channel.
    DropChannel,
}

impl Call {
    /// The call's name in logs and metrics. The names are the ones the behaviour contract gives the service
    /// calls' timers (`create_channel`, `insert`, `status`, `bulk_status`, `delete_channel`), whatever the
    /// backend.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenChannel => "create_channel",
            Self::Append => "insert",
            Self::ChannelStatus => "status",
            Self::BulkStatus => "bulk_status",
            Self::DropChannel => "delete_channel",
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An object a channel needs that does not exist (or that the role may not see).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MissingObject {
    /// The schema: create it and the table, then open again.
    Schema,
    /// The table (on Snowflake's REST API, its default pipe): create it, then open again.
    Table,
}

impl fmt::Display for MissingObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Schema => "schema",
            Self::Table => "table",
        })
    }
}

/// One row the service refused when it was appended, by its index in the append's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// The row's index in [`AppendRequest::rows`](crate::AppendRequest::rows).
    pub index: usize,
    /// Why.
    pub message: String,
}

/// Why a backend call failed, by what the caller must do about it.
///
/// The backend has already retried what its retry policy allows; what comes back here is final for this
/// attempt. `code` fields hold a short, bounded label of the cause (the service's error code, or the HTTP
/// status or transport failure), for metrics and logs; messages are for people and are never matched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Snowflake refused the credentials, the role or its grants (a missing database counts here: it is never
    /// created). Fix the destination; the work may be retried later.
    #[error("{call}: refused with {code}: {message}")]
    Auth {
        /// The call that failed.
        call: Call,
        /// The service's code.
        code: String,
        /// The service's message.
        message: String,
    },

    /// The schema or table the channel writes to does not exist (or the role may not see it): create it, then
    /// open again. A second one after creating it means the role lacks privileges.
    #[error("{call}: the {object} does not exist or is not authorized ({code}): {message}")]
    MissingObject {
        /// The call that failed.
        call: Call,
        /// What is missing.
        object: MissingObject,
        /// The service's code.
        code: String,
        /// The service's message.
        message: String,
    },

    /// The channel must be opened again: the service lost it (it restarted), another writer superseded this
    /// one, or it turned invalid. Nothing of this call was applied.
    #[error("{call}: the channel must be opened again ({code}): {message}")]
    Reopen {
        /// The call that failed.
        call: Call,
        /// The cause's code.
        code: String,
        /// What happened.
        message: String,
    },

    /// The service refused rows of an append. Whether it kept the others is the backend's to say in its docs.
    #[error("{call}: rows refused with {code}")]
    RowsRejected {
        /// The call that failed.
        call: Call,
        /// The service's code.
        code: String,
        /// The refused rows, as far as the service listed them.
        rows: Vec<RejectedRow>,
    },

    /// No answer came (a timeout, a cut connection, a server error after the body went out): the rows may or
    /// may not be in the channel. Never retried blindly: the caller finds out from the channel first.
    #[error("{source}")]
    OutcomeUnknown {
        /// The call that failed.
        call: Call,
        /// The cause's label.
        code: String,
        /// The transport's error.
        #[source]
        source: BoxError,
    },

    /// A failure that may pass (a transport failure, a timeout, an overloaded or failing service) and that
    /// surely left nothing behind, or concerns an idempotent call. Retry later.
    #[error("{source}")]
    Retryable {
        /// The call that failed.
        call: Call,
        /// The cause's label.
        code: String,
        /// The cause.
        #[source]
        source: BoxError,
    },

    /// A failure that retrying will not mend (a malformed request, a refusal that names a bad request).
    #[error("{source}")]
    Permanent {
        /// The call that failed.
        call: Call,
        /// The cause's label.
        code: String,
        /// The cause.
        #[source]
        source: BoxError,
    },

    /// The backend cannot do what was asked (see [`Capabilities`](crate::Capabilities)): a bug in the caller.
    #[error("{call}: the backend cannot {what}")]
    Unsupported {
        /// The call that failed.
        call: Call,
        /// What it cannot do.
        what: &'static str,
    },
}

impl Error {
    /// The call that failed.
    pub fn call(&self) -> Call {
        match self {
            Self::Auth { call, .. }
            | Self::MissingObject { call, .. }
            | Self::Reopen { call, .. }
            | Self::RowsRejected { call, .. }
            | Self::OutcomeUnknown { call, .. }
            | Self::Retryable { call, .. }
            | Self::Permanent { call, .. }
            | Self::Unsupported { call, .. } => *call,
        }
    }

    /// A short label of the cause, for metrics and logs.
    pub fn code(&self) -> &str {
        match self {
            Self::Auth { code, .. }
            | Self::MissingObject { code, .. }
            | Self::Reopen { code, .. }
            | Self::RowsRejected { code, .. }
            | Self::OutcomeUnknown { code, .. }
            | Self::Retryable { code, .. }
            | Self::Permanent { code, .. } => code,
            Self::Unsupported { .. } => "unsupported",
        }
    }

    /// Whether an append may have been applied although no answer came back.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::OutcomeUnknown { .. })
    }

    /// Whether the channel must be opened again.
    pub fn is_reopen(&self) -> bool {
        matches!(self, Self::Reopen { .. })
    }

    /// The missing object, when that is the failure.
    pub fn missing_object(&self) -> Option<MissingObject> {
        match self {
            Self::MissingObject { object, .. } => Some(*object),
            _ => None,
        }
    }
}
