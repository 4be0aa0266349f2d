//! The manager's branches that the emulator cannot easily reach, with a mock of the one layer it talks to.

use std::{io::Write as _, sync::Arc, time::Duration};

use serde_json::json;
use snowpipe_api::{ChannelHandle, ChannelRef, ChannelStatus, Progress, TableRef};
use snowpipe_channels::{
    AppendOutcome, BackoffActive, Channel, ChannelError, CommitWait, DdlStep, EntryRows,
    EntryVerdict, FailedRows, MockChannels, Segment, WarehouseError,
    token::Epoch,
    verdict::{Rest, SegmentVerdict, Undecidable},
};
use snowpipe_grouping::{Schema, WarehouseType};
use snowpipe_manager::{
    Clock as _, Destination, FailedJobParameters, ImportId, Manager, ManualClock, Settings,
};

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
        constraints: Arc::default(),
        schema: [("ID", WarehouseType::String)]
            .into_iter()
            .collect::<Schema>(),
        untyped_columns: Vec::new(),
        epoch: EPOCH,
    })
}

const EPOCH: Epoch = Epoch {
    ordered: 1_764_000_000_000_000,
    nonce: 7,
};

/// An append that handed every row over, in one segment at positions `1..=n`.
fn appended(channel: Arc<Channel>, rows: usize) -> AppendOutcome {
    AppendOutcome {
        channel,
        segments: vec![Segment {
            epoch: EPOCH,
            first: 1,
            last: rows as u64,
            rows: 0..rows,
            end_token: format!("v2.end.{rows}"),
            fence: None,
        }],
        failed: Vec::new(),
    }
}

/// An import entry of table `table` whose rows (jobs `jobs`) went out at positions `1..`.
fn entry(table: &str, jobs: &[i64]) -> serde_json::Value {
    let runs: Vec<[i64; 2]> = jobs.iter().map(|&j| [j, j]).collect();
    json!({"channelId": format!("ch-{table}"), "offset": "v2.end", "table": table, "count": jobs.len(),
           "scheme": "v2",
           "segments": [{"epoch": EPOCH.to_string(), "first": 1, "last": jobs.len(), "jobs": runs}]})
}

fn verdict(committed_through: u64, rest: Rest) -> EntryVerdict {
    EntryVerdict {
        segments: vec![SegmentVerdict {
            committed_through,
            rest,
        }],
        reopened_invalid: false,
        ..EntryVerdict::default()
    }
}

fn retryable(call: snowpipe_api::Call) -> ChannelError {
    ChannelError::Service {
        table: "A".into(),
        call: "fetching the status of the import's channels",
        source: snowpipe_api::Error::Retryable {
            call,
            code: "timeout".into(),
            source: "no answer".into(),
        },
    }
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
        channels.expect_append().never();
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
        .returning(|_| Err(retryable(snowpipe_api::Call::BulkStatus)));
    channels.expect_append().never();
    channels.expect_reset_backoff().return_const(());
    let manager = manager(channels, &destination());
    let out = manager
        .upload(file(&[(1, "A"), (2, "B")]).path(), &[])
        .await;
    assert_eq!(sorted(out.failed_job_ids), [1, 2]);
    assert!(
        out.failed_reason
            .contains("status of the import's channels"),
        "{}",
        out.failed_reason
    );
}

#[tokio::test]
async fn entries_carry_their_segments_and_jobs_the_file_lacks_are_failed_not_lost() {
    let mut channels = MockChannels::new();
    channels
        .expect_initialize_with_schema()
        .returning(|table, _| Ok(channel(&format!("ch-{table}"), table)));
    channels.expect_refresh().returning(|_| Ok(()));
    channels
        .expect_append()
        .withf(|table, rows| table == "A" && rows.len() == 2)
        .times(1)
        .returning(|table, rows| Ok(appended(channel(&format!("ch-{table}"), table), rows.len())));
    channels.expect_reset_backoff().return_const(());
    let manager = manager(channels, &destination());
    let out = manager
        .upload(file(&[(1, "A"), (5, "A")]).path(), &[1, 5, 99])
        .await;
    assert_eq!(out.importing_job_ids, [1, 5]);
    assert_eq!(out.failed_job_ids, [99]);
    assert!(out.failed_reason.contains("not in the event file"));
    let import_id = out.importing_parameters.unwrap().import_id;
    let entry = &import_id.entries()[0];
    assert_eq!(entry.channel_id, "ch-A");
    assert_eq!(entry.scheme.as_deref(), Some("v2"));
    assert_eq!(entry.offset, "v2.end.2");
    assert_eq!(
        serde_json::to_value(&entry.segments).unwrap(),
        json!([{"epoch": EPOCH.to_string(), "first": 1, "last": 2, "jobs": [[1, 1], [5, 5]]}])
    );
}

