//! Property tests of the wire models: every body round-trips through JSON, and the Snowflake type mapping
//! is total and stable.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::value::RawValue;
use snowpipe_api::{
    Row, Secret, TableRef, WarehouseType,
    sidecar::wire::{
        Account, BulkStatusResponse, ChannelResponse, ColumnInfo, CreateChannelRequest,
        InsertRequest, InsertResponse, RowError, StatusResponse,
    },
};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[A-Z_]{1,12}", "\\PC{0,16}"]
}

fn column() -> impl Strategy<Value = ColumnInfo> {
    (
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(any::<i64>()),
        proptest::option::of(any::<i64>()),
        proptest::option::of(any::<i64>()),
        any::<bool>(),
    )
        .prop_map(
            |(sf_type, logical_type, precision, scale, length, nullable)| ColumnInfo {
                sf_type,
                logical_type,
                precision,
                scale,
                byte_length: length,
                length,
                nullable,
            },
        )
}

fn channel_response() -> impl Strategy<Value = ChannelResponse> {
    (
        (
            any::<bool>(),
            text(),
            text(),
            text(),
            any::<bool>(),
            any::<bool>(),
        ),
        proptest::collection::btree_map(text(), column(), 0..4),
        (text(), text(), text(), any::<i64>(), any::<i64>(), text()),
    )
        .prop_map(
            |(
                (success, channel_id, channel_name, client_name, valid, deleted),
                table_schema,
                rest,
            )| {
                let (
                    error,
                    code,
                    snowflake_sdk_code,
                    snowflake_api_http_code,
                    snowflake_api_status_code,
                    message,
                ) = rest;
                ChannelResponse {
                    success,
                    channel_id,
                    channel_name,
                    client_name,
                    valid,
                    deleted,
                    table_schema,
                    error,
                    code,
                    snowflake_sdk_code,
                    snowflake_api_http_code,
                    snowflake_api_status_code,
                    snowflake_api_message: message,
                }
            },
        )
}

fn create_request() -> impl Strategy<Value = CreateChannelRequest> {
    (
        (text(), text()),
        (text(), text(), text(), text(), text()),
        (text(), text(), text(), any::<bool>()),
    )
        .prop_map(
            |(
                (rudder_identifier, partition),
                (account, user, role, key, pass),
                (database, schema, table, iceberg),
            )| {
                CreateChannelRequest {
                    rudder_identifier,
                    partition,
                    account: Account {
                        account,
                        user,
                        role,
                        private_key: Secret::new(key),
                        private_key_passphrase: Secret::new(pass),
                    },
                    table: TableRef {
                        database,
                        schema,
                        table,
                        enable_iceberg: iceberg,
                    },
                }
            },
        )
}

fn status() -> impl Strategy<Value = StatusResponse> {
    (any::<bool>(), any::<bool>(), text(), text()).prop_map(
        |(success, valid, offset, latest_inserted_offset)| StatusResponse {
            success,
            valid,
            offset,
            latest_inserted_offset,
        },
    )
}

fn row() -> impl Strategy<Value = Box<RawValue>> {
    proptest::collection::btree_map(
        "[A-Z_]{1,8}",
        prop_oneof![
            any::<i64>().prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::from),
            text().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
        ],
        0..5,
    )
    .prop_map(|fields| RawValue::from_string(serde_json::to_string(&fields).unwrap()).unwrap())
}

fn round_trip<T>(value: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
}

const NUMBER_TYPES: [&str; 7] = [
    "NUMBER", "DECIMAL", "NUMERIC", "INT", "INTEGER", "BIGINT", "SMALLINT",
];
const KNOWN: [(&str, WarehouseType); 19] = [
    ("FLOAT", WarehouseType::Float),
    ("FLOAT4", WarehouseType::Float),
    ("FLOAT8", WarehouseType::Float),
    ("DOUBLE", WarehouseType::Float),
    ("REAL", WarehouseType::Float),
    ("DOUBLE PRECISION", WarehouseType::Float),
    ("BOOLEAN", WarehouseType::Boolean),
    ("TEXT", WarehouseType::String),
    ("VARCHAR", WarehouseType::String),
    ("CHAR", WarehouseType::String),
    ("CHARACTER", WarehouseType::String),
    ("STRING", WarehouseType::String),
    ("BINARY", WarehouseType::String),
    ("VARBINARY", WarehouseType::String),
    ("TIMESTAMP_NTZ", WarehouseType::Datetime),
    ("DATE", WarehouseType::Datetime),
    ("TIMESTAMP_TZ", WarehouseType::Datetime),
    ("TIMESTAMP_LTZ", WarehouseType::Datetime),
    ("VARIANT", WarehouseType::Json),
];

