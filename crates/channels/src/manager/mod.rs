//! [`ChannelManager`]: the channels of one destination and instance, on any backend — opened on demand
//! with the schema and table they need, written by one writer at a time, with offset tokens that let any
//! process tell later which rows committed; never dropped.
//!
//! - `open`: an opening starts an epoch (waiting first for an earlier writer's rows to commit, reading the
//!   channel's committed token as the opening found it, writing it as a fence where the backend can);
//! - `append`: rows get positions in the epoch; an answer that leaves their fate unknown is settled by
//!   reopening, and only rows provably not in are sent again;
//! - `judge`: an import's segments against the best token known, reopening lost, invalid and (when asked)
//!   stuck channels to settle what is in flight.

mod append;
mod judge;
mod open;

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    ops::Range,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use snowpipe_api::{
    Backend, ChannelHandle, ChannelRef, ChannelStatus, Column, MissingObject, Row, RowCounters,
    TableRef,
    retry::{Sleep, TokioSleep},
};
use snowpipe_grouping::{Constraint, Constraints, Schema, WarehouseType};

use crate::{
    AuthBackoff, ChannelError, Clock, DdlStep, DestinationConfig, FailureKind, SystemClock,
    Warehouse,
    state::{MemoryState, StateStore},
    token::{Epoch, Token},
    verdict::{SegmentVerdict, Undecidable},
};

/// An open channel and what its table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// The channel as the backend names it.
    pub handle: ChannelHandle,
    /// The table it writes to.
    pub table: String,
    /// The table's columns when the channel was opened: from the backend's open, or from the warehouse
    /// when the backend does not report them. Columns of a type the pipeline does not read are left out.
    pub schema: Schema,
    /// The table's columns of a type the pipeline does not read (`GEOGRAPHY`, say): not in `schema`, yet
    /// the table has them, so they are never added again.
    pub untyped_columns: Vec<String>,
    /// What the table's columns can hold beyond their type (`VARCHAR(n)`, `NUMBER(p,s)`, `NOT NULL`):
    /// rows are checked against it before they go.
    pub constraints: Arc<Constraints>,
    /// The epoch this opening started.
    pub epoch: Epoch,
}

impl Channel {
    /// The backend's id of this opening of the channel, which import entries keep.
    pub fn id(&self) -> &str {
        &self.handle.id
    }
}

/// A channel as an import entry names it: its table and the id it had when rows went in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelId {
    /// The table.
    pub table: String,
    /// The backend's channel id.
    pub id: String,
}

/// Rows of one append that went out in one epoch: positions `first..=last`, one per row, in the order of
/// the append's rows `rows`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The epoch.
    pub epoch: Epoch,
    /// The first row's position.
    pub first: u64,
    /// The last row's position.
    pub last: u64,
    /// The rows, as indexes into the append's rows.
    pub rows: Range<usize>,
    /// The token of the segment's last row, as its request carried it.
    pub end_token: String,
    /// The channel's counters when the segment's epoch was fenced (backends that keep counters).
    pub fence: Option<FenceCounters>,
}

/// A channel's counters when an epoch was fenced, carried with an import's segments: with them a poll in
/// any process tells counters that lag the committed token (the rows counted since the fence fall short of
/// the rows the token says committed), and whether anything of the epoch was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FenceCounters {
    /// Rows inserted so far.
    pub inserted: u64,
    /// Rows rejected at commit so far.
    pub errors: u64,
    /// The channel incarnation's creation time, in milliseconds since the epoch.
    pub created_on_ms: i64,
}

/// Positions of one epoch an import entry names, to be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Positions {
    /// The epoch.
    pub epoch: Epoch,
    /// The first position.
    pub first: u64,
    /// The last position.
    pub last: u64,
    /// The channel's counters when the epoch was fenced, when the import entry kept them.
    pub fence: Option<FenceCounters>,
}

/// What became of an append.
#[derive(Debug, Clone)]
pub struct AppendOutcome {
    /// The channel the last rows went into.
    pub channel: Arc<Channel>,
    /// Rows handed to the backend (accepted, or whose answer was lost and that no reopen could settle):
    /// poll tells whether they commit. Each row is in at most one segment.
    pub segments: Vec<Segment>,
    /// Rows that surely did not go in, and why: their jobs fail and come back.
    pub failed: Vec<FailedRows>,
}

/// Rows of an append that surely did not go in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRows {
    /// The rows, as indexes into the append's rows.
    pub rows: Vec<usize>,
    /// Why.
    pub reason: String,
}

