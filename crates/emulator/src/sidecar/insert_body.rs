//! Reads an insert request body, `{"rows": [{...}, ...], "offset": "..."}`, in one pass, handing each row
//! to the validator as soon as it is read, so rows are never held as JSON maps (the emulator's main cost
//! in benchmarks used to be building and dropping them).
//!
//! It accepts and refuses exactly the bodies a derived `Deserialize` of
//! `{rows: Vec<Map<String, Value>>, offset}` did, with the same error messages: the visitors below
//! follow what serde's derive and serde_json's `Map` do.

use std::{fmt, sync::Arc};

use serde::{
    Deserialize, Deserializer,
    de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor},
};

use super::validate::{Pairs, Rejected, Validator};
use crate::store::{Field, Key, Row, TableSchema};

/// What an insert request said.
pub(crate) struct InsertBody {
    pub(crate) offset: String,
    pub(crate) row_count: usize,
    /// The validated rows, or `None` when there was no schema to validate them against.
    pub(crate) rows: Option<Result<Vec<Row>, Rejected>>,
}

/// Reads a body; with a schema, validates its rows against it. Errors are those of malformed JSON
/// or a body of the wrong shape (the client's 400), never of rows that do not fit.
pub(crate) fn parse(
    body: &[u8],
    schema: Option<&Arc<TableSchema>>,
) -> Result<InsertBody, serde_json::Error> {
    // Checking the whole body's UTF-8 at once is much cheaper than serde_json checking each string;
    // a body that fails is read as bytes, which finds the same error at the same place as before.
    match std::str::from_utf8(body) {
        Ok(text) => read(&mut serde_json::Deserializer::from_str(text), schema),
        Err(_) => read(&mut serde_json::Deserializer::from_slice(body), schema),
    }
}

fn read<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    schema: Option<&Arc<TableSchema>>,
) -> Result<InsertBody, serde_json::Error> {
    let out = Request { schema }.deserialize(&mut *de)?;
    de.end()?;
    Ok(out)
}

/// Offsets are strings on the wire; a number is taken as its text, being what the client meant.
#[derive(Deserialize)]
#[serde(untagged)]
enum OffsetToken {
    Text(String),
    Number(serde_json::Number),
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum FieldName {
    Rows,
    Offset,
    /// Unknown fields are skipped, as the derive did.
    #[serde(other)]
    Other,
}

const STRUCT: &str = "InsertRequest";
const FIELDS: &[&str] = &["rows", "offset"];

struct Request<'a> {
    schema: Option<&'a Arc<TableSchema>>,
}

impl<'de> DeserializeSeed<'de> for Request<'_> {
    type Value = InsertBody;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<InsertBody, D::Error> {
        d.deserialize_struct(STRUCT, FIELDS, self)
    }
}

fn body(rows: RowsRead, offset: OffsetToken) -> InsertBody {
    InsertBody {
        offset: match offset {
            OffsetToken::Text(s) => s,
            OffsetToken::Number(n) => n.to_string(),
        },
        row_count: rows.count,
        rows: rows.validated,
    }
}

impl<'de> Visitor<'de> for Request<'_> {
    type Value = InsertBody;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "struct {STRUCT}")
    }

    // A struct may come as an array of its fields: serde's derive takes that too.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<InsertBody, A::Error> {
        let expected = &"struct InsertRequest with 2 elements";
        let rows = seq
            .next_element_seed(Rows {
                schema: self.schema,
            })?
            .ok_or_else(|| A::Error::invalid_length(0, expected))?;
        let offset = seq
            .next_element::<OffsetToken>()?
            .ok_or_else(|| A::Error::invalid_length(1, expected))?;
        Ok(body(rows, offset))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<InsertBody, A::Error> {
        let (mut rows, mut offset) = (None, None);
        while let Some(name) = map.next_key::<FieldName>()? {
            match name {
                FieldName::Rows => {
                    if rows.is_some() {
                        return Err(A::Error::duplicate_field("rows"));
                    }
                    rows = Some(map.next_value_seed(Rows {
                        schema: self.schema,
                    })?);
                }
                FieldName::Offset => {
                    if offset.is_some() {
                        return Err(A::Error::duplicate_field("offset"));
                    }
                    offset = Some(map.next_value::<OffsetToken>()?);
                }
                FieldName::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let rows = rows.ok_or_else(|| A::Error::missing_field("rows"))?;
        let offset = offset.ok_or_else(|| A::Error::missing_field("offset"))?;
        Ok(body(rows, offset))
    }
}

struct RowsRead {
    count: usize,
    validated: Option<Result<Vec<Row>, Rejected>>,
}

/// The `rows` array: each row is validated as soon as it is read.
struct Rows<'a> {
    schema: Option<&'a Arc<TableSchema>>,
}

