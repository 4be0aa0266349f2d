//! The client's append throughput against the emulator over HTTP, beside the compression floor for the
//! same bytes. Run by `cargo bench` (so `cargo xtask bench`) and `cargo xtask bench client`.
//!
//! The emulator runs in-process on a single-threaded runtime of its own thread (one core, as in the
//! emulator's `rest_append` bench), committing at once; the client runs on a multi-threaded runtime (its
//! bodies are cut and compressed on blocking threads). Each append hands the client 48 MB of rows shaped
//! like the end-to-end benchmark's, which it writes as NDJSON, compresses and cuts into requests of at
//! most 4 MiB as sent. Figures are MB/s of rows (their NDJSON, uncompressed), medians of three rounds:
//! - `floor`: the codec alone over the same NDJSON, in-process, one thread (what compressing costs);
//! - `cut`: the client's own body writer (`snowpipe_rest::body::Splitter`: NDJSON, compression, cuts under
//!   the limit) in-process, on one thread, and on four at once;
//! - `client`: `RestClient::append` to the emulator, one channel, and four channels (four tables) at once.
//!
//! A custom harness: divan times functions, and this needs a server and a client on their own threads.

// A benchmark reports to the person running it.
#![allow(clippy::print_stdout, missing_docs)]

use std::{
    fmt::Write as _,
    io::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use snowpipe_api::{
    AppendRequest, Backend, ChannelRef, OpenOptions, Row, TableRef, retry::TokioSleep,
};
use snowpipe_emulator::{Emulator, demo};
use snowpipe_rest::{
    Compression, Credentials, RestClient, RestConfig,
    body::{MAX_REQUEST_BYTES, Splitter},
};

/// Rows' bytes (NDJSON) per append.
const APPEND_BYTES: usize = 48_000_000;
/// Appends per channel per round.
const APPENDS: usize = 3;
const ROUNDS: usize = 3;
const CHANNELS: usize = 4;

fn main() {
    // `cargo bench -- FILTER` passes the filter to every bench target: run only when it names this one.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filters.is_empty()
        && !filters
            .iter()
            .any(|f| "append_throughput".contains(f.as_str()))
    {
        return;
    }
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            let emulator = Emulator::builder()
                .commit_lag(Duration::ZERO)
                .max_rows_per_table(1000)
                .start()
                .await
                .expect("the emulator starts");
            for t in 0..CHANNELS {
                emulator
                    .control()
                    .execute_sql(
                        &format!(
                            "CREATE TABLE BENCH_{t} (ID VARCHAR NOT NULL, USER_ID VARCHAR, EVENT VARCHAR, RECEIVED_AT TIMESTAMP_TZ, CONTEXT_PAGE_URL VARCHAR, AMOUNT FLOAT, QUANTITY INT, IS_ACTIVE BOOLEAN)"
                        ),
                        Some(demo::DATABASE),
                        Some("PUBLIC"),
                    )
                    .expect("the table");
            }
            addr_tx.send(emulator.base_url()).expect("the address");
            let _ = stop_rx.await;
            emulator.shutdown().await;
        });
    });
    let base = addr_rx.recv().expect("the emulator's address");
    let ndjson = snowpipe_emulator::sample::ndjson(APPEND_BYTES);
    let rows = rows_of(&ndjson);
    #[allow(clippy::cast_precision_loss)]
    let mb = ndjson.len() as f64 / 1e6;
    println!(
        "append_throughput: {} rows, {mb:.1} MB of NDJSON per append; {APPENDS} appends per channel per round, median of {ROUNDS} rounds",
        rows.len()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut json = String::from("{");
    for (name, compression) in [
        ("zstd", Compression::Zstd(1)),
        ("gzip", Compression::Gzip(1)),
    ] {
        let (floor, sent) = median(|| floor(&ndjson, compression));
        let cut_1 = median(|| cut(&rows, compression, 1)).0;
        let cut_4 = median(|| cut(&rows, compression, CHANNELS)).0;
        let client = Arc::new(client(&base, compression));
        let (one, requests) = median(|| rt.block_on(append(&client, &rows, name, 1)));
        let (four, _) = median(|| rt.block_on(append(&client, &rows, name, CHANNELS)));
        let mbps = |seconds: f64, channels: usize| {
            #[allow(clippy::cast_precision_loss)]
            let total = mb * channels as f64;
            total / seconds
        };
        let per_round = mb * APPENDS as f64;
        let figures = [
            ("floor", per_round / floor),
            ("cut_1", per_round / cut_1),
            ("cut_4", mbps(cut_4, CHANNELS) * APPENDS as f64),
            ("client_1", mbps(one, 1) * APPENDS as f64),
            ("client_4", mbps(four, CHANNELS) * APPENDS as f64),
        ];
        #[allow(clippy::cast_precision_loss)]
        let ratio = ndjson.len() as f64 / sent as f64;
        println!(
            "append_throughput {name} (level 1, {ratio:.1}x, {requests} requests per append): floor {:.0} MB/s (codec, one thread); cut {:.0} MB/s (one thread), {:.0} MB/s (four at once); client {:.0} MB/s (one channel), {:.0} MB/s (four channels)",
            figures[0].1, figures[1].1, figures[2].1, figures[3].1, figures[4].1
        );
        let _ = write!(
            json,
            "{}\"{name}\":{{\"rowBytes\":{},\"sentBytes\":{sent},\"requestsPerAppend\":{requests}",
            if json.len() > 1 { "," } else { "" },
            ndjson.len()
        );
        for (key, value) in figures {
            let _ = write!(json, ",\"{key}MBps\":{value:.1}");
        }
        json.push('}');
    }
    json.push_str("}\n");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("rest_client.json"), &json);
    }
    let _ = stop_tx.send(());
    let _ = server.join();
}

