//! The REST API's calls: what each checks, in which order, and what it answers.
//!
//! Every call first needs `Accept: application/json` (406 without it: the page says the service
//! answers an error, and a strict emulator keeps the client honest). The account host's calls take a
//! key-pair JWT; the ingest host's take a scoped token (`X-Snowflake-Authorization-Token-Type: OAUTH`)
//! or a user's programmatic access token. Bodies are read and checked outside the state's lock; only
//! the channel's bookkeeping (and, with no commit lag, the commit) runs under it.

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    MAX_APPEND_BYTES,
    answers::{self, BAD_REQUEST, FORBIDDEN, NOT_ACCEPTABLE, TOO_MANY_REQUESTS, UNAUTHORIZED},
    routes::{ChannelPath, PipePath, Route},
};
use crate::{
    auth::{Grant, jwt},
    http::{Outcome, decode_rest_body, empty_response, json_response, query_pairs, text_response},
    state::{Core, State, unix_millis, unix_seconds},
    store::{
        Appended, ChannelError, ChannelStatus, Converted, LookupError, PIPE_SUFFIX, Pending,
        RestKey, RestRequest, TableRef, TokenCheck, check_object, ident, split_lines,
    },
};

/// The grant type of the token exchange.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// A channel reopened since the token was handed out (or invalidated): reopen and resume.
const STALE: &str = "STALE_CONTINUATION_TOKEN_SEQUENCER";
/// A continuation token this channel never issued.
const INVALID_TOKEN: &str = "ERR_INVALID_CONTINUATION_TOKEN";
const UNCOMMITTED: &str = "ERR_CHANNEL_HAS_UNCOMMITTED_DATA";
const NO_CHANNEL: &str = "ERR_CHANNEL_DOES_NOT_EXIST_OR_NOT_AUTHORIZED";

/// Who an ingest call speaks for.
struct Principal {
    role: String,
}

/// Serves one REST call; `body` is as received (decoded here, where its encoding matters).
pub(crate) fn serve(
    core: &Core,
    route: &Route,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
) -> Outcome {
    if !accepts_json(headers) {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            NOT_ACCEPTABLE,
            "send `Accept: application/json`",
        );
    }
    let mut outcome = match route {
        Route::Hostname => hostname(core, headers),
        Route::Token => token(core, headers, &body),
        Route::Open(c) => ingest(core, headers, |p| open(core, p, c, &body)),
        Route::Append(c) => ingest(core, headers, |p| append(core, p, c, headers, query, body)),
        Route::Drop(c) => ingest(core, headers, |p| drop_channel(core, p, c, &body)),
        Route::BulkStatus(pipe) => ingest(core, headers, |p| bulk_status(core, p, pipe, &body)),
    };
    outcome.channel_id = route.channel_label();
    outcome
}

/// An error answer, with its code kept for the request log.
fn refuse(status: StatusCode, code: &str, message: &str) -> Outcome {
    let mut o = Outcome::new(answers::error(status, code, message));
    o.code = Some(code.to_owned());
    o
}

/// Why a step of a call refuses it: small to pass around, made an answer by [`Refusal::outcome`].
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn outcome(self) -> Outcome {
        refuse(self.status, self.code, &self.message)
    }
}

fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let media = range.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("application/json")
        })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn token_type(headers: &HeaderMap) -> String {
    headers
        .get("X-Snowflake-Authorization-Token-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_uppercase()
}

/// Verifies a key-pair JWT against the user's registered keys, as the SQL API does.
fn verify_jwt(core: &Core, token: &str) -> Result<jwt::Subject, jwt::JwtError> {
    jwt::verify(token, unix_seconds(), |account, user| {
        if crate::config::account_key(account) != core.account {
            return None;
        }
        core.users
            .get(&ident::resolve(user))
            .map(|u| u.keys.clone())
    })
}

/// `GET /v2/streaming/hostname`: this emulator's own base URL, bare (or as JSON behind a knob).
fn hostname(core: &Core, headers: &HeaderMap) -> Outcome {
    let Some(token) = bearer(headers) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            UNAUTHORIZED,
            "a key-pair JWT is required",
        );
    };
    if token_type(headers) != "KEYPAIR_JWT" {
        return refuse(
            StatusCode::UNAUTHORIZED,
            UNAUTHORIZED,
            "hostname discovery takes a key-pair JWT (X-Snowflake-Authorization-Token-Type: KEYPAIR_JWT)",
        );
    }
    if let Err(e) = verify_jwt(core, token) {
        return refuse(StatusCode::UNAUTHORIZED, UNAUTHORIZED, &e.to_string());
    }
    let url = format!("http://{}", core.host);
    let as_json = core.lock().rest_answers.hostname_json;
    Outcome::new(if as_json {
        json_response(StatusCode::OK, &json!({"hostname": url}))
    } else {
        text_response(StatusCode::OK, &url)
    })
}

/// `POST /oauth/token`: a key-pair JWT (header or `assertion`) exchanged for a scoped token.
fn token(core: &Core, headers: &HeaderMap, body: &Bytes) -> Outcome {
    let Ok(form) = std::str::from_utf8(body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            BAD_REQUEST,
            "the form is not UTF-8",
        );
    };
    let form = query_pairs(Some(form));
    let field = |name: &str| {
        form.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    };
    let Some(assertion) = bearer(headers).or_else(|| field("assertion").filter(|a| !a.is_empty()))
    else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            UNAUTHORIZED,
            "give the key-pair JWT as `Authorization: Bearer` or the form field `assertion`",
        );
    };
    let subject = match verify_jwt(core, assertion) {
        Ok(s) => s,
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, UNAUTHORIZED, &e.to_string()),
    };
    if field("grant_type") != Some(JWT_BEARER) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("grant_type must be {JWT_BEARER}"),
        );
    }
    let mut host = None;
    let mut role = None;
    for item in field("scope").unwrap_or("").split_whitespace() {
        if let Some(r) = item.strip_prefix("session:role:") {
            role = Some(ident::resolve(r));
            continue;
        }
        let bare = item
            .strip_prefix("https://")
            .or_else(|| item.strip_prefix("http://"))
            .unwrap_or(item)
            .trim_end_matches('/');
        host = Some(bare.to_owned());
    }
    match host {
        Some(h) if h.eq_ignore_ascii_case(&core.host) => {}
        other => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                &format!(
                    "the scope must name this host, {} (got {})",
                    core.host,
                    other.as_deref().unwrap_or("none")
                ),
            );
        }
    }
    let user = ident::resolve(&subject.user);
    let Some(entry) = core.users.get(&user) else {
        return refuse(StatusCode::UNAUTHORIZED, UNAUTHORIZED, "unknown user");
    };
    let role = match role {
        Some(r) if !entry.roles.contains(&r) => {
            return refuse(
                StatusCode::FORBIDDEN,
                FORBIDDEN,
                &format!("Role '{}' is not granted to this user.", ident::display(&r)),
            );
        }
        Some(r) => r,
        None => entry.roles.first().cloned().unwrap_or_default(),
    };
    let grant = Grant {
        account: core.account.clone(),
        user,
        role,
        scope: core.host.clone(),
    };
    let token = core.scoped_tokens.issue(&grant, unix_seconds());
    let as_json = core.lock().rest_answers.token_json;
    Outcome::new(if as_json {
        json_response(StatusCode::OK, &json!({"token": token}))
    } else {
        text_response(StatusCode::OK, &token)
    })
}

/// Authenticates an ingest call, then runs it.
fn ingest(core: &Core, headers: &HeaderMap, call: impl FnOnce(&Principal) -> Outcome) -> Outcome {
    match principal(core, headers) {
        Ok(p) => call(&p),
        Err(message) => refuse(StatusCode::UNAUTHORIZED, UNAUTHORIZED, &message),
    }
}

