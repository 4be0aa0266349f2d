//! The invariants: what upload, poll and upload stats answered, and what is in the tables.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;
use snowpipe_emulator::demo;
use snowpipe_manager::{PollOutput, UploadOutput, UploadStatsOutput};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{DISCARDS, Run, State, Verdict};
use crate::{
    events,
    schedule::{EventKind, TABLES},
};

impl Run {
    /// Poll's flags match its entries.
    pub(super) fn check_poll(&mut self, n: usize, poll: &PollOutput, params: &Value) {
        if poll.status_code != 200 {
            self.violation(
                format!("poll status {n}"),
                format!(
                    "batch {n}: poll answered {}: {}",
                    poll.status_code, poll.error
                ),
            );
        }
        let entries = params.as_array().cloned().unwrap_or_default();
        let failed = |e: &Value| e["failed"] == Value::Bool(true);
        let stuck = entries
            .iter()
            .any(|e| failed(e) && e["reason"].as_str().is_some_and(|r| r.starts_with("stuck")));
        if poll.has_warning != stuck || poll.has_failed != entries.iter().any(failed) {
            self.violation(
                format!("poll flags {n}"),
                format!(
                    "batch {n}: poll said has_failed {} and has_warning {}, but its entries are {params}",
                    poll.has_failed, poll.has_warning
                ),
            );
        }
    }

    /// Upload stats judged every importing job exactly once.
    pub(super) fn check_stats(
        &mut self,
        n: usize,
        upload: &UploadOutput,
        stats: &UploadStatsOutput,
    ) {
        if stats.status_code != 200 {
            self.violation(
                format!("stats status {n}"),
                format!(
                    "batch {n}: upload stats answered {}: {}",
                    stats.status_code, stats.error
                ),
            );
        }
        let mut judged: Vec<i64> = stats
            .metadata
            .succeeded_keys
            .iter()
            .chain(&stats.metadata.failed_keys)
            .chain(&stats.metadata.aborted_keys)
            .copied()
            .collect();
        judged.sort_unstable();
        let mut expected = upload.importing_job_ids.clone();
        expected.sort_unstable();
        if judged != expected {
            self.violation(
                format!("stats conservation {n}"),
                format!("batch {n}: conservation: upload stats judged {judged:?}, the importing jobs were {expected:?}"),
            );
        }
    }

    pub(super) fn check_upload(&mut self, n: usize, ids: &[i64], upload: &UploadOutput) {
        let mut seen: Vec<i64> = upload
            .importing_job_ids
            .iter()
            .chain(&upload.failed_job_ids)
            .chain(&upload.aborted_job_ids)
            .copied()
            .collect();
        seen.sort_unstable();
        let mut expected = ids.to_vec();
        expected.sort_unstable();
        if seen != expected {
            self.violation(
                format!("upload conservation {n}"),
                format!(
                    "batch {n}: conservation: upload answered importing {:?}, failed {:?}, aborted {:?} for jobs {expected:?}",
                    upload.importing_job_ids, upload.failed_job_ids, upload.aborted_job_ids
                ),
            );
        }
    }

