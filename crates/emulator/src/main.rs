//! The `snowpipe-emulator` command: runs the emulator until Ctrl-C or SIGTERM. The first line on stdout
//! is the bound address (`127.0.0.1:9078`), so scripts that ask for port 0 can read where it listens.
//! `snowpipe-emulator jwt` prints a key-pair JWT instead, so a person can follow the REST API with curl.

use std::{
    io::{IsTerminal as _, Write as _},
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use clap::{Parser, Subcommand};
use snowpipe_emulator::{Emulator, EmulatorConfig, demo, jwt, parse_duration};
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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a key-pair JWT (as Snowflake clients send it) for a user, signed with the demo key unless
    /// told otherwise; valid for an hour.
    Jwt(JwtArgs),
}

#[derive(clap::Args, Debug)]
struct JwtArgs {
    /// The user the JWT speaks for.
    #[arg(long, default_value = demo::USER, value_name = "USER")]
    user: String,
    /// The account.
    #[arg(long, default_value = demo::ACCOUNT, value_name = "ACCOUNT")]
    account: String,
    /// The user's private key (PEM, PKCS#8 or PKCS#1); the built-in demo key when absent.
    #[arg(long, value_name = "FILE")]
    private_key: Option<PathBuf>,
    /// The private key's passphrase, if it is encrypted.
    #[arg(long, value_name = "TEXT")]
    passphrase: Option<String>,
    /// Lifetime in seconds (Snowflake takes at most 3600).
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    lifetime: i64,
}

/// Prints the JWT `args` ask for; exit status 2 when the key cannot be read.
fn print_jwt(args: &JwtArgs) -> ExitCode {
    let key = match &args.private_key {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!("cannot read {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => demo::PRIVATE_KEY_PEM.to_owned(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    match jwt::sign(
        &key,
        args.passphrase.as_deref(),
        &args.account,
        &args.user,
        now,
        args.lifetime,
    ) {
        Ok(token) => {
            #[allow(clippy::print_stdout)]
            {
                println!("{token}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("cannot sign a JWT: {e}");
            ExitCode::from(2)
        }
    }
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
    if let Some(Command::Jwt(jwt_args)) = &args.command {
        return print_jwt(jwt_args);
    }
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
