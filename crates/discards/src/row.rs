//! A discard row: one value that could not be converted, as a row of the discards table.

use serde::{Serialize, Serializer, ser::SerializeMap};
use serde_json::value::RawValue;
use snowpipe_grouping::{UploadTime, value_bytes};

/// One row of the discards table (`RUDDER_DISCARDS`): a value that could not be converted to its table's
/// column type and went in as null.
#[derive(Debug, Clone)]
pub struct DiscardRow {
    /// `TABLE_NAME`: the event's table.
    pub table_name: String,
    /// `ROW_ID`: the text form of the event's `data.ID` (null when `ID` is null).
    pub row_id: Option<String>,
    /// `COLUMN_NAME`: the column whose value was discarded.
    pub column_name: String,
    /// `COLUMN_VALUE`: the text form of the discarded value.
    pub column_value: String,
    /// `REASON`: `incompatible schema conversion from <table type> to <event type>`.
    pub reason: String,
    /// `RECEIVED_AT`: the event's `data.RECEIVED_AT`, as it was.
    pub received_at: Box<RawValue>,
    /// `UUID_TS`: the upload time.
    pub uuid_ts: UploadTime,
}

impl DiscardRow {
    /// The row as a JSON object of the discards table's columns, ready for an insert request.
    ///
    /// # Panics
    /// Never: the row holds only strings and a raw JSON value, which always serialise.
    #[must_use]
    pub fn to_row(&self) -> Box<RawValue> {
        serde_json::value::to_raw_value(self).expect("strings and raw JSON always serialise")
    }

    /// The bytes of the row's values as Snowflake bills them (each value's text, strings without their
    /// quotes; keys not counted), as `snowpipe_grouping::Event::value_bytes` counts an event's row.
    #[must_use]
    pub fn value_bytes(&self) -> usize {
        self.table_name.len()
            + self.row_id.as_ref().map_or("null".len(), String::len)
            + self.column_name.len()
            + self.column_value.len()
            + self.reason.len()
            + value_bytes(self.received_at.get())
            + self.uuid_ts.as_str().len()
    }
}

impl PartialEq for DiscardRow {
    fn eq(&self, other: &Self) -> bool {
        self.table_name == other.table_name
            && self.row_id == other.row_id
            && self.column_name == other.column_name
            && self.column_value == other.column_value
            && self.reason == other.reason
            && self.received_at.get() == other.received_at.get()
            && self.uuid_ts == other.uuid_ts
    }
}

impl Serialize for DiscardRow {
    /// An object with the discards table's column names, in [`crate::DISCARDS_COLUMNS`] order.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(7))?;
        map.serialize_entry("TABLE_NAME", &self.table_name)?;
        map.serialize_entry("ROW_ID", &self.row_id)?;
        map.serialize_entry("COLUMN_NAME", &self.column_name)?;
        map.serialize_entry("COLUMN_VALUE", &self.column_value)?;
        map.serialize_entry("REASON", &self.reason)?;
        map.serialize_entry("RECEIVED_AT", &self.received_at)?;
        map.serialize_entry("UUID_TS", &self.uuid_ts)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;
    use snowpipe_grouping::UploadTime;
    use time::macros::datetime;

    use super::DiscardRow;
    use crate::DISCARDS_COLUMNS;

    #[test]
    fn value_bytes_count_each_value_once_without_keys() {
        let row = DiscardRow {
            table_name: "T".into(),
            row_id: None,
            column_name: "C".into(),
            column_value: "12".into(),
            reason: "why".into(),
            received_at: RawValue::from_string(r#""2024""#.to_owned()).unwrap(),
            uuid_ts: UploadTime::new(datetime!(2024-01-02 03:04:05.678 UTC)),
        };
        // T 1, null 4, C 1, 12 2, why 3, 2024 4, the upload time 24.
        assert_eq!(row.value_bytes(), 39);
    }

    #[test]
    fn a_row_is_one_object_with_the_table_columns_in_order() {
        let row = DiscardRow {
            table_name: "TRACKS".into(),
            row_id: Some("a1".into()),
            column_name: "PRICE".into(),
            column_value: "12.50 EUR".into(),
            reason: "incompatible schema conversion from float to string".into(),
            received_at: RawValue::from_string("\"2023-05-12T04:36:50.199Z\"".into()).unwrap(),
            uuid_ts: UploadTime::new(datetime!(2024-01-02 03:04:05.678 UTC)),
        };
        assert_eq!(
            row.to_row().get(),
            r#"{"TABLE_NAME":"TRACKS","ROW_ID":"a1","COLUMN_NAME":"PRICE","COLUMN_VALUE":"12.50 EUR","REASON":"incompatible schema conversion from float to string","RECEIVED_AT":"2023-05-12T04:36:50.199Z","UUID_TS":"2024-01-02T03:04:05.678Z"}"#
        );
        let keys: Vec<String> =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(row.to_row().get())
                .unwrap()
                .keys()
                .cloned()
                .collect();
        let mut expected: Vec<String> = DISCARDS_COLUMNS
            .iter()
            .map(|(c, _)| (*c).to_owned())
            .collect();
        expected.sort();
        assert_eq!(keys, expected);
    }
}
