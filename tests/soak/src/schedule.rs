//! What a soak run does, as data: the batches a router sends and the faults injected between and within
//! them, with proptest strategies that generate (and shrink) them and a readable rendering for reports.

use std::fmt;

use proptest::{collection::vec, prelude::*};
use serde::{Deserialize, Serialize};

/// The tables events go to. `USERS` is the table whose duplicates the manager does not count.
pub const TABLES: [&str; 3] = ["TRACKS", "PAGES", "USERS"];

/// When committed rows appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommitMode {
    /// Commit lag 0: rows commit during the insert call (unless commits are stalled).
    Immediate,
    /// A lag of an hour: rows commit only when the soak flushes, from the batch's `flush_at` poll on, so a
    /// restart or an invalid channel before that loses them.
    Flushed,
}

/// One soak run: manager settings, then the batches in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// When rows commit.
    pub commit: CommitMode,
    /// Tables the manager sets up and inserts at once (1 keeps the order of faulted calls deterministic).
    pub table_concurrency: usize,
    /// Channel ids per bulk status request.
    pub bulk_status_batch: usize,
    /// The batches.
    pub batches: Vec<BatchPlan>,
}

/// One batch: new events (the router adds the jobs that failed earlier in front of them), and faults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPlan {
    /// New events, in file order.
    pub events: Vec<EventPlan>,
    /// A line that makes the whole batch abort, if any.
    pub bad_line: Option<BadLine>,
    /// The router holds the failed jobs back this time (it retries them later, while new jobs go on), so a
    /// retried job may come after newer jobs of its table have committed.
    #[serde(default)]
    pub defer_retries: bool,
    /// The router hands the manager the job id of the batch's last new event but its line is missing from
    /// the file: the job must come back failed, not lost.
    #[serde(default)]
    pub missing_line: bool,
    /// Seconds the router waits before sending the batch (the manager's clock moves on; the auth backoff
    /// may run out).
    pub wait_secs: u32,
    /// With [`CommitMode::Flushed`]: the poll before which buffered rows are committed (and every poll
    /// after it). Polls after that point move the clock towards the stuck threshold.
    pub flush_at: u8,
    /// Faults, each at its point of the batch.
    pub faults: Vec<Timed>,
}

/// A line that aborts the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BadLine {
    /// Not JSON at all (no job id can be read from it).
    NotJson,
    /// A valid event whose line is longer than the maximum line length.
    TooLong,
}

/// A new event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPlan {
    /// Index into [`TABLES`].
    pub table: u8,
    /// Its `ID` is `u<id>`: a small range, so IDs repeat.
    pub id: u8,
    /// What is special about it.
    pub kind: EventKind,
}

/// What an event carries besides the base columns (`ID`, `RECEIVED_AT`, `MARK`, `N`, `UUID_TS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// Only the base columns.
    Plain,
    /// Also column `C<k>` in its own type (`k % 4`: string, int, float, boolean): a new column the first
    /// time it shows up in a table.
    NewColumn(u8),
    /// A column in a type other than the table's: `0` sends `N` as a string, `k > 0` sends `C<k>` in the
    /// next type over. Discarded or converted depending on the table's type.
    Mismatch(u8),
    /// `N` and every `C<k>` in a type other than their own: up to six discard rows from one event, so a
    /// batch's discards take more than one insert.
    ManyMismatches,
    /// Column `J`, always declared `json`, holding an object or an array.
    Json,
    /// A `PAD` string bringing the row close to the insert size limit.
    NearLimit,
    /// A `PAD` string taking the row over the insert size limit: always aborted.
    OverLimit,
}

/// A fault and when it is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timed {
    /// When.
    pub at: At,
    /// What.
    pub fault: Fault,
}

/// A point in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum At {
    /// Before the upload (before any insert).
    BeforeUpload,
    /// After the upload returned, before the first poll (after the inserts).
    AfterUpload,
    /// Before poll `n` (0 is the first poll).
    BeforePoll(u8),
    /// Right after the batch's `n`-th call to the service or the SQL API was answered, wherever that falls
    /// in the upload or the polls (between two tables' inserts, between the discards and the rows...). The
    /// fault is injected from another task as soon as the call is logged, so it lands before the next call
    /// in all but rare races: replays of these are nearly, not strictly, deterministic.
    AfterCall(u8),
}

