//! Every scripted fault through the Rust handle: failures, dropped connections (applied or not),
//! latency, stalls, invalidation, the bulk-status lie, and the service-side traps of the exact-outcomes
//! design: a superseded id that keeps flushing, a token rewritten by hand, a dropped channel name, an
//! insert still in transit when the channel is reopened.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;
use snowpipe_emulator::{DropMode, Endpoint, Failure, demo};

use crate::common::{HOUR, Http, create_request, rows, start};

fn committed_ids(emu: &snowpipe_emulator::Emulator) -> Vec<String> {
    emu.control()
        .rows(demo::DATABASE, "PUBLIC", "EVENTS")
        .unwrap()
        .iter()
        .map(|r| r["ID"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn fail_next_answers_the_status_then_recovers() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    emu.control()
        .fail_next(Endpoint::Insert, 2, Failure::Status { status: 503 });
    for _ in 0..2 {
        assert_eq!(
            http.insert(&ch, rows("a", 0..1), "1").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(http.status(&ch).await.2, "", "failed calls take no effect");
    assert_eq!(
        http.insert(&ch, rows("a", 0..1), "1").await.json()["success"],
        true
    );
    let faults: Vec<_> = emu
        .control()
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == Endpoint::Insert)
        .map(|c| (c.endpoint, c.status, c.fault))
        .collect();
    assert_eq!(
        faults,
        [
            (Endpoint::Insert, Some(503), Some("fail".to_owned())),
            (Endpoint::Insert, Some(503), Some("fail".to_owned())),
            (Endpoint::Insert, Some(200), None),
        ]
    );
    for endpoint in [
        Endpoint::Status,
        Endpoint::BulkStatus,
        Endpoint::GetChannel,
        Endpoint::Health,
    ] {
        emu.control()
            .fail_next(endpoint, 1, Failure::Status { status: 500 });
    }
    assert_eq!(
        http.get(&format!("/channels/{ch}/status")).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        http.get("/channels/bulk-status").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        http.get(&format!("/channels/{ch}")).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        http.get("/health").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(http.get("/health").await.status, StatusCode::OK);
    emu.shutdown().await;
}

#[tokio::test]
async fn fail_next_create_channel_with_a_code() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    emu.control().fail_next(
        Endpoint::CreateChannel,
        1,
        Failure::ChannelCode {
            code: "ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED".to_owned(),
            http_code: 404,
        },
    );
    let reply = http
        .post_json("/channels", &create_request("d", "PUBLIC", "EVENTS"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let b = reply.json();
    assert_eq!(
        (
            b["success"].clone(),
            b["code"].clone(),
            b["snowflakeAPIHttpCode"].clone()
        ),
        (
            json!(false),
            json!("ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"),
            json!(404)
        )
    );
    assert!(emu.control().channels().is_empty());
    http.open("d", "EVENTS").await;
    emu.shutdown().await;
}

#[tokio::test]
async fn dropped_connections_applied_or_not() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    let path = format!("/channels/{ch}/insert");
    let body = |offset: &str| {
        json!({"rows": rows(offset, 0..1), "offset": offset})
            .to_string()
            .into_bytes()
    };

    emu.control()
        .drop_next(Endpoint::Insert, 1, DropMode::NotApplied);
    let err = http
        .try_send(http::Method::POST, &path, &[], body("1"))
        .await;
    assert!(err.is_err(), "the client must see the connection drop");
    assert_eq!(http.status(&ch).await.2, "", "not applied");

    emu.control()
        .drop_next(Endpoint::Insert, 1, DropMode::Applied);
    let err = http
        .try_send(http::Method::POST, &path, &[], body("2"))
        .await;
    assert!(err.is_err());
    assert_eq!(
        http.status(&ch).await,
        (true, "2".to_owned(), "2".to_owned()),
        "applied"
    );

    let calls = emu.control().calls();
    let dropped: Vec<_> = calls
        .iter()
        .filter(|c| c.endpoint == Endpoint::Insert)
        .collect();
    assert_eq!(dropped[0].status, None);
    assert_eq!(dropped[0].fault.as_deref(), Some("drop_not_applied"));
    assert_eq!(dropped[1].fault.as_deref(), Some("drop_applied"));
    assert_eq!(
        (dropped[1].offset.as_deref(), dropped[1].row_count),
        (Some("2"), Some(1))
    );

    // Create-channel dropped after applying: a channel exists that the client never heard of.
    emu.control()
        .drop_next(Endpoint::CreateChannel, 1, DropMode::Applied);
    let body = create_request("d", "PUBLIC", "EVENTS")
        .to_string()
        .into_bytes();
    assert!(
        http.try_send(http::Method::POST, "/channels", &[], body)
            .await
            .is_err()
    );
    assert!(
        !http.status(&ch).await.0,
        "the unseen reopen invalidated the old id"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn latency_delays_one_endpoint() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    emu.control()
        .set_latency(Endpoint::Health, Duration::from_millis(150));
    let started = Instant::now();
    assert_eq!(http.get("/health").await.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
    emu.control().set_latency(Endpoint::Health, Duration::ZERO);
    emu.shutdown().await;
}

#[tokio::test]
async fn stalled_commits_stop_the_committed_offset() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    let a = http.open("a", "EVENTS").await;
    let b = http.open("b", "EVENTS").await;
    assert!(emu.control().stall_commits(Some(&a)));
    assert!(!emu.control().stall_commits(Some("nope")));
    http.insert(&a, rows("a", 0..1), "3").await;
    http.insert(&b, rows("b", 0..1), "4").await;
    assert_eq!(http.status(&a).await, (true, String::new(), "3".to_owned()));
    assert_eq!(
        http.status(&b).await,
        (true, "4".to_owned(), "4".to_owned())
    );
    assert_eq!(emu.control().flush(), 0, "flush respects stalls");
    assert!(emu.control().channel(&a).unwrap().stalled);

    emu.control().resume_commits(Some(&a));
    assert_eq!(emu.control().flush(), 1);
    assert_eq!(http.status(&a).await.1, "3");

    emu.control().stall_commits(None);
    http.insert(&b, rows("b", 1..2), "5").await;
    assert_eq!(http.status(&b).await.1, "4");
    emu.control().resume_commits(None);
    emu.control().flush();
    assert_eq!(http.status(&b).await.1, "5");
    emu.shutdown().await;
}

#[tokio::test]
async fn stalled_sync_delete_waits_until_resumed() {
    let emu = start(HOUR).await;
    let http = std::sync::Arc::new(Http::new(&emu));
    let ch = http.open("d", "EVENTS").await;
    http.insert(&ch, rows("a", 0..1), "1").await;
    emu.control().stall_commits(Some(&ch));
    let pending = {
        let (http, ch) = (std::sync::Arc::clone(&http), ch.clone());
        tokio::spawn(async move {
            http.delete(&format!("/channels/{ch}?sync=true"))
                .await
                .status
        })
    };
    assert!(emu.control().wait_for_sync_deletes(1).await);
    assert_eq!(emu.control().flush(), 0);
    assert!(!pending.is_finished());
    emu.control().resume_commits(Some(&ch));
    emu.control().flush();
    assert_eq!(pending.await.unwrap(), StatusCode::NO_CONTENT);
    assert_eq!(
        emu.control()
            .rows(demo::DATABASE, "PUBLIC", "EVENTS")
            .unwrap()
            .len(),
        1
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn invalidated_channels_and_the_bulk_status_lie() {
    let emu = start(HOUR).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    http.insert(&ch, rows("a", 0..1), "1").await;
    assert!(emu.control().invalidate_channel(&ch));
    assert!(!emu.control().invalidate_channel("nope"));
    // Uncommitted rows are lost and the channel never commits again.
    assert_eq!(emu.control().flush(), 0);
    assert_eq!(
        http.status(&ch).await,
        (false, String::new(), String::new())
    );
    let path = format!("/channels/bulk-status?channelIds={ch}");
    let bulk = |lie: bool| {
        emu.control().set_bulk_status_lie(lie);
        http.get(&path)
    };
    assert_eq!(bulk(false).await.json()["statuses"][&ch]["valid"], false);
    assert_eq!(bulk(true).await.json()["statuses"][&ch]["valid"], true);
    assert!(!http.status(&ch).await.0, "single status tells the truth");
    assert_eq!(
        http.insert(&ch, rows("a", 1..2), "2").await.json()["success"],
        false
    );
    emu.control().clear_faults();
    assert_eq!(bulk(false).await.json()["statuses"][&ch]["valid"], false);
    emu.shutdown().await;
}

#[tokio::test]
async fn the_call_log_records_what_was_called() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    http.insert(&ch, rows("a", 0..3), "9").await;
    http.get(&format!("/channels/bulk-status?channelIds={ch}"))
        .await;
    http.delete(&format!("/channels/{ch}?sync=false")).await;
    assert!(emu.control().wait_for_calls(4).await);
    let calls = emu.control().calls();
    let summary: Vec<_> = calls
        .iter()
        .map(|c| {
            (
                c.endpoint,
                c.channel_id.clone(),
                c.offset.clone(),
                c.row_count,
                c.status,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                Endpoint::CreateChannel,
                Some(ch.clone()),
                None,
                None,
                Some(200)
            ),
            (
                Endpoint::Insert,
                Some(ch.clone()),
                Some("9".to_owned()),
                Some(3),
                Some(200)
            ),
            (Endpoint::BulkStatus, None, None, None, Some(200)),
            (
                Endpoint::DeleteChannel,
                Some(ch.clone()),
                None,
                None,
                Some(202)
            ),
        ]
    );
    assert_eq!(
        calls.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    emu.control().clear_calls();
    assert!(emu.control().calls().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn a_superseded_id_keeps_flushing_after_the_reopen() {
    let emu = start(HOUR).await;
    let http = Http::new(&emu);
    emu.control().set_superseded_flush(true);
    let old = http.open("d", "EVENTS").await;
    http.insert(&old, rows("a", 0..1), "a1").await;
    emu.control().flush();
    http.insert(&old, rows("a", 1..2), "a2").await;
    let new = http.open("d", "EVENTS").await;
    // The new id starts from the name's token as it stands at the open.
    assert_eq!(
        http.status(&new).await,
        (true, "a1".to_owned(), "a1".to_owned())
    );
    // The old id takes no inserts but reports valid, with its own tokens, while it has rows to flush.
    let refused = http.insert(&old, rows("x", 0..1), "x").await.json();
    assert_eq!(
        (refused["success"].clone(), refused["code"].clone()),
        (json!(false), json!("ERR_CHANNEL_INVALID"))
    );
    assert_eq!(
        http.status(&old).await,
        (true, "a1".to_owned(), "a2".to_owned())
    );
    let bulk = http
        .get(&format!("/channels/bulk-status?channelIds={old}"))
        .await
        .json();
    assert_eq!(bulk["statuses"][&old]["valid"], true);
    assert!(emu.control().channel(&old).unwrap().superseded);
    http.insert(&new, rows("b", 0..1), "b1").await;

    // Both flush in insert order: the old id's row first, so the new id's token is the one left.
    assert_eq!(emu.control().flush(), 2);
    assert_eq!(committed_ids(&emu), ["a0", "a1", "b0"]);
    assert_eq!(
        http.status(&old).await,
        (false, "a2".to_owned(), "a2".to_owned()),
        "flushed, then retired"
    );
    assert!(!emu.control().channel(&old).unwrap().superseded);
    assert_eq!(
        http.status(&new).await,
        (true, "b1".to_owned(), "b1".to_owned())
    );

    // The trap: the old flush commits after the reopen answered, moving the name's token behind the
    // new id's back (here the old id was stalled while the new one committed).
    http.insert(&new, rows("b", 1..2), "b2").await;
    emu.control().stall_commits(Some(&new));
    let newer = http.open("d", "EVENTS").await;
    assert_eq!(http.status(&newer).await.1, "b1");
    http.insert(&newer, rows("c", 0..1), "c1").await;
    assert_eq!(emu.control().flush(), 1);
    assert_eq!(http.status(&newer).await.1, "c1");
    emu.control().resume_commits(Some(&new));
    assert_eq!(emu.control().flush(), 1);
    assert_eq!(
        http.status(&newer).await,
        (true, "b2".to_owned(), "c1".to_owned()),
        "the last request to commit decides, not the greatest"
    );
    let again = http.open("d", "EVENTS").await;
    assert_eq!(http.status(&again).await.1, "b2");
    assert_eq!(committed_ids(&emu), ["a0", "a1", "b0", "c0", "b1"]);

    // Off (and after clear_faults), a reopen drops the old id's rows as before.
    emu.control().clear_faults();
    http.insert(&again, rows("d", 0..1), "d1").await;
    let last = http.open("d", "EVENTS").await;
    assert!(!http.status(&again).await.0);
    assert_eq!(emu.control().flush(), 0);
    assert_eq!(http.status(&last).await.1, "b2");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_committed_token_rewritten_by_hand() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    let old = http.open("d", "EVENTS").await;
    let ch = http.open("d", "EVENTS").await;
    http.insert(&ch, rows("a", 0..1), "5").await;
    // Through any id of the name: the name's token and its current id's change; latest inserted is
    // the client's own.
    assert!(emu.control().set_committed_offset(&old, "v2.by-hand"));
    assert_eq!(
        http.status(&ch).await,
        (true, "v2.by-hand".to_owned(), "5".to_owned())
    );
    assert!(!emu.control().set_committed_offset("nope", "x"));
    emu.control().restart();
    let reopened = http.open("d", "EVENTS").await;
    assert_eq!(
        http.status(&reopened).await,
        (true, "v2.by-hand".to_owned(), "v2.by-hand".to_owned()),
        "a reopen starts from it, across restarts"
    );
    // The next commit replaces it as any commit does.
    http.insert(&reopened, rows("a", 1..2), "6").await;
    assert_eq!(http.status(&reopened).await.1, "6");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_dropped_channel_name_is_forgotten() {
    let emu = start(HOUR).await;
    let http = Http::new(&emu);
    let old = http.open("d", "EVENTS").await;
    http.insert(&old, rows("a", 0..1), "1").await;
    emu.control().flush();
    let ch = http.open("d", "EVENTS").await;
    let other = http.open("e", "EVENTS").await;
    http.insert(&ch, rows("b", 0..1), "2").await;
    http.insert(&other, rows("c", 0..1), "3").await;
    assert!(emu.control().drop_channel_name(&ch));
    for id in [&old, &ch] {
        assert_eq!(
            http.get(&format!("/channels/{id}/status")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            http.insert(id, rows("x", 0..1), "9").await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            http.get(&format!("/channels/{id}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
    let bulk = http
        .get(&format!(
            "/channels/bulk-status?channelIds={old}&channelIds={ch}&channelIds={other}"
        ))
        .await
        .json();
    assert_eq!(bulk["notFound"], json!([old, ch]));
    assert_eq!(bulk["statuses"][&other]["latestInsertedOffset"], "3");
    // Buffered rows are lost; other names are untouched.
    assert_eq!(emu.control().flush(), 1);
    assert_eq!(committed_ids(&emu), ["a0", "c0"]);
    assert!(!emu.control().drop_channel_name(&ch), "no longer known");
    let fresh = http.open("d", "EVENTS").await;
    assert_eq!(
        http.status(&fresh).await,
        (true, String::new(), String::new()),
        "the committed token is gone"
    );
    emu.shutdown().await;
}

/// Sends an insert the client gives up on after `timeout`; answers whether it got an answer in time.
async fn insert_with_timeout(
    http: &Http,
    channel: &str,
    row: &str,
    offset: &str,
    timeout: Duration,
) -> bool {
    tokio::time::timeout(timeout, http.insert(channel, rows(row, 0..1), offset))
        .await
        .is_ok()
}

#[tokio::test]
async fn an_insert_in_transit_lands_after_the_client_gave_up() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    emu.control()
        .delay_next_insert(1, Duration::from_millis(150));
    assert!(
        !insert_with_timeout(&http, &ch, "a", "7", Duration::from_millis(20)).await,
        "the client times out first"
    );
    // Still the current id when it arrives: applied.
    assert!(emu.control().wait_for_commit(&ch, "7").await);
    assert_eq!(
        http.status(&ch).await,
        (true, "7".to_owned(), "7".to_owned())
    );
    assert_eq!(committed_ids(&emu), ["a0"]);
    let held: Vec<_> = emu
        .control()
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == Endpoint::Insert)
        .map(|c| (c.offset, c.status, c.fault))
        .collect();
    assert_eq!(
        held,
        [(
            Some("7".to_owned()),
            Some(200),
            Some("in_transit".to_owned())
        )]
    );
    // The delay is used up: the next insert is answered at once.
    assert!(insert_with_timeout(&http, &ch, "b", "8", HOUR).await);
    emu.shutdown().await;
}

#[tokio::test]
async fn an_insert_in_transit_is_refused_after_a_reopen() {
    let emu = start(Duration::ZERO).await;
    let http = std::sync::Arc::new(Http::new(&emu));
    let old = http.open("d", "EVENTS").await;
    http.insert(&old, rows("a", 0..1), "1").await;
    emu.control()
        .delay_next_insert(1, Duration::from_millis(500));
    let sent = {
        let (http, old) = (std::sync::Arc::clone(&http), old.clone());
        tokio::spawn(async move {
            insert_with_timeout(&http, &old, "lost", "2", Duration::from_millis(50)).await
        })
    };
    // The emulator holds the request; the client gives up and reopens meanwhile.
    assert!(emu.control().wait_for_in_transit(1).await);
    let new = http.open("d", "EVENTS").await;
    assert!(!sent.await.unwrap(), "the client timed out");
    // Open, insert, reopen, then the held insert once it is processed.
    assert!(emu.control().wait_for_calls(4).await);
    let calls = emu.control().calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[2].endpoint, Endpoint::CreateChannel);
    let landed = calls[3].clone();
    assert_eq!(
        (
            landed.endpoint,
            landed.channel_id.as_deref(),
            landed.offset.as_deref(),
            landed.fault.as_deref()
        ),
        (
            Endpoint::Insert,
            Some(old.as_str()),
            Some("2"),
            Some("in_transit")
        )
    );
    // The old id refused it: nothing of it is anywhere.
    assert_eq!(
        http.status(&old).await,
        (false, "1".to_owned(), "1".to_owned())
    );
    assert_eq!(
        http.status(&new).await,
        (true, "1".to_owned(), "1".to_owned())
    );
    assert_eq!(emu.control().flush(), 0);
    assert_eq!(committed_ids(&emu), ["a0"]);
    emu.shutdown().await;
}
