//! The channel state machine: opening, inserting, committing after the lag, invalidation, deletion and
//! service restarts. Pure and synchronous — time is a parameter — so it is property-tested without HTTP.
//!
//! Offset tokens are opaque: the emulator compares nothing, as Snowflake compares nothing. A channel's
//! committed token is the token of the last request that committed (commits go in insert order), its
//! latest inserted token that of the last request inserted, whatever they are; a retried or reordered
//! request moves them back as it would on the real service. The committed token of a channel *name*
//! outlives its channel ids and restarts, as Snowflake keeps it server-side: a reopened channel starts
//! from it, and the name's current id reports it.
//!
//! Faults of the service side live here too: a superseded id that keeps flushing after a reopen, a
//! committed token rewritten by hand, a channel name dropped.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;

use super::{catalog::TableRef, row::Row, table_schema::TableSchema};

/// Retired (invalid or deleted) channel ids remembered, so old ids answer "invalid" rather than
/// "not found"; past this the oldest are forgotten, keeping memory bounded.
const MAX_RETIRED: usize = 10_000;

/// Names a channel: who opened it and on which table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ChannelKey {
    pub(crate) rudder_identifier: String,
    pub(crate) partition: String,
    pub(crate) table: TableRef,
}

struct Batch {
    rows: Vec<Row>,
    offset: String,
    bytes: usize,
    inserted_at: Instant,
    /// Insert order across the whole store: commits of one name's ids follow it.
    seq: u64,
}

struct Channel {
    key: ChannelKey,
    schema: Arc<TableSchema>,
    valid: bool,
    /// Reopened while superseded ids keep flushing: takes no inserts, but its buffered rows still
    /// commit; it turns invalid once they have.
    superseded: bool,
    deleted: bool,
    stalled: bool,
    committed: String,
    latest: String,
    buffer: VecDeque<Batch>,
    buffered_bytes: usize,
}

impl Channel {
    /// Do its buffered rows commit when due?
    fn commits(&self) -> bool {
        self.valid && !self.stalled
    }
}

/// Rows the store committed, for the caller to append to their table.
#[derive(Debug)]
pub(crate) struct Committed {
    pub(crate) table: TableRef,
    pub(crate) rows: Vec<Row>,
}

/// A channel's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) valid: bool,
    pub(crate) deleted: bool,
    pub(crate) committed: String,
    pub(crate) latest: String,
}

/// Why an insert was not buffered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InsertError {
    /// Unknown id (never issued, forgotten by a restart, name dropped) or deleted channel: HTTP 404.
    NotFound,
    /// The channel was invalidated (reopened elsewhere, or broken) or superseded: it takes no inserts.
    Invalid,
    /// Commits are stalled and the channel's buffer is full: HTTP 503.
    BufferFull,
}

/// What the inspection API tells about a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelInfo {
    /// The channel id handed to the client.
    pub channel_id: String,
    /// The client's destination id.
    pub rudder_identifier: String,
    /// The client's partition (instance id).
    pub partition: String,
    /// Database of the table.
    pub database: String,
    /// Schema of the table.
    pub schema: String,
    /// Table.
    pub table: String,
    /// False once reopened elsewhere (and, when superseded ids keep flushing, flushed) or invalidated.
    pub valid: bool,
    /// True while a reopened id still flushes its buffered rows (it takes no inserts).
    pub superseded: bool,
    /// True once deleted.
    pub deleted: bool,
    /// True while this channel's commits are stalled (on its own or by a stall of all).
    pub stalled: bool,
    /// The token of the last request that committed ("" for none). The name's current id reports the
    /// name's, which a superseded id's flush or a rewrite by hand also moves.
    pub committed_offset: String,
    /// The token of the last request inserted through this id ("" for none).
    pub latest_inserted_offset: String,
    /// Inserts waiting to commit.
    pub buffered_batches: usize,
    /// Rows waiting to commit.
    pub buffered_rows: usize,
}

/// Someone waiting for a token to commit on a channel id.
struct Watch {
    waiters: usize,
    reached: bool,
}