impl<'de> DeserializeSeed<'de> for Rows<'_> {
    type Value = RowsRead;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RowsRead, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Rows<'_> {
    type Value = RowsRead;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RowsRead, A::Error> {
        let mut validator = self.schema.map(Validator::new);
        // One buffer for every row's pairs: reading a row allocates only for escaped strings.
        let mut pairs = Pairs::new();
        let mut count = 0;
        while seq
            .next_element_seed(OneRow { pairs: &mut pairs })?
            .is_some()
        {
            count += 1;
            if let Some(v) = validator.as_mut() {
                v.row(&mut pairs);
            }
            pairs.clear();
        }
        Ok(RowsRead {
            count,
            validated: validator.map(Validator::finish),
        })
    }
}

/// One row object, read into `pairs` in the order given.
struct OneRow<'p, 'de> {
    pairs: &'p mut Pairs<'de>,
}

impl<'de> DeserializeSeed<'de> for OneRow<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OneRow<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key()? {
            let value: Field<'de> = map.next_value()?;
            self.pairs.push((key, value));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::store::{Column, ColumnType};

    /// The request as it used to be read, whose answers `parse` must give.
    #[derive(Deserialize)]
    #[allow(dead_code)] // Only read to compare outcomes.
    struct InsertRequest {
        rows: Vec<Map<String, Value>>,
        offset: OffsetToken,
    }

    fn schema() -> Arc<TableSchema> {
        Arc::new(TableSchema {
            columns: vec![Column {
                name: "ID".to_owned(),
                ty: ColumnType::Varchar { length: 10 },
                nullable: false,
            }],
        })
    }

    #[test]
    fn refuses_what_the_derive_refused_with_the_same_message() {
        let s = schema();
        for text in [
            "",
            "[]",
            "[[]]",
            "{}",
            r#"{"rows": []}"#,
            r#"{"offset": "1"}"#,
            r#"{"rows": [], "offset": "1", "rows": []}"#,
            r#"{"rows": [], "offset": "1", "offset": "2"}"#,
            r#"{"rows": {}, "offset": "1"}"#,
            r#"{"rows": null, "offset": "1"}"#,
            r#"{"rows": [1], "offset": "1"}"#,
            r#"{"rows": [null], "offset": "1"}"#,
            r#"{"rows": [[]], "offset": "1"}"#,
            r#"{"rows": [{"ID": }], "offset": "1"}"#,
            r#"{"rows": [{"ID": "a"}], "offset": true}"#,
            r#"{"rows": [{"ID": "a"}], "offset": "1"} x"#,
            r#"{"rows": [{"ID": "a"}], "offset": "1""#,
            r#"{"rows": [{"ID": "\ud800"}], "offset": "1"}"#,
            r#"[[{"ID": "a"}], "1", 3]"#,
            r#"{"rows": [{"ID": 1e999}], "offset": "1"}"#,
        ] {
            let want = serde_json::from_str::<InsertRequest>(text)
                .err()
                .map(|e| e.to_string());
            for schema in [Some(&s), None] {
                let got = parse(text.as_bytes(), schema).err().map(|e| e.to_string());
                assert_eq!(got, want, "{text}");
            }
        }
        // Bytes that are not UTF-8, in a string or outside one.
        for bytes in [
            &b"{\"rows\": [{\"ID\": \"a\xff\"}], \"offset\": \"1\"}"[..],
            b"{\"rows\": [{\"I\xc3D\": 1}], \"offset\": \"1\"}",
            b"{\"rows\": [], \"offset\": \"1\"}\xff",
            b"\xef\xbb\xbf{\"rows\": [], \"offset\": \"1\"}",
        ] {
            let want = serde_json::from_slice::<InsertRequest>(bytes)
                .err()
                .map(|e| e.to_string());
            assert!(want.is_some());
            let got = parse(bytes, Some(&s)).err().map(|e| e.to_string());
            assert_eq!(got, want, "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn accepts_what_the_derive_accepted() {
        let s = schema();
        for (text, offset, count) in [
            (
                r#"{"offset": 12, "extra": [1], "rows": [{"ID": "a"}, {"ID": "b"}]}"#,
                "12",
                2,
            ),
            (r#"{"rows": [], "offset": "-0"}"#, "-0", 0),
            (r#"[[{"ID": "a"}], "7"]"#, "7", 1),
            (r#"{"rows": [{}], "offset": 1.5}"#, "1.5", 1),
        ] {
            assert!(
                serde_json::from_str::<InsertRequest>(text).is_ok(),
                "{text}"
            );
            let got = parse(text.as_bytes(), Some(&s)).unwrap();
            assert_eq!((got.offset.as_str(), got.row_count), (offset, count));
            let unchecked = parse(text.as_bytes(), None).unwrap();
            assert_eq!(unchecked.row_count, count);
            assert!(unchecked.rows.is_none());
        }
        let got = parse(br#"{"rows": [{"id": "a\u00e9"}], "offset": "1"}"#, Some(&s)).unwrap();
        let rows = got.rows.unwrap().unwrap();
        assert_eq!(rows[0].to_json(), json!({"ID": "aé"}));
        let got = parse(br#"{"rows": [{}], "offset": "1"}"#, Some(&s)).unwrap();
        let rejected = got.rows.unwrap().unwrap_err();
        assert_eq!(
            rejected.errors[0].missing_not_null_col_names,
            Some(vec!["ID".to_owned()])
        );
    }
}
