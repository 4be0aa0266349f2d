//! Appending rows with recovery: the one place, for every backend, that decides what to do when an append
//! fails — reopen a lost channel and send again, resolve a lost answer from where the channel stands, or
//! give up without putting a row in twice.

use std::sync::Arc;

use snowpipe_api::{AppendRequest, Backend, Error as BackendError, Progress, Row};

use super::{Channel, ChannelId, ChannelManager};
use crate::{ChannelError, Warehouse};

/// How many times an append whose answer was lost, and whose rows surely did not go in, is sent again.
const MAX_RESENDS: u32 = 2;

impl<B: Backend, W: Warehouse> ChannelManager<B, W> {
    /// See [`Channels::append`](super::Channels::append).
    pub(super) async fn append_rows(
        &self,
        channel: Arc<Channel>,
        rows: Vec<Row>,
        token: String,
    ) -> Result<Arc<Channel>, ChannelError> {
        let request = AppendRequest::with_token(rows, token.as_str());
        let result = self.send(channel, &request, &token).await;
        // A request's rows are slices of buffers shared with other tables' rows, so the last request to go
        // frees them all: tens of megabytes handed back to the system. Freed on the blocking pool, that work
        // overlaps what comes next instead of holding up the upload's answer.
        tokio::task::spawn_blocking(move || drop(request));
        result
    }

    /// The latest token the channel was handed before this append, as far as the backend reports it: `""`
    /// when nothing yet, `None` when unknown.
    async fn inserted_before(&self, channel: &Channel) -> Option<String> {
        match self.known_or_asked(channel).await?.progress {
            Progress::Inserted(token) => Some(token.unwrap_or_default()),
            _ => None,
        }
    }

    /// [`Self::append_rows`]'s attempts.
    async fn send(
        &self,
        mut channel: Arc<Channel>,
        request: &AppendRequest,
        token: &str,
    ) -> Result<Arc<Channel>, ChannelError> {
        let table = channel.table.clone();
        let mut latest_before = self.inserted_before(&channel).await;
        let (mut reopened, mut resends) = (false, 0);
        let failed = |channel: &Channel, message: String| ChannelError::Append {
            table: table.clone(),
            channel_id: channel.id().to_owned(),
            message,
        };
        loop {
            let error = match self.backend.append(&channel.handle, request).await {
                Ok(_) => {
                    self.note_appended(&channel, token);
                    return Ok(channel);
                }
                // Some of the rows went in and some did not, under one token: where the channel stands cannot
                // tell which, and sending them all again would put the accepted ones in twice.
                Err(error) if !error.accepted.is_empty() => {
                    let accepted: usize = error.accepted.iter().map(|r| r.rows.len()).sum();
                    return Err(failed(
                        &channel,
                        format!(
                            "inserting into table {table} (channel {}): the backend accepted {accepted} of {} rows, then: {}; which rows are in cannot be told; the jobs are retried later",
                            channel.id(),
                            request.rows.len(),
                            error.error
                        ),
                    ));
                }
                Err(error) => error.error,
            };
            match &error {
                BackendError::RowsRejected { code, rows, .. } => {
                    self.delete_quietly(&channel).await;
                    let rows: Vec<String> = rows
                        .iter()
                        .take(10)
                        .map(|r| format!("row {}: {}", r.index, r.message))
                        .collect();
                    return Err(failed(
                        &channel,
                        format!(
                            "inserting into table {table} (channel {}) was refused with {code}: {}",
                            channel.id(),
                            rows.join("; ")
                        ),
                    ));
                }
                BackendError::Reopen { .. } if !reopened => {
                    reopened = true;
                    tracing::info!(table, channel_id = %channel.id(), %error, "channel lost by the backend: reopening it");
                    channel = self.recreate_channel(&table).await?;
                    // Where the reopened channel stands, to resolve a lost answer to the append once more.
                    latest_before = self.inserted_before(&channel).await;
                    continue;
                }
                // Every lost answer is resolved from where the channel stands, the answer to a resent append
                // too: giving up on one that went in would fail jobs whose rows landed, and their retry would
                // put them in twice.
                BackendError::OutcomeUnknown { .. } => {}
                _ => {
                    self.delete_quietly(&channel).await;
                    return Err(failed(
                        &channel,
                        format!(
                            "inserting into table {table} (channel {}) failed: {error}",
                            channel.id()
                        ),
                    ));
                }
            }
            let status = match self.backend.channel_status(&channel.handle).await {
                Ok(Some(status)) => status,
                Ok(None) => {
                    return Err(failed(
                        &channel,
                        format!(
                            "inserting into table {table} (channel {}): {error}; and the channel is gone, so whether the rows went in is unknown",
                            channel.id()
                        ),
                    ));
                }
                Err(e) => {
                    return Err(failed(
                        &channel,
                        format!(
                            "inserting into table {table} (channel {}): {error}; and its status is unknown: {e}",
                            channel.id()
                        ),
                    ));
                }
            };
            let Progress::Inserted(latest) = status.progress else {
                return Err(failed(
                    &channel,
                    format!(
                        "inserting into table {table} (channel {}): {error}; the backend does not say what the channel was handed, so whether the rows went in cannot be told; the jobs are retried later",
                        channel.id()
                    ),
                ));
            };
            let latest = latest.unwrap_or_default();
            if latest == token && latest_before.as_deref() != Some(latest.as_str()) {
                tracing::info!(table, channel_id = %channel.id(), token, "append answer lost, but the rows went in");
                self.note_appended(&channel, token);
                return Ok(channel);
            }
            // The rows surely did not go in only when the latest token would have moved to ours: when the
            // channel already stood at or above it (a retried job with a low id), a token that did not move
            // tells nothing, and sending again could put the rows in twice.
            let would_move = match latest_before.as_deref() {
                Some("") => true,
                Some(before) => match (before.parse::<i64>(), token.parse::<i64>()) {
                    (Ok(before), Ok(ours)) => before < ours,
                    _ => false,
                },
                None => false,
            };
            if latest != token && would_move {
                if resends < MAX_RESENDS {
                    tracing::info!(table, channel_id = %channel.id(), token, "append answer lost and the rows did not go in: sending again");
                    resends += 1;
                    continue;
                }
                // The rows are surely not in: failing the jobs cannot duplicate them.
                self.delete_quietly(&channel).await;
                return Err(failed(
                    &channel,
                    format!(
                        "inserting into table {table} (channel {}): {error}; the answer was lost {} times and the rows did not go in",
                        channel.id(),
                        resends + 1
                    ),
                ));
            }
            return Err(failed(
                &channel,
                format!(
                    "inserting into table {table} (channel {}): {error}; whether the rows went in cannot be told (the channel stood at offset {} before and is at {latest} now); the jobs are retried later",
                    channel.id(),
                    latest_before.as_deref().unwrap_or("unknown")
                ),
            ));
        }
    }

    /// Opens the table's channel anew after the backend lost it, without DDL.
    async fn recreate_channel(&self, table: &str) -> Result<Arc<Channel>, ChannelError> {
        self.forget(table);
        Box::pin(self.create(table, None)).await
    }

    async fn delete_quietly(&self, channel: &Channel) {
        let id = ChannelId {
            table: channel.table.clone(),
            id: channel.id().to_owned(),
        };
        if let Err(error) = self.remove(&id, false).await {
            tracing::warn!(table = %channel.table, channel_id = %channel.id(), %error, "cannot delete the failed channel");
        }
    }
}
