//! The manager's settings and connection, from the global options.

use std::sync::Arc;

use snowpipe_manager::{
    BackendConfig, BackoffConfig, Compression, ConnectError, Connection, Destination, HttpConfig,
    Manager, RestOptions, RetryConfig, Settings, StateStore,
};

use crate::{
    args::{BackendArg, CompressionArg, GlobalArgs},
    error::{CliError, usage},
};

/// The sidecar's address when --service-url is not given.
pub(crate) const DEFAULT_SERVICE_URL: &str = "http://localhost:9078";

/// Where the command's services are, from the options, checked against the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoints {
    /// The backend.
    pub(crate) backend: BackendArg,
    /// The sidecar's base URL (sidecar only).
    pub(crate) service: String,
    /// The account's base URL (SQL API, discovery, token exchange); `None`: Snowflake's own for the account.
    pub(crate) account: Option<String>,
    /// The ingest host's base URL (REST only); `None`: discovered.
    pub(crate) ingest: Option<String>,
}

impl Endpoints {
    /// The endpoints the options name: `--account-url` (or its former name `--sql-api-url`, not both);
    /// `--service-url` only with the sidecar, `--ingest-url` only with REST.
    pub(crate) fn from_options(global: &GlobalArgs) -> Result<Self, CliError> {
        if global.account_url.is_some() && global.sql_api_url.is_some() {
            return Err(usage(
                "--account-url and --sql-api-url name the same URL (--sql-api-url is its former name): give one",
            ));
        }
        let account = global
            .account_url
            .clone()
            .or_else(|| global.sql_api_url.clone());
        match global.backend {
            BackendArg::Rest if global.service_url.is_some() => {
                return Err(usage(
                    "--service-url is the sidecar's address: add --backend sidecar to use a sidecar, or leave it out to talk to Snowflake's REST API directly",
                ));
            }
            BackendArg::Sidecar if global.ingest_url.is_some() => {
                return Err(usage(
                    "--ingest-url is for Snowflake's REST API (--backend rest); the sidecar finds its own ingest host",
                ));
            }
            _ => {}
        }
        for (option, url) in [
            ("--account-url", account.as_deref()),
            ("--ingest-url", global.ingest_url.as_deref()),
            ("--service-url", global.service_url.as_deref()),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(usage(format!(
                    "{option} {url:?}: give an http:// or https:// URL"
                )));
            }
        }
        Ok(Self {
            backend: global.backend,
            service: global
                .service_url
                .clone()
                .unwrap_or_else(|| DEFAULT_SERVICE_URL.to_owned()),
            account,
            ingest: global.ingest_url.clone(),
        })
    }

    /// Every service in one emulator (the demo): its sidecar, SQL API and REST API share an address.
    pub(crate) fn emulator(backend: BackendArg, url: &str) -> Self {
        Self {
            backend,
            service: url.to_owned(),
            account: Some(url.to_owned()),
            ingest: None,
        }
    }
}

/// The compression the options ask for, checked against the backend.
fn compression(global: &GlobalArgs, backend: BackendArg) -> Result<CompressionArg, CliError> {
    let chosen = match (global.compression, global.no_compression) {
        (Some(_), true) => {
            return Err(usage(
                "--no-compression and --compression: give one (--no-compression is --compression none)",
            ));
        }
        (Some(chosen), false) => chosen,
        (None, true) => CompressionArg::None,
        (None, false) => match backend {
            BackendArg::Rest => CompressionArg::Zstd,
            BackendArg::Sidecar => CompressionArg::Gzip,
        },
    };
    if backend == BackendArg::Sidecar && chosen == CompressionArg::Zstd {
        return Err(usage(
            "--compression zstd: the sidecar takes gzip or none (zstd is for --backend rest)",
        ));
    }
    Ok(chosen)
}

/// The manager's settings.
pub(crate) fn settings(global: &GlobalArgs) -> Settings {
    Settings {
        instance_id: global.instance_id.clone(),
        max_line_bytes: global.max_line_bytes,
        max_insert_request_bytes: global.max_insert_request_bytes,
        bulk_status_batch_size: global.bulk_status_batch_size,
        stuck_threshold: global.stuck_threshold,
        stall_after: global.stall_after,
        ..Settings::default()
    }
}

/// How to reach the backend and the account, from checked [`Endpoints`]. Checks the other options
/// first; the state store is given to [`manager`].
pub(crate) fn connection(
    global: &GlobalArgs,
    endpoints: &Endpoints,
) -> Result<Connection, CliError> {
    if global.request_timeout.is_zero() {
        return Err(usage("--request-timeout must be above zero"));
    }
    if global.retry_wait_min > global.retry_wait_max {
        return Err(usage(format!(
            "--retry-wait-min ({}) is longer than --retry-wait-max ({})",
            humantime::format_duration(global.retry_wait_min),
            humantime::format_duration(global.retry_wait_max)
        )));
    }
    if global.auth_backoff_initial > global.auth_backoff_max {
        return Err(usage(format!(
            "--auth-backoff-initial ({}) is longer than --auth-backoff-max ({})",
            humantime::format_duration(global.auth_backoff_initial),
            humantime::format_duration(global.auth_backoff_max)
        )));
    }
    let compression = compression(global, endpoints.backend)?;
    let retry = RetryConfig {
        max_retries: global.retry_max,
        min_delay: global.retry_wait_min,
        max_delay: global.retry_wait_max,
        ..RetryConfig::default()
    };
    let backend = match endpoints.backend {
        BackendArg::Sidecar => {
            let defaults = HttpConfig::default();
            BackendConfig::Sidecar(HttpConfig {
                base_url: endpoints.service.clone(),
                timeout: global.request_timeout,
                connect_timeout: defaults.connect_timeout.min(global.request_timeout),
                insert_gzip_level: match compression {
                    CompressionArg::None => None,
                    CompressionArg::Gzip | CompressionArg::Zstd => defaults.insert_gzip_level,
                },
                retry,
                ..defaults
            })
        }
        BackendArg::Rest => {
            let mut options = RestOptions::default();
            options.ingest_url.clone_from(&endpoints.ingest);
            options.compression = match compression {
                CompressionArg::Zstd => Compression::Zstd(1),
                CompressionArg::Gzip => Compression::Gzip(1),
                CompressionArg::None => Compression::None,
            };
            options.timeout = global.request_timeout;
            options.connect_timeout = options.connect_timeout.min(global.request_timeout);
            options.retry = retry;
            BackendConfig::Rest(options)
        }
    };
    Ok(Connection {
        backend,
        sql_api_url: endpoints.account.clone(),
        backoff: BackoffConfig {
            initial: global.auth_backoff_initial,
            multiplier: global.auth_backoff_multiplier,
            max: global.auth_backoff_max,
        },
        state: None,
    })
}

/// A manager for the destination, over HTTP, keeping its tables' channel states in `state` (the state
/// directory's file, read after taking the destination and instance's lock).
pub(crate) fn manager(
    global: &GlobalArgs,
    destination: &Destination,
    connection: Connection,
    state: Arc<dyn StateStore>,
) -> Result<Manager, CliError> {
    let connection = Connection {
        state: Some(state),
        ..connection
    };
    Manager::connect(destination, settings(global), connection).map_err(|e| match e {
        ConnectError::Service(e) => usage(format!("--service-url / HTTP options: {e}")),
        ConnectError::Rest(e) => usage(format!("--account-url / --ingest-url / REST options: {e}")),
        other => CliError::Failed(format!(
            "cannot set up the Snowflake SQL API client: {other}"
        )),
    })
}
