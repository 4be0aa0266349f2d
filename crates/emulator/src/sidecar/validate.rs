//! Row validation on insert, as the ingest SDK does it against the channel's table schema: unknown
//! columns, missing or null NOT NULL columns, and values a column's type cannot hold. A request is taken
//! whole or not at all, so a rejected insert never half-commits (the manager retries the whole batch).

use std::{borrow::Cow, sync::Arc};

use serde::Serialize;

use super::column_keys::KeyResolver;
use crate::store::{Field, Row, RowWriter, TableSchema};

/// One row's problems, in the service's `errors` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RowError {
    pub(crate) row_index: usize,
    pub(crate) message: String,
    pub(crate) extra_col_names: Option<Vec<String>>,
    pub(crate) missing_not_null_col_names: Option<Vec<String>>,
    pub(crate) null_value_for_not_null_col_names: Option<Vec<String>>,
}

/// Code of an insert rejected for unknown, missing or null-but-required columns.
pub(crate) const SCHEMA_CONFLICT: &str = "ERR_SCHEMA_CONFLICT";
/// Code of an insert rejected only for values that do not fit their columns.
pub(crate) const INVALID_VALUE: &str = "ERR_VALIDATION_ERROR";

/// Why an insert was rejected: the answer's `code` and per-row errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    pub(crate) code: &'static str,
    pub(crate) errors: Vec<RowError>,
}

/// A row's keys and values as read, in the order given; kept between rows only for its capacity.
pub(crate) type Pairs<'de> = Vec<(Cow<'de, str>, Field<'de>)>;

/// Checks an insert's rows one at a time, as they are read, against the channel's schema; at the end
/// answers the rows normalised (column names and types as the table has them) or every row's problems.
///
/// The answer is the one a `serde_json::Map` per row gave when rows were read whole: keys visited in
/// sorted order, and of keys given twice exactly, the last one. A row is first tried in the order
/// given, which decides nothing when every key names a distinct column and every value fits; any other
/// row is checked again the careful way, so that which spelling of a column counts and the order of
/// its messages stay the same.
pub(crate) struct Validator<'s> {
    schema: &'s Arc<TableSchema>,
    keys: KeyResolver<'s>,
    /// The rows accepted so far (none once a row is refused: the insert is refused whole).
    writer: RowWriter,
    /// Per column, the pass that last gave it a value, so marks need no clearing between rows.
    given: Vec<u64>,
    pass: u64,
    not_null: Vec<usize>,
    errors: Vec<RowError>,
    schema_conflict: bool,
    next_index: usize,
}

impl<'s> Validator<'s> {
    pub(crate) fn new(schema: &'s Arc<TableSchema>) -> Self {
        Self {
            schema,
            keys: KeyResolver::new(schema),
            writer: RowWriter::default(),
            given: vec![0; schema.columns.len()],
            pass: 0,
            not_null: (0..schema.columns.len())
                .filter(|&i| !schema.columns[i].nullable)
                .collect(),
            errors: Vec::new(),
            schema_conflict: false,
            next_index: 0,
        }
    }

    /// Checks the next row; `pairs` may come back reordered.
    pub(crate) fn row(&mut self, pairs: &mut Pairs<'_>) {
        let row_index = self.next_index;
        self.next_index += 1;
        if self.try_as_given(pairs) {
            self.accept();
        } else {
            self.check(row_index, pairs);
        }
    }

    /// The rows normalised, or why the insert is refused.
    pub(crate) fn finish(mut self) -> Result<Vec<Row>, Rejected> {
        if self.errors.is_empty() {
            Ok(self.writer.finish(self.schema))
        } else {
            Err(Rejected {
                code: if self.schema_conflict {
                    SCHEMA_CONFLICT
                } else {
                    INVALID_VALUE
                },
                errors: self.errors,
            })
        }
    }

    fn start_pass(&mut self) -> u64 {
        self.writer.clear();
        self.pass += 1;
        self.pass
    }

    /// Normalises a row whose keys name distinct columns and whose values all fit; `false` for any
    /// other row (without saying why).
    fn try_as_given(&mut self, pairs: &Pairs<'_>) -> bool {
        let pass = self.start_pass();
        let schema: &TableSchema = self.schema;
        for (key, value) in pairs {
            let Some(col) = self.keys.resolve(key) else {
                return false;
            };
            if self.given[col] == pass {
                return false;
            }
            self.given[col] = pass;
            let column = &schema.columns[col];
            if value.is_null() {
                if !column.nullable {
                    return false;
                }
                self.writer.push(col, &Field::Null);
                continue;
            }
            match column.ty.coerce(value) {
                Ok(v) => self.writer.push(col, &v),
                Err(_) => return false,
            }
        }
        self.not_null.iter().all(|&c| self.given[c] == pass)
    }

