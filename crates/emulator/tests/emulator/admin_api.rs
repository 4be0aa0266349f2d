//! The admin API: every route over HTTP, doing what the Rust handle does.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{HOUR, Http, rows, start};

async fn admin(
    http: &Http,
    method: Method,
    route: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let reply = http
        .send(method, &format!("/_emulator/{route}"), &[], bytes)
        .await;
    (reply.status, reply.json())
}

async fn post(http: &Http, route: &str, body: Value) -> Value {
    let (status, b) = admin(http, Method::POST, route, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{route}: {b}");
    b
}

async fn get(http: &Http, route: &str) -> Value {
    let (status, b) = admin(http, Method::GET, route, None).await;
    assert_eq!(status, StatusCode::OK, "{route}: {b}");
    b
}

#[tokio::test]
async fn inspection_routes() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    let b = post(&http, "sql", json!({"statement": "CREATE TABLE T2 (\"a b\" INT)", "database": "DEMO_DB", "schema": "PUBLIC"})).await;
    assert_eq!(b["message"], "Table T2 successfully created.");
    let (status, b) = admin(
        &http,
        Method::POST,
        "sql",
        Some(json!({"statement": "SELECT 1"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["error"]["code"], "001003");

    let ch = http.open("d", "EVENTS").await;
    http.insert(&ch, rows("a", 0..2), "3").await;
    let tables = get(&http, "tables").await;
    let events = tables
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "EVENTS")
        .unwrap();
    assert_eq!(events["committedRows"], 2);
    assert_eq!(
        events["columns"][0],
        json!({"name": "ID", "type": "VARCHAR(16777216)", "nullable": false})
    );
    let schemas = get(&http, "schemas").await;
    assert!(
        schemas
            .as_array()
            .unwrap()
            .contains(&json!({"database": "DEMO_DB", "schema": "PUBLIC"}))
    );
    let t2 = get(&http, "table?database=demo_db&schema=public&table=t2").await;
    assert_eq!(t2["columns"][0]["name"], "a b");
    let found = get(&http, "rows?database=DEMO_DB&schema=PUBLIC&table=EVENTS").await;
    assert_eq!(found, json!([{"ID": "a0"}, {"ID": "a1"}]));
    let (status, _) = admin(
        &http,
        Method::GET,
        "rows?database=DEMO_DB&schema=PUBLIC&table=NOPE",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = admin(&http, Method::GET, "rows?database=DEMO_DB", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let channels = get(&http, "channels").await;
    assert_eq!(channels[0]["channelId"], ch);
    assert_eq!(channels[0]["committedOffset"], "3");
    assert_eq!(
        get(&http, &format!("channels/{ch}")).await["latestInsertedOffset"],
        "3"
    );
    let (status, _) = admin(&http, Method::GET, "channels/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let calls = get(&http, "calls").await;
    assert_eq!(
        calls[1],
        json!({"seq": 2, "endpoint": "insert", "channelId": ch, "offset": "3", "rowCount": 2,
                                "statement": null, "status": 200, "fault": null})
    );
    let (status, _) = admin(&http, Method::DELETE, "calls", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(get(&http, "calls").await, json!([]));
    emu.shutdown().await;
}

#[tokio::test]
async fn fault_routes() {
    let emu = start(HOUR).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;

    post(
        &http,
        "faults/fail",
        json!({"endpoint": "status", "count": 1, "status": 429}),
    )
    .await;
    assert_eq!(
        http.get(&format!("/channels/{ch}/status")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    post(
        &http,
        "faults/fail",
        json!({"endpoint": "create_channel", "code": "ERR_AUTHENTICATION_FAILED", "httpCode": 401}),
    )
    .await;
    let b = http
        .post_json(
            "/channels",
            &crate::common::create_request("d", "PUBLIC", "EVENTS"),
        )
        .await
        .json();
    assert_eq!(
        (b["code"].clone(), b["snowflakeAPIHttpCode"].clone()),
        (json!("ERR_AUTHENTICATION_FAILED"), json!(401))
    );
    let (status, _) = admin(
        &http,
        Method::POST,
        "faults/fail",
        Some(json!({"endpoint": "insert"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = admin(
        &http,
        Method::POST,
        "faults/fail",
        Some(json!({"endpoint": "nowhere", "status": 500})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    post(
        &http,
        "faults/drop",
        json!({"endpoint": "health", "applied": false}),
    )
    .await;
    assert!(
        http.try_send(Method::GET, "/health", &[], Vec::new())
            .await
            .is_err()
    );
    post(
        &http,
        "faults/latency",
        json!({"endpoint": "health", "millis": 1}),
    )
    .await;
    post(
        &http,
        "faults/fail",
        json!({"endpoint": "health", "count": 3, "status": 500}),
    )
    .await;
    post(&http, "faults/clear", json!({})).await;
    assert_eq!(http.get("/health").await.status, StatusCode::OK);

    http.insert(&ch, rows("a", 0..1), "1").await;
    assert_eq!(
        post(&http, "stall", json!({"channelId": ch})).await["known"],
        true
    );
    assert_eq!(post(&http, "flush", json!({})).await["committed"], 0);
    assert_eq!(post(&http, "resume", json!({})).await["known"], true);
    assert_eq!(post(&http, "flush", json!({})).await["committed"], 1);
    assert_eq!(http.status(&ch).await.1, "1");

    // An absurd lag is accepted and simply never falls due.
    post(&http, "commit-lag", json!({"millis": u64::MAX})).await;
    http.insert(&ch, rows("b", 0..1), "2").await;
    assert_eq!(http.status(&ch).await.1, "1");
    post(&http, "commit-lag", json!({"millis": 0})).await;
    assert_eq!(get(&http, "commit-lag").await["millis"], 0);
    assert_eq!(emu.control().commit_lag(), Duration::ZERO);

    assert_eq!(
        post(&http, &format!("channels/{ch}/invalidate"), json!({})).await["known"],
        true
    );
    post(&http, "bulk-status-lie", json!({"enabled": true})).await;
    let bulk = http
        .get(&format!("/channels/bulk-status?channelIds={ch}"))
        .await
        .json();
    assert_eq!(bulk["statuses"][&ch]["valid"], true);
    assert!(!http.status(&ch).await.0);

    post(&http, "restart", json!({})).await;
    assert_eq!(
        http.get(&format!("/channels/{ch}/status")).await.status,
        StatusCode::NOT_FOUND
    );
    let (status, _) = admin(&http, Method::POST, "stall", Some(json!({"bogus": 1}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The admin API itself is never logged.
    assert!(
        emu.control()
            .calls()
            .iter()
            .all(|c| c.channel_id.is_none() || c.channel_id.as_deref() == Some(ch.as_str()))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn trap_routes() {
    let emu = start(HOUR).await;
    let http = std::sync::Arc::new(Http::new(&emu));
    post(&http, "superseded-flush", json!({"enabled": true})).await;
    let old = http.open("d", "EVENTS").await;
    http.insert(&old, rows("a", 0..1), "1").await;

    // An insert held in transit, given up on by its client, arriving after a reopen superseded its id.
    post(
        &http,
        "faults/in-transit",
        json!({"count": 1, "millis": 500}),
    )
    .await;
    let sent = {
        let (http, old) = (std::sync::Arc::clone(&http), old.clone());
        tokio::spawn(async move {
            tokio::time::timeout(
                Duration::from_millis(50),
                http.insert(&old, rows("late", 0..1), "2"),
            )
            .await
            .is_ok()
        })
    };
    assert!(emu.control().wait_for_in_transit(1).await);
    let new = http.open("d", "EVENTS").await;
    assert!(!sent.await.unwrap(), "the client gave up");
    // Open, insert, reopen, then the held insert once processed.
    assert!(emu.control().wait_for_calls(4).await);
    let calls = get(&http, "calls").await;
    assert_eq!(
        (
            calls[3]["offset"].clone(),
            calls[3]["status"].clone(),
            calls[3]["fault"].clone()
        ),
        (json!("2"), json!(200), json!("in_transit"))
    );
    // Refused by the superseded id, which still flushes what it had.
    let info = get(&http, &format!("channels/{old}")).await;
    assert_eq!(
        (
            info["valid"].clone(),
            info["superseded"].clone(),
            info["latestInsertedOffset"].clone(),
            info["bufferedRows"].clone()
        ),
        (json!(true), json!(true), json!("1"), json!(1))
    );
    assert_eq!(http.status(&new).await.1, "");
    assert_eq!(post(&http, "flush", json!({})).await["committed"], 1);
    assert_eq!(
        http.status(&old).await,
        (false, "1".to_owned(), "1".to_owned())
    );
    assert_eq!(http.status(&new).await.1, "1", "the name's token moved");
    let (status, _) = admin(
        &http,
        Method::POST,
        "faults/in-transit",
        Some(json!({"count": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = admin(
        &http,
        Method::POST,
        "superseded-flush",
        Some(json!({"on": true})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A token rewritten by hand.
    let b = post(
        &http,
        &format!("channels/{new}/committed-offset"),
        json!({"offset": "v2.by-hand"}),
    )
    .await;
    assert_eq!(b["known"], true);
    assert_eq!(http.status(&new).await.1, "v2.by-hand");
    assert_eq!(
        get(&http, &format!("channels/{new}")).await["committedOffset"],
        "v2.by-hand"
    );
    let b = post(
        &http,
        "channels/nope/committed-offset",
        json!({"offset": "x"}),
    )
    .await;
    assert_eq!(b["known"], false);
    let (status, _) = admin(
        &http,
        Method::POST,
        &format!("channels/{new}/committed-offset"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A channel name dropped by hand.
    assert_eq!(
        post(&http, &format!("channels/{new}/drop-name"), json!({})).await["known"],
        true
    );
    for id in [&old, &new] {
        assert_eq!(
            http.get(&format!("/channels/{id}/status")).await.status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        post(&http, &format!("channels/{new}/drop-name"), json!({})).await["known"],
        false
    );
    let fresh = http.open("d", "EVENTS").await;
    assert_eq!(http.status(&fresh).await.1, "", "the token went with it");
    emu.shutdown().await;
}
