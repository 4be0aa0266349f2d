//! Runs one schedule against an in-process emulator and the real manager over HTTP, as a batch router would,
//! and checks the invariants after every batch and at the end.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    future::Future,
    io::Write as _,
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use serde_json::Value;
use snowpipe_api::{HttpConfig, RetryConfig};
use snowpipe_channels::{Clock, ManualClock};
use snowpipe_e2e::{World, clocked::connect_with_clock};
use snowpipe_emulator::{Control, DropMode, Endpoint, Failure, demo};
use snowpipe_manager::{Connection, Manager, Settings, UploadOutput};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    events::{self, Job, MAX_INSERT_BYTES, MAX_LINE_BYTES},
    schedule::{
        At, BadLine, BatchPlan, CommitMode, Ep, EventKind, EventPlan, Fault, Schedule, TABLES,
        Target,
    },
};

/// The stuck threshold the soak's manager runs with (on its own clock, which the soak moves).
const STUCK_THRESHOLD: Duration = Duration::from_secs(60);
/// Polls of one import before the soak gives up on it (a violation).
const MAX_POLLS: u8 = 16;
/// The client's timeout for one attempt of a call.
const HTTP_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest any one upload or poll may take.
const CALL_BOUND: Duration = Duration::from_secs(30);
/// The most service and SQL API calls one batch may make.
const MAX_CALLS_PER_BATCH: usize = 400;
/// The discards table.
const DISCARDS: &str = "RUDDER_DISCARDS";

/// What one schedule came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Faults injected.
    pub faults: usize,
    /// Rows committed more than once where the behaviour page allows it, each attributed to its cause.
    pub allowed_duplicates: usize,
    /// Rows committed more than once after their job failed in a way the behaviour page makes a failure
    /// although the rows may have landed (poll cannot reopen a lost or invalid channel; an insert whose
    /// answer was lost cannot be resolved): a gap in the contract, reported apart from violations.
    pub contract_duplicates: usize,
    /// [`Outcome::contract_duplicates`] by the failure that let them happen.
    pub contract_duplicates_by_cause: BTreeMap<&'static str, usize>,
    /// Discard rows missing for succeeded jobs because the discards entry of their import failed: the
    /// contract judges jobs by their table's entry only, so these are reported, not violations.
    pub lost_discards: usize,
    /// Succeeded jobs whose rows are not in their table, where the import's offset for the table was not
    /// above the table's committed offset before the upload: offsets cannot tell whether such an insert
    /// landed, and the contract calls it succeeded (reported apart from violations).
    pub unverifiable_successes: usize,
    /// Discard rows missing for succeeded jobs where the discards entry (or the table's) could not be judged
    /// by offsets, as with [`Outcome::unverifiable_successes`].
    pub unverifiable_discards: usize,
    /// Broken invariants, each a readable line.
    pub violations: Vec<String>,
    /// How often interesting things happened, to see what a soak exercised.
    pub coverage: BTreeMap<&'static str, usize>,
}

/// Where a job stands with the router.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Failed (or not yet sent): sent again in the next batch.
    Pending,
    /// Reported succeeded.
    Succeeded,
    /// Reported aborted, with the reason.
    Aborted(String),
}

#[derive(Debug)]
struct Entry {
    job: Job,
    state: State,
    /// Uploads that carried the job.
    sends: u32,
    /// Times the job came back failed as stuck (its rows may commit later: an allowed duplicate).
    stuck_failures: u32,
    /// Times the job failed although its rows may have landed, as the contract has it (see
    /// [`Outcome::contract_duplicates`]).
    contract_failures: u32,
    /// Why, for those failures (the first one names the cause of a duplicate).
    landed_causes: Vec<&'static str>,
    /// The line was too long to read.
    too_long: bool,
    /// Its line was left out of the file it was last sent in.
    line_missing: bool,
    /// It succeeded in an import whose discards entry failed.
    discards_entry_failed: bool,
    /// It succeeded in an import whose offset for its table was not above the table's committed offset
    /// before the upload (see [`Outcome::unverifiable_successes`]).
    unverifiable: bool,
    /// The same for the discards entry of that import.
    discards_unverifiable: bool,
    /// Every failure reason, in order, for reports.
    history: Vec<String>,
}

/// One job's outcome in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Succeeded,
    Failed(String),
    Aborted(String),
}

