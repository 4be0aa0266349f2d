//! Channels of Snowflake's Snowpipe Streaming REST API: named by database, schema, pipe and channel
//! name, written through continuation tokens (a client sequencer bumped by every open, a row sequencer
//! moved by every accepted append), committing appended requests in order after the commit lag, with
//! cumulative counters and the last error. Pure and synchronous — time is a parameter; the rows
//! themselves are landed by the caller ([`Catalog::land`](super::Catalog::land)) when a request falls
//! due, against the table as it is then.
//!
//! The committed token is the end token of the last request that committed, never a maximum; an open
//! may overwrite it (`offset_token`). Service-side traps live here too: an invalidated channel, stalled
//! commits, rows rejected at commit, appends refused with 429, an append still in transit that lands
//! after the next open, counters that lag the committed token, a token rewritten or a channel dropped
//! by hand.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use bytes::Bytes;
use serde::Serialize;

use super::{
    catalog::TableRef,
    landing::{Converted, Landed},
};

/// Requests remembered per channel name for inspection; the oldest are forgotten past this.
const MAX_REQUESTS_PER_CHANNEL: usize = 1_000;

/// The suffix of every table's default pipe.
pub(crate) const PIPE_SUFFIX: &str = "-STREAMING";

/// A channel's status code while it takes appends.
pub(crate) const SUCCESS: &str = "SUCCESS";
/// The status code of a channel invalidated on the service's side.
pub(crate) const MUST_BE_REOPENED: &str = "ERR_CHANNEL_MUST_BE_REOPENED";

/// Names a REST channel, every part resolved: the table is the one whose default pipe `pipe` is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RestKey {
    pub(crate) table: TableRef,
    pub(crate) pipe: String,
    pub(crate) channel: String,
}

impl RestKey {
    /// The key of `channel` on `pipe` in `database.schema`, if `pipe` is a default pipe
    /// (`<TABLE>-STREAMING`): no other pipes exist in the emulator.
    pub(crate) fn new(database: &str, schema: &str, pipe: &str, channel: &str) -> Option<Self> {
        let table = pipe.strip_suffix(PIPE_SUFFIX).filter(|t| !t.is_empty())?;
        Some(Self {
            table: TableRef {
                database: database.to_owned(),
                schema: schema.to_owned(),
                table: table.to_owned(),
            },
            pipe: pipe.to_owned(),
            channel: channel.to_owned(),
        })
    }
}

/// A continuation token: the client sequencer of the open it descends from and the row sequencer of
/// the next append. Opaque to clients; written `<client>_<row>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Continuation {
    pub(crate) client: u64,
    pub(crate) row: u64,
}

impl Continuation {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (client, row) = text.split_once('_')?;
        Some(Self {
            client: client.parse().ok()?,
            row: row.parse().ok()?,
        })
    }

    pub(crate) fn text(self) -> String {
        format!("{}_{}", self.client, self.row)
    }
}

/// Cumulative counters of a channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters {
    inserted: u64,
    parsed: u64,
    errors: u64,
}

/// An appended request waiting to commit.
pub(crate) struct Pending {
    /// The NDJSON body, decoded.
    pub(crate) body: Bytes,
    /// Each line's byte range in `body`.
    pub(crate) lines: Vec<(usize, usize)>,
    pub(crate) start: Option<String>,
    pub(crate) end: Option<String>,
    /// Bytes as received (compressed).
    pub(crate) bytes: usize,
    pub(crate) appended_at: Instant,
    pub(crate) appended_ms: i64,
    /// Held in transit: it lands only after the channel's next open.
    pub(crate) in_transit: bool,
    /// It was held in transit past an open: its writer judged it from that open, so it lands late.
    pub(crate) late: bool,
    /// Its rows as converted on arrival, for the commit to land if the table has not changed since.
    pub(crate) converted: Option<Converted>,
}

/// The last rejected row of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LastError {
    upper_bound: Option<String>,
    message: String,
    timestamp_ms: i64,
}

