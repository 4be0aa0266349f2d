//! `HttpClient` against a real HTTP server on loopback: wire format of every endpoint, error kinds,
//! retries, timeouts and metrics.

mod server;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::json;
use server::{Reply, Server};
use snowpipe_api::{
    Backend, BackendExt, ChannelRef, Instrumented, OpenOptions, RetryConfig, Row, Secret, TableRef,
    WarehouseType,
    retry::Sleep,
    sidecar::{
        Account, Delivery, Endpoint as Call, HttpClient, HttpConfig, HttpError as Error, Inserted,
        Sidecar,
        wire::{ChannelErrorCode, CreateChannelRequest, InsertRequest},
    },
};

/// The tests describe inserts as the protocol's body; the client takes its parts.
trait InsertRequestExt {
    async fn insert_request(
        &self,
        channel_id: &str,
        request: &InsertRequest,
    ) -> Result<Inserted, Error>;
}

impl InsertRequestExt for HttpClient {
    async fn insert_request(
        &self,
        channel_id: &str,
        request: &InsertRequest,
    ) -> Result<Inserted, Error> {
        self.insert(
            channel_id,
            &Arc::from(request.rows.clone()),
            &request.offset,
        )
        .await
    }
}

const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n";
const PASSPHRASE: &str = "correct horse battery staple";

/// Records each wait instead of waiting, so tests see the exact schedule and take no time.
#[derive(Debug, Default)]
struct RecordingSleep(Mutex<Vec<Duration>>);

