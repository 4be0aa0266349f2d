//! [`ChannelError`]: every way getting, creating or deleting a channel can fail, each with its kind.

use snowpipe_api::ChannelErrorCode;

use crate::{BackoffActive, FailureKind, WarehouseError};

/// A DDL step, named in errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DdlStep {
    /// `CREATE SCHEMA`.
    CreateSchema,
    /// `CREATE TABLE`.
    CreateTable,
    /// `ALTER TABLE ... ADD COLUMN`.
    AddColumns,
}

impl std::fmt::Display for DdlStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::CreateSchema => "creating the schema",
            Self::CreateTable => "creating the table",
            Self::AddColumns => "adding columns",
        })
    }
}

/// Why a channel could not be had. [`ChannelError::kind`] says what that means for the jobs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The service answered `success: false` to opening the channel.
    #[error(
        "opening the channel for table {table} failed with {code}: {message} (Snowflake HTTP {snowflake_http_code}: {snowflake_message})"
    )]
    Refused {
        /// The table.
        table: String,
        /// The service's code.
        code: ChannelErrorCode,
        /// The service's message.
        message: String,
        /// Snowflake's own HTTP status (`snowflakeAPIHttpCode`); 400 means retrying cannot help.
        snowflake_http_code: i64,
        /// Snowflake's message, which tells the user what to fix.
        snowflake_message: String,
    },
    /// A service call failed.
    #[error("{call} for table {table} failed: {source}")]
    Service {
        /// The table.
        table: String,
        /// What was being done.
        call: &'static str,
        /// The client's error.
        #[source]
        source: snowpipe_api::Error,
    },
    /// A DDL statement failed.
    #[error("{step} for table {table} failed: {source}")]
    Warehouse {
        /// The table.
        table: String,
        /// The DDL step.
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
}

impl ChannelError {
    /// What the failure means for the jobs:
    /// - opening refused with `ERR_VALIDATION_ERROR`, `ERR_AUTHENTICATION_FAILED`,
    ///   `ERR_ROLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED` or `ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED` →
    ///   auth; any other refusal with Snowflake HTTP 400 → abort; other refusals → retry;
    /// - DDL failures → the warehouse error's kind;
    /// - a running backoff → retry (the jobs fail and come back later);
    /// - service call failures → retry, except a request that cannot even be built → abort.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Refused {
                code,
                snowflake_http_code,
                ..
            } => match code {
                ChannelErrorCode::Validation
                | ChannelErrorCode::AuthenticationFailed
                | ChannelErrorCode::RoleDoesNotExistOrNotAuthorized
                | ChannelErrorCode::DatabaseDoesNotExistOrNotAuthorized => FailureKind::Auth,
                _ if *snowflake_http_code == 400 => FailureKind::Abort,
                _ => FailureKind::Retry,
            },
            Self::Warehouse { source, .. } => source.kind(),
            Self::Backoff { .. } => FailureKind::Retry,
            Self::Service {
                source: snowpipe_api::Error::InvalidRequest { .. },
                ..
            } => FailureKind::Abort,
            Self::Service { .. } => FailureKind::Retry,
        }
    }

    /// Whether the auth backoff refused a step. With auth-kind failures, this keeps the backoff from being
    /// reset after the upload.
    pub fn is_backoff(&self) -> bool {
        matches!(self, Self::Backoff { .. })
    }
}
