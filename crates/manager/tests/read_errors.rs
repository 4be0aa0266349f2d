//! A batch that cannot be read: only a bad line aborts its jobs (no retry can mend it); a file that cannot
//! be opened or holds no events fails the caller's jobs, so they come back instead of being lost.

use std::{io::Write as _, sync::Arc};

use serde_json::json;
use snowpipe_channels::{ManualClock, MockChannels};
use snowpipe_manager::{Destination, Manager, Settings};

fn manager() -> Manager {
    let destination = Destination {
        id: "dest".into(),
        workspace_id: "ws".into(),
        config: json!({"account": "a", "warehouse": "w", "database": "D", "user": "u", "role": "r",
                       "privateKey": "k", "namespace": "ns"}),
    };
    // No expectations: nothing may be called.
    Manager::new(
        &destination,
        Settings::default(),
        Arc::new(MockChannels::new()),
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
    let out = manager().upload(file.path(), &[1, 2]).await;
    assert_eq!(out.aborted_job_ids, [1, 2], "{out:?}");
    assert!(out.failed_job_ids.is_empty(), "{out:?}");
}
