//! Coercing whole events: exact rows out, exact discard rows, and rows left alone when nothing changes.

use serde_json::value::RawValue;
use snowpipe_discards::{Coercer, DiscardRow, coerce};
use snowpipe_grouping::{Event, Schema, UploadTime, WarehouseType, WarehouseType::*};
use time::macros::datetime;

fn time() -> UploadTime {
    UploadTime::new(datetime!(2024-01-02 03:04:05.678 UTC))
}

fn schema(columns: &[(&str, WarehouseType)]) -> Schema {
    columns.iter().copied().collect()
}

fn event(columns: &[(&str, WarehouseType)], data: &str) -> Event {
    Event::new(
        42,
        "TRACKS",
        schema(columns),
        &RawValue::from_string(data.to_owned()).unwrap(),
        &time(),
    )
    .unwrap()
}

/// Coerces and returns the row sent (None when unchanged) and the discard rows as JSON.
fn check(
    table: &[(&str, WarehouseType)],
    columns: &[(&str, WarehouseType)],
    data: &str,
) -> (Option<std::string::String>, Vec<std::string::String>) {
    let coercion = coerce(&event(columns, data), &schema(table), &time());
    (
        coercion.converted.map(|row| row.get().to_owned()),
        coercion
            .discards
            .iter()
            .map(|d| d.to_row().get().to_owned())
            .collect(),
    )
}

const ID_AT: &str = r#""ID":"a1","RECEIVED_AT":"2023-05-12T04:36:50.199Z""#;

fn with_id(rest: &str) -> std::string::String {
    format!("{{{ID_AT},{rest}}}")
}

fn ids() -> Vec<(&'static str, WarehouseType)> {
    vec![("ID", String), ("RECEIVED_AT", Datetime)]
}

