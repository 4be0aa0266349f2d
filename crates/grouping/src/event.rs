//! One event of a batch: its job id, table, own columns and raw `data`, with `UUID_TS` already set.

use std::{borrow::Cow, fmt, ops::Range, sync::Arc};

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::{
    Schema, UploadTime,
    row::{Entries, write_row},
};

/// The column the upload time goes into.
pub const UUID_TS: &str = "UUID_TS";
/// The column whose value identifies an event's row (duplicate counting, discard rows' `ROW_ID`).
pub const ID: &str = "ID";
/// The column with the time the event was received (discard rows' `RECEIVED_AT`).
pub const RECEIVED_AT: &str = "RECEIVED_AT";

/// One event: job id, table, the event's own `columns`, and its `data` row as raw JSON.
///
/// `data` is the row as it goes into an insert request: the object read, written compactly (whitespace between
/// its top-level tokens dropped; keys, values and their order as read), and, when the event's columns have
/// `UUID_TS`, with `data.UUID_TS` set to the upload time. Rows read from a file share a few large buffers
/// ([`Bytes`] slices of them); [`Event::into_data`] moves the row out for an insert request.
///
/// ```
/// use serde_json::value::RawValue;
/// use snowpipe_grouping::{Event, Schema, UploadTime, WarehouseType};
/// use time::macros::datetime;
///
/// let time = UploadTime::new(datetime!(2024-01-02 03:04:05.678 UTC));
/// let columns: Schema = [("ID", WarehouseType::String), ("UUID_TS", WarehouseType::Datetime)].into_iter().collect();
/// let data = RawValue::from_string(r#"{"ID":"a1"}"#.to_owned()).unwrap();
/// let event = Event::new(7, "TRACKS", columns, &data, &time).unwrap();
/// assert_eq!(event.data(), r#"{"ID":"a1","UUID_TS":"2024-01-02T03:04:05.678Z"}"#);
/// assert_eq!(event.size(), event.data().len());
/// assert_eq!(event.id(), Some(r#""a1""#));
/// ```
#[derive(Clone)]
pub struct Event {
    job_id: i64,
    table: Arc<str>,
    columns: Arc<Schema>,
    // Always the text of a JSON object: written by `row::write_row`, from UTF-8 text only.
    data: Bytes,
    // Byte ranges of the values in `data`, found once so the rules need not parse the row again.
    id: Option<Range<usize>>,
    // The hash of the id's key (`id_key`), taken while the row was being written and so in cache: counting
    // duplicates then compares hashes instead of fetching every event's row again. 0 without an id.
    id_hash: u64,
    received_at: Option<Range<usize>>,
    has_array: bool,
    value_bytes: usize,
}

/// Why [`Event::new`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// `data` was not a JSON object.
    #[error("event data must be a JSON object, found {found:?}; pass the row as an object")]
    DataNotAnObject {
        /// The start of the data, at most [`crate::EXCERPT_CHARS`] characters.
        found: String,
    },
    /// The table name was empty.
    #[error("event table name is empty; pass the table the row belongs to")]
    EmptyTable,
}

impl Event {
    /// An event from its parts; sets `data.UUID_TS` to `upload_time` when `columns` has `UUID_TS`.
    ///
    /// # Errors
    /// [`EventError`] when `data` is not an object or `table` is empty.
    pub fn new(
        job_id: i64,
        table: &str,
        columns: Schema,
        data: &RawValue,
        upload_time: &UploadTime,
    ) -> Result<Self, EventError> {
        if table.is_empty() {
            return Err(EventError::EmptyTable);
        }
        if !data.get().starts_with('{') {
            return Err(EventError::DataNotAnObject {
                found: crate::excerpt::excerpt(data.get()),
            });
        }
        // A `RawValue` is valid JSON, and it starts with `{`: an object, so this parse cannot fail.
        let entries: Entries<'_> =
            serde_json::from_str(data.get()).map_err(|_| EventError::DataNotAnObject {
                found: crate::excerpt::excerpt(data.get()),
            })?;
        let mut row = Vec::with_capacity(data.get().len() + 64);
        let (mut event, span) = Self::from_entries(
            &mut row,
            job_id,
            table.into(),
            Arc::new(columns),
            &entries,
            upload_time,
        );
        event.attach(&Bytes::from(row), span);
        Ok(event)
    }

    /// Builds an event from the entries of its `data` object, as a line's one parse found them, writing its
    /// row at the end of `rows`; answers where. The event has no data until [`Event::attach`] hands it the
    /// finished buffer.
    pub(crate) fn from_entries(
        rows: &mut Vec<u8>,
        job_id: i64,
        table: Arc<str>,
        columns: Arc<Schema>,
        entries: &Entries<'_>,
        upload_time: &UploadTime,
    ) -> (Self, Range<usize>) {
        let uuid_ts = columns.contains(UUID_TS).then_some(upload_time);
        let written = write_row(rows, entries, uuid_ts);
        let id_hash = written.id.as_ref().map_or(0, |id| {
            let row = &rows[written.span.clone()];
            hash_id_key(&id_key(&row[id.clone()]))
        });
        let event = Self {
            job_id,
            table,
            columns,
            data: Bytes::new(),
            id: written.id,
            id_hash,
            received_at: written.received_at,
            has_array: written.has_array,
            value_bytes: written.value_bytes,
        };
        (event, written.span)
    }

