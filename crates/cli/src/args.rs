//! The command line (clap derive): the global options, the commands and their arguments.
//!
//! Every global option can also come from `SNOWPIPE_STREAMING_<NAME>` and from the `--config` file; the
//! layering is in `config.rs`. The names and defaults here are a contract (issue 7, `docs/CLI.md`).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// Upload event files to Snowflake through a Snowpipe Streaming service, poll the imports and report, job by
/// job, what landed.
///
/// Results go to stdout as JSON, one object per line; logs go to stderr. Every option can also be set by
/// the environment variable shown, or by a key of the TOML file given with --config (kebab-case or
/// snake_case): flags win over the environment, which wins over the file, which wins over the defaults.
/// Exit status: 0 when the command ran (job outcomes are in the JSON), 2 for usage or configuration errors,
/// 1 for anything else.
#[derive(Debug, Parser)]
#[command(
    name = "snowpipe-streaming",
    version,
    propagate_version = true,
    args_override_self = true
)]
pub(crate) struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The backends the command can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackendArg {
    /// Snowflake's Snowpipe Streaming REST API.
    Rest,
    /// A sidecar service wrapping Snowflake's ingest SDK.
    Sidecar,
}

impl BackendArg {
    /// The name import ids record.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Sidecar => "sidecar",
        }
    }
}

/// How insert bodies are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CompressionArg {
    /// Zstandard (REST only).
    Zstd,
    /// gzip.
    Gzip,
    /// None.
    None,
}

