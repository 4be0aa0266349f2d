//! `cargo xtask bench e2e`: the whole product on a 100 MB batch, against the release emulator in its own
//! process, on both backends alternately (the sidecar protocol and Snowflake's REST API), each timed against
//! its own floor: reading the file and compressing its rows with that backend's compression (gzip for the
//! sidecar, zstd for REST, level 1 as inserts are sent); six rounds of each, medians reported.
//!
//! Then what commits taking time cost (commit lag rounds, with and without discard rows), and what round
//! trips cost: a 2,000-event batch over the same tables with every call answered 20 ms late.
//!
//! The manager runs as the release `snowpipe-streaming run` in its own process too, so its peak RSS is its
//! own (measured by `/usr/bin/time`, when the machine has it).
//!
//! Each round also takes the CPU the command and the emulator used (where Linux says it), and reports the
//! least wall time that CPU allows on the machine's cores: on a small machine both share, that bound, not
//! the floor, is what a run can approach.

use std::{
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader, BufWriter, Read, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail};
use flate2::{Compression, write::GzEncoder};

const EVENTS: usize = 200_000;
const TABLES: usize = 20;
/// Rounds of floor + run per backend; the figures reported are the medians.
const ROUNDS: usize = 6;

/// The backends measured, each with its compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sidecar,
    Rest,
}

impl Backend {
    const BOTH: [Self; 2] = [Self::Sidecar, Self::Rest];

    fn name(self) -> &'static str {
        match self {
            Self::Sidecar => "sidecar",
            Self::Rest => "rest",
        }
    }

    /// The emulator's names of the endpoints a run on this backend calls.
    fn endpoints(self) -> &'static [&'static str] {
        match self {
            Self::Sidecar => &[
                "create_channel",
                "insert",
                "status",
                "bulk_status",
                "statements",
            ],
            Self::Rest => &[
                "rest_hostname",
                "rest_token",
                "rest_open_channel",
                "rest_append",
                "rest_bulk_status",
                "statements",
            ],
        }
    }

    /// The command's options that point it at the emulator on this backend.
    fn options(self, url: &str) -> Vec<String> {
        let mut options = vec!["--account-url".to_owned(), url.to_owned()];
        if self == Self::Sidecar {
            options.extend(["--backend", "sidecar", "--service-url", url].map(str::to_owned));
        }
        options
    }
}

/// One backend's figures.
#[derive(Debug, Default)]
struct Figures {
    walls: Vec<f64>,
    floors: Vec<f64>,
    peak_rss: u64,
    lag_plain: Vec<f64>,
    lag_discarding: Vec<f64>,
    remote: Vec<f64>,
    /// CPU seconds (user + system) of the command and of the emulator in each round, where measured.
    manager_cpu: Vec<f64>,
    emulator_cpu: Vec<f64>,
}

impl Figures {
    /// The JSON object of these figures (the sidecar's keys, kept at the top level of `e2e.json`).
    fn json(&mut self) -> String {
        let (wall, floor) = (median(&mut self.walls), median(&mut self.floors));
        let (plain, discarding, remote) = (
            median(&mut self.lag_plain),
            median(&mut self.lag_discarding),
            median(&mut self.remote),
        );
        let cpu = self.cpu().map_or_else(String::new, |cpu| {
            format!(
                ",\"cpuSeconds\":{{\"manager\":{:.3},\"emulator\":{:.3},\"cores\":{},\"boundSeconds\":{:.3}}}",
                cpu.manager, cpu.emulator, cpu.cores, cpu.bound()
            )
        });
        format!(
            "\"events\":{EVENTS},\"wallSeconds\":{wall:.3},\"floorSeconds\":{floor:.3},\"ratio\":{:.3},\"peakRssBytes\":{},\"commitLag\":{{\"lag\":\"{COMMIT_LAG}\",\"wallSeconds\":{plain:.3},\"withDiscardsWallSeconds\":{discarding:.3}}},\"latency\":{{\"millisPerCall\":{LATENCY_MS},\"events\":{SMALL_EVENTS},\"wallSeconds\":{remote:.3}}}{cpu}",
            wall / floor,
            self.peak_rss
        )
    }

