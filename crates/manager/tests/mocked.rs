//! The manager's branches that the emulator cannot easily reach, with mocks of the layers below.

use std::{io::Write as _, sync::Arc, time::Duration};

use serde_json::json;
use snowpipe_api::{Call, Excerpt, MockSnowpipeApi};
use snowpipe_channels::{
    BackoffActive, Channel, ChannelError, DdlStep, ManualClock, MockChannels, WarehouseError,
};
use snowpipe_grouping::{Schema, WarehouseType};
use snowpipe_manager::{Destination, Manager, Settings};

fn destination() -> Destination {
    Destination {
        id: "dest".into(),
        workspace_id: "ws".into(),
        config: json!({"account": "a", "warehouse": "w", "database": "D", "user": "u", "role": "r",
                       "privateKey": "k", "namespace": "ns"}),
    }
}

fn file(lines: &[(i64, &str)]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for (job, table) in lines {
        let line = json!({"message": {"metadata": {"table": table, "columns": {"ID": "string"}}, "data": {"ID": "x"}},
                          "metadata": {"job_id": job}});
        writeln!(file, "{line}").unwrap();
    }
    file
}

fn manager(api: MockSnowpipeApi, channels: MockChannels, destination: &Destination) -> Manager {
    Manager::new(
        destination,
        Settings::default(),
        Arc::new(api),
        Arc::new(channels),
        Arc::new(ManualClock::default()),
    )
}

