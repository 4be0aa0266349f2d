//! A table's columns, as DDL declared them: the schema rows are written against and channels keep.
//!
//! It sits below both the rows and the catalog, so their imports point one way: the catalog imports
//! rows and this, rows import this, and this imports neither.

use serde_json::Value;

use super::{ident, types::ColumnType};

/// A column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) ty: ColumnType,
    pub(crate) nullable: bool,
}

/// A table's columns at one moment. Channels keep the schema they saw when opened, as Snowflake's do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TableSchema {
    pub(crate) columns: Vec<Column>,
}

impl TableSchema {
    /// The index of the column a row key names: a quoted key exactly, any other key
    /// case-insensitively.
    pub(crate) fn column_index(&self, key: &str) -> Option<usize> {
        let name = ident::resolve(key);
        self.columns.iter().position(|c| c.name == name)
    }

    /// The `tableSchema` object of a channel answer.
    pub(crate) fn to_json(&self) -> Value {
        Value::Object(
            self.columns
                .iter()
                .map(|c| (c.name.clone(), c.ty.schema_entry(c.nullable)))
                .collect(),
        )
    }
}
