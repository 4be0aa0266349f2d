//! The built command against an in-process emulator, on the edges where it used to look like success when
//! it was not (issue 18): destinations, stdout, event files, interruptions, exit codes, logs, metrics,
//! stalls, and the set-up helpers (`check`, completions, schemas).

mod support;

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use snowpipe_emulator::demo;
use support::{World, ids, run, track};

/// Long enough that nothing commits unless the test flushes.
const NEVER: Duration = Duration::from_secs(3600);

/// A destination file with the demo account's config changed by `edit`.
fn destination_with(world: &mut World, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut config = demo::destination_config(support::NAMESPACE);
    edit(&mut config);
    world.file(&json!({"id": "dest-cli", "workspaceId": "ws-cli", "config": config}).to_string())
}

#[test]
fn a_destination_without_a_required_field_exits_2_naming_it_before_any_call() {
    let mut world = World::start(Duration::ZERO);
    let events = world.events(&[track(1)]);
    for (field, value, state) in [
        ("account", json!(""), "empty"),
        ("user", Value::Null, "missing"),
        ("database", json!("  "), "empty"),
        ("privateKey", Value::Null, "missing"),
    ] {
        let destination = destination_with(&mut world, |config| {
            if value.is_null() {
                config.as_object_mut().expect("object").remove(field);
            } else {
                config[field] = value.clone();
            }
        });
        for command in [&["upload", "--file"][..], &["run", "--file"][..]] {
            run(world
                .command()
                .arg("--destination")
                .arg(&destination)
                .args(command)
                .arg(&events))
            .assert_usage_error(&[&format!("`config.{field}` is {state}"), "--destination"]);
        }
    }
    // A field of the wrong type is named with what it should be, never with its value.
    let destination = destination_with(&mut world, |config| {
        config["enableIceberg"] = json!("yes-SECRET");
    });
    let ran = run(world
        .command()
        .arg("--destination")
        .arg(&destination)
        .args(["upload", "--file"])
        .arg(&events));
    ran.assert_usage_error(&["`config.enableIceberg`: expected a boolean"]);
    assert!(
        !ran.stderr.contains("SECRET") && !ran.stderr.contains("line 0"),
        "{ran:?}"
    );
    assert!(
        world.control.calls().is_empty(),
        "no call was made: {:?}",
        world.control.calls()
    );
}

