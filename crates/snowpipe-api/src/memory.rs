//! [`InMemory`]: a deterministic [`Backend`] held in memory, for tests of the layers above and as the first
//! implementation the conformance suite runs against.
//!
//! It keeps schemas, tables with columns and committed rows, and channels with their incarnations, tokens
//! and uncommitted requests. Nothing happens on its own: rows commit when the test says so
//! ([`InMemory::commit`]), unless built with auto-commit; faults are scripted per call, counted in calls.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::{Mutex, MutexGuard, PoisonError},
};

use async_trait::async_trait;

use crate::{
    AppendError, AppendRequest, Appended, Backend, Call, Capabilities, ChannelHandle, ChannelRef,
    ChannelStatus, Column, DropOptions, Error, MissingObject, OnUncommitted, OpenOptions,
    OpenedChannel, Progress, RejectedRow, Result, Row, RowCounters, SentRequest, TableRef,
};

/// A scripted failure of the next call of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Fail with [`Error::Auth`].
    Auth,
    /// Fail with [`Error::MissingObject`] for the schema.
    MissingSchema,
    /// Fail with [`Error::MissingObject`] for the table.
    MissingTable,
    /// Fail with [`Error::Reopen`].
    Reopen,
    /// Fail with [`Error::Retryable`].
    Retryable,
    /// Fail with [`Error::Permanent`].
    Permanent,
    /// Refuse an append's rows ([`Error::RowsRejected`]); nothing is applied.
    RowsRejected,
    /// Apply an append (or not), then lose its answer ([`Error::OutcomeUnknown`]).
    LoseAnswer {
        /// Whether the rows went in before the answer was lost.
        applied: bool,
    },
}

type TableKey = (String, String, String);
type ChannelKey = (TableKey, String, String);

fn table_key(table: &TableRef) -> TableKey {
    (
        table.database.clone(),
        table.schema.clone(),
        table.table.clone(),
    )
}

fn channel_key(channel: &ChannelRef) -> ChannelKey {
    (
        table_key(&channel.table),
        channel.destination.clone(),
        channel.instance.clone(),
    )
}

#[derive(Debug, Default)]
struct Table {
    columns: Vec<Column>,
    rows: Vec<Row>,
}

#[derive(Debug)]
struct Pending {
    rows: Vec<Row>,
    end: String,
}

#[derive(Debug)]
struct Channel {
    id: String,
    valid: bool,
    committed: Option<String>,
    inserted: Option<String>,
    pending: VecDeque<Pending>,
    counters: RowCounters,
}

#[derive(Debug, Default)]
struct State {
    schemas: BTreeSet<(String, String)>,
    tables: BTreeMap<TableKey, Table>,
    channels: HashMap<ChannelKey, Channel>,
    /// Every channel id handed out since the last restart, and its channel.
    ids: HashMap<String, ChannelKey>,
    next_id: u64,
    /// Stands in for a clock: each created channel gets a later `created_on_ms`.
    next_created_on: i64,
    faults: HashMap<Call, VecDeque<Fault>>,
    calls: Vec<Call>,
}

impl State {
    fn fault(&mut self, call: Call) -> Option<Fault> {
        self.calls.push(call);
        self.faults.get_mut(&call)?.pop_front()
    }

    fn status(&self, id: &str, inserted_offsets: bool) -> Option<ChannelStatus> {
        let key = self.ids.get(id)?;
        let channel = self.channels.get(key)?;
        let current = channel.id == id;
        Some(ChannelStatus {
            // An id superseded by a later open is invalid, as the sidecar reports it.
            valid: current && channel.valid,
            committed: channel.committed.clone(),
            progress: if inserted_offsets {
                Progress::Inserted(channel.inserted.clone())
            } else {
                Progress::Counters(channel.counters.clone())
            },
        })
    }

    fn commit(&mut self, key: &ChannelKey) -> usize {
        let Some(channel) = self.channels.get_mut(key) else {
            return 0;
        };
        let mut committed = 0;
        while let Some(pending) = channel.pending.pop_front() {
            let count = pending.rows.len();
            let table = self.tables.entry(key.0.clone()).or_default();
            table.rows.extend(pending.rows);
            channel.committed = Some(pending.end.clone());
            channel.counters.rows_inserted += count as u64;
            channel.counters.rows_parsed += count as u64;
            committed += count;
        }
        committed
    }
}

