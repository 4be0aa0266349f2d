//! Everything the program writes for its user: result lines on stdout, error messages on stderr.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "this module writes the program's output"
)]

use std::{io::Write as _, process::ExitCode};

use serde::Serialize;

use crate::error::CliError;

/// Writes one JSON object as one line on stdout.
pub(crate) fn json_line<T: Serialize>(value: &T) -> Result<(), CliError> {
    // Encoded whole before anything is written, so an error never leaves half a line; written as bytes, not
    // through `fmt`, because a `run` line holds every job id of the file (megabytes).
    let mut line = serde_json::to_vec(value)
        .map_err(|e| CliError::Failed(format!("cannot encode the result as JSON: {e}")))?;
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&line)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Failed(format!("cannot write to stdout: {e}")))
}

/// Writes a line of text on stdout.
pub(crate) fn text(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Failed(format!("cannot write to stdout: {e}")))
}

/// Reports an error on stderr and gives the exit status it calls for.
pub(crate) fn fail(error: &CliError) -> ExitCode {
    match error {
        CliError::Parse(e) => {
            // clap chooses the stream: help and version go to stdout, usage errors to stderr.
            let _ = e.print();
        }
        other => eprintln!("snowpipe-streaming: error: {other}"),
    }
    ExitCode::from(error.exit_code())
}