/// An endpoint a fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ep {
    /// Opening channels.
    CreateChannel,
    /// Deleting channels.
    DeleteChannel,
    /// Inserting rows.
    Insert,
    /// Single channel status.
    Status,
    /// Bulk status.
    BulkStatus,
    /// The SQL API.
    Statements,
}

/// A channel a fault targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// The current channel of `TABLES[i]`.
    Table(u8),
    /// The discards channel.
    Discards,
}

/// A fault injected through the emulator's control handle (or the manager's clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// Service restart: channel ids forgotten, uncommitted rows lost.
    Restart,
    /// The target's current channel turns invalid.
    Invalidate(Target),
    /// Bulk status calls invalid channels valid (single status tells the truth), or stops doing so.
    BulkStatusLie(bool),
    /// Commits of the target's channel (or of all, `None`) stop.
    Stall(Option<Target>),
    /// Every stall lifted.
    Resume,
    /// The next `count` calls answer `status` (5xx or 429); the client retries 3 times, so 4 or more
    /// outlast one call's retry budget.
    ServerErrors {
        /// Which endpoint.
        ep: Ep,
        /// How many calls.
        count: u8,
        /// The status.
        status: u16,
    },
    /// The next `count` calls lose their answer, the request applied or not.
    DropResponse {
        /// Which endpoint.
        ep: Ep,
        /// How many calls.
        count: u8,
        /// Whether the request took effect.
        applied: bool,
    },
    /// The next `count` SQL API calls answer 401 (a refused token), then it works again.
    AuthDdl(u8),
    /// The next `count` channel openings answer `ERR_AUTHENTICATION_FAILED`, then it works again.
    AuthChannel(u8),
    /// The next channel opening answers an unknown code with Snowflake HTTP 400: abort-kind.
    RefuseChannel,
    /// The next SQL API call answers 422 (SQL compilation error): abort-kind.
    InvalidSql,
    /// Answers of an endpoint are delayed (below the client's timeout).
    Latency {
        /// Which endpoint.
        ep: Ep,
        /// Delay in milliseconds.
        millis: u16,
    },
    /// Scripted failures, drops, latencies and the lie removed (stalls stay).
    Clear,
    /// The manager's process restarts: a new manager (no channel cache, no poll state; the same state
    /// store, as the command's state directory) carries on with the import in flight. Not injected after a
    /// call (it would cut a call short).
    RestartManager,
    /// A second manager of the same destination and instance (another process on the same host, sharing
    /// the state store) uploads a batch of its own right after this batch's upload, before this batch is
    /// polled; its import is polled once this batch's completes. Always played right after the upload,
    /// wherever it is scheduled.
    OverlappingUpload,
    /// A channel reopened while this is on leaves its superseded id committing its buffered rows after the
    /// reopen (as the sidecar's SDK may).
    SupersededFlush(bool),
    /// The next insert reaches the service only after this long (more than the client's timeout): the
    /// client gives up, may reopen, and the request lands after it.
    InTransit {
        /// The delay in milliseconds.
        millis: u16,
    },
    /// The target's committed token is rewritten by hand (`SYSTEM$SNOWPIPE_STREAMING_UPDATE_CHANNEL_OFFSET_TOKEN`).
    RewriteToken(Target),
    /// The target's channel is dropped by hand (or expires): its committed token is gone.
    DropChannelName(Target),
}

impl Fault {
    /// Whether this fault can make the manager abort jobs (an abort-kind cause).
    pub fn is_abort_kind(self) -> bool {
        matches!(self, Self::RefuseChannel | Self::InvalidSql)
    }

    /// Whether this fault lets rows land after their jobs were judged failed in a way the manager cannot
    /// see (the token it judges by is rewritten or erased, or a superseded channel commits late): the
    /// duplicates that follow are counted by cause, not as violations.
    pub fn hides_commits(self) -> bool {
        matches!(
            self,
            Self::SupersededFlush(true) | Self::RewriteToken(_) | Self::DropChannelName(_)
        )
    }
}

fn table_name(table: u8) -> &'static str {
    TABLES[usize::from(table) % TABLES.len()]
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Table(t) => f.write_str(table_name(*t)),
            Self::Discards => f.write_str("RUDDER_DISCARDS"),
        }
    }
}

