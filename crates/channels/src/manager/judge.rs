//! Judging rows: from the channel's committed token, or the opening of a later epoch this layer knows of
//! (its own, or the state store's), whichever says more; reopening lost, invalid and stuck channels so that
//! what is in flight is settled once and for all.

use std::{collections::HashMap, time::Duration};

use snowpipe_api::{Backend, BackendExt as _, ChannelHandle, ChannelStatus};

use super::{ChannelId, ChannelManager, EntryRows, EntryVerdict, Positions, Segment};
use crate::{
    ChannelError, Warehouse,
    token::{Committed, Token},
    verdict::{self, Fencing, Rest, SegmentVerdict, Undecidable},
};

/// How often a bounded wait for a commit asks again: the first wait, doubled up to the last.
const POLL_FIRST: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(500);

/// What a channel's rows are judged from.
enum View {
    /// The newest token known: the committed one, or a later opening's; with why it knows nothing of epochs
    /// before its list's start.
    Token(Token, Undecidable),
    /// Nothing committed ever, and no opening known: every row is still in flight.
    Nothing,
    /// A committed token this layer cannot read.
    Unreadable,
}

impl<B: Backend, W: Warehouse> ChannelManager<B, W> {
    fn fencing(&self) -> Fencing {
        if self.backend.capabilities().sets_offset_token {
            Fencing::Fenced
        } else {
            Fencing::Unfenced
        }
    }

