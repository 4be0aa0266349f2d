//! The Snowpipe Streaming service protocol (`docs/service-protocol.md`): routes, request and answer
//! bodies, written from the protocol page rather than from the client's types, so each side checks the
//! other against the written contract.

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::insert_body;
use crate::{
    faults::{Endpoint, Failure},
    http::{
        Outcome, Reject, Resp, empty_response, error_response, json_response, query_pairs,
        query_value,
    },
    state::Core,
    store::{ChannelKey, InsertError, LookupError, TableRef, TableSchema, ident},
};

/// A request matched to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    CreateChannel,
    DeleteChannel(String),
    GetChannel(String),
    Insert(String),
    Status(String),
    BulkStatus,
    Health,
    Statements,
}

impl Route {
    pub(crate) fn endpoint(&self) -> Endpoint {
        match self {
            Self::CreateChannel => Endpoint::CreateChannel,
            Self::DeleteChannel(_) => Endpoint::DeleteChannel,
            Self::GetChannel(_) => Endpoint::GetChannel,
            Self::Insert(_) => Endpoint::Insert,
            Self::Status(_) => Endpoint::Status,
            Self::BulkStatus => Endpoint::BulkStatus,
            Self::Health => Endpoint::Health,
            Self::Statements => Endpoint::Statements,
        }
    }

    pub(crate) fn channel_id(&self) -> Option<&str> {
        match self {
            Self::DeleteChannel(id)
            | Self::GetChannel(id)
            | Self::Insert(id)
            | Self::Status(id) => Some(id),
            _ => None,
        }
    }
}

/// Matches method and path; unknown paths answer 404, known paths with the wrong method 405.
pub(crate) fn route(method: &Method, path: &str) -> Result<Route, Reject> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let (found, allowed): (Option<Route>, &'static str) = match segments.as_slice() {
        ["health"] => (
            matches!(*method, Method::GET | Method::HEAD).then_some(Route::Health),
            "GET",
        ),
        ["channels"] => (
            (*method == Method::POST).then_some(Route::CreateChannel),
            "POST",
        ),
        ["channels", "bulk-status"] => {
            ((*method == Method::GET).then_some(Route::BulkStatus), "GET")
        }
        ["channels", id] if !id.is_empty() => match *method {
            Method::GET => (Some(Route::GetChannel((*id).to_owned())), ""),
            Method::DELETE => (Some(Route::DeleteChannel((*id).to_owned())), ""),
            _ => (None, "GET, DELETE"),
        },
        ["channels", id, "insert"] if !id.is_empty() => (
            (*method == Method::POST).then(|| Route::Insert((*id).to_owned())),
            "POST",
        ),
        ["channels", id, "status"] if !id.is_empty() => (
            (*method == Method::GET).then(|| Route::Status((*id).to_owned())),
            "GET",
        ),
        ["api", "v2", "statements"] => (
            (*method == Method::POST).then_some(Route::Statements),
            "POST",
        ),
        _ => {
            return Err(Reject::new(
                StatusCode::NOT_FOUND,
                format!("no such path: {path}"),
            ));
        }
    };
    found.ok_or_else(|| Reject {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{method} is not allowed on {path}"),
        allow: Some(allowed),
    })
}

/// The answer of a scripted failure.
pub(crate) fn failure_response(endpoint: Endpoint, failure: &Failure) -> Resp {
    match failure {
        Failure::ChannelCode { code, http_code } if endpoint == Endpoint::CreateChannel => {
            channel_failure(code, *http_code, &format!("injected fault: {code}"))
        }
        Failure::ChannelCode { code, .. } => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("injected fault: {code}"),
        ),
        Failure::Status { status } | Failure::Shaped { status, .. } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error_response(status, &format!("injected fault: HTTP {}", status.as_u16()))
        }
    }
}

/// A create-channel answer saying `success:false`.
fn channel_failure(code: &str, http_code: u16, message: &str) -> Resp {
    json_response(
        StatusCode::OK,
        &json!({
            "success": false, "channelId": "", "channelName": "", "clientName": "", "valid": false, "deleted": false,
            "tableSchema": {}, "error": message, "code": code, "snowflakeSDKCode": "",
            "snowflakeAPIHttpCode": http_code, "snowflakeAPIStatusCode": 0, "snowflakeAPIMessage": message,
        }),
    )
}

