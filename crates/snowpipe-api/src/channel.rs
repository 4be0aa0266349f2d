//! Channels as every backend knows them: which channel (named by the caller), how to open it, and where it
//! stands.
//!
//! A channel is the one writer of rows into one table for one destination and instance. The sidecar hands
//! out channel ids; Snowflake's REST API names channels on a pipe and chains continuation tokens. What both
//! share is here: the caller names the channel, opens it (which supersedes any earlier writer), appends rows
//! labelled with offset tokens, and reads the last committed token back.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Column;

/// A fully qualified table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableRef {
    /// Database name.
    #[serde(default)]
    pub database: String,
    /// Schema name.
    #[serde(default)]
    pub schema: String,
    /// Table name.
    #[serde(default)]
    pub table: String,
    /// Whether the table is an Iceberg table.
    #[serde(default)]
    pub enable_iceberg: bool,
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.database, self.schema, self.table)
    }
}

/// Which channel: the table it writes to and who writes it.
///
/// The caller names the channel from its destination and instance, so that two destinations, or two
/// instances of one, never share a channel: opening a channel supersedes whoever wrote it before.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelRef {
    /// The table the channel writes to.
    pub table: TableRef,
    /// The destination the channel belongs to.
    pub destination: String,
    /// The instance (partition) of the destination's writer.
    pub instance: String,
}

impl ChannelRef {
    /// The channel's name on a service that names channels (Snowflake's REST API): destination and instance
    /// upper-cased, every character but letters, digits and `_` made `_`, then a hash of the exact destination
    /// and instance. `DEST_1_3F09A2C47D1B`.
    ///
    /// The readable part makes the channel easy to find in Snowflake; the hash keeps apart destinations whose
    /// ids differ only in case or punctuation (`dest-1` and `DEST_1`), which would otherwise share a channel
    /// and supersede each other. The name is a plain identifier, so it reads the same in a URL path (where
    /// case does not matter) and in a bulk-status answer (where it does). The hash is FNV-1a, stable across
    /// releases and platforms: a name, once used, must name the same channel in every later process.
    pub fn name(&self) -> String {
        const READABLE_MAX: usize = 96;
        let readable: String = format!("{}_{}", self.destination, self.instance)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .take(READABLE_MAX)
            .collect();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let exact = [self.destination.as_bytes(), b"\0", self.instance.as_bytes()];
        for byte in exact.into_iter().flatten() {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // 48 bits: collisions need millions of destinations sharing one readable name.
        let prefix = if readable.starts_with(|c: char| c.is_ascii_digit()) {
            "_"
        } else {
            ""
        };
        format!("{prefix}{readable}_{:012X}", hash >> 16)
    }
}

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "channel of {} (destination {}, instance {})",
            self.table, self.destination, self.instance
        )
    }
}

/// An opened channel, as calls after the open name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelHandle {
    /// Which channel.
    pub channel: ChannelRef,
    /// The backend's id of this opening of the channel (the sidecar's channel id): what import entries keep
    /// and status calls take.
    pub id: String,
}

/// What to do with rows an earlier writer appended that are not committed yet, when a channel is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUncommitted {
    /// Do not throw them away: wait until they are committed (bounded, backend by backend) and fail the open
    /// rather than discard them. Only backends with [`Capabilities::waits_for_uncommitted`] can.
    Wait,
    /// Throw them away: they will never commit.
    Discard,
}

/// How to open a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// What happens to an earlier writer's uncommitted rows.
    pub uncommitted: OnUncommitted,
    /// A token to store as the channel's committed token at once. Only backends with
    /// [`Capabilities::sets_offset_token`] can.
    pub offset_token: Option<String>,
}

impl OpenOptions {
    /// Opens the channel, discarding an earlier writer's uncommitted rows; every backend can.
    pub fn discard() -> Self {
        Self {
            uncommitted: OnUncommitted::Discard,
            offset_token: None,
        }
    }

    /// Opens the channel, waiting for an earlier writer's uncommitted rows to commit.
    pub fn wait() -> Self {
        Self {
            uncommitted: OnUncommitted::Wait,
            offset_token: None,
        }
    }

    /// The same options, also storing `token` as the committed token.
    #[must_use]
    pub fn with_offset_token(mut self, token: impl Into<String>) -> Self {
        self.offset_token = Some(token.into());
        self
    }
}