/// Runs `round` [`ROUNDS`] times; the median of its seconds (first of the pair), with the second of the
/// median round.
fn median(mut round: impl FnMut() -> (f64, usize)) -> (f64, usize) {
    let mut runs: Vec<(f64, usize)> = (0..ROUNDS).map(|_| round()).collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    runs[runs.len() / 2]
}

/// Seconds to compress the NDJSON [`APPENDS`] times with the codec alone; the bytes it came to.
fn floor(ndjson: &[u8], compression: Compression) -> (f64, usize) {
    let started = Instant::now();
    let mut sent = 0;
    for _ in 0..APPENDS {
        sent = match compression {
            Compression::Zstd(level) => zstd::bulk::compress(ndjson, level).expect("zstd").len(),
            Compression::Gzip(level) => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(ndjson.len() / 4),
                    flate2::Compression::new(level),
                );
                encoder.write_all(ndjson).expect("gzip");
                encoder.finish().expect("gzip").len()
            }
            _ => ndjson.len(),
        };
    }
    (started.elapsed().as_secs_f64(), sent)
}

/// Seconds for `threads` threads at once to cut the rows into request bodies [`APPENDS`] times each, as
/// the client does; the requests one append takes.
fn cut(rows: &[Row], compression: Compression, threads: usize) -> (f64, usize) {
    let started = Instant::now();
    let requests = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut requests = 0;
                    for _ in 0..APPENDS {
                        requests = 0;
                        for chunk in Splitter::new(rows, compression, MAX_REQUEST_BYTES) {
                            std::hint::black_box(chunk.expect("a body"));
                            requests += 1;
                        }
                    }
                    requests
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a cutting thread"))
            .max()
            .unwrap_or(0)
    });
    (started.elapsed().as_secs_f64(), requests)
}

fn client(base: &str, compression: Compression) -> RestClient {
    let mut config = RestConfig::new(
        demo::ACCOUNT,
        demo::USER,
        Credentials::key_pair(demo::PRIVATE_KEY_PEM, ""),
    );
    config.role = Some(demo::ROLE.into());
    config.account_url = Some(base.to_owned());
    config.compression = compression;
    config.sleep = Arc::new(TokioSleep);
    RestClient::new(config).expect("the client")
}

fn channel(t: usize) -> ChannelRef {
    ChannelRef {
        table: TableRef {
            database: demo::DATABASE.into(),
            schema: "PUBLIC".into(),
            table: format!("BENCH_{t}"),
            enable_iceberg: false,
        },
        destination: "bench".into(),
        instance: t.to_string(),
    }
}

/// Seconds for `channels` channels at once to take [`APPENDS`] appends of the rows each; the requests one
/// append took.
async fn append(
    client: &Arc<RestClient>,
    rows: &[Row],
    codec: &str,
    channels: usize,
) -> (f64, usize) {
    let rows: Arc<[Row]> = rows.to_vec().into();
    let mut handles = Vec::new();
    for t in 0..channels {
        let opened = client
            .open_channel(&channel(t), &OpenOptions::discard())
            .await
            .expect("open");
        handles.push(opened.handle);
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for handle in handles {
        let (client, rows, codec) = (Arc::clone(client), Arc::clone(&rows), codec.to_owned());
        tasks.spawn(async move {
            let mut requests = 0;
            for i in 0..APPENDS {
                let request = AppendRequest::with_token(Arc::clone(&rows), format!("{codec}-{i}"));
                requests = client
                    .append(&handle, &request)
                    .await
                    .expect("append")
                    .requests
                    .len();
            }
            requests
        });
    }
    let mut requests = 0;
    while let Some(done) = tasks.join_next().await {
        requests = requests.max(done.expect("an appending task"));
    }
    (started.elapsed().as_secs_f64(), requests)
}

/// The NDJSON's lines as rows: slices of one shared buffer, as the manager holds them.
fn rows_of(ndjson: &[u8]) -> Vec<Row> {
    let buffer = Bytes::copy_from_slice(ndjson);
    let mut rows = Vec::new();
    let mut start = 0;
    for (at, byte) in ndjson.iter().enumerate() {
        if *byte == b'\n' {
            rows.push(Row::from_serialized(buffer.slice(start..at)));
            start = at + 1;
        }
    }
    rows
}
