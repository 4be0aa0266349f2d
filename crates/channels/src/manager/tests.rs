//! Every branch of the channel manager: with a mocked backend and warehouse where the exact calls matter,
//! with the in-memory backend (and a warehouse that must not be called) where what lands matters.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use mockall::{Sequence, predicate::eq};
use snowpipe_api::{
    AppendError, Appended, Call, Capabilities, Error as BackendError, MockBackend, Progress,
    Secret,
    memory::{Fault, InMemory},
};

use super::*;
use crate::{BackoffConfig, ManualClock, MockWarehouse, WarehouseError};

const TABLE: &str = "TRACKS";

/// A backend error made anew for each case of a table (errors are not `Clone`).
type Refusal = fn() -> BackendError;
/// A status answer made anew for each case of a table.
type StatusAnswer = fn() -> Result<Option<ChannelStatus>, BackendError>;
/// The channels of one bulk status call, as (table, id).
type Chunk = Vec<(String, String)>;
/// What every scripted refusal says, so that a test can check the reason carries it.
const SAYS_NO: &str = "Snowflake says no";

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

fn backoff(clock: &Arc<ManualClock>) -> AuthBackoff {
    AuthBackoff::new(
        BackoffConfig::default(),
        Arc::clone(clock) as Arc<dyn crate::Clock>,
    )
}

/// What the sidecar can do: report columns with an open and the latest token a channel was handed.
fn sidecar_like() -> Capabilities {
    Capabilities::none()
        .with_columns_on_open(true)
        .with_reports_inserted_offset(true)
}

fn handle(table: &str, id: &str) -> ChannelHandle {
    ChannelHandle {
        channel: settings().channel(table),
        id: id.to_owned(),
    }
}

fn ids(handles: &[ChannelHandle]) -> Vec<&str> {
    handles.iter().map(|h| h.id.as_str()).collect()
}

fn columns(columns: &[(&str, &str)]) -> Vec<Column> {
    columns
        .iter()
        .map(|(name, ty)| Column {
            name: (*name).to_owned(),
            data_type: (*ty).to_owned(),
            scale: None,
            nullable: true,
        })
        .collect()
}

/// An open as the sidecar answers it: the table's columns, no status.
fn opened(table: &str, id: &str, with: &[(&str, &str)]) -> OpenedChannel {
    OpenedChannel {
        handle: handle(table, id),
        status: None,
        columns: Some(columns(with)),
    }
}

/// An open from a backend that reports no columns.
fn opened_bare(table: &str, id: &str) -> OpenedChannel {
    OpenedChannel {
        columns: None,
        ..opened(table, id, &[])
    }
}

fn schema(columns: &[(&str, WarehouseType)]) -> Schema {
    columns.iter().copied().collect()
}

fn event_schema() -> Schema {
    schema(&[("ID", WarehouseType::String), ("N", WarehouseType::Bigint)])
}

/// A valid channel that was handed `latest` last and committed nothing.
fn inserted(latest: Option<&str>) -> ChannelStatus {
    ChannelStatus {
        valid: true,
        committed: None,
        progress: Progress::Inserted(latest.map(str::to_owned)),
    }
}

/// A valid channel that committed everything up to `token`.
fn committed(token: &str) -> ChannelStatus {
    ChannelStatus {
        valid: true,
        committed: Some(token.to_owned()),
        progress: Progress::Inserted(Some(token.to_owned())),
    }
}

fn missing(object: MissingObject) -> BackendError {
    BackendError::MissingObject {
        call: Call::OpenChannel,
        object,
        code: "ERR_DOES_NOT_EXIST_OR_NOT_AUTHORIZED".into(),
        message: SAYS_NO.into(),
    }
}

fn retryable(call: Call) -> BackendError {
    BackendError::Retryable {
        call,
        code: "503".into(),
        source: SAYS_NO.into(),
    }
}

fn lost() -> AppendError {
    BackendError::OutcomeUnknown {
        call: Call::Append,
        code: "timeout".into(),
        source: "no answer came".into(),
    }
    .into()
}

fn unauthorized() -> WarehouseError {
    WarehouseError::Unauthorized {
        status: 401,
        code: "390144".into(),
        message: "JWT token is invalid.".into(),
    }
}

