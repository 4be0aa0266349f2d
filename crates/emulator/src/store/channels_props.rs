//! Property test of the channel state machine against an oracle: any sequence of opens, inserts (to
//! current and to older ids), commits, flushes, invalidations, deletes, stalls, restarts, superseded
//! flushing, tokens rewritten by hand and dropped names leaves every channel with the tokens, validity
//! and buffered rows the model predicts. The model states the rules plainly: a committed token is the
//! token of the last batch that committed and a latest inserted token that of the last batch inserted
//! (nothing is compared); a name's batches commit in insert order across its ids; every row commits at
//! most once, and never after its channel lost it (reopen without superseded flushing, invalidation,
//! restart, dropped name).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use proptest::prelude::*;

use super::{
    catalog::TableRef,
    channels::{ChannelKey, Committed, InsertError, Store},
    row::Row,
    table_schema::{Column, TableSchema},
    types::ColumnType,
};

/// Which id an operation aims at: the name's current one, or the one before it.
#[derive(Debug, Clone, Copy)]
struct Target {
    name: u8,
    old: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Open(u8),
    Insert {
        target: Target,
        rows: u8,
        token: String,
    },
    Advance(u16),
    Flush,
    Restart,
    Invalidate(Target),
    Delete(Target),
    Stall(Option<Target>),
    Resume(Option<Target>),
    SupersededFlush(bool),
    SetCommitted(Target, String),
    DropName(Target),
}

/// Integers and opaque text, so nothing can lean on an order between tokens.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u16..40).prop_map(|n| n.to_string()),
        "[a-c]{1,2}".prop_map(|s| format!("v2.{s}")),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    (0u8..3, proptest::bool::weighted(0.25)).prop_map(|(name, old)| Target { name, old })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..3).prop_map(Op::Open),
        8 => (target(), 1u8..4, token()).prop_map(|(target, rows, token)| Op::Insert { target, rows, token }),
        3 => (0u16..300).prop_map(Op::Advance),
        1 => Just(Op::Flush),
        1 => Just(Op::Restart),
        1 => target().prop_map(Op::Invalidate),
        1 => target().prop_map(Op::Delete),
        1 => proptest::option::of(target()).prop_map(Op::Stall),
        1 => proptest::option::of(target()).prop_map(Op::Resume),
        1 => any::<bool>().prop_map(Op::SupersededFlush),
        1 => (target(), token()).prop_map(|(t, token)| Op::SetCommitted(t, token)),
        1 => target().prop_map(Op::DropName),
    ]
}

fn key(name: u8) -> ChannelKey {
    ChannelKey {
        rudder_identifier: format!("dest-{name}"),
        partition: "1".to_owned(),
        table: TableRef {
            database: "DB".to_owned(),
            schema: "S".to_owned(),
            table: "T".to_owned(),
        },
    }
}

struct MBatch {
    rows: Vec<u64>,
    token: String,
    bytes: usize,
    at: Instant,
    seq: u64,
}

struct MChannel {
    name: u8,
    valid: bool,
    superseded: bool,
    deleted: bool,
    stalled: bool,
    committed: String,
    latest: String,
    buffer: VecDeque<MBatch>,
}

impl MChannel {
    fn bytes(&self) -> usize {
        self.buffer.iter().map(|b| b.bytes).sum()
    }
}

/// The oracle: what every id the service knows should show.
struct Model {
    channels: HashMap<String, MChannel>,
    current: HashMap<u8, String>,
    /// Ids of each name, oldest first.
    history: HashMap<u8, Vec<String>>,
    persisted: HashMap<u8, String>,
    stall_all: bool,
    superseded_flush: bool,
    max_bytes: usize,
    next_seq: u64,
    next_row: u64,
    committed_rows: HashSet<u64>,
}

impl Model {
    fn new(max_bytes: usize) -> Self {
        Self {
            channels: HashMap::new(),
            current: HashMap::new(),
            history: HashMap::new(),
            persisted: HashMap::new(),
            stall_all: false,
            superseded_flush: false,
            max_bytes,
            next_seq: 0,
            next_row: 0,
            committed_rows: HashSet::new(),
        }
    }

