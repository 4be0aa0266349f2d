//! `demo`: the whole product in one command with no set-up — an emulator started in this process, two
//! sample batches run through the manager as `run` would, and a summary read back from the emulator.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::Value;
use snowpipe_emulator::{Control, Emulator, demo as account};
use snowpipe_manager::Destination;

use crate::{
    args::GlobalArgs,
    error::CliError,
    events::EventFile,
    output,
    run::{self, FileRun, Progress, RunOutput, Signals},
    sample::{self, SampleBatch},
    settings,
    state::{FileState, StateDir},
};

/// How long the emulator waits before committing inserted rows, as Snowflake does (about a second there).
const COMMIT_LAG: Duration = Duration::from_millis(200);
/// How often the demo polls an import.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The namespace the demo writes into.
const NAMESPACE: &str = "demo";
/// The discards table.
const DISCARDS: &str = "RUDDER_DISCARDS";

/// Runs the demo and prints its summary on stdout.
pub(crate) async fn demo(global: &GlobalArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let emulator = Emulator::builder()
        .commit_lag(COMMIT_LAG)
        .start()
        .await
        .map_err(|e| CliError::Failed(format!("cannot start the emulator: {e}")))?;
    let emulator_ready = started.elapsed();
    let dir = tempfile::tempdir()
        .map_err(|e| CliError::Failed(format!("cannot make a temporary folder: {e}")))?;
    let batches = sample::write(dir.path())
        .map_err(|e| CliError::Failed(format!("cannot write the sample batches: {e}")))?;

    let destination = Destination {
        id: "demo-destination".to_owned(),
        workspace_id: "demo-workspace".to_owned(),
        config: account::destination_config(NAMESPACE),
    };
    let endpoints = settings::Endpoints::emulator(global.backend, &emulator.base_url());
    let connection = settings::connection(global, &endpoints)?;
    // A state directory of its own, in the temporary folder: the demo never touches the user's (and, alone
    // with its emulator, needs no lock).
    let state_dir = StateDir::open(&dir.path().join("state"))
        .map_err(|e| CliError::Failed(format!("cannot make the demo's state directory: {e}")))?;
    let state = FileState::open(&state_dir, &destination.id, &global.instance_id);
    let manager = settings::manager(global, &destination, connection, Arc::new(state))?;

    let progress = Progress::new(batches.len(), global.progress);
    let mut signals = Signals::none();
    let mut results = Vec::with_capacity(batches.len());
    for (index, batch) in batches.iter().enumerate() {
        let file = EventFile::new(batch.path.clone());
        let opened = file.open("--file")?;
        let ran = run::run_file(
            &manager,
            &file,
            opened,
            POLL_INTERVAL,
            &progress,
            index,
            &mut signals,
        )
        .await?;
        match ran {
            FileRun::Done(result) => results.push(result),
            FileRun::PollInterrupted(..) | FileRun::UploadCut(..) => {
                return Err(CliError::Failed("the demo was interrupted".to_owned()));
            }
        }
    }
    progress.finish();

    let schema = snowpipe_manager::schema_name(NAMESPACE);
    let summary = Summary {
        backend: global.backend,
        base_url: emulator.base_url(),
        schema: &schema,
        control: emulator.control(),
        batches: &batches,
        results: &results,
        emulator_ready,
        total: started.elapsed(),
    }
    .render();
    emulator.shutdown().await;
    output::text(summary.trim_end())
}

/// What the summary is made from.
struct Summary<'a> {
    backend: crate::args::BackendArg,
    base_url: String,
    schema: &'a str,
    control: &'a Control,
    batches: &'a [SampleBatch],
    results: &'a [RunOutput],
    emulator_ready: Duration,
    total: Duration,
}

