//! The manager against the emulator over HTTP: each behaviour of the contract, end to end.

use serde_json::json;
use snowpipe_e2e::{World, run};
use snowpipe_manager::Settings;

fn track(id: &str, n: i64) -> serde_json::Value {
    json!({"ID": id, "RECEIVED_AT": "2024-05-12T04:36:50.199Z", "N": n})
}

fn track_columns() -> serde_json::Value {
    json!({"ID": "string", "RECEIVED_AT": "datetime", "N": "int", "UUID_TS": "datetime"})
}

#[tokio::test]
async fn happy_path_lands_every_row_and_succeeds_every_job() {
    let mut world = World::start().await;
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
    assert_eq!(upload.importing_job_ids, [2, 1, 3], "{upload:?}");
    assert!(
        upload.failed_job_ids.is_empty() && upload.aborted_job_ids.is_empty(),
        "{upload:?}"
    );
    assert!(!poll.has_failed, "{poll:?}");
    let stats = stats.unwrap();
    let mut succeeded = stats.metadata.succeeded_keys.clone();
    succeeded.sort_unstable();
    assert_eq!(succeeded, [1, 2, 3]);

    let rows = world.rows("TRACKS");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["ID"], "a");
    assert_eq!(rows[1]["N"], 2);
    assert!(rows[0]["UUID_TS"].is_string(), "UUID_TS is set: {rows:?}");
    assert_eq!(world.rows("PAGES"), [json!({"ID": "p", "URL": "/x"})]);
}
