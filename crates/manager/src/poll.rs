//! Poll: ask the channels of an import where they stand, recover lost and invalid channels, and judge each
//! entry succeeded, failed or still in progress.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::PoisonError,
    time::Instant,
};

use snowpipe_api::{ChannelStatus, Progress};
use snowpipe_channels::ChannelId;
use tracing::Instrument as _;

use crate::{FailedJobParameters, ImportEntry, ImportId, JobIdRange, Manager, PollOutput};

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
    /// Channels reopened during polling: the id in an import entry → the id to ask now. Shared by every
    /// import, since entries of several imports can name the same channel.
    reopened: HashMap<String, String>,
}

/// What the manager remembers between polls of one import.
#[derive(Debug, Default)]
struct ImportState {
    /// Entries already judged terminal: not asked again.
    terminal: HashMap<EntryKey, Judgement>,
    /// When the import was first seen in progress.
    in_progress_since: Option<Instant>,
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

    /// Forgets a completed import, and the reopened channels that no other import still names.
    fn forget(&mut self, import: &ImportKey) {
        self.imports.remove(import);
        self.order.retain(|k| k != import);
        for (channel, _, _) in import {
            let named = self
                .order
                .iter()
                .any(|other| other.iter().any(|(c, _, _)| c == channel));
            if !named {
                self.reopened.remove(channel);
            }
        }
    }
}

/// An entry's state after a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Judgement {
    Succeeded,
    InProgress,
    Failed {
        reason: String,
        range: Option<JobIdRange>,
        stuck: bool,
    },
}

impl Judgement {
    fn failed(reason: String) -> Self {
        Self::Failed {
            reason,
            range: None,
            stuck: false,
        }
    }
}

/// An offset token as a number; an empty one is "nothing yet", the smallest possible.
fn offset(token: &str) -> Result<i64, String> {
    if token.is_empty() {
        Ok(i64::MIN)
    } else {
        token
            .parse()
            .map_err(|_| format!("offset {token:?} is not a number"))
    }
}

/// Judges an entry by its channel's committed and latest inserted offsets.
fn judge(entry: &ImportEntry, status: &ChannelStatus) -> Judgement {
    let committed_token = status.committed_str();
    let latest_token = match &status.progress {
        Progress::Inserted(latest) => latest.as_deref().unwrap_or(""),
        // A backend that does not say what the channel was handed: until the committed offset reaches the
        // entry's, the rows may still be on their way.
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
    if !matches!(status.progress, Progress::Inserted(_)) {
        return Judgement::InProgress;
    }
    if latest < expected {
        // Rows were lost (the service restarted before committing them). Job ids need not rise, so the range
        // starts at the entry's lowest job id when that is below the committed offset.
        // With nothing committed yet, every job of the entry is lost: its lowest job id bounds the range.
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
            range: Some(JobIdRange {
                start,
                end: expected,
            }),
            stuck: false,
        };
    }
    if latest > committed {
        return Judgement::InProgress;
    }
    Judgement::failed(format!(
        "table {} cannot reach its offset: expected {}, committed {:?}, latest inserted {:?}",
        entry.table, entry.offset, committed_token, latest_token
    ))
}

fn channel_id(entry: &ImportEntry, id: &str) -> ChannelId {
    ChannelId {
        table: entry.table.clone(),
        id: id.to_owned(),
    }
}

impl Manager {
    /// Polls an import: the `importId` array from upload's importing parameters ([`ImportId::decode`] reads it
    /// from the JSON a caller holds).
    pub async fn poll(&self, import_id: &ImportId) -> PollOutput {
        let span = tracing::info_span!("poll", destination = %self.destination_id);
        self.poll_inner(import_id.entries()).instrument(span).await
    }

