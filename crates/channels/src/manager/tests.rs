//! The channel manager over epochs and positions: with a mocked backend and warehouse where the exact calls
//! matter, with the in-memory backend where what lands and what is judged matter. Time is a manual clock and
//! a sleep that records its waits and returns at once (or commits the backend's pending rows on its first
//! call, as if they committed while the manager waited).

use std::{
    future::ready,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use mockall::{Sequence, predicate::eq};
use snowpipe_api::{
    AppendError, Appended, Call, Capabilities, Error as BackendError, MockBackend, OnUncommitted,
    OpenOptions, OpenedChannel, Progress, RowCounters, Secret, SentRequest,
    memory::{Fault, InMemory},
};

use super::*;
use crate::{
    BackoffConfig, ManualClock, MockWarehouse, WarehouseError,
    token::{Final, Token},
    verdict::{Rest, Undecidable},
};

const TABLE: &str = "TRACKS";

/// A backend error made anew for each case of a table (errors are not `Clone`).
type Refusal = fn() -> BackendError;
/// The channels of one bulk status call, as (table, id).
type Chunk = Vec<(String, String)>;
/// What every scripted refusal says, so that a test can check the reason carries it.
const SAYS_NO: &str = "Snowflake says no";
/// The manual clock's wall time, in microseconds: the first epoch's ordered part.
const CLOCK_MICROS: u64 = 1_700_000_000_000_000;

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
    let mut settings = ChannelSettings::new("dest-1", "1", &config);
    settings.reopen_wait = Duration::from_millis(300);
    settings.lost_answer_margin = Duration::from_millis(5);
    settings
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

/// What Snowflake's REST API can do: everything but inserted offsets (statuses carry counters).
fn rest_like() -> Capabilities {
    Capabilities::none()
        .with_waits_for_uncommitted(true)
        .with_sets_offset_token(true)
        .with_columns_on_open(true)
}

/// A sleep that records its waits and returns at once; with a backend, commits its pending rows on the first
/// wait (rows committing while the manager waits).
#[derive(Debug, Default)]
struct Waits {
    log: Mutex<Vec<Duration>>,
    commit_on_first: Option<Arc<InMemory>>,
}

impl Waits {
    fn recording() -> Arc<Self> {
        Arc::default()
    }

    fn committing(backend: &Arc<InMemory>) -> Arc<Self> {
        Arc::new(Self {
            log: Mutex::default(),
            commit_on_first: Some(Arc::clone(backend)),
        })
    }

    fn log(&self) -> Vec<Duration> {
        self.log.lock().unwrap().clone()
    }

    fn total(&self) -> Duration {
        self.log().iter().sum()
    }
}

impl Sleep for Waits {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut log = self.log.lock().unwrap();
        if log.is_empty()
            && let Some(backend) = &self.commit_on_first
        {
            backend.commit();
        }
        log.push(duration);
        Box::pin(ready(()))
    }
}

