//! The HTTP server: [`EmulatorBuilder`] configures, [`Emulator`] is the running instance's handle. One
//! port serves the service protocol, the SQL API and the admin API. A flusher task commits buffered rows
//! when their lag runs out; shutdown stops accepting, lets in-flight calls finish and joins every task
//! (inserts still held in transit are discarded).

use std::{
    net::{Ipv4Addr, SocketAddr},
    pin::pin,
    sync::Arc,
    time::{Duration, Instant},
};

use http::Request;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
    task::JoinSet,
};

use crate::{
    admin::{self, ADMIN_PREFIX},
    config::{Database, EmulatorConfig, User},
    faults::{CallRecord, DropMode, Plan},
    http::{Outcome, Resp, decode_body, read_body},
    rest,
    sidecar::{self, Route},
    sql,
    state::{Control, Core, SetupError},
};

/// A request matched to the protocol that serves it.
enum Routed {
    /// The sidecar protocol, or the SQL API (whose one path the sidecar's router knows).
    Sidecar(Route),
    /// The REST API.
    Rest(rest::Route),
}

/// How long shutdown waits for in-flight calls before closing their connections anyway.
const GRACE: Duration = Duration::from_secs(5);

/// Why an emulator did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is unusable (a bad public key, a user without keys or roles).
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Configures an emulator. Starts from the defaults: the demo account, user and database, a 1 s commit
/// lag, a 64 MiB body limit, `127.0.0.1:0`.
#[derive(Debug, Clone)]
#[must_use]
pub struct EmulatorBuilder {
    config: EmulatorConfig,
    bind: SocketAddr,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        Self {
            config: EmulatorConfig::default(),
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        }
    }
}

impl EmulatorBuilder {
    /// Replaces the whole configuration (e.g. one read with [`EmulatorConfig::from_file`]).
    pub fn config(mut self, config: EmulatorConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the account name clients must present.
    pub fn account(mut self, account: impl Into<String>) -> Self {
        self.config.account = account.into();
        self
    }

    /// Adds a user.
    pub fn user(mut self, user: User) -> Self {
        self.config.users.push(user);
        self
    }

    /// Adds a database.
    pub fn database(mut self, database: Database) -> Self {
        self.config.databases.push(database);
        self
    }

    /// Leaves out the demo user and database.
    pub fn without_demo(mut self) -> Self {
        self.config.include_demo = false;
        self
    }

    /// Sets the time from insert to commit; zero commits during the insert call.
    pub fn commit_lag(mut self, lag: Duration) -> Self {
        self.config.commit_lag = lag;
        self
    }

    /// Sets the largest request body in bytes (compressed and decompressed); larger ones get 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.config.body_limit = bytes;
        self
    }

    /// Bounds each channel's buffered rows, in bytes of JSON.
    pub fn max_buffered_bytes_per_channel(mut self, bytes: usize) -> Self {
        self.config.max_buffered_bytes_per_channel = bytes;
        self
    }

    /// Bounds the committed rows kept per table for inspection.
    pub fn max_rows_per_table(mut self, rows: usize) -> Self {
        self.config.max_rows_per_table = rows;
        self
    }

    /// Sets the lifetime of the REST API's scoped tokens (default one hour), in whole seconds. Zero
    /// issues tokens that have expired already, so a client's refresh path runs at once.
    pub fn scoped_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.scoped_token_lifetime = lifetime;
        self
    }

    /// Hostname discovery answers `{"hostname": ...}` as documented, instead of bare text as live
    /// accounts do.
    pub fn hostname_as_json(mut self, json: bool) -> Self {
        self.config.hostname_as_json = json;
        self
    }

    /// The token exchange answers `{"token": ...}` as documented, instead of bare text.
    pub fn token_as_json(mut self, json: bool) -> Self {
        self.config.token_as_json = json;
        self
    }

    /// Bounds the call log.
    pub fn call_log_capacity(mut self, calls: usize) -> Self {
        self.config.call_log_capacity = calls;
        self
    }

    /// Sets the address to listen on (port 0 picks any free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Binds and starts serving on the current Tokio runtime.
    ///
    /// # Errors
    /// [`StartError`] when the configuration is unusable or the address cannot be bound.
    pub async fn start(self) -> Result<Emulator, StartError> {
        let listener = TcpListener::bind(self.bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: self.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: self.bind,
            source,
        })?;
        // The core knows its address: the REST API answers it as the ingest host.
        let core = Arc::new(Core::new(&self.config, addr)?);
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, Arc::clone(&core)));
        tasks.spawn(flusher(Arc::clone(&core)));
        tracing::info!(%addr, "snowpipe emulator listening");
        Ok(Emulator {
            addr,
            control: Control { core },
            tasks,
        })
    }
}

