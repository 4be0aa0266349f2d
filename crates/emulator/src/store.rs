//! The channel state machine: opening, inserting, committing after the lag, invalidation, deletion and
//! service restarts. Pure and synchronous — time is a parameter — so it is property-tested without HTTP.
//!
//! Offsets are opaque strings on the wire, but the manager's are job ids, so the emulator compares them
//! numerically and keeps the greatest (committed never goes backwards, and committed ≤ latest inserted).
//! The committed offset of a channel *name* outlives its channel ids and restarts, as Snowflake keeps it
//! server-side: a reopened channel starts from it.

use std::{
    cmp::Ordering,
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    catalog::{TableRef, TableSchema},
    row::Row,
};

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

/// Compares offset tokens: numerically when both are integers, else the newer token wins.
/// The empty token means "none" and is below everything.
pub(crate) fn offset_cmp(new: &str, old: &str) -> Ordering {
    match (new.is_empty(), old.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        (false, false) => {}
    }
    match (parse_int(new), parse_int(old)) {
        (Some((neg_a, a)), Some((neg_b, b))) => {
            let magnitude = a.len().cmp(&b.len()).then_with(|| a.cmp(b));
            match (neg_a, neg_b) {
                (false, false) => magnitude,
                (true, true) => magnitude.reverse(),
                (true, false) if a.is_empty() && b.is_empty() => Ordering::Equal,
                (true, false) => Ordering::Less,
                (false, true) if a.is_empty() && b.is_empty() => Ordering::Equal,
                (false, true) => Ordering::Greater,
            }
        }
        _ if new == old => Ordering::Equal,
        // Not numbers: Snowflake keeps the last token given, so the newer one counts as greater.
        _ => Ordering::Greater,
    }
}

/// Splits an integer token into its sign and digits without leading zeros.
fn parse_int(s: &str) -> Option<(bool, &str)> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((neg, digits.trim_start_matches('0')))
}

fn max_offset(a: &str, b: &str) -> String {
    if offset_cmp(b, a) == Ordering::Greater {
        b.to_owned()
    } else {
        a.to_owned()
    }
}

struct Batch {
    rows: Vec<Row>,
    offset: String,
    bytes: usize,
    inserted_at: Instant,
}

struct Channel {
    key: ChannelKey,
    schema: Arc<TableSchema>,
    valid: bool,
    deleted: bool,
    stalled: bool,
    committed: String,
    latest: String,
    buffer: VecDeque<Batch>,
    buffered_bytes: usize,
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
    /// Unknown id (never issued, forgotten by a restart) or deleted channel: HTTP 404.
    NotFound,
    /// The channel was invalidated (reopened elsewhere, or broken): it never commits again.
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
    /// False once reopened elsewhere or invalidated.
    pub valid: bool,
    /// True once deleted.
    pub deleted: bool,
    /// True while this channel's commits are stalled (on its own or by a stall of all).
    pub stalled: bool,
    /// Latest committed offset ("" for none).
    pub committed_offset: String,
    /// Latest inserted offset ("" for none).
    pub latest_inserted_offset: String,
    /// Inserts waiting to commit.
    pub buffered_batches: usize,
    /// Rows waiting to commit.
    pub buffered_rows: usize,
}

