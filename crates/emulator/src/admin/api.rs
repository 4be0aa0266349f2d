//! The admin API under [`ADMIN_PREFIX`]: the [`Control`] handle over HTTP, for tests in other languages
//! and for poking a running binary with curl. Not logged in the call log and never faulted.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    faults::{BodyShape, DropMode, Endpoint, Failure},
    http::{Reject, Resp, error_response, json_response, query_value},
    state::{Control, RestChannelName},
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
    /// REST endpoints: the body's shape (with `status` and `code`).
    shape: Option<BodyShape>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CountArg {
    #[serde(default = "one")]
    count: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RowsArg {
    rows: Vec<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenArg {
    token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsonAnswersArg {
    hostname: Option<bool>,
    token: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MintArg {
    user: String,
    role: Option<String>,
    scope: Option<String>,
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
                (Some(status), code)
                    if StatusCode::from_u16(status).is_ok() && arg.shape.is_some() =>
                {
                    Failure::Shaped {
                        status,
                        // The code live accounts send with retryable failures, unless told otherwise.
                        code: code
                            .unwrap_or_else(|| "ERR_GENERAL_EXCEPTION_RETRY_REQUEST".to_owned()),
                        shape: arg.shape.unwrap_or(BodyShape::Documented),
                    }
                }
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
                        "give either a valid `status`, a `code`, or `status`, `code` and `shape`",
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
        (["rest", rest @ ..], _, _) => rest_route(control, method, rest, body)?,
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

/// A path segment naming part of a REST channel: percent-decoded (names with quotes or spaces come
/// encoded), then resolved as an identifier by [`RestChannelName::new`].
fn decoded(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

fn known(known: bool) -> Resp {
    ok(json!({"known": known}))
}

/// The REST API's faults and inspection, under `rest/`.
fn rest_route(
    control: &Control,
    method: &Method,
    path: &[&str],
    body: &Bytes,
) -> Result<Resp, Reject> {
    let post = *method == Method::POST;
    let get = *method == Method::GET;
    let resp = match (path, post, get) {
        (["channels"], _, true) => json_response(StatusCode::OK, &json!(control.rest_channels())),
        (["channels", db, schema, pipe, channel, action @ ..], _, _) => {
            let name = RestChannelName::new(
                &decoded(db),
                &decoded(schema),
                &decoded(pipe),
                &decoded(channel),
            );
            match (action, post, get) {
                ([], _, true) => match control.rest_channel(&name) {
                    Some(info) => json_response(StatusCode::OK, &json!(info)),
                    None => error_response(StatusCode::NOT_FOUND, "no such channel"),
                },
                (["requests"], _, true) => {
                    json_response(StatusCode::OK, &json!(control.rest_requests(&name)))
                }
                (["invalidate"], true, _) => known(control.invalidate_rest_channel(&name)),
                (["stall"], true, _) => known(control.stall_rest_commits(&name)),
                (["resume"], true, _) => known(control.resume_rest_commits(&name)),
                (["drop"], true, _) => known(control.drop_rest_channel(&name)),
                (["committed-token"], true, _) => {
                    let arg: TokenArg = parse(body)?;
                    known(control.set_rest_committed_token(&name, arg.token.as_deref()))
                }
                (["reject-rows"], true, _) => {
                    let arg: RowsArg = parse(body)?;
                    known(control.reject_rows_at_commit(&name, &arg.rows))
                }
                (["throttle"], true, _) => {
                    let arg: CountArg = parse(body)?;
                    known(control.throttle_appends(&name, arg.count))
                }
                (["hold"], true, _) => {
                    let arg: CountArg = parse(body)?;
                    known(control.hold_next_appends(&name, arg.count))
                }
                _ => return Err(no_route(method, path)),
            }
        }
        (["expire-tokens"], true, _) => {
            control.expire_scoped_tokens();
            ok(json!({}))
        }
        (["json-answers"], true, _) => {
            let arg: JsonAnswersArg = parse(body)?;
            if let Some(h) = arg.hostname {
                control.set_hostname_as_json(h);
            }
            if let Some(t) = arg.token {
                control.set_token_as_json(t);
            }
            ok(json!({}))
        }
        (["counters-lag"], true, _) => {
            let arg: EnabledArg = parse(body)?;
            control.set_counters_lag(arg.enabled);
            ok(json!({}))
        }
        (["token"], true, _) => {
            let arg: MintArg = parse(body)?;
            let scope = arg.scope.unwrap_or_else(|| control.rest_host().to_owned());
            match control.scoped_token(&arg.user, arg.role.as_deref(), &scope) {
                Some(token) => ok(json!({"token": token})),
                None => error_response(StatusCode::NOT_FOUND, "no such user"),
            }
        }
        _ => return Err(no_route(method, path)),
    };
    Ok(resp)
}

fn no_route(method: &Method, path: &[&str]) -> Reject {
    Reject::new(
        StatusCode::NOT_FOUND,
        format!(
            "no admin route {method} {ADMIN_PREFIX}rest/{}",
            path.join("/")
        ),
    )
}