/// The options every command takes.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// TOML file with any of these options as keys (`service-url = "..."`); relative paths in it are
    /// relative to the file.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "SNOWPIPE_STREAMING_CONFIG"
    )]
    pub(crate) config: Option<PathBuf>,

    /// The destination, as JSON: {"id", "workspaceId", "config": {account, warehouse, database, user, role,
    /// privateKey, privateKeyPassphrase, namespace, enableIceberg}}. Needed by upload, poll and run.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "SNOWPIPE_STREAMING_DESTINATION"
    )]
    pub(crate) destination: Option<PathBuf>,

    /// A file holding the destination's private key (PKCS#8 PEM): wins over the destination file's
    /// privateKey, so the key need not be pasted into JSON.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "SNOWPIPE_STREAMING_PRIVATE_KEY_FILE"
    )]
    pub(crate) private_key_file: Option<PathBuf>,

    /// Which Snowpipe Streaming backend the channels live on: Snowflake's own REST API (`rest`: nothing else
    /// to run), or a sidecar service that wraps Snowflake's ingest SDK (`sidecar`, at --service-url).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = BackendArg::Rest,
        env = "SNOWPIPE_STREAMING_BACKEND"
    )]
    pub(crate) backend: BackendArg,

    /// Base URL of the sidecar service (--backend sidecar only) [default: http://localhost:9078].
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "SNOWPIPE_STREAMING_SERVICE_URL"
    )]
    pub(crate) service_url: Option<String>,

    /// Base URL of the Snowflake account: the SQL API (DDL, DESCRIBE TABLE) and, on REST, hostname
    /// discovery and the token exchange [default: https://<account>.snowflakecomputing.com].
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "SNOWPIPE_STREAMING_ACCOUNT_URL"
    )]
    pub(crate) account_url: Option<String>,

    /// The former name of --account-url, still accepted (not both).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "SNOWPIPE_STREAMING_SQL_API_URL"
    )]
    pub(crate) sql_api_url: Option<String>,

    /// Base URL of the Snowpipe Streaming ingest host (--backend rest only); discovered from the account
    /// when not given. For PrivateLink, or a host the discovery answer does not reach.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "SNOWPIPE_STREAMING_INGEST_URL"
    )]
    pub(crate) ingest_url: Option<String>,

    /// Instance id: the partition of the channels this process opens.
    #[arg(
        long,
        global = true,
        value_name = "ID",
        default_value = "1",
        env = "SNOWPIPE_STREAMING_INSTANCE_ID"
    )]
    pub(crate) instance_id: String,

    /// Folder for each destination and instance's lock and channel state; created (mode 0700) when needed.
    ///
    /// upload, poll and run hold the lock while they run, so that one process at a time writes a destination
    /// and instance; each table's last channel id and opening token let a later process wait for the earlier
    /// one's rows to commit before it reopens the channel. The default is $XDG_CACHE_HOME/snowpipe-streaming,
    /// else ~/.cache/snowpipe-streaming (~/Library/Caches/snowpipe-streaming on macOS), else the temporary
    /// folder. Two hosts must never share a destination and instance.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value_os_t = crate::state::default_dir(),
        env = "SNOWPIPE_STREAMING_STATE_DIR"
    )]
    pub(crate) state_dir: PathBuf,

    /// How long upload and run wait for another process of this destination and instance to finish before
    /// giving up (exit status 1); poll waits at most 5s, then answers "in progress".
    #[arg(
        long,
        global = true,
        value_name = "DUR",
        default_value = "60s",
        value_parser = duration,
        env = "SNOWPIPE_STREAMING_LOCK_TIMEOUT"
    )]
    pub(crate) lock_timeout: Duration,

    /// Longest line of an event file, in bytes; a longer line aborts the batch.
    #[arg(
        long,
        global = true,
        value_name = "N",
        default_value = "524288",
        value_parser = positive,
        env = "SNOWPIPE_STREAMING_MAX_LINE_BYTES"
    )]
    pub(crate) max_line_bytes: usize,

    /// Largest rows array of one insert request, in bytes: a larger event is aborted, and a table's events
    /// past the limit are failed (retried in a later batch).
    #[arg(
        long,
        global = true,
        value_name = "N",
        default_value = "25165824",
        value_parser = positive,
        env = "SNOWPIPE_STREAMING_MAX_INSERT_REQUEST_BYTES"
    )]
    pub(crate) max_insert_request_bytes: usize,

    /// Most channel ids in one bulk status request.
    #[arg(
        long,
        global = true,
        value_name = "N",
        default_value = "100",
        value_parser = positive,
        env = "SNOWPIPE_STREAMING_BULK_STATUS_BATCH_SIZE"
    )]
    pub(crate) bulk_status_batch_size: usize,

    /// How long an import may stay in progress before its channels are checked one by one and it fails as
    /// stuck (counted from the first in-progress poll of this process).
    #[arg(
        long,
        global = true,
        value_name = "DUR",
        default_value = "15m",
        value_parser = duration,
        env = "SNOWPIPE_STREAMING_STUCK_THRESHOLD"
    )]
    pub(crate) stuck_threshold: Duration,

    /// How long an import's channel may keep its committed position still while the import waits on it
    /// before the channel is checked on its own status: invalid, its rows fail at once with a reason naming
    /// the stall; valid, a warning and the snowpipe_streaming_channels_stalled gauge. Counted from the
    /// upload in a fresh poll process.
    #[arg(
        long,
        global = true,
        value_name = "DUR",
        default_value = "60s",
        value_parser = duration,
        env = "SNOWPIPE_STREAMING_STALL_AFTER"
    )]
    pub(crate) stall_after: Duration,

    /// Longest time one service request may take.
    #[arg(
        long,
        global = true,
        value_name = "DUR",
        default_value = "60s",
        value_parser = duration,
        env = "SNOWPIPE_STREAMING_REQUEST_TIMEOUT"
    )]
    pub(crate) request_timeout: Duration,

    /// Retries of a failed service request (0 disables retrying).
    #[arg(
        long,
        global = true,
        value_name = "N",
        default_value = "5",
        env = "SNOWPIPE_STREAMING_RETRY_MAX"
    )]
    pub(crate) retry_max: usize,

    /// Wait before the first retry.
    #[arg(
        long,
        global = true,
        value_name = "DUR",
        default_value = "100ms",
        value_parser = duration,
        env = "SNOWPIPE_STREAMING_RETRY_WAIT_MIN"
    )]
    pub(crate) retry_wait_min: Duration,

    /// Longest wait between two attempts.
    #[arg(
        long,
        global = true,
        value_name = "DUR",
        default_value = "10s",
        value_parser = duration,
        env = "SNOWPIPE_STREAMING_RETRY_WAIT_MAX"
    )]
    pub(crate) retry_wait_max: Duration,

    /// How insert bodies are compressed [default: zstd on REST, gzip on the sidecar, which takes no zstd].
    #[arg(
        long,
        global = true,
        value_enum,
        env = "SNOWPIPE_STREAMING_COMPRESSION"
    )]
    pub(crate) compression: Option<CompressionArg>,

    /// Send insert bodies uncompressed: the same as --compression none.
    #[arg(
        long,
        global = true,
        env = "SNOWPIPE_STREAMING_NO_COMPRESSION",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub(crate) no_compression: bool,

    /// Wait after the first authentication or authorization failure before DDL is tried again.
    #[arg(
        long,
        global = true,
        value_name = "DUR",
        default_value = "1s",
        value_parser = duration,
        env = "SNOWPIPE_STREAMING_AUTH_BACKOFF_INITIAL"
    )]
    pub(crate) auth_backoff_initial: Duration,

    /// Growth of that wait per consecutive failure.
    #[arg(
        long,
        global = true,
        value_name = "F",
        default_value = "2",
        value_parser = multiplier,
        env = "SNOWPIPE_STREAMING_AUTH_BACKOFF_MULTIPLIER"
    )]
    pub(crate) auth_backoff_multiplier: f64,

    /// Longest auth backoff.
    #[arg(
        long,
        global = true,
        value_name = "DUR",
        default_value = "1h",
        value_parser = duration,
        env = "SNOWPIPE_STREAMING_AUTH_BACKOFF_MAX"
    )]
    pub(crate) auth_backoff_max: Duration,

    /// Serve Prometheus metrics (text format) on http://ADDR/metrics while the command runs, e.g.
    /// 127.0.0.1:9090.
    #[arg(
        long,
        global = true,
        value_name = "ADDR",
        env = "SNOWPIPE_STREAMING_METRICS_ADDR"
    )]
    pub(crate) metrics_addr: Option<SocketAddr>,

    /// Exit with status 3 when any job failed or was aborted (upload, run), the import failed (poll) or any
    /// job failed (stats), like `git diff --exit-code`; without it, 0 means the command ran.
    #[arg(
        long,
        global = true,
        env = "SNOWPIPE_STREAMING_EXIT_CODE",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub(crate) exit_code: bool,

    /// When to draw run's progress line on stderr: auto (when stderr is a terminal), always, never.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value = "auto",
        env = "SNOWPIPE_STREAMING_PROGRESS"
    )]
    pub(crate) progress: ProgressWhen,

    /// Write the final metrics to FILE when the command ends, in the Prometheus text format that
    /// node-exporter's textfile collector reads (name it *.prom), atomically (a temporary file renamed).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "SNOWPIPE_STREAMING_METRICS_FILE"
    )]
    pub(crate) metrics_file: Option<PathBuf>,

    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "SNOWPIPE_STREAMING_LOG_FORMAT"
    )]
    pub(crate) log_format: LogFormat,

    /// More logs: -v info, -vv debug, -vvv trace of this program's own crates (default: warnings and
    /// errors). RUST_LOG, when set, wins over -v and -q.
    #[arg(
        short,
        long,
        global = true,
        action = ArgAction::Count,
        env = "SNOWPIPE_STREAMING_VERBOSE"
    )]
    pub(crate) verbose: u8,

    /// Fewer logs: -q errors only, -qq none.
    #[arg(
        short,
        long,
        global = true,
        action = ArgAction::Count,
        env = "SNOWPIPE_STREAMING_QUIET"
    )]
    pub(crate) quiet: u8,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// When the progress line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProgressWhen {
    /// When stderr is a terminal.
    Auto,
    /// Always, as on a terminal.
    Always,
    /// Never.
    Never,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Upload one event file. Prints {"destinationId", "importingJobIds", "importingCount",
    /// "importingParameters", "failedJobIds", "failedCount", "failedReason", "abortedJobIds", "abortCount",
    /// "abortReason"}.
    Upload(UploadArgs),
    /// Ask whether an import is complete. Prints {"complete", "inProgress", "statusCode", "hasFailed",
    /// "hasWarning", "failedJobParameters", "error"}.
    Poll(PollArgs),
    /// Tell which importing jobs succeeded and which failed. Prints {"statusCode", "metadata":
    /// {"succeededKeys", "failedKeys", "failedReasons"}, "error"}.
    Stats(StatsArgs),
    /// For each file in order: upload, poll until complete, stats. Prints one line per file.
    Run(RunArgs),
    /// Start an emulator in this process, run a sample batch through it and print a human summary.
    Demo,
    /// Check a destination and the settings before the first upload: the fields, the key (and its
    /// passphrase), the public key's fingerprint and the ALTER USER statement that registers it, the account
    /// reached with a key-pair token, the role's use of the database and schema. One line per check, ✓ or
    /// ✗ with what to do; exit status 1 on any ✗. Writes nothing.
    Check,
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print the JSON Schema (draft 2020-12) of a command's JSON output: upload, poll, stats or run.
    Schema(SchemaArgs),
    /// Write the man pages into a folder (what `cargo xtask man` runs).
    #[command(hide = true)]
    Man(ManArgs),
}