fn plus(extra: &[(&'static str, WarehouseType)]) -> Vec<(&'static str, WarehouseType)> {
    let mut columns = ids();
    columns.extend_from_slice(extra);
    columns
}

#[test]
fn matching_types_leave_the_row_untouched() {
    let data = with_id(r#""N": 1 , "B":true,"T":"x""#);
    let columns = plus(&[("N", Bigint), ("B", Boolean), ("T", Text)]);
    let table = plus(&[("N", Int), ("B", Boolean), ("T", String)]);
    assert_eq!(check(&table, &columns, &data), (None, vec![]));
}

#[test]
fn values_become_text_in_string_columns() {
    let data = with_id(r#""N":1,"F":1.0,"B":false,"J":{"k":[1]}"#);
    let columns = plus(&[("N", Int), ("F", Float), ("B", Boolean), ("J", Json)]);
    let table = plus(&[("N", String), ("F", Text), ("B", String), ("J", String)]);
    assert_eq!(
        check(&table, &columns, &data),
        (
            Some(with_id(r#""N":"1","F":"1","B":"false","J":{"k":[1]}"#)),
            vec![]
        )
    );
}

#[test]
fn numbers_move_between_int_and_float_columns() {
    let data = with_id(r#""I":3,"F":-3.99"#);
    let columns = plus(&[("I", Int), ("F", Float)]);
    let table = plus(&[("I", Float), ("F", Bigint)]);
    assert_eq!(
        check(&table, &columns, &data),
        (Some(with_id(r#""I":3.0,"F":-3"#)), vec![])
    );
}

#[test]
fn json_columns_take_text_forms_arrays_and_quoted_strings() {
    let data = with_id(r#""N":5,"B":true,"A":[1,"x"],"S":"hi","D":"2023-05-12""#);
    let columns = plus(&[
        ("N", Int),
        ("B", Boolean),
        ("A", String),
        ("S", String),
        ("D", Datetime),
    ]);
    let table = plus(&[
        ("N", Json),
        ("B", Json),
        ("A", Json),
        ("S", Json),
        ("D", Json),
    ]);
    assert_eq!(
        check(&table, &columns, &data),
        (
            Some(with_id(
                r#""N":"5","B":"true","A":"[1,\"x\"]","S":"\"hi\"","D":"\"2023-05-12\"""#
            )),
            vec![]
        )
    );
}

#[test]
fn what_cannot_be_converted_becomes_null_with_a_discard_row() {
    let data = with_id(r#""P":"12.50 EUR","OK":"yes","N":7"#);
    let columns = plus(&[("P", String), ("OK", String), ("N", Int)]);
    let table = plus(&[("P", Float), ("OK", Boolean), ("N", Datetime)]);
    let (row, discards) = check(&table, &columns, &data);
    assert_eq!(row, Some(with_id(r#""P":null,"OK":null,"N":null"#)));
    let expected = |column: &str, value: &str, table_type: &str, event_type: &str| {
        format!(
            r#"{{"TABLE_NAME":"TRACKS","ROW_ID":"a1","COLUMN_NAME":"{column}","COLUMN_VALUE":"{value}","REASON":"incompatible schema conversion from {table_type} to {event_type}","RECEIVED_AT":"2023-05-12T04:36:50.199Z","UUID_TS":"2024-01-02T03:04:05.678Z"}}"#
        )
    };
    assert_eq!(
        discards,
        [
            expected("P", "12.50 EUR", "float", "string"),
            expected("OK", "yes", "boolean", "string"),
            expected("N", "7", "datetime", "int"),
        ]
    );
}

#[test]
fn discard_rows_need_both_id_and_received_at() {
    let columns = [("P", String)];
    let table = [("P", Float)];
    for data in [
        r#"{"P":"x"}"#,
        r#"{"ID":"a","P":"x"}"#,
        r#"{"RECEIVED_AT":"r","P":"x"}"#,
    ] {
        let (row, discards) = check(&table, &columns, data);
        assert_eq!(row.unwrap(), data.replace(r#""P":"x""#, r#""P":null"#));
        assert!(discards.is_empty(), "{data}");
    }
}

#[test]
fn row_id_is_the_text_form_of_id_and_received_at_is_kept_as_is() {
    let coercion = coerce(
        &event(
            &[("P", String)],
            r#"{"ID":17,"RECEIVED_AT":1683866210,"P":"x"}"#,
        ),
        &schema(&[("P", Boolean)]),
        &time(),
    );
    let row: &DiscardRow = &coercion.discards[0];
    assert_eq!(row.row_id.as_deref(), Some("17"));
    assert_eq!(row.received_at.get(), "1683866210");
    let coercion = coerce(
        &event(&[("P", String)], r#"{"ID":null,"RECEIVED_AT":"r","P":"x"}"#),
        &schema(&[("P", Boolean)]),
        &time(),
    );
    assert_eq!(coercion.discards[0].row_id, None);
    assert!(
        coercion.discards[0]
            .to_row()
            .get()
            .contains(r#""ROW_ID":null"#)
    );
}

#[test]
fn nulls_and_absent_values_are_left_alone() {
    let table = plus(&[("P", Boolean), ("Q", Boolean)]);
    let columns = plus(&[("P", String), ("Q", String)]);
    assert_eq!(
        check(&table, &columns, &with_id(r#""P":null"#)),
        (None, vec![])
    );
}

#[test]
fn arrays_go_as_json_text_only_in_columns_of_both_schemas() {
    let data = r#"{"A":[1, 2],"NOT_IN_TABLE":[3],"NOT_IN_COLUMNS":[4],"O":{"x":[5]}}"#;
    let columns = [("A", Json), ("NOT_IN_TABLE", Json), ("O", Json)];
    let table = [("A", Json), ("NOT_IN_COLUMNS", Json), ("O", Json)];
    assert_eq!(
        check(&table, &columns, data),
        (
            Some(
                r#"{"A":"[1, 2]","NOT_IN_TABLE":[3],"NOT_IN_COLUMNS":[4],"O":{"x":[5]}}"#
                    .to_owned()
            ),
            vec![]
        )
    );
    // A row whose only array is outside the rule stays untouched.
    assert_eq!(
        check(&table, &columns, r#"{"NOT_IN_TABLE":[3]}"#),
        (None, vec![])
    );
}

#[test]
fn columns_outside_the_table_or_the_event_are_left_alone() {
    let data = r#"{"X":"text","Y":1.5}"#;
    // X is not in the table; Y is not in the event's columns.
    assert_eq!(check(&[("Y", Int)], &[("X", Int)], data), (None, vec![]));
}

#[test]
fn a_coercer_gives_the_same_answers_and_coerce_into_moves_unchanged_rows() {
    let table = schema(&plus(&[("N", Int)]));
    let upload_time = time();
    let mut coercer = Coercer::new(&table, &upload_time);
    let mismatched = event(&plus(&[("N", Float)]), &with_id(r#""N":2.5"#));
    let matching = event(&plus(&[("N", Int)]), &with_id(r#""N":2"#));
    for _ in 0..3 {
        assert_eq!(
            coercer.coerce(&mismatched).converted.unwrap().get(),
            with_id(r#""N":2"#)
        );
        assert!(coercer.coerce(&matching).is_unchanged());
    }
    let original = matching.data().to_owned();
    let (row, discards) = coercer.coerce_into(matching);
    assert_eq!(&row[..], original.as_bytes());
    assert!(discards.is_empty());
}

#[test]
fn coercers_and_their_output_can_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Coercer<'static>>();
    assert_send_sync::<snowpipe_discards::Coercion>();
    assert_send_sync::<DiscardRow>();
}
