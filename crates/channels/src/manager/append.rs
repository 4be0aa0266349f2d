//! Appending rows at positions: the one place, for every backend, that decides what to do when an append
//! fails.
//!
//! Every row gets a position in the channel's epoch, and each request's tokens carry its rows' positions.
//! An answer that leaves the rows' fate unknown (a lost answer; the sidecar's `success:false`, whose SDK may
//! keep the good rows; a channel lost, superseded or invalid) has one resolution: reopen the channel,
//! which supersedes every earlier writer, judge the rows from the token that opening found (final), and
//! send again only the rows provably not in, in the new epoch. A request the service refused uses up no
//! position.

use std::{ops::Range, sync::Arc};

use snowpipe_api::{AppendRequest, Backend, Error as BackendError, OffsetTokens, Row, TokenRange};

use super::{AppendOutcome, ChannelManager, Segment, Writer};
use crate::{
    ChannelError, Warehouse,
    token::Token,
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
        let outcome = self.send(table, &mut writer, &rows).await;
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
        // Rows still to hand over: always the rows after those settled, since commits go in order.
        let mut pending: Range<usize> = 0..rows.len();
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
                    failed: None,
                });
            }
            let base = writer.next_position;
            let request = AppendRequest {
                rows: if pending.len() == rows.len() {
                    Arc::clone(rows)
                } else {
                    rows[pending.clone()].into()
                },
                tokens: Arc::new(Positions {
                    opening: opening.clone(),
                    base,
                }),
            };
            let segment = |handed: Range<usize>, first: u64| {
                let last = first + handed.len() as u64 - 1;
                Segment {
                    epoch: opening.epoch,
                    first,
                    last,
                    rows: handed,
                    end_token: opening.at(last).to_string(),
                }
            };
            let failure = match self.backend.append(&channel.handle, &request).await {
                Ok(_) => {
                    writer.next_position = base + pending.len() as u64;
                    segments.push(segment(pending.clone(), base));
                    return Ok(AppendOutcome {
                        channel,
                        segments,
                        failed: None,
                    });
                }
                Err(failure) => failure,
            };
            let accepted: usize = failure.accepted.iter().map(|r| r.rows.len()).sum();
            let error = failure.error;
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
                let handed = pending.start..pending.start + accepted;
                if !handed.is_empty() {
                    segments.push(segment(handed.clone(), base));
                }
                let failed = handed.end..pending.end;
                let reason = format!(
                    "inserting into table {table} (channel {}) failed: {error}",
                    channel.id()
                );
                if segments.is_empty() {
                    return Err(ChannelError::Append {
                        table: table.to_owned(),
                        channel_id: channel.id().to_owned(),
                        message: reason,
                    });
                }
                return Ok(AppendOutcome {
                    channel,
                    segments,
                    failed: Some((failed, reason)),
                });
            }
            // The request's rows, and every row of this append handed over before it in this epoch, may or may
            // not be in: their positions are used up.
            writer.next_position = base + pending.len() as u64;
            let handed = segment(pending.clone(), base);
            if reopens >= self.settings.max_reopens {
                tracing::warn!(table, channel_id = %channel.id(), %error, reopens,
                    "rows of an append are still unsettled after reopening the channel; poll will judge them");
                segments.push(handed);
                return Ok(AppendOutcome {
                    channel,
                    segments,
                    failed: None,
                });
            }
            reopens += 1;
            if error.is_outcome_unknown() {
                // A request still in transit must reach the service before the reopen, not after it.
                self.sleep.sleep(self.settings.lost_answer_margin).await;
            }
            tracing::info!(table, channel_id = %channel.id(), %error, "the fate of appended rows is unknown: reopening the channel to settle it");
            if let Err(reopen) = self.open(table, writer, None, true).await {
                tracing::warn!(table, %error, %reopen, "cannot reopen the channel to settle an append; poll will judge its rows");
                segments.push(handed);
                return Ok(AppendOutcome {
                    channel,
                    segments,
                    failed: None,
                });
            }
            let Some(found) = writer.opening.clone() else {
                segments.push(handed);
                return Ok(AppendOutcome {
                    channel,
                    segments,
                    failed: None,
                });
            };
            let judged = verdict::after_reopen(verdict::judge(
                handed.epoch,
                handed.first,
                handed.last,
                &found,
                Fencing::Unfenced,
            ));
            let committed = (judged.committed_through + 1 - handed.first) as usize;
            if committed > 0 {
                segments.push(segment(pending.start..pending.start + committed, base));
            }
            match judged.rest {
                Rest::Nothing => pending = pending.end..pending.end,
                Rest::Lost => pending = pending.start + committed..pending.end,
                Rest::InFlight | Rest::Undecidable(_) => {
                    // Cannot be told from the opening: the rows stay handed over, for poll to judge (as
                    // undecidable, so their jobs fail: never sent twice).
                    tracing::warn!(table, rest = ?judged.rest, "rows of an append cannot be judged after reopening");
                    segments.push(segment(
                        pending.start + committed..pending.end,
                        handed.first + committed as u64,
                    ));
                    pending = pending.end..pending.end;
                }
            }
        }
    }
}