struct Channel {
    client: u64,
    row: u64,
    committed: Option<String>,
    created_on_ms: i64,
    counters: Counters,
    /// The counters before the last commit: what status answers show while counters lag.
    previous: Counters,
    last_error: Option<LastError>,
    /// Rows rejected in requests that landed late (held in transit past an open).
    rejected_late: u64,
    /// The last rows rejected at commit, as sent (bounded).
    rejected: VecDeque<RejectedRow>,
    valid: bool,
    stalled: bool,
    pending: VecDeque<Pending>,
    /// Appends in transit: accepted, answer lost, landing only after the next open.
    held: Vec<Pending>,
    /// Rows (by index) the next request to commit rejects.
    reject_next: Option<Vec<usize>>,
    /// Appends still to answer 429.
    throttle: u32,
    /// Appends still to hold in transit.
    hold: u32,
    latency_total_ms: i64,
    latency_commits: i64,
}

impl Channel {
    fn head(&self) -> Continuation {
        Continuation {
            client: self.client,
            row: self.row,
        }
    }
}

/// A channel's status as the REST API answers it (bulk status, open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelStatus {
    pub(crate) status_code: &'static str,
    pub(crate) committed: Option<String>,
    pub(crate) created_on_ms: i64,
    pub(crate) rows_inserted: u64,
    pub(crate) rows_parsed: u64,
    pub(crate) rows_error_count: u64,
    pub(crate) last_error_offset_upper_bound: Option<String>,
    pub(crate) last_error_message: Option<String>,
    pub(crate) last_error_timestamp: Option<i64>,
    pub(crate) avg_latency_ms: i64,
}

/// Why an open or a drop was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelError {
    /// No such channel (drop only).
    NotFound,
    /// `fail_on_uncommitted_rows` and rows wait to commit: 409.
    Uncommitted,
}

/// What an append's continuation token says, checked against the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    /// The channel's head: the append is taken.
    Head,
    /// A token of the current client sequencer already used: answered with the head, rows ignored.
    Replay(String),
    /// An older client sequencer (reopened since), or the channel is invalid.
    Stale,
    /// Never issued by this channel (unreadable, or ahead of it).
    Unknown,
    /// The channel does not exist.
    NotFound,
}

/// What an accepted append answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Appended {
    /// Taken: the next continuation token.
    Taken(String),
    /// Taken, and held in transit: its answer is to be lost.
    HeldInTransit,
    /// A replay of a used token: the head token, rows ignored.
    Replay(String),
    /// Throttled: 429, nothing taken.
    Throttled,
    /// Refused by the token check (see [`TokenCheck`]).
    Refused(TokenCheck),
}

/// A request that fell due, for the caller to land and then report with [`RestChannels::committed`].
pub(crate) struct Due {
    pub(crate) key: RestKey,
    pub(crate) pending: Pending,
    pub(crate) reject: Vec<usize>,
}

/// One request received on a channel, as inspection shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestRequest {
    /// Order of arrival among every REST request, from 1.
    pub seq: u64,
    /// `open`, `append` or `drop`.
    pub call: &'static str,
    /// The append's `continuationToken`.
    pub continuation_token: Option<String>,
    /// The append's start offset token (`startOffsetToken`, or `offsetToken`).
    pub start_offset_token: Option<String>,
    /// The append's end offset token (`endOffsetToken`, or `offsetToken`).
    pub end_offset_token: Option<String>,
    /// The open's `offset_token`.
    pub offset_token: Option<String>,
    /// The body's size as received, in bytes.
    pub body_bytes: usize,
    /// `Content-Encoding` (`gzip`, `zstd`), if any.
    pub encoding: Option<String>,
    /// The append's rows (lines), when its body was read.
    pub rows: Option<usize>,
    /// The HTTP status answered; `None` when the connection was closed instead.
    pub status: Option<u16>,
    /// The error code answered, if any.
    pub code: Option<String>,
    /// The continuation token answered, if any.
    pub next_continuation_token: Option<String>,
    /// The fault applied, as in the call log (`fail`, `drop_applied`, `in_transit`, ...).
    pub fault: Option<String>,
}

