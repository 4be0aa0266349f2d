//! [`RestClient`] behind the boundary: open, append, status and drop as the REST API does them.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http::Method;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use snowpipe_api::{
    AppendError, AppendRequest, Appended, Backend, Call, Capabilities, ChannelHandle, ChannelRef,
    ChannelStatus, DropOptions, Error, OnUncommitted, OpenOptions, OpenedChannel, RejectedRow,
    Result, SentRequest, TokenRange,
};

use crate::{
    body::{Chunk, SplitError, Splitter},
    classify::Kind,
    client::{Failed, IngestCall, RestClient, retry_append, retry_idempotent},
    error::RestError,
    names,
    wire::{AppendAnswer, BulkStatusAnswer, BulkStatusBody, OpenAnswer, OpenBody},
};

/// Query values are encoded strictly: offset and continuation tokens are opaque and may hold anything.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The first wait for an open that found uncommitted rows; doubled up to [`MAX_WAIT_STEP`].
const FIRST_WAIT_STEP: Duration = Duration::from_millis(200);
const MAX_WAIT_STEP: Duration = Duration::from_secs(5);
/// Pipes whose channels' status one bulk status asks at once.
const STATUS_PIPES_AT_ONCE: usize = 8;

impl RestClient {
    fn channel_path(channel: &ChannelRef) -> String {
        format!(
            "{}/channels/{}",
            names::pipe_path(&channel.table),
            names::segment(&channel.name())
        )
    }

    fn describe(call: &str, channel: &ChannelRef) -> String {
        format!(
            "{call} channel {} of table {}",
            channel.name(),
            channel.table
        )
    }

    fn json_call(
        call: Call,
        what: String,
        method: Method,
        path: String,
        body: Vec<u8>,
    ) -> IngestCall {
        IngestCall {
            call,
            what,
            method,
            path,
            body: Bytes::from(body),
            content_type: "application/json",
            content_encoding: None,
        }
    }

    /// Opens the channel, waiting out `409`s for uncommitted rows or a concurrent open, bounded by
    /// [`RestConfig::uncommitted_wait`](crate::RestConfig::uncommitted_wait).
    async fn open(&self, channel: &ChannelRef, options: &OpenOptions) -> Result<OpenedChannel> {
        let what = Self::describe("open", channel);
        let body = serde_json::to_vec(&OpenBody {
            fail_on_uncommitted_rows: options.uncommitted == OnUncommitted::Wait,
            offset_token: options.offset_token.as_deref(),
        })
        .unwrap_or_default();
        let call = Self::json_call(
            Call::OpenChannel,
            what.clone(),
            Method::PUT,
            Self::channel_path(channel),
            body,
        );
        let slot = self.slot(channel);
        let mut token = slot.lock().await;
        let mut waited = Duration::ZERO;
        let mut step = FIRST_WAIT_STEP;
        let answer = loop {
            match self.send(&call, retry_idempotent).await {
                Ok(answer) => break answer,
                Err(failed) if failed.kind == Some(Kind::Wait) => {
                    if waited >= self.config.uncommitted_wait {
                        let code = failed.error.code();
                        return Err(Failed {
                            kind: Some(Kind::Wait),
                            not_applied: true,
                            error: RestError::StillUncommitted { what, code, waited },
                        }
                        .into_error(Call::OpenChannel));
                    }
                    tracing::debug!(%what, error = %failed.error, ?step, "waiting for uncommitted rows before opening");
                    self.config.sleep.sleep(step).await;
                    waited += step;
                    step = (step * 2).min(MAX_WAIT_STEP);
                }
                Err(failed) => return Err(failed.into_error(Call::OpenChannel)),
            }
        };
        let opened: OpenAnswer = decode(Call::OpenChannel, &answer, &what, self)?;
        if !opened.channel_status.is_valid() {
            *token = None;
            return Err(Failed {
                kind: Some(Kind::Transient),
                not_applied: true,
                error: RestError::InvalidOnOpen {
                    what,
                    code: opened
                        .channel_status
                        .channel_status_code
                        .unwrap_or_else(|| "(none)".to_owned()),
                },
            }
            .into_error(Call::OpenChannel));
        }
        *token = Some(opened.next_continuation_token);
        Ok(OpenedChannel {
            handle: ChannelHandle {
                channel: channel.clone(),
                id: channel.name(),
            },
            status: Some(opened.channel_status.to_boundary()),
            columns: None,
        })
    }

