//! Coercing an event's row to its channel table's schema: converted values, nulls for what cannot be
//! converted, a discard row for each of those, arrays as JSON text. Rows that need none of it are untouched.

use std::{collections::HashMap, sync::Arc};

use bytes::Bytes;
use serde_json::{Value, value::RawValue};
use snowpipe_grouping::{
    Constraints, Event, Schema, UploadTime, WarehouseType, raw::fields_of_str,
};

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
    /// Why the row cannot go into the table at all (a null in a `NOT NULL` column): its job is aborted.
    pub violation: Option<String>,
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
    constraints: Option<&'a Constraints>,
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
            constraints: None,
            upload_time,
            plans: HashMap::new(),
        }
    }

    /// The same coercer, also checking values against what the table's columns can hold (a `VARCHAR(n)`'s
    /// length, a `NUMBER(p,s)`'s range: such a value goes the discards way) and nulls against `NOT NULL`
    /// columns (the row cannot go: [`Coercion::violation`]).
    #[must_use]
    pub fn with_constraints(mut self, constraints: &'a Constraints) -> Self {
        self.constraints = (!constraints.is_empty()).then_some(constraints);
        self
    }

    /// Coerces one event; see [`Coercer`].
    #[must_use]
    pub fn coerce(&mut self, event: &Event) -> Coercion {
        let plan = self.plan(event.shared_columns());
        if plan.mismatched.is_empty() && !event.has_array_value() && self.constraints.is_none() {
            return Coercion::default();
        }
        let data = event.data();
        let mut out = String::new();
        let mut copied = 0;
        let mut discards = Vec::new();
        let mut violation = None;
        let mut seen_not_null = 0;
        for field in fields_of_str(data) {
            let name = field.name();
            let conversion = match plan.find(&name) {
                Some(m) => convert(field.value, m.event_type, m.table_type),
                None => Conversion::Keep,
            };
            let mut replacement = match conversion {
                Conversion::Keep
                    if field.value.starts_with('[')
                        && event.columns().contains(&name)
                        && self.schema.contains(&name) =>
                {
                    Some(Value::String(field.value.to_owned()).to_string())
                }
                Conversion::Keep => None,
                Conversion::Replace(value) => Some(value.to_string()),
                Conversion::Discard => {
                    if let Some(m) = plan.find(&name) {
                        let reason = discard_reason(m.table_type, m.event_type);
                        discards.extend(self.discard_row(event, &name, field.value, reason));
                    }
                    Some("null".to_owned())
                }
            };
            if let Some(constraint) = self.constraints.and_then(|c| c.get(&name)) {
                let value = replacement.as_deref().unwrap_or(field.value);
                if let Some(why) = (value != "null")
                    .then(|| constraint.violation(value))
                    .flatten()
                {
                    discards.extend(self.discard_row(event, &name, field.value, why));
                    replacement = Some("null".to_owned());
                }
                if constraint.not_null {
                    seen_not_null += 1;
                    if replacement.as_deref().unwrap_or(field.value).trim() == "null" {
                        violation.get_or_insert_with(|| {
                            format!(
                                "column {name} of table {} is NOT NULL and the event's value for it is null or cannot be stored",
                                event.table()
                            )
                        });
                    }
                }
            }
            let Some(replacement) = replacement else {
                continue;
            };
            out.push_str(&data[copied..field.value_span.start]);
            out.push_str(&replacement);
            copied = field.value_span.end;
        }
        if let Some(constraints) = self.constraints
            && violation.is_none()
            && seen_not_null < constraints.not_null().count()
        {
            let present: Vec<String> = fields_of_str(data).map(|f| f.name().into_owned()).collect();
            if let Some(missing) = constraints
                .not_null()
                .find(|c| !present.iter().any(|p| p == c))
            {
                violation = Some(format!(
                    "column {missing} of table {} is NOT NULL and the event has no value for it",
                    event.table()
                ));
            }
        }
        if copied == 0 {
            return Coercion {
                violation,
                ..Coercion::default()
            };
        }
        out.push_str(&data[copied..]);
        let converted = RawValue::from_string(out)
            .expect("a JSON object with values replaced by JSON values is JSON");
        Coercion {
            converted: Some(converted),
            discards,
            violation,
        }
    }

    /// Coerces one event and returns the row to insert with its discard rows, or why the row cannot go
    /// into the table at all ([`Coercion::violation`]).
    ///
    /// # Errors
    ///
    /// The violation, when the row puts a null into a `NOT NULL` column.
    pub fn coerce_checked(&mut self, event: Event) -> Result<(Bytes, Vec<DiscardRow>), String> {
        let coercion = self.coerce(&event);
        if let Some(violation) = coercion.violation {
            return Err(violation);
        }
        let row = match coercion.converted {
            Some(converted) => Bytes::from(Box::<str>::from(converted).into_string()),
            None => event.into_data(),
        };
        Ok((row, coercion.discards))
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
    fn discard_row(
        &self,
        event: &Event,
        column: &str,
        raw: &str,
        reason: String,
    ) -> Option<DiscardRow> {
        let id = event.id()?;
        let received_at = event.received_at()?;
        let id_value: Value = serde_json::from_str(id).ok()?;
        let value: Value = serde_json::from_str(raw).ok()?;
        Some(DiscardRow {
            table_name: event.table().to_owned(),
            row_id: (!id_value.is_null()).then(|| text_form(id, &id_value).into_owned()),
            column_name: column.to_owned(),
            column_value: text_form(raw, &value).into_owned(),
            reason,
            received_at: RawValue::from_string(received_at.to_owned()).ok()?,
            uuid_ts: self.upload_time.clone(),
        })
    }
}
