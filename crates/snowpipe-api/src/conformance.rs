//! The conformance suite of the [`Backend`] boundary: one set of checks, written against the trait alone,
//! that every backend must pass — the in-memory one, the sidecar client against the emulator, the REST
//! client.
//!
//! A backend's test supplies a [`Harness`] (the backend plus the few things only its service can do: make
//! tables, commit, restart, invalidate) and runs every check, one test each, with [`conformance_tests!`]:
//!
//! ```ignore
//! snowpipe_api::conformance_tests!(my_harness().await);
//! ```

use std::ops::Range;

use async_trait::async_trait;
use serde_json::Value;

use crate::{
    AppendRequest, Backend, BackendExt, ChannelHandle, ChannelRef, DropOptions, Error,
    MissingObject, OffsetTokens, OpenOptions, Progress, Row, TableRef, TokenRange, WarehouseType,
};

/// What a check needs from a backend's test set-up.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The backend under test.
    fn backend(&self) -> &dyn Backend;

    /// A channel on a table named `table` that exists, with the columns `ID` (text) and `N` (a number);
    /// the harness creates the table if needed.
    async fn channel(&self, table: &str) -> ChannelRef;

    /// A channel on a table that does not exist, in a schema that does.
    async fn missing_table(&self) -> ChannelRef;

    /// A channel in a schema that does not exist.
    async fn missing_schema(&self) -> ChannelRef;

    /// Waits until everything appended so far is committed.
    async fn commit(&self);

    /// The committed rows of a table.
    async fn rows(&self, table: &TableRef) -> Vec<Value>;

    /// Makes the service forget every channel and its uncommitted rows, as a restart does.
    async fn restart(&self);

    /// Turns the channel invalid, as the service does when it breaks.
    async fn invalidate(&self, channel: &ChannelHandle);
}

/// Tokens that name each request by its rows (`r<first>-<last>`), so a check can see which rows a request
/// held from its tokens alone.
#[derive(Debug)]
struct ByRow;

impl OffsetTokens for ByRow {
    fn tokens(&self, rows: Range<usize>) -> TokenRange {
        TokenRange {
            start: format!("r{}", rows.start),
            end: format!("r{}", rows.end - 1),
        }
    }
}

