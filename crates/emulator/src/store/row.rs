//! Rows as the emulator keeps them, buffered and committed: each a byte string of its normalised
//! values tagged with their columns' indexes. The rows of one insert are written one after another into
//! one block, shared with the table schema they were validated against. A row kept as a
//! `serde_json::Map` took about 1 KB in a dozen allocations (and the page faults of 200 MB for the
//! benchmark); this takes its payload plus a few bytes, and an insert of 10 000 rows allocates once
//! rather than 10 000 times. Rows are turned back into JSON only when someone inspects them.
//!
//! A block is freed when its last row is: a table that drops its oldest rows past its bound may keep
//! part of one block more than it shows.
//!
//! The encoding is private to this module and exact: numbers keep their kind (unsigned, negative,
//! float) and bits, so an inspected row equals the `Value`s validation produced.

use std::{fmt, sync::Arc};

use serde_json::{Map, Number, Value};

use super::{field::Field, table_schema::TableSchema};

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UNSIGNED: u8 = 3;
const NEGATIVE: u8 = 4;
const FLOAT: u8 = 5;
const STRING: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;

/// A normalised row: values by column of its block's schema; columns not given are absent (not null).
#[derive(Clone)]
pub(crate) struct Row {
    block: Arc<Block>,
    start: usize,
    end: usize,
}

/// The rows of one insert, back to back.
struct Block {
    schema: Arc<TableSchema>,
    data: Box<[u8]>,
}

impl Row {
    /// The row as a JSON object keyed by column name, as the inspection API shows it.
    pub(crate) fn to_json(&self) -> Value {
        let mut map = Map::new();
        let mut r = Reader {
            data: self
                .block
                .data
                .get(self.start..self.end)
                .unwrap_or_default(),
            pos: 0,
        };
        while r.pos < r.data.len() {
            let (Some(column), Some(value)) = (r.len(), r.value()) else {
                // Only this module writes rows, so this is unreachable; stopping beats panicking.
                break;
            };
            if let Some(c) = self.block.schema.columns.get(column) {
                map.insert(c.name.clone(), value);
            }
        }
        Value::Object(map)
    }

    /// A row from a JSON object keyed by exact column names, for tests.
    #[cfg(test)]
    pub(crate) fn from_json(schema: &Arc<TableSchema>, object: &Value) -> Self {
        let mut w = RowWriter::default();
        for (name, value) in object.as_object().expect("an object") {
            let column = schema
                .columns
                .iter()
                .position(|c| c.name == *name)
                .expect("a column of the schema");
            w.push(column, &Field::from(value));
        }
        w.end_row();
        w.finish(schema).pop().expect("one row")
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Row({})", self.to_json())
    }
}

/// Writes rows one after another into one buffer.
#[derive(Default)]
pub(crate) struct RowWriter {
    buf: Vec<u8>,
    /// Where the row being written starts.
    row_start: usize,
    /// Where each ended row ends.
    ends: Vec<usize>,
}

impl RowWriter {
    /// Forgets what was pushed since the last row ended.
    pub(crate) fn clear(&mut self) {
        self.buf.truncate(self.row_start);
    }

    /// Forgets every row.
    pub(crate) fn discard(&mut self) {
        self.buf.clear();
        self.ends.clear();
        self.row_start = 0;
    }

    /// Adds the value of column `column` (an index into the schema the rows are finished with).
    pub(crate) fn push(&mut self, column: usize, value: &Field<'_>) {
        put_len(&mut self.buf, column);
        match value {
            Field::Null => self.buf.push(NULL),
            Field::Bool(b) => self.buf.push(if *b { TRUE } else { FALSE }),
            Field::Number(n) => put_number(&mut self.buf, n),
            Field::Str(s) => put_str(&mut self.buf, STRING, s),
            Field::Joined(a, b) => {
                self.buf.push(STRING);
                put_len(&mut self.buf, a.len() + b.len());
                self.buf.extend_from_slice(a.as_bytes());
                self.buf.extend_from_slice(b.as_bytes());
            }
            Field::Json(v) => put_value(&mut self.buf, v),
        }
    }

    /// Ends the row pushed so far; the next push starts another.
    pub(crate) fn end_row(&mut self) {
        self.row_start = self.buf.len();
        self.ends.push(self.row_start);
    }

    /// The rows ended so far, sharing one allocation with `schema`; the writer starts afresh.
    pub(crate) fn finish(&mut self, schema: &Arc<TableSchema>) -> Vec<Row> {
        self.clear();
        let block = Arc::new(Block {
            schema: Arc::clone(schema),
            data: std::mem::take(&mut self.buf).into_boxed_slice(),
        });
        let mut start = 0;
        let rows = self
            .ends
            .drain(..)
            .map(|end| {
                let row = Row {
                    block: Arc::clone(&block),
                    start,
                    end,
                };
                start = end;
                row
            })
            .collect();
        self.row_start = 0;
        rows
    }
}

/// LEB128: lengths and column indexes are nearly always one byte.
fn put_len(buf: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        buf.push(u8::try_from(n & 0x7f).unwrap_or(0) | 0x80);
        n >>= 7;
    }
    buf.push(u8::try_from(n).unwrap_or(0));
}

fn put_str(buf: &mut Vec<u8>, tag: u8, s: &str) {
    buf.push(tag);
    put_len(buf, s.len());
    buf.extend_from_slice(s.as_bytes());
}

