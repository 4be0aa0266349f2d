//! The `snowpipe-streaming` command: upload event files through a Snowpipe Streaming service, poll the
//! imports, and report, job by job, what landed — as a batch router would, from a shell.
//!
//! `snowpipe-streaming [OPTIONS] <COMMAND>`: results go to stdout as JSON (one object per line), logs to
//! stderr. Options come from flags, then `SNOWPIPE_STREAMING_*` environment variables, then a TOML file
//! (`--config`), then the defaults. Exit status 0 when the command ran (job outcomes are in the JSON), 2 for
//! usage or configuration errors, 1 for anything else. See `docs/CLI.md`.

mod args;
mod check;
mod commands;
mod config;
mod demo;
mod destination;
mod error;
mod events;
mod generate;
mod inputs;
mod output;
mod run;
mod sample;
mod settings;
mod state;
mod telemetry;

use std::process::ExitCode;

use error::CliError;

fn main() -> ExitCode {
    let cli = match config::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(error) => return output::fail(&error),
    };
    if let Err(error) = telemetry::init_logs(&cli.global) {
        return output::fail(&error);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return output::fail(&CliError::Failed(format!(
                "cannot start the async runtime: {e}"
            )));
        }
    };
    let exit_code = cli.global.exit_code;
    match runtime.block_on(commands::execute(cli)) {
        // `--exit-code`: like `git diff --exit-code`, 3 when any job failed or was aborted.
        Ok(report) if exit_code && report.failed => ExitCode::from(3),
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => output::fail(&error),
    }
}