/// Rows kept per channel for inspection of what was rejected at commit.
const MAX_REJECTED_KEPT: usize = 256;

/// A row rejected at commit, as inspection shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedRow {
    /// The row's text, as sent.
    pub row: String,
    /// Its request landed late: held in transit past an open (see [`RestChannelInfo::rows_rejected_late`]).
    pub late: bool,
}

/// A request waiting to commit, as inspection shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRequest {
    /// Its start offset token.
    pub start_offset_token: Option<String>,
    /// Its end offset token (the committed token once it commits).
    pub end_offset_token: Option<String>,
    /// Its rows.
    pub rows: usize,
    /// Its body's size as received.
    pub bytes: usize,
    /// Held in transit: it lands only after the channel's next open.
    pub in_transit: bool,
}

/// What the inspection API tells about a REST channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestChannelInfo {
    /// Database.
    pub database: String,
    /// Schema.
    pub schema: String,
    /// Pipe (`<TABLE>-STREAMING`).
    pub pipe: String,
    /// Channel name, as resolved (and as bulk status matches it).
    pub channel: String,
    /// The table the pipe writes to.
    pub table: String,
    /// `SUCCESS`, or `ERR_CHANNEL_MUST_BE_REOPENED` once invalidated.
    pub status_code: String,
    /// The client sequencer: bumped by every open.
    pub client_sequencer: u64,
    /// The row sequencer: moved by every accepted append.
    pub row_sequencer: u64,
    /// The continuation token the next append must carry.
    pub continuation_token: String,
    /// The end token of the last request that committed (or the token an open or a hand set).
    pub committed_offset_token: Option<String>,
    /// When the channel was created (ms since the epoch).
    pub created_on_ms: i64,
    /// Rows landed.
    pub rows_inserted: u64,
    /// Rows read at commit (landed and rejected).
    pub rows_parsed: u64,
    /// Rows rejected at commit.
    pub rows_error_count: u64,
    /// The last rows rejected at commit (at most 256), oldest first, as sent.
    pub rejected_rows: Vec<RejectedRow>,
    /// Of those counted, rows in requests that landed late: held in transit past an open, after their
    /// writer had judged them from that open (the trap "a lost append still in transit at the reopen").
    pub rows_rejected_late: u64,
    /// The end token of the request that held the last rejected row.
    pub last_error_offset_upper_bound: Option<String>,
    /// Why the last rejected row was rejected.
    pub last_error_message: Option<String>,
    /// When (ms since the epoch).
    pub last_error_timestamp: Option<i64>,
    /// Commits stalled (on its own or by a stall of all).
    pub stalled: bool,
    /// Requests waiting to commit, oldest first (those in transit last).
    pub pending: Vec<PendingRequest>,
    /// Requests received on this channel name, oldest first (bounded).
    pub requests: Vec<RestRequest>,
}

/// Every REST channel of the account.
#[derive(Default)]
pub(crate) struct RestChannels {
    channels: HashMap<RestKey, Channel>,
    /// Requests per channel name; kept when the channel is dropped, so inspection still shows them.
    requests: HashMap<RestKey, VecDeque<RestRequest>>,
    /// Client sequencers come from one counter, so a dropped and recreated channel never accepts a
    /// token of its former life.
    last_client: u64,
    last_created_ms: i64,
    last_request: u64,
    stall_all: bool,
    counters_lag: bool,
}

