//! Shared set-up of the end-to-end tests: an in-process emulator, a manager connected to it over HTTP,
//! and event files written from compact descriptions.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::{Value, json};
use snowpipe_emulator::{Control, DropMode, Emulator, Endpoint, Failure, RestChannelName, demo};
use snowpipe_manager::{
    BackendConfig, BackoffConfig, Connection, Destination, FailedJobParameters, HttpConfig,
    Manager, PollOutput, RestOptions, RetryConfig, Settings, UploadOutput, UploadStatsOutput,
};

/// Which backend a test runs the manager on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The sidecar protocol.
    Sidecar,
    /// Snowflake's REST API.
    Rest,
}

/// A backend call, named the same on both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Opening a channel.
    Open,
    /// Appending (inserting) rows.
    Append,
    /// Bulk status.
    BulkStatus,
}

/// Runs one async test body on both backends: `on_both!(name, body_fn)` makes `name::sidecar` and
/// `name::rest`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sidecar() {
                super::$name($crate::Which::Sidecar).await;
            }
            #[tokio::test]
            async fn rest() {
                super::$name($crate::Which::Rest).await;
            }
        }
    )*};
}

/// The schema the tests write into (`namespace` "endtoend").
pub const SCHEMA: &str = "ENDTOEND";

/// An emulator and what a test needs around it.
pub struct World {
    /// The running emulator.
    pub emulator: Emulator,
    /// Its fault and inspection handle.
    pub control: Control,
    /// A folder for event files.
    pub dir: tempfile::TempDir,
    /// The backend the manager runs on.
    pub which: Which,
    files: usize,
}

impl World {
    /// Starts an emulator that commits at once, for a manager on the sidecar.
    pub async fn start() -> Self {
        Self::start_on(Which::Sidecar).await
    }

    /// Starts an emulator that commits at once, for a manager on the given backend.
    pub async fn start_on(which: Which) -> Self {
        Self::start_lagging(which, Duration::ZERO).await
    }

    /// Starts an emulator that commits appended rows `lag` after they arrive, for a manager on the given
    /// backend.
    pub async fn start_lagging(which: Which, lag: Duration) -> Self {
        let emulator = Emulator::builder()
            .commit_lag(lag)
            .start()
            .await
            .expect("emulator starts");
        let control = emulator.control().clone();
        Self {
            emulator,
            control,
            dir: tempfile::tempdir().expect("temp dir"),
            which,
            files: 0,
        }
    }

    /// The demo destination writing into [`SCHEMA`].
    pub fn destination(&self) -> Destination {
        Destination {
            id: "dest-e2e".into(),
            workspace_id: "ws".into(),
            config: demo::destination_config("endtoend"),
        }
    }

    /// Connection settings: this emulator for both the service and the SQL API, quick retries.
    pub fn connection(&self) -> Connection {
        let retry = RetryConfig {
            max_retries: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            ..RetryConfig::default()
        };
        let backend = match self.which {
            Which::Sidecar => BackendConfig::Sidecar(HttpConfig {
                base_url: self.emulator.base_url(),
                timeout: Duration::from_secs(5),
                retry,
                ..HttpConfig::default()
            }),
            Which::Rest => {
                let mut options = RestOptions::default();
                options.timeout = Duration::from_secs(5);
                options.retry = retry;
                options.uncommitted_wait = Duration::from_secs(5);
                BackendConfig::Rest(options)
            }
        };
        Connection {
            backend,
            sql_api_url: Some(self.emulator.base_url()),
            backoff: BackoffConfig::default(),
            state: None,
        }
    }

    /// The emulator endpoint of a call on this world's backend.
    pub fn endpoint(&self, op: Op) -> Endpoint {
        match (self.which, op) {
            (Which::Sidecar, Op::Open) => Endpoint::CreateChannel,
            (Which::Sidecar, Op::Append) => Endpoint::Insert,
            (Which::Sidecar, Op::BulkStatus) => Endpoint::BulkStatus,
            (Which::Rest, Op::Open) => Endpoint::RestOpenChannel,
            (Which::Rest, Op::Append) => Endpoint::RestAppend,
            (Which::Rest, Op::BulkStatus) => Endpoint::RestBulkStatus,
        }
    }

    /// Calls of `op` that reached the service without a scripted fault.
    pub fn count_calls(&self, op: Op) -> usize {
        let endpoint = self.endpoint(op);
        self.control
            .calls()
            .iter()
            .filter(|c| c.endpoint == endpoint && c.fault.is_none())
            .count()
    }

    /// Answers the next `count` calls of `op` with `status`.
    pub fn fail_next(&self, op: Op, count: u32, status: u16) {
        self.control
            .fail_next(self.endpoint(op), count, Failure::Status { status });
    }

    /// Loses the answers of the next `count` appends, after applying them or not.
    pub fn drop_next_append(&self, count: u32, mode: DropMode) {
        self.control
            .drop_next(self.endpoint(Op::Append), count, mode);
    }

