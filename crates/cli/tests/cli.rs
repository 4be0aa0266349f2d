//! The built `snowpipe-streaming` binary against an in-process emulator: each command in its own process,
//! `run` and `demo`, where option values come from, exit statuses, and secrets kept out of the output.

mod support;

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::Path,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use snowpipe_emulator::{Endpoint, demo};
use support::{World, finish, ids, page, run, spawn, track};

/// Long enough that nothing commits unless the test flushes.
const NEVER: Duration = Duration::from_secs(3600);

#[test]
fn upload_poll_and_stats_work_in_three_fresh_processes() {
    let mut world = World::start(NEVER);
    let (job, table, mut columns, mut data) = track(3);
    // A value the column cannot hold: NULL in TRACKS and a row in the discards table.
    columns["N"] = json!("string");
    data["N"] = json!("three");
    let file = world.events(&[track(1), track(2), (job, table, columns, data), page(4)]);

    // The rows of TRACKS go out only once its discard row has committed: commit that one (and whatever
    // else is buffered by then) as soon as it is there; the rows of TRACKS then stay uncommitted.
    let child = spawn(world.command().args(["upload", "--file"]).arg(&file));
    world.wait_until("the discard row is buffered", |control| {
        control
            .channels()
            .iter()
            .any(|c| c.table == "RUDDER_DISCARDS" && c.buffered_rows > 0)
    });
    world.control.flush();
    let upload = finish(child).json();
    assert_eq!(ids(&upload["importingJobIds"]), [1, 2, 3, 4], "{upload}");
    assert_eq!(upload["importingCount"], 4);
    assert_eq!(upload["destinationId"], "dest-cli");
    assert_eq!(ids(&upload["failedJobIds"]), Vec::<i64>::new());
    assert_eq!(ids(&upload["abortedJobIds"]), Vec::<i64>::new());
    for key in ["failedCount", "failedReason", "abortCount", "abortReason"] {
        assert!(upload.get(key).is_some(), "{key} in {upload}");
    }
    let parameters = &upload["importingParameters"];
    let entries = parameters["importId"].as_array().expect("importId array");
    let tables: Vec<&str> = entries.iter().filter_map(|e| e["table"].as_str()).collect();
    // No entry for the discard row: it committed before the rows of TRACKS went out.
    assert_eq!(tables, ["TRACKS", "PAGES"], "{upload}");

    // Poll in a process of its own, with the whole importing parameters object from a file: nothing has
    // committed yet.
    let import_file = world.file(&parameters.to_string());
    let first = run(world
        .command()
        .args(["poll", "--import-id"])
        .arg(format!("@{}", import_file.display())))
    .json();
    assert_eq!(first["complete"], false, "{first}");
    assert_eq!(first["inProgress"], true, "{first}");

    world.control.flush();
    let import_id = parameters["importId"].to_string();
    let done = run(world.command().args(["poll", "--import-id", &import_id])).json();
    assert_eq!(done["complete"], true, "{done}");
    assert_eq!(done["hasFailed"], false, "{done}");
    assert_eq!(done["statusCode"], 200, "{done}");
    for key in ["inProgress", "hasWarning", "failedJobParameters", "error"] {
        assert!(done.get(key).is_some(), "{key} in {done}");
    }

    let failed_parameters = match &done["failedJobParameters"] {
        Value::Null => import_id,
        other => other.to_string(),
    };
    let stats = run(world
        .bare()
        .args([
            "stats",
            "--failed-job-parameters",
            &failed_parameters,
            "--jobs",
        ])
        .arg(&file))
    .json();
    assert_eq!(stats["statusCode"], 200, "{stats}");
    assert_eq!(ids(&stats["metadata"]["succeededKeys"]), [1, 2, 3, 4]);
    assert_eq!(ids(&stats["metadata"]["failedKeys"]), Vec::<i64>::new());
    assert_eq!(stats["metadata"]["failedReasons"], json!({}));

    assert_eq!(world.rows("TRACKS").len(), 3);
    assert_eq!(world.rows("PAGES").len(), 1);
    let discards = world.rows("RUDDER_DISCARDS");
    assert_eq!(discards.len(), 1, "{discards:?}");
    assert_eq!(discards[0]["COLUMN_VALUE"], "three");
}

