//! The SQL API: key-pair JWT verification, the DDL subset and `DESCRIBE TABLE`, answered in Snowflake's
//! JSON shapes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use snowpipe_emulator::{Database, Emulator, demo, fingerprint, jwt, public_key_der};

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
    // A missing table is filed under SQL state 42S02, a missing schema or database under 02000.
    let b = check(
        statement("ALTER TABLE PUBLIC.NOPE ADD COLUMN A INT"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "002003",
    )
    .await;
    assert_eq!(b["sqlState"], "42S02");
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

/// One expected `DESCRIBE TABLE` row: what the emulator knows (name, type, nullability), the rest as
/// Snowflake answers for a plain column.
fn described(name: &str, ty: &str, nullable: bool) -> Value {
    // Not named `null`: inside `json!` that word is JSON's null, not a variable.
    let null_flag = if nullable { "Y" } else { "N" };
    json!([
        name, ty, "COLUMN", null_flag, null, "N", "N", null, null, null, null, null, null
    ])
}

#[tokio::test]
async fn describe_table_answers_columns_like_snowflake() {
    let (emu, http) = emulator().await;
    let token = demo_token();
    let ok = async |sql: &str| {
        let reply = run(&http, &token, &statement(sql)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{sql}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()
    };
    ok("CREATE TABLE \"Mixed Case\" (ID INT NOT NULL, PRICE NUMBER(38,2), NAME VARCHAR(10) NOT NULL, \
        \"camelCase\" STRING, BODY TEXT, SCORE DOUBLE PRECISION, RATIO REAL, OK BOOLEAN, \
        received_at TIMESTAMP_TZ, SEEN_AT TIMESTAMP_NTZ(6), LOCAL_AT TIMESTAMP_LTZ, TS TIMESTAMP, \
        DAY_OF DATE, AT_TIME TIME, DOC VARIANT, OBJ OBJECT, LIST ARRAY, BLOB BINARY, SHORT_BLOB BINARY(16), \
        WIDE NUMBER(10), CODE CHAR)")
    .await;
    ok("ALTER TABLE \"Mixed Case\" ADD COLUMN \"addedLater\" BIGINT NOT NULL, EXTRA VARCHAR").await;
    let expected = json!([
        described("ID", "NUMBER(38,0)", false),
        described("PRICE", "NUMBER(38,2)", true),
        described("NAME", "VARCHAR(10)", false),
        described("camelCase", "VARCHAR(16777216)", true),
        described("BODY", "VARCHAR(16777216)", true),
        described("SCORE", "FLOAT", true),
        described("RATIO", "FLOAT", true),
        described("OK", "BOOLEAN", true),
        described("RECEIVED_AT", "TIMESTAMP_TZ(9)", true),
        described("SEEN_AT", "TIMESTAMP_NTZ(6)", true),
        described("LOCAL_AT", "TIMESTAMP_LTZ(9)", true),
        described("TS", "TIMESTAMP_NTZ(9)", true),
        described("DAY_OF", "DATE", true),
        described("AT_TIME", "TIME(9)", true),
        described("DOC", "VARIANT", true),
        described("OBJ", "OBJECT", true),
        described("LIST", "ARRAY", true),
        described("BLOB", "BINARY(8388608)", true),
        described("SHORT_BLOB", "BINARY(16)", true),
        described("WIDE", "NUMBER(10,0)", true),
        described("CODE", "VARCHAR(1)", true),
        described("addedLater", "NUMBER(38,0)", false),
        described("EXTRA", "VARCHAR(16777216)", true),
    ]);

    let b = ok("DESCRIBE TABLE \"Mixed Case\"").await;
    assert_eq!(b["data"], expected);
    assert_eq!(b["code"], "090001");
    assert_eq!(b["sqlState"], "00000");
    assert_eq!(b["message"], "Statement executed successfully.");
    assert!(!b["statementHandle"].as_str().unwrap().is_empty());
    let meta = &b["resultSetMetaData"];
    assert_eq!(meta["numRows"], 23);
    assert_eq!(meta["format"], "jsonv2");
    assert_eq!(meta["partitionInfo"][0]["rowCount"], 23);
    assert_eq!(
        meta["partitionInfo"][0]["uncompressedSize"],
        expected.to_string().len()
    );
    let names: Vec<&str> = meta["rowType"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "name",
            "type",
            "kind",
            "null?",
            "default",
            "primary key",
            "unique key",
            "check",
            "expression",
            "comment",
            "policy name",
            "privacy domain",
            "schema evolution record"
        ]
    );
    for column in meta["rowType"].as_array().unwrap() {
        assert_eq!(column["type"], "text", "{column}");
        assert_eq!(column["nullable"], true, "{column}");
    }

    // The short form, with the name qualified instead of taken from the request's context.
    let mut short = statement("desc table demo_db.public.\"Mixed Case\";");
    short["database"] = Value::Null;
    short["schema"] = Value::Null;
    let reply = run(&http, &token, &short).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["data"], expected);
    // Both describes are in the call log, as any statement is.
    let statements: Vec<_> = emu
        .control()
        .calls()
        .into_iter()
        .filter_map(|c| c.statement)
        .collect();
    assert_eq!(statements.len(), 4);
    // DDL answers keep their one-row status shape.
    let b = ok("CREATE SCHEMA IF NOT EXISTS PUBLIC").await;
    assert_eq!(
        b["data"],
        json!([["PUBLIC already exists, statement succeeded."]])
    );
    assert_eq!(b["resultSetMetaData"]["rowType"][0]["name"], "status");
    emu.shutdown().await;
}

