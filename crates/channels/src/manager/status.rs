//! Where channels stand: bulk statuses in bounded calls, the refresh of cached channels before an upload,
//! and the last status known of each channel.

use snowpipe_api::{Backend, BackendExt as _, ChannelHandle, ChannelStatus, Progress};

use super::{Channel, ChannelId, ChannelManager, locked};
use crate::{ChannelError, Warehouse};

impl<B: Backend, W: Warehouse> ChannelManager<B, W> {
    /// See [`Channels::refresh`](super::Channels::refresh).
    pub(super) async fn refresh_cached(&self, tables: &[String]) -> Result<(), ChannelError> {
        let cached: Vec<std::sync::Arc<Channel>> =
            tables.iter().filter_map(|t| self.cached(t)).collect();
        if cached.is_empty() {
            return Ok(());
        }
        let handles: Vec<ChannelHandle> = cached.iter().map(|c| c.handle.clone()).collect();
        let statuses = self
            .backend
            .bulk_status_chunked(&handles, self.settings.bulk_status_batch_size)
            .await
            .map_err(|source| {
                let tables: Vec<&str> = cached.iter().map(|c| c.table.as_str()).collect();
                self.service_error(
                    &tables.join(", "),
                    "fetching the status of the cached channels",
                    source,
                )
            })?;
        for (channel, status) in cached.iter().zip(statuses) {
            match status {
                Some(status) if status.valid => {
                    locked(&self.known).insert(channel.id().to_owned(), status);
                }
                status => {
                    let (lost, invalid) = (status.is_none(), status.is_some());
                    tracing::info!(table = %channel.table, channel_id = %channel.id(), lost, invalid, "reopening channel");
                    // Only this channel: another task may have opened the table's channel anew meanwhile.
                    let mut cache = locked(&self.cache);
                    if cache
                        .get(&channel.table)
                        .is_some_and(|c| c.id() == channel.id())
                    {
                        cache.remove(&channel.table);
                    }
                    drop(cache);
                    locked(&self.known).remove(channel.id());
                }
            }
        }
        Ok(())
    }

    /// The last status known of the channel, or asked now (and kept); `None` when the backend cannot say.
    pub(super) async fn known_or_asked(&self, channel: &Channel) -> Option<ChannelStatus> {
        if let Some(status) = locked(&self.known).get(channel.id()) {
            return Some(status.clone());
        }
        let status = self
            .backend
            .channel_status(&channel.handle)
            .await
            .ok()
            .flatten()?;
        locked(&self.known).insert(channel.id().to_owned(), status.clone());
        Some(status)
    }

    /// Notes that the backend accepted rows up to `token` on the channel.
    pub(super) fn note_appended(&self, channel: &Channel, token: &str) {
        let mut known = locked(&self.known);
        let status = known
            .entry(channel.id().to_owned())
            .or_insert_with(|| ChannelStatus {
                valid: true,
                committed: None,
                progress: Progress::Unknown,
            });
        if self.backend.capabilities().reports_inserted_offset {
            status.progress = Progress::Inserted(Some(token.to_owned()));
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
