//! Logs (tracing-subscriber, text or JSON, on stderr) and metrics (Prometheus text on `/metrics`).

use std::{io::IsTerminal as _, net::SocketAddr};

use tracing_subscriber::EnvFilter;

use crate::{
    args::{GlobalArgs, LogFormat},
    error::{CliError, usage},
};

/// The log filter for `-v`/`-q`: warnings by default.
fn filter(verbose: u8, quiet: u8) -> EnvFilter {
    let level = match i16::from(verbose) - i16::from(quiet) {
        i16::MIN..=-2 => "off",
        -1 => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        3..=i16::MAX => "trace",
    };
    EnvFilter::new(level)
}

/// Sends logs to stderr, in the chosen format and level.
pub(crate) fn init_logs(global: &GlobalArgs) {
    let filter = filter(global.verbose, global.quiet);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second subscriber (never expected here) would be refused; logs then go to the first one.
    let _ = match global.log_format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Serves the metrics on `http://addr/metrics` for as long as the process runs. Needs the async runtime.
pub(crate) fn serve_metrics(addr: SocketAddr) -> Result<(), CliError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| usage(format!("--metrics-addr {addr}: cannot serve metrics: {e}")))?;
    tracing::info!(%addr, "serving Prometheus metrics on /metrics");
    Ok(())
}
