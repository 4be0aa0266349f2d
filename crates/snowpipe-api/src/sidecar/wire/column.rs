//! The table schema a channel answer carries: one entry per column, in Snowflake's terms.

use serde::{Deserialize, Serialize};

use super::nullable::or_default;
use crate::{Column, WarehouseType};

/// One column of a channel's table, in Snowflake's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnInfo {
    /// Snowflake type, e.g. `VARCHAR(16777216)` or `NUMBER(38,2)`.
    #[serde(rename = "type", default)]
    pub sf_type: Option<String>,
    /// Snowflake's logical type, e.g. `TEXT` or `FIXED`.
    #[serde(default)]
    pub logical_type: Option<String>,
    /// Precision of a number column.
    #[serde(default)]
    pub precision: Option<i64>,
    /// Scale of a number column; a scale above 0 makes it a float.
    #[serde(default)]
    pub scale: Option<i64>,
    /// Byte length of a text column.
    #[serde(default)]
    pub byte_length: Option<i64>,
    /// Character length of a text column.
    #[serde(default)]
    pub length: Option<i64>,
    /// Whether the column takes nulls.
    #[serde(deserialize_with = "or_default", default = "yes")]
    pub nullable: bool,
}

fn yes() -> bool {
    true
}

impl ColumnInfo {
    /// The column's warehouse type, or `None` when its Snowflake type is missing or unknown.
    pub fn warehouse_type(&self) -> Option<WarehouseType> {
        WarehouseType::from_snowflake(self.sf_type.as_deref()?, self.scale)
    }
}

impl ColumnInfo {
    /// The column as the boundary describes columns.
    pub(crate) fn to_column(&self, name: &str) -> Column {
        Column {
            name: name.to_owned(),
            data_type: self.sf_type.clone().unwrap_or_default(),
            scale: self.scale,
            nullable: self.nullable,
        }
    }
}
