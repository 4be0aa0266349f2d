//! `snowpipe-soak`: runs the fault soak at any size, on either backend (`cargo xtask soak --backend
//! rest|sidecar|both --schedules N [--seed S]`).
//!
//! Each failing schedule is printed with its seed, its shrunk steps and the one-line test that replays it;
//! the last line is `soak: <N> schedules on <backend>, <F> faults injected, <D> duplicates (by cause: ...),
//! <V> violations` (with `both`, the last two lines, REST first), and the exit status is 1 when V > 0. What
//! each cause means is listed above it.

// A command line tool talks to the person running it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::{process::ExitCode, time::Instant};

use clap::{Parser, ValueEnum};
use snowpipe_soak::{Backend, Options, SoakConfig, Summary};

/// The backends a soak runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backends {
    /// Snowflake's REST API, with its faults.
    Rest,
    /// The sidecar protocol, with its faults.
    Sidecar,
    /// REST, then the sidecar.
    Both,
}

impl Backends {
    fn list(self) -> &'static [Backend] {
        match self {
            Self::Rest => &[Backend::Rest],
            Self::Sidecar => &[Backend::Sidecar],
            Self::Both => &Backend::ALL,
        }
    }
}

#[derive(Parser)]
#[command(
    name = "snowpipe-soak",
    about = "Random fault schedules against the manager and the emulator"
)]
struct Args {
    /// The backend the manager runs on (each with its own faults); `both` runs REST, then the sidecar.
    #[arg(long, value_enum, default_value_t = Backends::Both)]
    backend: Backends,
    /// REST: leave out the rows rejected at commit (a seed names the same schedule with or without them,
    /// so this tells whether a failing schedule needs them).
    #[arg(long)]
    no_rejected_rows: bool,
    /// How many schedules to run (on each backend).
    #[arg(long, default_value_t = 64)]
    schedules: usize,
    /// The seed every schedule's seed derives from (decimal or 0x-hex); random when absent.
    #[arg(long, value_parser = parse_seed)]
    seed: Option<u64>,
    /// Schedules run at once (each mostly waits on its emulator, so more than the cores pays).
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Most runs spent shrinking one failing schedule.
    #[arg(long, default_value_t = 200)]
    shrink_budget: usize,
    /// Run only the schedule of this schedule seed (as a failure report prints it) on one backend
    /// (`--backend rest` or `sidecar`), once; with `SOAK_TRACE=1` every step is logged.
    #[arg(long, value_parser = parse_seed, conflicts_with = "replay")]
    schedule_seed: Option<u64>,
    /// Run only the schedule in this JSON file (the shrunk schedule of a failure report), once.
    #[arg(long)]
    replay: Option<std::path::PathBuf>,
}

fn parse_seed(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|e| format!("not a seed: {e}"))
}

fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    snowpipe_soak::schedule_seed(
        u64::try_from(nanos % u128::from(u64::MAX)).unwrap_or(0),
        u64::from(std::process::id()),
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    // With RUST_LOG set, the manager's and the emulator's own logs go to stderr beside the soak's trace
    // (mostly with one schedule: `--replay` or `--schedule-seed`).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let options = Options {
        rejected_rows: !args.no_rejected_rows,
    };
    let single = match (&args.replay, args.schedule_seed) {
        (Some(path), _) => {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("soak: cannot read {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            };
            match serde_json::from_str(&text) {
                Ok(schedule) => Some(schedule),
                Err(e) => {
                    eprintln!("soak: {} is not a schedule: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
        }
        (None, Some(seed)) => match args.backend.list() {
            [backend] => Some(snowpipe_soak::schedule_for(*backend, options, seed)),
            _ => {
                eprintln!(
                    "soak: a schedule seed names a schedule of one backend: add --backend rest or --backend sidecar"
                );
                return ExitCode::from(2);
            }
        },
        (None, None) => None,
    };
    if let Some(schedule) = single {
        println!("{schedule}");
        let outcome = snowpipe_soak::run_schedule(&schedule).await;
        for violation in &outcome.violations {
            println!("  - {violation}");
        }
        for (cause, count) in &outcome.duplicates_by_cause {
            println!(
                "  {count:>8}  duplicates: {cause}: {}",
                snowpipe_soak::describe_cause(cause)
            );
        }
        println!(
            "soak: 1 schedules on {}, {} faults injected, {} duplicates ({}), {} violations",
            schedule.backend,
            outcome.faults,
            outcome.duplicates(),
            snowpipe_soak::by_cause(&outcome.duplicates_by_cause),
            outcome.violations.len()
        );
        return if outcome.violations.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let seed = args.seed.unwrap_or_else(random_seed);
    let mut summaries: Vec<Summary> = Vec::new();
    for &backend in args.backend.list() {
        eprintln!(
            "soak: {} schedules on {backend} from seed {seed:#x}{}",
            args.schedules,
            if !options.rejected_rows && backend == Backend::Rest {
                ", without rows rejected at commit"
            } else {
                ""
            }
        );
        let started = Instant::now();
        let config = SoakConfig {
            backend,
            options,
            schedules: args.schedules,
            seed,
            parallel: args.parallel,
            shrink_budget: args.shrink_budget,
        };
        let summary = snowpipe_soak::soak(config, |failing| {
            println!("{failing}");
        })
        .await;
        eprintln!(
            "soak: {backend} took {:.1?}; {} duplicate rows, by cause:",
            started.elapsed(),
            summary.duplicates()
        );
        for (cause, count) in &summary.duplicates_by_cause {
            eprintln!(
                "  {count:>8}  {cause}: {}",
                snowpipe_soak::describe_cause(cause)
            );
        }
        eprintln!("soak: {backend}: what the schedules exercised:");
        for (what, count) in &summary.coverage {
            eprintln!("  {count:>8}  {what}");
        }
        summaries.push(summary);
    }
    for summary in &summaries {
        println!("{summary}");
    }
    if summaries.iter().any(|s| s.violations > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