fn rows(ids: &[&str]) -> Vec<Row> {
    ids.iter()
        .map(|id| Row::parse(format!(r#"{{"ID":"{id}"}}"#)).unwrap())
        .collect()
}

fn id_of(table: &str, id: &str) -> ChannelId {
    ChannelId {
        table: table.to_owned(),
        id: id.to_owned(),
    }
}

/// A mocked backend (sidecar-like) and warehouse; every call not expected fails the test.
struct Fixture {
    backend: MockBackend,
    warehouse: MockWarehouse,
    settings: ChannelSettings,
    seq: Sequence,
}

impl Fixture {
    fn new() -> Self {
        let mut backend = MockBackend::new();
        backend.expect_capabilities().return_const(sidecar_like());
        Self {
            backend,
            warehouse: MockWarehouse::new(),
            settings: settings(),
            seq: Sequence::new(),
        }
    }

    fn build(self) -> (ChannelManager<MockBackend, MockWarehouse>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        let manager =
            ChannelManager::new(self.backend, self.warehouse, self.settings, backoff(&clock));
        (manager, clock)
    }

    /// The next call opens the table's channel (discarding an earlier writer's rows) and gets `answer`.
    fn expect_open(&mut self, table: &'static str, answer: Result<OpenedChannel, BackendError>) {
        self.backend
            .expect_open_channel()
            .withf(move |channel, options| {
                *channel == settings().channel(table) && *options == OpenOptions::discard()
            })
            .times(1)
            .in_sequence(&mut self.seq)
            .return_once(move |_, _| answer);
    }

    /// The next call drops channel `id` of the table, waiting for its rows to commit or not.
    fn expect_drop(
        &mut self,
        id: &'static str,
        wait_for_commit: bool,
        answer: Result<(), BackendError>,
    ) {
        self.backend
            .expect_drop_channel()
            .withf(move |channel, options| {
                *channel == handle(TABLE, id) && *options == DropOptions { wait_for_commit }
            })
            .times(1)
            .in_sequence(&mut self.seq)
            .return_once(move |_, _| answer);
    }

    /// The next call asks channel `id`'s status.
    fn expect_status(
        &mut self,
        id: &'static str,
        answer: Result<Option<ChannelStatus>, BackendError>,
    ) {
        self.backend
            .expect_channel_status()
            .withf(move |channel| *channel == handle(TABLE, id))
            .times(1)
            .in_sequence(&mut self.seq)
            .return_once(move |_| answer);
    }

    /// The next call appends `token` to channel `id`.
    fn expect_append(
        &mut self,
        id: &'static str,
        token: &'static str,
        answer: Result<Appended, AppendError>,
    ) {
        self.backend
            .expect_append()
            .withf(move |channel, request| {
                *channel == handle(TABLE, id) && request.tokens.tokens(0..1).end == token
            })
            .times(1)
            .in_sequence(&mut self.seq)
            .return_once(move |_, _| answer);
    }
}

// --- Opening channels, DDL and the auth backoff ---

#[tokio::test]
async fn a_cached_channel_needs_no_backend_call() {
    let mut fx = Fixture::new();
    fx.expect_open(
        TABLE,
        Ok(opened(
            TABLE,
            "ch-1",
            &[("ID", "VARCHAR(10)"), ("N", "NUMBER(38,0)")],
        )),
    );
    let (manager, _) = fx.build();
    let first = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    assert_eq!(first.id(), "ch-1");
    assert_eq!(
        first.schema,
        schema(&[("ID", WarehouseType::String), ("N", WarehouseType::Int)])
    );
    // The mock allows one open: a second would fail the test.
    let second = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(manager.cached(TABLE).unwrap().id(), "ch-1");
}

#[tokio::test]
async fn a_missing_schema_creates_schema_and_table_then_reopens() {
    let mut fx = Fixture::new();
    fx.expect_open(TABLE, Err(missing(MissingObject::Schema)));
    fx.warehouse
        .expect_create_schema()
        .with(eq("RUDDER"))
        .times(1)
        .in_sequence(&mut fx.seq)
        .returning(|_| Ok(()));
    fx.warehouse
        .expect_create_table()
        .withf(|s, t, columns| s == "RUDDER" && t == TABLE && *columns == event_schema())
        .times(1)
        .in_sequence(&mut fx.seq)
        .returning(|_, _, _| Ok(()));
    fx.expect_open(
        TABLE,
        Ok(opened(TABLE, "ch-2", &[("ID", "TEXT"), ("N", "NUMBER")])),
    );
    let (manager, _) = fx.build();
    let channel = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    assert_eq!(channel.id(), "ch-2");
    assert_eq!(manager.backoff().failures(), 0);
}

#[tokio::test]
async fn a_missing_table_creates_only_the_table() {
    let mut fx = Fixture::new();
    fx.expect_open(TABLE, Err(missing(MissingObject::Table)));
    fx.warehouse.expect_create_schema().never();
    fx.warehouse
        .expect_create_table()
        .withf(|s, t, columns| s == "RUDDER" && t == TABLE && *columns == event_schema())
        .times(1)
        .in_sequence(&mut fx.seq)
        .returning(|_, _, _| Ok(()));
    fx.expect_open(
        TABLE,
        Ok(opened(TABLE, "ch-3", &[("ID", "TEXT"), ("N", "NUMBER")])),
    );
    let (manager, _) = fx.build();
    let channel = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    assert_eq!(channel.id(), "ch-3");
}

#[tokio::test]
async fn schema_missing_then_an_invalid_table_statement_aborts() {
    let mut fx = Fixture::new();
    fx.expect_open(TABLE, Err(missing(MissingObject::Schema)));
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
        .initialize_with_schema(TABLE, &event_schema())
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
    assert!(manager.cached(TABLE).is_none());
    assert_eq!(
        manager.backoff().failures(),
        0,
        "an invalid statement is not an auth failure"
    );
}

#[tokio::test]
async fn new_columns_take_one_alter_then_a_drop_that_waits_for_the_commit_and_a_reopen() {
    let mut fx = Fixture::new();
    fx.expect_open(TABLE, Ok(opened(TABLE, "old", &[("ID", "TEXT")])));
    fx.warehouse
        .expect_add_columns()
        .withf(|s, t, columns| {
            s == "RUDDER" && t == TABLE && *columns == schema(&[("N", WarehouseType::Bigint)])
        })
        .times(1)
        .in_sequence(&mut fx.seq)
        .returning(|_, _, _| Ok(()));
    fx.expect_drop("old", true, Ok(()));
    fx.expect_open(
        TABLE,
        Ok(opened(TABLE, "new", &[("ID", "TEXT"), ("N", "NUMBER")])),
    );
    fx.warehouse.expect_create_table().never();
    let (manager, _) = fx.build();
    let channel = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    assert_eq!(channel.id(), "new");
    assert!(channel.schema.contains("N"));
    assert_eq!(manager.cached(TABLE).unwrap().id(), "new");
}

#[tokio::test]
async fn refusals_are_classified_by_their_boundary_kind() {
    let open = Call::OpenChannel;
    let cases: &[(&str, Refusal, FailureKind, &str)] = &[
        (
            "auth",
            || BackendError::Auth {
                call: Call::OpenChannel,
                code: "ERR_AUTHENTICATION_FAILED".into(),
                message: SAYS_NO.into(),
            },
            FailureKind::Auth,
            SAYS_NO,
        ),
        (
            "permanent",
            || BackendError::Permanent {
                call: Call::OpenChannel,
                code: "ERR_SCHEMA_CONFLICT".into(),
                source: SAYS_NO.into(),
            },
            FailureKind::Abort,
            SAYS_NO,
        ),
        (
            "unsupported",
            || BackendError::Unsupported {
                call: Call::OpenChannel,
                what: "wait for uncommitted rows",
            },
            FailureKind::Abort,
            "cannot wait for uncommitted rows",
        ),
        (
            "retryable",
            || retryable(Call::OpenChannel),
            FailureKind::Retry,
            SAYS_NO,
        ),
        (
            "outcome unknown",
            || BackendError::OutcomeUnknown {
                call: Call::OpenChannel,
                code: "timeout".into(),
                source: SAYS_NO.into(),
            },
            FailureKind::Retry,
            SAYS_NO,
        ),
        (
            "reopen",
            || BackendError::Reopen {
                call: Call::OpenChannel,
                code: "STALE".into(),
                message: SAYS_NO.into(),
            },
            FailureKind::Retry,
            SAYS_NO,
        ),
    ];
    for &(name, refusal, kind, reason) in cases {
        assert_eq!(refusal().call(), open, "{name}");
        let mut fx = Fixture::new();
        fx.expect_open(TABLE, Err(refusal()));
        let (manager, _) = fx.build();
        let error = manager
            .initialize_with_schema(TABLE, &event_schema())
            .await
            .unwrap_err();
        assert!(
            matches!(error, ChannelError::Service { .. }),
            "{name}: {error}"
        );
        assert_eq!(error.kind(), kind, "{name}: {error}");
        assert!(
            error.to_string().contains(reason),
            "{name}: the reason carries the backend's message: {error}"
        );
        let expected_failures = u32::from(kind == FailureKind::Auth);
        assert_eq!(manager.backoff().failures(), expected_failures, "{name}");
        assert!(manager.cached(TABLE).is_none(), "{name}");
    }
}

#[tokio::test]
async fn an_object_still_missing_after_creating_it_is_an_auth_failure() {
    for object in [MissingObject::Schema, MissingObject::Table] {
        let mut fx = Fixture::new();
        fx.expect_open(TABLE, Err(missing(object)));
        let schema_calls = usize::from(object == MissingObject::Schema);
        fx.warehouse
            .expect_create_schema()
            .times(schema_calls)
            .returning(|_| Ok(()));
        fx.warehouse
            .expect_create_table()
            .times(1)
            .returning(|_, _, _| Ok(()));
        // The role cannot see what was just created.
        fx.expect_open(TABLE, Err(missing(object)));
        let (manager, _) = fx.build();
        let error = manager
            .initialize_with_schema(TABLE, &event_schema())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), FailureKind::Auth, "{object}: {error}");
        assert!(error.to_string().contains(SAYS_NO), "{object}: {error}");
        assert_eq!(manager.backoff().failures(), 1, "{object}");
    }
}

#[tokio::test]
async fn while_backing_off_no_ddl_reaches_the_warehouse() {
    let mut fx = Fixture::new();
    fx.expect_open(TABLE, Err(missing(MissingObject::Table)));
    fx.warehouse
        .expect_create_table()
        .times(1)
        .in_sequence(&mut fx.seq)
        .returning(|_, _, _| Err(unauthorized()));
    // The second attempt must not reach the warehouse: the sequence would fail the test.
    fx.expect_open(TABLE, Err(missing(MissingObject::Table)));
    fx.expect_open(TABLE, Err(missing(MissingObject::Table)));
    fx.warehouse
        .expect_create_table()
        .times(1)
        .in_sequence(&mut fx.seq)
        .returning(|_, _, _| Ok(()));
    fx.expect_open(
        TABLE,
        Ok(opened(TABLE, "ch", &[("ID", "TEXT"), ("N", "NUMBER")])),
    );
    let (manager, clock) = fx.build();

    let first = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap_err();
    assert_eq!(first.kind(), FailureKind::Auth);
    assert!(
        first.to_string().contains("JWT token is invalid"),
        "{first}"
    );
    assert_eq!(manager.backoff().failures(), 1);

    let second = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap_err();
    assert!(second.is_backoff(), "{second}");
    assert_eq!(second.kind(), FailureKind::Retry);
    assert!(
        second.to_string().contains("JWT token is invalid"),
        "the backoff names its cause: {second}"
    );
    assert_eq!(
        manager.backoff().failures(),
        1,
        "a skipped step does not lengthen the backoff"
    );

    clock.advance(Duration::from_secs(1));
    let channel = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    assert_eq!(channel.id(), "ch");
}

#[tokio::test]
async fn a_cached_channel_without_new_columns_works_during_backoff() {
    let mut fx = Fixture::new();
    fx.expect_open(
        TABLE,
        Ok(opened(TABLE, "ch", &[("ID", "TEXT"), ("N", "NUMBER")])),
    );
    let (manager, _) = fx.build();
    manager.backoff().record_failure("earlier auth failure");
    let channel = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    assert_eq!(channel.id(), "ch");
    manager.reset_backoff();
    assert_eq!(manager.backoff().failures(), 0);
    assert!(manager.backoff().check().is_ok());
}

#[tokio::test]
async fn recreate_drops_the_stale_channel_without_waiting_and_runs_no_ddl() {
    let mut fx = Fixture::new();
    // A failing drop is logged: the channel is reopened anyway.
    fx.expect_drop("stale", false, Err(retryable(Call::DropChannel)));
    fx.expect_open(TABLE, Ok(opened(TABLE, "fresh", &[("ID", "TEXT")])));
    fx.expect_open(TABLE, Err(missing(MissingObject::Table)));
    fx.warehouse.expect_create_schema().never();
    fx.warehouse.expect_create_table().never();
    let (manager, _) = fx.build();
    let fresh = manager.recreate(TABLE, Some("stale".into())).await.unwrap();
    assert_eq!(fresh.id(), "fresh");
    assert_eq!(manager.cached(TABLE).unwrap().id(), "fresh");

    let error = manager.recreate(TABLE, None).await.unwrap_err();
    assert!(
        matches!(
            error,
            ChannelError::Service {
                source: BackendError::MissingObject {
                    object: MissingObject::Table,
                    ..
                },
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.kind(), FailureKind::Auth);
    assert!(manager.cached(TABLE).is_none());
}

#[tokio::test]
async fn delete_forgets_the_channel_and_tolerates_an_unknown_one() {
    let mut fx = Fixture::new();
    fx.expect_open(
        TABLE,
        Ok(opened(TABLE, "ch", &[("ID", "TEXT"), ("N", "NUMBER")])),
    );
    // A backend drops a channel it does not know without complaint.
    fx.expect_drop("other", false, Ok(()));
    fx.expect_drop("ch", false, Ok(()));
    fx.expect_drop("broken", false, Err(retryable(Call::DropChannel)));
    let (manager, _) = fx.build();
    manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();

    manager.delete(&id_of(TABLE, "other")).await.unwrap();
    assert_eq!(
        manager.cached(TABLE).unwrap().id(),
        "ch",
        "deleting another channel of the table keeps the cached one"
    );

    manager.delete(&id_of(TABLE, "ch")).await.unwrap();
    assert!(manager.cached(TABLE).is_none());

    let error = manager.delete(&id_of(TABLE, "broken")).await.unwrap_err();
    assert_eq!(error.kind(), FailureKind::Retry, "{error}");
    assert!(error.to_string().contains(SAYS_NO), "{error}");
}

// --- Columns from the warehouse, for backends whose opens do not report them ---

#[tokio::test]
async fn columns_come_from_describe_when_the_open_reports_none() {
    let mut fx = Fixture::new();
    fx.expect_open(TABLE, Ok(opened_bare(TABLE, "ch")));
    fx.warehouse
        .expect_describe_table()
        .with(eq("RUDDER"), eq(TABLE))
        .times(1)
        .in_sequence(&mut fx.seq)
        .returning(|_, _| {
            Ok(Some(columns(&[
                ("ID", "VARCHAR(16777216)"),
                ("N", "NUMBER(38,2)"),
            ])))
        });
    // The table exists: no DDL.
    fx.warehouse.expect_create_table().never();
    let (manager, _) = fx.build();
    let channel = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    assert_eq!(
        channel.schema,
        schema(&[("ID", WarehouseType::String), ("N", WarehouseType::Float)])
    );
}

#[tokio::test]
async fn a_table_missing_per_describe_takes_the_ddl_path() {
    let mut fx = Fixture::new();
    fx.expect_open(TABLE, Ok(opened_bare(TABLE, "first")));
    fx.warehouse
        .expect_describe_table()
        .times(1)
        .in_sequence(&mut fx.seq)
        .returning(|_, _| Ok(None));
    fx.warehouse.expect_create_schema().never();
    fx.warehouse
        .expect_create_table()
        .withf(|s, t, columns| s == "RUDDER" && t == TABLE && *columns == event_schema())
        .times(1)
        .in_sequence(&mut fx.seq)
        .returning(|_, _, _| Ok(()));
    fx.expect_open(TABLE, Ok(opened_bare(TABLE, "second")));
    fx.warehouse
        .expect_describe_table()
        .times(1)
        .in_sequence(&mut fx.seq)
        .returning(|_, _| Ok(Some(columns(&[("ID", "TEXT"), ("N", "NUMBER")]))));
    let (manager, _) = fx.build();
    let channel = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    assert_eq!(channel.id(), "second");
    assert_eq!(
        channel.schema,
        schema(&[("ID", WarehouseType::String), ("N", WarehouseType::Int)])
    );
    assert_eq!(manager.cached(TABLE).unwrap().id(), "second");
}

#[tokio::test]
async fn a_refused_describe_is_an_auth_failure() {
    let mut fx = Fixture::new();
    fx.expect_open(TABLE, Ok(opened_bare(TABLE, "ch")));
    fx.warehouse
        .expect_describe_table()
        .times(1)
        .returning(|_, _| Err(unauthorized()));
    let (manager, _) = fx.build();
    let error = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ChannelError::Warehouse {
                step: DdlStep::DescribeTable,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.kind(), FailureKind::Auth);
    assert_eq!(manager.backoff().failures(), 1);
    assert!(manager.cached(TABLE).is_none());
}

// --- Statuses: refresh, status_before, statuses, status ---

/// Opens the channels of tables `A`, `B` and `C` (ids `a`, `b`, `c`), then a refresh asks their statuses
/// two at a time.
#[tokio::test]
async fn refresh_forgets_lost_and_invalid_channels_and_keeps_the_valid_ones_statuses() {
    let mut fx = Fixture::new();
    fx.settings.bulk_status_batch_size = 2;
    for (table, id) in [("A", "a"), ("B", "b"), ("C", "c")] {
        fx.expect_open(table, Ok(opened(table, id, &[("ID", "TEXT")])));
    }
    fx.backend
        .expect_bulk_status()
        .withf(|handles| ids(handles) == ["a", "b"])
        .times(1)
        .in_sequence(&mut fx.seq)
        .returning(|_| {
            let invalid = ChannelStatus {
                valid: false,
                ..committed("3")
            };
            Ok(vec![None, Some(invalid)])
        });
    fx.backend
        .expect_bulk_status()
        .withf(|handles| ids(handles) == ["c"] && handles[0].channel == settings().channel("C"))
        .times(1)
        .in_sequence(&mut fx.seq)
        .returning(|_| Ok(vec![Some(committed("41"))]));
    fx.expect_open("A", Ok(opened("A", "a2", &[("ID", "TEXT")])));
    // The refresh's status is the status before: nothing is asked channel by channel.
    fx.backend.expect_channel_status().never();
    let (manager, _) = fx.build();

    let only_id = schema(&[("ID", WarehouseType::String)]);
    for table in ["A", "B", "C"] {
        manager
            .initialize_with_schema(table, &only_id)
            .await
            .unwrap();
    }
    let tables = ["A", "B", "C"].map(str::to_owned);
    manager.refresh(&tables).await.unwrap();

    assert!(
        manager.cached("A").is_none(),
        "the backend lost A's channel"
    );
    assert!(manager.cached("B").is_none(), "B's channel is invalid");
    let c = manager.cached("C").expect("C's channel is valid");
    assert_eq!(manager.status_before(&c).await, Some(committed("41")));

    let a = manager.initialize_with_schema("A", &only_id).await.unwrap();
    assert_eq!(a.id(), "a2", "the next initialize opens anew");
}

#[tokio::test]
async fn refresh_without_cached_channels_asks_nothing() {
    let mut fx = Fixture::new();
    fx.backend.expect_bulk_status().never();
    let (manager, _) = fx.build();
    manager.refresh(&["A".to_owned()]).await.unwrap();
    assert!(manager.cached("A").is_none());
}

#[tokio::test]
async fn a_failing_bulk_status_fails_refresh_and_keeps_the_cache() {
    let mut fx = Fixture::new();
    fx.expect_open(
        TABLE,
        Ok(opened(TABLE, "ch", &[("ID", "TEXT"), ("N", "NUMBER")])),
    );
    fx.backend
        .expect_bulk_status()
        .times(1)
        .returning(|_| Err(retryable(Call::BulkStatus)));
    let (manager, _) = fx.build();
    manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    let error = manager.refresh(&[TABLE.to_owned()]).await.unwrap_err();
    assert_eq!(error.kind(), FailureKind::Retry, "{error}");
    assert!(error.to_string().contains(SAYS_NO), "{error}");
    assert_eq!(manager.cached(TABLE).unwrap().id(), "ch");
}

#[tokio::test]
async fn the_status_an_open_reports_is_the_status_before() {
    let mut fx = Fixture::new();
    let mut answer = opened(TABLE, "ch", &[("ID", "TEXT"), ("N", "NUMBER")]);
    answer.status = Some(committed("5"));
    fx.expect_open(TABLE, Ok(answer));
    fx.backend.expect_channel_status().never();
    let (manager, _) = fx.build();
    let channel = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    assert_eq!(manager.status_before(&channel).await, Some(committed("5")));
}

#[tokio::test]
async fn status_before_asks_an_unknown_channel_once() {
    let mut fx = Fixture::new();
    fx.expect_open(
        TABLE,
        Ok(opened(TABLE, "ch", &[("ID", "TEXT"), ("N", "NUMBER")])),
    );
    fx.expect_status("ch", Ok(Some(committed("8"))));
    let (manager, _) = fx.build();
    let channel = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    assert_eq!(manager.status_before(&channel).await, Some(committed("8")));
    // Kept: the mock allows one status call.
    assert_eq!(manager.status_before(&channel).await, Some(committed("8")));
}

#[tokio::test]
async fn status_before_is_none_when_the_backend_cannot_say() {
    let mut fx = Fixture::new();
    fx.expect_open(
        TABLE,
        Ok(opened(TABLE, "ch", &[("ID", "TEXT"), ("N", "NUMBER")])),
    );
    fx.expect_status("ch", Err(retryable(Call::ChannelStatus)));
    fx.expect_status("ch", Ok(None));
    let (manager, _) = fx.build();
    let channel = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    assert_eq!(manager.status_before(&channel).await, None);
    assert_eq!(manager.status_before(&channel).await, None);
}

#[tokio::test]
async fn statuses_go_in_chunks_and_keep_the_order() {
    let mut fx = Fixture::new();
    fx.settings.bulk_status_batch_size = 2;
    let asked: Arc<Mutex<Vec<Chunk>>> = Arc::default();
    let record = Arc::clone(&asked);
    fx.backend
        .expect_bulk_status()
        .times(3)
        .returning(move |part| {
            record.lock().unwrap().push(
                part.iter()
                    .map(|h| (h.channel.table.table.clone(), h.id.clone()))
                    .collect(),
            );
            assert!(
                part.iter()
                    .all(|h| h.channel == settings().channel(&h.channel.table.table))
            );
            Ok(part
                .iter()
                .map(|h| (h.id != "c").then(|| committed(&h.id)))
                .collect())
        });
    let (manager, _) = fx.build();
    let channels = [("A", "a"), ("B", "b"), ("A", "c"), ("C", "d"), ("B", "e")]
        .map(|(table, id)| id_of(table, id));
    let statuses = manager.statuses(&channels).await.unwrap();
    let tokens: Vec<Option<&str>> = statuses
        .iter()
        .map(|s| s.as_ref().map(ChannelStatus::committed_str))
        .collect();
    assert_eq!(tokens, [Some("a"), Some("b"), None, Some("d"), Some("e")]);
    let pair = |table: &str, id: &str| (table.to_owned(), id.to_owned());
    assert_eq!(
        *asked.lock().unwrap(),
        [
            vec![pair("A", "a"), pair("B", "b")],
            vec![pair("A", "c"), pair("C", "d")],
            vec![pair("B", "e")],
        ]
    );
}

#[tokio::test]
async fn a_failing_bulk_status_fails_statuses() {
    let mut fx = Fixture::new();
    fx.backend
        .expect_bulk_status()
        .times(1)
        .returning(|_| Err(retryable(Call::BulkStatus)));
    let (manager, _) = fx.build();
    let error = manager.statuses(&[id_of(TABLE, "ch")]).await.unwrap_err();
    assert_eq!(error.kind(), FailureKind::Retry);
    assert!(error.to_string().contains(SAYS_NO), "{error}");
}

#[tokio::test]
async fn status_asks_the_one_channel() {
    let mut fx = Fixture::new();
    fx.expect_status("ch-9", Ok(Some(committed("12"))));
    fx.expect_status("gone", Ok(None));
    fx.expect_status(
        "ch-9",
        Err(BackendError::Auth {
            call: Call::ChannelStatus,
            code: "ERR_AUTHENTICATION_FAILED".into(),
            message: SAYS_NO.into(),
        }),
    );
    let (manager, _) = fx.build();
    let status = manager.status(&id_of(TABLE, "ch-9")).await.unwrap();
    assert_eq!(status, Some(committed("12")));
    assert_eq!(manager.status(&id_of(TABLE, "gone")).await.unwrap(), None);
    let error = manager.status(&id_of(TABLE, "ch-9")).await.unwrap_err();
    assert_eq!(error.kind(), FailureKind::Auth);
    assert_eq!(
        manager.backoff().failures(),
        1,
        "auth failures start the backoff"
    );
}

// --- Appends, with a mocked backend where the exact sequence matters ---

/// Soak seed 0x307b560d2cfeb028: the first answer was lost and the rows had not gone in, so they were sent
/// again; that answer was lost too, after the rows went in. Resolving only the first lost answer would fail
/// jobs whose rows landed, and their retry would put every row in twice.
#[tokio::test]
async fn a_lost_answer_to_a_resent_append_is_resolved_too() {
    let mut fx = Fixture::new();
    fx.expect_open(TABLE, Ok(opened(TABLE, "ch", &[("ID", "TEXT")])));
    fx.expect_status("ch", Ok(Some(inserted(None))));
    fx.expect_append("ch", "7", Err(lost()));
    fx.expect_status("ch", Ok(Some(inserted(None))));
    fx.expect_append("ch", "7", Err(lost()));
    fx.expect_status("ch", Ok(Some(inserted(Some("7")))));
    let (manager, _) = fx.build();
    let channel = manager
        .initialize_with_schema(TABLE, &schema(&[("ID", WarehouseType::String)]))
        .await
        .unwrap();
    let after = manager
        .append(Arc::clone(&channel), rows(&["x"]), "7".into())
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&channel, &after));
    assert_eq!(
        manager.status_before(&after).await.map(|s| s.progress),
        Some(Progress::Inserted(Some("7".into()))),
        "the accepted append is noted"
    );
}

#[tokio::test]
async fn a_lost_answer_whose_channel_status_cannot_be_read_fails_without_resending() {
    let cases: &[(&str, StatusAnswer, &str)] = &[
        ("gone", || Ok(None), "the channel is gone"),
        (
            "unknown",
            || Err(retryable(Call::ChannelStatus)),
            "its status is unknown",
        ),
    ];
    for &(name, answer, reason) in cases {
        let mut fx = Fixture::new();
        fx.expect_open(TABLE, Ok(opened(TABLE, "ch", &[("ID", "TEXT")])));
        fx.expect_status("ch", Ok(Some(inserted(None))));
        fx.expect_append("ch", "7", Err(lost()));
        fx.expect_status("ch", answer());
        let (manager, _) = fx.build();
        let channel = manager
            .initialize_with_schema(TABLE, &schema(&[("ID", WarehouseType::String)]))
            .await
            .unwrap();
        let error = manager
            .append(channel, rows(&["x"]), "7".into())
            .await
            .unwrap_err();
        assert!(error.to_string().contains(reason), "{name}: {error}");
        assert_eq!(error.kind(), FailureKind::Retry, "{name}");
    }
}

// --- Appends with the in-memory backend: what lands, and how often it was sent ---

/// The in-memory backend with the table in place, under a manager whose warehouse must not be called.
fn in_memory(backend: InMemory) -> ChannelManager<InMemory, MockWarehouse> {
    backend.create_table(
        &settings().channel(TABLE).table,
        &[("ID", "VARCHAR(16777216)")],
    );
    let clock = Arc::new(ManualClock::default());
    ChannelManager::new(backend, MockWarehouse::new(), settings(), backoff(&clock))
}

async fn open_in_memory(manager: &ChannelManager<InMemory, MockWarehouse>) -> Arc<Channel> {
    manager
        .initialize_with_schema(TABLE, &schema(&[("ID", WarehouseType::String)]))
        .await
        .unwrap()
}

fn calls(backend: &InMemory, call: Call) -> usize {
    backend.calls().iter().filter(|c| **c == call).count()
}

/// Commits what is pending and returns the table's rows as text.
fn landed(backend: &InMemory) -> Vec<String> {
    backend.commit();
    backend
        .rows(&settings().channel(TABLE).table)
        .iter()
        .map(|row| String::from_utf8_lossy(row.as_bytes()).into_owned())
        .collect()
}

#[tokio::test]
async fn an_append_lands_once_committed_and_is_noted() {
    let manager = in_memory(InMemory::new());
    let channel = open_in_memory(&manager).await;
    let after = manager
        .append(Arc::clone(&channel), rows(&["a", "b"]), "1".into())
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&channel, &after));
    assert_eq!(manager.backend().pending_rows(), 2);
    assert_eq!(
        landed(manager.backend()),
        [r#"{"ID":"a"}"#, r#"{"ID":"b"}"#]
    );
    assert_eq!(
        manager.status_before(&after).await.map(|s| s.progress),
        Some(Progress::Inserted(Some("1".into())))
    );
}