    /// Gives the event its row: `span` of `rows`, the buffer [`Event::from_entries`] wrote into.
    pub(crate) fn attach(&mut self, rows: &Bytes, span: Range<usize>) {
        self.data = rows.slice(span);
    }

    /// The job id (`metadata.job_id`).
    #[must_use]
    pub fn job_id(&self) -> i64 {
        self.job_id
    }

    /// The table (`message.metadata.table`).
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The table name, shared by every event of the table in a batch.
    #[must_use]
    pub fn shared_table(&self) -> &Arc<str> {
        &self.table
    }

    /// The event's own columns (`message.metadata.columns`), in the file's order.
    #[must_use]
    pub fn columns(&self) -> &Schema {
        &self.columns
    }

    /// The event's columns as shared: events with the same `columns` text in one file share one schema, so
    /// per-schema work (such as finding mismatched columns) can be cached by pointer.
    #[must_use]
    pub fn shared_columns(&self) -> &Arc<Schema> {
        &self.columns
    }

    /// The row (`message.data`) as JSON text, with `UUID_TS` set when the columns have it.
    #[must_use]
    pub fn data(&self) -> &str {
        text(&self.data)
    }

    /// Moves the row out, for an insert request: the text of a JSON object.
    #[must_use]
    pub fn into_data(self) -> Bytes {
        self.data
    }

    /// The row's size in bytes as it goes into an insert request (with `UUID_TS` counted).
    #[must_use]
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// The raw JSON text of `data.ID` (the last one if repeated), if present.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        self.id.clone().map(|r| text(&self.data[r]))
    }

    /// `data.ID` as text for comparing ids: a string's decoded contents, any other value's raw JSON text.
    #[must_use]
    pub fn id_text(&self) -> Option<Cow<'_, str>> {
        self.id().map(json_text)
    }

    /// [`Event::id_text`]'s bytes, for counting duplicates over a whole batch: the same comparison without
    /// checking, once per event, that the row's bytes are text (they are).
    pub(crate) fn id_key(&self) -> Option<Cow<'_, [u8]>> {
        Some(id_key(&self.data[self.id.clone()?]))
    }

    /// The hash of [`Event::id_key`] ([`hash_id_key`]), taken when the event was read; `None` without an id.
    pub(crate) fn id_hash(&self) -> Option<u64> {
        self.id.as_ref().map(|_| self.id_hash)
    }

    /// The raw JSON text of `data.RECEIVED_AT` (the last one if repeated), if present.
    #[must_use]
    pub fn received_at(&self) -> Option<&str> {
        self.received_at.clone().map(|r| text(&self.data[r]))
    }

    /// The bytes of the row's values, as Snowflake bills the rows it receives on its high-performance
    /// architecture: each value's JSON text, strings without their quotes; keys and punctuation are not
    /// counted. Measured as the row was read (a value coercion later replaces counts as it was).
    #[must_use]
    pub fn value_bytes(&self) -> usize {
        self.value_bytes
    }

    /// Whether some top-level value of `data` is an array (arrays are sent as JSON text, so such rows may
    /// need rewriting even without a type mismatch).
    #[must_use]
    pub fn has_array_value(&self) -> bool {
        self.has_array
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("job_id", &self.job_id)
            .field("table", &self.table)
            .field("columns", &self.columns)
            .field("data", &self.data())
            .finish()
    }
}

/// Row bytes as text: rows and the spans in them are only ever cut from UTF-8 text at JSON token boundaries.
fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes)
        .expect("rows are written from UTF-8 text, and cut at token boundaries")
}

/// A string literal's decoded contents, or any other value's raw text.
fn json_text(raw: &str) -> Cow<'_, str> {
    if raw.starts_with('"') {
        if !raw.contains('\\') {
            return Cow::Borrowed(&raw[1..raw.len() - 1]);
        }
        if let Ok(s) = serde_json::from_str::<String>(raw) {
            return Cow::Owned(s);
        }
    }
    Cow::Borrowed(raw)
}

/// An id's raw JSON text as the bytes duplicates compare: a string's contents, any other value's text.
fn id_key(raw: &[u8]) -> Cow<'_, [u8]> {
    match raw {
        [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') => Cow::Borrowed(inner),
        [b'"', ..] => serde_json::from_slice::<String>(raw)
            .map_or(Cow::Borrowed(raw), |s| Cow::Owned(s.into_bytes())),
        _ => Cow::Borrowed(raw),
    }
}