fn rows(ids: &[&str]) -> Vec<Row> {
    ids.iter()
        .enumerate()
        .map(|(n, id)| {
            Row::parse(format!(r#"{{"ID":"{id}","N":{n}}}"#))
                .unwrap_or_else(|e| panic!("a test row is JSON: {e}"))
        })
        .collect()
}

fn ids_of(rows: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get("ID").and_then(Value::as_str).map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

async fn open(harness: &dyn Harness, channel: &ChannelRef) -> ChannelHandle {
    harness
        .backend()
        .open_channel(channel, &OpenOptions::discard())
        .await
        .unwrap_or_else(|e| panic!("opening {channel}: {e}"))
        .handle
}

/// Rows appended and committed land in the table; the committed token becomes the last request's end
/// token; the requests an append reports cover its rows in order.
pub async fn appended_rows_commit(harness: &dyn Harness) {
    let backend = harness.backend();
    let channel = harness.channel("CONFORMANCE_APPEND").await;
    let handle = open(harness, &channel).await;
    let request = AppendRequest {
        rows: rows(&["a", "b", "c"]).into(),
        tokens: std::sync::Arc::new(ByRow),
    };
    let appended = backend
        .append(&handle, &request)
        .await
        .unwrap_or_else(|e| panic!("append: {e}"));
    let mut next = 0;
    for sent in &appended.requests {
        assert_eq!(sent.rows.start, next, "requests cover the rows in order");
        assert!(!sent.rows.is_empty(), "no empty request");
        assert!(sent.body_bytes > 0, "a request has a body");
        next = sent.rows.end;
    }
    assert_eq!(next, 3, "requests cover every row: {appended:?}");
    let last = appended.requests.last().map(|r| r.tokens.end.clone());
    harness.commit().await;
    let status = backend
        .channel_status(&handle)
        .await
        .unwrap_or_else(|e| panic!("status: {e}"))
        .unwrap_or_else(|| panic!("the channel is known"));
    assert!(status.valid, "{status:?}");
    assert_eq!(
        status.committed, last,
        "committed token is the last end token"
    );
    if let Progress::Inserted(inserted) = &status.progress {
        assert_eq!(*inserted, last, "the latest inserted token");
    }
    assert_eq!(ids_of(&harness.rows(&channel.table).await), ["a", "b", "c"]);
}

/// Opening a channel again supersedes the earlier opening: appends through the old handle go nowhere, the
/// new handle works.
pub async fn reopening_supersedes_the_earlier_writer(harness: &dyn Harness) {
    let backend = harness.backend();
    let channel = harness.channel("CONFORMANCE_REOPEN").await;
    let first = open(harness, &channel).await;
    let second = backend
        .open_channel(&channel, &OpenOptions::discard())
        .await
        .unwrap_or_else(|e| panic!("second open: {e}"))
        .handle;
    let stale = backend.append_rows(&first, rows(&["old"]), "1").await;
    if let Err(error) = &stale {
        assert!(
            !error.error.is_outcome_unknown(),
            "a refused append is refused, not unknown: {error}"
        );
    }
    backend
        .append_rows(&second, rows(&["new"]), "2")
        .await
        .unwrap_or_else(|e| panic!("append through the new handle: {e}"));
    harness.commit().await;
    let landed = ids_of(&harness.rows(&channel.table).await);
    assert!(landed.contains(&"new".to_owned()), "{landed:?}");
    if stale.is_err() {
        assert!(!landed.contains(&"old".to_owned()), "{landed:?}");
    }
}

/// Statuses come in the order asked; a channel the backend does not know is `None`.
pub async fn bulk_status_keeps_order_and_names_unknown_channels(harness: &dyn Harness) {
    let backend = harness.backend();
    let a = open(harness, &harness.channel("CONFORMANCE_BULK_A").await).await;
    let b = open(harness, &harness.channel("CONFORMANCE_BULK_B").await).await;
    backend
        .append_rows(&b, rows(&["x"]), "5")
        .await
        .unwrap_or_else(|e| panic!("append: {e}"));
    harness.commit().await;
    let unknown = ChannelHandle {
        channel: a.channel.clone(),
        id: "no-such-channel".into(),
    };
    let statuses = backend
        .bulk_status_chunked(&[b.clone(), unknown, a.clone()], 2)
        .await
        .unwrap_or_else(|e| panic!("bulk status: {e}"));
    assert_eq!(statuses.len(), 3);
    let b_status = statuses[0].as_ref().unwrap_or_else(|| panic!("b is known"));
    assert_eq!(b_status.committed.as_deref(), Some("5"));
    assert!(statuses[1].is_none(), "{:?}", statuses[1]);
    let a_status = statuses[2].as_ref().unwrap_or_else(|| panic!("a is known"));
    assert_eq!(a_status.committed, None, "nothing committed on a");
    assert!(a_status.valid && b_status.valid);
}

/// After a restart the backend knows none of the channels opened before: statuses say so, and appends
/// ask for a reopen, after which the channel works again.
pub async fn a_restart_loses_channels_until_they_are_reopened(harness: &dyn Harness) {
    let backend = harness.backend();
    let channel = harness.channel("CONFORMANCE_RESTART").await;
    let handle = open(harness, &channel).await;
    harness.restart().await;
    let status = backend
        .channel_status(&handle)
        .await
        .unwrap_or_else(|e| panic!("status: {e}"));
    assert!(status.is_none(), "{status:?}");
    let bulk = backend
        .bulk_status(std::slice::from_ref(&handle))
        .await
        .unwrap_or_else(|e| panic!("bulk status: {e}"));
    assert_eq!(bulk, [None]);
    let error = backend
        .append_rows(&handle, rows(&["lost"]), "1")
        .await
        .expect_err("an append to a lost channel fails");
    assert!(error.error.is_reopen(), "{error:?}");
    assert!(error.accepted.is_empty());
    let reopened = open(harness, &channel).await;
    backend
        .append_rows(&reopened, rows(&["back"]), "2")
        .await
        .unwrap_or_else(|e| panic!("append after reopening: {e}"));
    harness.commit().await;
    assert_eq!(ids_of(&harness.rows(&channel.table).await), ["back"]);
}

/// A channel the service turned invalid says so in its own status.
pub async fn an_invalid_channel_reports_itself_invalid(harness: &dyn Harness) {
    let backend = harness.backend();
    let handle = open(harness, &harness.channel("CONFORMANCE_INVALID").await).await;
    harness.invalidate(&handle).await;
    let status = backend
        .channel_status(&handle)
        .await
        .unwrap_or_else(|e| panic!("status: {e}"))
        .unwrap_or_else(|| panic!("an invalid channel is still known"));
    assert!(!status.valid, "{status:?}");
}

/// Opening a channel whose table or schema is missing says which, so the caller can create it.
pub async fn missing_objects_are_named(harness: &dyn Harness) {
    let backend = harness.backend();
    let table = harness.missing_table().await;
    let error = backend
        .open_channel(&table, &OpenOptions::discard())
        .await
        .expect_err("no table");
    assert_eq!(
        error.missing_object(),
        Some(MissingObject::Table),
        "{error}"
    );
    let schema = harness.missing_schema().await;
    let error = backend
        .open_channel(&schema, &OpenOptions::discard())
        .await
        .expect_err("no schema");
    assert_eq!(
        error.missing_object(),
        Some(MissingObject::Schema),
        "{error}"
    );
}

/// A backend that reports columns with an open reports the table's, with types the pipeline can read.
pub async fn columns_come_with_the_open_when_the_backend_offers_them(harness: &dyn Harness) {
    let backend = harness.backend();
    let channel = harness.channel("CONFORMANCE_COLUMNS").await;
    let opened = backend
        .open_channel(&channel, &OpenOptions::discard())
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    match (backend.capabilities().columns_on_open, &opened.columns) {
        (true, Some(columns)) => {
            let ty = |name: &str| {
                columns
                    .iter()
                    .find(|c| c.name == name)
                    .and_then(crate::Column::warehouse_type)
            };
            assert_eq!(ty("ID"), Some(WarehouseType::String), "{columns:?}");
            assert_eq!(ty("N"), Some(WarehouseType::Int), "{columns:?}");
        }
        (false, None) => {}
        (offered, columns) => {
            panic!("capabilities say columns_on_open = {offered}, the open gave {columns:?}")
        }
    }
}

/// An open stores a committed token when the backend can, and refuses to pretend when it cannot.
pub async fn an_open_stores_a_token_only_where_it_can(harness: &dyn Harness) {
    let backend = harness.backend();
    let channel = harness.channel("CONFORMANCE_TOKEN").await;
    let options = OpenOptions::discard().with_offset_token("fence-1");
    let opened = backend.open_channel(&channel, &options).await;
    if backend.capabilities().sets_offset_token {
        let opened = opened.unwrap_or_else(|e| panic!("open with a token: {e}"));
        let status = backend
            .channel_status(&opened.handle)
            .await
            .unwrap_or_else(|e| panic!("status: {e}"))
            .unwrap_or_else(|| panic!("known"));
        assert_eq!(status.committed.as_deref(), Some("fence-1"));
    } else {
        let error = opened.expect_err("the backend cannot store a token");
        assert!(matches!(error, Error::Unsupported { .. }), "{error}");
    }
}

/// A dropped channel is unknown; dropping it again succeeds.
pub async fn dropped_channels_are_gone(harness: &dyn Harness) {
    let backend = harness.backend();
    let handle = open(harness, &harness.channel("CONFORMANCE_DROP").await).await;
    let options = DropOptions::default();
    backend
        .drop_channel(&handle, &options)
        .await
        .unwrap_or_else(|e| panic!("drop: {e}"));
    let status = backend
        .channel_status(&handle)
        .await
        .unwrap_or_else(|e| panic!("status: {e}"));
    assert!(status.as_ref().is_none_or(|s| !s.valid), "{status:?}");
    backend
        .drop_channel(&handle, &options)
        .await
        .unwrap_or_else(|e| panic!("a second drop: {e}"));
}

/// Defines one `#[tokio::test]` per check of the suite, each on a fresh harness built by `$harness` (an
/// expression evaluated inside an async test, so it may `.await`).
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!(@each $harness;
            appended_rows_commit,
            reopening_supersedes_the_earlier_writer,
            bulk_status_keeps_order_and_names_unknown_channels,
            a_restart_loses_channels_until_they_are_reopened,
            an_invalid_channel_reports_itself_invalid,
            missing_objects_are_named,
            columns_come_with_the_open_when_the_backend_offers_them,
            an_open_stores_a_token_only_where_it_can,
            dropped_channels_are_gone
        );
    };
    (@each $harness:expr; $($check:ident),*) => {$(
        #[tokio::test]
        async fn $check() {
            let harness = $harness;
            $crate::conformance::$check(&harness).await;
        }
    )*};
}