impl RestChannels {
    /// Opens `key`, creating it or reopening it: a new client sequencer (every token handed out before
    /// is stale), `offset_token` (if given) as the committed token at once. A reopen keeps counters and
    /// `created_on_ms`; its uncommitted rows are discarded, or with `fail_on_uncommitted` the open is
    /// refused while they exist. Appends held in transit land after it. Answers the head token.
    pub(crate) fn open(
        &mut self,
        key: &RestKey,
        offset_token: Option<String>,
        fail_on_uncommitted: bool,
        now: Instant,
        now_ms: i64,
    ) -> Result<String, ChannelError> {
        self.last_client += 1;
        let client = self.last_client;
        if let Some(ch) = self.channels.get_mut(key) {
            if fail_on_uncommitted && !ch.pending.is_empty() {
                return Err(ChannelError::Uncommitted);
            }
            ch.pending.clear();
            ch.client = client;
            if offset_token.is_some() {
                ch.committed = offset_token;
            }
            ch.valid = true;
            for mut held in ch.held.drain(..) {
                // It arrives now, so it commits one lag after this open.
                held.appended_at = now;
                held.appended_ms = now_ms;
                held.in_transit = false;
                held.late = true;
                ch.pending.push_back(held);
            }
            return Ok(ch.head().text());
        }
        let created_on_ms = now_ms.max(self.last_created_ms + 1);
        self.last_created_ms = created_on_ms;
        let ch = Channel {
            client,
            row: 0,
            committed: offset_token,
            created_on_ms,
            counters: Counters::default(),
            previous: Counters::default(),
            last_error: None,
            rejected_late: 0,
            rejected: VecDeque::new(),
            valid: true,
            stalled: false,
            pending: VecDeque::new(),
            held: Vec::new(),
            reject_next: None,
            throttle: 0,
            hold: 0,
            latency_total_ms: 0,
            latency_commits: 0,
        };
        let head = ch.head().text();
        self.channels.insert(key.clone(), ch);
        Ok(head)
    }

    /// Checks an append's continuation token without changing anything.
    pub(crate) fn check_token(&self, key: &RestKey, token: &str) -> TokenCheck {
        let Some(ch) = self.channels.get(key) else {
            return TokenCheck::NotFound;
        };
        let Some(given) = Continuation::parse(token) else {
            return TokenCheck::Unknown;
        };
        if !ch.valid || given.client < ch.client {
            return TokenCheck::Stale;
        }
        if given.client > ch.client || given.row > ch.row {
            return TokenCheck::Unknown;
        }
        if given.row < ch.row {
            return TokenCheck::Replay(ch.head().text());
        }
        TokenCheck::Head
    }

    /// Takes an append: a throttled channel answers 429 first (nothing taken), then the token is
    /// checked; taken, the row sequencer moves and the request waits to commit (or, held in transit,
    /// for the next open).
    pub(crate) fn append(&mut self, key: &RestKey, token: &str, pending: Pending) -> Appended {
        if let Some(ch) = self.channels.get_mut(key)
            && ch.throttle > 0
        {
            ch.throttle -= 1;
            return Appended::Throttled;
        }
        match self.check_token(key, token) {
            TokenCheck::Head => {}
            TokenCheck::Replay(head) => return Appended::Replay(head),
            refused => return Appended::Refused(refused),
        }
        let Some(ch) = self.channels.get_mut(key) else {
            return Appended::Refused(TokenCheck::NotFound);
        };
        ch.row += 1;
        if ch.hold > 0 {
            ch.hold -= 1;
            ch.held.push(Pending {
                in_transit: true,
                ..pending
            });
            return Appended::HeldInTransit;
        }
        ch.pending.push_back(pending);
        Appended::Taken(ch.head().text())
    }

    /// Drops a channel; its uncommitted rows are discarded, or with `fail_on_uncommitted` the drop is
    /// refused while they exist.
    pub(crate) fn drop_channel(
        &mut self,
        key: &RestKey,
        fail_on_uncommitted: bool,
    ) -> Result<(), ChannelError> {
        let ch = self.channels.get(key).ok_or(ChannelError::NotFound)?;
        if fail_on_uncommitted && !ch.pending.is_empty() {
            return Err(ChannelError::Uncommitted);
        }
        self.channels.remove(key);
        Ok(())
    }

    /// A channel's status, as status answers show it (counters lagging one commit when scripted so).
    pub(crate) fn status(&self, key: &RestKey) -> Option<ChannelStatus> {
        self.status_with(key, self.counters_lag)
    }

