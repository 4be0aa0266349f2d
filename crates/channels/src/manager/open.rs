//! Opening a channel: the start of an epoch.
//!
//! An opening supersedes every earlier writer, so the committed token it finds is final for every earlier
//! epoch: that is what its opening token records. Before reopening where the backend cannot wait itself
//! (the sidecar), it waits, bounded, for the rows of the channel written before (by this process or, from
//! the state store, the one before it) to commit, so that back-to-back uploads do not discard each other;
//! where the backend can store a token (the REST API), the opening token is written at once as a fence,
//! and checked.

use std::{sync::Arc, time::Duration};

use snowpipe_api::{
    Backend, BackendExt as _, ChannelHandle, ChannelStatus, MissingObject, OpenOptions,
    OpenedChannel, Progress,
};
use snowpipe_grouping::Schema;

use super::{Baseline, Channel, ChannelId, ChannelManager, FENCE_ERRORS_KEPT, Writer};
use crate::{
    ChannelError, Warehouse,
    state::TableState,
    token::{Committed, Epoch, Token},
    verdict::Undecidable,
};

/// Most times an opening starts over because another writer's fence got in between.
const MAX_FENCE_ATTEMPTS: u32 = 3;

/// How often a bounded wait asks again: the first wait, doubled up to the last.
const POLL_FIRST: Duration = Duration::from_millis(50);
const POLL_MAX: Duration = Duration::from_secs(1);

/// Whether a status shows rows handed to the channel and not committed yet.
fn has_pending(status: &ChannelStatus) -> bool {
    match &status.progress {
        Progress::Inserted(latest) => latest.is_some() && *latest != status.committed,
        _ => false,
    }
}

