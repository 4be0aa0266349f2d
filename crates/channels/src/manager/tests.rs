//! Every branch of the channel manager, with mocks of the service and the warehouse.

use std::{sync::Arc, time::Duration};

use mockall::{Sequence, predicate::eq};
use snowpipe_api::{ChannelResponse, ColumnInfo, MockSnowpipeApi, Secret};
use snowpipe_grouping::{Schema, WarehouseType};

use super::*;
use crate::{AuthBackoff, BackoffConfig, FailureKind, ManualClock, MockWarehouse, WarehouseError};

fn settings() -> ChannelSettings {
    let config = DestinationConfig {
        account: "acct".into(),
        database: "DB".into(),
        user: "LOADER".into(),
        role: "ROLE".into(),
        private_key: Secret::new("KEY"),
        namespace: "rudder".into(),
        ..DestinationConfig::default()
    };
    ChannelSettings::new("dest-1", "1", &config)
}

fn opened(id: &str, columns: &[(&str, &str)]) -> ChannelResponse {
    ChannelResponse {
        success: true,
        valid: true,
        channel_id: id.to_owned(),
        table_schema: columns
            .iter()
            .map(|(name, ty)| {
                (
                    (*name).to_owned(),
                    ColumnInfo {
                        sf_type: Some((*ty).to_owned()),
                        ..ColumnInfo::default()
                    },
                )
            })
            .collect(),
        ..ChannelResponse::default()
    }
}

fn refused(code: &str, http: i64) -> ChannelResponse {
    ChannelResponse {
        success: false,
        code: code.to_owned(),
        error: "refused".into(),
        snowflake_api_http_code: http,
        snowflake_api_message: "Snowflake says no".into(),
        ..ChannelResponse::default()
    }
}

fn schema(columns: &[(&str, WarehouseType)]) -> Schema {
    columns.iter().copied().collect()
}

struct Fixture {
    api: MockSnowpipeApi,
    warehouse: MockWarehouse,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            api: MockSnowpipeApi::new(),
            warehouse: MockWarehouse::new(),
            clock: Arc::new(ManualClock::default()),
        }
    }

    fn build(
        self,
    ) -> (
        ChannelManager<MockSnowpipeApi, MockWarehouse>,
        Arc<ManualClock>,
    ) {
        let backoff = AuthBackoff::new(BackoffConfig::default(), self.clock.clone());
        (
            ChannelManager::new(self.api, self.warehouse, settings(), backoff),
            self.clock,
        )
    }

    fn expect_open(&mut self, seq: &mut Sequence, response: ChannelResponse) {
        self.api
            .expect_create_channel()
            .withf(|request| {
                request.table.database == "DB"
                    && request.table.schema == "RUDDER"
                    && request.table.table == "TRACKS"
                    && request.rudder_identifier == "dest-1"
                    && request.partition == "1"
            })
            .times(1)
            .in_sequence(seq)
            .return_once(move |_| Ok(response));
    }
}

fn event_schema() -> Schema {
    schema(&[("ID", WarehouseType::String), ("N", WarehouseType::Bigint)])
}

#[tokio::test]
async fn a_cached_channel_needs_no_service_call() {
    let mut fx = Fixture::new();
    let mut seq = Sequence::new();
    fx.expect_open(
        &mut seq,
        opened("ch-1", &[("ID", "VARCHAR(10)"), ("N", "NUMBER(38,0)")]),
    );
    let (manager, _) = fx.build();
    let first = manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    assert_eq!(first.id, "ch-1");
    assert_eq!(
        first.schema,
        schema(&[("ID", WarehouseType::String), ("N", WarehouseType::Int)])
    );
    // The mock allows one create: a second call would panic.
    let second = manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(manager.cached("TRACKS").unwrap().id, "ch-1");
}

