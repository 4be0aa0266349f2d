//! [`ChannelManager`]: the channels of one destination and partition, created on demand with the schema
//! and table they need, cached for the manager's life, recreated and deleted when they break.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
};

use async_trait::async_trait;
use snowpipe_api::{
    Account, ChannelErrorCode, ChannelResponse, CreateChannelRequest, SnowpipeApi, TableRef,
};
use snowpipe_grouping::{Schema, WarehouseType};

use crate::{AuthBackoff, ChannelError, DdlStep, DestinationConfig, FailureKind, Warehouse};

/// An open channel and what its table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// The id to insert into and ask status of.
    pub id: String,
    /// The table it writes to.
    pub table: String,
    /// The table's columns, as the service reported them when the channel was opened.
    pub schema: Schema,
}

/// The channel layer as the manager sees it.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Channels: Send + Sync {
    /// The table's channel, from the cache or newly opened (creating schema and table when missing), with
    /// every column of `event_schema` in its table: missing columns are added with one DDL statement, then
    /// the channel is deleted and reopened so that it sees them.
    async fn initialize_with_schema(
        &self,
        table: &str,
        event_schema: &Schema,
    ) -> Result<Arc<Channel>, ChannelError>;

    /// Opens the table's channel anew without any DDL, for the poll path: after the service lost it
    /// (`stale_channel_id` = `None`), or after it turned invalid (the stale id is deleted first).
    async fn recreate(
        &self,
        table: &str,
        stale_channel_id: Option<String>,
    ) -> Result<Arc<Channel>, ChannelError>;

    /// Drops a failed channel from the cache and deletes it on the service without waiting for its buffer to
    /// flush. A channel the service no longer knows counts as deleted.
    async fn delete(&self, table: &str, channel_id: &str) -> Result<(), ChannelError>;

    /// The cached channel of a table, if any.
    fn cached(&self, table: &str) -> Option<Arc<Channel>>;

    /// Drops a table's channel from the cache only.
    fn forget(&self, table: &str);

    /// Ends the auth backoff (after an upload with no auth-kind or backoff failure).
    fn reset_backoff(&self);
}

/// Who the channels belong to and where their tables are.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    /// Destination id (`rudderIdentifier`).
    pub destination_id: String,
    /// Instance id (`partition`), so that two manager instances never share a channel.
    pub partition: String,
    /// Credentials sent when opening channels.
    pub account: Account,
    /// Database of the tables.
    pub database: String,
    /// Schema of the tables.
    pub schema: String,
    /// Whether tables are Iceberg tables.
    pub iceberg: bool,
}

impl ChannelSettings {
    /// Settings for a destination's config and a partition.
    pub fn new(destination_id: &str, partition: &str, config: &DestinationConfig) -> Self {
        Self {
            destination_id: destination_id.to_owned(),
            partition: partition.to_owned(),
            account: Account {
                account: config.account.clone(),
                user: config.user.clone(),
                role: config.role.clone(),
                private_key: config.private_key.clone(),
                private_key_passphrase: config.private_key_passphrase.clone(),
            },
            database: config.database.clone(),
            schema: config.schema(),
            iceberg: config.enable_iceberg,
        }
    }

    fn request(&self, table: &str) -> CreateChannelRequest {
        CreateChannelRequest {
            rudder_identifier: self.destination_id.clone(),
            partition: self.partition.clone(),
            account: self.account.clone(),
            table: TableRef {
                database: self.database.clone(),
                schema: self.schema.clone(),
                table: table.to_owned(),
                enable_iceberg: self.iceberg,
            },
        }
    }
}

/// The channels of one destination and partition. Safe to share between tasks: the cache lock is never
/// held across a call to the service or the warehouse.
#[derive(Debug)]
pub struct ChannelManager<A, W> {
    api: A,
    warehouse: W,
    settings: ChannelSettings,
    backoff: AuthBackoff,
    cache: Mutex<HashMap<String, Arc<Channel>>>,
}

