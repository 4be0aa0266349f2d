//! `run`: upload a file, poll its import until complete, then upload stats — and account for every job of
//! the file in exactly one of succeeded, failed and aborted. Interrupted (SIGINT, SIGTERM), it still says
//! where every job of the file stands: pending (poll later with the import id) or unknown (the upload was
//! cut).

use std::{
    collections::BTreeMap,
    io::{BufRead as _, IsTerminal as _, Write as _},
    path::Path,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};
use serde::Serialize;
use snowpipe_manager::{FailedJobParameters, Manager, PollOutput, UploadOutput, UploadStatsOutput};
use tokio::sync::watch;

use crate::{
    args::ProgressWhen,
    error::CliError,
    events::{EventFile, Opened},
};

/// The first wait between two polls; doubled after each poll up to the poll interval, so an import that
/// commits in a second is seen complete in about a second, not after a whole interval.
const FIRST_POLL_WAIT: Duration = Duration::from_millis(250);

/// One file's result line.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RunOutput {
    /// The event file.
    pub(crate) file: String,
    /// Upload's answer.
    pub(crate) upload: UploadOutput,
    /// How many polls it took (0 when nothing was importing).
    pub(crate) polls: u32,
    /// The last poll's answer (complete); when nothing was importing, a complete answer without a poll.
    pub(crate) poll: PollOutput,
    /// Upload stats' answer for the importing jobs; `null` when nothing was importing.
    pub(crate) stats: Option<UploadStatsOutput>,
    /// Jobs whose rows are in their tables.
    pub(crate) succeeded_job_ids: Vec<i64>,
    /// Jobs to retry: failed at upload or after polling.
    pub(crate) failed_job_ids: Vec<i64>,
    /// Jobs never to retry.
    pub(crate) aborted_job_ids: Vec<i64>,
    /// Why each failed job failed.
    pub(crate) failed_reasons: BTreeMap<i64, String>,
    /// Why the aborted jobs were aborted.
    pub(crate) abort_reason: String,
    /// Wall time of upload, polls and stats, in milliseconds.
    pub(crate) duration_ms: u64,
    /// Set when a signal interrupted the polling: which one (`SIGINT`, `SIGTERM`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) interrupted: Option<&'static str>,
    /// Set when a signal interrupted the polling: the importing jobs not judged yet. Poll later with
    /// `upload.importingParameters.importId`, then stats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pending_job_ids: Option<Vec<i64>>,
}

/// The line of a file whose upload a signal cut in the middle.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CutUpload {
    /// The event file.
    pub(crate) file: String,
    /// The signal (`SIGINT`, `SIGTERM`).
    pub(crate) interrupted: &'static str,
    /// Always `upload`: the step that was cut.
    pub(crate) step: &'static str,
    /// The jobs of the file, each of whose rows may or may not have been handed to the service; `null` when
    /// they cannot be read again (standard input).
    pub(crate) unknown_job_ids: Option<Vec<i64>>,
    /// What to do about them.
    pub(crate) reason: String,
    /// Wall time until the signal, in milliseconds.
    pub(crate) duration_ms: u64,
}

/// What became of one file.
#[derive(Debug)]
pub(crate) enum FileRun {
    /// Uploaded, polled to completion and judged.
    Done(RunOutput),
    /// Uploaded; a signal came while polling.
    PollInterrupted(RunOutput, Signal),
    /// A signal cut the upload.
    UploadCut(CutUpload, Signal),
}

/// A signal that ends `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Ctrl-C.
    Interrupt,
    /// `kill`.
    Terminate,
}

impl Signal {
    /// The signal's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        }
    }

    /// The exit status of a process it ended: 128 + its number.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Self::Interrupt => 130,
            Self::Terminate => 143,
        }
    }
}

/// SIGINT and SIGTERM, once they are listened for.
pub(crate) struct Signals {
    rx: watch::Receiver<Option<Signal>>,
    // Kept so that `none()` never fires.
    _tx: Option<watch::Sender<Option<Signal>>>,
}

