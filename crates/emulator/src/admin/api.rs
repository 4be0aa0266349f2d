//! The admin API under [`ADMIN_PREFIX`]: the [`Control`] handle over HTTP, for tests in other languages
//! and for poking a running binary with curl. Not logged in the call log and never faulted.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    faults::{DropMode, Endpoint, Failure},
    http::{Reject, Resp, error_response, json_response, query_value},
    state::Control,
};

/// The reserved path prefix of the admin API.
pub const ADMIN_PREFIX: &str = "/_emulator/";

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChannelArg {
    channel_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FailArg {
    endpoint: Endpoint,
    #[serde(default = "one")]
    count: u32,
    status: Option<u16>,
    code: Option<String>,
    http_code: Option<u16>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DropArg {
    endpoint: Endpoint,
    #[serde(default = "one")]
    count: u32,
    applied: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LatencyArg {
    endpoint: Endpoint,
    millis: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InTransitArg {
    #[serde(default = "one")]
    count: u32,
    millis: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OffsetArg {
    offset: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LagArg {
    millis: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnabledArg {
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SqlArg {
    statement: String,
    database: Option<String>,
    schema: Option<String>,
}

fn one() -> u32 {
    1
}

fn ok(extra: Value) -> Resp {
    let mut body = json!({"ok": true});
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    json_response(StatusCode::OK, &body)
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Reject> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(text).map_err(|e| {
        Reject::new(
            StatusCode::BAD_REQUEST,
            format!("invalid admin request: {e}"),
        )
    })
}

fn table_args(query: Option<&str>) -> Result<(String, String, String), Reject> {
    let get = |k: &str| query_value(query, k).filter(|v| !v.is_empty());
    match (get("database"), get("schema"), get("table")) {
        (Some(d), Some(s), Some(t)) => Ok((d, s, t)),
        _ => Err(Reject::new(
            StatusCode::BAD_REQUEST,
            "give database, schema and table as query parameters",
        )),
    }
}

/// Serves one admin call; `path` is below [`ADMIN_PREFIX`].
pub(crate) fn serve(
    control: &Control,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &Bytes,
) -> Resp {
    handle(control, method, path, query, body).unwrap_or_else(|reject| reject.response())
}

fn handle(
    control: &Control,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &Bytes,
) -> Result<Resp, Reject> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let post = *method == Method::POST;
    let get = *method == Method::GET;
    let resp = match (segments.as_slice(), post, get) {
        (["restart"], true, _) => {
            control.restart();
            ok(json!({}))
        }
        (["flush"], true, _) => ok(json!({"committed": control.flush()})),
        (["stall"], true, _) => {
            let arg: ChannelArg = parse(body)?;
            ok(json!({"known": control.stall_commits(arg.channel_id.as_deref())}))
        }
        (["resume"], true, _) => {
            let arg: ChannelArg = parse(body)?;
            ok(json!({"known": control.resume_commits(arg.channel_id.as_deref())}))
        }
        (["bulk-status-lie"], true, _) => {
            let arg: EnabledArg = parse(body)?;
            control.set_bulk_status_lie(arg.enabled);
            ok(json!({}))
        }
        (["superseded-flush"], true, _) => {
            let arg: EnabledArg = parse(body)?;
            control.set_superseded_flush(arg.enabled);
            ok(json!({}))
        }
        (["commit-lag"], true, _) => {
            let arg: LagArg = parse(body)?;
            control.set_commit_lag(Duration::from_millis(arg.millis));
            ok(json!({}))
        }
        (["commit-lag"], _, true) => ok(
            json!({"millis": u64::try_from(control.commit_lag().as_millis()).unwrap_or(u64::MAX)}),
        ),
        (["faults", "fail"], true, _) => {
            let arg: FailArg = parse(body)?;
            let failure = match (arg.status, arg.code) {
                (None, Some(code)) => Failure::ChannelCode {
                    code,
                    http_code: arg.http_code.unwrap_or(400),
                },
                (Some(status), None) if StatusCode::from_u16(status).is_ok() => {
                    Failure::Status { status }
                }
                _ => {
                    return Err(Reject::new(
                        StatusCode::BAD_REQUEST,
                        "give either a valid `status` or a `code`",
                    ));
                }
            };
            control.fail_next(arg.endpoint, arg.count, failure);
            ok(json!({}))
        }
        (["faults", "drop"], true, _) => {
            let arg: DropArg = parse(body)?;
            let mode = if arg.applied {
                DropMode::Applied
            } else {
                DropMode::NotApplied
            };
            control.drop_next(arg.endpoint, arg.count, mode);
            ok(json!({}))
        }
        (["faults", "latency"], true, _) => {
            let arg: LatencyArg = parse(body)?;
            control.set_latency(arg.endpoint, Duration::from_millis(arg.millis));
            ok(json!({}))
        }
        (["faults", "in-transit"], true, _) => {
            let arg: InTransitArg = parse(body)?;
            control.delay_next_insert(arg.count, Duration::from_millis(arg.millis));
            ok(json!({}))
        }
        (["faults", "clear"], true, _) => {
            control.clear_faults();
            ok(json!({}))
        }
        (["sql"], true, _) => {
            let arg: SqlArg = parse(body)?;
            match control.execute_sql(
                &arg.statement,
                arg.database.as_deref(),
                arg.schema.as_deref(),
            ) {
                Ok(message) => ok(json!({"message": message})),
                Err(e) => json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({"ok": false, "error": e}),
                ),
            }
        }
        (["tables"], _, true) => json_response(StatusCode::OK, &json!(control.tables())),
        (["schemas"], _, true) => {
            let list: Vec<Value> = control
                .schemas()
                .into_iter()
                .map(|(d, s)| json!({"database": d, "schema": s}))
                .collect();
            json_response(StatusCode::OK, &Value::Array(list))
        }
        (["table"], _, true) => {
            let (d, s, t) = table_args(query)?;
            match control.table(&d, &s, &t) {
                Some(info) => json_response(StatusCode::OK, &json!(info)),
                None => error_response(StatusCode::NOT_FOUND, "no such table"),
            }
        }
        (["rows"], _, true) => {
            let (d, s, t) = table_args(query)?;
            match control.rows(&d, &s, &t) {
                Some(rows) => json_response(StatusCode::OK, &Value::Array(rows)),
                None => error_response(StatusCode::NOT_FOUND, "no such table"),
            }
        }
        (["channels"], _, true) => json_response(StatusCode::OK, &json!(control.channels())),
        (["channels", id], _, true) => match control.channel(id) {
            Some(info) => json_response(StatusCode::OK, &json!(info)),
            None => error_response(StatusCode::NOT_FOUND, "no such channel"),
        },
        (["channels", id, "invalidate"], true, _) => {
            ok(json!({"known": control.invalidate_channel(id)}))
        }
        (["channels", id, "committed-offset"], true, _) => {
            let arg: OffsetArg = parse(body)?;
            ok(json!({"known": control.set_committed_offset(id, &arg.offset)}))
        }
        (["channels", id, "drop-name"], true, _) => {
            ok(json!({"known": control.drop_channel_name(id)}))
        }
        (["calls"], _, true) => json_response(StatusCode::OK, &json!(control.calls())),
        (["calls"], _, _) if *method == Method::DELETE => {
            control.clear_calls();
            ok(json!({}))
        }
        _ => error_response(
            StatusCode::NOT_FOUND,
            &format!("no admin route {method} {ADMIN_PREFIX}{path}"),
        ),
    };
    Ok(resp)
}
