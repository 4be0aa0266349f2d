//! Inserting rows: the insert request and the service's per-row answer.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::nullable::or_default;

/// Rows to append to a channel, with the offset token that marks them.
///
/// Rows are raw JSON objects: the caller hands over the bytes it read, which are sent as they are, with no
/// parsing or re-serialising on the way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InsertRequest {
    /// The rows, each a JSON object of column name to value.
    pub rows: Vec<Box<RawValue>>,
    /// The offset token; once the channel's committed offset reaches it, these rows are in the table.
    pub offset: String,
}

impl PartialEq for InsertRequest {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset
            && self.rows.len() == other.rows.len()
            && self
                .rows
                .iter()
                .zip(&other.rows)
                .all(|(a, b)| a.get() == b.get())
    }
}

/// The service's answer to an insert. `success: false` is data, with an error per rejected row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsertResponse {
    /// Whether every row was accepted.
    #[serde(deserialize_with = "or_default", default)]
    pub success: bool,
    /// Failure code, e.g. `ERR_SCHEMA_CONFLICT`.
    #[serde(deserialize_with = "or_default", default)]
    pub code: String,
    /// One entry per rejected row.
    #[serde(deserialize_with = "or_default", default)]
    pub errors: Vec<RowError>,
}

/// Why one row of an insert was rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowError {
    /// Index of the row in the request's `rows`.
    #[serde(deserialize_with = "or_default", default)]
    pub row_index: i64,
    /// What was wrong.
    #[serde(deserialize_with = "or_default", default)]
    pub message: String,
    /// Columns in the row that the table does not have.
    #[serde(deserialize_with = "or_default", default)]
    pub extra_col_names: Vec<String>,
    /// Not-null columns the row left out.
    #[serde(deserialize_with = "or_default", default)]
    pub missing_not_null_col_names: Vec<String>,
    /// Not-null columns the row set to null.
    #[serde(deserialize_with = "or_default", default)]
    pub null_value_for_not_null_col_names: Vec<String>,
}