#[tokio::test]
async fn a_lost_answer_whose_rows_went_in_is_accepted_without_a_resend() {
    let manager = in_memory(InMemory::new());
    let channel = open_in_memory(&manager).await;
    manager
        .backend()
        .fail_next(Call::Append, 1, Fault::LoseAnswer { applied: true });
    let after = manager
        .append(Arc::clone(&channel), rows(&["a"]), "1".into())
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&channel, &after));
    assert_eq!(calls(manager.backend(), Call::Append), 1);
    assert_eq!(landed(manager.backend()), [r#"{"ID":"a"}"#]);
}

#[tokio::test]
async fn a_lost_answer_whose_rows_did_not_go_in_is_sent_again() {
    let manager = in_memory(InMemory::new());
    let channel = open_in_memory(&manager).await;
    manager
        .backend()
        .fail_next(Call::Append, 2, Fault::LoseAnswer { applied: false });
    let after = manager
        .append(Arc::clone(&channel), rows(&["a"]), "1".into())
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&channel, &after));
    assert_eq!(calls(manager.backend(), Call::Append), 3, "two resends");
    assert_eq!(landed(manager.backend()), [r#"{"ID":"a"}"#]);
}

#[tokio::test]
async fn an_append_whose_answers_keep_getting_lost_fails_after_two_resends() {
    let manager = in_memory(InMemory::new());
    let channel = open_in_memory(&manager).await;
    manager
        .backend()
        .fail_next(Call::Append, 4, Fault::LoseAnswer { applied: false });
    let error = manager
        .append(Arc::clone(&channel), rows(&["a"]), "1".into())
        .await
        .unwrap_err();
    let reason = error.to_string();
    assert!(reason.contains("the rows did not go in"), "{reason}");
    assert!(reason.contains("lost 3 times"), "{reason}");
    assert!(
        matches!(&error, ChannelError::Append { channel_id, .. } if channel_id == channel.id())
    );
    assert_eq!(error.kind(), FailureKind::Retry);
    assert_eq!(calls(manager.backend(), Call::Append), 3);
    // The rows are surely not in, so the channel is dropped.
    assert_eq!(calls(manager.backend(), Call::DropChannel), 1);
    assert!(manager.cached(TABLE).is_none());
    assert!(landed(manager.backend()).is_empty());
}

#[tokio::test]
async fn a_lost_answer_to_a_resent_append_is_resolved_in_memory() {
    let manager = in_memory(InMemory::new());
    let channel = open_in_memory(&manager).await;
    manager
        .backend()
        .fail_next(Call::Append, 1, Fault::LoseAnswer { applied: false });
    manager
        .backend()
        .fail_next(Call::Append, 1, Fault::LoseAnswer { applied: true });
    let after = manager
        .append(Arc::clone(&channel), rows(&["a"]), "1".into())
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&channel, &after));
    assert_eq!(calls(manager.backend(), Call::Append), 2);
    assert_eq!(
        landed(manager.backend()),
        [r#"{"ID":"a"}"#],
        "once, not twice"
    );
}

