//! The sidecar protocol between `snowpipe-api`'s HTTP client and the emulator: every endpoint, driven over
//! real HTTP, so that the client and the emulator (each written from the protocol page) check each other on
//! the wire. What every backend must do is checked through the boundary trait in `conformance.rs`.

use std::time::Duration;

use std::sync::Arc;

use snowpipe_api::{
    Row, Secret, TableRef, WarehouseType,
    sidecar::{
        Account, HttpClient, HttpConfig,
        wire::{ChannelErrorCode, CreateChannelRequest, InsertRequest},
    },
};
use snowpipe_emulator::{Emulator, demo};

async fn setup() -> (Emulator, HttpClient) {
    let emulator = Emulator::builder()
        .commit_lag(Duration::ZERO)
        .start()
        .await
        .expect("emulator starts");
    emulator
        .control()
        .execute_sql(
            "CREATE TABLE IF NOT EXISTS PUBLIC.EVENTS (ID VARCHAR, N NUMBER, PRICE NUMBER(38,2), AT TIMESTAMP_TZ, OK BOOLEAN, J VARIANT)",
            Some(demo::DATABASE),
            None,
        )
        .expect("table created");
    let client = HttpClient::new(HttpConfig {
        base_url: emulator.base_url(),
        ..HttpConfig::default()
    })
    .unwrap();
    (emulator, client)
}

fn request(table: &str) -> CreateChannelRequest {
    CreateChannelRequest {
        rudder_identifier: "dest".into(),
        partition: "1".into(),
        account: Account {
            account: demo::ACCOUNT.into(),
            user: demo::USER.into(),
            role: demo::ROLE.into(),
            private_key: Secret::new(demo::ENCRYPTED_PRIVATE_KEY_PEM),
            private_key_passphrase: Secret::new(demo::PRIVATE_KEY_PASSPHRASE),
        },
        table: TableRef {
            database: demo::DATABASE.into(),
            schema: "PUBLIC".into(),
            table: table.into(),
            enable_iceberg: false,
        },
    }
}

fn rows(json: &[&str]) -> Vec<Row> {
    json.iter()
        .map(|r| Row::parse((*r).to_owned()).unwrap())
        .collect()
}

#[tokio::test]
async fn channels_open_with_their_schema_and_reopen_invalidates_the_old_id() {
    let (_emulator, client) = setup().await;
    let first = client.create_channel(&request("EVENTS")).await.unwrap();
    assert!(first.success && first.valid, "{first:?}");
    let schema = first.warehouse_schema();
    assert_eq!(schema["ID"], WarehouseType::String);
    assert_eq!(schema["N"], WarehouseType::Int);
    assert_eq!(schema["PRICE"], WarehouseType::Float);
    assert_eq!(schema["AT"], WarehouseType::Datetime);
    assert_eq!(schema["OK"], WarehouseType::Boolean);
    assert_eq!(schema["J"], WarehouseType::Json);

    let second = client.create_channel(&request("EVENTS")).await.unwrap();
    assert_ne!(first.channel_id, second.channel_id);
    assert!(
        !client.get_channel(&first.channel_id).await.unwrap().valid,
        "the older id turns invalid"
    );
    assert!(client.get_channel(&second.channel_id).await.unwrap().valid);
}

#[tokio::test]
async fn missing_objects_and_bad_keys_are_refused_with_their_codes() {
    let (_emulator, client) = setup().await;
    let missing_table = client.create_channel(&request("NOPE")).await.unwrap();
    assert_eq!(
        missing_table.error_code(),
        Some(ChannelErrorCode::TableDoesNotExistOrNotAuthorized)
    );
    let mut missing_schema = request("EVENTS");
    missing_schema.table.schema = "NOPE".into();
    let response = client.create_channel(&missing_schema).await.unwrap();
    assert_eq!(
        response.error_code(),
        Some(ChannelErrorCode::SchemaDoesNotExistOrNotAuthorized)
    );
    let mut wrong_passphrase = request("EVENTS");
    wrong_passphrase.account.private_key_passphrase = Secret::new("wrong");
    let response = client.create_channel(&wrong_passphrase).await.unwrap();
    assert!(!response.success);
    // A key that cannot be decrypted is a validation error, as the SDK reports it.
    assert_eq!(
        response.error_code(),
        Some(ChannelErrorCode::Validation),
        "{response:?}"
    );
    assert!(!response.snowflake_api_message.is_empty());
}

