//! A batch that cannot be read: only a bad line aborts its jobs (no retry can mend it); a file that cannot
//! be opened or holds no events fails the caller's jobs, so they come back instead of being lost.

use std::{io::Write as _, sync::Arc, time::Duration};

use serde_json::json;
use snowpipe_api::{ChannelStatus, Row};
use snowpipe_channels::{
    AppendOutcome, Channel, ChannelError, ChannelId, Channels, CommitWait, EntryRows, EntryVerdict,
    ManualClock, MockChannels, Segment,
};
use snowpipe_grouping::Schema;
use snowpipe_manager::{Destination, Manager, Settings};

fn manager() -> Manager {
    // No expectations: nothing may be called.
    manager_with(MockChannels::new())
}

fn destination() -> Destination {
    Destination {
        id: "dest".into(),
        workspace_id: "ws".into(),
        config: json!({"account": "a", "warehouse": "w", "database": "D", "user": "u", "role": "r",
                       "privateKey": "k", "namespace": "ns"}),
    }
}

fn manager_with(channels: MockChannels) -> Manager {
    Manager::new(
        &destination(),
        Settings::default(),
        Arc::new(channels),
        Arc::new(ManualClock::default()),
    )
}

/// Soak seed 0x7dded2c827901ac9: the router handed over job 1001 but the file lost its line, leaving the file
/// empty; the job was aborted (never retried) although nothing was wrong with it.
#[tokio::test]
async fn an_empty_file_fails_the_callers_jobs() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let out = manager().upload(file.path(), &[1001, 1002]).await;
    assert_eq!(out.failed_job_ids, [1001, 1002], "{out:?}");
    assert!(out.aborted_job_ids.is_empty(), "{out:?}");
    assert!(
        out.failed_reason.contains("holds no events"),
        "{}",
        out.failed_reason
    );
}

#[tokio::test]
async fn a_file_that_cannot_be_opened_fails_the_callers_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let out = manager().upload(&dir.path().join("gone.jsonl"), &[7]).await;
    assert_eq!(out.failed_job_ids, [7], "{out:?}");
    assert!(out.aborted_job_ids.is_empty(), "{out:?}");
}

#[tokio::test]
async fn a_bad_line_still_aborts_every_job() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let good = json!({"message": {"metadata": {"table": "T", "columns": {"ID": "string"}}, "data": {"ID": "x"}},
                      "metadata": {"job_id": 1}});
    writeln!(file, "{good}\n{{not json").unwrap();
    // A file with something in it: the discards channel is opened while it is read (whatever comes of
    // that, the bad line decides).
    let mut channels = MockChannels::new();
    channels
        .expect_initialize_with_schema()
        .withf(|table, _| table == "RUDDER_DISCARDS")
        .times(1)
        .returning(|table, _| {
            Err(ChannelError::Append {
                table: table.to_owned(),
                channel_id: String::new(),
                message: "the service is down".to_owned(),
            })
        });
    let out = manager_with(channels).upload(file.path(), &[1, 2]).await;
    assert_eq!(out.aborted_job_ids, [1, 2], "{out:?}");
    assert!(out.failed_job_ids.is_empty(), "{out:?}");
}

/// The channel layer of a service that never answers the opening of the discards channel.
struct DiscardsNeverOpen;

#[async_trait::async_trait]
impl Channels for DiscardsNeverOpen {
    async fn initialize_with_schema(
        &self,
        _: &str,
        _: &Schema,
    ) -> Result<Arc<Channel>, ChannelError> {
        std::future::pending().await
    }
    async fn refresh(&self, _: &[String]) -> Result<(), ChannelError> {
        unreachable!("nothing is refreshed for a batch that cannot be read")
    }
    async fn append(&self, _: &str, _: Vec<Row>) -> Result<AppendOutcome, ChannelError> {
        unreachable!("nothing is appended for a batch that cannot be read")
    }
    async fn wait_for_commit(
        &self,
        _: &str,
        _: &[Segment],
        _: Duration,
    ) -> Result<CommitWait, ChannelError> {
        unreachable!("no commit is waited for")
    }
    async fn judge(&self, _: &[EntryRows], _: bool) -> Vec<Result<EntryVerdict, ChannelError>> {
        unreachable!("nothing is judged")
    }
    async fn check_stalled(
        &self,
        _: &[EntryRows],
    ) -> Vec<Result<Option<EntryVerdict>, ChannelError>> {
        unreachable!("nothing is checked")
    }
    async fn statuses(&self, _: &[ChannelId]) -> Result<Vec<Option<ChannelStatus>>, ChannelError> {
        unreachable!("no status is asked")
    }
    fn reset_backoff(&self) {}
}

/// The discards channel is opened while the file is read; a bad line decides the jobs at once, without
/// waiting for that opening (here it never ends).
#[tokio::test]
async fn a_bad_line_does_not_wait_for_the_discards_channel() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "{{not json").unwrap();
    let manager = Manager::new(
        &destination(),
        Settings::default(),
        Arc::new(DiscardsNeverOpen),
        Arc::new(ManualClock::default()),
    );
    // A bound for the failure report only: without the fix the upload never ends.
    let out = tokio::time::timeout(Duration::from_secs(60), manager.upload(file.path(), &[1]))
        .await
        .expect("the upload waited on the discards channel");
    assert_eq!(out.aborted_job_ids, [1], "{out:?}");
}