    /// Takes in the verdicts of one batch's jobs (`bad_line`: the batch's file held a line that aborts it).
    pub(super) fn record(&mut self, n: usize, bad_line: bool, verdicts: &BTreeMap<i64, Verdict>) {
        for verdict in verdicts.values() {
            self.count(match verdict {
                Verdict::Succeeded => "job succeeded",
                Verdict::Failed(why) if why.starts_with("stuck") => "job failed as stuck",
                Verdict::Failed(why) if why.contains("were lost") => "job failed: rows lost",
                Verdict::Failed(why) if why.contains("insert request limit") => {
                    "job failed: over the size split"
                }
                Verdict::Failed(why) if why.contains("backoff") => "job failed: auth backoff",
                Verdict::Failed(_) => "job failed: other",
                Verdict::Aborted(_) => "job aborted",
            });
        }
        let abort_faults = self.abort_faults;
        let rejection_faults = self.rejection_faults;
        let mut violations = Vec::new();
        for (id, verdict) in verdicts {
            let Some(entry) = self.jobs.get_mut(id) else {
                violations.push((
                    format!("unknown {id}"),
                    format!("batch {n}: the manager reported job {id}, which was never sent"),
                ));
                continue;
            };
            let line_missing = std::mem::take(&mut entry.line_missing);
            let over_limit = entry.job.kind == EventKind::OverLimit && !line_missing;
            if line_missing && !matches!(verdict, Verdict::Failed(_)) && !bad_line {
                violations.push((
                    format!("missing line {id}"),
                    format!("batch {n}: job {id}'s line was not in the file, yet it came out {verdict:?}"),
                ));
            }
            if entry.too_long && !matches!(verdict, Verdict::Aborted(_)) {
                violations.push((format!("too long {id}"), format!("batch {n}: job {id}'s line is over the line limit, yet it was not aborted: {verdict:?}")));
            }
            match verdict {
                Verdict::Succeeded => {
                    entry.state = State::Succeeded;
                    if over_limit {
                        violations.push((
                            format!("over {id}"),
                            format!(
                                "batch {n}: job {id} is over the insert size limit, yet succeeded"
                            ),
                        ));
                    }
                }
                Verdict::Failed(why) => {
                    if let Some(cause) = may_have_landed(why) {
                        entry.landed_causes.push(cause);
                    }
                    entry.history.push(format!("batch {n}: failed: {why}"));
                    if over_limit {
                        violations.push((format!("over {id}"), format!("batch {n}: job {id} is over the insert size limit, yet failed (to be retried): {why}")));
                    }
                }
                Verdict::Aborted(why) => {
                    let cause = if over_limit && why.contains("insert request limit") {
                        Some("oversized event")
                    } else if bad_line && why.contains("line") {
                        Some("bad line")
                    } else if abort_faults
                        && (why.contains("injected fault")
                            || why.contains("rejected the statement"))
                    {
                        Some("abort-kind service or SQL answer")
                    } else if rejection_faults && is_rejection(why) {
                        Some("rows rejected by Snowflake")
                    } else {
                        None
                    };
                    if cause.is_none() {
                        violations.push((
                            format!("abort {id}"),
                            format!(
                                "batch {n}: job {id} aborted without an abort-kind cause: {why}"
                            ),
                        ));
                    }
                    entry.history.push(format!("batch {n}: aborted: {why}"));
                    entry.state = State::Aborted(why.clone());
                }
            }
        }
        for (key, text) in violations {
            self.violation(key, text);
        }
    }