#[test]
fn rows_lost_in_a_restart_between_upload_and_poll_fail_exactly_those_jobs() {
    let mut world = World::start(NEVER);
    let file = world.events(&[track(1), track(2), track(3)]);
    let upload = run(world.command().args(["upload", "--file"]).arg(&file)).json();
    assert_eq!(ids(&upload["importingJobIds"]), [1, 2, 3]);

    world.control.restart();
    let import_id = upload["importingParameters"]["importId"].to_string();
    let poll = run(world.command().args(["poll", "--import-id", &import_id])).json();
    assert_eq!(poll["complete"], true, "{poll}");
    assert_eq!(poll["hasFailed"], true, "{poll}");
    let failed = &poll["failedJobParameters"];
    assert_eq!(failed[0]["failed"], true, "{poll}");
    assert_eq!(failed[0]["scheme"], "v2", "{poll}");
    assert_eq!(failed[0]["failedJobs"], json!([[1, 3]]), "{poll}");

    let stats = run(world
        .bare()
        .args([
            "stats",
            "--failed-job-parameters",
            &failed.to_string(),
            "--jobs",
        ])
        .arg(&file))
    .json();
    assert_eq!(ids(&stats["metadata"]["failedKeys"]), [1, 2, 3], "{stats}");
    assert_eq!(ids(&stats["metadata"]["succeededKeys"]), Vec::<i64>::new());
    assert!(
        stats["metadata"]["failedReasons"]["2"].is_string(),
        "{stats}"
    );
    assert!(world.rows("TRACKS").is_empty());
}

/// The job ids of every line of an event file.
fn file_jobs(events: &[(i64, &str, Value, Value)]) -> Vec<i64> {
    let mut ids: Vec<i64> = events.iter().map(|e| e.0).collect();
    ids.sort_unstable();
    ids
}

/// Asserts that every job of the file is in exactly one of run's three lists.
fn assert_accounted(line: &Value, jobs: &[i64]) {
    let mut seen: Vec<i64> = ["succeededJobIds", "failedJobIds", "abortedJobIds"]
        .iter()
        .flat_map(|key| ids(&line[*key]))
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, jobs, "every job exactly once: {line}");
}

#[test]
fn run_handles_two_files_in_order_and_accounts_for_every_job() {
    let mut world = World::start(Duration::ZERO);
    let first_events = vec![track(1), track(2), page(3)];
    let first = world.events(&first_events);
    let (job, table, columns, mut data) = track(12);
    data["PAD"] = json!("x".repeat(2000));
    let mut columns = columns;
    columns["PAD"] = json!("string");
    let second_events = vec![track(10), track(11), (job, table, columns, data), page(14)];
    let second = world.events(&second_events);

    let ran = run(world
        .command()
        .args([
            "--max-insert-request-bytes",
            "1000",
            "run",
            "--poll-interval",
            "10ms",
        ])
        .arg("--file")
        .arg(&first)
        .arg("--file")
        .arg(&second));
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(
        !ran.stderr.contains("polling"),
        "no progress line when stderr is not a terminal: {ran:?}"
    );
    let lines = ran.lines();
    assert_eq!(lines.len(), 2, "{ran:?}");

    let one = &lines[0];
    assert_eq!(one["file"], first.display().to_string());
    for key in [
        "upload",
        "polls",
        "poll",
        "stats",
        "failedReasons",
        "abortReason",
        "durationMs",
    ] {
        assert!(one.get(key).is_some(), "{key} in {one}");
    }
    assert_eq!(ids(&one["succeededJobIds"]), [1, 2, 3], "{one}");
    assert_accounted(one, &file_jobs(&first_events));
    assert_eq!(one["poll"]["complete"], true);
    assert!(one["polls"].as_u64().is_some_and(|n| n >= 1), "{one}");
    assert!(one["stats"]["metadata"].is_object(), "{one}");
    assert!(one["durationMs"].is_u64(), "{one}");

    let two = &lines[1];
    assert_eq!(two["file"], second.display().to_string());
    assert_accounted(two, &file_jobs(&second_events));
    assert_eq!(
        ids(&two["abortedJobIds"]),
        [12],
        "the oversized event: {two}"
    );
    assert!(
        two["abortReason"]
            .as_str()
            .is_some_and(|r| r.contains("12")),
        "{two}"
    );
    assert!(ids(&two["succeededJobIds"]).contains(&14), "{two}");
    for failed in ids(&two["failedJobIds"]) {
        assert!(
            two["failedReasons"][failed.to_string()].is_string(),
            "a reason for {failed}: {two}"
        );
    }
    let landed: Vec<i64> = world
        .rows("TRACKS")
        .iter()
        .filter_map(|r| r["N"].as_i64())
        .collect();
    for job in ids(&two["succeededJobIds"])
        .into_iter()
        .filter(|&j| j != 14)
    {
        assert!(landed.contains(&job), "job {job} landed: {landed:?}");
    }
}