/// The channel was handed `before` by an earlier append; then `token` is appended and its answer lost.
#[tokio::test]
async fn a_lost_answer_where_the_channel_stood_at_or_past_the_token_is_never_resent() {
    for (before, token, applied, accepted) in [
        // A retried low job id: the latest token could not have moved to it, so nothing can be told.
        ("9", "5", false, false),
        // The channel already stood at the token: whether it moved again cannot be told.
        ("7", "7", false, false),
        ("7", "7", true, false),
        // The latest token moved back to ours: only this append can have moved it.
        ("9", "5", true, true),
    ] {
        let case = format!("before {before}, token {token}, applied {applied}");
        let manager = in_memory(InMemory::new());
        let channel = open_in_memory(&manager).await;
        manager
            .append(Arc::clone(&channel), rows(&["earlier"]), before.into())
            .await
            .unwrap();
        manager
            .backend()
            .fail_next(Call::Append, 1, Fault::LoseAnswer { applied });
        let result = manager
            .append(Arc::clone(&channel), rows(&["x"]), token.into())
            .await;
        assert_eq!(
            calls(manager.backend(), Call::Append),
            2,
            "{case}: never resent"
        );
        if accepted {
            assert!(result.is_ok(), "{case}: {result:?}");
        } else {
            let error = result.unwrap_err();
            assert!(
                error.to_string().contains("cannot be told"),
                "{case}: {error}"
            );
            assert!(
                error
                    .to_string()
                    .contains(&format!("stood at offset {before} before")),
                "{case}: {error}"
            );
        }
    }
}