    /// A channel's status as an open answers it: the open settles the channel (it waited for or discarded
    /// every request in flight), so its counters are current even while status answers lag — the design
    /// note's trap 5 is lag in *status* answers, and the live check asks whether every answer agrees.
    pub(crate) fn status_at_open(&self, key: &RestKey) -> Option<ChannelStatus> {
        self.status_with(key, false)
    }

    fn status_with(&self, key: &RestKey, lagging: bool) -> Option<ChannelStatus> {
        let ch = self.channels.get(key)?;
        let counters = if lagging { ch.previous } else { ch.counters };
        Some(ChannelStatus {
            status_code: if ch.valid { SUCCESS } else { MUST_BE_REOPENED },
            committed: ch.committed.clone(),
            created_on_ms: ch.created_on_ms,
            rows_inserted: counters.inserted,
            rows_parsed: counters.parsed,
            rows_error_count: counters.errors,
            last_error_offset_upper_bound: ch
                .last_error
                .as_ref()
                .and_then(|e| e.upper_bound.clone()),
            last_error_message: ch.last_error.as_ref().map(|e| e.message.clone()),
            last_error_timestamp: ch.last_error.as_ref().map(|e| e.timestamp_ms),
            avg_latency_ms: if ch.latency_commits == 0 {
                0
            } else {
                ch.latency_total_ms / ch.latency_commits
            },
        })
    }

    fn commits(&self, ch: &Channel) -> bool {
        ch.valid && !ch.stalled && !self.stall_all
    }

    /// Takes every request appended at least `lag` before `now`, in order per channel, from channels
    /// whose commits are not stalled.
    pub(crate) fn take_due(&mut self, now: Instant, lag: Duration) -> Vec<Due> {
        self.take_where(|p| p.appended_at.checked_add(lag).is_some_and(|due| due <= now))
    }

    /// Takes every waiting request of channels not stalled, whatever the lag.
    pub(crate) fn take_all(&mut self) -> Vec<Due> {
        self.take_where(|_| true)
    }

    fn take_where(&mut self, due: impl Fn(&Pending) -> bool) -> Vec<Due> {
        let mut out = Vec::new();
        let stall_all = self.stall_all;
        for (key, ch) in &mut self.channels {
            if stall_all || ch.stalled || !ch.valid {
                continue;
            }
            while ch.pending.front().is_some_and(&due) {
                let Some(pending) = ch.pending.pop_front() else {
                    break;
                };
                out.push(Due {
                    key: key.clone(),
                    pending,
                    reject: ch.reject_next.take().unwrap_or_default(),
                });
            }
        }
        out
    }

    /// When the next request falls due, among channels not stalled.
    pub(crate) fn next_due(&self, lag: Duration) -> Option<Instant> {
        self.channels
            .values()
            .filter(|c| self.commits(c))
            .filter_map(|c| c.pending.front())
            .filter_map(|p| p.appended_at.checked_add(lag))
            .min()
    }

    /// Records a landed request: the committed token becomes its end token (when it has one), the
    /// counters grow, a rejected row sets the last error. `landed` is `None` when the table was gone.
    pub(crate) fn committed(&mut self, due: &Due, landed: Option<&Landed>, now_ms: i64) {
        let Some(ch) = self.channels.get_mut(&due.key) else {
            return;
        };
        ch.previous = ch.counters;
        let p = &due.pending;
        if p.end.is_some() {
            ch.committed.clone_from(&p.end);
        }
        let rows = u64::try_from(p.lines.len()).unwrap_or(u64::MAX);
        let (inserted, rejected) = landed.map_or((0, rows), |l| (l.inserted, l.rejected));
        ch.counters.parsed += rows;
        ch.counters.inserted += inserted;
        ch.counters.errors += rejected;
        if p.late {
            ch.rejected_late += rejected;
        }
        for &index in landed.map_or(&[][..], |l| &l.rejected_rows[..]) {
            let Some(&(start, end)) = p.lines.get(index) else {
                continue;
            };
            if ch.rejected.len() == MAX_REJECTED_KEPT {
                ch.rejected.pop_front();
            }
            ch.rejected.push_back(RejectedRow {
                row: String::from_utf8_lossy(p.body.get(start..end).unwrap_or_default())
                    .into_owned(),
                late: p.late,
            });
        }
        if rejected > 0 {
            ch.last_error = Some(LastError {
                upper_bound: p.end.clone(),
                message: landed
                    .and_then(|l| l.last_error.clone())
                    .unwrap_or_else(|| "the table no longer exists".to_owned()),
                timestamp_ms: now_ms,
            });
        }
        ch.latency_total_ms += (now_ms - p.appended_ms).max(0);
        ch.latency_commits += 1;
    }