struct Run {
    world: World,
    manager: Manager,
    settings: Settings,
    connection: Connection,
    clock: Arc<ManualClock>,
    commit: CommitMode,
    jobs: BTreeMap<i64, Entry>,
    /// Jobs in the order the router holds them (failed ones go again first).
    next_job_id: i64,
    abort_faults: bool,
    committed_high: HashMap<String, i64>,
    tracing: bool,
    outcome: Outcome,
    reported: BTreeSet<String>,
    file_count: usize,
}

fn endpoint(ep: Ep) -> Endpoint {
    match ep {
        Ep::CreateChannel => Endpoint::CreateChannel,
        Ep::DeleteChannel => Endpoint::DeleteChannel,
        Ep::Insert => Endpoint::Insert,
        Ep::Status => Endpoint::Status,
        Ep::BulkStatus => Endpoint::BulkStatus,
        Ep::Statements => Endpoint::Statements,
    }
}

/// Runs a schedule and answers what it came to. Never panics on a manager panic: that is a violation.
pub async fn run_schedule(schedule: &Schedule) -> Outcome {
    let schedule = schedule.clone();
    match tokio::spawn(async move { run_inner(&schedule).await }).await {
        Ok(outcome) => outcome,
        Err(error) => Outcome {
            violations: vec![format!("the manager (or the soak) panicked: {error}")],
            ..Outcome::default()
        },
    }
}

async fn run_inner(schedule: &Schedule) -> Outcome {
    let mut run = Run::start(schedule).await;
    for (n, batch) in schedule.batches.iter().enumerate() {
        run.batch(n + 1, batch).await;
    }
    run.quiesce(schedule.batches.len()).await;
    run.world.emulator.shutdown().await;
    run.outcome
}

impl Run {
    async fn start(schedule: &Schedule) -> Self {
        let world = World::start().await;
        if schedule.commit == CommitMode::Flushed {
            world.control.set_commit_lag(Duration::from_secs(3600));
        }
        let mut connection = world.connection();
        connection.service = HttpConfig {
            base_url: world.emulator.base_url(),
            timeout: HTTP_TIMEOUT,
            connect_timeout: Duration::from_secs(1),
            retry: RetryConfig {
                max_retries: 3,
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(4),
                jitter: false,
                ..RetryConfig::default()
            },
            ..HttpConfig::default()
        };
        let clock = Arc::new(ManualClock::new(std::time::SystemTime::now()));
        let settings = Settings {
            max_line_bytes: MAX_LINE_BYTES,
            max_insert_request_bytes: MAX_INSERT_BYTES,
            bulk_status_batch_size: schedule.bulk_status_batch,
            stuck_threshold: STUCK_THRESHOLD,
            table_concurrency: schedule.table_concurrency,
            ..Settings::default()
        };
        let manager = connect(&world, &settings, &connection, &clock);
        Self {
            world,
            manager,
            settings,
            connection,
            clock,
            commit: schedule.commit,
            jobs: BTreeMap::new(),
            next_job_id: 1000,
            abort_faults: false,
            committed_high: HashMap::new(),
            tracing: std::env::var_os("SOAK_TRACE").is_some(),
            outcome: Outcome::default(),
            reported: BTreeSet::new(),
            file_count: 0,
        }
    }

    /// A new manager over the same emulator, clock and settings, as after a process restart.
    fn connect(&self) -> Manager {
        connect(&self.world, &self.settings, &self.connection, &self.clock)
    }

    fn violation(&mut self, key: String, text: String) {
        if self.reported.insert(key) {
            self.outcome.violations.push(text);
        }
    }

    fn inject(&mut self, fault: Fault) {
        self.trace(|| format!("inject: {fault}"));
        if fault == Fault::RestartManager {
            self.manager = self.connect();
        }
        apply(&self.world.control, fault);
        self.injected(fault);
    }

    fn injected(&mut self, fault: Fault) {
        if fault.is_abort_kind() {
            self.abort_faults = true;
        }
        self.outcome.faults += 1;
    }

    fn inject_at(&mut self, batch: &BatchPlan, at: At) {
        for timed in batch.faults.iter().filter(|t| t.at == at) {
            self.inject(timed.fault);
        }
    }

