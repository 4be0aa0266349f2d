//! Properties: the partition is exact and keeps order, included rows fit the limit, and rows are forwarded
//! byte for byte unless `UUID_TS` must be set.

mod common;

use std::{collections::BTreeMap, path::Path};

use common::{line, options, sized, time};
use proptest::prelude::*;
use serde_json::{Map, Value, value::RawValue};
use snowpipe_grouping::{Batch, Event, raw::fields};

const TABLES: [&str; 4] = ["A", "B", "C", "USERS"];

/// (table, row size) per event; job ids are the positions shifted to include negative ones.
fn arb_events() -> impl Strategy<Value = Vec<(usize, usize)>> {
    prop::collection::vec((0..TABLES.len(), 8usize..80), 0..60)
}

fn build(spec: &[(usize, usize)]) -> Vec<Event> {
    spec.iter()
        .zip(-10i64..)
        .map(|(&(table, size), job)| sized(job, TABLES[table], size))
        .collect()
}

fn table_of(events: &[Event], job: i64) -> &str {
    events
        .iter()
        .find(|e| e.job_id() == job)
        .map(Event::table)
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (1) included ∪ overflowed ∪ oversized = input, pairwise disjoint, order within a table kept.
    #[test]
    fn partition_is_exact_and_keeps_order(spec in arb_events(), limit in 2usize..300) {
        let input = build(&spec);
        let partition = Batch::from_events(input.clone()).partition(limit);
        let included: Vec<i64> = partition.included_job_ids();
        let overflowed = partition.overflowed_job_ids();
        let oversized = partition.oversized_job_ids();

        let mut all: Vec<i64> = included.iter().chain(&overflowed).chain(&oversized).copied().collect();
        prop_assert_eq!(all.len(), input.len(), "an event is missing or counted twice");
        all.sort_unstable();
        let mut expected: Vec<i64> = input.iter().map(Event::job_id).collect();
        expected.sort_unstable();
        prop_assert_eq!(all, expected);

        for table in TABLES {
            let order: Vec<i64> = input.iter().filter(|e| e.table() == table).map(Event::job_id).collect();
            let position = |job: &i64| order.iter().position(|j| j == job).unwrap();
            for part in [&included, &overflowed, &oversized] {
                let in_table: Vec<usize> = part.iter().filter(|j| table_of(&input, **j) == table).map(position).collect();
                prop_assert!(in_table.windows(2).all(|w| w[0] < w[1]), "order lost in {table}: {in_table:?}");
            }
            // Nothing of a table is uploaded after its first overflowed event.
            let first_overflow = overflowed.iter().filter(|j| table_of(&input, **j) == table).map(position).min();
            let last_included = included.iter().filter(|j| table_of(&input, **j) == table).map(position).max();
            if let (Some(first), Some(last)) = (first_overflow, last_included) {
                prop_assert!(last < first, "{table}: included {last} after overflow {first}");
            }
        }
        for event in &partition.oversized {
            prop_assert!(event.size() + 2 > limit);
        }
        for event in partition.overflowed.iter().chain(partition.included.iter().flat_map(|t| t.events())) {
            prop_assert!(event.size() + 2 <= limit);
        }
    }

    /// (2) every included table's rows array fits the limit, and the first overflowed row would not have.
    #[test]
    fn included_rows_fit_the_limit(spec in arb_events(), limit in 2usize..300) {
        let input = build(&spec);
        let partition = Batch::from_events(input).partition(limit);
        for table in &partition.included {
            let rows: Vec<&str> = table.events().iter().map(|e| e.data()).collect();
            let array = format!("[{}]", rows.join(","));
            prop_assert!(array.len() <= limit, "{}: {} > {limit}", table.name(), array.len());
            prop_assert_eq!(table.offset(), table.events().iter().map(Event::job_id).max().unwrap());
            if let Some(next) = partition.overflowed.iter().find(|e| e.table() == table.name()) {
                prop_assert!(array.len() + 1 + next.size() > limit, "{} could have taken job {}", table.name(), next.job_id());
            }
        }
        let offsets: Vec<(i64, &str)> = partition.included.iter().map(|t| (t.offset(), t.name())).collect();
        prop_assert!(offsets.windows(2).all(|w| w[0] < w[1]), "tables out of order: {offsets:?}");
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        "[a-z\"\\\\\u{e9}\u{1F600} ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[A-Z_]{1,4}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_data() -> impl Strategy<Value = BTreeMap<String, Value>> {
    prop::collection::btree_map("[A-Z_]{1,8}", arb_json(), 0..8)
}

/// The object's JSON text with whitespace between tokens (newlines in pretty output are never inside strings).
fn spaced(object: &Value) -> String {
    serde_json::to_string_pretty(object)
        .unwrap()
        .replace('\n', " ")
}

proptest! {
    /// (4) without `UUID_TS` in the columns, the row read is the input written compactly: its top-level keys
    /// and values byte for byte, in order, with no whitespace between them.
    #[test]
    fn row_values_are_forwarded_byte_for_byte(data in arb_data(), pretty in any::<bool>()) {
        let object = Value::Object(data.into_iter().collect::<Map<_, _>>());
        let text = if pretty { spaced(&object) } else { object.to_string() };
        let file = line(1, "T", r#"{"ID":"string","RECEIVED_AT":"datetime"}"#, &text);
        let batch = Batch::read_from(file.as_bytes(), Path::new("p"), &options()).unwrap();
        let input = RawValue::from_string(text).unwrap();
        let compact: Vec<String> = fields(&input)
            .map(|f| format!("{}:{}", Value::from(f.name().as_ref()), f.value))
            .collect();
        let compact = format!("{{{}}}", compact.join(","));
        prop_assert_eq!(batch.tables()[0].events()[0].data(), compact.as_str());
    }

    /// With `UUID_TS` in the columns, the row is the input with `UUID_TS` set and nothing else changed.
    #[test]
    fn uuid_ts_changes_only_uuid_ts(data in arb_data(), pretty in any::<bool>(), existing in any::<bool>()) {
        let mut object: Map<String, Value> = data.into_iter().collect();
        if existing {
            object.insert("UUID_TS".into(), Value::from("old"));
        }
        let object = Value::Object(object);
        let text = if pretty { spaced(&object) } else { object.to_string() };
        let file = line(1, "T", r#"{"UUID_TS":"datetime"}"#, &text);
        let batch = Batch::read_from(file.as_bytes(), Path::new("p"), &options()).unwrap();
        let event = &batch.tables()[0].events()[0];
        let mut expected: Value = serde_json::from_str(&text).unwrap();
        expected["UUID_TS"] = Value::from(time().as_str());
        prop_assert_eq!(serde_json::from_str::<Value>(event.data()).unwrap(), expected);
        prop_assert_eq!(event.size(), event.data().len());
        let id: Option<Value> = event.id().map(|raw| serde_json::from_str(raw).unwrap());
        prop_assert_eq!(id.as_ref(), object.get("ID"));
    }
}