    /// Invalidates a channel, as a break on the service's side does: status code
    /// `ERR_CHANNEL_MUST_BE_REOPENED`, its uncommitted rows (those in transit too) discarded, its
    /// appends refused as stale until it is reopened. Answers whether it exists.
    pub(crate) fn invalidate(&mut self, key: &RestKey) -> bool {
        let Some(ch) = self.channels.get_mut(key) else {
            return false;
        };
        ch.valid = false;
        ch.pending.clear();
        ch.held.clear();
        true
    }

    /// Stalls (or resumes) one channel's commits, or with `None` every channel's.
    pub(crate) fn set_stalled(&mut self, key: Option<&RestKey>, stalled: bool) -> bool {
        match key {
            None => {
                self.stall_all = stalled;
                if !stalled {
                    for ch in self.channels.values_mut() {
                        ch.stalled = false;
                    }
                }
                true
            }
            Some(key) => match self.channels.get_mut(key) {
                Some(ch) => {
                    ch.stalled = stalled;
                    true
                }
                None => false,
            },
        }
    }

    /// Sets the committed token, as `SYSTEM$SNOWPIPE_STREAMING_UPDATE_CHANNEL_OFFSET_TOKEN` does.
    pub(crate) fn set_committed(&mut self, key: &RestKey, token: Option<String>) -> bool {
        match self.channels.get_mut(key) {
            Some(ch) => {
                ch.committed = token;
                true
            }
            None => false,
        }
    }

    /// Drops a channel by hand (or as an expiry does): its rows waiting or in transit are lost, its
    /// committed token and counters are gone; an append answers 404 until it is opened again.
    pub(crate) fn drop_by_hand(&mut self, key: &RestKey) -> bool {
        self.channels.remove(key).is_some()
    }

    /// Drops every channel of `table` (the table was replaced).
    pub(crate) fn drop_table(&mut self, table: &TableRef) -> usize {
        let before = self.channels.len();
        self.channels.retain(|k, _| k.table != *table);
        before - self.channels.len()
    }

    /// The next request to commit on the channel rejects the rows at these indexes.
    pub(crate) fn reject_rows(&mut self, key: &RestKey, rows: Vec<usize>) -> bool {
        match self.channels.get_mut(key) {
            Some(ch) => {
                ch.reject_next = Some(rows);
                true
            }
            None => false,
        }
    }

    /// Answers 429 to the next `count` appends of the channel.
    pub(crate) fn throttle(&mut self, key: &RestKey, count: u32) -> bool {
        match self.channels.get_mut(key) {
            Some(ch) => {
                ch.throttle = count;
                true
            }
            None => false,
        }
    }

    /// Holds the next `count` appends of the channel in transit (see [`Self::append`]).
    pub(crate) fn hold_in_transit(&mut self, key: &RestKey, count: u32) -> bool {
        match self.channels.get_mut(key) {
            Some(ch) => {
                ch.hold = count;
                true
            }
            None => false,
        }
    }

    /// Status answers show the counters as they were before each channel's last commit.
    pub(crate) fn set_counters_lag(&mut self, enabled: bool) {
        self.counters_lag = enabled;
    }