#[tokio::test]
async fn a_lost_channel_is_reopened_once_and_the_rows_sent_again() {
    let manager = in_memory(InMemory::new());
    let channel = open_in_memory(&manager).await;
    // The service restarts: every channel id it handed out is unknown.
    manager.backend().restart();
    let after = manager
        .append(Arc::clone(&channel), rows(&["a"]), "1".into())
        .await
        .unwrap();
    assert_ne!(
        after.id(),
        channel.id(),
        "the returned channel is the new one"
    );
    assert!(Arc::ptr_eq(&after, &manager.cached(TABLE).unwrap()));
    assert_eq!(after.schema, channel.schema);
    assert_eq!(calls(manager.backend(), Call::OpenChannel), 2);
    assert_eq!(calls(manager.backend(), Call::Append), 2);
    assert_eq!(landed(manager.backend()), [r#"{"ID":"a"}"#]);
}

#[tokio::test]
async fn a_channel_lost_again_after_the_reopen_fails_the_append() {
    let manager = in_memory(InMemory::new());
    let channel = open_in_memory(&manager).await;
    manager.backend().fail_next(Call::Append, 2, Fault::Reopen);
    let error = manager
        .append(Arc::clone(&channel), rows(&["a"]), "1".into())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("failed"), "{error}");
    assert!(
        error.to_string().contains("must be opened again"),
        "{error}"
    );
    assert_eq!(
        calls(manager.backend(), Call::OpenChannel),
        2,
        "reopened once"
    );
    assert_eq!(calls(manager.backend(), Call::Append), 2);
    assert!(
        manager.cached(TABLE).is_none(),
        "the reopened channel is dropped"
    );
    assert!(landed(manager.backend()).is_empty());
}

#[tokio::test]
async fn refused_rows_drop_the_channel_and_name_the_rows() {
    let manager = in_memory(InMemory::new());
    let channel = open_in_memory(&manager).await;
    manager
        .backend()
        .fail_next(Call::Append, 1, Fault::RowsRejected);
    let error = manager
        .append(Arc::clone(&channel), rows(&["a"]), "1".into())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("was refused with ROWS_REJECTED: row 0: scripted"),
        "{error}"
    );
    assert_eq!(error.kind(), FailureKind::Retry);
    assert_eq!(calls(manager.backend(), Call::Append), 1, "not resent");
    assert_eq!(calls(manager.backend(), Call::DropChannel), 1);
    assert!(manager.cached(TABLE).is_none());
    let status = manager
        .backend()
        .channel_status(&channel.handle)
        .await
        .unwrap();
    assert!(
        status.is_none(),
        "the channel is dropped on the backend too"
    );
}