    /// Committed rows by table, then by marker (with the rows of tables replaced since).
    pub(super) fn committed(&self) -> HashMap<&'static str, HashMap<String, usize>> {
        let mut out = HashMap::new();
        let replaced = self.injector.ledger().replaced.clone();
        for table in TABLES {
            let mut counts: HashMap<String, usize> =
                replaced.get(table).cloned().unwrap_or_default();
            for row in self.world.rows(table) {
                let mark = row["MARK"].as_str().unwrap_or("<no MARK>").to_owned();
                *counts.entry(mark).or_default() += 1;
            }
            out.insert(table, counts);
        }
        out
    }

    /// Rows: a succeeded job's row is in its table; no row is there more often than once plus the failures
    /// after which the manager said it could not tell whether the row had landed (counted by cause); a job
    /// not succeeded has no row unless such a failure explains it; no row that no job sent. At the end, the
    /// discard rows too.
    pub(super) fn check_rows(&mut self, n: usize, last: bool) {
        let committed = self.committed();
        let mut violations = Vec::new();
        let mut known = BTreeSet::new();
        let mut by_cause: BTreeMap<&'static str, usize> = BTreeMap::new();
        let windowed = !self.windows.is_empty();
        // Copies beyond what each job's own failures explain: only a window of the schedule may explain them.
        let mut unexplained: Vec<(i64, usize)> = Vec::new();
        for (id, entry) in &self.jobs {
            let mark = entry.job.mark();
            let copies = committed[entry.job.table].get(&mark).copied().unwrap_or(0);
            known.insert((entry.job.table, mark));
            if entry.state == State::Succeeded && copies == 0 {
                violations.push((
                    format!("false success {id}"),
                    format!("batch {n}: false success: job {id} was reported succeeded but its row is not in {} ({})", entry.job.table, entry.history.join(" | ")),
                ));
            }
            let allowed = entry.landed_causes.len();
            let extra = copies.saturating_sub(1 + allowed);
            if extra > 0 {
                unexplained.push((*id, extra));
                if !windowed {
                    violations.push((
                        format!("duplicate {id}"),
                        format!(
                            "batch {n}: duplicate: job {id}'s row is in {} {copies} times (sent {} times, failed {allowed} times in a way that may have landed) ({})",
                            entry.job.table, entry.sends, entry.history.join(" | ")
                        ),
                    ));
                }
            }
            if last && copies > 1 {
                // Each copy beyond the first is counted under the failure that allowed it, in order.
                for cause in entry.landed_causes.iter().take(copies - 1) {
                    *by_cause.entry(cause).or_default() += 1;
                }
            }
            // A job aborted because rows of its request were rejected may still have its own (good) row in.
            let rejected = matches!(&entry.state, State::Aborted(why) if is_rejection(why));
            let explained = allowed > 0 || (rejected && copies == 1);
            if last && copies > 0 && entry.state != State::Succeeded && !explained && !windowed {
                violations.push((
                    format!("unreported {id}"),
                    format!(
                        "batch {n}: job {id} ends {:?} but its row is in {} ({})",
                        entry.state,
                        entry.job.table,
                        entry.history.join(" | ")
                    ),
                ));
            }
        }
        for (table, counts) in &committed {
            for mark in counts.keys() {
                if !known.contains(&(*table, mark.clone())) {
                    violations.push((
                        format!("phantom {table} {mark}"),
                        format!("batch {n}: a row no job sent is in {table}: MARK {mark}"),
                    ));
                }
            }
        }
        let discards_beyond = if last {
            self.check_discards(n, &mut violations)
        } else {
            0
        };
        if windowed {
            let extra = unexplained.iter().map(|(_, e)| e).sum::<usize>() + discards_beyond;
            let bound = self.window_bound();
            if bound.is_some_and(|b| extra > b) {
                let mut jobs: Vec<String> = unexplained
                    .iter()
                    .map(|(id, e)| format!("{id} (+{e})"))
                    .collect();
                if discards_beyond > 0 {
                    jobs.push(format!("{discards_beyond} discard row(s)"));
                }
                violations.push((
                    format!("duplicate beyond windows {n}"),
                    format!(
                        "batch {n}: {extra} duplicate rows, more than the {} the schedule's windows ({}) explain: jobs {}",
                        bound.unwrap_or(0),
                        self.windows.iter().copied().collect::<Vec<_>>().join(", "),
                        jobs.join(", ")
                    ),
                ));
            } else if last && extra > 0 {
                // Counted under the schedule's first window (the windows are listed by label).
                let window = self
                    .windows
                    .iter()
                    .next()
                    .copied()
                    .unwrap_or("behind-the-back");
                *by_cause.entry(window).or_default() += extra;
            }
        }
        if last {
            for (cause, count) in by_cause {
                *self.outcome.duplicates_by_cause.entry(cause).or_default() += count;
            }
            let rejected_rows = self.injector.rejected_rows();
            for row in &rejected_rows {
                let mark = serde_json::from_str::<serde_json::Value>(row)
                    .ok()
                    .and_then(|v| v["MARK"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let Some((id, entry)) = self.jobs.iter().find(|(_, e)| e.job.mark() == mark) else {
                    violations.push((
                        format!("rejected unknown {mark}"),
                        format!("end: Snowflake rejected a row no job sent: {row}"),
                    ));
                    continue;
                };
                let aborted = matches!(&entry.state, State::Aborted(why) if is_rejection(why));
                // A job the manager failed saying its rows may have landed (a lost answer it could not
                // settle, a token it cannot read, a channel gone, its own death mid-upload) was retried, as
                // it must be: the rejection could not be seen from that verdict.
                if !aborted && entry.landed_causes.is_empty() {
                    violations.push((
                        format!("rejected {id}"),
                        format!(
                            "end: Snowflake rejected job {id}'s row at commit, yet the job is {:?}, not aborted naming the rejection ({})",
                            entry.state,
                            entry.history.join(" | ")
                        ),
                    ));
                }
            }
            if !rejected_rows.is_empty() {
                self.count("rows rejected at commit");
            }
            if self.injector.rejected_late_rows() > 0 {
                self.count("rows rejected at commit after landing late");
            }
        }
        for (key, text) in violations {
            self.violation(key, text);
        }
    }

    /// The most duplicate rows the schedule's windows can explain; `None` when one of them has no bound.
    fn window_bound(&self) -> Option<usize> {
        let mut bound = 0;
        for window in &self.windows {
            match *window {
                "held-in-transit" => bound += self.injector.held_rows(),
                _ => return None,
            }
        }
        Some(bound)
    }

    /// Discard rows, at the end: each succeeded job's are there, none more often than the job was sent (a
    /// retried job writes them again: counted as a duplicate of that cause), and none that no job explains.
    /// Answers the discard rows beyond what their jobs' sends explain, in a schedule with a window (without
    /// one they are violations).
    pub(super) fn check_discards(
        &mut self,
        n: usize,
        violations: &mut Vec<(String, String)>,
    ) -> usize {
        // Only an append of discard rows held in transit lands discard rows behind the manager's back.
        let windowed = self.windows.contains("held-in-transit");
        let mut beyond = 0;
        let mut types: HashMap<&'static str, HashMap<String, &'static str>> = HashMap::new();
        for table in TABLES {
            let columns = self
                .world
                .control
                .table(demo::DATABASE, snowpipe_e2e::SCHEMA, table)
                .map(|info| {
                    info.columns
                        .into_iter()
                        .map(|c| (c.name, events::warehouse_type(&c.ty)))
                        .collect()
                })
                .unwrap_or_default();
            types.insert(table, columns);
        }
        let mut rows: HashMap<(String, String, i64), usize> = HashMap::new();
        for row in self.world.rows(DISCARDS) {
            let at = row["RECEIVED_AT"]
                .as_str()
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                .map_or(i64::MIN, |t| t.unix_timestamp());
            let key = (
                row["TABLE_NAME"].as_str().unwrap_or("").to_owned(),
                row["COLUMN_NAME"].as_str().unwrap_or("").to_owned(),
                at,
            );
            *rows.entry(key).or_default() += 1;
        }
        let mut explained = BTreeSet::new();
        let mut again = 0;
        for (id, entry) in &self.jobs {
            let table = entry.job.table;
            for (column, declared) in &entry.job.columns {
                let Some(actual) = types[table].get(column) else {
                    continue;
                };
                if !events::is_discarded(declared, actual) {
                    continue;
                }
                let key = (
                    table.to_owned(),
                    column.clone(),
                    entry.job.received_at.unix_timestamp(),
                );
                let copies = rows.get(&key).copied().unwrap_or(0);
                explained.insert(key);
                if entry.state == State::Succeeded && copies == 0 {
                    violations.push((
                        format!("discard lost {id} {column}"),
                        format!("end: job {id} succeeded but its discard row for {table}.{column} ({declared} into {actual}) is missing ({})", entry.history.join(" | ")),
                    ));
                }
                let sends = entry.sends as usize;
                if copies > sends && windowed {
                    // Only a window of the schedule (an append of discard rows held in transit) explains these.
                    beyond += copies - sends;
                    again += sends.saturating_sub(1);
                } else if copies > sends {
                    violations.push((
                        format!("discard dup {id} {column}"),
                        format!("end: the discard row of job {id} for {table}.{column} is there {copies} times, the job was sent {sends} times"),
                    ));
                } else if copies > 1 {
                    again += copies - 1;
                }
            }
        }
        for key in rows.keys() {
            if !explained.contains(key) {
                violations.push((
                    format!("phantom discard {key:?}"),
                    format!("batch {n}: a discard row no job explains: {key:?}"),
                ));
            }
        }
        if again > 0 {
            *self
                .outcome
                .duplicates_by_cause
                .entry("discards-again")
                .or_default() += again;
        }
        beyond
    }
}

/// Whether an abort's reason names rows Snowflake rejected at commit (with the service's message).
fn is_rejection(reason: &str) -> bool {
    reason.contains("cannot be converted")
}

/// Whether a failure reason says the manager could not tell whether the job's rows landed (and so fails
/// the job, to be retried, knowing its rows may land twice): the cause it names (a label of `CAUSES`).
fn may_have_landed(reason: &str) -> Option<&'static str> {
    [
        (
            "another writer opened the channel at the same time",
            "two-writers",
        ),
        (
            "opened more times since than its committed token remembers",
            "list-too-short",
        ),
        ("not one this manager wrote", "foreign-token"),
        ("committed token went back", "token-went-back"),
        ("import id is of the old scheme", "old-import-id"),
        (
            "could not be reopened to settle its rows",
            "reopen-impossible",
        ),
    ]
    .into_iter()
    .find(|(needle, _)| reason.contains(needle))
    .map(|(_, cause)| cause)
}