#[test]
fn the_private_key_can_come_from_a_file_by_flag_environment_or_config_key() {
    let mut world = World::start(Duration::ZERO);
    let key = world.dir.path().join("demo.p8");
    std::fs::write(&key, demo::PRIVATE_KEY_PEM).expect("write key");
    let keyless = destination_with(&mut world, |config| {
        config.as_object_mut().expect("object").remove("privateKey");
    });
    let wrong_key = destination_with(&mut world, |config| {
        config["privateKey"] =
            json!("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
    });
    let config_file = world.dir.path().join("key.toml");
    std::fs::write(&config_file, "private-key-file = \"demo.p8\"\n").expect("write config");

    let mut job = 0;
    let mut upload = |world: &mut World, destination: &PathBuf, how: &str| {
        job += 1;
        let events = world.events(&[track(job)]);
        let mut command = world.command();
        command.arg("--destination").arg(destination);
        match how {
            "flag" => {
                command.arg("--private-key-file").arg(&key);
            }
            "env" => {
                command.env("SNOWPIPE_STREAMING_PRIVATE_KEY_FILE", &key);
            }
            "config" => {
                command.arg("--config").arg(&config_file);
            }
            _ => {}
        }
        let upload = run(command.args(["upload", "--file"]).arg(&events)).json();
        (job, upload)
    };
    for how in ["flag", "env", "config"] {
        let (job, answer) = upload(&mut world, &keyless, how);
        assert_eq!(ids(&answer["importingJobIds"]), [job], "{how}: {answer}");
        // The file wins over the destination's own (wrong) key.
        let (job, answer) = upload(&mut world, &wrong_key, how);
        assert_eq!(ids(&answer["importingJobIds"]), [job], "{how}: {answer}");
    }
    let events = world.events(&[track(99)]);
    run(world
        .command()
        .arg("--destination")
        .arg(&keyless)
        .args(["--private-key-file", "no-such-key.p8", "upload", "--file"])
        .arg(&events))
    .assert_usage_error(&["no-such-key.p8", "--private-key-file"]);
}

/// Runs the command with the given stdout, stderr captured.
fn run_with_stdout(command: &mut Command, stdout: Stdio) -> (i32, String) {
    let output = command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_stdout_that_cannot_take_the_results_is_refused_before_any_call() {
    let mut world = World::start(Duration::ZERO);
    let events = world.events(&[track(1)]);
    let upload = |world: &World| {
        let mut command = world.command();
        command.args(["upload", "--file"]).arg(&events);
        command
    };
    let check = |(code, stderr): (i32, String), why: &str| {
        assert_eq!(code, 2, "{why}: {stderr}");
        assert!(stderr.contains(&format!("stdout {why}")), "{why}: {stderr}");
        assert!(stderr.contains("nothing was sent"), "{stderr}");
    };

    // A pipe whose reading end is gone.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    check(
        run_with_stdout(&mut upload(&world), Stdio::from(writer)),
        "is a pipe or socket whose reader has gone",
    );
    // A file opened for reading only.
    let read_only = std::fs::File::open(&events).expect("open");
    check(
        run_with_stdout(&mut upload(&world), Stdio::from(read_only)),
        "is open for reading only",
    );
    if cfg!(target_os = "linux") {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        check(
            run_with_stdout(&mut upload(&world), Stdio::from(full)),
            "is /dev/full",
        );
        // Closed by the shell that starts it.
        let command = upload(&world);
        let mut shell = Command::new("sh");
        shell
            .args(["-c", "exec \"$0\" \"$@\" >&-"])
            .arg(command.get_program())
            .args(command.get_args())
            .envs(command.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .current_dir(world.dir.path());
        check(run_with_stdout(&mut shell, Stdio::inherit()), "is closed");
    }
    assert!(
        world.control.calls().is_empty(),
        "no call was made: {:?}",
        world.control.calls()
    );
    // Discarding the results on purpose is allowed.
    let devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    let (code, stderr) = run_with_stdout(&mut upload(&world), Stdio::from(devnull));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn rust_log_wins_over_verbosity_and_vvv_shows_only_the_projects_traces() {
    let mut world = World::start(Duration::ZERO);
    let targets = |ran: &support::Ran| -> Vec<String> {
        ran.stderr
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter_map(|log| log["target"].as_str().map(str::to_owned))
            .filter(|target| target != "snowpipe_streaming::summary")
            .collect()
    };
    let events = world.events(&[track(1)]);
    let ran = run(world
        .command()
        .args(["-vvv", "--log-format", "json", "upload", "--file"])
        .arg(&events));
    assert_eq!(ran.code, 0, "{ran:?}");
    let seen = targets(&ran);
    assert!(seen.iter().any(|t| t.starts_with("snowpipe_")), "{seen:?}");
    assert!(
        seen.iter().all(|t| t.starts_with("snowpipe_")),
        "only the project's traces: {seen:?}"
    );

    let events = world.events(&[track(2)]);
    let ran = run(world
        .command()
        .env("RUST_LOG", "hyper_util=trace")
        .args(["--log-format", "json", "upload", "--file"])
        .arg(&events));
    assert_eq!(ran.code, 0, "{ran:?}");
    let seen = targets(&ran);
    assert!(
        !seen.is_empty() && seen.iter().all(|t| t.starts_with("hyper_util")),
        "RUST_LOG decides: {seen:?}"
    );

    let events = world.events(&[track(3)]);
    let ran = run(world
        .command()
        .env("RUST_LOG", "off")
        .args(["-vvv", "--log-format", "json", "upload", "--file"])
        .arg(&events));
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(
        targets(&ran).is_empty(),
        "RUST_LOG=off wins over -vvv: {ran:?}"
    );

    run(world
        .command()
        .env("RUST_LOG", "snowpipe=nonsense-level")
        .args(["upload", "--file"])
        .arg(&events))
    .assert_usage_error(&["RUST_LOG"]);
}

/// The text of an event file of these tracks.
fn track_lines(jobs: &[i64]) -> String {
    let mut text = String::new();
    for &job in jobs {
        let (job, table, columns, data) = track(job);
        let line = json!({"message": {"metadata": {"table": table, "columns": columns}, "data": data},
                          "metadata": {"job_id": job}});
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text
}

fn write_bytes(world: &World, name: &str, bytes: &[u8]) -> PathBuf {
    let path = world.dir.path().join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

#[test]
fn gzip_zstd_and_standard_input_are_read_like_plain_files() {
    use std::io::Write as _;
    let world = World::start(Duration::ZERO);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(track_lines(&[1, 2]).as_bytes()).expect("gzip");
    let gz = write_bytes(&world, "events.gz", &gz.finish().expect("gzip"));
    let zst = zstd::encode_all(track_lines(&[3, 4]).as_bytes(), 3).expect("zstd");
    // No telling extension: the first bytes decide.
    let zst = write_bytes(&world, "events.data", &zst);

    let answer = run(world.command().args(["upload", "--file"]).arg(&gz)).json();
    assert_eq!(ids(&answer["importingJobIds"]), [1, 2], "{answer}");
    let answer = run(world.command().args(["upload", "--file"]).arg(&zst)).json();
    assert_eq!(ids(&answer["importingJobIds"]), [3, 4], "{answer}");

    // Standard input, plain and compressed, for upload and run.
    let mut child = world
        .command()
        .args(["run", "--poll-interval", "10ms", "--file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(track_lines(&[5, 6]).as_bytes())
            .expect("write");
    }
    let out = child.wait_with_output().expect("run ends");
    assert!(out.status.success(), "{out:?}");
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(ids(&line["succeededJobIds"]), [5, 6], "{line}");
    let child = world
        .command()
        .args(["upload", "--file", "-"])
        .stdin(Stdio::from(std::fs::File::open(&zst).expect("open")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = child.wait_with_output().expect("upload ends");
    let answer: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(ids(&answer["importingJobIds"]), [3, 4], "{answer}");

    run(world.command().args(["run", "--file", "-", "--file", "-"]))
        .assert_usage_error(&["--file -", "once"]);
    let mut rows: Vec<i64> = world
        .rows("TRACKS")
        .iter()
        .filter_map(|r| r["N"].as_i64())
        .collect();
    rows.sort_unstable();
    assert_eq!(rows, [1, 2, 3, 3, 4, 4, 5, 6], "each upload's rows landed");
}

#[test]
fn a_file_that_yields_no_event_is_an_error_naming_it_and_what_it_looks_like() {
    let mut world = World::start(Duration::ZERO);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, b"[1, 2, 3]\n").expect("gzip");
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            write_bytes(
                &world,
                "array.json",
                br#"[{"message": {}}, {"message": {}}]"#,
            ),
            "a JSON array, not one event per line",
        ),
        (
            write_bytes(&world, "array.json.gz", &gz.finish().expect("gzip")),
            "a JSON array, not one event per line (decompressed from gzip)",
        ),
        (
            write_bytes(
                &world,
                "data.bin",
                &[0x89, b'P', b'N', b'G', 0, 0, 0, 13, 0xff, 0xfe],
            ),
            "binary data",
        ),
        (
            write_bytes(&world, "table.csv", b"job_id,table,id\n1,TRACKS,a\n"),
            "CSV",
        ),
        (
            write_bytes(&world, "note.txt", b"hello, this is one line of text"),
            "text",
        ),
        (write_bytes(&world, "empty.jsonl", b"\n\n"), "an empty file"),
        (
            write_bytes(&world, "objects.jsonl", b"{\"id\": 1}\n{\"id\": 2}\n"),
            "JSON objects that are not events (line 1: `message` is missing)",
        ),
        (
            write_bytes(&world, "long.jsonl", &vec![b'x'; 600 * 1024]),
            "without a line break",
        ),
        (
            write_bytes(&world, "broken.gz", &[0x1f, 0x8b, 8, 0, 1, 2, 3]),
            "does not decompress",
        ),
    ];
    for (file, looks) in &cases {
        for command in [&["upload", "--file"][..], &["run", "--file"][..]] {
            let ran = run(world.command().args(command).arg(file));
            ran.assert_usage_error(&[&file.display().to_string(), looks]);
        }
    }
    // Not in the same run as a good file: the good one before it is reported, and the run stops there.
    let good = world.events(&[track(1)]);
    let ran = run(world
        .command()
        .args(["run", "--poll-interval", "10ms", "--file"])
        .arg(&good)
        .arg("--file")
        .arg(&cases[4].0));
    assert_eq!(ran.code, 2, "{ran:?}");
    let lines = ran.lines();
    assert_eq!(lines.len(), 1, "{ran:?}");
    assert_eq!(ids(&lines[0]["succeededJobIds"]), [1]);
    assert!(ran.stderr.contains("note.txt"), "{ran:?}");
}

#[test]
fn exit_code_3_when_a_job_failed_and_one_summary_line_on_stderr() {
    let mut world = World::start(Duration::ZERO);
    let (job, table, mut columns, mut data) = track(2);
    columns["PAD"] = json!("string");
    data["PAD"] = json!("p".repeat(2000));
    let file = world.events(&[track(1), (job, table, columns, data)]);
    let run_it = |world: &World, extra: &[&str]| {
        run(world
            .command()
            .args(["--max-insert-request-bytes", "1000"])
            .args(extra)
            .args(["run", "--poll-interval", "10ms", "--file"])
            .arg(&file))
    };
    let ran = run_it(&world, &[]);
    assert_eq!(
        ran.code, 0,
        "the default contract: the command ran: {ran:?}"
    );
    let line = ran.json();
    assert_eq!(ids(&line["abortedJobIds"]), [2], "{line}");
    let summary: Vec<&str> = ran.stderr.lines().collect();
    assert_eq!(
        summary,
        ["2 jobs: 1 succeeded, 0 failed, 1 aborted (see abortReason)"],
        "{ran:?}"
    );
    let ran = run_it(&world, &["--exit-code"]);
    assert_eq!(ran.code, 3, "{ran:?}");
    assert_eq!(ran.lines().len(), 1, "the result is printed all the same");
    let ran = run_it(&world, &["-q"]);
    assert!(ran.stderr.is_empty(), "-q hides the summary: {ran:?}");

    let upload = run(world
        .command()
        .args([
            "--exit-code",
            "--max-insert-request-bytes",
            "1000",
            "upload",
            "--file",
        ])
        .arg(&file));
    assert_eq!(upload.code, 3, "{upload:?}");
    assert!(
        upload
            .stderr
            .contains("2 jobs: 1 importing, 0 failed, 1 aborted"),
        "{upload:?}"
    );
    let fine = world.events(&[track(3)]);
    let ran = run(world
        .command()
        .args(["--exit-code", "run", "--poll-interval", "10ms", "--file"])
        .arg(&fine));
    assert_eq!(ran.code, 0, "nothing failed: {ran:?}");
    assert!(
        ran.stderr.contains("1 job: 1 succeeded, 0 failed"),
        "{ran:?}"
    );

    let stats = run(world
        .bare()
        .args([
            "--exit-code",
            "stats",
            "--failed-job-parameters",
            "not json",
            "--jobs",
        ])
        .arg(&fine));
    assert_eq!(stats.code, 3, "{stats:?}");
}

/// Sends a signal to a child process.
fn kill(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn run_interrupted_while_polling_prints_the_import_id_and_exits_143() {
    let mut world = World::start(NEVER);
    let first = world.events(&[track(1)]);
    let second = world.events(&[track(2), track(3)]);
    let third = world.events(&[track(4)]);
    // The first file's rows commit at once (the flush below), the second's never: the run polls it until
    // the signal.
    let child = support::spawn(
        world
            .command()
            .args(["run", "--poll-interval", "50ms", "--file"])
            .arg(&first)
            .arg("--file")
            .arg(&second)
            .arg("--file")
            .arg(&third),
    );
    world.wait_until("the first file's rows are buffered", |control| {
        control
            .channels()
            .iter()
            .any(|c| c.table == "TRACKS" && c.buffered_rows > 0)
    });
    world.control.flush();
    world.wait_until("the second file is polled", |control| {
        let calls = control.calls();
        let inserts = calls
            .iter()
            .filter(|c| c.endpoint == snowpipe_emulator::Endpoint::Insert)
            .count();
        let last_insert = calls
            .iter()
            .rposition(|c| c.endpoint == snowpipe_emulator::Endpoint::Insert);
        inserts >= 2
            && last_insert.is_some_and(|at| {
                calls[at..]
                    .iter()
                    .any(|c| c.endpoint == snowpipe_emulator::Endpoint::BulkStatus)
            })
    });
    kill(&child, "TERM");
    let ran = support::finish(child);
    assert_eq!(ran.code, 143, "{ran:?}");
    let lines = ran.lines();
    assert_eq!(
        lines.len(),
        2,
        "the finished file and the one being polled: {ran:?}"
    );
    assert_eq!(ids(&lines[0]["succeededJobIds"]), [1]);
    assert!(lines[0].get("interrupted").is_none(), "{}", lines[0]);
    let cut = &lines[1];
    assert_eq!(cut["interrupted"], "SIGTERM", "{cut}");
    assert_eq!(ids(&cut["pendingJobIds"]), [2, 3], "{cut}");
    assert_eq!(cut["poll"]["inProgress"], true, "{cut}");
    assert!(ran.stderr.contains("interrupted by SIGTERM"), "{ran:?}");
    assert!(ran.stderr.contains("2 pending"), "{ran:?}");

    // The import id printed is enough to finish the job in another process.
    world.control.flush();
    let import_id = cut["upload"]["importingParameters"]["importId"].to_string();
    let poll = run(world.command().args(["poll", "--import-id", &import_id])).json();
    assert_eq!(poll["complete"], true, "{poll}");
    assert_eq!(poll["hasFailed"], false, "{poll}");
}

#[test]
fn run_interrupted_in_the_middle_of_an_upload_names_the_jobs_whose_state_is_unknown_and_exits_130()
{
    let mut world = World::start(Duration::ZERO);
    let file = world.events(&[track(7), track(8)]);
    world.control.set_latency(
        snowpipe_emulator::Endpoint::Insert,
        Duration::from_secs(3600),
    );
    let child = support::spawn(
        world
            .command()
            .args(["--request-timeout", "1h", "run", "--file"])
            .arg(&file),
    );
    world.wait_until("an insert is under way", |control| {
        control.channels().iter().any(|c| c.table == "TRACKS")
            && control
                .calls()
                .iter()
                .any(|c| c.endpoint == snowpipe_emulator::Endpoint::CreateChannel)
    });
    kill(&child, "INT");
    let ran = support::finish(child);
    assert_eq!(ran.code, 130, "{ran:?}");
    let line = ran.json_any_status();
    assert_eq!(line["interrupted"], "SIGINT", "{line}");
    assert_eq!(line["step"], "upload", "{line}");
    assert_eq!(ids(&line["unknownJobIds"]), [7, 8], "{line}");
    assert!(
        line["reason"]
            .as_str()
            .is_some_and(|r| r.contains("may or may not")),
        "{line}"
    );
    world
        .control
        .set_latency(snowpipe_emulator::Endpoint::Insert, Duration::ZERO);
}

#[test]
fn the_first_polls_come_soon_after_the_upload_and_the_progress_line_ticks_between_them() {
    let mut world = World::start(Duration::from_millis(1500));
    let file = world.events(&[track(1)]);
    let started = std::time::Instant::now();
    let ran = run(world
        .command()
        .args([
            "--progress",
            "always",
            "run",
            "--poll-interval",
            "20s",
            "--file",
        ])
        .arg(&file));
    let took = started.elapsed();
    assert_eq!(ran.code, 0, "{ran:?}");
    let line = ran.lines().remove(0);
    assert_eq!(ids(&line["succeededJobIds"]), [1], "{line}");
    assert!(
        took < Duration::from_secs(10),
        "a 1.5 s import does not wait for the 20 s interval: {took:?}"
    );
    assert!(line["polls"].as_u64().is_some_and(|n| n >= 2), "{line}");
    // The progress line is redrawn between polls with its elapsed time going up.
    let mut shown: Vec<String> = ran
        .stderr
        .split(['\r', '\n'])
        .filter(|part| part.contains("polling"))
        .filter_map(|part| part.rsplit(", ").next())
        .filter_map(|tail| tail.split_whitespace().next().map(str::to_owned))
        .collect();
    shown.dedup();
    let per_poll = usize::try_from(line["polls"].as_u64().unwrap_or(0)).unwrap_or(usize::MAX);
    assert!(
        shown.len() > per_poll,
        "the elapsed time ticks between polls ({per_poll} polls): {shown:?}"
    );
    assert!(shown.iter().all(|s| s.ends_with('s')), "{shown:?}");
}

#[test]
fn metrics_follow_prometheus_conventions_and_are_written_to_the_metrics_file() {
    let mut world = World::start(Duration::ZERO);
    let file = world.events(&[track(1), track(2)]);
    let metrics = world.dir.path().join("snowpipe.prom");
    let ran = run(world
        .command()
        .arg("--metrics-file")
        .arg(&metrics)
        .args(["run", "--poll-interval", "10ms", "--file"])
        .arg(&file));
    assert_eq!(ran.code, 0, "{ran:?}");
    let text = std::fs::read_to_string(&metrics).expect("the metrics file is written");
    for needle in [
        "# HELP snowpipe_streaming_jobs_total ",
        "# TYPE snowpipe_streaming_jobs_total counter",
        "snowpipe_streaming_jobs_total{",
        "status=\"succeeded\"",
        "# TYPE snowpipe_streaming_api_response_time_seconds histogram",
        "snowpipe_streaming_api_response_time_seconds_bucket{",
        "# HELP snowpipe_streaming_sql_api_response_time_seconds ",
        "statement=\"create_table\"",
        "# TYPE snowpipe_streaming_request_body_bytes histogram",
        "destinationId=\"dest-cli\"",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
    // The billed volume: per TRACKS row "t1"/"t2" 2, RECEIVED_AT 24, N 1, UUID_TS 24 (keys not counted).
    let billed: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("snowpipe_streaming_billed_bytes_total{")
                && l.contains("table=\"TRACKS\"")
        })
        .collect();
    assert_eq!(billed.len(), 1, "{text}");
    assert!(billed[0].ends_with(" 102"), "{}", billed[0]);
    // Every sample has its HELP and TYPE; every counter ends in _total.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line.split_whitespace().skip(2);
        let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        assert!(text.contains(&format!("# HELP {name} ")), "HELP for {name}");
        if kind == "counter" {
            assert!(name.ends_with("_total"), "{name}");
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(world.dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "written atomically: {leftovers:?}");

    // One-shot commands write it too, even when they end in an error; a folder that does not exist is
    // refused before anything is sent.
    let poll_metrics = world.dir.path().join("poll.prom");
    let poll = run(world
        .command()
        .arg("--metrics-file")
        .arg(&poll_metrics)
        .args(["poll", "--import-id", "[]"]));
    assert_eq!(poll.code, 0, "{poll:?}");
    assert!(poll_metrics.is_file());
    run(world
        .command()
        .args([
            "--metrics-file",
            "no/such/folder/m.prom",
            "upload",
            "--file",
        ])
        .arg(&file))
    .assert_usage_error(&["--metrics-file", "no/such/folder"]);
}

#[test]
fn run_with_stall_after_2s_fails_a_channel_valid_in_bulk_and_invalid_alone_naming_the_stall() {
    let mut world = World::start(NEVER);
    let file = world.events(&[track(1), track(2)]);
    let metrics = world.dir.path().join("stall.prom");
    let started = std::time::Instant::now();
    // The default stuck threshold (15 minutes): only the stall check can end this run in time.
    let child = support::spawn(
        world
            .command()
            .arg("--metrics-file")
            .arg(&metrics)
            .args([
                "run",
                "--stall-after",
                "2s",
                "--poll-interval",
                "200ms",
                "--file",
            ])
            .arg(&file),
    );
    world.wait_until("the rows are buffered on the channel", |control| {
        control
            .channels()
            .iter()
            .any(|c| c.table == "TRACKS" && c.buffered_rows == 2)
    });
    let channel = world
        .control
        .channels()
        .into_iter()
        .find(|c| c.table == "TRACKS" && c.buffered_rows == 2)
        .expect("the channel");
    // A server-side break the bulk status does not show: the channel lost its rows and says so only when
    // asked on its own.
    world.control.set_bulk_status_lie(true);
    assert!(world.control.invalidate_channel(&channel.channel_id));
    let ran = support::finish(child);
    let took = started.elapsed();
    assert_eq!(ran.code, 0, "{ran:?}");
    let line = ran.json();
    assert_eq!(ids(&line["failedJobIds"]), [1, 2], "{line}");
    let reason = line["failedReasons"]["1"].as_str().expect("a reason");
    assert!(reason.starts_with("stalled: "), "{reason}");
    assert!(
        reason.contains("TRACKS") && reason.contains("did not move for 2."),
        "{reason}"
    );
    assert!(reason.contains("invalid"), "{reason}");
    assert!(
        took < Duration::from_secs(60),
        "named in seconds, not after the stuck threshold: {took:?}"
    );
    assert!(ran.stderr.contains("stalled"), "a warning: {ran:?}");
    assert_eq!(line["poll"]["hasWarning"], false, "not stuck: {line}");
    let text = std::fs::read_to_string(&metrics).expect("metrics file");
    assert!(
        text.contains("# TYPE snowpipe_streaming_channels_stalled gauge"),
        "{text}"
    );
    world.control.set_bulk_status_lie(false);
}

#[test]
fn a_stalled_channel_that_stays_valid_is_warned_about_and_counted_while_the_run_waits() {
    let mut world = World::start(NEVER);
    let file = world.events(&[track(1)]);
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("addr").port()
    };
    let addr = format!("127.0.0.1:{port}");
    let child = support::spawn(
        world
            .command()
            .args([
                "--metrics-addr",
                &addr,
                "run",
                "--stall-after",
                "1s",
                "--poll-interval",
                "100ms",
                "--file",
            ])
            .arg(&file),
    );
    // Polls go on (nothing commits); past a second of them, the channel is asked on its own and the gauge,
    // set at each poll, counts it. Each poll calls the emulator: wait for the next one, not for time.
    // The exporter listens before the first call.
    world.wait_until("the run calls the service", |control| {
        !control.calls().is_empty()
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let gauge = loop {
        let mut stream = std::net::TcpStream::connect(&addr).expect("metrics listener");
        std::io::Write::write_all(
            &mut stream,
            format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .expect("request");
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut stream, &mut answer).expect("answer");
        let value = answer
            .lines()
            .find(|l| l.starts_with("snowpipe_streaming_channels_stalled{"))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned);
        if value.as_deref() == Some("1") || std::time::Instant::now() > deadline {
            break value;
        }
        let seen = world.control.calls().len();
        world.wait_until("another poll", |control| control.calls().len() > seen);
    };
    assert!(
        world
            .control
            .calls()
            .iter()
            .any(|c| c.endpoint == snowpipe_emulator::Endpoint::Status),
        "the channel was asked on its own"
    );
    assert_eq!(gauge.as_deref(), Some("1"), "one stalled channel");
    world.control.flush();
    let ran = support::finish(child);
    assert_eq!(ran.code, 0, "{ran:?}");
    let line = ran.json();
    assert_eq!(
        ids(&line["succeededJobIds"]),
        [1],
        "a valid channel keeps waiting: {line}"
    );
    let warnings = ran
        .stderr
        .matches("yet the channel says it is valid")
        .count();
    assert_eq!(warnings, 1, "one warning per stall: {ran:?}");
    assert!(ran.stderr.contains("TRACKS"), "{ran:?}");
}

/// A command's JSON Schema, as the command prints it.
fn schema_of(world: &World, command: &str) -> jsonschema::Validator {
    let schema = run(world.bare().args(["schema", command])).json();
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{schema}"
    );
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{command}: not a schema: {e}"))
}

fn assert_valid(validator: &jsonschema::Validator, what: &str, output: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(output)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} against its schema: {errors:?}\n{output}"
    );
}

#[test]
fn the_json_outputs_match_the_schemas_the_command_prints() {
    let mut world = World::start(NEVER);
    let (upload_schema, poll_schema, stats_schema, run_schema) = (
        schema_of(&world, "upload"),
        schema_of(&world, "poll"),
        schema_of(&world, "stats"),
        schema_of(&world, "run"),
    );
    let file = world.events(&[track(1), track(2)]);
    let upload = run(world.command().args(["upload", "--file"]).arg(&file)).json();
    assert_valid(&upload_schema, "upload", &upload);
    let bad = world.file("{\"message\": 1, \"metadata\": {\"job_id\": 9}}\n");
    let aborted = run(world.command().args(["upload", "--file"]).arg(&bad)).json();
    assert_valid(&upload_schema, "an aborted upload", &aborted);

    let import_id = upload["importingParameters"]["importId"].to_string();
    let in_progress = run(world.command().args(["poll", "--import-id", &import_id])).json();
    assert_eq!(in_progress["inProgress"], true);
    assert_valid(&poll_schema, "poll in progress", &in_progress);
    world.control.restart();
    let failed = run(world.command().args(["poll", "--import-id", &import_id])).json();
    assert_eq!(failed["hasFailed"], true, "{failed}");
    assert_valid(&poll_schema, "poll failed", &failed);
    let undecodable = run(world.command().args(["poll", "--import-id", "nope"])).json();
    assert_valid(&poll_schema, "poll 400", &undecodable);

    let stats = run(world
        .bare()
        .args([
            "stats",
            "--failed-job-parameters",
            &failed["failedJobParameters"].to_string(),
            "--jobs",
        ])
        .arg(&file))
    .json();
    assert_valid(&stats_schema, "stats", &stats);

    world.control.flush();
    let done = World::start(Duration::ZERO);
    let mut done = done;
    let file = done.events(&[track(3)]);
    let line = run(done
        .command()
        .args(["run", "--poll-interval", "10ms", "--file"])
        .arg(&file))
    .json();
    assert_valid(&run_schema, "run", &line);
    // The lines of an interrupted run: polling, and an upload cut in the middle.
    let polling = support::spawn(
        world
            .command()
            .args(["run", "--poll-interval", "20ms", "--file"])
            .arg(world.dir.path().join("input-1.jsonl")),
    );
    let seen = world.control.calls().len();
    world.wait_until("the run polls", |control| {
        control.calls()[seen.min(control.calls().len())..]
            .iter()
            .any(|c| c.endpoint == snowpipe_emulator::Endpoint::BulkStatus)
    });
    kill(&polling, "TERM");
    let ran = support::finish(polling);
    assert_eq!(ran.code, 143, "{ran:?}");
    assert_valid(&run_schema, "an interrupted run", &ran.json_any_status());
    world.control.set_latency(
        snowpipe_emulator::Endpoint::Insert,
        Duration::from_secs(3600),
    );
    let cut = support::spawn(
        world
            .command()
            .args(["--request-timeout", "1h", "run", "--file"])
            .arg(world.dir.path().join("input-1.jsonl")),
    );
    let seen = world.control.calls().len();
    world.wait_until("the run opens its channel", |control| {
        control.calls()[seen.min(control.calls().len())..]
            .iter()
            .any(|c| c.endpoint == snowpipe_emulator::Endpoint::CreateChannel)
    });
    kill(&cut, "TERM");
    let ran = support::finish(cut);
    assert_eq!(ran.code, 143, "{ran:?}");
    assert_valid(&run_schema, "a cut upload", &ran.json_any_status());
    world
        .control
        .set_latency(snowpipe_emulator::Endpoint::Insert, Duration::ZERO);
}

#[test]
fn check_says_what_is_right_and_what_to_do_and_writes_nothing() {
    let mut world = World::start(Duration::ZERO);
    let ran = run(world.command().arg("check"));
    assert_eq!(ran.code, 0, "{ran:?}");
    let lines: Vec<&str> = ran.stdout.lines().collect();
    for needle in [
        "✓ destination dest-cli: account DEMO, user DEMO_USER, role DEMO_ROLE, database DEMO_DB, schema CLITESTS",
        "✓ private key: read; public key fingerprint SHA256:",
        "ALTER USER DEMO_USER SET RSA_PUBLIC_KEY='MIIB",
        "✓ account: the SQL API at",
        "✓ database DEMO_DB: role DEMO_ROLE can use it",
        "✓ schema DEMO_DB.CLITESTS: does not exist yet; the first upload creates it",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(needle)),
            "{needle:?} in:\n{}",
            ran.stdout
        );
    }
    assert_no_secret_key(&ran.stdout);
    assert!(
        world
            .control
            .schemas()
            .iter()
            .all(|(_, s)| s != support::SCHEMA),
        "check writes nothing"
    );
    assert!(world.control.channels().is_empty(), "no channel opened");

    // The encrypted key with a wrong passphrase, a database the role cannot use, a key the user does not
    // have: each a ✗ that says what to do, exit 1.
    let wrong_passphrase = destination_with(&mut world, |config| {
        config["privateKey"] = json!(demo::ENCRYPTED_PRIVATE_KEY_PEM);
        config["privateKeyPassphrase"] = json!("not-it");
    });
    let no_database = destination_with(&mut world, |config| config["database"] = json!("NOPE"));
    let other_user = destination_with(&mut world, |config| config["user"] = json!("SOMEONE_ELSE"));
    for (destination, needles) in [
        (
            &wrong_passphrase,
            &["✗ private key:", "passphrase", "- account: skipped"][..],
        ),
        (
            &no_database,
            &[
                "✗ database NOPE: role DEMO_ROLE cannot use it",
                "GRANT USAGE ON DATABASE NOPE TO ROLE DEMO_ROLE",
            ][..],
        ),
        (
            &other_user,
            &[
                "✗ account:",
                "refused the token for user SOMEONE_ELSE",
                "ALTER USER",
            ][..],
        ),
    ] {
        let ran = run(world
            .command()
            .arg("--destination")
            .arg(destination)
            .arg("check"));
        assert_eq!(ran.code, 1, "{ran:?}");
        for needle in needles {
            assert!(
                ran.stdout.contains(needle),
                "{needle:?} in:\n{}",
                ran.stdout
            );
        }
        assert!(!ran.stdout.contains("not-it") && !ran.stderr.contains("not-it"));
    }
    let ran = run(world.bare().arg("check"));
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(
        ran.stdout
            .contains("✗ destination: `check` needs --destination"),
        "{ran:?}"
    );
}

fn assert_no_secret_key(text: &str) {
    for line in demo::PRIVATE_KEY_PEM
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
    {
        assert!(!text.contains(line), "a piece of the private key leaked");
    }
}

#[test]
fn completions_and_man_pages_come_from_the_command_line_itself() {
    let world = World::start(Duration::ZERO);
    for (shell, needle) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef snowpipe-streaming"),
        ("fish", "complete -c snowpipe-streaming"),
    ] {
        let ran = run(world.bare().args(["completions", shell]));
        assert_eq!(ran.code, 0, "{ran:?}");
        assert!(ran.stdout.contains(needle), "{shell}: {needle:?}");
        for word in ["upload", "poll", "stall-after", "private-key-file"] {
            assert!(ran.stdout.contains(word), "{shell} completes {word}");
        }
    }
    run(world.bare().args(["completions", "tcsh"])).assert_usage_error(&["tcsh"]);
    let dir = world.dir.path().join("man");
    let ran = run(world.bare().args(["man", "--out-dir"]).arg(&dir));
    assert_eq!(ran.code, 0, "{ran:?}");
    let page = std::fs::read_to_string(dir.join("snowpipe-streaming.1")).expect("the main page");
    assert!(page.contains(".TH snowpipe-streaming"), "{page}");
    assert!(page.contains("stall\\-after"), "options are in it");
    let run_page =
        std::fs::read_to_string(dir.join("snowpipe-streaming-run.1")).expect("run's page");
    assert!(run_page.contains("poll\\-interval"), "{run_page}");
    assert!(
        !dir.join("snowpipe-streaming-man.1").exists(),
        "the hidden command has no page"
    );
}

