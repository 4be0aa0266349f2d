//! The service protocol, endpoint by endpoint: bodies, codes and statuses as the protocol page says.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use snowpipe_emulator::{Database, Emulator, User, demo};

use crate::common::{
    DEMO_KEY_DES3, DEMO_KEY_PKCS1, HOUR, Http, OTHER_PRIVATE_KEY, create_request, gzip, rows, start,
};

#[tokio::test]
async fn health_answers_200() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    assert_eq!(http.get("/health").await.status, StatusCode::OK);
    emu.shutdown().await;
}

#[tokio::test]
async fn create_channel_returns_the_table_schema_in_snowflake_types() {
    let emu = start(Duration::ZERO).await;
    emu.control()
        .execute_sql(
            "CREATE TABLE PUBLIC.TYPES (ID STRING, PRICE NUMBER(38,2), F DOUBLE PRECISION, B BOOLEAN, \
             TS TIMESTAMP_TZ, V VARIANT, NN INT NOT NULL)",
            Some(demo::DATABASE),
            None,
        )
        .unwrap();
    let http = Http::new(&emu);
    let reply = http
        .post_json("/channels", &create_request("dest-1", "public", "types"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let b = reply.json();
    assert_eq!(b["success"], true);
    assert_eq!(b["valid"], true);
    assert_eq!(b["deleted"], false);
    assert_eq!(b["code"], "");
    assert!(!b["channelId"].as_str().unwrap().is_empty());
    assert!(b["channelName"].as_str().unwrap().contains("dest-1"));
    let s = &b["tableSchema"];
    assert_eq!(
        s["ID"],
        json!({"type": "VARCHAR(16777216)", "logicalType": "TEXT", "precision": null, "scale": null,
               "byteLength": 16_777_216, "length": 16_777_216, "nullable": true})
    );
    assert_eq!(s["PRICE"]["type"], "NUMBER(38,2)");
    assert_eq!(s["PRICE"]["logicalType"], "FIXED");
    assert_eq!(
        (
            s["PRICE"]["precision"].as_u64(),
            s["PRICE"]["scale"].as_u64()
        ),
        (Some(38), Some(2))
    );
    assert_eq!(s["F"]["type"], "FLOAT");
    assert_eq!(s["B"]["type"], "BOOLEAN");
    assert_eq!(s["TS"]["type"], "TIMESTAMP_TZ(9)");
    assert_eq!(s["V"]["type"], "VARIANT");
    assert_eq!(s["NN"]["nullable"], false);
    emu.shutdown().await;
}

fn with_account(mut req: Value, field: &str, value: &str) -> Value {
    req["account"][field] = json!(value);
    req
}

fn with_table(mut req: Value, field: &str, value: &str) -> Value {
    req["table"][field] = json!(value);
    req
}

#[tokio::test]
async fn create_channel_failure_codes() {
    let emu = Emulator::builder()
        .commit_lag(Duration::ZERO)
        .database(Database::new("LOCKED").role("ADMIN"))
        .start()
        .await
        .unwrap();
    emu.control()
        .execute_sql("CREATE TABLE DEMO_DB.PUBLIC.T (ID VARCHAR)", None, None)
        .unwrap();
    let http = Http::new(&emu);
    let ok = create_request("d", "PUBLIC", "T");
    let cases = [
        (
            with_account(ok.clone(), "user", "NOBODY"),
            "ERR_AUTHENTICATION_FAILED",
            401,
        ),
        (
            with_account(ok.clone(), "account", "OTHER"),
            "ERR_AUTHENTICATION_FAILED",
            401,
        ),
        (
            with_account(ok.clone(), "privateKey", OTHER_PRIVATE_KEY),
            "ERR_AUTHENTICATION_FAILED",
            401,
        ),
        (
            with_account(ok.clone(), "privateKey", "garbage"),
            "ERR_VALIDATION_ERROR",
            400,
        ),
        (
            with_account(
                with_account(ok.clone(), "privateKey", demo::ENCRYPTED_PRIVATE_KEY_PEM),
                "privateKeyPassphrase",
                "wrong",
            ),
            "ERR_VALIDATION_ERROR",
            400,
        ),
        (
            with_account(ok.clone(), "role", "SYSADMIN"),
            "ERR_ROLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            403,
        ),
        (
            with_table(ok.clone(), "database", "NOPE"),
            "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            404,
        ),
        (
            with_table(ok.clone(), "database", "LOCKED"),
            "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            404,
        ),
        (
            with_table(ok.clone(), "schema", "NOPE"),
            "ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            404,
        ),
        (
            with_table(ok.clone(), "table", "NOPE"),
            "ERR_TABLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            404,
        ),
        (
            with_table(ok.clone(), "table", ""),
            "ERR_VALIDATION_ERROR",
            400,
        ),
        (
            json!({"rudderIdentifier": "d"}),
            "ERR_VALIDATION_ERROR",
            400,
        ),
    ];
    for (req, code, http_code) in cases {
        let reply = http.post_json("/channels", &req).await;
        assert_eq!(reply.status, StatusCode::OK);
        let b = reply.json();
        assert_eq!(b["success"], false, "{b}");
        assert_eq!(b["code"], code, "{b}");
        assert_eq!(b["snowflakeAPIHttpCode"], http_code, "{b}");
        assert!(
            !b["snowflakeAPIMessage"].as_str().unwrap().is_empty(),
            "{b}"
        );
        assert!(!b["error"].as_str().unwrap().is_empty(), "{b}");
    }
    // Malformed JSON is not a channel answer at all.
    let reply = http
        .send(Method::POST, "/channels", &[], b"{not json".to_vec())
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    // Keys in every accepted form open the channel.
    for (key, pass) in [
        (
            demo::ENCRYPTED_PRIVATE_KEY_PEM,
            demo::PRIVATE_KEY_PASSPHRASE,
        ),
        (DEMO_KEY_DES3, demo::PRIVATE_KEY_PASSPHRASE),
        (DEMO_KEY_PKCS1, ""),
    ] {
        let req = with_account(
            with_account(ok.clone(), "privateKey", key),
            "privateKeyPassphrase",
            pass,
        );
        assert_eq!(
            http.post_json("/channels", &req).await.json()["success"],
            true
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn configured_users_and_case_insensitive_names() {
    let emu = Emulator::builder()
        .without_demo()
        .account("acme")
        .user(
            User::new("loader")
                .public_key(demo::PUBLIC_KEY_PEM)
                .role("loader_role"),
        )
        .database(Database::new("analytics").schema("raw"))
        .start()
        .await
        .unwrap();
    emu.control()
        .execute_sql("CREATE TABLE ANALYTICS.RAW.T (ID VARCHAR)", None, None)
        .unwrap();
    let http = Http::new(&emu);
    let mut req = create_request("d", "raw", "t");
    req["account"] = json!({"account": "Acme", "user": "LOADER", "role": "Loader_Role", "privateKey": demo::PRIVATE_KEY_PEM});
    req["table"]["database"] = json!("analytics");
    assert_eq!(
        http.post_json("/channels", &req).await.json()["success"],
        true
    );
    // The demo user is not there.
    let reply = http
        .post_json("/channels", &create_request("d", "RAW", "T"))
        .await;
    assert_eq!(reply.json()["code"], "ERR_AUTHENTICATION_FAILED");
    emu.shutdown().await;
}

#[tokio::test]
async fn reopening_gives_a_new_id_and_invalidates_the_old_one() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    let old = http.open("d", "EVENTS").await;
    let new = http.open("d", "EVENTS").await;
    assert_ne!(old, new);
    assert!(!http.status(&old).await.0);
    assert!(http.status(&new).await.0);
    let got = http.get(&format!("/channels/{old}")).await.json();
    assert_eq!(
        (
            got["success"].clone(),
            got["valid"].clone(),
            got["channelId"].clone()
        ),
        (json!(true), json!(false), json!(old))
    );
    let reply = http.insert(&old, rows("a", 0..1), "1").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["success"], false);
    // Another partition or table is another channel: both stay valid.
    let mut second_partition = create_request("d", "PUBLIC", "EVENTS");
    second_partition["partition"] = json!("2");
    let other = http.post_json("/channels", &second_partition).await.json();
    let other = other["channelId"].as_str().unwrap().to_owned();
    assert!(http.status(&new).await.0 && http.status(&other).await.0);
    emu.shutdown().await;
}

#[tokio::test]
async fn insert_gzip_or_plain_commits_normalised_rows() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    let reply = http
        .insert(&ch, json!([{"id": "a", "Price": "12.345", "RECEIVED_AT": "2023-05-12T04:36:50.199Z", "n": 7}]), "10")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["success"], true, "{}", reply.json());
    let plain = http
        .post_json(
            &format!("/channels/{ch}/insert"),
            &json!({"rows": [{"ID": "b"}], "offset": "11"}),
        )
        .await;
    assert_eq!(plain.json()["success"], true);
    assert_eq!(
        http.status(&ch).await,
        (true, "11".to_owned(), "11".to_owned())
    );
    let stored = emu.control().rows("demo_db", "public", "events").unwrap();
    assert_eq!(
        stored,
        vec![
            json!({"ID": "a", "PRICE": 12.35, "RECEIVED_AT": "2023-05-12T04:36:50.199Z", "N": 7}),
            json!({"ID": "b"})
        ]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn unknown_columns_are_a_schema_conflict_and_nothing_is_stored() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    let reply = http
        .insert(&ch, json!([{"ID": "a"}, {"ID": "b", "UNKNOWN": 1}]), "5")
        .await;
    let b = reply.json();
    assert_eq!(
        (b["success"].clone(), b["code"].clone()),
        (json!(false), json!("ERR_SCHEMA_CONFLICT"))
    );
    let errors = b["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["rowIndex"], 1);
    assert_eq!(errors[0]["extraColNames"], json!(["UNKNOWN"]));
    assert!(errors[0]["message"].as_str().unwrap().contains("UNKNOWN"));
    assert_eq!(http.status(&ch).await, (true, String::new(), String::new()));
    assert_eq!(
        emu.control()
            .rows(demo::DATABASE, "PUBLIC", "EVENTS")
            .unwrap(),
        Vec::<Value>::new()
    );
    // A missing NOT NULL column is one too.
    let b = http.insert(&ch, json!([{"PRICE": 1}]), "6").await.json();
    assert_eq!(b["errors"][0]["missingNotNullColNames"], json!(["ID"]));
    emu.shutdown().await;
}

#[tokio::test]
async fn values_the_type_cannot_hold_are_row_errors() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    let b = http
        .insert(&ch, json!([{"ID": "ok"}, {"ID": "x", "PRICE": "cheap"}, {"ID": "y", "RECEIVED_AT": "yesterday"}]), "3")
        .await
        .json();
    assert_eq!(b["success"], false);
    let errors = b["errors"].as_array().unwrap();
    assert_eq!(
        errors
            .iter()
            .map(|e| e["rowIndex"].clone())
            .collect::<Vec<_>>(),
        [json!(1), json!(2)]
    );
    assert!(errors[0]["message"].as_str().unwrap().contains("PRICE"));
    assert!(
        errors[1]["message"]
            .as_str()
            .unwrap()
            .contains("RECEIVED_AT")
    );
    assert_eq!(errors[0]["extraColNames"], Value::Null);
    assert_eq!(http.status(&ch).await.2, "");
    emu.shutdown().await;
}

#[tokio::test]
async fn unknown_channels_answer_404() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    assert_eq!(
        http.insert("nope", rows("a", 0..1), "1").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http.get("/channels/nope/status").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http.get("/channels/nope").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http.delete("/channels/nope?sync=false").await.status,
        StatusCode::NOT_FOUND
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn bulk_status_lists_statuses_and_not_found() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    let a = http.open("a", "EVENTS").await;
    let b = http.open("b", "EVENTS").await;
    http.insert(&a, rows("a", 0..2), "7").await;
    let reply = http
        .get(&format!(
            "/channels/bulk-status?channelIds={a}&channelIds={b}&channelIds=gone"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["success"], true);
    assert_eq!(
        body["statuses"][&a],
        json!({"success": true, "valid": true, "offset": "7", "latestInsertedOffset": "7"})
    );
    assert_eq!(body["statuses"][&b]["offset"], "");
    assert_eq!(body["notFound"], json!(["gone"]));
    let empty = http.get("/channels/bulk-status").await.json();
    assert_eq!(
        (empty["statuses"].clone(), empty["notFound"].clone()),
        (json!({}), json!([]))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn commit_lag_holds_rows_until_flushed() {
    let emu = start(HOUR).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    http.insert(&ch, rows("a", 0..3), "5").await;
    assert_eq!(
        http.status(&ch).await,
        (true, String::new(), "5".to_owned())
    );
    assert_eq!(emu.control().channel(&ch).unwrap().buffered_rows, 3);
    assert_eq!(emu.control().flush(), 1);
    assert_eq!(
        http.status(&ch).await,
        (true, "5".to_owned(), "5".to_owned())
    );
    assert_eq!(
        emu.control()
            .rows(demo::DATABASE, "PUBLIC", "EVENTS")
            .unwrap()
            .len(),
        3
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn the_flusher_commits_after_the_lag() {
    // A short real lag: the test waits on the committed state, not on a clock.
    let emu = start(Duration::from_millis(20)).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    http.insert(&ch, rows("a", 0..1), "5").await;
    assert!(emu.control().wait_for_commit(&ch, "5").await);
    assert_eq!(http.status(&ch).await.1, "5");
    emu.shutdown().await;
}

#[tokio::test]
async fn tokens_are_the_last_ones_never_a_maximum() {
    // Snowflake compares nothing: a lower or unordered token sent last is the one that stays.
    let emu = start(HOUR).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    for (i, offset) in ["9", "10", "8"].iter().enumerate() {
        let i = u32::try_from(i).unwrap();
        http.insert(&ch, rows("r", i..i + 1), offset).await;
    }
    assert_eq!(
        http.status(&ch).await,
        (true, String::new(), "8".to_owned())
    );
    emu.control().flush();
    assert_eq!(
        http.status(&ch).await,
        (true, "8".to_owned(), "8".to_owned())
    );
    let token = "v2.lz5h3k2fa-1x3c.2s.0.lz5h3k1zz-9a0b-2r";
    http.insert(&ch, rows("s", 0..1), token).await;
    emu.control().flush();
    let reopened = http.open("d", "EVENTS").await;
    assert_eq!(
        http.status(&reopened).await,
        (true, token.to_owned(), token.to_owned())
    );
    assert_eq!(
        emu.control().channel(&reopened).unwrap().committed_offset,
        token
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn sync_delete_waits_for_the_flush() {
    let emu = start(HOUR).await;
    let http = std::sync::Arc::new(Http::new(&emu));
    let ch = http.open("d", "EVENTS").await;
    http.insert(&ch, rows("a", 0..2), "4").await;
    let pending = {
        let http = std::sync::Arc::clone(&http);
        let ch = ch.clone();
        tokio::spawn(async move {
            http.delete(&format!("/channels/{ch}?sync=true"))
                .await
                .status
        })
    };
    assert!(emu.control().wait_for_sync_deletes(1).await);
    // Rows are still buffered, so the delete cannot have answered yet.
    assert!(!pending.is_finished());
    assert_eq!(
        emu.control()
            .rows(demo::DATABASE, "PUBLIC", "EVENTS")
            .unwrap()
            .len(),
        0
    );
    emu.control().flush();
    assert_eq!(pending.await.unwrap(), StatusCode::NO_CONTENT);
    assert_eq!(
        emu.control()
            .rows(demo::DATABASE, "PUBLIC", "EVENTS")
            .unwrap()
            .len(),
        2
    );
    // Deleted: no more inserts or statuses; get shows the tombstone.
    assert_eq!(
        http.get(&format!("/channels/{ch}/status")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http.insert(&ch, rows("b", 0..1), "5").await.status,
        StatusCode::NOT_FOUND
    );
    let got = http.get(&format!("/channels/{ch}")).await.json();
    assert_eq!(
        (got["deleted"].clone(), got["valid"].clone()),
        (json!(true), json!(false))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn async_delete_answers_at_once_and_flushing_goes_on() {
    let emu = start(HOUR).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    http.insert(&ch, rows("a", 0..2), "4").await;
    assert_eq!(
        http.delete(&format!("/channels/{ch}?sync=false"))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(emu.control().flush(), 1);
    assert_eq!(
        emu.control()
            .rows(demo::DATABASE, "PUBLIC", "EVENTS")
            .unwrap()
            .len(),
        2
    );
    assert_eq!(emu.control().channel(&ch).unwrap().committed_offset, "4");
    emu.shutdown().await;
}

#[tokio::test]
async fn restart_forgets_ids_and_uncommitted_rows_but_not_committed_offsets() {
    let emu = start(HOUR).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    http.insert(&ch, rows("a", 0..1), "1").await;
    emu.control().flush();
    http.insert(&ch, rows("b", 0..1), "2").await;
    emu.control().restart();
    assert_eq!(
        http.insert(&ch, rows("c", 0..1), "3").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http.get(&format!("/channels/{ch}/status")).await.status,
        StatusCode::NOT_FOUND
    );
    let bulk = http
        .get(&format!("/channels/bulk-status?channelIds={ch}"))
        .await
        .json();
    assert_eq!(bulk["notFound"], json!([ch]));
    let reopened = http.open("d", "EVENTS").await;
    assert_eq!(
        http.status(&reopened).await,
        (true, "1".to_owned(), "1".to_owned())
    );
    emu.control().flush();
    assert_eq!(
        emu.control()
            .rows(demo::DATABASE, "PUBLIC", "EVENTS")
            .unwrap(),
        vec![json!({"ID": "a0"})]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_channel_sees_new_columns_only_after_reopening() {
    let emu = start(Duration::ZERO).await;
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    emu.control()
        .execute_sql(
            "ALTER TABLE DEMO_DB.PUBLIC.EVENTS ADD COLUMN IF NOT EXISTS EXTRA VARCHAR",
            None,
            None,
        )
        .unwrap();
    let b = http
        .insert(&ch, json!([{"ID": "a", "EXTRA": "x"}]), "1")
        .await
        .json();
    assert_eq!(b["code"], "ERR_SCHEMA_CONFLICT");
    let ch = http.open("d", "EVENTS").await;
    assert_eq!(
        http.insert(&ch, json!([{"ID": "a", "EXTRA": "x"}]), "1")
            .await
            .json()["success"],
        true
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn bad_requests_are_refused_without_harm() {
    let emu = Emulator::builder()
        .commit_lag(Duration::ZERO)
        .body_limit(4096)
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
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    let path = format!("/channels/{ch}/insert");
    let big = json!({"rows": rows("x", 0..500), "offset": "1"})
        .to_string()
        .into_bytes();
    assert_eq!(
        http.send(Method::POST, &path, &[], big.clone())
            .await
            .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Small on the wire, too large once decompressed.
    let bomb = gzip(&big);
    assert!(big.len() > 4096 && bomb.len() < 4096);
    let reply = http
        .send(Method::POST, &path, &[("content-encoding", "gzip")], bomb)
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    let reply = http
        .send(
            Method::POST,
            &path,
            &[("content-encoding", "gzip")],
            b"not gzip".to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    for body in [
        &b"{"[..],
        b"[]",
        b"{\"rows\": [1], \"offset\": \"1\"}",
        b"{\"rows\": []}",
        b"\xff\xfe",
    ] {
        let reply = http.send(Method::POST, &path, &[], body.to_vec()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(http.get("/nowhere").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        http.get("/_emulator/nowhere").await.status,
        StatusCode::NOT_FOUND
    );
    let reply = http.send(Method::PUT, "/channels", &[], Vec::new()).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "POST");
    // Still serving, nothing stored.
    assert_eq!(http.status(&ch).await, (true, String::new(), String::new()));
    emu.shutdown().await;
}

#[tokio::test]
async fn concurrent_inserts_on_many_channels_store_every_row_once() {
    let emu = start(Duration::ZERO).await;
    let http = std::sync::Arc::new(Http::new(&emu));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..8u32 {
        let http = std::sync::Arc::clone(&http);
        tasks.spawn(async move {
            let ch = http.open(&format!("dest-{c}"), "EVENTS").await;
            for i in 0..10u32 {
                let reply = http
                    .insert(&ch, rows(&format!("{c}-{i}-"), 0..5), &(i + 1).to_string())
                    .await;
                assert_eq!(reply.json()["success"], true);
            }
            http.status(&ch).await
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), (true, "10".to_owned(), "10".to_owned()));
    }
    let stored = emu
        .control()
        .rows(demo::DATABASE, "PUBLIC", "EVENTS")
        .unwrap();
    let mut ids: Vec<&str> = stored.iter().map(|r| r["ID"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((stored.len(), ids.len()), (400, 400));
    emu.shutdown().await;
}

#[tokio::test]
async fn a_full_buffer_with_stalled_commits_answers_503() {
    let emu = Emulator::builder()
        .commit_lag(HOUR)
        .max_buffered_bytes_per_channel(80)
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
    let http = Http::new(&emu);
    let ch = http.open("d", "EVENTS").await;
    let body = |offset: &str| json!({"rows": rows("x", 0..3), "offset": offset});
    let path = format!("/channels/{ch}/insert");
    assert_eq!(
        http.post_json(&path, &body("1")).await.json()["success"],
        true
    );
    // Past the bound: the oldest insert commits early, as the SDK flushes a full buffer.
    assert_eq!(
        http.post_json(&path, &body("2")).await.json()["success"],
        true
    );
    assert_eq!(http.status(&ch).await.1, "1");
    emu.control().stall_commits(Some(&ch));
    assert_eq!(
        http.post_json(&path, &body("3")).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    emu.shutdown().await;
}