    /// Checks a row as a `Map` of it was checked: keys sorted, the last of equal keys, every problem
    /// reported.
    fn check(&mut self, row_index: usize, pairs: &mut Pairs<'_>) {
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        // Of equal keys, the first now is the last given (the sort is stable).
        pairs.dedup_by(|later, first| later.0 == first.0);
        let pass = self.start_pass();
        let schema: &TableSchema = self.schema;
        let (mut extra, mut null_for_not_null, mut bad_values) =
            (Vec::new(), Vec::new(), Vec::new());
        for (key, value) in pairs.iter() {
            let Some(col) = self.keys.resolve(key) else {
                extra.push(key.as_ref().to_owned());
                continue;
            };
            let column = &schema.columns[col];
            if self.given[col] == pass {
                bad_values.push(format!("column {} is given more than once", column.name));
                continue;
            }
            if value.is_null() {
                if !column.nullable {
                    null_for_not_null.push(column.name.clone());
                }
                self.given[col] = pass;
                self.writer.push(col, &Field::Null);
                continue;
            }
            match column.ty.coerce(value) {
                Ok(v) => {
                    self.given[col] = pass;
                    self.writer.push(col, &v);
                }
                Err(reason) => bad_values.push(format!(
                    "Value cannot be ingested into Snowflake column {} of type {}, reason: {reason}",
                    column.name,
                    column.ty.sql_name()
                )),
            }
        }
        let missing: Vec<String> = self
            .not_null
            .iter()
            .filter(|&&c| self.given[c] != pass)
            .map(|&c| schema.columns[c].name.clone())
            .collect();
        // Sorted, so answers do not depend on how the JSON object orders keys.
        extra.sort();
        if extra.is_empty()
            && missing.is_empty()
            && null_for_not_null.is_empty()
            && bad_values.is_empty()
        {
            self.accept();
            return;
        }
        let mut parts = Vec::new();
        if !extra.is_empty() {
            parts.push(format!(
                "Extra columns: {extra:?}. Columns not present in the table shouldn't be specified"
            ));
        }
        if !missing.is_empty() {
            parts.push(format!("Missing columns: {missing:?}. Values for all non-nullable columns must be specified"));
        }
        if !null_for_not_null.is_empty() {
            parts.push(format!(
                "Not-nullable columns with null values: {null_for_not_null:?}"
            ));
        }
        parts.extend(bad_values);
        self.schema_conflict |=
            !(extra.is_empty() && missing.is_empty() && null_for_not_null.is_empty());
        // The insert is refused whole: rows already normalised are of no more use.
        self.writer.discard();
        self.errors.push(RowError {
            row_index,
            message: format!(
                "The given row cannot be converted to the internal format: {}, rowIndex:{row_index}",
                parts.join(". ")
            ),
            extra_col_names: (!extra.is_empty()).then_some(extra),
            missing_not_null_col_names: (!missing.is_empty()).then_some(missing),
            null_value_for_not_null_col_names: (!null_for_not_null.is_empty()).then_some(null_for_not_null),
        });
    }

    fn accept(&mut self) {
        if self.errors.is_empty() {
            self.writer.end_row();
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::store::{Column, ColumnType};

    fn schema() -> TableSchema {
        TableSchema {
            columns: vec![
                Column {
                    name: "ID".to_owned(),
                    ty: ColumnType::Varchar { length: 100 },
                    nullable: false,
                },
                Column {
                    name: "PRICE".to_owned(),
                    ty: ColumnType::Number {
                        precision: 38,
                        scale: 2,
                    },
                    nullable: true,
                },
                Column {
                    name: "odd col".to_owned(),
                    ty: ColumnType::Boolean,
                    nullable: true,
                },
            ],
        }
    }

    /// Validates rows as an insert does: read from a request body.
    fn validate(schema: &TableSchema, rows: &Value) -> Result<Vec<Row>, Rejected> {
        let body = json!({"rows": rows, "offset": "1"}).to_string();
        let schema = Arc::new(schema.clone());
        let read = crate::sidecar::insert_body::parse(body.as_bytes(), Some(&schema)).unwrap();
        read.rows.unwrap()
    }

    #[test]
    fn accepts_and_normalises() {
        let got = validate(
            &schema(),
            &json!([{"id": "a", "Price": "1.234", "\"odd col\"": "yes"}]),
        )
        .unwrap();
        assert_eq!(
            got[0].to_json(),
            json!({"ID": "a", "PRICE": 1.23, "odd col": true})
        );
    }

    #[test]
    fn extra_columns_are_a_schema_conflict() {
        let err = validate(
            &schema(),
            &json!([{"ID": "a"}, {"ID": "b", "UNKNOWN": 1, "ODD COL": true}]),
        )
        .unwrap_err();
        assert_eq!(err.code, SCHEMA_CONFLICT);
        assert_eq!(err.errors.len(), 1);
        assert_eq!(err.errors[0].row_index, 1);
        assert_eq!(
            err.errors[0].extra_col_names,
            Some(vec!["ODD COL".to_owned(), "UNKNOWN".to_owned()])
        );
    }

    #[test]
    fn not_null_columns() {
        let err = validate(&schema(), &json!([{"PRICE": 1}, {"ID": null}])).unwrap_err();
        assert_eq!(err.code, SCHEMA_CONFLICT);
        assert_eq!(
            err.errors[0].missing_not_null_col_names,
            Some(vec!["ID".to_owned()])
        );
        assert_eq!(
            err.errors[1].null_value_for_not_null_col_names,
            Some(vec!["ID".to_owned()])
        );
    }

    #[test]
    fn bad_values_are_row_errors() {
        let err = validate(&schema(), &json!([{"ID": "a", "PRICE": "cheap"}])).unwrap_err();
        assert_eq!(err.code, INVALID_VALUE);
        assert!(
            err.errors[0].message.contains("PRICE of type NUMBER(38,2)"),
            "{}",
            err.errors[0].message
        );
        assert_eq!(err.errors[0].extra_col_names, None);
        let err = validate(&schema(), &json!([{"ID": "a", "id": "b"}])).unwrap_err();
        assert!(err.errors[0].message.contains("more than once"));
    }
}
