//! Coercing an event's row to its channel table's schema: converted values, nulls for what cannot be
//! converted, a discard row for each of those, arrays as JSON text. Rows that need none of it are untouched.

use std::{collections::HashMap, sync::Arc};

use bytes::Bytes;
use serde_json::{Value, value::RawValue};
use snowpipe_grouping::{Event, Schema, UploadTime, WarehouseType, raw::fields_of_str};

use crate::{
    DiscardRow,
    convert::{Conversion, convert, discard_reason},
    text::text_form,
};

/// The outcome of coercing one event.
#[derive(Debug, Default)]
pub struct Coercion {
    /// The rewritten row, or `None` when the event's row goes into the insert as it is.
    pub converted: Option<Box<RawValue>>,
    /// Discard rows for the values that became null (none when the row lacks `ID` or `RECEIVED_AT`).
    pub discards: Vec<DiscardRow>,
}

impl Coercion {
    /// Whether the event's row goes as it is.
    #[must_use]
    pub fn is_unchanged(&self) -> bool {
        self.converted.is_none()
    }
}

/// Coerces one event against `table_schema` (the channel's table schema); see [`Coercer`] to coerce many.
#[must_use]
pub fn coerce(event: &Event, table_schema: &Schema, upload_time: &UploadTime) -> Coercion {
    Coercer::new(table_schema, upload_time).coerce(event)
}

/// Coerces the events of one table against the channel's table schema.
///
/// For each column of the event's own `columns` whose type differs from the table's (see
/// [`convert`](crate::convert())), the value in `data` is converted, or becomes null with a discard row
/// when the row has both `ID` and `RECEIVED_AT`. Then any array value of a column in both the event's
/// columns and the table's schema is sent as its JSON text. Columns in `data` that are not in the table's
/// schema or not in the event's columns are left alone; a column named more than once in `data` is
/// handled at each place.
///
/// Events sharing a `columns` set (see [`Event::shared_columns`]) share the work of comparing it with the
/// table's schema, so keep one coercer per table for a batch.
///
/// ```
/// use serde_json::value::RawValue;
/// use snowpipe_discards::Coercer;
/// use snowpipe_grouping::{Event, Schema, UploadTime, WarehouseType::*};
/// use time::macros::datetime;
///
/// let time = UploadTime::new(datetime!(2024-01-02 03:04:05.678 UTC));
/// let table: Schema = [("ID", String), ("RECEIVED_AT", Datetime), ("N", Int), ("OK", Boolean)].into_iter().collect();
/// let columns: Schema = [("ID", String), ("RECEIVED_AT", Datetime), ("N", Float), ("OK", String)].into_iter().collect();
/// let data = RawValue::from_string(r#"{"ID":"a1","RECEIVED_AT":"2023-05-12T04:36:50.199Z","N":2.7,"OK":"yes"}"#.into()).unwrap();
/// let event = Event::new(1001, "TRACKS", columns, &data, &time).unwrap();
///
/// let mut coercer = Coercer::new(&table, &time);
/// let coercion = coercer.coerce(&event);
/// assert_eq!(
///     coercion.converted.unwrap().get(),
///     r#"{"ID":"a1","RECEIVED_AT":"2023-05-12T04:36:50.199Z","N":2,"OK":null}"#
/// );
/// assert_eq!(
///     coercion.discards[0].to_row().get(),
///     r#"{"TABLE_NAME":"TRACKS","ROW_ID":"a1","COLUMN_NAME":"OK","COLUMN_VALUE":"yes","REASON":"incompatible schema conversion from boolean to string","RECEIVED_AT":"2023-05-12T04:36:50.199Z","UUID_TS":"2024-01-02T03:04:05.678Z"}"#
/// );
/// ```
#[derive(Debug)]
pub struct Coercer<'a> {
    schema: &'a Schema,
    upload_time: &'a UploadTime,
    // Keyed by the columns set's address; the Arc kept beside it stops the address being reused.
    plans: HashMap<usize, (Arc<Schema>, Arc<Plan>)>,
}

/// The columns of one `columns` set whose type differs from the table's.
#[derive(Debug)]
struct Plan {
    mismatched: Vec<Mismatch>,
}

#[derive(Debug)]
struct Mismatch {
    column: Box<str>,
    event_type: WarehouseType,
    table_type: WarehouseType,
}

