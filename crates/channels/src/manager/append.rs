//! Appending rows at positions: the one place, for every backend, that decides what to do when an append
//! fails.
//!
//! Every row gets a position in the channel's epoch, and each request's tokens carry its rows' positions.
//! An answer that leaves the rows' fate unknown (a lost answer; the sidecar's `success:false`, whose SDK may
//! keep the good rows; a channel lost, superseded or invalid) has one resolution: reopen the channel,
//! which supersedes every earlier writer, judge the rows from the token that opening found (final), and
//! send again only the rows provably not in, in the new epoch. Rows the service named as refused are
//! never sent again (they would be refused again) and never counted in. A request the service refused
//! whole uses up no position.

use std::{ops::Range, sync::Arc};

use snowpipe_api::{AppendRequest, Backend, Error as BackendError, OffsetTokens, Row, TokenRange};

use super::{AppendOutcome, Baseline, ChannelManager, FailedRows, Segment, Writer};
use crate::{
    ChannelError, Warehouse,
    token::{Epoch, Token},
    verdict::{self, Fencing, Rest},
};

/// The tokens of a request: the epoch's opening token at the positions of its first and last rows.
#[derive(Debug)]
struct Positions {
    opening: Token,
    /// The position of the request's row 0.
    base: u64,
}

impl OffsetTokens for Positions {
    fn tokens(&self, rows: Range<usize>) -> TokenRange {
        let at = |row: usize| self.base + row as u64;
        TokenRange {
            start: self.opening.at(at(rows.start)).to_string(),
            end: self.opening.at(at(rows.end - 1)).to_string(),
        }
    }
}

/// Rows of one request handed over in one epoch: the request's rows `from..to` are the append's rows
/// `rows[from..to]`, at positions `base + from ..`.
struct Handed<'a> {
    opening: &'a Token,
    base: u64,
    rows: &'a [usize],
}

impl Handed<'_> {
    /// Segments for the request's rows whose index passes `keep`: one per run of rows consecutive in the
    /// append (so a segment's rows are a range of it) and in the request (so its positions are too).
    fn segments(&self, keep: impl Fn(usize) -> bool) -> Vec<Segment> {
        let epoch: Epoch = self.opening.epoch;
        let mut segments: Vec<Segment> = Vec::new();
        for (k, &row) in self.rows.iter().enumerate() {
            if !keep(k) {
                continue;
            }
            let position = self.base + k as u64;
            match segments.last_mut() {
                Some(last) if last.rows.end == row && last.last + 1 == position => {
                    last.rows.end = row + 1;
                    last.last = position;
                }
                _ => segments.push(Segment {
                    epoch,
                    first: position,
                    last: position,
                    rows: row..row + 1,
                    end_token: String::new(),
                    fence: None,
                }),
            }
        }
        for segment in &mut segments {
            segment.end_token = self.opening.at(segment.last).to_string();
        }
        segments
    }
}

impl<B: Backend, W: Warehouse> ChannelManager<B, W> {
    /// See [`Channels::append`](super::Channels::append).
    pub(super) async fn append_rows(
        &self,
        table: &str,
        rows: Vec<Row>,
    ) -> Result<AppendOutcome, ChannelError> {
        let rows: Arc<[Row]> = rows.into();
        let writer = self.writer(table);
        let mut writer = writer.lock().await;
        let mut outcome = self.send(table, &mut writer, &rows).await;
        if let Ok(outcome) = &mut outcome {
            // Each segment carries its epoch's fence counters, so that a poll in any process can tell
            // counters that lag the committed token.
            for segment in &mut outcome.segments {
                segment.fence = writer
                    .fence_errors
                    .iter()
                    .rev()
                    .find(|b| b.epoch == segment.epoch)
                    .and_then(Baseline::counters);
            }
        }
        drop(writer);
        // A request's rows are slices of buffers shared with other tables' rows, so the last request to go
        // frees them all: tens of megabytes handed back to the system. Freed on the blocking pool, that work
        // overlaps what comes next instead of holding up the upload's answer.
        tokio::task::spawn_blocking(move || drop(rows));
        outcome
    }

