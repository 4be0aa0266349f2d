//! Runs one schedule against an in-process emulator and the real manager over HTTP, as a batch router would,
//! and checks the invariants after every batch and at the end.

mod checks;
mod inject;

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    io::Write as _,
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use serde_json::Value;
use snowpipe_e2e::{Which, World};
use snowpipe_manager::{
    BackendConfig, Clock, Connection, FailedJobParameters, HttpConfig, ImportId, Manager,
    ManualClock, MemoryState, PollOutput, RestOptions, RetryConfig, Settings, StateStore,
    UploadOutput,
};

use self::inject::Injector;
use crate::{
    events::{self, Job, MAX_INSERT_BYTES, MAX_LINE_BYTES},
    schedule::{
        At, Backend, BadLine, BatchPlan, CommitMode, EventKind, EventPlan, Fault, Schedule,
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
/// How long, in the manager's waits, a REST open waits for an earlier writer's uncommitted rows.
const UNCOMMITTED_WAIT: Duration = Duration::from_secs(2);

/// The causes of duplicate rows the soak allows, each counted apart: a short label (on the soak's last line)
/// and what it means. A job's row may land once more per failure whose reason names one of the first six
/// (the manager could not tell whether the rows had landed, and said so), or per mid-upload death of the
/// manager; the last three are windows of a whole schedule, bounded where they can be.
pub const CAUSES: [(&str, &str); 11] = [
    (
        "two-writers",
        "undecidable: another writer opened the channel at the same time",
    ),
    (
        "list-too-short",
        "undecidable: the channel was opened more times since than its committed token remembers",
    ),
    (
        "foreign-token",
        "undecidable: the committed token is not one this manager wrote",
    ),
    (
        "token-went-back",
        "undecidable: the committed token went back (rewritten, or the channel dropped and created anew)",
    ),
    (
        "old-import-id",
        "undecidable: an import id of the old scheme",
    ),
    (
        "reopen-impossible",
        "undecidable: the channel could not be reopened for twice the stuck threshold",
    ),
    (
        "died-mid-upload",
        "named window: the manager's process died after appending, before the router had the import id, so the router sent the batch again",
    ),
    (
        "soak-gave-up",
        "the soak gave up on a call that never returned (already a violation)",
    ),
    (
        "discards-again",
        "discard rows written again with their retried job (the behaviour page's rule: discards before rows)",
    ),
    (
        "held-in-transit",
        "named window (REST, trap 11): an append whose answer was lost stayed in transit past the reopen that settled it and landed after it, beside its resent rows; at most the rows held",
    ),
    (
        "behind-the-back",
        "sidecar: a fault that commits behind the manager's back (a superseded channel flushing late, a token rewritten or a channel dropped by hand)",
    ),
];

/// What a cause's label means.
pub fn describe_cause(label: &str) -> &'static str {
    CAUSES
        .iter()
        .find(|(l, _)| *l == label)
        .map_or("(unknown cause)", |(_, text)| text)
}

/// The window of a whole schedule a fault opens, if any: duplicates then count under it (bounded where the
/// soak can bound them) instead of as violations.
fn window(backend: Backend, fault: Fault) -> Option<&'static str> {
    match (backend, fault) {
        (Backend::Sidecar, fault) if fault.hides_commits() => Some("behind-the-back"),
        (Backend::Rest, Fault::HoldAppend(_)) => Some("held-in-transit"),
        _ => None,
    }
}

/// What one schedule came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Faults injected.
    pub faults: usize,
    /// Rows (and discard rows) committed more than once, by the cause that allows it (a label of
    /// [`CAUSES`]).
    pub duplicates_by_cause: BTreeMap<&'static str, usize>,
    /// Broken invariants, each a readable line.
    pub violations: Vec<String>,
    /// How often interesting things happened, to see what a soak exercised.
    pub coverage: BTreeMap<&'static str, usize>,
}

