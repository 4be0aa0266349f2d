//! [`ChannelManager`]: the channels of one destination and instance, on any backend — opened on demand
//! with the schema and table they need, cached for the manager's life, recovered when the backend loses
//! them, asked in bulk where they stand.

mod append;
mod status;

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use async_trait::async_trait;
use snowpipe_api::{
    Backend, ChannelHandle, ChannelRef, ChannelStatus, Column, DropOptions, MissingObject,
    OpenOptions, OpenedChannel, Row, TableRef,
};
use snowpipe_grouping::{Schema, WarehouseType};

use crate::{AuthBackoff, ChannelError, DdlStep, DestinationConfig, FailureKind, Warehouse};

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

/// The channel layer as the manager sees it: it talks to the backend and the warehouse, the manager talks
/// only to this.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Channels: Send + Sync {
    /// The table's channel, from the cache or newly opened (creating schema and table when missing), with
    /// every column of `event_schema` in its table: missing columns are added with one DDL statement, then
    /// the channel is opened anew so that it sees them.
    async fn initialize_with_schema(
        &self,
        table: &str,
        event_schema: &Schema,
    ) -> Result<Arc<Channel>, ChannelError>;

    /// Asks, in bulk, where the cached channels of these tables stand. A channel the backend lost or
    /// reports invalid leaves the cache, so that the next [`Channels::initialize_with_schema`] opens it anew;
    /// the others' statuses are kept for [`Channels::status_before`]. Fails when the backend cannot answer.
    async fn refresh(&self, tables: &[String]) -> Result<(), ChannelError>;

    /// Where the channel stood before this upload appended to it: from the last refresh, or asked now.
    /// `None` when the backend cannot say.
    async fn status_before(&self, channel: &Channel) -> Option<ChannelStatus>;

    /// Appends rows carrying one offset token, recovering what can be recovered without putting a row in
    /// twice: a channel the backend lost is opened again and the rows sent once more; an append whose answer
    /// was lost is resolved from where the channel stands. Returns the channel the rows went into.
    async fn append(
        &self,
        channel: Arc<Channel>,
        rows: Vec<Row>,
        token: String,
    ) -> Result<Arc<Channel>, ChannelError>;

    /// Statuses of channels named by import entries, in bulk (in calls of at most the settings'
    /// `bulk_status_batch_size`), in the order asked; `None` for a channel the backend does not know.
    async fn statuses(
        &self,
        channels: &[ChannelId],
    ) -> Result<Vec<Option<ChannelStatus>>, ChannelError>;

    /// One channel's status, checked on the channel itself (bulk status can call a broken channel valid).
    async fn status(&self, channel: &ChannelId) -> Result<Option<ChannelStatus>, ChannelError>;

    /// Opens the table's channel anew without any DDL, for the poll path: after the backend lost it
    /// (`stale_channel_id` = `None`), or after it turned invalid (the stale one is dropped first).
    async fn recreate(
        &self,
        table: &str,
        stale_channel_id: Option<String>,
    ) -> Result<Arc<Channel>, ChannelError>;

    /// Drops a failed channel from the cache and on the backend, without waiting for its rows to commit.
    /// A channel the backend no longer knows counts as dropped.
    async fn delete(&self, channel: &ChannelId) -> Result<(), ChannelError>;

    /// Ends the auth backoff (after an upload with no auth-kind or backoff failure).
    fn reset_backoff(&self);
}

/// Who the channels belong to and where their tables are.
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

