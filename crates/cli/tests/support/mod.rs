//! Shared set-up of the command's tests: an emulator in the test process, the built binary run as a child
//! process against it, event files written from compact descriptions, and the child's output parsed.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of the support module"
)]

use std::{
    io::Write as _,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use snowpipe_emulator::{Control, Emulator, demo};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_snowpipe-streaming");

/// The namespace the tests write into, and its schema.
pub(crate) const NAMESPACE: &str = "clitests";
/// [`NAMESPACE`] as a Snowflake schema.
pub(crate) const SCHEMA: &str = "CLITESTS";

/// An emulator and what a test needs around it.
pub(crate) struct World {
    /// The running emulator.
    pub(crate) emulator: Emulator,
    /// Its fault and inspection handle.
    pub(crate) control: Control,
    /// A folder for event files and other inputs.
    pub(crate) dir: tempfile::TempDir,
    /// The destination file (the demo account, [`NAMESPACE`]).
    pub(crate) destination: PathBuf,
    files: usize,
    // Last: the emulator's tasks run on it, so it goes after the emulator.
    runtime: tokio::runtime::Runtime,
}

impl World {
    /// Starts an emulator with the given commit lag.
    pub(crate) fn start(commit_lag: Duration) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let emulator = runtime
            .block_on(Emulator::builder().commit_lag(commit_lag).start())
            .expect("emulator starts");
        let control = emulator.control().clone();
        let dir = tempfile::tempdir().expect("temp dir");
        let destination = dir.path().join("destination.json");
        std::fs::write(
            &destination,
            json!({"id": "dest-cli", "workspaceId": "ws-cli", "config": demo::destination_config(NAMESPACE)})
                .to_string(),
        )
        .expect("write destination");
        Self {
            emulator,
            control,
            dir,
            destination,
            files: 0,
            runtime,
        }
    }

    /// Runs a future on the emulator's runtime (to wait on its state).
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Waits until `done` holds of the emulator, looking again after each call it receives (so whatever is
    /// expected must come with calls). Panics after a minute without it.
    pub(crate) fn wait_until(&self, what: &str, mut done: impl FnMut(&Control) -> bool) {
        let mut seen = 0;
        while !done(&self.control) {
            seen += 1;
            let waited = self.block_on(async {
                tokio::time::timeout(Duration::from_secs(60), self.control.wait_for_calls(seen))
                    .await
            });
            assert!(waited.is_ok_and(|ok| ok), "never happened: {what}");
        }
    }

    /// The binary with no arguments and none of the caller's `SNOWPIPE_STREAMING_*` variables, its cache
    /// directory (`XDG_CACHE_HOME`) in the test's folder, so the default state directory is
    /// [`World::state_dir`] and never the user's.
    pub(crate) fn bare(&self) -> Command {
        let mut command = Command::new(BIN);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SNOWPIPE_STREAMING_") {
                command.env_remove(name);
            }
        }
        command.env("XDG_CACHE_HOME", self.dir.path().join("cache"));
        command.current_dir(self.dir.path());
        command
    }

    /// The default state directory of the commands this world runs.
    pub(crate) fn state_dir(&self) -> PathBuf {
        self.dir.path().join("cache").join("snowpipe-streaming")
    }

    /// Takes the lock of the test destination (`dest-cli`, instance `1`) in the default state directory,
    /// as another process of the command would; held until the file is dropped.
    pub(crate) fn hold_lock(&self) -> std::fs::File {
        std::fs::create_dir_all(self.state_dir()).expect("state dir");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.state_dir().join("dest-cli+1.lock"))
            .expect("open the lock file");
        file.lock().expect("lock");
        file
    }

    /// The binary pointed at this emulator as a sidecar (`--backend sidecar`, the SQL API on the same
    /// port), with the destination and quick retries: most tests drive the sidecar, whose channels the
    /// emulator's controls name by id; [`World::rest_command`] is the default backend.
    pub(crate) fn command(&self) -> Command {
        let mut command = self.bare();
        let url = self.emulator.base_url();
        command
            .arg("--destination")
            .arg(&self.destination)
            .args([
                "--backend",
                "sidecar",
                "--service-url",
                &url,
                "--account-url",
                &url,
            ])
            .args(["--retry-wait-min", "1ms", "--retry-wait-max", "5ms"]);
        command
    }

    /// The binary pointed at this emulator on the default backend, Snowflake's REST API (the emulator is the
    /// account, its SQL API and its ingest host), with the destination and quick retries.
    pub(crate) fn rest_command(&self) -> Command {
        let mut command = self.bare();
        let url = self.emulator.base_url();
        command
            .arg("--destination")
            .arg(&self.destination)
            .args(["--account-url", &url])
            .args(["--retry-wait-min", "1ms", "--retry-wait-max", "5ms"]);
        command
    }

    /// Writes an event file; each event is (job id, table, columns, data).
    pub(crate) fn events(&mut self, events: &[(i64, &str, Value, Value)]) -> PathBuf {
        let mut text = String::new();
        for (job_id, table, columns, data) in events {
            let line = json!({"message": {"metadata": {"table": table, "columns": columns}, "data": data},
                              "metadata": {"job_id": job_id}});
            text.push_str(&line.to_string());
            text.push('\n');
        }
        self.file(&text)
    }

    /// Writes a file with the given text and answers its path.
    pub(crate) fn file(&mut self, text: &str) -> PathBuf {
        self.files += 1;
        let path = self.dir.path().join(format!("input-{}.jsonl", self.files));
        let mut file = std::fs::File::create(&path).expect("create file");
        file.write_all(text.as_bytes()).expect("write file");
        path
    }

    /// Committed rows of a table in [`SCHEMA`].
    pub(crate) fn rows(&self, table: &str) -> Vec<Value> {
        self.control
            .rows(demo::DATABASE, SCHEMA, table)
            .unwrap_or_default()
    }
}

