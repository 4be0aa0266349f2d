//! Rows of a REST append landed in their table at commit, as Snowflake's default pipe
//! (`MATCH_BY_COLUMN_NAME`) lands them: each row is checked against the table as it is at that moment,
//! not as it was when the rows were appended. Keys match columns by name, exactly or else
//! case-insensitively; a key with no column is ignored, unless the table has
//! `ENABLE_SCHEMA_EVOLUTION = TRUE`, which adds the column. A row with a value its column cannot take
//! (a failed conversion, too long, null or missing in a NOT NULL column) is rejected alone: the other
//! rows land.

use std::{fmt, sync::Arc};

use serde::{
    Deserialize, Deserializer,
    de::{MapAccess, Visitor},
};

use super::{
    catalog::{Catalog, TableRef},
    field::{Field, Key},
    row::RowWriter,
    table_schema::{Column, TableSchema},
    types::{ColumnType, MAX_VARCHAR},
};

/// What landing one request's rows did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Landed {
    /// Rows stored in the table.
    pub(crate) inserted: u64,
    /// Rows rejected.
    pub(crate) rejected: u64,
    /// Why the last rejected row was rejected.
    pub(crate) last_error: Option<String>,
}

/// Distinct keys remembered per request (see `sidecar`'s key resolver for why a request's keys are
/// resolved once); past this, keys are resolved one by one.
const MAX_REMEMBERED: usize = 256;

impl Catalog {
    /// Lands the NDJSON `lines` of `body` in `table` as one commit at `now_ms`; rows at the indexes in
    /// `reject` are rejected whatever they hold (a scripted fault). `None` when the table no longer
    /// exists: its rows are lost with it.
    pub(crate) fn land(
        &mut self,
        table: &TableRef,
        body: &[u8],
        lines: &[(usize, usize)],
        reject: &[usize],
        now_ms: i64,
    ) -> Option<Landed> {
        let max_rows = self.max_rows_per_table;
        let t = self.table_mut(table)?;
        let mut schema = Arc::clone(&t.schema);
        let mut keys: Vec<(Box<str>, Option<usize>)> = Vec::new();
        let mut writer = RowWriter::default();
        let mut landed = Landed::default();
        let mut slots: Vec<Option<Field<'_>>> = Vec::new();
        for (index, &(start, end)) in lines.iter().enumerate() {
            let line = body.get(start..end).unwrap_or_default();
            let pairs = match serde_json::from_slice::<Pairs<'_>>(line) {
                Ok(p) => p.0,
                // Appends checked every line was an object; a line that still does not read is
                // rejected alone rather than failing the commit.
                Err(e) => {
                    landed.reject(format!(
                        "rowIndex:{index}, the row is not a JSON object: {e}"
                    ));
                    continue;
                }
            };
            if reject.contains(&index) {
                landed.reject(format!(
                    "The given row cannot be converted to the internal format: rejected by a scripted fault, rowIndex:{index}"
                ));
                continue;
            }
            slots.clear();
            slots.resize(schema.columns.len(), None);
            for (key, value) in pairs {
                let column = match resolve(&mut keys, &schema, &key.0) {
                    Some(c) => c,
                    None if t.schema_evolution => {
                        let name = key.0.to_uppercase();
                        let mut next = (*schema).clone();
                        next.columns.push(Column {
                            name: name.clone(),
                            ty: inferred_type(&value),
                            nullable: true,
                        });
                        schema = Arc::new(next);
                        t.schema = Arc::clone(&schema);
                        t.evolved.push((name, now_ms));
                        // Keys that named nothing may name the new column now.
                        keys.clear();
                        slots.push(None);
                        schema.columns.len() - 1
                    }
                    None => continue,
                };
                // As in a JSON object read whole, the last of two spellings of one column wins.
                slots[column] = Some(value);
            }
            match convert_row(&schema, &slots, index) {
                Ok(values) => {
                    for (column, value) in values {
                        writer.push(column, &value);
                    }
                    writer.end_row();
                    landed.inserted += 1;
                }
                Err(message) => landed.reject(message),
            }
        }
        let rows = writer.finish(&schema);
        t.append(rows, max_rows);
        Some(landed)
    }
}

impl Landed {
    fn reject(&mut self, message: String) {
        self.rejected += 1;
        self.last_error = Some(message);
    }
}

