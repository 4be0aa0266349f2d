//! The whole channel layer in memory, through its public API: snowpipe-api's in-memory backend, and the
//! in-memory warehouse acting on the same catalog, so that DDL creates what the backend's channels find.
//! Time is a manual clock and a sleep that returns at once (committing the backend's pending rows on its
//! first call, where a test says so).
#![cfg(feature = "test-util")]

use std::{
    future::{Future, ready},
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use snowpipe_api::{
    Backend, Call, Capabilities, Column, Row, TableRef, memory::InMemory, retry::Sleep,
};
use snowpipe_channels::{
    AuthBackoff, BackoffConfig, ChannelManager, ChannelSettings, Channels, DestinationConfig,
    FailureKind, ManualClock, Warehouse, WarehouseError,
    memory::MemoryWarehouse,
    state::{MemoryState, StateStore},
    token::{Final, Token},
};
use snowpipe_grouping::{Schema, WarehouseType};

/// The in-memory warehouse, shared with the test so that it can read the statements run.
#[derive(Debug, Clone)]
struct Shared(Arc<MemoryWarehouse>);

#[async_trait]
impl Warehouse for Shared {
    async fn create_schema(&self, schema: &str) -> Result<(), WarehouseError> {
        self.0.create_schema(schema).await
    }

    async fn create_table(
        &self,
        schema: &str,
        table: &str,
        columns: &Schema,
    ) -> Result<(), WarehouseError> {
        self.0.create_table(schema, table, columns).await
    }

    async fn add_columns(
        &self,
        schema: &str,
        table: &str,
        columns: &Schema,
    ) -> Result<(), WarehouseError> {
        self.0.add_columns(schema, table, columns).await
    }

    async fn describe_table(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Option<Vec<Column>>, WarehouseError> {
        self.0.describe_table(schema, table).await
    }
}

/// A sleep that records its waits and returns at once; with a backend, commits its pending rows on the first
/// wait (rows committing while the manager waits).
#[derive(Debug, Default)]
struct Waits {
    log: Mutex<Vec<Duration>>,
    commit_on_first: Option<Arc<InMemory>>,
}

impl Waits {
    fn log(&self) -> Vec<Duration> {
        self.log.lock().unwrap().clone()
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

struct World {
    backend: Arc<InMemory>,
    warehouse: Arc<MemoryWarehouse>,
    state: Arc<MemoryState>,
    waits: Arc<Waits>,
    manager: ChannelManager<Arc<InMemory>, Shared>,
}

impl World {
    /// An empty catalog: no schema, no table.
    fn new(backend: InMemory) -> Self {
        Self::build(backend, false)
    }

    /// The same, with rows committing on the manager's first wait.
    fn committing(backend: InMemory) -> Self {
        Self::build(backend, true)
    }

    fn build(backend: InMemory, commit_on_first_wait: bool) -> Self {
        let backend = Arc::new(backend);
        let warehouse = Arc::new(MemoryWarehouse::new(Arc::clone(&backend), "DB"));
        let config = DestinationConfig {
            database: "DB".into(),
            namespace: "rudder".into(),
            ..DestinationConfig::default()
        };
        let mut settings = ChannelSettings::new("dest-1", "1", &config);
        settings.reopen_wait = Duration::from_millis(300);
        settings.lost_answer_margin = Duration::ZERO;
        let clock = Arc::new(ManualClock::default());
        let backoff = AuthBackoff::new(BackoffConfig::default(), Arc::clone(&clock) as _);
        let state = Arc::new(MemoryState::default());
        let waits = Arc::new(Waits {
            log: Mutex::default(),
            commit_on_first: commit_on_first_wait.then(|| Arc::clone(&backend)),
        });
        let manager = ChannelManager::new(
            Arc::clone(&backend),
            Shared(Arc::clone(&warehouse)),
            settings,
            backoff,
        )
        .with_state(Arc::clone(&state) as Arc<dyn StateStore>)
        .with_time(clock, Arc::clone(&waits) as Arc<dyn Sleep>);
        Self {
            backend,
            warehouse,
            state,
            waits,
            manager,
        }
    }

    fn table(&self, table: &str) -> TableRef {
        self.manager.settings().channel(table).table
    }

    /// The table's committed rows, as text.
    fn rows(&self, table: &str) -> Vec<String> {
        self.backend
            .rows(&self.table(table))
            .iter()
            .map(|row| String::from_utf8_lossy(row.as_bytes()).into_owned())
            .collect()
    }

    fn calls(&self, call: Call) -> usize {
        self.backend.calls().iter().filter(|c| **c == call).count()
    }

    /// How many times the table was described.
    fn describes(&self, table: &str) -> usize {
        let statement = format!(r#"DESCRIBE TABLE "RUDDER"."{table}""#);
        self.statements(&statement)
    }

    /// How many statements the warehouse ran that are `statement`.
    fn statements(&self, statement: &str) -> usize {
        self.warehouse
            .statements()
            .iter()
            .filter(|s| *s == statement)
            .count()
    }

    /// The table's last opening, as the state store keeps it.
    fn opening(&self, table: &str) -> Token {
        Token::parse(&self.state.load(table).unwrap().opening).unwrap()
    }
}

/// What the sidecar can do: report columns with an open and the latest token a channel was handed.
fn sidecar_like() -> Capabilities {
    Capabilities::none()
        .with_columns_on_open(true)
        .with_reports_inserted_offset(true)
}

fn schema(columns: &[(&str, WarehouseType)]) -> Schema {
    columns.iter().copied().collect()
}

fn event_schema() -> Schema {
    schema(&[("ID", WarehouseType::String), ("N", WarehouseType::Bigint)])
}

fn with_extra() -> Schema {
    schema(&[
        ("ID", WarehouseType::String),
        ("N", WarehouseType::Bigint),
        ("E", WarehouseType::Json),
    ])
}

fn row(text: &str) -> Row {
    Row::parse(text.to_owned()).unwrap()
}

const ADD_E: &str = r#"ALTER TABLE "RUDDER"."TRACKS" ADD COLUMN IF NOT EXISTS "E" VARIANT"#;

#[tokio::test]
async fn initialize_on_an_empty_catalog_creates_schema_and_table_and_rows_commit_under_their_tokens()
 {
    let world = World::new(InMemory::new().with_capabilities(sidecar_like()));
    let channel = world
        .manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    assert_eq!(
        world.warehouse.statements(),
        [
            r#"CREATE SCHEMA IF NOT EXISTS "RUDDER""#,
            r#"CREATE TABLE IF NOT EXISTS "RUDDER"."TRACKS" ("ID" VARCHAR, "N" NUMBER)"#,
        ],
        "the open reports the columns: nothing is described"
    );
    assert_eq!(
        channel.schema,
        schema(&[("ID", WarehouseType::String), ("N", WarehouseType::Int)])
    );

    let rows = vec![row(r#"{"ID":"a","N":1}"#), row(r#"{"ID":"b","N":2}"#)];
    let appended = world.manager.append("TRACKS", rows).await.unwrap();
    assert!(Arc::ptr_eq(&channel, &appended.channel));
    assert!(
        world.rows("TRACKS").is_empty(),
        "nothing lands before a commit"
    );
    assert_eq!(world.backend.commit(), 2);
    assert_eq!(
        world.rows("TRACKS"),
        [r#"{"ID":"a","N":1}"#, r#"{"ID":"b","N":2}"#]
    );
    let status = world
        .backend
        .channel_status(&channel.handle)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status.committed.as_deref(),
        Some(appended.segments[0].end_token.as_str())
    );
}

#[tokio::test]
async fn new_columns_take_one_alter_and_a_reopen_into_a_new_epoch_once_the_pending_rows_commit() {
    let world = World::committing(InMemory::new().with_capabilities(sidecar_like()));
    let old = world
        .manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    world
        .manager
        .append("TRACKS", vec![row(r#"{"ID":"a"}"#)])
        .await
        .unwrap();
    assert_eq!(world.backend.pending_rows(), 1);

    let new = world
        .manager
        .initialize_with_schema("TRACKS", &with_extra())
        .await
        .unwrap();
    assert_eq!(world.statements(ADD_E), 1);
    assert_ne!(new.id(), old.id());
    assert!(new.epoch.ordered > old.epoch.ordered, "a new epoch");
    assert!(new.schema.contains("E"));
    assert!(Arc::ptr_eq(
        &new,
        &world.manager.cached("TRACKS").await.unwrap()
    ));
    // The reopen waited for the old channel's row: it committed, nothing was discarded.
    assert!(!world.waits.log().is_empty(), "the reopen waited");
    assert_eq!(world.backend.pending_rows(), 0);
    assert_eq!(world.rows("TRACKS"), [r#"{"ID":"a"}"#]);
    assert_eq!(
        world.opening("TRACKS").finals,
        [Final {
            epoch: old.epoch,
            position: 1
        }]
    );

    world
        .manager
        .append("TRACKS", vec![row(r#"{"ID":"b","E":{"k":1}}"#)])
        .await
        .unwrap();
    world.backend.commit();
    assert_eq!(
        world.rows("TRACKS"),
        [r#"{"ID":"a"}"#, r#"{"ID":"b","E":{"k":1}}"#]
    );
    // Cached with the new column: no second statement.
    world
        .manager
        .initialize_with_schema("TRACKS", &with_extra())
        .await
        .unwrap();
    assert_eq!(world.statements(ADD_E), 1);
}

#[tokio::test]
async fn new_columns_on_a_backend_that_waits_itself_never_discard_pending_rows() {
    let world = World::new(InMemory::new());
    let old = world
        .manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    world
        .manager
        .append("TRACKS", vec![row(r#"{"ID":"a"}"#)])
        .await
        .unwrap();

    // The open waits for the uncommitted row (the REST API's 409): the jobs fail and come back.
    let error = world
        .manager
        .initialize_with_schema("TRACKS", &with_extra())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), FailureKind::Retry, "{error}");
    assert_eq!(world.backend.pending_rows(), 1, "nothing was discarded");
    assert!(
        world.waits.log().is_empty(),
        "the backend waits, not the manager"
    );

    world.backend.commit();
    let new = world
        .manager
        .initialize_with_schema("TRACKS", &with_extra())
        .await
        .unwrap();
    assert_ne!(new.id(), old.id());
    assert!(new.schema.contains("E"));
    assert_eq!(world.rows("TRACKS"), [r#"{"ID":"a"}"#]);
    assert_eq!(
        world.opening("TRACKS").finals,
        [Final {
            epoch: old.epoch,
            position: 1
        }]
    );
}

#[tokio::test]
async fn without_columns_on_open_each_table_is_described_once_while_cached_and_again_after_add_column()
 {
    let world = World::new(
        InMemory::new().with_capabilities(Capabilities::none().with_reports_inserted_offset(true)),
    );
    let channel = world
        .manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    assert_eq!(
        world.warehouse.statements(),
        [
            r#"CREATE SCHEMA IF NOT EXISTS "RUDDER""#,
            r#"CREATE TABLE IF NOT EXISTS "RUDDER"."TRACKS" ("ID" VARCHAR, "N" NUMBER)"#,
            r#"DESCRIBE TABLE "RUDDER"."TRACKS""#,
        ]
    );
    assert_eq!(
        channel.schema,
        schema(&[("ID", WarehouseType::String), ("N", WarehouseType::Int)])
    );

    // The cached channel, then a reopen after the channel turned invalid: the columns read once serve both.
    world
        .manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    assert!(world.backend.invalidate(&channel.handle.channel));
    world.manager.refresh(&["TRACKS".to_owned()]).await.unwrap();
    let reopened = world
        .manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    assert_ne!(reopened.id(), channel.id());
    assert_eq!(reopened.schema, channel.schema);
    assert_eq!(world.describes("TRACKS"), 1);
    assert_eq!(
        world.calls(Call::OpenChannel),
        3,
        "one refused open, then two"
    );

    // Another table is described on its own.
    world
        .manager
        .initialize_with_schema("PAGES", &event_schema())
        .await
        .unwrap();
    assert_eq!(world.describes("PAGES"), 1);
    assert_eq!(world.describes("TRACKS"), 1);

    // New columns change the table: it is described again.
    let widened = world
        .manager
        .initialize_with_schema("TRACKS", &with_extra())
        .await
        .unwrap();
    assert_eq!(world.describes("TRACKS"), 2);
    assert!(widened.schema.contains("E"), "{:?}", widened.schema);
    world
        .manager
        .initialize_with_schema("TRACKS", &with_extra())
        .await
        .unwrap();
    assert_eq!(world.describes("TRACKS"), 2, "the widened table is cached");
}

#[tokio::test]
async fn a_service_restart_between_appends_loses_no_row_and_duplicates_none() {
    let world = World::new(InMemory::new().with_capabilities(sidecar_like()));
    let channel = world
        .manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    world
        .manager
        .append("TRACKS", vec![row(r#"{"ID":"a"}"#)])
        .await
        .unwrap();
    world.backend.commit();
    world.backend.restart();
    let appended = world
        .manager
        .append("TRACKS", vec![row(r#"{"ID":"b"}"#)])
        .await
        .unwrap();
    assert_ne!(appended.channel.id(), channel.id());
    assert_eq!(appended.segments.len(), 1);
    assert_eq!(appended.segments[0].epoch, appended.channel.epoch);
    world.backend.commit();
    assert_eq!(world.rows("TRACKS"), [r#"{"ID":"a"}"#, r#"{"ID":"b"}"#]);
    assert_eq!(
        world.warehouse.statements().len(),
        2,
        "the reopen runs no DDL"
    );
}