/// A deterministic backend in memory. See the [module docs](self).
///
/// ```
/// use snowpipe_api::{Backend, BackendExt, ChannelRef, OpenOptions, Row, TableRef, memory::InMemory};
///
/// # tokio_test_block_on(async {
/// let backend = InMemory::new();
/// let table = TableRef { database: "DB".into(), schema: "S".into(), table: "T".into(), enable_iceberg: false };
/// backend.create_table(&table, &[("ID", "VARCHAR(16777216)")]);
/// let channel = ChannelRef { table: table.clone(), destination: "d".into(), instance: "1".into() };
/// let opened = backend.open_channel(&channel, &OpenOptions::discard()).await?;
/// backend.append_rows(&opened.handle, vec![Row::parse(r#"{"ID":"a"}"#)?], "7").await?;
/// assert_eq!(backend.commit(), 1);
/// let status = backend.channel_status(&opened.handle).await?.expect("known");
/// assert_eq!(status.committed.as_deref(), Some("7"));
/// assert_eq!(backend.rows(&table).len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(()) });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug)]
pub struct InMemory {
    capabilities: Capabilities,
    auto_commit: bool,
    max_request_rows: usize,
    state: Mutex<State>,
}

impl Default for InMemory {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemory {
    /// A backend with every capability, no schema, and commits on demand.
    pub fn new() -> Self {
        Self {
            capabilities: Capabilities::none()
                .with_waits_for_uncommitted(true)
                .with_sets_offset_token(true)
                .with_columns_on_open(true)
                .with_reports_inserted_offset(true),
            auto_commit: false,
            max_request_rows: usize::MAX,
            state: Mutex::default(),
        }
    }

    /// The same backend with other capabilities: without `columns_on_open` an open reports no columns;
    /// without `reports_inserted_offset` statuses carry counters instead.
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// The same backend committing every append as it is accepted.
    #[must_use]
    pub fn with_auto_commit(mut self) -> Self {
        self.auto_commit = true;
        self
    }