fn put_number(buf: &mut Vec<u8>, n: &Number) {
    if let Some(u) = n.as_u64() {
        buf.push(UNSIGNED);
        buf.extend_from_slice(&u.to_le_bytes());
    } else if let Some(i) = n.as_i64() {
        buf.push(NEGATIVE);
        buf.extend_from_slice(&i.to_le_bytes());
    } else {
        buf.push(FLOAT);
        buf.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_bits().to_le_bytes());
    }
}

fn put_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => buf.push(NULL),
        Value::Bool(b) => buf.push(if *b { TRUE } else { FALSE }),
        Value::Number(n) => put_number(buf, n),
        Value::String(s) => put_str(buf, STRING, s),
        Value::Array(items) => {
            buf.push(ARRAY);
            put_len(buf, items.len());
            for item in items {
                put_value(buf, item);
            }
        }
        Value::Object(map) => {
            buf.push(OBJECT);
            put_len(buf, map.len());
            for (k, item) in map {
                put_len(buf, k.len());
                buf.extend_from_slice(k.as_bytes());
                put_value(buf, item);
            }
        }
    }
}

/// Reads what the writer wrote; `None` on anything else.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn word(&mut self) -> Option<[u8; 8]> {
        self.bytes(8)?.try_into().ok()
    }

    fn len(&mut self) -> Option<usize> {
        let mut n = 0usize;
        for shift in (0..usize::BITS).step_by(7) {
            let b = self.byte()?;
            n |= usize::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn string(&mut self) -> Option<String> {
        let n = self.len()?;
        std::str::from_utf8(self.bytes(n)?).ok().map(str::to_owned)
    }

    fn value(&mut self) -> Option<Value> {
        Some(match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            UNSIGNED => Value::from(u64::from_le_bytes(self.word()?)),
            NEGATIVE => Value::from(i64::from_le_bytes(self.word()?)),
            FLOAT => Value::Number(Number::from_f64(f64::from_bits(u64::from_le_bytes(
                self.word()?,
            )))?),
            STRING => Value::String(self.string()?),
            ARRAY => {
                let n = self.len()?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.value()?);
                }
                Value::Array(items)
            }
            OBJECT => {
                let n = self.len()?;
                let mut map = Map::new();
                for _ in 0..n {
                    let k = self.string()?;
                    map.insert(k, self.value()?);
                }
                Value::Object(map)
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::{table_schema::Column, types::ColumnType};

    fn schema(names: &[&str]) -> Arc<TableSchema> {
        Arc::new(TableSchema {
            columns: names
                .iter()
                .map(|n| Column {
                    name: (*n).to_owned(),
                    ty: ColumnType::Variant,
                    nullable: true,
                })
                .collect(),
        })
    }

    #[test]
    fn round_trips_every_kind_of_value_exactly() {
        let many: Vec<String> = (0..300).map(|i| format!("C{i}")).collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        let s = schema(&names);
        let long = "é".repeat(200);
        let row = json!({
            "C0": null, "C1": true, "C2": false, "C3": u64::MAX, "C4": i64::MIN, "C5": -1,
            "C6": 0.1 + 0.2, "C7": 5.0, "C8": "", "C9": long, "C10": [1, [2, {"a": null}], "x"],
            "C11": {"": 1, "\"q\"": {"n": -2.5e-300}}, "C299": "far column",
        });
        let stored = Row::from_json(&s, &row);
        assert_eq!(stored.to_json(), row);
        // Number kinds survive: 5.0 stays a float, -1 a negative integer.
        let back = stored.to_json();
        assert!(back["C7"].is_f64() && back["C5"].is_i64() && back["C3"].is_u64());
        assert_eq!(format!("{stored:?}"), format!("Row({row})"));
    }

    #[test]
    fn rows_of_one_block_stay_apart() {
        let s = schema(&["A", "B"]);
        let mut w = RowWriter::default();
        w.push(1, &Field::Str("x".into()));
        w.clear();
        w.push(0, &Field::Str("kept".into()));
        w.push(1, &Field::Joined("2024-05-12T04:36:00", "Z"));
        w.end_row();
        w.end_row();
        w.push(1, &Field::Number(7.into()));
        w.end_row();
        // Not ended: left out.
        w.push(0, &Field::Bool(true));
        let rows = w.finish(&s);
        let json: Vec<Value> = rows.iter().map(Row::to_json).collect();
        assert_eq!(
            json,
            [
                json!({"A": "kept", "B": "2024-05-12T04:36:00Z"}),
                json!({}),
                json!({"B": 7})
            ]
        );
        // A row outlives its siblings and the writer, which starts afresh.
        let last = rows[2].clone();
        drop(rows);
        assert!(w.finish(&s).is_empty());
        w.push(0, &Field::Null);
        w.end_row();
        w.discard();
        assert!(w.finish(&s).is_empty());
        assert_eq!(last.to_json(), json!({"B": 7}));
    }

    #[test]
    fn damaged_data_stops_decoding_without_panicking() {
        let s = schema(&["A"]);
        let row = |data: &[u8], end| Row {
            block: Arc::new(Block {
                schema: Arc::clone(&s),
                data: data.into(),
            }),
            start: 0,
            end,
        };
        for data in [
            &[0u8, STRING, 5, b'a'][..],
            &[0, 99],
            &[0x80],
            &[0, FLOAT, 1],
        ] {
            assert_eq!(row(data, data.len()).to_json(), json!({}));
        }
        assert_eq!(row(&[5, TRUE], 2).to_json(), json!({}), "unknown column");
        assert_eq!(
            row(&[0, TRUE], 3).to_json(),
            json!({}),
            "range past the end"
        );
    }
}