#[tokio::test]
async fn describing_what_is_not_there_or_not_granted_answers_002003() {
    // A database the demo role may not use: to that role it does not exist.
    let emu = Emulator::builder()
        .commit_lag(Duration::ZERO)
        .database(Database::new("SECRET").role("OTHER_ROLE"))
        .start()
        .await
        .unwrap();
    emu.control()
        .execute_sql("CREATE TABLE SECRET.PUBLIC.T (ID INT)", None, None)
        .unwrap();
    let http = Http::new(&emu);
    let token = demo_token();
    for (sql, shown) in [
        ("DESCRIBE TABLE NOPE", "DEMO_DB.PUBLIC.NOPE"),
        ("DESC TABLE \"nope\"", "DEMO_DB.PUBLIC.\"nope\""),
        ("DESCRIBE TABLE NO_SCHEMA.T", "DEMO_DB.NO_SCHEMA.T"),
        ("DESCRIBE TABLE NO_DB.PUBLIC.T", "NO_DB.PUBLIC.T"),
        ("DESCRIBE TABLE SECRET.PUBLIC.T", "SECRET.PUBLIC.T"),
    ] {
        let reply = run(&http, &token, &statement(sql)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{sql}");
        let b = reply.json();
        assert_eq!(b["code"], "002003", "{sql}: {b}");
        assert_eq!(b["sqlState"], "42S02", "{sql}: {b}");
        assert_eq!(
            b["message"],
            format!("SQL compilation error:\nTable '{shown}' does not exist or not authorized."),
            "{sql}"
        );
        assert!(!b["statementHandle"].as_str().unwrap().is_empty());
    }
    // Without a current schema an unqualified name cannot resolve, as for the DDL.
    let mut no_schema = statement("DESCRIBE TABLE T");
    no_schema["schema"] = Value::Null;
    let reply = run(&http, &token, &no_schema).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.json()["code"], "090106");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_bad_describe_is_a_syntax_error() {
    let (emu, http) = emulator().await;
    let token = demo_token();
    for (sql, code, message) in [
        (
            "DESCRIBE EVENTS",
            "001003",
            "SQL compilation error:\nsyntax error line 1 at position 9 unexpected 'EVENTS'.",
        ),
        (
            "DESC TABLE",
            "001003",
            "SQL compilation error:\nsyntax error line 1 at position 10 unexpected '<EOF>'.",
        ),
        (
            "DESCRIBE TABLE T COLUMNS",
            "001003",
            "SQL compilation error:\nsyntax error line 1 at position 17 unexpected 'COLUMNS'.",
        ),
        (
            "DESCRIBE TABLE A.B.C.D",
            "001003",
            "SQL compilation error:\nsyntax error line 1 at position 21 unexpected 'D'.",
        ),
    ] {
        let reply = run(&http, &token, &statement(sql)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{sql}");
        let b = reply.json();
        assert_eq!(b["code"], code, "{sql}: {b}");
        assert_eq!(b["sqlState"], "42000", "{sql}: {b}");
        assert_eq!(b["message"], message, "{sql}");
    }
    emu.shutdown().await;
}
