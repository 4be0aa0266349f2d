//! Property test of insert validation: rows read and checked in one pass (`insert_body` and
//! `validate::Validator`) give exactly the answer of the straightforward way they were checked before,
//! kept here as the reference — each row read whole into a `serde_json::Map`, its keys visited in
//! sorted order. Keys come in several spellings of the same column, unknown, repeated exactly (where
//! the `Map` kept the last), and values fit or not, so every branch of the answer is exercised.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{
    insert_body,
    validate::{INVALID_VALUE, Rejected, RowError, SCHEMA_CONFLICT},
};
use crate::store::{Column, ColumnType, TableSchema};

fn schema() -> TableSchema {
    let column = |name: &str, ty, nullable| Column {
        name: name.to_owned(),
        ty,
        nullable,
    };
    TableSchema {
        columns: vec![
            column("ID", ColumnType::Varchar { length: 5 }, false),
            column(
                "PRICE",
                ColumnType::Number {
                    precision: 5,
                    scale: 2,
                },
                true,
            ),
            column("odd col", ColumnType::Boolean, true),
            column("TS", ColumnType::TimestampTz { scale: 9 }, false),
            column(
                "N",
                ColumnType::Number {
                    precision: 38,
                    scale: 0,
                },
                true,
            ),
            column("V", ColumnType::Variant, true),
        ],
    }
}

const KEYS: [&str; 18] = [
    "ID",
    "id",
    " Id ",
    "\"ID\"",
    "\"id\"",
    "PRICE",
    "price",
    "\"odd col\"",
    "ODD COL",
    "odd col",
    "TS",
    "ts",
    "n",
    "N",
    "V",
    "UNKNOWN",
    "x\"y",
    "é",
];

fn values() -> Vec<Value> {
    vec![
        json!(null),
        json!("a"),
        json!("abcdef"),
        json!(5),
        json!(-3),
        json!(1.5),
        json!("12.345"),
        json!("cheap"),
        json!(true),
        json!("yes"),
        json!([1]),
        json!({"a": 1}),
        json!("2024-05-12T04:36:00.000Z"),
        json!("2024-05-12 04:36:00 +02:00"),
        json!("yesterday"),
        json!(1000),
        json!("é\"x"),
    ]
}

/// The validation as it was, on rows read whole.
fn reference(schema: &TableSchema, rows: Vec<Map<String, Value>>) -> Result<Vec<Value>, Rejected> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut schema_conflict = false;
    for (row_index, row) in rows.into_iter().enumerate() {
        let mut normalised = Map::new();
        let (mut extra, mut null_for_not_null, mut bad_values) =
            (Vec::new(), Vec::new(), Vec::new());
        for (key, value) in row {
            let Some(column) = schema.column_index(&key).map(|i| &schema.columns[i]) else {
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
            match column.ty.coerce_value(&value) {
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
        extra.sort();
        if extra.is_empty()
            && missing.is_empty()
            && null_for_not_null.is_empty()
            && bad_values.is_empty()
        {
            out.push(Value::Object(normalised));
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

/// Rows as (key, value) index pairs; a key may repeat within a row, as JSON text allows.
fn rows() -> impl Strategy<Value = Vec<Vec<(usize, usize)>>> {
    let n_values = values().len();
    let pair = (0..KEYS.len(), 0..n_values);
    proptest::collection::vec(proptest::collection::vec(pair, 0..8), 0..5)
}

/// The JSON text of the rows, written by hand so repeated keys stay repeated.
fn rows_text(rows: &[Vec<(usize, usize)>]) -> String {
    let values = values();
    let objects: Vec<String> = rows
        .iter()
        .map(|row| {
            let members: Vec<String> = row
                .iter()
                .map(|&(k, v)| format!("{}:{}", Value::from(KEYS[k]), values[v]))
                .collect();
            format!("{{{}}}", members.join(","))
        })
        .collect();
    format!("[{}]", objects.join(","))
}

fn check(rows: &[Vec<(usize, usize)>]) -> Result<(), TestCaseError> {
    let schema = Arc::new(schema());
    let text = rows_text(rows);
    let want = reference(&schema, serde_json::from_str(&text).unwrap());
    let body = format!(r#"{{"rows": {text}, "offset": "1"}}"#);
    let read = insert_body::parse(body.as_bytes(), Some(&schema)).unwrap();
    prop_assert_eq!(read.row_count, rows.len());
    let got = read.rows.unwrap().map(|rows| {
        rows.iter()
            .map(crate::store::Row::to_json)
            .collect::<Vec<_>>()
    });
    prop_assert_eq!(got, want, "{}", text);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn one_pass_validation_answers_as_the_map_based_one(rows in rows()) {
        check(&rows)?;
    }
}

#[test]
fn cases_that_need_the_careful_path() {
    let id = |s: &str| KEYS.iter().position(|k| *k == s).unwrap();
    let value = |v: Value| values().iter().position(|x| *x == v).unwrap();
    let ts = (id("TS"), value(json!("2024-05-12T04:36:00.000Z")));
    for row in [
        // Exact repeats: the last one counts, no complaint.
        vec![
            (id("ID"), value(json!("a"))),
            (id("ID"), value(json!(5))),
            ts,
        ],
        // Two spellings: the first in sorted order counts, the other is reported.
        vec![
            (id("id"), value(json!("a"))),
            (id("ID"), value(json!(5))),
            ts,
        ],
        // A value that does not fit leaves its column missing, and a later spelling may fill it.
        vec![
            (id("ID"), value(json!([1]))),
            (id("id"), value(json!("a"))),
            ts,
        ],
        vec![(id("ID"), value(json!([1]))), ts],
        // Several problems at once, reported in sorted key order.
        vec![
            (id("UNKNOWN"), value(json!(5))),
            (id("price"), value(json!("cheap"))),
            (id("PRICE"), value(json!(1000))),
            (id("TS"), value(json!(null))),
        ],
    ] {
        check(&[row]).unwrap();
    }
}