#[tokio::test]
async fn other_append_failures_drop_the_channel_without_resending() {
    for (fault, reason) in [
        (Fault::Permanent, "scripted permanent failure"),
        (Fault::Retryable, "scripted retryable failure"),
        (Fault::Auth, "scripted auth failure"),
    ] {
        let manager = in_memory(InMemory::new());
        let channel = open_in_memory(&manager).await;
        manager.backend().fail_next(Call::Append, 1, fault);
        let error = manager
            .append(channel, rows(&["a"]), "1".into())
            .await
            .unwrap_err();
        assert!(error.to_string().contains(reason), "{fault:?}: {error}");
        assert_eq!(error.kind(), FailureKind::Retry, "{fault:?}");
        assert_eq!(calls(manager.backend(), Call::Append), 1, "{fault:?}");
        assert_eq!(calls(manager.backend(), Call::DropChannel), 1, "{fault:?}");
        assert!(manager.cached(TABLE).is_none(), "{fault:?}");
    }
}

#[tokio::test]
async fn a_backend_without_inserted_offsets_cannot_resolve_a_lost_answer() {
    let backend =
        InMemory::new().with_capabilities(Capabilities::none().with_columns_on_open(true));
    let manager = in_memory(backend);
    let channel = open_in_memory(&manager).await;
    manager
        .backend()
        .fail_next(Call::Append, 1, Fault::LoseAnswer { applied: false });
    let error = manager
        .append(channel, rows(&["a"]), "1".into())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("cannot be told"), "{error}");
    assert_eq!(calls(manager.backend(), Call::Append), 1, "not resent");
    assert!(landed(manager.backend()).is_empty());
}

