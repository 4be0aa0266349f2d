//! The SQL API: key-pair JWT verification and the DDL subset, answered in Snowflake's JSON shapes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use snowpipe_emulator::{Emulator, demo, fingerprint, jwt, public_key_der};

use crate::common::{DEMO_KEY_DES3, Http, OTHER_PRIVATE_KEY, OTHER_PUBLIC_KEY, Reply};

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn demo_token() -> String {
    jwt::sign(
        demo::PRIVATE_KEY_PEM,
        None,
        demo::ACCOUNT,
        demo::USER,
        now(),
        3600,
    )
    .unwrap()
}

async fn run(http: &Http, token: &str, body: &Value) -> Reply {
    let auth = format!("Bearer {token}");
    http.send(
        Method::POST,
        "/api/v2/statements",
        &[
            ("authorization", auth.as_str()),
            ("x-snowflake-authorization-token-type", "KEYPAIR_JWT"),
            ("content-type", "application/json"),
        ],
        body.to_string().into_bytes(),
    )
    .await
}

fn statement(sql: &str) -> Value {
    json!({"statement": sql, "timeout": 60, "database": demo::DATABASE, "schema": "PUBLIC",
           "warehouse": demo::WAREHOUSE, "role": demo::ROLE})
}

async fn emulator() -> (Emulator, Http) {
    let emu = Emulator::builder()
        .commit_lag(Duration::ZERO)
        .start()
        .await
        .unwrap();
    let http = Http::new(&emu);
    (emu, http)
}