/// The channels of one destination and partition, over a [`Backend`] and a [`Warehouse`]. Safe to share
/// between tasks: no lock is held across a call to the backend or the warehouse.
#[derive(Debug)]
pub struct ChannelManager<B, W> {
    backend: B,
    warehouse: W,
    settings: ChannelSettings,
    backoff: AuthBackoff,
    /// The channel of each table.
    cache: Mutex<HashMap<String, Arc<Channel>>>,
    /// The last status known of each channel id: from a refresh, a status asked for, and this process's own
    /// appends.
    known: Mutex<HashMap<String, ChannelStatus>>,
    /// Tables' columns read from the warehouse, for backends whose opens do not report them.
    described: Mutex<HashMap<String, (Schema, Vec<String>)>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<B: Backend, W: Warehouse> ChannelManager<B, W> {
    /// A manager with an empty cache.
    pub fn new(backend: B, warehouse: W, settings: ChannelSettings, backoff: AuthBackoff) -> Self {
        Self {
            backend,
            warehouse,
            settings,
            backoff,
            cache: Mutex::default(),
            known: Mutex::default(),
            described: Mutex::default(),
        }
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

    /// The cached channel of a table, if any.
    pub fn cached(&self, table: &str) -> Option<Arc<Channel>> {
        locked(&self.cache).get(table).cloned()
    }

    /// Drops a table's channel from the cache only.
    pub fn forget(&self, table: &str) {
        locked(&self.cache).remove(table);
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

    /// Asks the backend to open the table's channel.
    async fn open(&self, table: &str) -> Result<OpenedChannel, snowpipe_api::Error> {
        // Every backend can discard: the sidecar always does, and this layer does not yet wait for an
        // earlier writer's rows before reopening.
        self.backend
            .open_channel(&self.settings.channel(table), &OpenOptions::discard())
            .await
    }

    /// Opens the channel; when `ddl_schema` is given and the schema or table is missing, creates them from
    /// it and opens once more.
    async fn create(
        &self,
        table: &str,
        ddl_schema: Option<&Schema>,
    ) -> Result<Arc<Channel>, ChannelError> {
        let call = "opening the channel";
        let error = match self.open(table).await {
            Ok(opened) => return self.remember(table, opened, ddl_schema).await,
            Err(error) => error,
        };
        let schema = &self.settings.schema;
        match (error.missing_object(), ddl_schema) {
            (Some(MissingObject::Schema), Some(columns)) => {
                tracing::info!(table, schema, "schema missing: creating schema and table");
                self.create_table(table, columns, true).await?;
            }
            (Some(MissingObject::Table), Some(columns)) => {
                tracing::info!(table, schema, "table missing: creating it");
                self.create_table(table, columns, false).await?;
            }
            _ => return Err(self.service_error(table, call, error)),
        }
        match self.open(table).await {
            Ok(opened) => self.remember(table, opened, None).await,
            Err(error) => Err(self.service_error(table, call, error)),
        }
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

    /// Caches an opened channel with its table's columns: those the open reported, else the warehouse's
    /// (read once per table, again after DDL). A table the warehouse says is missing, when `ddl_schema` is
    /// given, is created and the channel opened once more.
    async fn remember(
        &self,
        table: &str,
        opened: OpenedChannel,
        ddl_schema: Option<&Schema>,
    ) -> Result<Arc<Channel>, ChannelError> {
        let (schema, untyped_columns) = match opened.columns {
            Some(columns) => warehouse_schema(&columns),
            None => match self.describe(table).await? {
                Some(schema) => schema,
                None => {
                    let Some(columns) = ddl_schema else {
                        return Err(self.service_error(
                            table,
                            "reading the table's columns",
                            snowpipe_api::Error::MissingObject {
                                call: snowpipe_api::Call::OpenChannel,
                                object: MissingObject::Table,
                                code: "002003".into(),
                                message:
                                    "DESCRIBE TABLE: the table does not exist or is not authorized"
                                        .into(),
                            },
                        ));
                    };
                    self.create_table(table, columns, false).await?;
                    return Box::pin(self.create(table, None)).await;
                }
            },
        };
        let channel = Arc::new(Channel {
            handle: opened.handle,
            table: table.to_owned(),
            schema,
            untyped_columns,
        });
        tracing::debug!(table, channel_id = %channel.id(), "channel opened");
        let replaced = locked(&self.cache).insert(table.to_owned(), Arc::clone(&channel));
        let mut known = locked(&self.known);
        if let Some(replaced) = replaced {
            known.remove(replaced.id());
        }
        if let Some(status) = opened.status {
            known.insert(channel.id().to_owned(), status);
        }
        Ok(channel)
    }

    /// The table's columns from the warehouse (typed, and those of types the pipeline does not read), cached;
    /// `None` when the table does not exist.
    async fn describe(&self, table: &str) -> Result<Option<(Schema, Vec<String>)>, ChannelError> {
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

    /// Drops the channel from the cache (if it is the cached one) and on the backend; a channel the backend
    /// does not know counts as dropped.
    async fn remove(&self, channel: &ChannelId, wait_for_commit: bool) -> Result<(), ChannelError> {
        {
            let mut cache = locked(&self.cache);
            if cache
                .get(&channel.table)
                .is_some_and(|c| c.id() == channel.id)
            {
                cache.remove(&channel.table);
            }
        }
        locked(&self.known).remove(&channel.id);
        self.backend
            .drop_channel(
                &self.settings.handle(channel),
                &DropOptions { wait_for_commit },
            )
            .await
            .map_err(|source| self.service_error(&channel.table, "deleting the channel", source))
    }
}

/// A table's columns as the pipeline's warehouse types, and apart the names of those whose Snowflake type
/// is missing or one the pipeline does not read.
fn warehouse_schema(columns: &[Column]) -> (Schema, Vec<String>) {
    let mut schema = Schema::new();
    let mut untyped = Vec::new();
    for column in columns {
        match column.warehouse_type() {
            Some(ty) => {
                schema.insert_if_absent(&column.name, from_api_type(ty));
            }
            None => untyped.push(column.name.clone()),
        }
    }
    (schema, untyped)
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
        let channel = match self.cached(table) {
            Some(channel) => channel,
            None => self.create(table, Some(event_schema)).await?,
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
        // Reopening drops what the old channel still buffers: let it commit first.
        let id = ChannelId {
            table: table.to_owned(),
            id: channel.id().to_owned(),
        };
        self.remove(&id, true).await?;
        self.create(table, None).await
    }

    async fn refresh(&self, tables: &[String]) -> Result<(), ChannelError> {
        self.refresh_cached(tables).await
    }

    async fn status_before(&self, channel: &Channel) -> Option<ChannelStatus> {
        self.known_or_asked(channel).await
    }

    async fn append(
        &self,
        channel: Arc<Channel>,
        rows: Vec<Row>,
        token: String,
    ) -> Result<Arc<Channel>, ChannelError> {
        self.append_rows(channel, rows, token).await
    }

    async fn statuses(
        &self,
        channels: &[ChannelId],
    ) -> Result<Vec<Option<ChannelStatus>>, ChannelError> {
        self.bulk_statuses(channels).await
    }

    async fn status(&self, channel: &ChannelId) -> Result<Option<ChannelStatus>, ChannelError> {
        self.backend
            .channel_status(&self.settings.handle(channel))
            .await
            .map_err(|source| {
                self.service_error(&channel.table, "reading the channel's status", source)
            })
    }

    async fn recreate(
        &self,
        table: &str,
        stale_channel_id: Option<String>,
    ) -> Result<Arc<Channel>, ChannelError> {
        self.forget(table);
        if let Some(stale) = stale_channel_id {
            let stale = ChannelId {
                table: table.to_owned(),
                id: stale,
            };
            // An invalid channel never commits again; its uncommitted rows are lost either way, so do not wait.
            if let Err(error) = self.remove(&stale, false).await {
                tracing::warn!(table, channel_id = %stale.id, %error, "cannot delete stale channel; reopening anyway");
            }
        }
        self.create(table, None).await
    }

    async fn delete(&self, channel: &ChannelId) -> Result<(), ChannelError> {
        // A channel is deleted because it failed: waiting for its rows to commit (which a stuck or invalid
        // channel never does) would only hold the caller up.
        self.remove(channel, false).await
    }

    fn reset_backoff(&self) {
        self.backoff.reset();
    }
}

#[cfg(test)]
mod tests;