    /// The medians of the CPU the rounds used, when every round measured it.
    fn cpu(&mut self) -> Option<Cpu> {
        if self.manager_cpu.len() != self.walls.len() || self.manager_cpu.is_empty() {
            return None;
        }
        Some(Cpu {
            manager: median(&mut self.manager_cpu),
            emulator: median(&mut self.emulator_cpu),
            cores: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        })
    }
}

/// What a run costs in CPU, and the shortest wall time that allows.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    manager: f64,
    emulator: f64,
    cores: usize,
}

impl Cpu {
    /// The least wall time the command and the emulator need between them on this machine's cores, were
    /// every core busy from start to end: no run can be faster, whatever it overlaps.
    #[allow(clippy::cast_precision_loss)]
    fn bound(self) -> f64 {
        (self.manager + self.emulator) / self.cores as f64
    }
}

/// Runs the benchmark and writes `target/bench/e2e.json`.
pub(crate) fn run(root: &Path) -> Result<()> {
    crate::cargo(&[
        "build",
        "--release",
        "-p",
        "snowpipe-emulator",
        "-p",
        "snowpipe-streaming",
    ])?;
    let dir = root.join("target/bench");
    fs::create_dir_all(&dir)?;
    let events = dir.join("e2e-events.jsonl");
    let rows = dir.join("e2e-rows.jsonl");
    let file_bytes = generate(&events, &rows)?;
    eprintln!("bench e2e: {EVENTS} events over {TABLES} tables, {file_bytes} bytes");

    // This machine's neighbours come and go: several rounds, each measuring each backend's floor and run
    // back to back, the backends alternating, and the medians reported.
    let release = root.join("target/release");
    let mut figures = [Figures::default(), Figures::default()];
    for round in 1..=ROUNDS {
        for (backend, figures) in Backend::BOTH.into_iter().zip(figures.iter_mut()) {
            let floor = floor_seconds(&events, &rows, backend)?;
            let run = timed_run(root, &release, &dir, &events, "0", 0, backend)?;
            let (wall, rss) = (run.wall, run.peak_rss);
            let cpu = run.cpu.map_or_else(String::new, |(manager, emulator)| {
                format!(", CPU {manager:.2} s + emulator {emulator:.2} s")
            });
            eprintln!(
                "bench e2e: {} round {round}/{ROUNDS}: wall {wall:.2} s, floor {floor:.2} s, ratio {:.2}, peak RSS {:.1} MB{cpu}",
                backend.name(),
                wall / floor,
                rss as f64 / 1e6
            );
            figures.walls.push(wall);
            figures.floors.push(floor);
            figures.peak_rss = figures.peak_rss.max(rss);
            if let Some((manager, emulator)) = run.cpu {
                figures.manager_cpu.push(manager);
                figures.emulator_cpu.push(emulator);
            }
        }
    }

    // What committing discard rows before their tables' rows costs when commits take time: the same batch
    // with a commit lag, as it is and with one event in a thousand carrying a value its column cannot take
    // (a discard row in every table), alternately.
    let mismatched = dir.join("e2e-events-discards.jsonl");
    with_mismatches(&events, &mismatched)?;
    for round in 1..=LAG_ROUNDS {
        for (backend, figures) in Backend::BOTH.into_iter().zip(figures.iter_mut()) {
            let a = timed_run(root, &release, &dir, &events, COMMIT_LAG, 0, backend)?.wall;
            let b = timed_run(root, &release, &dir, &mismatched, COMMIT_LAG, 0, backend)?.wall;
            eprintln!(
                "bench e2e: {} commit lag {COMMIT_LAG}, round {round}/{LAG_ROUNDS}: wall {a:.2} s without discard rows, {b:.2} s with",
                backend.name()
            );
            figures.lag_plain.push(a);
            figures.lag_discarding.push(b);
        }
    }
    // What round trips cost: a small batch over every table with each call to the service and the SQL API
    // answered LATENCY_MS late, as a remote account would (the bulk of the time is then waiting).
    let small = dir.join("e2e-events-small.jsonl");
    head(&events, &small, SMALL_EVENTS)?;
    for round in 1..=LAG_ROUNDS {
        for (backend, figures) in Backend::BOTH.into_iter().zip(figures.iter_mut()) {
            let wall = timed_run(root, &release, &dir, &small, "0", LATENCY_MS, backend)?.wall;
            eprintln!(
                "bench e2e: {} {SMALL_EVENTS} events, {LATENCY_MS} ms per call, round {round}/{LAG_ROUNDS}: wall {wall:.2} s",
                backend.name()
            );
            figures.remote.push(wall);
        }
    }
    let [mut sidecar, mut rest] = figures;
    let (sidecar_json, rest_json) = (sidecar.json(), rest.json());
    let json = format!("{{\"fileBytes\":{file_bytes},{sidecar_json},\"rest\":{{{rest_json}}}}}\n");
    fs::write(dir.join("e2e.json"), &json)?;
    #[allow(clippy::cast_precision_loss)]
    let mb = file_bytes as f64 / 1e6;
    for (backend, figures) in Backend::BOTH.into_iter().zip([&mut sidecar, &mut rest]) {
        let (wall, floor) = (median(&mut figures.walls), median(&mut figures.floors));
        eprintln!(
            "bench e2e: {}: wall {wall:.2} s ({:.0} events/s, {:.1} MB/s), floor {floor:.2} s, ratio {:.2}, peak RSS {:.1} MB ({:.2}x the file)",
            backend.name(),
            EVENTS as f64 / wall,
            mb / wall,
            wall / floor,
            figures.peak_rss as f64 / 1e6,
            figures.peak_rss as f64 / file_bytes as f64
        );
        if let Some(cpu) = figures.cpu() {
            eprintln!(
                "bench e2e: {}: CPU {:.2} s in the command + {:.2} s in the emulator: on {} cores no run can take less than {:.2} s ({:.2}x the floor)",
                backend.name(),
                cpu.manager,
                cpu.emulator,
                cpu.cores,
                cpu.bound(),
                cpu.bound() / floor
            );
        }
    }
    for (backend, figures) in Backend::BOTH.into_iter().zip([&mut sidecar, &mut rest]) {
        eprintln!(
            "bench e2e: {}: {SMALL_EVENTS} events over {TABLES} tables, {LATENCY_MS} ms per call: wall {:.2} s",
            backend.name(),
            median(&mut figures.remote)
        );
    }
    let (sidecar_wall, rest_wall) = (median(&mut sidecar.walls), median(&mut rest.walls));
    eprintln!(
        "bench e2e: REST's median wall over the sidecar's: {:.3}",
        rest_wall / sidecar_wall
    );
    eprintln!(
        "bench e2e: figures written to target/bench/e2e.json: {}",
        json.trim()
    );
    Ok(())
}