#[tokio::test]
async fn deleting_a_channel_the_backend_never_knew_succeeds() {
    let manager = in_memory(InMemory::new());
    let channel = open_in_memory(&manager).await;
    manager
        .delete(&id_of(TABLE, "never-handed-out"))
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&channel, &manager.cached(TABLE).unwrap()));
    assert_eq!(calls(manager.backend(), Call::DropChannel), 1);
}

// --- Found by review ---

/// A column of a type the pipeline does not read (`GEOGRAPHY`) is still the table's: an event naming it
/// must not add it again (and drop and reopen the channel) on every upload.
#[tokio::test]
async fn a_column_of_an_unread_type_is_never_added_again() {
    let mut fx = Fixture::new();
    fx.expect_open(
        TABLE,
        Ok(opened(
            TABLE,
            "ch",
            &[("ID", "VARCHAR(16777216)"), ("GEO", "GEOGRAPHY")],
        )),
    );
    fx.warehouse.expect_add_columns().never();
    let (manager, _) = fx.build();
    let events = schema(&[
        ("ID", WarehouseType::String),
        ("GEO", WarehouseType::String),
    ]);
    for _ in 0..2 {
        let channel = manager
            .initialize_with_schema(TABLE, &events)
            .await
            .unwrap();
        assert_eq!(channel.id(), "ch");
        assert_eq!(channel.untyped_columns, ["GEO"]);
        assert!(!channel.schema.contains("GEO"));
    }
}

