//! The emulator's shared state and [`Control`], the handle tests use to script faults and inspect what
//! happened. The admin API calls the same methods.
//!
//! One mutex guards the catalog, the channels and the faults; it is never held across an await (crypto,
//! JSON and row validation run outside it). Waiters (sync delete, tests) sleep on a [`Notify`] that every
//! change wakes, never on time. Inserts held in transit run as detached tasks the core keeps, so they
//! still land after their client gave up, and shutdown joins them.

use std::{
    collections::HashMap,
    pin::pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::{
    sync::{Notify, watch},
    task::JoinSet,
};

use crate::{
    auth::{self, KeyError, ParsedKeys},
    config::EmulatorConfig,
    faults::{CallRecord, DropMode, Endpoint, Failure, Faults},
    http::BufferPool,
    store::{
        Catalog, ChannelInfo, Committed, SqlContext, SqlError, Store, TableInfo, TableRef, ident,
    },
};

/// A configured user, keys parsed.
pub(crate) struct UserEntry {
    pub(crate) keys: Vec<Vec<u8>>,
    pub(crate) roles: Vec<String>,
}

/// Everything behind the mutex.
pub(crate) struct State {
    pub(crate) catalog: Catalog,
    pub(crate) store: Store,
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

    /// Commits whatever the lag makes due at `now`.
    pub(crate) fn commit_due(&mut self, now: Instant) -> bool {
        let due = self.store.commit_due(now, self.commit_lag);
        self.apply(due)
    }
}

/// The emulator's shared core.
pub(crate) struct Core {
    pub(crate) account: String,
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
    pub(crate) fn new(config: &EmulatorConfig) -> Result<Self, SetupError> {
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
            users.insert(name, UserEntry { keys, roles });
        }
        for d in databases {
            let roles = d.roles.iter().map(|r| ident::resolve(r)).collect();
            let schemas: Vec<String> = d.schemas.iter().map(|s| ident::resolve(s)).collect();
            catalog.add_database(&ident::resolve(&d.name), roles, &schemas);
        }
        let (shutdown, _) = watch::channel(false);
        Ok(Self {
            account: config.account_name(),
            users,
            body_limit: config.body_limit,
            buffers: Arc::default(),
            parsed_keys: ParsedKeys::default(),
            call_log_capacity: config.call_log_capacity,
            state: Mutex::new(State {
                catalog,
                store: Store::new(id_prefix(), config.max_buffered_bytes_per_channel),
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
    /// and committed offsets per channel name stay, as they live in Snowflake.
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

    /// Stalls commits of one channel, or of all with `None`: committed offsets stop moving while inserts
    /// go on. Answers whether the channel was known.
    pub fn stall_commits(&self, channel_id: Option<&str>) -> bool {
        let known = self.core.lock().store.set_stalled(channel_id, true);
        self.core.notify();
        known
    }

    /// Lifts a stall of one channel, or every stall with `None`. Rows that fell due meanwhile commit at
    /// the flusher's next turn (at once with [`flush`](Self::flush)).
    pub fn resume_commits(&self, channel_id: Option<&str>) -> bool {
        let known = self.core.lock().store.set_stalled(channel_id, false);
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

    /// Commits every buffered row of every channel not stalled now, whatever the lag. Answers how many
    /// inserts committed. The deterministic way for tests to move time forward.
    pub fn flush(&self) -> usize {
        let count = {
            let mut state = self.core.lock();
            let committed = state.store.flush_all();
            let n = committed.len();
            state.apply(committed);
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
        self.core.lock().catalog.execute(statement, &ctx)
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
}
