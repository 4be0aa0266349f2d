//! Test helpers: a plain hyper client, request builders for the demo account, and emulator start-up.

use std::{io::Write, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Value, json};
use snowpipe_emulator::{Emulator, demo};

/// Another key pair, registered nowhere (for wrong-key tests).
pub(crate) const OTHER_PRIVATE_KEY: &str = include_str!("../fixtures/other_rsa_key.p8");
pub(crate) const OTHER_PUBLIC_KEY: &str = include_str!("../fixtures/other_rsa_key.pub");
/// The demo key encrypted with PBES2 + DES-EDE3-CBC (`openssl pkcs8 -topk8 -v2 des3`).
pub(crate) const DEMO_KEY_DES3: &str = include_str!("../fixtures/demo_rsa_key_des3.p8");
/// The demo key as PKCS#1 (`BEGIN RSA PRIVATE KEY`).
pub(crate) const DEMO_KEY_PKCS1: &str = include_str!("../fixtures/demo_rsa_key_pkcs1.pem");

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

pub(crate) struct Http {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub(crate) fn new(emulator: &Emulator) -> Self {
        // No pooling: every request gets its own connection, so a dropped connection affects only the
        // request it was meant for and the client never replays anything on its own.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http();
        Self {
            base: emulator.base_url(),
            client,
        }
    }

    pub(crate) async fn try_send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Reply, hyper_util::client::legacy::Error> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        let resp = self.client.request(req).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        self.try_send(method, path, headers, body).await.unwrap()
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], Vec::new()).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, &[], Vec::new()).await
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
    }

    pub(crate) async fn post_gzip(&self, path: &str, body: &Value) -> Reply {
        self.send(
            Method::POST,
            path,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            gzip(body.to_string().as_bytes()),
        )
        .await
    }

    /// Opens a channel for the demo user and answers its id, asserting success.
    pub(crate) async fn open(&self, rudder_id: &str, table: &str) -> String {
        let reply = self
            .post_json("/channels", &create_request(rudder_id, "PUBLIC", table))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        let body = reply.json();
        assert_eq!(body["success"], true, "{body}");
        body["channelId"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn insert(&self, channel: &str, rows: Value, offset: &str) -> Reply {
        self.post_gzip(
            &format!("/channels/{channel}/insert"),
            &json!({"rows": rows, "offset": offset}),
        )
        .await
    }

    /// `(valid, committed offset, latest inserted offset)` of a channel, asserting 200.
    pub(crate) async fn status(&self, channel: &str) -> (bool, String, String) {
        let reply = self.get(&format!("/channels/{channel}/status")).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let b = reply.json();
        (
            b["valid"].as_bool().unwrap(),
            b["offset"].as_str().unwrap().to_owned(),
            b["latestInsertedOffset"].as_str().unwrap().to_owned(),
        )
    }
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A create-channel request for the demo user on `DEMO_DB.<schema>.<table>`.
pub(crate) fn create_request(rudder_id: &str, schema: &str, table: &str) -> Value {
    json!({
        "rudderIdentifier": rudder_id,
        "partition": "1",
        "account": {
            "account": demo::ACCOUNT, "user": demo::USER, "role": demo::ROLE,
            "privateKey": demo::PRIVATE_KEY_PEM, "privateKeyPassphrase": ""
        },
        "table": {"database": demo::DATABASE, "schema": schema, "table": table, "enableIceberg": false}
    })
}

/// An emulator with the demo account, the given commit lag, and table `DEMO_DB.PUBLIC.EVENTS`
/// (`ID VARCHAR NOT NULL, PRICE NUMBER(38,2), RECEIVED_AT TIMESTAMP_TZ, N INT`).
pub(crate) async fn start(lag: Duration) -> Emulator {
    let emulator = Emulator::builder().commit_lag(lag).start().await.unwrap();
    emulator
        .control()
        .execute_sql(
            "CREATE TABLE EVENTS (ID VARCHAR NOT NULL, PRICE NUMBER(38,2), RECEIVED_AT TIMESTAMP_TZ, N INT)",
            Some(demo::DATABASE),
            Some("PUBLIC"),
        )
        .unwrap();
    emulator
}

/// Rows `{"ID": "<prefix><i>"}` for i in range.
pub(crate) fn rows(prefix: &str, range: std::ops::Range<u32>) -> Value {
    Value::Array(
        range
            .map(|i| json!({"ID": format!("{prefix}{i}")}))
            .collect(),
    )
}

pub(crate) const HOUR: Duration = Duration::from_secs(3600);
