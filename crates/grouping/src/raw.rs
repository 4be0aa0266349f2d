//! A shallow walk over the top-level fields of a JSON object that serde_json has already validated.
//!
//! Rows travel as raw bytes; the rules only need a few top-level values (`ID`, `RECEIVED_AT`, `UUID_TS`,
//! mismatched columns), so this finds their byte ranges without building a tree. It relies on its input
//! being valid JSON (a [`RawValue`] always is) and stops early, never panics, on anything else.

use std::{borrow::Cow, ops::Range};

use memchr::memchr2;
use serde_json::value::RawValue;

/// One top-level field of a JSON object: its key and the raw text of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    key: &'a str,
    escaped: bool,
    /// The value's raw JSON text, exactly as in the object.
    pub value: &'a str,
    /// Where [`Field::value`] lies in the object's text.
    pub value_span: Range<usize>,
}

impl<'a> Field<'a> {
    /// The key, with JSON escapes decoded.
    #[must_use]
    pub fn name(&self) -> Cow<'a, str> {
        if self.escaped {
            // Valid JSON string contents always decode; fall back to the raw text rather than panic.
            let quoted = format!("\"{}\"", self.key);
            serde_json::from_str::<String>(&quoted).map_or(Cow::Borrowed(self.key), Cow::Owned)
        } else {
            Cow::Borrowed(self.key)
        }
    }

    /// Whether the key is `name` (escapes decoded).
    #[must_use]
    pub fn is(&self, name: &str) -> bool {
        if self.escaped {
            self.name() == name
        } else {
            self.key == name
        }
    }
}

/// The top-level fields of `object`, in order; nothing when it is not an object.
///
/// ```
/// use serde_json::value::RawValue;
/// use snowpipe_grouping::raw::fields;
///
/// let row = RawValue::from_string(r#"{"ID": "a1", "N": [1, {"x": "}"}]}"#.to_owned()).unwrap();
/// let found: Vec<_> = fields(&row).map(|f| (f.name().into_owned(), f.value)).collect();
/// assert_eq!(found, [("ID".to_owned(), r#""a1""#), ("N".to_owned(), r#"[1, {"x": "}"}]"#)]);
/// ```
#[must_use]
pub fn fields(object: &RawValue) -> Fields<'_> {
    fields_of_str(object.get())
}

/// [`fields`] over text the caller knows to be valid JSON, such as an [`Event`](crate::Event)'s `data`; on
/// anything else it stops early, never panics.
#[must_use]
pub fn fields_of_str(text: &str) -> Fields<'_> {
    let bytes = text.as_bytes();
    let start = skip_ws(bytes, 0);
    let pos = match bytes.get(start) {
        Some(b'{') => Some(start + 1),
        _ => None,
    };
    Fields { text, pos }
}

/// Iterator over the top-level fields of a JSON object; see [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    text: &'a str,
    // `None` once the object's end (or something unexpected) has been reached.
    pos: Option<usize>,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let field = self.step();
        if field.is_none() {
            self.pos = None;
        }
        field
    }
}

impl<'a> Fields<'a> {
    fn step(&mut self) -> Option<Field<'a>> {
        let bytes = self.text.as_bytes();
        let mut i = skip_ws(bytes, self.pos?);
        if *bytes.get(i)? == b',' {
            i = skip_ws(bytes, i + 1);
        }
        if *bytes.get(i)? != b'"' {
            return None; // `}`: the end of the object
        }
        let key_end = skip_string(bytes, i)?;
        let key = self.text.get(i + 1..key_end - 1)?;
        i = skip_ws(bytes, key_end);
        if *bytes.get(i)? != b':' {
            return None;
        }
        let value_start = skip_ws(bytes, i + 1);
        let value_end = skip_value(bytes, value_start)?;
        self.pos = Some(value_end);
        Some(Field {
            key,
            escaped: key.as_bytes().contains(&b'\\'),
            value: self.text.get(value_start..value_end)?,
            value_span: value_start..value_end,
        })
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(i) {
        i += 1;
    }
    i
}

/// From the opening quote at `i`, the index just past the closing quote.
fn skip_string(bytes: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        i += memchr2(b'"', b'\\', bytes.get(i..)?)?;
        if bytes[i] == b'\\' {
            i += 2;
        } else {
            return Some(i + 1);
        }
    }
}

/// From the first byte of a value at `i`, the index just past it.
fn skip_value(bytes: &[u8], mut i: usize) -> Option<usize> {
    match *bytes.get(i)? {
        b'"' => skip_string(bytes, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match *bytes.get(i)? {
                    b'"' => {
                        i = skip_string(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            // A number, `true`, `false` or `null`: runs to the next delimiter.
            while let Some(b) = bytes.get(i) {
                if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                i += 1;
            }
            Some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::fields_of_str;

    fn collect(text: &str) -> Vec<(String, String)> {
        fields_of_str(text)
            .map(|f| (f.name().into_owned(), f.value.to_owned()))
            .collect()
    }

    #[test]
    fn empty_objects_and_non_objects_have_no_fields() {
        assert!(collect("{}").is_empty());
        assert!(collect(" { } ").is_empty());
        assert!(collect("[1,2]").is_empty());
        assert!(collect("\"x\"").is_empty());
    }

    #[test]
    fn whitespace_escapes_and_nesting() {
        let text = r#" { "A" : 1 , "B\"q" :"x\\\"}" ,"C":{"d":[1,"]"]},"D":true,"E":-1.5e3 } "#;
        assert_eq!(
            collect(text),
            vec![
                ("A".to_owned(), "1".to_owned()),
                ("B\"q".to_owned(), r#""x\\\"}""#.to_owned()),
                ("C".to_owned(), r#"{"d":[1,"]"]}"#.to_owned()),
                ("D".to_owned(), "true".to_owned()),
                ("E".to_owned(), "-1.5e3".to_owned()),
            ]
        );
        let escaped_key = r#"{"I\u0044":1}"#;
        let f = fields_of_str(escaped_key).next().unwrap();
        assert!(f.is("ID"));
        assert!(!f.is("I"));
    }

    #[test]
    fn spans_point_at_the_values() {
        let text = r#"{"A":[1, 2],"B":null}"#;
        for f in fields_of_str(text) {
            assert_eq!(&text[f.value_span.clone()], f.value);
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn agrees_with_serde_json(map in prop::collection::btree_map(".{0,8}", arb_json(), 0..6), pretty in any::<bool>()) {
            let object = Value::Object(map.clone().into_iter().collect::<Map<_, _>>());
            let text = if pretty { serde_json::to_string_pretty(&object).unwrap() } else { object.to_string() };
            // Compare values parsed from the same digits, since float parsing need not round-trip exactly.
            let found: Vec<(String, Value)> = fields_of_str(&text)
                .map(|f| (f.name().into_owned(), serde_json::from_str(f.value).unwrap()))
                .collect();
            let expected: Vec<(String, Value)> = map
                .into_iter()
                .map(|(k, v)| (k, serde_json::from_str(&v.to_string()).unwrap()))
                .collect();
            prop_assert_eq!(found, expected);
        }
    }
}
