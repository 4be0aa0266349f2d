//! A table's columns as a backend (or the warehouse) describes them, and their mapping to the pipeline's
//! warehouse types.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One column of a table, in Snowflake's terms: what the sidecar reports with an open channel and what
/// `DESCRIBE TABLE` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The column's name as Snowflake stores it.
    pub name: String,
    /// Snowflake's type text, e.g. `VARCHAR(16777216)`, `NUMBER(38,2)` or `TIMESTAMP_TZ(9)`; empty when the
    /// backend did not say.
    pub data_type: String,
    /// The scale of a number column when the backend reports it apart from the type text.
    pub scale: Option<i64>,
    /// Whether the column takes nulls.
    pub nullable: bool,
}

impl Column {
    /// The column's warehouse type, or `None` when its Snowflake type is missing or unknown (a caller that adds
    /// "missing" columns then never tries to re-add a column it cannot read).
    pub fn warehouse_type(&self) -> Option<WarehouseType> {
        if self.data_type.is_empty() {
            return None;
        }
        WarehouseType::from_snowflake(&self.data_type, self.scale)
    }
}

/// The warehouse types a table column can have, as the rest of the pipeline names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum WarehouseType {
    /// Whole numbers (`NUMBER` with scale 0).
    Int,
    /// Floating point numbers, and `NUMBER` with a scale above 0.
    Float,
    /// Text.
    String,
    /// Dates, times and timestamps.
    Datetime,
    /// `BOOLEAN`.
    Boolean,
    /// `VARIANT`.
    Json,
}

impl WarehouseType {
    /// Maps a Snowflake column type to a warehouse type, as the protocol page says: anything from the first
    /// `(` is ignored; number types are `int`, or `float` when `scale` is above 0. When the service sends no
    /// `scale`, the one written in the type (`NUMBER(38,2)`) is used. Unknown types give `None`.
    pub fn from_snowflake(sf_type: &str, scale: Option<i64>) -> Option<Self> {
        let (base, args) = match sf_type.find('(') {
            Some(open) => (&sf_type[..open], Some(&sf_type[open + 1..])),
            None => (sf_type, None),
        };
        let base = base.trim().to_ascii_uppercase();
        let ty = match base.as_str() {
            "NUMBER" | "DECIMAL" | "NUMERIC" | "INT" | "INTEGER" | "BIGINT" | "SMALLINT" => {
                let scale = scale.or_else(|| args.and_then(scale_in_type)).unwrap_or(0);
                if scale > 0 { Self::Float } else { Self::Int }
            }
            "FLOAT" | "FLOAT4" | "FLOAT8" | "DOUBLE" | "REAL" | "DOUBLE PRECISION" => Self::Float,
            "BOOLEAN" => Self::Boolean,
            "TEXT" | "VARCHAR" | "CHAR" | "CHARACTER" | "STRING" | "BINARY" | "VARBINARY" => {
                Self::String
            }
            "TIMESTAMP_NTZ" | "DATE" | "DATETIME" | "TIME" | "TIMESTAMP" | "TIMESTAMP_LTZ"
            | "TIMESTAMP_TZ" => Self::Datetime,
            "VARIANT" => Self::Json,
            _ => return None,
        };
        Some(ty)
    }

    /// The type's name as the pipeline writes it (`int`, `float`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Int => "int",
            Self::Float => "float",
            Self::String => "string",
            Self::Datetime => "datetime",
            Self::Boolean => "boolean",
            Self::Json => "json",
        }
    }
}

impl fmt::Display for WarehouseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scale in `38,2)`: the number after the comma, when it is one.
fn scale_in_type(args: &str) -> Option<i64> {
    let inner = args.split(')').next()?;
    let (_, scale) = inner.split_once(',')?;
    scale.trim().parse().ok()
}
