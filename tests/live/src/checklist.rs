//! The checklist itself: each item a method that answers what it saw or why it failed. Every item writes
//! through its own channel of the one table, so an item's failure does not spill into the next.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use snowpipe_api::{
    Backend, BackendExt, ChannelHandle, ChannelRef, ChannelStatus, DropOptions, OpenOptions,
    OpenedChannel, Progress, Row, RowCounters, TableRef,
    retry::{Sleep, TokioSleep},
};
use snowpipe_channels::{SqlApiConfig, SqlApiWarehouse, Warehouse};
use snowpipe_grouping::{Schema, WarehouseType};
use snowpipe_rest::{Credentials, RestClient, RestConfig};

use crate::{
    Check, Options, Report, Target,
    sql::{Rows, Sql},
};

/// Creates a schema and a table in it.
pub const SCHEMA_AND_TABLE: &str = "creates a schema and a table";
/// Opens a channel, appends, waits for the commit.
pub const APPEND_AND_COMMIT: &str = "opens a channel, appends, and the rows commit";
/// A column added is seen after the channel is reopened.
pub const NEW_COLUMN: &str = "a column added is seen by the pipe after the reopen";
/// The rows read back through the SQL API.
pub const READ_BACK: &str = "the rows read back through the SQL API, each once";
/// `offset_token` at an open.
pub const OFFSET_TOKEN: &str =
    "offset_token round-trips byte-exact and leaves counters and created_on_ms alone";
/// Rows discarded by an open.
pub const DISCARDED: &str = "rows discarded by an open never commit later";
/// An open that waits.
pub const WAITING_OPEN: &str =
    "fail_on_uncommitted_rows: true waits with 409, then answers the last end token";
/// Counters against the committed token.
pub const COUNTERS: &str = "counters agree with the committed token in every answer";
/// A rejected row's bound.
pub const REJECTED_BOUND: &str = "a rejected row's bound is its request's end token";
/// A refused append.
pub const REFUSED_KEEPS_TOKEN: &str = "a refused append keeps its continuation token";
/// A dropped channel.
pub const DROPPED_COMES_BACK: &str = "a dropped channel comes back with a new created_on_ms";
/// The schema dropped at the end.
pub const SCHEMA_DROPPED: &str = "drops the schema";

/// The table's name in the check's schema.
const TABLE: &str = "LIVE_ROWS";

/// An item's outcome.
type Outcome = Result<String, String>;

/// Runs the whole checklist against `target`.
pub async fn run(target: &Target, options: &Options) -> Report {
    run_with(target, options, |_| {}).await
}

/// Runs the whole checklist against `target`, handing each item to `progress` as it completes (the
/// binary prints it: on an account the check takes minutes).
pub async fn run_with(
    target: &Target,
    options: &Options,
    mut progress: impl FnMut(&Check),
) -> Report {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let schema = format!("SNOWPIPE_LIVE_{millis}_{}", std::process::id());
    let mut report = Report {
        schema: schema.clone(),
        ..Report::default()
    };
    let mut record = |report: &mut Report, name: &'static str, outcome: Outcome| {
        let check = Check { name, outcome };
        progress(&check);
        report.checks.push(check);
    };
    let (mut live, created) = match Live::new(target, options, schema) {
        Ok(live) => {
            let created = live.create().await;
            (Some(live), created)
        }
        Err(why) => (None, Err(why)),
    };
    let ready = created.is_ok();
    record(&mut report, SCHEMA_AND_TABLE, created);
    // Each item in turn; none runs without the table.
    macro_rules! item {
        ($name:expr, $check:ident) => {
            let outcome = match &mut live {
                Some(live) if ready => live.$check().await,
                _ => Err("not run: the table could not be created".to_owned()),
            };
            record(&mut report, $name, outcome);
        };
    }
    item!(APPEND_AND_COMMIT, append_and_commit);
    item!(NEW_COLUMN, new_column);
    item!(READ_BACK, read_back);
    item!(OFFSET_TOKEN, offset_token);
    item!(DISCARDED, discarded);
    item!(WAITING_OPEN, waiting_open);
    item!(COUNTERS, counters);
    item!(REJECTED_BOUND, rejected_bound);
    item!(REFUSED_KEEPS_TOKEN, refused_keeps_token);
    item!(DROPPED_COMES_BACK, dropped_comes_back);
    let dropped = match &live {
        Some(live) => {
            report.longest_offset_token = live.longest_token;
            live.drop_schema().await
        }
        None => Err("not run: the clients could not be set up".to_owned()),
    };
    record(&mut report, SCHEMA_DROPPED, dropped);
    report
}