    /// Sends one request of an append; its answer's continuation token is the next.
    async fn append_one(
        &self,
        channel: &ChannelRef,
        continuation: &str,
        tokens: &TokenRange,
        chunk: &Chunk,
    ) -> Result<String, Error> {
        let what = format!(
            "{} (rows {}..{}, tokens {}..{})",
            Self::describe("append to", channel),
            chunk.rows.start,
            chunk.rows.end,
            tokens.start,
            tokens.end
        );
        let path = format!(
            "data/{}/rows?continuationToken={}&startOffsetToken={}&endOffsetToken={}&requestId={}",
            Self::channel_path(channel),
            utf8_percent_encode(continuation, QUERY),
            utf8_percent_encode(&tokens.start, QUERY),
            utf8_percent_encode(&tokens.end, QUERY),
            request_id(),
        );
        let call = IngestCall {
            call: Call::Append,
            what: what.clone(),
            method: Method::POST,
            path,
            body: Bytes::copy_from_slice(&chunk.body),
            content_type: "application/x-ndjson",
            content_encoding: self.config.compression.content_encoding(),
        };
        let answer = self
            .send(&call, retry_append)
            .await
            .map_err(|failed| failed.into_error(Call::Append))?;
        let appended: AppendAnswer = decode(Call::Append, &answer, &what, self)?;
        Ok(appended.next_continuation_token)
    }

    async fn append_rows(
        &self,
        channel: &ChannelHandle,
        request: &AppendRequest,
    ) -> Result<Appended, AppendError> {
        let slot = self.slot(&channel.channel);
        let mut continuation = slot.lock().await;
        let Some(mut current) = continuation.clone() else {
            return Err(Error::Reopen {
                call: Call::Append,
                code: "NOT_OPEN".to_owned(),
                message: format!(
                    "{}: this client has not opened the channel (or it turned invalid, or an append's answer was lost)",
                    Self::describe("append to", &channel.channel)
                ),
            }
            .into());
        };
        // Bodies are cut and compressed on a blocking thread, one ahead of the request on the wire.
        let (bodies, mut ready) = tokio::sync::mpsc::channel(1);
        let rows = Arc::clone(&request.rows);
        let (compression, limit) = (self.config.compression, self.config.max_request_bytes);
        let cutter = tokio::task::spawn_blocking(move || {
            for chunk in Splitter::new(&rows, compression, limit) {
                let last = chunk.is_err();
                if bodies.blocking_send(chunk).is_err() || last {
                    break;
                }
            }
        });
        let mut accepted: Vec<SentRequest> = Vec::new();
        let outcome = loop {
            let Some(chunk) = ready.recv().await else {
                break Ok(());
            };
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(SplitError::RowTooLarge(too_large)) => {
                    break Err(Error::RowsRejected {
                        call: Call::Append,
                        code: "ROW_TOO_LARGE".to_owned(),
                        rows: vec![RejectedRow {
                            index: too_large.index,
                            message: too_large.to_string(),
                        }],
                    });
                }
                Err(other) => {
                    break Err(Error::Permanent {
                        call: Call::Append,
                        code: "compress".to_owned(),
                        source: Box::new(other),
                    });
                }
            };
            let tokens = request.tokens.tokens(chunk.rows.clone());
            match self
                .append_one(&channel.channel, &current, &tokens, &chunk)
                .await
            {
                Ok(next) => {
                    current.clone_from(&next);
                    *continuation = Some(next);
                    record_body(self, &chunk);
                    accepted.push(SentRequest {
                        rows: chunk.rows.clone(),
                        tokens,
                        body_bytes: chunk.body.len() as u64,
                    });
                }
                Err(error) => {
                    if matches!(error, Error::Reopen { .. } | Error::OutcomeUnknown { .. }) {
                        // Reopen: the token is stale or the channel invalid. Unknown: the request may have
                        // been taken, spending the token, and the service answers a spent token as a
                        // replay of the request it first came with: the rows of a further append on it
                        // would be dropped while reported accepted. Only a new open gives a usable token.
                        *continuation = None;
                    }
                    break Err(error);
                }
            }
        };
        drop(ready);
        // The cutter stops at its next send once the receiver is gone; it holds no lock.
        let _ = cutter.await;
        #[allow(clippy::cast_precision_loss, reason = "a request count")]
        metrics::histogram!("snowpipe_streaming_rest_requests_per_append")
            .record(accepted.len() as f64);
        match outcome {
            Ok(()) => Ok(Appended { requests: accepted }),
            Err(error) => Err(AppendError { accepted, error }),
        }
    }

    /// Statuses of channels of one table's pipe, by name, in requests of at most `status_chunk` names.
    async fn pipe_statuses(
        &self,
        channels: &[&ChannelHandle],
    ) -> Result<HashMap<String, ChannelStatus>> {
        let Some(first) = channels.first() else {
            return Ok(HashMap::new());
        };
        let table = &first.channel.table;
        let mut found = HashMap::new();
        for part in channels.chunks(self.config.status_chunk) {
            // The name each open answered as the handle's id: a handle this client never gave names no
            // channel, and reads as missing.
            let names: Vec<String> = part.iter().map(|h| h.id.clone()).collect();
            let what = format!("bulk status of {} channels of table {table}", names.len());
            let body = serde_json::to_vec(&BulkStatusBody {
                channel_names: &names,
            })
            .unwrap_or_default();
            let call = Self::json_call(
                Call::BulkStatus,
                what.clone(),
                Method::POST,
                format!("{}:bulk-channel-status", names::pipe_path(table)),
                body,
            );
            let answer = self
                .send(&call, retry_idempotent)
                .await
                .map_err(|failed| failed.into_error(Call::BulkStatus))?;
            let statuses: BulkStatusAnswer = decode(Call::BulkStatus, &answer, &what, self)?;
            found.extend(
                statuses
                    .channel_statuses
                    .into_iter()
                    .map(|(name, status)| (name, status.to_boundary())),
            );
        }
        Ok(found)
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    call: Call,
    answer: &Bytes,
    what: &str,
    client: &RestClient,
) -> Result<T, Error> {
    serde_json::from_slice(answer).map_err(|e| {
        let origin = client
            .config
            .ingest_url
            .clone()
            .unwrap_or_else(|| "the ingest host".to_owned());
        Failed {
            kind: Some(Kind::Transient),
            not_applied: false,
            error: RestError::Decode {
                what: what.to_owned(),
                origin,
                reason: e.to_string(),
            },
        }
        .into_error(call)
    })
}

