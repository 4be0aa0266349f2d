//! What a soak run does, as data: the batches a router sends and the faults injected between and within
//! them, with proptest strategies that generate (and shrink) them and a readable rendering for reports.

use std::fmt;

use proptest::{collection::vec, prelude::*};
use serde::{Deserialize, Serialize};

/// The tables events go to. `USERS` is the table whose duplicates the manager does not count.
pub const TABLES: [&str; 3] = ["TRACKS", "PAGES", "USERS"];

/// The backend the manager runs on, and so the faults a schedule injects.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The sidecar protocol, with the sidecar's faults.
    #[default]
    Sidecar,
    /// Snowflake's Snowpipe Streaming REST API, with the REST API's faults.
    Rest,
}

impl Backend {
    /// Both, in the order `--backend both` runs them.
    pub const ALL: [Self; 2] = [Self::Rest, Self::Sidecar];

    /// `rest` or `sidecar`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sidecar => "sidecar",
            Self::Rest => "rest",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
    /// The backend (absent in schedules written before there were two: the sidecar).
    #[serde(default)]
    pub backend: Backend,
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
    /// REST: the token exchange (`POST /oauth/token`) on the account host.
    TokenExchange,
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
    /// REST: another opener reopens the target's channel (a reopen by hand, or another client), writing no
    /// token: every continuation token handed out before is stale. With `discard` its uncommitted rows are
    /// thrown away (`fail_on_uncommitted_rows: false`); without, the open waits for them to commit.
    HandReopen {
        /// Whose channel.
        target: Target,
        /// Whether the open discards the uncommitted rows.
        discard: bool,
    },
    /// REST: every scoped token issued so far expires: the ingest host answers them 401 until the client
    /// exchanges a new one.
    ExpireTokens,
    /// REST: the target's next `count` appends answer `429` (nothing taken); the client retries 3 times, so 4
    /// or more outlast one append's retries.
    Throttle {
        /// Whose channel.
        target: Target,
        /// How many appends.
        count: u8,
    },
    /// REST: the next `count` calls of an endpoint answer `status` with an error body of `shape`.
    RestErrors {
        /// Which endpoint.
        ep: Ep,
        /// How many calls.
        count: u8,
        /// The status (5xx or 429).
        status: u16,
        /// How the error body is written.
        shape: Shape,
    },
    /// REST: the next `count` opens answer `409 ERR_OPEN_CHANNEL_IN_PROGRESS` (another open under way).
    OpenInProgress(u8),
    /// REST: the next append is refused `400` with a code other than a stale token (a malformed request):
    /// abort-kind.
    RefuseAppend,
    /// REST: the target's next append is taken but its answer lost, and its rows stay in transit until the
    /// channel's next open, after which they commit (trap 11: an append in transit that commits after the
    /// reopen that settled it).
    HoldAppend(Target),
    /// REST: the next request of the target to commit has rows `first..first + count` rejected at commit, as
    /// Snowflake rejects rows a table changed under the manager can no longer take (`rows_error_count`,
    /// `last_error_offset_upper_bound`). Left out when [`Options::rejected_rows`] is
    /// off.
    RejectRows {
        /// Whose channel.
        target: Target,
        /// The first rejected row, 0-based in the request.
        first: u8,
        /// How many rows.
        count: u8,
    },
    /// REST: status answers show each channel's counters one commit behind its committed token, or stop
    /// doing so.
    CountersLag(bool),
    /// REST: `CREATE OR REPLACE TABLE` of `TABLES[i]` with the same columns: its rows and its channel are
    /// gone (the soak keeps the rows it had, to check against). Never injected after a call.
    ReplaceTable(u8),
    /// The manager's process dies right after the batch's `n`-th call (only [`At::AfterCall`]), in the middle
    /// of the upload: the router never learns the import id and sends every job of the batch again. The
    /// named window of issue 17: rows appended before the death may land twice.
    KillMidUpload,
}

/// How a REST error body is written (the shapes live accounts are seen to answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// `{"code", "message"}`.
    Documented,
    /// `{"error_code"}`.
    ErrorCode,
    /// A bare JSON string.
    BareString,
    /// No body.
    Empty,
    /// An HTML page from a proxy.
    Html,
}