impl Outcome {
    /// Every duplicate row, whatever its cause.
    pub fn duplicates(&self) -> usize {
        self.duplicates_by_cause.values().sum()
    }
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
    /// Failures after which the job's rows may have landed, each with its cause (see
    /// [`Outcome::duplicates_by_cause`]): each allows one more copy of its row.
    landed_causes: Vec<&'static str>,
    /// The line was too long to read.
    too_long: bool,
    /// Its line was left out of the file it was last sent in.
    line_missing: bool,
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
    backend: Backend,
    injector: Injector,
    manager: Manager,
    settings: Settings,
    connection: Connection,
    clock: Arc<ManualClock>,
    commit: CommitMode,
    /// Every job sent, by id (failed ones go again first, in id order).
    jobs: BTreeMap<i64, Entry>,
    /// The last job id handed out.
    next_job_id: i64,
    /// An abort-kind fault was injected: aborts naming it are expected.
    abort_faults: bool,
    /// Rows were rejected at commit ([`Fault::RejectRows`]): aborts naming the service's rejection are
    /// expected.
    rejection_faults: bool,
    /// Windows of the whole schedule opened by its faults (see [`window`]).
    windows: BTreeSet<&'static str>,
    /// Imports of overlapping uploads (a second manager's), polled after their batch's.
    overlapping: Vec<(Manager, UploadOutput, Vec<i64>)>,
    /// `SOAK_TRACE` is set.
    tracing: bool,
    outcome: Outcome,
    reported: BTreeSet<String>,
    file_count: usize,
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
    let missed = run.injector.ledger().missed;
    if missed > 0 {
        *run.outcome
            .coverage
            .entry("REST faults with nothing to act on (no channel yet)")
            .or_default() += missed;
    }
    run.world.emulator.shutdown().await;
    run.outcome
}