#[test]
fn the_example_lines_of_the_input_page_upload() {
    let mut world = World::start(Duration::ZERO);
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/INPUT.md"))
        .expect("docs/INPUT.md");
    let block = page
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a json block");
    let file = world.file(block);
    let line = run(world
        .command()
        .args(["run", "--poll-interval", "10ms", "--file"])
        .arg(&file))
    .json();
    assert_eq!(ids(&line["succeededJobIds"]), [1001, 1002], "{line}");
}

#[test]
fn a_poll_in_a_fresh_process_counts_the_stall_from_the_upload() {
    let mut world = World::start(NEVER);
    let file = world.events(&[track(1)]);
    let upload = run(world.command().args(["upload", "--file"]).arg(&file)).json();
    let import_id = upload["importingParameters"]["importId"].to_string();
    let channel = upload["importingParameters"]["importId"][0]["channelId"]
        .as_str()
        .expect("channel id")
        .to_owned();
    world.control.set_bulk_status_lie(true);
    assert!(world.control.invalidate_channel(&channel));
    // Each poll is a process of its own; the ones within a second of the upload answer in progress.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let answer =
            run(world
                .command()
                .args(["--stall-after", "1s", "poll", "--import-id", &import_id]))
            .json();
        if answer["complete"] == true || std::time::Instant::now() > deadline {
            break answer;
        }
    };
    assert_eq!(answer["hasFailed"], true, "{answer}");
    let reason = answer["failedJobParameters"][0]["reason"]
        .as_str()
        .unwrap_or("");
    assert!(reason.starts_with("stalled: "), "{answer}");
    world.control.set_bulk_status_lie(false);
}