fn channel_names(key: &ChannelKey) -> (String, String) {
    (
        format!("{}_{}", key.rudder_identifier, key.partition),
        format!(
            "snowpipe_emulator_{}_{}",
            key.rudder_identifier, key.partition
        ),
    )
}

fn channel_answer(
    id: &str,
    key: &ChannelKey,
    valid: bool,
    deleted: bool,
    schema: &TableSchema,
) -> Resp {
    let (channel_name, client_name) = channel_names(key);
    json_response(
        StatusCode::OK,
        &json!({
            "success": true, "channelId": id, "channelName": channel_name, "clientName": client_name,
            "valid": valid, "deleted": deleted, "tableSchema": schema.to_json(),
            "error": "", "code": "", "snowflakeSDKCode": "", "snowflakeAPIHttpCode": 0,
            "snowflakeAPIStatusCode": 0, "snowflakeAPIMessage": "",
        }),
    )
}

fn not_found(id: &str) -> Resp {
    error_response(StatusCode::NOT_FOUND, &format!("channel {id} not found"))
}

fn bad_json(e: &serde_json::Error) -> Resp {
    error_response(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}"))
}

/// Serves one protocol call (not the SQL API).
pub(crate) async fn serve(core: &Core, route: Route, query: Option<&str>, body: &Bytes) -> Outcome {
    match route {
        Route::Health => Outcome::new(json_response(StatusCode::OK, &json!({"status": "OK"}))),
        Route::CreateChannel => create_channel(core, body),
        Route::GetChannel(id) => Outcome::new(get_channel(core, &id)).channel(&id),
        Route::Insert(id) => insert(core, &id, body),
        Route::Status(id) => Outcome::new(status(core, &id)).channel(&id),
        Route::BulkStatus => Outcome::new(bulk_status(core, query)),
        Route::DeleteChannel(id) => {
            let sync = query_value(query, "sync").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            Outcome::new(delete_channel(core, &id, sync).await).channel(&id)
        }
        // The SQL API is served by its own module; reaching here is a routing slip, not a client error.
        Route::Statements => Outcome::new(error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "misrouted request",
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateChannelRequest {
    #[serde(default)]
    rudder_identifier: String,
    #[serde(default)]
    partition: String,
    #[serde(default)]
    account: AccountPart,
    #[serde(default)]
    table: TablePart,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AccountPart {
    #[serde(default)]
    account: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    private_key: String,
    #[serde(default)]
    private_key_passphrase: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TablePart {
    #[serde(default)]
    database: String,
    #[serde(default)]
    schema: String,
    #[serde(default)]
    table: String,
    /// Accepted and not checked: the emulator does not model Iceberg tables apart.
    #[serde(default, rename = "enableIceberg")]
    _enable_iceberg: bool,
}

fn create_channel(core: &Core, body: &Bytes) -> Outcome {
    let req: CreateChannelRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return Outcome::new(bad_json(&e)),
    };
    let missing: Vec<&str> = [
        ("rudderIdentifier", &req.rudder_identifier),
        ("partition", &req.partition),
        ("account.account", &req.account.account),
        ("account.user", &req.account.user),
        ("account.role", &req.account.role),
        ("account.privateKey", &req.account.private_key),
        ("table.database", &req.table.database),
        ("table.schema", &req.table.schema),
        ("table.table", &req.table.table),
    ]
    .into_iter()
    .filter(|(_, v)| v.trim().is_empty())
    .map(|(k, _)| k)
    .collect();
    if !missing.is_empty() {
        let msg = format!("invalid request: missing {}", missing.join(", "));
        return Outcome::new(channel_failure("ERR_VALIDATION_ERROR", 400, &msg));
    }
    // Key decryption and parsing are slow-ish: done before taking the lock.
    let presented = core.parsed_keys.public_key_der(
        &req.account.private_key,
        req.account.private_key_passphrase.as_deref(),
    );
    let account = crate::config::account_key(&req.account.account);
    let user = ident::resolve(&req.account.user);
    let role = ident::resolve(&req.account.role);
    let auth_failed = || {
        Outcome::new(channel_failure(
            "ERR_AUTHENTICATION_FAILED",
            401,
            "JWT token is invalid: the user does not exist or the key does not match its registered public key",
        ))
    };
    let Some(entry) = core.users.get(&user).filter(|_| account == core.account) else {
        return auth_failed();
    };
    let presented = match presented {
        Ok(der) => der,
        Err(e) => {
            return Outcome::new(channel_failure(
                "ERR_VALIDATION_ERROR",
                400,
                &format!("invalid private key: {e}"),
            ));
        }
    };
    if !entry.keys.contains(&presented) {
        return auth_failed();
    }
    if !entry.roles.contains(&role) {
        let msg = format!(
            "Role '{}' specified in the connect string is not granted to this user. Contact your local system administrator, or attempt to login with another role, e.g. PUBLIC.",
            ident::display(&role)
        );
        return Outcome::new(channel_failure(
            "ERR_ROLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
            403,
            &msg,
        ));
    }
    let table = TableRef {
        database: ident::resolve(&req.table.database),
        schema: ident::resolve(&req.table.schema),
        table: ident::resolve(&req.table.table),
    };
    let key = ChannelKey {
        rudder_identifier: req.rudder_identifier.clone(),
        partition: req.partition.clone(),
        table: table.clone(),
    };
    let opened = {
        let mut state = core.lock();
        state.catalog.lookup(&table, &role).map(|schema| {
            let id = state.store.open(key.clone(), Arc::clone(&schema));
            (id, schema)
        })
    };
    match opened {
        Ok((id, schema)) => {
            core.notify();
            Outcome::new(channel_answer(&id, &key, true, false, &schema)).channel(&id)
        }
        Err(e) => {
            let (code, what, name) = match e {
                LookupError::Database => (
                    "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
                    "Database",
                    vec![table.database],
                ),
                LookupError::Schema => (
                    "ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
                    "Schema",
                    vec![table.database, table.schema],
                ),
                LookupError::Table => (
                    "ERR_TABLE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
                    "Table",
                    vec![table.database, table.schema, table.table],
                ),
            };
            let msg = format!(
                "{what} '{}' does not exist or not authorized.",
                crate::store::ddl::display_name(&name)
            );
            Outcome::new(channel_failure(code, 404, &msg))
        }
    }
}

fn get_channel(core: &Core, id: &str) -> Resp {
    let state = core.lock();
    match (
        state.store.status(id),
        state.store.key_of(id),
        state.store.schema_of(id),
    ) {
        (Some(st), Some(key), Some(schema)) => {
            channel_answer(id, key, st.valid, st.deleted, &schema)
        }
        _ => not_found(id),
    }
}

fn insert(core: &Core, id: &str, body: &Bytes) -> Outcome {
    let bytes = body.len();
    // The schema the channel saw when opened, taken before reading the body so rows are validated as
    // they are read (outside the lock). A malformed body still answers 400 first, as it always did.
    let schema = core.lock().store.schema(id);
    let req = match insert_body::parse(body, schema.as_ref().ok()) {
        Ok(r) => r,
        Err(e) => return Outcome::new(bad_json(&e)).channel(id),
    };
    let offset = req.offset;
    let row_count = req.row_count;
    let outcome = |resp: Resp| {
        let mut o = Outcome::new(resp).channel(id);
        o.offset = Some(offset.clone());
        o.row_count = Some(row_count);
        o
    };
    let invalid = || {
        json_response(
            StatusCode::OK,
            &json!({"success": false, "code": "ERR_CHANNEL_INVALID", "errors": [],
                    "error": format!("channel {id} is invalid; reopen it")}),
        )
    };
    let validated = match (schema, req.rows) {
        (Ok(_), Some(validated)) => validated,
        (Err(InsertError::Invalid), _) => return outcome(invalid()),
        _ => return outcome(not_found(id)),
    };
    let rows = match validated {
        Ok(rows) => rows,
        Err(rejected) => {
            let errors = serde_json::to_value(&rejected.errors).unwrap_or(Value::Null);
            return outcome(json_response(
                StatusCode::OK,
                &json!({"success": false, "code": rejected.code, "errors": errors}),
            ));
        }
    };
    let result = {
        let mut state = core.lock();
        let now = Instant::now();
        state
            .store
            .insert(id, rows, &offset, bytes, now)
            .map(|early| {
                state.apply(early);
                state.commit_due(now);
            })
    };
    core.notify();
    match result {
        Ok(()) => outcome(json_response(
            StatusCode::OK,
            &json!({"success": true, "code": "", "errors": []}),
        )),
        Err(InsertError::NotFound) => outcome(not_found(id)),
        Err(InsertError::Invalid) => outcome(invalid()),
        Err(InsertError::BufferFull) => outcome(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "channel buffer is full and commits are not progressing; retry later",
        )),
    }
}

fn status_json(valid: bool, committed: &str, latest: &str) -> Value {
    json!({"success": true, "valid": valid, "offset": committed, "latestInsertedOffset": latest})
}

fn status(core: &Core, id: &str) -> Resp {
    match core.lock().store.status(id) {
        Some(st) if !st.deleted => json_response(
            StatusCode::OK,
            &status_json(st.valid, &st.committed, &st.latest),
        ),
        _ => not_found(id),
    }
}

fn bulk_status(core: &Core, query: Option<&str>) -> Resp {
    let ids: Vec<String> = query_pairs(query)
        .into_iter()
        .filter(|(k, _)| k == "channelIds")
        .map(|(_, v)| v)
        .collect();
    let state = core.lock();
    let lie = state.faults.bulk_status_lie;
    let mut statuses = Map::new();
    let mut not_found = Vec::new();
    for id in ids {
        match state.store.status(&id) {
            Some(st) if !st.deleted => {
                statuses.insert(id, status_json(st.valid || lie, &st.committed, &st.latest));
            }
            _ => not_found.push(id),
        }
    }
    json_response(
        StatusCode::OK,
        &json!({"success": true, "statuses": statuses, "notFound": not_found}),
    )
}

async fn delete_channel(core: &Core, id: &str, sync: bool) -> Resp {
    if core.lock().store.status(id).is_none() {
        return not_found(id);
    }
    if sync {
        core.lock().sync_delete_waiters += 1;
        core.notify();
        let flushed = core.wait_until(|s| !s.store.has_pending(id)).await;
        core.lock().sync_delete_waiters -= 1;
        if !flushed {
            return error_response(StatusCode::SERVICE_UNAVAILABLE, "emulator shutting down");
        }
    }
    let known = core.lock().store.delete(id);
    core.notify();
    match (known, sync) {
        // A restart while waiting forgot the channel: its rows are gone, as the caller will find out.
        (false, _) => not_found(id),
        (true, true) => empty_response(StatusCode::NO_CONTENT),
        (true, false) => empty_response(StatusCode::ACCEPTED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |m: Method, p: &str| route(&m, p).map_err(|reject| reject.status);
        assert_eq!(r(Method::POST, "/channels"), Ok(Route::CreateChannel));
        assert_eq!(
            r(Method::GET, "/channels/bulk-status"),
            Ok(Route::BulkStatus)
        );
        assert_eq!(
            r(Method::GET, "/channels/abc"),
            Ok(Route::GetChannel("abc".to_owned()))
        );
        assert_eq!(
            r(Method::DELETE, "/channels/abc"),
            Ok(Route::DeleteChannel("abc".to_owned()))
        );
        assert_eq!(
            r(Method::POST, "/channels/abc/insert"),
            Ok(Route::Insert("abc".to_owned()))
        );
        assert_eq!(
            r(Method::GET, "/channels/abc/status"),
            Ok(Route::Status("abc".to_owned()))
        );
        assert_eq!(r(Method::GET, "/health"), Ok(Route::Health));
        assert_eq!(r(Method::POST, "/api/v2/statements"), Ok(Route::Statements));
        assert_eq!(r(Method::GET, "/nope"), Err(StatusCode::NOT_FOUND));
        assert_eq!(
            r(Method::GET, "/channels/a/b/c"),
            Err(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            r(Method::PUT, "/channels/abc"),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(
            r(Method::GET, "/channels/abc/insert"),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
    }
}