impl fmt::Display for Ep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CreateChannel => "create channel",
            Self::DeleteChannel => "delete channel",
            Self::Insert => "insert",
            Self::Status => "status",
            Self::BulkStatus => "bulk status",
            Self::Statements => "SQL API",
        })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Restart => write!(f, "restart the service"),
            Self::Invalidate(target) => write!(f, "invalidate the {target} channel"),
            Self::BulkStatusLie(true) => write!(f, "bulk status starts lying"),
            Self::BulkStatusLie(false) => write!(f, "bulk status stops lying"),
            Self::Stall(Some(target)) => write!(f, "stall commits of the {target} channel"),
            Self::Stall(None) => write!(f, "stall every commit"),
            Self::Resume => write!(f, "resume commits"),
            Self::ServerErrors { ep, count, status } => {
                write!(f, "next {count} {ep} calls answer HTTP {status}")
            }
            Self::DropResponse { ep, count, applied } => write!(
                f,
                "next {count} {ep} answers lost ({})",
                if *applied { "applied" } else { "not applied" }
            ),
            Self::AuthDdl(n) => write!(f, "next {n} SQL API calls refuse the token (401)"),
            Self::AuthChannel(n) => {
                write!(
                    f,
                    "next {n} channel openings fail ERR_AUTHENTICATION_FAILED"
                )
            }
            Self::RefuseChannel => write!(f, "next channel opening refused with HTTP 400"),
            Self::InvalidSql => write!(f, "next SQL API call is a compilation error (422)"),
            Self::Latency { ep, millis } => write!(f, "{ep} answers {millis} ms late"),
            Self::Clear => write!(f, "clear scripted faults"),
            Self::RestartManager => write!(f, "restart the manager"),
            Self::OverlappingUpload => write!(f, "a second manager uploads a batch of its own"),
            Self::SupersededFlush(true) => write!(f, "superseded channels keep flushing"),
            Self::SupersededFlush(false) => write!(f, "superseded channels stop flushing"),
            Self::InTransit { millis } => write!(f, "the next insert lands {millis} ms late"),
            Self::RewriteToken(target) => {
                write!(f, "rewrite the {target} channel's committed token")
            }
            Self::DropChannelName(target) => write!(f, "drop the {target} channel by hand"),
        }
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BeforeUpload => f.write_str("before upload"),
            Self::AfterUpload => f.write_str("after upload"),
            Self::BeforePoll(n) => write!(f, "before poll {}", u32::from(*n) + 1),
            Self::AfterCall(n) => write!(f, "after call {n}"),
        }
    }
}

impl fmt::Display for EventPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = table_name(self.table);
        match self.kind {
            EventKind::Plain => write!(f, "{table}(u{})", self.id),
            EventKind::NewColumn(k) => write!(f, "{table}(u{} +C{k})", self.id),
            EventKind::Mismatch(0) => write!(f, "{table}(u{} N as string)", self.id),
            EventKind::Mismatch(k) => write!(f, "{table}(u{} C{k} mistyped)", self.id),
            EventKind::ManyMismatches => write!(f, "{table}(u{} all mistyped)", self.id),
            EventKind::Json => write!(f, "{table}(u{} json)", self.id),
            EventKind::NearLimit => write!(f, "{table}(u{} near limit)", self.id),
            EventKind::OverLimit => write!(f, "{table}(u{} over limit)", self.id),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "commit {:?}, {} table(s) at once, bulk status by {}",
            self.commit, self.table_concurrency, self.bulk_status_batch
        )?;
        for (i, batch) in self.batches.iter().enumerate() {
            let events: Vec<String> = batch.events.iter().map(ToString::to_string).collect();
            write!(f, "  batch {}: ", i + 1)?;
            if batch.wait_secs > 0 {
                write!(f, "after {} s, ", batch.wait_secs)?;
            }
            if batch.missing_line {
                write!(f, "(last new line missing) ")?;
            }
            if batch.defer_retries {
                write!(f, "[{}] (failed jobs held back)", events.join(", "))?;
            } else {
                write!(f, "failed jobs again + [{}]", events.join(", "))?;
            }
            if let Some(bad) = batch.bad_line {
                write!(f, " + bad line ({bad:?})")?;
            }
            if self.commit == CommitMode::Flushed {
                write!(f, ", flush before poll {}", u32::from(batch.flush_at) + 1)?;
            }
            writeln!(f)?;
            for timed in &batch.faults {
                writeln!(f, "    {}: {}", timed.at, timed.fault)?;
            }
        }
        write!(
            f,
            "  then faults stop: failed jobs are sent again until none is left"
        )
    }
}