#[test]
fn a_bad_line_aborts_its_batch_and_is_named() {
    let mut world = World::start(Duration::ZERO);
    let good = json!({"message": {"metadata": {"table": "TRACKS", "columns": {"ID": "string"}},
                                  "data": {"ID": "a"}}, "metadata": {"job_id": 1}});
    let file = world.file(&format!(
        "{good}\n{{\"message\": \"not an event\", \"metadata\": {{\"job_id\": 2}}}}\n"
    ));
    let upload = run(world.command().args(["upload", "--file"]).arg(&file)).json();
    assert_eq!(ids(&upload["abortedJobIds"]), [1, 2], "{upload}");
    assert!(
        upload["abortReason"]
            .as_str()
            .is_some_and(|r| r.contains("line 2")),
        "{upload}"
    );
    assert_eq!(upload["importingParameters"], Value::Null);

    let line = run(world
        .command()
        .args(["run", "--poll-interval", "10ms", "--file"])
        .arg(&file))
    .json();
    assert_eq!(ids(&line["abortedJobIds"]), [1, 2], "{line}");
    assert_eq!(line["polls"], 0, "{line}");
    assert_eq!(line["stats"], Value::Null, "{line}");
    assert_eq!(line["poll"]["complete"], true, "{line}");
}

#[test]
fn poll_answers_400_for_an_import_id_that_does_not_decode() {
    let world = World::start(Duration::ZERO);
    let poll = run(world.command().args(["poll", "--import-id", "not json"])).json();
    assert_eq!(poll["statusCode"], 400, "{poll}");
    assert_eq!(poll["complete"], true, "{poll}");
    assert_eq!(poll["hasFailed"], true, "{poll}");
    assert!(
        poll["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{poll}"
    );
}

#[test]
fn demo_exits_0_and_prints_its_summary() {
    let world = World::start(Duration::ZERO);
    let ran = run(world.bare().arg("demo"));
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(
        !world.state_dir().exists(),
        "the demo keeps its state in a temporary folder of its own"
    );
    for needle in [
        "rows landed in DEMO_DB.DEMO",
        "ORDER_COMPLETED",
        "PAGES",
        "TRACKS",
        "USERS",
        "IDENTIFIES",
        "RUDDER_DISCARDS",
        "discards: 3 values",
        "\"thirty-one\"",
        "jobs: 79 succeeded, 0 failed, 0 aborted; 79 rows landed",
    ] {
        assert!(
            ran.stdout.contains(needle),
            "{needle:?} in:\n{}",
            ran.stdout
        );
    }
}

/// An event whose row is about 600 bytes: over a 100-byte insert request limit, far under the default.
fn big_event(job: i64) -> (i64, &'static str, Value, Value) {
    let (job, table, mut columns, mut data) = track(job);
    columns["PAD"] = json!("string");
    data["PAD"] = json!("p".repeat(500));
    (job, table, columns, data)
}

#[test]
fn flags_win_over_env_over_the_config_file_over_defaults() {
    let mut world = World::start(Duration::ZERO);
    let config = world.dir.path().join("small.toml");
    std::fs::write(&config, "max_insert_request_bytes = 100\n").expect("write config");
    let outcome = |world: &mut World, job: i64, config: bool, env: bool, flag: bool| {
        let file = world.events(&[big_event(job)]);
        let mut command = world.command();
        if config {
            command
                .arg("--config")
                .arg(world.dir.path().join("small.toml"));
        }
        if env {
            command.env("SNOWPIPE_STREAMING_MAX_INSERT_REQUEST_BYTES", "100000");
        }
        if flag {
            command.args(["--max-insert-request-bytes", "100"]);
        }
        let upload = run(command.args(["upload", "--file"]).arg(&file)).json();
        if ids(&upload["abortedJobIds"]) == [job] {
            "aborted"
        } else if ids(&upload["importingJobIds"]) == [job] {
            "importing"
        } else {
            panic!("unexpected outcome: {upload}")
        }
    };
    assert_eq!(
        outcome(&mut world, 1, false, false, false),
        "importing",
        "default: 24 MiB"
    );
    assert_eq!(
        outcome(&mut world, 2, true, false, false),
        "aborted",
        "the file's 100 bytes"
    );
    assert_eq!(
        outcome(&mut world, 3, true, true, false),
        "importing",
        "env beats file"
    );
    assert_eq!(
        outcome(&mut world, 4, true, true, true),
        "aborted",
        "flag beats env"
    );
    // The config file can also come from the environment.
    let file = world.events(&[big_event(5)]);
    let upload = run(world
        .command()
        .env("SNOWPIPE_STREAMING_CONFIG", &config)
        .args(["upload", "--file"])
        .arg(&file))
    .json();
    assert_eq!(ids(&upload["abortedJobIds"]), [5], "{upload}");
}

#[test]
fn usage_and_configuration_errors_exit_2_naming_the_option_or_file() {
    let mut world = World::start(Duration::ZERO);
    let events = world.events(&[track(1)]);
    let upload =
        |command: &mut std::process::Command| run(command.args(["upload", "--file"]).arg(&events));

    // The destination file: unreadable, not JSON, a config that does not decode, or not given at all.
    let missing = world.dir.path().join("no-such-destination.json");
    upload(world.bare().arg("--destination").arg(&missing))
        .assert_usage_error(&["no-such-destination.json", "--destination"]);
    let not_json = world.file("{\"id\": nope}");
    upload(world.bare().arg("--destination").arg(&not_json))
        .assert_usage_error(&[&not_json.display().to_string(), "invalid JSON"]);
    let undecodable =
        world.file(r#"{"id": "d", "config": {"account": 5, "enableIceberg": "yes"}}"#);
    upload(world.bare().arg("--destination").arg(&undecodable))
        .assert_usage_error(&[&undecodable.display().to_string(), "config"]);
    upload(&mut world.bare()).assert_usage_error(&["--destination"]);

    // Durations, from a flag, the environment or the file.
    upload(world.command().args(["--stuck-threshold", "5x"]))
        .assert_usage_error(&["--stuck-threshold", "5x"]);
    upload(
        world
            .command()
            .env("SNOWPIPE_STREAMING_REQUEST_TIMEOUT", "soon"),
    )
    .assert_usage_error(&["--request-timeout", "soon"]);
    let bad_duration = world.dir.path().join("bad-duration.toml");
    std::fs::write(&bad_duration, "retry-wait-max = \"a while\"\n").expect("write");
    upload(world.command().arg("--config").arg(&bad_duration)).assert_usage_error(&[
        "bad-duration.toml",
        "retry-wait-max",
        "a while",
    ]);

    // The config file: an unknown key, or no file at all.
    let unknown = world.dir.path().join("unknown.toml");
    std::fs::write(&unknown, "service-url = \"http://x\"\ncolour = \"blue\"\n").expect("write");
    upload(world.command().arg("--config").arg(&unknown))
        .assert_usage_error(&["unknown.toml", "colour"]);
    upload(world.command().args(["--config", "/no/such/config.toml"]))
        .assert_usage_error(&["/no/such/config.toml"]);

    // Inputs named by options, and the command line itself.
    run(world
        .command()
        .args(["upload", "--file", "no-such-events.jsonl"]))
    .assert_usage_error(&["no-such-events.jsonl", "--file"]);
    run(world.bare().args([
        "stats",
        "--failed-job-parameters",
        "[]",
        "--jobs",
        "no-such-jobs.jsonl",
    ]))
    .assert_usage_error(&["no-such-jobs.jsonl", "--jobs"]);
    run(world
        .command()
        .args(["poll", "--import-id", "@no-such-import.json"]))
    .assert_usage_error(&["no-such-import.json", "--import-id"]);
    run(world.bare().args(["upload", "--colour", "blue"])).assert_usage_error(&["--colour"]);
    run(&mut world.bare()).assert_usage_error(&["Usage"]);

    assert!(
        world.control.calls().is_empty(),
        "no service or SQL call was made: {:?}",
        world.control.calls()
    );
}

/// Pieces of the private key that must never be printed: every body line of the PEM.
fn key_pieces() -> Vec<String> {
    demo::ENCRYPTED_PRIVATE_KEY_PEM
        .lines()
        .chain(demo::PRIVATE_KEY_PEM.lines())
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .map(str::to_owned)
        .collect()
}

fn assert_no_secrets(text: &str) {
    assert!(
        !text.contains(demo::PRIVATE_KEY_PASSPHRASE),
        "the passphrase leaked"
    );
    for piece in key_pieces() {
        assert!(
            !text.contains(&piece),
            "a piece of the private key leaked: {piece}"
        );
    }
}

#[test]
fn secrets_never_reach_stdout_or_stderr_even_at_trace_level() {
    let mut world = World::start(Duration::ZERO);
    let mut config = demo::destination_config(support::NAMESPACE);
    config["privateKey"] = json!(demo::ENCRYPTED_PRIVATE_KEY_PEM);
    config["privateKeyPassphrase"] = json!(demo::PRIVATE_KEY_PASSPHRASE);
    let destination =
        world.file(&json!({"id": "d", "workspaceId": "w", "config": config}).to_string());
    let file = world.events(&[track(1), page(2)]);

    for format in ["text", "json"] {
        let ran = run(world
            .command()
            .arg("--destination")
            .arg(&destination)
            .args([
                "-vvv",
                "--log-format",
                format,
                "run",
                "--poll-interval",
                "10ms",
                "--file",
            ])
            .arg(&file));
        assert_eq!(ran.code, 0, "{ran:?}");
        assert!(!ran.stderr.is_empty(), "trace logs were written");
        if format == "json" {
            for log in ran.stderr.lines() {
                assert!(
                    serde_json::from_str::<Value>(log).is_ok_and(|v| v.is_object()),
                    "a JSON log line: {log}"
                );
            }
        }
        let line = ran.json();
        assert_eq!(ids(&line["succeededJobIds"]), [1, 2], "{line}");
        assert_no_secrets(&ran.stdout);
        assert_no_secrets(&ran.stderr);
    }

    // A destination whose config does not decode, with the key where a boolean belongs.
    let mut broken = config.clone();
    broken["enableIceberg"] = json!(demo::ENCRYPTED_PRIVATE_KEY_PEM);
    let broken = world.file(&json!({"id": "d", "config": broken}).to_string());
    let ran = run(world
        .command()
        .arg("--destination")
        .arg(&broken)
        .args(["-vvv", "upload", "--file"])
        .arg(&file));
    ran.assert_usage_error(&["config"]);
    assert_no_secrets(&ran.stderr);

    // A wrong passphrase: the jobs fail with the reason, and still nothing secret is said.
    let mut wrong = config;
    wrong["privateKeyPassphrase"] = json!("not-the-passphrase");
    let wrong = world.file(&json!({"id": "d", "config": wrong}).to_string());
    let ran = run(world
        .command()
        .arg("--destination")
        .arg(&wrong)
        .args(["-vvv", "upload", "--file"])
        .arg(&file));
    let upload = ran.json();
    assert_eq!(upload["importingCount"], 0, "{upload}");
    assert_no_secrets(&ran.stdout);
    assert_no_secrets(&ran.stderr);
    assert!(!ran.stdout.contains("not-the-passphrase"));
    assert!(!ran.stderr.contains("not-the-passphrase"));
}

#[test]
fn metrics_are_served_on_the_metrics_address_while_the_command_runs() {
    let mut world = World::start(NEVER);
    let file = world.events(&[track(1), track(2)]);
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("addr").port()
    };
    let addr = format!("127.0.0.1:{port}");
    let mut child = world
        .command()
        .args([
            "--metrics-addr",
            &addr,
            "run",
            "--poll-interval",
            "10ms",
            "--file",
        ])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Nothing commits until the flush below, so the run polls until then; a bulk status call means upload
    // is done (and the exporter listens: it is installed before anything else). Waits on the emulator's
    // call log; the timeout only keeps a broken run from hanging the test.
    let mut seen = 0;
    while !world
        .control
        .calls()
        .iter()
        .any(|c| c.endpoint == Endpoint::BulkStatus)
    {
        if let Some(status) = child.try_wait().expect("child status") {
            panic!("the run ended before polling: {status}");
        }
        seen += 1;
        let waited = world.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), world.control.wait_for_calls(seen)).await
        });
        assert!(waited.is_ok_and(|ok| ok), "the run never polled");
    }
    let mut stream = TcpStream::connect(&addr).expect("metrics listener");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    world.control.flush();
    let output = child.wait_with_output().expect("the run ends");
    assert!(output.status.success(), "{output:?}");

    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("snowpipe_streaming_jobs_total{")
            && answer.contains("status=\"importing\""),
        "{answer}"
    );
    assert!(answer.contains("destinationId=\"dest-cli\""), "{answer}");
}