#[tokio::test]
async fn a_missing_schema_creates_schema_and_table_then_reopens() {
    let mut fx = Fixture::new();
    let mut seq = Sequence::new();
    fx.expect_open(
        &mut seq,
        refused("ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED", 404),
    );
    fx.warehouse
        .expect_create_schema()
        .with(eq("RUDDER"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    fx.warehouse
        .expect_create_table()
        .withf(|s, t, columns| s == "RUDDER" && t == "TRACKS" && *columns == event_schema())
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    fx.expect_open(&mut seq, opened("ch-2", &[("ID", "TEXT"), ("N", "NUMBER")]));
    let (manager, _) = fx.build();
    assert_eq!(
        manager
            .initialize_with_schema("TRACKS", &event_schema())
            .await
            .unwrap()
            .id,
        "ch-2"
    );
}

#[tokio::test]
async fn a_missing_table_creates_only_the_table() {
    let mut fx = Fixture::new();
    let mut seq = Sequence::new();
    fx.expect_open(
        &mut seq,
        refused("ERR_TABLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED", 404),
    );
    fx.warehouse.expect_create_schema().never();
    fx.warehouse
        .expect_create_table()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    fx.expect_open(&mut seq, opened("ch-3", &[("ID", "TEXT"), ("N", "NUMBER")]));
    let (manager, _) = fx.build();
    assert_eq!(
        manager
            .initialize_with_schema("TRACKS", &event_schema())
            .await
            .unwrap()
            .id,
        "ch-3"
    );
}

#[tokio::test]
async fn schema_missing_then_an_invalid_table_statement_aborts() {
    let mut fx = Fixture::new();
    let mut seq = Sequence::new();
    fx.expect_open(
        &mut seq,
        refused("ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED", 404),
    );
    fx.warehouse
        .expect_create_schema()
        .times(1)
        .returning(|_| Ok(()));
    fx.warehouse
        .expect_create_table()
        .times(1)
        .returning(|_, _, _| {
            Err(WarehouseError::Rejected {
                status: 422,
                code: "001003".into(),
                sql_state: "42000".into(),
                message: "SQL compilation error".into(),
            })
        });
    let (manager, _) = fx.build();
    let error = manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), FailureKind::Abort, "{error}");
    assert!(
        matches!(
            error,
            ChannelError::Warehouse {
                step: DdlStep::CreateTable,
                ..
            }
        ),
        "{error}"
    );
    assert!(manager.cached("TRACKS").is_none());
    assert_eq!(
        manager.backoff().failures(),
        0,
        "an invalid statement is not an auth failure"
    );
}

#[tokio::test]
async fn new_columns_take_one_alter_then_a_delete_and_a_reopen() {
    let mut fx = Fixture::new();
    let mut seq = Sequence::new();
    fx.expect_open(&mut seq, opened("old", &[("ID", "TEXT")]));
    fx.warehouse
        .expect_add_columns()
        .withf(|s, t, columns| {
            s == "RUDDER" && t == "TRACKS" && *columns == schema(&[("N", WarehouseType::Bigint)])
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    fx.api
        .expect_delete_channel()
        .with(eq("old"), eq(true))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    fx.expect_open(&mut seq, opened("new", &[("ID", "TEXT"), ("N", "NUMBER")]));
    fx.warehouse.expect_create_table().never();
    let (manager, _) = fx.build();
    let channel = manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    assert_eq!(channel.id, "new");
    assert!(channel.schema.contains("N"));
    assert_eq!(manager.cached("TRACKS").unwrap().id, "new");
}

#[tokio::test]
async fn refusals_are_classified_by_code_and_snowflake_status() {
    for (code, http, kind) in [
        ("ERR_AUTHENTICATION_FAILED", 401, FailureKind::Auth),
        ("ERR_VALIDATION_ERROR", 400, FailureKind::Auth),
        (
            "ERR_ROLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            403,
            FailureKind::Auth,
        ),
        (
            "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            404,
            FailureKind::Auth,
        ),
        ("ERR_SCHEMA_CONFLICT", 400, FailureKind::Abort),
        ("ERR_UNKNOWN_ERROR", 400, FailureKind::Abort),
        ("ERR_UNKNOWN_ERROR", 500, FailureKind::Retry),
        ("ERR_SOMETHING_NEW", 0, FailureKind::Retry),
    ] {
        let mut fx = Fixture::new();
        let mut seq = Sequence::new();
        fx.expect_open(&mut seq, refused(code, http));
        let (manager, _) = fx.build();
        let error = manager
            .initialize_with_schema("TRACKS", &event_schema())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind, "{code} {http}: {error}");
        assert!(
            error.to_string().contains("Snowflake says no"),
            "the reason carries Snowflake's message: {error}"
        );
        let expected_failures = u32::from(kind == FailureKind::Auth);
        assert_eq!(manager.backoff().failures(), expected_failures, "{code}");
    }
}

#[tokio::test]
async fn while_backing_off_no_ddl_reaches_the_warehouse() {
    let mut fx = Fixture::new();
    let mut seq = Sequence::new();
    fx.expect_open(
        &mut seq,
        refused("ERR_TABLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED", 404),
    );
    fx.warehouse
        .expect_create_table()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| {
            Err(WarehouseError::Unauthorized {
                status: 401,
                code: "390144".into(),
                message: "JWT token is invalid.".into(),
            })
        });
    fx.expect_open(
        &mut seq,
        refused("ERR_TABLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED", 404),
    );
    // The second attempt must not reach the warehouse: `times(1)` above would fail the test.
    fx.expect_open(
        &mut seq,
        refused("ERR_TABLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED", 404),
    );
    fx.warehouse
        .expect_create_table()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    fx.expect_open(&mut seq, opened("ch", &[("ID", "TEXT"), ("N", "NUMBER")]));
    let (manager, clock) = fx.build();

    let first = manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap_err();
    assert_eq!(first.kind(), FailureKind::Auth);
    assert!(
        first.to_string().contains("JWT token is invalid"),
        "{first}"
    );

    let second = manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap_err();
    assert!(second.is_backoff(), "{second}");
    assert_eq!(second.kind(), FailureKind::Retry);
    assert!(
        second.to_string().contains("JWT token is invalid"),
        "the backoff names its cause: {second}"
    );

    clock.advance(Duration::from_secs(1));
    assert_eq!(
        manager
            .initialize_with_schema("TRACKS", &event_schema())
            .await
            .unwrap()
            .id,
        "ch"
    );
}

