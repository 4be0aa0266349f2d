//! The manager's branches that the emulator cannot easily reach, with a mock of the one layer it talks to.

use std::{io::Write as _, sync::Arc, time::Duration};

use serde_json::json;
use snowpipe_api::{ChannelHandle, ChannelRef, ChannelStatus, Progress, TableRef};
use snowpipe_channels::{
    BackoffActive, Channel, ChannelError, ChannelId, DdlStep, MockChannels, WarehouseError,
};
use snowpipe_grouping::{Schema, WarehouseType};
use snowpipe_manager::{Clock as _, Destination, ImportId, Manager, ManualClock, Settings};

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

fn settings() -> Settings {
    Settings {
        stuck_threshold: Duration::from_secs(60),
        ..Settings::default()
    }
}

fn manager(channels: MockChannels, destination: &Destination) -> Manager {
    Manager::new(
        destination,
        Settings::default(),
        Arc::new(channels),
        Arc::new(ManualClock::default()),
    )
}

fn channel(id: &str, table: &str) -> Arc<Channel> {
    Arc::new(Channel {
        handle: ChannelHandle {
            channel: ChannelRef {
                table: TableRef {
                    table: table.into(),
                    ..TableRef::default()
                },
                destination: "dest".into(),
                instance: "1".into(),
            },
            id: id.into(),
        },
        table: table.into(),
        schema: [("ID", WarehouseType::String)]
            .into_iter()
            .collect::<Schema>(),
        untyped_columns: Vec::new(),
    })
}

