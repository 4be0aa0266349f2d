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
    de::{DeserializeSeed, MapAccess, Visitor},
};

use super::{
    catalog::{Catalog, TableRef},
    field::{Field, Key},
    row::{Row, RowWriter},
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
    /// The rejected rows' indexes among the request's lines.
    pub(crate) rejected_rows: Vec<usize>,
}

/// Distinct keys remembered per request (see `sidecar`'s key resolver for why a request's keys are
/// resolved once); past this, keys are resolved one by one.
const MAX_REMEMBERED: usize = 256;

/// An append's rows converted when they arrived, against the table's schema of that moment, outside the
/// emulator's lock. The commit lands them as they are if the table still has that very schema (DDL
/// always gives a table a new one) and no fault rejects rows; otherwise it converts the rows again, as
/// Snowflake checks rows against the table as it is at commit.
pub(crate) struct Converted {
    schema: Arc<TableSchema>,
    rows: Vec<Row>,
    landed: Landed,
    /// The first line that is not a JSON object, if any.
    pub(crate) unreadable: Option<usize>,
}

impl Converted {
    /// Converts the `lines` of `text` against `schema`, which must be of a table without schema evolution
    /// (evolution changes the schema as rows are read: those rows are converted at commit only).
    pub(crate) fn new(schema: Arc<TableSchema>, text: &str, lines: &[(usize, usize)]) -> Self {
        let mut unreadable = None;
        let (schema, rows, landed) =
            convert(schema, text, lines, &[], &mut unreadable, |_, _| None);
        Self {
            schema,
            rows,
            landed,
            unreadable,
        }
    }
}

impl Catalog {
    /// The schema an append's rows may be converted against before they commit (see [`Converted`]):
    /// `None` when the table is gone or evolves its schema at commit.
    pub(crate) fn landing_schema(&self, table: &TableRef) -> Option<Arc<TableSchema>> {
        let t = self.table(table)?;
        (!t.schema_evolution).then(|| Arc::clone(&t.schema))
    }

    /// Lands the NDJSON `lines` of `body` in `table` as one commit at `now_ms`; rows at the indexes in
    /// `reject` are rejected whatever they hold (a scripted fault). `converted`, the rows as converted
    /// when they were appended, is used when it still holds. `None` when the table no longer exists: its
    /// rows are lost with it.
    pub(crate) fn land(
        &mut self,
        table: &TableRef,
        body: &[u8],
        lines: &[(usize, usize)],
        reject: &[usize],
        converted: Option<Converted>,
        now_ms: i64,
    ) -> Option<Landed> {
        let max_rows = self.max_rows_per_table;
        let t = self.table_mut(table)?;
        if let Some(c) = converted
            && reject.is_empty()
            && c.unreadable.is_none()
            && !t.schema_evolution
            && Arc::ptr_eq(&c.schema, &t.schema)
        {
            t.append(c.rows, max_rows);
            return Some(c.landed);
        }
        // Appends checked the body is UTF-8: checked once here, strings need no check each (a
        // tenth of a commit's time when serde_json checked every string).
        let Ok(text) = std::str::from_utf8(body) else {
            let mut landed = Landed::default();
            for index in 0..lines.len() {
                landed.reject(index, format!("rowIndex:{index}, the body is not UTF-8"));
            }
            return Some(landed);
        };
        let evolves = t.schema_evolution;
        let (schema, evolved) = (&mut t.schema, &mut t.evolved);
        let (_, rows, landed) = convert(
            Arc::clone(schema),
            text,
            lines,
            reject,
            &mut None,
            |key, value| {
                if !evolves {
                    return None;
                }
                let name = key.to_uppercase();
                let mut next = (**schema).clone();
                next.columns.push(Column {
                    name: name.clone(),
                    ty: inferred_type(value),
                    nullable: true,
                });
                *schema = Arc::new(next);
                evolved.push((name, now_ms));
                Some(Arc::clone(schema))
            },
        );
        t.append(rows, max_rows);
        Some(landed)
    }
}

