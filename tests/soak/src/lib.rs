//! The fault soak: random schedules of batches and faults, run against an in-process emulator and the real
//! manager over HTTP, on either backend (the sidecar protocol or Snowflake's REST API, each with its own
//! faults), prove that no job is lost, none is double-counted and no row lands twice outside named windows.
//!
//! A [`Schedule`] is a list of batches as a batch router sends them (several tables, new columns, type
//! mismatches, events near and over a small insert size limit, repeated `ID`s; the jobs that failed before
//! go again with their old job ids, aborted ones never) with faults injected through the emulator at points
//! of each batch (before and after the upload, between polls). After the last batch the faults stop and the
//! failed jobs are sent again until none is left. After every batch and at the end, [`run_schedule`] checks:
//!
//! 1. conservation: every job of a batch is in exactly one of succeeded, failed and aborted;
//! 2. no false success: a succeeded job's row (found by its `MARK`) is committed in its table;
//! 3. no false success: a succeeded job's discard rows are committed too (they commit before its rows go
//!    out);
//! 4. no duplicates: no row is committed more often than once plus the times its job failed with the
//!    manager saying it could not tell whether the rows had landed (undecidable, counted by cause) or the
//!    manager died mid-upload (a named window), and no discard row more often than its job was sent; a
//!    window of the whole schedule (REST: an append held in transit past a reopen, at most the rows held)
//!    explains the rest or it is a violation; every extra copy is counted by its cause ([`CAUSES`]);
//! 5. liveness: once the faults stop, every failed job succeeds within a bounded number of batches;
//! 6. aborted only for an abort-kind cause (an oversized event, a bad line, a 400 or an invalid statement,
//!    rows Snowflake rejected at commit), and every job whose row Snowflake rejected (found by its `MARK`
//!    in the rows the emulator kept) aborted with the service's reason, unless the manager failed it saying
//!    its row might have landed;
//! 7. the manager never panics, no upload or poll outlives its bound and no batch makes unbounded calls.
//!
//! Schedules come from proptest strategies seeded by one number each ([`schedule_for_seed`]); a failing one
//! is shrunk ([`shrink`]) and reported with its seed, its readable steps and the one-line test that
//! replays it ([`assert_seed`], [`assert_schedule`]).

pub mod events;
mod runner;
pub mod schedule;
mod shrink;

use std::time::{Duration, Instant};

use proptest::{
    strategy::{Strategy, ValueTree},
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};

pub use runner::{CAUSES, Outcome, describe_cause, run_schedule};
pub use schedule::{Backend, Options, Schedule};

/// The seed the CI-size soak uses unless `SOAK_SEED` says otherwise.
pub const DEFAULT_SEED: u64 = 0x5EED_0008;

/// The seed of schedule `index` of a soak seeded with `seed` (splitmix64, so neighbours differ).
pub fn schedule_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn tree_for_seed(backend: Backend, seed: u64) -> Box<dyn ValueTree<Value = Schedule>> {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&schedule_seed(seed, i as u64).to_le_bytes());
    }
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    );
    let never = "the schedule strategy never rejects";
    match backend {
        Backend::Sidecar => Box::new(schedule::schedule().new_tree(&mut runner).expect(never)),
        Backend::Rest => Box::new(
            schedule::rest_schedule()
                .new_tree(&mut runner)
                .expect(never),
        ),
    }
}

/// The sidecar schedule a seed stands for.
pub fn schedule_for_seed(seed: u64) -> Schedule {
    schedule_for(Backend::Sidecar, Options::default(), seed)
}

/// The schedule a seed stands for on a backend, as the options allow it.
pub fn schedule_for(backend: Backend, options: Options, seed: u64) -> Schedule {
    options.apply(tree_for_seed(backend, seed).current())
}

