//! Opening channels on the sidecar: the create-channel request and the channel response with its table
//! schema.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use super::{column::ColumnInfo, nullable::or_default};
use crate::{Secret, TableRef, WarehouseType};

/// Opens (or re-opens) the channel named by destination, partition, database, schema and table.
///
/// Opening a channel again returns it anew, and any older channel id for the same name becomes invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateChannelRequest {
    /// The destination the channel belongs to (RudderStack's destination id).
    #[serde(deserialize_with = "or_default", default)]
    pub rudder_identifier: String,
    /// The partition (the manager's instance id), so that two instances never share a channel.
    #[serde(deserialize_with = "or_default", default)]
    pub partition: String,
    /// Credentials of the Snowflake user the channel writes as.
    pub account: Account,
    /// The table the channel writes to.
    pub table: TableRef,
}

impl fmt::Display for CreateChannelRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "channel for {} (destination {}, partition {}, user {})",
            self.table, self.rudder_identifier, self.partition, self.account.user
        )
    }
}

/// The Snowflake account and key-pair credentials of a channel.
///
/// The private key and its passphrase are [`Secret`]s: they are sent to the service but never printed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Account identifier, e.g. `myorg-myaccount` or `xy12345.eu-central-1`.
    #[serde(deserialize_with = "or_default", default)]
    pub account: String,
    /// Snowflake user name.
    #[serde(deserialize_with = "or_default", default)]
    pub user: String,
    /// Role the channel uses.
    #[serde(deserialize_with = "or_default", default)]
    pub role: String,
    /// PKCS#8 private key in PEM form, encrypted or not.
    #[serde(default)]
    pub private_key: Secret,
    /// Passphrase of an encrypted private key; empty for an unencrypted one.
    #[serde(default)]
    pub private_key_passphrase: Secret,
}

/// The service's answer about one channel: on opening it, or when asked for it.
///
/// A `success: false` answer is data, not an error: [`ChannelResponse::error_code`] tells what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelResponse {
    /// Whether the call succeeded.
    #[serde(deserialize_with = "or_default", default)]
    pub success: bool,
    /// The channel id to insert into and ask status of.
    #[serde(deserialize_with = "or_default", default)]
    pub channel_id: String,
    /// The channel's name on Snowflake.
    #[serde(deserialize_with = "or_default", default)]
    pub channel_name: String,
    /// The SDK client holding the channel.
    #[serde(deserialize_with = "or_default", default)]
    pub client_name: String,
    /// Whether the channel can still commit rows.
    #[serde(deserialize_with = "or_default", default)]
    pub valid: bool,
    /// Whether the channel was deleted.
    #[serde(deserialize_with = "or_default", default)]
    pub deleted: bool,
    /// The table's columns in Snowflake types; see [`ChannelResponse::warehouse_schema`].
    #[serde(deserialize_with = "or_default", default)]
    pub table_schema: BTreeMap<String, ColumnInfo>,
    /// Error message when `success` is false.
    #[serde(deserialize_with = "or_default", default)]
    pub error: String,
    /// Error code when `success` is false (`ERR_...`); see [`ChannelResponse::error_code`].
    #[serde(deserialize_with = "or_default", default)]
    pub code: String,
    /// The Snowflake SDK's own error code.
    #[serde(rename = "snowflakeSDKCode", deserialize_with = "or_default", default)]
    pub snowflake_sdk_code: String,
    /// Snowflake's HTTP status for the failure; 400 means retrying cannot help.
    #[serde(
        rename = "snowflakeAPIHttpCode",
        deserialize_with = "or_default",
        default
    )]
    pub snowflake_api_http_code: i64,
    /// Snowflake's status code for the failure.
    #[serde(
        rename = "snowflakeAPIStatusCode",
        deserialize_with = "or_default",
        default
    )]
    pub snowflake_api_status_code: i64,
    /// Snowflake's message for the failure.
    #[serde(
        rename = "snowflakeAPIMessage",
        deserialize_with = "or_default",
        default
    )]
    pub snowflake_api_message: String,
}

impl ChannelResponse {
    /// The failure code as a typed value; `None` when the response carries no code.
    pub fn error_code(&self) -> Option<ChannelErrorCode> {
        (!self.code.is_empty()).then(|| ChannelErrorCode::parse(&self.code))
    }

    /// The table's columns mapped to warehouse types. Columns whose Snowflake type is missing or unknown are
    /// left out, so a caller that adds "missing" columns never tries to re-add a column it cannot read.
    pub fn warehouse_schema(&self) -> BTreeMap<String, WarehouseType> {
        self.table_schema
            .iter()
            .filter_map(|(name, column)| Some((name.clone(), column.warehouse_type()?)))
            .collect()
    }
}

/// The failure codes of opening a channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelErrorCode {
    /// `ERR_UNKNOWN_ERROR`.
    Unknown,
    /// `ERR_VALIDATION_ERROR`: the request or credentials are not valid.
    Validation,
    /// `ERR_AUTHENTICATION_FAILED`: the key does not match the user.
    AuthenticationFailed,
    /// `ERR_ROLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED`.
    RoleDoesNotExistOrNotAuthorized,
    /// `ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED`.
    DatabaseDoesNotExistOrNotAuthorized,
    /// `ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED`: create the schema (and table), then open again.
    SchemaDoesNotExistOrNotAuthorized,
    /// `ERR_TABLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED`: create the table, then open again.
    TableDoesNotExistOrNotAuthorized,
    /// `ERR_SCHEMA_CONFLICT`: rows do not fit the table's schema.
    SchemaConflict,
    /// A code this client does not know, kept as sent.
    Other(String),
}

impl ChannelErrorCode {
    /// Reads a code as the service sends it.
    pub fn parse(code: &str) -> Self {
        match code {
            "ERR_UNKNOWN_ERROR" => Self::Unknown,
            "ERR_VALIDATION_ERROR" => Self::Validation,
            "ERR_AUTHENTICATION_FAILED" => Self::AuthenticationFailed,
            "ERR_ROLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED" => Self::RoleDoesNotExistOrNotAuthorized,
            "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED" => {
                Self::DatabaseDoesNotExistOrNotAuthorized
            }
            "ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED" => {
                Self::SchemaDoesNotExistOrNotAuthorized
            }
            "ERR_TABLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED" => Self::TableDoesNotExistOrNotAuthorized,
            "ERR_SCHEMA_CONFLICT" => Self::SchemaConflict,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code as the service sends it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Unknown => "ERR_UNKNOWN_ERROR",
            Self::Validation => "ERR_VALIDATION_ERROR",
            Self::AuthenticationFailed => "ERR_AUTHENTICATION_FAILED",
            Self::RoleDoesNotExistOrNotAuthorized => "ERR_ROLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            Self::DatabaseDoesNotExistOrNotAuthorized => {
                "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"
            }
            Self::SchemaDoesNotExistOrNotAuthorized => {
                "ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"
            }
            Self::TableDoesNotExistOrNotAuthorized => "ERR_TABLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            Self::SchemaConflict => "ERR_SCHEMA_CONFLICT",
            Self::Other(code) => code,
        }
    }
}

impl fmt::Display for ChannelErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