/// The files of a folder, by name.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Polls the import in fresh processes until it is complete; panics after a minute.
fn poll_until_complete(world: &World, import_id: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = run(world
            .command()
            .args(["poll", "--import-id", &import_id.to_string()]))
        .json();
        if answer["complete"] == true {
            return answer;
        }
        assert!(Instant::now() < deadline, "still in progress: {answer}");
    }
}

/// Stats, in a process of its own, for an import poll judged complete.
fn stats_of(world: &World, import_id: &Value, poll: &Value, jobs: &Path) -> Value {
    let parameters = match &poll["failedJobParameters"] {
        Value::Null => import_id.to_string(),
        other => other.to_string(),
    };
    run(world
        .bare()
        .args(["stats", "--failed-job-parameters", &parameters, "--jobs"])
        .arg(jobs))
    .json()
}

#[test]
fn the_state_dir_is_created_when_needed_and_keeps_channel_ids_but_no_secret() {
    let mut world = World::start(NEVER);
    let file = world.events(&[track(1), page(2)]);
    let state_dir = world.state_dir();

    // Stats opens no channel: no state directory.
    let stats = run(world
        .bare()
        .args(["stats", "--failed-job-parameters", "[]", "--jobs"])
        .arg(&file))
    .json();
    assert_eq!(stats["statusCode"], 200, "{stats}");
    assert!(!state_dir.exists(), "stats made {}", state_dir.display());

    let upload = run(world.command().args(["upload", "--file"]).arg(&file)).json();
    assert_eq!(ids(&upload["importingJobIds"]), [1, 2], "{upload}");
    assert!(state_dir.is_dir(), "{} is made", state_dir.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&state_dir)
            .expect("state dir")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }
    assert_eq!(
        files_in(&state_dir),
        ["dest-cli+1.json", "dest-cli+1.lock"],
        "one state file and one lock per destination and instance"
    );

    let text = std::fs::read_to_string(state_dir.join("dest-cli+1.json")).expect("state file");
    let state: Value = serde_json::from_str(&text).expect("the state file is JSON");
    for entry in upload["importingParameters"]["importId"]
        .as_array()
        .expect("entries")
    {
        let table = entry["table"].as_str().expect("table");
        assert_eq!(
            state["tables"][table]["channelId"], entry["channelId"],
            "the channel id of {table} is kept: {text}"
        );
        assert!(
            state["tables"][table]["opening"]
                .as_str()
                .is_some_and(|t| t.starts_with("v2.")),
            "{text}"
        );
    }
    assert_no_secrets(&text);

    // A state directory given by the option is used instead, with its parents made.
    let elsewhere = world.dir.path().join("elsewhere").join("state");
    let file = world.events(&[track(3)]);
    let upload = run(world
        .command()
        .arg("--state-dir")
        .arg(&elsewhere)
        .args(["upload", "--file"])
        .arg(&file))
    .json();
    assert_eq!(ids(&upload["importingJobIds"]), [3], "{upload}");
    assert!(elsewhere.join("dest-cli+1.json").is_file());
}