#[tokio::test]
async fn rows_an_append_reports_failed_fail_their_jobs_alone() {
    let mut channels = MockChannels::new();
    channels
        .expect_initialize_with_schema()
        .returning(|table, _| Ok(channel(&format!("ch-{table}"), table)));
    channels.expect_refresh().returning(|_| Ok(()));
    channels.expect_append().returning(|table, _| {
        let mut outcome = appended(channel(&format!("ch-{table}"), table), 1);
        outcome.segments[0].rows = 1..2;
        outcome.failed = vec![FailedRows {
            rows: vec![0, 2],
            reason: "refused for these rows: row 0: bad".into(),
        }];
        Ok(outcome)
    });
    channels.expect_reset_backoff().return_const(());
    let manager = manager(channels, &destination());
    let out = manager
        .upload(file(&[(1, "A"), (2, "A"), (3, "A")]).path(), &[])
        .await;
    assert_eq!(out.importing_job_ids, [2], "{out:?}");
    assert_eq!(sorted(out.failed_job_ids.clone()), [1, 3], "{out:?}");
    assert!(
        out.failed_reason.contains("row 0: bad"),
        "{}",
        out.failed_reason
    );
}

#[tokio::test]
async fn a_failed_append_fails_the_tables_jobs_with_its_reason() {
    let mut channels = MockChannels::new();
    channels
        .expect_initialize_with_schema()
        .returning(|table, _| Ok(channel(&format!("ch-{table}"), table)));
    channels.expect_refresh().returning(|_| Ok(()));
    channels.expect_append().returning(|table, rows| {
        if table == "A" {
            Err(ChannelError::Append {
                table: "A".into(),
                channel_id: "ch-A".into(),
                message: "inserting into table A failed: boom".into(),
            })
        } else {
            Ok(appended(channel(&format!("ch-{table}"), table), rows.len()))
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

fn mismatched_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    // `N` declared a string while the table holds a number: a discard row, with ID and RECEIVED_AT.
    let line = json!({"message": {"metadata": {"table": "A", "columns": {"ID": "string", "N": "string",
                      "RECEIVED_AT": "datetime"}},
                      "data": {"ID": "x", "N": "abc", "RECEIVED_AT": "2024-01-02T03:04:05.000Z"}},
                      "metadata": {"job_id": 4}});
    writeln!(file, "{line}").unwrap();
    file
}

/// Discard rows must commit before their table's rows go out: when they do not in time, the table's jobs
/// fail before any of their rows is sent (so no job succeeds with its discard rows lost).
#[tokio::test]
async fn a_table_whose_discard_rows_do_not_commit_in_time_sends_nothing() {
    for committed in [true, false] {
        let mut channels = MockChannels::new();
        channels
            .expect_initialize_with_schema()
            .returning(|table, _| {
                let mut schema = Schema::new();
                schema.insert_if_absent("ID", WarehouseType::String);
                schema.insert_if_absent("N", WarehouseType::Int);
                let mut opened = (*channel(&format!("ch-{table}"), table)).clone();
                opened.schema = schema;
                Ok(Arc::new(opened))
            });
        channels.expect_refresh().returning(|_| Ok(()));
        channels
            .expect_append()
            .withf(|table, _| table == "RUDDER_DISCARDS")
            .times(1)
            .returning(|table, rows| Ok(appended(channel("ch-d", table), rows.len())));
        channels
            .expect_wait_for_commit()
            .withf(|table, segments, _| table == "RUDDER_DISCARDS" && segments.len() == 1)
            .times(1)
            .returning(move |_, _, _| {
                Ok(if committed {
                    CommitWait::Committed
                } else {
                    CommitWait::NotCommitted
                })
            });
        channels
            .expect_append()
            .withf(|table, _| table == "A")
            .times(usize::from(committed))
            .returning(|table, rows| Ok(appended(channel("ch-A", table), rows.len())));
        channels.expect_reset_backoff().return_const(());
        let manager = manager(channels, &destination());
        let out = manager.upload(mismatched_file().path(), &[]).await;
        if committed {
            assert_eq!(out.importing_job_ids, [4], "{out:?}");
        } else {
            assert_eq!(out.failed_job_ids, [4], "{out:?}");
            assert!(
                out.failed_reason.contains("discard rows did not commit"),
                "{}",
                out.failed_reason
            );
        }
    }
}

#[tokio::test]
async fn poll_keeps_an_entry_in_progress_when_it_cannot_be_judged() {
    let mut channels = MockChannels::new();
    channels
        .expect_judge()
        .withf(|entries: &[EntryRows], settle| entries.len() == 1 && !settle)
        .times(1)
        .returning(|_, _| vec![Err(retryable(snowpipe_api::Call::BulkStatus))]);
    let manager = manager(channels, &destination());
    let poll = manager.poll(&import(&json!([entry("A", &[5])]))).await;
    assert!(
        poll.in_progress && !poll.complete && !poll.has_failed,
        "{poll:?}"
    );
}

/// Exactly the jobs whose rows did not commit fail; upload stats says so, job by job.
#[tokio::test]
async fn poll_and_stats_name_exactly_the_failed_jobs() {
    let mut channels = MockChannels::new();
    channels
        .expect_judge()
        .returning(|_, _| vec![Ok(verdict(2, Rest::Lost))]);
    let manager = manager(channels, &destination());
    let poll = manager
        .poll(&import(&json!([entry("A", &[7, 3, 9, 4])])))
        .await;
    assert!(
        poll.complete && poll.has_failed && !poll.has_warning,
        "{poll:?}"
    );
    let params = poll.failed_job_parameters.unwrap();
    let value = serde_json::to_value(&params).unwrap();
    assert_eq!(value[0]["failedJobs"], json!([[9, 9], [4, 4]]), "{value}");
    assert!(
        value[0]["reason"].as_str().unwrap().contains("were lost"),
        "{value}"
    );
    let jobs: Vec<(i64, &str)> = vec![(7, "A"), (3, "A"), (9, "A"), (4, "A")];
    let stats = manager.upload_stats(&params, &jobs);
    assert_eq!(stats.metadata.succeeded_keys, [7, 3]);
    assert_eq!(stats.metadata.failed_keys, [9, 4]);
}

#[tokio::test]
async fn undecidable_rows_fail_with_their_cause() {
    let mut channels = MockChannels::new();
    channels
        .expect_judge()
        .returning(|_, _| vec![Ok(verdict(0, Rest::Undecidable(Undecidable::ListTooShort)))]);
    let manager = manager(channels, &destination());
    let poll = manager.poll(&import(&json!([entry("A", &[1, 2])]))).await;
    let value = serde_json::to_value(poll.failed_job_parameters.unwrap()).unwrap();
    assert_eq!(value[0]["failedJobs"], json!([[1, 2]]));
    let reason = value[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("cannot be told") && reason.contains("remembers"),
        "{reason}"
    );
}

/// An entry that cannot be judged for twice the stuck threshold (its channel can neither be asked nor
/// reopened) ends as undecidable: failed, never held forever.
#[tokio::test]
async fn an_entry_that_can_never_be_settled_fails_at_twice_the_stuck_threshold() {
    let mut channels = MockChannels::new();
    channels.expect_judge().returning(|entries, _| {
        entries
            .iter()
            .map(|_| Err(retryable(snowpipe_api::Call::OpenChannel)))
            .collect()
    });
    let clock = Arc::new(ManualClock::default());
    let manager = Manager::new(
        &destination(),
        settings(),
        Arc::new(channels),
        clock.clone(),
    );
    let import_id = import(&json!([entry("A", &[5])]));
    assert!(manager.poll(&import_id).await.in_progress);
    clock.advance(Duration::from_secs(61));
    assert!(
        manager.poll(&import_id).await.in_progress,
        "past the threshold, a reopen that fails keeps waiting"
    );
    clock.advance(Duration::from_secs(60));
    let poll = manager.poll(&import_id).await;
    assert!(
        poll.complete && poll.has_failed && poll.has_warning,
        "{poll:?}"
    );
    let value = serde_json::to_value(poll.failed_job_parameters.unwrap()).unwrap();
    assert!(
        value[0]["reason"]
            .as_str()
            .unwrap()
            .contains("could not be reopened"),
        "{value}"
    );
}

/// A manager for polls, on `clock`, with a one-minute stuck threshold and every entry in flight until
/// settled; settling finds the rows lost (`invalid`: the backend reported the channel invalid).
fn stalled_poller(clock: Arc<ManualClock>, invalid: bool) -> Manager {
    let mut channels = MockChannels::new();
    channels.expect_judge().returning(move |entries, settle| {
        entries
            .iter()
            .map(|_| {
                let mut verdict = verdict(0, if settle { Rest::Lost } else { Rest::InFlight });
                verdict.reopened_invalid = settle && invalid;
                Ok(verdict)
            })
            .collect()
    });
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
    let mut stamped = entry("A", &[5]);
    stamped["uploadedAt"] = json!(uploaded);
    let import_id = import(&json!([stamped]));
    clock.advance(Duration::from_secs(59));
    let poll = stalled_poller(clock.clone(), false).poll(&import_id).await;
    assert!(poll.in_progress && !poll.complete, "{poll:?}");
    clock.advance(Duration::from_secs(2));
    let poll = stalled_poller(clock.clone(), false).poll(&import_id).await;
    assert!(
        poll.complete && poll.has_failed && poll.has_warning,
        "61 s after the upload, a first poll settles the import as stuck: {poll:?}"
    );

    // Without an upload time (an import id from elsewhere), only this process's own clock counts.
    let import_id = import(&json!([entry("A", &[5])]));
    let poller = stalled_poller(clock.clone(), false);
    assert!(poller.poll(&import_id).await.in_progress);
    clock.advance(Duration::from_secs(61));
    let poll = poller.poll(&import_id).await;
    assert!(poll.complete && poll.has_warning, "{poll:?}");
}

/// A stuck entry whose channel the backend itself calls invalid fails quietly: no warning.
#[tokio::test]
async fn a_stuck_entry_on_an_invalid_channel_fails_without_a_warning() {
    let clock = Arc::new(ManualClock::default());
    let poller = stalled_poller(clock.clone(), true);
    let import_id = import(&json!([entry("A", &[5])]));
    assert!(poller.poll(&import_id).await.in_progress);
    clock.advance(Duration::from_secs(61));
    let poll = poller.poll(&import_id).await;
    assert!(
        poll.complete && poll.has_failed && !poll.has_warning,
        "{poll:?}"
    );
}

/// Two imports polled in turn by one manager: completing one must not reset the other's state. Before, one
/// poll state served every import, so completing A restarted B's stuck clock.
#[tokio::test]
async fn two_imports_polled_in_turn_keep_their_own_state() {
    let clock = Arc::new(ManualClock::default());
    let mut channels = MockChannels::new();
    channels
        .expect_judge()
        .returning(|entries: &[EntryRows], settle| {
            entries
                .iter()
                .map(|e| {
                    Ok(match (e.table.as_str(), settle) {
                        ("A", _) => verdict(1, Rest::Nothing),
                        (_, false) => verdict(0, Rest::InFlight),
                        (_, true) => verdict(0, Rest::Lost),
                    })
                })
                .collect()
        });
    let manager = Manager::new(
        &destination(),
        settings(),
        Arc::new(channels),
        clock.clone(),
    );
    let a = import(&json!([entry("A", &[1])]));
    let b = import(&json!([entry("B", &[2])]));
    assert!(manager.poll(&b).await.in_progress, "B is behind");
    clock.advance(Duration::from_secs(30));
    assert!(manager.poll(&a).await.complete, "A is committed");
    clock.advance(Duration::from_secs(20));
    assert!(manager.poll(&b).await.in_progress);
    clock.advance(Duration::from_secs(11));
    let poll = manager.poll(&b).await;
    assert!(
        poll.complete && poll.has_failed && poll.has_warning,
        "B's own clock kept running through A's completion: 61 s in progress is stuck: {poll:?}"
    );
}

/// Entries of the scheme before tokens (their offset a job id) keep the old rule only while the channel's
/// committed token is still a job id.
#[tokio::test]
async fn entries_of_the_old_scheme_keep_the_old_rule_only_while_the_token_is_a_job_id() {
    for (committed, succeeded) in [("9", true), ("v2.abc-1.3.0", false)] {
        let mut channels = MockChannels::new();
        channels.expect_statuses().returning(move |asked| {
            Ok(asked
                .iter()
                .map(|_| Some(status(committed, committed)))
                .collect())
        });
        let manager = manager(channels, &destination());
        let old = import(
            &json!([{"channelId": "c", "offset": "9", "table": "A", "count": 1, "minJobId": 9}]),
        );
        let poll = manager.poll(&old).await;
        assert!(poll.complete, "{poll:?}");
        assert_eq!(poll.has_failed, !succeeded, "{committed}: {poll:?}");
        let params: FailedJobParameters = poll.failed_job_parameters.unwrap();
        let stats = manager.upload_stats(&params, &[(9, "A")]);
        assert_eq!(stats.metadata.succeeded_keys.len(), usize::from(succeeded));
    }
}

/// A poller whose bulk status keeps reporting the committed token `committed()` and rows in flight, and
/// whose single-channel check answers `invalid` (the rows then are lost) or valid; counts the checks.
fn quiet_poller(
    clock: Arc<ManualClock>,
    committed: Arc<std::sync::Mutex<Option<String>>>,
    invalid: bool,
    checks: Arc<std::sync::atomic::AtomicUsize>,
) -> Manager {
    let mut channels = MockChannels::new();
    channels.expect_judge().returning(move |entries, _| {
        entries
            .iter()
            .map(|_| {
                let mut verdict = verdict(0, Rest::InFlight);
                verdict.committed = committed.lock().unwrap().clone();
                Ok(verdict)
            })
            .collect()
    });
    channels.expect_check_stalled().returning(move |entries| {
        checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        entries
            .iter()
            .map(|_| {
                Ok(invalid.then(|| {
                    let mut verdict = verdict(0, Rest::Lost);
                    verdict.reopened_invalid = true;
                    verdict
                }))
            })
            .collect()
    });
    let settings = Settings {
        stall_after: Duration::from_secs(5),
        ..Settings::default()
    };
    Manager::new(&destination(), settings, Arc::new(channels), clock)
}

/// A channel whose committed position stays still past the stall threshold is checked on its own; invalid,
/// its rows fail at once with a reason naming the stall, long before the stuck threshold (15 minutes).
#[tokio::test]
async fn a_stalled_entry_on_a_channel_invalid_alone_fails_naming_the_stall() {
    let clock = Arc::new(ManualClock::default());
    let committed = Arc::new(std::sync::Mutex::new(Some("v2.x.0".to_owned())));
    let checks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let poller = quiet_poller(clock.clone(), committed, true, checks.clone());
    let import_id = import(&json!([entry("A", &[5, 6])]));
    assert!(poller.poll(&import_id).await.in_progress);
    clock.advance(Duration::from_secs(4));
    assert!(poller.poll(&import_id).await.in_progress, "4 s: not yet");
    assert_eq!(checks.load(std::sync::atomic::Ordering::SeqCst), 0);
    clock.advance(Duration::from_secs(2));
    let poll = poller.poll(&import_id).await;
    assert!(
        poll.complete && poll.has_failed && !poll.has_warning,
        "{poll:?}"
    );
    let entries = poll.failed_job_parameters.expect("entries").0;
    assert!(
        entries[0].reason.starts_with("stalled: ") && entries[0].reason.contains("6.0s"),
        "{}",
        entries[0].reason
    );
    assert_eq!(checks.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// A committed position that moves restarts the quiet time; a valid stalled channel keeps waiting.
#[tokio::test]
async fn a_moving_position_is_no_stall_and_a_valid_stalled_channel_keeps_waiting() {
    let clock = Arc::new(ManualClock::default());
    let committed = Arc::new(std::sync::Mutex::new(None));
    let checks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let poller = quiet_poller(clock.clone(), committed.clone(), false, checks.clone());
    let import_id = import(&json!([entry("A", &[5])]));
    for step in 0..4 {
        *committed.lock().unwrap() = Some(format!("v2.x.{step}"));
        assert!(poller.poll(&import_id).await.in_progress);
        clock.advance(Duration::from_secs(4));
    }
    assert_eq!(
        checks.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "it moved every 4 s"
    );
    clock.advance(Duration::from_secs(2));
    let poll = poller.poll(&import_id).await;
    assert!(poll.in_progress, "valid: it keeps waiting: {poll:?}");
    assert_eq!(checks.load(std::sync::atomic::Ordering::SeqCst), 1);
}
