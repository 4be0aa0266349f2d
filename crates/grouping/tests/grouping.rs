//! Grouping by table: input order within a table, schema union with the first type winning, offsets and
//! table order.

mod common;

use std::path::Path;

use common::{line, options};
use snowpipe_grouping::{Batch, WarehouseType};

fn read(lines: &[String]) -> Batch {
    let file = lines.join("\n");
    Batch::read_from(file.as_bytes(), Path::new("t.json"), &options()).unwrap()
}

#[test]
fn events_are_grouped_by_table_in_input_order() {
    let batch = read(&[
        line(4, "A", "{}", "{}"),
        line(2, "B", "{}", "{}"),
        line(9, "A", "{}", "{}"),
        line(1, "A", "{}", "{}"),
    ]);
    let tables: Vec<_> = batch
        .tables()
        .iter()
        .map(|t| (t.name(), t.offset(), t.job_ids()))
        .collect();
    assert_eq!(tables, [("B", 2, vec![2]), ("A", 9, vec![4, 9, 1])]);
    assert_eq!(batch.len(), 4);
    assert_eq!(batch.job_ids(), [2, 4, 9, 1]);
}

#[test]
fn the_schema_is_the_union_with_the_first_type_winning() {
    let batch = read(&[
        line(1, "T", r#"{"ID":"string","N":"int"}"#, "{}"),
        line(2, "T", r#"{"N":"float","M":"boolean"}"#, "{}"),
        line(3, "T", r#"{"ID":"string","N":"int"}"#, "{}"),
        line(4, "T", r#"{"Z":"json","ID":"int"}"#, "{}"),
    ]);
    let schema: Vec<_> = batch.tables()[0].schema().iter().collect();
    assert_eq!(
        schema,
        [
            ("ID", WarehouseType::String),
            ("N", WarehouseType::Int),
            ("M", WarehouseType::Boolean),
            ("Z", WarehouseType::Json),
        ]
    );
    // Each event keeps its own columns.
    let second: Vec<_> = batch.tables()[0].events()[1].columns().iter().collect();
    assert_eq!(
        second,
        [("N", WarehouseType::Float), ("M", WarehouseType::Boolean)]
    );
}

#[test]
fn tables_with_equal_offsets_are_ordered_by_name() {
    let batch = read(&[
        line(5, "ZED", "{}", "{}"),
        line(5, "ALPHA", "{}", "{}"),
        line(1, "MID", "{}", "{}"),
    ]);
    let order: Vec<_> = batch.tables().iter().map(|t| t.name()).collect();
    assert_eq!(order, ["MID", "ALPHA", "ZED"]);
}

#[test]
fn negative_job_ids_are_events_too() {
    let batch = read(&[line(-3, "T", "{}", "{}"), line(-7, "T", "{}", "{}")]);
    assert_eq!(batch.tables()[0].offset(), -3);
    assert_eq!(batch.tables()[0].min_job_id(), -7);
}

#[test]
fn uuid_ts_is_set_only_where_the_columns_have_it_and_counts_in_the_size() {
    let batch = read(&[
        line(
            1,
            "T",
            r#"{"ID":"string","UUID_TS":"datetime"}"#,
            r#"{"ID":"a","UUID_TS":"1999-01-01"}"#,
        ),
        line(
            2,
            "T",
            r#"{"ID":"string"}"#,
            r#"{"ID":"b","UUID_TS":"1999-01-01"}"#,
        ),
    ]);
    let events = batch.tables()[0].events();
    assert_eq!(
        events[0].data(),
        r#"{"ID":"a","UUID_TS":"2024-01-02T03:04:05.678Z"}"#
    );
    assert_eq!(events[0].size(), 47);
    assert_eq!(events[1].data(), r#"{"ID":"b","UUID_TS":"1999-01-01"}"#);
}

#[test]
fn blank_lines_and_crlf_are_tolerated_and_the_last_line_needs_no_newline() {
    let file = format!(
        "\n{}\r\n   \n\n{}",
        line(1, "T", "{}", "{}"),
        line(2, "T", "{}", "{}")
    );
    let batch = Batch::read_from(file.as_bytes(), Path::new("t.json"), &options()).unwrap();
    assert_eq!(batch.job_ids(), [1, 2]);
}

#[test]
fn data_values_are_forwarded_byte_for_byte() {
    // Only the whitespace between the row's top-level tokens goes; keys, values and escapes stay as read.
    let data = r#"{ "ID" : "a\u00e9" ,"N":1.50e1, "O":{"x": [ 1 ,2 ]} }"#;
    let batch = read(&[line(1, "T", r#"{"ID":"string"}"#, data)]);
    assert_eq!(
        batch.tables()[0].events()[0].data(),
        r#"{"ID":"a\u00e9","N":1.50e1,"O":{"x": [ 1 ,2 ]}}"#
    );
}

#[test]
fn batches_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Batch>();
    assert_send_sync::<snowpipe_grouping::Event>();
    assert_send_sync::<snowpipe_grouping::Partition>();
    assert_send_sync::<snowpipe_grouping::ReadError>();
}
