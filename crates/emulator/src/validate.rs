//! Row validation on insert, as the ingest SDK does it against the channel's table schema: unknown
//! columns, missing or null NOT NULL columns, and values a column's type cannot hold. A request is taken
//! whole or not at all, so a rejected insert never half-commits (the manager retries the whole batch).

use serde::Serialize;
use serde_json::Value;

use crate::{catalog::TableSchema, types::Row};

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

/// Checks every row; on success answers the rows normalised to the table's column names and types.
pub(crate) fn validate(
    schema: &TableSchema,
    rows: Vec<serde_json::Map<String, Value>>,
) -> Result<Vec<Row>, Rejected> {
    let mut out = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    let mut schema_conflict = false;
    for (row_index, row) in rows.into_iter().enumerate() {
        let mut normalised = Row::new();
        let (mut extra, mut null_for_not_null, mut bad_values) =
            (Vec::new(), Vec::new(), Vec::new());
        for (key, value) in row {
            let Some(column) = schema.column(&key) else {
                extra.push(key);
                continue;
            };
            if normalised.contains_key(&column.name) {
                bad_values.push(format!("column {} is given more than once", column.name));
                continue;
            }
            if value.is_null() {
                if !column.nullable {
                    null_for_not_null.push(column.name.clone());
                }
                normalised.insert(column.name.clone(), Value::Null);
                continue;
            }
            match column.ty.coerce(&value) {
                Ok(v) => {
                    normalised.insert(column.name.clone(), v);
                }
                Err(reason) => bad_values.push(format!(
                    "Value cannot be ingested into Snowflake column {} of type {}, reason: {reason}",
                    column.name,
                    column.ty.sql_name()
                )),
            }
        }
        let missing: Vec<String> = schema
            .columns
            .iter()
            .filter(|c| !c.nullable && !normalised.contains_key(&c.name))
            .map(|c| c.name.clone())
            .collect();
        // Sorted, so answers do not depend on how the JSON map orders keys.
        extra.sort();
        if extra.is_empty()
            && missing.is_empty()
            && null_for_not_null.is_empty()
            && bad_values.is_empty()
        {
            out.push(normalised);
            continue;
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
        schema_conflict |=
            !(extra.is_empty() && missing.is_empty() && null_for_not_null.is_empty());
        errors.push(RowError {
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
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Rejected {
            code: if schema_conflict {
                SCHEMA_CONFLICT
            } else {
                INVALID_VALUE
            },
            errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{catalog::Column, types::ColumnType};

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

    fn rows(v: Value) -> Vec<serde_json::Map<String, Value>> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn accepts_and_normalises() {
        let got = validate(
            &schema(),
            rows(json!([{"id": "a", "Price": "1.234", "\"odd col\"": "yes"}])),
        )
        .unwrap();
        assert_eq!(
            Value::Object(got[0].clone()),
            json!({"ID": "a", "PRICE": 1.23, "odd col": true})
        );
    }

    #[test]
    fn extra_columns_are_a_schema_conflict() {
        let err = validate(
            &schema(),
            rows(json!([{"ID": "a"}, {"ID": "b", "UNKNOWN": 1, "ODD COL": true}])),
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
        let err = validate(&schema(), rows(json!([{"PRICE": 1}, {"ID": null}]))).unwrap_err();
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
        let err = validate(&schema(), rows(json!([{"ID": "a", "PRICE": "cheap"}]))).unwrap_err();
        assert_eq!(err.code, INVALID_VALUE);
        assert!(
            err.errors[0].message.contains("PRICE of type NUMBER(38,2)"),
            "{}",
            err.errors[0].message
        );
        assert_eq!(err.errors[0].extra_col_names, None);
        let err = validate(&schema(), rows(json!([{"ID": "a", "id": "b"}]))).unwrap_err();
        assert!(err.errors[0].message.contains("more than once"));
    }
}