/// One timed run.
struct Run {
    wall: f64,
    /// The command's peak RSS in bytes (0 when unknown).
    peak_rss: u64,
    /// CPU seconds of the command and of the emulator, where the system says.
    cpu: Option<(f64, f64)>,
}

/// Starts the release emulator, times one `snowpipe-streaming run` against it, and stops the emulator.
fn timed_run(
    root: &Path,
    release: &Path,
    dir: &Path,
    events: &Path,
    commit_lag: &str,
    latency_ms: u64,
    backend: Backend,
) -> Result<Run> {
    let before = children_cpu_seconds();
    let mut emulator = Command::new(release.join("snowpipe-emulator"))
        .args(["--port", "0", "--commit-lag", commit_lag, "--log", "warn"])
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the release emulator")?;
    let result = (|| -> Result<(f64, u64)> {
        let stdout = emulator.stdout.take().context("emulator stdout")?;
        let mut address = String::new();
        BufReader::new(stdout).read_line(&mut address)?;
        let url = format!("http://{}", address.trim());
        if latency_ms > 0 {
            for endpoint in backend.endpoints() {
                set_latency(address.trim(), endpoint, latency_ms)?;
            }
        }
        let destination = dir.join("e2e-destination.json");
        let key = fs::read_to_string(root.join("crates/emulator/keys/demo_rsa_key.p8"))?;
        fs::write(&destination, serde_json_like(&key))?;
        manager_run(release, &backend.options(&url), &destination, events)
    })();
    // The command has been waited for (its CPU is counted now), the emulator not yet.
    let after_manager = children_cpu_seconds();
    let _ = emulator.kill();
    let _ = emulator.wait();
    let after_emulator = children_cpu_seconds();
    let (wall, peak_rss) = result?;
    let cpu = match (before, after_manager, after_emulator) {
        (Some(a), Some(b), Some(c)) => Some((b - a, c - b)),
        _ => None,
    };
    Ok(Run {
        wall,
        peak_rss,
        cpu,
    })
}

