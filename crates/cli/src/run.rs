//! `run`: upload a file, poll its import until complete, then upload stats — and account for every job of
//! the file in exactly one of succeeded, failed and aborted.

use std::{
    collections::BTreeMap,
    io::IsTerminal as _,
    path::Path,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use snowpipe_manager::{FailedJobParameters, Manager, PollOutput, UploadOutput, UploadStatsOutput};

/// One file's result line.
#[derive(Debug, Clone, Serialize)]
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

/// Uploads `file`, polls every `poll_interval` until the import is complete, and judges the jobs.
pub(crate) async fn run_file(
    manager: &Manager,
    file: &Path,
    poll_interval: Duration,
    progress: &Progress,
    index: usize,
) -> RunOutput {
    let started = Instant::now();
    progress.show(index, file, "uploading");
    let upload = manager.upload(file, &[]).await;
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
            let poll = loop {
                polls += 1;
                progress.show(
                    index,
                    file,
                    &format!(
                        "polling ({polls} poll{}, {:.1}s)",
                        if polls == 1 { "" } else { "s" },
                        started.elapsed().as_secs_f64()
                    ),
                );
                let poll = manager.poll(import_id).await;
                if poll.complete || !poll.in_progress {
                    break poll;
                }
                // The product's poll interval: the service commits on its own schedule.
                tokio::time::sleep(poll_interval).await;
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
        file: file.display().to_string(),
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
    output.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    output
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

/// The progress line on stderr during `run`, drawn only when stderr is a terminal.
pub(crate) struct Progress {
    bar: ProgressBar,
    files: usize,
}

impl Progress {
    /// A progress line for `files` files.
    pub(crate) fn new(files: usize) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        Self { bar, files }
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