    /// The jobs that failed before, in job id order, then the batch's new events.
    fn compose(&mut self, plan: &BatchPlan) -> (PathBuf, Vec<i64>) {
        let mut ids: Vec<i64> = if plan.defer_retries {
            Vec::new()
        } else {
            self.jobs
                .iter()
                .filter(|(_, e)| e.state == State::Pending)
                .map(|(id, _)| *id)
                .collect()
        };
        for event in &plan.events {
            self.next_job_id += 1 + i64::from(event.id % 2);
            let job = events::job(self.next_job_id, *event);
            ids.push(job.id);
            self.jobs.insert(job.id, Entry::new(job, false));
        }
        let missing = plan
            .missing_line
            .then(|| plan.events.last().map(|_| self.next_job_id))
            .flatten();
        let mut lines: Vec<String> = ids
            .iter()
            .filter(|id| Some(**id) != missing)
            .map(|id| self.jobs[id].job.line.clone())
            .collect();
        if let Some(id) = missing
            && let Some(entry) = self.jobs.get_mut(&id)
        {
            entry.line_missing = true;
        }
        match plan.bad_line {
            Some(BadLine::NotJson) => lines.insert(lines.len() / 2, "{not json".to_owned()),
            Some(BadLine::TooLong) => {
                self.next_job_id += 1;
                let plan = EventPlan {
                    table: 0,
                    id: 0,
                    kind: EventKind::Plain,
                };
                let job = events::job(self.next_job_id, plan);
                lines.insert(lines.len() / 2, events::too_long_line(&job));
                ids.push(job.id);
                self.jobs.insert(job.id, Entry::new(job, true));
            }
            None => {}
        }
        self.file_count += 1;
        let path = self
            .world
            .dir
            .path()
            .join(format!("batch-{}.jsonl", self.file_count));
        let mut file = std::fs::File::create(&path).expect("create the event file");
        for line in &lines {
            writeln!(file, "{line}").expect("write the event file");
        }
        for id in &ids {
            if let Some(entry) = self.jobs.get_mut(id) {
                entry.sends += 1;
            }
        }
        (path, ids)
    }

    /// With `SOAK_TRACE` set, tells what happens, for replaying a failing schedule by hand.
    #[allow(clippy::print_stderr)]
    fn trace(&self, what: impl FnOnce() -> String) {
        if self.tracing {
            eprintln!("soak: {}", what());
        }
    }

    fn count(&mut self, what: &'static str) {
        *self.outcome.coverage.entry(what).or_default() += 1;
    }

    /// Each table's committed offset, as far as the soak has seen it: the greatest over its channels, now
    /// and at every earlier look (a restart hides channels, but Snowflake keeps a channel name's committed
    /// offset, and it never goes back).
    fn committed_offsets(&mut self) -> HashMap<String, i64> {
        for channel in self.world.control.channels() {
            if let Ok(offset) = channel.committed_offset.parse::<i64>() {
                let slot = self.committed_high.entry(channel.table).or_insert(i64::MIN);
                *slot = (*slot).max(offset);
            }
        }
        self.committed_high.clone()
    }

    fn overran(&mut self, n: usize, what: &str) {
        self.violation(
            format!("bound {n} {what}"),
            format!("batch {n}: {what} took longer than {CALL_BOUND:?}"),
        );
    }

