//! The `snowpipe-emulator` command: runs the emulator until Ctrl-C or SIGTERM. The first line on stdout
//! is the bound address (`127.0.0.1:9078`), so scripts that ask for port 0 can read where it listens.

use std::{
    io::{IsTerminal as _, Write as _},
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use clap::Parser;
use snowpipe_emulator::{Emulator, EmulatorConfig, parse_duration};
use tracing_subscriber::EnvFilter;

/// A local stand-in for the Snowpipe Streaming service and Snowflake's SQL API (DDL), with fault
/// injection and inspection under /_emulator/. A demo user (DEMO_USER, role DEMO_ROLE, database DEMO_DB,
/// account DEMO) with a built-in key pair is always available unless the config file turns it off.
#[derive(Parser, Debug)]
#[command(name = "snowpipe-emulator", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    bind: std::net::IpAddr,
    /// Port to listen on; 0 picks a free one. The bound address is the first line on stdout.
    #[arg(long, default_value_t = 9078, value_name = "N")]
    port: u16,
    /// Time from insert to commit, e.g. 0, 250ms, 1s (0 commits during the insert call).
    /// Overrides the config file. [default: 1s]
    #[arg(long, value_name = "DUR", value_parser = duration)]
    commit_lag: Option<Duration>,
    /// Largest request body in bytes, compressed or not; larger requests get 413.
    /// Overrides the config file. [default: 67108864]
    #[arg(long, value_name = "BYTES")]
    body_limit: Option<usize>,
    /// Users (with public keys and roles), databases, account and limits, as TOML or JSON.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log filter (tracing's env-filter syntax); `debug` logs every call. RUST_LOG wins when set.
    #[arg(long, default_value = "info", value_name = "FILTER")]
    log: String,
    /// Print a destination file for the demo account (user DEMO_USER, database DEMO_DB, its private key)
    /// on stdout and exit, for `snowpipe-streaming --destination FILE`.
    #[arg(long)]
    print_destination: bool,
    /// The namespace (schema) of the destination --print-destination prints.
    #[arg(
        long,
        default_value = "demo",
        value_name = "N",
        requires = "print_destination"
    )]
    namespace: String,
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_destination {
        return print_destination(&args.namespace);
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&args.log));
    // Logs go to stderr: stdout carries only the address line.
    // Colour codes only for a person at a terminal: not in a file, a pipe or a CI log.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();
    let mut config = match &args.config {
        Some(path) => match EmulatorConfig::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(2);
            }
        },
        None => EmulatorConfig::default(),
    };
    if let Some(lag) = args.commit_lag {
        config.commit_lag = lag;
    }
    if let Some(limit) = args.body_limit {
        config.body_limit = limit;
    }
    let emulator = match Emulator::builder()
        .config(config)
        .bind(SocketAddr::new(args.bind, args.port))
        .start()
        .await
    {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    #[allow(clippy::print_stdout)]
    {
        // The one line a script reads; flushed so it is seen at once through a pipe.
        println!("{}", emulator.addr());
        let _ = std::io::stdout().flush();
    }
    wait_for_signal().await;
    tracing::info!("shutting down");
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

/// Prints a destination file for the demo account on stdout, and how to use it on stderr.
fn print_destination(namespace: &str) -> ExitCode {
    let destination = serde_json::json!({
        "id": "emulator-demo",
        "workspaceId": "emulator-demo-workspace",
        "config": snowpipe_emulator::demo::destination_config(namespace),
    });
    let text = match serde_json::to_string_pretty(&destination) {
        Ok(text) => text,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "snowpipe-emulator: cannot encode the destination: {e}"
            );
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        let _ = writeln!(
            std::io::stderr(),
            "snowpipe-emulator: cannot write to stdout: {e}"
        );
        return ExitCode::FAILURE;
    }
    if std::io::stderr().is_terminal() {
        let _ = writeln!(
            std::io::stderr(),
            "the demo account's destination (its key opens only the emulator); with the emulator on port 9078:\n  snowpipe-streaming --destination FILE --sql-api-url http://localhost:9078 upload --file events.jsonl"
        );
    }
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