/// The user and role of an ingest call: a scoped token this emulator issued for this host, or a
/// configured programmatic access token (the user's default role).
fn principal(core: &Core, headers: &HeaderMap) -> Result<Principal, String> {
    let token = bearer(headers).ok_or("a scoped token is required (Authorization: Bearer)")?;
    let kind = token_type(headers);
    if kind == "OAUTH" || kind == "PROGRAMMATIC_ACCESS_TOKEN" {
        let pat = core
            .users
            .values()
            .find(|u| u.pats.iter().any(|p| p == token));
        if let Some(user) = pat {
            return Ok(Principal {
                role: user.roles.first().cloned().unwrap_or_default(),
            });
        }
    }
    if kind == "PROGRAMMATIC_ACCESS_TOKEN" {
        return Err("the programmatic access token is not one configured for a user".to_owned());
    }
    if kind != "OAUTH" {
        return Err(format!(
            "X-Snowflake-Authorization-Token-Type must be OAUTH (a scoped token) or PROGRAMMATIC_ACCESS_TOKEN, not `{kind}`"
        ));
    }
    let grant = core
        .scoped_tokens
        .verify(token, unix_seconds(), &core.host)
        .map_err(|e| e.to_string())?;
    let granted = grant.account == core.account
        && core
            .users
            .get(&grant.user)
            .is_some_and(|u| u.roles.contains(&grant.role));
    if !granted {
        return Err("the token's user or role is no longer known".to_owned());
    }
    Ok(Principal { role: grant.role })
}

/// The table of a default pipe, if the role may see it; otherwise the 404 the page names.
fn resolve_pipe(state: &State, pipe: &PipePath, role: &str) -> Result<TableRef, Refusal> {
    let table = TableRef {
        database: pipe.database.clone(),
        schema: pipe.schema.clone(),
        table: pipe
            .pipe
            .strip_suffix(PIPE_SUFFIX)
            .unwrap_or_default()
            .to_owned(),
    };
    let missing = |code: &'static str, what: &str| {
        Refusal::new(
            StatusCode::NOT_FOUND,
            code,
            format!("{what} does not exist or not authorized."),
        )
    };
    match state.catalog.lookup(&table, role) {
        Ok(_) if !table.table.is_empty() => Ok(table),
        Err(LookupError::Database) => Err(missing(
            "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            &format!("Database '{}'", ident::display(&pipe.database)),
        )),
        Err(LookupError::Schema) => Err(missing(
            "ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            &format!(
                "Schema '{}.{}'",
                ident::display(&pipe.database),
                ident::display(&pipe.schema)
            ),
        )),
        Ok(_) | Err(LookupError::Table) => Err(missing(
            "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            &format!(
                "Pipe '{}.{}.{}'",
                ident::display(&pipe.database),
                ident::display(&pipe.schema),
                ident::display(&pipe.pipe)
            ),
        )),
    }
}

fn key_of(c: &ChannelPath) -> Option<RestKey> {
    RestKey::new(&c.pipe.database, &c.pipe.schema, &c.pipe.pipe, &c.channel)
}

/// A JSON object body; empty means `{}`.
fn object_body(body: &Bytes) -> Result<Map<String, Value>, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            BAD_REQUEST,
            "the body must be a JSON object",
        )),
        Err(e) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            BAD_REQUEST,
            format!("invalid JSON body: {e}"),
        )),
    }
}

/// An optional boolean field; anything but a boolean or null is a 400.
fn flag(body: &Map<String, Value>, name: &str) -> Result<bool, Refusal> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            BAD_REQUEST,
            format!("`{name}` must be a boolean"),
        )),
    }
}

