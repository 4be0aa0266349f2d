//! [`Instrumented`]: a decorator that gives every call of any [`SnowpipeApi`] a tracing span and metrics.

use std::{future::Future, time::Instant};

use async_trait::async_trait;
use metrics::Label;
use tracing::Instrument as _;

use crate::{
    BulkStatusResponse, Call, ChannelResponse, CreateChannelRequest, Error, InsertRequest,
    Inserted, Result, SnowpipeApi, StatusResponse,
};

/// Timer of every service call, in seconds, tagged `api`, `success` and `code`.
pub const RESPONSE_TIME: &str = "snowpipe_streaming_api_response_time";
/// Histogram of insert request bodies as sent (compressed), in bytes.
pub const REQUEST_BODY_SIZE: &str = "snowpipe_streaming_request_body_size";

/// Wraps a [`SnowpipeApi`] so that each call records:
/// - a `tracing` span `snowpipe_api` with the call name, the channel id and the outcome;
/// - the timer [`RESPONSE_TIME`] tagged `api` (`create_channel`, `delete_channel`, `get_channel`, `insert`,
///   `status`, `bulk_status`), `success` (`true` only when the call worked and the answer said success) and
///   `code` (the answer's error code, the HTTP status, or the error kind), plus any labels given;
/// - for inserts, the histogram [`REQUEST_BODY_SIZE`].
///
/// Labels come from a small fixed set, and channel ids go to the span only, never to metric labels,
/// so that the number of time series stays bounded.
#[derive(Debug, Clone)]
pub struct Instrumented<A> {
    inner: A,
    labels: Vec<Label>,
}

impl<A: SnowpipeApi> Instrumented<A> {
    /// Wraps `inner`.
    pub fn new(inner: A) -> Self {
        Self {
            inner,
            labels: Vec::new(),
        }
    }

    /// Adds labels to every metric, e.g. workspace, destination and destination type.
    #[must_use]
    pub fn with_labels(mut self, labels: impl IntoIterator<Item = (&'static str, String)>) -> Self {
        self.labels
            .extend(labels.into_iter().map(|(k, v)| Label::new(k, v)));
        self
    }

    /// The wrapped implementation.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    async fn observe<T, F>(
        &self,
        call: Call,
        channel_id: Option<&str>,
        outcome: impl Fn(&T) -> Outcome,
        run: F,
    ) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        let span = tracing::debug_span!(
            "snowpipe_api",
            call = call.as_str(),
            channel_id = channel_id.unwrap_or(""),
            success = tracing::field::Empty,
            code = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = run.instrument(span.clone()).await;
        let elapsed = started.elapsed();
        let (success, code) = match &result {
            Ok(value) => {
                let Outcome { success, code } = outcome(value);
                (success, code)
            }
            Err(error) => (false, error_code(error)),
        };
        span.record("success", success);
        span.record("code", code.as_str());
        if let Err(error) = &result {
            tracing::debug!(parent: &span, %error, ?elapsed, "service call failed");
        }
        let mut labels = self.labels.clone();
        labels.push(Label::new("api", call.as_str()));
        labels.push(Label::new(
            "success",
            if success { "true" } else { "false" },
        ));
        labels.push(Label::new("code", code));
        metrics::histogram!(RESPONSE_TIME, labels).record(elapsed.as_secs_f64());
        result
    }
}

/// What a successful call's answer says.
struct Outcome {
    success: bool,
    code: String,
}

impl Outcome {
    fn ok() -> Self {
        Self {
            success: true,
            code: String::new(),
        }
    }

    fn of(success: bool, code: &str) -> Self {
        Self {
            success,
            code: code.to_owned(),
        }
    }
}

/// A short, bounded label for a failed call.
fn error_code(error: &Error) -> String {
    if let Some(status) = error.status() {
        return status.to_string();
    }
    match error {
        Error::Transport { .. } => "transport",
        Error::Timeout { .. } => "timeout",
        Error::Decode { .. } => "decode",
        Error::InvalidRequest { .. } => "invalid_request",
        _ => "error",
    }
    .to_owned()
}

#[async_trait]
impl<A: SnowpipeApi> SnowpipeApi for Instrumented<A> {
    async fn create_channel(&self, request: &CreateChannelRequest) -> Result<ChannelResponse> {
        let outcome = |r: &ChannelResponse| Outcome::of(r.success, &r.code);
        self.observe(
            Call::CreateChannel,
            None,
            outcome,
            self.inner.create_channel(request),
        )
        .await
    }

    async fn delete_channel(&self, channel_id: &str, sync: bool) -> Result<()> {
        let outcome = |(): &()| Outcome::ok();
        self.observe(
            Call::DeleteChannel,
            Some(channel_id),
            outcome,
            self.inner.delete_channel(channel_id, sync),
        )
        .await
    }

    async fn get_channel(&self, channel_id: &str) -> Result<ChannelResponse> {
        let outcome = |r: &ChannelResponse| Outcome::of(r.success, &r.code);
        self.observe(
            Call::GetChannel,
            Some(channel_id),
            outcome,
            self.inner.get_channel(channel_id),
        )
        .await
    }

    async fn insert(&self, channel_id: &str, request: &InsertRequest) -> Result<Inserted> {
        let outcome = |r: &Inserted| Outcome::of(r.response.success, &r.response.code);
        let result = self
            .observe(
                Call::Insert,
                Some(channel_id),
                outcome,
                self.inner.insert(channel_id, request),
            )
            .await;
        if let Ok(inserted) = &result {
            #[allow(clippy::cast_precision_loss)] // body sizes are far below 2^52
            metrics::histogram!(REQUEST_BODY_SIZE, self.labels.clone())
                .record(inserted.body_bytes as f64);
        }
        result
    }

    async fn channel_status(&self, channel_id: &str) -> Result<StatusResponse> {
        let outcome = |r: &StatusResponse| Outcome::of(r.success, "");
        self.observe(
            Call::Status,
            Some(channel_id),
            outcome,
            self.inner.channel_status(channel_id),
        )
        .await
    }

    async fn bulk_status(&self, channel_ids: &[String]) -> Result<BulkStatusResponse> {
        let outcome = |r: &BulkStatusResponse| Outcome::of(r.success, "");
        self.observe(
            Call::BulkStatus,
            None,
            outcome,
            self.inner.bulk_status(channel_ids),
        )
        .await
    }
}
