//! Poll: judge each entry of an import from its channel's committed token — succeeded, failed (exactly
//! which jobs, and why) or still in progress — and, past the stuck threshold, settle what is in flight by
//! reopening the channel, so a job failed as stuck can never land later.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::PoisonError,
    time::{Duration, Instant},
};

use snowpipe_api::{ChannelStatus, Progress};
use snowpipe_channels::{
    ChannelId, EntryRows, EntryVerdict, Positions,
    token::Committed,
    verdict::{Rest, Undecidable},
};
use tracing::Instrument as _;

use crate::{
    FailedJobParameters, ImportEntry, ImportId, JobIdRange, Manager, PollOutput, import::JobRuns,
};

/// Most imports whose poll state a manager keeps at once. A caller that abandons imports without polling
/// them to completion must not make the state grow without bound; the oldest is forgotten first (forgetting
/// costs at most a channel asked again, and a stuck clock restarted from the entries' upload time).
const MAX_TRACKED_IMPORTS: usize = 1024;

/// What the manager remembers between polls.
#[derive(Debug, Default)]
pub(crate) struct PollState {
    /// Per import, by its entries.
    imports: HashMap<ImportKey, ImportState>,
    /// Imports in the order they were first polled, to forget the oldest.
    order: VecDeque<ImportKey>,
}

/// What the manager remembers between polls of one import.
#[derive(Debug, Default)]
struct ImportState {
    /// Entries already judged terminal: not asked again.
    terminal: HashMap<EntryKey, Judgement>,
    /// When the import was first seen in progress.
    in_progress_since: Option<Instant>,
    /// Per entry in progress, where its channel's committed position stood and since when.
    progress: HashMap<EntryKey, Quiet>,
    /// Entries whose valid channel stalled and was warned about (once per stall).
    stalled: HashMap<EntryKey, ()>,
}

/// Where an entry's channel's committed position stood, and since when.
#[derive(Debug, Clone)]
struct Quiet {
    committed: Option<String>,
    since: Instant,
    /// The position has not been seen to move in this process: the quiet time counts from the upload too
    /// (a poll in a fresh process has only the entry's upload time).
    from_upload: bool,
}

type EntryKey = (String, String, String);
/// An import, named by its entries.
type ImportKey = Vec<EntryKey>;

fn key(entry: &ImportEntry) -> EntryKey {
    (
        entry.channel_id.clone(),
        entry.offset.clone(),
        entry.table.clone(),
    )
}

fn import_key(entries: &[ImportEntry]) -> ImportKey {
    let mut keys: ImportKey = entries.iter().map(key).collect();
    keys.sort();
    keys
}

impl PollState {
    fn import(&mut self, import: &ImportKey) -> &mut ImportState {
        if !self.imports.contains_key(import) {
            if self.order.len() >= MAX_TRACKED_IMPORTS
                && let Some(oldest) = self.order.pop_front()
            {
                self.imports.remove(&oldest);
            }
            self.order.push_back(import.clone());
        }
        self.imports.entry(import.clone()).or_default()
    }

    fn forget(&mut self, import: &ImportKey) {
        self.imports.remove(import);
        self.order.retain(|k| k != import);
    }
}

/// Which jobs of an entry failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failed {
    /// Every job of the entry.
    All,
    /// Jobs in this range (entries of the scheme before tokens).
    Range(JobIdRange),
    /// Exactly these.
    Jobs(JobRuns),
}

/// An entry's state after a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Judgement {
    Succeeded,
    InProgress,
    Failed {
        reason: String,
        jobs: Failed,
        /// Failed as stuck: the answer warns.
        stuck: bool,
        /// Jobs whose rows the service may have rejected at commit, and why: aborted, never retried.
        aborted: Option<(JobRuns, String)>,
    },
}

impl Judgement {
    fn failed(reason: String) -> Self {
        Self::Failed {
            reason,
            jobs: Failed::All,
            stuck: false,
            aborted: None,
        }
    }
}

