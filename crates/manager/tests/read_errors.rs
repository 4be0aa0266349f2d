//! A batch that cannot be read: only a bad line aborts its jobs (no retry can mend it); a file that cannot
//! be opened or holds no events fails the caller's jobs, so they come back instead of being lost.

use std::{io::Write as _, sync::Arc};

use serde_json::json;
use snowpipe_channels::{ChannelError, ManualClock, MockChannels};
use snowpipe_manager::{Destination, Manager, Settings};

fn manager() -> Manager {
    // No expectations: nothing may be called.
    manager_with(MockChannels::new())
}

fn manager_with(channels: MockChannels) -> Manager {
    let destination = Destination {
        id: "dest".into(),
        workspace_id: "ws".into(),
        config: json!({"account": "a", "warehouse": "w", "database": "D", "user": "u", "role": "r",
                       "privateKey": "k", "namespace": "ns"}),
    };
    Manager::new(
        &destination,
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
