//! One value of an insert row as read from the request body: like `serde_json::Value`, but a string
//! borrows from the body when it has no escapes, so reading a row allocates next to nothing. Column
//! types coerce from it (`ColumnType::coerce`) and the row store encodes it.

use std::{borrow::Cow, fmt};

use serde::{
    Deserialize, Deserializer,
    de::{MapAccess, SeqAccess, Visitor, value},
};
use serde_json::{Number, Value};

/// A JSON value with its strings borrowed where possible; arrays and objects are kept as `Value`
/// (only VARIANT, OBJECT and ARRAY columns take them, and the benchmark sends none).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'a, str>),
    /// A string made of a piece of the input and a fixed suffix. Only coercion makes these: a
    /// timestamp normalised to RFC 3339 in UTC is its input's text cut short plus `Z`, which this
    /// stores without allocating.
    Joined(&'a str, &'static str),
    /// An array or an object.
    Json(Cow<'a, Value>),
}

impl<'a> Field<'a> {
    /// A string field that owns its text (a value a column type formatted).
    pub(crate) fn owned(s: String) -> Self {
        Self::Str(Cow::Owned(s))
    }

    /// The same value, borrowing from `self` instead of copying.
    pub(crate) fn reborrow(&self) -> Field<'_> {
        match self {
            Self::Null => Field::Null,
            Self::Bool(b) => Field::Bool(*b),
            Self::Number(n) => Field::Number(n.clone()),
            Self::Str(s) => Field::Str(Cow::Borrowed(s)),
            Self::Joined(a, b) => Field::Joined(a, b),
            Self::Json(v) => Field::Json(Cow::Borrowed(v)),
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The value as a `serde_json::Value` (copies strings).
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Number(n) => Value::Number(n.clone()),
            Self::Str(s) => Value::String(s.clone().into_owned()),
            Self::Joined(a, b) => Value::String(format!("{a}{b}")),
            Self::Json(v) => v.clone().into_owned(),
        }
    }

    /// What kind of JSON value this is, for messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "boolean",
            Self::Number(_) => "number",
            Self::Str(_) | Self::Joined(..) => "string",
            Self::Json(v) => match **v {
                Value::Null => "null",
                Value::Bool(_) => "boolean",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            },
        }
    }
}

impl<'a> From<&'a Value> for Field<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => Self::Number(n.clone()),
            Value::String(s) => Self::Str(Cow::Borrowed(s)),
            Value::Array(_) | Value::Object(_) => Self::Json(Cow::Borrowed(v)),
        }
    }
}

/// As `Value` displays: compact JSON (messages quote values this way).
impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_value(), f)
    }
}

/// Mirrors `serde_json::Value`'s visitor case for case, so a body reads to the same values as before;
/// only strings differ, being borrowed when serde_json hands them out unescaped.
impl<'de> Deserialize<'de> for Field<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Field::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Field::Number(v.into()))
    }

    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Self::Value, E> {
        Number::deserialize(value::I128Deserializer::new(v)).map(Field::Number)
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Field::Number(v.into()))
    }

    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Self::Value, E> {
        Number::deserialize(value::U128Deserializer::new(v)).map(Field::Number)
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(v).map_or(Field::Null, Field::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Field::owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Field::owned(v))
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        Field::deserialize(deserializer)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(value::SeqAccessDeserializer::new(seq))
            .map(|v| Field::Json(Cow::Owned(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(value::MapAccessDeserializer::new(map))
            .map(|v| Field::Json(Cow::Owned(v)))
    }
}

/// A JSON object key, borrowed from the body when it has no escapes.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_like_value_and_borrows_plain_strings() {
        let text = r#"[null, true, -3, 18446744073709551615, 1.5, "plain", "esc\"aped\u00e9", [1, "a"], {"k": {"n": null}}]"#;
        let fields: Vec<Field<'_>> = serde_json::from_str(text).unwrap();
        let values: Vec<Value> = serde_json::from_str(text).unwrap();
        assert_eq!(
            fields.iter().map(Field::to_value).collect::<Vec<_>>(),
            values
        );
        assert!(matches!(fields[5], Field::Str(Cow::Borrowed("plain"))));
        assert!(matches!(&fields[6], Field::Str(Cow::Owned(s)) if s == "esc\"apedé"));
        let kinds: Vec<_> = fields.iter().map(Field::describe).collect();
        assert_eq!(
            kinds,
            [
                "null", "boolean", "number", "number", "number", "string", "string", "array",
                "object"
            ]
        );
    }

    #[test]
    fn displays_as_json() {
        let v = json!({"a": ["x\"y", 1.5, null]});
        assert_eq!(Field::from(&v).to_string(), v.to_string());
        assert_eq!(Field::Str(Cow::Borrowed("a\"b")).to_string(), r#""a\"b""#);
        assert_eq!(Field::from(&json!(7)).reborrow(), Field::Number(7.into()));
        let joined = Field::Joined("2024-05-12T04:36:00", "Z");
        assert_eq!(joined.to_value(), json!("2024-05-12T04:36:00Z"));
        assert_eq!(joined.reborrow(), joined);
        assert_eq!(joined.describe(), "string");
    }

    #[test]
    fn keys_borrow_unless_escaped() {
        let keys: Vec<Key<'_>> = serde_json::from_str(r#"["ID", "\"odd col\""]"#).unwrap();
        assert!(matches!(keys[0].0, Cow::Borrowed("ID")));
        assert!(matches!(&keys[1].0, Cow::Owned(s) if s == "\"odd col\""));
    }
}
