//! `snowpipe-live`: the REST client's live check against the Snowflake account the `SNOWFLAKE_*` variables
//! name (`cargo xtask live`). Prints a ✓ or ✗ line per item as it completes, then the longest offset token
//! accepted and a summary; exits 1 when an item failed. Without the variables it prints one line naming
//! what it needs and exits 0.

// The check reports to the person running it.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use snowpipe_live::{EnvError, Options, run_with, target_from_env};

#[tokio::main]
async fn main() -> ExitCode {
    let target = match target_from_env(|name| std::env::var(name).ok()) {
        Ok(target) => target,
        Err(skip @ EnvError::Missing(_)) => {
            println!("{skip}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            println!("live check: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "live check of snowpipe-rest against {} as {} (database {}); this takes a few minutes",
        target.account_base(),
        target.user,
        target.database
    );
    let report = run_with(&target, &Options::default(), |check| println!("{check}")).await;
    let summary = report.to_string();
    // The per-item lines went out as they completed; the rest of the report follows.
    for line in summary.lines().skip(report.checks.len()) {
        println!("{line}");
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
