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