    /// The table's channel as poll asks it: the one open now in this process, else the one the state store
    /// names, else the entry's.
    async fn current(&self, table: &str, entry_channel: &str) -> ChannelHandle {
        if let Some(channel) = self.writer(table).lock().await.channel.clone() {
            return channel.handle.clone();
        }
        let id = self
            .state
            .load(table)
            .map(|kept| kept.channel_id)
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| entry_channel.to_owned());
        self.settings.handle(&ChannelId {
            table: table.to_owned(),
            id,
        })
    }

    /// The newest token known of the table's channel, with its committed token `committed`.
    async fn view(&self, table: &str, committed: Option<&str>) -> View {
        let local = {
            let writer = self.writer(table);
            let mut writer = writer.lock().await;
            if let Committed::Token(token) = Committed::read(committed)
                && writer.committed_seen.as_ref().is_none_or(|seen| {
                    (token.epoch.ordered, token.position) > (seen.epoch.ordered, seen.position)
                })
            {
                writer.committed_seen = Some(token);
            }
            writer
                .opening
                .clone()
                .map(|o| (o, writer.horizon.unwrap_or(Undecidable::ListTooShort)))
        }
        .or_else(|| {
            let kept = self.state.load(table)?;
            let horizon = kept
                .horizon
                .as_deref()
                .and_then(Undecidable::from_label)
                .unwrap_or(Undecidable::ListTooShort);
            Token::parse(&kept.opening).ok().map(|o| (o, horizon))
        });
        let newer = |token: &Token| {
            local
                .as_ref()
                .is_some_and(|(o, _)| o.epoch.ordered > token.epoch.ordered)
        };
        match Committed::read(committed) {
            Committed::Token(token) if newer(&token) => match local {
                Some((opening, horizon)) => View::Token(opening, horizon),
                None => View::Token(token, Undecidable::ListTooShort),
            },
            Committed::Token(token) => View::Token(token, Undecidable::ListTooShort),
            Committed::None | Committed::Legacy(_) => {
                local.map_or(View::Nothing, |(o, h)| View::Token(o, h))
            }
            Committed::Unreadable(_) => View::Unreadable,
        }
    }

    fn judge_with(&self, view: &View, positions: &[Positions]) -> Vec<SegmentVerdict> {
        positions
            .iter()
            .map(|p| match view {
                View::Token(token, horizon) => {
                    verdict::judge_within(p.epoch, p.first, p.last, token, self.fencing(), *horizon)
                }
                View::Nothing => SegmentVerdict {
                    committed_through: p.first.saturating_sub(1),
                    rest: match self.fencing() {
                        Fencing::Unfenced => Rest::InFlight,
                        Fencing::Fenced => Rest::Undecidable(Undecidable::TokenWentBack),
                    },
                },
                View::Unreadable => SegmentVerdict {
                    committed_through: p.first.saturating_sub(1),
                    rest: Rest::Undecidable(Undecidable::UnreadableToken),
                },
            })
            .collect()
    }

    /// See [`Channels::judge`](super::Channels::judge).
    pub(super) async fn judge_entries(
        &self,
        entries: &[EntryRows],
        settle: bool,
    ) -> Vec<Result<EntryVerdict, ChannelError>> {
        let mut handles: Vec<ChannelHandle> = Vec::new();
        let mut at: Vec<usize> = Vec::with_capacity(entries.len());
        // By table and id: a backend that names channels (the REST API) gives every table's channel the
        // same id, one per pipe, so the id alone does not tell them apart.
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        for entry in entries {
            let handle = self.current(&entry.table, &entry.channel_id).await;
            let key = (entry.table.clone(), handle.id.clone());
            let slot = *index.entry(key).or_insert_with(|| {
                handles.push(handle);
                handles.len() - 1
            });
            at.push(slot);
        }
        let statuses = match self
            .backend
            .bulk_status_chunked(&handles, self.settings.bulk_status_batch_size)
            .await
        {
            Ok(statuses) => statuses,
            Err(source) => {
                let tables: Vec<&str> = entries.iter().map(|e| e.table.as_str()).collect();
                let error = self.service_error(
                    &tables.join(", "),
                    "fetching the status of the import's channels",
                    source,
                );
                let message = error.to_string();
                return entries
                    .iter()
                    .map(|entry| {
                        Err(ChannelError::Append {
                            table: entry.table.clone(),
                            channel_id: entry.channel_id.clone(),
                            message: message.clone(),
                        })
                    })
                    .collect();
            }
        };
        let mut out = Vec::with_capacity(entries.len());
        for (entry, slot) in entries.iter().zip(at) {
            let status = &statuses[slot];
            let verdict = match status {
                Some(status) if status.valid => {
                    let view = self.view(&entry.table, status.committed.as_deref()).await;
                    let segments = self.judge_with(&view, &entry.segments);
                    let in_flight = segments.iter().any(|v| v.rest == Rest::InFlight);
                    if settle && in_flight {
                        // Bulk status can call a broken channel valid: ask the channel itself before settling.
                        let invalid = matches!(
                            self.backend.channel_status(&handles[slot]).await,
                            Ok(Some(ChannelStatus { valid: false, .. }) | None)
                        );
                        self.settle(entry, invalid).await
                    } else {
                        Ok(EntryVerdict {
                            segments,
                            reopened_invalid: false,
                        })
                    }
                }
                // Lost (the service restarted) or invalid: its uncommitted rows will never commit; reopen it
                // and judge from what that opening finds.
                _ => self.settle(entry, true).await,
            };
            out.push(verdict);
        }
        out
    }

    /// Reopens the entry's channel (one writer at a time, discarding what is in flight) and judges its rows
    /// from the token that opening found, which is final for every earlier epoch.
    async fn settle(&self, entry: &EntryRows, invalid: bool) -> Result<EntryVerdict, ChannelError> {
        let writer = self.writer(&entry.table);
        let mut writer = writer.lock().await;
        tracing::info!(table = %entry.table, channel_id = %entry.channel_id, invalid, "reopening the channel to settle an import's rows");
        self.open(&entry.table, &mut writer, None, true).await?;
        let view = writer.opening.clone().map_or(View::Nothing, |o| {
            View::Token(o, writer.horizon.unwrap_or(Undecidable::ListTooShort))
        });
        drop(writer);
        let segments = self
            .judge_with(&view, &entry.segments)
            .into_iter()
            .map(verdict::after_reopen)
            .collect();
        Ok(EntryVerdict {
            segments,
            reopened_invalid: invalid,
        })
    }

    /// See [`Channels::wait_for_commit`](super::Channels::wait_for_commit).
    pub(super) async fn wait_committed(
        &self,
        table: &str,
        segments: &[Segment],
        within: Duration,
    ) -> Result<bool, ChannelError> {
        let positions: Vec<Positions> = segments
            .iter()
            .map(|s| Positions {
                epoch: s.epoch,
                first: s.first,
                last: s.last,
            })
            .collect();
        let mut waited = Duration::ZERO;
        let mut step = POLL_FIRST;
        loop {
            let Some(channel) = self.writer(table).lock().await.channel.clone() else {
                return Ok(false);
            };
            let status = self
                .backend
                .channel_status(&channel.handle)
                .await
                .map_err(|source| {
                    self.service_error(table, "reading the channel's status", source)
                })?;
            let Some(status) = status.filter(|s| s.valid) else {
                return Ok(false);
            };
            let view = self.view(table, status.committed.as_deref()).await;
            let verdicts = self.judge_with(&view, &positions);
            if verdicts.iter().all(|v| v.rest == Rest::Nothing) {
                return Ok(true);
            }
            if verdicts
                .iter()
                .any(|v| !matches!(v.rest, Rest::Nothing | Rest::InFlight))
                || waited >= within
            {
                return Ok(false);
            }
            self.sleep.sleep(step).await;
            waited += step;
            step = (step * 2).min(POLL_MAX);
        }
    }

    /// See [`Channels::statuses`](super::Channels::statuses).
    pub(super) async fn bulk_statuses(
        &self,
        channels: &[ChannelId],
    ) -> Result<Vec<Option<ChannelStatus>>, ChannelError> {
        let handles: Vec<ChannelHandle> =
            channels.iter().map(|c| self.settings.handle(c)).collect();
        self.backend
            .bulk_status_chunked(&handles, self.settings.bulk_status_batch_size)
            .await
            .map_err(|source| {
                let tables: Vec<&str> = channels.iter().map(|c| c.table.as_str()).collect();
                self.service_error(
                    &tables.join(", "),
                    "fetching the status of the import's channels",
                    source,
                )
            })
    }
}