impl<B: Backend, W: Warehouse> ChannelManager<B, W> {
    /// Opens the table's channel: a new epoch. With `discard`, an earlier writer's uncommitted rows are
    /// thrown away at once (the stuck, invalid and lost paths, and settling an append); without, they are
    /// waited for, bounded.
    pub(super) async fn open(
        &self,
        table: &str,
        writer: &mut Writer,
        ddl_schema: Option<&Schema>,
        discard: bool,
    ) -> Result<Arc<Channel>, ChannelError> {
        let capabilities = self.backend.capabilities();
        let kept = self.state.load(table);
        let previous: Option<(ChannelHandle, Option<Epoch>)> = match (&writer.channel, &kept) {
            (Some(channel), _) => Some((channel.handle.clone(), Some(channel.epoch))),
            (None, Some(kept)) if !kept.channel_id.is_empty() => Some((
                self.settings.handle(&ChannelId {
                    table: table.to_owned(),
                    id: kept.channel_id.clone(),
                }),
                Token::parse(&kept.opening).ok().map(|t| t.epoch),
            )),
            _ => None,
        };
        if !discard
            && !capabilities.waits_for_uncommitted
            && let Some((handle, _)) = &previous
            && !self.drained(handle).await
        {
            tracing::warn!(table, channel_id = %handle.id, wait = ?self.settings.reopen_wait,
                "rows of the channel written before did not commit in time; reopening anyway (they come back as failed)");
        }
        let options = if discard || !capabilities.waits_for_uncommitted {
            OpenOptions::discard()
        } else {
            OpenOptions::wait()
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let opened = self.open_with_ddl(table, &options, ddl_schema).await?;
            // The open superseded the channel this writer held (on REST its continuation token now belongs
            // to this opening). Should anything after it fail — the fence, reading the columns — no append
            // may go out in the old epoch, whose rows this opening already calls final: the next append
            // opens again.
            writer.channel = None;
            let mut found = self.committed_at_open(table, &opened).await?;
            let mut cautious = None;
            if !capabilities.sets_offset_token
                && let Some((handle, epoch)) = &previous
                && handle.id != opened.handle.id
            {
                // A superseded channel that keeps committing after the reopen would move the token past what
                // this opening found: wait for it, and read the token again once it is done.
                if self.drained(handle).await {
                    found = self.committed_at_open(table, &opened).await?;
                } else {
                    tracing::warn!(table, channel_id = %handle.id,
                        "the superseded channel still commits rows after the reopen; its rows cannot be judged from this opening");
                    cautious = *epoch;
                }
            }
            let committed = Committed::read(found.as_deref());
            let prior = writer
                .opening
                .clone()
                .or_else(|| kept.as_ref().and_then(|k| Token::parse(&k.opening).ok()));
            let epoch = self.new_epoch(&committed, prior.as_ref());
            let mut horizon = match committed {
                Committed::Legacy(_) | Committed::Unreadable(_) => {
                    Some(Undecidable::UnreadableToken)
                }
                Committed::None | Committed::Token(_) => None,
            };
            let went_back = Self::went_back(
                &committed,
                writer,
                kept.as_ref(),
                capabilities.sets_offset_token,
            );
            let mut opening = if went_back {
                tracing::warn!(table, committed = ?found,
                    "the channel's committed token went back (rewritten, or the channel dropped and created anew): earlier rows cannot be judged");
                horizon = Some(Undecidable::TokenWentBack);
                Token::opening(
                    epoch,
                    &Committed::Unreadable(found.clone().unwrap_or_default()),
                )
            } else {
                Token::opening(epoch, &committed)
            };
            if let Some(superseded) = cautious {
                opening = opening.without_final_of(superseded);
                horizon = Some(Undecidable::SupersededFlushing);
            }
            // The table's columns (DESCRIBE TABLE where the open reports none) are read while the fence is
            // written: two round trips at once, to two hosts, on every cold open.
            let (fenced, described) = if capabilities.sets_offset_token {
                let (fenced, described) = tokio::join!(
                    self.fence(table, &opened, &opening),
                    self.columns(table, opened.columns.clone())
                );
                (Some(fenced?), described)
            } else {
                (None, self.columns(table, opened.columns.clone()).await)
            };
            let handle = if let Some(fenced) = fenced {
                match fenced {
                    Some(handle) => handle,
                    None if attempt < MAX_FENCE_ATTEMPTS => {
                        tracing::warn!(
                            table,
                            attempt,
                            "another writer opened the channel meanwhile; opening again"
                        );
                        continue;
                    }
                    None => {
                        return Err(ChannelError::Append {
                            table: table.to_owned(),
                            channel_id: opened.handle.id,
                            message: format!(
                                "opening the channel of table {table}: another writer opened it {MAX_FENCE_ATTEMPTS} times in a row; two writers share this destination and instance"
                            ),
                        });
                    }
                }
            } else {
                opened.handle.clone()
            };
            if capabilities.sets_offset_token {
                writer.opening = Some(opening.clone());
                writer.horizon = horizon;
            }
            let Some(described) = described? else {
                let Some(columns) = ddl_schema else {
                    return Err(self.missing_table(table));
                };
                self.create_table(table, columns, false).await?;
                return Box::pin(self.open(table, writer, None, discard)).await;
            };
            let channel = Arc::new(Channel {
                handle,
                table: table.to_owned(),
                schema: described.schema,
                untyped_columns: described.untyped,
                constraints: described.constraints,
                epoch,
            });
            tracing::debug!(table, channel_id = %channel.id(), epoch = %epoch, "channel opened");
            let counters = match opened.status.as_ref().map(|s| &s.progress) {
                Some(Progress::Counters(c)) => Some(c.clone()),
                _ => None,
            };
            let errors_at_opening = counters
                .as_ref()
                .map(|c| (c.rows_error_count, c.created_on_ms));
            self.state.save(
                table,
                &TableState {
                    channel_id: channel.id().to_owned(),
                    opening: opening.to_string(),
                    committed_seen: found,
                    horizon: horizon.map(|h| h.as_str().to_owned()),
                    errors_at_opening,
                    inserted_at_opening: counters.as_ref().map(|c| c.rows_inserted),
                },
            );
            if let Some(c) = &counters {
                if writer.fence_errors.len() >= FENCE_ERRORS_KEPT {
                    writer.fence_errors.pop_front();
                }
                writer.fence_errors.push_back(Baseline {
                    epoch,
                    errors: c.rows_error_count,
                    inserted: Some(c.rows_inserted),
                    created_on_ms: c.created_on_ms,
                });
            }
            writer.opened_counters = counters;
            writer.channel = Some(Arc::clone(&channel));
            writer.opening = Some(opening);
            writer.next_position = 1;
            writer.committed_seen = committed.token().cloned();
            writer.horizon = horizon;
            return Ok(channel);
        }
    }

