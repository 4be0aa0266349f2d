//! The manager's settings and connection, from the global options.

use std::sync::Arc;

use snowpipe_manager::{
    BackendConfig, BackoffConfig, ConnectError, Connection, Destination, HttpConfig, Manager,
    RetryConfig, Settings, StateStore,
};

use crate::{
    args::GlobalArgs,
    error::{CliError, usage},
};

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

/// How to reach the service (`service_url`) and the SQL API (`sql_api_url`, `None` for Snowflake's own).
/// Checks the options first; the state store is given to [`manager`].
pub(crate) fn connection(
    global: &GlobalArgs,
    service_url: String,
    sql_api_url: Option<String>,
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
    if let Some(url) = &sql_api_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(usage(format!(
            "--sql-api-url {url:?}: give an http:// or https:// URL"
        )));
    }
    let defaults = HttpConfig::default();
    Ok(Connection {
        backend: BackendConfig::Sidecar(HttpConfig {
            base_url: service_url,
            timeout: global.request_timeout,
            connect_timeout: defaults.connect_timeout.min(global.request_timeout),
            insert_gzip_level: if global.no_compression {
                None
            } else {
                defaults.insert_gzip_level
            },
            retry: RetryConfig {
                max_retries: global.retry_max,
                min_delay: global.retry_wait_min,
                max_delay: global.retry_wait_max,
                ..RetryConfig::default()
            },
            ..defaults
        }),
        sql_api_url,
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
        other => CliError::Failed(format!(
            "cannot set up the Snowflake SQL API client: {other}"
        )),
    })
}