/// `PUT .../channels/{channel}`: creates or reopens the channel.
fn open(core: &Core, who: &Principal, c: &ChannelPath, body: &Bytes) -> Outcome {
    let body = match object_body(body) {
        Ok(b) => b,
        Err(r) => return r.outcome(),
    };
    let fail = match flag(&body, "fail_on_uncommitted_rows") {
        Ok(f) => f,
        Err(r) => return r.outcome(),
    };
    let offset_token = match body.get("offset_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                BAD_REQUEST,
                "`offset_token` must be a string",
            );
        }
    };
    let opened = {
        let mut state = core.lock();
        if let Err(r) = resolve_pipe(&state, &c.pipe, &who.role) {
            return r.outcome();
        }
        let Some(key) = key_of(c) else {
            return refuse(
                StatusCode::NOT_FOUND,
                "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
                "no such pipe",
            );
        };
        state
            .rest
            .open(&key, offset_token, fail, Instant::now(), unix_millis())
            .map(|head| (state.rest.status_at_open(&key), key, head))
    };
    core.notify();
    match opened {
        Ok((Some(status), key, head)) => {
            let mut o = Outcome::new(json_response(
                StatusCode::OK,
                &json!({"next_continuation_token": head, "channel_status": status_json(&key, &status)}),
            ));
            o.token = Some(head);
            o
        }
        Ok((None, ..)) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            answers::RETRY,
            "the channel vanished",
        ),
        Err(_) => refuse(
            StatusCode::CONFLICT,
            UNCOMMITTED,
            "the channel has rows not yet committed; retry the open later",
        ),
    }
}

/// The answer of an append's continuation token that was not the head.
fn token_refusal(check: &TokenCheck) -> Outcome {
    match check {
        TokenCheck::Stale => refuse(
            StatusCode::BAD_REQUEST,
            STALE,
            "the channel was reopened (or invalidated) since this continuation token was issued; reopen it",
        ),
        TokenCheck::NotFound => refuse(
            StatusCode::NOT_FOUND,
            NO_CHANNEL,
            "the channel does not exist",
        ),
        TokenCheck::Replay(head) => {
            let mut o = Outcome::new(json_response(
                StatusCode::OK,
                &json!({"next_continuation_token": head}),
            ));
            o.token = Some(head.clone());
            o
        }
        TokenCheck::Head | TokenCheck::Unknown => refuse(
            StatusCode::BAD_REQUEST,
            INVALID_TOKEN,
            "this continuation token was not issued by the channel",
        ),
    }
}