impl Summary<'_> {
    fn render(&self) -> String {
        let mut out = String::new();
        let database = account::DATABASE;
        let schema = self.schema;
        let backend = match self.backend {
            crate::args::BackendArg::Rest => {
                "Snowflake's Snowpipe Streaming REST API (--backend rest)"
            }
            crate::args::BackendArg::Sidecar => "the sidecar protocol (--backend sidecar)",
        };
        let _ = writeln!(
            out,
            "snowpipe-streaming demo: an emulator in this process at {} (commit lag {}), started in {}",
            self.base_url,
            humantime::format_duration(COMMIT_LAG),
            millis(self.emulator_ready)
        );
        let _ = writeln!(out, "backend: {backend}");
        let _ = writeln!(
            out,
            "destination demo-destination writes into {database}.{schema} as {} (the demo account's key pair)\n",
            account::USER
        );

        let (mut succeeded, mut failed, mut aborted) = (0, 0, 0);
        for (number, (batch, result)) in self.batches.iter().zip(self.results).enumerate() {
            succeeded += result.succeeded_job_ids.len();
            failed += result.failed_job_ids.len();
            aborted += result.aborted_job_ids.len();
            let _ = writeln!(
                out,
                "batch {}  {}: {} events for {} tables; {}",
                number + 1,
                batch.path.display(),
                batch.events,
                batch.tables.len(),
                batch.note
            );
            let _ = writeln!(
                out,
                "         upload: {} importing, {} failed, {} aborted; poll: complete after {} poll{}",
                result.upload.importing_count,
                result.upload.failed_count,
                result.upload.abort_count,
                result.polls,
                if result.polls == 1 { "" } else { "s" },
            );
            let _ = writeln!(
                out,
                "         jobs: {} succeeded, {} failed, {} aborted in {}",
                result.succeeded_job_ids.len(),
                result.failed_job_ids.len(),
                result.aborted_job_ids.len(),
                millis(Duration::from_millis(result.duration_ms))
            );
            let reasons: Vec<&String> = result.failed_reasons.values().collect();
            if let Some(reason) = reasons.first() {
                let _ = writeln!(out, "         first failure: {reason}");
            }
            if !result.abort_reason.is_empty() {
                let _ = writeln!(out, "         aborted: {}", result.abort_reason);
            }
        }

        let mut sent: BTreeMap<&str, usize> = BTreeMap::new();
        for batch in self.batches {
            for (table, events) in &batch.tables {
                *sent.entry(table).or_default() += events;
            }
        }
        let _ = writeln!(
            out,
            "\nrows landed in {database}.{schema}, read back from the emulator:"
        );
        let _ = writeln!(
            out,
            "  {:<18} {:>6} {:>7} {:>8}",
            "table", "events", "rows", "columns"
        );
        let mut tables: Vec<String> = self
            .control
            .tables()
            .into_iter()
            .filter(|t| t.database == database && t.schema == schema)
            .map(|t| t.table)
            .collect();
        tables.sort();
        let mut landed = 0;
        for table in &tables {
            let rows = self.rows(table).len();
            let columns = self
                .control
                .table(database, schema, table)
                .map_or(0, |t| t.columns.len());
            let events = sent
                .get(table.as_str())
                .map_or_else(|| "-".to_owned(), ToString::to_string);
            if table != DISCARDS {
                landed += rows;
            }
            let _ = writeln!(out, "  {table:<18} {events:>6} {rows:>7} {columns:>8}");
        }

        let discards = self.rows(DISCARDS);
        let _ = writeln!(
            out,
            "\ndiscards: {} value{} that the column's type cannot hold went in as NULL, each kept in {DISCARDS}:",
            discards.len(),
            if discards.len() == 1 { "" } else { "s" }
        );
        for row in &discards {
            let text = |key: &str| match &row[key] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            let _ = writeln!(
                out,
                "  {}.{} of row {}: {:?} ({})",
                text("TABLE_NAME"),
                text("COLUMN_NAME"),
                text("ROW_ID"),
                text("COLUMN_VALUE"),
                text("REASON")
            );
        }
        let _ = writeln!(
            out,
            "\njobs: {succeeded} succeeded, {failed} failed, {aborted} aborted; {landed} rows landed; {} in all",
            millis(self.total)
        );
        out
    }

    fn rows(&self, table: &str) -> Vec<Value> {
        self.control
            .rows(account::DATABASE, self.schema, table)
            .unwrap_or_default()
    }
}

/// A duration in milliseconds below a second, else in seconds with two decimals.
fn millis(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}
