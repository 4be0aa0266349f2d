//! Inserting rows on the sidecar: the insert request and the service's per-row answer.

use serde::{Deserialize, Serialize};

use super::nullable::or_default;
use crate::Row;

/// Rows to append to a channel, with the offset token that marks them.
///
/// Rows are JSON objects' text ([`Row`]): the caller hands over bytes it serialised, which are sent as they
/// are, with no parsing or re-serialising on the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsertRequest {
    /// The rows, each a JSON object of column name to value.
    pub rows: Vec<Row>,
    /// The offset token; once the channel's committed offset reaches it, these rows are in the table.
    pub offset: String,
}

impl InsertRequest {
    /// Writes the request as JSON, exactly as serde would (`{"rows":[...],"offset":"..."}`), copying each
    /// row's bytes rather than parsing them.
    ///
    /// # Errors
    /// What `out` returns.
    pub fn write_json(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        write_insert_json(&self.rows, &self.offset, out)
    }
}

/// Writes an insert body, exactly as serde would write an [`InsertRequest`] of these rows and offset
/// (`{"rows":[...],"offset":"..."}`), copying each row's bytes rather than parsing them.
///
/// # Errors
/// What `out` returns.
pub fn write_insert_json(
    rows: &[Row],
    offset: &str,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    out.write_all(b"{\"rows\":[")?;
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(row.as_bytes())?;
    }
    out.write_all(b"],\"offset\":")?;
    serde_json::to_writer(&mut *out, offset)?;
    out.write_all(b"}")
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