/// `POST /v2/streaming/data/.../rows`: appends NDJSON rows at the channel's continuation token.
fn append(
    core: &Core,
    who: &Principal,
    c: &ChannelPath,
    headers: &HeaderMap,
    query: Option<&str>,
    raw: Bytes,
) -> Outcome {
    let params = query_pairs(query);
    let param = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let Some(token) = param("continuationToken") else {
        return refuse(
            StatusCode::BAD_REQUEST,
            BAD_REQUEST,
            "`continuationToken` is required",
        );
    };
    let single = param("offsetToken");
    let start = param("startOffsetToken").or_else(|| single.clone());
    let end = param("endOffsetToken").or(single);
    let Some(key) = key_of(c) else {
        let state = core.lock();
        return match resolve_pipe(&state, &c.pipe, &who.role) {
            Err(r) => r.outcome(),
            Ok(_) => refuse(
                StatusCode::NOT_FOUND,
                "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
                "no such pipe",
            ),
        };
    };
    // The cheap checks first, so a stale or replayed append costs no decoding.
    let schema = {
        let state = core.lock();
        if let Err(r) = resolve_pipe(&state, &c.pipe, &who.role) {
            return r.outcome();
        }
        match state.rest.check_token(&key, &token) {
            TokenCheck::Head => {}
            other => return token_refusal(&other).rows(None),
        }
        state.catalog.landing_schema(&key.table)
    };
    let bytes = raw.len();
    let body = match decode_rest_body(headers, raw, core.body_limit, &core.buffers) {
        Ok(b) => b,
        Err(reject) => {
            let mut o = Outcome::new(answers::reject_response(&reject));
            o.code = Some(answers::code_of(reject.status).to_owned());
            return o;
        }
    };
    // UTF-8 checked once for the whole body, so lines are read as text with no check per string.
    let Ok(text) = std::str::from_utf8(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            BAD_REQUEST,
            "the body is not UTF-8",
        );
    };
    let lines = split_lines(&body);
    // The rows are converted here, outside the lock, rather than at the commit that holds it: commits of
    // several channels then do not wait on one another, nor do opens and status calls on them. Reading
    // each line into its row also checks it is an object, so the rows are read once.
    let mut converted = schema.map(|schema| Converted::new(schema, text, &lines));
    if converted.as_ref().is_none_or(|c| c.unreadable.is_some()) {
        for (i, &(s, e)) in lines.iter().enumerate() {
            if let Err(why) = check_object(&text[s..e]) {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    BAD_REQUEST,
                    &format!("line {} is not a JSON object: {why}", i + 1),
                )
                .rows(Some(lines.len()));
            }
        }
        converted = None;
    }
    let row_count = lines.len();
    let now = Instant::now();
    let pending = Pending {
        body,
        lines,
        start,
        end: end.clone(),
        bytes,
        appended_at: now,
        appended_ms: unix_millis(),
        in_transit: false,
        late: false,
        converted,
    };
    let appended = {
        let mut state = core.lock();
        let appended = state.rest.append(&key, &token, pending);
        if matches!(appended, Appended::Taken(_) | Appended::HeldInTransit) {
            state.commit_due(now);
        }
        appended
    };
    core.notify();
    let mut o = match appended {
        Appended::Taken(next) => {
            let mut o = Outcome::new(json_response(
                StatusCode::OK,
                &json!({"next_continuation_token": next}),
            ));
            o.token = Some(next);
            o
        }
        Appended::HeldInTransit => {
            let mut o = Outcome::new(empty_response(StatusCode::OK));
            o.lose_answer = true;
            o
        }
        Appended::Replay(head) => token_refusal(&TokenCheck::Replay(head)),
        Appended::Throttled => refuse(
            StatusCode::TOO_MANY_REQUESTS,
            TOO_MANY_REQUESTS,
            "too many requests on this channel; retry with backoff",
        ),
        Appended::Refused(check) => token_refusal(&check),
    };
    o.offset = end;
    o.rows(Some(row_count))
}

/// `DELETE .../channels/{channel}`.
fn drop_channel(core: &Core, who: &Principal, c: &ChannelPath, body: &Bytes) -> Outcome {
    let body = match object_body(body) {
        Ok(b) => b,
        Err(r) => return r.outcome(),
    };
    let fail = match flag(&body, "fail_on_uncommitted_rows") {
        Ok(f) => f,
        Err(r) => return r.outcome(),
    };
    let dropped = {
        let mut state = core.lock();
        if let Err(r) = resolve_pipe(&state, &c.pipe, &who.role) {
            return r.outcome();
        }
        match key_of(c) {
            Some(key) => state.rest.drop_channel(&key, fail),
            None => Err(ChannelError::NotFound),
        }
    };
    core.notify();
    match dropped {
        Ok(()) => Outcome::new(empty_response(StatusCode::NO_CONTENT)),
        Err(ChannelError::NotFound) => refuse(
            StatusCode::NOT_FOUND,
            NO_CHANNEL,
            "the channel does not exist",
        ),
        Err(ChannelError::Uncommitted) => refuse(
            StatusCode::CONFLICT,
            UNCOMMITTED,
            "the channel has rows not yet committed; retry the drop later",
        ),
    }
}

#[derive(Deserialize)]
struct BulkStatusRequest {
    channel_names: Vec<String>,
}