/// An offset token of the scheme before as a number; an empty one is "nothing yet", the smallest possible.
fn offset(token: &str) -> Result<i64, String> {
    if token.is_empty() {
        Ok(i64::MIN)
    } else {
        token
            .parse()
            .map_err(|_| format!("offset {token:?} is not a number"))
    }
}

/// A duration as a person reads it, to a tenth of a second.
fn humantime_secs(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// Judges an entry of the scheme before tokens (its offset the highest job id of its rows) by its channel's
/// committed and latest inserted offsets — only while the committed token is still a job id: once the
/// channel has moved to tokens, the old rule means nothing.
fn judge_legacy(entry: &ImportEntry, status: &ChannelStatus) -> Judgement {
    if matches!(
        Committed::read(status.committed.as_deref()),
        Committed::Token(_) | Committed::Unreadable(_)
    ) {
        return Judgement::failed(format!(
            "whether the rows of table {} committed cannot be told: {}; the jobs are retried",
            entry.table,
            Undecidable::LegacyEntry
        ));
    }
    let committed_token = status.committed_str();
    let latest_token = match &status.progress {
        Progress::Inserted(latest) => latest.as_deref().unwrap_or(""),
        _ => committed_token,
    };
    let parsed = (
        offset(&entry.offset),
        offset(committed_token),
        offset(latest_token),
    );
    let (Ok(expected), Ok(committed), Ok(latest)) = parsed else {
        return Judgement::failed(format!(
            "unreadable offsets for table {}: expected {:?}, committed {:?}, latest inserted {:?}",
            entry.table, entry.offset, committed_token, latest_token
        ));
    };
    if committed >= expected {
        return Judgement::Succeeded;
    }
    if latest < expected {
        let after_committed = committed.saturating_add(1);
        let start = match entry.min_job_id {
            Some(min) if committed_token.is_empty() => min,
            Some(min) => min.min(after_committed),
            None => after_committed,
        };
        return Judgement::Failed {
            reason: format!(
                "rows of table {} were lost before they were committed (committed offset {}, latest inserted {}, expected {})",
                entry.table, committed_token, latest_token, entry.offset
            ),
            jobs: Failed::Range(JobIdRange {
                start,
                end: expected,
            }),
            stuck: false,
            aborted: None,
        };
    }
    Judgement::InProgress
}

/// What a verdict on an entry's segments means for its jobs. `stuck`: the verdict came from settling a
/// stuck import.
fn judgement(
    entry: &ImportEntry,
    verdict: &EntryVerdict,
    stuck: bool,
) -> (Judgement, Vec<Undecidable>) {
    let mut failed = Vec::new();
    let mut lost = false;
    let mut causes = Vec::new();
    for (segment, judged) in entry.segments.iter().zip(&verdict.segments) {
        match judged.rest {
            Rest::Nothing => continue,
            Rest::InFlight => return (Judgement::InProgress, causes),
            Rest::Lost => lost = true,
            Rest::Undecidable(cause) => causes.push(cause),
        }
        let committed = usize::try_from(judged.committed_through.saturating_sub(segment.first - 1))
            .unwrap_or(usize::MAX);
        failed.extend(segment.jobs.iter().skip(committed));
    }
    if entry.segments.len() != verdict.segments.len() {
        return (
            Judgement::failed(format!(
                "table {}: the channel layer judged {} segments of {}",
                entry.table,
                verdict.segments.len(),
                entry.segments.len()
            )),
            causes,
        );
    }
    // Committed rows the service may have rejected: their jobs are aborted (a retry would write their good
    // rows twice, and be rejected again).
    let mut aborted = Vec::new();
    let mut aborted_reason = String::new();
    for ((segment, judged), rejected) in entry
        .segments
        .iter()
        .zip(&verdict.segments)
        .zip(&verdict.rejected)
    {
        if let Some(rejected) = rejected {
            let through = rejected.through.min(judged.committed_through);
            let rows =
                usize::try_from((through + 1).saturating_sub(segment.first)).unwrap_or(usize::MAX);
            aborted.extend(segment.jobs.iter().take(rows));
            aborted_reason.clone_from(&rejected.message);
        }
    }
    let aborted = (!aborted.is_empty()).then(|| {
        (
            JobRuns::of(aborted),
            format!(
                "{aborted_reason}; the job is aborted: retrying would write its accepted rows twice"
            ),
        )
    });
    if failed.is_empty() && aborted.is_none() {
        return (Judgement::Succeeded, causes);
    }
    let table = &entry.table;
    let mut reasons = Vec::new();
    if lost && stuck && !verdict.reopened_invalid {
        reasons.push(format!(
            "stuck: rows of table {table} did not commit within the stuck threshold; the channel was reopened and they were discarded"
        ));
    } else if lost {
        reasons.push(format!(
            "rows of table {table} were lost before they were committed (the channel was lost, turned invalid or was reopened since)"
        ));
    }
    causes.sort_unstable();
    causes.dedup();
    for cause in &causes {
        reasons.push(format!(
            "whether the rows of table {table} committed cannot be told: {cause}; the jobs are retried"
        ));
    }
    (
        Judgement::Failed {
            reason: reasons.join("; "),
            jobs: Failed::Jobs(JobRuns::of(failed)),
            stuck: lost && stuck && !verdict.reopened_invalid,
            aborted,
        },
        causes,
    )
}

/// Counts each undecidable cause once per failed job of the entry.
fn count_undecidable(
    judgement: &Judgement,
    causes: Vec<Undecidable>,
    counts: &mut BTreeMap<Undecidable, usize>,
) {
    if let Judgement::Failed {
        jobs: Failed::Jobs(jobs),
        ..
    } = judgement
    {
        for cause in causes {
            *counts.entry(cause).or_default() += usize::try_from(jobs.len()).unwrap_or(usize::MAX);
        }
    }
}

fn rows_of(entry: &ImportEntry) -> EntryRows {
    EntryRows {
        table: entry.table.clone(),
        channel_id: entry.channel_id.clone(),
        segments: entry
            .segments
            .iter()
            .map(|s| Positions {
                epoch: s.epoch,
                first: s.first,
                last: s.last,
                fence: s.fence_counters(),
            })
            .collect(),
    }
}

fn is_segmented(entry: &ImportEntry) -> bool {
    entry.scheme.is_some()
}

impl Manager {
    /// Asks the channel layer to judge the entries of the token scheme among `entries` (settling them by
    /// reopening their channels when `settle`).
    async fn judge_segmented<'e>(
        &self,
        entries: &[&'e ImportEntry],
        settle: bool,
    ) -> Vec<(
        &'e ImportEntry,
        Result<EntryVerdict, snowpipe_channels::ChannelError>,
    )> {
        let segmented: Vec<&ImportEntry> = entries
            .iter()
            .copied()
            .filter(|e| is_segmented(e))
            .collect();
        if segmented.is_empty() {
            return Vec::new();
        }
        let rows: Vec<EntryRows> = segmented.iter().map(|e| rows_of(e)).collect();
        let verdicts = self.channels.judge(&rows, settle).await;
        segmented.into_iter().zip(verdicts).collect()
    }

    /// Polls an import: the `importId` array from upload's importing parameters ([`ImportId::decode`] reads it
    /// from the JSON a caller holds).
    pub async fn poll(&self, import_id: &ImportId) -> PollOutput {
        let span = tracing::info_span!("poll", destination = %self.destination_id);
        self.poll_inner(import_id.entries()).instrument(span).await
    }

    async fn poll_inner(&self, entries: &[ImportEntry]) -> PollOutput {
        let import = import_key(entries);
        let known: HashMap<EntryKey, Judgement> = {
            let mut state = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
            let terminal = &state.import(&import).terminal;
            entries
                .iter()
                .filter_map(|e| terminal.get(&key(e)).map(|j| (key(e), j.clone())))
                .collect()
        };
        let pending: Vec<&ImportEntry> = entries
            .iter()
            .filter(|e| !known.contains_key(&key(e)))
            .collect();
        let mut judged: HashMap<EntryKey, Judgement> = known;
        let mut undecidable: BTreeMap<Undecidable, usize> = BTreeMap::new();

        let mut committed: HashMap<EntryKey, Option<String>> = HashMap::new();
        for (entry, verdict) in self.judge_segmented(&pending, false).await {
            let judgement = match verdict {
                Ok(verdict) => {
                    self.labels
                        .rejected_rows(&entry.table, verdict.rejected_rows);
                    committed.insert(key(entry), verdict.committed.clone());
                    let (judgement, causes) = judgement(entry, &verdict, false);
                    count_undecidable(&judgement, causes, &mut undecidable);
                    judgement
                }
                Err(error) => {
                    // Nothing is judged on a failed status request or reopen: the entry stays in progress. The
                    // stuck clock still runs, so a backend that keeps failing cannot hold the import forever.
                    tracing::warn!(table = %entry.table, %error, "the entry cannot be judged now; it stays in progress");
                    Judgement::InProgress
                }
            };
            judged.insert(key(entry), judgement);
        }

        let legacy: Vec<&ImportEntry> = pending
            .iter()
            .copied()
            .filter(|e| !is_segmented(e))
            .collect();
        if !legacy.is_empty() {
            let ids: Vec<ChannelId> = legacy
                .iter()
                .map(|e| ChannelId {
                    table: e.table.clone(),
                    id: e.channel_id.clone(),
                })
                .collect();
            let statuses = self.channels.statuses(&ids).await;
            for (i, entry) in legacy.iter().enumerate() {
                let judgement = match &statuses {
                    Ok(statuses) => match statuses.get(i).cloned().flatten() {
                        Some(status) if status.valid => judge_legacy(entry, &status),
                        _ => Judgement::failed(format!(
                            "the channel of table {} was lost or turned invalid, and the import id is of the old scheme (offsets were job ids): its rows cannot be judged; the jobs are retried",
                            entry.table
                        )),
                    },
                    Err(error) => {
                        tracing::warn!(table = %entry.table, %error, "bulk status failed; the entry stays in progress");
                        Judgement::InProgress
                    }
                };
                judged.insert(key(entry), judgement);
            }
        }

        let in_progress: Vec<&ImportEntry> = entries
            .iter()
            .filter(|e| judged.get(&key(e)) == Some(&Judgement::InProgress))
            .collect();
        if !in_progress.is_empty() {
            let now = self.clock.now();
            let since = {
                let mut state = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
                *state.import(&import).in_progress_since.get_or_insert(now)
            };
            // A poll in a fresh process (or after a restart) has just started its clock: the upload time in
            // the entries keeps the threshold reachable when every poll runs in a new process.
            let since_upload = in_progress
                .iter()
                .filter_map(|e| e.upload_time())
                .min()
                .and_then(|at| self.clock.system_time().duration_since(at).ok())
                .unwrap_or_default();
            let waited = now.duration_since(since).max(since_upload);
            if waited >= self.settings.stuck_threshold {
                self.settle_stuck(&in_progress, waited, &mut judged, &mut undecidable)
                    .await;
            } else {
                self.check_stalls(
                    &import,
                    &in_progress,
                    &committed,
                    &mut judged,
                    &mut undecidable,
                )
                .await;
            }
        }
        self.count_stalled(&import, &judged);

        for (cause, jobs) in &undecidable {
            tracing::warn!(
                cause = cause.as_str(),
                jobs,
                "{cause}: the jobs failed and are retried; their rows may be in the table"
            );
            self.labels.undecidable(cause.as_str(), *jobs);
        }
        {
            let mut state = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
            let terminal = &mut state.import(&import).terminal;
            for (k, j) in &judged {
                if *j != Judgement::InProgress {
                    terminal.insert(k.clone(), j.clone());
                }
            }
        }
        if judged.values().any(|j| *j == Judgement::InProgress) {
            self.labels.polling_in_progress();
            return PollOutput {
                in_progress: true,
                status_code: 200,
                ..PollOutput::default()
            };
        }
        self.complete(&import, entries, &judged)
    }

    /// Entries in progress whose channel's committed position has not moved for the stall threshold: each
    /// channel is checked on its own status. Invalid (or lost): its rows are settled now, failed with a
    /// reason naming the stall and its length. Valid: one warning per stall, and the entry keeps waiting
    /// (the stuck threshold stays the last resort).
    async fn check_stalls(
        &self,
        import: &ImportKey,
        in_progress: &[&ImportEntry],
        committed: &HashMap<EntryKey, Option<String>>,
        judged: &mut HashMap<EntryKey, Judgement>,
        undecidable: &mut BTreeMap<Undecidable, usize>,
    ) {
        let stall_after = self.settings.stall_after;
        if stall_after >= self.settings.stuck_threshold {
            return;
        }
        let now = self.clock.now();
        let system_now = self.clock.system_time();
        let mut stalled: Vec<(&ImportEntry, Duration)> = Vec::new();
        {
            let mut state = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
            let state = state.import(import);
            for entry in in_progress.iter().copied().filter(|e| is_segmented(e)) {
                let Some(seen) = committed.get(&key(entry)) else {
                    continue;
                };
                let quiet = state.progress.entry(key(entry)).or_insert_with(|| Quiet {
                    committed: seen.clone(),
                    since: now,
                    from_upload: true,
                });
                if quiet.committed != *seen {
                    *quiet = Quiet {
                        committed: seen.clone(),
                        since: now,
                        from_upload: false,
                    };
                    state.stalled.remove(&key(entry));
                }
                let mut length = now.duration_since(quiet.since);
                if quiet.from_upload
                    && let Some(since_upload) = entry
                        .upload_time()
                        .and_then(|at| system_now.duration_since(at).ok())
                {
                    length = length.max(since_upload);
                }
                if length >= stall_after {
                    stalled.push((entry, length));
                }
            }
        }
        if stalled.is_empty() {
            return;
        }
        let rows: Vec<EntryRows> = stalled.iter().map(|(e, _)| rows_of(e)).collect();
        let checked = self.channels.check_stalled(&rows).await;
        for ((entry, length), checked) in stalled.into_iter().zip(checked) {
            let quiet = humantime_secs(length);
            match checked {
                Ok(Some(verdict)) => {
                    let (judgement, causes) = judgement(entry, &verdict, false);
                    count_undecidable(&judgement, causes, undecidable);
                    let judgement = match judgement {
                        Judgement::Failed {
                            reason,
                            jobs,
                            stuck,
                            aborted,
                        } => {
                            tracing::warn!(table = %entry.table, channel_id = %entry.channel_id, quiet = %quiet,
                                "stalled: the channel's committed position did not move and the channel reports itself invalid; its rows were settled");
                            Judgement::Failed {
                                reason: format!(
                                    "stalled: the committed position of table {}'s channel did not move for {quiet} (--stall-after) and the channel reports itself invalid; it was reopened: {reason}",
                                    entry.table
                                ),
                                jobs,
                                stuck,
                                aborted,
                            }
                        }
                        other => other,
                    };
                    judged.insert(key(entry), judgement);
                }
                Ok(None) => {
                    let mut state = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
                    let first = state
                        .import(import)
                        .stalled
                        .insert(key(entry), ())
                        .is_none();
                    if first {
                        let positions = entry
                            .segments
                            .iter()
                            .map(|s| format!("{}:{}..={}", s.epoch, s.first, s.last))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let committed = committed
                            .get(&key(entry))
                            .cloned()
                            .flatten()
                            .unwrap_or_default();
                        tracing::warn!(table = %entry.table, channel_id = %entry.channel_id,
                            committed = %committed, expected = %positions, quiet = %quiet,
                            "stalled: the channel's committed position has not moved, yet the channel says it is valid; waiting (the stuck threshold is the last resort)");
                    }
                }
                Err(error) => {
                    tracing::warn!(table = %entry.table, %error, "a stalled channel cannot be checked now; the entry stays in progress");
                }
            }
        }
    }

    /// Sets the stalled-channels gauge: the valid channels whose stall was warned about and whose entries
    /// are still in progress, over every import this manager polls.
    fn count_stalled(&self, import: &ImportKey, judged: &HashMap<EntryKey, Judgement>) {
        let mut state = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
        let this = state.import(import);
        this.stalled
            .retain(|k, ()| judged.get(k).is_none_or(|j| *j == Judgement::InProgress));
        self.set_stalled_gauge(&state);
    }

    fn set_stalled_gauge(&self, state: &PollState) {
        // A channel is named by its table and id: on REST every table's channel has the same name.
        let channels: std::collections::HashSet<(&str, &str)> = state
            .imports
            .values()
            .flat_map(|i| {
                i.stalled
                    .keys()
                    .map(|(channel, _, table)| (table.as_str(), channel.as_str()))
            })
            .collect();
        self.labels.channels_stalled(channels.len());
    }

    /// Entries in progress past the stuck threshold: their channels are reopened (discarding what is in
    /// flight, so nothing judged lost lands later) and judged from those openings. A channel the backend
    /// itself reports invalid fails its rows quietly; otherwise the pipeline is stuck, and the answer warns.
    /// When even the reopen is impossible, the entry waits until twice the threshold, then is undecidable.
    async fn settle_stuck(
        &self,
        in_progress: &[&ImportEntry],
        waited: std::time::Duration,
        judged: &mut HashMap<EntryKey, Judgement>,
        undecidable: &mut BTreeMap<Undecidable, usize>,
    ) {
        for (entry, verdict) in self.judge_segmented(in_progress, true).await {
            let judgement = match verdict {
                Ok(verdict) => {
                    self.labels
                        .rejected_rows(&entry.table, verdict.rejected_rows);
                    let (judgement, causes) = judgement(entry, &verdict, true);
                    if let Judgement::Failed { stuck: true, .. } = &judgement {
                        tracing::warn!(table = %entry.table, channel_id = %entry.channel_id,
                            "pipeline stuck: the rows did not commit within the stuck threshold");
                    }
                    count_undecidable(&judgement, causes, undecidable);
                    judgement
                }
                Err(error) if waited >= self.settings.stuck_threshold * 2 => {
                    *undecidable
                        .entry(Undecidable::ReopenImpossible)
                        .or_default() += usize::try_from(entry.count).unwrap_or(usize::MAX);
                    Judgement::Failed {
                        reason: format!(
                            "stuck: whether the rows of table {} committed cannot be told: {} ({error}); the jobs are retried",
                            entry.table,
                            Undecidable::ReopenImpossible
                        ),
                        jobs: Failed::All,
                        stuck: true,
                        aborted: None,
                    }
                }
                Err(error) => {
                    tracing::warn!(table = %entry.table, %error, "a stuck entry cannot be settled now; it stays in progress");
                    Judgement::InProgress
                }
            };
            judged.insert(key(entry), judgement);
        }
        for entry in in_progress.iter().filter(|e| !is_segmented(e)) {
            tracing::warn!(table = %entry.table, channel_id = %entry.channel_id,
                "pipeline stuck: the committed offset has not reached the import's offset within the stuck threshold");
            judged.insert(
                key(entry),
                Judgement::Failed {
                    reason: format!(
                        "stuck: the committed offset of table {} did not reach {} within the stuck threshold",
                        entry.table, entry.offset
                    ),
                    jobs: Failed::All,
                    stuck: true,
                    aborted: None,
                },
            );
        }
    }

    /// Every entry is terminal: count, forget this import's state, answer with the entries marked.
    fn complete(
        &self,
        import: &ImportKey,
        entries: &[ImportEntry],
        judged: &HashMap<EntryKey, Judgement>,
    ) -> PollOutput {
        let mut has_failed = false;
        let mut has_warning = false;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut entry = entry.clone();
            let judgement = judged
                .get(&key(&entry))
                .cloned()
                .unwrap_or(Judgement::Succeeded);
            let count = usize::try_from(entry.count).unwrap_or(usize::MAX);
            if let Judgement::Failed {
                reason,
                jobs,
                stuck,
                aborted,
            } = judgement
            {
                has_failed = true;
                has_warning |= stuck;
                entry.failed = true;
                entry.reason = reason;
                let mut count = count;
                if let Some((jobs, reason)) = aborted {
                    let aborted = usize::try_from(jobs.len()).unwrap_or(usize::MAX);
                    self.labels.jobs("aborted", aborted);
                    count = count.saturating_sub(aborted);
                    entry.aborted_jobs = jobs;
                    entry.aborted_reason = reason;
                }
                let failed = match jobs {
                    Failed::All => count,
                    Failed::Range(range) => {
                        entry.failed_job_ids = Some(range);
                        count
                    }
                    Failed::Jobs(jobs) => {
                        let failed = usize::try_from(jobs.len()).unwrap_or(usize::MAX);
                        entry.failed_jobs = jobs;
                        failed
                    }
                };
                self.labels.jobs("failed", failed);
                self.labels.jobs("succeeded", count.saturating_sub(failed));
            } else {
                self.labels.jobs("succeeded", count);
            }
            out.push(entry);
        }
        self.poll
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .forget(import);
        self.set_stalled_gauge(&self.poll.lock().unwrap_or_else(PoisonError::into_inner));
        PollOutput {
            complete: true,
            in_progress: false,
            status_code: 200,
            has_failed,
            has_warning,
            failed_job_parameters: Some(FailedJobParameters(out)),
            error: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: &str, min_job_id: Option<i64>) -> ImportEntry {
        ImportEntry {
            channel_id: "c".into(),
            offset: offset.into(),
            table: "T".into(),
            count: 3,
            min_job_id,
            ..ImportEntry::default()
        }
    }

    fn status(committed: &str, latest: &str) -> ChannelStatus {
        let token = |t: &str| (!t.is_empty()).then(|| t.to_owned());
        ChannelStatus {
            valid: true,
            committed: token(committed),
            progress: Progress::Inserted(token(latest)),
        }
    }

    #[test]
    fn legacy_entries_are_judged_by_their_offsets_while_the_token_is_a_job_id() {
        assert_eq!(
            judge_legacy(&entry("10", Some(8)), &status("10", "10")),
            Judgement::Succeeded
        );
        assert_eq!(
            judge_legacy(&entry("10", Some(8)), &status("5", "10")),
            Judgement::InProgress
        );
        let Judgement::Failed { jobs, .. } = judge_legacy(&entry("10", Some(8)), &status("5", "5"))
        else {
            panic!("lost")
        };
        assert_eq!(jobs, Failed::Range(JobIdRange { start: 6, end: 10 }));
        // Once the channel moved to tokens, the old rule means nothing.
        let Judgement::Failed { reason, jobs, .. } =
            judge_legacy(&entry("10", Some(8)), &status("v2.1-1.5.0", "v2.1-1.5.0"))
        else {
            panic!("undecidable")
        };
        assert_eq!(jobs, Failed::All);
        assert!(reason.contains("old scheme"), "{reason}");
    }
}
