//! Properties: coercion never panics and each mismatched value ends as a value of the table's type or as
//! null with exactly one discard row; rows that need nothing are forwarded byte for byte.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Map, Value, value::RawValue};
use snowpipe_discards::{Coercer, coerce, discard_reason, text_form};
use snowpipe_grouping::{Event, Schema, UploadTime, WarehouseType};
use time::macros::datetime;

fn time() -> UploadTime {
    UploadTime::new(datetime!(2024-01-02 03:04:05.678 UTC))
}

fn arb_type() -> impl Strategy<Value = WarehouseType> {
    prop::sample::select(WarehouseType::ALL.to_vec())
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn event(columns: Schema, data: &str) -> Event {
    Event::new(
        7,
        "T",
        columns,
        &RawValue::from_string(data.to_owned()).unwrap(),
        &time(),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// (3) never panics; a mismatched value ends as a value the table's column takes, or as null with
    /// exactly one discard row when the row has ID and RECEIVED_AT (none otherwise).
    #[test]
    fn coercion_yields_the_table_type_or_null_with_one_discard(
        value in arb_json(),
        event_type in arb_type(),
        table_type in arb_type(),
        has_id in any::<bool>(),
        has_received_at in any::<bool>(),
    ) {
        // The row is written around the value's text, and the value compared as parsed from that same text:
        // float parsing need not round-trip exactly.
        let raw = value.to_string();
        let value: Value = serde_json::from_str(&raw).unwrap();
        let mut fields = Vec::new();
        if has_id {
            fields.push(r#""ID":"row-1""#.to_owned());
        }
        fields.push(format!(r#""C":{raw}"#));
        if has_received_at {
            fields.push(r#""RECEIVED_AT":"2023-05-12T04:36:50.199Z""#.to_owned());
        }
        let text = format!("{{{}}}", fields.join(","));
        let columns: Schema = [("ID", WarehouseType::String), ("C", event_type), ("RECEIVED_AT", WarehouseType::Datetime)].into_iter().collect();
        let table: Schema = [("ID", WarehouseType::String), ("C", table_type), ("RECEIVED_AT", WarehouseType::Datetime)].into_iter().collect();
        let coercion = coerce(&event(columns, &text), &table, &time());

        let row = coercion.converted.as_ref().map_or(text.as_str(), |r| r.get());
        let out: Map<String, Value> = serde_json::from_str(row).expect("the row stays a JSON object");
        prop_assert_eq!(out.len(), usize::from(has_id) + 1 + usize::from(has_received_at));
        if has_id {
            prop_assert_eq!(&out["ID"], "row-1");
        }
        let new = &out["C"];

        if event_type.same_as(table_type) || value.is_null() {
            let expected = if value.is_array() { Value::String(raw) } else { value };
            prop_assert_eq!(new, &expected);
            prop_assert!(coercion.discards.is_empty());
            return Ok(());
        }
        if new.is_null() {
            prop_assert!(matches!(table_type.canonical(), WarehouseType::Int | WarehouseType::Float | WarehouseType::Datetime | WarehouseType::Boolean));
            let expected_rows = usize::from(has_id && has_received_at);
            prop_assert_eq!(coercion.discards.len(), expected_rows);
            if let Some(discard) = coercion.discards.first() {
                prop_assert_eq!(&discard.column_name, "C");
                prop_assert_eq!(&discard.table_name, "T");
                prop_assert_eq!(discard.row_id.as_deref(), Some("row-1"));
                let form = text_form(&raw, &value);
                prop_assert_eq!(discard.column_value.as_str(), form.as_ref());
                prop_assert_eq!(&discard.reason, &discard_reason(table_type, event_type));
                prop_assert_eq!(discard.received_at.get(), "\"2023-05-12T04:36:50.199Z\"");
            }
            return Ok(());
        }
        prop_assert!(coercion.discards.is_empty());
        match table_type.canonical() {
            WarehouseType::String if event_type == WarehouseType::Json && !value.is_array() => prop_assert_eq!(new, &value),
            WarehouseType::String | WarehouseType::Json => prop_assert!(new.is_string(), "{new} for {table_type}"),
            WarehouseType::Float => prop_assert!(new.is_f64(), "{new}"),
            WarehouseType::Int => {
                prop_assert!(new.is_i64() || new.is_u64(), "{new}");
                if let Some(f) = value.as_f64().filter(|_| value.is_f64()) {
                    prop_assert_eq!(new.as_f64().unwrap(), f.trunc());
                }
            }
            other => prop_assert!(false, "{other} columns take no converted values, got {new}"),
        }
    }

    /// (4) rows with no mismatched column and no array to rewrite are forwarded byte for byte, as the event holds them.
    #[test]
    fn rows_needing_nothing_are_forwarded_byte_for_byte(
        data in prop::collection::btree_map("[A-Z]{1,3}", arb_json(), 0..8),
        types in prop::collection::vec(arb_type(), 8),
        pretty in any::<bool>(),
    ) {
        let data: BTreeMap<String, Value> = data;
        // Columns with array values are kept out of the table's schema: the array rule does not apply there.
        let columns: Schema = data.keys().zip(&types).map(|(k, t)| (k.as_str(), *t)).collect();
        let table: Schema = data
            .iter()
            .zip(&types)
            .filter(|((_, v), _)| !v.is_array())
            .map(|((k, _), t)| (k.as_str(), match t { WarehouseType::Int => WarehouseType::Bigint, WarehouseType::Text => WarehouseType::String, t => *t }))
            .collect();
        let object = Value::Object(data.into_iter().collect());
        let text = if pretty { serde_json::to_string_pretty(&object).unwrap().replace('\n', " ") } else { object.to_string() };
        let upload_time = time();
        let mut coercer = Coercer::new(&table, &upload_time);
        let event = event(columns, &text);
        let read = event.data().to_owned();
        prop_assert!(coercer.coerce(&event).is_unchanged());
        let (row, discards) = coercer.coerce_into(event);
        prop_assert_eq!(&row[..], read.as_bytes());
        prop_assert!(discards.is_empty());
    }
}
