//! [`ChannelError`]: every way getting, using or dropping a channel can fail, each with its kind.

use snowpipe_api::Error as BackendError;

use crate::{BackoffActive, FailureKind, WarehouseError};

/// A warehouse step, named in errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DdlStep {
    /// `CREATE SCHEMA`.
    CreateSchema,
    /// `CREATE TABLE`.
    CreateTable,
    /// `ALTER TABLE ... ADD COLUMN`.
    AddColumns,
    /// `DESCRIBE TABLE`.
    DescribeTable,
}

impl std::fmt::Display for DdlStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::CreateSchema => "creating the schema",
            Self::CreateTable => "creating the table",
            Self::AddColumns => "adding columns",
            Self::DescribeTable => "reading the table's columns",
        })
    }
}

/// Why a channel could not be had or used. [`ChannelError::kind`] says what that means for the jobs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// A backend call failed.
    #[error("{call} for table {table} failed: {source}")]
    Service {
        /// The table.
        table: String,
        /// What was being done.
        call: &'static str,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
    /// A warehouse statement failed.
    #[error("{step} for table {table} failed: {source}")]
    Warehouse {
        /// The table.
        table: String,
        /// The step.
        step: DdlStep,
        /// The warehouse error.
        #[source]
        source: WarehouseError,
    },
    /// A DDL step was skipped because the auth backoff is running; no warehouse call was made.
    #[error("{step} for table {table} was skipped: {source}")]
    Backoff {
        /// The table.
        table: String,
        /// The DDL step.
        step: DdlStep,
        /// The running backoff.
        #[source]
        source: BackoffActive,
    },
    /// Rows could not be appended, after every recovery the channel layer tries (reopening a lost channel,
    /// resolving a lost answer from where the channel stands).
    #[error("{message}")]
    Append {
        /// The table.
        table: String,
        /// The channel.
        channel_id: String,
        /// What happened, with the backend's errors.
        message: String,
    },
}

impl ChannelError {
    /// What the failure means for the jobs:
    /// - backend refusals of credentials, role or grants (a missing database among them) → auth; so is a
    ///   schema or table still missing where the DDL path cannot run or has run (the role cannot see it);
    /// - requests that will not get better, and requests the backend cannot make → abort;
    /// - DDL failures → the warehouse error's kind;
    /// - a running backoff → retry (the jobs fail and come back later);
    /// - everything else, appends that failed among them → retry.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Service { source, .. } => match source {
                BackendError::Auth { .. } | BackendError::MissingObject { .. } => FailureKind::Auth,
                BackendError::Permanent { .. } | BackendError::Unsupported { .. } => {
                    FailureKind::Abort
                }
                _ => FailureKind::Retry,
            },
            Self::Warehouse { source, .. } => source.kind(),
            Self::Backoff { .. } | Self::Append { .. } => FailureKind::Retry,
        }
    }

    /// Whether the auth backoff refused a step. With auth-kind failures, this keeps the backoff from being
    /// reset after the upload.
    pub fn is_backoff(&self) -> bool {
        matches!(self, Self::Backoff { .. })
    }
}