/// All channels of the service.
pub(crate) struct Store {
    channels: HashMap<String, Channel>,
    /// The current channel id of each name.
    by_name: HashMap<ChannelKey, String>,
    /// Committed token per channel name: Snowflake's, so it survives restarts.
    persisted: HashMap<ChannelKey, String>,
    retired: VecDeque<String>,
    stall_all: bool,
    /// Reopening leaves the old id flushing instead of dropping its rows.
    superseded_flush: bool,
    next_id: u64,
    next_seq: u64,
    id_prefix: String,
    max_buffered_bytes: usize,
    /// Tokens waited for, per channel id (`wait_for_commit`): a commit sets `reached`, so a waiter
    /// never misses a token that later commits moved past before it looked.
    watches: HashMap<String, HashMap<String, Watch>>,
}

impl Store {
    /// An empty store; `id_prefix` makes ids of different emulators (and runs) distinct.
    pub(crate) fn new(id_prefix: String, max_buffered_bytes: usize) -> Self {
        Self {
            channels: HashMap::new(),
            by_name: HashMap::new(),
            persisted: HashMap::new(),
            retired: VecDeque::new(),
            stall_all: false,
            superseded_flush: false,
            next_id: 0,
            next_seq: 0,
            id_prefix,
            max_buffered_bytes,
            watches: HashMap::new(),
        }
    }

    /// Opens (or reopens) the channel `key` and answers the new id, which starts from the name's
    /// committed token. An older id of the same name takes no more inserts: it turns invalid and loses
    /// its uncommitted rows, or, while superseded ids keep flushing, it flushes them first.
    pub(crate) fn open(&mut self, key: ChannelKey, schema: Arc<TableSchema>) -> String {
        if let Some(old) = self.by_name.remove(&key)
            && !(self.superseded_flush && self.supersede(&old))
        {
            self.invalidate(&old);
        }
        self.next_id += 1;
        let id = format!("{}-{:06}", self.id_prefix, self.next_id);
        let committed = self.persisted.get(&key).cloned().unwrap_or_default();
        self.by_name.insert(key.clone(), id.clone());
        self.channels.insert(
            id.clone(),
            Channel {
                key,
                schema,
                valid: true,
                superseded: false,
                deleted: false,
                stalled: false,
                latest: committed.clone(),
                committed,
                buffer: VecDeque::new(),
                buffered_bytes: 0,
            },
        );
        id
    }

    /// Leaves a reopened id flushing, if it is valid and has rows to flush. Answers whether it does.
    fn supersede(&mut self, id: &str) -> bool {
        match self.channels.get_mut(id) {
            Some(ch) if ch.valid && !ch.buffer.is_empty() => {
                ch.superseded = true;
                true
            }
            _ => false,
        }
    }

    /// Whether reopening a channel leaves the old id flushing its buffered rows (a superseded id that
    /// keeps flushing) rather than dropping them. Ids superseded already go on flushing either way.
    pub(crate) fn set_superseded_flush(&mut self, enabled: bool) {
        self.superseded_flush = enabled;
    }

    /// The schema the channel saw when opened, if it takes inserts.
    pub(crate) fn schema(&self, id: &str) -> Result<Arc<TableSchema>, InsertError> {
        let ch = self
            .channels
            .get(id)
            .filter(|c| !c.deleted)
            .ok_or(InsertError::NotFound)?;
        if !ch.valid || ch.superseded {
            return Err(InsertError::Invalid);
        }
        Ok(Arc::clone(&ch.schema))
    }

