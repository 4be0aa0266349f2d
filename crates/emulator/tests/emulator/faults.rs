//! Every scripted fault through the Rust handle: failures, dropped connections (applied or not),
//! latency, stalls, invalidation and the bulk-status lie.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;
use snowpipe_emulator::{DropMode, Endpoint, Failure, demo};

use crate::common::{HOUR, Http, create_request, rows, start};

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
