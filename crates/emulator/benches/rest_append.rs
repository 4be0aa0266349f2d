//! REST appends per second on one core: the emulator runs on a single-threaded runtime of its own
//! thread, a client on another thread sends 4 MB NDJSON bodies (zstd, then gzip) one after another on
//! one connection, commits at once (commit lag 0, so each append is read, decoded, checked and landed
//! in its call). Run by `cargo bench` (so `cargo xtask bench`) and `cargo xtask bench rest`.
//!
//! A custom harness: divan times functions, and this needs a server and a client on two threads.

// A benchmark reports to the person running it.
#![allow(clippy::print_stdout, missing_docs)]

use std::{fmt::Write as _, io::Write as _, time::Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use snowpipe_emulator::{Emulator, demo, jwt};

/// Uncompressed bytes of NDJSON per append.
const BODY_BYTES: usize = 4_000_000;
/// Appends per round, and rounds per encoding (the median round is reported).
const APPENDS: usize = 20;
const ROUNDS: usize = 5;
const TABLE: &str = "BENCH";

fn main() {
    // `cargo bench -- FILTER` passes the filter to every bench target: run only when it names this one.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "rest_append".contains(f.as_str())) {
        return;
    }
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The emulator on one thread: what it sustains there is its speed on one core.
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            let emulator = Emulator::builder()
                .commit_lag(std::time::Duration::ZERO)
                .max_rows_per_table(1000)
                .start()
                .await
                .expect("the emulator starts");
            emulator
                .control()
                .execute_sql(
                    &format!(
                        "CREATE TABLE {TABLE} (ID VARCHAR NOT NULL, USER_ID VARCHAR, EVENT VARCHAR, RECEIVED_AT TIMESTAMP_TZ, CONTEXT_PAGE_URL VARCHAR, AMOUNT FLOAT, QUANTITY INT, IS_ACTIVE BOOLEAN)"
                    ),
                    Some(demo::DATABASE),
                    Some("PUBLIC"),
                )
                .expect("the table");
            addr_tx.send(emulator.addr()).expect("the address");
            let _ = stop_rx.await;
            emulator.shutdown().await;
        });
    });
    let addr = addr_rx.recv().expect("the emulator's address");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let body = snowpipe_emulator::sample::ndjson(BODY_BYTES);
    let rows = body.iter().filter(|b| **b == b'\n').count();
    let mut json = String::from("{");
    for (encoding, compressed) in [("zstd", zstd(&body)), ("gzip", gzip(&body))] {
        let per_second = rt.block_on(rounds(&addr.to_string(), encoding, &compressed));
        #[allow(clippy::cast_precision_loss)]
        let (mb, sent_mb) = (body.len() as f64 / 1e6, compressed.len() as f64 / 1e6);
        println!(
            "rest_append {encoding}: {mb:.1} MB bodies ({sent_mb:.2} MB as sent, {rows} rows): {per_second:.1} appends/s, {:.0} MB/s, {:.0} k rows/s on one core (median of {ROUNDS} rounds of {APPENDS})",
            per_second * mb,
            per_second * rows as f64 / 1e3,
        );
        let _ = write!(
            json,
            "{}\"{encoding}\":{{\"bodyBytes\":{},\"sentBytes\":{},\"rows\":{rows},\"appendsPerSecond\":{per_second:.2}}}",
            if json.len() > 1 { "," } else { "" },
            body.len(),
            compressed.len()
        );
    }
    json.push_str("}\n");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("rest_append.json"), &json);
    }
    let _ = stop_tx.send(());
    let _ = server.join();
}

/// Runs the rounds of one encoding; answers the median appends per second.
async fn rounds(addr: &str, encoding: &str, body: &[u8]) -> f64 {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let base = format!("http://{addr}");
    let token = scoped_token(&client, &base, addr).await;
    let body = Bytes::copy_from_slice(body);
    let mut rates = Vec::new();
    for round in 0..ROUNDS {
        let channel = format!("{encoding}_{round}");
        let open = send(
            &client,
            Method::PUT,
            &format!("{base}/v2/streaming/databases/DEMO_DB/schemas/PUBLIC/pipes/{TABLE}-STREAMING/channels/{channel}"),
            &token,
            None,
            Bytes::new(),
        )
        .await;
        let mut next = field(&open, "next_continuation_token");
        let started = Instant::now();
        for i in 0..APPENDS {
            let url = format!(
                "{base}/v2/streaming/data/databases/DEMO_DB/schemas/PUBLIC/pipes/{TABLE}-STREAMING/channels/{channel}/rows?continuationToken={next}&startOffsetToken={i}&endOffsetToken={i}"
            );
            let answer = send(
                &client,
                Method::POST,
                &url,
                &token,
                Some(encoding),
                body.clone(),
            )
            .await;
            next = field(&answer, "next_continuation_token");
        }
        #[allow(clippy::cast_precision_loss)]
        rates.push(APPENDS as f64 / started.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

async fn scoped_token(
    client: &Client<HttpConnector, Full<Bytes>>,
    base: &str,
    host: &str,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let jwt = jwt::sign(
        demo::PRIVATE_KEY_PEM,
        None,
        demo::ACCOUNT,
        demo::USER,
        now,
        3600,
    )
    .expect("a JWT");
    let req = Request::post(format!("{base}/oauth/token"))
        .header("accept", "application/json")
        .header("authorization", format!("Bearer {jwt}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(format!(
            "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&scope={host}"
        ))))
        .expect("a request");
    let resp = client.request(req).await.expect("the token exchange");
    let body = resp.into_body().collect().await.expect("a body").to_bytes();
    String::from_utf8(body.to_vec()).expect("a token")
}

async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: Method,
    url: &str,
    token: &str,
    encoding: Option<&str>,
    body: Bytes,
) -> serde_json::Value {
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header("accept", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .header("x-snowflake-authorization-token-type", "OAUTH")
        .header("content-type", "application/x-ndjson");
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let resp = client
        .request(req.body(Full::new(body)).expect("a request"))
        .await
        .expect("an answer");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("a body").to_bytes();
    assert!(
        status.is_success(),
        "{status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).expect("JSON")
}

fn field(v: &serde_json::Value, name: &str) -> String {
    v[name].as_str().expect("the field").to_owned()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).expect("zstd")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}