impl Run {
    async fn start(schedule: &Schedule) -> Self {
        let world = World::start_on(match schedule.backend {
            Backend::Sidecar => Which::Sidecar,
            Backend::Rest => Which::Rest,
        })
        .await;
        if schedule.commit == CommitMode::Flushed {
            world.control.set_commit_lag(Duration::from_secs(3600));
        }
        // Every manager of the run shares one state store, as processes on one host share the command's
        // state directory.
        let mut connection = world.connection();
        connection.state = Some(Arc::new(MemoryState::default()) as Arc<dyn StateStore>);
        let sleep = Arc::new(TimePasses {
            control: world.control.clone(),
            flush: schedule.commit == CommitMode::Flushed,
        });
        let retry = RetryConfig {
            max_retries: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            jitter: false,
            ..RetryConfig::default()
        };
        let injector = Injector::new(
            world.control.clone(),
            schedule.backend,
            &world.emulator.base_url(),
            Arc::clone(&sleep),
        );
        connection.backend = match schedule.backend {
            Backend::Sidecar => BackendConfig::Sidecar(HttpConfig {
                base_url: world.emulator.base_url(),
                timeout: HTTP_TIMEOUT,
                connect_timeout: Duration::from_secs(1),
                retry,
                sleep,
                ..HttpConfig::default()
            }),
            Backend::Rest => {
                let mut options = RestOptions::default();
                options.timeout = HTTP_TIMEOUT;
                options.connect_timeout = Duration::from_secs(1);
                options.retry = retry;
                options.uncommitted_wait = UNCOMMITTED_WAIT;
                options.sleep = sleep;
                BackendConfig::Rest(options)
            }
        };
        let clock = Arc::new(ManualClock::new(std::time::SystemTime::now()));
        let settings = Settings {
            max_line_bytes: MAX_LINE_BYTES,
            max_insert_request_bytes: MAX_INSERT_BYTES,
            bulk_status_batch_size: schedule.bulk_status_batch,
            stuck_threshold: STUCK_THRESHOLD,
            table_concurrency: schedule.table_concurrency,
            // One knob for both, so a schedule with one table at a time replays exactly.
            channel_concurrency: schedule.table_concurrency,
            discards_commit_wait: Duration::from_secs(2),
            reopen_wait: Duration::from_secs(1),
            lost_answer_margin: Duration::from_millis(20),
            ..Settings::default()
        };
        let manager = connect(&world, &settings, &connection, &clock);
        Self {
            world,
            backend: schedule.backend,
            injector,
            manager,
            settings,
            connection,
            clock,
            commit: schedule.commit,
            jobs: BTreeMap::new(),
            next_job_id: 1000,
            abort_faults: false,
            rejection_faults: false,
            windows: BTreeSet::new(),
            overlapping: Vec::new(),
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

    fn overran(&mut self, n: usize, what: &str) {
        self.violation(
            format!("bound {n} {what}"),
            format!("batch {n}: {what} took longer than {CALL_BOUND:?}"),
        );
    }

    /// One batch: faults before the upload, the upload, faults after it, polls until the import is complete
    /// (with faults between them), upload stats, then the checks.
    async fn batch(&mut self, n: usize, plan: &BatchPlan) {
        self.world.control.clear_calls();
        self.clock
            .advance(Duration::from_secs(plan.wait_secs.into()));
        self.inject_at(plan, At::BeforeUpload).await;
        let waiters = self.arm_after_call_faults(plan);
        let (file, ids) = self.compose(plan);
        let kill = plan.faults.iter().find_map(|t| match (t.at, t.fault) {
            (At::AfterCall(k), Fault::KillMidUpload) => Some(k),
            _ => None,
        });
        let upload = match kill {
            None => bounded(self.manager.upload(&file, &ids)).await,
            Some(k) => {
                let control = self.world.control.clone();
                tokio::select! {
                    biased;
                    upload = bounded(self.manager.upload(&file, &ids)) => upload,
                    _ = control.wait_for_calls(k.into()) => {
                        return self.died_mid_upload(n, &ids, waiters).await;
                    }
                }
            }
        };
        let Some(upload) = upload else {
            self.overran(n, "upload");
            return self.give_up(&ids, "the upload did not return");
        };
        self.trace(|| {
            format!(
                "batch {n}: sent {ids:?}; upload: importing {:?}, failed {:?}, aborted {:?}, reasons {:?}, import id {}",
                upload.importing_job_ids,
                upload.failed_job_ids,
                upload.aborted_job_ids,
                upload.reasons,
                serde_json::to_string(&upload.importing_parameters).unwrap_or_default()
            )
        });
        self.inject_at(plan, At::AfterUpload).await;
        self.check_upload(n, &ids, &upload);
        if plan
            .faults
            .iter()
            .any(|t| t.fault == Fault::OverlappingUpload)
        {
            self.overlapping_upload(n).await;
        }
        let mut verdicts: BTreeMap<i64, Verdict> = BTreeMap::new();
        for id in &upload.failed_job_ids {
            verdicts.insert(*id, Verdict::Failed(reason(&upload, *id)));
        }
        for id in &upload.aborted_job_ids {
            verdicts.insert(*id, Verdict::Aborted(reason(&upload, *id)));
        }
        if let Some(params) = &upload.importing_parameters {
            let import_id = params.import_id.clone();
            let Some(poll) = self.poll_until_complete(n, plan, &import_id).await else {
                return self.give_up(&upload.importing_job_ids, "the import never completed");
            };
            let params = serde_json::to_value(
                poll.failed_job_parameters
                    .clone()
                    .unwrap_or_else(|| FailedJobParameters::from(import_id)),
            )
            .expect("failed job parameters serialise");
            self.check_poll(n, &poll, &params);
            verdicts.extend(self.stats(n, &upload, &params));
        }
        self.collect(waiters).await;
        let calls = self.world.control.calls().len();
        if calls > MAX_CALLS_PER_BATCH {
            self.violation(
                format!("calls {n}"),
                format!("batch {n}: {calls} calls to the service and SQL API (bound {MAX_CALLS_PER_BATCH})"),
            );
        }
        self.trace(|| format!("batch {n}: verdicts {verdicts:?}; calls: {}", self.calls()));
        self.record(n, plan.bad_line.is_some(), &verdicts);
        self.poll_overlapping(n).await;
        self.check_rows(n, false);
    }

    /// Faults injected after a call, once the batch is done: counted, and the waits for calls that never came
    /// ended.
    async fn collect(&mut self, mut waiters: tokio::task::JoinSet<Option<Fault>>) {
        waiters.abort_all();
        while let Some(done) = waiters.join_next().await {
            if let Ok(Some(fault)) = done {
                self.trace(|| format!("injected after a call: {fault}"));
                self.injected(fault);
            }
        }
    }

    /// The manager's process died right after the batch's `k`-th call, in the middle of the upload: the router
    /// never heard of the upload and sends every job again; rows appended before the death may land twice (the
    /// named window), once per death.
    async fn died_mid_upload(
        &mut self,
        n: usize,
        ids: &[i64],
        waiters: tokio::task::JoinSet<Option<Fault>>,
    ) {
        self.trace(|| {
            format!(
                "batch {n}: the manager dies mid-upload; calls: {}",
                self.calls()
            )
        });
        self.count("manager died mid-upload");
        self.injected(Fault::KillMidUpload);
        self.manager = self.connect();
        for id in ids {
            if let Some(entry) = self.jobs.get_mut(id) {
                entry
                    .history
                    .push(format!("batch {n}: the manager died mid-upload"));
                entry.landed_causes.push("died-mid-upload");
                entry.line_missing = false;
            }
        }
        self.collect(waiters).await;
        self.check_rows(n, false);
    }

    /// The batch's calls so far, numbered as [`At::AfterCall`] counts them, for traces.
    fn calls(&self) -> String {
        let calls: Vec<String> = self
            .world
            .control
            .calls()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let fault = c.fault.as_deref().map(|f| format!(" ({f})"));
                format!("{} {}{}", i + 1, c.endpoint, fault.unwrap_or_default())
            })
            .collect();
        calls.join(", ")
    }

