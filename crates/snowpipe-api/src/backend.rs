//! The boundary trait: what the layers above need from a Snowpipe Streaming backend, whatever it speaks.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    AppendError, AppendRequest, Appended, Capabilities, ChannelHandle, ChannelRef, ChannelStatus,
    DropOptions, OpenOptions, OpenedChannel, Result, Row,
};

/// A Snowpipe Streaming backend: open channels, append rows labelled with offset tokens, learn what was
/// committed.
///
/// Two backends implement it: the sidecar service ([`Sidecar`](crate::sidecar::Sidecar)), and Snowflake's
/// own REST API (the `snowpipe-rest` crate). The trait says what both share; each keeps its protocol's
/// details (channel ids or continuation tokens, status codes, answer shapes) inside, and reports failures as
/// [`Error`](crate::Error) kinds that say what to do next. [`Capabilities`] says what a backend can do
/// beyond the common calls.
///
/// A backend never resolves an append whose outcome is unknown by itself (by resending, say): it reports
/// [`Error::OutcomeUnknown`](crate::Error::OutcomeUnknown) and the caller, which knows what its tokens
/// mean, finds out from the channel.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Backend: Send + Sync {
    /// What this backend can do beyond the common calls.
    fn capabilities(&self) -> Capabilities;

    /// Opens the channel, or opens it again: either way every earlier writer of it is superseded, and rows
    /// they appended that are not committed are handled as `options` say.
    async fn open_channel(
        &self,
        channel: &ChannelRef,
        options: &OpenOptions,
    ) -> Result<OpenedChannel>;

    /// Appends rows. Not idempotent: when it fails with an unknown outcome, the rows may be in the channel
    /// and appending them again could put them in twice.
    async fn append(
        &self,
        channel: &ChannelHandle,
        request: &AppendRequest,
    ) -> Result<Appended, AppendError>;

    /// One channel's status, checked on the channel itself: the answer to trust when
    /// [`Backend::bulk_status`] calls a channel valid that does not commit. `None`: the backend does not know
    /// the channel (it was lost or dropped).
    async fn channel_status(&self, channel: &ChannelHandle) -> Result<Option<ChannelStatus>>;

    /// Statuses of many channels in one call, in the order asked; `None` for a channel the backend does not
    /// know. Callers bound the number of channels per call ([`BackendExt::bulk_status_chunked`]).
    async fn bulk_status(&self, channels: &[ChannelHandle]) -> Result<Vec<Option<ChannelStatus>>>;

    /// Drops a channel. Dropping one the backend does not know succeeds.
    async fn drop_channel(&self, channel: &ChannelHandle, options: &DropOptions) -> Result<()>;
}

/// Conveniences over any [`Backend`].
#[async_trait]
pub trait BackendExt: Backend {
    /// Appends rows that all carry one offset token.
    async fn append_rows(
        &self,
        channel: &ChannelHandle,
        rows: Vec<Row>,
        token: &str,
    ) -> Result<Appended, AppendError> {
        self.append(channel, &AppendRequest::with_token(rows, token))
            .await
    }

    /// [`Backend::bulk_status`] in calls of at most `chunk` channels (at least one), answers in the order
    /// asked. The first failing call fails the whole.
    async fn bulk_status_chunked(
        &self,
        channels: &[ChannelHandle],
        chunk: usize,
    ) -> Result<Vec<Option<ChannelStatus>>> {
        let mut statuses = Vec::with_capacity(channels.len());
        for part in channels.chunks(chunk.max(1)) {
            statuses.extend(self.bulk_status(part).await?);
        }
        Ok(statuses)
    }
}

impl<B: Backend + ?Sized> BackendExt for B {}

macro_rules! forward_backend {
    ($($wrapper:ty),*) => {$(
        #[async_trait]
        impl<T: Backend + ?Sized> Backend for $wrapper {
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            async fn open_channel(
                &self,
                channel: &ChannelRef,
                options: &OpenOptions,
            ) -> Result<OpenedChannel> {
                (**self).open_channel(channel, options).await
            }
            async fn append(
                &self,
                channel: &ChannelHandle,
                request: &AppendRequest,
            ) -> Result<Appended, AppendError> {
                (**self).append(channel, request).await
            }
            async fn channel_status(&self, channel: &ChannelHandle) -> Result<Option<ChannelStatus>> {
                (**self).channel_status(channel).await
            }
            async fn bulk_status(
                &self,
                channels: &[ChannelHandle],
            ) -> Result<Vec<Option<ChannelStatus>>> {
                (**self).bulk_status(channels).await
            }
            async fn drop_channel(&self, channel: &ChannelHandle, options: &DropOptions) -> Result<()> {
                (**self).drop_channel(channel, options).await
            }
        }
    )*};
}

forward_backend!(Arc<T>, Box<T>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Progress, TableRef};

    fn handle(id: &str) -> ChannelHandle {
        ChannelHandle {
            channel: ChannelRef {
                table: TableRef::default(),
                destination: "d".into(),
                instance: "1".into(),
            },
            id: id.into(),
        }
    }

    fn status(committed: &str) -> ChannelStatus {
        ChannelStatus {
            valid: true,
            committed: Some(committed.into()),
            progress: Progress::Unknown,
        }
    }

    #[tokio::test]
    async fn shared_and_boxed_implementations_forward_to_the_inner_one() {
        let mut mock = MockBackend::new();
        mock.expect_channel_status()
            .withf(|h| h.id == "ch-1")
            .times(2)
            .returning(|_| Ok(Some(status("4"))));
        let shared: Arc<dyn Backend> = Arc::new(mock);
        let got = shared.channel_status(&handle("ch-1")).await.unwrap();
        assert_eq!(got.unwrap().committed_str(), "4");
        let boxed: Box<dyn Backend> = Box::new(Arc::clone(&shared));
        let got = boxed.channel_status(&handle("ch-1")).await.unwrap();
        assert_eq!(got.unwrap().committed_str(), "4");
    }

    #[tokio::test]
    async fn bulk_status_goes_in_chunks_and_keeps_the_order() {
        let mut mock = MockBackend::new();
        mock.expect_bulk_status().times(3).returning(move |part| {
            Ok(part
                .iter()
                .map(|h| (h.id != "c").then(|| status(&h.id)))
                .collect())
        });
        let handles: Vec<ChannelHandle> = ["a", "b", "c", "d", "e"].map(handle).into();
        let got = mock.bulk_status_chunked(&handles, 2).await.unwrap();
        let committed: Vec<Option<String>> = got
            .iter()
            .map(|s| s.as_ref().map(|s| s.committed_str().to_owned()))
            .collect();
        assert_eq!(
            committed,
            [
                Some("a".into()),
                Some("b".into()),
                None,
                Some("d".into()),
                Some("e".into())
            ]
        );
    }
}