    /// Remembers a request received on `key`'s channel name.
    pub(crate) fn record(&mut self, key: &RestKey, mut request: RestRequest) {
        self.last_request += 1;
        request.seq = self.last_request;
        let log = self.requests.entry(key.clone()).or_default();
        log.push_back(request);
        while log.len() > MAX_REQUESTS_PER_CHANNEL {
            log.pop_front();
        }
    }

    /// The requests received on a channel name, oldest first.
    pub(crate) fn requests(&self, key: &RestKey) -> Vec<RestRequest> {
        self.requests
            .get(key)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every channel, ordered by name.
    pub(crate) fn infos(&self) -> Vec<RestChannelInfo> {
        let mut keys: Vec<&RestKey> = self.channels.keys().collect();
        keys.sort();
        keys.into_iter().filter_map(|k| self.info(k)).collect()
    }

    pub(crate) fn info(&self, key: &RestKey) -> Option<RestChannelInfo> {
        let ch = self.channels.get(key)?;
        let pending = |p: &Pending| PendingRequest {
            start_offset_token: p.start.clone(),
            end_offset_token: p.end.clone(),
            rows: p.lines.len(),
            bytes: p.bytes,
            in_transit: p.in_transit,
        };
        Some(RestChannelInfo {
            database: key.table.database.clone(),
            schema: key.table.schema.clone(),
            pipe: key.pipe.clone(),
            channel: key.channel.clone(),
            table: key.table.table.clone(),
            status_code: if ch.valid { SUCCESS } else { MUST_BE_REOPENED }.to_owned(),
            client_sequencer: ch.client,
            row_sequencer: ch.row,
            continuation_token: ch.head().text(),
            committed_offset_token: ch.committed.clone(),
            created_on_ms: ch.created_on_ms,
            rows_inserted: ch.counters.inserted,
            rows_parsed: ch.counters.parsed,
            rows_error_count: ch.counters.errors,
            rows_rejected_late: ch.rejected_late,
            rejected_rows: ch.rejected.iter().cloned().collect(),
            last_error_offset_upper_bound: ch
                .last_error
                .as_ref()
                .and_then(|e| e.upper_bound.clone()),
            last_error_message: ch.last_error.as_ref().map(|e| e.message.clone()),
            last_error_timestamp: ch.last_error.as_ref().map(|e| e.timestamp_ms),
            stalled: ch.stalled || self.stall_all,
            pending: ch.pending.iter().chain(&ch.held).map(pending).collect(),
            requests: self.requests(key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(channel: &str) -> RestKey {
        RestKey::new("DB", "S", "T-STREAMING", channel).unwrap()
    }

    fn pending(end: &str, rows: usize, now: Instant) -> Pending {
        Pending {
            body: Bytes::new(),
            lines: vec![(0, 0); rows],
            start: Some(end.to_owned()),
            end: Some(end.to_owned()),
            bytes: 1,
            appended_at: now,
            appended_ms: 0,
            in_transit: false,
            late: false,
            converted: None,
        }
    }

    fn commit_all(s: &mut RestChannels) {
        for due in s.take_all() {
            let landed = Landed {
                inserted: u64::try_from(due.pending.lines.len()).unwrap(),
                ..Landed::default()
            };
            s.committed(&due, Some(&landed), 5);
        }
    }

    #[test]
    fn keys_name_default_pipes_only() {
        assert_eq!(key("C").table.table, "T");
        assert!(RestKey::new("DB", "S", "T", "C").is_none());
        assert!(RestKey::new("DB", "S", "-STREAMING", "C").is_none());
        assert_eq!(
            Continuation::parse("3_4"),
            Some(Continuation { client: 3, row: 4 })
        );
        assert_eq!(Continuation::parse("x"), None);
    }

    #[test]
    fn tokens_sequence_replay_and_go_stale() {
        let mut s = RestChannels::default();
        let now = Instant::now();
        let k = key("C");
        let t0 = s.open(&k, None, true, now, 10).unwrap();
        let Appended::Taken(t1) = s.append(&k, &t0, pending("a", 1, now)) else {
            panic!("taken")
        };
        assert_eq!(
            s.append(&k, &t0, pending("a", 1, now)),
            Appended::Replay(t1.clone())
        );
        assert_eq!(s.check_token(&k, "9_9"), TokenCheck::Unknown);
        assert_eq!(s.check_token(&k, "junk"), TokenCheck::Unknown);
        // Reopening with rows waiting: refused with the flag, discarded without it.
        assert_eq!(
            s.open(&k, None, true, now, 11),
            Err(ChannelError::Uncommitted)
        );
        assert_eq!(
            s.check_token(&k, &t1),
            TokenCheck::Head,
            "a refused open bumps nothing"
        );
        let t2 = s
            .open(&k, Some("fence".to_owned()), false, now, 12)
            .unwrap();
        assert_eq!(s.check_token(&k, &t1), TokenCheck::Stale);
        assert!(s.take_all().is_empty(), "discarded");
        let st = s.status(&k).unwrap();
        assert_eq!(
            (st.committed.as_deref(), st.created_on_ms),
            (Some("fence"), 10)
        );
        assert_eq!(s.check_token(&k, &t2), TokenCheck::Head);
    }

    #[test]
    fn commits_move_the_token_to_the_last_end_and_count() {
        let mut s = RestChannels::default();
        let now = Instant::now();
        let k = key("C");
        let mut t = s.open(&k, None, true, now, 10).unwrap();
        for end in ["9", "10", "8"] {
            let Appended::Taken(next) = s.append(&k, &t, pending(end, 2, now)) else {
                panic!()
            };
            t = next;
        }
        let lag = Duration::from_secs(1);
        assert!(s.take_due(now, lag).is_empty());
        assert_eq!(s.next_due(lag), Some(now + lag));
        s.set_counters_lag(true);
        commit_all(&mut s);
        let st = s.status(&k).unwrap();
        assert_eq!(
            st.committed.as_deref(),
            Some("8"),
            "the last, never a maximum"
        );
        assert_eq!(
            (st.rows_inserted, st.rows_parsed),
            (4, 4),
            "one commit behind"
        );
        assert_eq!(
            s.status_at_open(&k).unwrap().rows_inserted,
            6,
            "an open's answer is current"
        );
        s.set_counters_lag(false);
        assert_eq!(s.status(&k).unwrap().rows_inserted, 6);
    }

    #[test]
    fn drops_recreate_with_a_later_created_on_and_zero_counters() {
        let mut s = RestChannels::default();
        let now = Instant::now();
        let k = key("C");
        let t = s.open(&k, None, true, now, 100).unwrap();
        s.append(&k, &t, pending("1", 1, now));
        assert_eq!(s.drop_channel(&k, true), Err(ChannelError::Uncommitted));
        commit_all(&mut s);
        s.drop_channel(&k, true).unwrap();
        assert_eq!(s.drop_channel(&k, false), Err(ChannelError::NotFound));
        let again = s.open(&k, None, true, now, 100).unwrap();
        let st = s.status(&k).unwrap();
        assert_eq!(
            (st.created_on_ms, st.rows_inserted, st.committed),
            (101, 0, None)
        );
        assert_eq!(s.check_token(&k, &t), TokenCheck::Stale);
        assert_eq!(s.check_token(&k, &again), TokenCheck::Head);
    }

    #[test]
    fn held_appends_land_after_the_next_open() {
        let mut s = RestChannels::default();
        let now = Instant::now();
        let k = key("C");
        let t = s.open(&k, None, true, now, 1).unwrap();
        s.hold_in_transit(&k, 1);
        assert_eq!(
            s.append(&k, &t, pending("held", 1, now)),
            Appended::HeldInTransit
        );
        assert!(s.take_all().is_empty());
        // Not seen as uncommitted: the open does not wait for it.
        s.open(&k, Some("fence".to_owned()), true, now, 2).unwrap();
        commit_all(&mut s);
        assert_eq!(s.status(&k).unwrap().committed.as_deref(), Some("held"));
    }
}
