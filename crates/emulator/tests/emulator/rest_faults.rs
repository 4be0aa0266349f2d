//! The REST API's faults and inspection, through the Rust handle and the admin API, each counted in
//! calls: scripted answers in every body shape, a lost answer, invalidation, stalls, rows rejected at
//! commit, 429s, counters that lag, an append in transit that lands after a reopen, a token rewritten
//! and a channel dropped by hand, `CREATE OR REPLACE TABLE`.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use snowpipe_emulator::{BodyShape, DropMode, Endpoint, Failure, demo};

use crate::{
    common::Http,
    rest_common::{At, JWT_BEARER, Rest, demo_jwt, ids, name, ndjson, start_rest},
};

#[tokio::test]
async fn scripted_answers_come_in_every_body_shape_and_take_no_effect() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let c = emu.control();
    let (t, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    let code = "ERR_GENERAL_EXCEPTION_RETRY_REQUEST";
    let shaped = |shape| Failure::Shaped {
        status: 503,
        code: code.to_owned(),
        shape,
    };
    c.fail_next(Endpoint::RestAppend, 1, shaped(BodyShape::Documented));
    c.fail_next(Endpoint::RestOpenChannel, 1, shaped(BodyShape::ErrorCode));
    c.fail_next(Endpoint::RestBulkStatus, 1, shaped(BodyShape::BareString));
    c.fail_next(Endpoint::RestDropChannel, 1, shaped(BodyShape::Empty));
    c.fail_next(Endpoint::RestToken, 1, shaped(BodyShape::Html));
    c.fail_next(Endpoint::RestHostname, 1, Failure::Status { status: 500 });
    let at = At {
        continuation: &t,
        start: "1",
        end: "1",
    };
    let reply = rest
        .append("EVENTS", "CH", &at, ndjson("a", 0..1), None)
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["code"], code);
    let reply = rest.open("EVENTS", "CH", &json!({})).await;
    assert_eq!(reply.json(), json!({"error_code": code}));
    let reply = rest.bulk("EVENTS", &["CH"]).await;
    assert_eq!(reply.json(), json!(code));
    let reply = rest.drop_channel("EVENTS", "CH", None).await;
    assert_eq!(
        (reply.status, reply.body.len()),
        (StatusCode::SERVICE_UNAVAILABLE, 0)
    );
    let reply = rest
        .exchange(
            &format!("grant_type={JWT_BEARER}&scope={}", rest.host),
            Some(&demo_jwt()),
        )
        .await;
    assert!(reply.text().starts_with("<html>"));
    assert_eq!(reply.headers["content-type"], "text/html");
    let reply = rest
        .hostname(&[
            ("accept", "application/json"),
            ("authorization", &format!("Bearer {}", demo_jwt())),
            ("x-snowflake-authorization-token-type", "KEYPAIR_JWT"),
        ])
        .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json()["code"], code);
    // None took effect: the token was not used up, the channel was neither reopened nor dropped.
    rest.append_ok("EVENTS", "CH", &at, ndjson("a", 0..1)).await;
    assert_eq!(ids(&emu, "EVENTS"), ["a0"]);
    // A code with its own status through `ChannelCode`, e.g. two opens at once.
    c.fail_next(
        Endpoint::RestOpenChannel,
        1,
        Failure::ChannelCode {
            code: "ERR_OPEN_CHANNEL_IN_PROGRESS".to_owned(),
            http_code: 409,
        },
    );
    let reply = rest.open("EVENTS", "CH", &json!({})).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.json()["code"], "ERR_OPEN_CHANNEL_IN_PROGRESS");
    let faults: Vec<_> = c
        .calls()
        .into_iter()
        .filter(|r| r.fault.is_some())
        .map(|r| r.endpoint)
        .collect();
    assert_eq!(faults.len(), 7);
    let requests = c.rest_requests(&name("EVENTS", "CH"));
    let first = &requests[1];
    assert_eq!(
        (first.call, first.status, first.fault.as_deref()),
        ("append", Some(503), Some("fail"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn an_append_whose_answer_is_lost_was_applied() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let (t, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    emu.control()
        .drop_next(Endpoint::RestAppend, 1, DropMode::Applied);
    let lost = rest
        .http
        .try_send(
            Method::POST,
            &format!(
                "{}?continuationToken={t}&startOffsetToken=1&endOffsetToken=1",
                crate::rest_common::rows_path("EVENTS", "CH")
            ),
            &[
                ("accept", "application/json"),
                ("authorization", &format!("Bearer {}", rest.token)),
                ("x-snowflake-authorization-token-type", "OAUTH"),
            ],
            ndjson("lost", 0..2),
        )
        .await;
    assert!(lost.is_err(), "the connection closed without an answer");
    assert_eq!(
        rest.status("EVENTS", "CH").await["last_committed_offset_token"],
        "1"
    );
    assert_eq!(ids(&emu, "EVENTS"), ["lost0", "lost1"]);
    // Sent again with the same token: a replay, answered with the head, not ingested twice.
    let again = rest
        .append(
            "EVENTS",
            "CH",
            &At {
                continuation: &t,
                start: "1",
                end: "1",
            },
            ndjson("lost", 0..2),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(ids(&emu, "EVENTS"), ["lost0", "lost1"]);
    let request = &emu.control().rest_requests(&name("EVENTS", "CH"))[1];
    assert_eq!(
        (request.status, request.fault.as_deref()),
        (None, Some("drop_applied"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn an_invalidated_channel_loses_its_rows_and_refuses_appends_until_reopened() {
    let (emu, rest) = start_rest(Duration::from_secs(3600)).await;
    let n = name("EVENTS", "CH");
    let (t, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    let t = rest
        .append_ok(
            "EVENTS",
            "CH",
            &At {
                continuation: &t,
                start: "1",
                end: "1",
            },
            ndjson("a", 0..1),
        )
        .await;
    assert!(emu.control().invalidate_rest_channel(&n));
    assert!(
        !emu.control()
            .invalidate_rest_channel(&name("EVENTS", "NOPE"))
    );
    let st = rest.status("EVENTS", "CH").await;
    assert_eq!(st["channel_status_code"], "ERR_CHANNEL_MUST_BE_REOPENED");
    let reply = rest
        .append(
            "EVENTS",
            "CH",
            &At {
                continuation: &t,
                start: "2",
                end: "2",
            },
            ndjson("b", 0..1),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["code"], "STALE_CONTINUATION_TOKEN_SEQUENCER");
    assert_eq!(emu.control().flush(), 0, "its uncommitted rows are gone");
    // Nothing waits, so even the careful open goes through; the channel is healthy again.
    let (t, st) = rest
        .open_ok("EVENTS", "CH", &json!({"fail_on_uncommitted_rows": true}))
        .await;
    assert_eq!(st["channel_status_code"], "SUCCESS");
    rest.append_ok(
        "EVENTS",
        "CH",
        &At {
            continuation: &t,
            start: "2",
            end: "2",
        },
        ndjson("b", 0..1),
    )
    .await;
    emu.control().flush();
    assert_eq!(ids(&emu, "EVENTS"), ["b0"]);
    emu.shutdown().await;
}

#[tokio::test]
async fn stalled_commits_wait_for_the_release_and_rejected_rows_count() {
    // A long lag: flushes decide when commits happen, never the flusher.
    let (emu, rest) = start_rest(Duration::from_secs(3600)).await;
    let n = name("EVENTS", "CH");
    let c = emu.control();
    let (t, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    assert!(c.stall_rest_commits(&n));
    let t = rest
        .append_ok(
            "EVENTS",
            "CH",
            &At {
                continuation: &t,
                start: "1",
                end: "1",
            },
            ndjson("a", 0..3),
        )
        .await;
    assert_eq!(
        rest.status("EVENTS", "CH").await["last_committed_offset_token"],
        Value::Null
    );
    assert!(c.rest_channel(&n).unwrap().stalled);
    assert_eq!(c.flush(), 0, "a stall holds even a flush");
    assert!(c.reject_rows_at_commit(&n, &[0, 2]));
    assert!(c.resume_rest_commits(&n));
    assert_eq!(c.flush(), 1);
    let st = rest.status("EVENTS", "CH").await;
    assert_eq!(st["last_committed_offset_token"], "1");
    assert_eq!(
        (
            st["rows_inserted"].as_u64(),
            st["rows_error_count"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(st["last_error_offset_upper_bound"], "1");
    assert!(
        st["last_error_message"]
            .as_str()
            .unwrap()
            .contains("scripted fault")
    );
    assert_eq!(ids(&emu, "EVENTS"), ["a1"]);
    // The rejection was for one request only.
    rest.append_ok(
        "EVENTS",
        "CH",
        &At {
            continuation: &t,
            start: "2",
            end: "2",
        },
        ndjson("b", 0..3),
    )
    .await;
    assert_eq!(c.flush(), 1);
    assert_eq!(ids(&emu, "EVENTS"), ["a1", "b0", "b1", "b2"]);
    emu.shutdown().await;
}

#[tokio::test]
async fn throttled_appends_answer_429_and_keep_their_token() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let n = name("EVENTS", "CH");
    let (t, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    assert!(emu.control().throttle_appends(&n, 2));
    let at = At {
        continuation: &t,
        start: "1",
        end: "1",
    };
    for _ in 0..2 {
        let reply = rest
            .append("EVENTS", "CH", &at, ndjson("a", 0..1), None)
            .await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(reply.json()["code"], "ERR_TOO_MANY_REQUESTS");
    }
    rest.append_ok("EVENTS", "CH", &at, ndjson("a", 0..1)).await;
    assert_eq!(ids(&emu, "EVENTS"), ["a0"]);
    emu.shutdown().await;
}

#[tokio::test]
async fn status_counters_can_lag_the_committed_token() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let (t, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    let t = rest
        .append_ok(
            "EVENTS",
            "CH",
            &At {
                continuation: &t,
                start: "1",
                end: "1",
            },
            ndjson("a", 0..2),
        )
        .await;
    emu.control().set_counters_lag(true);
    rest.append_ok(
        "EVENTS",
        "CH",
        &At {
            continuation: &t,
            start: "2",
            end: "2",
        },
        ndjson("b", 0..3),
    )
    .await;
    let st = rest.status("EVENTS", "CH").await;
    assert_eq!(st["last_committed_offset_token"], "2");
    assert_eq!(st["rows_inserted"], 2, "one commit behind the token");
    emu.control().set_counters_lag(false);
    assert_eq!(rest.status("EVENTS", "CH").await["rows_inserted"], 5);
    emu.shutdown().await;
}

#[tokio::test]
async fn an_append_in_transit_commits_after_the_reopen() {
    // A long lag: the test decides when commits happen (flush), not the flusher.
    let (emu, rest) = start_rest(Duration::from_secs(3600)).await;
    let n = name("EVENTS", "CH");
    let (t, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    assert!(emu.control().hold_next_appends(&n, 1));
    let reply = rest
        .http
        .try_send(
            Method::POST,
            &format!(
                "{}?continuationToken={t}&startOffsetToken=5&endOffsetToken=9",
                crate::rest_common::rows_path("EVENTS", "CH")
            ),
            &[
                ("accept", "application/json"),
                ("authorization", &format!("Bearer {}", rest.token)),
                ("x-snowflake-authorization-token-type", "OAUTH"),
            ],
            ndjson("late", 0..2),
        )
        .await;
    assert!(reply.is_err(), "its answer is lost");
    let info = emu.control().rest_channel(&n).unwrap();
    assert_eq!(info.pending.len(), 1);
    assert!(info.pending[0].in_transit);
    assert_eq!(
        emu.control().flush(),
        0,
        "in transit: it does not commit yet"
    );
    // The client resolves the lost answer with a careful open and a fence: the open does not see it.
    let (_, st) = rest
        .open_ok(
            "EVENTS",
            "CH",
            &json!({"fail_on_uncommitted_rows": true, "offset_token": "fence"}),
        )
        .await;
    assert_eq!(st["last_committed_offset_token"], "fence");
    assert!(!emu.control().rest_channel(&n).unwrap().pending[0].in_transit);
    // ...and then it lands, moving the committed token past the fence.
    assert_eq!(emu.control().flush(), 1);
    let st = rest.status("EVENTS", "CH").await;
    assert_eq!(st["last_committed_offset_token"], "9");
    assert_eq!(ids(&emu, "EVENTS"), ["late0", "late1"]);
    let request = &emu.control().rest_requests(&n)[1];
    assert_eq!(request.fault.as_deref(), Some("held_in_transit"));
    emu.shutdown().await;
}

#[tokio::test]
async fn tokens_rewritten_channels_dropped_by_hand_and_tables_replaced() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let n = name("EVENTS", "CH");
    let c = emu.control();
    let (t, first) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    let t = rest
        .append_ok(
            "EVENTS",
            "CH",
            &At {
                continuation: &t,
                start: "1",
                end: "1",
            },
            ndjson("a", 0..1),
        )
        .await;
    // A token rewritten by hand: status shows it; the next commit replaces it.
    assert!(c.set_rest_committed_token(&n, Some("by-hand")));
    assert_eq!(
        rest.status("EVENTS", "CH").await["last_committed_offset_token"],
        "by-hand"
    );
    let t = rest
        .append_ok(
            "EVENTS",
            "CH",
            &At {
                continuation: &t,
                start: "2",
                end: "2",
            },
            ndjson("b", 0..1),
        )
        .await;
    assert_eq!(
        rest.status("EVENTS", "CH").await["last_committed_offset_token"],
        "2"
    );
    // Dropped by hand (or expired): gone from bulk status, appends 404, reopened fresh.
    assert!(c.drop_rest_channel(&n));
    assert!(!c.drop_rest_channel(&n));
    assert_eq!(rest.status("EVENTS", "CH").await, Value::Null);
    let reply = rest
        .append(
            "EVENTS",
            "CH",
            &At {
                continuation: &t,
                start: "3",
                end: "3",
            },
            ndjson("c", 0..1),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let (t, st) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    assert!(st["created_on_ms"].as_i64() > first["created_on_ms"].as_i64());
    assert_eq!(
        (
            st["rows_inserted"].as_u64(),
            &st["last_committed_offset_token"]
        ),
        (Some(0), &Value::Null)
    );
    rest.append_ok(
        "EVENTS",
        "CH",
        &At {
            continuation: &t,
            start: "3",
            end: "3",
        },
        ndjson("c", 0..1),
    )
    .await;
    // CREATE OR REPLACE TABLE: the rows and the channels of the old table are gone.
    c.execute_sql(
        "CREATE OR REPLACE TABLE DEMO_DB.PUBLIC.EVENTS (ID VARCHAR, N INT)",
        None,
        None,
    )
    .unwrap();
    assert!(ids(&emu, "EVENTS").is_empty());
    assert_eq!(rest.status("EVENTS", "CH").await, Value::Null);
    assert!(c.rest_channel(&n).is_none());
    let (t, st) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    assert_eq!(st["last_committed_offset_token"], Value::Null);
    rest.append_ok(
        "EVENTS",
        "CH",
        &At {
            continuation: &t,
            start: "4",
            end: "4",
        },
        ndjson("d", 0..1),
    )
    .await;
    assert_eq!(ids(&emu, "EVENTS"), ["d0"]);
    // The requests of the channel name outlive its drops.
    let calls: Vec<&str> = c.rest_requests(&n).iter().map(|r| r.call).collect();
    assert_eq!(
        calls,
        [
            "open", "append", "append", "append", "open", "append", "open", "append"
        ]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn the_admin_api_scripts_and_inspects_the_rest_side() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let http = Http::new(&emu);
    let base = "/_emulator/rest/channels/DEMO_DB/PUBLIC/EVENTS-STREAMING/CH";
    let (t, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    let info = http.get(base).await.json();
    assert_eq!(
        (
            info["clientSequencer"].as_u64(),
            info["continuationToken"].as_str()
        ),
        (Some(1), Some(t.as_str()))
    );
    assert_eq!(
        http.get("/_emulator/rest/channels")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        http.get("/_emulator/rest/channels/DEMO_DB/PUBLIC/EVENTS-STREAMING/NOPE")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let post = async |path: &str, body: Value| {
        http.post_json(&format!("{base}/{path}"), &body)
            .await
            .json()
    };
    assert_eq!(post("throttle", json!({"count": 1})).await["known"], true);
    let at = At {
        continuation: &t,
        start: "1",
        end: "1",
    };
    assert_eq!(
        rest.append("EVENTS", "CH", &at, ndjson("a", 0..2), None)
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(post("stall", json!({})).await["known"], true);
    assert_eq!(
        post("reject-rows", json!({"rows": [1]})).await["known"],
        true
    );
    let t = rest.append_ok("EVENTS", "CH", &at, ndjson("a", 0..2)).await;
    assert_eq!(
        http.get(base).await.json()["pending"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(post("resume", json!({})).await["known"], true);
    http.post_json("/_emulator/flush", &json!({})).await;
    assert_eq!(ids(&emu, "EVENTS"), ["a0"]);
    assert_eq!(
        post("committed-token", json!({"token": "hand"})).await["known"],
        true
    );
    assert_eq!(
        rest.status("EVENTS", "CH").await["last_committed_offset_token"],
        "hand"
    );
    http.post_json("/_emulator/rest/counters-lag", &json!({"enabled": true}))
        .await;
    http.post_json("/_emulator/rest/counters-lag", &json!({"enabled": false}))
        .await;
    assert_eq!(post("hold", json!({"count": 1})).await["known"], true);
    assert_eq!(
        http.get(base).await.json()["pending"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let requests = http.get(&format!("{base}/requests")).await.json();
    assert_eq!(requests.as_array().unwrap().len(), 3);
    assert_eq!(requests[1]["status"], 429);
    assert_eq!(requests[2]["bodyBytes"], ndjson("a", 0..2).len());
    assert_eq!(post("invalidate", json!({})).await["known"], true);
    assert_eq!(
        rest.status("EVENTS", "CH").await["channel_status_code"],
        "ERR_CHANNEL_MUST_BE_REOPENED"
    );
    assert_eq!(post("drop", json!({})).await["known"], true);
    assert_eq!(rest.status("EVENTS", "CH").await, Value::Null);
    drop(t);
    // Account-wide knobs.
    http.post_json(
        "/_emulator/rest/json-answers",
        &json!({"hostname": true, "token": true}),
    )
    .await;
    let jwt = demo_jwt();
    let reply = rest
        .exchange(
            &format!("grant_type={JWT_BEARER}&scope={}", rest.host),
            Some(&jwt),
        )
        .await;
    assert!(reply.json()["token"].is_string());
    let minted = http
        .post_json("/_emulator/rest/token", &json!({"user": demo::USER}))
        .await
        .json();
    let minted = minted["token"].as_str().unwrap().to_owned();
    let as_minted = Rest {
        http: Http::new(&emu),
        host: rest.host.clone(),
        token: minted,
    };
    assert_eq!(
        as_minted.open("EVENTS", "CH", &json!({})).await.status,
        StatusCode::OK
    );
    http.post_json("/_emulator/rest/expire-tokens", &json!({}))
        .await;
    assert_eq!(
        as_minted.open("EVENTS", "CH", &json!({})).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Scripted failures with a body shape through the shared fault route.
    let fresh = Rest::new(&emu).await;
    let ok = http
        .post_json(
            "/_emulator/faults/fail",
            &json!({"endpoint": "rest_bulk_status", "status": 500, "code": "ERR_X", "shape": "error_code"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(
        fresh.bulk("EVENTS", &["CH"]).await.json(),
        json!({"error_code": "ERR_X"})
    );
    assert_eq!(
        http.post_json("/_emulator/rest/nope", &json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_call_dropped_before_it_applies_takes_no_effect() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let http = Http::new(&emu);
    emu.control()
        .drop_next(Endpoint::RestOpenChannel, 1, DropMode::NotApplied);
    let auth = format!("Bearer {}", rest.token);
    let lost = rest
        .http
        .try_send(
            Method::PUT,
            &crate::rest_common::channel_path("EVENTS", "CH"),
            &[
                ("accept", "application/json"),
                ("authorization", &auth),
                ("x-snowflake-authorization-token-type", "OAUTH"),
            ],
            Vec::new(),
        )
        .await;
    assert!(lost.is_err());
    assert!(emu.control().rest_channel(&name("EVENTS", "CH")).is_none());
    let request = &emu.control().rest_requests(&name("EVENTS", "CH"))[0];
    assert_eq!(
        (request.status, request.fault.as_deref()),
        (None, Some("drop_not_applied"))
    );
    // A shaped failure through the admin API without a code carries the retry code.
    let ok = http
        .post_json(
            "/_emulator/faults/fail",
            &json!({"endpoint": "rest_open_channel", "status": 500, "shape": "bare_string"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let reply = rest.open("EVENTS", "CH", &json!({})).await;
    assert_eq!(reply.json(), json!("ERR_GENERAL_EXCEPTION_RETRY_REQUEST"));
    rest.open_ok("EVENTS", "CH", &json!({})).await;
    emu.shutdown().await;
}