/// Converts each line to a row of `schema`, rejecting alone each row that cannot be stored and every
/// row at an index in `reject`. A key with no column is ignored, unless `evolve` adds one for it (and
/// answers the schema with it). Sets `unreadable` to the first line that is not a JSON object (rejected
/// like the others: appends refuse such lines, so only a commit of rows no append checked meets one).
fn convert(
    mut schema: Arc<TableSchema>,
    text: &str,
    lines: &[(usize, usize)],
    reject: &[usize],
    unreadable: &mut Option<usize>,
    mut evolve: impl FnMut(&str, &Field<'_>) -> Option<Arc<TableSchema>>,
) -> (Arc<TableSchema>, Vec<Row>, Landed) {
    let mut landed = Landed::default();
    let mut keys = Keys::default();
    let mut writer = RowWriter::default();
    let mut pairs: Vec<(Key<'_>, Field<'_>)> = Vec::new();
    let mut slots: Vec<Option<Field<'_>>> = Vec::new();
    for (index, &(start, end)) in lines.iter().enumerate() {
        let line = text.get(start..end).unwrap_or_default();
        pairs.clear();
        let mut de = serde_json::Deserializer::from_str(line);
        let read = PairsSeed(&mut pairs)
            .deserialize(&mut de)
            .and_then(|()| de.end());
        if let Err(e) = read {
            unreadable.get_or_insert(index);
            landed.reject(
                index,
                format!("rowIndex:{index}, the row is not a JSON object: {e}"),
            );
            continue;
        }
        if reject.contains(&index) {
            landed.reject(index, format!(
                "The given row cannot be converted to the internal format: rejected by a scripted fault, rowIndex:{index}"
            ));
            continue;
        }
        slots.clear();
        slots.resize(schema.columns.len(), None);
        for (key, value) in pairs.drain(..) {
            let column = match keys.resolve(&schema, &key.0) {
                Some(c) => c,
                None => match evolve(&key.0, &value) {
                    Some(next) => {
                        schema = next;
                        // Keys that named nothing may name the new column now.
                        keys = Keys::default();
                        slots.push(None);
                        schema.columns.len() - 1
                    }
                    None => continue,
                },
            };
            // As in a JSON object read whole, the last of two spellings of one column wins.
            slots[column] = Some(value);
        }
        match write_row(&schema, &slots, index, &mut writer) {
            Ok(()) => {
                writer.end_row();
                landed.inserted += 1;
            }
            Err(message) => {
                writer.clear();
                landed.reject(index, message);
            }
        }
    }
    let rows = writer.finish(&schema);
    (schema, rows, landed)
}

impl Landed {
    fn reject(&mut self, index: usize, message: String) {
        self.rejected += 1;
        self.rejected_rows.push(index);
        self.last_error = Some(message);
    }
}

/// Writes one row's values, converted to their columns' types, into `writer`: every NOT NULL column
/// given and not null, every value convertible. On an error the message names the first problem, as
/// Snowflake's `last_error_message` does, and the caller forgets what was written of the row.
fn write_row(
    schema: &TableSchema,
    slots: &[Option<Field<'_>>],
    index: usize,
    writer: &mut RowWriter,
) -> Result<(), String> {
    let missing = |(c, v): &(&Column, &Option<Field<'_>>)| {
        !c.nullable && v.as_ref().is_none_or(Field::is_null)
    };
    if schema.columns.iter().zip(slots).any(|p| missing(&p)) {
        let nulls: Vec<&str> = schema
            .columns
            .iter()
            .zip(slots)
            .filter(missing)
            .map(|(c, _)| c.name.as_str())
            .collect();
        return Err(format!(
            "The given row cannot be converted to the internal format: Not-nullable columns with null values: {nulls:?}, rowIndex:{index}"
        ));
    }
    for (i, (column, value)) in schema.columns.iter().zip(slots).enumerate() {
        match value {
            None => {}
            Some(Field::Null) => writer.push(i, &Field::Null),
            Some(v) => match column.ty.coerce(v) {
                Ok(converted) => writer.push(i, &converted),
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
    Ok(())
}

/// Resolves row keys to columns, remembering each distinct key of a request: a request's rows
/// repeat the same few keys, nearly always in the same order, so the next key is first looked for
/// right after the last one found.
#[derive(Default)]
struct Keys {
    known: Vec<(Box<str>, Option<usize>)>,
    next: usize,
}

impl Keys {
    /// The column a key names: the column of that exact name, else the first whose name matches
    /// ignoring case (`MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE`).
    fn resolve(&mut self, schema: &TableSchema, key: &str) -> Option<usize> {
        if let Some((k, column)) = self.known.get(self.next)
            && **k == *key
        {
            self.next += 1;
            return *column;
        }
        if let Some(i) = self.known.iter().position(|(k, _)| **k == *key) {
            self.next = i + 1;
            return self.known[i].1;
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
        if self.known.len() < MAX_REMEMBERED {
            self.known.push((key.into(), column));
            self.next = self.known.len();
        }
        column
    }
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

/// Reads one NDJSON line, a JSON object, into its entries in the order given (strings borrowed where
/// they can be), into a vector reused from line to line.
struct PairsSeed<'a, 'de>(&'a mut Vec<(Key<'de>, Field<'de>)>);

impl<'de> DeserializeSeed<'de> for PairsSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PairsSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(entry) = map.next_entry::<Key<'de>, Field<'de>>()? {
            self.0.push(entry);
        }
        Ok(())
    }
}

/// A cheap check that a line is one JSON object, done when rows are appended (the conversion waits
/// for the commit): `Err` with serde_json's message otherwise.
pub(crate) fn check_object(line: &str) -> Result<(), String> {
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
    serde_json::from_str::<Object>(line)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Splits an NDJSON body into its lines: each ends in `\n`, optionally preceded by `\r`; the last
/// may lack its `\n`. Answers `(start, end)` byte ranges without the line ends.
pub(crate) fn split_lines(body: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', body) {
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
        c.land(t, body.as_bytes(), &lines, reject, None, 7).unwrap()
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

    /// Lands `body` through the append-time conversion: converted against the table as it is now, then
    /// `between` runs (DDL between the append and its commit), then the commit.
    fn land_converted(
        c: &mut Catalog,
        t: &TableRef,
        body: &str,
        between: impl FnOnce(&mut Catalog),
    ) -> Landed {
        let lines = split_lines(body.as_bytes());
        let schema = c.landing_schema(t).unwrap();
        let converted = Converted::new(schema, body, &lines);
        between(c);
        c.land(t, body.as_bytes(), &lines, &[], Some(converted), 7)
            .unwrap()
    }

    #[test]
    fn rows_converted_on_arrival_land_as_a_commit_would_convert_them() {
        let body = concat!(
            "{\"id\": \"a\", \"n\": \"5\", \"MIXED\": true, \"extra\": 1}\n",
            "{\"ID\": \"toolong\"}\r\n",
            "{\"ID\": null}\n",
            "{\"ID\": \"b\", \"N\": \"x\"}\n",
            "{\"ID\": \"c\", \"id\": \"d\"}",
        );
        let sql = "CREATE TABLE DB.PUBLIC.T (ID VARCHAR(3) NOT NULL, N INT, \"Mixed\" BOOLEAN)";
        let (mut at_commit, t) = catalog(sql);
        let (mut on_arrival, _) = catalog(sql);
        let expected = land(&mut at_commit, &t, body, &[]);
        let landed = land_converted(&mut on_arrival, &t, body, |_| {});
        assert_eq!(landed, expected);
        assert_eq!(on_arrival.rows(&t).unwrap(), at_commit.rows(&t).unwrap());
        assert_eq!(on_arrival.rows(&t).unwrap().len(), 2);
    }

    #[test]
    fn a_table_altered_after_the_append_converts_its_rows_again_at_commit() {
        let (mut c, t) = catalog("CREATE TABLE DB.PUBLIC.T (ID VARCHAR)");
        let body = "{\"ID\": \"a\", \"M\": 1}\n{\"ID\": \"b\"}\n";
        let landed = land_converted(&mut c, &t, body, |c| {
            c.execute(
                "ALTER TABLE DB.PUBLIC.T ADD COLUMN M INT NOT NULL",
                &SqlContext::default(),
            )
            .unwrap();
        });
        // On arrival both rows fitted; at commit M is required, and the second row lacks it.
        assert_eq!((landed.inserted, landed.rejected), (1, 1), "{landed:?}");
        assert_eq!(landed.rejected_rows, [1]);
        assert_eq!(c.rows(&t).unwrap(), [json!({"ID": "a", "M": 1})]);
    }

    #[test]
    fn tables_that_evolve_their_schema_convert_at_commit_only() {
        let (c, t) = catalog("CREATE TABLE DB.PUBLIC.T (ID INT) ENABLE_SCHEMA_EVOLUTION = TRUE");
        assert!(c.landing_schema(&t).is_none());
    }

    #[test]
    fn lines_and_objects() {
        assert_eq!(
            split_lines(b"a\r\nbc\n\nd"),
            [(0, 1), (3, 5), (6, 6), (7, 8)]
        );
        assert_eq!(split_lines(b""), []);
        assert_eq!(split_lines(b"x\n"), [(0, 1)]);
        assert!(check_object("{\"a\": [1, {}]}").is_ok());
        for bad in ["[1]", "1", "", "{\"a\": 1} {}", "{"] {
            assert!(check_object(bad).is_err(), "{bad}");
        }
    }
}