fn ep() -> impl Strategy<Value = Ep> {
    prop_oneof![
        3 => Just(Ep::Insert),
        2 => Just(Ep::CreateChannel),
        2 => Just(Ep::BulkStatus),
        1 => Just(Ep::Status),
        1 => Just(Ep::DeleteChannel),
        1 => Just(Ep::Statements),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        4 => (0..3u8).prop_map(Target::Table),
        1 => Just(Target::Discards),
    ]
}

/// Any fault, weighted towards the common ones.
pub fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::Restart),
        2 => target().prop_map(Fault::Invalidate),
        1 => any::<bool>().prop_map(Fault::BulkStatusLie),
        2 => prop::option::weighted(0.7, target()).prop_map(Fault::Stall),
        2 => Just(Fault::Resume),
        4 => (ep(), 1..=10u8, prop::sample::select(vec![500u16, 502, 503, 429]))
            .prop_map(|(ep, count, status)| Fault::ServerErrors { ep, count, status }),
        4 => (ep(), 1..=2u8, any::<bool>())
            .prop_map(|(ep, count, applied)| Fault::DropResponse { ep, count, applied }),
        1 => (1..=3u8).prop_map(Fault::AuthDdl),
        1 => (1..=3u8).prop_map(Fault::AuthChannel),
        1 => Just(Fault::RefuseChannel),
        1 => Just(Fault::InvalidSql),
        1 => (ep(), 1..=150u16).prop_map(|(ep, millis)| Fault::Latency { ep, millis }),
        1 => Just(Fault::Clear),
        2 => Just(Fault::RestartManager),
        2 => Just(Fault::OverlappingUpload),
        1 => any::<bool>().prop_map(Fault::SupersededFlush),
        1 => (1100..1400u16).prop_map(|millis| Fault::InTransit { millis }),
        1 => target().prop_map(Fault::RewriteToken),
        1 => target().prop_map(Fault::DropChannelName),
    ]
}

fn at() -> impl Strategy<Value = At> {
    prop_oneof![
        3 => Just(At::BeforeUpload),
        3 => Just(At::AfterUpload),
        2 => (0..4u8).prop_map(At::BeforePoll),
        3 => (1..16u8).prop_map(At::AfterCall),
    ]
}

fn event_kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        10 => Just(EventKind::Plain),
        3 => (0..6u8).prop_map(EventKind::NewColumn),
        3 => (0..6u8).prop_map(EventKind::Mismatch),
        1 => Just(EventKind::ManyMismatches),
        1 => Just(EventKind::Json),
        2 => Just(EventKind::NearLimit),
        1 => Just(EventKind::OverLimit),
    ]
}

fn event() -> impl Strategy<Value = EventPlan> {
    let table = prop_oneof![5 => Just(0u8), 3 => Just(1u8), 2 => Just(2u8)];
    (table, 0..6u8, event_kind()).prop_map(|(table, id, kind)| EventPlan { table, id, kind })
}

fn batch() -> impl Strategy<Value = BatchPlan> {
    (
        vec(event(), 0..12),
        prop::option::weighted(
            0.02,
            prop_oneof![Just(BadLine::NotJson), Just(BadLine::TooLong)],
        ),
        (prop::bool::weighted(0.25), prop::bool::weighted(0.05)),
        prop_oneof![6 => Just(0u32), 2 => 1..5u32, 1 => Just(7200u32)],
        0..3u8,
        vec(
            (at(), fault()).prop_map(|(at, fault)| Timed { at, fault }),
            0..4,
        ),
    )
        .prop_map(
            |(events, bad_line, (defer_retries, missing_line), wait_secs, flush_at, faults)| {
                BatchPlan {
                    events,
                    bad_line,
                    defer_retries,
                    missing_line,
                    wait_secs,
                    flush_at,
                    faults,
                }
            },
        )
}

/// A whole schedule: 1 to 16 batches.
pub fn schedule() -> impl Strategy<Value = Schedule> {
    (
        prop_oneof![Just(CommitMode::Immediate), Just(CommitMode::Flushed)],
        prop_oneof![Just(1usize), Just(4usize)],
        prop_oneof![Just(100usize), Just(1usize), Just(2usize)],
        vec(batch(), 1..17),
    )
        .prop_map(
            |(commit, table_concurrency, bulk_status_batch, batches)| Schedule {
                commit,
                table_concurrency,
                bulk_status_batch,
                batches,
            },
        )
}