/// A running emulator. Dropping it stops it too, without waiting; [`shutdown`](Self::shutdown) waits.
///
/// # Example
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use snowpipe_emulator::{Emulator, demo};
///
/// let emulator = Emulator::builder().commit_lag(std::time::Duration::ZERO).start().await?;
/// let url = emulator.base_url(); // e.g. http://127.0.0.1:40123, for the client under test
/// assert!(url.starts_with("http://127.0.0.1:"));
///
/// // Prepare a table as an administrator would, then inspect it after the client ran.
/// let control = emulator.control();
/// control.execute_sql("CREATE TABLE IF NOT EXISTS PUBLIC.TRACKS (ID VARCHAR)", Some(demo::DATABASE), None)?;
/// assert_eq!(control.rows(demo::DATABASE, "PUBLIC", "TRACKS"), Some(vec![]));
///
/// emulator.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    control: Control,
    tasks: JoinSet<()>,
}

impl Emulator {
    /// A builder with the defaults.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// Starts an emulator with the defaults on `127.0.0.1:0`.
    ///
    /// # Errors
    /// [`StartError`] when no port can be bound.
    pub async fn start() -> Result<Self, StartError> {
        Self::builder().start().await
    }

    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the base URL for a client (no trailing slash).
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The control handle: faults and inspection.
    #[must_use]
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Stops accepting, lets in-flight calls finish (up to a few seconds), and waits for every task.
    pub async fn shutdown(mut self) {
        self.control.core.shutdown.send_replace(true);
        while self.tasks.join_next().await.is_some() {}
        // Inserts in transit end at the shutdown signal; connections that waited on them are closed.
        let mut detached = self.control.core.take_detached();
        while detached.join_next().await.is_some() {}
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Tasks watch this and end on their own; `JoinSet`'s drop aborts whatever is left.
        self.control.core.shutdown.send_replace(true);
    }
}

async fn until_shutdown(rx: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which only happens when everything is going away.
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn accept_loop(listener: TcpListener, core: Arc<Core>) {
    let mut shutdown = core.shutdown.subscribe();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = until_shutdown(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&core)));
                }
                Err(e) => {
                    // Out of descriptors and the like: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// The connection is dropped on purpose (a scripted fault): hyper closes it without answering.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a scripted fault")
    }
}

impl std::error::Error for Dropped {}

async fn serve_connection(stream: tokio::net::TcpStream, core: Arc<Core>) {
    let _ = stream.set_nodelay(true);
    let mut shutdown = core.shutdown.subscribe();
    let svc_core = Arc::clone(&core);
    let svc = service_fn(move |req| dispatch(Arc::clone(&svc_core), req));
    let mut conn = pin!(http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended");
            }
        }
        () = until_shutdown(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(GRACE, conn).await;
        }
    }
}

async fn flusher(core: Arc<Core>) {
    let mut shutdown = core.shutdown.subscribe();
    loop {
        let mut wake = pin!(core.flusher.notified());
        wake.as_mut().enable();
        let (committed, next) = {
            let mut state = core.lock();
            let committed = state.commit_due(Instant::now());
            let next = state.next_due();
            (committed, next)
        };
        if committed {
            core.changed.notify_waiters();
        }
        if *shutdown.borrow_and_update() {
            return;
        }
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wake => {}
            () = sleep => {}
            () = until_shutdown(&mut shutdown) => return,
        }
    }
}

async fn run(
    core: &Core,
    route: &Routed,
    headers: &http::HeaderMap,
    query: Option<&str>,
    body: &bytes::Bytes,
) -> Outcome {
    match route {
        Routed::Sidecar(Route::Statements) => sql::serve(core, headers, body),
        Routed::Sidecar(other) => sidecar::serve(core, other.clone(), query, body).await,
        Routed::Rest(r) => rest::serve(core, r, headers, query, body.clone()),
    }
}