#[tokio::test]
async fn ddl_with_a_good_token_answers_like_snowflake() {
    let (emu, http) = emulator().await;
    let token = demo_token();
    let reply = run(
        &http,
        &token,
        &statement("CREATE SCHEMA IF NOT EXISTS \"Odd Schema\""),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let b = reply.json();
    assert_eq!(
        b["data"],
        json!([["Schema \"Odd Schema\" successfully created."]])
    );
    assert_eq!(b["code"], "090001");
    assert_eq!(b["resultSetMetaData"]["numRows"], 1);
    assert!(!b["statementHandle"].as_str().unwrap().is_empty());
    let again = run(
        &http,
        &token,
        &statement("CREATE SCHEMA IF NOT EXISTS \"Odd Schema\""),
    )
    .await
    .json();
    assert_eq!(
        again["data"],
        json!([["\"Odd Schema\" already exists, statement succeeded."]])
    );

    let create = "CREATE TABLE IF NOT EXISTS \"Odd Schema\".\"tâble with \"\"quotes\"\" 🎉\" \
                  (\"ID\" VARCHAR, \"RECEIVED_AT\" TIMESTAMP_TZ, \"spaced col\" NUMBER)";
    assert_eq!(
        run(&http, &token, &statement(create)).await.status,
        StatusCode::OK
    );
    let alter = "ALTER TABLE \"Odd Schema\".\"tâble with \"\"quotes\"\" 🎉\" ADD COLUMN IF NOT EXISTS \
                 \"ID\" VARCHAR, \"NEW\" BOOLEAN, \"JSON\" VARIANT";
    assert_eq!(
        run(&http, &token, &statement(alter)).await.status,
        StatusCode::OK
    );
    let info = emu
        .control()
        .table(
            demo::DATABASE,
            "\"Odd Schema\"",
            "\"tâble with \"\"quotes\"\" 🎉\"",
        )
        .unwrap();
    let cols: Vec<(String, String)> = info
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty.clone()))
        .collect();
    assert_eq!(
        cols,
        [
            ("ID", "VARCHAR(16777216)"),
            ("RECEIVED_AT", "TIMESTAMP_TZ(9)"),
            ("spaced col", "NUMBER(38,0)"),
            ("NEW", "BOOLEAN"),
            ("JSON", "VARIANT")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    // The call log keeps the statements, so tests can assert which DDL ran.
    let statements: Vec<_> = emu
        .control()
        .calls()
        .into_iter()
        .filter_map(|c| c.statement)
        .collect();
    assert_eq!(statements.len(), 4);
    emu.shutdown().await;
}

#[tokio::test]
async fn encrypted_keys_sign_too() {
    let (emu, http) = emulator().await;
    for key in [demo::ENCRYPTED_PRIVATE_KEY_PEM, DEMO_KEY_DES3] {
        let token = jwt::sign(
            key,
            Some(demo::PRIVATE_KEY_PASSPHRASE),
            "demo",
            "demo_user",
            now(),
            60,
        )
        .unwrap();
        assert_eq!(
            run(&http, &token, &statement("CREATE SCHEMA IF NOT EXISTS S"))
                .await
                .status,
            StatusCode::OK
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn bad_tokens_answer_401() {
    let (emu, http) = emulator().await;
    let sql = statement("CREATE SCHEMA IF NOT EXISTS S");
    // Signed with a key the user never registered.
    let wrong_key = jwt::sign(
        OTHER_PRIVATE_KEY,
        None,
        demo::ACCOUNT,
        demo::USER,
        now(),
        3600,
    )
    .unwrap();
    // Claiming the registered key's fingerprint, signed with another key.
    let forged = {
        let demo_fp = fingerprint(&public_key_der(demo::PUBLIC_KEY_PEM).unwrap());
        let other_fp = fingerprint(&public_key_der(OTHER_PUBLIC_KEY).unwrap());
        let parts: Vec<&str> = wrong_key.split('.').collect();
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap())
            .unwrap()
            .replace(&other_fp, &demo_fp);
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims),
            parts[2]
        )
    };
    let expired = jwt::sign(
        demo::PRIVATE_KEY_PEM,
        None,
        demo::ACCOUNT,
        demo::USER,
        now() - 7200,
        3600,
    )
    .unwrap();
    let other_user = jwt::sign(
        demo::PRIVATE_KEY_PEM,
        None,
        demo::ACCOUNT,
        "SOMEONE",
        now(),
        3600,
    )
    .unwrap();
    let other_account = jwt::sign(
        demo::PRIVATE_KEY_PEM,
        None,
        "ELSEWHERE",
        demo::USER,
        now(),
        3600,
    )
    .unwrap();
    for (name, token) in [
        ("wrong key", wrong_key.as_str()),
        ("forged fingerprint", forged.as_str()),
        ("expired", expired.as_str()),
        ("unknown user", other_user.as_str()),
        ("unknown account", other_account.as_str()),
        ("garbage", "abc.def.ghi"),
    ] {
        let reply = run(&http, token, &sql).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(reply.json()["code"], "390144", "{name}");
    }
    let good = demo_token();
    let no_header = http
        .send(
            Method::POST,
            "/api/v2/statements",
            &[],
            sql.to_string().into_bytes(),
        )
        .await;
    assert_eq!(no_header.status, StatusCode::UNAUTHORIZED);
    let auth = format!("Bearer {good}");
    let wrong_type = http
        .send(
            Method::POST,
            "/api/v2/statements",
            &[
                ("authorization", auth.as_str()),
                ("x-snowflake-authorization-token-type", "OAUTH"),
            ],
            sql.to_string().into_bytes(),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::UNAUTHORIZED);
    // Nothing ran.
    assert!(!emu.control().schemas().iter().any(|(_, s)| s == "S"));
    emu.shutdown().await;
}

#[tokio::test]
async fn sql_errors_have_snowflake_codes() {
    let (emu, http) = emulator().await;
    let token = demo_token();
    let check = async |body: Value, status: StatusCode, code: &str| {
        let reply = run(&http, &token, &body).await;
        assert_eq!(reply.status, status, "{body}");
        let b = reply.json();
        assert_eq!(b["code"], code, "{b}");
        assert!(!b["message"].as_str().unwrap().is_empty());
        b
    };
    let b = check(
        statement("CREATE TABLE NOPE.T (A INT)"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "002003",
    )
    .await;
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .starts_with("SQL compilation error:")
    );
    assert_eq!(b["sqlState"], "02000");
    check(
        statement("ALTER TABLE PUBLIC.NOPE ADD COLUMN A INT"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "002003",
    )
    .await;
    check(
        statement("SELECT 1"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "001003",
    )
    .await;
    check(
        statement("DROP TABLE X"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "001003",
    )
    .await;
    check(
        statement("CREATE TABLE T (A GEOGRAPHY)"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "002040",
    )
    .await;
    check(
        statement("CREATE SCHEMA A; CREATE SCHEMA B"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "000008",
    )
    .await;
    check(statement(""), StatusCode::UNPROCESSABLE_ENTITY, "001003").await;
    let mut other_role = statement("CREATE SCHEMA IF NOT EXISTS S");
    other_role["role"] = json!("ACCOUNTADMIN");
    check(other_role, StatusCode::FORBIDDEN, "390189").await;
    let mut no_db = statement("CREATE SCHEMA IF NOT EXISTS S");
    no_db["database"] = Value::Null;
    check(no_db, StatusCode::UNPROCESSABLE_ENTITY, "090105").await;
    let mut missing_db = statement("CREATE SCHEMA IF NOT EXISTS S");
    missing_db["database"] = json!("NOPE");
    check(missing_db, StatusCode::UNPROCESSABLE_ENTITY, "002003").await;
    let reply = http
        .send(
            Method::POST,
            "/api/v2/statements",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("x-snowflake-authorization-token-type", "KEYPAIR_JWT"),
            ],
            b"{oops".to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    emu.shutdown().await;
}
