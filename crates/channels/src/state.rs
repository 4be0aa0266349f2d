//! What outlives one process for each table's channel: the channel id written last and what its opening
//! found. A later process reads it to wait for the rows of the one before it to commit before reopening
//! (so back-to-back uploads do not discard each other), and to judge rows of an epoch that a later
//! opening superseded without waiting for that epoch's first commit.
//!
//! In memory by default ([`MemoryState`]); the command keeps it in a state directory. Losing it costs
//! time (a wait skipped, a verdict postponed to the stuck path), never a wrong verdict: every verdict rests
//! on the service's committed token, and this only adds openings the service will confirm.

use std::{
    collections::HashMap,
    fmt,
    sync::{Mutex, PoisonError},
};

use serde::{Deserialize, Serialize};

/// One table's channel, as the last writer left it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableState {
    /// The backend's id of the channel opened last.
    pub channel_id: String,
    /// The token of that opening (its epoch, and the finals of earlier epochs it found).
    pub opening: String,
    /// The committed token the last writer saw, to notice a token that goes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_seen: Option<String>,
    /// Why that opening knows nothing of epochs before its list's start, when not because the list ran out
    /// (a label of `verdict::Undecidable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon: Option<String>,
    /// The service's count of rows rejected at commit when that opening was fenced, and the channel's
    /// creation time then (backends that report counters): while the count stays, nothing of the epoch was
    /// rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors_at_opening: Option<(u64, i64)>,
    /// The service's count of rows inserted when that opening was fenced: with `errors_at_opening`, the
    /// counters clear the epoch's committed rows once they have grown by as many rows as its token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inserted_at_opening: Option<u64>,
}

/// Where tables' channel states are kept between processes.
pub trait StateStore: Send + Sync + fmt::Debug {
    /// The table's state, if any was kept.
    fn load(&self, table: &str) -> Option<TableState>;

    /// Keeps the table's state. A store that cannot write says so in the log: correctness does not depend
    /// on it.
    fn save(&self, table: &str, state: &TableState);
}

/// States in memory, for one process (the library's default).
#[derive(Debug, Default)]
pub struct MemoryState(Mutex<HashMap<String, TableState>>);

impl StateStore for MemoryState {
    fn load(&self, table: &str) -> Option<TableState> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(table)
            .cloned()
    }

    fn save(&self, table: &str, state: &TableState) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(table.to_owned(), state.clone());
    }
}
