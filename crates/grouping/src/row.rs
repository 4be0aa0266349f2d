//! An event's row, written once from the top-level entries of its `data` object.
//!
//! A line is validated by one parse, which yields `data`'s entries (keys, and values as raw JSON). The row that
//! goes into an insert request is written from those entries, with `UUID_TS` set where the columns have it:
//! values are copied as they are and keys are written as JSON strings, so the row is valid JSON without being
//! parsed a second time, and where the values looked up later (`ID`, `RECEIVED_AT`) land is known as they are
//! written. Rows are appended to a buffer the caller shares between many rows (a decoding thread's chunk):
//! one allocation for a thousand rows, where one each made the threads' heaps grow a page at a time.
//!
//! The row is compact: whitespace between `data`'s top-level tokens is dropped; every value, nested whitespace
//! included, and every key, duplicates included, is kept as read, in order.

use std::{borrow::Cow, fmt, marker::PhantomData, ops::Range};

use serde::{
    Deserialize, Deserializer,
    de::{MapAccess, Visitor},
};
use serde_json::value::RawValue;

use crate::{ID, RECEIVED_AT, UUID_TS, UploadTime};

/// A JSON object's top-level entries in order: keys borrowed from the text unless they hold escapes, values
/// left raw. Duplicate keys are kept.
#[derive(Debug, Default)]
pub(crate) struct Entries<'a>(pub(crate) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for EntriesVisitor<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                // Rows of a dozen columns are the common case; one allocation holds them.
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(Key(key)) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// A key borrowed from the text when it has no escapes. (serde's own `Cow<str>` always copies.)
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor(PhantomData))
    }
}

/// Where [`write_row`] put a row, and where its looked-up values lie in it.
pub(crate) struct Written {
    /// The row's bytes in the buffer.
    pub(crate) span: Range<usize>,
    /// The last `ID` value's span, from the row's start.
    pub(crate) id: Option<Range<usize>>,
    /// The last `RECEIVED_AT` value's span, from the row's start.
    pub(crate) received_at: Option<Range<usize>>,
    /// Whether some top-level value is an array.
    pub(crate) has_array: bool,
    /// The bytes of its values, as Snowflake bills them (see [`value_bytes`]).
    pub(crate) value_bytes: usize,
}

/// The bytes a value counts for in the volume Snowflake bills (Snowpipe Streaming's high-performance
/// architecture charges for the bytes of the values it receives, not for keys): its JSON text, a string
/// without its quotes.
///
/// ```
/// assert_eq!(snowpipe_grouping::value_bytes(r#""a1""#), 2);
/// assert_eq!(snowpipe_grouping::value_bytes("null"), 4);
/// ```
#[must_use]
pub fn value_bytes(value: &str) -> usize {
    if value.len() >= 2 && value.starts_with('"') {
        value.len() - 2
    } else {
        value.len()
    }
}

/// Appends the row of `entries` to `out`: every `UUID_TS` value set to `uuid_ts` (or the field appended when
/// there is none) if given, all else as read.
pub(crate) fn write_row(
    out: &mut Vec<u8>,
    entries: &Entries<'_>,
    uuid_ts: Option<&UploadTime>,
) -> Written {
    let start = out.len();
    let mut written = Written {
        span: start..start,
        id: None,
        received_at: None,
        has_array: false,
        value_bytes: 0,
    };
    out.push(b'{');
    let mut field = |out: &mut Vec<u8>, key: &str, value: &str| {
        if out.len() > start + 1 {
            out.push(b',');
        }
        write_key(out, key);
        out.push(b':');
        let at = out.len() - start;
        out.extend_from_slice(value.as_bytes());
        let span = at..at + value.len();
        written.has_array |= value.starts_with('[');
        written.value_bytes += value_bytes(value);
        if key == ID {
            written.id = Some(span);
        } else if key == RECEIVED_AT {
            written.received_at = Some(span);
        }
    };
    let mut had_uuid_ts = false;
    for (key, raw) in &entries.0 {
        match uuid_ts {
            Some(time) if key == UUID_TS => {
                had_uuid_ts = true;
                field(out, key, time.as_json());
            }
            _ => field(out, key, raw.get()),
        }
    }
    if let Some(time) = uuid_ts.filter(|_| !had_uuid_ts) {
        field(out, UUID_TS, time.as_json());
    }
    out.push(b'}');
    written.span = start..out.len();
    written
}

