//! The boundary to the warehouse: the three DDL steps the manager needs, and how they fail.

use async_trait::async_trait;
use snowpipe_api::Column;
use snowpipe_auth::KeyError;
use snowpipe_grouping::Schema;

use crate::FailureKind;

/// Runs DDL against the destination's database, and reads tables' columns. Every DDL statement wakes the
/// warehouse, which costs money: callers go through the auth backoff first (see
/// [`ChannelManager`](crate::ChannelManager)).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Warehouse: Send + Sync {
    /// `CREATE SCHEMA IF NOT EXISTS`.
    async fn create_schema(&self, schema: &str) -> Result<(), WarehouseError>;
    /// `CREATE TABLE IF NOT EXISTS` with the given columns.
    async fn create_table(
        &self,
        schema: &str,
        table: &str,
        columns: &Schema,
    ) -> Result<(), WarehouseError>;
    /// `ALTER TABLE ... ADD COLUMN IF NOT EXISTS`, one statement for all the columns.
    async fn add_columns(
        &self,
        schema: &str,
        table: &str,
        columns: &Schema,
    ) -> Result<(), WarehouseError>;
    /// `DESCRIBE TABLE`: the table's columns, in order; `None` when the table does not exist (or the role may
    /// not see it), so the caller takes the DDL path.
    async fn describe_table(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Option<Vec<Column>>, WarehouseError>;
}

/// Why a DDL statement failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WarehouseError {
    /// Snowflake refused the credentials or the privileges (HTTP 401/403, an invalid JWT, insufficient
    /// privileges). Auth-kind: fix the destination's key, user, role or grants.
    #[error(
        "Snowflake refused authentication or authorization (HTTP {status}, code {code}): {message}"
    )]
    Unauthorized {
        /// HTTP status.
        status: u16,
        /// Snowflake's error code.
        code: String,
        /// Snowflake's message.
        message: String,
    },
    /// The destination's private key cannot be used. Auth-kind: fix the key or its passphrase.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// An object the statement needs does not exist (code 002003, e.g. the database). Abort-kind.
    #[error("Snowflake: object does not exist or not authorized (code {code}): {message}")]
    ObjectMissing {
        /// Snowflake's error code.
        code: String,
        /// Snowflake's message.
        message: String,
    },
    /// Snowflake rejected the statement as invalid (a SQL compilation error or a bad request). Abort-kind.
    #[error(
        "Snowflake rejected the statement (HTTP {status}, code {code}, SQL state {sql_state}): {message}"
    )]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Snowflake's error code.
        code: String,
        /// The SQL state.
        sql_state: String,
        /// Snowflake's message.
        message: String,
    },
    /// Any other answer (5xx, 429, an unknown status). Retry-kind.
    #[error("Snowflake answered HTTP {status}: {body}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The connection failed or no answer came in time. Retry-kind.
    #[error("cannot reach Snowflake's SQL API: {0}")]
    Transport(String),
}

impl WarehouseError {
    /// The failure's kind.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Unauthorized { .. } | Self::Key(_) => FailureKind::Auth,
            Self::ObjectMissing { .. } | Self::Rejected { .. } => FailureKind::Abort,
            Self::Unexpected { .. } | Self::Transport(_) => FailureKind::Retry,
        }
    }
}
