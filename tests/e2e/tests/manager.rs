//! The manager against the emulator over HTTP: each behaviour of the contract, end to end.

use std::time::Duration;

use serde_json::{Value, json};
use snowpipe_e2e::{Op, Which, World, assert_accounted, jobs_of, run};
use snowpipe_emulator::{DropMode, Endpoint, Failure};
use snowpipe_manager::Settings;

fn track(id: &str, n: i64) -> Value {
    json!({"ID": id, "RECEIVED_AT": "2024-05-12T04:36:50.199Z", "N": n})
}

fn track_columns() -> Value {
    json!({"ID": "string", "RECEIVED_AT": "datetime", "N": "int", "UUID_TS": "datetime"})
}

fn tracks(jobs: &[i64]) -> Vec<(i64, &'static str, Value, Value)> {
    jobs.iter()
        .map(|&job| {
            (
                job,
                "TRACKS",
                track_columns(),
                track(&format!("t{job}"), job),
            )
        })
        .collect()
}

fn ids(rows: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = rows
        .iter()
        .map(|r| r["ID"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    ids
}

fn statements(world: &World) -> Vec<String> {
    world
        .control
        .calls()
        .iter()
        .filter_map(|c| c.statement.clone())
        .collect()
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

snowpipe_e2e::on_both!(happy_path_lands_every_row_and_succeeds_every_job);

async fn happy_path_lands_every_row_and_succeeds_every_job(which: Which) {
    let mut world = World::start_on(which).await;
    let manager = world.manager(Settings::default());
    let file = world.file(&[
        (1, "TRACKS", track_columns(), track("a", 1)),
        (
            2,
            "PAGES",
            json!({"ID": "string", "URL": "string"}),
            json!({"ID": "p", "URL": "/x"}),
        ),
        (3, "TRACKS", track_columns(), track("b", 2)),
    ]);
    let (upload, poll, stats) = run(&manager, &file).await;
    assert_accounted(&file, &upload, stats.as_ref());
    assert_eq!(
        upload.importing_job_ids,
        [2, 1, 3],
        "tables in order of their highest job id: {upload:?}"
    );
    assert!(!poll.has_failed, "{poll:?}");
    assert_eq!(sorted(stats.unwrap().metadata.succeeded_keys), [1, 2, 3]);

    let rows = world.rows("TRACKS");
    assert_eq!(ids(&rows), ["a", "b"]);
    assert_eq!(rows[1]["N"], 2);
    assert!(
        rows[0]["UUID_TS"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "UUID_TS is set: {rows:?}"
    );
    assert_eq!(world.rows("PAGES"), [json!({"ID": "p", "URL": "/x"})]);

    // The schema and tables were missing: created once each.
    let ddl = statements(&world);
    assert_eq!(
        ddl.iter()
            .filter(|s| s.starts_with("CREATE SCHEMA"))
            .count(),
        1,
        "{ddl:#?}"
    );
    assert_eq!(
        ddl.iter().filter(|s| s.starts_with("CREATE TABLE")).count(),
        3,
        "TRACKS, PAGES, discards: {ddl:#?}"
    );
}

snowpipe_e2e::on_both!(each_table_is_judged_from_its_own_channel);

/// On REST every table's channel has the same name (one pipe per table): a poll that asked the status of
/// one table's channel for another's rows judged them from a stranger's token (lost, or never committed).
async fn each_table_is_judged_from_its_own_channel(which: Which) {
    let mut world = World::start_lagging(which, Duration::from_millis(100)).await;
    let manager = world.manager(Settings::default());
    let tables = ["T_ONE", "T_TWO", "T_THREE", "T_FOUR", "T_FIVE"];
    let events: Vec<(i64, &str, Value, Value)> = (1..=20)
        .map(|job| {
            let table = tables[usize::try_from(job).unwrap_or_default() % tables.len()];
            (job, table, track_columns(), track(&format!("r{job}"), job))
        })
        .collect();
    let file = world.file(&events);
    let upload = manager.upload(&file, &[]).await;
    assert_eq!(upload.importing_count, 20, "{upload:?}");
    let import_id = upload
        .importing_parameters
        .clone()
        .expect("importing")
        .import_id;
    // Polled as a caller does, every 20 ms, so that polls see rows still in flight; by a second manager
    // too (as the command polls, in another process), which knows the channels from the import id alone.
    let fresh = world.manager(Settings::default());
    let mut poll = fresh.poll(&import_id).await;
    for round in 0..500 {
        if poll.complete {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        poll = if round % 2 == 0 { &manager } else { &fresh }
            .poll(&import_id)
            .await;
    }
    assert!(poll.complete && !poll.has_failed, "{poll:?}");
    for table in tables {
        assert_eq!(world.rows(table).len(), 4, "{table}");
    }
}

snowpipe_e2e::on_both!(a_second_batch_reuses_the_channels);

async fn a_second_batch_reuses_the_channels(which: Which) {
    let mut world = World::start_on(which).await;
    let manager = world.manager(Settings::default());
    let first = world.file(&tracks(&[1, 2]));
    run(&manager, &first).await;
    let creates = world.count_calls(Op::Open);
    let second = world.file(&tracks(&[3, 4]));
    let (upload, poll, stats) = run(&manager, &second).await;
    assert_accounted(&second, &upload, stats.as_ref());
    assert!(!poll.has_failed);
    assert_eq!(
        world.count_calls(Op::Open),
        creates,
        "no channel opened again"
    );
    assert_eq!(ids(&world.rows("TRACKS")), ["t1", "t2", "t3", "t4"]);
}

snowpipe_e2e::on_both!(a_new_column_takes_one_alter_and_a_reopen);

async fn a_new_column_takes_one_alter_and_a_reopen(which: Which) {
    let mut world = World::start_on(which).await;
    let manager = world.manager(Settings::default());
    run(&manager, &world.file(&tracks(&[1]))).await;
    let creates = world.count_calls(Op::Open);
    let mut columns = track_columns();
    columns["PLAN"] = json!("string");
    columns["SEATS"] = json!("int");
    let mut data = track("t2", 2);
    data["PLAN"] = json!("pro");
    data["SEATS"] = json!(5);
    let file = world.file(&[(2, "TRACKS", columns, data)]);
    let (upload, poll, stats) = run(&manager, &file).await;
    assert_accounted(&file, &upload, stats.as_ref());
    assert!(!poll.has_failed, "{poll:?}");
    let alters: Vec<String> = statements(&world)
        .into_iter()
        .filter(|s| s.starts_with("ALTER TABLE"))
        .collect();
    assert_eq!(alters.len(), 1, "{alters:?}");
    assert!(
        alters[0].contains("\"PLAN\"") && alters[0].contains("\"SEATS\""),
        "{alters:?}"
    );
    // On REST every open is two calls: the open that settles, then the one that writes the fence.
    let per_open = if which == Which::Rest { 2 } else { 1 };
    assert_eq!(
        world.count_calls(Op::Open),
        creates + per_open,
        "the channel was reopened once"
    );
    let rows = world.rows("TRACKS");
    assert_eq!(rows[1]["PLAN"], "pro");
    assert_eq!(rows[1]["SEATS"], 5);
}

snowpipe_e2e::on_both!(type_mismatches_are_converted_or_discarded);

async fn type_mismatches_are_converted_or_discarded(which: Which) {
    let mut world = World::start_on(which).await;
    let manager = world.manager(Settings::default());
    run(&manager, &world.file(&tracks(&[1]))).await;
    // N is a NUMBER column now; this event says N is a string "abc" (not convertible) and ID an int.
    let columns = json!({"ID": "int", "RECEIVED_AT": "datetime", "N": "string"});
    let data = json!({"ID": 42, "RECEIVED_AT": "2024-05-12T04:36:50.199Z", "N": "abc"});
    let file = world.file(&[(2, "TRACKS", columns, data)]);
    let (upload, poll, stats) = run(&manager, &file).await;
    assert_accounted(&file, &upload, stats.as_ref());
    assert!(!poll.has_failed, "{poll:?}");
    let rows = world.rows("TRACKS");
    assert_eq!(
        rows[1]["ID"], "42",
        "an int becomes text in a string column"
    );
    assert_eq!(
        rows[1]["N"],
        Value::Null,
        "a value that cannot be converted becomes null"
    );
    let discards = world.rows("RUDDER_DISCARDS");
    assert_eq!(discards.len(), 1, "{discards:?}");
    assert_eq!(discards[0]["TABLE_NAME"], "TRACKS");
    assert_eq!(discards[0]["ROW_ID"], "42");
    assert_eq!(discards[0]["COLUMN_NAME"], "N");
    assert_eq!(discards[0]["COLUMN_VALUE"], "abc");
    assert_eq!(
        discards[0]["REASON"],
        "incompatible schema conversion from int to string"
    );
    // The discard rows committed before the table's rows went out: the import id has nothing left to
    // judge of them.
    let entries = &upload.importing_parameters.unwrap().import_id;
    assert!(
        entries
            .entries()
            .iter()
            .all(|e| e.table != "RUDDER_DISCARDS"),
        "{entries:?}"
    );
}

snowpipe_e2e::on_both!(oversized_events_abort_and_overflow_fails_in_order);

async fn oversized_events_abort_and_overflow_fails_in_order(which: Which) {
    let mut world = World::start_on(which).await;
    let manager = world.manager(Settings {
        max_insert_request_bytes: 200,
        ..Settings::default()
    });
    let mut events = tracks(&[1, 2]);
    events.push((
        3,
        "TRACKS",
        track_columns(),
        json!({"ID": "x".repeat(400), "N": 3}),
    ));
    events.extend(tracks(&[4, 5, 6]));
    let file = world.file(&events);
    let (upload, poll, stats) = run(&manager, &file).await;
    assert_accounted(&file, &upload, stats.as_ref());
    assert!(!poll.has_failed);
    assert_eq!(upload.aborted_job_ids, [3], "{upload:?}");
    assert!(
        upload
            .abort_reason
            .contains("over the 200-byte insert request limit"),
        "{}",
        upload.abort_reason
    );
    assert_eq!(upload.importing_job_ids, [1, 2], "{upload:?}");
    assert_eq!(upload.failed_job_ids, [4, 5, 6], "{upload:?}");
    assert_eq!(ids(&world.rows("TRACKS")), ["t1", "t2"]);
}

snowpipe_e2e::on_both!(a_restart_between_upload_and_poll_fails_exactly_the_lost_jobs);

async fn a_restart_between_upload_and_poll_fails_exactly_the_lost_jobs(which: Which) {
    let mut world = World::start_on(which).await;
    let manager = world.manager(Settings::default());
    run(&manager, &world.file(&tracks(&[1, 2]))).await;
    world.control.set_commit_lag(Duration::from_secs(3600));
    let file = world.file(&tracks(&[5, 6]));
    let upload = manager.upload(&file, &[]).await;
    assert_eq!(upload.importing_job_ids, [5, 6]);
    world.lose_uncommitted();
    world.control.set_commit_lag(Duration::ZERO);
    let import_id = upload
        .importing_parameters
        .as_ref()
        .unwrap()
        .import_id
        .clone();
    let poll = manager.poll(&import_id).await;
    assert!(
        poll.complete && poll.has_failed && !poll.has_warning,
        "{poll:?}"
    );
    let params = poll.failed_job_parameters.unwrap();
    let tracks_entry = params
        .entries()
        .iter()
        .find(|e| e.table == "TRACKS")
        .unwrap();
    assert_eq!(
        serde_json::to_value(tracks_entry).unwrap()["failedJobs"],
        json!([[5, 6]]),
        "exactly the lost jobs: {tracks_entry:?}"
    );
    let jobs = jobs_of(&file);
    let stats = manager.upload_stats(&params, &jobs);
    assert_eq!(stats.metadata.failed_keys, [5, 6]);
    assert!(stats.metadata.succeeded_keys.is_empty());
    assert_eq!(
        ids(&world.rows("TRACKS")),
        ["t1", "t2"],
        "nothing of the lost batch landed"
    );

    // The router sends them again: they land once.
    let again = world.file(&tracks(&[5, 6]));
    let (upload, poll, stats) = run(&manager, &again).await;
    assert_accounted(&again, &upload, stats.as_ref());
    assert!(!poll.has_failed, "{poll:?}");
    assert_eq!(ids(&world.rows("TRACKS")), ["t1", "t2", "t5", "t6"]);
}

snowpipe_e2e::on_both!(a_retried_job_with_a_low_id_lost_in_a_restart_fails);

async fn a_retried_job_with_a_low_id_lost_in_a_restart_fails(which: Which) {
    let mut world = World::start_on(which).await;
    let manager = world.manager(Settings::default());
    run(&manager, &world.file(&tracks(&[10, 11]))).await;
    world.control.set_commit_lag(Duration::from_secs(3600));
    // Job 3 failed in an earlier batch and comes back with its old id, below the committed offset 11.
    let file = world.file(&tracks(&[3, 20, 21]));
    let upload = manager.upload(&file, &[]).await;
    world.lose_uncommitted();
    let import_id = upload
        .importing_parameters
        .as_ref()
        .unwrap()
        .import_id
        .clone();
    let poll = manager.poll(&import_id).await;
    assert!(poll.has_failed, "{poll:?}");
    let stats = manager.upload_stats(
        poll.failed_job_parameters.as_ref().unwrap(),
        &jobs_of(&file),
    );
    assert_eq!(
        stats.metadata.failed_keys,
        [3, 20, 21],
        "job 3 must not be called succeeded: {stats:?}"
    );
    assert!(stats.metadata.succeeded_keys.is_empty());
}

snowpipe_e2e::on_both!(an_invalid_channel_during_poll_is_reopened_and_its_lost_rows_failed);

async fn an_invalid_channel_during_poll_is_reopened_and_its_lost_rows_failed(which: Which) {
    let mut world = World::start_on(which).await;
    let manager = world.manager(Settings::default());
    world.control.set_commit_lag(Duration::from_secs(3600));
    let file = world.file(&tracks(&[1, 2]));
    let upload = manager.upload(&file, &[]).await;
    let entries = upload
        .importing_parameters
        .as_ref()
        .unwrap()
        .import_id
        .clone();
    let channel = &entries
        .entries()
        .iter()
        .find(|e| e.table == "TRACKS")
        .unwrap()
        .channel_id;
    assert!(world.invalidate("TRACKS", channel));
    let poll = manager.poll(&entries).await;
    assert!(poll.complete && poll.has_failed, "{poll:?}");
    let stats = manager.upload_stats(
        poll.failed_job_parameters.as_ref().unwrap(),
        &jobs_of(&file),
    );
    assert_eq!(stats.metadata.failed_keys, [1, 2]);
    assert!(world.rows("TRACKS").is_empty());
}

snowpipe_e2e::on_both!(a_stalled_channel_is_failed_as_stuck_with_a_warning);

async fn a_stalled_channel_is_failed_as_stuck_with_a_warning(which: Which) {
    let mut world = World::start_on(which).await;
    let manager = world.manager(Settings {
        stuck_threshold: Duration::ZERO,
        ..Settings::default()
    });
    world.control.stall_commits(None);
    let file = world.file(&tracks(&[1]));
    let upload = manager.upload(&file, &[]).await;
    let import_id = upload
        .importing_parameters
        .as_ref()
        .unwrap()
        .import_id
        .clone();
    let poll = manager.poll(&import_id).await;
    assert!(
        poll.complete && poll.has_failed && poll.has_warning,
        "{poll:?}"
    );
    let stats = manager.upload_stats(
        poll.failed_job_parameters.as_ref().unwrap(),
        &jobs_of(&file),
    );
    assert_eq!(stats.metadata.failed_keys, [1]);
    assert!(
        stats.metadata.failed_reasons[&1].contains("stuck"),
        "{stats:?}"
    );
}

#[tokio::test]
async fn a_bulk_status_lie_is_caught_by_the_single_status_quietly() {
    let mut world = World::start().await;
    let manager = world.manager(Settings {
        stuck_threshold: Duration::ZERO,
        ..Settings::default()
    });
    world.control.set_commit_lag(Duration::from_secs(3600));
    world.control.set_bulk_status_lie(true);
    let file = world.file(&tracks(&[1]));
    let upload = manager.upload(&file, &[]).await;
    let entries = upload
        .importing_parameters
        .as_ref()
        .unwrap()
        .import_id
        .clone();
    let tracks_channel = &entries
        .entries()
        .iter()
        .find(|e| e.table == "TRACKS")
        .unwrap()
        .channel_id;
    world.control.invalidate_channel(tracks_channel);
    let poll = manager.poll(&entries).await;
    assert!(poll.complete && poll.has_failed, "{poll:?}");
    assert!(
        !poll.has_warning,
        "an invalid channel fails quietly: {poll:?}"
    );
}

snowpipe_e2e::on_both!(server_error_bursts_are_absorbed_by_retries);

async fn server_error_bursts_are_absorbed_by_retries(which: Which) {
    let mut world = World::start_on(which).await;
    let manager = world.manager(Settings::default());
    world.fail_next(Op::Open, 2, 503);
    world.fail_next(Op::Append, 3, if which == Which::Rest { 429 } else { 500 });
    world.fail_next(Op::BulkStatus, 2, 502);
    let file = world.file(&tracks(&[1, 2]));
    let (upload, poll, stats) = run(&manager, &file).await;
    assert_accounted(&file, &upload, stats.as_ref());
    assert!(upload.failed_job_ids.is_empty(), "{upload:?}");
    assert!(!poll.has_failed, "{poll:?}");
    assert_eq!(ids(&world.rows("TRACKS")), ["t1", "t2"]);
}

snowpipe_e2e::on_both!(a_burst_longer_than_the_retry_budget_fails_the_table_without_rows);

async fn a_burst_longer_than_the_retry_budget_fails_the_table_without_rows(which: Which) {
    let mut world = World::start_on(which).await;
    let manager = world.manager(Settings::default());
    run(&manager, &world.file(&tracks(&[1]))).await;
    world.fail_next(Op::Append, 20, 503);
    let file = world.file(&tracks(&[2]));
    let (upload, _, stats) = run(&manager, &file).await;
    assert_accounted(&file, &upload, stats.as_ref());
    assert_eq!(upload.failed_job_ids, [2], "{upload:?}");
    world.control.clear_faults();
    let again = world.file(&tracks(&[2]));
    let (upload, poll, _) = run(&manager, &again).await;
    assert_eq!(upload.importing_job_ids, [2]);
    assert!(!poll.has_failed);
    assert_eq!(ids(&world.rows("TRACKS")), ["t1", "t2"]);
}

snowpipe_e2e::on_both!(a_dropped_insert_response_never_duplicates_rows);

async fn a_dropped_insert_response_never_duplicates_rows(which: Which) {
    for mode in [DropMode::Applied, DropMode::NotApplied] {
        let mut world = World::start_on(which).await;
        let manager = world.manager(Settings::default());
        run(&manager, &world.file(&tracks(&[1]))).await;
        world.drop_next_append(1, mode);
        let file = world.file(&tracks(&[2, 3]));
        let (upload, poll, stats) = run(&manager, &file).await;
        assert_accounted(&file, &upload, stats.as_ref());
        assert_eq!(upload.importing_job_ids, [2, 3], "{mode:?}: {upload:?}");
        assert!(!poll.has_failed, "{mode:?}: {poll:?}");
        assert_eq!(
            ids(&world.rows("TRACKS")),
            ["t1", "t2", "t3"],
            "{mode:?}: rows exactly once"
        );
    }
}

snowpipe_e2e::on_both!(auth_failures_fail_jobs_start_the_backoff_and_stop_ddl);

async fn auth_failures_fail_jobs_start_the_backoff_and_stop_ddl(which: Which) {
    let mut world = World::start_on(which).await;
    let manager = world.manager(Settings::default());
    // The SQL API refuses the token: the first DDL is an auth failure.
    world
        .control
        .fail_next(Endpoint::Statements, 1, Failure::Status { status: 401 });
    let file = world.file(&tracks(&[1]));
    let (upload, _, _) = run(&manager, &file).await;
    assert_accounted(&file, &upload, None);
    assert_eq!(
        upload.failed_job_ids,
        [1],
        "auth failures are retried later, not aborted: {upload:?}"
    );
    let ddl_before = statements(&world).len();
    // At once again: the backoff refuses DDL without calling the warehouse.
    let again = world.file(&tracks(&[1]));
    let (upload, _, _) = run(&manager, &again).await;
    assert_eq!(upload.failed_job_ids, [1]);
    assert!(
        upload.failed_reason.contains("backoff"),
        "{}",
        upload.failed_reason
    );
    assert_eq!(
        statements(&world).len(),
        ddl_before,
        "no DDL while backing off"
    );
}

snowpipe_e2e::on_both!(a_wrong_key_fails_the_jobs_with_snowflakes_message);

async fn a_wrong_key_fails_the_jobs_with_snowflakes_message(which: Which) {
    let mut world = World::start_on(which).await;
    let mut destination = world.destination();
    destination.config["privateKey"] = json!(include_str!(
        "../../../crates/channels/tests/fixtures/rsa_key.p8"
    ));
    let manager =
        snowpipe_manager::Manager::connect(&destination, Settings::default(), world.connection())
            .unwrap();
    let file = world.file(&tracks(&[1]));
    let (upload, _, _) = run(&manager, &file).await;
    assert_accounted(&file, &upload, None);
    assert_eq!(upload.failed_job_ids, [1], "{upload:?}");
    // The service's word: the sidecar's code, or the account host's message on REST.
    let word = match which {
        Which::Sidecar => "ERR_AUTHENTICATION_FAILED",
        Which::Rest => "does not match a key registered for the user",
    };
    assert!(
        upload.failed_reason.contains(word),
        "{}",
        upload.failed_reason
    );
    assert!(statements(&world).is_empty(), "no DDL ran");
}

snowpipe_e2e::on_both!(a_bad_line_aborts_every_readable_job);

async fn a_bad_line_aborts_every_readable_job(which: Which) {
    let world = World::start_on(which).await;
    let manager = world.manager(Settings::default());
    let path = world.dir.path().join("bad.jsonl");
    let good = |job: i64| {
        json!({"message": {"metadata": {"table": "T", "columns": {"ID": "string"}}, "data": {"ID": "x"}}, "metadata": {"job_id": job}})
            .to_string()
    };
    std::fs::write(&path, format!("{}\n{{not json\n{}\n", good(1), good(3))).unwrap();
    let upload = manager.upload(&path, &[]).await;
    assert_eq!(sorted(upload.aborted_job_ids.clone()), [1, 3], "{upload:?}");
    assert!(
        upload.abort_reason.contains("line 2"),
        "{}",
        upload.abort_reason
    );
    assert!(upload.importing_job_ids.is_empty() && upload.failed_job_ids.is_empty());
    // The discards channel is opened while the file is read (its round trips overlap the parse); nothing
    // of the batch itself goes out: no rows, no statement about its table.
    let calls = world.control.calls();
    assert!(
        calls.iter().all(|c| c.row_count.unwrap_or(0) == 0),
        "no rows were sent: {calls:?}"
    );
    let statements = statements(&world);
    assert!(
        statements.iter().all(|s| !s.contains("\"T\"")),
        "no statement about the batch's table: {statements:?}"
    );
}

/// Polls an import until complete (bounded), with stats for the jobs of `file`.
async fn settle(
    manager: &snowpipe_manager::Manager,
    import_id: &snowpipe_manager::ImportId,
    file: &std::path::Path,
) -> (
    snowpipe_manager::PollOutput,
    snowpipe_manager::UploadStatsOutput,
) {
    let mut poll = manager.poll(import_id).await;
    for _ in 0..50 {
        if poll.complete {
            break;
        }
        poll = manager.poll(import_id).await;
    }
    assert!(poll.complete, "{poll:?}");
    let params = poll
        .failed_job_parameters
        .clone()
        .unwrap_or_else(|| import_id.clone().into());
    let stats = manager.upload_stats(&params, &jobs_of(file));
    (poll, stats)
}

snowpipe_e2e::on_both!(two_imports_polled_in_turn_are_judged_each_on_its_own);

/// Two imports polled in turn by one manager: the first stays in progress while its rows wait, the second
/// completes, and the first then completes on its own verdict (before, completing one import reset the
/// other's state and reopened its channel).
async fn two_imports_polled_in_turn_are_judged_each_on_its_own(which: Which) {
    let mut world = World::start_on(which).await;
    let manager = world.manager(Settings::default());
    world.control.set_commit_lag(Duration::from_secs(3600));
    let first = world.file(&tracks(&[1, 2]));
    let upload_a = manager.upload(&first, &[]).await;
    let pages = |jobs: &[i64]| -> Vec<(i64, &'static str, Value, Value)> {
        jobs.iter()
            .map(|&j| {
                (
                    j,
                    "PAGES",
                    json!({"ID": "string"}),
                    json!({"ID": format!("p{j}")}),
                )
            })
            .collect()
    };
    let second = world.file(&pages(&[11]));
    let upload_b = manager.upload(&second, &[]).await;
    let import_a = upload_a.importing_parameters.unwrap().import_id;
    let import_b = upload_b.importing_parameters.unwrap().import_id;
    assert!(manager.poll(&import_a).await.in_progress);
    world.control.flush();
    let opens = world.count_calls(Op::Open);
    let (poll_b, stats_b) = settle(&manager, &import_b, &second).await;
    assert!(!poll_b.has_failed, "{poll_b:?}");
    assert_eq!(stats_b.metadata.succeeded_keys, [11]);
    let (poll_a, stats_a) = settle(&manager, &import_a, &first).await;
    assert!(!poll_a.has_failed, "{poll_a:?}");
    assert_eq!(stats_a.metadata.succeeded_keys, [1, 2]);
    assert_eq!(
        world.count_calls(Op::Open),
        opens,
        "no channel was reopened to judge either import"
    );
    assert_eq!(ids(&world.rows("TRACKS")), ["t1", "t2"]);
}

snowpipe_e2e::on_both!(an_invalidation_followed_by_a_later_upload_fails_exactly_the_lost_jobs);

/// A channel turns invalid (losing the rows of an import), then a later upload to the same table commits.
/// With offsets as job ids, the later commit (offset 12) "passed" the first import's offset (2) and its jobs
/// were called succeeded; now the first import's rows are judged from the later epoch's record of the
/// invalid one: lost, exactly those jobs failed.
async fn an_invalidation_followed_by_a_later_upload_fails_exactly_the_lost_jobs(which: Which) {
    let mut world = World::start_on(which).await;
    let manager = world.manager(Settings::default());
    world.control.set_commit_lag(Duration::from_secs(3600));
    let first = world.file(&tracks(&[1, 2]));
    let upload_a = manager.upload(&first, &[]).await;
    let import_a = upload_a.importing_parameters.unwrap().import_id;
    let channel = import_a.entries()[0].channel_id.clone();
    assert!(world.invalidate("TRACKS", &channel));
    let second = world.file(&tracks(&[11, 12]));
    let upload_b = manager.upload(&second, &[]).await;
    assert_eq!(upload_b.importing_job_ids, [11, 12], "{upload_b:?}");
    world.control.flush();
    let import_b = upload_b.importing_parameters.unwrap().import_id;
    let (poll_b, stats_b) = settle(&manager, &import_b, &second).await;
    assert!(!poll_b.has_failed, "{poll_b:?}");
    assert_eq!(stats_b.metadata.succeeded_keys, [11, 12]);
    let (poll_a, stats_a) = settle(&manager, &import_a, &first).await;
    assert!(poll_a.has_failed && !poll_a.has_warning, "{poll_a:?}");
    assert_eq!(stats_a.metadata.failed_keys, [1, 2], "{stats_a:?}");
    assert!(stats_a.metadata.succeeded_keys.is_empty());
    assert_eq!(ids(&world.rows("TRACKS")), ["t11", "t12"]);
}

snowpipe_e2e::on_both!(overlapping_managers_of_one_destination_do_not_discard_each_other);

/// Two managers of one destination and instance (two processes of one host, sharing the state store)
/// upload to one table one after the other before the first import is polled: the second waits for the
/// first's rows to commit before it reopens the channel, so both batches land and both imports succeed.
async fn overlapping_managers_of_one_destination_do_not_discard_each_other(which: Which) {
    let mut world = World::start_on(which).await;
    world.control.set_commit_lag(Duration::from_millis(300));
    let mut connection = world.connection();
    connection.state = Some(std::sync::Arc::new(snowpipe_manager::MemoryState::default()));
    let connect = || {
        snowpipe_manager::Manager::connect(
            &world.destination(),
            Settings::default(),
            connection.clone(),
        )
        .expect("manager connects")
    };
    let (first_manager, second_manager) = (connect(), connect());
    let first = world.file(&tracks(&[1, 2, 3]));
    let upload_a = first_manager.upload(&first, &[]).await;
    let second = world.file(&tracks(&[11, 12, 13]));
    let upload_b = second_manager.upload(&second, &[]).await;
    assert_eq!(upload_b.importing_job_ids, [11, 12, 13], "{upload_b:?}");
    let import_a = upload_a.importing_parameters.unwrap().import_id;
    let import_b = upload_b.importing_parameters.unwrap().import_id;
    // The second batch's rows commit after the lag; the test does not wait for the clock.
    world.control.flush();
    let (poll_b, stats_b) = settle(&second_manager, &import_b, &second).await;
    assert!(!poll_b.has_failed, "{poll_b:?}");
    assert_eq!(stats_b.metadata.succeeded_keys, [11, 12, 13]);
    let (poll_a, stats_a) = settle(&first_manager, &import_a, &first).await;
    assert!(!poll_a.has_failed, "{poll_a:?}");
    assert_eq!(stats_a.metadata.succeeded_keys, [1, 2, 3]);
    let mut landed = ids(&world.rows("TRACKS"));
    landed.sort();
    assert_eq!(landed, ["t1", "t11", "t12", "t13", "t2", "t3"]);
}

/// Rows Snowflake rejects at commit (REST): only the jobs the counters cannot clear are aborted, with
/// Snowflake's message; a later batch, whose rows come after the last rejection, succeeds.
#[tokio::test]
async fn rows_rejected_at_commit_abort_their_jobs_and_later_batches_succeed() {
    let mut world = World::start_on(Which::Rest).await;
    let manager = world.manager(Settings::default());
    run(&manager, &world.file(&tracks(&[1]))).await;
    let channel = world
        .control
        .rest_channels()
        .into_iter()
        .find(|c| c.table == "TRACKS")
        .expect("the TRACKS channel");
    let name = snowpipe_emulator::RestChannelName::on_table(
        snowpipe_emulator::demo::DATABASE,
        snowpipe_e2e::SCHEMA,
        "TRACKS",
        &channel.channel,
    );
    assert!(world.control.reject_rows_at_commit(&name, &[1]));
    let file = world.file(&tracks(&[2, 3, 4]));
    let (upload, poll, stats) = run(&manager, &file).await;
    assert_eq!(upload.importing_job_ids, [2, 3, 4]);
    assert!(poll.has_failed, "{poll:?}");
    let stats = stats.unwrap();
    // The request held every row of the batch; the last rejection ends there, so none can be cleared.
    assert_eq!(sorted(stats.metadata.aborted_keys.clone()), [2, 3, 4]);
    assert!(stats.metadata.failed_keys.is_empty(), "{stats:?}");
    assert!(
        stats.metadata.aborted_reasons[&3].contains("rejected"),
        "{stats:?}"
    );
    assert_eq!(
        ids(&world.rows("TRACKS")),
        ["t1", "t2", "t4"],
        "the rejected row is not in"
    );

    let later = world.file(&tracks(&[5, 6]));
    let (upload, poll, stats) = run(&manager, &later).await;
    assert_accounted(&later, &upload, stats.as_ref());
    assert!(!poll.has_failed, "after the last rejection: {poll:?}");
    assert_eq!(sorted(stats.unwrap().metadata.succeeded_keys), [5, 6]);
}

snowpipe_e2e::on_both!(values_the_table_cannot_hold_are_discarded_and_nulls_into_not_null_abort);

/// A table made by hand with limits: a value too long or out of range goes the discards way (null and a
/// discard row) before it is sent, and a row with no value for a `NOT NULL` column aborts its job, so
/// Snowflake has nothing to reject.
async fn values_the_table_cannot_hold_are_discarded_and_nulls_into_not_null_abort(which: Which) {
    let mut world = World::start_on(which).await;
    let schema = snowpipe_e2e::SCHEMA;
    let db = snowpipe_emulator::demo::DATABASE;
    world
        .control
        .execute_sql(
            &format!("CREATE SCHEMA IF NOT EXISTS \"{db}\".\"{schema}\""),
            None,
            None,
        )
        .unwrap();
    world
        .control
        .execute_sql(
            &format!(
                "CREATE TABLE \"{db}\".\"{schema}\".\"LIMITS\" (\"ID\" VARCHAR(16777216) NOT NULL, \"RECEIVED_AT\" TIMESTAMP_TZ(9), \"CODE\" VARCHAR(3), \"QTY\" NUMBER(4,0), \"UUID_TS\" TIMESTAMP_TZ(9))"
            ),
            None,
            None,
        )
        .unwrap();
    let manager = world.manager(Settings::default());
    let columns = json!({"ID": "string", "RECEIVED_AT": "datetime", "CODE": "string", "QTY": "int", "UUID_TS": "datetime"});
    let at = "2024-05-12T04:36:50.199Z";
    let file = world.file(&[
        (
            1,
            "LIMITS",
            columns.clone(),
            json!({"ID": "a", "RECEIVED_AT": at, "CODE": "ok", "QTY": 12}),
        ),
        (
            2,
            "LIMITS",
            columns.clone(),
            json!({"ID": "b", "RECEIVED_AT": at, "CODE": "toolong", "QTY": 5}),
        ),
        (
            3,
            "LIMITS",
            columns.clone(),
            json!({"ID": "c", "RECEIVED_AT": at, "CODE": "x", "QTY": 123_456}),
        ),
        (
            4,
            "LIMITS",
            columns.clone(),
            json!({"RECEIVED_AT": at, "CODE": "y", "QTY": 1}),
        ),
    ]);
    let (upload, poll, stats) = run(&manager, &file).await;
    assert_accounted(&file, &upload, stats.as_ref());
    assert_eq!(upload.aborted_job_ids, [4], "{upload:?}");
    assert!(upload.abort_reason.contains("NOT NULL"), "{upload:?}");
    assert!(!poll.has_failed, "{poll:?}");
    assert_eq!(sorted(stats.unwrap().metadata.succeeded_keys), [1, 2, 3]);
    let rows = world.rows("LIMITS");
    let by_id = |id: &str| rows.iter().find(|r| r["ID"] == id).cloned().unwrap();
    assert_eq!(by_id("a")["CODE"], "ok");
    assert_eq!(by_id("b")["CODE"], Value::Null);
    assert_eq!(by_id("c")["QTY"], Value::Null);
    let discards = world.rows("RUDDER_DISCARDS");
    let reasons: Vec<&str> = discards
        .iter()
        .filter_map(|r| r["REASON"].as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("VARCHAR(3)"))
            && reasons.iter().any(|r| r.contains("NUMBER(4,0)")),
        "{discards:?}"
    );
}

/// Counters that lag the committed token (REST, trap 5): the rows the token covers are not called committed
/// until the counters clear them — here until the lag ends — and a poll from a fresh manager, which knows
/// the fence counters only from the import entry, holds them too.
#[tokio::test]
async fn rows_wait_while_the_counters_lag_the_committed_token() {
    let mut world = World::start_on(Which::Rest).await;
    let manager = world.manager(Settings::default());
    world.control.set_counters_lag(true);
    let file = world.file(&tracks(&[1, 2]));
    let upload = manager.upload(&file, &[]).await;
    assert_eq!(upload.importing_job_ids, [1, 2], "{upload:?}");
    let import_id = upload.importing_parameters.expect("importing").import_id;
    assert_eq!(
        ids(&world.rows("TRACKS")),
        ["t1", "t2"],
        "committed at once"
    );
    for poller in [&manager, &world.manager(Settings::default())] {
        let poll = poller.poll(&import_id).await;
        assert!(
            !poll.complete && poll.in_progress,
            "the counters do not clear the rows yet: {poll:?}"
        );
    }
    world.control.set_counters_lag(false);
    let fresh = world.manager(Settings::default());
    let poll = fresh.poll(&import_id).await;
    assert!(poll.complete && !poll.has_failed, "{poll:?}");
}
