//! The commands: each reads its inputs, calls the manager and writes its answer as one JSON line.
//!
//! The commands that may open channels (`upload`, `poll`, `run`) hold the destination and instance's lock
//! in the state directory while they call the manager, and hand it the state kept there (see `state.rs`).

use std::{sync::Arc, time::Duration};

use snowpipe_manager::{
    Connection, Destination, FailedJobParameters, ImportId, Manager, PollOutput, UploadStatsOutput,
};

use crate::{
    args::{Cli, Command, GlobalArgs, PollArgs, RunArgs, StatsArgs, UploadArgs},
    demo, destination,
    error::{CliError, usage},
    events::EventFile,
    inputs, output, run,
    run::{FileRun, Signals},
    settings,
    state::{FileState, Lock, StateDir, StateDirError},
    telemetry,
};

/// How the command ended, when it ran: whether any job failed or was aborted (for `--exit-code`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Report {
    /// Some job failed or was aborted (upload, run), the import failed (poll), some job failed (stats).
    pub(crate) failed: bool,
}

impl Report {
    fn failed(failed: bool) -> Self {
        Self { failed }
    }
}

/// Runs the command.
pub(crate) async fn execute(cli: Cli) -> Result<Report, CliError> {
    output::check_stdout()?;
    let metrics =
        telemetry::Metrics::install(cli.global.metrics_addr, cli.global.metrics_file.as_deref())?;
    let result = command(cli).await;
    // The final metrics, also after an error or a signal: what happened is worth keeping.
    let written = metrics.write_file();
    let report = result?;
    written?;
    Ok(report)
}

async fn command(cli: Cli) -> Result<Report, CliError> {
    match cli.command {
        Command::Upload(args) => upload(&cli.global, &args).await,
        Command::Poll(args) => poll(&cli.global, &args).await,
        Command::Stats(args) => stats(&args),
        Command::Run(args) => run_files(&cli.global, &args).await,
        Command::Demo => demo::demo(&cli.global).await.map(|()| Report::default()),
        Command::Check => crate::check::check(&cli.global).await,
        Command::Completions(args) => {
            crate::generate::completions(args.shell).map(|()| Report::default())
        }
        Command::Schema(args) => {
            crate::generate::print_schema(args.command).map(|()| Report::default())
        }
        Command::Man(args) => {
            let written = crate::generate::man_pages(&args.out_dir)?;
            output::text(&format!(
                "wrote {} man pages into {}",
                written.len(),
                args.out_dir.display()
            ))?;
            Ok(Report::default())
        }
    }
}

/// The longest `poll` waits for the lock before it answers "in progress" (less when `--lock-timeout` is).
const POLL_LOCK_WAIT: Duration = Duration::from_secs(5);

/// What a command that opens channels needs, checked before any service is called: the destination, the
/// connection, and the state directory.
struct Session {
    destination: Destination,
    connection: Connection,
    state_dir: StateDir,
}

impl Session {
    /// Reads the destination file and checks the options; usage errors (exit status 2) name the option or
    /// the file.
    fn prepare(global: &GlobalArgs, command: &str) -> Result<Self, CliError> {
        let destination = destination::load(
            global.destination.as_deref(),
            global.private_key_file.as_deref(),
            command,
        )?;
        let endpoints = settings::Endpoints::from_options(global)?;
        let connection = settings::connection(global, &endpoints)?;
        let state_dir =
            StateDir::open(&global.state_dir).map_err(|e| state_dir_error(global, &e))?;
        Ok(Self {
            destination,
            connection,
            state_dir,
        })
    }

    /// Takes the destination and instance's lock, waiting up to `wait`; `None` when another process held
    /// it all that time.
    async fn lock(&self, global: &GlobalArgs, wait: Duration) -> Result<Option<Lock>, CliError> {
        self.state_dir
            .lock(&self.destination.id, &global.instance_id, wait)
            .await
            .map_err(|e| state_dir_error(global, &e))
    }

    /// Takes the lock, waiting up to `--lock-timeout`; past it, fails (exit status 1).
    async fn lock_or_fail(&self, global: &GlobalArgs) -> Result<Lock, CliError> {
        match self.lock(global, global.lock_timeout).await? {
            Some(lock) => Ok(lock),
            None => Err(CliError::Failed(format!(
                "another process for destination {} and instance {} is running: it holds {} in the state directory {} (--state-dir); waited {} (--lock-timeout). Only one process may write a destination and instance at a time, and two hosts must never share one",
                self.destination.id,
                global.instance_id,
                self.state_dir
                    .lock_path(&self.destination.id, &global.instance_id)
                    .display(),
                self.state_dir.path().display(),
                humantime::format_duration(global.lock_timeout),
            ))),
        }
    }

