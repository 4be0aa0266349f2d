//! Logs (tracing-subscriber, text or JSON, on stderr) and metrics (Prometheus text on `/metrics`).

use std::{io::IsTerminal as _, net::SocketAddr};

use tracing_subscriber::EnvFilter;

use crate::{
    args::{GlobalArgs, LogFormat},
    error::{CliError, usage},
};

/// The project's crates, whose traces `-v`... turn up; every other crate (HTTP, TLS) stays at warnings
/// unless `RUST_LOG` asks for more.
const OURS: &[&str] = &[
    "snowpipe_streaming",
    "snowpipe_manager",
    "snowpipe_channels",
    "snowpipe_api",
    "snowpipe_auth",
    "snowpipe_grouping",
    "snowpipe_discards",
    "snowpipe_emulator",
];

/// The level `-v`/`-q` ask for: warnings by default.
fn level(verbose: u8, quiet: u8) -> &'static str {
    match i16::from(verbose) - i16::from(quiet) {
        i16::MIN..=-2 => "off",
        -1 => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        3..=i16::MAX => "trace",
    }
}

/// The filter for `-v`/`-q`: the project's crates at the level asked for, everything else at most at
/// warnings.
fn directives(verbose: u8, quiet: u8) -> String {
    let level = level(verbose, quiet);
    let others = match level {
        "off" | "error" | "warn" => level,
        _ => "warn",
    };
    let mut text = others.to_owned();
    for crate_name in OURS {
        text.push_str(&format!(",{crate_name}={level}"));
    }
    text
}

/// The log filter: `RUST_LOG` when it is set (it wins over `-v` and `-q`), else the one `-v`/`-q` give.
/// A `RUST_LOG` that does not parse is a usage error naming it.
fn filter(verbose: u8, quiet: u8) -> Result<EnvFilter, CliError> {
    match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => EnvFilter::builder()
            .parse(&text)
            .map_err(|e| usage(format!("RUST_LOG={text:?} is not a log filter: {e}"))),
        _ => Ok(EnvFilter::new(directives(verbose, quiet))),
    }
}

/// Sends logs to stderr, in the chosen format and level.
pub(crate) fn init_logs(global: &GlobalArgs) -> Result<(), CliError> {
    let filter = filter(global.verbose, global.quiet)?;
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
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_raises_only_the_projects_crates() {
        assert!(directives(0, 0).starts_with("warn,"));
        let trace = directives(3, 0);
        assert!(trace.starts_with("warn,"), "{trace}");
        assert!(trace.contains("snowpipe_manager=trace"), "{trace}");
        assert!(directives(0, 1).starts_with("error,"));
        assert!(directives(0, 2).starts_with("off,"));
        assert!(directives(1, 1).starts_with("warn,"));
    }
}