/// A track event: (job id, "TRACKS", columns, data).
pub(crate) fn track(job: i64) -> (i64, &'static str, Value, Value) {
    (
        job,
        "TRACKS",
        json!({"ID": "string", "RECEIVED_AT": "datetime", "N": "int", "UUID_TS": "datetime"}),
        json!({"ID": format!("t{job}"), "RECEIVED_AT": "2024-05-12T04:36:50.199Z", "N": job}),
    )
}

/// A page event: (job id, "PAGES", columns, data).
pub(crate) fn page(job: i64) -> (i64, &'static str, Value, Value) {
    (
        job,
        "PAGES",
        json!({"ID": "string", "RECEIVED_AT": "datetime", "URL": "string"}),
        json!({"ID": format!("p{job}"), "RECEIVED_AT": "2024-05-12T04:36:50.199Z", "URL": "/x"}),
    )
}

/// What a child process did.
#[derive(Debug)]
pub(crate) struct Ran {
    /// Its exit status.
    pub(crate) code: i32,
    /// Its stdout.
    pub(crate) stdout: String,
    /// Its stderr.
    pub(crate) stderr: String,
}

impl Ran {
    /// The stdout lines, each parsed as JSON.
    pub(crate) fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}\n{self:?}"))
            })
            .collect()
    }

    /// The one stdout line, parsed; the command must have exited 0.
    pub(crate) fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{self:?}");
        let mut lines = self.lines();
        assert_eq!(lines.len(), 1, "one result line: {self:?}");
        lines.remove(0)
    }

    /// The one stdout line, parsed, whatever the exit status.
    pub(crate) fn json_any_status(&self) -> Value {
        let mut lines = self.lines();
        assert_eq!(lines.len(), 1, "one result line: {self:?}");
        lines.remove(0)
    }

    /// Asserts a usage error (exit 2, nothing on stdout) whose message holds each of `needles`.
    pub(crate) fn assert_usage_error(&self, needles: &[&str]) {
        assert_eq!(self.code, 2, "{self:?}");
        assert!(self.stdout.is_empty(), "{self:?}");
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr should name {needle:?}: {self:?}"
            );
        }
    }
}

/// Runs the command to its end.
pub(crate) fn run(command: &mut Command) -> Ran {
    let output = command
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    ran(&output)
}

/// Starts the command, its output captured: finish it with [`finish`].
pub(crate) fn spawn(command: &mut Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Waits for a command started with [`spawn`] to end.
pub(crate) fn finish(child: Child) -> Ran {
    ran(&child.wait_with_output().expect("the binary ends"))
}

fn ran(output: &Output) -> Ran {
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The integers of a JSON array, sorted.
pub(crate) fn ids(value: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_i64().expect("job id"))
        .collect();
    ids.sort_unstable();
    ids
}