    /// Opens the channel; when `ddl_schema` is given and the schema or table is missing, creates them from
    /// it and opens once more.
    async fn open_with_ddl(
        &self,
        table: &str,
        options: &OpenOptions,
        ddl_schema: Option<&Schema>,
    ) -> Result<OpenedChannel, ChannelError> {
        let call = "opening the channel";
        let channel = self.settings.channel(table);
        let error = match self.backend.open_channel(&channel, options).await {
            Ok(opened) => return Ok(opened),
            Err(error) => error,
        };
        let schema = &self.settings.schema;
        match (error.missing_object(), ddl_schema) {
            (Some(MissingObject::Schema), Some(columns)) => {
                tracing::info!(table, schema, "schema missing: creating schema and table");
                self.create_table(table, columns, true).await?;
            }
            (Some(MissingObject::Table), Some(columns)) => {
                tracing::info!(table, schema, "table missing: creating it");
                self.create_table(table, columns, false).await?;
            }
            _ => return Err(self.service_error(table, call, error)),
        }
        self.backend
            .open_channel(&channel, options)
            .await
            .map_err(|error| self.service_error(table, call, error))
    }

    /// The committed token as the opening found it: in the open's answer where the backend gives it, else
    /// asked right after (no one else writes meanwhile: the writer is this one).
    async fn committed_at_open(
        &self,
        table: &str,
        opened: &OpenedChannel,
    ) -> Result<Option<String>, ChannelError> {
        if let Some(status) = &opened.status {
            return Ok(status.committed.clone());
        }
        match self.backend.channel_status(&opened.handle).await {
            Ok(Some(status)) => Ok(status.committed),
            Ok(None) => Err(self.service_error(
                table,
                "reading the channel's status after opening it",
                snowpipe_api::Error::Reopen {
                    call: snowpipe_api::Call::ChannelStatus,
                    code: "not_found".into(),
                    message: "the backend lost the channel right after opening it".into(),
                },
            )),
            Err(source) => Err(self.service_error(
                table,
                "reading the channel's status after opening it",
                source,
            )),
        }
    }

    /// Writes the opening token as the channel's committed token and checks that the answer shows exactly
    /// it, with the counters and creation time of the first open: anything else means another writer got in
    /// between (`None`: start over).
    async fn fence(
        &self,
        table: &str,
        first: &OpenedChannel,
        opening: &Token,
    ) -> Result<Option<ChannelHandle>, ChannelError> {
        let fence = opening.to_string();
        let options = OpenOptions::wait().with_offset_token(fence.clone());
        let second = self
            .backend
            .open_channel(&self.settings.channel(table), &options)
            .await
            .map_err(|error| self.service_error(table, "writing the channel's fence", error))?;
        let counters = |opened: &OpenedChannel| match opened.status.as_ref().map(|s| &s.progress) {
            Some(Progress::Counters(c)) => {
                Some((c.rows_inserted, c.rows_error_count, c.created_on_ms))
            }
            _ => None,
        };
        let fenced = second
            .status
            .as_ref()
            .is_some_and(|s| s.committed.as_deref() == Some(fence.as_str()))
            && counters(&second) == counters(first);
        Ok(fenced.then_some(second.handle))
    }

    /// Waits, at most the settings' `reopen_wait`, until the channel has no rows handed over and not
    /// committed (or is gone, or invalid: its rows will never commit). `false` when the wait ran out.
    pub(super) async fn drained(&self, handle: &ChannelHandle) -> bool {
        let mut waited = Duration::ZERO;
        let mut step = POLL_FIRST;
        loop {
            match self.backend.channel_status(handle).await {
                Ok(Some(status)) if status.valid && has_pending(&status) => {}
                // Gone, invalid, settled; or its status cannot be read: waiting would not tell more.
                _ => return true,
            }
            if waited >= self.settings.reopen_wait {
                return false;
            }
            self.sleep.sleep(step).await;
            waited += step;
            step = (step * 2).min(POLL_MAX);
        }
    }