/// An import entry's rows, to be judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRows {
    /// The table.
    pub table: String,
    /// The channel id the rows went into last.
    pub channel_id: String,
    /// Their positions, segment by segment.
    pub segments: Vec<Positions>,
}

/// The verdict on an import entry's rows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryVerdict {
    /// One per segment, in order.
    pub segments: Vec<SegmentVerdict>,
    /// The backend had lost the channel or reported it invalid: it was reopened to settle the rows.
    pub reopened_invalid: bool,
    /// The channel's committed token as its status gave it (`None`: nothing committed, or the channel was
    /// reopened): a caller notes when it last moved, to tell a stalled channel.
    pub committed: Option<String>,
    /// One per segment, in order (or empty: nothing rejected): committed rows of the segment that the
    /// service may have rejected at commit, as its counters tell.
    pub rejected: Vec<Option<Rejected>>,
    /// Rejections the service's counters show that were not reported before (each counted once per
    /// process), for the rejected-rows metric.
    pub rejected_rows: u64,
}

/// Committed rows of a segment that the service may have rejected at commit (Snowflake's REST API checks
/// rows against the table when it commits them and reports rejections only as counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Rows from the segment's first position up to this one may have been rejected; the rows after it
    /// were not.
    pub through: u64,
    /// What the service said of its last rejected row, and what the counters showed.
    pub message: String,
}

/// The channel layer as the manager sees it.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Channels: Send + Sync {
    /// The table's channel, from the cache or newly opened (creating schema and table when missing), with
    /// every column of `event_schema` in its table: missing columns are added with one DDL statement, then
    /// the channel is opened anew (after its rows commit) so that it sees them.
    async fn initialize_with_schema(
        &self,
        table: &str,
        event_schema: &Schema,
    ) -> Result<Arc<Channel>, ChannelError>;

    /// Asks, in bulk, where the cached channels of these tables stand. A channel the backend lost or
    /// reports invalid leaves the cache, so that the next [`Channels::initialize_with_schema`] opens it anew.
    /// Fails when the backend cannot answer.
    async fn refresh(&self, tables: &[String]) -> Result<(), ChannelError>;

    /// Appends rows to the table's channel (opened before by [`Channels::initialize_with_schema`]), each at
    /// its own position. Rows whose fate an answer leaves unknown are settled by reopening the channel;
    /// only rows provably not in are sent again. `Err` when nothing was handed over.
    async fn append(&self, table: &str, rows: Vec<Row>) -> Result<AppendOutcome, ChannelError>;

    /// Waits, at most `within`, until every row of `segments` of the table's channel committed and the
    /// channel's counters (where the backend keeps them) clear them.
    async fn wait_for_commit(
        &self,
        table: &str,
        segments: &[Segment],
        within: Duration,
    ) -> Result<CommitWait, ChannelError>;

    /// Judges import entries. A channel the backend lost or reports invalid is reopened (one writer at a
    /// time) and its rows judged from that opening; with `settle`, so is every channel whose rows are still
    /// in flight (a stuck import), so that no row judged lost can commit later.
    async fn judge(
        &self,
        entries: &[EntryRows],
        settle: bool,
    ) -> Vec<Result<EntryVerdict, ChannelError>>;

    /// Checks the channels of entries whose rows stalled, each on the channel itself (the single-channel
    /// status: bulk status can call a broken channel valid). A channel the backend reports invalid or has
    /// lost is reopened (one writer at a time) and the entry's rows judged from that opening, as
    /// [`Channels::judge`] does: `Some(verdict)`. A channel it calls valid is left alone: `None`.
    async fn check_stalled(
        &self,
        entries: &[EntryRows],
    ) -> Vec<Result<Option<EntryVerdict>, ChannelError>>;

    /// Statuses of channels named by import entries, in bulk (in calls of at most the settings'
    /// `bulk_status_batch_size`), in the order asked; `None` for a channel the backend does not know. For
    /// entries of the scheme before tokens.
    async fn statuses(
        &self,
        channels: &[ChannelId],
    ) -> Result<Vec<Option<ChannelStatus>>, ChannelError>;

    /// Ends the auth backoff (after an upload with no auth-kind or backoff failure).
    fn reset_backoff(&self);
}

/// Who the channels belong to, where their tables are, and the bounds of their waits.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    /// Destination id.
    pub destination_id: String,
    /// Instance id (the partition), so that two manager instances never share a channel.
    pub partition: String,
    /// Database of the tables.
    pub database: String,
    /// Schema of the tables.
    pub schema: String,
    /// Whether tables are Iceberg tables.
    pub iceberg: bool,
    /// Most channels in one bulk status call.
    pub bulk_status_batch_size: usize,
    /// Longest wait, before a backend that cannot wait itself reopens a channel, for the rows an earlier
    /// writer appended to commit (so they are not discarded); past it the channel is reopened anyway and
    /// those rows come back as failed.
    pub reopen_wait: Duration,
    /// How long after an answer was lost to wait before reopening, so that a request still in transit
    /// reaches the service before the reopen rather than after it.
    pub lost_answer_margin: Duration,
    /// Most reopens in a row to settle one append.
    pub max_reopens: u32,
}