proptest! {
    #[test]
    fn channel_responses_round_trip(response in channel_response()) {
        prop_assert_eq!(round_trip(&response), response);
    }

    #[test]
    fn create_requests_round_trip(request in create_request()) {
        prop_assert_eq!(round_trip(&request), request);
    }

    #[test]
    fn statuses_round_trip(statuses in proptest::collection::btree_map(text(), status(), 0..4),
                           not_found in proptest::collection::vec(text(), 0..4), success in any::<bool>()) {
        let bulk = BulkStatusResponse { success, statuses, not_found };
        prop_assert_eq!(round_trip(&bulk), bulk);
    }

    #[test]
    fn inserts_round_trip(rows in proptest::collection::vec(row(), 0..6), offset in text(),
                          success in any::<bool>(), code in text(), messages in proptest::collection::vec(text(), 0..3)) {
        let request = InsertRequest { rows: rows.into_iter().map(Row::from).collect(), offset };
        prop_assert_eq!(round_trip(&request), request);
        let errors: Vec<RowError> = messages.into_iter().enumerate().map(|(i, message)| RowError {
            row_index: i64::try_from(i).unwrap(),
            message,
            extra_col_names: vec!["X".into()],
            ..RowError::default()
        }).collect();
        let response = InsertResponse { success, code, errors };
        prop_assert_eq!(round_trip(&response), response);
    }

    #[test]
    fn number_types_are_int_or_float_by_scale(base in proptest::sample::select(NUMBER_TYPES.to_vec()),
                                              precision in 0i64..=38, scale in -3i64..=37, lower in any::<bool>()) {
        let name = format!("{base}({precision},{scale})");
        let name = if lower { name.to_lowercase() } else { name };
        let expected = if scale > 0 { WarehouseType::Float } else { WarehouseType::Int };
        prop_assert_eq!(WarehouseType::from_snowflake(&name, Some(scale)), Some(expected));
        // Without a scale field, the one in the type string decides.
        prop_assert_eq!(WarehouseType::from_snowflake(&name, None), Some(expected));
        prop_assert_eq!(WarehouseType::from_snowflake(base, None), Some(WarehouseType::Int));
    }

    #[test]
    fn known_types_ignore_their_arguments(index in 0..KNOWN.len(), args in "\\PC{0,12}", scale in any::<Option<i64>>()) {
        let (base, expected) = KNOWN[index];
        prop_assert_eq!(WarehouseType::from_snowflake(base, scale), Some(expected));
        prop_assert_eq!(WarehouseType::from_snowflake(&format!("{base}({args}"), scale), Some(expected));
    }

    #[test]
    fn any_type_string_maps_without_panicking_and_stably(name in "\\PC{0,24}", scale in any::<Option<i64>>()) {
        let first = WarehouseType::from_snowflake(&name, scale);
        prop_assert_eq!(first, WarehouseType::from_snowflake(&name, scale));
        let base = name.split('(').next().unwrap_or("").trim().to_ascii_uppercase();
        let known = NUMBER_TYPES.contains(&base.as_str()) || KNOWN.iter().any(|(k, _)| *k == base)
            || matches!(base.as_str(), "DATETIME" | "TIME" | "TIMESTAMP");
        prop_assert_eq!(first.is_some(), known, "{} -> {:?}", name, first);
    }
}

#[test]
fn unmapped_columns_are_left_out_of_the_warehouse_schema() {
    let mut table_schema = BTreeMap::new();
    table_schema.insert(
        "GEO".to_owned(),
        ColumnInfo {
            sf_type: Some("GEOGRAPHY".into()),
            ..ColumnInfo::default()
        },
    );
    table_schema.insert("NONE".to_owned(), ColumnInfo::default());
    table_schema.insert(
        "OK".to_owned(),
        ColumnInfo {
            sf_type: Some("BOOLEAN".into()),
            ..ColumnInfo::default()
        },
    );
    let response = ChannelResponse {
        table_schema,
        ..ChannelResponse::default()
    };
    assert_eq!(
        response.warehouse_schema().into_iter().collect::<Vec<_>>(),
        [("OK".to_owned(), WarehouseType::Boolean)]
    );
}