fn handle(table: &str, id: &str) -> ChannelHandle {
    ChannelHandle {
        channel: settings().channel(table),
        id: id.to_owned(),
    }
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

/// A valid channel that committed nothing and was handed nothing.
fn fresh() -> ChannelStatus {
    ChannelStatus {
        valid: true,
        committed: None,
        progress: Progress::Inserted(None),
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

/// An open answered with the table's columns and the channel's status (nothing committed).
fn opened(table: &str, id: &str, with: &[(&str, &str)]) -> OpenedChannel {
    OpenedChannel {
        handle: handle(table, id),
        status: Some(fresh()),
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

fn id_schema() -> Schema {
    schema(&[("ID", WarehouseType::String)])
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

/// Rows as the table holds them.
fn texts(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| format!(r#"{{"ID":"{id}"}}"#)).collect()
}

fn id_of(table: &str, id: &str) -> ChannelId {
    ChannelId {
        table: table.to_owned(),
        id: id.to_owned(),
    }
}

/// An import entry of the table's rows, in `channel`, segment by segment.
fn entry(channel: &Channel, segments: &[&Segment]) -> EntryRows {
    EntryRows {
        table: channel.table.clone(),
        channel_id: channel.id().to_owned(),
        segments: segments
            .iter()
            .map(|s| Positions {
                epoch: s.epoch,
                first: s.first,
                last: s.last,
                fence: s.fence,
            })
            .collect(),
    }
}

fn verdict(committed_through: u64, rest: Rest) -> SegmentVerdict {
    SegmentVerdict {
        committed_through,
        rest,
    }
}

/// A mocked backend (sidecar-like unless told) and warehouse; every call not expected fails the test.
struct Fixture {
    backend: MockBackend,
    warehouse: MockWarehouse,
    settings: ChannelSettings,
    seq: Sequence,
}

impl Fixture {
    fn new() -> Self {
        Self::with_capabilities(sidecar_like())
    }

    fn with_capabilities(capabilities: Capabilities) -> Self {
        let mut backend = MockBackend::new();
        backend.expect_capabilities().return_const(capabilities);
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
            ChannelManager::new(self.backend, self.warehouse, self.settings, backoff(&clock))
                .with_time(
                    Arc::clone(&clock) as Arc<dyn Clock>,
                    Waits::recording() as Arc<dyn Sleep>,
                );
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
}

/// The in-memory backend with the table in place, its manager (whose warehouse must not be called), the
/// state store and the sleep the manager uses.
struct Mem {
    backend: Arc<InMemory>,
    state: Arc<MemoryState>,
    waits: Arc<Waits>,
    manager: Manager,
}

type Manager = ChannelManager<Arc<InMemory>, MockWarehouse>;

/// A manager over `backend` keeping its states in `state` and waiting with `waits`.
fn manager_on(
    backend: &Arc<InMemory>,
    state: &Arc<MemoryState>,
    waits: &Arc<Waits>,
    settings: ChannelSettings,
) -> Manager {
    let clock = Arc::new(ManualClock::default());
    ChannelManager::new(
        Arc::clone(backend),
        MockWarehouse::new(),
        settings,
        backoff(&clock),
    )
    .with_state(Arc::clone(state) as Arc<dyn StateStore>)
    .with_time(clock, Arc::clone(waits) as Arc<dyn Sleep>)
}

fn sidecar() -> InMemory {
    InMemory::new().with_capabilities(sidecar_like())
}

impl Mem {
    fn new(backend: InMemory) -> Self {
        Self::with(backend, settings())
    }

    /// Rows commit on the manager's first wait.
    fn committing(backend: InMemory) -> Self {
        let mut mem = Self::new(backend);
        mem.waits = Waits::committing(&mem.backend);
        mem.manager = manager_on(&mem.backend, &mem.state, &mem.waits, settings());
        mem
    }

    fn with(backend: InMemory, settings: ChannelSettings) -> Self {
        let backend = Arc::new(backend);
        for table in [TABLE, "A", "B", "C"] {
            backend.create_table(
                &settings.channel(table).table,
                &[("ID", "VARCHAR(16777216)")],
            );
        }
        let state = Arc::new(MemoryState::default());
        let waits = Waits::recording();
        let manager = manager_on(&backend, &state, &waits, settings);
        Self {
            backend,
            state,
            waits,
            manager,
        }
    }

    async fn open(&self) -> Arc<Channel> {
        self.manager
            .initialize_with_schema(TABLE, &id_schema())
            .await
            .unwrap()
    }

    async fn append(&self, ids: &[&str]) -> AppendOutcome {
        self.manager.append(TABLE, rows(ids)).await.unwrap()
    }

    /// Turns the channel invalid (its pending rows are gone) and opens the table's channel anew in this
    /// process: refresh forgets it, initialize opens a new epoch.
    async fn reopen(&self, channel: &Channel) -> Arc<Channel> {
        assert!(self.backend.invalidate(&channel.handle.channel));
        self.manager.refresh(&[TABLE.to_owned()]).await.unwrap();
        let reopened = self.open().await;
        assert_ne!(reopened.id(), channel.id());
        reopened
    }

    fn calls(&self, call: Call) -> usize {
        self.backend.calls().iter().filter(|c| **c == call).count()
    }

    /// The table's committed rows, as text.
    fn rows(&self) -> Vec<String> {
        self.backend
            .rows(&settings().channel(TABLE).table)
            .iter()
            .map(|row| String::from_utf8_lossy(row.as_bytes()).into_owned())
            .collect()
    }

    /// Commits what is pending and returns the table's rows.
    fn landed(&self) -> Vec<String> {
        self.backend.commit();
        self.rows()
    }

    /// The table's last opening, as the state store keeps it.
    fn opening(&self) -> Token {
        Token::parse(&self.state.load(TABLE).unwrap().opening).unwrap()
    }

    /// The channel's status, asked of the backend directly.
    async fn status(&self, channel: &Channel) -> ChannelStatus {
        self.backend
            .channel_status(&channel.handle)
            .await
            .unwrap()
            .unwrap()
    }

    async fn judge(&self, entry: EntryRows, settle: bool) -> EntryVerdict {
        judge_one(&self.manager, entry, settle).await
    }
}

async fn judge_one(manager: &Manager, entry: EntryRows, settle: bool) -> EntryVerdict {
    let mut verdicts = manager.judge(&[entry], settle).await;
    assert_eq!(verdicts.len(), 1);
    verdicts.pop().unwrap().unwrap()
}

// --- Opening channels, DDL and the auth backoff ---

#[tokio::test]
async fn a_cached_channel_needs_no_second_open() {
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
        first.epoch.ordered, CLOCK_MICROS,
        "the epoch is the clock's"
    );
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
    assert!(Arc::ptr_eq(&first, &manager.cached(TABLE).await.unwrap()));
}

#[tokio::test]
async fn a_missing_schema_creates_schema_and_table_then_opens() {
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
async fn an_invalid_create_table_aborts_without_starting_the_backoff() {
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
    assert!(manager.cached(TABLE).await.is_none());
    assert_eq!(
        manager.backoff().failures(),
        0,
        "an invalid statement is not an auth failure"
    );
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
async fn backend_refusals_map_to_failure_kinds_and_auth_starts_the_backoff() {
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
        assert_eq!(
            manager.backoff().check().is_err(),
            kind == FailureKind::Auth,
            "{name}"
        );
        assert!(manager.cached(TABLE).await.is_none(), "{name}");
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
async fn a_cached_channel_without_new_columns_works_during_the_backoff() {
    let mut fx = Fixture::new();
    fx.expect_open(
        TABLE,
        Ok(opened(TABLE, "ch", &[("ID", "TEXT"), ("N", "NUMBER")])),
    );
    fx.warehouse.expect_add_columns().never();
    let (manager, _) = fx.build();
    let first = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    manager.backoff().record_failure("earlier auth failure");
    let again = manager
        .initialize_with_schema(TABLE, &event_schema())
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    assert!(manager.backoff().check().is_err(), "still backing off");
    manager.reset_backoff();
    assert_eq!(manager.backoff().failures(), 0);
    assert!(manager.backoff().check().is_ok());
}

/// A column of a type the pipeline does not read (`GEOGRAPHY`) is still the table's: an event naming it
/// must not add it again (and reopen the channel) on every upload.
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
    assert_eq!(manager.cached(TABLE).await.unwrap().id(), "second");
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
    assert!(manager.cached(TABLE).await.is_none());
}

// --- Epochs and tokens ---

#[tokio::test]
async fn the_first_opening_lists_no_earlier_epoch() {
    let mem = Mem::new(sidecar());
    let channel = mem.open().await;
    let kept = mem.state.load(TABLE).unwrap();
    assert_eq!(kept.channel_id, channel.id());
    let opening = mem.opening();
    assert_eq!(opening.epoch, channel.epoch);
    assert_eq!(opening.epoch.ordered, CLOCK_MICROS);
    assert_eq!(opening.position, 0);
    assert!(opening.finals.is_empty(), "{opening}");
    assert_eq!(opening.known_since, 0, "nothing ever committed: complete");
    assert_eq!(
        mem.status(&channel).await.committed,
        None,
        "the sidecar's open writes no token"
    );
}

#[tokio::test]
async fn a_reopens_opening_token_lists_the_previous_epochs_final_position_as_committed() {
    let mem = Mem::new(sidecar());
    let e1 = mem.open().await;
    mem.append(&["a", "b", "c"]).await;
    mem.backend.commit();
    // Appended, never committed: not part of the final.
    mem.append(&["d", "e"]).await;
    let e2 = mem.reopen(&e1).await;
    assert!(e2.epoch.ordered > e1.epoch.ordered);
    let opening = mem.opening();
    assert_eq!(opening.epoch, e2.epoch);
    assert_eq!(
        opening.finals,
        [Final {
            epoch: e1.epoch,
            position: 3
        }]
    );
    assert_eq!(opening.known_since, 0);

    // The second epoch commits one row: the next opening lists both, newest first.
    mem.append(&["f"]).await;
    mem.backend.commit();
    let e3 = mem.reopen(&e2).await;
    let opening = mem.opening();
    assert_eq!(opening.epoch, e3.epoch);
    assert_eq!(
        opening.finals,
        [
            Final {
                epoch: e2.epoch,
                position: 1
            },
            Final {
                epoch: e1.epoch,
                position: 3
            }
        ]
    );
    assert_eq!(mem.landed(), texts(&["a", "b", "c", "f"]));
}

#[tokio::test]
async fn a_new_manager_waits_for_the_previous_managers_pending_rows_before_reopening() {
    let mem = Mem::new(sidecar());
    let e1 = mem.open().await;
    let appended = mem.append(&["a", "b"]).await;
    assert_eq!(mem.backend.pending_rows(), 2);

    // The next process, sharing the state store; the rows commit while it waits.
    let waits = Waits::committing(&mem.backend);
    let next = manager_on(&mem.backend, &mem.state, &waits, settings());
    let e2 = next
        .initialize_with_schema(TABLE, &id_schema())
        .await
        .unwrap();
    assert!(!waits.log().is_empty(), "it waited for the rows");
    assert_eq!(mem.backend.pending_rows(), 0);
    assert_eq!(mem.rows(), texts(&["a", "b"]), "nothing was discarded");
    assert_ne!(e2.id(), e1.id());
    assert!(e2.epoch.ordered > e1.epoch.ordered);
    assert_eq!(
        mem.opening().finals,
        [Final {
            epoch: e1.epoch,
            position: 2
        }]
    );
    let judged = judge_one(&next, entry(&e1, &[&appended.segments[0]]), false).await;
    assert_eq!(judged.segments, [verdict(2, Rest::Nothing)]);
}

#[tokio::test]
async fn a_new_manager_reopens_anyway_when_the_previous_rows_never_commit_and_they_are_lost() {
    let mem = Mem::new(sidecar());
    let e1 = mem.open().await;
    let appended = mem.append(&["a"]).await;

    let waits = Waits::recording();
    let reopen_wait = settings().reopen_wait;
    let next = manager_on(&mem.backend, &mem.state, &waits, settings());
    let e2 = next
        .initialize_with_schema(TABLE, &id_schema())
        .await
        .unwrap();
    assert_ne!(e2.id(), e1.id());
    // It waited about `reopen_wait`: at least that, and no wait began after it ran out.
    let log = waits.log();
    assert!(waits.total() >= reopen_wait, "{log:?}");
    assert!(
        waits.total() - *log.last().unwrap() < reopen_wait,
        "{log:?}"
    );
    assert_eq!(
        mem.backend.pending_rows(),
        0,
        "the reopen discarded the rows"
    );

    let judged = judge_one(&next, entry(&e1, &[&appended.segments[0]]), false).await;
    assert_eq!(judged.segments, [verdict(0, Rest::Lost)], "never succeeded");
    assert!(mem.landed().is_empty());
}

#[tokio::test]
async fn on_a_backend_that_stores_tokens_the_opening_writes_a_fence() {
    let mem = Mem::new(InMemory::new());
    let channel = mem.open().await;
    let kept = mem.state.load(TABLE).unwrap();
    let status = mem.status(&channel).await;
    assert!(status.valid, "the channel in use is the fence's opening");
    assert_eq!(status.committed.as_deref(), Some(kept.opening.as_str()));
    let fence = Token::parse(&kept.opening).unwrap();
    assert_eq!((fence.epoch, fence.position), (channel.epoch, 0));
    assert_eq!(mem.calls(Call::OpenChannel), 2, "the open, then the fence");

    // Rows of the fenced epoch are in flight until they commit.
    let appended = mem.append(&["a"]).await;
    let judged = mem
        .judge(entry(&channel, &[&appended.segments[0]]), false)
        .await;
    assert_eq!(judged.segments, [verdict(0, Rest::InFlight)]);
    mem.backend.commit();
    let judged = mem
        .judge(entry(&channel, &[&appended.segments[0]]), false)
        .await;
    assert_eq!(judged.segments, [verdict(1, Rest::Nothing)]);
}

/// Another writer's token, for answers that do not show the fence.
fn another_writers_token() -> String {
    Token {
        epoch: Epoch {
            ordered: CLOCK_MICROS,
            nonce: 7,
        },
        position: 0,
        known_since: 0,
        finals: Vec::new(),
    }
    .to_string()
}

fn counters(created_on_ms: i64) -> Progress {
    Progress::Counters(RowCounters {
        created_on_ms,
        ..RowCounters::default()
    })
}

/// A REST-like mock whose opens answer, call by call (counted from 1), what `answer` says: the committed
/// token and the channel's creation time. Records the fences it was asked to write.
fn fencing_backend(
    calls: usize,
    answer: impl Fn(usize, Option<&str>) -> (Option<String>, i64) + Send + 'static,
) -> (Fixture, Arc<Mutex<Vec<String>>>) {
    let mut fx = Fixture::with_capabilities(rest_like());
    let fences: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = Arc::clone(&fences);
    let mut n = 0;
    fx.backend
        .expect_open_channel()
        .times(calls)
        .returning(move |channel, options| {
            n += 1;
            assert_eq!(*channel, settings().channel(TABLE));
            assert_eq!(options.uncommitted, OnUncommitted::Wait);
            if let Some(fence) = &options.offset_token {
                record.lock().unwrap().push(fence.clone());
            }
            let (committed, created_on_ms) = answer(n, options.offset_token.as_deref());
            Ok(OpenedChannel {
                handle: handle(TABLE, &format!("ch-{n}")),
                status: Some(ChannelStatus {
                    valid: true,
                    committed,
                    progress: counters(created_on_ms),
                }),
                columns: Some(columns(&[("ID", "TEXT")])),
            })
        });
    (fx, fences)
}

#[tokio::test]
async fn an_opening_whose_fence_does_not_show_starts_over() {
    let (fx, fences) = fencing_backend(4, |n, fence| match (n, fence) {
        // Another writer's fence got in between the first fence and its answer.
        (2, Some(_)) => (Some(another_writers_token()), 1),
        (_, fence) => (fence.map(str::to_owned), 1),
    });
    let state = Arc::new(MemoryState::default());
    let (manager, _) = fx.build();
    let manager = manager.with_state(Arc::clone(&state) as Arc<dyn StateStore>);
    let channel = manager
        .initialize_with_schema(TABLE, &id_schema())
        .await
        .unwrap();
    assert_eq!(channel.id(), "ch-4", "the second fence's channel");
    let fences = fences.lock().unwrap().clone();
    assert_eq!(fences.len(), 2);
    let kept = state.load(TABLE).unwrap();
    assert_eq!(kept.opening, fences[1]);
    assert_eq!(Token::parse(&fences[1]).unwrap().epoch, channel.epoch);
}

#[tokio::test]
async fn an_opening_gives_up_after_three_fences_that_do_not_show() {
    let (fx, fences) = fencing_backend(6, |n, fence| match (n, fence) {
        (2 | 6, Some(_)) => (Some(another_writers_token()), 1),
        // The fence shows, but the channel was dropped and created anew in between.
        (4, Some(fence)) => (Some(fence.to_owned()), 2),
        _ => (None, 1),
    });
    let (manager, _) = fx.build();
    let error = manager
        .initialize_with_schema(TABLE, &id_schema())
        .await
        .unwrap_err();
    assert!(matches!(error, ChannelError::Append { .. }), "{error}");
    assert!(error.to_string().contains("3 times"), "{error}");
    assert_eq!(error.kind(), FailureKind::Retry);
    assert!(manager.cached(TABLE).await.is_none());
    let fences = fences.lock().unwrap().clone();
    assert_eq!(fences.len(), 3);
    for fence in &fences {
        assert_eq!(Token::parse(fence).unwrap().position, 0, "{fence}");
    }
}

// --- Appends ---

#[tokio::test]
async fn rows_get_consecutive_positions_and_the_committed_token_is_the_last_end_token() {
    let mem = Mem::new(sidecar());
    let channel = mem.open().await;
    let opening = mem.opening();
    let first = mem.append(&["a", "b"]).await;
    assert!(Arc::ptr_eq(&first.channel, &channel));
    assert!(first.failed.is_empty());
    assert_eq!(
        first.segments,
        [Segment {
            epoch: channel.epoch,
            first: 1,
            last: 2,
            rows: 0..2,
            end_token: opening.at(2).to_string(),
            fence: None,
        }]
    );
    let second = mem.append(&["c", "d", "e"]).await;
    assert_eq!(
        second.segments,
        [Segment {
            epoch: channel.epoch,
            first: 3,
            last: 5,
            rows: 0..3,
            end_token: opening.at(5).to_string(),
            fence: None,
        }]
    );
    mem.backend.commit();
    let status = mem.status(&channel).await;
    assert_eq!(
        status.committed.as_deref(),
        Some(&*second.segments[0].end_token)
    );
    let token = Token::parse(status.committed_str()).unwrap();
    assert_eq!((token.epoch, token.position), (channel.epoch, 5));
    assert_eq!(mem.rows(), texts(&["a", "b", "c", "d", "e"]));
}

#[tokio::test]
async fn each_request_of_an_append_carries_its_own_rows_positions() {
    let mem = Mem::new(sidecar().with_max_request_rows(2));
    let channel = mem.open().await;
    let appended = mem.append(&["a", "b", "c", "d", "e"]).await;
    assert_eq!(
        (appended.segments[0].first, appended.segments[0].last),
        (1, 5)
    );
    // Three requests: 1..=2, 3..=4, 5..=5; the last one committed says 5.
    mem.backend.commit();
    let token = Token::parse(mem.status(&channel).await.committed_str()).unwrap();
    assert_eq!(token.position, 5);
    assert_eq!(mem.rows().len(), 5);
}

#[tokio::test]
async fn a_refused_request_uses_up_no_position_and_its_rows_fail() {
    for (fault, reason) in [
        (Fault::Retryable, "scripted retryable failure"),
        (Fault::Permanent, "scripted permanent failure"),
    ] {
        let mem = Mem::new(sidecar());
        let channel = mem.open().await;
        mem.append(&["a", "b"]).await;
        mem.backend.fail_next(Call::Append, 1, fault);
        let error = mem
            .manager
            .append(TABLE, rows(&["c", "d"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ChannelError::Append { channel_id, .. } if channel_id == channel.id()),
            "{fault:?}: {error}"
        );
        assert!(error.to_string().contains(reason), "{fault:?}: {error}");
        assert_eq!(error.kind(), FailureKind::Retry, "{fault:?}");
        let next = mem.append(&["c", "d"]).await;
        assert_eq!(
            (next.segments[0].first, next.segments[0].last),
            (3, 4),
            "{fault:?}: the refused request's positions are used again"
        );
        assert_eq!(mem.calls(Call::OpenChannel), 1, "{fault:?}: no reopen");
        assert_eq!(mem.landed(), texts(&["a", "b", "c", "d"]), "{fault:?}");
    }
}

#[tokio::test]
async fn rows_after_a_partly_accepted_append_fail_and_the_accepted_ones_keep_their_positions() {
    let mut fx = Fixture::new();
    fx.expect_open(TABLE, Ok(opened(TABLE, "ch", &[("ID", "TEXT")])));
    let starts: Arc<Mutex<Vec<u64>>> = Arc::default();
    let record = Arc::clone(&starts);
    let mut answers = vec![
        Ok(Appended::default()),
        Err(AppendError {
            accepted: vec![SentRequest {
                rows: 0..1,
                tokens: snowpipe_api::TokenRange::single("accepted"),
                body_bytes: 10,
            }],
            error: retryable(Call::Append),
        }),
    ];
    fx.backend
        .expect_append()
        .times(2)
        .returning(move |channel, request| {
            assert_eq!(channel.id, "ch");
            let tokens = request.tokens.tokens(0..request.rows.len());
            record
                .lock()
                .unwrap()
                .push(Token::parse(&tokens.start).unwrap().position);
            answers.pop().unwrap()
        });
    let (manager, _) = fx.build();
    manager
        .initialize_with_schema(TABLE, &id_schema())
        .await
        .unwrap();
    let partly = manager.append(TABLE, rows(&["a", "b", "c"])).await.unwrap();
    assert_eq!(partly.segments.len(), 1);
    assert_eq!((partly.segments[0].first, partly.segments[0].last), (1, 1));
    assert_eq!(partly.segments[0].rows, 0..1);
    assert_eq!(partly.failed.len(), 1, "{:?}", partly.failed);
    assert_eq!(partly.failed[0].rows, [1, 2]);
    assert!(
        partly.failed[0].reason.contains(SAYS_NO),
        "{}",
        partly.failed[0].reason
    );
    // The next append starts right after the accepted row.
    let next = manager.append(TABLE, rows(&["b", "c"])).await.unwrap();
    assert_eq!((next.segments[0].first, next.segments[0].last), (2, 3));
    assert_eq!(*starts.lock().unwrap(), [1, 2]);
}

#[tokio::test]
async fn a_lost_answer_whose_rows_were_applied_but_not_committed_is_resent_once_in_a_new_epoch() {
    let mem = Mem::new(sidecar());
    let e1 = mem.open().await;
    mem.append(&["a"]).await;
    mem.backend.commit();
    mem.backend
        .fail_next(Call::Append, 1, Fault::LoseAnswer { applied: true });
    let outcome = mem.append(&["b", "c"]).await;
    assert!(outcome.failed.is_empty());
    assert_ne!(outcome.channel.epoch, e1.epoch, "settled by a reopen");
    assert_eq!(outcome.segments.len(), 1);
    let segment = &outcome.segments[0];
    assert_eq!(
        segment.epoch, outcome.channel.epoch,
        "sent again in the new epoch"
    );
    assert_eq!(
        (segment.first, segment.last, segment.rows.clone()),
        (1, 2, 0..2)
    );
    assert_eq!(mem.calls(Call::Append), 3, "a, b-c lost, b-c once more");
    assert_eq!(
        mem.waits.log(),
        [settings().lost_answer_margin],
        "the reopen waited for a request still in transit"
    );
    assert_eq!(
        mem.opening().finals,
        [Final {
            epoch: e1.epoch,
            position: 1
        }]
    );
    assert_eq!(mem.landed(), texts(&["a", "b", "c"]), "exactly once");
}

#[tokio::test]
async fn a_lost_answer_whose_rows_were_applied_and_committed_is_not_resent() {
    let mem = Mem::new(sidecar().with_auto_commit());
    let e1 = mem.open().await;
    let opening = mem.opening();
    mem.backend
        .fail_next(Call::Append, 1, Fault::LoseAnswer { applied: true });
    let outcome = mem.append(&["a", "b"]).await;
    assert!(outcome.failed.is_empty());
    assert_eq!(
        outcome.segments,
        [Segment {
            epoch: e1.epoch,
            first: 1,
            last: 2,
            rows: 0..2,
            end_token: opening.at(2).to_string(),
            fence: None,
        }],
        "the rows stay where they went in"
    );
    assert_ne!(outcome.channel.epoch, e1.epoch, "settled by a reopen");
    assert_eq!(
        mem.opening().finals,
        [Final {
            epoch: e1.epoch,
            position: 2
        }]
    );
    assert_eq!(mem.calls(Call::Append), 1, "never resent");
    assert_eq!(mem.rows(), texts(&["a", "b"]));
}

#[tokio::test]
async fn a_lost_answer_whose_rows_were_not_applied_is_resent_and_lands_once() {
    let mem = Mem::new(sidecar());
    let e1 = mem.open().await;
    mem.backend
        .fail_next(Call::Append, 1, Fault::LoseAnswer { applied: false });
    let outcome = mem.append(&["a"]).await;
    assert!(outcome.failed.is_empty());
    assert_eq!(outcome.segments.len(), 1);
    assert_ne!(outcome.segments[0].epoch, e1.epoch);
    assert_eq!(outcome.segments[0].epoch, outcome.channel.epoch);
    assert_eq!(mem.calls(Call::Append), 2);
    assert_eq!(mem.landed(), texts(&["a"]));
}

#[tokio::test]
async fn rows_the_sidecar_rejected_are_settled_by_a_reopen_and_never_duplicated() {
    // The sidecar's `success:false` names the refused rows (here row 0, "b"); its SDK may or may not keep
    // the others. The refused row fails at once, never sent again; the others are settled by a reopen
    // and resent once, in the new epoch.
    let mem = Mem::new(sidecar());
    let e1 = mem.open().await;
    mem.append(&["a"]).await;
    mem.backend.commit();
    mem.backend.fail_next(Call::Append, 1, Fault::RowsRejected);
    let outcome = mem.append(&["b", "c"]).await;
    assert_eq!(outcome.failed.len(), 1, "{:?}", outcome.failed);
    assert_eq!(outcome.failed[0].rows, [0]);
    assert!(
        outcome.failed[0]
            .reason
            .contains("refused for these rows: row 0: scripted"),
        "{}",
        outcome.failed[0].reason
    );
    assert_eq!(outcome.segments.len(), 1);
    assert_ne!(outcome.segments[0].epoch, e1.epoch);
    assert_eq!(outcome.segments[0].rows, 1..2);
    assert_eq!(
        (outcome.segments[0].first, outcome.segments[0].last),
        (1, 1)
    );
    assert_eq!(mem.calls(Call::Append), 3);
    assert!(
        mem.waits.log().is_empty(),
        "an answer came: no margin to wait"
    );
    assert_eq!(
        mem.opening().finals,
        [Final {
            epoch: e1.epoch,
            position: 1
        }]
    );
    assert_eq!(mem.landed(), texts(&["a", "c"]));
}

#[tokio::test]
async fn a_channel_lost_by_a_restart_mid_append_is_reopened_and_the_rows_resent() {
    let mem = Mem::new(sidecar());
    let channel = mem.open().await;
    mem.backend.restart();
    let outcome = mem.append(&["a"]).await;
    assert_ne!(outcome.channel.id(), channel.id());
    assert!(Arc::ptr_eq(
        &outcome.channel,
        &mem.manager.cached(TABLE).await.unwrap()
    ));
    assert_eq!(outcome.channel.schema, channel.schema);
    assert_eq!(outcome.segments[0].epoch, outcome.channel.epoch);
    assert_eq!(mem.calls(Call::OpenChannel), 2);
    assert_eq!(mem.calls(Call::Append), 2);
    assert_eq!(mem.landed(), texts(&["a"]));
}

#[tokio::test]
async fn after_max_reopens_a_last_reopen_settles_and_rows_surely_not_in_fail_unsent() {
    let mut settings = settings();
    settings.max_reopens = 2;
    let mem = Mem::with(sidecar(), settings);
    mem.open().await;
    mem.backend
        .fail_next(Call::Append, 5, Fault::LoseAnswer { applied: false });
    let outcome = mem.append(&["a", "b"]).await;
    assert_eq!(mem.calls(Call::Append), 3, "sent, then once per reopen");
    assert_eq!(
        mem.calls(Call::OpenChannel),
        4,
        "the first open, two reopens that resend, one that only settles"
    );
    assert!(outcome.segments.is_empty(), "{:?}", outcome.segments);
    assert_eq!(outcome.failed.len(), 1);
    assert_eq!(outcome.failed[0].rows, [0, 1]);
    assert!(
        outcome.failed[0].reason.contains("3 times in a row"),
        "{}",
        outcome.failed[0].reason
    );
    assert!(mem.landed().is_empty(), "never sent a fourth time");
}

#[tokio::test]
async fn after_max_reopens_rows_that_landed_meanwhile_count_as_in() {
    let mut settings = settings();
    settings.max_reopens = 1;
    let mem = Mem::with(sidecar().with_auto_commit(), settings);
    mem.open().await;
    mem.backend
        .fail_next(Call::Append, 1, Fault::LoseAnswer { applied: false });
    mem.backend
        .fail_next(Call::Append, 1, Fault::LoseAnswer { applied: true });
    let outcome = mem.append(&["a", "b"]).await;
    assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
    assert_eq!(outcome.segments.len(), 1);
    assert_eq!(outcome.segments[0].rows, 0..2);
    assert_eq!(mem.calls(Call::Append), 2);
    assert_eq!(mem.landed(), texts(&["a", "b"]));
}

// --- Judging ---

#[tokio::test]
async fn committed_segments_are_judged_committed_and_pending_ones_in_flight() {
    let mem = Mem::new(sidecar());
    let channel = mem.open().await;
    let first = mem.append(&["a", "b"]).await;
    mem.backend.commit();
    let second = mem.append(&["c"]).await;
    let judged = mem
        .judge(
            entry(&channel, &[&first.segments[0], &second.segments[0]]),
            false,
        )
        .await;
    assert_eq!(
        judged.segments,
        [verdict(2, Rest::Nothing), verdict(2, Rest::InFlight)]
    );
    assert!(!judged.reopened_invalid);
    assert_eq!(mem.calls(Call::OpenChannel), 1, "no reopen");
}

/// The in-memory backend restarting as the service does (and as the emulator models it): every channel id
/// is forgotten with its pending rows, and the committed tokens stay. `InMemory::restart` forgets the tokens
/// too; this puts each one back with the channel's next open (the inner backend can store tokens, the
/// manager sees a sidecar).
#[derive(Debug)]
struct ServiceRestart {
    inner: Arc<InMemory>,
    /// The channels opened, and their last opening.
    opened: Mutex<HashMap<ChannelRef, ChannelHandle>>,
    /// Committed tokens to put back, by channel.
    kept: Mutex<HashMap<ChannelRef, String>>,
}

impl ServiceRestart {
    fn new(inner: &Arc<InMemory>) -> Self {
        Self {
            inner: Arc::clone(inner),
            opened: Mutex::default(),
            kept: Mutex::default(),
        }
    }

    async fn restart(&self) {
        let opened: Vec<(ChannelRef, ChannelHandle)> =
            self.opened.lock().unwrap().clone().into_iter().collect();
        for (channel, handle) in opened {
            let status = self.inner.channel_status(&handle).await.unwrap();
            if let Some(token) = status.and_then(|s| s.committed) {
                self.kept.lock().unwrap().insert(channel, token);
            }
        }
        self.inner.restart();
    }
}

#[async_trait]
impl Backend for ServiceRestart {
    fn capabilities(&self) -> Capabilities {
        sidecar_like()
    }

    async fn open_channel(
        &self,
        channel: &ChannelRef,
        options: &OpenOptions,
    ) -> snowpipe_api::Result<OpenedChannel> {
        let kept = self.kept.lock().unwrap().remove(channel);
        let options = match kept {
            Some(token) => options.clone().with_offset_token(token),
            None => options.clone(),
        };
        let opened = self.inner.open_channel(channel, &options).await?;
        self.opened
            .lock()
            .unwrap()
            .insert(channel.clone(), opened.handle.clone());
        Ok(opened)
    }

    async fn append(
        &self,
        channel: &ChannelHandle,
        request: &snowpipe_api::AppendRequest,
    ) -> Result<Appended, AppendError> {
        self.inner.append(channel, request).await
    }

    async fn channel_status(
        &self,
        channel: &ChannelHandle,
    ) -> snowpipe_api::Result<Option<ChannelStatus>> {
        self.inner.channel_status(channel).await
    }

    async fn bulk_status(
        &self,
        channels: &[ChannelHandle],
    ) -> snowpipe_api::Result<Vec<Option<ChannelStatus>>> {
        self.inner.bulk_status(channels).await
    }

    async fn drop_channel(
        &self,
        channel: &ChannelHandle,
        options: &snowpipe_api::DropOptions,
    ) -> snowpipe_api::Result<()> {
        self.inner.drop_channel(channel, options).await
    }
}

/// The service restarts: the channel is gone, its committed token is not (it is Snowflake's).
#[tokio::test]
async fn after_a_restart_the_channel_is_reopened_and_the_pending_rows_judged_lost() {
    let inner = Arc::new(InMemory::new());
    inner.create_table(
        &settings().channel(TABLE).table,
        &[("ID", "VARCHAR(16777216)")],
    );
    let backend = Arc::new(ServiceRestart::new(&inner));
    let clock = Arc::new(ManualClock::default());
    let manager = ChannelManager::new(
        Arc::clone(&backend),
        MockWarehouse::new(),
        settings(),
        backoff(&clock),
    )
    .with_time(clock, Waits::recording() as Arc<dyn Sleep>);
    let channel = manager
        .initialize_with_schema(TABLE, &id_schema())
        .await
        .unwrap();
    let first = manager.append(TABLE, rows(&["a", "b"])).await.unwrap();
    inner.commit();
    let second = manager.append(TABLE, rows(&["c"])).await.unwrap();
    backend.restart().await;
    let opens = |inner: &InMemory| {
        inner
            .calls()
            .iter()
            .filter(|c| **c == Call::OpenChannel)
            .count()
    };
    assert_eq!(opens(&inner), 1);
    let mut judged = manager
        .judge(
            &[entry(&channel, &[&first.segments[0], &second.segments[0]])],
            false,
        )
        .await;
    let judged = judged.pop().unwrap().unwrap();
    assert!(judged.reopened_invalid, "the backend had lost the channel");
    assert_eq!(opens(&inner), 2, "reopened");
    assert_ne!(manager.cached(TABLE).await.unwrap().id(), channel.id());
    assert_eq!(
        judged.segments,
        [verdict(2, Rest::Nothing), verdict(2, Rest::Lost)]
    );
    inner.commit();
    let landed: Vec<String> = inner
        .rows(&settings().channel(TABLE).table)
        .iter()
        .map(|row| String::from_utf8_lossy(row.as_bytes()).into_owned())
        .collect();
    assert_eq!(landed, texts(&["a", "b"]));
}

/// The same on `InMemory::restart` itself, which also forgets committed tokens: the reopen then finds
/// nothing ever committed, and rows that committed are judged lost (their retry would put them in twice).
#[tokio::test]
async fn after_an_in_memory_restart_committed_rows_are_still_judged_committed() {
    let mem = Mem::new(sidecar());
    let channel = mem.open().await;
    let first = mem.append(&["a", "b"]).await;
    mem.backend.commit();
    let second = mem.append(&["c"]).await;
    mem.backend.restart();
    let judged = mem
        .judge(
            entry(&channel, &[&first.segments[0], &second.segments[0]]),
            false,
        )
        .await;
    assert!(judged.reopened_invalid);
    assert_eq!(
        judged.segments,
        [verdict(2, Rest::Nothing), verdict(2, Rest::Lost)]
    );
}

#[tokio::test]
async fn settling_an_in_flight_entry_reopens_the_channel_and_judges_its_rows_lost() {
    let mem = Mem::new(sidecar());
    let channel = mem.open().await;
    let first = mem.append(&["a", "b"]).await;
    mem.backend.commit();
    let second = mem.append(&["c", "d"]).await;
    let judged = mem
        .judge(
            entry(&channel, &[&first.segments[0], &second.segments[0]]),
            true,
        )
        .await;
    assert_eq!(
        judged.segments,
        [verdict(2, Rest::Nothing), verdict(2, Rest::Lost)]
    );
    assert!(!judged.reopened_invalid, "the channel was valid");
    assert_eq!(mem.calls(Call::OpenChannel), 2, "settled by a reopen");
    assert_ne!(mem.manager.cached(TABLE).await.unwrap().id(), channel.id());
    assert_eq!(
        mem.landed(),
        texts(&["a", "b"]),
        "the lost rows never commit"
    );
}

#[tokio::test]
async fn settling_an_entry_of_an_invalid_channel_reports_it_invalid() {
    let mem = Mem::new(sidecar());
    let channel = mem.open().await;
    let first = mem.append(&["a", "b"]).await;
    mem.backend.commit();
    let second = mem.append(&["c", "d"]).await;
    assert!(mem.backend.invalidate(&channel.handle.channel));
    let judged = mem
        .judge(
            entry(&channel, &[&first.segments[0], &second.segments[0]]),
            false,
        )
        .await;
    assert!(judged.reopened_invalid);
    assert_eq!(
        judged.segments,
        [verdict(2, Rest::Nothing), verdict(2, Rest::Lost)]
    );
    assert_eq!(mem.calls(Call::OpenChannel), 2);
}

#[tokio::test]
async fn an_older_epoch_is_judged_from_the_later_openings_finals_in_the_same_process() {
    let mem = Mem::new(sidecar());
    let e1 = mem.open().await;
    let first = mem.append(&["a"]).await;
    mem.backend.commit();
    let second = mem.append(&["b"]).await;
    mem.reopen(&e1).await;
    let opens = mem.calls(Call::OpenChannel);
    let rows = entry(&e1, &[&first.segments[0], &second.segments[0]]);
    // The committed token is still the first epoch's: the later opening says more.
    let judged = mem.judge(rows.clone(), false).await;
    assert_eq!(
        judged.segments,
        [verdict(1, Rest::Nothing), verdict(1, Rest::Lost)]
    );
    // Once the later epoch commits, its token lists the same final.
    mem.append(&["c"]).await;
    mem.backend.commit();
    let judged = mem.judge(rows, false).await;
    assert_eq!(
        judged.segments,
        [verdict(1, Rest::Nothing), verdict(1, Rest::Lost)]
    );
    assert!(!judged.reopened_invalid);
    assert_eq!(mem.calls(Call::OpenChannel), opens, "no reopen to judge");
}

#[tokio::test]
async fn a_new_manager_judges_an_older_epoch_from_the_kept_opening_without_reopening() {
    let mem = Mem::new(sidecar());
    let e1 = mem.open().await;
    let first = mem.append(&["a"]).await;
    mem.backend.commit();
    let second = mem.append(&["b"]).await;
    mem.reopen(&e1).await;

    let next = manager_on(&mem.backend, &mem.state, &Waits::recording(), settings());
    let opens = mem.calls(Call::OpenChannel);
    let judged = judge_one(
        &next,
        entry(&e1, &[&first.segments[0], &second.segments[0]]),
        false,
    )
    .await;
    assert_eq!(
        judged.segments,
        [verdict(1, Rest::Nothing), verdict(1, Rest::Lost)]
    );
    assert_eq!(mem.calls(Call::OpenChannel), opens, "no reopen");
    assert!(next.cached(TABLE).await.is_none());
}

/// A token rewritten by hand (open with a token of its own). Where the channel's status still shows it (a
/// backend that names channels, not openings), the rows are undecidable for that reason; the writer, whose
/// opening the hand-made open superseded, reopens and cannot decide either.
#[tokio::test]
async fn a_committed_token_rewritten_to_something_unreadable_makes_rows_undecidable() {
    let mem = Mem::new(InMemory::new());
    let channel = mem.open().await;
    let appended = mem.append(&["a", "b"]).await;
    mem.backend.commit();
    let by_hand = mem
        .backend
        .open_channel(
            &settings().channel(TABLE),
            &OpenOptions::discard().with_offset_token("garbage"),
        )
        .await
        .unwrap();

    // A process that knows the channel only by the rewritten one.
    let elsewhere = manager_on(
        &mem.backend,
        &Arc::new(MemoryState::default()),
        &Waits::recording(),
        settings(),
    );
    let rows = EntryRows {
        channel_id: by_hand.handle.id.clone(),
        ..entry(&channel, &[&appended.segments[0]])
    };
    let judged = judge_one(&elsewhere, rows, false).await;
    assert_eq!(
        judged.segments,
        [verdict(0, Rest::Undecidable(Undecidable::UnreadableToken))]
    );

    // The writer itself.
    let judged = mem
        .judge(entry(&channel, &[&appended.segments[0]]), false)
        .await;
    assert_eq!(judged.segments.len(), 1);
    assert_eq!(judged.segments[0].committed_through, 0);
    assert!(
        matches!(judged.segments[0].rest, Rest::Undecidable(_)),
        "{judged:?}"
    );
}

/// Soak (REST) schedule: one upload to two tables, judged in one poll. The REST API names a channel, not an
/// opening, and every table's channel of one destination and instance has the same name (one per pipe):
/// entries of two tables with the same channel id are two channels, each judged from its own status, not
/// the first table's.
#[tokio::test]
async fn entries_of_two_tables_with_one_channel_id_are_judged_each_from_its_own_status() {
    let mut fx = Fixture::with_capabilities(rest_like());
    let epoch = |ordered: u64| Epoch { ordered, nonce: 7 };
    let token = move |ordered: u64| {
        Token {
            epoch: epoch(ordered),
            position: 1,
            known_since: 0,
            finals: Vec::new(),
        }
        .to_string()
    };
    let asked: Arc<Mutex<Vec<Chunk>>> = Arc::default();
    let record = Arc::clone(&asked);
    fx.backend
        .expect_bulk_status()
        .times(1)
        .returning(move |part| {
            record.lock().unwrap().push(
                part.iter()
                    .map(|h| (h.channel.table.table.clone(), h.id.clone()))
                    .collect(),
            );
            Ok(part
                .iter()
                .map(|h| {
                    let ordered = if h.channel.table.table == "A" { 10 } else { 20 };
                    Some(committed(&token(ordered)))
                })
                .collect())
        });
    let (manager, _) = fx.build();
    let rows = |table: &str, ordered: u64| EntryRows {
        table: table.to_owned(),
        channel_id: "SAME_NAME".to_owned(),
        segments: vec![Positions {
            epoch: epoch(ordered),
            first: 1,
            last: 1,
            fence: None,
        }],
    };
    let verdicts = manager.judge(&[rows("A", 10), rows("B", 20)], false).await;
    let segments: Vec<Vec<SegmentVerdict>> =
        verdicts.into_iter().map(|v| v.unwrap().segments).collect();
    assert_eq!(
        segments,
        [
            vec![verdict(1, Rest::Nothing)],
            vec![verdict(1, Rest::Nothing)]
        ]
    );
    let pair = |table: &str| (table.to_owned(), "SAME_NAME".to_owned());
    assert_eq!(*asked.lock().unwrap(), [vec![pair("A"), pair("B")]]);
}

/// Soak (REST) schedule: one upload whose rows commit, then the channel is dropped by hand (or expires)
/// before the first poll. The fence the opening wrote was the channel's committed token, so finding no token
/// at the reopen means it went back: the rows cannot be judged (they are in), never "lost" (which had the
/// router send them twice).
#[tokio::test]
async fn rows_of_a_fenced_channel_dropped_after_they_committed_are_undecidable_not_lost() {
    let mem = Mem::new(InMemory::new());
    let channel = mem.open().await;
    let appended = mem.append(&["a"]).await;
    assert_eq!(mem.landed().len(), 1);
    mem.backend
        .drop_channel(&channel.handle, &snowpipe_api::DropOptions::default())
        .await
        .unwrap();
    let judged = mem
        .judge(entry(&channel, &[&appended.segments[0]]), false)
        .await;
    assert_eq!(
        judged.segments,
        [verdict(0, Rest::Undecidable(Undecidable::TokenWentBack))]
    );
    // A later process, knowing the channel only from the state store, cannot tell either.
    let next = manager_on(&mem.backend, &mem.state, &Waits::recording(), settings());
    mem.backend
        .drop_channel(
            &mem.manager.cached(TABLE).await.unwrap().handle,
            &snowpipe_api::DropOptions::default(),
        )
        .await
        .unwrap();
    let judged = judge_one(&next, entry(&channel, &[&appended.segments[0]]), false).await;
    assert_eq!(
        judged.segments,
        [verdict(0, Rest::Undecidable(Undecidable::TokenWentBack))]
    );
}

#[tokio::test]
async fn wait_for_commit_answers_true_once_the_rows_commit() {
    let mem = Mem::committing(sidecar());
    mem.open().await;
    let first = mem.append(&["a"]).await;
    mem.backend.commit();
    assert_eq!(
        mem.manager
            .wait_for_commit(TABLE, &first.segments, Duration::from_secs(1))
            .await
            .unwrap(),
        CommitWait::Committed
    );
    assert!(mem.waits.log().is_empty(), "committed already: no wait");

    // Rows that commit while it waits.
    let second = mem.append(&["b"]).await;
    assert_eq!(
        mem.manager
            .wait_for_commit(TABLE, &second.segments, Duration::from_secs(1))
            .await
            .unwrap(),
        CommitWait::Committed
    );
    assert_eq!(mem.waits.log().len(), 1);
    assert_eq!(mem.rows(), texts(&["a", "b"]));
}

#[tokio::test]
async fn wait_for_commit_waits_for_every_segment() {
    let mem = Mem::committing(sidecar());
    mem.open().await;
    let first = mem.append(&["a"]).await;
    mem.backend.commit();
    let second = mem.append(&["b"]).await;
    let segments = [first.segments[0].clone(), second.segments[0].clone()];
    assert_eq!(
        mem.manager
            .wait_for_commit(TABLE, &segments, Duration::from_secs(1))
            .await
            .unwrap(),
        CommitWait::Committed,
        "the first segment committed, the second commits during the wait"
    );
    assert_eq!(mem.waits.log().len(), 1, "it waited for the second segment");
}

#[tokio::test]
async fn wait_for_commit_answers_false_when_the_wait_runs_out() {
    let mem = Mem::new(sidecar());
    mem.open().await;
    let appended = mem.append(&["a"]).await;
    let within = Duration::from_millis(100);
    assert_eq!(
        mem.manager
            .wait_for_commit(TABLE, &appended.segments, within)
            .await
            .unwrap(),
        CommitWait::NotCommitted
    );
    let log = mem.waits.log();
    assert!(mem.waits.total() >= within, "{log:?}");
    assert!(
        mem.waits.total() - *log.last().unwrap() < within,
        "no wait begins after `within`: {log:?}"
    );
    assert_eq!(mem.backend.pending_rows(), 1, "still in flight");
}

#[tokio::test]
async fn wait_for_commit_answers_false_at_once_for_lost_rows() {
    let mem = Mem::new(sidecar());
    let channel = mem.open().await;
    let appended = mem.append(&["a"]).await;
    mem.reopen(&channel).await;
    let waited = mem.waits.log().len();
    assert_eq!(
        mem.manager
            .wait_for_commit(TABLE, &appended.segments, Duration::from_secs(1))
            .await
            .unwrap(),
        CommitWait::NotCommitted
    );
    assert_eq!(mem.waits.log().len(), waited, "nothing to wait for");
}

#[tokio::test]
async fn a_failing_bulk_status_fails_every_entry_of_judge() {
    let mem = Mem::new(sidecar());
    let channel = mem.open().await;
    let appended = mem.append(&["a"]).await;
    mem.backend.fail_next(Call::BulkStatus, 1, Fault::Retryable);
    let rows = entry(&channel, &[&appended.segments[0]]);
    let verdicts = mem.manager.judge(&[rows.clone(), rows], false).await;
    assert_eq!(verdicts.len(), 2);
    for verdict in verdicts {
        let error = verdict.unwrap_err();
        assert_eq!(error.kind(), FailureKind::Retry);
        assert!(error.to_string().contains("scripted retryable"), "{error}");
    }
    assert_eq!(mem.calls(Call::OpenChannel), 1, "no reopen");
}

// --- Refresh and statuses ---

#[tokio::test]
async fn refresh_forgets_lost_and_invalid_channels_and_keeps_valid_ones() {
    let mut settings = settings();
    settings.bulk_status_batch_size = 2;
    let mem = Mem::with(sidecar(), settings);
    let mut opened = Vec::new();
    for table in ["A", "B", "C"] {
        opened.push(
            mem.manager
                .initialize_with_schema(table, &id_schema())
                .await
                .unwrap(),
        );
    }
    mem.backend
        .drop_channel(&opened[0].handle, &snowpipe_api::DropOptions::default())
        .await
        .unwrap();
    assert!(mem.backend.invalidate(&opened[1].handle.channel));

    let tables = ["A", "B", "C"].map(str::to_owned);
    mem.manager.refresh(&tables).await.unwrap();
    assert_eq!(mem.calls(Call::BulkStatus), 2, "in chunks of two");
    assert!(mem.manager.cached("A").await.is_none(), "lost");
    assert!(mem.manager.cached("B").await.is_none(), "invalid");
    let c = mem.manager.cached("C").await.unwrap();
    assert!(Arc::ptr_eq(&c, &opened[2]));

    for (table, old) in [("A", &opened[0]), ("B", &opened[1]), ("C", &opened[2])] {
        let new = mem
            .manager
            .initialize_with_schema(table, &id_schema())
            .await
            .unwrap();
        if table == "C" {
            assert!(Arc::ptr_eq(&new, old), "C is kept");
        } else {
            assert_ne!(new.id(), old.id(), "{table} is opened anew");
            assert!(
                new.epoch.ordered > old.epoch.ordered,
                "{table}: a new epoch"
            );
        }
    }
    assert_eq!(mem.calls(Call::OpenChannel), 5);
}

#[tokio::test]
async fn refresh_without_cached_channels_asks_nothing() {
    let mut fx = Fixture::new();
    fx.backend.expect_bulk_status().never();
    let (manager, _) = fx.build();
    manager.refresh(&["A".to_owned()]).await.unwrap();
    assert!(manager.cached("A").await.is_none());
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
    assert_eq!(manager.cached(TABLE).await.unwrap().id(), "ch");
}

#[tokio::test]
async fn statuses_are_asked_in_chunks_of_the_batch_size_in_order() {
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
