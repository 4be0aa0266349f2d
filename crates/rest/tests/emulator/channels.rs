//! Channels through the emulator: a reopen by another writer makes the first one's token stale, invalid
//! channels, an open that waits for uncommitted rows (bounded, discarding nothing), the open's
//! `offset_token`, tables whose names need quoting, and a dropped channel coming back anew.

use std::{sync::Arc, time::Duration};

use snowpipe_api::{
    Backend, BackendExt, DropOptions, Error, OpenOptions, Progress, RowCounters, TableRef,
};
use snowpipe_emulator::{Endpoint, demo};
use snowpipe_rest::RestClient;

use crate::support::{
    self, Waits, calls, channel, config, landed_ids, open, quoted, requests, rest_name, rows,
    setup_with,
};

fn counters(progress: &Progress) -> RowCounters {
    match progress {
        Progress::Counters(counters) => counters.clone(),
        other => panic!("counters expected: {other:?}"),
    }
}

#[tokio::test]
async fn a_reopen_by_another_writer_makes_the_first_writers_token_stale() {
    let setup = support::setup().await;
    let channel = channel("TRACKS");
    let first = open(&setup.client, &channel).await;
    setup
        .client
        .append_rows(&first, rows("a", 1), "1")
        .await
        .unwrap();
    // Another process, its own client, opens the same channel.
    let waits = Arc::new(Waits::default());
    let other = RestClient::new(config(&setup.emulator, &waits)).unwrap();
    let second = open(&other, &channel).await;
    let error = setup
        .client
        .append_rows(&first, rows("b", 1), "2")
        .await
        .unwrap_err();
    let Error::Reopen { code, message, .. } = &error.error else {
        panic!("{error:?}");
    };
    assert_eq!(code, "STALE_CONTINUATION_TOKEN_SEQUENCER");
    assert!(message.contains(&channel.name()), "{message}");
    assert!(error.accepted.is_empty());
    // The stale token is gone: without a reopen the client refuses at once, sending nothing.
    let sent = calls(setup.control(), Endpoint::RestAppend).len();
    let error = setup
        .client
        .append_rows(&first, rows("b", 1), "2")
        .await
        .unwrap_err();
    assert_eq!(error.error.code(), "NOT_OPEN");
    assert_eq!(calls(setup.control(), Endpoint::RestAppend).len(), sent);
    other.append_rows(&second, rows("c", 1), "3").await.unwrap();
    // Reopened, the first client resumes after the committed token, superseding the second.
    let reopened = setup
        .client
        .open_channel(&channel, &OpenOptions::wait())
        .await
        .unwrap();
    assert_eq!(reopened.status.unwrap().committed.as_deref(), Some("3"));
    setup
        .client
        .append_rows(&reopened.handle, rows("d", 1), "4")
        .await
        .unwrap();
    assert!(other.append_rows(&second, rows("e", 1), "5").await.is_err());
    assert_eq!(
        landed_ids(setup.control(), &channel.table),
        ["a0", "c0", "d0"]
    );
}

#[tokio::test]
async fn an_invalid_channel_says_so_refuses_appends_and_works_again_once_reopened() {
    let setup = support::setup().await;
    let channel = channel("TRACKS");
    let handle = open(&setup.client, &channel).await;
    setup
        .client
        .append_rows(&handle, rows("a", 1), "1")
        .await
        .unwrap();
    assert!(
        setup
            .control()
            .invalidate_rest_channel(&rest_name(&channel))
    );
    let status = setup.client.channel_status(&handle).await.unwrap().unwrap();
    assert!(!status.valid, "{status:?}");
    assert_eq!(status.committed.as_deref(), Some("1"));
    let error = setup
        .client
        .append_rows(&handle, rows("b", 1), "2")
        .await
        .unwrap_err();
    assert!(error.error.is_reopen(), "{error:?}");
    let reopened = setup
        .client
        .open_channel(&channel, &OpenOptions::wait())
        .await
        .unwrap();
    let status = reopened.status.unwrap();
    assert!(status.valid);
    assert_eq!(status.committed.as_deref(), Some("1"));
    setup
        .client
        .append_rows(&reopened.handle, rows("c", 1), "3")
        .await
        .unwrap();
    assert_eq!(landed_ids(setup.control(), &channel.table), ["a0", "c0"]);
}