    async fn batch(&mut self, n: usize, plan: &BatchPlan) {
        self.world.control.clear_calls();
        self.clock
            .advance(Duration::from_secs(plan.wait_secs.into()));
        self.inject_at(plan, At::BeforeUpload);
        let mut waiters = tokio::task::JoinSet::new();
        for timed in &plan.faults {
            if let At::AfterCall(k) = timed.at
                && timed.fault != Fault::RestartManager
            {
                let (control, fault) = (self.world.control.clone(), timed.fault);
                waiters.spawn(async move {
                    let fired = control.wait_for_calls(k.into()).await;
                    if fired {
                        apply(&control, fault);
                    }
                    fired.then_some(fault)
                });
            }
        }
        let (file, ids) = self.compose(plan);
        let committed_before = self.committed_offsets();
        for id in &ids {
            let entry = &self.jobs[id];
            if entry.sends > 1
                && committed_before
                    .get(entry.job.table)
                    .is_some_and(|c| *c >= *id)
            {
                self.count("retried job at or below its table's committed offset");
            }
        }
        let Some(upload) = bounded(self.manager.upload(&file, &ids)).await else {
            self.overran(n, "upload");
            return self.give_up(&ids, "the upload did not return");
        };
        self.trace(|| format!("batch {n}: sent {ids:?}; upload: importing {:?}, failed {:?}, aborted {:?}, reasons {:?}, import id {}", upload.importing_job_ids, upload.failed_job_ids, upload.aborted_job_ids, upload.reasons, serde_json::to_string(&upload.importing_parameters).unwrap_or_default()));
        self.inject_at(plan, At::AfterUpload);
        let mut verdicts: BTreeMap<i64, Verdict> = BTreeMap::new();
        self.check_upload(n, &ids, &upload);
        for id in &upload.failed_job_ids {
            verdicts.insert(*id, Verdict::Failed(reason(&upload, *id)));
        }
        for id in &upload.aborted_job_ids {
            verdicts.insert(*id, Verdict::Aborted(reason(&upload, *id)));
        }
        let mut discards_failed = false;
        if let Some(params) = &upload.importing_parameters {
            let import_id = serde_json::to_value(&params.import_id).expect("import id serialises");
            let mut complete = None;
            for i in 0..MAX_POLLS {
                self.inject_at(plan, At::BeforePoll(i));
                let flush_at = if self.commit == CommitMode::Flushed {
                    plan.flush_at
                } else {
                    0
                };
                if self.commit == CommitMode::Flushed && i >= flush_at {
                    self.world.control.flush();
                }
                if i > flush_at {
                    // The router keeps polling while time passes: past the threshold, stuck imports fail.
                    self.clock
                        .advance(STUCK_THRESHOLD / 3 + Duration::from_secs(1));
                }
                let Some(poll) = bounded(self.manager.poll(&import_id)).await else {
                    self.overran(n, "poll");
                    break;
                };
                self.trace(|| format!("poll {}: {poll:?}", i + 1));
                if poll.complete {
                    complete = Some(poll);
                    break;
                }
            }
            let Some(poll) = complete else {
                self.violation(
                    format!("poll {n}"),
                    format!("batch {n}: the import was not complete after {MAX_POLLS} polls"),
                );
                return self.give_up(&upload.importing_job_ids, "the import never completed");
            };
            if poll.status_code != 200 {
                self.violation(
                    format!("poll status {n}"),
                    format!(
                        "batch {n}: poll answered {}: {}",
                        poll.status_code, poll.error
                    ),
                );
            }
            let params = poll.failed_job_parameters.unwrap_or(import_id);
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
            discards_failed = params.as_array().is_some_and(|entries| {
                entries
                    .iter()
                    .any(|e| e["table"] == DISCARDS && e["failed"] == Value::Bool(true))
            });
            let importing: Vec<(i64, String)> = upload
                .importing_job_ids
                .iter()
                .map(|id| {
                    (
                        *id,
                        self.jobs.get(id).map_or("", |e| e.job.table).to_owned(),
                    )
                })
                .collect();
            let stats = self.manager.upload_stats(&params, &importing);
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
            for id in &stats.metadata.succeeded_keys {
                verdicts.insert(*id, Verdict::Succeeded);
            }
            for id in &stats.metadata.failed_keys {
                let why = stats
                    .metadata
                    .failed_reasons
                    .get(id)
                    .cloned()
                    .unwrap_or_default();
                verdicts.insert(*id, Verdict::Failed(why));
            }
        }
        waiters.abort_all();
        while let Some(done) = waiters.join_next().await {
            if let Ok(Some(fault)) = done {
                self.trace(|| format!("injected after a call: {fault}"));
                self.injected(fault);
            }
        }
        let calls = self.world.control.calls().len();
        if calls > MAX_CALLS_PER_BATCH {
            self.violation(
                format!("calls {n}"),
                format!("batch {n}: {calls} calls to the service and SQL API (bound {MAX_CALLS_PER_BATCH})"),
            );
        }
        let offsets: HashMap<String, i64> = upload
            .importing_parameters
            .iter()
            .flat_map(|p| &p.import_id)
            .filter_map(|e| Some((e.table.clone(), e.offset.parse().ok()?)))
            .collect();
        let unverifiable: BTreeSet<String> = offsets
            .iter()
            .filter(|(table, offset)| {
                committed_before
                    .get(table.as_str())
                    .is_some_and(|c| c >= *offset)
            })
            .map(|(table, _)| table.clone())
            .collect();
        for (id, verdict) in &verdicts {
            let entry = &self.jobs[id];
            let below = entry.sends > 1
                && committed_before
                    .get(entry.job.table)
                    .is_some_and(|c| *c >= *id);
            if below {
                self.count(match verdict {
                    Verdict::Failed(why) if why.contains("were lost") => {
                        "retried job below the committed offset: lost again"
                    }
                    Verdict::Failed(_) => "retried job below the committed offset: failed",
                    Verdict::Succeeded if unverifiable.contains(entry.job.table) => {
                        "retried job below the committed offset: succeeded unverifiably"
                    }
                    Verdict::Succeeded => "retried job below the committed offset: succeeded",
                    Verdict::Aborted(_) => "retried job below the committed offset: aborted",
                });
            }
        }
        self.trace(|| {
            format!(
                "batch {n}: verdicts {verdicts:?}; channels {:?}",
                self.world.control.channels()
            )
        });
        self.record(n, plan, &verdicts, discards_failed, &unverifiable);
        self.check_rows(n, false);
        self.committed_offsets();
    }