    async fn poll_inner(&self, entries: &[ImportEntry]) -> PollOutput {
        let import = import_key(entries);
        let (known, reopened) = {
            let mut state = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
            let reopened = state.reopened.clone();
            let terminal = &state.import(&import).terminal;
            let known: HashMap<EntryKey, Judgement> = entries
                .iter()
                .filter_map(|e| terminal.get(&key(e)).map(|j| (key(e), j.clone())))
                .collect();
            (known, reopened)
        };
        let current_id = |entry: &ImportEntry| {
            reopened
                .get(&entry.channel_id)
                .cloned()
                .unwrap_or_else(|| entry.channel_id.clone())
        };

        let pending: Vec<&ImportEntry> = entries
            .iter()
            .filter(|e| !known.contains_key(&key(e)))
            .collect();
        let asked: Vec<ChannelId> = {
            let mut seen = HashSet::new();
            pending
                .iter()
                .map(|e| channel_id(e, &current_id(e)))
                .filter(|c| seen.insert(c.clone()))
                .collect()
        };
        let statuses: Option<HashMap<ChannelId, Option<ChannelStatus>>> =
            match self.channels.statuses(&asked).await {
                Ok(statuses) => Some(asked.into_iter().zip(statuses).collect()),
                Err(error) => {
                    // Nothing is judged on a failed status request: every entry stays in progress. The stuck
                    // clock still runs, so a status endpoint that keeps failing cannot hold the import forever.
                    tracing::warn!(%error, "bulk status failed; the import stays in progress");
                    None
                }
            };

        let mut judged: HashMap<EntryKey, Judgement> = known;
        for entry in pending {
            let id = current_id(entry);
            let judgement = match statuses.as_ref().map(|s| s.get(&channel_id(entry, &id))) {
                None => Judgement::InProgress,
                Some(None | Some(None)) => self.judge_reopened(entry, None).await,
                Some(Some(Some(status))) if !status.valid => {
                    self.judge_reopened(entry, Some(id)).await
                }
                Some(Some(Some(status))) => judge(entry, status),
            };
            judged.insert(key(entry), judgement);
        }

        let mut stuck_check = false;
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
            stuck_check =
                now.duration_since(since).max(since_upload) >= self.settings.stuck_threshold;
        }
        if stuck_check {
            for entry in entries {
                if judged.get(&key(entry)) == Some(&Judgement::InProgress) {
                    let judgement = self.judge_stuck(entry, &current_id(entry)).await;
                    judged.insert(key(entry), judgement);
                }
            }
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
        self.complete(&import, entries, &judged).await
    }

    /// Judges an entry whose channel the backend lost (`stale` = `None`) or reported invalid: reopen the
    /// channel (no DDL) and judge on the new channel's status. When the channel cannot be reopened or its
    /// status read, the entry stays in progress rather than failing jobs whose rows may have landed (the
    /// issue's "no row twice" wins over the behaviour page's "failure to do so fails the entry").
    async fn judge_reopened(&self, entry: &ImportEntry, stale: Option<String>) -> Judgement {
        tracing::info!(table = %entry.table, channel_id = %entry.channel_id, invalid = stale.is_some(), "reopening channel while polling");
        let channel = match self.channels.recreate(&entry.table, stale).await {
            Ok(channel) => channel,
            Err(error) => {
                // Failing the entry here would fail jobs whose rows may have committed before the restart, and
                // their retry would put them in twice: try again at the next poll; the stuck threshold still
                // bounds how long that goes on.
                tracing::warn!(table = %entry.table, %error, "cannot reopen the channel; the entry stays in progress");
                return Judgement::InProgress;
            }
        };
        self.poll
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reopened
            .insert(entry.channel_id.clone(), channel.id().to_owned());
        match self.channels.status(&channel_id(entry, channel.id())).await {
            Ok(Some(status)) => judge(entry, &status),
            Ok(None) => {
                tracing::warn!(table = %entry.table, channel_id = %channel.id(), "the reopened channel is unknown again; the entry stays in progress");
                Judgement::InProgress
            }
            Err(error) => {
                // As above: unknown is not failed. The next poll asks the reopened channel.
                tracing::warn!(table = %entry.table, channel_id = %channel.id(), %error, "status of the reopened channel unknown; the entry stays in progress");
                Judgement::InProgress
            }
        }
    }