#[tokio::test]
async fn an_open_waits_for_uncommitted_rows_within_its_bound_and_discards_nothing() {
    let setup = setup_with(|c| c.uncommitted_wait = Duration::from_secs(1)).await;
    let channel = channel("TRACKS");
    let name = rest_name(&channel);
    let handle = open(&setup.client, &channel).await;
    assert!(setup.control().stall_rest_commits(&name));
    setup
        .client
        .append_rows(&handle, rows("a", 2), "1")
        .await
        .unwrap();
    setup
        .client
        .append_rows(&handle, rows("b", 1), "2")
        .await
        .unwrap();
    // Still uncommitted when the bound runs out: retry-kind, and both requests still wait to commit.
    let error = setup
        .client
        .open_channel(&channel, &OpenOptions::wait())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Retryable { .. }), "{error:?}");
    assert_eq!(error.code(), "ERR_CHANNEL_HAS_UNCOMMITTED_DATA");
    assert!(
        error.to_string().contains("nothing was discarded"),
        "{error}"
    );
    let waited: Duration = setup.waits.waits().iter().sum();
    assert_eq!(
        setup.waits.waits(),
        [200, 400, 800].map(Duration::from_millis),
        "doubling from 200 ms until a second had passed"
    );
    assert!(waited >= Duration::from_secs(1));
    let info = setup.control().rest_channel(&name).unwrap();
    assert_eq!(info.pending.len(), 2, "{info:?}");
    let opens: Vec<Option<u16>> = requests(setup.control(), &channel, "open")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        opens,
        [Some(200), Some(409), Some(409), Some(409), Some(409)]
    );

    // Commits resume while the next open waits: it opens at the last end token.
    setup.waits.clear();
    let control = setup.control().clone();
    let resumed = name.clone();
    setup.waits.at_wait(2, move || {
        assert!(control.resume_rest_commits(&resumed));
        control.flush();
    });
    let opened = setup
        .client
        .open_channel(&channel, &OpenOptions::wait())
        .await
        .unwrap();
    assert_eq!(setup.waits.waits().len(), 2);
    let status = opened.status.unwrap();
    assert_eq!(status.committed.as_deref(), Some("2"));
    assert_eq!(counters(&status.progress).rows_inserted, 3);
    assert_eq!(
        landed_ids(setup.control(), &channel.table),
        ["a0", "a1", "b0"]
    );
}

#[tokio::test]
async fn an_open_that_discards_drops_uncommitted_rows_for_good() {
    let setup = support::setup().await;
    let channel = channel("TRACKS");
    let name = rest_name(&channel);
    let handle = open(&setup.client, &channel).await;
    setup
        .client
        .append_rows(&handle, rows("kept", 1), "1")
        .await
        .unwrap();
    assert!(setup.control().stall_rest_commits(&name));
    setup
        .client
        .append_rows(&handle, rows("gone", 1), "2")
        .await
        .unwrap();
    let opened = setup
        .client
        .open_channel(&channel, &OpenOptions::discard())
        .await
        .unwrap();
    assert_eq!(opened.status.unwrap().committed.as_deref(), Some("1"));
    assert!(setup.control().resume_rest_commits(&name));
    setup.control().flush();
    assert_eq!(landed_ids(setup.control(), &channel.table), ["kept0"]);
}

#[tokio::test]
async fn an_opens_offset_token_is_stored_answered_and_leaves_counters_alone() {
    let setup = support::setup().await;
    let channel = channel("TRACKS");
    let handle = open(&setup.client, &channel).await;
    setup
        .client
        .append_rows(&handle, rows("a", 2), "0000000002")
        .await
        .unwrap();
    let before = setup.client.channel_status(&handle).await.unwrap().unwrap();
    // Opaque text: the client must carry it byte for byte (spaces, quotes, non-ASCII, `&`, `%`).
    let fence = "e2.0000000002 \"fence\" &x=%20 é→✓";
    let opened = setup
        .client
        .open_channel(&channel, &OpenOptions::wait().with_offset_token(fence))
        .await
        .unwrap();
    let answered = opened.status.unwrap();
    assert_eq!(answered.committed.as_deref(), Some(fence));
    let status = setup
        .client
        .channel_status(&opened.handle)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.committed.as_deref(), Some(fence));
    assert_eq!(counters(&status.progress), counters(&before.progress));
    assert_eq!(counters(&answered.progress), counters(&before.progress));
    let sent: Vec<Option<String>> = requests(setup.control(), &channel, "open")
        .iter()
        .map(|r| r.offset_token.clone())
        .collect();
    assert_eq!(sent, [None, Some(fence.to_owned())]);
}