impl Signals {
    /// Listens for SIGINT and SIGTERM from now on (they no longer end the process at once). Needs the runtime.
    pub(crate) fn listen() -> Result<Self, CliError> {
        let (tx, rx) = watch::channel(None);
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind| {
                signal(kind)
                    .map_err(|e| CliError::Failed(format!("cannot listen for signals: {e}")))
            };
            let (mut interrupt, mut terminate) = (
                listen(SignalKind::interrupt())?,
                listen(SignalKind::terminate())?,
            );
            tokio::spawn(async move {
                let signal = tokio::select! {
                    _ = interrupt.recv() => Signal::Interrupt,
                    _ = terminate.recv() => Signal::Terminate,
                };
                let _ = tx.send(Some(signal));
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(Some(Signal::Interrupt));
            }
        });
        Ok(Self { rx, _tx: None })
    }

    /// Signals that never come (the demo ends on Ctrl-C like any program).
    pub(crate) fn none() -> Self {
        let (tx, rx) = watch::channel(None);
        Self { rx, _tx: Some(tx) }
    }

    /// Waits for a signal.
    async fn next(&mut self) -> Signal {
        match self.rx.wait_for(Option::is_some).await {
            Ok(signal) => signal.unwrap_or(Signal::Interrupt),
            // The listener is gone: no signal will ever come.
            Err(_) => std::future::pending().await,
        }
    }
}

/// A job's final outcome. Small (a failed job's reason is an index into a side list), because a batch has
/// hundreds of thousands of jobs and the list of outcomes is sorted.
#[derive(Clone, Copy)]
enum Outcome {
    Succeeded,
    /// Failed, with the reason at this index of the reasons list.
    Failed(u32),
    Aborted,
    /// Importing, but stats did not judge it: failed, with one reason shared by all such jobs.
    Unjudged,
}

/// The wait before the next poll: [`FIRST_POLL_WAIT`], doubled after each poll, at most `interval`.
pub(crate) fn next_poll_wait(previous: Option<Duration>, interval: Duration) -> Duration {
    match previous {
        None => FIRST_POLL_WAIT.min(interval),
        Some(previous) => (previous * 2).min(interval),
    }
}