/// `POST .../pipes/{pipe}:bulk-channel-status`: statuses of the named channels (names matched
/// exactly); channels that do not exist are left out.
fn bulk_status(core: &Core, who: &Principal, pipe: &PipePath, body: &Bytes) -> Outcome {
    let req: BulkStatusRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                BAD_REQUEST,
                &format!("the body must be {{\"channel_names\": [...]}}: {e}"),
            );
        }
    };
    let state = core.lock();
    if let Err(r) = resolve_pipe(&state, pipe, &who.role) {
        return r.outcome();
    }
    let mut statuses = Map::new();
    for name in req.channel_names {
        let Some(key) = RestKey::new(&pipe.database, &pipe.schema, &pipe.pipe, &name) else {
            continue;
        };
        if let Some(status) = state.rest.status(&key) {
            statuses.insert(name, status_json(&key, &status));
        }
    }
    Outcome::new(json_response(
        StatusCode::OK,
        &json!({"channel_statuses": statuses}),
    ))
}

/// A channel's `Status`, every field of the page's, with the error count under both names.
fn status_json(key: &RestKey, st: &ChannelStatus) -> Value {
    json!({
        "database_name": key.table.database,
        "schema_name": key.table.schema,
        "pipe_name": key.pipe,
        "channel_name": key.channel,
        "channel_status_code": st.status_code,
        "last_committed_offset_token": st.committed,
        "created_on_ms": st.created_on_ms,
        "rows_inserted": st.rows_inserted,
        "rows_parsed": st.rows_parsed,
        "rows_error_count": st.rows_error_count,
        "rows_errors": st.rows_error_count,
        "last_error_offset_upper_bound": st.last_error_offset_upper_bound,
        "last_error_message": st.last_error_message,
        "last_error_timestamp": st.last_error_timestamp,
        "snowflake_avg_processing_latency_ms": st.avg_latency_ms,
    })
}

/// How a call was answered, for its channel's request log.
#[derive(Clone, Copy)]
pub(crate) struct Answered<'a> {
    /// What the handler answered; `None` when a fault answered in its place.
    pub(crate) outcome: Option<&'a Outcome>,
    /// The status sent; `None` when the connection was closed instead.
    pub(crate) status: Option<u16>,
    /// The fault applied, as the call log names it.
    pub(crate) fault: Option<&'a str>,
}

/// Records a call on its channel's request log, faulted or not: its tokens, size, encoding and
/// answer.
pub(crate) fn log_request(
    core: &Core,
    route: &Route,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
    answered: &Answered<'_>,
) {
    let Answered {
        outcome,
        status,
        fault,
    } = *answered;
    let Some(key) = route.channel().and_then(key_of) else {
        return;
    };
    let params = query_pairs(query);
    let param = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let append = matches!(route, Route::Append(_));
    let single = param("offsetToken");
    let call = match route {
        Route::Open(_) => "open",
        Route::Append(_) => "append",
        _ => "drop",
    };
    let request = RestRequest {
        seq: 0,
        call,
        continuation_token: param("continuationToken").filter(|_| append),
        start_offset_token: param("startOffsetToken")
            .or_else(|| single.clone())
            .filter(|_| append),
        end_offset_token: param("endOffsetToken").or(single).filter(|_| append),
        offset_token: matches!(route, Route::Open(_))
            .then(|| serde_json::from_slice::<Value>(body).ok())
            .flatten()
            .and_then(|v| v.get("offset_token")?.as_str().map(str::to_owned)),
        body_bytes: body.len(),
        encoding: headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase()),
        rows: outcome.and_then(|o| o.row_count),
        status,
        code: outcome.and_then(|o| o.code.clone()),
        next_continuation_token: outcome.and_then(|o| o.token.clone()),
        fault: fault.map(str::to_owned),
    };
    core.lock().rest.record(&key, request);
}

trait Rows {
    fn rows(self, rows: Option<usize>) -> Self;
}

impl Rows for Outcome {
    fn rows(mut self, rows: Option<usize>) -> Self {
        self.row_count = rows;
        self
    }
}

/// Keeps the limit's meaning next to the code that relies on it: appends are read with it.
pub(crate) const fn append_limit(body_limit: usize) -> usize {
    if body_limit < MAX_APPEND_BYTES {
        body_limit
    } else {
        MAX_APPEND_BYTES
    }
}