    /// The id `t` aims at, if the name has had one since the last restart or drop of the name.
    fn id(&self, t: Target) -> Option<String> {
        let ids = self.history.get(&t.name)?;
        let idx = if t.old {
            ids.len().checked_sub(2)?
        } else {
            ids.len().checked_sub(1)?
        };
        ids.get(idx).cloned()
    }

    fn invalidate(&mut self, id: &str) {
        if let Some(ch) = self.channels.get_mut(id)
            && ch.valid
        {
            ch.valid = false;
            ch.superseded = false;
            ch.buffer.clear();
            ch.latest = ch.committed.clone();
        }
    }

    /// The rows `batches` hold, as the first row of each batch, in order.
    fn firsts(batches: &[Committed]) -> Vec<u64> {
        batches
            .iter()
            .map(|c| c.rows.first().map_or(u64::MAX, row_id))
            .collect()
    }

    /// Checks and applies commits the store made, in the order it made them.
    fn commit(&mut self, batches: Vec<Committed>) -> Result<(), TestCaseError> {
        let mut last_seq: HashMap<u8, u64> = HashMap::new();
        for batch in batches {
            let rows: Vec<u64> = batch.rows.iter().map(row_id).collect();
            let first = rows.first().copied().unwrap_or(u64::MAX);
            let found = self
                .channels
                .iter()
                .find(|(_, ch)| {
                    ch.buffer
                        .front()
                        .is_some_and(|b| b.rows.first() == Some(&first))
                })
                .map(|(id, _)| id.clone());
            let Some(id) = found else {
                return Err(TestCaseError::fail(format!(
                    "batch starting at row {first} committed but is not the front of any buffer"
                )));
            };
            let ch = self
                .channels
                .get_mut(&id)
                .ok_or_else(|| TestCaseError::fail("gone"))?;
            let Some(b) = ch.buffer.pop_front() else {
                return Err(TestCaseError::fail("empty buffer"));
            };
            prop_assert_eq!(&b.rows, &rows, "a batch commits whole");
            let name = ch.name;
            if let Some(prev) = last_seq.insert(name, b.seq) {
                prop_assert!(prev < b.seq, "name {} committed out of insert order", name);
            }
            ch.committed = b.token.clone();
            if ch.superseded && ch.buffer.is_empty() {
                ch.superseded = false;
                ch.valid = false;
            }
            for r in &rows {
                prop_assert!(self.committed_rows.insert(*r), "row {} committed twice", r);
            }
            self.persisted.insert(name, b.token.clone());
            if let Some(cur) = self.current.get(&name).filter(|c| **c != id).cloned()
                && let Some(c) = self.channels.get_mut(&cur).filter(|c| c.valid)
            {
                c.committed = b.token;
            }
        }
        Ok(())
    }

    /// First rows of the batches that must commit now: the due prefix of every committing channel.
    fn due(&self, due: impl Fn(&MBatch) -> bool) -> HashSet<u64> {
        if self.stall_all {
            return HashSet::new();
        }
        self.channels
            .values()
            .filter(|c| c.valid && !c.stalled)
            .flat_map(|c| c.buffer.iter().take_while(|b| due(b)))
            .filter_map(|b| b.rows.first().copied())
            .collect()
    }

    fn check(&self, store: &Store) -> Result<(), TestCaseError> {
        let infos = store.infos();
        prop_assert_eq!(infos.len(), self.channels.len(), "ids known");
        for info in infos {
            let Some(m) = self.channels.get(&info.channel_id) else {
                return Err(TestCaseError::fail(format!(
                    "{} known to the store only",
                    info.channel_id
                )));
            };
            let rows: usize = m.buffer.iter().map(|b| b.rows.len()).sum();
            prop_assert_eq!(
                (
                    info.valid,
                    info.superseded,
                    info.deleted,
                    info.stalled,
                    info.committed_offset.as_str(),
                    info.latest_inserted_offset.as_str(),
                    info.buffered_batches,
                    info.buffered_rows,
                ),
                (
                    m.valid && !m.deleted,
                    m.superseded,
                    m.deleted,
                    m.stalled || self.stall_all,
                    m.committed.as_str(),
                    m.latest.as_str(),
                    m.buffer.len(),
                    rows,
                ),
                "channel {}",
                info.channel_id
            );
        }
        Ok(())
    }
}