    /// Every channel loses its uncommitted rows and is forgotten: the sidecar restarts, or (on REST) every
    /// channel is dropped, as Snowflake does to an expired channel.
    pub fn lose_uncommitted(&self) {
        match self.which {
            Which::Sidecar => self.control.restart(),
            Which::Rest => {
                for channel in self.control.rest_channels() {
                    let name = RestChannelName::new(
                        &format!("\"{}\"", channel.database),
                        &format!("\"{}\"", channel.schema),
                        &format!("\"{}\"", channel.pipe),
                        &format!("\"{}\"", channel.channel),
                    );
                    self.control.drop_rest_channel(&name);
                }
            }
        }
    }

    /// Invalidates the channel an import entry of `table` names; answers whether it existed.
    pub fn invalidate(&self, table: &str, channel_id: &str) -> bool {
        match self.which {
            Which::Sidecar => self.control.invalidate_channel(channel_id),
            Which::Rest => self
                .control
                .invalidate_rest_channel(&RestChannelName::on_table(
                    demo::DATABASE,
                    SCHEMA,
                    table,
                    channel_id,
                )),
        }
    }

    /// A manager connected to this emulator.
    pub fn manager(&self, settings: Settings) -> Manager {
        Manager::connect(&self.destination(), settings, self.connection())
            .expect("manager connects")
    }

    /// Writes an event file; each event is (job id, table, columns, data).
    pub fn file(&mut self, events: &[(i64, &str, Value, Value)]) -> PathBuf {
        self.files += 1;
        let path = self.dir.path().join(format!("batch-{}.jsonl", self.files));
        let mut file = std::fs::File::create(&path).expect("create event file");
        for (job_id, table, columns, data) in events {
            let line = json!({"message": {"metadata": {"table": table, "columns": columns}, "data": data},
                              "metadata": {"job_id": job_id}});
            writeln!(file, "{line}").expect("write event");
        }
        path
    }

    /// Committed rows of a table in [`SCHEMA`].
    pub fn rows(&self, table: &str) -> Vec<Value> {
        self.control
            .rows(demo::DATABASE, SCHEMA, table)
            .unwrap_or_default()
    }
}

/// Upload, poll until complete (bounded), then stats for the importing jobs.
pub async fn run(
    manager: &Manager,
    file: &Path,
) -> (UploadOutput, PollOutput, Option<UploadStatsOutput>) {
    let upload = manager.upload(file, &[]).await;
    let Some(params) = upload.importing_parameters.clone() else {
        return (upload, PollOutput::default(), None);
    };
    let import_id = params.import_id;
    let mut poll = manager.poll(&import_id).await;
    for _ in 0..100 {
        if poll.complete {
            break;
        }
        poll = manager.poll(&import_id).await;
    }
    assert!(poll.complete, "the import did not complete: {poll:?}");
    let jobs = jobs_of(file);
    let importing: Vec<(i64, String)> = jobs
        .into_iter()
        .filter(|(id, _)| upload.importing_job_ids.contains(id))
        .collect();
    let params = poll
        .failed_job_parameters
        .clone()
        .unwrap_or_else(|| FailedJobParameters::from(import_id));
    let stats = manager.upload_stats(&params, &importing);
    (upload, poll, Some(stats))
}

/// (job id, table) of every line of an event file.
pub fn jobs_of(file: &Path) -> Vec<(i64, String)> {
    std::fs::read_to_string(file)
        .expect("read event file")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("event line is JSON");
            (
                v["metadata"]["job_id"].as_i64().expect("job id"),
                v["message"]["metadata"]["table"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect()
}

/// Asserts that every job of the file is in exactly one of upload's lists, and that stats covers exactly the
/// importing jobs, each once.
pub fn assert_accounted(file: &Path, upload: &UploadOutput, stats: Option<&UploadStatsOutput>) {
    let mut expected: Vec<i64> = jobs_of(file).into_iter().map(|(id, _)| id).collect();
    expected.sort_unstable();
    expected.dedup();
    let mut seen: Vec<i64> = [
        &upload.importing_job_ids,
        &upload.failed_job_ids,
        &upload.aborted_job_ids,
    ]
    .into_iter()
    .flatten()
    .copied()
    .collect();
    seen.sort_unstable();
    assert_eq!(
        seen, expected,
        "every job in exactly one upload outcome: {upload:?}"
    );
    if let Some(stats) = stats {
        let mut judged: Vec<i64> = stats
            .metadata
            .succeeded_keys
            .iter()
            .chain(&stats.metadata.failed_keys)
            .copied()
            .collect();
        judged.sort_unstable();
        let mut importing = upload.importing_job_ids.clone();
        importing.sort_unstable();
        assert_eq!(
            judged, importing,
            "every importing job judged once: {stats:?}"
        );
    }
}