/// Converts one row's values to their columns' types: every NOT NULL column given and not null,
/// every value convertible. The message names the first problem, as Snowflake's
/// `last_error_message` does.
fn convert_row<'v>(
    schema: &TableSchema,
    slots: &'v [Option<Field<'_>>],
    index: usize,
) -> Result<Vec<(usize, Field<'v>)>, String> {
    let nulls: Vec<&str> = schema
        .columns
        .iter()
        .zip(slots)
        .filter(|(c, v)| !c.nullable && v.as_ref().is_none_or(Field::is_null))
        .map(|(c, _)| c.name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(format!(
            "The given row cannot be converted to the internal format: Not-nullable columns with null values: {nulls:?}, rowIndex:{index}"
        ));
    }
    let mut out = Vec::with_capacity(slots.len());
    for (i, (column, value)) in schema.columns.iter().zip(slots).enumerate() {
        match value {
            None => {}
            Some(Field::Null) => out.push((i, Field::Null)),
            Some(v) => match column.ty.coerce(v) {
                Ok(converted) => out.push((i, converted)),
                Err(reason) => {
                    return Err(format!(
                        "The given row cannot be converted to the internal format due to invalid value: Value cannot be ingested into Snowflake column {} of type {}, rowIndex:{index}, reason: {reason}",
                        column.name,
                        column.ty.sql_name()
                    ));
                }
            },
        }
    }
    Ok(out)
}

/// The column a key names: the column of that exact name, else the first whose name matches
/// ignoring case (`MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE`). Answers are remembered per request.
fn resolve(
    known: &mut Vec<(Box<str>, Option<usize>)>,
    schema: &TableSchema,
    key: &str,
) -> Option<usize> {
    if let Some((_, column)) = known.iter().find(|(k, _)| **k == *key) {
        return *column;
    }
    let column = schema
        .columns
        .iter()
        .position(|c| c.name == key)
        .or_else(|| {
            let upper = key.to_uppercase();
            schema
                .columns
                .iter()
                .position(|c| c.name.to_uppercase() == upper)
        });
    if known.len() < MAX_REMEMBERED {
        known.push((key.into(), column));
    }
    column
}

/// The type schema evolution gives a new column, from the first value it sees.
fn inferred_type(value: &Field<'_>) -> ColumnType {
    match value {
        Field::Bool(_) => ColumnType::Boolean,
        Field::Number(n) if n.is_f64() => ColumnType::Float,
        Field::Number(_) => ColumnType::Number {
            precision: 38,
            scale: 0,
        },
        Field::Json(v) if v.is_array() => ColumnType::Array,
        Field::Json(v) if v.is_object() => ColumnType::Object,
        _ => ColumnType::Varchar {
            length: MAX_VARCHAR,
        },
    }
}

/// One NDJSON line: a JSON object's entries in the order given, strings borrowed where they can be.
struct Pairs<'de>(Vec<(Key<'de>, Field<'de>)>);

impl<'de> Deserialize<'de> for Pairs<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(PairsVisitor)
    }
}

struct PairsVisitor;

impl<'de> Visitor<'de> for PairsVisitor {
    type Value = Pairs<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs<'de>, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(entry) = map.next_entry::<Key<'de>, Field<'de>>()? {
            out.push(entry);
        }
        Ok(Pairs(out))
    }
}

/// A cheap check that a line is one JSON object, done when rows are appended (the conversion waits
/// for the commit): `Err` with serde_json's message otherwise.
pub(crate) fn check_object(line: &[u8]) -> Result<(), String> {
    struct IsObject;
    impl<'de> Visitor<'de> for IsObject {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(())
        }
    }
    struct Object;
    impl<'de> Deserialize<'de> for Object {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(IsObject).map(|()| Object)
        }
    }
    serde_json::from_slice::<Object>(line)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Splits an NDJSON body into its lines: each ends in `\n`, optionally preceded by `\r`; the last
/// may lack its `\n`. Answers `(start, end)` byte ranges without the line ends.
pub(crate) fn split_lines(body: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in memchr_iter(body) {
        let stop = if end > start && body[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        out.push((start, stop));
        start = end + 1;
    }
    if start < body.len() {
        out.push((start, body.len()));
    }
    out
}

fn memchr_iter(body: &[u8]) -> impl Iterator<Item = usize> + '_ {
    body.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
}