impl Plan {
    fn new(columns: &Schema, table: &Schema) -> Self {
        let mismatched = columns
            .iter()
            .filter_map(|(column, event_type)| {
                let table_type = table.get(column)?;
                (!event_type.same_as(table_type)).then(|| Mismatch {
                    column: column.into(),
                    event_type,
                    table_type,
                })
            })
            .collect();
        Self { mismatched }
    }

    fn find(&self, column: &str) -> Option<&Mismatch> {
        self.mismatched.iter().find(|m| &*m.column == column)
    }
}

impl<'a> Coercer<'a> {
    /// A coercer for events of one table whose channel has `table_schema`; `upload_time` goes into discard
    /// rows' `UUID_TS`.
    #[must_use]
    pub fn new(table_schema: &'a Schema, upload_time: &'a UploadTime) -> Self {
        Self {
            schema: table_schema,
            upload_time,
            plans: HashMap::new(),
        }
    }

    /// Coerces one event; see [`Coercer`].
    #[must_use]
    pub fn coerce(&mut self, event: &Event) -> Coercion {
        let plan = self.plan(event.shared_columns());
        if plan.mismatched.is_empty() && !event.has_array_value() {
            return Coercion::default();
        }
        let data = event.data();
        let mut out = String::new();
        let mut copied = 0;
        let mut discards = Vec::new();
        for field in fields_of_str(data) {
            let name = field.name();
            let conversion = match plan.find(&name) {
                Some(m) => convert(field.value, m.event_type, m.table_type),
                None => Conversion::Keep,
            };
            let replacement = match conversion {
                Conversion::Keep
                    if field.value.starts_with('[')
                        && event.columns().contains(&name)
                        && self.schema.contains(&name) =>
                {
                    Value::String(field.value.to_owned()).to_string()
                }
                Conversion::Keep => continue,
                Conversion::Replace(value) => value.to_string(),
                Conversion::Discard => {
                    if let Some(m) = plan.find(&name) {
                        discards.extend(self.discard_row(event, m, field.value));
                    }
                    "null".to_owned()
                }
            };
            out.push_str(&data[copied..field.value_span.start]);
            out.push_str(&replacement);
            copied = field.value_span.end;
        }
        if copied == 0 {
            return Coercion::default();
        }
        out.push_str(&data[copied..]);
        let converted = RawValue::from_string(out)
            .expect("a JSON object with values replaced by JSON values is JSON");
        Coercion {
            converted: Some(converted),
            discards,
        }
    }

    /// Coerces one event and returns the row to insert (the event's own row when unchanged, the text of a
    /// JSON object either way) with its discard rows.
    #[must_use]
    pub fn coerce_into(&mut self, event: Event) -> (Bytes, Vec<DiscardRow>) {
        let coercion = self.coerce(&event);
        let row = match coercion.converted {
            Some(converted) => Bytes::from(Box::<str>::from(converted).into_string()),
            None => event.into_data(),
        };
        (row, coercion.discards)
    }

    fn plan(&mut self, columns: &Arc<Schema>) -> Arc<Plan> {
        let key = Arc::as_ptr(columns) as usize;
        let schema = self.schema;
        self.plans
            .entry(key)
            .or_insert_with(|| (columns.clone(), Arc::new(Plan::new(columns, schema))))
            .1
            .clone()
    }

    /// The discard row for a value, when the row has both `ID` and `RECEIVED_AT`.
    fn discard_row(&self, event: &Event, mismatch: &Mismatch, raw: &str) -> Option<DiscardRow> {
        let id = event.id()?;
        let received_at = event.received_at()?;
        let id_value: Value = serde_json::from_str(id).ok()?;
        let value: Value = serde_json::from_str(raw).ok()?;
        Some(DiscardRow {
            table_name: event.table().to_owned(),
            row_id: (!id_value.is_null()).then(|| text_form(id, &id_value).into_owned()),
            column_name: mismatch.column.to_string(),
            column_value: text_form(raw, &value).into_owned(),
            reason: discard_reason(mismatch.table_type, mismatch.event_type),
            received_at: RawValue::from_string(received_at.to_owned()).ok()?,
            uuid_ts: self.upload_time.clone(),
        })
    }
}