/// What a backend can do beyond what every backend does, so the layer above can choose its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// An open can wait for an earlier writer's uncommitted rows ([`OnUncommitted::Wait`]).
    pub waits_for_uncommitted: bool,
    /// An open can store a committed token ([`OpenOptions::offset_token`]).
    pub sets_offset_token: bool,
    /// An open reports the table's columns ([`OpenedChannel::columns`]); otherwise the caller reads them
    /// from the warehouse.
    pub columns_on_open: bool,
    /// Statuses report the latest token the channel was handed ([`Progress::Inserted`]).
    pub reports_inserted_offset: bool,
}

impl Capabilities {
    /// No capability beyond the common ones.
    pub fn none() -> Self {
        Self::default()
    }

    /// These capabilities with [`Capabilities::waits_for_uncommitted`] set as given.
    #[must_use]
    pub fn with_waits_for_uncommitted(mut self, yes: bool) -> Self {
        self.waits_for_uncommitted = yes;
        self
    }

    /// These capabilities with [`Capabilities::sets_offset_token`] set as given.
    #[must_use]
    pub fn with_sets_offset_token(mut self, yes: bool) -> Self {
        self.sets_offset_token = yes;
        self
    }

    /// These capabilities with [`Capabilities::columns_on_open`] set as given.
    #[must_use]
    pub fn with_columns_on_open(mut self, yes: bool) -> Self {
        self.columns_on_open = yes;
        self
    }

    /// These capabilities with [`Capabilities::reports_inserted_offset`] set as given.
    #[must_use]
    pub fn with_reports_inserted_offset(mut self, yes: bool) -> Self {
        self.reports_inserted_offset = yes;
        self
    }
}

/// The answer to an open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedChannel {
    /// The channel as later calls name it.
    pub handle: ChannelHandle,
    /// Where the channel stands as the open left it, when the backend says so with the open (the REST API
    /// does: its token there is final for everything appended before the open).
    pub status: Option<ChannelStatus>,
    /// The table's columns, when the backend reports them with the open (the sidecar does).
    pub columns: Option<Vec<Column>>,
}

/// Where a channel stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelStatus {
    /// Whether the channel can still commit. An invalid channel never will: its uncommitted rows are lost
    /// and it must be opened anew.
    pub valid: bool,
    /// The end token of the last request that committed; `None` while nothing was committed. Backends
    /// compare nothing: this is the last committed token, not the greatest.
    pub committed: Option<String>,
    /// What else the backend knows of the channel's progress.
    pub progress: Progress,
}

impl ChannelStatus {
    /// The committed token, `""` when none.
    pub fn committed_str(&self) -> &str {
        self.committed.as_deref().unwrap_or("")
    }
}

/// What a backend knows of a channel's progress beyond its committed token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// Nothing more.
    Unknown,
    /// The token of the last request the channel was handed, committed or not (the sidecar's
    /// `latestInsertedOffset`); `None` while nothing was appended.
    Inserted(Option<String>),
    /// Cumulative row counters (Snowflake's REST API).
    Counters(RowCounters),
}

/// A channel's cumulative counters, as Snowflake's REST API reports them. They survive a reopen; a channel
/// dropped and created again starts over with a new `created_on_ms`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowCounters {
    /// Rows committed into the table.
    pub rows_inserted: u64,
    /// Rows parsed.
    pub rows_parsed: u64,
    /// Rows rejected at commit.
    pub rows_error_count: u64,
    /// The end token of the last request that held a rejected row.
    pub last_error_offset_upper_bound: Option<String>,
    /// Snowflake's message about the last rejected row.
    pub last_error_message: Option<String>,
    /// When this incarnation of the channel was created, in milliseconds since the epoch.
    pub created_on_ms: i64,
}

/// How to drop a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DropOptions {
    /// Return only once the rows appended so far are committed (the sidecar's `sync`); otherwise drop at
    /// once, and whether those rows still commit is the backend's matter.
    pub wait_for_commit: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(destination: &str, instance: &str) -> ChannelRef {
        ChannelRef {
            table: TableRef::default(),
            destination: destination.into(),
            instance: instance.into(),
        }
    }

    #[test]
    fn names_are_plain_identifiers_that_keep_exact_ids_apart() {
        let name = channel("dest-1", "0").name();
        assert!(name.starts_with("DEST_1_0_"), "{name}");
        assert_eq!(name.len(), "DEST_1_0_".len() + 12);
        assert!(
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        );
        // Same readable part, different exact ids: different names.
        assert_ne!(name, channel("DEST_1", "0").name());
        assert_ne!(name, channel("dest", "1-0").name());
        // Stable: the same id names the same channel in every process and release.
        assert_eq!(name, "DEST_1_0_2B153758A300");
        assert_eq!(channel("2xyz", "1").name().chars().next(), Some('_'));
        assert!(channel(&"x".repeat(500), "1").name().len() < 120);
    }
}
