//! Helpers for the REST API's tests: a plain client over the test's hyper client that speaks the
//! protocol page's calls (not the project's REST client), and an emulator with a table to write to.

use std::{io::Write as _, time::Duration};

use base64::Engine as _;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use snowpipe_emulator::{Emulator, RestChannelName, demo, jwt};

use crate::common::{Http, Reply};

pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A key-pair JWT for the demo user, valid for an hour from now.
pub(crate) fn demo_jwt() -> String {
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

pub(crate) fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// The claims of a JWT, unverified.
pub(crate) fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    crate::common::gzip(data)
}

pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).unwrap()
}

/// `{"ID": "<prefix><i>"}` lines, NDJSON.
pub(crate) fn ndjson(prefix: &str, range: std::ops::Range<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    for i in range {
        writeln!(out, "{}", json!({"ID": format!("{prefix}{i}")})).unwrap();
    }
    out
}

/// A minimal REST client for tests: paths, headers and bodies as the protocol page writes them.
pub(crate) struct Rest {
    pub(crate) http: Http,
    pub(crate) host: String,
    pub(crate) token: String,
}

/// An append's tokens.
pub(crate) struct At<'a> {
    pub(crate) continuation: &'a str,
    pub(crate) start: &'a str,
    pub(crate) end: &'a str,
}

impl Rest {
    /// A client holding a scoped token got through the exchange.
    pub(crate) async fn new(emulator: &Emulator) -> Self {
        let http = Http::new(emulator);
        let host = emulator.control().rest_host().to_owned();
        let mut rest = Self {
            http,
            host,
            token: String::new(),
        };
        let reply = rest
            .exchange(
                &format!("grant_type={JWT_BEARER}&scope={}", rest.host),
                Some(&demo_jwt()),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        rest.token = reply.text();
        rest
    }

    pub(crate) async fn hostname(&self, headers: &[(&str, &str)]) -> Reply {
        self.http
            .send(Method::GET, "/v2/streaming/hostname", headers, Vec::new())
            .await
    }

    /// `POST /oauth/token` with the form `form`, the JWT as bearer when given.
    pub(crate) async fn exchange(&self, form: &str, bearer: Option<&str>) -> Reply {
        let auth = bearer.map(|b| format!("Bearer {b}"));
        let mut headers = vec![
            ("accept", "application/json"),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        self.http
            .send(
                Method::POST,
                "/oauth/token",
                &headers,
                form.as_bytes().to_vec(),
            )
            .await
    }

    /// Sends an ingest call with the client's scoped token.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        extra: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        self.call_as(&self.token, method, path, extra, body).await
    }

    /// Sends an ingest call with `token`.
    pub(crate) async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        extra: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let auth = format!("Bearer {token}");
        let mut headers = vec![
            ("accept", "application/json"),
            ("authorization", auth.as_str()),
            ("x-snowflake-authorization-token-type", "OAUTH"),
        ];
        headers.extend_from_slice(extra);
        self.http.send(method, path, &headers, body).await
    }

    pub(crate) async fn open(&self, table: &str, channel: &str, body: &Value) -> Reply {
        self.call(
            Method::PUT,
            &channel_path(table, channel),
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
    }

    /// Opens and answers the continuation token, asserting 200.
    pub(crate) async fn open_ok(
        &self,
        table: &str,
        channel: &str,
        body: &Value,
    ) -> (String, Value) {
        let reply = self.open(table, channel, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let v = reply.json();
        (
            v["next_continuation_token"].as_str().unwrap().to_owned(),
            v["channel_status"].clone(),
        )
    }

    pub(crate) async fn append(
        &self,
        table: &str,
        channel: &str,
        at: &At<'_>,
        body: Vec<u8>,
        encoding: Option<&str>,
    ) -> Reply {
        let path = format!(
            "{}?continuationToken={}&startOffsetToken={}&endOffsetToken={}",
            rows_path(table, channel),
            at.continuation,
            at.start,
            at.end
        );
        let mut extra = vec![("content-type", "application/x-ndjson")];
        if let Some(e) = encoding {
            extra.push(("content-encoding", e));
        }
        self.call(Method::POST, &path, &extra, body).await
    }

    /// Appends and answers the next continuation token, asserting 200.
    pub(crate) async fn append_ok(
        &self,
        table: &str,
        channel: &str,
        at: &At<'_>,
        body: Vec<u8>,
    ) -> String {
        let reply = self.append(table, channel, at, body, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()["next_continuation_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub(crate) async fn drop_channel(
        &self,
        table: &str,
        channel: &str,
        body: Option<&Value>,
    ) -> Reply {
        self.call(
            Method::DELETE,
            &channel_path(table, channel),
            &[("content-type", "application/json")],
            body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        )
        .await
    }

    pub(crate) async fn bulk(&self, table: &str, names: &[&str]) -> Reply {
        self.call(
            Method::POST,
            &format!(
                "/v2/streaming/databases/{}/schemas/PUBLIC/pipes/{table}-STREAMING:bulk-channel-status",
                demo::DATABASE
            ),
            &[("content-type", "application/json")],
            json!({"channel_names": names}).to_string().into_bytes(),
        )
        .await
    }

    /// One channel's status through bulk status (`Null` when it is missing from the map).
    pub(crate) async fn status(&self, table: &str, channel: &str) -> Value {
        let reply = self.bulk(table, &[channel]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()["channel_statuses"][channel].clone()
    }
}

/// `/v2/streaming/databases/DEMO_DB/schemas/PUBLIC/pipes/<table>-STREAMING/channels/<channel>`.
pub(crate) fn channel_path(table: &str, channel: &str) -> String {
    format!(
        "/v2/streaming/databases/{}/schemas/PUBLIC/pipes/{table}-STREAMING/channels/{channel}",
        demo::DATABASE
    )
}

/// The append path of a channel.
pub(crate) fn rows_path(table: &str, channel: &str) -> String {
    format!(
        "/v2/streaming/data/databases/{}/schemas/PUBLIC/pipes/{table}-STREAMING/channels/{channel}/rows",
        demo::DATABASE
    )
}

/// The control handle's name of a channel on `DEMO_DB.PUBLIC.<table>`.
pub(crate) fn name(table: &str, channel: &str) -> RestChannelName {
    RestChannelName::on_table(demo::DATABASE, "PUBLIC", table, channel)
}

/// An emulator with the demo account, the given commit lag, and `DEMO_DB.PUBLIC.EVENTS`
/// (`ID VARCHAR(8) NOT NULL, N INT`).
pub(crate) async fn start_rest(lag: Duration) -> (Emulator, Rest) {
    let emulator = Emulator::builder().commit_lag(lag).start().await.unwrap();
    emulator
        .control()
        .execute_sql(
            "CREATE TABLE EVENTS (ID VARCHAR(8) NOT NULL, N INT)",
            Some(demo::DATABASE),
            Some("PUBLIC"),
        )
        .unwrap();
    let rest = Rest::new(&emulator).await;
    (emulator, rest)
}

/// The IDs of `DEMO_DB.PUBLIC.<table>`'s committed rows.
pub(crate) fn ids(emulator: &Emulator, table: &str) -> Vec<String> {
    emulator
        .control()
        .rows(demo::DATABASE, "PUBLIC", table)
        .unwrap()
        .iter()
        .map(|r| r["ID"].as_str().unwrap_or("?").to_owned())
        .collect()
}