    async fn send(
        &self,
        table: &str,
        writer: &mut Writer,
        rows: &Arc<[Row]>,
    ) -> Result<AppendOutcome, ChannelError> {
        if writer.channel.is_none() || writer.opening.is_none() {
            self.open(table, writer, None, false).await?;
        }
        let mut segments: Vec<Segment> = Vec::new();
        let mut failed: Vec<FailedRows> = Vec::new();
        // Rows still to hand over, as indexes into `rows`, in order.
        let mut pending: Vec<usize> = (0..rows.len()).collect();
        let mut reopens = 0;
        loop {
            let (Some(channel), Some(opening)) = (writer.channel.clone(), writer.opening.clone())
            else {
                return Err(ChannelError::Append {
                    table: table.to_owned(),
                    channel_id: String::new(),
                    message: format!("table {table}: no channel is open to append to"),
                });
            };
            if pending.is_empty() {
                return Ok(AppendOutcome {
                    channel,
                    segments,
                    failed,
                });
            }
            let base = writer.next_position;
            let request = AppendRequest {
                rows: if pending.len() == rows.len() {
                    Arc::clone(rows)
                } else {
                    pending.iter().map(|&i| rows[i].clone()).collect()
                },
                tokens: Arc::new(Positions {
                    opening: opening.clone(),
                    base,
                }),
            };
            let handed = Handed {
                opening: &opening,
                base,
                rows: &pending,
            };
            let Err(failure) = self.backend.append(&channel.handle, &request).await else {
                writer.next_position = base + pending.len() as u64;
                segments.extend(handed.segments(|_| true));
                return Ok(AppendOutcome {
                    channel,
                    segments,
                    failed,
                });
            };
            let accepted: usize = failure.accepted.iter().map(|r| r.rows.len()).sum();
            let error = failure.error;
            let refused: Vec<usize> = match &error {
                BackendError::RowsRejected { rows: listed, .. } => {
                    listed.iter().map(|r| r.index).collect()
                }
                _ => Vec::new(),
            };
            let unsettled = matches!(
                error,
                BackendError::OutcomeUnknown { .. }
                    | BackendError::RowsRejected { .. }
                    | BackendError::Reopen { .. }
            );
            if !unsettled {
                // The failing request was refused whole: its positions are free again, and its rows (and those
                // after it) surely did not go in.
                writer.next_position = base + accepted as u64;
                segments.extend(handed.segments(|k| k < accepted));
                let reason = format!(
                    "inserting into table {table} (channel {}) failed: {error}",
                    channel.id()
                );
                failed.push(FailedRows {
                    rows: pending[accepted..].to_vec(),
                    reason: reason.clone(),
                });
                if segments.is_empty() && failed.len() == 1 {
                    return Err(ChannelError::Append {
                        table: table.to_owned(),
                        channel_id: channel.id().to_owned(),
                        message: reason,
                    });
                }
                return Ok(AppendOutcome {
                    channel,
                    segments,
                    failed,
                });
            }
            // The request's rows, and every row of this append handed over before it in this epoch, may or may
            // not be in: their positions are used up.
            writer.next_position = base + pending.len() as u64;
            if !refused.is_empty() {
                // Rows the service named will be refused again whatever happens: they fail now, with its word.
                let why: Vec<String> = match &error {
                    BackendError::RowsRejected {
                        rows: listed, code, ..
                    } => listed
                        .iter()
                        .take(10)
                        .map(|r| format!("row {}: {} ({code})", r.index, r.message))
                        .collect(),
                    _ => Vec::new(),
                };
                failed.push(FailedRows {
                    rows: refused
                        .iter()
                        .filter_map(|&k| pending.get(k).copied())
                        .collect(),
                    reason: format!(
                        "inserting into table {table} (channel {}) was refused for these rows: {}",
                        channel.id(),
                        why.join("; ")
                    ),
                });
            }
            let unrefused = |k: usize| !refused.contains(&k);
            // The last reopen still settles what the failed request left, but sends nothing again: rows it
            // finds surely not in fail (retry-kind) instead of going round once more.
            let exhausted = reopens >= self.settings.max_reopens;
            reopens += 1;
            if error.is_outcome_unknown() {
                // A request still in transit must reach the service before the reopen, not after it.
                self.sleep.sleep(self.settings.lost_answer_margin).await;
            }
            tracing::info!(table, channel_id = %channel.id(), %error, "the fate of appended rows is unknown: reopening the channel to settle it");
            let reopened = self.open(table, writer, None, true).await;
            let found = match (reopened, writer.opening.clone()) {
                (Ok(_), Some(found)) if found.epoch != opening.epoch => found,
                (reopened, _) => {
                    if let Err(reopen) = reopened {
                        tracing::warn!(table, %error, %reopen, "cannot reopen the channel to settle an append; poll will judge its rows");
                    }
                    segments.extend(handed.segments(unrefused));
                    return Ok(AppendOutcome {
                        channel,
                        segments,
                        failed,
                    });
                }
            };
            let last = base + pending.len() as u64 - 1;
            let judged = verdict::after_reopen(verdict::judge(
                opening.epoch,
                base,
                last,
                &found,
                Fencing::Unfenced,
            ));
            let committed = usize::try_from(judged.committed_through + 1 - base).unwrap_or(0);
            segments.extend(handed.segments(|k| k < committed && unrefused(k)));
            match judged.rest {
                Rest::Nothing => pending.clear(),
                Rest::Lost if exhausted => {
                    tracing::warn!(table, channel_id = %channel.id(), %error, reopens,
                        "appending kept failing after reopening the channel; the rows surely not in fail");
                    failed.push(FailedRows {
                        rows: pending
                            .iter()
                            .enumerate()
                            .filter(|&(k, _)| k >= committed && unrefused(k))
                            .map(|(_, &row)| row)
                            .collect(),
                        reason: format!(
                            "inserting into table {table} (channel {}) failed {reopens} times in a row, the channel reopened each time, and the rows are not in: {error}",
                            channel.id()
                        ),
                    });
                    pending.clear();
                }
                Rest::Lost => {
                    pending = pending
                        .iter()
                        .enumerate()
                        .filter(|&(k, _)| k >= committed && unrefused(k))
                        .map(|(_, &row)| row)
                        .collect();
                }
                Rest::InFlight | Rest::Undecidable(_) => {
                    // Cannot be told from the opening: the rows stay handed over, for poll to judge (as
                    // undecidable, so their jobs fail: never sent twice).
                    tracing::warn!(table, rest = ?judged.rest, "rows of an append cannot be judged after reopening");
                    segments.extend(handed.segments(|k| k >= committed && unrefused(k)));
                    pending.clear();
                }
            }
        }
    }
}