    /// An entry in progress past the stuck threshold: the single-channel status tells the truth that bulk
    /// status may hide. Invalid → failed quietly; otherwise failed as stuck.
    async fn judge_stuck(&self, entry: &ImportEntry, id: &str) -> Judgement {
        let stuck = |reason: String| Judgement::Failed {
            reason,
            range: None,
            stuck: true,
        };
        match self.channels.status(&channel_id(entry, id)).await {
            Ok(Some(status)) if !status.valid => Judgement::failed(format!(
                "the channel of table {} turned invalid while its rows were flushing",
                entry.table
            )),
            Ok(Some(status)) => match judge(entry, &status) {
                Judgement::InProgress => {
                    tracing::warn!(
                        table = %entry.table,
                        channel_id = id,
                        committed = %status.committed_str(),
                        progress = ?status.progress,
                        expected = %entry.offset,
                        "pipeline stuck: the committed offset has not reached the import's offset within the stuck threshold"
                    );
                    stuck(format!(
                        "stuck: the committed offset of table {} stayed at {:?} below {} past the stuck threshold",
                        entry.table,
                        status.committed_str(),
                        entry.offset
                    ))
                }
                other => other,
            },
            Ok(None) => stuck(format!(
                "stuck: the channel of table {} did not commit in time and the backend no longer knows it",
                entry.table
            )),
            Err(error) => stuck(format!(
                "stuck: the channel of table {} did not commit in time and its status is unknown: {error}",
                entry.table
            )),
        }
    }

    /// Every entry is terminal: delete the channels of failed entries, count, forget this import's state.
    async fn complete(
        &self,
        import: &ImportKey,
        entries: &[ImportEntry],
        judged: &HashMap<EntryKey, Judgement>,
    ) -> PollOutput {
        let mut has_failed = false;
        let mut has_warning = false;
        let reopened = self
            .poll
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reopened
            .clone();
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut entry = entry.clone();
            let judgement = judged
                .get(&key(&entry))
                .cloned()
                .unwrap_or(Judgement::Succeeded);
            if let Judgement::Failed {
                reason,
                range,
                stuck,
            } = judgement
            {
                has_failed = true;
                has_warning |= stuck;
                let id = reopened
                    .get(&entry.channel_id)
                    .unwrap_or(&entry.channel_id)
                    .clone();
                if let Err(error) = self.channels.delete(&channel_id(&entry, &id)).await {
                    tracing::warn!(table = %entry.table, channel_id = id, %error, "cannot delete the channel of a failed entry");
                }
                entry.failed = true;
                entry.reason = reason;
                entry.failed_job_ids = range;
                self.labels
                    .jobs("failed", usize::try_from(entry.count).unwrap_or(usize::MAX));
            } else {
                self.labels.jobs(
                    "succeeded",
                    usize::try_from(entry.count).unwrap_or(usize::MAX),
                );
            }
            out.push(entry);
        }
        self.poll
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .forget(import);
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
    fn entries_are_judged_by_their_offsets() {
        assert_eq!(
            judge(&entry("10", Some(8)), &status("10", "10")),
            Judgement::Succeeded
        );
        assert_eq!(
            judge(&entry("10", Some(8)), &status("12", "12")),
            Judgement::Succeeded,
            "a later import moved on"
        );
        assert_eq!(
            judge(&entry("10", Some(8)), &status("5", "10")),
            Judgement::InProgress
        );
        assert_eq!(
            judge(&entry("10", Some(8)), &status("", "10")),
            Judgement::InProgress,
            "empty counts as the smallest"
        );
        let Judgement::Failed { range, .. } = judge(&entry("10", Some(8)), &status("5", "5"))
        else {
            panic!("lost")
        };
        assert_eq!(range, Some(JobIdRange { start: 6, end: 10 }));
        let Judgement::Failed { reason, .. } = judge(&entry("x", None), &status("5", "5")) else {
            panic!("bad")
        };
        assert!(reason.contains("unreadable"), "{reason}");
    }

    #[test]
    fn a_lost_retry_with_a_low_job_id_is_inside_the_failed_range() {
        // Job 3 was retried from an earlier batch into a batch of jobs 3, 20..=25; the committed offset had
        // already passed 3 (it is 19) when the rows were lost.
        let Judgement::Failed { range, .. } = judge(&entry("25", Some(3)), &status("19", "19"))
        else {
            panic!("lost")
        };
        assert_eq!(range, Some(JobIdRange { start: 3, end: 25 }));
        // Without minJobId the range starts after the committed offset.
        let Judgement::Failed { range, .. } = judge(&entry("25", None), &status("19", "19")) else {
            panic!("lost")
        };
        assert_eq!(range, Some(JobIdRange { start: 20, end: 25 }));
        // Nothing committed yet: the range starts at the lowest job id.
        let Judgement::Failed { range, .. } = judge(&entry("25", Some(3)), &status("", "")) else {
            panic!("lost")
        };
        assert_eq!(range, Some(JobIdRange { start: 3, end: 25 }));
    }
}