impl ChannelSettings {
    /// Settings for a destination's config and a partition.
    pub fn new(destination_id: &str, partition: &str, config: &DestinationConfig) -> Self {
        Self {
            destination_id: destination_id.to_owned(),
            partition: partition.to_owned(),
            database: config.database.clone(),
            schema: config.schema(),
            iceberg: config.enable_iceberg,
            bulk_status_batch_size: 100,
            reopen_wait: Duration::from_secs(30),
            lost_answer_margin: Duration::from_secs(1),
            max_reopens: 3,
        }
    }

    /// The table's channel for this destination and partition.
    pub fn channel(&self, table: &str) -> ChannelRef {
        ChannelRef {
            table: TableRef {
                database: self.database.clone(),
                schema: self.schema.clone(),
                table: table.to_owned(),
                enable_iceberg: self.iceberg,
            },
            destination: self.destination_id.clone(),
            instance: self.partition.clone(),
        }
    }

    fn handle(&self, channel: &ChannelId) -> ChannelHandle {
        ChannelHandle {
            channel: self.channel(&channel.table),
            id: channel.id.clone(),
        }
    }
}

/// One table's writer: what is open now, and where its epoch stands. Every open, append and reopen of the
/// table goes through it, one at a time.
#[derive(Debug, Default)]
struct Writer {
    /// The channel open now.
    channel: Option<Arc<Channel>>,
    /// The current epoch's opening token.
    opening: Option<Token>,
    /// The next free position in the current epoch.
    next_position: u64,
    /// The newest committed token seen, to notice one that goes back.
    committed_seen: Option<Token>,
    /// Why the opening knows nothing before its list's start, when not because the list ran out.
    horizon: Option<Undecidable>,
    /// The service's counters when each recent epoch was fenced: an epoch whose rejected count has not
    /// moved since had nothing rejected, and its committed rows are cleared once the counters grew by as
    /// many.
    fence_errors: VecDeque<Baseline>,
    /// The counters of the last open's answer.
    opened_counters: Option<RowCounters>,
    /// The highest rejected-rows count seen per incarnation (creation time), for the metric.
    errors_counted: Option<(i64, u64)>,
}

/// How many epochs' fence counts a writer remembers.
const FENCE_ERRORS_KEPT: usize = 32;

/// Counters that lag the committed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lag {
    /// They are behind even the counts at the token's epoch's fence, so earlier epochs' rows may not be
    /// counted yet either.
    before_fence: bool,
}

/// A channel's counters when an epoch was fenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Baseline {
    epoch: Epoch,
    /// Rows rejected at commit so far.
    errors: u64,
    /// Rows inserted so far (unknown in states kept by earlier releases).
    inserted: Option<u64>,
    /// The incarnation the counts belong to.
    created_on_ms: i64,
}

impl Baseline {
    /// The counters to carry with a segment, when the rows inserted are known.
    fn counters(&self) -> Option<FenceCounters> {
        Some(FenceCounters {
            inserted: self.inserted?,
            errors: self.errors,
            created_on_ms: self.created_on_ms,
        })
    }
}

/// How a bounded wait for rows to commit ended ([`Channels::wait_for_commit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitWait {
    /// Every row committed, and the channel's counters (where the backend keeps them) clear them.
    Committed,
    /// Some rows are not committed yet, or never will be.
    NotCommitted,
    /// Snowflake may have rejected some of the rows at commit; its message.
    Rejected(String),
}