impl fmt::Debug for Pairs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, v)| (k.0.as_ref(), v)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::SqlContext;

    fn catalog(sql: &str) -> (Catalog, TableRef) {
        let mut c = Catalog::new(100);
        c.add_database("DB", Vec::new(), &[]);
        c.execute(sql, &SqlContext::default()).unwrap();
        let t = TableRef {
            database: "DB".to_owned(),
            schema: "PUBLIC".to_owned(),
            table: "T".to_owned(),
        };
        (c, t)
    }

    fn land(c: &mut Catalog, t: &TableRef, body: &str, reject: &[usize]) -> Landed {
        let lines = split_lines(body.as_bytes());
        c.land(t, body.as_bytes(), &lines, reject, 7).unwrap()
    }

    #[test]
    fn rows_land_alone_and_bad_rows_are_rejected_alone() {
        let (mut c, t) =
            catalog("CREATE TABLE DB.PUBLIC.T (ID VARCHAR(3) NOT NULL, N INT, \"Mixed\" BOOLEAN)");
        let body = concat!(
            "{\"id\": \"a\", \"n\": \"5\", \"MIXED\": true, \"extra\": 1}\n",
            "{\"ID\": \"toolong\"}\r\n",
            "{\"ID\": null}\n",
            "{\"N\": 1}\n",
            "{\"ID\": \"b\", \"N\": \"x\"}\n",
            "{\"ID\": \"c\", \"id\": \"d\"}",
        );
        let landed = land(&mut c, &t, body, &[]);
        assert_eq!((landed.inserted, landed.rejected), (2, 4));
        let msg = landed.last_error.unwrap();
        assert!(
            msg.contains("column N of type NUMBER(38,0)") && msg.contains("rowIndex:4"),
            "{msg}"
        );
        assert_eq!(
            c.rows(&t).unwrap(),
            [
                json!({"ID": "a", "N": 5, "Mixed": true}),
                json!({"ID": "d"})
            ]
        );
        let info = c.table_info(&t).unwrap();
        assert_eq!(
            info.columns.len(),
            3,
            "no schema evolution without the option"
        );
        let landed = land(&mut c, &t, "{\"ID\": \"e\"}\n{\"ID\": \"f\"}\n", &[0]);
        assert_eq!((landed.inserted, landed.rejected), (1, 1));
        assert!(landed.last_error.unwrap().contains("scripted fault"));
    }

    #[test]
    fn schema_evolution_adds_columns_at_commit() {
        let (mut c, t) =
            catalog("CREATE TABLE DB.PUBLIC.T (ID INT) ENABLE_SCHEMA_EVOLUTION = TRUE");
        assert!(c.table_info(&t).unwrap().enable_schema_evolution);
        let landed = land(
            &mut c,
            &t,
            "{\"ID\": 1, \"name\": \"x\", \"score\": 1.5}\n{\"ID\": 2, \"NAME\": \"y\", \"tags\": [1]}\n",
            &[],
        );
        assert_eq!((landed.inserted, landed.rejected), (2, 0));
        let cols: Vec<_> = c
            .table_info(&t)
            .unwrap()
            .columns
            .into_iter()
            .map(|c| (c.name, c.ty))
            .collect();
        assert_eq!(
            cols,
            [
                ("ID".to_owned(), "NUMBER(38,0)".to_owned()),
                ("NAME".to_owned(), "VARCHAR(16777216)".to_owned()),
                ("SCORE".to_owned(), "FLOAT".to_owned()),
                ("TAGS".to_owned(), "ARRAY".to_owned()),
            ]
        );
        assert_eq!(
            c.rows(&t).unwrap(),
            [
                json!({"ID": 1, "NAME": "x", "SCORE": 1.5}),
                json!({"ID": 2, "NAME": "y", "TAGS": [1]})
            ]
        );
    }

    #[test]
    fn lines_and_objects() {
        assert_eq!(
            split_lines(b"a\r\nbc\n\nd"),
            [(0, 1), (3, 5), (6, 6), (7, 8)]
        );
        assert_eq!(split_lines(b""), []);
        assert_eq!(split_lines(b"x\n"), [(0, 1)]);
        assert!(check_object(b"{\"a\": [1, {}]}").is_ok());
        for bad in [&b"[1]"[..], b"1", b"", b"{\"a\": 1} {}", b"{"] {
            assert!(
                check_object(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
