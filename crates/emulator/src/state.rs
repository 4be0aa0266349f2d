//! The emulator's shared state and [`Control`], the handle tests use to script faults and inspect what
//! happened. The admin API calls the same methods.
//!
//! One mutex guards the catalog, the channels and the faults; it is never held across an await (crypto,
//! JSON and row validation run outside it). Waiters (sync delete, tests) sleep on a [`Notify`] that every
//! change wakes, never on time. Inserts held in transit run as detached tasks the core keeps, so they
//! still land after their client gave up, and shutdown joins them.

use std::{
    collections::HashMap,
    net::SocketAddr,
    pin::pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;
use tokio::{
    sync::{Notify, watch},
    task::JoinSet,
};

use crate::{
    auth::{self, KeyError, ParsedKeys, ScopedTokens},
    config::EmulatorConfig,
    faults::{CallRecord, DropMode, Endpoint, Failure, Faults},
    http::BufferPool,
    store::{
        Catalog, ChannelInfo, Committed, Due, PIPE_SUFFIX, RestChannelInfo, RestChannels, RestKey,
        RestRequest, SqlContext, SqlError, StatementResult, Store, TableInfo, TableRef, ident,
    },
};

/// Names a REST channel for the control handle and the admin API. The constructors resolve names as
/// identifiers (unquoted is upper-cased, `"quoted"` exact), as the REST API resolves its path
/// segments; the fields hold the resolved names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RestChannelName {
    /// The database, resolved.
    pub database: String,
    /// The schema, resolved.
    pub schema: String,
    /// The pipe, resolved (`<TABLE>-STREAMING`: every table's default pipe).
    pub pipe: String,
    /// The channel, resolved: as bulk status matches it.
    pub channel: String,
}

impl RestChannelName {
    /// A channel on `pipe`, each name resolved as an identifier.
    #[must_use]
    pub fn new(database: &str, schema: &str, pipe: &str, channel: &str) -> Self {
        Self {
            database: ident::resolve(database),
            schema: ident::resolve(schema),
            pipe: ident::resolve(pipe),
            channel: ident::resolve(channel),
        }
    }

    /// A channel on `table`'s default pipe (`<TABLE>-STREAMING`, built from the resolved table name,
    /// so `"Odd t"` gives the pipe `Odd t-STREAMING`).
    #[must_use]
    pub fn on_table(database: &str, schema: &str, table: &str, channel: &str) -> Self {
        Self {
            database: ident::resolve(database),
            schema: ident::resolve(schema),
            pipe: format!("{}{PIPE_SUFFIX}", ident::resolve(table)),
            channel: ident::resolve(channel),
        }
    }

    fn key(&self) -> Option<RestKey> {
        RestKey::new(&self.database, &self.schema, &self.pipe, &self.channel)
    }
}

/// A configured user, keys parsed.
pub(crate) struct UserEntry {
    pub(crate) keys: Vec<Vec<u8>>,
    pub(crate) roles: Vec<String>,
    /// Programmatic access tokens the REST ingest host takes in place of a scoped token.
    pub(crate) pats: Vec<String>,
}

/// Milliseconds since the Unix epoch, as the REST API writes times.
pub(crate) fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Seconds since the Unix epoch, as JWTs write times.
pub(crate) fn unix_seconds() -> i64 {
    unix_millis() / 1000
}

/// How the REST API's account host answers (the documented JSON or the bare text live accounts send).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RestAnswers {
    pub(crate) hostname_json: bool,
    pub(crate) token_json: bool,
}

/// Everything behind the mutex.
pub(crate) struct State {
    pub(crate) catalog: Catalog,
    pub(crate) store: Store,
    /// The REST API's channels; their rows land in the same catalog.
    pub(crate) rest: RestChannels,
    pub(crate) rest_answers: RestAnswers,
    pub(crate) faults: Faults,
    pub(crate) commit_lag: Duration,
    pub(crate) sync_delete_waiters: usize,
    /// Inserts held in transit right now.
    pub(crate) in_transit: usize,
}

impl State {
    /// Appends committed rows to their tables; answers whether anything committed.
    pub(crate) fn apply(&mut self, committed: Vec<Committed>) -> bool {
        let any = !committed.is_empty();
        for c in committed {
            self.catalog.append(&c.table, c.rows);
        }
        any
    }