/// Delays a call by its endpoint's scripted latency (cut short by shutdown).
async fn wait_latency(core: &Core, endpoint: crate::faults::Endpoint) {
    let latency = core.lock().faults.latency(endpoint);
    if !latency.is_zero() {
        let mut shutdown = core.shutdown.subscribe();
        tokio::select! {
            () = tokio::time::sleep(latency) => {}
            () = until_shutdown(&mut shutdown) => {}
        }
    }
}

/// Serves a REST call: its body is read as received, bounded (4 MiB for appends), and decoded by the
/// handler, which needs its encoding and size as sent.
async fn dispatch_rest(
    core: Arc<Core>,
    route: rest::Route,
    parts: http::request::Parts,
    body: Incoming,
) -> Result<Resp, Dropped> {
    let endpoint = route.endpoint();
    let mut record = CallRecord {
        seq: 0,
        endpoint,
        channel_id: route.channel_label(),
        offset: None,
        row_count: None,
        statement: None,
        status: None,
        fault: None,
    };
    let limit = match route {
        rest::Route::Append(_) => rest::append_limit(core.body_limit),
        _ => core.body_limit,
    };
    let query = parts.uri.query().map(str::to_owned);
    let body = match read_body(&parts.headers, body, limit).await {
        Ok(b) => b,
        Err(reject) => {
            let resp = rest::reject_response(&reject);
            record.status = Some(reject.status.as_u16());
            rest::log_request(
                &core,
                &route,
                query.as_deref(),
                &parts.headers,
                &bytes::Bytes::new(),
                &rest::Answered {
                    outcome: None,
                    status: record.status,
                    fault: None,
                },
            );
            log_call(&record);
            core.record(record);
            return Ok(resp);
        }
    };
    wait_latency(&core, endpoint).await;
    let call = Call {
        route: Routed::Rest(route),
        headers: parts.headers,
        query,
        body,
        record,
    };
    process(&core, call, false).await
}

async fn dispatch(core: Arc<Core>, req: Request<Incoming>) -> Result<Resp, Dropped> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    match rest::route(&parts.method, &path) {
        Some(Ok(route)) => return dispatch_rest(core, route, parts, body).await,
        Some(Err(reject)) => {
            tracing::debug!(method = %parts.method, path, status = reject.status.as_u16(), "unknown REST path");
            return Ok(rest::reject_response(&reject));
        }
        None => {}
    }
    if let Some(rest) = path.strip_prefix(ADMIN_PREFIX) {
        let body = match read_body(&parts.headers, body, core.body_limit).await {
            Ok(b) => b,
            Err(reject) => return Ok(reject.response()),
        };
        let control = Control {
            core: Arc::clone(&core),
        };
        return Ok(admin::serve(
            &control,
            &parts.method,
            rest,
            query.as_deref(),
            &body,
        ));
    }
    let route = match sidecar::route(&parts.method, &path) {
        Ok(r) => r,
        Err(reject) => {
            tracing::debug!(method = %parts.method, path, status = reject.status.as_u16(), "unknown path");
            return Ok(reject.response());
        }
    };
    let endpoint = route.endpoint();
    let mut record = CallRecord {
        seq: 0,
        endpoint,
        channel_id: route.channel_id().map(str::to_owned),
        offset: None,
        row_count: None,
        statement: None,
        status: None,
        fault: None,
    };
    let body = match read_body(&parts.headers, body, core.body_limit).await {
        Ok(raw) => decode_body(&parts.headers, raw, core.body_limit, &core.buffers),
        Err(resp) => Err(resp),
    };
    let body = match body {
        Ok(b) => b,
        Err(reject) => {
            record.status = Some(reject.status.as_u16());
            log_call(&record);
            core.record(record);
            return Ok(reject.response());
        }
    };
    wait_latency(&core, endpoint).await;
    let call = Call {
        route: Routed::Sidecar(route),
        headers: parts.headers,
        query,
        body,
        record,
    };
    let in_transit = core.lock().faults.take_in_transit(endpoint);
    match in_transit {
        None => process(&core, call, false).await,
        Some(delay) => hold_in_transit(core, call, delay).await,
    }
}

/// A call whose body has been read, waiting to be processed.
struct Call {
    route: Routed,
    headers: http::HeaderMap,
    query: Option<String>,
    body: bytes::Bytes,
    record: CallRecord,
}