    /// Buffers rows with their offset; `latest inserted` becomes it at once. A full buffer commits its
    /// oldest batches early (answered for the caller to store), unless commits are stalled.
    pub(crate) fn insert(
        &mut self,
        id: &str,
        rows: Vec<Row>,
        offset: &str,
        bytes: usize,
        now: Instant,
    ) -> Result<Vec<Committed>, InsertError> {
        let mut committed = Vec::new();
        loop {
            let ch = self
                .channels
                .get(id)
                .filter(|c| !c.deleted)
                .ok_or(InsertError::NotFound)?;
            if !ch.valid || ch.superseded {
                return Err(InsertError::Invalid);
            }
            if ch.buffered_bytes.saturating_add(bytes) <= self.max_buffered_bytes
                || ch.buffer.is_empty()
            {
                break;
            }
            // Stalls cannot change inside this loop, so a refused insert has committed nothing.
            if self.stall_all || ch.stalled {
                return Err(InsertError::BufferFull);
            }
            committed.extend(self.commit_front(id));
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        let ch = self.channels.get_mut(id).ok_or(InsertError::NotFound)?;
        offset.clone_into(&mut ch.latest);
        ch.buffered_bytes += bytes;
        ch.buffer.push_back(Batch {
            rows,
            offset: offset.to_owned(),
            bytes,
            inserted_at: now,
            seq,
        });
        Ok(committed)
    }

    /// Commits every batch inserted at least `lag` before `now`, in each channel not stalled.
    pub(crate) fn commit_due(&mut self, now: Instant, lag: Duration) -> Vec<Committed> {
        // A lag too large to add to an instant never falls due.
        self.commit_where(|b| b.inserted_at.checked_add(lag).is_some_and(|due| due <= now))
    }

    /// Commits every buffered batch of each channel not stalled, whatever the lag.
    pub(crate) fn flush_all(&mut self) -> Vec<Committed> {
        self.commit_where(|_| true)
    }

    fn commit_where(&mut self, due: impl Fn(&Batch) -> bool) -> Vec<Committed> {
        if self.stall_all {
            return Vec::new();
        }
        // Due batches commit in insert order, so among the ids of one name (a superseded one still
        // flushing and the current one) the batch inserted last commits last and leaves its token.
        let next = |ch: &Channel| {
            ch.buffer
                .front()
                .filter(|b| ch.commits() && due(b))
                .map(|b| b.seq)
        };
        let mut queue: BinaryHeap<Reverse<(u64, String)>> = self
            .channels
            .iter()
            .filter_map(|(id, ch)| next(ch).map(|seq| Reverse((seq, id.clone()))))
            .collect();
        let mut out = Vec::new();
        while let Some(Reverse((_, id))) = queue.pop() {
            out.extend(self.commit_front(&id));
            if let Some(seq) = self.channels.get(&id).and_then(next) {
                queue.push(Reverse((seq, id)));
            }
        }
        out
    }

    /// Commits the oldest batch of one channel: its token becomes the channel's and its name's (and
    /// the name's current id's, when a superseded id commits). A superseded id that has flushed its
    /// last row turns invalid.
    fn commit_front(&mut self, id: &str) -> Option<Committed> {
        let ch = self.channels.get_mut(id)?;
        let batch = ch.buffer.pop_front()?;
        ch.buffered_bytes = ch.buffered_bytes.saturating_sub(batch.bytes);
        batch.offset.clone_into(&mut ch.committed);
        let done = ch.superseded && ch.buffer.is_empty();
        if done {
            ch.superseded = false;
            ch.valid = false;
        }
        let retire = done && !ch.deleted;
        let table = ch.key.table.clone();
        let current = self
            .by_name
            .get(&ch.key)
            .filter(|c| c.as_str() != id)
            .cloned();
        match self.persisted.get_mut(&ch.key) {
            Some(token) => batch.offset.clone_into(token),
            None => {
                self.persisted.insert(ch.key.clone(), batch.offset.clone());
            }
        }
        self.reached(id, &batch.offset);
        if let Some(current) = current {
            self.set_current_committed(&current, &batch.offset);
        }
        if retire {
            self.retire(id.to_owned());
        }
        Some(Committed {
            table,
            rows: batch.rows,
        })
    }

    /// The name's current id reports the name's committed token, unless it is invalid (it never
    /// commits again, so its token stays).
    fn set_current_committed(&mut self, current: &str, token: &str) {
        if let Some(ch) = self.channels.get_mut(current).filter(|c| c.valid) {
            token.clone_into(&mut ch.committed);
            self.reached(current, token);
        }
    }

    /// When the next batch falls due, among channels not stalled.
    pub(crate) fn next_due(&self, lag: Duration) -> Option<Instant> {
        if self.stall_all {
            return None;
        }
        self.channels
            .values()
            .filter(|c| c.commits())
            .filter_map(|c| {
                c.buffer
                    .front()
                    .and_then(|b| b.inserted_at.checked_add(lag))
            })
            .min()
    }

    /// Does the channel still hold rows waiting to commit? (`sync=true` delete waits on this.)
    pub(crate) fn has_pending(&self, id: &str) -> bool {
        self.channels.get(id).is_some_and(|c| !c.buffer.is_empty())
    }

    pub(crate) fn status(&self, id: &str) -> Option<Status> {
        self.channels.get(id).map(|c| Status {
            valid: c.valid && !c.deleted,
            deleted: c.deleted,
            committed: c.committed.clone(),
            latest: c.latest.clone(),
        })
    }

    pub(crate) fn schema_of(&self, id: &str) -> Option<Arc<TableSchema>> {
        self.channels.get(id).map(|c| Arc::clone(&c.schema))
    }

    pub(crate) fn key_of(&self, id: &str) -> Option<&ChannelKey> {
        self.channels.get(id).map(|c| &c.key)
    }

    /// Marks a channel invalid and drops its uncommitted rows (they will never commit). Answers whether
    /// the id was known.
    pub(crate) fn invalidate(&mut self, id: &str) -> bool {
        let Some(ch) = self.channels.get_mut(id) else {
            return false;
        };
        if ch.valid {
            ch.valid = false;
            ch.superseded = false;
            ch.buffer.clear();
            ch.buffered_bytes = 0;
            // Rows are gone: the channel's inserted offset falls back to what was committed.
            ch.latest = ch.committed.clone();
            // A deleted channel was retired when deleted.
            if !ch.deleted {
                self.retire(id.to_owned());
            }
        }
        true
    }

    /// Soft-deletes a channel: it takes no more inserts, its buffered rows still commit. Answers whether
    /// the id was known.
    pub(crate) fn delete(&mut self, id: &str) -> bool {
        let Some(ch) = self.channels.get_mut(id) else {
            return false;
        };
        if !ch.deleted {
            ch.deleted = true;
            if ch.valid {
                self.retire(id.to_owned());
            }
        }
        true
    }

    /// Sets the committed token of `id`'s channel name, as `SYSTEM$SNOWPIPE_STREAMING_UPDATE_CHANNEL_
    /// OFFSET_TOKEN` does: the name's persisted token and its current id's. Answers whether the id was
    /// known.
    pub(crate) fn set_committed(&mut self, id: &str, token: &str) -> bool {
        let Some(key) = self.channels.get(id).map(|c| c.key.clone()) else {
            return false;
        };
        if let Some(current) = self.by_name.get(&key).cloned() {
            self.set_current_committed(&current, token);
        }
        self.persisted.insert(key, token.to_owned());
        true
    }

    /// Drops `id`'s channel name, as a `DROP` or an expiry does: every id of the name is forgotten
    /// (404), buffered rows are lost and the name's committed token is gone. Answers whether the id was
    /// known.
    pub(crate) fn drop_name(&mut self, id: &str) -> bool {
        let Some(key) = self.channels.get(id).map(|c| c.key.clone()) else {
            return false;
        };
        self.channels.retain(|_, c| c.key != key);
        self.by_name.remove(&key);
        self.persisted.remove(&key);
        let channels = &self.channels;
        self.retired.retain(|r| channels.contains_key(r));
        true
    }

    /// Drops every channel name on `table` (the table was replaced): as [`Self::drop_name`] for each.
    pub(crate) fn drop_table(&mut self, table: &TableRef) {
        let ids: Vec<String> = self
            .by_name
            .iter()
            .filter(|(k, _)| k.table == *table)
            .map(|(_, id)| id.clone())
            .collect();
        for id in ids {
            self.drop_name(&id);
        }
        self.persisted.retain(|k, _| k.table != *table);
    }

    fn retire(&mut self, id: String) {
        self.retired.push_back(id);
        let mut budget = self.retired.len();
        while self.retired.len() > MAX_RETIRED && budget > 0 {
            budget -= 1;
            let Some(old) = self.retired.pop_front() else {
                break;
            };
            if self.has_pending(&old) {
                // Still flushing (a deleted channel): keep it until its rows are in.
                self.retired.push_back(old);
                continue;
            }
            if let Some(ch) = self.channels.remove(&old)
                && self.by_name.get(&ch.key) == Some(&old)
            {
                self.by_name.remove(&ch.key);
            }
        }
    }

    /// A service restart: every channel id is forgotten and uncommitted rows are lost. Committed offsets
    /// per channel name stay (they are Snowflake's). Stalls are lifted, as they belonged to channels.
    pub(crate) fn restart(&mut self) {
        self.channels.clear();
        self.by_name.clear();
        self.retired.clear();
    }

    /// Stalls commits of one channel (answers whether it exists) or, with `None`, of all.
    pub(crate) fn set_stalled(&mut self, id: Option<&str>, stalled: bool) -> bool {
        match id {
            None => {
                self.stall_all = stalled;
                if !stalled {
                    for ch in self.channels.values_mut() {
                        ch.stalled = false;
                    }
                }
                true
            }
            Some(id) => match self.channels.get_mut(id) {
                Some(ch) => {
                    ch.stalled = stalled;
                    true
                }
                None => false,
            },
        }
    }

    /// Starts waiting for `token` to commit on `id`; reached at once if it is the committed token now.
    pub(crate) fn watch(&mut self, id: &str, token: &str) {
        let now = self.channels.get(id).is_some_and(|c| c.committed == token);
        let w = self
            .watches
            .entry(id.to_owned())
            .or_default()
            .entry(token.to_owned())
            .or_insert(Watch {
                waiters: 0,
                reached: false,
            });
        w.waiters += 1;
        w.reached |= now;
    }

    /// Stops one wait started by [`Self::watch`].
    pub(crate) fn unwatch(&mut self, id: &str, token: &str) {
        let Some(per_id) = self.watches.get_mut(id) else {
            return;
        };
        if let Some(w) = per_id.get_mut(token) {
            w.waiters = w.waiters.saturating_sub(1);
            if w.waiters == 0 {
                per_id.remove(token);
            }
        }
        if per_id.is_empty() {
            self.watches.remove(id);
        }
    }

    /// Has `token` committed on `id` since [`Self::watch`] (or was it committed then)?
    pub(crate) fn watch_reached(&self, id: &str, token: &str) -> bool {
        self.watches
            .get(id)
            .and_then(|m| m.get(token))
            .is_some_and(|w| w.reached)
    }

    fn reached(&mut self, id: &str, token: &str) {
        if let Some(w) = self.watches.get_mut(id).and_then(|m| m.get_mut(token)) {
            w.reached = true;
        }
    }

    pub(crate) fn infos(&self) -> Vec<ChannelInfo> {
        let mut out: Vec<ChannelInfo> = self
            .channels
            .iter()
            .map(|(id, c)| self.info(id, c))
            .collect();
        out.sort_by(|a, b| a.channel_id.cmp(&b.channel_id));
        out
    }

    pub(crate) fn channel_info(&self, id: &str) -> Option<ChannelInfo> {
        self.channels.get(id).map(|c| self.info(id, c))
    }

    fn info(&self, id: &str, c: &Channel) -> ChannelInfo {
        ChannelInfo {
            channel_id: id.to_owned(),
            rudder_identifier: c.key.rudder_identifier.clone(),
            partition: c.key.partition.clone(),
            database: c.key.table.database.clone(),
            schema: c.key.table.schema.clone(),
            table: c.key.table.table.clone(),
            valid: c.valid && !c.deleted,
            superseded: c.superseded,
            deleted: c.deleted,
            stalled: c.stalled || self.stall_all,
            committed_offset: c.committed.clone(),
            latest_inserted_offset: c.latest.clone(),
            buffered_batches: c.buffer.len(),
            buffered_rows: c.buffer.iter().map(|b| b.rows.len()).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ChannelKey {
        ChannelKey {
            rudder_identifier: name.to_owned(),
            partition: "1".to_owned(),
            table: TableRef {
                database: "DB".to_owned(),
                schema: "S".to_owned(),
                table: "T".to_owned(),
            },
        }
    }

    fn row(i: u64) -> Row {
        let schema = Arc::new(TableSchema {
            columns: vec![crate::store::table_schema::Column {
                name: "ID".to_owned(),
                ty: crate::store::types::ColumnType::Variant,
                nullable: true,
            }],
        });
        Row::from_json(&schema, &serde_json::json!({"ID": i}))
    }

    #[test]
    fn tokens_are_the_last_committed_and_the_last_inserted_never_a_maximum() {
        let mut s = Store::new("t".to_owned(), usize::MAX);
        let now = Instant::now();
        let id = s.open(key("a"), Arc::default());
        for (i, token) in ["9", "10", "8", "v2.b", "v2.a"].into_iter().enumerate() {
            s.insert(&id, vec![row(i as u64)], token, 1, now).unwrap();
            assert_eq!(s.status(&id).unwrap().latest, token);
        }
        s.flush_all();
        assert_eq!(s.status(&id).unwrap().committed, "v2.a");
        // The name keeps the last one too: a reopen starts from it.
        let again = s.open(key("a"), Arc::default());
        let st = s.status(&again).unwrap();
        assert_eq!(
            (st.committed.as_str(), st.latest.as_str()),
            ("v2.a", "v2.a")
        );
        s.insert(&again, vec![row(9)], "1", 1, now).unwrap();
        s.flush_all();
        let third = s.open(key("a"), Arc::default());
        assert_eq!(s.status(&third).unwrap().committed, "1");
    }

    #[test]
    fn lag_then_commit() {
        let mut s = Store::new("t".to_owned(), usize::MAX);
        let t0 = Instant::now();
        let id = s.open(key("a"), Arc::default());
        s.insert(&id, vec![row(1)], "5", 10, t0).unwrap();
        let st = s.status(&id).unwrap();
        assert_eq!((st.committed.as_str(), st.latest.as_str()), ("", "5"));
        let lag = Duration::from_secs(1);
        assert!(s.commit_due(t0, lag).is_empty());
        assert_eq!(s.next_due(lag), Some(t0 + lag));
        assert_eq!(s.commit_due(t0 + lag, lag).len(), 1);
        assert_eq!(s.status(&id).unwrap().committed, "5");
        // An absurd lag never falls due and never overflows.
        s.insert(&id, vec![row(2)], "6", 10, t0).unwrap();
        assert!(s.commit_due(t0 + lag, Duration::MAX).is_empty());
        assert_eq!(s.next_due(Duration::MAX), None);
    }

    #[test]
    fn reopen_invalidates_and_restart_forgets_but_keeps_committed_offsets() {
        let mut s = Store::new("t".to_owned(), usize::MAX);
        let now = Instant::now();
        let a = s.open(key("a"), Arc::default());
        s.insert(&a, vec![row(1)], "1", 1, now).unwrap();
        s.flush_all();
        s.insert(&a, vec![row(2)], "2", 1, now).unwrap();
        let b = s.open(key("a"), Arc::default());
        assert_eq!(
            s.insert(&a, vec![row(3)], "3", 1, now).unwrap_err(),
            InsertError::Invalid
        );
        assert!(!s.status(&a).unwrap().valid);
        let st = s.status(&b).unwrap();
        assert_eq!((st.committed.as_str(), st.latest.as_str()), ("1", "1"));
        s.insert(&b, vec![row(4)], "4", 1, now).unwrap();
        s.restart();
        assert!(s.status(&b).is_none());
        assert_eq!(
            s.insert(&b, vec![row(5)], "5", 1, now).unwrap_err(),
            InsertError::NotFound
        );
        let c = s.open(key("a"), Arc::default());
        assert_eq!(s.status(&c).unwrap().committed, "1");
    }

    #[test]
    fn full_buffer_commits_early_or_refuses_when_stalled() {
        let mut s = Store::new("t".to_owned(), 10);
        let now = Instant::now();
        let id = s.open(key("a"), Arc::default());
        s.insert(&id, vec![row(1)], "1", 6, now).unwrap();
        let early = s.insert(&id, vec![row(2)], "2", 6, now).unwrap();
        assert_eq!(early.len(), 1);
        assert_eq!(s.status(&id).unwrap().committed, "1");
        s.set_stalled(Some(&id), true);
        assert_eq!(
            s.insert(&id, vec![row(3)], "3", 6, now).unwrap_err(),
            InsertError::BufferFull
        );
        assert!(s.flush_all().is_empty());
        s.set_stalled(None, false);
        assert_eq!(s.flush_all().len(), 1);
    }

    #[test]
    fn delete_keeps_flushing() {
        let mut s = Store::new("t".to_owned(), usize::MAX);
        let now = Instant::now();
        let id = s.open(key("a"), Arc::default());
        s.insert(&id, vec![row(1)], "1", 1, now).unwrap();
        assert!(s.delete(&id));
        assert!(s.has_pending(&id));
        assert_eq!(
            s.insert(&id, vec![row(2)], "2", 1, now).unwrap_err(),
            InsertError::NotFound
        );
        assert_eq!(s.flush_all().len(), 1);
        let st = s.status(&id).unwrap();
        assert!(st.deleted && !st.valid);
        assert_eq!(st.committed, "1");
        assert!(!s.delete("nope"));
    }

    #[test]
    fn a_superseded_id_flushes_before_it_turns_invalid() {
        let mut s = Store::new("t".to_owned(), usize::MAX);
        let t0 = Instant::now();
        let lag = Duration::from_secs(1);
        s.set_superseded_flush(true);
        let a = s.open(key("a"), Arc::default());
        s.insert(&a, vec![row(1)], "a1", 1, t0).unwrap();
        s.flush_all();
        s.insert(&a, vec![row(2)], "a2", 1, t0).unwrap();
        let b = s.open(key("a"), Arc::default());
        // The new id starts from the name's token as it stands; the old one takes no inserts.
        assert_eq!(s.status(&b).unwrap().committed, "a1");
        assert_eq!(
            s.insert(&a, vec![row(3)], "a3", 1, t0).unwrap_err(),
            InsertError::Invalid
        );
        let st = s.status(&a).unwrap();
        assert!(st.valid && s.channel_info(&a).unwrap().superseded);
        assert_eq!((st.committed.as_str(), st.latest.as_str()), ("a1", "a2"));
        s.insert(&b, vec![row(4)], "b1", 1, t0 + lag).unwrap();
        // Only the old batch is due: it commits and moves the name's token (and the current id's).
        assert_eq!(s.commit_due(t0 + lag, lag).len(), 1);
        assert!(!s.status(&a).unwrap().valid, "flushed, then retired");
        assert_eq!(s.status(&a).unwrap().committed, "a2");
        let st = s.status(&b).unwrap();
        assert_eq!((st.committed.as_str(), st.latest.as_str()), ("a2", "b1"));
        s.flush_all();
        assert_eq!(s.status(&b).unwrap().committed, "b1");
        // Without rows to flush the old id is invalid at once.
        let c = s.open(key("a"), Arc::default());
        assert!(!s.status(&b).unwrap().valid);
        // Switched off, a reopen drops the old id's rows again.
        s.insert(&c, vec![row(5)], "c1", 1, t0).unwrap();
        s.set_superseded_flush(false);
        let d = s.open(key("a"), Arc::default());
        assert!(s.flush_all().is_empty());
        assert_eq!(s.status(&d).unwrap().committed, "b1");
    }

    #[test]
    fn commits_of_one_name_follow_insert_order_across_ids() {
        let mut s = Store::new("t".to_owned(), usize::MAX);
        let now = Instant::now();
        s.set_superseded_flush(true);
        let a = s.open(key("a"), Arc::default());
        s.insert(&a, vec![row(1)], "old", 1, now).unwrap();
        let b = s.open(key("a"), Arc::default());
        s.insert(&b, vec![row(2)], "new", 1, now).unwrap();
        let rows: Vec<_> = s
            .flush_all()
            .into_iter()
            .flat_map(|c| c.rows)
            .map(|r| r.to_json()["ID"].clone())
            .collect();
        assert_eq!(rows, [serde_json::json!(1), serde_json::json!(2)]);
        assert_eq!(s.status(&b).unwrap().committed, "new");
        // A stalled old id that flushes after the new one leaves its (older) token: Snowflake compares
        // nothing.
        let c = s.open(key("a"), Arc::default());
        s.insert(&c, vec![row(3)], "c-old", 1, now).unwrap();
        s.set_stalled(Some(&c), true);
        let d = s.open(key("a"), Arc::default());
        s.insert(&d, vec![row(4)], "d-new", 1, now).unwrap();
        s.flush_all();
        assert_eq!(s.status(&d).unwrap().committed, "d-new");
        s.set_stalled(Some(&c), false);
        s.flush_all();
        assert_eq!(s.status(&d).unwrap().committed, "c-old");
        let e = s.open(key("a"), Arc::default());
        assert_eq!(s.status(&e).unwrap().committed, "c-old");
    }

    #[test]
    fn rewritten_tokens_and_dropped_names() {
        let mut s = Store::new("t".to_owned(), usize::MAX);
        let now = Instant::now();
        let a = s.open(key("a"), Arc::default());
        s.insert(&a, vec![row(1)], "1", 1, now).unwrap();
        s.flush_all();
        let b = s.open(key("a"), Arc::default());
        // Rewritten through any id of the name: the name and its current id take it.
        assert!(s.set_committed(&a, "by-hand"));
        assert_eq!(s.status(&b).unwrap().committed, "by-hand");
        assert_eq!(s.status(&b).unwrap().latest, "1");
        assert_eq!(
            s.status(&a).unwrap().committed,
            "1",
            "an invalid id keeps its own"
        );
        let c = s.open(key("a"), Arc::default());
        assert_eq!(s.status(&c).unwrap().committed, "by-hand");
        assert!(!s.set_committed("nope", "x"));

        let other = s.open(key("b"), Arc::default());
        s.insert(&c, vec![row(2)], "2", 1, now).unwrap();
        assert!(s.drop_name(&a));
        for id in [&a, &b, &c] {
            assert!(s.status(id).is_none());
            assert_eq!(
                s.insert(id, vec![row(3)], "3", 1, now).unwrap_err(),
                InsertError::NotFound
            );
        }
        assert!(s.flush_all().is_empty(), "buffered rows are lost");
        assert!(s.status(&other).unwrap().valid, "other names stay");
        let fresh = s.open(key("a"), Arc::default());
        assert_eq!(s.status(&fresh).unwrap().committed, "");
        assert!(!s.drop_name(&a));
    }

    #[test]
    fn watches_see_tokens_that_later_commits_moved_past() {
        let mut s = Store::new("t".to_owned(), usize::MAX);
        let now = Instant::now();
        let id = s.open(key("a"), Arc::default());
        s.watch(&id, "1");
        s.insert(&id, vec![row(1)], "1", 1, now).unwrap();
        s.insert(&id, vec![row(2)], "2", 1, now).unwrap();
        assert!(!s.watch_reached(&id, "1"));
        s.flush_all();
        assert_eq!(s.status(&id).unwrap().committed, "2");
        assert!(s.watch_reached(&id, "1"));
        s.watch(&id, "2");
        assert!(s.watch_reached(&id, "2"), "already the committed token");
        s.unwatch(&id, "1");
        s.unwatch(&id, "2");
        assert!(!s.watch_reached(&id, "1"));
        assert!(s.watches.is_empty());
    }
}
