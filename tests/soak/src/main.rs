//! `snowpipe-soak`: runs the fault soak at any size (`cargo xtask soak --schedules N [--seed S]`).
//!
//! Each failing schedule is printed with its seed, its shrunk steps and the one-line test that replays it;
//! the last line is `soak: <N> schedules, <F> faults injected, <D> duplicates, <V> violations`, and the exit
//! status is 1 when V > 0. The duplicates are listed by cause above it.

// A command line tool talks to the person running it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::{process::ExitCode, time::Instant};

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "snowpipe-soak",
    about = "Random fault schedules against the manager and the emulator"
)]
struct Args {
    /// How many schedules to run.
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
    /// Run only the schedule of this schedule seed (as a failure report prints it), once; with
    /// `SOAK_TRACE=1` every step is logged.
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
        (None, Some(seed)) => Some(snowpipe_soak::schedule_for_seed(seed)),
        (None, None) => None,
    };
    if let Some(schedule) = single {
        println!("{schedule}");
        let outcome = snowpipe_soak::run_schedule(&schedule).await;
        for violation in &outcome.violations {
            println!("  - {violation}");
        }
        for (cause, count) in &outcome.duplicates_by_cause {
            println!("  {count:>8}  duplicates: {cause}");
        }
        println!(
            "soak: 1 schedules, {} faults injected, {} duplicates, {} violations",
            outcome.faults,
            outcome.duplicates(),
            outcome.violations.len()
        );
        return if outcome.violations.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let seed = args.seed.unwrap_or_else(random_seed);
    eprintln!("soak: {} schedules from seed {seed:#x}", args.schedules);
    let started = Instant::now();
    let summary = snowpipe_soak::soak(
        args.schedules,
        seed,
        args.parallel,
        args.shrink_budget,
        |failing| {
            println!("{failing}");
        },
    )
    .await;
    eprintln!(
        "soak: took {:.1?}; {} duplicate rows, by cause:",
        started.elapsed(),
        summary.duplicates()
    );
    for (cause, count) in &summary.duplicates_by_cause {
        eprintln!("  {count:>8}  {cause}");
    }
    for (what, count) in &summary.coverage {
        eprintln!("  {count:>8}  {what}");
    }
    println!("{summary}");
    if summary.violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