#[tokio::test]
async fn a_cached_channel_without_new_columns_works_during_backoff() {
    let mut fx = Fixture::new();
    let mut seq = Sequence::new();
    fx.expect_open(&mut seq, opened("ch", &[("ID", "TEXT"), ("N", "NUMBER")]));
    let (manager, _) = fx.build();
    manager.backoff().record_failure("earlier auth failure");
    assert_eq!(
        manager
            .initialize_with_schema("TRACKS", &event_schema())
            .await
            .unwrap()
            .id,
        "ch"
    );
    manager.reset_backoff();
    assert_eq!(manager.backoff().failures(), 0);
}

#[tokio::test]
async fn recreate_deletes_the_stale_channel_without_waiting_and_runs_no_ddl() {
    let mut fx = Fixture::new();
    let mut seq = Sequence::new();
    fx.api
        .expect_delete_channel()
        .with(eq("stale"), eq(false))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| {
            Err(snowpipe_api::Error::ChannelNotFound {
                call: snowpipe_api::Call::DeleteChannel,
                channel_id: "stale".into(),
            })
        });
    fx.expect_open(&mut seq, opened("fresh", &[("ID", "TEXT")]));
    fx.expect_open(
        &mut seq,
        refused("ERR_TABLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED", 404),
    );
    fx.warehouse.expect_create_table().never();
    let (manager, _) = fx.build();
    assert_eq!(
        manager
            .recreate("TRACKS", Some("stale".into()))
            .await
            .unwrap()
            .id,
        "fresh"
    );
    let error = manager.recreate("TRACKS", None).await.unwrap_err();
    assert!(matches!(error, ChannelError::Refused { .. }), "{error}");
    assert!(manager.cached("TRACKS").is_none());
}

#[tokio::test]
async fn delete_forgets_the_channel_and_tolerates_an_unknown_one() {
    let mut fx = Fixture::new();
    let mut seq = Sequence::new();
    fx.expect_open(&mut seq, opened("ch", &[("ID", "TEXT"), ("N", "NUMBER")]));
    fx.api
        .expect_delete_channel()
        .with(eq("ch"), eq(false))
        .times(1)
        .returning(|_, _| {
            Err(snowpipe_api::Error::ChannelNotFound {
                call: snowpipe_api::Call::DeleteChannel,
                channel_id: "ch".into(),
            })
        });
    fx.api
        .expect_delete_channel()
        .with(eq("other"), eq(false))
        .times(1)
        .returning(|_, _| {
            Err(snowpipe_api::Error::Timeout {
                call: snowpipe_api::Call::DeleteChannel,
                timeout: Duration::from_secs(1),
                delivery: snowpipe_api::Delivery::MaybeSent,
            })
        });
    let (manager, _) = fx.build();
    manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    manager.delete("TRACKS", "ch").await.unwrap();
    assert!(manager.cached("TRACKS").is_none());
    let error = manager.delete("TRACKS", "other").await.unwrap_err();
    assert_eq!(error.kind(), FailureKind::Retry);
}