/// Processes `call` only after `delay`, in a task of its own so that it still lands when the client has
/// hung up meanwhile (a dropped connection cancels the connection's future, not this task). Answers
/// what processing answers, if the client still listens.
async fn hold_in_transit(core: Arc<Core>, call: Call, delay: Duration) -> Result<Resp, Dropped> {
    let (tx, rx) = oneshot::channel();
    core.lock().in_transit += 1;
    core.changed.notify_waiters();
    let task_core = Arc::clone(&core);
    core.spawn_detached(async move {
        let core = task_core;
        let mut shutdown = core.shutdown.subscribe();
        let stopped = tokio::select! {
            () = tokio::time::sleep(delay) => false,
            () = until_shutdown(&mut shutdown) => true,
        };
        core.lock().in_transit -= 1;
        core.changed.notify_waiters();
        // Shutting down: the request never arrives, as when the network dies with it.
        let answer = if stopped {
            Err(Dropped)
        } else {
            process(&core, call, true).await
        };
        // Nobody may be listening any more; that is the point of this fault.
        let _ = tx.send(answer);
    });
    rx.await.unwrap_or(Err(Dropped))
}

/// Applies the scripted failures and drops to one call, serves it, and logs it.
async fn process(core: &Core, call: Call, in_transit: bool) -> Result<Resp, Dropped> {
    let Call {
        route,
        headers,
        query,
        body,
        mut record,
    } = call;
    let endpoint = record.endpoint;
    let plan = core.lock().faults.plan(endpoint);
    let (outcome, answer, fault) = match plan {
        Plan::Fail(failure) => {
            let resp = match &route {
                Routed::Rest(_) => rest::failure_response(&failure),
                Routed::Sidecar(_) => sidecar::failure_response(endpoint, &failure),
            };
            (None, Some(resp), Some("fail"))
        }
        Plan::Drop(DropMode::NotApplied) => (None, None, Some("drop_not_applied")),
        Plan::Drop(DropMode::Applied) => {
            let outcome = run(core, &route, &headers, query.as_deref(), &body).await;
            fill(&mut record, &outcome);
            // A request held in transit whose answer a fault also drops is still held: the log says both,
            // so that whoever counts held rows (the soak's named window) counts these.
            let fault = if outcome.lose_answer {
                "drop_applied,held_in_transit"
            } else {
                "drop_applied"
            };
            (Some(outcome), None, Some(fault))
        }
        Plan::Normal => {
            let mut outcome = run(core, &route, &headers, query.as_deref(), &body).await;
            fill(&mut record, &outcome);
            if outcome.lose_answer {
                // The handler took the call and a scripted fault loses its answer.
                (Some(outcome), None, Some("held_in_transit"))
            } else {
                let resp = std::mem::take(&mut outcome.resp);
                (Some(outcome), Some(resp), None)
            }
        }
    };
    record.status = answer.as_ref().map(|r| r.status().as_u16());
    record.fault = match (in_transit, fault) {
        (true, Some(f)) => Some(format!("in_transit,{f}")),
        (true, None) => Some("in_transit".to_owned()),
        (false, f) => f.map(str::to_owned),
    };
    if let Routed::Rest(r) = &route {
        rest::log_request(
            core,
            r,
            query.as_deref(),
            &headers,
            &body,
            &rest::Answered {
                outcome: outcome.as_ref(),
                status: record.status,
                fault: record.fault.as_deref(),
            },
        );
    }
    log_call(&record);
    core.record(record);
    answer.ok_or(Dropped)
}

fn fill(record: &mut CallRecord, outcome: &Outcome) {
    if outcome.channel_id.is_some() {
        record.channel_id.clone_from(&outcome.channel_id);
    }
    record.offset.clone_from(&outcome.offset);
    record.row_count = outcome.row_count;
    record.statement.clone_from(&outcome.statement);
}

fn log_call(r: &CallRecord) {
    tracing::debug!(
        endpoint = r.endpoint.name(),
        channel = r.channel_id.as_deref().unwrap_or(""),
        offset = r.offset.as_deref().unwrap_or(""),
        rows = r.row_count.unwrap_or(0),
        status = r.status.unwrap_or(0),
        fault = r.fault.as_deref().unwrap_or(""),
        "call"
    );
}