#[test]
fn back_to_back_uploads_of_one_table_wait_for_each_other_instead_of_discarding() {
    // Rows commit 300 ms after they are inserted: the second upload starts while the first's rows are
    // still uncommitted on the channel it must reopen.
    let mut world = World::start(Duration::from_millis(300));
    let first = world.events(&[track(1), track(2), track(3)]);
    let second = world.events(&[track(11), track(12), track(13)]);

    let one = run(world.command().args(["upload", "--file"]).arg(&first)).json();
    assert_eq!(ids(&one["importingJobIds"]), [1, 2, 3], "{one}");
    let two = run(world.command().args(["upload", "--file"]).arg(&second)).json();
    assert_eq!(ids(&two["importingJobIds"]), [11, 12, 13], "{two}");

    // Wait (on the emulator's state, not the clock) until the second upload's rows are committed.
    let entry = &two["importingParameters"]["importId"][0];
    let (channel, offset) = (
        entry["channelId"].as_str().expect("channel id"),
        entry["offset"].as_str().expect("offset"),
    );
    let committed = world.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(60),
            world.control.wait_for_commit(channel, offset),
        )
        .await
    });
    assert!(
        committed.is_ok_and(|ok| ok),
        "the second upload's rows commit"
    );

    let import_one = &one["importingParameters"]["importId"];
    let poll_one = poll_until_complete(&world, import_one);
    assert_eq!(poll_one["hasFailed"], false, "{poll_one}");
    let stats_one = stats_of(&world, import_one, &poll_one, &first);
    assert_eq!(
        ids(&stats_one["metadata"]["succeededKeys"]),
        [1, 2, 3],
        "the first upload's rows were kept: {stats_one}"
    );
    assert_eq!(ids(&stats_one["metadata"]["failedKeys"]), Vec::<i64>::new());

    let import_two = &two["importingParameters"]["importId"];
    let poll_two = poll_until_complete(&world, import_two);
    let stats_two = stats_of(&world, import_two, &poll_two, &second);
    assert_eq!(
        ids(&stats_two["metadata"]["succeededKeys"]),
        [11, 12, 13],
        "{stats_two}"
    );

    let mut landed: Vec<i64> = world
        .rows("TRACKS")
        .iter()
        .filter_map(|r| r["N"].as_i64())
        .collect();
    landed.sort_unstable();
    assert_eq!(landed, [1, 2, 3, 11, 12, 13], "all six rows, once each");
}

