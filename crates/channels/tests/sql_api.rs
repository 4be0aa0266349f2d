//! The SQL API client against a scripted server on loopback: the request it sends, asynchronous
//! statements polled until done, retries, and errors mapped to kinds.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use snowpipe_api::{RetryConfig, Secret, retry::Sleep};
use snowpipe_channels::{
    FailureKind, ManualClock, SqlApiConfig, SqlApiWarehouse, Warehouse, WarehouseError,
};
use snowpipe_grouping::{Schema, WarehouseType};
use tokio::net::TcpListener;

const KEY: &str = include_str!("fixtures/rsa_key.p8");

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: http::HeaderMap,
    body: serde_json::Value,
}

/// Answers each request with the next scripted (status, body) and records the requests.
async fn server(script: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let recorded = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (seen, script) = (Arc::clone(&recorded), Arc::clone(&script));
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let (seen, script) = (Arc::clone(&seen), Arc::clone(&script));
                    async move {
                        let (parts, body) = request.into_parts();
                        let bytes = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        seen.lock().unwrap().push(Seen {
                            method: parts.method.to_string(),
                            path: parts.uri.path().to_owned(),
                            headers: parts.headers,
                            body: serde_json::from_slice(&bytes).unwrap_or_default(),
                        });
                        let (status, body) =
                            script.lock().unwrap().pop_front().unwrap_or((500, "{}"));
                        let mut response =
                            Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, seen)
}

#[derive(Debug, Default)]
struct NoWait(Mutex<Vec<Duration>>);

impl Sleep for NoWait {
    fn sleep(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        self.0.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

fn warehouse(url: &str, iceberg: bool) -> SqlApiWarehouse {
    let mut config = SqlApiConfig::new(
        "myorg-acct",
        "loader",
        "LOADER_ROLE",
        "LOAD_WH",
        "ANALYTICS",
        Secret::new(KEY),
    );
    config.base_url = Some(url.to_owned());
    config.iceberg = iceberg;
    config.retry = RetryConfig {
        max_retries: 2,
        jitter: false,
        ..RetryConfig::default()
    };
    config.sleep = Arc::new(NoWait::default());
    config.clock = Arc::new(ManualClock::default());
    SqlApiWarehouse::new(config).unwrap()
}

fn columns() -> Schema {
    [("ID", WarehouseType::String), ("N", WarehouseType::Bigint)]
        .into_iter()
        .collect()
}

#[tokio::test]
async fn a_statement_is_sent_with_a_key_pair_token_and_the_destinations_context() {
    let (url, seen) = server(vec![(200, r#"{"code":"090001","message":"ok"}"#)]).await;
    warehouse(&url, false)
        .create_table("RUDDER", "TRACKS", &columns())
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/api/v2/statements")
    );
    assert_eq!(
        seen[0].headers["x-snowflake-authorization-token-type"],
        "KEYPAIR_JWT"
    );
    let bearer = seen[0].headers["authorization"].to_str().unwrap();
    assert!(
        bearer.starts_with("Bearer ") && bearer.matches('.').count() == 2,
        "{bearer}"
    );
    assert_eq!(
        seen[0].body["statement"],
        r#"CREATE TABLE IF NOT EXISTS "RUDDER"."TRACKS" ("ID" VARCHAR, "N" NUMBER)"#
    );
    assert_eq!(seen[0].body["database"], "ANALYTICS");
    assert_eq!(seen[0].body["role"], "LOADER_ROLE");
    assert_eq!(seen[0].body["warehouse"], "LOAD_WH");
}

#[tokio::test]
async fn the_token_is_reused_between_statements() {
    let (url, seen) = server(vec![(200, "{}"), (200, "{}")]).await;
    let warehouse = warehouse(&url, false);
    warehouse.create_schema("A").await.unwrap();
    warehouse.create_schema("B").await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].headers["authorization"],
        seen[1].headers["authorization"]
    );
}

#[tokio::test]
async fn asynchronous_statements_are_polled_until_done() {
    let (url, seen) = server(vec![
        (202, r#"{"code":"333334","statementHandle":"h-1","statementStatusUrl":"/api/v2/statements/h-1"}"#),
        (202, r#"{"code":"333334","statementHandle":"h-1"}"#),
        (200, r#"{"code":"090001"}"#),
    ])
    .await;
    warehouse(&url, true)
        .add_columns("S", "T", &columns())
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    let calls: Vec<(String, String)> = seen
        .iter()
        .map(|s| (s.method.clone(), s.path.clone()))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST".to_owned(), "/api/v2/statements".to_owned()),
            ("GET".to_owned(), "/api/v2/statements/h-1".to_owned()),
            ("GET".to_owned(), "/api/v2/statements/h-1".to_owned()),
        ]
    );
    assert_eq!(
        seen[0].body["statement"],
        r#"ALTER ICEBERG TABLE "S"."T" ADD COLUMN IF NOT EXISTS "ID" VARCHAR, "N" NUMBER(19,0)"#
    );
}

#[tokio::test]
async fn transient_failures_are_retried_and_refusals_are_classified() {
    let (url, seen) = server(vec![(503, "busy"), (200, "{}")]).await;
    warehouse(&url, false).create_schema("S").await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2);

    let (url, _) = server(vec![(
        401,
        r#"{"code":"390144","message":"JWT token is invalid."}"#,
    )])
    .await;
    let error = warehouse(&url, false).create_schema("S").await.unwrap_err();
    assert_eq!(error.kind(), FailureKind::Auth);
    assert!(
        error.to_string().contains("JWT token is invalid"),
        "{error}"
    );

    let (url, _) = server(vec![(
        422,
        r#"{"code":"002003","sqlState":"02000","message":"Database 'X' does not exist"}"#,
    )])
    .await;
    let error = warehouse(&url, false).create_schema("S").await.unwrap_err();
    assert!(
        matches!(error, WarehouseError::ObjectMissing { .. }),
        "{error}"
    );
    assert_eq!(error.kind(), FailureKind::Abort);
}

#[tokio::test]
async fn a_key_that_cannot_be_read_is_an_auth_failure_before_any_call() {
    let (url, seen) = server(vec![]).await;
    let mut config = SqlApiConfig::new("a", "u", "r", "w", "d", Secret::new("garbage"));
    config.base_url = Some(url);
    let error = SqlApiWarehouse::new(config)
        .unwrap()
        .create_schema("S")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), FailureKind::Auth, "{error}");
    assert!(!error.to_string().contains("garbage"), "{error}");
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_service_that_is_not_there_is_named_with_its_address_and_the_cause() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let error = warehouse(&url, false)
        .create_schema("RUDDER")
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&url) && message.contains("connection refused"),
        "{message}"
    );
}