    /// A second manager (another process of the same destination and instance, sharing the state store)
    /// uploads two new events of its own, right after this batch's upload and before its polls.
    async fn overlapping_upload(&mut self, n: usize) {
        let events = [
            EventPlan {
                table: 0,
                id: 1,
                kind: EventKind::Plain,
            },
            EventPlan {
                table: 1,
                id: 2,
                kind: EventKind::Plain,
            },
        ];
        let plan = BatchPlan {
            events: events.to_vec(),
            bad_line: None,
            defer_retries: true,
            missing_line: false,
            wait_secs: 0,
            flush_at: 0,
            faults: Vec::new(),
        };
        let (file, ids) = self.compose(&plan);
        let other = self.connect();
        let Some(upload) = bounded(other.upload(&file, &ids)).await else {
            self.overran(n, "overlapping upload");
            return self.give_up(&ids, "the overlapping upload did not return");
        };
        self.trace(|| format!("batch {n}: overlapping upload of {ids:?}: {upload:?}"));
        self.check_upload(n, &ids, &upload);
        self.count("overlapping upload");
        self.overlapping.push((other, upload, ids));
    }

    /// Polls the overlapping uploads' imports with their own managers, and records their jobs.
    async fn poll_overlapping(&mut self, n: usize) {
        for (other, upload, _ids) in std::mem::take(&mut self.overlapping) {
            let mut verdicts: BTreeMap<i64, Verdict> = BTreeMap::new();
            for id in &upload.failed_job_ids {
                verdicts.insert(*id, Verdict::Failed(reason(&upload, *id)));
            }
            for id in &upload.aborted_job_ids {
                verdicts.insert(*id, Verdict::Aborted(reason(&upload, *id)));
            }
            if let Some(params) = &upload.importing_parameters {
                let import_id = params.import_id.clone();
                let mut complete = None;
                for _ in 0..MAX_POLLS {
                    if self.commit == CommitMode::Flushed {
                        self.world.control.flush();
                    }
                    self.clock
                        .advance(STUCK_THRESHOLD / 3 + Duration::from_secs(1));
                    let Some(poll) = bounded(other.poll(&import_id)).await else {
                        self.overran(n, "overlapping poll");
                        break;
                    };
                    if poll.complete {
                        complete = Some(poll);
                        break;
                    }
                }
                let Some(poll) = complete else {
                    self.violation(
                        format!("overlapping poll {n}"),
                        format!("batch {n}: the overlapping upload's import was not complete after {MAX_POLLS} polls"),
                    );
                    return self.give_up(
                        &upload.importing_job_ids,
                        "the overlapping import never completed",
                    );
                };
                let params = serde_json::to_value(
                    poll.failed_job_parameters
                        .clone()
                        .unwrap_or_else(|| FailedJobParameters::from(import_id)),
                )
                .expect("failed job parameters serialise");
                self.check_poll(n, &poll, &params);
                verdicts.extend(self.stats(n, &upload, &params));
            }
            self.record(n, false, &verdicts);
        }
    }

