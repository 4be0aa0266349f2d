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
    inputs, output, run, settings,
    state::{FileState, Lock, StateDir, StateDirError},
    telemetry,
};

/// Runs the command.
pub(crate) async fn execute(cli: Cli) -> Result<(), CliError> {
    output::check_stdout()?;
    if let Some(addr) = cli.global.metrics_addr {
        telemetry::serve_metrics(addr)?;
    }
    match cli.command {
        Command::Upload(args) => upload(&cli.global, &args).await,
        Command::Poll(args) => poll(&cli.global, &args).await,
        Command::Stats(args) => stats(&args),
        Command::Run(args) => run_files(&cli.global, &args).await,
        Command::Demo => demo::demo(&cli.global).await,
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
        let connection = settings::connection(
            global,
            global.service_url.clone(),
            global.sql_api_url.clone(),
        )?;
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

async fn upload(global: &GlobalArgs, args: &UploadArgs) -> Result<(), CliError> {
    inputs::check_event_file("--file", &args.file)?;
    let session = Session::prepare(global, "upload")?;
    // Held until the command ends (dropped after the manager).
    let _lock = session.lock_or_fail(global).await?;
    let manager = session.manager(global)?;
    let output = manager.upload(&args.file, &[]).await;
    output::json_line(&output)
}

async fn poll(global: &GlobalArgs, args: &PollArgs) -> Result<(), CliError> {
    let import_id = inputs::json_arg("--import-id", &args.import_id)?;
    let session = Session::prepare(global, "poll")?;
    // An import id that does not decode is the behaviour contract's "complete, has failed, status 400"
    // answer, not a usage error: a router reads it like any other poll.
    let import_id = match ImportId::decode(&import_id) {
        Ok(import_id) => import_id,
        Err(error) => {
            return output::json_line(&PollOutput {
                complete: true,
                has_failed: true,
                status_code: 400,
                error: error.to_string(),
                ..PollOutput::default()
            });
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
        return output::json_line(&PollOutput {
            in_progress: true,
            status_code: 200,
            ..PollOutput::default()
        });
    };
    let manager = session.manager(global)?;
    let output = manager.poll(&import_id).await;
    output::json_line(&output)
}

fn stats(args: &StatsArgs) -> Result<(), CliError> {
    let parameters = inputs::json_arg("--failed-job-parameters", &args.failed_job_parameters)?;
    let jobs = inputs::jobs_of("--jobs", &args.jobs)?;
    let output = match FailedJobParameters::decode(&parameters) {
        Ok(parameters) => snowpipe_manager::upload_stats(&parameters, &jobs),
        Err(error) => UploadStatsOutput {
            status_code: 400,
            error: error.to_string(),
            ..UploadStatsOutput::default()
        },
    };
    output::json_line(&output)
}

async fn run_files(global: &GlobalArgs, args: &RunArgs) -> Result<(), CliError> {
    for file in &args.files {
        inputs::check_event_file("--file", file)?;
    }
    let session = Session::prepare(global, "run")?;
    let _lock = session.lock_or_fail(global).await?;
    let manager = session.manager(global)?;
    let progress = run::Progress::new(args.files.len());
    for (index, file) in args.files.iter().enumerate() {
        let result = run::run_file(&manager, file, args.poll_interval, &progress, index).await;
        output::json_line(&result)?;
    }
    progress.finish();
    Ok(())
}