/// A schedule that broke an invariant: its seed, what broke, and the smallest schedule found that still
/// breaks one.
#[derive(Debug, Clone)]
pub struct Failing {
    /// The backend.
    pub backend: Backend,
    /// The options the schedule was generated with.
    pub options: Options,
    /// The schedule's seed.
    pub seed: u64,
    /// The violations of the original schedule.
    pub violations: Vec<String>,
    /// The shrunk schedule.
    pub shrunk: Schedule,
    /// The violations of the shrunk schedule.
    pub shrunk_violations: Vec<String>,
    /// Runs spent shrinking.
    pub shrink_runs: usize,
}

impl std::fmt::Display for Failing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "FAILED schedule on {}, seed {:#x}{}:",
            self.backend,
            self.seed,
            if self.options.rejected_rows {
                ""
            } else {
                " (without rows rejected at commit)"
            }
        )?;
        for v in &self.violations {
            writeln!(f, "  - {v}")?;
        }
        writeln!(f, "shrunk in {} runs to:", self.shrink_runs)?;
        writeln!(f, "{}", self.shrunk)?;
        writeln!(f, "which breaks:")?;
        for v in &self.shrunk_violations {
            writeln!(f, "  - {v}")?;
        }
        writeln!(
            f,
            "replay the original: #[tokio::test] async fn seed_{:x}() {{ snowpipe_soak::assert_seed_with(Backend::{:?}, Options {{ rejected_rows: {} }}, {:#x}).await }}",
            self.seed, self.backend, self.options.rejected_rows, self.seed
        )?;
        let json = serde_json::to_string(&self.shrunk).unwrap_or_default();
        write!(
            f,
            "replay the shrunk one: #[tokio::test] async fn shrunk_{:x}() {{ snowpipe_soak::assert_schedule(r#\"{json}\"#).await }}",
            self.seed
        )
    }
}

/// Shrinks a failing schedule within `budget` runs: first the way proptest does (simplify while it still
/// fails, complicate back when it stops failing), then greedily, one simplification at a time.
async fn shrink(
    backend: Backend,
    options: Options,
    seed: u64,
    budget: usize,
    deadline: Instant,
) -> (Schedule, Vec<String>, usize) {
    let mut tree = tree_for_seed(backend, seed);
    let mut best = options.apply(tree.current());
    let mut best_violations = run_schedule(&best).await.violations;
    let mut runs = 1;
    let mut last_failed = true;
    while runs < budget / 2 && Instant::now() < deadline {
        let moved = if last_failed {
            tree.simplify()
        } else {
            tree.complicate()
        };
        if !moved {
            break;
        }
        let candidate = options.apply(tree.current());
        let outcome = run_schedule(&candidate).await;
        runs += 1;
        last_failed = !outcome.violations.is_empty();
        if last_failed {
            best = candidate;
            best_violations = outcome.violations;
        }
    }
    'greedy: loop {
        for candidate in shrink::candidates(&best) {
            if runs >= budget || Instant::now() >= deadline {
                break 'greedy;
            }
            let outcome = run_schedule(&candidate).await;
            runs += 1;
            if !outcome.violations.is_empty() {
                best = candidate;
                best_violations = outcome.violations;
                continue 'greedy;
            }
        }
        break;
    }
    (best, best_violations, runs)
}

/// Totals of a soak run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The backend the schedules ran on.
    pub backend: Backend,
    /// Schedules run.
    pub schedules: usize,
    /// Faults injected.
    pub faults: usize,
    /// Rows committed more than once, by cause (see [`Outcome::duplicates_by_cause`]).
    pub duplicates_by_cause: std::collections::BTreeMap<&'static str, usize>,
    /// How often interesting things happened, over all schedules.
    pub coverage: std::collections::BTreeMap<&'static str, usize>,
    /// Violations (of the original schedules, before shrinking).
    pub violations: usize,
    /// The failing schedules.
    pub failing: Vec<Failing>,
}

impl Summary {
    /// Every duplicate row, whatever its cause.
    pub fn duplicates(&self) -> usize {
        self.duplicates_by_cause.values().sum()
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "soak: {} schedules on {}, {} faults injected, {} duplicates ({}), {} violations",
            self.schedules,
            self.backend,
            self.faults,
            self.duplicates(),
            by_cause(&self.duplicates_by_cause),
            self.violations
        )
    }
}