    /// A call that never returned (already a violation): its jobs stay with the router, to be sent again,
    /// and rows that land twice because of it are not reported a second time.
    fn give_up(&mut self, ids: &[i64], why: &str) {
        for id in ids {
            if let Some(entry) = self.jobs.get_mut(id) {
                entry.history.push(why.to_owned());
                entry.contract_failures += 1;
                entry.landed_causes.push("the soak gave up on the call");
            }
        }
    }

    fn check_upload(&mut self, n: usize, ids: &[i64], upload: &UploadOutput) {
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

    fn record(
        &mut self,
        n: usize,
        plan: &BatchPlan,
        verdicts: &BTreeMap<i64, Verdict>,
        discards_failed: bool,
        unverifiable: &BTreeSet<String>,
    ) {
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
            if line_missing && !matches!(verdict, Verdict::Failed(_)) && plan.bad_line.is_none() {
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
                    entry.discards_entry_failed = discards_failed;
                    entry.unverifiable = unverifiable.contains(entry.job.table);
                    entry.discards_unverifiable = unverifiable.contains(DISCARDS);
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
                    if why.starts_with("stuck") {
                        entry.stuck_failures += 1;
                    } else if let Some(cause) = may_have_landed(why) {
                        entry.contract_failures += 1;
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
                    } else if plan.bad_line.is_some() && why.contains("line") {
                        Some("bad line")
                    } else if abort_faults
                        && (why.contains("injected fault")
                            || why.contains("rejected the statement"))
                    {
                        Some("abort-kind service or SQL answer")
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

    /// Committed rows by table, then by marker.
    fn committed(&self) -> HashMap<&'static str, HashMap<String, usize>> {
        let mut out = HashMap::new();
        for table in TABLES {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for row in self.world.rows(table) {
                let mark = row["MARK"].as_str().unwrap_or("<no MARK>").to_owned();
                *counts.entry(mark).or_default() += 1;
            }
            out.insert(table, counts);
        }
        out
    }

    fn check_rows(&mut self, n: usize, last: bool) {
        let committed = self.committed();
        let mut violations = Vec::new();
        let mut known = BTreeSet::new();
        let mut allowed = 0;
        let mut by_cause: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut unverifiable = 0;
        let mut pending_unverified = 0;
        for (id, entry) in &self.jobs {
            let mark = entry.job.mark();
            let copies = committed[entry.job.table].get(&mark).copied().unwrap_or(0);
            known.insert((entry.job.table, mark));
            if entry.state == State::Succeeded && copies == 0 && entry.unverifiable {
                if last {
                    unverifiable += 1;
                } else {
                    pending_unverified += 1;
                }
            } else if entry.state == State::Succeeded && copies == 0 {
                violations.push((
                    format!("false success {id}"),
                    format!("batch {n}: false success: job {id} was reported succeeded but its row is not in {} ({})", entry.job.table, entry.history.join(" | ")),
                ));
            }
            let (stuck, gap) = (
                entry.stuck_failures as usize,
                entry.contract_failures as usize,
            );
            if copies > 1 + stuck + gap {
                violations.push((
                    format!("duplicate {id}"),
                    format!(
                        "batch {n}: duplicate: job {id}'s row is in {} {copies} times (sent {} times, failed as stuck {stuck} times, failed while its rows may have landed {gap} times) ({})",
                        entry.job.table, entry.sends, entry.history.join(" | ")
                    ),
                ));
            } else if last && copies > 1 {
                let extra = copies - 1;
                allowed += extra.min(stuck);
                let gap = extra - extra.min(stuck);
                if gap > 0 {
                    let cause = entry.landed_causes.first().copied().unwrap_or("?");
                    *by_cause.entry(cause).or_default() += gap;
                }
            }
            if last && copies > 0 && entry.state != State::Succeeded && stuck + gap == 0 {
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
        if pending_unverified > 0 {
            *self
                .outcome
                .coverage
                .entry("succeeded unverifiably before the rows committed (checked at the end)")
                .or_default() += pending_unverified;
        }
        if last {
            self.outcome.allowed_duplicates += allowed;
            for (cause, count) in by_cause {
                self.outcome.contract_duplicates += count;
                *self
                    .outcome
                    .contract_duplicates_by_cause
                    .entry(cause)
                    .or_default() += count;
            }
            self.outcome.unverifiable_successes += unverifiable;
            self.check_discards(n, &mut violations);
        }
        for (key, text) in violations {
            self.violation(key, text);
        }
    }

    /// Discard rows, at the end: each succeeded job's are there (unless its import's discards entry failed),
    /// none more often than the job was sent, and none that no job explains.
    fn check_discards(&mut self, n: usize, violations: &mut Vec<(String, String)>) {
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
        let mut allowed = 0;
        let mut lost = 0;
        let mut unverifiable = 0;
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
                    if entry.discards_entry_failed {
                        lost += 1;
                    } else if entry.discards_unverifiable || entry.unverifiable {
                        unverifiable += 1;
                    } else {
                        violations.push((
                            format!("discard lost {id} {column}"),
                            format!("end: job {id} succeeded but its discard row for {table}.{column} ({declared} into {actual}) is missing ({})", entry.history.join(" | ")),
                        ));
                    }
                }
                if copies > entry.sends as usize {
                    violations.push((
                        format!("discard dup {id} {column}"),
                        format!("end: the discard row of job {id} for {table}.{column} is there {copies} times, the job was sent {} times", entry.sends),
                    ));
                } else if copies > 1 {
                    allowed += copies - 1;
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
        self.outcome.allowed_duplicates += allowed;
        self.outcome.lost_discards += lost;
        self.outcome.unverifiable_discards += unverifiable;
    }

    /// Faults stop: failed jobs are sent again until none is left, within a bounded number of batches.
    async fn quiesce(&mut self, batches: usize) {
        let control = self.world.control.clone();
        control.clear_faults();
        control.resume_commits(None);
        self.clock.advance(Duration::from_secs(2 * 3600));
        control.flush();
        let pending = |run: &Self| {
            run.jobs
                .values()
                .filter(|e| e.state == State::Pending)
                .count()
        };
        let bound = 3 + pending(self);
        let quiet = BatchPlan {
            events: Vec::new(),
            bad_line: None,
            defer_retries: false,
            missing_line: false,
            wait_secs: 0,
            flush_at: 0,
            faults: Vec::new(),
        };
        let mut n = batches;
        for _ in 0..bound {
            if pending(self) == 0 {
                break;
            }
            n += 1;
            self.batch(n, &quiet).await;
        }
        let left: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, e)| e.state == State::Pending)
            .map(|(id, e)| format!("{id} ({})", e.history.last().map_or("", String::as_str)))
            .collect();
        if !left.is_empty() {
            self.violation(
                "liveness".to_owned(),
                format!("liveness: {} job(s) still failing {bound} batches after the faults stopped: {}", left.len(), left.join("; ")),
            );
        }
        // Rows of stalled channels that were failed as stuck may commit now: allowed duplicates.
        control.resume_commits(None);
        control.flush();
        self.check_rows(n, true);
    }
}

impl Entry {
    fn new(job: Job, too_long: bool) -> Self {
        Self {
            job,
            state: State::Pending,
            sends: 0,
            stuck_failures: 0,
            contract_failures: 0,
            landed_causes: Vec::new(),
            too_long,
            line_missing: false,
            discards_entry_failed: false,
            unverifiable: false,
            discards_unverifiable: false,
            history: Vec::new(),
        }
    }
}

fn reason(upload: &UploadOutput, id: i64) -> String {
    upload.reasons.get(&id).cloned().unwrap_or_default()
}

/// A manager over HTTP to the emulator, on the soak's clock.
fn connect(
    world: &World,
    settings: &Settings,
    connection: &Connection,
    clock: &Arc<ManualClock>,
) -> Manager {
    connect_with_clock(
        &world.destination(),
        settings.clone(),
        connection.clone(),
        Arc::clone(clock) as Arc<dyn Clock>,
    )
    .expect("the manager connects")
}

/// The call's answer, or `None` when it outlived [`CALL_BOUND`].
async fn bounded<T>(call: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(CALL_BOUND, call).await.ok()
}

/// Whether a failure reason is one where the contract fails the jobs although their rows may have landed:
/// poll could not reopen a lost or invalid channel or read its status ("failure to do so fails the entry"),
/// or an insert's answer was lost and whether it went in could not be told.
fn may_have_landed(reason: &str) -> Option<&'static str> {
    [
        (
            "reopening the channel of table",
            "poll could not reopen a lost or invalid channel",
        ),
        (
            "the status of the reopened channel",
            "poll could not read a reopened channel's status",
        ),
        (
            "and its status is unknown",
            "an insert's answer was lost and the channel's status could not be read",
        ),
        (
            "whether the rows went in cannot be told",
            "an insert's answer was lost and the offsets could not tell",
        ),
    ]
    .into_iter()
    .find(|(needle, _)| reason.contains(needle))
    .map(|(_, cause)| cause)
}

/// Injects a fault through the control handle.
fn apply(control: &Control, fault: Fault) {
    match fault {
        Fault::Restart => control.restart(),
        Fault::Invalidate(target) => {
            if let Some(id) = current_channel(control, target) {
                control.invalidate_channel(&id);
            }
        }
        Fault::BulkStatusLie(on) => control.set_bulk_status_lie(on),
        Fault::Stall(Some(target)) => {
            if let Some(id) = current_channel(control, target) {
                control.stall_commits(Some(&id));
            }
        }
        Fault::Stall(None) => {
            control.stall_commits(None);
        }
        Fault::Resume => {
            control.resume_commits(None);
        }
        Fault::ServerErrors { ep, count, status } => {
            control.fail_next(endpoint(ep), count.into(), Failure::Status { status });
        }
        Fault::DropResponse { ep, count, applied } => {
            let mode = if applied {
                DropMode::Applied
            } else {
                DropMode::NotApplied
            };
            control.drop_next(endpoint(ep), count.into(), mode);
        }
        Fault::AuthDdl(count) => {
            control.fail_next(
                Endpoint::Statements,
                count.into(),
                Failure::Status { status: 401 },
            );
        }
        Fault::AuthChannel(count) => control.fail_next(
            Endpoint::CreateChannel,
            count.into(),
            Failure::ChannelCode {
                code: "ERR_AUTHENTICATION_FAILED".into(),
                http_code: 401,
            },
        ),
        Fault::RefuseChannel => control.fail_next(
            Endpoint::CreateChannel,
            1,
            Failure::ChannelCode {
                code: "ERR_TABLE_NAME_INVALID".into(),
                http_code: 400,
            },
        ),
        Fault::InvalidSql => {
            control.fail_next(Endpoint::Statements, 1, Failure::Status { status: 422 });
        }
        Fault::Latency { ep, millis } => {
            control.set_latency(endpoint(ep), Duration::from_millis(millis.into()));
        }
        Fault::Clear => control.clear_faults(),
        // The soak swaps the manager itself (see `Run::inject`).
        Fault::RestartManager => {}
    }
}

/// The newest valid channel of the target's table.
fn current_channel(control: &Control, target: Target) -> Option<String> {
    let table = match target {
        Target::Table(t) => TABLES[usize::from(t) % TABLES.len()],
        Target::Discards => DISCARDS,
    };
    control
        .channels()
        .into_iter()
        .filter(|c| c.table == table && c.valid && !c.deleted)
        .map(|c| c.channel_id)
        .max()
}