impl Sleep for RecordingSleep {
    fn sleep(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        self.0.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

impl RecordingSleep {
    fn waits(&self) -> Vec<Duration> {
        self.0.lock().unwrap().clone()
    }
}

struct Setup {
    client: HttpClient,
    sleeps: Arc<RecordingSleep>,
}

fn client_with(server: &Server, tweak: impl FnOnce(&mut HttpConfig)) -> Setup {
    let sleeps = Arc::new(RecordingSleep::default());
    let mut config = HttpConfig {
        base_url: server.url(),
        retry: RetryConfig {
            max_retries: 3,
            jitter: false,
            ..RetryConfig::default()
        },
        sleep: sleeps.clone(),
        ..HttpConfig::default()
    };
    tweak(&mut config);
    Setup {
        client: HttpClient::new(config).unwrap(),
        sleeps,
    }
}

fn client(server: &Server) -> HttpClient {
    client_with(server, |_| {}).client
}

fn create_request() -> CreateChannelRequest {
    CreateChannelRequest {
        rudder_identifier: "dest-1".into(),
        partition: "1".into(),
        account: Account {
            account: "myorg-acct".into(),
            user: "LOADER".into(),
            role: "LOADER_ROLE".into(),
            private_key: Secret::new(KEY),
            private_key_passphrase: Secret::new(PASSPHRASE),
        },
        table: TableRef {
            database: "DB".into(),
            schema: "RUDDER".into(),
            table: "TRACKS".into(),
            enable_iceberg: false,
        },
    }
}

fn rows(n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| Row::parse(format!(r#"{{"ID":"id-{i}","N":{i}}}"#)).unwrap())
        .collect()
}

const CHANNEL_OK: &str = r#"{"success":true,"channelId":"ch-1","channelName":"RUDDER_1","clientName":"c","valid":true,
  "deleted":false,"someNewField":{"x":1},
  "tableSchema":{"ID":{"type":"VARCHAR(16777216)","logicalType":"TEXT","precision":null,"scale":null,"byteLength":16777216,"length":16777216,"nullable":true},
                 "PRICE":{"type":"NUMBER(38,2)","logicalType":"FIXED","precision":38,"scale":2,"nullable":true},
                 "N":{"type":"NUMBER(38,0)","logicalType":"FIXED","precision":38,"scale":0,"nullable":true},
                 "AT":{"type":"TIMESTAMP_TZ(9)","logicalType":"TIMESTAMP_TZ","nullable":true},
                 "ODD":{"type":"GEOGRAPHY","nullable":true},
                 "NOTYPE":{"nullable":true}},
  "error":"","code":"","snowflakeSDKCode":"","snowflakeAPIHttpCode":0,"snowflakeAPIStatusCode":0,"snowflakeAPIMessage":""}"#;

#[tokio::test]
async fn create_channel_posts_the_request_and_reads_the_schema() {
    let server = Server::start([Reply::json(200, CHANNEL_OK)]).await;
    let response = client(&server)
        .create_channel(&create_request())
        .await
        .unwrap();

    let request = server.only_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/channels");
    assert_eq!(request.headers["content-type"], "application/json");
    assert!(request.headers.get("content-encoding").is_none());
    assert_eq!(
        request.json(),
        json!({"rudderIdentifier": "dest-1", "partition": "1",
               "account": {"account": "myorg-acct", "user": "LOADER", "role": "LOADER_ROLE",
                           "privateKey": KEY, "privateKeyPassphrase": PASSPHRASE},
               "table": {"database": "DB", "schema": "RUDDER", "table": "TRACKS", "enableIceberg": false}})
    );

    assert!(response.success && response.valid);
    assert_eq!(response.channel_id, "ch-1");
    let schema = response.warehouse_schema();
    let expected = [
        ("AT", WarehouseType::Datetime),
        ("ID", WarehouseType::String),
        ("N", WarehouseType::Int),
        ("PRICE", WarehouseType::Float),
    ];
    assert_eq!(
        schema.into_iter().collect::<Vec<_>>(),
        expected.map(|(k, v)| (k.to_owned(), v))
    );
}

#[tokio::test]
async fn success_false_answers_are_data_not_errors() {
    let body = r#"{"success":false,"code":"ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED","error":"schema missing",
                   "snowflakeAPIHttpCode":404,"snowflakeAPIMessage":"Schema RUDDER does not exist","tableSchema":null,
                   "channelId":null}"#;
    let insert_body = r#"{"success":false,"code":"ERR_SCHEMA_CONFLICT","errors":[{"rowIndex":1,"message":"extra column",
                          "extraColNames":["UNKNOWN"],"missingNotNullColNames":null,"nullValueForNotNullColNames":null}]}"#;
    let server = Server::start([Reply::json(200, body), Reply::json(200, insert_body)]).await;
    let client = client(&server);

    let response = client.create_channel(&create_request()).await.unwrap();
    assert!(!response.success);
    assert_eq!(
        response.error_code(),
        Some(ChannelErrorCode::SchemaDoesNotExistOrNotAuthorized)
    );
    assert_eq!(response.snowflake_api_http_code, 404);
    assert!(response.table_schema.is_empty() && response.channel_id.is_empty());

    let inserted = client
        .insert_request(
            "ch-1",
            &InsertRequest {
                rows: rows(2),
                offset: "7".into(),
            },
        )
        .await
        .unwrap();
    assert!(!inserted.response.success);
    assert_eq!(inserted.response.code, "ERR_SCHEMA_CONFLICT");
    assert_eq!(inserted.response.errors[0].row_index, 1);
    assert_eq!(inserted.response.errors[0].extra_col_names, ["UNKNOWN"]);
    assert!(
        inserted.response.errors[0]
            .missing_not_null_col_names
            .is_empty()
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn insert_sends_gzip_json_and_reports_the_wire_size() {
    let server = Server::start([Reply::json(200, r#"{"success":true,"errors":null}"#)]).await;
    let request = InsertRequest {
        rows: rows(50),
        offset: "1001".into(),
    };
    let inserted = client(&server)
        .insert_request("ch/1 x", &request)
        .await
        .unwrap();

    let recorded = server.only_request();
    assert_eq!(recorded.method, "POST");
    assert_eq!(recorded.path, "/channels/ch%2F1%20x/insert");
    assert_eq!(recorded.headers["content-encoding"], "gzip");
    assert_eq!(recorded.headers["content-type"], "application/json");
    let sent: serde_json::Value = recorded.json();
    assert_eq!(sent["offset"], "1001");
    assert_eq!(sent["rows"].as_array().unwrap().len(), 50);
    assert_eq!(sent["rows"][3], json!({"ID": "id-3", "N": 3}));
    assert_eq!(inserted.body_bytes, recorded.wire_body.len() as u64);
    assert!(
        recorded.wire_body.len() < recorded.body.len(),
        "gzip should shrink repetitive rows"
    );
    assert!(inserted.response.success && inserted.response.errors.is_empty());
}

#[tokio::test]
async fn insert_without_compression_sends_plain_json() {
    let server = Server::start([Reply::json(200, r#"{"success":true}"#)]).await;
    let setup = client_with(&server, |c| c.insert_gzip_level = None);
    let request = InsertRequest {
        rows: rows(2),
        offset: "5".into(),
    };
    let inserted = setup.client.insert_request("ch-1", &request).await.unwrap();
    let recorded = server.only_request();
    assert!(recorded.headers.get("content-encoding").is_none());
    assert_eq!(
        recorded.body,
        br#"{"rows":[{"ID":"id-0","N":0},{"ID":"id-1","N":1}],"offset":"5"}"#.as_slice()
    );
    assert_eq!(inserted.body_bytes, recorded.body.len() as u64);
}

#[tokio::test]
async fn delete_get_and_status_use_their_paths() {
    let status = r#"{"success":true,"valid":true,"offset":"10","latestInsertedOffset":"12"}"#;
    let server = Server::start([
        Reply::empty(204),
        Reply::empty(202),
        Reply::json(200, CHANNEL_OK),
        Reply::json(200, status),
    ])
    .await;
    let client = client(&server);
    client.delete_channel("ch-1", true).await.unwrap();
    client.delete_channel("ch-2", false).await.unwrap();
    let channel = client.get_channel("ch-3").await.unwrap();
    let status = client.channel_status("ch-4").await.unwrap();

    let seen: Vec<_> = server
        .requests()
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                r.path.clone(),
                r.query.clone().unwrap_or_default(),
            )
        })
        .collect();
    let expect = |m: &str, p: &str, q: &str| (m.to_owned(), p.to_owned(), q.to_owned());
    assert_eq!(
        seen,
        [
            expect("DELETE", "/channels/ch-1", "sync=true"),
            expect("DELETE", "/channels/ch-2", "sync=false"),
            expect("GET", "/channels/ch-3", ""),
            expect("GET", "/channels/ch-4/status", ""),
        ]
    );
    assert_eq!(channel.channel_id, "ch-1");
    assert!(status.valid);
    assert_eq!(
        (
            status.offset.as_str(),
            status.latest_inserted_offset.as_str()
        ),
        ("10", "12")
    );
}

#[tokio::test]
async fn bulk_status_repeats_channel_ids_and_reads_not_found() {
    let body = r#"{"success":true,"statuses":{"a":{"success":true,"valid":true,"offset":"","latestInsertedOffset":null}},
                   "notFound":["b/c"]}"#;
    let server = Server::start([Reply::json(200, body)]).await;
    let ids = vec!["a".to_owned(), "b/c".to_owned()];
    let response = client(&server).bulk_status(&ids).await.unwrap();
    let request = server.only_request();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/channels/bulk-status")
    );
    assert_eq!(
        request.query.as_deref(),
        Some("channelIds=a&channelIds=b%2Fc")
    );
    assert_eq!(response.not_found, ["b/c"]);
    assert!(response.statuses["a"].valid);
    assert_eq!(response.statuses["a"].offset, "");
    assert_eq!(response.statuses["a"].latest_inserted_offset, "");
}

#[tokio::test]
async fn bulk_status_of_no_channels_makes_no_call() {
    let server = Server::start([]).await;
    let response = client(&server).bulk_status(&[]).await.unwrap();
    assert!(response.success && response.statuses.is_empty());
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn not_found_on_insert_and_status_is_its_own_kind() {
    let server = Server::start([Reply::json(404, "{}"), Reply::json(404, "{}")]).await;
    let client = client(&server);
    let insert = client
        .insert_request(
            "gone",
            &InsertRequest {
                rows: rows(1),
                offset: "1".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&insert, Error::ChannelNotFound { call: Call::Insert, channel_id } if channel_id == "gone"),
        "{insert}"
    );
    let status = client.channel_status("gone").await.unwrap_err();
    assert!(status.is_channel_not_found(), "{status}");
    assert_eq!(server.requests().len(), 2, "404 is not retried");
}

#[tokio::test]
async fn other_statuses_are_unexpected_with_code_and_body() {
    let server = Server::start([
        Reply::json(400, r#"{"error":"bad channel request"}"#),
        Reply::json(501, "nope"),
    ])
    .await;
    let client = client(&server);
    let error = client.create_channel(&create_request()).await.unwrap_err();
    match &error {
        Error::UnexpectedStatus {
            call: Call::CreateChannel,
            status: 400,
            body,
            ..
        } => {
            assert!(body.as_str().contains("bad channel request"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(error.to_string().contains("HTTP 400"), "{error}");
    let error = client.get_channel("x").await.unwrap_err();
    assert_eq!(error.status(), Some(501));
    assert_eq!(server.requests().len(), 2, "400 and 501 are not retried");
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let server = Server::start([
        Reply::json(503, "busy"),
        Reply::json(500, "oops"),
        Reply::json(
            200,
            r#"{"success":true,"valid":true,"offset":"3","latestInsertedOffset":"3"}"#,
        ),
    ])
    .await;
    let setup = client_with(&server, |_| {});
    let status = setup.client.channel_status("ch").await.unwrap();
    assert_eq!(status.offset, "3");
    assert_eq!(server.requests().len(), 3);
    assert_eq!(
        setup.sleeps.waits(),
        [Duration::from_millis(100), Duration::from_millis(200)]
    );
}

#[tokio::test]
async fn inserts_are_retried_on_server_errors_because_the_service_answered() {
    let server = Server::start([
        Reply::json(502, ""),
        Reply::json(200, r#"{"success":true}"#),
    ])
    .await;
    let setup = client_with(&server, |_| {});
    let inserted = setup
        .client
        .insert_request(
            "ch",
            &InsertRequest {
                rows: rows(1),
                offset: "1".into(),
            },
        )
        .await
        .unwrap();
    assert!(inserted.response.success);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].body, requests[1].body,
        "the retry sends the same rows"
    );
}

#[tokio::test]
async fn retries_stop_at_the_limit() {
    let server = Server::start(std::iter::repeat_n(Reply::json(500, "down"), 10)).await;
    let setup = client_with(&server, |c| c.retry.max_retries = 2);
    let error = setup
        .client
        .bulk_status(&["a".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(500));
    assert_eq!(server.requests().len(), 3, "one attempt and two retries");
    assert_eq!(setup.sleeps.waits().len(), 2);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = Server::start([
        Reply::json(429, "slow down").with_header("retry-after", "3"),
        Reply::json(200, r#"{"success":true}"#),
    ])
    .await;
    let setup = client_with(&server, |_| {});
    setup.client.get_channel("ch").await.unwrap();
    assert_eq!(setup.sleeps.waits(), [Duration::from_secs(3)]);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = Server::start([Reply::Hang, Reply::Hang]).await;
    let setup = client_with(&server, |c| {
        c.timeout = Duration::from_millis(200);
        c.retry.max_retries = 1;
    });
    let error = setup.client.channel_status("ch").await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Timeout {
                call: Call::Status,
                delivery: Delivery::MaybeSent,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        server.requests().len(),
        2,
        "an idempotent call is retried after a timeout"
    );
}

#[tokio::test]
async fn an_insert_that_times_out_has_an_unknown_outcome_and_is_not_resent() {
    let server = Server::start([Reply::Hang, Reply::Hang]).await;
    let setup = client_with(&server, |c| c.timeout = Duration::from_millis(200));
    let error = setup
        .client
        .insert_request(
            "ch",
            &InsertRequest {
                rows: rows(1),
                offset: "9".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(error.is_outcome_unknown(), "{error}");
    assert_eq!(
        server.requests().len(),
        1,
        "a possibly applied insert must not be sent again"
    );
}

#[tokio::test]
async fn a_dropped_response_leaves_an_insert_unknown_but_retries_a_status() {
    let server = Server::start([
        Reply::Drop,
        Reply::Drop,
        Reply::json(
            200,
            r#"{"success":true,"valid":true,"offset":"1","latestInsertedOffset":"1"}"#,
        ),
    ])
    .await;
    let client = client(&server);
    let error = client
        .insert_request(
            "ch",
            &InsertRequest {
                rows: rows(1),
                offset: "1".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Transport {
                delivery: Delivery::MaybeSent,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.is_outcome_unknown());
    assert_eq!(server.requests().len(), 1);
    let status = client.channel_status("ch").await.unwrap();
    assert_eq!(status.offset, "1");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_refused_connection_is_surely_not_sent() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let sleeps = Arc::new(RecordingSleep::default());
    let config = HttpConfig {
        base_url: format!("http://127.0.0.1:{port}"),
        retry: RetryConfig {
            max_retries: 2,
            jitter: false,
            ..RetryConfig::default()
        },
        sleep: sleeps.clone(),
        ..HttpConfig::default()
    };
    let client = HttpClient::new(config).unwrap();
    let error = client
        .insert_request(
            "ch",
            &InsertRequest {
                rows: rows(1),
                offset: "1".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Transport {
                delivery: Delivery::NotSent,
                ..
            }
        ),
        "{error}"
    );
    assert!(!error.is_outcome_unknown());
    let message = error.to_string();
    assert!(
        message.contains(&format!("http://127.0.0.1:{port}"))
            && message.contains("connection refused"),
        "names the service and the cause: {message}"
    );
    assert_eq!(
        sleeps.waits().len(),
        2,
        "an insert that surely was not sent is retried"
    );
}

#[tokio::test]
async fn malformed_json_is_a_decode_error_with_an_excerpt() {
    let server = Server::start([Reply::json(200, r#"{"success": tru"#)]).await;
    let error = client(&server).channel_status("ch").await.unwrap_err();
    match &error {
        Error::Decode {
            call: Call::Status,
            body,
            ..
        } => assert_eq!(body.as_str(), r#"{"success": tru"#),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.requests().len(), 1, "decode errors are not retried");
}

#[tokio::test]
async fn errors_never_quote_the_credentials() {
    let server = Server::start([Reply::Echo400]).await;
    let error = client(&server)
        .create_channel(&create_request())
        .await
        .unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("HTTP 400"), "{shown}");
    assert!(
        shown.contains("[REDACTED]"),
        "the echoed body should be quoted, scrubbed: {shown}"
    );
    assert!(
        !shown.contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"),
        "{shown}"
    );
    assert!(!shown.contains(PASSPHRASE), "{shown}");
}

#[test]
fn requests_never_show_the_credentials() {
    let request = create_request();
    for shown in [
        format!("{request}"),
        format!("{request:?}"),
        format!("{request:#?}"),
    ] {
        assert!(!shown.contains("MIIEvQ"), "{shown}");
        assert!(!shown.contains(PASSPHRASE), "{shown}");
    }
    assert!(format!("{request}").contains("DB.RUDDER.TRACKS"));
}

#[test]
fn invalid_settings_are_refused_at_build() {
    let bad = |tweak: fn(&mut HttpConfig)| {
        let mut config = HttpConfig::default();
        tweak(&mut config);
        HttpClient::new(config).unwrap_err().to_string()
    };
    assert!(bad(|c| c.base_url = "localhost:9078".into()).contains("scheme"));
    assert!(bad(|c| c.max_connections = 0).contains("max_connections"));
    assert!(bad(|c| c.timeout = Duration::ZERO).contains("timeout"));
    assert!(bad(|c| c.insert_gzip_level = Some(12)).contains("insert_gzip_level"));
}

#[tokio::test]
async fn instrumented_calls_record_timers_and_body_sizes() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let server = Server::start([
        Reply::json(200, r#"{"success":true}"#),
        Reply::json(
            200,
            r#"{"success":false,"code":"ERR_AUTHENTICATION_FAILED"}"#,
        ),
        Reply::json(404, "{}"),
    ])
    .await;
    let request = create_request();
    let api = Instrumented::new(Sidecar::new(client(&server), request.account))
        .with_labels([("destination", "dest-1".to_owned())]);
    let channel = ChannelRef {
        table: request.table,
        destination: "dest-1".into(),
        instance: "1".into(),
    };
    let handle = snowpipe_api::ChannelHandle {
        channel: channel.clone(),
        id: "ch".into(),
    };
    let appended = api.append_rows(&handle, rows(3), "3").await.unwrap();
    api.open_channel(&channel, &OpenOptions::discard())
        .await
        .unwrap_err();
    let gone = snowpipe_api::ChannelHandle {
        id: "gone".into(),
        ..handle
    };
    assert_eq!(api.channel_status(&gone).await.unwrap(), None);

    let mut timers = Vec::new();
    let mut sizes = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        match (key.name(), value) {
            ("snowpipe_streaming_api_response_time_seconds", DebugValue::Histogram(values)) => {
                assert_eq!(values.len(), 1);
                timers.push(labels.join(","));
            }
            ("snowpipe_streaming_request_body_bytes", DebugValue::Histogram(values)) => {
                sizes.extend(values.iter().map(|v| v.into_inner()));
            }
            (name, _) => panic!("unexpected metric {name}"),
        }
    }
    timers.sort();
    assert_eq!(
        timers,
        [
            "api=create_channel,code=ERR_AUTHENTICATION_FAILED,destination=dest-1,success=false",
            "api=insert,code=,destination=dest-1,success=true",
            "api=status,code=,destination=dest-1,success=true",
        ]
    );
    #[allow(clippy::cast_precision_loss)]
    let expected = appended.body_bytes() as f64;
    assert_eq!(sizes, [expected]);
}