impl Fault {
    /// A short name of the fault's kind, for counts.
    pub fn label(self) -> &'static str {
        match self {
            Self::Restart => "fault: service restart",
            Self::Invalidate(_) => "fault: invalidate",
            Self::BulkStatusLie(_) => "fault: bulk status lie",
            Self::Stall(_) => "fault: stall",
            Self::Resume => "fault: resume",
            Self::ServerErrors { .. } => "fault: server errors",
            Self::DropResponse { applied: true, .. } => "fault: answer lost (applied)",
            Self::DropResponse { applied: false, .. } => "fault: answer lost (not applied)",
            Self::AuthDdl(_) => "fault: SQL API 401",
            Self::AuthChannel(_) => "fault: open refused (auth)",
            Self::RefuseChannel => "fault: open refused (400)",
            Self::InvalidSql => "fault: SQL compilation error",
            Self::Latency { .. } => "fault: latency",
            Self::Clear => "fault: clear",
            Self::RestartManager => "fault: manager restart",
            Self::OverlappingUpload => "fault: overlapping upload",
            Self::SupersededFlush(_) => "fault: superseded flush",
            Self::InTransit { .. } => "fault: insert in transit",
            Self::RewriteToken(_) => "fault: token rewritten by hand",
            Self::DropChannelName(_) => "fault: channel dropped by hand",
            Self::HandReopen { discard: true, .. } => "fault: reopened by hand (discard)",
            Self::HandReopen { discard: false, .. } => "fault: reopened by hand (wait)",
            Self::ExpireTokens => "fault: scoped tokens expire",
            Self::Throttle { .. } => "fault: 429 storm",
            Self::RestErrors { status: 429, .. } => "fault: 429 burst",
            Self::RestErrors { .. } => "fault: 5xx burst",
            Self::OpenInProgress(_) => "fault: open in progress (409)",
            Self::RefuseAppend => "fault: append refused (400)",
            Self::HoldAppend(_) => "fault: append held in transit",
            Self::RejectRows { .. } => "fault: rows rejected at commit",
            Self::CountersLag(_) => "fault: counters lag",
            Self::ReplaceTable(_) => "fault: CREATE OR REPLACE TABLE",
            Self::KillMidUpload => "fault: manager dies mid-upload",
        }
    }

    /// Whether this fault can make the manager abort jobs (an abort-kind cause).
    pub fn is_abort_kind(self) -> bool {
        matches!(
            self,
            Self::RefuseChannel | Self::InvalidSql | Self::RefuseAppend
        )
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
            Self::TokenExchange => "token exchange",
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
            Self::HandReopen { target, discard } => write!(
                f,
                "another opener reopens the {target} channel ({})",
                if *discard {
                    "discarding its uncommitted rows"
                } else {
                    "waiting for its uncommitted rows"
                }
            ),
            Self::ExpireTokens => write!(f, "every scoped token expires"),
            Self::Throttle { target, count } => {
                write!(f, "next {count} appends to the {target} channel answer 429")
            }
            Self::RestErrors {
                ep,
                count,
                status,
                shape,
            } => write!(
                f,
                "next {count} {ep} calls answer HTTP {status} ({shape:?} body)"
            ),
            Self::OpenInProgress(n) => {
                write!(f, "next {n} opens answer 409 ERR_OPEN_CHANNEL_IN_PROGRESS")
            }
            Self::RefuseAppend => write!(f, "next append refused with HTTP 400"),
            Self::HoldAppend(target) => write!(
                f,
                "the next append to the {target} channel is held in transit until the next open"
            ),
            Self::RejectRows {
                target,
                first,
                count,
            } => write!(
                f,
                "the next commit of the {target} channel rejects rows {first}..{}",
                u16::from(*first) + u16::from(*count)
            ),
            Self::CountersLag(true) => write!(f, "status counters start lagging one commit"),
            Self::CountersLag(false) => write!(f, "status counters stop lagging"),
            Self::ReplaceTable(t) => write!(f, "CREATE OR REPLACE TABLE {}", table_name(*t)),
            Self::KillMidUpload => write!(f, "the manager's process dies mid-upload"),
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
            "on {}: commit {:?}, {} table(s) at once, bulk status by {}",
            self.backend, self.commit, self.table_concurrency, self.bulk_status_batch
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
    batch_with((at(), fault()).prop_map(|(at, fault)| Timed { at, fault }))
}

fn batch_with(timed: impl Strategy<Value = Timed>) -> impl Strategy<Value = BatchPlan> {
    (
        vec(event(), 0..12),
        prop::option::weighted(
            0.02,
            prop_oneof![Just(BadLine::NotJson), Just(BadLine::TooLong)],
        ),
        (prop::bool::weighted(0.25), prop::bool::weighted(0.05)),
        prop_oneof![6 => Just(0u32), 2 => 1..5u32, 1 => Just(7200u32)],
        0..3u8,
        vec(timed, 0..4),
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
                backend: Backend::Sidecar,
                commit,
                table_concurrency,
                bulk_status_batch,
                batches,
            },
        )
}

