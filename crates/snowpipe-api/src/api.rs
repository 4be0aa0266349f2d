//! The boundary trait: what the layers above need from a Snowpipe Streaming backend.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    BulkStatusResponse, ChannelResponse, CreateChannelRequest, InsertRequest, InsertResponse,
    Result, StatusResponse,
};

/// A Snowpipe Streaming backend: open channels, append rows, learn what was committed.
///
/// The trait speaks of channels, rows and offsets only. How they travel (the sidecar service's paths,
/// status codes and gzip in [`HttpClient`](crate::HttpClient)) stays in the implementation, so that a backend
/// speaking to Snowflake's own REST API can implement the same trait.
///
/// Answers that say `success: false` are returned as `Ok` data; `Err` means the call itself failed (see
/// [`Error`](crate::Error) for what each kind means and whether the outcome is known).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait SnowpipeApi: Send + Sync {
    /// Opens the channel the request names. Opening it again returns it anew and invalidates older ids.
    async fn create_channel(&self, request: &CreateChannelRequest) -> Result<ChannelResponse>;

    /// Deletes a channel. With `sync`, waits until its buffered rows are flushed first; without, the rows
    /// still flush after the channel is gone.
    async fn delete_channel(&self, channel_id: &str, sync: bool) -> Result<()>;

    /// Reads a channel, with its table's schema.
    async fn get_channel(&self, channel_id: &str) -> Result<ChannelResponse>;

    /// Appends rows to a channel, marked with the request's offset token.
    ///
    /// Not idempotent: when it fails with [`Error::is_outcome_unknown`](crate::Error::is_outcome_unknown),
    /// the rows may be in the channel, and inserting them again would duplicate them.
    async fn insert(&self, channel_id: &str, request: &InsertRequest) -> Result<Inserted>;

    /// One channel's committed and latest inserted offsets, checked on the channel itself: the answer to
    /// trust when [`SnowpipeApi::bulk_status`] says a channel is valid but it does not commit.
    async fn channel_status(&self, channel_id: &str) -> Result<StatusResponse>;

    /// Statuses of many channels in one call; unknown ids are listed in `not_found`. Callers bound the
    /// number of ids per call (the manager sends at most 100).
    async fn bulk_status(&self, channel_ids: &[String]) -> Result<BulkStatusResponse>;
}

/// The outcome of an insert the service answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inserted {
    /// The service's answer.
    pub response: InsertResponse,
    /// Bytes of the request body as sent (after compression), for metrics.
    pub body_bytes: u64,
}

macro_rules! forward_snowpipe_api {
    ($($wrapper:ty),*) => {$(
        #[async_trait]
        impl<T: SnowpipeApi + ?Sized> SnowpipeApi for $wrapper {
            async fn create_channel(&self, request: &CreateChannelRequest) -> Result<ChannelResponse> {
                (**self).create_channel(request).await
            }
            async fn delete_channel(&self, channel_id: &str, sync: bool) -> Result<()> {
                (**self).delete_channel(channel_id, sync).await
            }
            async fn get_channel(&self, channel_id: &str) -> Result<ChannelResponse> {
                (**self).get_channel(channel_id).await
            }
            async fn insert(&self, channel_id: &str, request: &InsertRequest) -> Result<Inserted> {
                (**self).insert(channel_id, request).await
            }
            async fn channel_status(&self, channel_id: &str) -> Result<StatusResponse> {
                (**self).channel_status(channel_id).await
            }
            async fn bulk_status(&self, channel_ids: &[String]) -> Result<BulkStatusResponse> {
                (**self).bulk_status(channel_ids).await
            }
        }
    )*};
}

forward_snowpipe_api!(Arc<T>, Box<T>);

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;

    use super::*;
    use crate::StatusResponse;

    #[tokio::test]
    async fn shared_and_boxed_implementations_forward_to_the_inner_one() {
        let mut mock = MockSnowpipeApi::new();
        mock.expect_channel_status()
            .with(eq("ch-1"))
            .times(2)
            .returning(|_| {
                Ok(StatusResponse {
                    success: true,
                    offset: "4".into(),
                    ..StatusResponse::default()
                })
            });
        let shared: Arc<dyn SnowpipeApi> = Arc::new(mock);
        assert_eq!(shared.channel_status("ch-1").await.unwrap().offset, "4");
        let boxed: Box<dyn SnowpipeApi> = Box::new(Arc::clone(&shared));
        assert_eq!(boxed.channel_status("ch-1").await.unwrap().offset, "4");
    }
}
