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
    let line = serde_json::to_string(value)
        .map_err(|e| CliError::Failed(format!("cannot encode the result as JSON: {e}")))?;
    text(&line)
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
