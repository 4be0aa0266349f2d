//! [`Manager`]: one destination's uploads and polls, built from the channel layer.

use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::Value;
use snowpipe_api::{
    Instrumented, RetryConfig,
    retry::Sleep,
    sidecar::{Account, HttpClient, HttpConfig, Sidecar},
};
use snowpipe_channels::{
    AuthBackoff, BackoffConfig, ChannelManager, ChannelSettings, Channels, Clock,
    DestinationConfig, SqlApiConfig, SqlApiWarehouse, SystemClock, TimedWarehouse,
    state::StateStore,
};
use snowpipe_rest::{Credentials, RestClient, RestConfig};

use crate::{Settings, poll::PollState, telemetry::Labels};

/// A destination as the batch router describes it: `{"id", "workspaceId", "config": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// Destination id.
    pub id: String,
    /// Workspace id, for metrics.
    #[serde(default)]
    pub workspace_id: String,
    /// The destination's config; decoded as [`DestinationConfig`]. One that does not decode makes every
    /// upload abort its jobs.
    #[serde(default)]
    pub config: Value,
}

/// Which backend the channels live on, and how to reach it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BackendConfig {
    /// The sidecar service over HTTP (its URL, timeouts, retries, compression).
    Sidecar(HttpConfig),
    /// Snowflake's Snowpipe Streaming REST API, reached directly with the destination's account, user, role
    /// and key.
    Rest(RestOptions),
}

impl Default for BackendConfig {
    /// The REST API: nothing to run beside the manager.
    fn default() -> Self {
        Self::Rest(RestOptions::default())
    }
}

impl BackendConfig {
    /// The per-attempt timeout and retry policy the backend's client was given: the SQL API client takes
    /// the same, since what the caller tuned for one service holds for the other.
    fn transport(&self) -> (std::time::Duration, &RetryConfig, Arc<dyn Sleep>) {
        match self {
            Self::Sidecar(config) => (config.timeout, &config.retry, Arc::clone(&config.sleep)),
            Self::Rest(options) => (options.timeout, &options.retry, Arc::clone(&options.sleep)),
        }
    }

    /// `rest` or `sidecar`: what import ids record, so a poll never asks the other backend.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sidecar(_) => "sidecar",
            Self::Rest(_) => "rest",
        }
    }
}

/// How the REST backend talks to Snowflake, beyond the destination's account and credentials.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestOptions {
    /// The ingest host's base URL; discovered from the account host when `None`.
    pub ingest_url: Option<String>,
    /// How append bodies are compressed (zstd by default).
    pub compression: snowpipe_rest::Compression,
    /// Longest time one HTTP attempt may take.
    pub timeout: std::time::Duration,
    /// Longest time to open a connection.
    pub connect_timeout: std::time::Duration,
    /// When and how often to retry.
    pub retry: RetryConfig,
    /// How long an open waits for an earlier writer's uncommitted rows to commit.
    pub uncommitted_wait: std::time::Duration,
    /// How the clients wait between attempts.
    pub sleep: Arc<dyn Sleep>,
}

impl Default for RestOptions {
    fn default() -> Self {
        let defaults = RestConfig::new("", "", Credentials::key_pair("", ""));
        Self {
            ingest_url: None,
            compression: defaults.compression,
            timeout: defaults.timeout,
            connect_timeout: defaults.connect_timeout,
            retry: defaults.retry,
            uncommitted_wait: defaults.uncommitted_wait,
            sleep: defaults.sleep,
        }
    }
}

/// How to reach the backend and Snowflake, for [`Manager::connect`].
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// The backend the channels live on.
    pub backend: BackendConfig,
    /// The account host's base URL, for the SQL API and (on REST) hostname discovery and the token
    /// exchange; `https://<account>.snowflakecomputing.com` when `None`.
    pub sql_api_url: Option<String>,
    /// The auth backoff.
    pub backoff: BackoffConfig,
    /// Where tables' channel states outlive the process (the command's state directory); in memory when
    /// `None`. See [`StateStore`].
    pub state: Option<Arc<dyn StateStore>>,
}