impl<A: SnowpipeApi, W: Warehouse> ChannelManager<A, W> {
    /// A manager with an empty cache.
    pub fn new(api: A, warehouse: W, settings: ChannelSettings, backoff: AuthBackoff) -> Self {
        Self {
            api,
            warehouse,
            settings,
            backoff,
            cache: Mutex::default(),
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

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Channel>>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the service to open the table's channel.
    async fn open(&self, table: &str) -> Result<ChannelResponse, ChannelError> {
        self.api
            .create_channel(&self.settings.request(table))
            .await
            .map_err(|source| ChannelError::Service {
                table: table.to_owned(),
                call: "opening the channel",
                source,
            })
    }

    /// Opens the channel; when `ddl_schema` is given and the schema or table is missing, creates them from
    /// it and opens once more.
    async fn create(
        &self,
        table: &str,
        ddl_schema: Option<&Schema>,
    ) -> Result<Arc<Channel>, ChannelError> {
        let response = self.open(table).await?;
        if response.success {
            return Ok(self.remember(table, &response));
        }
        let schema = &self.settings.schema;
        match (response.error_code(), ddl_schema) {
            (Some(ChannelErrorCode::SchemaDoesNotExistOrNotAuthorized), Some(columns)) => {
                tracing::info!(table, schema, "schema missing: creating schema and table");
                self.ddl(
                    table,
                    DdlStep::CreateSchema,
                    self.warehouse.create_schema(schema),
                )
                .await?;
                self.ddl(
                    table,
                    DdlStep::CreateTable,
                    self.warehouse.create_table(schema, table, columns),
                )
                .await?;
            }
            (Some(ChannelErrorCode::TableDoesNotExistOrNotAuthorized), Some(columns)) => {
                tracing::info!(table, schema, "table missing: creating it");
                self.ddl(
                    table,
                    DdlStep::CreateTable,
                    self.warehouse.create_table(schema, table, columns),
                )
                .await?;
            }
            _ => return Err(self.refused(table, response)),
        }
        let response = self.open(table).await?;
        if response.success {
            Ok(self.remember(table, &response))
        } else {
            Err(self.refused(table, response))
        }
    }

    fn remember(&self, table: &str, response: &ChannelResponse) -> Arc<Channel> {
        let schema = response
            .warehouse_schema()
            .into_iter()
            .map(|(name, ty)| (name, from_api_type(ty)))
            .collect();
        let channel = Arc::new(Channel {
            id: response.channel_id.clone(),
            table: table.to_owned(),
            schema,
        });
        tracing::debug!(table, channel_id = %channel.id, "channel opened");
        self.cache().insert(table.to_owned(), Arc::clone(&channel));
        channel
    }

    fn refused(&self, table: &str, response: ChannelResponse) -> ChannelError {
        let error = ChannelError::Refused {
            table: table.to_owned(),
            code: response.error_code().unwrap_or(ChannelErrorCode::Unknown),
            message: response.error,
            snowflake_http_code: response.snowflake_api_http_code,
            snowflake_message: response.snowflake_api_message,
        };
        if error.kind() == FailureKind::Auth {
            self.backoff.record_failure(&error.to_string());
        }
        error
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
}

impl<A: SnowpipeApi, W: Warehouse> ChannelManager<A, W> {
    /// Drops the channel from the cache (if it is the cached one) and deletes it on the service; a channel
    /// the service does not know counts as deleted.
    async fn remove(&self, table: &str, channel_id: &str, sync: bool) -> Result<(), ChannelError> {
        {
            let mut cache = self.cache();
            if cache.get(table).is_some_and(|c| c.id == channel_id) {
                cache.remove(table);
            }
        }
        match self.api.delete_channel(channel_id, sync).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_channel_not_found() => Ok(()),
            Err(source) => Err(ChannelError::Service {
                table: table.to_owned(),
                call: "deleting the channel",
                source,
            }),
        }
    }
}

/// The service reports table columns in six types; events name eight (with `bigint` and `text` aliases).
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
impl<A: SnowpipeApi, W: Warehouse> Channels for ChannelManager<A, W> {
    async fn initialize_with_schema(
        &self,
        table: &str,
        event_schema: &Schema,
    ) -> Result<Arc<Channel>, ChannelError> {
        let cached = self.cached(table);
        let channel = match cached {
            Some(channel) => channel,
            None => self.create(table, Some(event_schema)).await?,
        };
        let missing: Schema = event_schema
            .iter()
            .filter(|(column, _)| !channel.schema.contains(column))
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
        // Reopening drops what the old channel still buffers: let it flush first.
        self.remove(table, &channel.id, true).await?;
        self.create(table, None).await
    }

    async fn recreate(
        &self,
        table: &str,
        stale_channel_id: Option<String>,
    ) -> Result<Arc<Channel>, ChannelError> {
        self.forget(table);
        if let Some(stale) = stale_channel_id {
            // An invalid channel never commits again; its buffered rows are lost either way, so do not wait.
            match self.api.delete_channel(&stale, false).await {
                Ok(()) => {}
                Err(e) if e.is_channel_not_found() => {}
                Err(e) => {
                    tracing::warn!(table, channel_id = %stale, error = %e, "cannot delete stale channel; reopening anyway");
                }
            }
        }
        self.create(table, None).await
    }

    async fn delete(&self, table: &str, channel_id: &str) -> Result<(), ChannelError> {
        // A channel is deleted because it failed: waiting for its buffer to flush (which a stuck or invalid
        // channel never does) would only hold the caller up.
        self.remove(table, channel_id, false).await
    }

    fn cached(&self, table: &str) -> Option<Arc<Channel>> {
        self.cache().get(table).cloned()
    }

    fn forget(&self, table: &str) {
        self.cache().remove(table);
    }

    fn reset_backoff(&self) {
        self.backoff.reset();
    }
}

#[cfg(test)]
mod tests;