#[tokio::test]
async fn inserts_commit_and_status_reports_offsets() {
    let (emulator, client) = setup().await;
    let channel = client.create_channel(&request("EVENTS")).await.unwrap();
    let insert = InsertRequest {
        rows: rows(&[
            r#"{"ID":"a","N":1,"OK":true}"#,
            r#"{"id":"b","n":2,"PRICE":9.5}"#,
        ]),
        offset: "7".into(),
    };
    let inserted = client
        .insert(
            &channel.channel_id,
            &Arc::from(insert.rows.clone()),
            &insert.offset,
        )
        .await
        .unwrap();
    assert!(inserted.response.success, "{inserted:?}");
    assert!(inserted.body_bytes > 0);
    let status = client.channel_status(&channel.channel_id).await.unwrap();
    assert_eq!(
        (
            status.offset.as_str(),
            status.latest_inserted_offset.as_str()
        ),
        ("7", "7")
    );
    let committed = emulator
        .control()
        .rows(demo::DATABASE, "PUBLIC", "EVENTS")
        .unwrap();
    assert_eq!(
        committed.len(),
        2,
        "column names match case-insensitively: {committed:?}"
    );

    let bulk = client
        .bulk_status(&[channel.channel_id.clone(), "unknown-id".to_owned()])
        .await
        .unwrap();
    assert_eq!(bulk.statuses[&channel.channel_id].offset, "7");
    assert_eq!(bulk.not_found, ["unknown-id"]);
}

#[tokio::test]
async fn bad_rows_are_reported_per_row_as_data() {
    let (_emulator, client) = setup().await;
    let channel = client.create_channel(&request("EVENTS")).await.unwrap();
    let insert = InsertRequest {
        rows: rows(&[
            r#"{"ID":"a"}"#,
            r#"{"ID":"b","UNKNOWN":1}"#,
            r#"{"ID":"c","N":"not a number"}"#,
        ]),
        offset: "3".into(),
    };
    let inserted = client
        .insert(
            &channel.channel_id,
            &Arc::from(insert.rows.clone()),
            &insert.offset,
        )
        .await
        .unwrap();
    assert!(!inserted.response.success);
    assert_eq!(inserted.response.code, "ERR_SCHEMA_CONFLICT");
    let extra = inserted
        .response
        .errors
        .iter()
        .find(|e| e.row_index == 1)
        .expect("row 1 is reported");
    assert_eq!(extra.extra_col_names, ["UNKNOWN"]);
    assert!(
        inserted.response.errors.iter().any(|e| e.row_index == 2),
        "{inserted:?}"
    );
}

#[tokio::test]
async fn a_restart_loses_channels_and_uncommitted_rows() {
    let (emulator, client) = setup().await;
    let control = emulator.control();
    control.set_commit_lag(Duration::from_secs(3600));
    let channel = client.create_channel(&request("EVENTS")).await.unwrap();
    let insert = InsertRequest {
        rows: rows(&[r#"{"ID":"a"}"#]),
        offset: "5".into(),
    };
    client
        .insert(
            &channel.channel_id,
            &Arc::from(insert.rows.clone()),
            &insert.offset,
        )
        .await
        .unwrap();
    control.restart();
    let error = client
        .insert(
            &channel.channel_id,
            &Arc::from(insert.rows.clone()),
            &insert.offset,
        )
        .await
        .unwrap_err();
    assert!(error.is_channel_not_found(), "{error}");
    assert!(
        client
            .channel_status(&channel.channel_id)
            .await
            .unwrap_err()
            .is_channel_not_found()
    );
    assert_eq!(
        client
            .bulk_status(std::slice::from_ref(&channel.channel_id))
            .await
            .unwrap()
            .not_found,
        std::slice::from_ref(&channel.channel_id)
    );
    assert!(
        control
            .rows(demo::DATABASE, "PUBLIC", "EVENTS")
            .unwrap()
            .is_empty()
    );
    let reopened = client.create_channel(&request("EVENTS")).await.unwrap();
    let status = client.channel_status(&reopened.channel_id).await.unwrap();
    assert_eq!(
        (
            status.offset.as_str(),
            status.latest_inserted_offset.as_str()
        ),
        ("", "")
    );
}

#[tokio::test]
async fn delete_sync_and_async_forget_the_channel() {
    let (_emulator, client) = setup().await;
    let a = client.create_channel(&request("EVENTS")).await.unwrap();
    client.delete_channel(&a.channel_id, true).await.unwrap();
    let b = client.create_channel(&request("EVENTS")).await.unwrap();
    client.delete_channel(&b.channel_id, false).await.unwrap();
    let status = client
        .bulk_status(&[a.channel_id.clone(), b.channel_id.clone()])
        .await
        .unwrap();
    let gone = |id: &str| {
        status.not_found.iter().any(|n| n == id)
            || status.statuses.get(id).is_some_and(|s| !s.valid)
    };
    assert!(gone(&a.channel_id) && gone(&b.channel_id), "{status:?}");
}