/// A client could not be built from the settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The backend client's settings are invalid.
    #[error(transparent)]
    Service(#[from] snowpipe_api::sidecar::ConfigError),
    /// The REST client's settings are invalid.
    #[error(transparent)]
    Rest(#[from] snowpipe_rest::ConfigError),
    /// The SQL API client could not be set up.
    #[error(transparent)]
    Warehouse(#[from] snowpipe_channels::WarehouseError),
}

/// The upload manager of one destination: `upload` a batch, `poll` its import until complete, then
/// `upload_stats` to learn each job's outcome. Safe to share between tasks.
pub struct Manager {
    pub(crate) destination_id: String,
    pub(crate) config: Result<DestinationConfig, String>,
    pub(crate) settings: Settings,
    pub(crate) channels: Arc<dyn Channels>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) labels: Labels,
    pub(crate) poll: Mutex<PollState>,
    /// The backend's name, recorded in import entries (`None` for a manager over a channel layer given).
    pub(crate) backend: Option<&'static str>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("destination_id", &self.destination_id)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Decodes a destination's config, keeping the reason when it does not decode.
pub(crate) fn decode_config(destination: &Destination) -> Result<DestinationConfig, String> {
    serde_json::from_value::<DestinationConfig>(destination.config.clone()).map_err(|e| {
        format!(
            "cannot decode the config of destination {}: {e}",
            destination.id
        )
    })
}

/// The REST client's configuration for a destination, the account URL and the connection's REST options.
fn rest_config(
    config: DestinationConfig,
    account_url: Option<String>,
    options: RestOptions,
) -> RestConfig {
    let credentials = Credentials::KeyPair {
        private_key: config.private_key,
        passphrase: config.private_key_passphrase,
    };
    let mut rest = RestConfig::new(config.account, config.user, credentials);
    rest.role = Some(config.role).filter(|r| !r.trim().is_empty());
    rest.account_url = account_url;
    rest.ingest_url = options.ingest_url;
    rest.compression = options.compression;
    rest.timeout = options.timeout;
    rest.connect_timeout = options.connect_timeout;
    rest.retry = options.retry;
    rest.uncommitted_wait = options.uncommitted_wait;
    rest.sleep = options.sleep;
    rest
}

/// On the REST backend, discovers the account's ingest host and exchanges the destination's key-pair JWT
/// for a scoped token there, writing nothing: `Ok` with the ingest host's URL, `Ok(None)` on the sidecar
/// backend (nothing to ask), `Err` with what failed.
///
/// # Errors
///
/// The destination does not decode, the REST client cannot be set up, or discovery or the exchange failed
/// (the error says which host answered what).
pub async fn check_rest_access(
    destination: &Destination,
    connection: &Connection,
) -> Result<Option<String>, String> {
    let BackendConfig::Rest(options) = &connection.backend else {
        return Ok(None);
    };
    let config = decode_config(destination)?;
    let rest = rest_config(config, connection.sql_api_url.clone(), options.clone());
    let client = RestClient::new(rest).map_err(|e| e.to_string())?;
    client
        .authenticate()
        .await
        .map(Some)
        .map_err(|e| e.to_string())
}

impl Manager {
    /// A manager over a channel layer (which holds the backend, the warehouse client and the auth backoff)
    /// and a clock.
    pub fn new(
        destination: &Destination,
        settings: Settings,
        channels: Arc<dyn Channels>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            destination_id: destination.id.clone(),
            config: decode_config(destination),
            labels: Labels::new(&destination.workspace_id, &destination.id),
            settings,
            channels,
            clock,
            poll: Mutex::default(),
            backend: None,
        }
    }

    /// A manager on the backend the connection names, with DDL through Snowflake's SQL API.
    pub fn connect(
        destination: &Destination,
        settings: Settings,
        connection: Connection,
    ) -> Result<Self, ConnectError> {
        Self::connect_with_clock(destination, settings, connection, Arc::new(SystemClock))
    }

    /// [`Manager::connect`] with the clock of the manager and its auth backoff given, so a test can pass the
    /// stuck threshold or a backoff without waiting. The SQL API's key-pair tokens keep the system clock:
    /// Snowflake checks their times against its own.
    pub fn connect_with_clock(
        destination: &Destination,
        settings: Settings,
        connection: Connection,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConnectError> {
        let labels = [
            ("workspaceId", destination.workspace_id.clone()),
            ("destinationId", destination.id.clone()),
            ("destType", "SNOWPIPE_STREAMING".to_owned()),
        ];
        let config = decode_config(destination).unwrap_or_default();
        let backend_name = connection.backend.name();
        let (timeout, retry, sleep) = connection.backend.transport();
        let mut sql = SqlApiConfig::for_destination(&config);
        sql.base_url = connection.sql_api_url.clone();
        sql.timeout = timeout;
        sql.retry = retry.clone();
        sql.sleep = Arc::clone(&sleep);
        let warehouse = TimedWarehouse::new(SqlApiWarehouse::new(sql)?, labels.clone());
        let mut channel_settings =
            ChannelSettings::new(&destination.id, &settings.instance_id, &config);
        channel_settings.bulk_status_batch_size = settings.bulk_status_batch_size;
        channel_settings.reopen_wait = settings.reopen_wait;
        channel_settings.lost_answer_margin = settings.lost_answer_margin;
        let state = connection.state.clone();
        let backoff = AuthBackoff::new(connection.backoff, Arc::clone(&clock));
        let channels: Arc<dyn Channels> = match connection.backend {
            BackendConfig::Sidecar(http) => {
                let account = Account {
                    account: config.account,
                    user: config.user,
                    role: config.role,
                    private_key: config.private_key,
                    private_key_passphrase: config.private_key_passphrase,
                };
                let sidecar = Sidecar::new(HttpClient::new(http)?, account);
                let backend = Instrumented::new(sidecar).with_labels(labels);
                let channels = ChannelManager::new(backend, warehouse, channel_settings, backoff)
                    .with_time(Arc::clone(&clock), sleep);
                Arc::new(match state {
                    Some(state) => channels.with_state(state),
                    None => channels,
                })
            }
            BackendConfig::Rest(options) => {
                let rest = rest_config(config, connection.sql_api_url.clone(), options);
                let backend = Instrumented::new(RestClient::new(rest)?).with_labels(labels);
                let channels = ChannelManager::new(backend, warehouse, channel_settings, backoff)
                    .with_time(Arc::clone(&clock), sleep);
                Arc::new(match state {
                    Some(state) => channels.with_state(state),
                    None => channels,
                })
            }
        };
        let mut manager = Self::new(destination, settings, channels, clock);
        manager.backend = Some(backend_name);
        Ok(manager)
    }

    /// The backend this manager's channels live on (`rest` or `sidecar`), when it connected to one.
    pub fn backend(&self) -> Option<&'static str> {
        self.backend
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The destination id.
    pub fn destination_id(&self) -> &str {
        &self.destination_id
    }
}
