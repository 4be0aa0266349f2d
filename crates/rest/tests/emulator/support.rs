//! What the tests share: an emulator on a free port, a client pointed at it over HTTP, a [`Sleep`] that
//! records every wait and returns at once (so retries and waits cost no time), and names.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use snowpipe_api::{
    Backend, ChannelHandle, ChannelRef, OpenOptions, RetryConfig, Row, TableRef, retry::Sleep,
};
use snowpipe_emulator::{
    CallRecord, Control, Emulator, Endpoint, RestChannelName, RestRequest, demo,
};
use snowpipe_rest::{Credentials, RestClient, RestConfig};

/// Retries after the first attempt, in every test client.
pub(crate) const RETRIES: usize = 3;

/// A hook run when the sleep is asked for its `n`-th wait (from 1).
type Hook = (usize, Box<dyn FnOnce() + Send>);

/// Records each wait and returns at once; can run a hook at a chosen wait (to change the emulator while
/// the client waits, deterministically).
#[derive(Default)]
pub(crate) struct Waits {
    waits: Mutex<Vec<Duration>>,
    hooks: Mutex<Vec<Hook>>,
}

impl std::fmt::Debug for Waits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waits")
            .field("waits", &self.waits())
            .finish_non_exhaustive()
    }
}

impl Waits {
    /// Every wait asked for so far.
    pub(crate) fn waits(&self) -> Vec<Duration> {
        self.waits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the waits recorded so far.
    pub(crate) fn clear(&self) {
        self.waits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Runs `hook` when the `n`-th wait from now is asked for.
    pub(crate) fn at_wait(&self, n: usize, hook: impl FnOnce() + Send + 'static) {
        let base = self.waits().len();
        self.hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((base + n, Box::new(hook)));
    }
}

impl Sleep for Waits {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let count = {
            let mut waits = self.waits.lock().unwrap_or_else(PoisonError::into_inner);
            waits.push(duration);
            waits.len()
        };
        let due: Vec<Hook> = {
            let mut hooks = self.hooks.lock().unwrap_or_else(PoisonError::into_inner);
            let (due, later) = hooks.drain(..).partition(|(at, _)| *at == count);
            *hooks = later;
            due
        };
        for (_, hook) in due {
            hook();
        }
        Box::pin(std::future::ready(()))
    }
}

/// An emulator and a client of it.
pub(crate) struct Setup {
    pub(crate) emulator: Emulator,
    pub(crate) client: RestClient,
    pub(crate) waits: Arc<Waits>,
}

impl Setup {
    /// The emulator's control handle.
    pub(crate) fn control(&self) -> &Control {
        self.emulator.control()
    }
}

/// An emulator committing at once (the demo account, user and database).
pub(crate) async fn emulator() -> Emulator {
    Emulator::builder()
        .commit_lag(Duration::ZERO)
        .start()
        .await
        .expect("the emulator starts")
}

/// The settings every test client starts from: the demo user's encrypted key, its role, the emulator as the
/// account host (the ingest host is discovered), three retries without jitter, and `waits` as its sleep.
pub(crate) fn config(emulator: &Emulator, waits: &Arc<Waits>) -> RestConfig {
    let mut config = RestConfig::new(
        demo::ACCOUNT,
        demo::USER,
        Credentials::key_pair(
            demo::ENCRYPTED_PRIVATE_KEY_PEM,
            demo::PRIVATE_KEY_PASSPHRASE,
        ),
    );
    config.role = Some(demo::ROLE.into());
    config.account_url = Some(emulator.base_url());
    config.retry = RetryConfig {
        max_retries: RETRIES,
        jitter: false,
        ..RetryConfig::default()
    };
    config.uncommitted_wait = Duration::from_secs(5);
    config.sleep = Arc::clone(waits) as Arc<dyn Sleep>;
    config
}

/// An emulator committing at once, a client with the default test settings, and the table `TRACKS`.
pub(crate) async fn setup() -> Setup {
    setup_with(|_| {}).await
}

/// Like [`setup`], with the client's settings changed by `change`.
pub(crate) async fn setup_with(change: impl FnOnce(&mut RestConfig)) -> Setup {
    let emulator = emulator().await;
    let waits = Arc::new(Waits::default());
    let mut config = config(&emulator, &waits);
    change(&mut config);
    let client = RestClient::new(config).expect("the client builds");
    create_table(emulator.control(), "TRACKS");
    Setup {
        emulator,
        client,
        waits,
    }
}

/// `CREATE TABLE IF NOT EXISTS DEMO_DB.PUBLIC.<table> (ID VARCHAR, N NUMBER)`; `table` as SQL writes it
/// (quote it for an exact name).
pub(crate) fn create_table(control: &Control, table: &str) {
    control
        .execute_sql(
            &format!("CREATE TABLE IF NOT EXISTS {table} (ID VARCHAR, N NUMBER)"),
            Some(demo::DATABASE),
            Some("PUBLIC"),
        )
        .expect("the table is created");
}

/// The table `DEMO_DB.<schema>.<table>`, names exact.
pub(crate) fn table_in(schema: &str, table: &str) -> TableRef {
    TableRef {
        database: demo::DATABASE.into(),
        schema: schema.into(),
        table: table.into(),
        enable_iceberg: false,
    }
}

/// The channel of destination `dest`, instance `instance`, on `DEMO_DB.PUBLIC.<table>`.
pub(crate) fn channel_of(table: &str, instance: &str) -> ChannelRef {
    ChannelRef {
        table: table_in("PUBLIC", table),
        destination: "dest".into(),
        instance: instance.into(),
    }
}

/// The channel of instance `0` on `DEMO_DB.PUBLIC.<table>`.
pub(crate) fn channel(table: &str) -> ChannelRef {
    channel_of(table, "0")
}

/// A name in double quotes: resolves to exactly `name`.
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The emulator's name of the channel.
pub(crate) fn rest_name(channel: &ChannelRef) -> RestChannelName {
    RestChannelName::on_table(
        &quoted(&channel.table.database),
        &quoted(&channel.table.schema),
        &quoted(&channel.table.table),
        &quoted(&channel.name()),
    )
}

/// Rows `{"ID":"<prefix><i>","N":<i>}` for `i` in `0..n`.
pub(crate) fn rows(prefix: &str, n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| Row::parse(format!(r#"{{"ID":"{prefix}{i}","N":{i}}}"#)).expect("JSON"))
        .collect()
}

/// The IDs of a table's committed rows, sorted.
pub(crate) fn landed_ids(control: &Control, table: &TableRef) -> Vec<String> {
    let mut ids: Vec<String> = control
        .rows(
            &quoted(&table.database),
            &quoted(&table.schema),
            &quoted(&table.table),
        )
        .unwrap_or_default()
        .iter()
        .filter_map(|row| row.get("ID")?.as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// The requests of one kind (`open`, `append`, `drop`) the emulator received on a channel.
pub(crate) fn requests(control: &Control, channel: &ChannelRef, call: &str) -> Vec<RestRequest> {
    control
        .rest_requests(&rest_name(channel))
        .into_iter()
        .filter(|r| r.call == call)
        .collect()
}

/// The calls of one endpoint the emulator logged.
pub(crate) fn calls(control: &Control, endpoint: Endpoint) -> Vec<CallRecord> {
    control
        .calls()
        .into_iter()
        .filter(|c| c.endpoint == endpoint)
        .collect()
}

/// Opens the channel, discarding what an earlier writer left.
pub(crate) async fn open(client: &RestClient, channel: &ChannelRef) -> ChannelHandle {
    client
        .open_channel(channel, &OpenOptions::discard())
        .await
        .unwrap_or_else(|e| panic!("opening {channel}: {e}"))
        .handle
}
