//! The commands: each reads its inputs, calls the manager and writes its answer as one JSON line.

use snowpipe_manager::{FailedJobParameters, ImportId, PollOutput, UploadStatsOutput};

use crate::{
    args::{Cli, Command, GlobalArgs, PollArgs, RunArgs, StatsArgs, UploadArgs},
    demo, destination,
    error::CliError,
    inputs, output, run, settings, telemetry,
};

/// Runs the command.
pub(crate) async fn execute(cli: Cli) -> Result<(), CliError> {
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

/// A manager from the global options and the destination file.
fn manager(global: &GlobalArgs, command: &str) -> Result<snowpipe_manager::Manager, CliError> {
    let destination = destination::load(global.destination.as_deref(), command)?;
    let connection = settings::connection(
        global,
        global.service_url.clone(),
        global.sql_api_url.clone(),
    )?;
    settings::manager(global, &destination, connection)
}

async fn upload(global: &GlobalArgs, args: &UploadArgs) -> Result<(), CliError> {
    inputs::check_event_file("--file", &args.file)?;
    let manager = manager(global, "upload")?;
    let output = manager.upload(&args.file, &[]).await;
    output::json_line(&output)
}

async fn poll(global: &GlobalArgs, args: &PollArgs) -> Result<(), CliError> {
    let import_id = inputs::json_arg("--import-id", &args.import_id)?;
    let manager = manager(global, "poll")?;
    // An import id that does not decode is the behaviour contract's "complete, has failed, status 400"
    // answer, not a usage error: a router reads it like any other poll.
    let output = match ImportId::decode(&import_id) {
        Ok(import_id) => manager.poll(&import_id).await,
        Err(error) => PollOutput {
            complete: true,
            has_failed: true,
            status_code: 400,
            error: error.to_string(),
            ..PollOutput::default()
        },
    };
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
    let manager = manager(global, "run")?;
    let progress = run::Progress::new(args.files.len());
    for (index, file) in args.files.iter().enumerate() {
        let result = run::run_file(&manager, file, args.poll_interval, &progress, index).await;
        output::json_line(&result)?;
    }
    progress.finish();
    Ok(())
}
