//! The REST API over real HTTP, checked against the protocol page: the account host (hostname, token
//! exchange), authentication on the ingest host, and every channel call with its errors.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use snowpipe_emulator::{Database, Emulator, MAX_APPEND_BYTES, User, demo};

use crate::{
    common::{Http, OTHER_PRIVATE_KEY, create_request},
    rest_common::{
        At, JWT_BEARER, Rest, channel_path, claims, demo_jwt, gzip, ids, name, ndjson, now,
        rows_path, start_rest, zstd,
    },
};

fn jwt_headers(jwt: &str) -> Vec<(&'static str, String)> {
    vec![
        ("accept", "application/json".to_owned()),
        ("authorization", format!("Bearer {jwt}")),
        (
            "x-snowflake-authorization-token-type",
            "KEYPAIR_JWT".to_owned(),
        ),
    ]
}

fn refs<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    h.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn hostname_answers_the_base_url_as_text_or_json() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let jwt = demo_jwt();
    let headers = jwt_headers(&jwt);
    let reply = rest.hostname(&refs(&headers)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), emu.base_url());
    assert_eq!(emu.control().rest_host(), emu.addr().to_string());
    emu.control().set_hostname_as_json(true);
    assert_eq!(
        rest.hostname(&refs(&headers)).await.json(),
        json!({"hostname": emu.base_url()})
    );
    // Without the JWT, with another key, with another token type, without Accept.
    let other =
        snowpipe_emulator::jwt::sign(OTHER_PRIVATE_KEY, None, "DEMO", "DEMO_USER", now(), 60)
            .unwrap();
    let mut wrong_type = headers.clone();
    wrong_type[2].1 = "OAUTH".to_owned();
    for (h, status) in [
        (
            vec![("accept", "application/json".to_owned())],
            StatusCode::UNAUTHORIZED,
        ),
        (jwt_headers(&other), StatusCode::UNAUTHORIZED),
        (wrong_type, StatusCode::UNAUTHORIZED),
        (headers[1..].to_vec(), StatusCode::NOT_ACCEPTABLE),
    ] {
        let reply = rest.hostname(&refs(&h)).await;
        assert_eq!(reply.status, status, "{}", reply.text());
        assert!(
            reply.json()["code"].is_string(),
            "documented shape: {}",
            reply.text()
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn the_token_exchange_checks_jwt_grant_scope_and_role() {
    let emu = Emulator::builder()
        .scoped_token_lifetime(Duration::from_secs(600))
        .start()
        .await
        .unwrap();
    let rest = Rest::new(&emu).await;
    let host = rest.host.clone();
    let jwt = demo_jwt();
    // Bare text, a JWT whose exp - iat is the configured lifetime.
    let c = claims(&rest.token);
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
    assert_eq!(
        emu.control().scoped_token_lifetime(),
        Duration::from_secs(600)
    );
    // The JWT as the form's `assertion`, the scope with a scheme, a role the user has.
    let form = format!(
        "grant_type={JWT_BEARER}&scope=http://{host}%20session:role:demo_role&assertion={jwt}"
    );
    let reply = rest.exchange(&form, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(claims(&reply.text())["role"], "DEMO_ROLE");
    emu.control().set_token_as_json(true);
    let reply = rest
        .exchange(&format!("grant_type={JWT_BEARER}&scope={host}"), Some(&jwt))
        .await;
    assert!(reply.json()["token"].as_str().unwrap().contains('.'));
    let other =
        snowpipe_emulator::jwt::sign(OTHER_PRIVATE_KEY, None, "DEMO", "DEMO_USER", now(), 60)
            .unwrap();
    for (form, bearer, status) in [
        (
            format!("grant_type={JWT_BEARER}&scope={host}"),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            format!("grant_type={JWT_BEARER}&scope={host}"),
            Some(other.as_str()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            format!("grant_type=password&scope={host}"),
            Some(jwt.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("grant_type={JWT_BEARER}&scope=127.0.0.1:1"),
            Some(jwt.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("grant_type={JWT_BEARER}"),
            Some(jwt.as_str()),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("grant_type={JWT_BEARER}&scope={host}+session:role:SYSADMIN"),
            Some(jwt.as_str()),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let reply = rest.exchange(&form, bearer).await;
        assert_eq!(reply.status, status, "{form}: {}", reply.text());
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn the_ingest_host_takes_scoped_tokens_of_this_host_and_pats() {
    let emu = Emulator::builder()
        .user(
            User::new("LOADER")
                .public_key(demo::PUBLIC_KEY_PEM)
                .role("LOADER_ROLE")
                .programmatic_access_token("pat-secret"),
        )
        .start()
        .await
        .unwrap();
    emu.control()
        .execute_sql(
            "CREATE TABLE DEMO_DB.PUBLIC.EVENTS (ID VARCHAR)",
            None,
            None,
        )
        .unwrap();
    let rest = Rest::new(&emu).await;
    let open = |token: String, kind: &'static str| {
        let rest = &rest;
        async move {
            let auth = format!("Bearer {token}");
            rest.http
                .send(
                    Method::PUT,
                    &channel_path("EVENTS", "C"),
                    &[
                        ("accept", "application/json"),
                        ("authorization", &auth),
                        ("x-snowflake-authorization-token-type", kind),
                    ],
                    Vec::new(),
                )
                .await
                .status
        }
    };
    assert_eq!(open(rest.token.clone(), "OAUTH").await, StatusCode::OK);
    assert_eq!(
        open("pat-secret".to_owned(), "PROGRAMMATIC_ACCESS_TOKEN").await,
        StatusCode::OK
    );
    assert_eq!(open("pat-secret".to_owned(), "OAUTH").await, StatusCode::OK);
    let other_host = emu
        .control()
        .scoped_token("DEMO_USER", None, "127.0.0.1:1")
        .unwrap();
    for (token, kind) in [
        (demo_jwt(), "KEYPAIR_JWT"),
        (demo_jwt(), "OAUTH"),
        (other_host, "OAUTH"),
        ("nope".to_owned(), "OAUTH"),
        (rest.token.clone(), "KEYPAIR_JWT"),
        ("pat-secret".to_owned(), "KEYPAIR_JWT"),
    ] {
        assert_eq!(open(token, kind).await, StatusCode::UNAUTHORIZED, "{kind}");
    }
    // Every token issued so far expires at once; a fresh one works.
    emu.control().expire_scoped_tokens();
    assert_eq!(
        open(rest.token.clone(), "OAUTH").await,
        StatusCode::UNAUTHORIZED
    );
    let fresh = Rest::new(&emu).await;
    assert_eq!(open(fresh.token.clone(), "OAUTH").await, StatusCode::OK);
    // A token minted for the emulator's own host by the handle works like an exchanged one.
    let minted = emu
        .control()
        .scoped_token("loader", None, emu.control().rest_host())
        .unwrap();
    assert_eq!(claims(&minted)["role"], "LOADER_ROLE");
    assert_eq!(open(minted, "OAUTH").await, StatusCode::OK);
    // Without Accept: application/json, 406 before anything else.
    let reply = rest
        .http
        .send(
            Method::PUT,
            &channel_path("EVENTS", "C"),
            &[
                ("accept", "*/*"),
                ("authorization", &format!("Bearer {}", fresh.token)),
                ("x-snowflake-authorization-token-type", "OAUTH"),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(reply.json()["code"], "ERR_ACCEPT_HEADER_REQUIRED");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_zero_lifetime_issues_tokens_that_have_expired() {
    let emu = Emulator::builder()
        .scoped_token_lifetime(Duration::ZERO)
        .start()
        .await
        .unwrap();
    emu.control()
        .execute_sql(
            "CREATE TABLE DEMO_DB.PUBLIC.EVENTS (ID VARCHAR)",
            None,
            None,
        )
        .unwrap();
    let rest = Rest::new(&emu).await;
    let reply = rest.open("EVENTS", "C", &json!({})).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    emu.shutdown().await;
}

const STATUS_FIELDS: [&str; 15] = [
    "database_name",
    "schema_name",
    "pipe_name",
    "channel_name",
    "channel_status_code",
    "last_committed_offset_token",
    "created_on_ms",
    "rows_inserted",
    "rows_parsed",
    "rows_error_count",
    "rows_errors",
    "last_error_offset_upper_bound",
    "last_error_message",
    "last_error_timestamp",
    "snowflake_avg_processing_latency_ms",
];

#[tokio::test]
async fn open_append_and_bulk_status_round_trip_into_the_shared_table() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let (token, status) = rest
        .open_ok("EVENTS", "CH", &json!({"fail_on_uncommitted_rows": true}))
        .await;
    for field in STATUS_FIELDS {
        assert!(
            status.get(field).is_some(),
            "open's status lacks {field}: {status}"
        );
    }
    assert_eq!(status["channel_status_code"], "SUCCESS");
    assert_eq!(status["last_committed_offset_token"], Value::Null);
    assert_eq!(
        (
            &status["database_name"],
            &status["schema_name"],
            &status["pipe_name"],
            &status["channel_name"]
        ),
        (
            &json!("DEMO_DB"),
            &json!("PUBLIC"),
            &json!("EVENTS-STREAMING"),
            &json!("CH")
        )
    );
    let next = rest
        .append_ok(
            "EVENTS",
            "CH",
            &At {
                continuation: &token,
                start: "1",
                end: "3",
            },
            ndjson("r", 0..3),
        )
        .await;
    assert_ne!(next, token);
    let st = rest.status("EVENTS", "CH").await;
    for field in STATUS_FIELDS {
        assert!(st.get(field).is_some(), "bulk status lacks {field}: {st}");
    }
    assert_eq!(st["last_committed_offset_token"], "3");
    assert_eq!(
        (st["rows_inserted"].as_u64(), st["rows_parsed"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(st["rows_error_count"], st["rows_errors"]);
    // One store: the sidecar's inserts land in the same table, and the handle sees both.
    let http = Http::new(&emu);
    let id = http.open("d", "EVENTS").await;
    assert_eq!(
        http.insert(&id, json!([{"ID": "side"}]), "1").await.json()["success"],
        true
    );
    assert_eq!(ids(&emu, "EVENTS"), ["r0", "r1", "r2", "side"]);
    let info = emu.control().rest_channel(&name("EVENTS", "CH")).unwrap();
    assert_eq!((info.client_sequencer, info.row_sequencer), (1, 1));
    assert_eq!(info.continuation_token, next);
    assert_eq!(info.committed_offset_token.as_deref(), Some("3"));
    assert_eq!(emu.control().rest_channels().len(), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn reopening_makes_tokens_stale_replays_answer_the_head_and_refusals_keep_the_token() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let (t0, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    let t1 = rest
        .append_ok(
            "EVENTS",
            "CH",
            &At {
                continuation: &t0,
                start: "1",
                end: "1",
            },
            ndjson("a", 0..1),
        )
        .await;
    // A resent append whose first try arrived: 200 with the head, rows not taken again.
    let replay = rest
        .append(
            "EVENTS",
            "CH",
            &At {
                continuation: &t0,
                start: "1",
                end: "1",
            },
            ndjson("a", 0..1),
            None,
        )
        .await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.json()["next_continuation_token"], t1.as_str());
    assert_eq!(ids(&emu, "EVENTS"), ["a0"]);
    // A refused append (a line that is not an object) keeps the token usable.
    let bad = rest
        .append(
            "EVENTS",
            "CH",
            &At {
                continuation: &t1,
                start: "2",
                end: "2",
            },
            b"[1]\n".to_vec(),
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["code"], "ERR_BAD_REQUEST");
    let t2 = rest
        .append_ok(
            "EVENTS",
            "CH",
            &At {
                continuation: &t1,
                start: "2",
                end: "2",
            },
            ndjson("b", 0..1),
        )
        .await;
    // A token the channel never issued.
    let made_up = rest
        .append(
            "EVENTS",
            "CH",
            &At {
                continuation: "99_99",
                start: "3",
                end: "3",
            },
            ndjson("c", 0..1),
            None,
        )
        .await;
    assert_eq!(made_up.status, StatusCode::BAD_REQUEST);
    assert_eq!(made_up.json()["code"], "ERR_INVALID_CONTINUATION_TOKEN");
    // Reopening bumps the client sequencer: every earlier token is stale.
    let before = emu
        .control()
        .rest_channel(&name("EVENTS", "CH"))
        .unwrap()
        .client_sequencer;
    let (t3, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    let after = emu
        .control()
        .rest_channel(&name("EVENTS", "CH"))
        .unwrap()
        .client_sequencer;
    assert!(after > before);
    for stale in [&t0, &t2] {
        let reply = rest
            .append(
                "EVENTS",
                "CH",
                &At {
                    continuation: stale,
                    start: "3",
                    end: "3",
                },
                ndjson("c", 0..1),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.json()["code"], "STALE_CONTINUATION_TOKEN_SEQUENCER");
    }
    rest.append_ok(
        "EVENTS",
        "CH",
        &At {
            continuation: &t3,
            start: "3",
            end: "3",
        },
        ndjson("c", 0..1),
    )
    .await;
    // A missing continuation token is a malformed request.
    let reply = rest
        .call(
            Method::POST,
            &rows_path("EVENTS", "CH"),
            &[],
            ndjson("d", 0..1),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(ids(&emu, "EVENTS"), ["a0", "b0", "c0"]);
    emu.shutdown().await;
}

#[tokio::test]
async fn uncommitted_rows_fail_the_open_and_drop_with_the_flag_and_are_discarded_without() {
    let (emu, rest) = start_rest(Duration::from_secs(3600)).await;
    let (t0, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    rest.append_ok(
        "EVENTS",
        "CH",
        &At {
            continuation: &t0,
            start: "1",
            end: "1",
        },
        ndjson("a", 0..2),
    )
    .await;
    let info = emu.control().rest_channel(&name("EVENTS", "CH")).unwrap();
    assert_eq!(info.pending.len(), 1);
    assert_eq!(
        (
            info.pending[0].rows,
            info.pending[0].end_offset_token.as_deref()
        ),
        (2, Some("1"))
    );
    let refused = rest
        .open("EVENTS", "CH", &json!({"fail_on_uncommitted_rows": true}))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.json()["code"], "ERR_CHANNEL_HAS_UNCOMMITTED_DATA");
    let refused = rest
        .drop_channel(
            "EVENTS",
            "CH",
            Some(&json!({"fail_on_uncommitted_rows": true})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    // Nothing changed: the rows commit when flushed.
    assert_eq!(emu.control().flush(), 1);
    assert_eq!(ids(&emu, "EVENTS"), ["a0", "a1"]);
    // Without the flag, an open discards what waits; a drop too.
    let (t1, _) = rest
        .open_ok("EVENTS", "CH", &json!({"fail_on_uncommitted_rows": true}))
        .await;
    rest.append_ok(
        "EVENTS",
        "CH",
        &At {
            continuation: &t1,
            start: "2",
            end: "2",
        },
        ndjson("b", 0..1),
    )
    .await;
    let (t2, st) = rest
        .open_ok("EVENTS", "CH", &json!({"fail_on_uncommitted_rows": false}))
        .await;
    assert_eq!(st["last_committed_offset_token"], "1");
    rest.append_ok(
        "EVENTS",
        "CH",
        &At {
            continuation: &t2,
            start: "3",
            end: "3",
        },
        ndjson("c", 0..1),
    )
    .await;
    let dropped = rest.drop_channel("EVENTS", "CH", None).await;
    assert!(dropped.status.is_success(), "{}", dropped.status);
    assert_eq!(emu.control().flush(), 0);
    assert_eq!(ids(&emu, "EVENTS"), ["a0", "a1"]);
    // A dropped channel: appends and drops answer 404, bulk status leaves it out.
    let gone = rest
        .append(
            "EVENTS",
            "CH",
            &At {
                continuation: &t2,
                start: "4",
                end: "4",
            },
            ndjson("d", 0..1),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.json()["code"],
        "ERR_CHANNEL_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"
    );
    assert_eq!(
        rest.drop_channel("EVENTS", "CH", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(rest.status("EVENTS", "CH").await, Value::Null);
    emu.shutdown().await;
}

#[tokio::test]
async fn an_opens_offset_token_replaces_the_committed_token_and_commits_leave_the_last_end() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let (mut t, first) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    for (i, end) in ["9", "10", "8"].into_iter().enumerate() {
        let id = format!("r{i}");
        t = rest
            .append_ok(
                "EVENTS",
                "CH",
                &At {
                    continuation: &t,
                    start: end,
                    end,
                },
                format!("{{\"ID\":\"{id}\"}}\n").into_bytes(),
            )
            .await;
    }
    let st = rest.status("EVENTS", "CH").await;
    assert_eq!(
        st["last_committed_offset_token"], "8",
        "the last request's end, never a maximum"
    );
    let (t, fenced) = rest
        .open_ok(
            "EVENTS",
            "CH",
            &json!({"offset_token": "fence-1", "fail_on_uncommitted_rows": true}),
        )
        .await;
    assert_eq!(
        fenced["last_committed_offset_token"], "fence-1",
        "the open's answer shows it"
    );
    assert_eq!(fenced["created_on_ms"], first["created_on_ms"]);
    assert_eq!(fenced["rows_inserted"], 3, "counters survive a reopen");
    assert_eq!(
        rest.status("EVENTS", "CH").await["last_committed_offset_token"],
        "fence-1"
    );
    // The single-token form of older documentation.
    let path = format!(
        "{}?continuationToken={t}&offsetToken=11",
        rows_path("EVENTS", "CH")
    );
    let reply = rest.call(Method::POST, &path, &[], ndjson("s", 0..1)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let st = rest.status("EVENTS", "CH").await;
    assert_eq!(st["last_committed_offset_token"], "11");
    assert_eq!(st["rows_inserted"], 4);
    let req = emu.control().rest_requests(&name("EVENTS", "CH"));
    let last = req.last().unwrap();
    assert_eq!(
        (
            last.start_offset_token.as_deref(),
            last.end_offset_token.as_deref()
        ),
        (Some("11"), Some("11"))
    );
    assert!(
        req.iter()
            .any(|r| r.call == "open" && r.offset_token.as_deref() == Some("fence-1"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn missing_objects_answer_the_three_404_codes() {
    let emu = Emulator::builder()
        .database(Database::new("LOCKED").role("NOBODY_HAS_IT"))
        .start()
        .await
        .unwrap();
    emu.control()
        .execute_sql(
            "CREATE TABLE DEMO_DB.PUBLIC.EVENTS (ID VARCHAR)",
            None,
            None,
        )
        .unwrap();
    let rest = Rest::new(&emu).await;
    for (db, schema, pipe, code) in [
        (
            "NOPE",
            "PUBLIC",
            "EVENTS-STREAMING",
            "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        ),
        (
            "LOCKED",
            "PUBLIC",
            "EVENTS-STREAMING",
            "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        ),
        (
            "DEMO_DB",
            "NOPE",
            "EVENTS-STREAMING",
            "ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        ),
        (
            "DEMO_DB",
            "PUBLIC",
            "MISSING-STREAMING",
            "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        ),
        (
            "DEMO_DB",
            "PUBLIC",
            "EVENTS",
            "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        ),
    ] {
        let base = format!("/v2/streaming/databases/{db}/schemas/{schema}/pipes/{pipe}");
        for (method, path, body) in [
            (Method::PUT, format!("{base}/channels/C"), Vec::new()),
            (Method::DELETE, format!("{base}/channels/C"), Vec::new()),
            (
                Method::POST,
                format!("{base}:bulk-channel-status"),
                br#"{"channel_names":["C"]}"#.to_vec(),
            ),
            (
                Method::POST,
                format!(
                    "/v2/streaming/data/databases/{db}/schemas/{schema}/pipes/{pipe}/channels/C/rows?continuationToken=1_0"
                ),
                ndjson("x", 0..1),
            ),
        ] {
            let reply = rest.call(method.clone(), &path, &[], body).await;
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                reply.text()
            );
            assert_eq!(reply.json()["code"], code, "{method} {path}");
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn path_segments_resolve_as_identifiers_and_bulk_status_names_are_exact() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    emu.control()
        .execute_sql(
            "CREATE TABLE DEMO_DB.PUBLIC.\"Odd t\" (ID VARCHAR)",
            None,
            None,
        )
        .unwrap();
    // Lower-case unquoted segments resolve upper-cased: the channel is stored as `LOWER`.
    let reply = rest
        .call(
            Method::PUT,
            "/v2/streaming/databases/demo_db/schemas/public/pipes/events-streaming/channels/lower",
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["channel_status"]["channel_name"], "LOWER");
    // Quoted, percent-encoded segments are exact.
    let quoted = "/v2/streaming/databases/DEMO_DB/schemas/PUBLIC/pipes/%22Odd%20t-STREAMING%22/channels/%22mixed%20Case%22";
    let reply = rest.call(Method::PUT, quoted, &[], Vec::new()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let token = reply.json()["next_continuation_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let append = format!(
        "/v2/streaming/data/databases/DEMO_DB/schemas/PUBLIC/pipes/%22Odd%20t-STREAMING%22/channels/%22mixed%20Case%22/rows?continuationToken={token}&startOffsetToken=1&endOffsetToken=1"
    );
    assert_eq!(
        rest.call(Method::POST, &append, &[], ndjson("q", 0..1))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(ids(&emu, "\"Odd t\""), ["q0"]);
    let bulk = rest
        .call(
            Method::POST,
            "/v2/streaming/databases/DEMO_DB/schemas/PUBLIC/pipes/%22Odd%20t-STREAMING%22:bulk-channel-status",
            &[],
            json!({"channel_names": ["mixed Case", "MIXED CASE", "\"mixed Case\""]}).to_string().into_bytes(),
        )
        .await
        .json();
    let names: Vec<&String> = bulk["channel_statuses"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(names, ["mixed Case"]);
    let st = rest.bulk("EVENTS", &["lower", "LOWER"]).await.json();
    let names: Vec<&String> = st["channel_statuses"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["LOWER"]);
    let info = emu
        .control()
        .rest_channel(&snowpipe_emulator::RestChannelName::on_table(
            "DEMO_DB",
            "PUBLIC",
            "\"Odd t\"",
            "\"mixed Case\"",
        ))
        .unwrap();
    assert_eq!(
        (info.pipe.as_str(), info.table.as_str()),
        ("Odd t-STREAMING", "Odd t")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn ndjson_lines_and_encodings() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let (mut t, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    let mut n = 0;
    let mut next = async |rest: &Rest, body: Vec<u8>, encoding: Option<&str>, t: &mut String| {
        n += 1;
        let end = n.to_string();
        let reply = rest
            .append(
                "EVENTS",
                "CH",
                &At {
                    continuation: t,
                    start: &end,
                    end: &end,
                },
                body,
                encoding,
            )
            .await;
        if reply.status == StatusCode::OK {
            *t = reply.json()["next_continuation_token"]
                .as_str()
                .unwrap()
                .to_owned();
        }
        reply
    };
    // `\r\n` line ends, and a last line without its `\n`.
    let crlf = b"{\"ID\":\"crlf0\"}\r\n{\"ID\":\"crlf1\"}".to_vec();
    assert_eq!(next(&rest, crlf, None, &mut t).await.status, StatusCode::OK);
    assert_eq!(
        next(&rest, gzip(&ndjson("gz", 0..2)), Some("gzip"), &mut t)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        next(&rest, zstd(&ndjson("zs", 0..2)), Some("zstd"), &mut t)
            .await
            .status,
        StatusCode::OK
    );
    let mut frames = zstd(&ndjson("fa", 0..1));
    frames.extend(zstd(&ndjson("fb", 0..1)));
    assert_eq!(
        next(&rest, frames, Some("zstd"), &mut t).await.status,
        StatusCode::OK
    );
    for (body, encoding, status) in [
        (
            b"{\"ID\":\"x\"}\n\"text\"\n".to_vec(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            b"{\"ID\":\"x\"}\n\n".to_vec(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (b"{\"ID\": }\n".to_vec(), None, StatusCode::BAD_REQUEST),
        (b"not zstd".to_vec(), Some("zstd"), StatusCode::BAD_REQUEST),
        (b"not gzip".to_vec(), Some("gzip"), StatusCode::BAD_REQUEST),
        (
            ndjson("br", 0..1),
            Some("br"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ] {
        let reply = next(&rest, body, encoding, &mut t).await;
        assert_eq!(reply.status, status, "{encoding:?}: {}", reply.text());
        assert!(reply.json()["code"].is_string());
    }
    assert_eq!(
        ids(&emu, "EVENTS"),
        ["crlf0", "crlf1", "gz0", "gz1", "zs0", "zs1", "fa0", "fb0"]
    );
    let requests = emu.control().rest_requests(&name("EVENTS", "CH"));
    let encodings: Vec<Option<&str>> = requests
        .iter()
        .filter(|r| r.call == "append")
        .map(|r| r.encoding.as_deref())
        .collect();
    assert_eq!(
        &encodings[..4],
        [None, Some("gzip"), Some("zstd"), Some("zstd")]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_body_over_4_mib_as_received_is_413() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let (t, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    // One row padded with spaces to exactly the limit (whitespace inside a JSON object is fine).
    let body_of = |len: usize| {
        let mut body = b"{\"ID\":\"big\"".to_vec();
        body.resize(len - 2, b' ');
        body.extend_from_slice(b"}\n");
        body
    };
    let over = rest
        .append(
            "EVENTS",
            "CH",
            &At {
                continuation: &t,
                start: "1",
                end: "1",
            },
            body_of(MAX_APPEND_BYTES + 1),
            None,
        )
        .await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(over.json()["code"], "ERR_PAYLOAD_TOO_LARGE");
    let t = rest
        .append_ok(
            "EVENTS",
            "CH",
            &At {
                continuation: &t,
                start: "1",
                end: "1",
            },
            body_of(MAX_APPEND_BYTES),
        )
        .await;
    // The limit is on the body as sent: a compressed body that inflates past it is fine.
    let mut big = Vec::new();
    let pad = "p".repeat(100);
    for i in 0..40_000 {
        big.extend_from_slice(
            format!("{{\"ID\":\"z{}\",\"N\":{i},\"PAD\":\"{pad}\"}}\n", i % 1000).as_bytes(),
        );
    }
    assert!(big.len() > MAX_APPEND_BYTES);
    let reply = rest
        .append(
            "EVENTS",
            "CH",
            &At {
                continuation: &t,
                start: "2",
                end: "2",
            },
            zstd(&big),
            Some("zstd"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        emu.control()
            .table("DEMO_DB", "PUBLIC", "EVENTS")
            .unwrap()
            .committed_rows,
        40_001
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn rows_are_checked_at_commit_against_the_table_as_it_is_then() {
    let (emu, rest) = start_rest(Duration::from_secs(3600)).await;
    let (t0, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    let body = concat!(
        "{\"id\": \"ok\", \"n\": \"5\", \"later\": \"x\", \"unknown\": 1}\n",
        "{\"ID\": \"too-long-id\"}\n",
        "{\"ID\": null}\n",
        "{\"N\": 1}\n",
        "{\"ID\": \"bad\", \"N\": \"nan-ish\"}\n",
    );
    let t1 = rest
        .append_ok(
            "EVENTS",
            "CH",
            &At {
                continuation: &t0,
                start: "s1",
                end: "e1",
            },
            body.as_bytes().to_vec(),
        )
        .await;
    // The table changes between the append and the commit: the commit sees the new column.
    emu.control()
        .execute_sql(
            "ALTER TABLE DEMO_DB.PUBLIC.EVENTS ADD COLUMN LATER VARCHAR",
            None,
            None,
        )
        .unwrap();
    assert_eq!(emu.control().flush(), 1);
    assert_eq!(
        emu.control().rows("DEMO_DB", "PUBLIC", "EVENTS").unwrap(),
        [json!({"ID": "ok", "N": 5, "LATER": "x"})]
    );
    let st = rest.status("EVENTS", "CH").await;
    assert_eq!(
        st["last_committed_offset_token"], "e1",
        "the token moves past rejected rows"
    );
    assert_eq!(
        (
            st["rows_inserted"].as_u64(),
            st["rows_error_count"].as_u64(),
            st["rows_parsed"].as_u64()
        ),
        (Some(1), Some(4), Some(5))
    );
    assert_eq!(st["last_error_offset_upper_bound"], "e1");
    assert!(
        st["last_error_message"]
            .as_str()
            .unwrap()
            .contains("column N"),
        "{st}"
    );
    assert!(st["last_error_timestamp"].as_i64().unwrap() > 0);
    // Counters are cumulative over the channel's life, through a reopen.
    let (t2, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    assert!(
        rest.append(
            "EVENTS",
            "CH",
            &At {
                continuation: &t1,
                start: "x",
                end: "x"
            },
            ndjson("s", 0..1),
            None
        )
        .await
        .status
        .is_client_error()
    );
    rest.append_ok(
        "EVENTS",
        "CH",
        &At {
            continuation: &t2,
            start: "s2",
            end: "e2",
        },
        ndjson("ok", 0..2),
    )
    .await;
    emu.control().flush();
    let st = rest.status("EVENTS", "CH").await;
    assert_eq!(
        (
            st["rows_inserted"].as_u64(),
            st["rows_error_count"].as_u64()
        ),
        (Some(3), Some(4))
    );
    assert_eq!(st["last_error_offset_upper_bound"], "e1", "no new error");
    // Dropped and created again: zero counters, a later created_on_ms.
    let created = st["created_on_ms"].as_i64().unwrap();
    assert!(
        rest.drop_channel("EVENTS", "CH", None)
            .await
            .status
            .is_success()
    );
    let (_, fresh) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    assert!(fresh["created_on_ms"].as_i64().unwrap() > created);
    assert_eq!(
        (
            fresh["rows_inserted"].as_u64(),
            fresh["rows_error_count"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(fresh["last_committed_offset_token"], Value::Null);
    emu.shutdown().await;
}

#[tokio::test]
async fn schema_evolution_adds_columns_and_is_reported() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let http = Http::new(&emu);
    emu.control()
        .execute_sql(
            "CREATE TABLE DEMO_DB.PUBLIC.EVO (ID VARCHAR) ENABLE_SCHEMA_EVOLUTION = TRUE",
            None,
            None,
        )
        .unwrap();
    let (t, _) = rest.open_ok("EVO", "CH", &json!({})).await;
    rest.append_ok(
        "EVO",
        "CH",
        &At {
            continuation: &t,
            start: "1",
            end: "1",
        },
        b"{\"id\": \"a\", \"score\": 2}\n".to_vec(),
    )
    .await;
    let table = emu.control().table("DEMO_DB", "PUBLIC", "EVO").unwrap();
    assert!(table.enable_schema_evolution);
    assert_eq!(table.columns.last().unwrap().name, "SCORE");
    assert!(
        !emu.control()
            .table("DEMO_DB", "PUBLIC", "EVENTS")
            .unwrap()
            .enable_schema_evolution
    );
    let admin = http
        .get("/_emulator/table?database=DEMO_DB&schema=PUBLIC&table=EVO")
        .await
        .json();
    assert_eq!(admin["enableSchemaEvolution"], true);
    assert_eq!(
        emu.control().rows("DEMO_DB", "PUBLIC", "EVO").unwrap(),
        [json!({"ID": "a", "SCORE": 2})]
    );
    // DESCRIBE TABLE over the SQL API: the evolved column carries a schema evolution record.
    let reply = http
        .send(
            Method::POST,
            "/api/v2/statements",
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
                ("authorization", &format!("Bearer {}", demo_jwt())),
                ("x-snowflake-authorization-token-type", "KEYPAIR_JWT"),
            ],
            json!({"statement": "DESCRIBE TABLE DEMO_DB.PUBLIC.EVO"})
                .to_string()
                .into_bytes(),
        )
        .await
        .json();
    let rows = reply["data"].as_array().unwrap();
    assert_eq!(rows[0][12], Value::Null);
    let record: Value = serde_json::from_str(rows[1][12].as_str().unwrap()).unwrap();
    assert_eq!(record["evolutionType"], "ADD_COLUMN");
    // Sidecar channels are untouched by all this.
    assert_eq!(
        http.post_json("/channels", &create_request("d", "PUBLIC", "EVO"))
            .await
            .json()["success"],
        true
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn commits_wait_for_the_lag_and_go_in_order() {
    let (emu, rest) = start_rest(Duration::from_millis(50)).await;
    let (mut t, _) = rest.open_ok("EVENTS", "CH", &json!({})).await;
    for end in ["3", "2", "1"] {
        t = rest
            .append_ok(
                "EVENTS",
                "CH",
                &At {
                    continuation: &t,
                    start: end,
                    end,
                },
                ndjson(&format!("o{end}-"), 0..1),
            )
            .await;
    }
    assert!(
        emu.control()
            .wait_for_rest_token(&name("EVENTS", "CH"), "1")
            .await
    );
    assert_eq!(ids(&emu, "EVENTS"), ["o3-0", "o2-0", "o1-0"]);
    // Stalling every channel (the sidecar's `None`) stalls REST channels too.
    emu.control().set_commit_lag(Duration::ZERO);
    emu.control().stall_commits(None);
    rest.append_ok(
        "EVENTS",
        "CH",
        &At {
            continuation: &t,
            start: "4",
            end: "4",
        },
        ndjson("s", 0..1),
    )
    .await;
    assert_eq!(emu.control().flush(), 0);
    assert!(
        emu.control()
            .rest_channel(&name("EVENTS", "CH"))
            .unwrap()
            .stalled
    );
    // Released, the flusher commits it (a flush here could find it committed already).
    emu.control().resume_commits(None);
    assert!(
        emu.control()
            .wait_for_rest_token(&name("EVENTS", "CH"), "4")
            .await
    );
    assert_eq!(
        rest.status("EVENTS", "CH").await["last_committed_offset_token"],
        "4"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn unknown_rest_paths_and_methods() {
    let (emu, rest) = start_rest(Duration::ZERO).await;
    let reply = rest
        .call(Method::GET, "/v2/streaming/nothing", &[], Vec::new())
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.json()["code"].is_string());
    let reply = rest
        .call(Method::POST, &channel_path("EVENTS", "C"), &[], Vec::new())
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "PUT, DELETE");
    let bad = rest
        .call(
            Method::PUT,
            &channel_path("EVENTS", "C"),
            &[],
            b"[1]".to_vec(),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = rest.bulk_raw(b"{}".to_vec()).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    emu.shutdown().await;
}

impl Rest {
    async fn bulk_raw(&self, body: Vec<u8>) -> crate::common::Reply {
        self.call(
            Method::POST,
            "/v2/streaming/databases/DEMO_DB/schemas/PUBLIC/pipes/EVENTS-STREAMING:bulk-channel-status",
            &[],
            body,
        )
        .await
    }
}
