//! Logs (tracing-subscriber, text or JSON, on stderr) and metrics (Prometheus text on `/metrics`).

use std::{
    io::{IsTerminal as _, Write as _},
    net::SocketAddr,
    path::{Path, PathBuf},
};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
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

/// Bucket bounds of the `_seconds` histograms: from a fast local call to a slow statement.
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Bucket bounds of the `_bytes` histograms: up to the largest insert request.
const BYTES_BUCKETS: &[f64] = &[
    1024.0,
    16384.0,
    131_072.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    33_554_432.0,
];

/// Where the metrics go: served on `--metrics-addr` while the command runs, and written to
/// `--metrics-file` when it ends.
pub(crate) struct Metrics {
    handle: Option<metrics_exporter_prometheus::PrometheusHandle>,
    file: Option<PathBuf>,
}

impl Metrics {
    /// Installs the recorder when either is asked for: serves on `addr` (needs the async runtime) and
    /// keeps what [`Metrics::write_file`] writes. A file whose folder does not exist is refused up front.
    pub(crate) fn install(addr: Option<SocketAddr>, file: Option<&Path>) -> Result<Self, CliError> {
        if addr.is_none() && file.is_none() {
            return Ok(Self {
                handle: None,
                file: None,
            });
        }
        if let Some(file) = file {
            let folder = match file.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            if !folder.is_dir() {
                return Err(usage(format!(
                    "--metrics-file {}: the folder {} does not exist",
                    file.display(),
                    folder.display()
                )));
            }
        }
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Suffix("_bytes".to_owned()), BYTES_BUCKETS)
            })
            .map_err(|e| CliError::Failed(format!("cannot set up the metrics: {e}")))?;
        let handle = match addr {
            Some(addr) => {
                let (recorder, exporter) =
                    builder.with_http_listener(addr).build().map_err(|e| {
                        usage(format!("--metrics-addr {addr}: cannot serve metrics: {e}"))
                    })?;
                let handle = recorder.handle();
                metrics::set_global_recorder(recorder).map_err(|e| {
                    CliError::Failed(format!("cannot install the metrics recorder: {e}"))
                })?;
                tokio::spawn(exporter);
                tracing::info!(%addr, "serving Prometheus metrics on /metrics");
                handle
            }
            None => {
                let recorder = builder.build_recorder();
                let handle = recorder.handle();
                metrics::set_global_recorder(recorder).map_err(|e| {
                    CliError::Failed(format!("cannot install the metrics recorder: {e}"))
                })?;
                handle
            }
        };
        snowpipe_manager::telemetry::describe_metrics();
        Ok(Self {
            handle: Some(handle),
            file: file.map(Path::to_owned),
        })
    }

    /// Writes the metrics as they stand to `--metrics-file`, in the Prometheus text format node-exporter's
    /// textfile collector reads, atomically: a temporary file in the same folder, synced, renamed over it.
    pub(crate) fn write_file(&self) -> Result<(), CliError> {
        let (Some(handle), Some(file)) = (&self.handle, &self.file) else {
            return Ok(());
        };
        let failed = |e: std::io::Error| {
            CliError::Failed(format!(
                "cannot write the metrics to {} (--metrics-file): {e}",
                file.display()
            ))
        };
        let folder = match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let mut temporary = tempfile::Builder::new()
            .prefix(".snowpipe-streaming-metrics")
            .suffix(".tmp")
            .tempfile_in(folder)
            .map_err(failed)?;
        temporary
            .write_all(handle.render().as_bytes())
            .and_then(|()| temporary.as_file().sync_all())
            .map_err(failed)?;
        temporary.persist(file).map_err(|e| failed(e.error))?;
        Ok(())
    }
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