/// The CPU seconds (user + system) used so far by the children this process has waited for, from
/// `/proc/self/stat` (`cutime` and `cstime`, in the 1/100 s ticks Linux reports there on every
/// architecture); `None` where there is no such file.
fn children_cpu_seconds() -> Option<f64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, in parentheses, may hold spaces; the fields after it are plain numbers. `cutime` and
    // `cstime` are fields 16 and 17, counting from 1 with the state (after the name) as field 3.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    #[allow(clippy::cast_precision_loss)]
    Some((ticks(16)? + ticks(17)?) as f64 / 100.0)
}

/// The latency of every call in the round-trip rounds, and the batch they send (every table in it).
const LATENCY_MS: u64 = 20;
const SMALL_EVENTS: usize = 2_000;

/// Delays one endpoint's answers through the emulator's admin API (a plain HTTP/1.1 request: xtask has no
/// HTTP client).
fn set_latency(address: &str, endpoint: &str, millis: u64) -> Result<()> {
    use std::net::TcpStream;
    let body = format!(r#"{{"endpoint":"{endpoint}","millis":{millis}}}"#);
    let mut stream = TcpStream::connect(address)?;
    write!(
        stream,
        "POST /_emulator/faults/latency HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if !answer.starts_with("HTTP/1.1 200") {
        bail!("the emulator refused the latency of {endpoint}: {answer}");
    }
    Ok(())
}

/// The first `count` lines of `events`.
fn head(events: &Path, out: &Path, count: usize) -> Result<()> {
    let input = BufReader::new(fs::File::open(events)?);
    let mut output = BufWriter::new(fs::File::create(out)?);
    for line in input.lines().take(count) {
        output.write_all(line?.as_bytes())?;
        output.write_all(b"\n")?;
    }
    output.into_inner()?.sync_all()?;
    Ok(())
}

/// The commit lag of the discard-cost rounds, and how many of each.
const COMMIT_LAG: &str = "1s";
const LAG_ROUNDS: usize = 3;

/// A copy of the event file where one event in a thousand declares `QUANTITY` a string and carries one: the
/// table's column is a number, so the value becomes null and a discard row records it.
fn with_mismatches(events: &Path, out: &Path) -> Result<()> {
    let input = BufReader::new(fs::File::open(events)?);
    let mut output = BufWriter::new(fs::File::create(out)?);
    for (i, line) in input.lines().enumerate() {
        let mut line = line?;
        if i % 1000 == 999 {
            line = line.replace(r#""QUANTITY":"int""#, r#""QUANTITY":"string""#);
            let data = line.find(r#""data":"#).context("an event has data")?;
            let key = r#""QUANTITY":"#;
            let value = data + line[data..].find(key).context("an event has QUANTITY")? + key.len();
            let digits = line[value..]
                .find(|c: char| !c.is_ascii_digit())
                .context("QUANTITY is a number")?;
            line.replace_range(value..value + digits, r#""n/a""#);
        }
        output.write_all(line.as_bytes())?;
        output.write_all(b"\n")?;
    }
    output.into_inner()?.sync_all()?;
    Ok(())
}

/// The median of `values` (the upper of the middle two for an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The destination file for the emulator's demo account, without pulling a JSON crate into xtask.
fn serde_json_like(key: &str) -> String {
    let mut escaped = String::new();
    for c in key.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '"' => escaped.push_str("\\\""),
            '\\' => escaped.push_str("\\\\"),
            c => escaped.push(c),
        }
    }
    format!(
        r#"{{"id":"bench","workspaceId":"bench","config":{{"account":"DEMO","warehouse":"DEMO_WH","database":"DEMO_DB","user":"DEMO_USER","role":"DEMO_ROLE","privateKey":"{escaped}","privateKeyPassphrase":"","namespace":"bench","enableIceberg":false}}}}"#
    )
}

/// Runs `snowpipe-streaming run` on the file; returns wall seconds and peak RSS bytes (0 when unknown).
fn manager_run(
    release: &Path,
    options: &[String],
    destination: &Path,
    events: &Path,
) -> Result<(f64, u64)> {
    let program = release.join("snowpipe-streaming");
    let mut args = vec![
        "--destination".to_owned(),
        destination.display().to_string(),
    ];
    args.extend(options.iter().cloned());
    args.extend([
        "-q".to_owned(),
        "run".to_owned(),
        "--file".to_owned(),
        events.display().to_string(),
        "--poll-interval".to_owned(),
        "50ms".to_owned(),
    ]);
    let timer = Path::new("/usr/bin/time");
    let mut command = if timer.exists() {
        let mut c = Command::new(timer);
        c.arg("-f").arg("xtask-rss-kb %M").arg(&program).args(&args);
        c
    } else {
        let mut c = Command::new(&program);
        c.args(&args);
        c
    };
    let started = Instant::now();
    let output = command.output().context("cannot run snowpipe-streaming")?;
    let wall = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "snowpipe-streaming run failed ({}): {stderr}",
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    if !line.contains("\"succeededJobIds\"") {
        bail!("no result line from snowpipe-streaming run: {stdout}");
    }
    let failed_none = line.contains("\"failedJobIds\":[]") && line.contains("\"abortedJobIds\":[]");
    if !failed_none {
        bail!(
            "the benchmark batch did not land whole: {}",
            &line[..line.len().min(2000)]
        );
    }
    let rss_kb = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("xtask-rss-kb "))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .next_back()
        .unwrap_or(0);
    Ok((wall, rss_kb * 1024))
}

/// The floor: read the event file and compress the rows it carries with the backend's compression (level
/// 1, as inserts are sent: gzip for the sidecar, zstd for REST).
fn floor_seconds(events: &Path, rows: &Path, backend: Backend) -> Result<f64> {
    let started = Instant::now();
    let mut file = Vec::new();
    fs::File::open(events)?.read_to_end(&mut file)?;
    let mut data = Vec::new();
    fs::File::open(rows)?.read_to_end(&mut data)?;
    let compressed = match backend {
        Backend::Sidecar => {
            let mut gzip = GzEncoder::new(Vec::with_capacity(data.len() / 4), Compression::new(1));
            gzip.write_all(&data)?;
            gzip.finish()?
        }
        Backend::Rest => zstd::bulk::compress(&data, 1)?,
    };
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "bench e2e: {} floor: read {} + {} bytes, {} {} → {} bytes in {seconds:.2} s",
        backend.name(),
        file.len(),
        data.len(),
        if backend == Backend::Rest {
            "zstd"
        } else {
            "gzip"
        },
        data.len(),
        compressed.len()
    );
    Ok(seconds)
}

