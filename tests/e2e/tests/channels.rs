//! The channel layer against the emulator over HTTP: DDL through the SQL API with key-pair JWTs, schema and
//! table creation on first use, columns added later, and the auth backoff after a wrong key.

use std::{sync::Arc, time::Duration};

use snowpipe_api::{
    Secret,
    sidecar::{Account, HttpClient, HttpConfig, Sidecar},
};
use snowpipe_channels::{
    AuthBackoff, BackoffConfig, ChannelManager, ChannelSettings, Channels, DestinationConfig,
    FailureKind, ManualClock, SqlApiConfig, SqlApiWarehouse,
};
use snowpipe_emulator::{Emulator, Endpoint, demo};
use snowpipe_grouping::{Schema, WarehouseType};

struct Setup {
    emulator: Emulator,
    channels: ChannelManager<Sidecar, SqlApiWarehouse>,
    clock: Arc<ManualClock>,
}

async fn setup(private_key: &str, passphrase: &str) -> Setup {
    let emulator = Emulator::builder()
        .commit_lag(Duration::ZERO)
        .start()
        .await
        .expect("emulator starts");
    let config = DestinationConfig {
        account: demo::ACCOUNT.to_lowercase(),
        warehouse: demo::WAREHOUSE.into(),
        database: demo::DATABASE.into(),
        user: demo::USER.into(),
        role: demo::ROLE.into(),
        private_key: Secret::new(private_key),
        private_key_passphrase: Secret::new(passphrase),
        namespace: "Analytics Events".into(),
        enable_iceberg: false,
    };
    let clock = Arc::new(ManualClock::default());
    let mut sql = SqlApiConfig::for_destination(&config);
    sql.base_url = Some(emulator.base_url());
    let warehouse = SqlApiWarehouse::new(sql).unwrap();
    let client = HttpClient::new(HttpConfig {
        base_url: emulator.base_url(),
        ..HttpConfig::default()
    })
    .unwrap();
    let api = Sidecar::new(
        client,
        Account {
            account: config.account.clone(),
            user: config.user.clone(),
            role: config.role.clone(),
            private_key: config.private_key.clone(),
            private_key_passphrase: config.private_key_passphrase.clone(),
        },
    );
    let backoff = AuthBackoff::new(BackoffConfig::default(), clock.clone());
    let channels = ChannelManager::new(
        api,
        warehouse,
        ChannelSettings::new("dest", "1", &config),
        backoff,
    );
    Setup {
        emulator,
        channels,
        clock,
    }
}

fn schema(columns: &[(&str, WarehouseType)]) -> Schema {
    columns.iter().copied().collect()
}

fn statements(emulator: &Emulator) -> Vec<String> {
    emulator
        .control()
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == Endpoint::Statements)
        .filter_map(|c| c.statement)
        .collect()
}

#[tokio::test]
async fn schema_and_table_are_created_on_first_use_and_columns_added_later() {
    let setup = setup(
        demo::ENCRYPTED_PRIVATE_KEY_PEM,
        demo::PRIVATE_KEY_PASSPHRASE,
    )
    .await;
    let first = schema(&[
        ("ID", WarehouseType::String),
        ("Odd \"Name\"", WarehouseType::Bigint),
    ]);
    let channel = setup
        .channels
        .initialize_with_schema("TRACKS", &first)
        .await
        .unwrap();
    assert_eq!(channel.schema.get("Odd \"Name\""), Some(WarehouseType::Int));
    let table = setup
        .emulator
        .control()
        .table(demo::DATABASE, "ANALYTICS_EVENTS", "TRACKS")
        .expect("table created");
    assert_eq!(table.columns.len(), 2, "{table:?}");

    let mut wider = first.clone();
    wider.insert_if_absent("PLAN", WarehouseType::String);
    wider.insert_if_absent("AT", WarehouseType::Datetime);
    let reopened = setup
        .channels
        .initialize_with_schema("TRACKS", &wider)
        .await
        .unwrap();
    assert_ne!(
        reopened.id(),
        channel.id(),
        "the channel was reopened to see the new columns"
    );
    assert!(reopened.schema.contains("PLAN") && reopened.schema.contains("AT"));
    let ddl = statements(&setup.emulator);
    assert_eq!(ddl.len(), 3, "schema, table, one ALTER: {ddl:#?}");
    assert!(ddl[2].starts_with("ALTER TABLE"), "{ddl:#?}");

    // Nothing new: the cached channel, no DDL, no service call.
    let calls = setup.emulator.control().calls().len();
    setup
        .channels
        .initialize_with_schema("TRACKS", &wider)
        .await
        .unwrap();
    assert_eq!(setup.emulator.control().calls().len(), calls);
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_failure_that_starts_the_backoff() {
    let wrong_key = include_str!("../../../crates/channels/tests/fixtures/rsa_key.p8");
    let setup = setup(wrong_key, "").await;
    let columns = schema(&[("ID", WarehouseType::String)]);
    let error = setup
        .channels
        .initialize_with_schema("TRACKS", &columns)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), FailureKind::Auth, "{error}");
    assert_eq!(setup.channels.backoff().failures(), 1);
    assert!(setup.channels.backoff().check().is_err());
    setup.clock.advance(Duration::from_secs(1));
    assert!(
        setup.channels.backoff().check().is_ok(),
        "the first wait is one second"
    );
}

#[tokio::test]
async fn a_refused_token_on_ddl_starts_the_backoff_and_stops_further_ddl() {
    let setup = setup(demo::PRIVATE_KEY_PEM, "").await;
    setup.emulator.control().fail_next(
        Endpoint::Statements,
        1,
        snowpipe_emulator::Failure::Status { status: 401 },
    );
    let columns = schema(&[("ID", WarehouseType::String)]);
    let error = setup
        .channels
        .initialize_with_schema("TRACKS", &columns)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), FailureKind::Auth, "{error}");
    let ddl_calls = setup
        .emulator
        .control()
        .calls()
        .iter()
        .filter(|c| c.endpoint == Endpoint::Statements)
        .count();
    let error = setup
        .channels
        .initialize_with_schema("TRACKS", &columns)
        .await
        .unwrap_err();
    assert!(error.is_backoff(), "{error}");
    let after = setup
        .emulator
        .control()
        .calls()
        .iter()
        .filter(|c| c.endpoint == Endpoint::Statements)
        .count();
    assert_eq!(after, ddl_calls, "no warehouse call while backing off");
    setup.clock.advance(Duration::from_secs(1));
    setup
        .channels
        .initialize_with_schema("TRACKS", &columns)
        .await
        .unwrap();
}
