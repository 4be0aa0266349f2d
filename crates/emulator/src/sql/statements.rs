//! Snowflake's SQL API v2 (`POST /api/v2/statements`), the subset the manager uses for DDL and
//! `DESCRIBE TABLE` (and the two queries and `DROP SCHEMA` the live check reads back and cleans up
//! with): key-pair JWT authentication and one statement per request, answered in the API's JSON shapes.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    auth::jwt,
    http::{Outcome, Resp, json_response},
    state::Core,
    store::{ResultSet, SqlContext, SqlError, StatementResult, ident},
};

#[derive(Deserialize)]
struct StatementRequest {
    statement: Option<String>,
    database: Option<String>,
    schema: Option<String>,
    role: Option<String>,
    /// Accepted and ignored: DDL needs no warehouse in the emulator.
    #[serde(rename = "warehouse")]
    _warehouse: Option<String>,
    /// Accepted and ignored.
    #[serde(rename = "timeout")]
    _timeout: Option<Value>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn new_handle() -> String {
    let mut b = [0u8; 16];
    // A failed RNG only makes handles less unique; they identify nothing the emulator looks up.
    let _ = aws_lc_rs::rand::fill(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn unauthorized(message: &str) -> Resp {
    json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"code": "390144", "message": message}),
    )
}

fn error_answer(err: &SqlError, handle: &str) -> Resp {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    json_response(
        status,
        &json!({"code": err.code, "message": err.message, "sqlState": err.sql_state, "statementHandle": handle}),
    )
}

/// One `rowType` entry: every column the emulator answers is text, as DDL status and `DESCRIBE`
/// columns are in Snowflake.
fn text_column(name: &str) -> Value {
    json!({"name": name, "database": "", "schema": "", "table": "", "nullable": true,
           "length": 16_777_216, "type": "text", "scale": null, "precision": null,
           "byteLength": 16_777_216, "collation": null})
}

/// A 200 answer: the given `resultSetMetaData` and `data` in the SQL API's success envelope.
fn ok_answer(meta: &Value, data: &Value, handle: &str) -> Resp {
    let created_on = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    json_response(
        StatusCode::OK,
        &json!({
            "resultSetMetaData": meta,
            "data": data,
            "code": "090001",
            "statementStatusUrl": format!("/api/v2/statements/{handle}"),
            "requestId": new_handle(),
            "sqlState": "00000",
            "statementHandle": handle,
            "message": "Statement executed successfully.",
            "createdOn": created_on,
        }),
    )
}

/// A DDL statement's answer: one `status` row holding Snowflake's message.
fn success_answer(message: &str, handle: &str) -> Resp {
    let length = message.len();
    let meta = json!({
        "numRows": 1,
        "format": "jsonv2",
        "partitionInfo": [{"rowCount": 1, "uncompressedSize": length + 6}],
        "rowType": [text_column("status")],
    });
    ok_answer(&meta, &json!([[message]]), handle)
}

/// A result set's answer: `jsonv2` rows of strings and nulls, in one partition.
fn rows_answer(rows: &ResultSet, handle: &str) -> Resp {
    let data = json!(rows.rows);
    // The partition's size is that of the data as sent, the closest the emulator has to Snowflake's
    // uncompressed chunk size.
    let size = serde_json::to_string(&data).map_or(0, |text| text.len());
    let meta = json!({
        "numRows": rows.rows.len(),
        "format": "jsonv2",
        "partitionInfo": [{"rowCount": rows.rows.len(), "uncompressedSize": size}],
        "rowType": rows.columns.iter().map(|c| text_column(c)).collect::<Vec<_>>(),
    });
    ok_answer(&meta, &data, handle)
}

/// Serves one SQL API call.
pub(crate) fn serve(core: &Core, headers: &HeaderMap, body: &Bytes) -> Outcome {
    let handle = new_handle();
    let token_type = headers
        .get("X-Snowflake-Authorization-Token-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let Some(token) = bearer.map(str::trim).filter(|t| !t.is_empty()) else {
        return Outcome::new(unauthorized(
            "Authorization header is missing or not a Bearer token.",
        ));
    };
    if !token_type.eq_ignore_ascii_case("KEYPAIR_JWT") {
        return Outcome::new(unauthorized(
            "Unsupported authorization token type; the emulator accepts X-Snowflake-Authorization-Token-Type: KEYPAIR_JWT.",
        ));
    }
    let subject = jwt::verify(token, unix_now(), |account, user| {
        if crate::config::account_key(account) != core.account {
            return None;
        }
        core.users
            .get(&ident::resolve(user))
            .map(|u| u.keys.clone())
    });
    let subject = match subject {
        Ok(s) => s,
        Err(e) => return Outcome::new(unauthorized(&format!("JWT token is invalid. {e}."))),
    };
    let req: StatementRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return Outcome::new(json_response(
                StatusCode::BAD_REQUEST,
                &json!({"code": "390142", "message": format!("Incoming request does not contain a valid payload: {e}")}),
            ));
        }
    };
    let statement = req.statement.unwrap_or_default();
    let outcome = |resp: Resp| {
        let mut o = Outcome::new(resp);
        o.statement = Some(statement.clone());
        o
    };
    let Some(user) = core.users.get(&ident::resolve(&subject.user)) else {
        return outcome(unauthorized("JWT token is invalid. Unknown user."));
    };
    let role = match req.role.as_deref().map(ident::resolve) {
        Some(role) if !user.roles.contains(&role) => {
            let msg = format!(
                "Role '{}' specified in the connect string is not granted to this user. Contact your local system administrator, or attempt to login with another role, e.g. PUBLIC.",
                ident::display(&role)
            );
            return outcome(json_response(
                StatusCode::FORBIDDEN,
                &json!({"code": "390189", "message": msg}),
            ));
        }
        Some(role) => role,
        None => user.roles.first().cloned().unwrap_or_default(),
    };
    let ctx = SqlContext {
        database: req
            .database
            .as_deref()
            .filter(|d| !d.is_empty())
            .map(ident::resolve),
        schema: req
            .schema
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(ident::resolve),
        role: Some(role),
    };
    let result = core.lock().run_sql(&statement, &ctx);
    match result {
        Ok(StatementResult::Status(message)) => outcome(success_answer(&message, &handle)),
        Ok(StatementResult::Rows(rows)) => outcome(rows_answer(&rows, &handle)),
        Err(e) => outcome(error_answer(&e, &handle)),
    }
}