/// Writes a deterministic batch: `EVENTS` events over `TABLES` tables, about 500 bytes a line (100 MB in all), and the
/// rows alone (one per line) for the floor. Returns the event file's size.
fn generate(events: &PathBuf, rows: &PathBuf) -> Result<u64> {
    let mut out = BufWriter::new(fs::File::create(events)?);
    let mut rows_out = BufWriter::new(fs::File::create(rows)?);
    let mut line = String::with_capacity(1024);
    let mut row = String::with_capacity(768);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..EVENTS {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let table = i % TABLES;
        let job = i + 1;
        row.clear();
        write!(
            row,
            r#"{{"ID":"evt-{job:08}-{state:016x}","USER_ID":"user-{}","EVENT":"event_{table}","RECEIVED_AT":"2024-05-12T04:36:{:02}.{:03}Z","CONTEXT_PAGE_URL":"https://example.com/products/{}?ref=campaign-{}","AMOUNT":{}.{:02},"QUANTITY":{},"IS_ACTIVE":{}}}"#,
            state % 50_000,
            i % 60,
            i % 1000,
            state % 10_000,
            state % 97,
            state % 1000,
            state % 100,
            state % 20,
            state.is_multiple_of(2),
        )?;
        line.clear();
        write!(
            line,
            r#"{{"message":{{"metadata":{{"table":"TABLE_{table:02}","columns":{{"ID":"string","USER_ID":"string","EVENT":"string","RECEIVED_AT":"datetime","CONTEXT_PAGE_URL":"string","AMOUNT":"float","QUANTITY":"int","IS_ACTIVE":"boolean","UUID_TS":"datetime"}}}},"data":{row}}},"metadata":{{"job_id":{job}}}}}"#
        )?;
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        rows_out.write_all(row.as_bytes())?;
        rows_out.write_all(b"\n")?;
    }
    // Written out before anything is timed: otherwise the kernel flushes these 150 MB while the rounds run,
    // and both the floor and the run pay for it unevenly.
    out.into_inner()?.sync_all()?;
    rows_out.into_inner()?.sync_all()?;
    Ok(fs::metadata(events)?.len())
}
