//! [`Instrumented`]: a decorator that gives every call of any [`Backend`] a tracing span and metrics.

use std::{future::Future, time::Instant};

use async_trait::async_trait;
use metrics::Label;
use tracing::Instrument as _;

use crate::{
    AppendError, AppendRequest, Appended, Backend, Call, Capabilities, ChannelHandle, ChannelRef,
    ChannelStatus, DropOptions, Error, OpenOptions, OpenedChannel, Result,
};

/// Timer of every backend call, in seconds, tagged `api`, `success` and `code`.
pub const RESPONSE_TIME: &str = "snowpipe_streaming_api_response_time_seconds";
/// Histogram of append request bodies as sent (compressed), in bytes.
pub const REQUEST_BODY_SIZE: &str = "snowpipe_streaming_request_body_bytes";

/// Describes this crate's metrics to the installed recorder (the `# HELP` lines of Prometheus text).
pub fn describe_metrics() {
    metrics::describe_histogram!(
        RESPONSE_TIME,
        metrics::Unit::Seconds,
        "Time of each call to the Snowpipe Streaming service, by api, success and code"
    );
    metrics::describe_histogram!(
        REQUEST_BODY_SIZE,
        metrics::Unit::Bytes,
        "Size of each insert request body as sent (compressed), in bytes"
    );
}

/// Wraps a [`Backend`] so that each call records:
/// - a `tracing` span `snowpipe_api` with the call name, the channel id and the outcome;
/// - the timer [`RESPONSE_TIME`] tagged `api` ([`Call::as_str`]: `create_channel`, `insert`, `status`,
///   `bulk_status`, `delete_channel`), `success` and `code` (the failure's [`Error::code`]), plus any labels
///   given;
/// - for appends, the histogram [`REQUEST_BODY_SIZE`], once per request sent.
///
/// Labels come from a small fixed set, and channel ids go to the span only, never to metric labels,
/// so that the number of time series stays bounded.
#[derive(Debug, Clone)]
pub struct Instrumented<B> {
    inner: B,
    labels: Vec<Label>,
}

impl<B: Backend> Instrumented<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
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

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    async fn observe<T, E, F>(
        &self,
        call: Call,
        channel_id: Option<&str>,
        error_of: impl Fn(&E) -> &Error,
        run: F,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
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
        let code = match &result {
            Ok(_) => "",
            Err(error) => error_of(error).code(),
        };
        let success = result.is_ok();
        span.record("success", success);
        span.record("code", code);
        if let Err(error) = &result {
            tracing::debug!(parent: &span, %error, ?elapsed, "backend call failed");
        }
        let mut labels = self.labels.clone();
        labels.push(Label::new("api", call.as_str()));
        labels.push(Label::new(
            "success",
            if success { "true" } else { "false" },
        ));
        labels.push(Label::new("code", code.to_owned()));
        metrics::histogram!(RESPONSE_TIME, labels).record(elapsed.as_secs_f64());
        result
    }
}

#[async_trait]
impl<B: Backend> Backend for Instrumented<B> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn open_channel(
        &self,
        channel: &ChannelRef,
        options: &OpenOptions,
    ) -> Result<OpenedChannel> {
        self.observe(
            Call::OpenChannel,
            None,
            |e| e,
            self.inner.open_channel(channel, options),
        )
        .await
    }

    async fn append(
        &self,
        channel: &ChannelHandle,
        request: &AppendRequest,
    ) -> Result<Appended, AppendError> {
        let result = self
            .observe(
                Call::Append,
                Some(&channel.id),
                |e: &AppendError| &e.error,
                self.inner.append(channel, request),
            )
            .await;
        let sent = match &result {
            Ok(appended) => &appended.requests,
            Err(error) => &error.accepted,
        };
        for request in sent {
            #[allow(clippy::cast_precision_loss)] // body sizes are far below 2^52
            metrics::histogram!(REQUEST_BODY_SIZE, self.labels.clone())
                .record(request.body_bytes as f64);
        }
        result
    }

    async fn channel_status(&self, channel: &ChannelHandle) -> Result<Option<ChannelStatus>> {
        self.observe(
            Call::ChannelStatus,
            Some(&channel.id),
            |e| e,
            self.inner.channel_status(channel),
        )
        .await
    }

    async fn bulk_status(&self, channels: &[ChannelHandle]) -> Result<Vec<Option<ChannelStatus>>> {
        self.observe(
            Call::BulkStatus,
            None,
            |e| e,
            self.inner.bulk_status(channels),
        )
        .await
    }

    async fn drop_channel(&self, channel: &ChannelHandle, options: &DropOptions) -> Result<()> {
        self.observe(
            Call::DropChannel,
            Some(&channel.id),
            |e| e,
            self.inner.drop_channel(channel, options),
        )
        .await
    }
}
