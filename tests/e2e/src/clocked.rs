//! A manager over HTTP whose own clock is one the test moves: the stuck threshold, the auth backoff and the
//! upload time follow it, so a test passes fifteen minutes by calling `advance` instead of waiting.
//!
//! The SQL API's key-pair tokens keep the real clock: the emulator checks their times against its own, and a
//! token issued in the future would be refused.

use std::sync::Arc;

use snowpipe_api::{HttpClient, Instrumented, SnowpipeApi};
use snowpipe_channels::{
    AuthBackoff, ChannelManager, ChannelSettings, Channels, Clock, DestinationConfig, SqlApiConfig,
    SqlApiWarehouse, SystemClock,
};
use snowpipe_manager::{ConnectError, Connection, Destination, Manager, Settings};

/// What [`Manager::connect`] builds, with `clock` for the manager and its auth backoff.
///
/// # Errors
/// The same as [`Manager::connect`]: settings a client cannot be built from.
pub fn connect_with_clock(
    destination: &Destination,
    settings: Settings,
    connection: Connection,
    clock: Arc<dyn Clock>,
) -> Result<Manager, ConnectError> {
    let api: Arc<dyn SnowpipeApi> = Arc::new(Instrumented::new(HttpClient::new(
        connection.service.clone(),
    )?));
    let config: DestinationConfig =
        serde_json::from_value(destination.config.clone()).unwrap_or_default();
    let mut sql = SqlApiConfig::new(
        &config.account,
        &config.user,
        &config.role,
        &config.warehouse,
        &config.database,
        config.private_key.clone(),
    );
    sql.private_key_passphrase = config.private_key_passphrase.clone();
    sql.iceberg = config.enable_iceberg;
    sql.base_url = connection.sql_api_url;
    sql.timeout = connection.service.timeout;
    sql.retry = connection.service.retry.clone();
    sql.sleep = Arc::clone(&connection.service.sleep);
    sql.clock = Arc::new(SystemClock);
    let warehouse = SqlApiWarehouse::new(sql)?;
    let channel_settings = ChannelSettings::new(&destination.id, &settings.instance_id, &config);
    let backoff = AuthBackoff::new(connection.backoff, Arc::clone(&clock));
    let channels: Arc<dyn Channels> = Arc::new(ChannelManager::new(
        Arc::clone(&api),
        warehouse,
        channel_settings,
        backoff,
    ));
    Ok(Manager::new(destination, settings, api, channels, clock))
}