#[test]
fn a_poll_that_cannot_get_the_lock_answers_in_progress_without_calling_the_service() {
    let mut world = World::start(NEVER);
    let file = world.events(&[track(1), track(2)]);
    let upload = run(world.command().args(["upload", "--file"]).arg(&file)).json();
    let import_id = upload["importingParameters"]["importId"].to_string();
    world.control.flush();

    let lock = world.hold_lock();
    world.control.clear_calls();
    let poll = |timeout: &str| {
        run(world.command().args([
            "-v",
            "--lock-timeout",
            timeout,
            "poll",
            "--import-id",
            &import_id,
        ]))
    };
    let ran = poll("100ms");
    let answer = ran.json();
    assert_eq!(answer["complete"], false, "{answer}");
    assert_eq!(answer["inProgress"], true, "{answer}");
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["hasFailed"], false, "{answer}");
    assert_eq!(answer["failedJobParameters"], Value::Null, "{answer}");
    assert!(
        ran.stderr.contains("holds the lock"),
        "says why at info: {ran:?}"
    );

    // Poll waits for the lock at most 5 s, whatever --lock-timeout says.
    let started = Instant::now();
    let answer = poll("1h").json();
    assert_eq!(answer["inProgress"], true, "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited {:?}",
        started.elapsed()
    );
    assert!(
        world.control.calls().is_empty(),
        "no service call while the lock is held: {:?}",
        world.control.calls()
    );

    drop(lock);
    let answer = poll("100ms").json();
    assert_eq!(answer["complete"], true, "{answer}");
    assert_eq!(answer["hasFailed"], false, "{answer}");
}