/// Uploads an opened event file, polls (soon at first, backing off to `poll_interval`) until the import is
/// complete, and judges the jobs; stops early on a signal. A file that yields no event is an error.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_file(
    manager: &Manager,
    file: &EventFile,
    opened: Opened,
    poll_interval: Duration,
    progress: &Progress,
    index: usize,
    signals: &mut Signals,
) -> Result<FileRun, CliError> {
    let started = Instant::now();
    let shown = file.arg.display().to_string();
    progress.begin(index, &file.name(), "uploading");
    let Opened {
        name,
        reader,
        compression,
        looks,
    } = opened;
    let upload = tokio::select! {
        upload = manager.upload_from(reader, &name, &[]) => upload,
        signal = signals.next() => {
            let unknown = if file.is_stdin() { None } else { job_ids_of(file) };
            return Ok(FileRun::UploadCut(CutUpload {
                file: shown,
                interrupted: signal.name(),
                step: "upload",
                reason: format!(
                    "{} cut the upload: each of these jobs' rows may or may not have reached the service, and no import id was handed out to poll them; retry them in a later batch only if rows twice are acceptable, or check the table",
                    signal.name()
                ),
                unknown_job_ids: unknown,
                duration_ms: millis(started.elapsed()),
            }, signal));
        }
    };
    if upload.importing_count + upload.failed_count + upload.abort_count == 0 {
        let opened_again = Opened::described(name, compression, looks);
        return Err(opened_again.no_event_error("--file"));
    }
    // Every outcome a job is given, in order of precedence; the first one for each job stands (see below).
    let mut outcomes: Vec<(i64, Outcome)> = Vec::new();
    let mut reasons: Vec<String> = Vec::new();
    let mut failed = |reason: String| {
        reasons.push(reason);
        Outcome::Failed(u32::try_from(reasons.len() - 1).unwrap_or(u32::MAX))
    };
    for &job in &upload.aborted_job_ids {
        outcomes.push((job, Outcome::Aborted));
    }
    for &job in &upload.failed_job_ids {
        let reason = upload
            .reasons
            .get(&job)
            .cloned()
            .unwrap_or_else(|| upload.failed_reason.clone());
        outcomes.push((job, failed(reason)));
    }

    let mut polls = 0_u32;
    let (poll, stats) = match &upload.importing_parameters {
        None => (
            PollOutput {
                complete: true,
                status_code: 200,
                ..PollOutput::default()
            },
            None,
        ),
        Some(parameters) => {
            let import_id = &parameters.import_id;
            let mut wait = None;
            let mut last = PollOutput {
                in_progress: true,
                status_code: 200,
                ..PollOutput::default()
            };
            let poll = loop {
                polls += 1;
                progress.show(
                    index,
                    &file.name(),
                    &format!(
                        "polling ({polls} poll{})",
                        if polls == 1 { "" } else { "s" }
                    ),
                );
                let signal = tokio::select! {
                    poll = manager.poll(import_id) => {
                        if poll.complete || !poll.in_progress {
                            break poll;
                        }
                        last = poll;
                        // The service commits on its own schedule: soon at first, then every interval.
                        let next = next_poll_wait(wait, poll_interval);
                        wait = Some(next);
                        tokio::select! {
                            () = tokio::time::sleep(next) => continue,
                            signal = signals.next() => signal,
                        }
                    }
                    signal = signals.next() => signal,
                };
                let mut output = RunOutput {
                    file: shown,
                    abort_reason: upload.abort_reason.clone(),
                    succeeded_job_ids: Vec::new(),
                    failed_job_ids: sorted(&upload.failed_job_ids),
                    aborted_job_ids: sorted(&upload.aborted_job_ids),
                    failed_reasons: upload
                        .failed_job_ids
                        .iter()
                        .map(|job| {
                            let reason = upload.reasons.get(job).cloned();
                            (*job, reason.unwrap_or_else(|| upload.failed_reason.clone()))
                        })
                        .collect(),
                    pending_job_ids: Some(sorted(&upload.importing_job_ids)),
                    interrupted: Some(signal.name()),
                    upload,
                    polls,
                    poll: last,
                    stats: None,
                    duration_ms: 0,
                };
                output.duration_ms = millis(started.elapsed());
                return Ok(FileRun::PollInterrupted(output, signal));
            };
            let parameters = poll
                .failed_job_parameters
                .clone()
                .unwrap_or_else(|| import_id.clone().into());
            let stats = judge(manager, &upload, &parameters);
            (poll, Some(stats))
        }
    };
    if let Some(stats) = &stats {
        outcomes.reserve(
            stats.metadata.succeeded_keys.len()
                + stats.metadata.failed_keys.len()
                + upload.importing_job_ids.len(),
        );
        for &job in &stats.metadata.succeeded_keys {
            outcomes.push((job, Outcome::Succeeded));
        }
        for &job in &stats.metadata.failed_keys {
            let reason = stats
                .metadata
                .failed_reasons
                .get(&job)
                .cloned()
                .unwrap_or_else(|| stats.error.clone());
            outcomes.push((job, failed(reason)));
        }
    }
    // A job upload called importing that stats did not judge (stats could not decode the parameters): its
    // outcome is unknown, so it is retried. Stats judges each job it is handed once, and it is handed the
    // importing jobs, each once: when it answered for as many jobs as were importing, none is left.
    let all_judged = stats.as_ref().is_some_and(|stats| {
        stats.status_code == 200
            && stats.metadata.succeeded_keys.len() + stats.metadata.failed_keys.len()
                == upload.importing_job_ids.len()
    });
    if !all_judged {
        for &job in &upload.importing_job_ids {
            outcomes.push((job, Outcome::Unjudged));
        }
    }
    // A stable sort keeps each job's outcomes in order of precedence; the first one stands. (A sort, not a
    // map: a batch holds hundreds of thousands of jobs, and this runs once per file.)
    outcomes.sort_by_key(|(job, _)| *job);
    outcomes.dedup_by_key(|(job, _)| *job);

    let mut output = RunOutput {
        file: shown,
        abort_reason: upload.abort_reason.clone(),
        upload,
        polls,
        poll,
        stats,
        succeeded_job_ids: Vec::new(),
        failed_job_ids: Vec::new(),
        aborted_job_ids: Vec::new(),
        failed_reasons: BTreeMap::new(),
        duration_ms: 0,
        interrupted: None,
        pending_job_ids: None,
    };
    for (job, outcome) in outcomes {
        match outcome {
            Outcome::Succeeded => output.succeeded_job_ids.push(job),
            Outcome::Aborted => output.aborted_job_ids.push(job),
            Outcome::Failed(reason) => {
                output.failed_job_ids.push(job);
                // Each index was given to one outcome only, so the reason can be moved out.
                let reason = usize::try_from(reason)
                    .ok()
                    .and_then(|i| reasons.get_mut(i))
                    .map(std::mem::take)
                    .unwrap_or_default();
                output.failed_reasons.insert(job, reason);
            }
            Outcome::Unjudged => {
                output.failed_job_ids.push(job);
                output.failed_reasons.insert(
                    job,
                    format!(
                        "the import's outcome could not be judged: {}",
                        output.stats.as_ref().map_or("", |s| s.error.as_str())
                    ),
                );
            }
        }
    }
    output.duration_ms = millis(started.elapsed());
    Ok(FileRun::Done(output))
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

fn sorted(ids: &[i64]) -> Vec<i64> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids
}