/// An append the backend sent as several requests, some accepted before one failed: one token labels them
/// all, so where the channel stands cannot tell which rows are in; resending would duplicate the accepted
/// ones. It fails, without a status call or a resend.
#[tokio::test]
async fn an_append_partly_accepted_fails_without_a_resend() {
    let mut fx = Fixture::new();
    fx.expect_open(TABLE, Ok(opened(TABLE, "ch", &[("ID", "TEXT")])));
    fx.expect_status("ch", Ok(Some(inserted(None))));
    let partial = AppendError {
        accepted: vec![snowpipe_api::SentRequest {
            rows: 0..1,
            tokens: snowpipe_api::TokenRange::single("7"),
            body_bytes: 10,
        }],
        error: BackendError::OutcomeUnknown {
            call: Call::Append,
            code: "timeout".into(),
            source: "no answer".into(),
        },
    };
    fx.expect_append("ch", "7", Err(partial));
    let (manager, _) = fx.build();
    let channel = manager
        .initialize_with_schema(TABLE, &schema(&[("ID", WarehouseType::String)]))
        .await
        .unwrap();
    let error = manager
        .append(channel, rows(&["a", "b"]), "7".into())
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("accepted 1 of 2 rows") && text.contains("cannot be told"),
        "{text}"
    );
    assert_eq!(error.kind(), FailureKind::Retry);
}