/// The hash of an id's key. Fixed-seeded, so equal keys hash equal on every thread and in every batch; a
/// crafted collision costs only time, as equal hashes are confirmed on the ids themselves.
pub(crate) fn hash_id_key(key: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x5157_9a1f_37c4_d0e3).hash_one(key)
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;
    use time::macros::datetime;

    use super::{Event, EventError};
    use crate::{Schema, UploadTime, WarehouseType};

    fn time() -> UploadTime {
        UploadTime::new(datetime!(2024-01-02 03:04:05.678 UTC))
    }

    fn event(columns: &[&str], data: &str) -> Event {
        let columns: Schema = columns
            .iter()
            .map(|c| (*c, WarehouseType::String))
            .collect();
        Event::new(
            1,
            "T",
            columns,
            &RawValue::from_string(data.to_owned()).unwrap(),
            &time(),
        )
        .unwrap()
    }

    #[test]
    fn value_bytes_count_values_not_keys_nor_quotes() {
        // "a1" 2, 5 1, {"x": 1} 8 (nested JSON as written), null 4, "" 0.
        let e = event(&["ID"], r#"{"ID":"a1","N":5,"J":{"x": 1},"Z":null,"E":""}"#);
        assert_eq!(e.value_bytes(), 15);
        // The upload time set into UUID_TS counts as sent: 24 characters without quotes.
        let e = event(&["UUID_TS"], r#"{"LONG_KEY_NAME":"v"}"#);
        assert_eq!(e.value_bytes(), 1 + 24);
    }

    #[test]
    fn uuid_ts_is_appended_when_absent() {
        assert_eq!(
            event(&["UUID_TS"], "{}").data(),
            r#"{"UUID_TS":"2024-01-02T03:04:05.678Z"}"#
        );
        assert_eq!(
            event(&["UUID_TS"], "{ }").data(),
            r#"{"UUID_TS":"2024-01-02T03:04:05.678Z"}"#
        );
        assert_eq!(
            event(&["UUID_TS"], r#"{"A": 1 }"#).data(),
            r#"{"A":1,"UUID_TS":"2024-01-02T03:04:05.678Z"}"#
        );
    }

    #[test]
    fn uuid_ts_replaces_any_existing_value_and_keeps_the_rest() {
        let e = event(
            &["UUID_TS", "ID"],
            r#"{"UUID_TS": {"old": [1]}, "ID": "x", "RECEIVED_AT": "r"}"#,
        );
        assert_eq!(
            e.data(),
            r#"{"UUID_TS":"2024-01-02T03:04:05.678Z","ID":"x","RECEIVED_AT":"r"}"#
        );
        assert_eq!(e.id(), Some(r#""x""#));
        assert_eq!(e.received_at(), Some(r#""r""#));
        assert_eq!(e.size(), e.data().len());
    }

    #[test]
    fn rows_without_uuid_ts_in_columns_keep_every_value_as_read() {
        let e = event(&["ID"], r#"{ "UUID_TS" : "keep",  "ID":1, "N": [ 1,2 ] }"#);
        assert_eq!(e.data(), r#"{"UUID_TS":"keep","ID":1,"N":[ 1,2 ]}"#);
        assert_eq!(e.id(), Some("1"));
        assert_eq!(e.id_text().as_deref(), Some("1"));
    }

    #[test]
    fn id_key_is_id_text_as_bytes() {
        for data in [
            r#"{"ID":"a\u0031"}"#,
            r#"{"ID":"a1"}"#,
            r#"{"ID":""}"#,
            r#"{"ID":12}"#,
            r#"{"ID":{"x":[1]}}"#,
            r#"{"X":"a1"}"#,
        ] {
            let e = event(&[], data);
            assert_eq!(
                e.id_key().as_deref(),
                e.id_text().as_deref().map(str::as_bytes),
                "{data}"
            );
        }
    }

    #[test]
    fn id_text_decodes_strings() {
        assert_eq!(
            event(&[], r#"{"ID":"a\u0031"}"#).id_text().as_deref(),
            Some("a1")
        );
        assert_eq!(
            event(&[], r#"{"ID":"a1"}"#).id_text().as_deref(),
            Some("a1")
        );
        assert_eq!(event(&[], r#"{"X":"a1"}"#).id_text(), None);
    }

    #[test]
    fn arrays_are_noticed() {
        assert!(event(&[], r#"{"A":[1]}"#).has_array_value());
        assert!(!event(&[], r#"{"A":{"b":[1]}}"#).has_array_value());
    }

    #[test]
    fn non_objects_and_empty_tables_are_refused() {
        let data = RawValue::from_string("[1]".to_owned()).unwrap();
        let err = Event::new(1, "T", Schema::new(), &data, &time()).unwrap_err();
        assert_eq!(
            err,
            EventError::DataNotAnObject {
                found: "[1]".to_owned()
            }
        );
        let err = Event::new(1, "", Schema::new(), &data, &time()).unwrap_err();
        assert_eq!(err, EventError::EmptyTable);
    }
}