#[test]
fn upload_and_run_give_up_with_status_1_when_another_process_holds_the_lock() {
    let mut world = World::start(Duration::ZERO);
    let file = world.events(&[track(1)]);
    let state_dir = world.state_dir().display().to_string();

    let lock = world.hold_lock();
    for command in [
        &["upload", "--file"][..],
        &["run", "--poll-interval", "10ms", "--file"][..],
    ] {
        let started = Instant::now();
        let ran = run(world
            .command()
            .args(["--lock-timeout", "200ms"])
            .args(command)
            .arg(&file));
        assert_eq!(ran.code, 1, "{ran:?}");
        assert!(ran.stdout.is_empty(), "{ran:?}");
        for needle in [
            "another process for destination dest-cli and instance 1 is running",
            state_dir.as_str(),
            "--state-dir",
            "--lock-timeout",
        ] {
            assert!(ran.stderr.contains(needle), "{needle:?} in {ran:?}");
        }
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "waited the lock timeout"
        );
    }
    assert!(
        world.control.calls().is_empty(),
        "no service call without the lock: {:?}",
        world.control.calls()
    );

    drop(lock);
    let upload = run(world
        .command()
        .args(["--lock-timeout", "200ms", "upload", "--file"])
        .arg(&file))
    .json();
    assert_eq!(ids(&upload["importingJobIds"]), [1], "{upload}");
}

