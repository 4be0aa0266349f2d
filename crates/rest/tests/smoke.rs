//! The client against the emulator over HTTP: discovery, token exchange, open, append, commit, status.

use std::time::Duration;

use snowpipe_api::{Backend, BackendExt, ChannelRef, OpenOptions, Row, TableRef};
use snowpipe_emulator::{Emulator, demo};
use snowpipe_rest::{Credentials, RestClient, RestConfig};

#[tokio::test]
async fn rows_land_through_discovery_token_open_append_and_commit() {
    let emulator = Emulator::builder()
        .commit_lag(Duration::ZERO)
        .start()
        .await
        .unwrap();
    emulator
        .control()
        .execute_sql(
            "CREATE SCHEMA IF NOT EXISTS \"DEMO_DB\".\"EVENTS\"",
            None,
            None,
        )
        .unwrap();
    emulator
        .control()
        .execute_sql(
            "CREATE TABLE \"DEMO_DB\".\"EVENTS\".\"TRACKS\" (\"ID\" VARCHAR, \"N\" NUMBER)",
            None,
            None,
        )
        .unwrap();
    let mut config = RestConfig::new(
        demo::ACCOUNT,
        demo::USER,
        Credentials::key_pair(demo::PRIVATE_KEY_PEM, ""),
    );
    config.role = Some(demo::ROLE.into());
    config.account_url = Some(emulator.base_url());
    let client = RestClient::new(config).unwrap();
    assert_eq!(client.ingest_url().await.unwrap(), emulator.base_url());
    let channel = ChannelRef {
        table: TableRef {
            database: "DEMO_DB".into(),
            schema: "EVENTS".into(),
            table: "TRACKS".into(),
            enable_iceberg: false,
        },
        destination: "dest-1".into(),
        instance: "0".into(),
    };
    let opened = client
        .open_channel(&channel, &OpenOptions::wait())
        .await
        .unwrap();
    assert_eq!(opened.status.as_ref().unwrap().committed, None);
    let rows = vec![
        Row::parse(r#"{"ID":"a","N":1}"#).unwrap(),
        Row::parse(r#"{"ID":"b","N":2}"#).unwrap(),
    ];
    let appended = client
        .append_rows(&opened.handle, rows, "0000000001")
        .await
        .unwrap();
    assert_eq!(appended.requests.len(), 1);
    let status = client
        .channel_status(&opened.handle)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.committed.as_deref(), Some("0000000001"));
    let landed = emulator
        .control()
        .rows("DEMO_DB", "EVENTS", "TRACKS")
        .unwrap();
    assert_eq!(landed.len(), 2);
}
