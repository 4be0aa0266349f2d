//! An event's row, built once from the top-level entries of its `data` object.
//!
//! A line is validated by one parse, which yields `data`'s entries (keys, and values as raw JSON). The row that
//! goes into an insert request is serialised from those entries, with `UUID_TS` set where the columns have it:
//! serde_json writes raw values as they are, so the row is valid JSON without being parsed a second time, and
//! where the values it looks up (`ID`, `RECEIVED_AT`) land is known from the lengths written, without scanning
//! the row again. Reading spent a third of its time on that second parse and scan before.
//!
//! The row is compact: whitespace between `data`'s top-level tokens is dropped; every value, nested whitespace
//! included, and every key, duplicates included, is kept as read, in order.

use std::{borrow::Cow, fmt, marker::PhantomData, ops::Range};

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{MapAccess, Visitor},
    ser::SerializeMap,
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

/// A row built from [`Entries`], and where its looked-up values lie in it.
pub(crate) struct Row {
    pub(crate) data: Box<RawValue>,
    /// The last `ID` value's span in `data`.
    pub(crate) id: Option<Range<usize>>,
    /// The last `RECEIVED_AT` value's span in `data`.
    pub(crate) received_at: Option<Range<usize>>,
    /// Whether some top-level value is an array.
    pub(crate) has_array: bool,
}

impl Row {
    /// The row of `entries`, with every `UUID_TS` value set to `uuid_ts` (or the field appended when there is
    /// none) if given; all else as read.
    pub(crate) fn build(entries: &Entries<'_>, uuid_ts: Option<&UploadTime>) -> Self {
        let out = Output { entries, uuid_ts };
        let data = serde_json::value::to_raw_value(&out)
            .expect("string keys and raw or string values always serialise");
        // The same walk the serialiser made, measuring instead of writing. serde_json's compact form is
        // `{"key":value,...}`; keys are escaped as JSON strings, values written byte for byte.
        let (mut id, mut received_at, mut has_array) = (None, None, false);
        let mut at = 1; // `{`
        for (i, (key, value)) in out.fields().enumerate() {
            at += usize::from(i > 0) + escaped_len(key) + 1; // `,` key `:`
            let span = at..at + value.len();
            has_array |= value.starts_with('[');
            if key == ID {
                id = Some(span.clone());
            } else if key == RECEIVED_AT {
                received_at = Some(span.clone());
            }
            at = span.end;
        }
        debug_assert_eq!(at + 1, data.get().len(), "measured {}", data.get());
        Self {
            data,
            id,
            received_at,
            has_array,
        }
    }
}

/// What [`Row::build`] serialises.
struct Output<'e, 'a> {
    entries: &'e Entries<'a>,
    uuid_ts: Option<&'e UploadTime>,
}

/// One value of the output row: as read, or the upload time.
#[derive(Clone, Copy)]
enum Value<'e> {
    Raw(&'e RawValue),
    Time(&'e UploadTime),
}

impl<'e> Value<'e> {
    /// The value's text as written.
    fn text(self) -> &'e str {
        match self {
            Value::Raw(raw) => raw.get(),
            Value::Time(time) => time.as_json(),
        }
    }
}

impl Output<'_, '_> {
    /// The row's fields in the order written, values as their text.
    fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values().map(|(key, value)| (key, value.text()))
    }

    fn values(&self) -> impl Iterator<Item = (&str, Value<'_>)> {
        let uuid_ts = self.uuid_ts;
        let read = self.entries.0.iter().map(move |(key, raw)| {
            let value = match uuid_ts {
                Some(time) if key == UUID_TS => Value::Time(time),
                _ => Value::Raw(raw),
            };
            (key.as_ref(), value)
        });
        let appended = uuid_ts
            .filter(|_| !self.entries.0.iter().any(|(key, _)| key == UUID_TS))
            .map(|time| (UUID_TS, Value::Time(time)));
        read.chain(appended)
    }
}

impl Serialize for Output<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self.values() {
            match value {
                Value::Raw(raw) => map.serialize_entry(key, raw)?,
                Value::Time(time) => map.serialize_entry(key, time)?,
            }
        }
        map.end()
    }
}

/// The length of `key` written as a JSON string, quotes included.
fn escaped_len(key: &str) -> usize {
    // serde_json escapes only quotes, backslashes and control characters; keys rarely hold any.
    if key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        key.len() + 2
    } else {
        serde_json::to_string(key).map_or(key.len() + 2, |s| s.len())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value};
    use time::macros::datetime;

    use super::{Entries, Row};
    use crate::{UploadTime, raw::fields_of_str};

    fn time() -> UploadTime {
        UploadTime::new(datetime!(2024-01-02 03:04:05.678 UTC))
    }

    fn build(data: &str, uuid_ts: bool) -> Row {
        let entries: Entries<'_> = serde_json::from_str(data).unwrap();
        Row::build(&entries, uuid_ts.then(time).as_ref())
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
        assert_eq!(row.data.get(), r#"{"A":[1, 2],"ID":"x","A":{ "b" : 1 }}"#);
        assert_eq!(&row.data.get()[row.id.unwrap()], r#""x""#);
        assert!(row.has_array);
        assert_eq!(row.received_at, None);
    }

    #[test]
    fn uuid_ts_is_set_in_place_or_appended() {
        assert_eq!(
            build(r#"{"UUID_TS":{"old":1},"B":2,"UUID_TS":3}"#, true)
                .data
                .get(),
            r#"{"UUID_TS":"2024-01-02T03:04:05.678Z","B":2,"UUID_TS":"2024-01-02T03:04:05.678Z"}"#
        );
        assert_eq!(
            build("{ }", true).data.get(),
            r#"{"UUID_TS":"2024-01-02T03:04:05.678Z"}"#
        );
        assert_eq!(
            build(r#"{"UUID_TS":1}"#, false).data.get(),
            r#"{"UUID_TS":1}"#
        );
    }

    #[test]
    fn escaped_keys_are_measured_as_written() {
        let row = build(
            r#"{"\u0041\n":1,"I\u0044":"i","RECEIVED_AT":"r","UUID_TS":0}"#,
            true,
        );
        assert_eq!(&row.data.get()[row.id.clone().unwrap()], r#""i""#);
        assert_eq!(&row.data.get()[row.received_at.unwrap()], r#""r""#);
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
            let text = row.data.get();

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