/// All channels of the service.
pub(crate) struct Store {
    channels: HashMap<String, Channel>,
    /// The current channel id of each name.
    by_name: HashMap<ChannelKey, String>,
    /// Committed offset per channel name: Snowflake's, so it survives restarts.
    persisted: HashMap<ChannelKey, String>,
    retired: VecDeque<String>,
    stall_all: bool,
    next_id: u64,
    id_prefix: String,
    max_buffered_bytes: usize,
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
            next_id: 0,
            id_prefix,
            max_buffered_bytes,
        }
    }

    /// Opens (or reopens) the channel `key`; an older id of the same name turns invalid and loses its
    /// uncommitted rows. Answers the new id.
    pub(crate) fn open(&mut self, key: ChannelKey, schema: Arc<TableSchema>) -> String {
        if let Some(old) = self.by_name.remove(&key) {
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

    /// The schema the channel saw when opened, if it takes inserts.
    pub(crate) fn schema(&self, id: &str) -> Result<Arc<TableSchema>, InsertError> {
        let ch = self
            .channels
            .get(id)
            .filter(|c| !c.deleted)
            .ok_or(InsertError::NotFound)?;
        if !ch.valid {
            return Err(InsertError::Invalid);
        }
        Ok(Arc::clone(&ch.schema))
    }

    /// Buffers rows with their offset; `latest inserted` moves at once. A full buffer commits its oldest
    /// batches early (answered for the caller to store), unless commits are stalled.
    pub(crate) fn insert(
        &mut self,
        id: &str,
        rows: Vec<Row>,
        offset: &str,
        bytes: usize,
        now: Instant,
    ) -> Result<Vec<Committed>, InsertError> {
        let stall_all = self.stall_all;
        let max = self.max_buffered_bytes;
        let ch = self
            .channels
            .get_mut(id)
            .filter(|c| !c.deleted)
            .ok_or(InsertError::NotFound)?;
        if !ch.valid {
            return Err(InsertError::Invalid);
        }
        let mut committed = Vec::new();
        while ch.buffered_bytes.saturating_add(bytes) > max && !ch.buffer.is_empty() {
            if stall_all || ch.stalled {
                return Err(InsertError::BufferFull);
            }
            if let Some(c) = commit_front(ch) {
                committed.push(c);
            }
        }
        ch.latest = max_offset(&ch.latest, offset);
        ch.buffered_bytes += bytes;
        ch.buffer.push_back(Batch {
            rows,
            offset: offset.to_owned(),
            bytes,
            inserted_at: now,
        });
        self.persist(id);
        Ok(committed)
    }

    fn persist(&mut self, id: &str) {
        if let Some(ch) = self.channels.get(id) {
            let entry = self.persisted.entry(ch.key.clone()).or_default();
            *entry = max_offset(entry, &ch.committed);
        }
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
        let mut out = Vec::new();
        let mut touched = Vec::new();
        for (id, ch) in &mut self.channels {
            if ch.stalled || !ch.valid {
                continue;
            }
            let before = out.len();
            while ch.buffer.front().is_some_and(&due) {
                if let Some(c) = commit_front(ch) {
                    out.push(c);
                }
            }
            if out.len() > before {
                touched.push(id.clone());
            }
        }
        for id in touched {
            self.persist(&id);
        }
        out
    }

    /// When the next batch falls due, among channels not stalled.
    pub(crate) fn next_due(&self, lag: Duration) -> Option<Instant> {
        if self.stall_all {
            return None;
        }
        self.channels
            .values()
            .filter(|c| c.valid && !c.stalled)
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
            ch.buffer.clear();
            ch.buffered_bytes = 0;
            // Rows are gone: the channel's inserted offset falls back to what was committed.
            ch.latest = ch.committed.clone();
            self.retire(id.to_owned());
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
            deleted: c.deleted,
            stalled: c.stalled || self.stall_all,
            committed_offset: c.committed.clone(),
            latest_inserted_offset: c.latest.clone(),
            buffered_batches: c.buffer.len(),
            buffered_rows: c.buffer.iter().map(|b| b.rows.len()).sum(),
        }
    }
}

fn commit_front(ch: &mut Channel) -> Option<Committed> {
    let batch = ch.buffer.pop_front()?;
    ch.buffered_bytes = ch.buffered_bytes.saturating_sub(batch.bytes);
    ch.committed = max_offset(&ch.committed, &batch.offset);
    Some(Committed {
        table: ch.key.table.clone(),
        rows: batch.rows,
    })
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
            columns: vec![crate::catalog::Column {
                name: "ID".to_owned(),
                ty: crate::types::ColumnType::Variant,
                nullable: true,
            }],
        });
        Row::from_json(&schema, &serde_json::json!({"ID": i}))
    }

    #[test]
    fn offsets_compare_numerically() {
        assert_eq!(offset_cmp("10", "9"), Ordering::Greater);
        assert_eq!(offset_cmp("009", "10"), Ordering::Less);
        assert_eq!(offset_cmp("-5", "3"), Ordering::Less);
        assert_eq!(offset_cmp("-5", "-7"), Ordering::Greater);
        assert_eq!(offset_cmp("-0", "0"), Ordering::Equal);
        assert_eq!(offset_cmp("", "0"), Ordering::Less);
        assert_eq!(offset_cmp("1", ""), Ordering::Greater);
        assert_eq!(
            offset_cmp("99999999999999999999999", "1"),
            Ordering::Greater
        );
        assert_eq!(offset_cmp("abc", "zzz"), Ordering::Greater);
        assert_eq!(offset_cmp("abc", "abc"), Ordering::Equal);
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
}