/// The job ids of an event file, read again after its upload was cut: every line's `metadata.job_id` that
/// can be read. `None` when the file cannot be read again.
fn job_ids_of(file: &EventFile) -> Option<Vec<i64>> {
    #[derive(serde::Deserialize)]
    struct Line {
        metadata: Metadata,
    }
    #[derive(serde::Deserialize)]
    struct Metadata {
        job_id: i64,
    }
    let opened = file.open("--file").ok()?;
    let mut ids = Vec::new();
    for line in opened.reader.split(b'\n') {
        let line = line.ok()?;
        if let Ok(parsed) = serde_json::from_slice::<Line>(&line) {
            ids.push(parsed.metadata.job_id);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Some(ids)
}

/// Upload stats for the importing jobs of `file`, each with its table as the file says.
fn judge(
    manager: &Manager,
    upload: &UploadOutput,
    parameters: &FailedJobParameters,
) -> UploadStatsOutput {
    // Upload knows each importing job's table: no need to read the file again.
    manager.upload_stats(parameters, &upload.importing_tables)
}

/// The progress line on stderr during `run`: drawn when stderr is a terminal (or `--progress always`),
/// its elapsed time ticking between polls.
pub(crate) struct Progress {
    bar: ProgressBar,
    files: usize,
}

impl Progress {
    /// A progress line for `files` files.
    pub(crate) fn new(files: usize, when: ProgressWhen) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let target = match when {
            ProgressWhen::Never => None,
            ProgressWhen::Auto if !terminal => None,
            ProgressWhen::Auto => Some(ProgressDrawTarget::stderr()),
            // indicatif draws nothing on a stderr that is not a terminal: write to it as to one.
            ProgressWhen::Always if terminal => Some(ProgressDrawTarget::stderr()),
            ProgressWhen::Always => Some(ProgressDrawTarget::term_like(Box::new(Stderr))),
        };
        let bar = match target {
            Some(target) => {
                let bar = ProgressBar::with_draw_target(None, target);
                let elapsed = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1}s", state.elapsed().as_secs_f64());
                };
                if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}, {elapsed_s}") {
                    bar.set_style(style.with_key("elapsed_s", elapsed));
                }
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            }
            None => ProgressBar::hidden(),
        };
        Self { bar, files }
    }

    /// Starts file `index`: its elapsed time counts from now.
    pub(crate) fn begin(&self, index: usize, file: &Path, what: &str) {
        self.bar.reset_elapsed();
        self.show(index, file, what);
    }

    /// Shows what file `index` is doing.
    pub(crate) fn show(&self, index: usize, file: &Path, what: &str) {
        let name = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        self.bar
            .set_message(format!("[{}/{}] {name}: {what}", index + 1, self.files));
    }

    /// Removes the line.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Stderr as a terminal of 100 columns, for `--progress always` when it is not one.
#[derive(Debug)]
struct Stderr;

impl Stderr {
    fn moved(n: usize, direction: char) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        Self::put(&format!("\x1b[{n}{direction}"))
    }

    fn put(text: &str) -> std::io::Result<()> {
        std::io::stderr().lock().write_all(text.as_bytes())
    }
}

impl TermLike for Stderr {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        Self::moved(n, 'A')
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        Self::moved(n, 'B')
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        Self::moved(n, 'C')
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        Self::moved(n, 'D')
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        Self::put(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        Self::put(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Self::put("\r\x1b[2K")
    }
    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_come_soon_then_back_off_to_the_interval() {
        let interval = Duration::from_secs(10);
        let mut wait = None;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let next = next_poll_wait(wait, interval);
            waits.push(next.as_millis());
            wait = Some(next);
        }
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
        assert_eq!(
            next_poll_wait(None, Duration::from_millis(10)),
            Duration::from_millis(10)
        );
    }
}