fn channel(id: &str, table: &str) -> Arc<Channel> {
    Arc::new(Channel {
        id: id.into(),
        table: table.into(),
        schema: [("ID", WarehouseType::String)]
            .into_iter()
            .collect::<Schema>(),
    })
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

#[tokio::test]
async fn an_undecodable_config_aborts_every_job_without_any_call() {
    let mut destination = destination();
    destination.config = json!({"account": 5});
    let manager = manager(MockSnowpipeApi::new(), MockChannels::new(), &destination);
    let batch = file(&[(1, "A"), (2, "B")]);
    let out = manager.upload(batch.path(), &[]).await;
    assert_eq!(sorted(out.aborted_job_ids), [1, 2]);
    assert!(
        out.abort_reason
            .contains("cannot decode the config of destination dest"),
        "{}",
        out.abort_reason
    );
}

type Case = (fn() -> ChannelError, bool, bool);

#[tokio::test]
async fn the_discards_channel_decides_the_whole_batch() {
    // (the error, whether the jobs are aborted, whether the backoff is reset)
    let cases: [Case; 3] = [
        (
            || ChannelError::Warehouse {
                table: "RUDDER_DISCARDS".into(),
                step: DdlStep::CreateTable,
                source: WarehouseError::Rejected {
                    status: 422,
                    code: "001003".into(),
                    sql_state: "42000".into(),
                    message: "bad".into(),
                },
            },
            true,
            true,
        ),
        (
            || ChannelError::Backoff {
                table: "RUDDER_DISCARDS".into(),
                step: DdlStep::CreateSchema,
                source: BackoffActive {
                    remaining: Duration::from_secs(1),
                    failures: 1,
                    cause: "JWT".into(),
                },
            },
            false,
            false,
        ),
        (
            || ChannelError::Service {
                table: "RUDDER_DISCARDS".into(),
                call: "opening the channel",
                source: snowpipe_api::Error::UnexpectedStatus {
                    call: Call::CreateChannel,
                    status: 503,
                    body: Excerpt::new(b""),
                    retry_after: None,
                },
            },
            false,
            true,
        ),
    ];
    for (error, aborted, resets_backoff) in cases {
        let mut channels = MockChannels::new();
        channels
            .expect_initialize_with_schema()
            .times(1)
            .returning(move |_, _| Err(error()));
        channels
            .expect_reset_backoff()
            .times(usize::from(resets_backoff))
            .return_const(());
        let manager = manager(MockSnowpipeApi::new(), channels, &destination());
        let out = manager
            .upload(file(&[(1, "A"), (2, "B")]).path(), &[])
            .await;
        let (expected, other) = if aborted {
            (&out.aborted_job_ids, &out.failed_job_ids)
        } else {
            (&out.failed_job_ids, &out.aborted_job_ids)
        };
        assert_eq!(sorted(expected.clone()), [1, 2], "{out:?}");
        assert!(
            other.is_empty() && out.importing_job_ids.is_empty(),
            "{out:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_bulk_status_fails_every_job() {
    let mut channels = MockChannels::new();
    channels
        .expect_initialize_with_schema()
        .returning(|table, _| Ok(channel("discards", table)));
    channels
        .expect_cached()
        .returning(|table| Some(channel("cached", table)));
    channels.expect_reset_backoff().return_const(());
    let mut api = MockSnowpipeApi::new();
    api.expect_bulk_status().times(1).returning(|_| {
        Err(snowpipe_api::Error::Timeout {
            call: Call::BulkStatus,
            timeout: Duration::from_secs(1),
            delivery: snowpipe_api::Delivery::MaybeSent,
        })
    });
    api.expect_insert().never();
    let manager = manager(api, channels, &destination());
    let out = manager
        .upload(file(&[(1, "A"), (2, "B")]).path(), &[])
        .await;
    assert_eq!(sorted(out.failed_job_ids), [1, 2]);
    assert!(
        out.failed_reason.contains("status of the cached channels"),
        "{}",
        out.failed_reason
    );
}

#[tokio::test]
async fn jobs_the_caller_named_but_the_file_lacks_are_failed_not_lost() {
    let mut channels = MockChannels::new();
    channels
        .expect_initialize_with_schema()
        .returning(|table, _| Ok(channel(&format!("ch-{table}"), table)));
    channels.expect_cached().returning(|_| None);
    channels.expect_reset_backoff().return_const(());
    let mut api = MockSnowpipeApi::new();
    api.expect_channel_status().returning(|_| {
        Ok(snowpipe_api::StatusResponse {
            success: true,
            valid: true,
            ..Default::default()
        })
    });
    api.expect_insert().returning(|_, _| {
        Ok(snowpipe_api::Inserted {
            response: snowpipe_api::InsertResponse {
                success: true,
                ..Default::default()
            },
            body_bytes: 10,
        })
    });
    let manager = manager(api, channels, &destination());
    let out = manager.upload(file(&[(1, "A")]).path(), &[1, 99]).await;
    assert_eq!(out.importing_job_ids, [1]);
    assert_eq!(out.failed_job_ids, [99]);
    assert!(out.failed_reason.contains("not in the event file"));
}

#[tokio::test]
async fn poll_keeps_everything_in_progress_when_bulk_status_fails_and_answers_400_to_garbage() {
    let mut api = MockSnowpipeApi::new();
    api.expect_bulk_status().times(1).returning(|_| {
        Err(snowpipe_api::Error::UnexpectedStatus {
            call: Call::BulkStatus,
            status: 500,
            body: Excerpt::new(b""),
            retry_after: None,
        })
    });
    let manager = manager(api, MockChannels::new(), &destination());
    let entries =
        json!([{"channelId": "c", "offset": "5", "table": "A", "count": 1, "minJobId": 5}]);
    let poll = manager.poll(&entries).await;
    assert!(
        poll.in_progress && !poll.complete && !poll.has_failed,
        "{poll:?}"
    );
    let bad = manager.poll(&json!("not an import id")).await;
    assert_eq!(bad.status_code, 400);
    assert!(
        bad.complete && bad.has_failed && !bad.error.is_empty(),
        "{bad:?}"
    );
}

#[tokio::test]
async fn a_bulk_status_that_keeps_failing_cannot_hold_an_import_past_the_stuck_threshold() {
    let mut api = MockSnowpipeApi::new();
    api.expect_bulk_status().returning(|_| {
        Err(snowpipe_api::Error::Timeout {
            call: Call::BulkStatus,
            timeout: Duration::from_secs(1),
            delivery: snowpipe_api::Delivery::MaybeSent,
        })
    });
    api.expect_channel_status().returning(|_| {
        Ok(snowpipe_api::StatusResponse {
            success: true,
            valid: true,
            offset: "5".into(),
            latest_inserted_offset: "5".into(),
        })
    });
    let clock = Arc::new(ManualClock::default());
    let manager = Manager::new(
        &destination(),
        Settings {
            stuck_threshold: Duration::from_secs(60),
            ..Settings::default()
        },
        Arc::new(api),
        Arc::new(MockChannels::new()),
        clock.clone(),
    );
    let entries =
        json!([{"channelId": "c", "offset": "5", "table": "A", "count": 1, "minJobId": 5}]);
    assert!(manager.poll(&entries).await.in_progress);
    clock.advance(Duration::from_secs(61));
    let poll = manager.poll(&entries).await;
    assert!(
        poll.complete && !poll.has_failed,
        "the single status shows the rows committed: {poll:?}"
    );
}

/// A manager for polls, on `clock`, with a one-minute stuck threshold and channel `c` stalled: rows inserted
/// up to 5, nothing committed.
fn stalled_poller(clock: Arc<ManualClock>) -> Manager {
    let status = || snowpipe_api::StatusResponse {
        success: true,
        valid: true,
        offset: "4".into(),
        latest_inserted_offset: "5".into(),
    };
    let mut api = MockSnowpipeApi::new();
    api.expect_bulk_status().returning(move |_| {
        Ok(snowpipe_api::BulkStatusResponse {
            success: true,
            statuses: [("c".to_owned(), status())].into_iter().collect(),
            not_found: Vec::new(),
        })
    });
    api.expect_channel_status().returning(move |_| Ok(status()));
    let mut channels = MockChannels::new();
    channels.expect_delete().returning(|_, _| Ok(()));
    Manager::new(
        &destination(),
        Settings {
            stuck_threshold: Duration::from_secs(60),
            ..Settings::default()
        },
        Arc::new(api),
        Arc::new(channels),
        clock,
    )
}

/// Every poll in a fresh process (as `snowpipe-streaming poll` runs) starts with no clock of its own; the
/// upload time in the entries still lets the threshold pass, where before such an import stayed in progress
/// forever.
#[tokio::test]
async fn polls_in_fresh_processes_still_reach_the_stuck_threshold() {
    let clock = Arc::new(ManualClock::default());
    let uploaded = time::OffsetDateTime::from(snowpipe_channels::Clock::system_time(&*clock))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let entries = json!([{"channelId": "c", "offset": "5", "table": "A", "count": 1, "minJobId": 5,
                          "uploadedAt": uploaded}]);
    clock.advance(Duration::from_secs(59));
    let poll = stalled_poller(clock.clone()).poll(&entries).await;
    assert!(poll.in_progress && !poll.complete, "{poll:?}");
    clock.advance(Duration::from_secs(2));
    let poll = stalled_poller(clock.clone()).poll(&entries).await;
    assert!(
        poll.complete && poll.has_failed && poll.has_warning,
        "61 s after the upload, a first poll declares the import stuck: {poll:?}"
    );

    // Without an upload time (an import id from elsewhere), only this process's own clock counts.
    let entries =
        json!([{"channelId": "c", "offset": "5", "table": "A", "count": 1, "minJobId": 5}]);
    let poller = stalled_poller(clock.clone());
    assert!(poller.poll(&entries).await.in_progress);
    clock.advance(Duration::from_secs(61));
    let poll = poller.poll(&entries).await;
    assert!(poll.complete && poll.has_warning, "{poll:?}");
}