/// The channels of one destination and partition, over a [`Backend`] and a [`Warehouse`]. Safe to share
/// between tasks: each table has one writer at a time, and no lock but a table's own writer is held across
/// a call to the backend or the warehouse.
#[derive(Debug)]
pub struct ChannelManager<B, W> {
    backend: B,
    warehouse: W,
    settings: ChannelSettings,
    backoff: AuthBackoff,
    state: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    sleep: Arc<dyn Sleep>,
    /// Each table's writer.
    writers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Writer>>>>,
    /// Tables' columns read from the warehouse, for backends whose opens do not report them.
    described: Mutex<HashMap<String, Described>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<B: Backend, W: Warehouse> ChannelManager<B, W> {
    /// A manager with no channel open, its state in memory, on the system clock.
    pub fn new(backend: B, warehouse: W, settings: ChannelSettings, backoff: AuthBackoff) -> Self {
        Self {
            backend,
            warehouse,
            settings,
            backoff,
            state: Arc::new(MemoryState::default()),
            clock: Arc::new(SystemClock),
            sleep: Arc::new(TokioSleep),
            writers: Mutex::default(),
            described: Mutex::default(),
        }
    }

    /// The same manager keeping tables' channel states in `state` (the command's state directory).
    #[must_use]
    pub fn with_state(mut self, state: Arc<dyn StateStore>) -> Self {
        self.state = state;
        self
    }

    /// The same manager on another clock (epochs' ordered parts) and another way to wait (bounded waits
    /// for commits), for tests.
    #[must_use]
    pub fn with_time(mut self, clock: Arc<dyn Clock>, sleep: Arc<dyn Sleep>) -> Self {
        self.clock = clock;
        self.sleep = sleep;
        self
    }

    /// The settings the channels are opened with.
    pub fn settings(&self) -> &ChannelSettings {
        &self.settings
    }

    /// The destination's auth backoff.
    pub fn backoff(&self) -> &AuthBackoff {
        &self.backoff
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The table's writer.
    fn writer(&self, table: &str) -> Arc<tokio::sync::Mutex<Writer>> {
        Arc::clone(locked(&self.writers).entry(table.to_owned()).or_default())
    }

    /// The channel open for a table, if any.
    pub async fn cached(&self, table: &str) -> Option<Arc<Channel>> {
        self.writer(table).lock().await.channel.clone()
    }

    fn service_error(
        &self,
        table: &str,
        call: &'static str,
        source: snowpipe_api::Error,
    ) -> ChannelError {
        let error = ChannelError::Service {
            table: table.to_owned(),
            call,
            source,
        };
        if error.kind() == FailureKind::Auth {
            self.backoff.record_failure(&error.to_string());
        }
        error
    }

    async fn create_table(
        &self,
        table: &str,
        columns: &Schema,
        with_schema: bool,
    ) -> Result<(), ChannelError> {
        let schema = &self.settings.schema;
        if with_schema {
            self.ddl(
                table,
                DdlStep::CreateSchema,
                self.warehouse.create_schema(schema),
            )
            .await?;
        }
        self.ddl(
            table,
            DdlStep::CreateTable,
            self.warehouse.create_table(schema, table, columns),
        )
        .await?;
        locked(&self.described).remove(table);
        Ok(())
    }

    /// The table's columns: those the open reported, else the warehouse's (read once per table, again after
    /// DDL); `None` when the warehouse says the table does not exist.
    async fn columns(
        &self,
        table: &str,
        reported: Option<Vec<Column>>,
    ) -> Result<Option<Described>, ChannelError> {
        if let Some(columns) = reported {
            return Ok(Some(warehouse_schema(&columns)));
        }
        if let Some(schema) = locked(&self.described).get(table) {
            return Ok(Some(schema.clone()));
        }
        let columns = self
            .warehouse
            .describe_table(&self.settings.schema, table)
            .await
            .map_err(|source| {
                let error = ChannelError::Warehouse {
                    table: table.to_owned(),
                    step: DdlStep::DescribeTable,
                    source,
                };
                if error.kind() == FailureKind::Auth {
                    self.backoff.record_failure(&error.to_string());
                }
                error
            })?;
        let schema = columns.as_deref().map(warehouse_schema);
        if let Some(schema) = &schema {
            locked(&self.described).insert(table.to_owned(), schema.clone());
        }
        Ok(schema)
    }

    /// Runs one DDL step unless the backoff forbids it; an auth-kind failure starts or lengthens the backoff.
    async fn ddl(
        &self,
        table: &str,
        step: DdlStep,
        statement: impl Future<Output = Result<(), crate::WarehouseError>>,
    ) -> Result<(), ChannelError> {
        if let Err(source) = self.backoff.check() {
            return Err(ChannelError::Backoff {
                table: table.to_owned(),
                step,
                source,
            });
        }
        statement.await.map_err(|source| {
            let error = ChannelError::Warehouse {
                table: table.to_owned(),
                step,
                source,
            };
            if error.kind() == FailureKind::Auth {
                self.backoff.record_failure(&error.to_string());
            }
            error
        })
    }

    /// An error for a table whose table the warehouse does not know, where no DDL may run.
    fn missing_table(&self, table: &str) -> ChannelError {
        self.service_error(
            table,
            "reading the table's columns",
            snowpipe_api::Error::MissingObject {
                call: snowpipe_api::Call::OpenChannel,
                object: MissingObject::Table,
                code: "002003".into(),
                message: "DESCRIBE TABLE: the table does not exist or is not authorized".into(),
            },
        )
    }
}

/// A table's columns as the pipeline's warehouse types, and apart the names of those whose Snowflake type
/// is missing or one the pipeline does not read.
fn warehouse_schema(columns: &[Column]) -> Described {
    let mut schema = Schema::new();
    let mut untyped = Vec::new();
    let mut constraints = Constraints::new();
    for column in columns {
        match column.warehouse_type() {
            Some(ty) => {
                schema.insert_if_absent(&column.name, from_api_type(ty));
            }
            None => untyped.push(column.name.clone()),
        }
        if let Some(constraint) = Constraint::from_snowflake(&column.data_type, column.nullable) {
            constraints.insert(&column.name, constraint);
        }
    }
    Described {
        schema,
        untyped,
        constraints: Arc::new(constraints),
    }
}

/// A table's columns as the channel layer reads them.
#[derive(Debug, Clone)]
struct Described {
    /// Columns of the types the pipeline reads.
    schema: Schema,
    /// Columns of other types.
    untyped: Vec<String>,
    /// What the columns can hold beyond their type.
    constraints: Arc<Constraints>,
}

/// Backends report table columns in six types; events name eight (with `bigint` and `text` aliases).
fn from_api_type(ty: snowpipe_api::WarehouseType) -> WarehouseType {
    match ty {
        snowpipe_api::WarehouseType::Int => WarehouseType::Int,
        snowpipe_api::WarehouseType::Float => WarehouseType::Float,
        snowpipe_api::WarehouseType::String => WarehouseType::String,
        snowpipe_api::WarehouseType::Datetime => WarehouseType::Datetime,
        snowpipe_api::WarehouseType::Boolean => WarehouseType::Boolean,
        snowpipe_api::WarehouseType::Json => WarehouseType::Json,
        // The API's enum is non-exhaustive: a type it may map later is read as text until this crate knows it.
        _ => WarehouseType::String,
    }
}

#[async_trait]
impl<B: Backend, W: Warehouse> Channels for ChannelManager<B, W> {
    async fn initialize_with_schema(
        &self,
        table: &str,
        event_schema: &Schema,
    ) -> Result<Arc<Channel>, ChannelError> {
        let writer = self.writer(table);
        let mut writer = writer.lock().await;
        let channel = match writer.channel.clone() {
            Some(channel) => channel,
            None => {
                self.open(table, &mut writer, Some(event_schema), false)
                    .await?
            }
        };
        let missing: Schema = event_schema
            .iter()
            .filter(|(column, _)| {
                !channel.schema.contains(column)
                    && !channel.untyped_columns.iter().any(|c| c == column)
            })
            .collect();
        if missing.is_empty() {
            return Ok(channel);
        }
        let schema = &self.settings.schema;
        tracing::info!(
            table,
            columns = missing.len(),
            "adding columns, then reopening the channel"
        );
        self.ddl(
            table,
            DdlStep::AddColumns,
            self.warehouse.add_columns(schema, table, &missing),
        )
        .await?;
        locked(&self.described).remove(table);
        // The channel sees its table's columns as they were when it opened: reopen it, once its rows
        // committed (the open waits for them where the backend cannot).
        self.open(table, &mut writer, None, false).await
    }

    async fn refresh(&self, tables: &[String]) -> Result<(), ChannelError> {
        self.refresh_open(tables).await
    }

    async fn append(&self, table: &str, rows: Vec<Row>) -> Result<AppendOutcome, ChannelError> {
        self.append_rows(table, rows).await
    }

    async fn wait_for_commit(
        &self,
        table: &str,
        segments: &[Segment],
        within: Duration,
    ) -> Result<CommitWait, ChannelError> {
        self.wait_committed(table, segments, within).await
    }

    async fn judge(
        &self,
        entries: &[EntryRows],
        settle: bool,
    ) -> Vec<Result<EntryVerdict, ChannelError>> {
        self.judge_entries(entries, settle).await
    }

    async fn check_stalled(
        &self,
        entries: &[EntryRows],
    ) -> Vec<Result<Option<EntryVerdict>, ChannelError>> {
        self.check_stalled_entries(entries).await
    }

    async fn statuses(
        &self,
        channels: &[ChannelId],
    ) -> Result<Vec<Option<ChannelStatus>>, ChannelError> {
        self.bulk_statuses(channels).await
    }

    fn reset_backoff(&self) {
        self.backoff.reset();
    }
}

#[cfg(test)]
mod tests;
