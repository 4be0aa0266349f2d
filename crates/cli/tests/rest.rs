//! The built `snowpipe-streaming` binary on its default backend, Snowflake's REST API, against an
//! in-process emulator serving the account (discovery, token exchange, SQL API) and the ingest host: each
//! command in its own process, as a pipeline runs it.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{World, ids, page, run, track};

#[test]
fn upload_poll_and_stats_work_in_three_fresh_processes_on_rest() {
    let mut world = World::start(Duration::ZERO);
    let (job, table, mut columns, mut data) = track(3);
    // A value the column cannot hold: NULL in TRACKS and a row in the discards table.
    columns["N"] = json!("string");
    data["N"] = json!("three");
    let file = world.events(&[track(1), track(2), (job, table, columns, data), page(4)]);

    let upload = run(world.rest_command().args(["upload", "--file"]).arg(&file)).json();
    assert_eq!(ids(&upload["importingJobIds"]), [1, 2, 3, 4], "{upload}");
    let import_id = upload["importingParameters"]["importId"].to_string();
    assert!(
        import_id.contains("\"rest\""),
        "the import names its backend: {import_id}"
    );

    // Each poll is a process of its own that knows the channels from the import id alone; the emulator
    // commits at once, so a few polls settle it.
    let mut done = Value::Null;
    for _ in 0..50 {
        done = run(world
            .rest_command()
            .args(["poll", "--import-id", &import_id]))
        .json();
        if done["complete"] == true {
            break;
        }
    }
    assert_eq!(done["complete"], true, "{done}");
    assert_eq!(done["hasFailed"], false, "{done}");

    let stats = run(world
        .bare()
        .args(["stats", "--failed-job-parameters", &import_id, "--jobs"])
        .arg(&file))
    .json();
    assert_eq!(
        ids(&stats["metadata"]["succeededKeys"]),
        [1, 2, 3, 4],
        "{stats}"
    );
    assert_eq!(world.rows("TRACKS").len(), 3);
    assert_eq!(world.rows("PAGES").len(), 1);
    let discards = world.rows("RUDDER_DISCARDS");
    assert_eq!(discards.len(), 1, "{discards:?}");
    assert_eq!(discards[0]["COLUMN_VALUE"], "three");
}

#[test]
fn run_on_rest_lands_every_job_of_two_files() {
    let mut world = World::start(Duration::ZERO);
    let first = world.events(&[track(1), track(2), page(3)]);
    let second = world.events(&[track(10), page(11)]);
    let ran = run(world
        .rest_command()
        .args(["run", "--poll-interval", "10ms", "--file"])
        .arg(&first)
        .arg("--file")
        .arg(&second));
    assert_eq!(ran.code, 0, "{ran:?}");
    let lines = ran.lines();
    assert_eq!(lines.len(), 2, "{ran:?}");
    let succeeded: Vec<Vec<i64>> = lines.iter().map(|l| ids(&l["succeededJobIds"])).collect();
    assert_eq!(succeeded, [vec![1, 2, 3], vec![10, 11]], "{ran:?}");
    assert_eq!(world.rows("TRACKS").len(), 3);
    assert_eq!(world.rows("PAGES").len(), 2);
}

#[test]
fn an_import_is_polled_on_the_backend_that_wrote_it() {
    let mut world = World::start(Duration::ZERO);
    let file = world.events(&[track(1)]);
    let upload = run(world.rest_command().args(["upload", "--file"]).arg(&file)).json();
    let import_id = upload["importingParameters"]["importId"].to_string();

    let polled = run(world.command().args(["poll", "--import-id", &import_id]));
    polled.assert_usage_error(&["--import-id", "rest", "--backend rest", "TRACKS"]);

    // The sidecar's imports, the other way round.
    let file = world.events(&[track(2)]);
    let upload = run(world.command().args(["upload", "--file"]).arg(&file)).json();
    let import_id = upload["importingParameters"]["importId"].to_string();
    let polled = run(world
        .rest_command()
        .args(["poll", "--import-id", &import_id]));
    polled.assert_usage_error(&["--import-id", "sidecar", "--backend sidecar"]);
}

#[test]
fn check_on_rest_gets_a_scoped_token_from_the_discovered_ingest_host() {
    let world = World::start(Duration::ZERO);
    let ran = run(world.rest_command().arg("check"));
    assert_eq!(ran.code, 0, "{ran:?}");
    let url = world.emulator.base_url();
    assert!(
        ran.stdout.lines().any(|l| l.starts_with("✓ ingest host: ")
            && l.contains(url.as_str())
            && l.contains("scoped token")),
        "{ran:?}"
    );
    assert!(world.control.channels().is_empty(), "no channel opened");

    // An ingest host that does not answer: a ✗ naming it, exit status 1.
    let ran = run(world
        .rest_command()
        .args(["--ingest-url", "http://127.0.0.1:9", "check"]));
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(
        ran.stdout
            .lines()
            .any(|l| l.starts_with("✗ ingest host: ") && l.contains("127.0.0.1:9")),
        "{ran:?}"
    );
}
