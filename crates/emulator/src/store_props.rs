//! Property test of the channel state machine: any sequence of opens, inserts, commits, flushes,
//! invalidations, deletes, stalls and restarts keeps committed ≤ latest inserted on every channel,
//! commits every row at most once, and never commits a row its channel lost (by reopen, invalidation
//! or restart).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use proptest::prelude::*;

use crate::{
    catalog::{Column, TableRef, TableSchema},
    row::Row,
    store::{ChannelKey, Store, offset_cmp},
    types::ColumnType,
};

#[derive(Debug, Clone)]
enum Op {
    Open(u8),
    Insert { name: u8, rows: u8, offset: u16 },
    Advance(u16),
    Flush,
    Restart,
    Invalidate(u8),
    Delete(u8),
    Stall(Option<u8>),
    Resume(Option<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    let name = 0u8..3;
    prop_oneof![
        2 => name.clone().prop_map(Op::Open),
        6 => (name.clone(), 1u8..4, 0u16..40).prop_map(|(name, rows, offset)| Op::Insert { name, rows, offset }),
        3 => (0u16..300).prop_map(Op::Advance),
        1 => Just(Op::Flush),
        1 => Just(Op::Restart),
        1 => name.clone().prop_map(Op::Invalidate),
        1 => name.clone().prop_map(Op::Delete),
        1 => proptest::option::of(name.clone()).prop_map(Op::Stall),
        1 => proptest::option::of(name).prop_map(Op::Resume),
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

/// The model: which rows are waiting in which channel, which were lost, which committed.
#[derive(Default)]
struct Model {
    ids: HashMap<u8, String>,
    pending: HashMap<u64, String>,
    committed: HashSet<u64>,
    next_row: u64,
}

impl Model {
    fn lose_channel(&mut self, id: &str) {
        self.pending.retain(|_, ch| ch != id);
    }

    fn commit(&mut self, batches: Vec<crate::store::Committed>) -> Result<(), TestCaseError> {
        for batch in batches {
            for row in batch.rows {
                let row_id = row.to_json()["ROW"].as_u64().unwrap_or(u64::MAX);
                prop_assert!(
                    self.pending.remove(&row_id).is_some(),
                    "row {} committed but not pending",
                    row_id
                );
                prop_assert!(
                    self.committed.insert(row_id),
                    "row {} committed twice",
                    row_id
                );
            }
        }
        Ok(())
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let lag = Duration::from_millis(100);
    let mut now = Instant::now();
    // A small buffer bound, so early commits of full buffers are exercised too.
    let mut store = Store::new("p".to_owned(), 50);
    let mut model = Model::default();
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
                if let Some(old) = model.ids.get(&name).cloned() {
                    model.lose_channel(&old);
                }
                let id = store.open(key(name), Arc::default());
                model.ids.insert(name, id);
            }
            Op::Insert { name, rows, offset } => {
                let Some(id) = model.ids.get(&name).cloned() else {
                    continue;
                };
                let first = model.next_row;
                model.next_row += u64::from(rows);
                let batch: Vec<Row> = (first..model.next_row)
                    .map(|r| Row::from_json(&schema, &serde_json::json!({ "ROW": r })))
                    .collect();
                let before = store.status(&id);
                match store.insert(&id, batch, &offset.to_string(), usize::from(rows) * 10, now) {
                    Ok(early) => {
                        for r in first..model.next_row {
                            model.pending.insert(r, id.clone());
                        }
                        model.commit(early)?;
                        let after = store.status(&id).unwrap();
                        prop_assert!(offset_cmp(&after.latest, &offset.to_string()).is_ge());
                    }
                    Err(_) => prop_assert_eq!(
                        before,
                        store.status(&id),
                        "a refused insert changes nothing"
                    ),
                }
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms));
                let due = store.commit_due(now, lag);
                model.commit(due)?;
            }
            Op::Flush => {
                let all = store.flush_all();
                model.commit(all)?;
            }
            Op::Restart => {
                store.restart();
                model.pending.clear();
            }
            Op::Invalidate(name) => {
                if let Some(id) = model.ids.get(&name).cloned() {
                    store.invalidate(&id);
                    model.lose_channel(&id);
                }
            }
            Op::Delete(name) => {
                if let Some(id) = model.ids.get(&name) {
                    store.delete(id);
                }
            }
            Op::Stall(name) | Op::Resume(name) => {
                let stall = matches!(op, Op::Stall(_));
                let id = name.and_then(|n| model.ids.get(&n).cloned());
                store.set_stalled(id.as_deref(), stall);
            }
        }
        for info in store.infos() {
            prop_assert!(
                offset_cmp(&info.committed_offset, &info.latest_inserted_offset).is_le(),
                "committed {} > latest inserted {} on {}",
                info.committed_offset,
                info.latest_inserted_offset,
                info.channel_id
            );
            let pending = model
                .pending
                .values()
                .filter(|ch| **ch == info.channel_id)
                .count();
            prop_assert_eq!(
                pending,
                info.buffered_rows,
                "model and store disagree on {}",
                info.channel_id
            );
        }
    }
    // Whatever is still pending commits exactly once when everything is resumed and flushed.
    store.set_stalled(None, false);
    let rest = store.flush_all();
    model.commit(rest)?;
    prop_assert!(
        model.pending.is_empty(),
        "rows left behind: {:?}",
        model.pending
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn committed_never_passes_inserted_and_rows_commit_at_most_once(ops in proptest::collection::vec(op(), 0..60)) {
        run(ops)?;
    }
}