/// Writes `key` as a JSON string.
fn write_key(out: &mut Vec<u8>, key: &str) {
    out.push(b'"');
    // A key read without escapes needs none: JSON text cannot hold a bare quote, backslash or control
    // character inside a string. Keys that had escapes get the escapes JSON requires, and no others.
    if key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.extend_from_slice(key.as_bytes());
    } else {
        for b in key.bytes() {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                0x00..=0x1f => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                _ => out.push(b),
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value};
    use time::macros::datetime;

    use super::{Entries, Written, write_row};
    use crate::{UploadTime, raw::fields_of_str};

    /// A row written alone, as text, with where its values lie.
    struct Row {
        text: String,
        id: Option<std::ops::Range<usize>>,
        received_at: Option<std::ops::Range<usize>>,
        has_array: bool,
    }

    fn time() -> UploadTime {
        UploadTime::new(datetime!(2024-01-02 03:04:05.678 UTC))
    }

    fn build(data: &str, uuid_ts: bool) -> Row {
        let entries: Entries<'_> = serde_json::from_str(data).unwrap();
        // Something before it in the buffer, as in a chunk: spans count from the row's start.
        let mut out = b"{}".to_vec();
        let Written {
            span,
            id,
            received_at,
            has_array,
            ..
        } = write_row(&mut out, &entries, uuid_ts.then(time).as_ref());
        let text = String::from_utf8(out[span].to_vec()).unwrap();
        Row {
            text,
            id,
            received_at,
            has_array,
        }
    }

    #[test]
    fn keys_without_escapes_are_borrowed() {
        let entries: Entries<'_> = serde_json::from_str(r#"{"A":1,"B\u0043":2}"#).unwrap();
        assert!(matches!(entries.0[0].0, std::borrow::Cow::Borrowed("A")));
        assert!(matches!(entries.0[1].0, std::borrow::Cow::Owned(ref k) if k == "BC"));
    }

    #[test]
    fn rows_are_compact_with_values_as_read() {
        let row = build(r#" { "A" : [1, 2] , "ID": "x" ,"A":{ "b" : 1 } } "#, false);
        assert_eq!(
            row.text.as_str(),
            r#"{"A":[1, 2],"ID":"x","A":{ "b" : 1 }}"#
        );
        assert_eq!(&row.text.as_str()[row.id.unwrap()], r#""x""#);
        assert!(row.has_array);
        assert_eq!(row.received_at, None);
    }

    #[test]
    fn uuid_ts_is_set_in_place_or_appended() {
        assert_eq!(
            build(r#"{"UUID_TS":{"old":1},"B":2,"UUID_TS":3}"#, true)
                .text
                .as_str(),
            r#"{"UUID_TS":"2024-01-02T03:04:05.678Z","B":2,"UUID_TS":"2024-01-02T03:04:05.678Z"}"#
        );
        assert_eq!(
            build("{ }", true).text.as_str(),
            r#"{"UUID_TS":"2024-01-02T03:04:05.678Z"}"#
        );
        assert_eq!(
            build(r#"{"UUID_TS":1}"#, false).text.as_str(),
            r#"{"UUID_TS":1}"#
        );
    }

    #[test]
    fn keys_that_had_escapes_are_escaped_again() {
        let row = build(r#"{"a\"b\\c\u0001\td\u00e9":1}"#, false);
        assert_eq!(row.text, r#"{"a\"b\\c\u0001\u0009dé":1}"#);
        let back: Map<String, Value> = serde_json::from_str(&row.text).unwrap();
        assert_eq!(back.keys().next().unwrap(), "a\"b\\c\u{1}\tdé");
    }

    #[test]
    fn escaped_keys_are_measured_as_written() {
        let row = build(
            r#"{"\u0041\n":1,"I\u0044":"i","RECEIVED_AT":"r","UUID_TS":0}"#,
            true,
        );
        assert_eq!(&row.text.as_str()[row.id.clone().unwrap()], r#""i""#);
        assert_eq!(&row.text.as_str()[row.received_at.unwrap()], r#""r""#);
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(2, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(".{0,3}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("ID".to_owned()),
            Just("RECEIVED_AT".to_owned()),
            Just("UUID_TS".to_owned()),
            ".{0,6}",
        ]
    }

    proptest! {
        /// The row holds the same entries as `data`, `UUID_TS` aside, and the spans found by measuring are
        /// those a scan of the written row finds.
        #[test]
        fn rows_keep_entries_and_spans_match_a_scan(
            entries in prop::collection::vec((arb_key(), arb_json()), 0..8),
            pretty in any::<bool>(),
            uuid_ts in any::<bool>(),
        ) {
            // Written by hand so that duplicate keys survive.
            let pieces: Vec<String> = entries
                .iter()
                .map(|(k, v)| {
                    let v = if pretty { serde_json::to_string_pretty(v).unwrap() } else { v.to_string() };
                    format!("{}{} :  {v}", if pretty { "\n  " } else { "" }, Value::from(k.as_str()))
                })
                .collect();
            let data = format!("{{{}}}", pieces.join(" ,"));
            let row = build(&data, uuid_ts);
            let text = row.text.as_str();

            let written: Vec<(String, Value)> = fields_of_str(text)
                .map(|f| (f.name().into_owned(), serde_json::from_str(f.value).unwrap()))
                .collect();
            let mut expected: Vec<(String, Value)> = entries
                .iter()
                .map(|(k, v)| {
                    let v = if uuid_ts && k == "UUID_TS" { Value::from(time().as_str()) } else { v.clone() };
                    (k.clone(), v)
                })
                .collect();
            if uuid_ts && !entries.iter().any(|(k, _)| k == "UUID_TS") {
                expected.push(("UUID_TS".to_owned(), Value::from(time().as_str())));
            }
            prop_assert_eq!(written, expected);

            let scanned = |name: &str| fields_of_str(text).filter(|f| f.is(name)).last().map(|f| f.value_span);
            prop_assert_eq!(row.id, scanned("ID"));
            prop_assert_eq!(row.received_at, scanned("RECEIVED_AT"));
            prop_assert_eq!(row.has_array, fields_of_str(text).any(|f| f.value.starts_with('[')));
            // Valid JSON, and an object.
            prop_assert!(serde_json::from_str::<Map<String, Value>>(text).is_ok());
        }
    }
}