#[tokio::test]
async fn tables_whose_names_need_quotes_reach_exactly_that_table() {
    let setup = support::setup().await;
    let control = setup.control();
    control
        .execute_sql("CREATE SCHEMA \"odd schema\"", Some(demo::DATABASE), None)
        .unwrap();
    for table in ["events", "My Events", "EVENTS"] {
        control
            .execute_sql(
                &format!(
                    "CREATE TABLE \"odd schema\".{} (ID VARCHAR, N NUMBER)",
                    quoted(table)
                ),
                Some(demo::DATABASE),
                None,
            )
            .unwrap();
    }
    let on = |table: &str| snowpipe_api::ChannelRef {
        table: TableRef {
            database: demo::DATABASE.into(),
            schema: "odd schema".into(),
            table: table.into(),
            enable_iceberg: false,
        },
        destination: "dest".into(),
        instance: "0".into(),
    };
    let mut handles = Vec::new();
    for (table, token) in [("events", "1"), ("My Events", "2")] {
        let channel = on(table);
        let handle = open(&setup.client, &channel).await;
        setup
            .client
            .append_rows(&handle, rows(table, 1), token)
            .await
            .unwrap();
        handles.push(handle);
    }
    let statuses = setup.client.bulk_status(&handles).await.unwrap();
    let committed: Vec<Option<String>> = statuses
        .iter()
        .map(|s| s.as_ref().and_then(|s| s.committed.clone()))
        .collect();
    assert_eq!(committed, [Some("1".into()), Some("2".into())]);
    assert_eq!(landed_ids(control, &on("events").table), ["events0"]);
    assert_eq!(landed_ids(control, &on("My Events").table), ["My Events0"]);
    assert!(landed_ids(control, &on("EVENTS").table).is_empty());
    // A missing table of that quoted schema is a missing table, not another table's pipe.
    let error = setup
        .client
        .open_channel(&on("events "), &OpenOptions::discard())
        .await
        .unwrap_err();
    assert_eq!(
        error.missing_object(),
        Some(snowpipe_api::MissingObject::Table),
        "{error}"
    );
}

#[tokio::test]
async fn a_dropped_channel_comes_back_new_with_counters_at_zero() {
    let setup = support::setup().await;
    let channel = channel("TRACKS");
    let opened = setup
        .client
        .open_channel(&channel, &OpenOptions::discard())
        .await
        .unwrap();
    setup
        .client
        .append_rows(&opened.handle, rows("a", 2), "1")
        .await
        .unwrap();
    let before = setup
        .client
        .channel_status(&opened.handle)
        .await
        .unwrap()
        .unwrap();
    let before = counters(&before.progress);
    assert_eq!(before.rows_inserted, 2);
    setup
        .client
        .drop_channel(&opened.handle, &DropOptions::default())
        .await
        .unwrap();
    assert!(
        setup
            .client
            .channel_status(&opened.handle)
            .await
            .unwrap()
            .is_none()
    );
    // The dropped channel's token is gone from the client too.
    let error = setup
        .client
        .append_rows(&opened.handle, rows("b", 1), "2")
        .await
        .unwrap_err();
    assert!(error.error.is_reopen(), "{error:?}");
    let again = setup
        .client
        .open_channel(&channel, &OpenOptions::discard())
        .await
        .unwrap();
    let status = again.status.unwrap();
    assert_eq!(status.committed, None);
    let after = counters(&status.progress);
    assert_eq!(after.rows_inserted, 0);
    assert!(
        after.created_on_ms > before.created_on_ms,
        "{after:?} {before:?}"
    );
}

#[tokio::test]
async fn a_drop_that_waits_for_commits_is_bounded() {
    let setup = setup_with(|c| c.uncommitted_wait = Duration::from_millis(500)).await;
    let channel = channel("TRACKS");
    let name = rest_name(&channel);
    let handle = open(&setup.client, &channel).await;
    assert!(setup.control().stall_rest_commits(&name));
    setup
        .client
        .append_rows(&handle, rows("a", 1), "1")
        .await
        .unwrap();
    let error = setup
        .client
        .drop_channel(
            &handle,
            &DropOptions {
                wait_for_commit: true,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Retryable { .. }), "{error:?}");
    assert_eq!(
        setup.control().rest_channel(&name).unwrap().pending.len(),
        1
    );
    assert!(setup.control().resume_rest_commits(&name));
    setup.control().flush();
    setup
        .client
        .drop_channel(
            &handle,
            &DropOptions {
                wait_for_commit: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(landed_ids(setup.control(), &channel.table), ["a0"]);
}