    /// Whether the committed token found is older than the newest this table's writer saw committed (in
    /// this process, or as the state store kept it): rewritten by hand, or the channel dropped and created
    /// anew, or a superseded channel's late commit. Commits go in order, so a token never goes back on
    /// its own. Where openings write their token as a fence (`fenced`), the last opening's token was
    /// committed too, whether or not a commit was seen since: finding none, or an older one, means the
    /// channel was dropped (or its token rewritten) after it.
    fn went_back(
        committed: &Committed,
        writer: &Writer,
        kept: Option<&TableState>,
        fenced: bool,
    ) -> bool {
        let kept_seen = kept
            .and_then(|k| k.committed_seen.as_deref())
            .and_then(|t| Token::parse(t).ok());
        let fences = if fenced {
            [
                writer.opening.clone(),
                kept.and_then(|k| Token::parse(&k.opening).ok()),
            ]
        } else {
            [None, None]
        };
        let seen = [writer.committed_seen.clone(), kept_seen]
            .into_iter()
            .chain(fences)
            .flatten()
            .max_by_key(|t| (t.epoch.ordered, t.position));
        let Some(seen) = seen else {
            return false;
        };
        match committed {
            Committed::Token(token) => {
                (token.epoch.ordered, token.position) < (seen.epoch.ordered, seen.position)
            }
            Committed::None | Committed::Legacy(_) | Committed::Unreadable(_) => true,
        }
    }

    /// A new epoch: after every epoch known of the channel, at the time of day when it can be.
    fn new_epoch(&self, committed: &Committed, prior: Option<&Token>) -> Epoch {
        let now = self
            .clock
            .system_time()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let after = |token: Option<&Token>| token.map_or(0, |t| t.epoch.ordered.saturating_add(1));
        let ordered = now.max(after(committed.token())).max(after(prior));
        let mut nonce = [0u8; 4];
        if aws_lc_rs::rand::fill(&mut nonce).is_err() {
            // Without the system's randomness, the clock's low bits still tell two writers apart mostly.
            nonce = u32::try_from(now % u64::from(u32::MAX))
                .unwrap_or_default()
                .to_le_bytes();
        }
        Epoch {
            ordered,
            nonce: u32::from_le_bytes(nonce),
        }
    }

    /// Where the channels of these tables stand; see [`Channels::refresh`](super::Channels::refresh).
    pub(super) async fn refresh_open(&self, tables: &[String]) -> Result<(), ChannelError> {
        let mut open = Vec::new();
        for table in tables {
            if let Some(channel) = self.writer(table).lock().await.channel.clone() {
                open.push(channel);
            }
        }
        if open.is_empty() {
            return Ok(());
        }
        let handles: Vec<ChannelHandle> = open.iter().map(|c| c.handle.clone()).collect();
        let statuses = self
            .backend
            .bulk_status_chunked(&handles, self.settings.bulk_status_batch_size)
            .await
            .map_err(|source| {
                let tables: Vec<&str> = open.iter().map(|c| c.table.as_str()).collect();
                self.service_error(
                    &tables.join(", "),
                    "fetching the status of the cached channels",
                    source,
                )
            })?;
        for (channel, status) in open.iter().zip(statuses) {
            if status.as_ref().is_some_and(|s| s.valid) {
                continue;
            }
            tracing::info!(table = %channel.table, channel_id = %channel.id(), lost = status.is_none(), "reopening channel");
            let writer = self.writer(&channel.table);
            let mut writer = writer.lock().await;
            // Only this channel: another task may have opened the table's channel anew meanwhile. The epoch's
            // opening stays: it still judges the rows written before.
            if writer
                .channel
                .as_ref()
                .is_some_and(|c| c.id() == channel.id())
            {
                writer.channel = None;
            }
        }
        Ok(())
    }
}