fn status(committed: &str, inserted: &str) -> ChannelStatus {
    let token = |t: &str| (!t.is_empty()).then(|| t.to_owned());
    ChannelStatus {
        valid: true,
        committed: token(committed),
        progress: Progress::Inserted(token(inserted)),
    }
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

fn import(value: &serde_json::Value) -> ImportId {
    ImportId::decode(value).unwrap()
}

#[tokio::test]
async fn an_undecodable_config_aborts_every_job_without_any_call() {
    let mut destination = destination();
    destination.config = json!({"account": 5});
    let manager = manager(MockChannels::new(), &destination);
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
                source: snowpipe_api::Error::Retryable {
                    call: snowpipe_api::Call::OpenChannel,
                    code: "503".into(),
                    source: "the service answered HTTP 503".into(),
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
        let manager = manager(channels, &destination());
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
async fn a_failed_refresh_fails_every_job_and_appends_nothing() {
    let mut channels = MockChannels::new();
    channels
        .expect_initialize_with_schema()
        .returning(|table, _| Ok(channel("discards", table)));
    channels
        .expect_refresh()
        .withf(|tables| tables == ["A", "B"])
        .times(1)
        .returning(|_| {
            Err(ChannelError::Service {
                table: "A, B".into(),
                call: "fetching the status of the cached channels",
                source: snowpipe_api::Error::Retryable {
                    call: snowpipe_api::Call::BulkStatus,
                    code: "timeout".into(),
                    source: "no answer".into(),
                },
            })
        });
    channels.expect_append().never();
    channels.expect_reset_backoff().return_const(());
    let manager = manager(channels, &destination());
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
    channels.expect_refresh().returning(|_| Ok(()));
    channels
        .expect_status_before()
        .returning(|_| Some(status("", "")));
    channels
        .expect_append()
        .withf(|channel, rows, token| channel.id() == "ch-A" && rows.len() == 1 && token == "1")
        .times(1)
        .returning(|channel, _, _| Ok(channel));
    channels.expect_reset_backoff().return_const(());
    let manager = manager(channels, &destination());
    let out = manager.upload(file(&[(1, "A")]).path(), &[1, 99]).await;
    assert_eq!(out.importing_job_ids, [1]);
    assert_eq!(out.failed_job_ids, [99]);
    assert!(out.failed_reason.contains("not in the event file"));
    let entries = out.importing_parameters.unwrap().import_id;
    assert_eq!(entries.entries()[0].channel_id, "ch-A");
}

#[tokio::test]
async fn a_failed_append_fails_the_tables_jobs_with_its_reason() {
    let mut channels = MockChannels::new();
    channels
        .expect_initialize_with_schema()
        .returning(|table, _| Ok(channel(&format!("ch-{table}"), table)));
    channels.expect_refresh().returning(|_| Ok(()));
    channels.expect_status_before().returning(|_| None);
    channels.expect_append().returning(|channel, _, _| {
        if channel.table == "A" {
            Err(ChannelError::Append {
                table: "A".into(),
                channel_id: channel.id().to_owned(),
                message: "inserting into table A failed: boom".into(),
            })
        } else {
            Ok(channel)
        }
    });
    channels.expect_reset_backoff().return_const(());
    let manager = manager(channels, &destination());
    let out = manager
        .upload(file(&[(1, "A"), (2, "B")]).path(), &[])
        .await;
    assert_eq!(out.failed_job_ids, [1], "{out:?}");
    assert_eq!(out.importing_job_ids, [2], "{out:?}");
    assert!(out.failed_reason.contains("boom"), "{}", out.failed_reason);
}

#[tokio::test]
async fn poll_keeps_everything_in_progress_when_bulk_status_fails() {
    let mut channels = MockChannels::new();
    channels.expect_statuses().times(1).returning(|_| {
        Err(ChannelError::Service {
            table: "A".into(),
            call: "fetching the status of the import's channels",
            source: snowpipe_api::Error::Retryable {
                call: snowpipe_api::Call::BulkStatus,
                code: "500".into(),
                source: "HTTP 500".into(),
            },
        })
    });
    let manager = manager(channels, &destination());
    let entries = import(
        &json!([{"channelId": "c", "offset": "5", "table": "A", "count": 1, "minJobId": 5}]),
    );
    let poll = manager.poll(&entries).await;
    assert!(
        poll.in_progress && !poll.complete && !poll.has_failed,
        "{poll:?}"
    );
}

#[tokio::test]
async fn a_bulk_status_that_keeps_failing_cannot_hold_an_import_past_the_stuck_threshold() {
    let mut channels = MockChannels::new();
    channels.expect_statuses().returning(|_| {
        Err(ChannelError::Service {
            table: "A".into(),
            call: "fetching the status of the import's channels",
            source: snowpipe_api::Error::Retryable {
                call: snowpipe_api::Call::BulkStatus,
                code: "timeout".into(),
                source: "no answer".into(),
            },
        })
    });
    channels
        .expect_status()
        .returning(|_| Ok(Some(status("5", "5"))));
    let clock = Arc::new(ManualClock::default());
    let manager = Manager::new(
        &destination(),
        settings(),
        Arc::new(channels),
        clock.clone(),
    );
    let entries = import(
        &json!([{"channelId": "c", "offset": "5", "table": "A", "count": 1, "minJobId": 5}]),
    );
    assert!(manager.poll(&entries).await.in_progress);
    clock.advance(Duration::from_secs(61));
    let poll = manager.poll(&entries).await;
    assert!(
        poll.complete && !poll.has_failed,
        "the single status shows the rows committed: {poll:?}"
    );
}

/// A manager for polls, on `clock`, with a one-minute stuck threshold and every channel stalled: rows
/// inserted up to 5, committed up to 4.
fn stalled_poller(clock: Arc<ManualClock>) -> Manager {
    let mut channels = MockChannels::new();
    channels
        .expect_statuses()
        .returning(|asked| Ok(asked.iter().map(|_| Some(status("4", "5"))).collect()));
    channels
        .expect_status()
        .returning(|_| Ok(Some(status("4", "5"))));
    channels.expect_delete().returning(|_| Ok(()));
    Manager::new(&destination(), settings(), Arc::new(channels), clock)
}

/// Every poll in a fresh process (as `snowpipe-streaming poll` runs) starts with no clock of its own; the
/// upload time in the entries still lets the threshold pass, where before such an import stayed in progress
/// forever.
#[tokio::test]
async fn polls_in_fresh_processes_still_reach_the_stuck_threshold() {
    let clock = Arc::new(ManualClock::default());
    let uploaded = time::OffsetDateTime::from(clock.system_time())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let entries = import(
        &json!([{"channelId": "c", "offset": "5", "table": "A", "count": 1, "minJobId": 5,
                          "uploadedAt": uploaded}]),
    );
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
    let entries = import(
        &json!([{"channelId": "c", "offset": "5", "table": "A", "count": 1, "minJobId": 5}]),
    );
    let poller = stalled_poller(clock.clone());
    assert!(poller.poll(&entries).await.in_progress);
    clock.advance(Duration::from_secs(61));
    let poll = poller.poll(&entries).await;
    assert!(poll.complete && poll.has_warning, "{poll:?}");
}

/// Two imports polled in turn by one manager: completing one must not reset the other's state. Before, one
/// poll state served every import, so completing A made B's next poll ask B's old channel again (which the
/// backend had lost), reopen it a second time (discarding rows on the sidecar), and restart B's stuck clock.
#[tokio::test]
async fn two_imports_polled_in_turn_keep_their_own_state() {
    let clock = Arc::new(ManualClock::default());
    let mut channels = MockChannels::new();
    channels.expect_statuses().returning(|asked| {
        Ok(asked
            .iter()
            .map(|c| match c.id.as_str() {
                "a" => Some(status("5", "5")),
                // B's channel was lost by the backend; once reopened it stays behind.
                "b-new" => Some(status("", "9")),
                _ => None,
            })
            .collect())
    });
    channels
        .expect_recreate()
        .withf(|table, stale| table == "B" && stale.is_none())
        .times(1)
        .returning(|table, _| Ok(channel("b-new", table)));
    channels
        .expect_status()
        .withf(|c: &ChannelId| c.id == "b-new")
        .returning(|_| Ok(Some(status("", "9"))));
    channels.expect_delete().returning(|_| Ok(()));
    let manager = Manager::new(
        &destination(),
        settings(),
        Arc::new(channels),
        clock.clone(),
    );
    let a = import(&json!([{"channelId": "a", "offset": "5", "table": "A", "count": 1}]));
    let b = import(&json!([{"channelId": "b-old", "offset": "9", "table": "B", "count": 1}]));

    assert!(manager.poll(&b).await.in_progress, "B is behind");
    clock.advance(Duration::from_secs(30));
    assert!(manager.poll(&a).await.complete, "A is committed");
    clock.advance(Duration::from_secs(20));
    assert!(
        manager.poll(&b).await.in_progress,
        "B asks its reopened channel, without reopening it again"
    );
    clock.advance(Duration::from_secs(11));
    let poll = manager.poll(&b).await;
    assert!(
        poll.complete && poll.has_failed && poll.has_warning,
        "B's own clock kept running through A's completion: 61 s in progress is stuck: {poll:?}"
    );
}
