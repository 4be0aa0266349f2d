//! The live check's own code path against the emulator over HTTP, with the waits that take minutes on an
//! account made short: every item passes, the schema is gone after it, and an item fails when the
//! service breaks what it checks.

use std::time::Duration;

use snowpipe_api::Secret;
use snowpipe_emulator::{Emulator, demo};
use snowpipe_live::{
    COUNTERS, DISCARDED, Options, Report, SCHEMA_DROPPED, Target, WAITING_OPEN, run,
};

/// Commits after a short lag, so an open right after an append finds the rows uncommitted (the discarding
/// and waiting items need that race, which a live account's commit time gives them).
async fn emulator() -> Emulator {
    Emulator::builder()
        .commit_lag(Duration::from_millis(250))
        .start()
        .await
        .expect("the emulator starts")
}

fn target(emulator: &Emulator) -> Target {
    Target {
        account: demo::ACCOUNT.to_lowercase(),
        user: demo::USER.into(),
        role: Some(demo::ROLE.into()),
        private_key: Secret::new(demo::ENCRYPTED_PRIVATE_KEY_PEM),
        passphrase: Secret::new(demo::PRIVATE_KEY_PASSPHRASE),
        database: demo::DATABASE.into(),
        warehouse: demo::WAREHOUSE.into(),
        account_url: Some(emulator.base_url()),
    }
}

/// The account's waits, short: discarded rows get twice the commit lag to show up.
fn options() -> Options {
    Options {
        discard_settle: Duration::from_millis(500),
        commit_timeout: Duration::from_secs(20),
        poll: Duration::from_millis(20),
        ..Options::default()
    }
}

fn failing(report: &Report) -> Vec<&'static str> {
    report
        .checks
        .iter()
        .filter(|c| c.outcome.is_err())
        .map(|c| c.name)
        .collect()
}

#[tokio::test]
async fn every_item_passes_against_the_emulator() {
    let emulator = emulator().await;
    let report = run(&target(&emulator), &options()).await;
    assert!(report.passed(), "{report}");
    assert_eq!(report.checks.len(), 12, "{report}");
    // The emulator takes any token: the longest tried.
    assert_eq!(report.longest_offset_token, Some(65_536));
    for name in [DISCARDED, WAITING_OPEN] {
        let seen = report.check(name).unwrap().outcome.as_ref().unwrap();
        assert!(
            seen.contains("attempt 1") || seen.starts_with("waited"),
            "{seen}"
        );
    }
    // Cleaned up: the schema, its table and its channels are gone.
    assert!(
        !emulator
            .control()
            .schemas()
            .iter()
            .any(|(_, schema)| *schema == report.schema),
        "{report}"
    );
    assert!(emulator.control().rest_channels().is_empty());
}

#[tokio::test]
async fn counters_that_lag_the_committed_token_fail_their_item() {
    let emulator = emulator().await;
    emulator.control().set_counters_lag(true);
    let report = run(&target(&emulator), &options()).await;
    let failed = failing(&report);
    assert!(failed.contains(&COUNTERS), "{report}");
    let why = report
        .check(COUNTERS)
        .unwrap()
        .outcome
        .as_ref()
        .unwrap_err();
    assert!(why.contains("the counters say"), "{why}");
    assert!(report.check(SCHEMA_DROPPED).unwrap().outcome.is_ok());
}

#[tokio::test]
async fn a_target_that_refuses_the_key_fails_every_item_and_says_so() {
    let emulator = emulator().await;
    let mut target = target(&emulator);
    target.passphrase = Secret::new("not the passphrase");
    let report = run(&target, &options()).await;
    assert!(!report.passed());
    assert_eq!(report.checks.len(), 12, "{report}");
    let first = report.checks[0].outcome.as_ref().unwrap_err();
    assert!(
        first.contains("passphrase") || first.contains("key"),
        "{first}"
    );
    assert!(
        report.checks[1..report.checks.len() - 1]
            .iter()
            .all(|c| c.outcome.as_ref().is_err_and(|e| e.starts_with("not run"))),
        "{report}"
    );
    assert!(!report.to_string().contains("not the passphrase"));
}
