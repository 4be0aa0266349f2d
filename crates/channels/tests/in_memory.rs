//! The whole channel layer in memory, through its public API: snowpipe-api's in-memory backend, and the
//! in-memory warehouse acting on the same catalog, so that DDL creates what the backend's channels find.
#![cfg(feature = "test-util")]

use std::sync::Arc;

use async_trait::async_trait;
use snowpipe_api::{
    Backend, Call, Capabilities, Column, DropOptions, Progress, Row, TableRef, memory::InMemory,
};
use snowpipe_channels::{
    AuthBackoff, BackoffConfig, ChannelId, ChannelManager, ChannelSettings, Channels,
    DestinationConfig, ManualClock, Warehouse, WarehouseError, memory::MemoryWarehouse,
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

struct World {
    backend: Arc<InMemory>,
    warehouse: Arc<MemoryWarehouse>,
    manager: ChannelManager<Arc<InMemory>, Shared>,
}

impl World {
    /// An empty catalog: no schema, no table.
    fn new(backend: InMemory) -> Self {
        let backend = Arc::new(backend);
        let warehouse = Arc::new(MemoryWarehouse::new(Arc::clone(&backend), "DB"));
        let config = DestinationConfig {
            database: "DB".into(),
            namespace: "rudder".into(),
            ..DestinationConfig::default()
        };
        let backoff = AuthBackoff::new(BackoffConfig::default(), Arc::new(ManualClock::default()));
        let manager = ChannelManager::new(
            Arc::clone(&backend),
            Shared(Arc::clone(&warehouse)),
            ChannelSettings::new("dest-1", "1", &config),
            backoff,
        );
        Self {
            backend,
            warehouse,
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
        self.warehouse
            .statements()
            .iter()
            .filter(|s| **s == statement)
            .count()
    }
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

#[tokio::test]
async fn initialize_on_an_empty_catalog_creates_schema_and_table_and_appends_land_on_commit() {
    let world = World::new(InMemory::new());
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
    let after = world
        .manager
        .append(Arc::clone(&channel), rows, "1".into())
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&channel, &after));
    assert!(
        world.rows("TRACKS").is_empty(),
        "nothing lands before a commit"
    );
    assert_eq!(world.backend.commit(), 2);
    assert_eq!(
        world.rows("TRACKS"),
        [r#"{"ID":"a","N":1}"#, r#"{"ID":"b","N":2}"#]
    );
    let id = ChannelId {
        table: "TRACKS".into(),
        id: channel.id().to_owned(),
    };
    let status = world.manager.status(&id).await.unwrap().unwrap();
    assert_eq!(status.committed.as_deref(), Some("1"));
}

#[tokio::test]
async fn new_columns_are_added_and_the_channel_reopened_after_its_rows_commit() {
    let world = World::new(InMemory::new());
    let old = world
        .manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    world
        .manager
        .append(Arc::clone(&old), vec![row(r#"{"ID":"a"}"#)], "1".into())
        .await
        .unwrap();
    assert_eq!(world.backend.pending_rows(), 1);

    let new = world
        .manager
        .initialize_with_schema("TRACKS", &with_extra())
        .await
        .unwrap();
    assert_eq!(
        world.warehouse.statements().last().map(String::as_str),
        Some(r#"ALTER TABLE "RUDDER"."TRACKS" ADD COLUMN IF NOT EXISTS "E" VARIANT"#)
    );
    assert_ne!(new.id(), old.id());
    assert!(new.schema.contains("E"));
    assert!(Arc::ptr_eq(&new, &world.manager.cached("TRACKS").unwrap()));
    // The old channel's drop waited for its rows: they landed without a commit from the test.
    assert_eq!(world.backend.pending_rows(), 0);
    assert_eq!(world.rows("TRACKS"), [r#"{"ID":"a"}"#]);

    world
        .manager
        .append(
            Arc::clone(&new),
            vec![row(r#"{"ID":"b","E":{"k":1}}"#)],
            "2".into(),
        )
        .await
        .unwrap();
    world.backend.commit();
    assert_eq!(
        world.rows("TRACKS"),
        [r#"{"ID":"a"}"#, r#"{"ID":"b","E":{"k":1}}"#]
    );
    let names: Vec<String> = world
        .backend
        .columns(&world.table("TRACKS"))
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["ID", "N", "E"]);
}

#[tokio::test]
async fn without_columns_on_open_each_table_is_described_once_while_cached() {
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

    // The cached channel, a reopen for the poll path, and an open after the cache forgot the channel: the
    // columns read once serve them all.
    world
        .manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    let recreated = world.manager.recreate("TRACKS", None).await.unwrap();
    assert_eq!(recreated.schema, channel.schema);
    world.manager.forget("TRACKS");
    world
        .manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    assert_eq!(world.describes("TRACKS"), 1);
    assert_eq!(
        world.calls(Call::OpenChannel),
        4,
        "one refused open, then three"
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
async fn refresh_reopens_channels_the_backend_lost_or_invalidated() {
    let world = World::new(InMemory::new());
    let mut opened = Vec::new();
    for table in ["A", "B", "C"] {
        opened.push(
            world
                .manager
                .initialize_with_schema(table, &event_schema())
                .await
                .unwrap(),
        );
    }
    world
        .backend
        .drop_channel(&opened[0].handle, &DropOptions::default())
        .await
        .unwrap();
    assert!(world.backend.invalidate(&opened[1].handle.channel));

    let statuses_before = world.calls(Call::ChannelStatus);
    let tables = ["A", "B", "C"].map(str::to_owned);
    world.manager.refresh(&tables).await.unwrap();
    assert_eq!(world.calls(Call::BulkStatus), 1);
    assert!(world.manager.cached("A").is_none());
    assert!(world.manager.cached("B").is_none());
    let c = world.manager.cached("C").unwrap();
    assert!(Arc::ptr_eq(&c, &opened[2]));
    let before = world.manager.status_before(&c).await.unwrap();
    assert!(before.valid);
    assert_eq!(before.progress, Progress::Inserted(None));
    assert_eq!(world.calls(Call::ChannelStatus), statuses_before);

    for (table, old) in [("A", &opened[0]), ("B", &opened[1])] {
        let new = world
            .manager
            .initialize_with_schema(table, &event_schema())
            .await
            .unwrap();
        assert_ne!(new.id(), old.id(), "{table} is opened anew");
        world
            .manager
            .append(Arc::clone(&new), vec![row(r#"{"ID":"x"}"#)], "1".into())
            .await
            .unwrap();
    }
    world.backend.commit();
    assert_eq!(world.rows("A"), [r#"{"ID":"x"}"#]);
    assert_eq!(world.rows("B"), [r#"{"ID":"x"}"#]);
}

#[tokio::test]
async fn a_service_restart_between_appends_loses_no_row_and_duplicates_none() {
    let world = World::new(InMemory::new());
    let channel = world
        .manager
        .initialize_with_schema("TRACKS", &event_schema())
        .await
        .unwrap();
    let channel = world
        .manager
        .append(channel, vec![row(r#"{"ID":"a"}"#)], "1".into())
        .await
        .unwrap();
    world.backend.commit();
    world.backend.restart();
    let reopened = world
        .manager
        .append(Arc::clone(&channel), vec![row(r#"{"ID":"b"}"#)], "2".into())
        .await
        .unwrap();
    assert_ne!(reopened.id(), channel.id());
    world.backend.commit();
    assert_eq!(world.rows("TRACKS"), [r#"{"ID":"a"}"#, r#"{"ID":"b"}"#]);
    assert_eq!(
        world.warehouse.statements().len(),
        2,
        "the reopen runs no DDL"
    );
}