    /// Faults to inject right after the batch's n-th call: each waits on the call log in its own task.
    fn arm_after_call_faults(&self, plan: &BatchPlan) -> tokio::task::JoinSet<Option<Fault>> {
        let mut waiters = tokio::task::JoinSet::new();
        for timed in &plan.faults {
            // A restart or a table replaced would cut a call short; a death mid-upload is played by the batch.
            if let At::AfterCall(k) = timed.at
                && !matches!(
                    timed.fault,
                    Fault::RestartManager | Fault::ReplaceTable(_) | Fault::KillMidUpload
                )
            {
                let (injector, fault) = (self.injector.clone(), timed.fault);
                waiters.spawn(async move {
                    let fired = injector.control.wait_for_calls(k.into()).await;
                    if fired {
                        injector.apply(fault).await;
                    }
                    fired.then_some(fault)
                });
            }
        }
        waiters
    }

    /// Polls as a router does until the import is complete, flushing (in [`CommitMode::Flushed`]) from the
    /// batch's flush point on and letting time pass after it; `None` (a violation) when it never completes.
    async fn poll_until_complete(
        &mut self,
        n: usize,
        plan: &BatchPlan,
        import_id: &ImportId,
    ) -> Option<PollOutput> {
        let flush_at = if self.commit == CommitMode::Flushed {
            plan.flush_at
        } else {
            0
        };
        for i in 0..MAX_POLLS {
            self.inject_at(plan, At::BeforePoll(i)).await;
            if self.commit == CommitMode::Flushed && i >= flush_at {
                self.world.control.flush();
            }
            if i > flush_at {
                // The router keeps polling while time passes: past the threshold, stuck imports fail.
                self.clock
                    .advance(STUCK_THRESHOLD / 3 + Duration::from_secs(1));
            }
            let Some(poll) = bounded(self.manager.poll(import_id)).await else {
                self.overran(n, "poll");
                return None;
            };
            self.trace(|| format!("poll {}: {poll:?}", i + 1));
            if poll.complete {
                return Some(poll);
            }
        }
        self.violation(
            format!("poll {n}"),
            format!("batch {n}: the import was not complete after {MAX_POLLS} polls"),
        );
        None
    }

    /// Upload stats for the importing jobs, checked for conservation: each job's verdict.
    fn stats(&mut self, n: usize, upload: &UploadOutput, params: &Value) -> BTreeMap<i64, Verdict> {
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
        let params = FailedJobParameters::decode(params).expect("poll's parameters decode");
        let stats = self.manager.upload_stats(&params, &importing);
        self.check_stats(n, upload, &stats);
        let mut verdicts = BTreeMap::new();
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
        for id in &stats.metadata.aborted_keys {
            let why = stats
                .metadata
                .aborted_reasons
                .get(id)
                .cloned()
                .unwrap_or_default();
            verdicts.insert(*id, Verdict::Aborted(why));
        }
        verdicts
    }

    /// A call that never returned (already a violation): its jobs stay with the router, to be sent again,
    /// and rows that land twice because of it are not reported a second time.
    fn give_up(&mut self, ids: &[i64], why: &str) {
        for id in ids {
            if let Some(entry) = self.jobs.get_mut(id) {
                entry.history.push(why.to_owned());
                entry.landed_causes.push("soak-gave-up");
            }
        }
    }

    /// Faults stop: failed jobs are sent again until none is left, within a bounded number of batches.
    async fn quiesce(&mut self, batches: usize) {
        let control = self.world.control.clone();
        match self.backend {
            Backend::Sidecar => control.clear_faults(),
            Backend::Rest => inject::clear_rest(&control),
        }
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
            landed_causes: Vec::new(),
            too_long,
            line_missing: false,
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
    Manager::connect_with_clock(
        &world.destination(),
        settings.clone(),
        connection.clone(),
        Arc::clone(clock) as Arc<dyn Clock>,
    )
    .expect("the manager connects")
}

/// Time passing while the manager waits (between retries, for rows to commit): it returns at once, and in
/// [`CommitMode::Flushed`] the service commits meanwhile, as it would in that time.
#[derive(Debug)]
struct TimePasses {
    control: snowpipe_emulator::Control,
    flush: bool,
}

impl snowpipe_manager::Sleep for TimePasses {
    fn sleep(&self, _duration: Duration) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        if self.flush {
            self.control.flush();
        }
        Box::pin(tokio::task::yield_now())
    }
}

/// The call's answer, or `None` when it outlived [`CALL_BOUND`].
async fn bounded<T>(call: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(CALL_BOUND, call).await.ok()
}