fn record_body(client: &RestClient, chunk: &Chunk) {
    let compression = client.config.compression.name();
    metrics::counter!("snowpipe_streaming_rest_body_bytes_total", "stage" => "uncompressed", "compression" => compression)
        .increment(chunk.raw_bytes as u64);
    metrics::counter!("snowpipe_streaming_rest_body_bytes_total", "stage" => "sent", "compression" => compression)
        .increment(chunk.body.len() as u64);
}

/// A random UUID (v4) naming a request in the service's logs.
fn request_id() -> String {
    use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
    let mut bytes = [0_u8; 16];
    // Without randomness the id is all zeros: it only labels logs.
    let _ = SystemRandom::new().fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[async_trait]
impl Backend for RestClient {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_waits_for_uncommitted(true)
            .with_sets_offset_token(true)
    }

    async fn open_channel(
        &self,
        channel: &ChannelRef,
        options: &OpenOptions,
    ) -> Result<OpenedChannel> {
        self.open(channel, options).await
    }

    async fn append(
        &self,
        channel: &ChannelHandle,
        request: &AppendRequest,
    ) -> Result<Appended, AppendError> {
        self.append_rows(channel, request).await
    }

    async fn channel_status(&self, channel: &ChannelHandle) -> Result<Option<ChannelStatus>> {
        Ok(self
            .bulk_status(std::slice::from_ref(channel))
            .await?
            .pop()
            .flatten())
    }

    async fn bulk_status(&self, channels: &[ChannelHandle]) -> Result<Vec<Option<ChannelStatus>>> {
        // One request per pipe (table), answers put back in the order asked.
        let mut by_table: HashMap<&snowpipe_api::TableRef, Vec<&ChannelHandle>> = HashMap::new();
        for handle in channels {
            by_table
                .entry(&handle.channel.table)
                .or_default()
                .push(handle);
        }
        // Pipes are asked at once (a poll of a batch over twenty tables is twenty requests): a few at a time,
        // so that a destination with many tables does not open as many connections.
        let mut asks = Vec::with_capacity(by_table.len());
        for (table, handles) in by_table {
            asks.push(async move {
                self.pipe_statuses(&handles)
                    .await
                    .map(|statuses| (table, statuses))
            });
        }
        let answers: Vec<_> = futures_util::stream::iter(asks)
            .buffer_unordered(STATUS_PIPES_AT_ONCE)
            .collect()
            .await;
        let mut found: HashMap<(&snowpipe_api::TableRef, String), ChannelStatus> = HashMap::new();
        for answer in answers {
            let (table, statuses) = answer?;
            for (name, status) in statuses {
                found.insert((table, name), status);
            }
        }
        Ok(channels
            .iter()
            .map(|h| found.get(&(&h.channel.table, h.id.clone())).cloned())
            .collect())
    }

    async fn drop_channel(&self, channel: &ChannelHandle, options: &DropOptions) -> Result<()> {
        let what = Self::describe("drop", &channel.channel);
        let body = serde_json::to_vec(&serde_json::json!({
            "fail_on_uncommitted_rows": options.wait_for_commit
        }))
        .unwrap_or_default();
        let call = Self::json_call(
            Call::DropChannel,
            what.clone(),
            Method::DELETE,
            Self::channel_path(&channel.channel),
            body,
        );
        let slot = self.slot(&channel.channel);
        let mut token = slot.lock().await;
        let mut waited = Duration::ZERO;
        let mut step = FIRST_WAIT_STEP;
        loop {
            match self.send(&call, retry_idempotent).await {
                Ok(_) => break,
                // Dropping a channel the service does not know succeeds.
                Err(Failed {
                    error: RestError::Service { status: 404, .. },
                    kind: Some(Kind::Reopen),
                    ..
                }) => break,
                Err(failed)
                    if failed.kind == Some(Kind::Wait) && waited < self.config.uncommitted_wait =>
                {
                    self.config.sleep.sleep(step).await;
                    waited += step;
                    step = (step * 2).min(MAX_WAIT_STEP);
                }
                Err(failed) => return Err(failed.into_error(Call::DropChannel)),
            }
        }
        *token = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_4_uuids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(id, request_id());
    }
}