fn row_id(row: &Row) -> u64 {
    row.to_json()["ROW"].as_u64().unwrap_or(u64::MAX)
}

#[allow(clippy::too_many_lines)] // One arm per operation, each with its model.
fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let lag = Duration::from_millis(100);
    let mut now = Instant::now();
    // A small buffer bound, so early commits of full buffers are exercised too.
    let max_bytes = 50;
    let mut store = Store::new("p".to_owned(), max_bytes);
    let mut model = Model::new(max_bytes);
    let schema = Arc::new(TableSchema {
        columns: vec![Column {
            name: "ROW".to_owned(),
            ty: ColumnType::Variant,
            nullable: false,
        }],
    });
    for op in ops {
        match op {
            Op::Open(name) => {
                if let Some(old) = model.current.remove(&name) {
                    let keeps = model.superseded_flush
                        && model
                            .channels
                            .get(&old)
                            .is_some_and(|c| c.valid && !c.buffer.is_empty());
                    match model.channels.get_mut(&old) {
                        Some(ch) if keeps => ch.superseded = true,
                        _ => model.invalidate(&old),
                    }
                }
                let id = store.open(key(name), Arc::default());
                prop_assert!(!model.channels.contains_key(&id), "ids are fresh");
                let from = model.persisted.get(&name).cloned().unwrap_or_default();
                model.channels.insert(
                    id.clone(),
                    MChannel {
                        name,
                        valid: true,
                        superseded: false,
                        deleted: false,
                        stalled: false,
                        committed: from.clone(),
                        latest: from,
                        buffer: VecDeque::new(),
                    },
                );
                model.current.insert(name, id.clone());
                model.history.entry(name).or_default().push(id);
            }
            Op::Insert {
                target,
                rows,
                token,
            } => {
                let Some(id) = model.id(target) else {
                    continue;
                };
                let first = model.next_row;
                model.next_row += u64::from(rows);
                let ids: Vec<u64> = (first..model.next_row).collect();
                let batch: Vec<Row> = ids
                    .iter()
                    .map(|r| Row::from_json(&schema, &serde_json::json!({ "ROW": r })))
                    .collect();
                let bytes = usize::from(rows) * 10;
                // The model's answer: refused, or buffered after committing the oldest batches that
                // do not leave room.
                let expected: Result<Vec<u64>, InsertError> = match model.channels.get(&id) {
                    None => Err(InsertError::NotFound),
                    Some(c) if c.deleted => Err(InsertError::NotFound),
                    Some(c) if !c.valid || c.superseded => Err(InsertError::Invalid),
                    Some(c) => {
                        let mut early = Vec::new();
                        let mut held = c.bytes();
                        let mut refused = false;
                        for b in &c.buffer {
                            if held + bytes <= model.max_bytes {
                                break;
                            }
                            if model.stall_all || c.stalled {
                                refused = true;
                                break;
                            }
                            held -= b.bytes;
                            early.extend(b.rows.first().copied());
                        }
                        if refused {
                            Err(InsertError::BufferFull)
                        } else {
                            Ok(early)
                        }
                    }
                };
                match (store.insert(&id, batch, &token, bytes, now), expected) {
                    (Ok(early), Ok(want)) => {
                        prop_assert_eq!(Model::firsts(&early), want, "early commits");
                        model.commit(early)?;
                        model.next_seq += 1;
                        let ch = model
                            .channels
                            .get_mut(&id)
                            .ok_or_else(|| TestCaseError::fail("gone"))?;
                        ch.latest = token.clone();
                        ch.buffer.push_back(MBatch {
                            rows: ids,
                            token,
                            bytes,
                            at: now,
                            seq: model.next_seq,
                        });
                    }
                    (Err(got), Err(want)) => prop_assert_eq!(got, want),
                    (got, want) => {
                        return Err(TestCaseError::fail(format!(
                            "insert on {id}: store {:?}, model {want:?}",
                            got.map(|c| Model::firsts(&c))
                        )));
                    }
                }
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms));
                let want = model.due(|b| b.at + lag <= now);
                let got = store.commit_due(now, lag);
                prop_assert_eq!(
                    Model::firsts(&got).into_iter().collect::<HashSet<_>>(),
                    want
                );
                model.commit(got)?;
            }
            Op::Flush => {
                let want = model.due(|_| true);
                let got = store.flush_all();
                prop_assert_eq!(
                    Model::firsts(&got).into_iter().collect::<HashSet<_>>(),
                    want
                );
                model.commit(got)?;
            }
            Op::Restart => {
                store.restart();
                model.channels.clear();
                model.current.clear();
                model.history.clear();
            }
            Op::Invalidate(t) => {
                if let Some(id) = model.id(t) {
                    prop_assert_eq!(store.invalidate(&id), model.channels.contains_key(&id));
                    model.invalidate(&id);
                }
            }
            Op::Delete(t) => {
                if let Some(id) = model.id(t) {
                    prop_assert_eq!(store.delete(&id), model.channels.contains_key(&id));
                    if let Some(ch) = model.channels.get_mut(&id) {
                        ch.deleted = true;
                    }
                }
            }
            Op::Stall(t) | Op::Resume(t) => {
                let stall = matches!(op, Op::Stall(_));
                match t {
                    None => {
                        store.set_stalled(None, stall);
                        model.stall_all = stall;
                        if !stall {
                            for ch in model.channels.values_mut() {
                                ch.stalled = false;
                            }
                        }
                    }
                    Some(t) => {
                        if let Some(id) = model.id(t) {
                            let known = store.set_stalled(Some(&id), stall);
                            prop_assert_eq!(known, model.channels.contains_key(&id));
                            if let Some(ch) = model.channels.get_mut(&id) {
                                ch.stalled = stall;
                            }
                        }
                    }
                }
            }
            Op::SupersededFlush(on) => {
                store.set_superseded_flush(on);
                model.superseded_flush = on;
            }
            Op::SetCommitted(t, token) => {
                if let Some(id) = model.id(t) {
                    let known = model.channels.get(&id).map(|c| c.name);
                    prop_assert_eq!(store.set_committed(&id, &token), known.is_some());
                    if let Some(name) = known {
                        model.persisted.insert(name, token.clone());
                        if let Some(cur) = model.current.get(&name).cloned()
                            && let Some(c) = model.channels.get_mut(&cur).filter(|c| c.valid)
                        {
                            c.committed = token;
                        }
                    }
                }
            }
            Op::DropName(t) => {
                if let Some(id) = model.id(t) {
                    let known = model.channels.get(&id).map(|c| c.name);
                    prop_assert_eq!(store.drop_name(&id), known.is_some());
                    if let Some(name) = known {
                        model.channels.retain(|_, c| c.name != name);
                        model.current.remove(&name);
                        model.history.remove(&name);
                        model.persisted.remove(&name);
                    }
                }
            }
        }
        model.check(&store)?;
    }
    // Whatever is still buffered commits exactly once when everything is resumed and flushed.
    store.set_stalled(None, false);
    model.stall_all = false;
    for ch in model.channels.values_mut() {
        ch.stalled = false;
    }
    let want = model.due(|_| true);
    let rest = store.flush_all();
    prop_assert_eq!(
        Model::firsts(&rest).into_iter().collect::<HashSet<_>>(),
        want
    );
    model.commit(rest)?;
    model.check(&store)?;
    prop_assert!(
        model.channels.values().all(|c| c.buffer.is_empty()),
        "rows left behind"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn channels_show_what_the_model_predicts(ops in proptest::collection::vec(op(), 0..60)) {
        run(ops)?;
    }
}