#[test]
fn a_state_dir_that_is_not_a_folder_is_a_usage_error_naming_the_option() {
    let mut world = World::start(Duration::ZERO);
    let file = world.events(&[track(1)]);
    let not_a_folder = world.file("I am a file");
    let shown = not_a_folder.display().to_string();

    run(world
        .command()
        .arg("--state-dir")
        .arg(&not_a_folder)
        .args(["upload", "--file"])
        .arg(&file))
    .assert_usage_error(&["--state-dir", &shown, "not a folder"]);
    run(world
        .command()
        .env("SNOWPIPE_STREAMING_STATE_DIR", not_a_folder.join("below"))
        .args(["poll", "--import-id", "[]"]))
    .assert_usage_error(&["--state-dir", &shown]);
    let config = world.dir.path().join("state.toml");
    std::fs::write(&config, "state-dir = \"input-1.jsonl\"\n").expect("write config");
    run(world
        .command()
        .arg("--config")
        .arg(&config)
        .args(["run", "--file"])
        .arg(&file))
    .assert_usage_error(&["--state-dir", "input-1.jsonl", "not a folder"]);

    assert!(
        world.control.calls().is_empty(),
        "no service or SQL call was made: {:?}",
        world.control.calls()
    );
}

#[test]
fn the_default_state_dir_is_under_the_cache_directory_of_home_without_xdg_cache_home() {
    let mut world = World::start(Duration::ZERO);
    let file = world.events(&[track(1)]);
    let home = world.dir.path().join("home");
    let upload = run(world
        .command()
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", &home)
        .args(["upload", "--file"])
        .arg(&file))
    .json();
    assert_eq!(ids(&upload["importingJobIds"]), [1], "{upload}");
    let expected = if cfg!(target_os = "macos") {
        home.join("Library/Caches/snowpipe-streaming")
    } else {
        home.join(".cache/snowpipe-streaming")
    };
    assert!(
        expected.join("dest-cli+1.json").is_file(),
        "state in {}",
        expected.display()
    );
    assert!(!world.state_dir().exists());

    // A relative XDG_CACHE_HOME is ignored, as the XDG rules say.
    let file = world.events(&[track(2)]);
    let upload = run(world
        .command()
        .env("XDG_CACHE_HOME", "relative")
        .env("HOME", &home)
        .args(["upload", "--file"])
        .arg(&file))
    .json();
    assert_eq!(ids(&upload["importingJobIds"]), [2], "{upload}");
    assert!(!world.dir.path().join("relative").exists());
}
