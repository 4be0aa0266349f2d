//! Judging rows: from the channel's committed token, or the opening of a later epoch this layer knows of
//! (its own, or the state store's), whichever says more; reopening lost, invalid and stuck channels so that
//! what is in flight is settled once and for all.

use std::{collections::HashMap, sync::Arc, time::Duration};

use snowpipe_api::{Backend, BackendExt as _, ChannelHandle, ChannelStatus, Progress, RowCounters};

use super::{
    Baseline, ChannelId, ChannelManager, CommitWait, EntryRows, EntryVerdict, Lag, Positions,
    Rejected, Segment,
};
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
        // Keyed by table and id: on REST a channel's name is its id, and every table has a channel of that
        // name (one pipe per table), so the id alone would give one table's status to another.
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
                    let mut segments = self.judge_with(&view, &entry.segments);
                    if let (View::Token(token, _), Progress::Counters(counters)) =
                        (&view, &status.progress)
                        && let Some(lag) = self
                            .counters_lag(&entry.table, &entry.segments, token, counters)
                            .await
                    {
                        // The token says more committed than the counters have counted: some of those rows
                        // may yet be rejected. Still in flight until the counters catch up.
                        tracing::debug!(table = %entry.table, ?lag, "the channel's counters lag its committed token; judging again later");
                        Self::hold_back(&mut segments, &entry.segments, token, lag);
                    }
                    let in_flight = segments.iter().any(|v| v.rest == Rest::InFlight);
                    if settle && in_flight {
                        // Bulk status can call a broken channel valid: ask the channel itself before settling.
                        let invalid = matches!(
                            self.backend.channel_status(&handles[slot]).await,
                            Ok(Some(ChannelStatus { valid: false, .. }) | None)
                        );
                        self.settle(entry, invalid).await
                    } else {
                        let counters = match &status.progress {
                            Progress::Counters(c) => Some(c),
                            _ => None,
                        };
                        let (rejected, rejected_rows) = self
                            .rejected(&entry.table, &entry.segments, &segments, counters)
                            .await;
                        Ok(EntryVerdict {
                            segments,
                            reopened_invalid: false,
                            rejected,
                            rejected_rows,
                            committed: status.committed.clone(),
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
        let counters = writer.opened_counters.clone();
        drop(writer);
        let segments: Vec<SegmentVerdict> = self
            .judge_with(&view, &entry.segments)
            .into_iter()
            .map(verdict::after_reopen)
            .collect();
        let (rejected, rejected_rows) = self
            .rejected(&entry.table, &entry.segments, &segments, counters.as_ref())
            .await;
        Ok(EntryVerdict {
            segments,
            reopened_invalid: invalid,
            rejected,
            rejected_rows,
            committed: None,
        })
    }

    /// The committed rows of each segment that the service may have rejected at commit, as far as its
    /// counters cannot clear them (empty: none may have been), and how many rejections the counters show
    /// that this layer had not seen before (for the rejected-rows metric).
    ///
    /// - no counters (the sidecar, whose rejections come with the insert), or nothing ever rejected on the
    ///   channel: none;
    /// - the count has not moved since the segment's epoch was fenced (same incarnation): none;
    /// - the last rejection's request ended before the segment's first row: none;
    /// - it ended inside the segment: the rows up to it may have been, the rows after it were not;
    /// - it ended in a later epoch, or its token cannot be read: every committed row may have been.
    async fn rejected(
        &self,
        table: &str,
        positions: &[Positions],
        verdicts: &[SegmentVerdict],
        counters: Option<&RowCounters>,
    ) -> (Vec<Option<Rejected>>, u64) {
        let Some(counters) = counters.filter(|c| c.rows_error_count > 0) else {
            return (Vec::new(), 0);
        };
        let mut newly = 0;
        let baselines = {
            let writer = self.writer(table);
            let mut writer = writer.lock().await;
            let before = writer
                .errors_counted
                .filter(|(created, _)| *created == counters.created_on_ms)
                .map_or(0, |(_, seen)| seen);
            if counters.rows_error_count > before {
                newly = counters.rows_error_count - before;
                writer.errors_counted = Some((counters.created_on_ms, counters.rows_error_count));
            }
            drop(writer);
            self.baselines_with(table, positions).await
        };
        let bound = counters
            .last_error_offset_upper_bound
            .as_deref()
            .map(Token::parse);
        let message = format!(
            "Snowflake rejected rows of table {table} at commit ({} rows rejected on its channel so far, the last in the request ending at {}): {}",
            counters.rows_error_count,
            counters
                .last_error_offset_upper_bound
                .as_deref()
                .unwrap_or("(not given)"),
            counters
                .last_error_message
                .as_deref()
                .unwrap_or("(no message)")
        );
        let rejected = positions
            .iter()
            .zip(verdicts)
            .map(|(p, v)| {
                let through = v.committed_through.min(p.last);
                if through < p.first {
                    return None;
                }
                let unmoved = baselines.iter().any(|b| {
                    b.epoch == p.epoch
                        && b.created_on_ms == counters.created_on_ms
                        && b.errors == counters.rows_error_count
                });
                if unmoved {
                    return None;
                }
                let through = match &bound {
                    Some(Ok(last)) if last.epoch.ordered < p.epoch.ordered => return None,
                    Some(Ok(last)) if last.epoch == p.epoch && last.position < p.first => {
                        return None;
                    }
                    Some(Ok(last)) if last.epoch == p.epoch => through.min(last.position),
                    _ => through,
                };
                Some(Rejected {
                    through,
                    message: message.clone(),
                })
            })
            .collect();
        (rejected, newly)
    }

    /// The counters of the table's recent fences: this process's, the state store's last opening, and
    /// those the import's segments carry.
    async fn baselines_with(&self, table: &str, positions: &[Positions]) -> Vec<Baseline> {
        let mut baselines = self.baselines(table).await;
        baselines.extend(positions.iter().filter_map(|p| {
            p.fence.map(|f| Baseline {
                epoch: p.epoch,
                errors: f.errors,
                inserted: Some(f.inserted),
                created_on_ms: f.created_on_ms,
            })
        }));
        baselines
    }

    /// The counters of the table's recent fences: this process's, and the state store's last opening.
    async fn baselines(&self, table: &str) -> Vec<Baseline> {
        let mut baselines: Vec<Baseline> = self
            .writer(table)
            .lock()
            .await
            .fence_errors
            .iter()
            .copied()
            .collect();
        if let Some(kept) = self.state.load(table)
            && let (Ok(opening), Some((errors, created_on_ms))) =
                (Token::parse(&kept.opening), kept.errors_at_opening)
        {
            baselines.push(Baseline {
                epoch: opening.epoch,
                errors,
                inserted: kept.inserted_at_opening,
                created_on_ms,
            });
        }
        baselines
    }

    /// Whether the counters lag the committed token: in the token's epoch, fenced on this incarnation of
    /// the channel, the rows counted since the fence (inserted or rejected) fall short of the rows the
    /// token says committed, or the counters are below the fence's own. Without a baseline for the epoch
    /// there is nothing to compare: not lagging.
    async fn counters_lag(
        &self,
        table: &str,
        positions: &[Positions],
        token: &Token,
        counters: &RowCounters,
    ) -> Option<Lag> {
        self.baselines_with(table, positions)
            .await
            .iter()
            .filter(|b| b.epoch == token.epoch && b.created_on_ms == counters.created_on_ms)
            .find_map(|b| {
                let inserted = b.inserted?;
                let counted = counters.rows_inserted.saturating_sub(inserted)
                    + counters.rows_error_count.saturating_sub(b.errors);
                // Behind the fence's own counts (even when the token is the fence, no row after it yet):
                // earlier epochs' rows are not all counted.
                let before_fence =
                    counters.rows_inserted < inserted || counters.rows_error_count < b.errors;
                (before_fence || counted < token.position).then_some(Lag { before_fence })
            })
    }

    /// Turns what the lagging counters cannot clear back into rows in flight: what the token's epoch
    /// committed, and when the counters are even behind that epoch's fence, what earlier epochs committed
    /// too (the fence's counters counted every row before it; counters below them have not).
    fn hold_back(
        verdicts: &mut [SegmentVerdict],
        positions: &[Positions],
        token: &Token,
        lag: Lag,
    ) {
        for (verdict, p) in verdicts.iter_mut().zip(positions) {
            if (p.epoch == token.epoch || lag.before_fence) && verdict.committed_through >= p.first
            {
                *verdict = SegmentVerdict {
                    committed_through: p.first.saturating_sub(1),
                    rest: Rest::InFlight,
                };
            }
        }
    }

    /// See [`Channels::check_stalled`](super::Channels::check_stalled).
    pub(super) async fn check_stalled_entries(
        &self,
        entries: &[EntryRows],
    ) -> Vec<Result<Option<EntryVerdict>, ChannelError>> {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let handle = self.current(&entry.table, &entry.channel_id).await;
            let checked = match self.backend.channel_status(&handle).await {
                Ok(Some(status)) if status.valid => Ok(None),
                Ok(_) => {
                    tracing::info!(table = %entry.table, channel_id = %handle.id,
                        "a stalled channel reports itself invalid; reopening it to settle the import's rows");
                    self.settle(entry, true).await.map(Some)
                }
                Err(source) => Err(self.service_error(
                    &entry.table,
                    "reading the status of a stalled channel",
                    source,
                )),
            };
            out.push(checked);
        }
        out
    }

    /// See [`Channels::wait_for_commit`](super::Channels::wait_for_commit).
    pub(super) async fn wait_committed(
        &self,
        table: &str,
        segments: &[Segment],
        within: Duration,
    ) -> Result<CommitWait, ChannelError> {
        let positions: Vec<Positions> = segments
            .iter()
            .map(|s| Positions {
                epoch: s.epoch,
                first: s.first,
                last: s.last,
                fence: s.fence,
            })
            .collect();
        let mut waited = Duration::ZERO;
        let mut step = POLL_FIRST;
        loop {
            let Some(channel) = self.writer(table).lock().await.channel.clone() else {
                return Ok(CommitWait::NotCommitted);
            };
            let status = self
                .backend
                .channel_status(&channel.handle)
                .await
                .map_err(|source| {
                    self.service_error(table, "reading the channel's status", source)
                })?;
            let Some(status) = status.filter(|s| s.valid) else {
                return Ok(CommitWait::NotCommitted);
            };
            let view = self.view(table, status.committed.as_deref()).await;
            let verdicts = self.judge_with(&view, &positions);
            let counters = match &status.progress {
                Progress::Counters(c) => Some(c),
                _ => None,
            };
            // Counters that lag the token cannot show yet whether the rows were rejected: wait for them
            // like for rows in flight. A wait that ends with them still lagging drops the channel (below),
            // so a token rewritten by hand cannot hold every later upload of the table: the next opening
            // takes fresh counters as its fence.
            let lagging = match (&view, counters) {
                (View::Token(token, _), Some(counters)) => self
                    .counters_lag(table, &positions, token, counters)
                    .await
                    .is_some(),
                _ => false,
            };
            if !lagging && verdicts.iter().all(|v| v.rest == Rest::Nothing) {
                let (rejected, _) = self.rejected(table, &positions, &verdicts, counters).await;
                return Ok(match rejected.into_iter().flatten().next() {
                    Some(rejected) => CommitWait::Rejected(rejected.message),
                    None => CommitWait::Committed,
                });
            }
            let timed_out = waited >= within;
            if verdicts
                .iter()
                .any(|v| !matches!(v.rest, Rest::Nothing | Rest::InFlight))
                || (lagging && timed_out)
            {
                // Lost, or undecidable (a token rewritten by hand, a channel dropped), or counters that
                // never caught up: this epoch cannot tell about later rows either. The next append opens
                // the channel again, in a new epoch, so that the retried rows can be judged.
                let writer = self.writer(table);
                let mut writer = writer.lock().await;
                if writer
                    .channel
                    .as_ref()
                    .is_some_and(|c| Arc::ptr_eq(c, &channel))
                {
                    writer.channel = None;
                }
                return Ok(CommitWait::NotCommitted);
            }
            if timed_out {
                return Ok(CommitWait::NotCommitted);
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