/// `by cause: a 3, b 1`, or `none` when there are none.
pub fn by_cause(duplicates: &std::collections::BTreeMap<&'static str, usize>) -> String {
    let causes: Vec<String> = duplicates
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(cause, n)| format!("{cause} {n}"))
        .collect();
    if causes.is_empty() {
        "none".to_owned()
    } else {
        format!("by cause: {}", causes.join(", "))
    }
}

/// A soak run's size and what its schedules hold.
#[derive(Debug, Clone, Copy)]
pub struct SoakConfig {
    /// The backend.
    pub backend: Backend,
    /// What the schedules may hold beyond the default.
    pub options: Options,
    /// How many schedules.
    pub schedules: usize,
    /// The seed every schedule's seed derives from.
    pub seed: u64,
    /// Schedules run at once.
    pub parallel: usize,
    /// Most runs spent shrinking one failing schedule.
    pub shrink_budget: usize,
}

/// Runs the config's schedules, `parallel` at a time, shrinking each failing one (within `shrink_budget`
/// runs) and handing it to `on_failing` as soon as it is known.
pub async fn soak(config: SoakConfig, mut on_failing: impl FnMut(&Failing)) -> Summary {
    let SoakConfig {
        backend,
        options,
        schedules,
        seed,
        parallel,
        shrink_budget,
    } = config;
    let mut summary = Summary {
        backend,
        schedules,
        ..Summary::default()
    };
    let mut running = tokio::task::JoinSet::new();
    let mut next = 0usize;
    let mut failing_seeds = Vec::new();
    loop {
        while next < schedules && running.len() < parallel.max(1) {
            let s = schedule_seed(seed, next as u64);
            next += 1;
            running
                .spawn(async move { (s, run_schedule(&schedule_for(backend, options, s)).await) });
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        let (s, outcome) = done.expect("run_schedule catches panics");
        summary.faults += outcome.faults;
        for (cause, count) in outcome.duplicates_by_cause {
            *summary.duplicates_by_cause.entry(cause).or_default() += count;
        }
        for (what, count) in outcome.coverage {
            *summary.coverage.entry(what).or_default() += count;
        }
        summary.violations += outcome.violations.len();
        if !outcome.violations.is_empty() {
            failing_seeds.push((s, outcome.violations));
        }
    }
    for (s, violations) in failing_seeds {
        let deadline = Instant::now() + Duration::from_secs(120);
        let (shrunk, shrunk_violations, shrink_runs) =
            shrink(backend, options, s, shrink_budget, deadline).await;
        let failing = Failing {
            backend,
            options,
            seed: s,
            violations,
            shrunk,
            shrunk_violations,
            shrink_runs,
        };
        on_failing(&failing);
        summary.failing.push(failing);
    }
    summary
}

/// Replays the sidecar schedule of `seed` and panics with its violations, if any. One line in a test:
/// `#[tokio::test] async fn seed_1f() { snowpipe_soak::assert_seed(0x1f).await }`.
pub async fn assert_seed(seed: u64) {
    assert_seed_with(Backend::Sidecar, Options::default(), seed).await;
}

/// Replays the schedule of `seed` on a backend, generated with `options`, and panics with its violations,
/// if any.
pub async fn assert_seed_with(backend: Backend, options: Options, seed: u64) {
    let schedule = schedule_for(backend, options, seed);
    let outcome = run_schedule(&schedule).await;
    assert!(
        outcome.violations.is_empty(),
        "seed {seed:#x}:\n{schedule}\nviolations:\n  - {}",
        outcome.violations.join("\n  - ")
    );
}

/// Replays a schedule given as the JSON a failure report prints, and panics with its violations, if any.
pub async fn assert_schedule(json: &str) {
    let schedule: Schedule = serde_json::from_str(json).expect("a schedule as a report prints it");
    let outcome = run_schedule(&schedule).await;
    assert!(
        outcome.violations.is_empty(),
        "{schedule}\nviolations:\n  - {}",
        outcome.violations.join("\n  - ")
    );
}