/// `completions`' arguments.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

/// `schema`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct SchemaArgs {
    /// The command whose output it describes.
    #[arg(value_enum)]
    pub(crate) command: crate::generate::SchemaOf,
}

/// `man`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// The folder to write the pages into (created if need be).
    #[arg(long, value_name = "DIR")]
    pub(crate) out_dir: PathBuf,
}

/// `upload`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct UploadArgs {
    /// The event file: one JSON event per line, plain, gzip or zstd; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub(crate) file: PathBuf,
}

/// `poll`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct PollArgs {
    /// The import id: the `importId` array of upload's importingParameters, or the whole object; inline
    /// JSON, or @FILE to read it from a file.
    #[arg(long, value_name = "JSON|@FILE")]
    pub(crate) import_id: String,
}

/// `stats`' arguments.
#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// Poll's failedJobParameters array (or upload's importId array when poll reported no failure); inline
    /// JSON, or @FILE.
    #[arg(long, value_name = "JSON|@FILE")]
    pub(crate) failed_job_parameters: String,
    /// The jobs that were importing, in the event file format (their job ids and tables are read).
    #[arg(long, value_name = "FILE")]
    pub(crate) jobs: PathBuf,
}

/// `run`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// An event file (plain, gzip or zstd; `-` for standard input, once); repeat for several, handled in
    /// order.
    #[arg(long = "file", value_name = "FILE", required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// Longest wait between two polls of an import: the first poll comes right after the upload, the next
    /// 250ms later, each wait doubling up to this one.
    #[arg(
        long,
        value_name = "DUR",
        default_value = "10s",
        value_parser = duration,
        env = "SNOWPIPE_STREAMING_POLL_INTERVAL"
    )]
    pub(crate) poll_interval: Duration,
}

/// A duration such as `250ms`, `2s`, `15m` or `1h 30m`.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e} (give a duration such as 250ms, 2s, 15m)"))
}

fn positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn multiplier(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 1.0 => Ok(f),
        Ok(_) => Err("must be a finite number of at least 1".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_read_as_people_write_them() {
        let check = |text: &str, expect: Duration| assert_eq!(duration(text).unwrap(), expect);
        check("250ms", Duration::from_millis(250));
        check("2s", Duration::from_secs(2));
        check("15m", Duration::from_secs(900));
        check("1h", Duration::from_secs(3600));
        check("0", Duration::ZERO);
        assert!(duration("15").unwrap_err().contains("250ms"));
        assert!(duration("soon").is_err());
    }

    #[test]
    fn numbers_are_checked() {
        assert!(positive("0").is_err());
        assert_eq!(positive("7").unwrap(), 7);
        assert!(multiplier("0.5").is_err());
        assert!(multiplier("inf").is_err());
        assert!((multiplier("1.5").unwrap() - 1.5).abs() < f64::EPSILON);
    }
}