/// Which faults a soak may generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// REST: rows rejected at commit ([`Fault::RejectRows`]), on by default. Schedules keep their other
    /// faults either way, so a seed names the same schedule with or without them (turning them off tells
    /// whether a failing schedule needs them).
    pub rejected_rows: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rejected_rows: true,
        }
    }
}

impl Options {
    /// The schedule as these options allow it.
    pub fn apply(self, mut schedule: Schedule) -> Schedule {
        if !self.rejected_rows {
            for batch in &mut schedule.batches {
                batch
                    .faults
                    .retain(|t| !matches!(t.fault, Fault::RejectRows { .. }));
            }
        }
        schedule
    }
}

fn rest_ep() -> impl Strategy<Value = Ep> {
    prop_oneof![
        4 => Just(Ep::Insert),
        2 => Just(Ep::CreateChannel),
        2 => Just(Ep::BulkStatus),
        1 => Just(Ep::Statements),
        1 => Just(Ep::TokenExchange),
    ]
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        3 => Just(Shape::Documented),
        1 => Just(Shape::ErrorCode),
        1 => Just(Shape::BareString),
        1 => Just(Shape::Empty),
        1 => Just(Shape::Html),
    ]
}

/// Any fault of the REST API, weighted towards the common ones.
pub fn rest_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        3 => (target(), any::<bool>())
            .prop_map(|(target, discard)| Fault::HandReopen { target, discard }),
        3 => target().prop_map(Fault::Invalidate),
        2 => prop::option::weighted(0.7, target()).prop_map(Fault::Stall),
        2 => Just(Fault::Resume),
        4 => (rest_ep(), 1..=10u8, prop::sample::select(vec![500u16, 502, 503, 504, 429]), shape())
            .prop_map(|(ep, count, status, shape)| Fault::RestErrors { ep, count, status, shape }),
        4 => (
            prop_oneof![3 => Just(Ep::Insert), 1 => Just(Ep::CreateChannel), 1 => Just(Ep::BulkStatus)],
            1..=2u8,
            any::<bool>(),
        )
            .prop_map(|(ep, count, applied)| Fault::DropResponse { ep, count, applied }),
        2 => Just(Fault::ExpireTokens),
        2 => (target(), 1..=10u8).prop_map(|(target, count)| Fault::Throttle { target, count }),
        1 => (1..=3u8).prop_map(Fault::AuthDdl),
        1 => (1..=3u8).prop_map(Fault::AuthChannel),
        1 => Just(Fault::RefuseChannel),
        1 => Just(Fault::RefuseAppend),
        1 => Just(Fault::InvalidSql),
        1 => (rest_ep(), 1..=150u16).prop_map(|(ep, millis)| Fault::Latency { ep, millis }),
        1 => Just(Fault::Clear),
        2 => Just(Fault::RestartManager),
        2 => Just(Fault::OverlappingUpload),
        2 => Just(Fault::KillMidUpload),
        2 => target().prop_map(Fault::HoldAppend),
        2 => (target(), 0..3u8, 1..=2u8)
            .prop_map(|(target, first, count)| Fault::RejectRows { target, first, count }),
        1 => any::<bool>().prop_map(Fault::CountersLag),
        1 => (1..=3u8).prop_map(Fault::OpenInProgress),
        1 => target().prop_map(Fault::RewriteToken),
        1 => target().prop_map(Fault::DropChannelName),
        1 => (0..3u8).prop_map(Fault::ReplaceTable),
    ]
}

/// A REST fault at a point it can be injected: a process death only right after a call, a table replaced
/// only between calls.
fn rest_timed() -> impl Strategy<Value = Timed> {
    (at(), rest_fault(), 1..16u8).prop_map(|(at, fault, call)| {
        let at = match (fault, at) {
            (Fault::KillMidUpload, _) => At::AfterCall(call),
            (Fault::ReplaceTable(_), At::AfterCall(_)) => At::AfterUpload,
            _ => at,
        };
        Timed { at, fault }
    })
}

fn rest_batch() -> impl Strategy<Value = BatchPlan> {
    batch_with(rest_timed())
}

/// A whole schedule on the REST API: 1 to 16 batches, with the REST API's faults.
pub fn rest_schedule() -> impl Strategy<Value = Schedule> {
    (
        prop_oneof![Just(CommitMode::Immediate), Just(CommitMode::Flushed)],
        prop_oneof![Just(1usize), Just(4usize)],
        prop_oneof![Just(100usize), Just(1usize), Just(2usize)],
        vec(rest_batch(), 1..17),
    )
        .prop_map(
            |(commit, table_concurrency, bulk_status_batch, batches)| Schedule {
                backend: Backend::Rest,
                commit,
                table_concurrency,
                bulk_status_batch,
                batches,
            },
        )
}