    /// The same backend sending at most `rows` rows per request, so that appends go out as several.
    #[must_use]
    pub fn with_max_request_rows(mut self, rows: usize) -> Self {
        self.max_request_rows = rows.max(1);
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates a schema (and its database).
    pub fn create_schema(&self, database: &str, schema: &str) {
        self.state()
            .schemas
            .insert((database.to_owned(), schema.to_owned()));
    }

    /// Creates a table (and its schema) with columns given as (name, Snowflake type); an existing table
    /// keeps its columns and rows.
    pub fn create_table(&self, table: &TableRef, columns: &[(&str, &str)]) {
        let mut state = self.state();
        state
            .schemas
            .insert((table.database.clone(), table.schema.clone()));
        state
            .tables
            .entry(table_key(table))
            .or_insert_with(|| Table {
                columns: columns
                    .iter()
                    .map(|(name, ty)| Column {
                        name: (*name).to_owned(),
                        data_type: (*ty).to_owned(),
                        scale: None,
                        nullable: true,
                    })
                    .collect(),
                rows: Vec::new(),
            });
    }

    /// Adds columns (name, Snowflake type) to a table; returns `false` when there is no such table.
    pub fn add_columns(&self, table: &TableRef, columns: &[(&str, &str)]) -> bool {
        let mut state = self.state();
        let Some(existing) = state.tables.get_mut(&table_key(table)) else {
            return false;
        };
        for (name, ty) in columns {
            if !existing.columns.iter().any(|c| c.name == *name) {
                existing.columns.push(Column {
                    name: (*name).to_owned(),
                    data_type: (*ty).to_owned(),
                    scale: None,
                    nullable: true,
                });
            }
        }
        true
    }

    /// The table's columns, when it exists.
    pub fn columns(&self, table: &TableRef) -> Option<Vec<Column>> {
        self.state()
            .tables
            .get(&table_key(table))
            .map(|t| t.columns.clone())
    }

    /// The table's committed rows, in commit order.
    pub fn rows(&self, table: &TableRef) -> Vec<Row> {
        self.state()
            .tables
            .get(&table_key(table))
            .map(|t| t.rows.clone())
            .unwrap_or_default()
    }

    /// Commits every channel's pending requests, in order; returns the rows committed.
    pub fn commit(&self) -> usize {
        let mut state = self.state();
        let keys: Vec<ChannelKey> = state.channels.keys().cloned().collect();
        keys.iter().map(|key| state.commit(key)).sum()
    }

    /// Rows appended and not yet committed, over every channel.
    pub fn pending_rows(&self) -> usize {
        self.state()
            .channels
            .values()
            .flat_map(|c| &c.pending)
            .map(|p| p.rows.len())
            .sum()
    }

    /// Forgets every channel id and every uncommitted row, as a service restart does: every id handed out
    /// so far becomes unknown. What was committed stays, with each channel's committed token and counters
    /// (Snowflake keeps them): a channel opened again starts from them.
    pub fn restart(&self) {
        let mut state = self.state();
        for channel in state.channels.values_mut() {
            channel.id.clear();
            channel.pending.clear();
            channel.inserted.clone_from(&channel.committed);
        }
        state.ids.clear();
    }

    /// Turns the channel invalid: its uncommitted rows are dropped and it never commits again until it is
    /// opened anew. Returns `false` when there is no such channel.
    pub fn invalidate(&self, channel: &ChannelRef) -> bool {
        let mut state = self.state();
        let Some(existing) = state.channels.get_mut(&channel_key(channel)) else {
            return false;
        };
        existing.valid = false;
        existing.pending.clear();
        true
    }

    /// Makes the next `count` calls of `call` fail as `fault` says.
    pub fn fail_next(&self, call: Call, count: usize, fault: Fault) {
        self.state()
            .faults
            .entry(call)
            .or_default()
            .extend(std::iter::repeat_n(fault, count));
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    fn failure(call: Call, fault: Fault) -> Error {
        let scripted = |code: &str| code.to_owned();
        match fault {
            Fault::Auth => Error::Auth {
                call,
                code: scripted("AUTH"),
                message: "scripted auth failure".into(),
            },
            Fault::MissingSchema => Error::MissingObject {
                call,
                object: MissingObject::Schema,
                code: scripted("MISSING_SCHEMA"),
                message: "scripted".into(),
            },
            Fault::MissingTable => Error::MissingObject {
                call,
                object: MissingObject::Table,
                code: scripted("MISSING_TABLE"),
                message: "scripted".into(),
            },
            Fault::Reopen => Error::Reopen {
                call,
                code: scripted("REOPEN"),
                message: "scripted".into(),
            },
            Fault::Permanent => Error::Permanent {
                call,
                code: scripted("PERMANENT"),
                source: "scripted permanent failure".into(),
            },
            Fault::RowsRejected => Error::RowsRejected {
                call,
                code: scripted("ROWS_REJECTED"),
                rows: vec![RejectedRow {
                    index: 0,
                    message: "scripted".into(),
                }],
            },
            Fault::Retryable | Fault::LoseAnswer { .. } => Error::Retryable {
                call,
                code: scripted("RETRYABLE"),
                source: "scripted retryable failure".into(),
            },
        }
    }
}

#[async_trait]
impl Backend for InMemory {
    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn open_channel(
        &self,
        channel: &ChannelRef,
        options: &OpenOptions,
    ) -> Result<OpenedChannel> {
        let call = Call::OpenChannel;
        if options.offset_token.is_some() && !self.capabilities.sets_offset_token {
            return Err(Error::Unsupported {
                call,
                what: "store a committed offset token",
            });
        }
        if options.uncommitted == OnUncommitted::Wait && !self.capabilities.waits_for_uncommitted {
            return Err(Error::Unsupported {
                call,
                what: "wait for uncommitted rows",
            });
        }
        let mut state = self.state();
        if let Some(fault) = state.fault(call) {
            return Err(Self::failure(call, fault));
        }
        let table = &channel.table;
        if !state
            .schemas
            .contains(&(table.database.clone(), table.schema.clone()))
        {
            return Err(Self::failure(call, Fault::MissingSchema));
        }
        let Some(columns) = state
            .tables
            .get(&table_key(table))
            .map(|t| t.columns.clone())
        else {
            return Err(Self::failure(call, Fault::MissingTable));
        };
        let key = channel_key(channel);
        if options.uncommitted == OnUncommitted::Wait
            && state
                .channels
                .get(&key)
                .is_some_and(|c| !c.pending.is_empty())
        {
            return Err(Error::Retryable {
                call,
                code: "ERR_CHANNEL_HAS_UNCOMMITTED_DATA".into(),
                source: "the channel has uncommitted rows; nothing was discarded".into(),
            });
        }
        state.next_id += 1;
        let id = format!("mem-{}", state.next_id);
        state.ids.insert(id.clone(), key.clone());
        state.next_created_on += 1;
        let created_on = state.next_created_on;
        let existing = state.channels.entry(key).or_insert_with(|| Channel {
            id: String::new(),
            valid: true,
            committed: None,
            inserted: None,
            pending: VecDeque::new(),
            counters: RowCounters {
                created_on_ms: created_on,
                ..RowCounters::default()
            },
        });
        existing.id.clone_from(&id);
        existing.valid = true;
        // Reopening supersedes the earlier writer: what it appended and did not commit is gone.
        existing.pending.clear();
        if let Some(token) = &options.offset_token {
            existing.committed = Some(token.clone());
        }
        let status = state.status(&id, self.capabilities.reports_inserted_offset);
        Ok(OpenedChannel {
            handle: ChannelHandle {
                channel: channel.clone(),
                id,
            },
            status,
            columns: self.capabilities.columns_on_open.then_some(columns),
        })
    }

    async fn append(
        &self,
        channel: &ChannelHandle,
        request: &AppendRequest,
    ) -> Result<Appended, AppendError> {
        let call = Call::Append;
        let mut state = self.state();
        let fault = state.fault(call);
        let lose_answer = match fault {
            Some(Fault::LoseAnswer { applied }) => Some(applied),
            Some(fault) => return Err(Self::failure(call, fault).into()),
            None => None,
        };
        let reopen = |code: &str, message: &str| Error::Reopen {
            call,
            code: code.to_owned(),
            message: message.to_owned(),
        };
        let Some(key) = state.ids.get(&channel.id).cloned() else {
            return Err(reopen("NOT_FOUND", "the backend does not know the channel").into());
        };
        let Some(current) = state.channels.get_mut(&key) else {
            return Err(reopen("NOT_FOUND", "the channel was dropped").into());
        };
        if current.id != channel.id {
            return Err(reopen("STALE", "another writer opened the channel since").into());
        }
        if !current.valid {
            return Err(reopen("INVALID", "the channel is invalid").into());
        }
        if lose_answer == Some(false) {
            return Err(AppendError::from(Error::OutcomeUnknown {
                call,
                code: "scripted".into(),
                source: "the answer was lost before the rows arrived".into(),
            }));
        }
        let mut requests = Vec::new();
        let total = request.rows.len();
        let mut start = 0;
        while start < total {
            let end = total.min(start.saturating_add(self.max_request_rows));
            let tokens = request.tokens.tokens(start..end);
            let rows = request.rows[start..end].to_vec();
            let bytes: usize = rows.iter().map(Row::len).sum();
            current.inserted = Some(tokens.end.clone());
            current.pending.push_back(Pending {
                rows,
                end: tokens.end.clone(),
            });
            requests.push(SentRequest {
                rows: start..end,
                tokens,
                body_bytes: bytes as u64,
            });
            start = end;
        }
        if self.auto_commit {
            state.commit(&key);
        }
        if lose_answer == Some(true) {
            return Err(AppendError::from(Error::OutcomeUnknown {
                call,
                code: "scripted".into(),
                source: "the rows went in and the answer was lost".into(),
            }));
        }
        Ok(Appended { requests })
    }

    async fn channel_status(&self, channel: &ChannelHandle) -> Result<Option<ChannelStatus>> {
        let call = Call::ChannelStatus;
        let mut state = self.state();
        if let Some(fault) = state.fault(call) {
            return Err(Self::failure(call, fault));
        }
        Ok(state.status(&channel.id, self.capabilities.reports_inserted_offset))
    }

    async fn bulk_status(&self, channels: &[ChannelHandle]) -> Result<Vec<Option<ChannelStatus>>> {
        let call = Call::BulkStatus;
        let mut state = self.state();
        if let Some(fault) = state.fault(call) {
            return Err(Self::failure(call, fault));
        }
        Ok(channels
            .iter()
            .map(|c| state.status(&c.id, self.capabilities.reports_inserted_offset))
            .collect())
    }

    async fn drop_channel(&self, channel: &ChannelHandle, options: &DropOptions) -> Result<()> {
        let call = Call::DropChannel;
        let mut state = self.state();
        if let Some(fault) = state.fault(call) {
            return Err(Self::failure(call, fault));
        }
        let Some(key) = state.ids.get(&channel.id).cloned() else {
            return Ok(());
        };
        if state.channels.get(&key).is_some_and(|c| c.id == channel.id) {
            if options.wait_for_commit {
                state.commit(&key);
            }
            state.channels.remove(&key);
            state.ids.retain(|_, k| *k != key);
        }
        Ok(())
    }
}