/// Records how many waits the client asked for (an open waiting out a 409 asks for one per try), and
/// waits them on the Tokio timer.
#[derive(Debug, Default)]
struct CountingSleep(AtomicUsize);

impl Sleep for CountingSleep {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        TokioSleep.sleep(duration)
    }
}

/// What the items share: the client, the warehouse (DDL, `DESCRIBE`), the SQL API (reads, the drop).
struct Live {
    options: Options,
    client: RestClient,
    waits: Arc<CountingSleep>,
    warehouse: SqlApiWarehouse,
    sql: Sql,
    database: String,
    schema: String,
    longest_token: Option<usize>,
}

fn row(id: &str, n: i64) -> Row {
    Row::parse(format!(r#"{{"ID":"{id}","N":{n}}}"#)).unwrap_or_else(|e| panic!("a row: {e}"))
}

fn counters(status: &ChannelStatus) -> RowCounters {
    match &status.progress {
        Progress::Counters(counters) => counters.clone(),
        _ => RowCounters::default(),
    }
}

/// An offset token of exactly `bytes` bytes of varied text: letters and digits, spaces, quotes,
/// backslashes, URL and JSON metacharacters, two- and three-byte characters.
fn token_of(bytes: usize) -> String {
    const PIECES: [&str; 12] = [
        "t", "0", " ", "\"", "\\", "&", "%20", "=", "/", "é", "✓", "#",
    ];
    let mut token = String::with_capacity(bytes);
    let mut i = 0;
    while token.len() < bytes {
        let piece = PIECES[i % PIECES.len()];
        i += 1;
        // The first and last bytes are letters: what is checked is the text inside.
        let room = bytes - token.len();
        if token.is_empty() || room <= 1 || piece.len() > room - 1 {
            token.push('x');
        } else {
            token.push_str(piece);
        }
    }
    token
}

fn error(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

impl Live {
    fn new(target: &Target, options: &Options, schema: String) -> Result<Self, String> {
        let waits = Arc::new(CountingSleep::default());
        let mut config = RestConfig::new(
            target.account.clone(),
            target.user.clone(),
            Credentials::key_pair(target.private_key.expose(), target.passphrase.expose()),
        );
        config.role.clone_from(&target.role);
        config.account_url = Some(target.account_base());
        config.uncommitted_wait = options.commit_timeout;
        config.sleep = Arc::clone(&waits) as Arc<dyn Sleep>;
        let client = RestClient::new(config).map_err(|e| error("the REST client", e))?;
        let mut sql_config = SqlApiConfig::new(
            &target.account,
            &target.user,
            target.role.as_deref().unwrap_or_default(),
            &target.warehouse,
            &target.database,
            target.private_key.clone(),
        );
        sql_config.private_key_passphrase = target.passphrase.clone();
        sql_config.base_url = Some(target.account_base());
        sql_config.statement_timeout = options.commit_timeout;
        let warehouse =
            SqlApiWarehouse::new(sql_config).map_err(|e| error("the SQL API client", e))?;
        let sql = Sql::new(target, options.commit_timeout.max(Duration::from_secs(30)))
            .map_err(|e| error("the SQL API client", e))?;
        Ok(Self {
            options: options.clone(),
            client,
            waits,
            warehouse,
            sql,
            database: target.database.clone(),
            schema,
            longest_token: None,
        })
    }

    /// The channel of the item `item`, on the check's table.
    fn channel(&self, item: &str) -> ChannelRef {
        ChannelRef {
            table: TableRef {
                database: self.database.clone(),
                schema: self.schema.clone(),
                table: TABLE.to_owned(),
                enable_iceberg: false,
            },
            destination: "snowpipe-live".to_owned(),
            instance: item.to_owned(),
        }
    }

    fn quoted_table(&self) -> String {
        format!("\"{}\".\"{}\".\"{TABLE}\"", self.database, self.schema)
    }

    async fn open(&self, item: &str, options: &OpenOptions) -> Result<OpenedChannel, String> {
        self.client
            .open_channel(&self.channel(item), options)
            .await
            .map_err(|e| error("open", e))
    }

    async fn append(
        &self,
        handle: &ChannelHandle,
        rows: Vec<Row>,
        token: &str,
    ) -> Result<(), String> {
        self.client
            .append_rows(handle, rows, token)
            .await
            .map(|_| ())
            .map_err(|e| error(&format!("append {token}"), e))
    }

    async fn status(&self, handle: &ChannelHandle) -> Result<Option<ChannelStatus>, String> {
        self.client
            .channel_status(handle)
            .await
            .map_err(|e| error("status", e))
    }

    /// Waits until `token` is committed, handing every status answered to `seen` (which may fail the
    /// wait); the last status.
    async fn wait_for(
        &self,
        handle: &ChannelHandle,
        token: &str,
        mut seen: impl FnMut(&ChannelStatus) -> Result<(), String>,
    ) -> Result<ChannelStatus, String> {
        let started = Instant::now();
        loop {
            let status = self
                .status(handle)
                .await?
                .ok_or_else(|| "the channel is gone".to_owned())?;
            seen(&status)?;
            if status.committed.as_deref() == Some(token) {
                return Ok(status);
            }
            if !status.valid {
                return Err(format!("the channel turned invalid: {status:?}"));
            }
            if started.elapsed() > self.options.commit_timeout {
                return Err(format!(
                    "{token} not committed after {:?}; committed: {:?}",
                    self.options.commit_timeout, status.committed
                ));
            }
            tokio::time::sleep(self.options.poll).await;
        }
    }

    async fn commit(&self, handle: &ChannelHandle, token: &str) -> Result<ChannelStatus, String> {
        self.wait_for(handle, token, |_| Ok(())).await
    }

    /// Every row of the table (`SELECT *`).
    async fn rows(&self) -> Result<Rows, String> {
        self.sql
            .query(&format!("SELECT * FROM {}", self.quoted_table()))
            .await
            .map_err(|e| error("SELECT *", e))
    }

    /// The IDs of the table's rows that start with `prefix`, sorted.
    async fn ids(&self, prefix: &str) -> Result<Vec<String>, String> {
        let rows = self.rows().await?;
        let mut ids: Vec<String> = (0..rows.data.len())
            .filter_map(|r| rows.get(r, "ID").map(str::to_owned))
            .filter(|id| id.starts_with(prefix))
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn create(&self) -> Outcome {
        self.warehouse
            .create_schema(&self.schema)
            .await
            .map_err(|e| error("CREATE SCHEMA", e))?;
        let columns: Schema = [("ID", WarehouseType::String), ("N", WarehouseType::Int)]
            .into_iter()
            .collect();
        self.warehouse
            .create_table(&self.schema, TABLE, &columns)
            .await
            .map_err(|e| error("CREATE TABLE", e))?;
        let described = self
            .warehouse
            .describe_table(&self.schema, TABLE)
            .await
            .map_err(|e| error("DESCRIBE TABLE", e))?
            .ok_or("DESCRIBE TABLE: the table is not there")?;
        let names: Vec<&str> = described.iter().map(|c| c.name.as_str()).collect();
        if names != ["ID", "N"] {
            return Err(format!("DESCRIBE TABLE answered columns {names:?}"));
        }
        Ok(format!(
            "{}.{}.{TABLE} with ID and N",
            self.database, self.schema
        ))
    }

    async fn append_and_commit(&mut self) -> Outcome {
        let opened = self.open("main", &OpenOptions::wait()).await?;
        let rows = vec![row("main-0", 0), row("main-1", 1), row("main-2", 2)];
        let started = Instant::now();
        self.append(&opened.handle, rows, "m1").await?;
        let status = self.commit(&opened.handle, "m1").await?;
        let inserted = counters(&status).rows_inserted;
        if inserted != 3 {
            return Err(format!("committed, but rows_inserted is {inserted}, not 3"));
        }
        Ok(format!("3 rows committed in {:?}", started.elapsed()))
    }

    async fn new_column(&mut self) -> Outcome {
        let extra: Schema = [("EXTRA", WarehouseType::String)].into_iter().collect();
        self.warehouse
            .add_columns(&self.schema, TABLE, &extra)
            .await
            .map_err(|e| error("ALTER TABLE ADD COLUMN", e))?;
        let described = self
            .warehouse
            .describe_table(&self.schema, TABLE)
            .await
            .map_err(|e| error("DESCRIBE TABLE", e))?
            .unwrap_or_default();
        if !described.iter().any(|c| c.name == "EXTRA") {
            return Err("DESCRIBE TABLE does not show the new column".to_owned());
        }
        // Reopened, the channel (and its pipe) must see the column.
        let opened = self.open("main", &OpenOptions::wait()).await?;
        let with_extra = Row::parse(r#"{"ID":"main-3","N":3,"EXTRA":"seen after the reopen"}"#)
            .map_err(|e| error("a row", e))?;
        self.append(&opened.handle, vec![with_extra], "m2").await?;
        self.commit(&opened.handle, "m2").await?;
        let rows = self.rows().await?;
        let at = (0..rows.data.len())
            .find(|&r| rows.get(r, "ID") == Some("main-3"))
            .ok_or("the row with the new column did not land")?;
        match rows.get(at, "EXTRA") {
            Some("seen after the reopen") => {
                Ok("EXTRA added, and a row's value for it landed".to_owned())
            }
            other => Err(format!("the row landed with EXTRA = {other:?}")),
        }
    }

    async fn read_back(&mut self) -> Outcome {
        let count = self
            .sql
            .query(&format!("SELECT COUNT(*) FROM {}", self.quoted_table()))
            .await
            .map_err(|e| error("SELECT COUNT(*)", e))?;
        let counted = count
            .data
            .first()
            .and_then(|r| r.first())
            .cloned()
            .flatten();
        if counted.as_deref() != Some("4") {
            return Err(format!("COUNT(*) answered {counted:?}, not 4"));
        }
        let rows = self.rows().await?;
        let mut read: Vec<(String, String)> = (0..rows.data.len())
            .filter_map(|r| Some((rows.get(r, "ID")?.to_owned(), rows.get(r, "N")?.to_owned())))
            .collect();
        read.sort();
        let expected: Vec<(String, String)> = (0..4)
            .map(|i| (format!("main-{i}"), i.to_string()))
            .collect();
        if read != expected {
            return Err(format!("read back {read:?}, expected {expected:?}"));
        }
        Ok("4 rows, each once, with their values".to_owned())
    }

    async fn offset_token(&mut self) -> Outcome {
        let opened = self.open("token", &OpenOptions::discard()).await?;
        self.append(&opened.handle, vec![row("token-0", 0)], "t1")
            .await?;
        let before = counters(&self.commit(&opened.handle, "t1").await?);
        let mut refused = None;
        for &bytes in &self.options.token_lengths {
            let token = token_of(bytes);
            let options = OpenOptions::wait().with_offset_token(token.clone());
            let opened = match self
                .client
                .open_channel(&self.channel("token"), &options)
                .await
            {
                Ok(opened) => opened,
                Err(e) => {
                    refused = Some(format!("{bytes} bytes refused ({})", e.code()));
                    break;
                }
            };
            let answered = opened
                .status
                .ok_or_else(|| format!("the open with a {bytes}-byte token answered no status"))?;
            if answered.committed.as_deref() != Some(token.as_str()) {
                return Err(format!(
                    "the open with a {bytes}-byte token answered another token"
                ));
            }
            let status = self
                .status(&opened.handle)
                .await?
                .ok_or("the channel is gone")?;
            if status.committed.as_deref() != Some(token.as_str()) {
                return Err(format!(
                    "status after a {bytes}-byte token answered another token"
                ));
            }
            for (what, seen) in [
                ("the open", counters(&answered)),
                ("status", counters(&status)),
            ] {
                if seen != before {
                    return Err(format!(
                        "{what} with a {bytes}-byte token changed counters: {before:?} → {seen:?}"
                    ));
                }
            }
            self.longest_token = Some(bytes);
        }
        match self.longest_token {
            None => Err(format!(
                "no token accepted: {}",
                refused.unwrap_or_default()
            )),
            Some(longest) => Ok(format!(
                "byte-exact up to {longest} bytes{}",
                refused.map(|r| format!("; {r}")).unwrap_or_default()
            )),
        }
    }

    async fn discarded(&mut self) -> Outcome {
        for attempt in 1..=self.options.attempts {
            let first = self.open("discard", &OpenOptions::discard()).await?;
            let prefix = format!("discard{attempt}-");
            let token = format!("d{attempt}");
            let rows = vec![row(&format!("{prefix}0"), 0), row(&format!("{prefix}1"), 1)];
            self.append(&first.handle, rows, &token).await?;
            let second = self.open("discard", &OpenOptions::discard()).await?;
            let found = second.status.and_then(|s| s.committed);
            if found.as_deref() == Some(token.as_str()) {
                // They committed before the reopen: nothing was discarded. Try again.
                continue;
            }
            tokio::time::sleep(self.options.discard_settle).await;
            let landed = self.ids(&prefix).await?;
            if !landed.is_empty() {
                return Err(format!(
                    "rows the reopen discarded (it found {found:?}) landed later: {landed:?}"
                ));
            }
            let status = self
                .status(&second.handle)
                .await?
                .ok_or("the channel is gone")?;
            if status.committed != found {
                return Err(format!(
                    "the committed token moved from {found:?} to {:?} with nothing appended",
                    status.committed
                ));
            }
            return Ok(format!(
                "2 rows discarded by the reopen; none committed after {:?} (attempt {attempt})",
                self.options.discard_settle
            ));
        }
        Err(format!(
            "not exercised: the rows committed before the reopen in each of {} attempts",
            self.options.attempts
        ))
    }

    async fn waiting_open(&mut self) -> Outcome {
        for attempt in 1..=self.options.attempts {
            let first = self.open("wait", &OpenOptions::discard()).await?;
            let prefix = format!("wait{attempt}-");
            let (one, two) = (format!("w{attempt}a"), format!("w{attempt}b"));
            self.append(&first.handle, vec![row(&format!("{prefix}0"), 0)], &one)
                .await?;
            let rows = vec![row(&format!("{prefix}1"), 1), row(&format!("{prefix}2"), 2)];
            self.append(&first.handle, rows, &two).await?;
            let waits = self.waits.0.load(Ordering::SeqCst);
            let started = Instant::now();
            let opened = self.open("wait", &OpenOptions::wait()).await?;
            let waited = self.waits.0.load(Ordering::SeqCst) - waits;
            let found = opened.status.and_then(|s| s.committed);
            if found.as_deref() != Some(two.as_str()) {
                return Err(format!(
                    "the open answered {found:?}, not the last end token {two}"
                ));
            }
            if waited == 0 {
                // Committed before the open asked: nothing to wait for. Try again.
                continue;
            }
            let landed = self.ids(&prefix).await?;
            if landed.len() != 3 {
                return Err(format!("after the open, the rows landed are {landed:?}"));
            }
            return Ok(format!(
                "waited {waited} times ({:?}), then answered {two}; all 3 rows landed",
                started.elapsed()
            ));
        }
        Err(format!(
            "not exercised: the rows committed before the open in each of {} attempts",
            self.options.attempts
        ))
    }

    async fn counters(&mut self) -> Outcome {
        let opened = self.open("counters", &OpenOptions::discard()).await?;
        // Rows in the channel once each token is committed.
        let expected = |committed: Option<&str>| match committed {
            None => Some(0),
            Some("c1") => Some(2),
            Some("c2") => Some(5),
            Some("c3") => Some(6),
            Some(_) => None,
        };
        let check = |status: &ChannelStatus, answer: usize| {
            let c = counters(status);
            let rows = c.rows_inserted + c.rows_error_count;
            match expected(status.committed.as_deref()) {
                Some(want) if want == rows => Ok(()),
                want => Err(format!(
                    "answer {answer}: committed {:?} means {want:?} rows, the counters say {rows} ({} inserted, {} rejected)",
                    status.committed, c.rows_inserted, c.rows_error_count
                )),
            }
        };
        if let Some(status) = &opened.status {
            check(status, 0)?;
        }
        let h = &opened.handle;
        self.append(h, vec![row("counters-0", 0), row("counters-1", 1)], "c1")
            .await?;
        let rows = vec![
            row("counters-2", 2),
            row("counters-3", 3),
            row("counters-4", 4),
        ];
        self.append(h, rows, "c2").await?;
        self.append(h, vec![row("counters-5", 5)], "c3").await?;
        let mut answers = 1;
        self.wait_for(h, "c3", |status| {
            check(status, answers)?;
            answers += 1;
            Ok(())
        })
        .await?;
        Ok(format!("{answers} answers, each in agreement"))
    }

    async fn rejected_bound(&mut self) -> Outcome {
        let opened = self.open("reject", &OpenOptions::discard()).await?;
        let before = opened.status.as_ref().map(counters).unwrap_or_default();
        let h = &opened.handle;
        self.append(h, vec![row("reject-0", 0)], "e1").await?;
        let bad = Row::parse(r#"{"ID":"reject-bad","N":"not a number"}"#)
            .map_err(|e| error("a row", e))?;
        self.append(h, vec![row("reject-1", 1), bad], "e2").await?;
        self.append(h, vec![row("reject-2", 2)], "e3").await?;
        let after = counters(&self.commit(h, "e3").await?);
        let rejected = after.rows_error_count - before.rows_error_count.min(after.rows_error_count);
        if rejected != 1 {
            return Err(format!(
                "{rejected} rows counted rejected, not 1: {after:?}"
            ));
        }
        if after.last_error_offset_upper_bound.as_deref() != Some("e2") {
            return Err(format!(
                "last_error_offset_upper_bound is {:?}, not e2 (the request's end token)",
                after.last_error_offset_upper_bound
            ));
        }
        let landed = self.ids("reject-").await?;
        if landed != ["reject-0", "reject-1", "reject-2"] {
            return Err(format!("landed {landed:?}"));
        }
        Ok(format!(
            "1 row rejected, bound e2; message: {}",
            after.last_error_message.unwrap_or_default()
        ))
    }

    async fn refused_keeps_token(&mut self) -> Outcome {
        let opened = self.open("refused", &OpenOptions::discard()).await?;
        let h = &opened.handle;
        self.append(h, vec![row("refused-0", 0)], "f1").await?;
        // A line that is JSON but not an object: the service refuses the request.
        let not_an_object = Row::parse("[1]").map_err(|e| error("a row", e))?;
        let refusal = match self.client.append_rows(h, vec![not_an_object], "f2").await {
            Ok(_) => {
                return Err(
                    "not exercised: the service took a line that is not an object".to_owned(),
                );
            }
            Err(e) if e.error.is_outcome_unknown() || e.error.is_reopen() => {
                return Err(format!("the refusal was not a plain refusal: {e}"));
            }
            Err(e) => e.error.code().to_owned(),
        };
        // The same token (the client keeps it after a refusal) must take the next append.
        self.append(h, vec![row("refused-1", 1)], "f3").await?;
        self.commit(h, "f3").await?;
        let landed = self.ids("refused-").await?;
        if landed != ["refused-0", "refused-1"] {
            return Err(format!("landed {landed:?}"));
        }
        Ok(format!(
            "refused with {refusal}; the next append on the same token committed"
        ))
    }

    async fn dropped_comes_back(&mut self) -> Outcome {
        let opened = self.open("drop", &OpenOptions::discard()).await?;
        self.append(&opened.handle, vec![row("drop-0", 0)], "g1")
            .await?;
        let before = counters(&self.commit(&opened.handle, "g1").await?);
        self.client
            .drop_channel(&opened.handle, &DropOptions::default())
            .await
            .map_err(|e| error("drop", e))?;
        if let Some(status) = self.status(&opened.handle).await?
            && status.valid
        {
            return Err(format!(
                "after the drop the channel is still there: {status:?}"
            ));
        }
        let again = self.open("drop", &OpenOptions::discard()).await?;
        let status = again.status.ok_or("the open answered no status")?;
        let after = counters(&status);
        if after.created_on_ms <= before.created_on_ms {
            return Err(format!(
                "created_on_ms {} → {}: not newer",
                before.created_on_ms, after.created_on_ms
            ));
        }
        if status.committed.is_some() || after.rows_inserted != 0 {
            return Err(format!("the new channel starts at {status:?}"));
        }
        Ok(format!(
            "created_on_ms {} → {}, counters and committed token back to nothing",
            before.created_on_ms, after.created_on_ms
        ))
    }

    async fn drop_schema(&self) -> Outcome {
        let rows = self
            .sql
            .query(&format!(
                "DROP SCHEMA IF EXISTS \"{}\".\"{}\" CASCADE",
                self.database, self.schema
            ))
            .await
            .map_err(|e| error("DROP SCHEMA", e))?;
        Ok(rows
            .data
            .first()
            .and_then(|r| r.first())
            .cloned()
            .flatten()
            .unwrap_or_else(|| format!("{} dropped", self.schema)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_length_asked_and_vary() {
        for bytes in [1, 2, 3, 8, 64, 1000, 4096] {
            let token = token_of(bytes);
            assert_eq!(token.len(), bytes, "{token:?}");
            assert!(token.starts_with('x') || bytes == 0, "{token:?}");
            assert!(token.ends_with('x'), "{token:?}");
        }
        let long = token_of(64);
        for piece in ["\"", "\\", "%20", "é", "✓", " "] {
            assert!(long.contains(piece), "{long:?} lacks {piece:?}");
        }
    }
}