    /// The manager, with the tables' channel states read from the state directory. Call it with the lock
    /// held, so the states are those the previous process left.
    fn manager(self, global: &GlobalArgs) -> Result<Manager, CliError> {
        let state = FileState::open(&self.state_dir, &self.destination.id, &global.instance_id);
        settings::manager(global, &self.destination, self.connection, Arc::new(state))
    }
}

/// A state directory that cannot be used: a usage error naming the option.
fn state_dir_error(global: &GlobalArgs, error: &StateDirError) -> CliError {
    usage(format!(
        "--state-dir {}: {error}",
        global.state_dir.display()
    ))
}

async fn upload(global: &GlobalArgs, args: &UploadArgs) -> Result<Report, CliError> {
    let file = EventFile::new(args.file.clone());
    file.check("--file")?;
    let session = Session::prepare(global, "upload")?;
    let opened = file.open("--file")?;
    // Held until the command ends (dropped after the manager).
    let _lock = session.lock_or_fail(global).await?;
    let manager = session.manager(global)?;
    let name = opened.name.clone();
    let (compression, looks) = (opened.compression, opened.looks.clone());
    let output = manager.upload_from(opened.reader, &name, &[]).await;
    let total = output.importing_count + output.failed_count + output.abort_count;
    if total == 0 {
        return Err(
            crate::events::Opened::described(name, compression, looks).no_event_error("--file")
        );
    }
    output::json_line(&output)?;
    let mut summary = format!(
        "{total} job{}: {} importing, {} failed",
        plural(total),
        output.importing_count,
        output.failed_count
    );
    if output.abort_count > 0 {
        summary.push_str(&format!(", {} aborted", output.abort_count));
    }
    match (output.failed_count > 0, output.abort_count > 0) {
        (true, true) => summary.push_str(" (see failedReason and abortReason)"),
        (true, false) => summary.push_str(" (see failedReason)"),
        (false, true) => summary.push_str(" (see abortReason)"),
        (false, false) => summary.push_str("; poll the import id for their outcome"),
    }
    output::summary(global, &summary);
    Ok(Report::failed(output.failed_count + output.abort_count > 0))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

async fn poll(global: &GlobalArgs, args: &PollArgs) -> Result<Report, CliError> {
    let import_id = inputs::json_arg("--import-id", &args.import_id)?;
    let session = Session::prepare(global, "poll")?;
    // An import id that does not decode is the behaviour contract's "complete, has failed, status 400"
    // answer, not a usage error: a router reads it like any other poll.
    let import_id = match ImportId::decode(&import_id) {
        Ok(import_id) => import_id,
        Err(error) => {
            output::json_line(&PollOutput {
                complete: true,
                has_failed: true,
                status_code: 400,
                error: error.to_string(),
                ..PollOutput::default()
            })?;
            return Ok(Report::failed(true));
        }
    };
    // Poll may reopen channels, so it writes too: while another process writes this destination and
    // instance, the import is in progress as far as anyone can tell.
    let Some(_lock) = session
        .lock(global, global.lock_timeout.min(POLL_LOCK_WAIT))
        .await?
    else {
        tracing::info!(
            destination_id = %session.destination.id,
            instance_id = %global.instance_id,
            state_dir = %session.state_dir.path().display(),
            "another process for this destination and instance holds the lock; answering in progress without asking the service"
        );
        output::json_line(&PollOutput {
            in_progress: true,
            status_code: 200,
            ..PollOutput::default()
        })?;
        return Ok(Report::default());
    };
    same_backend(global, import_id.entries(), "--import-id")?;
    let manager = session.manager(global)?;
    let output = manager.poll(&import_id).await;
    output::json_line(&output)?;
    Ok(Report::failed(output.has_failed))
}

/// Refuses an import written through the other backend: its channels are not where this one looks.
fn same_backend(
    global: &GlobalArgs,
    entries: &[snowpipe_manager::ImportEntry],
    option: &str,
) -> Result<(), CliError> {
    let ours = global.backend.name();
    match entries.iter().find(|e| e.backend_name() != ours) {
        Some(entry) => Err(crate::error::usage(format!(
            "{option}: the import was written through the {} backend (table {}), and this command runs on {ours}: run it with --backend {}",
            entry.backend_name(),
            entry.table,
            entry.backend_name()
        ))),
        None => Ok(()),
    }
}

fn stats(args: &StatsArgs) -> Result<Report, CliError> {
    let parameters = inputs::json_arg("--failed-job-parameters", &args.failed_job_parameters)?;
    let jobs = inputs::jobs_of("--jobs", &args.jobs)?;
    let output = match FailedJobParameters::decode(&parameters) {
        // No backend is called: the parameters alone say which jobs landed, whichever backend wrote them.
        Ok(parameters) => snowpipe_manager::upload_stats(&parameters, &jobs),
        Err(error) => UploadStatsOutput {
            status_code: 400,
            error: error.to_string(),
            ..UploadStatsOutput::default()
        },
    };
    output::json_line(&output)?;
    Ok(Report::failed(
        output.status_code != 200
            || !output.metadata.failed_keys.is_empty()
            || !output.metadata.aborted_keys.is_empty(),
    ))
}

/// Jobs of a `run`, by outcome, for its summary line.
#[derive(Debug, Default)]
struct Tally {
    succeeded: usize,
    failed: usize,
    aborted: usize,
    pending: usize,
    unknown: usize,
}

impl Tally {
    fn total(&self) -> usize {
        self.succeeded + self.failed + self.aborted + self.pending + self.unknown
    }

    fn line(&self) -> String {
        let total = self.total();
        let mut line = format!(
            "{total} job{}: {} succeeded, {} failed",
            plural(total),
            self.succeeded,
            self.failed
        );
        for (count, what) in [
            (self.aborted, "aborted"),
            (self.pending, "pending (poll their import id later)"),
            (self.unknown, "unknown (the upload was cut)"),
        ] {
            if count > 0 {
                line.push_str(&format!(", {count} {what}"));
            }
        }
        match (self.failed > 0, self.aborted > 0) {
            (true, true) => line.push_str(" (see failedReasons and abortReason)"),
            (true, false) => line.push_str(" (see failedReasons)"),
            (false, true) => line.push_str(" (see abortReason)"),
            (false, false) => {}
        }
        line
    }
}

async fn run_files(global: &GlobalArgs, args: &RunArgs) -> Result<Report, CliError> {
    let files: Vec<EventFile> = args.files.iter().cloned().map(EventFile::new).collect();
    if files.iter().filter(|f| f.is_stdin()).count() > 1 {
        return Err(usage(
            "--file - (standard input) can be given once: it can be read only once",
        ));
    }
    for file in &files {
        file.check("--file")?;
    }
    let session = Session::prepare(global, "run")?;
    let _lock = session.lock_or_fail(global).await?;
    // Listened for from here: a signal while waiting for the lock ends the process at once (nothing was
    // sent), and none can cut a step after this without its line.
    let mut signals = Signals::listen()?;
    let manager = session.manager(global)?;
    let progress = run::Progress::new(files.len(), global.progress);
    let mut tally = Tally::default();
    for (index, file) in files.iter().enumerate() {
        let opened = match file.open("--file") {
            Ok(opened) => opened,
            Err(error) => {
                progress.finish();
                output::summary(global, &tally.line());
                return Err(error);
            }
        };
        let ran = run::run_file(
            &manager,
            file,
            opened,
            args.poll_interval,
            &progress,
            index,
            &mut signals,
        )
        .await;
        let ran = match ran {
            Ok(ran) => ran,
            Err(error) => {
                progress.finish();
                output::summary(global, &tally.line());
                return Err(error);
            }
        };
        match ran {
            FileRun::Done(result) => {
                tally.succeeded += result.succeeded_job_ids.len();
                tally.failed += result.failed_job_ids.len();
                tally.aborted += result.aborted_job_ids.len();
                output::json_line(&result)?;
            }
            FileRun::PollInterrupted(result, signal) => {
                tally.failed += result.failed_job_ids.len();
                tally.aborted += result.aborted_job_ids.len();
                tally.pending += result.pending_job_ids.as_ref().map_or(0, Vec::len);
                progress.finish();
                output::json_line(&result)?;
                output::summary(global, &tally.line());
                return Err(interrupted(
                    signal,
                    &file.arg.display().to_string(),
                    "polling",
                ));
            }
            FileRun::UploadCut(cut, signal) => {
                tally.unknown += cut.unknown_job_ids.as_ref().map_or(0, Vec::len);
                progress.finish();
                output::json_line(&cut)?;
                output::summary(global, &tally.line());
                return Err(interrupted(
                    signal,
                    &file.arg.display().to_string(),
                    "uploading",
                ));
            }
        }
    }
    progress.finish();
    output::summary(global, &tally.line());
    Ok(Report::failed(tally.failed + tally.aborted > 0))
}

fn interrupted(signal: run::Signal, file: &str, step: &str) -> CliError {
    CliError::Interrupted {
        signal: signal.name(),
        code: signal.exit_code(),
        message: format!(
            "interrupted by {} while {step} {file}: the lines printed say where each job stands (files not started have no line)",
            signal.name()
        ),
    }
}
