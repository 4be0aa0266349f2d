//! The discards table: its name and schema, as data, so the channel layer can create it.

use snowpipe_grouping::{Schema, WarehouseType};

/// The table discard rows go to.
pub const DISCARDS_TABLE: &str = "RUDDER_DISCARDS";

/// The discards table's columns and their warehouse types, in order.
pub const DISCARDS_COLUMNS: [(&str, WarehouseType); 7] = [
    ("TABLE_NAME", WarehouseType::String),
    ("ROW_ID", WarehouseType::String),
    ("COLUMN_NAME", WarehouseType::String),
    ("COLUMN_VALUE", WarehouseType::String),
    ("REASON", WarehouseType::String),
    ("RECEIVED_AT", WarehouseType::Datetime),
    ("UUID_TS", WarehouseType::Datetime),
];

/// The discards table's schema, built from [`DISCARDS_COLUMNS`].
///
/// ```
/// use snowpipe_discards::discards_schema;
///
/// let schema = serde_json::to_string(&discards_schema()).unwrap();
/// assert_eq!(
///     schema,
///     r#"{"TABLE_NAME":"string","ROW_ID":"string","COLUMN_NAME":"string","COLUMN_VALUE":"string","REASON":"string","RECEIVED_AT":"datetime","UUID_TS":"datetime"}"#
/// );
/// ```
#[must_use]
pub fn discards_schema() -> Schema {
    DISCARDS_COLUMNS.into_iter().collect()
}