    /// Commits whatever the lag makes due at `now`, through either protocol.
    pub(crate) fn commit_due(&mut self, now: Instant) -> bool {
        let due = self.store.commit_due(now, self.commit_lag);
        let rest = self.rest.take_due(now, self.commit_lag);
        self.apply(due) | self.land(rest)
    }

    /// Lands REST requests that fell due, each against its table as it is now, and records what each
    /// did on its channel. Answers whether any landed.
    pub(crate) fn land(&mut self, due: Vec<Due>) -> bool {
        let any = !due.is_empty();
        let now_ms = unix_millis();
        for mut d in due {
            let converted = d.pending.converted.take();
            let p = &d.pending;
            let landed = self.catalog.land(
                &d.key.table,
                &p.body,
                &p.lines,
                &d.reject,
                converted,
                now_ms,
            );
            self.rest.committed(&d, landed.as_ref(), now_ms);
        }
        any
    }

    /// When the next commit falls due, through either protocol.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let sidecar = self.store.next_due(self.commit_lag);
        let rest = self.rest.next_due(self.commit_lag);
        match (sidecar, rest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs one statement; a table `CREATE OR REPLACE` replaced takes its channels with it (both
    /// protocols'), as Snowflake's go with their table.
    pub(crate) fn run_sql(
        &mut self,
        statement: &str,
        ctx: &SqlContext,
    ) -> Result<StatementResult, SqlError> {
        let result = self.catalog.run(statement, ctx);
        for table in self.catalog.take_replaced() {
            self.store.drop_table(&table);
            self.rest.drop_table(&table);
        }
        result
    }
}

/// The emulator's shared core.
pub(crate) struct Core {
    pub(crate) account: String,
    /// `127.0.0.1:<port>`: the host the REST API's hostname discovery answers and scoped tokens
    /// are scoped to.
    pub(crate) host: String,
    /// Scoped tokens of the REST API: issued by `/oauth/token`, checked by the ingest host.
    pub(crate) scoped_tokens: ScopedTokens,
    pub(crate) users: HashMap<String, UserEntry>,
    pub(crate) body_limit: usize,
    /// Reused buffers for decompressed bodies.
    pub(crate) buffers: Arc<BufferPool>,
    /// Private keys presented to open channels, already parsed.
    pub(crate) parsed_keys: ParsedKeys,
    pub(crate) call_log_capacity: usize,
    state: Mutex<State>,
    /// Woken on every change waiters may care about (commits, deletes, restarts, invalidations).
    pub(crate) changed: Notify,
    /// Wakes the flusher to recompute when the next commit falls due.
    pub(crate) flusher: Notify,
    pub(crate) shutdown: watch::Sender<bool>,
    /// Work that outlives the connection that started it (inserts in transit).
    detached: Mutex<JoinSet<()>>,
}

/// Why an emulator could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A user's public key does not parse.
    #[error("user {user}: public key: {source}")]
    PublicKey {
        /// The user.
        user: String,
        /// The cause.
        source: KeyError,
    },
    /// A user without any public key or any role.
    #[error("user {0} needs at least one public key and one role")]
    IncompleteUser(String),
}

impl Core {
    /// The core of an emulator listening on `addr`.
    pub(crate) fn new(config: &EmulatorConfig, addr: SocketAddr) -> Result<Self, SetupError> {
        let mut users = HashMap::new();
        let mut catalog = Catalog::new(config.max_rows_per_table);
        let mut all_users = config.users.clone();
        let mut databases = config.databases.clone();
        if config.include_demo {
            all_users.insert(
                0,
                crate::config::User::new(crate::demo::USER)
                    .public_key(crate::demo::PUBLIC_KEY_PEM)
                    .role(crate::demo::ROLE),
            );
            databases.insert(0, crate::config::Database::new(crate::demo::DATABASE));
        }
        for u in all_users {
            let name = ident::resolve(&u.name);
            if u.public_keys.is_empty() || u.roles.is_empty() {
                return Err(SetupError::IncompleteUser(name));
            }
            let keys = u
                .public_keys
                .iter()
                .map(|k| auth::public_key_der(k))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| SetupError::PublicKey {
                    user: name.clone(),
                    source,
                })?;
            let roles = u.roles.iter().map(|r| ident::resolve(r)).collect();
            users.insert(
                name,
                UserEntry {
                    keys,
                    roles,
                    pats: u.programmatic_access_tokens.clone(),
                },
            );
        }
        for d in databases {
            let roles = d.roles.iter().map(|r| ident::resolve(r)).collect();
            let schemas: Vec<String> = d.schemas.iter().map(|s| ident::resolve(s)).collect();
            catalog.add_database(&ident::resolve(&d.name), roles, &schemas);
        }
        let (shutdown, _) = watch::channel(false);
        // A wildcard address is reached through loopback, which is what clients are told.
        let ip = if addr.ip().is_unspecified() {
            std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST)
        } else {
            addr.ip()
        };
        let lifetime = i64::try_from(config.scoped_token_lifetime.as_secs()).unwrap_or(i64::MAX);
        Ok(Self {
            account: config.account_name(),
            host: SocketAddr::new(ip, addr.port()).to_string(),
            scoped_tokens: ScopedTokens::new(lifetime),
            users,
            body_limit: config.body_limit,
            buffers: Arc::default(),
            parsed_keys: ParsedKeys::default(),
            call_log_capacity: config.call_log_capacity,
            state: Mutex::new(State {
                catalog,
                store: Store::new(id_prefix(), config.max_buffered_bytes_per_channel),
                rest: RestChannels::default(),
                rest_answers: RestAnswers {
                    hostname_json: config.hostname_as_json,
                    token_json: config.token_as_json,
                },
                faults: Faults::default(),
                commit_lag: config.commit_lag,
                sync_delete_waiters: 0,
                in_transit: 0,
            }),
            changed: Notify::new(),
            flusher: Notify::new(),
            shutdown,
            detached: Mutex::new(JoinSet::new()),
        })
    }

    /// Locks the state. A panic elsewhere while locked leaves the data usable, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells waiters and the flusher that something changed.
    pub(crate) fn notify(&self) {
        self.changed.notify_waiters();
        self.flusher.notify_one();
    }

    /// Waits until `cond` holds; answers false if the emulator shuts down first.
    pub(crate) async fn wait_until(&self, mut cond: impl FnMut(&State) -> bool) -> bool {
        let mut shutdown = self.shutdown.subscribe();
        loop {
            let mut notified = pin!(self.changed.notified());
            notified.as_mut().enable();
            let holds = cond(&self.lock());
            if holds {
                return true;
            }
            if *shutdown.borrow_and_update() {
                return false;
            }
            tokio::select! {
                () = notified => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Runs `task` apart from any connection: it goes on when the client hangs up.
    pub(crate) fn spawn_detached(
        &self,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let mut tasks = self.detached.lock().unwrap_or_else(PoisonError::into_inner);
        // Reap finished tasks so a long run does not accumulate them.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Takes the detached tasks, for shutdown to wait for them.
    pub(crate) fn take_detached(&self) -> JoinSet<()> {
        std::mem::take(&mut *self.detached.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn record(&self, record: CallRecord) {
        self.lock().faults.record(record, self.call_log_capacity);
        self.changed.notify_waiters();
    }
}

/// A random prefix for channel ids, so ids of different emulators never collide.
fn id_prefix() -> String {
    let mut bytes = [0u8; 6];
    // Failure of the system RNG only costs uniqueness across emulators, never correctness within one.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The control handle: faults and inspection, the same as the admin API. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    pub(crate) core: Arc<Core>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("account", &self.core.account)
            .finish_non_exhaustive()
    }
}

fn table_ref(database: &str, schema: &str, table: &str) -> TableRef {
    TableRef {
        database: ident::resolve(database),
        schema: ident::resolve(schema),
        table: ident::resolve(table),
    }
}

impl Control {
    /// Restarts the service: every channel id is forgotten (insert and status answer 404, bulk status
    /// lists them under `notFound`) and rows inserted but not committed are lost. Tables, committed rows
    /// and committed offsets per channel name stay, as they live in Snowflake. This is the sidecar's
    /// restart: REST channels live in Snowflake and are untouched.
    pub fn restart(&self) {
        self.core.lock().store.restart();
        self.core.notify();
    }

    /// Invalidates a channel, as a server-side break does: it reports `valid:false`, takes no inserts and
    /// loses its uncommitted rows. Answers whether the id was known.
    pub fn invalidate_channel(&self, channel_id: &str) -> bool {
        let known = self.core.lock().store.invalidate(channel_id);
        self.core.notify();
        known
    }

    /// Makes bulk status report invalid channels as valid (the real service's quirk); single-channel
    /// status keeps telling the truth.
    pub fn set_bulk_status_lie(&self, enabled: bool) {
        self.core.lock().faults.bulk_status_lie = enabled;
    }

    /// Stalls commits of one channel, or of all with `None` (REST channels too): committed offsets stop
    /// moving while inserts go on. Answers whether the channel was known.
    pub fn stall_commits(&self, channel_id: Option<&str>) -> bool {
        let known = {
            let mut state = self.core.lock();
            if channel_id.is_none() {
                state.rest.set_stalled(None, true);
            }
            state.store.set_stalled(channel_id, true)
        };
        self.core.notify();
        known
    }

    /// Lifts a stall of one channel, or every stall with `None`. Rows that fell due meanwhile commit at
    /// the flusher's next turn (at once with [`flush`](Self::flush)).
    pub fn resume_commits(&self, channel_id: Option<&str>) -> bool {
        let known = {
            let mut state = self.core.lock();
            if channel_id.is_none() {
                state.rest.set_stalled(None, false);
            }
            state.store.set_stalled(channel_id, false)
        };
        self.core.notify();
        known
    }

    /// Fails the next `count` calls of `endpoint` with `failure`, before they take effect.
    pub fn fail_next(&self, endpoint: Endpoint, count: u32, failure: Failure) {
        self.core.lock().faults.fail_next(endpoint, count, failure);
    }

    /// Drops the connection of the next `count` calls of `endpoint` after reading their request, with the
    /// request applied or not: the client cannot tell which.
    pub fn drop_next(&self, endpoint: Endpoint, count: u32, mode: DropMode) {
        self.core.lock().faults.drop_next(endpoint, count, mode);
    }

    /// Delays every answer of `endpoint` by `latency` (zero removes it).
    pub fn set_latency(&self, endpoint: Endpoint, latency: Duration) {
        self.core.lock().faults.set_latency(endpoint, latency);
    }

    /// Holds the next `count` inserts in transit: each is accepted for processing only `delay` after its
    /// body arrived (a client with a shorter timeout gives up first, and may reopen meanwhile), then
    /// applied to the channel id it named if that id still takes inserts (a reopened or superseded id
    /// refuses it as invalid) and answered, if anyone still listens. The call log records it when
    /// processed, with fault `in_transit`. Zero `count` or `delay` removes the fault.
    pub fn delay_next_insert(&self, count: u32, delay: Duration) {
        self.core.lock().faults.delay_next_insert(count, delay);
    }

    /// While on (default off), reopening a channel does not drop the old id's buffered rows: the old id
    /// takes no more inserts (answered as an invalid channel) but its rows still commit after the lag,
    /// in insert order with the new id's, each moving the name's committed token; only then does it turn
    /// invalid. Its status reports `valid:true` and its own tokens meanwhile. The new id starts from the
    /// name's committed token as it stands at the open, and reports the name's token from then on.
    pub fn set_superseded_flush(&self, enabled: bool) {
        self.core.lock().store.set_superseded_flush(enabled);
    }

    /// Sets the committed token of `channel_id`'s channel name, as
    /// `SYSTEM$SNOWPIPE_STREAMING_UPDATE_CHANNEL_OFFSET_TOKEN` does: the name's persisted token (a
    /// reopen starts from it) and its current id's. Answers whether the id was known.
    pub fn set_committed_offset(&self, channel_id: &str, offset: &str) -> bool {
        let known = self.core.lock().store.set_committed(channel_id, offset);
        self.core.notify();
        known
    }

    /// Drops `channel_id`'s channel name, as a `DROP` by hand or an expiry does: every id of the name
    /// answers 404 (bulk status: `notFound`), its buffered rows are lost and its committed token is
    /// gone, so a new open starts from none. Answers whether the id was known.
    pub fn drop_channel_name(&self, channel_id: &str) -> bool {
        let known = self.core.lock().store.drop_name(channel_id);
        self.core.notify();
        known
    }

    /// Removes every scripted failure, drop, latency and in-transit delay not yet used, the bulk-status
    /// lie and superseded flushing. Stalls, and inserts already in transit, stay.
    pub fn clear_faults(&self) {
        let mut state = self.core.lock();
        state.faults.clear();
        state.store.set_superseded_flush(false);
    }

    /// Commits every buffered row of every channel not stalled now, whatever the lag (REST appends
    /// too). Answers how many inserts and appends committed. The deterministic way for tests to move
    /// time forward.
    pub fn flush(&self) -> usize {
        let count = {
            let mut state = self.core.lock();
            let committed = state.store.flush_all();
            let rest = state.rest.take_all();
            let n = committed.len() + rest.len();
            state.apply(committed);
            state.land(rest);
            n
        };
        self.core.notify();
        count
    }

    /// Sets the commit lag for inserts from now on (zero commits during the insert call).
    pub fn set_commit_lag(&self, lag: Duration) {
        self.core.lock().commit_lag = lag;
        self.core.notify();
    }

    /// The current commit lag.
    #[must_use]
    pub fn commit_lag(&self) -> Duration {
        self.core.lock().commit_lag
    }

    /// Runs one DDL statement with every privilege, as an administrator would (no JWT). `database` and
    /// `schema` are the session's defaults for unqualified names. A `DESCRIBE TABLE` answers only the
    /// SQL API's status line, `Statement executed successfully.`: its rows come over the SQL API, and
    /// [`Self::table`] gives the same columns here.
    ///
    /// # Errors
    /// [`SqlError`] as the SQL API would answer it.
    pub fn execute_sql(
        &self,
        statement: &str,
        database: Option<&str>,
        schema: Option<&str>,
    ) -> Result<String, SqlError> {
        let ctx = SqlContext {
            database: database.map(ident::resolve),
            schema: schema.map(ident::resolve),
            role: None,
        };
        self.core
            .lock()
            .run_sql(statement, &ctx)
            .map(StatementResult::into_message)
    }

    /// Every table with its columns and committed row count.
    #[must_use]
    pub fn tables(&self) -> Vec<TableInfo> {
        self.core.lock().catalog.tables()
    }

    /// Every `(database, schema)` pair.
    #[must_use]
    pub fn schemas(&self) -> Vec<(String, String)> {
        self.core.lock().catalog.schemas()
    }

    /// One table (names resolve as identifiers: unquoted is case-insensitive, `"quoted"` exact).
    #[must_use]
    pub fn table(&self, database: &str, schema: &str, table: &str) -> Option<TableInfo> {
        self.core
            .lock()
            .catalog
            .table_info(&table_ref(database, schema, table))
    }

    /// The committed rows retained for a table, oldest first, as JSON objects keyed by column name.
    #[must_use]
    pub fn rows(&self, database: &str, schema: &str, table: &str) -> Option<Vec<Value>> {
        self.core
            .lock()
            .catalog
            .rows(&table_ref(database, schema, table))
    }

    /// Every channel the service knows, with offsets and buffered rows.
    #[must_use]
    pub fn channels(&self) -> Vec<ChannelInfo> {
        self.core.lock().store.infos()
    }

    /// One channel.
    #[must_use]
    pub fn channel(&self, channel_id: &str) -> Option<ChannelInfo> {
        self.core.lock().store.channel_info(channel_id)
    }

    /// The calls received, oldest first (bounded; the admin API is not logged).
    #[must_use]
    pub fn calls(&self) -> Vec<CallRecord> {
        self.core.lock().faults.calls()
    }

    /// Empties the call log.
    pub fn clear_calls(&self) {
        self.core.lock().faults.clear_calls();
    }

    /// Waits until `offset` is the channel's committed token or, while waiting, a request ending in it
    /// commits on the channel (later commits may have moved the token on since: tokens are not
    /// compared). Answers false when the channel is or becomes unknown, invalid or deleted and flushed
    /// (it will never commit it), or the emulator shuts down. Waits on state, not time.
    pub async fn wait_for_commit(&self, channel_id: &str, offset: &str) -> bool {
        /// Ends the wait in the store however the future ends (dropped included).
        struct Unwatch<'a>(&'a Core, &'a str, &'a str);
        impl Drop for Unwatch<'_> {
            fn drop(&mut self) {
                self.0.lock().store.unwatch(self.1, self.2);
            }
        }
        self.core.lock().store.watch(channel_id, offset);
        let _unwatch = Unwatch(&self.core, channel_id, offset);
        let mut reached = false;
        self.core
            .wait_until(|s| {
                if s.store.watch_reached(channel_id, offset) {
                    reached = true;
                    return true;
                }
                match s.store.status(channel_id) {
                    Some(st) if st.deleted => !s.store.has_pending(channel_id),
                    Some(st) => !st.valid,
                    None => true,
                }
            })
            .await;
        reached
    }

    /// Waits until at least `count` `sync=true` deletes are waiting for their rows to flush (a hook for
    /// deterministic tests of sync delete). Answers false on shutdown.
    pub async fn wait_for_sync_deletes(&self, count: usize) -> bool {
        self.core
            .wait_until(|s| s.sync_delete_waiters >= count)
            .await
    }

    /// Waits until at least `count` inserts are held in transit (see [`Self::delay_next_insert`]), so a
    /// test knows the emulator has one before it reopens. Answers false on shutdown.
    pub async fn wait_for_in_transit(&self, count: usize) -> bool {
        self.core.wait_until(|s| s.in_transit >= count).await
    }

    /// Waits until the call log holds at least `count` calls. Answers false on shutdown.
    pub async fn wait_for_calls(&self, count: usize) -> bool {
        self.core
            .wait_until(|s| s.faults.call_count() >= count)
            .await
    }

    /// The emulated account's name.
    #[must_use]
    pub fn account(&self) -> &str {
        &self.core.account
    }

    /// `127.0.0.1:<port>`: the REST API's ingest host, as hostname discovery answers it (with
    /// `http://`) and as a token exchange's scope must name it.
    #[must_use]
    pub fn rest_host(&self) -> &str {
        &self.core.host
    }

    /// Applies `f` to a REST channel's state; false when the channel does not exist.
    fn on_rest(
        &self,
        name: &RestChannelName,
        f: impl FnOnce(&mut RestChannels, &RestKey) -> bool,
    ) -> bool {
        let Some(key) = name.key() else {
            return false;
        };
        let known = f(&mut self.core.lock().rest, &key);
        self.core.notify();
        known
    }

    /// Every REST channel, with sequencers, committed token, counters, pending requests and the
    /// requests received.
    #[must_use]
    pub fn rest_channels(&self) -> Vec<RestChannelInfo> {
        self.core.lock().rest.infos()
    }

    /// One REST channel.
    #[must_use]
    pub fn rest_channel(&self, name: &RestChannelName) -> Option<RestChannelInfo> {
        self.core.lock().rest.info(&name.key()?)
    }

    /// Every REST request received on a channel name, oldest first (bounded): its tokens, body size
    /// and encoding, and the answer. Kept after the channel is dropped.
    #[must_use]
    pub fn rest_requests(&self, name: &RestChannelName) -> Vec<RestRequest> {
        name.key()
            .map(|k| self.core.lock().rest.requests(&k))
            .unwrap_or_default()
    }

    /// Invalidates a REST channel: its status code turns `ERR_CHANNEL_MUST_BE_REOPENED`, its
    /// uncommitted rows are discarded, and its appends are answered `400
    /// STALE_CONTINUATION_TOKEN_SEQUENCER` until it is reopened. Answers whether it exists.
    pub fn invalidate_rest_channel(&self, name: &RestChannelName) -> bool {
        self.on_rest(name, |r, k| r.invalidate(k))
    }

    /// Stalls a REST channel's commits: its appends are taken, nothing commits until
    /// [`Self::resume_rest_commits`] (or [`Self::resume_commits`] with `None`).
    pub fn stall_rest_commits(&self, name: &RestChannelName) -> bool {
        self.on_rest(name, |r, k| r.set_stalled(Some(k), true))
    }

    /// Lifts a stall of a REST channel; due requests commit at the flusher's next turn (at once with
    /// [`Self::flush`]).
    pub fn resume_rest_commits(&self, name: &RestChannelName) -> bool {
        self.on_rest(name, |r, k| r.set_stalled(Some(k), false))
    }

    /// The next request to commit on the channel rejects the rows at these indexes (0-based within
    /// the request), whatever they hold: they count in `rows_error_count` and set the last error.
    pub fn reject_rows_at_commit(&self, name: &RestChannelName, rows: &[usize]) -> bool {
        self.on_rest(name, |r, k| r.reject_rows(k, rows.to_vec()))
    }

    /// Answers `429` to the next `count` appends of the channel (nothing taken, tokens not used up).
    pub fn throttle_appends(&self, name: &RestChannelName, count: u32) -> bool {
        self.on_rest(name, |r, k| r.throttle(k, count))
    }

    /// Holds the next `count` appends of the channel in transit: each is taken (its token used up)
    /// but its answer is lost (the connection is closed), and its rows are neither committed nor seen
    /// as uncommitted until the channel's next open, after which they commit after the lag (moving
    /// the committed token past that open's). The trap "an append in transit that commits after a
    /// reopen".
    pub fn hold_next_appends(&self, name: &RestChannelName, count: u32) -> bool {
        self.on_rest(name, |r, k| r.hold_in_transit(k, count))
    }

    /// Rewrites a REST channel's committed token by hand, as
    /// `SYSTEM$SNOWPIPE_STREAMING_UPDATE_CHANNEL_OFFSET_TOKEN` does (`None` clears it).
    pub fn set_rest_committed_token(&self, name: &RestChannelName, token: Option<&str>) -> bool {
        self.on_rest(name, |r, k| r.set_committed(k, token.map(str::to_owned)))
    }

    /// Drops a REST channel by hand (or as an expiry does): waiting rows are lost, the committed token
    /// and counters are gone, appends answer 404 and bulk status leaves it out until it is opened
    /// again (with a later `created_on_ms`).
    pub fn drop_rest_channel(&self, name: &RestChannelName) -> bool {
        self.on_rest(name, |r, k| r.drop_by_hand(k))
    }

    /// Status answers show each channel's counters as they were before its last commit, while the
    /// committed token is already the new one (the trap "counters lagging the committed token" of the
    /// design note, which is about status answers: an open's answer stays current).
    pub fn set_counters_lag(&self, enabled: bool) {
        self.core.lock().rest.set_counters_lag(enabled);
    }

    /// Expires every scoped token issued so far: the ingest host answers them 401.
    pub fn expire_scoped_tokens(&self) {
        self.core.scoped_tokens.expire_all();
    }

    /// Hostname discovery answers `{"hostname": ...}` (true) or bare text (false, the default).
    pub fn set_hostname_as_json(&self, json: bool) {
        self.core.lock().rest_answers.hostname_json = json;
    }

    /// The token exchange answers `{"token": ...}` (true) or bare text (false, the default).
    pub fn set_token_as_json(&self, json: bool) {
        self.core.lock().rest_answers.token_json = json;
    }

    /// Signs a scoped token for `user` (its default role unless `role` is given) scoped to `scope`,
    /// without a key-pair JWT and without checking the scope: for tests of tokens the exchange would
    /// not issue (another host's scope). `None` for an unknown user.
    #[must_use]
    pub fn scoped_token(&self, user: &str, role: Option<&str>, scope: &str) -> Option<String> {
        let user = ident::resolve(user);
        let entry = self.core.users.get(&user)?;
        let role = match role {
            Some(r) => ident::resolve(r),
            None => entry.roles.first().cloned().unwrap_or_default(),
        };
        let grant = crate::auth::Grant {
            account: self.core.account.clone(),
            user,
            role,
            scope: scope.to_owned(),
        };
        Some(self.core.scoped_tokens.issue(&grant, unix_seconds()))
    }

    /// The lifetime of the scoped tokens the exchange issues.
    #[must_use]
    pub fn scoped_token_lifetime(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.core.scoped_tokens.lifetime_secs()).unwrap_or(0))
    }

    /// Waits until `token` is the REST channel's committed token. Answers false if the emulator
    /// shuts down first. Waits on state, not time.
    pub async fn wait_for_rest_token(&self, name: &RestChannelName, token: &str) -> bool {
        let Some(key) = name.key() else {
            return false;
        };
        self.core
            .wait_until(|s| {
                s.rest
                    .status(&key)
                    .is_some_and(|st| st.committed.as_deref() == Some(token))
            })
            .await
    }
}
