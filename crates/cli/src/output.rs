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
    // Encoded straight into a large buffer over stdout, so that a reader takes the first megabytes while the
    // rest is encoded: a `run` line holds every job id of the file (megabytes), and encoding it whole first
    // made its reader wait for the encoding and then for the copy. The results encode without fail (plain
    // structs, maps keyed by strings or integers); only writing can fail, and a write fails part way whether
    // the line was encoded first or not.
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    serde_json::to_writer(&mut out, value).map_err(|e| {
        if e.is_io() {
            CliError::Failed(format!("cannot write to stdout: {e}"))
        } else {
            CliError::Failed(format!("cannot encode the result as JSON: {e}"))
        }
    })?;
    out.write_all(b"\n")
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

/// The one human summary line of `run` and `upload` on stderr: shown at the default verbosity, not with
/// `-q`; as a JSON object with `--log-format json`, so stderr stays one format.
pub(crate) fn summary(global: &crate::args::GlobalArgs, line: &str) {
    if global.quiet > global.verbose {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = match global.log_format {
        crate::args::LogFormat::Text => writeln!(err, "{line}"),
        crate::args::LogFormat::Json => writeln!(
            err,
            "{}",
            serde_json::json!({"level": "INFO", "target": "snowpipe_streaming::summary", "fields": {"message": line}})
        ),
    };
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

/// Checks that stdout can take the results before anything is sent to a service, so that an upload's
/// import id is never lost to a stdout that is closed, read-only, full or a pipe nobody reads.
#[cfg(unix)]
pub(crate) fn check_stdout() -> Result<(), CliError> {
    use std::os::fd::AsFd as _;

    use rustix::{
        event::{PollFd, PollFlags, poll},
        fs::{FileType, OFlags, fcntl_getfl, fstat},
    };

    let stdout = std::io::stdout();
    let fd = stdout.as_fd();
    let refuse = |why: &str| {
        crate::error::usage(format!(
            "stdout {why}: the results (with the import ids needed to poll) would be lost, so nothing was sent; give the command a stdout it can write (a file or a pipe), or `> /dev/null` to discard them"
        ))
    };
    let flags = match fcntl_getfl(fd) {
        Ok(flags) => flags,
        Err(e) => return Err(refuse(&format!("is closed ({e})"))),
    };
    let access = flags & OFlags::RWMODE;
    if access == OFlags::RDONLY {
        return Err(refuse("is open for reading only"));
    }
    if let Ok(stat) = fstat(fd)
        && FileType::from_raw_mode(stat.st_mode) == FileType::CharacterDevice
    {
        let dev = stat.st_rdev;
        let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
        // Linux's memory devices: 1:3 is /dev/null, 1:7 is /dev/full.
        if cfg!(target_os = "linux") && (major, minor) == (1, 7) {
            return Err(refuse("is /dev/full"));
        }
        // A process started with stdout closed gets /dev/null opened for reading and writing in its place
        // (Rust's runtime does this); a shell's `> /dev/null` opens it for writing only.
        if cfg!(target_os = "linux") && (major, minor) == (1, 3) && access == OFlags::RDWR {
            return Err(refuse("is closed"));
        }
    }
    let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
    if poll(&mut fds, Some(&rustix::event::Timespec::default())).is_ok()
        && fds[0]
            .revents()
            .intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL)
    {
        return Err(refuse("is a pipe or socket whose reader has gone"));
    }
    Ok(())
}

/// Elsewhere, a stdout that cannot be written is found at the first write.
#[cfg(not(unix))]
pub(crate) fn check_stdout() -> Result<(), CliError> {
    Ok(())
}
