//! Decoding one line into its parts: a fast borrowed parse for good lines, and a slower walk that names
//! exactly what is wrong with a bad one.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, value::RawValue};

use crate::{
    LineProblem, Schema, WarehouseType, excerpt::excerpt, excerpt::excerpt_at, row::Entries,
};

/// The parts of a good line, borrowed from it.
pub(crate) struct Parts<'a> {
    pub(crate) job_id: i64,
    pub(crate) table: Cow<'a, str>,
    pub(crate) columns: Option<&'a RawValue>,
    pub(crate) data: Entries<'a>,
}

#[derive(Deserialize)]
struct LineDoc<'a> {
    #[serde(borrow)]
    message: MessageDoc<'a>,
    metadata: JobDoc,
}

#[derive(Deserialize)]
struct MessageDoc<'a> {
    #[serde(borrow)]
    metadata: MessageMetaDoc<'a>,
    #[serde(borrow)]
    data: Entries<'a>,
}

#[derive(Deserialize)]
struct MessageMetaDoc<'a> {
    #[serde(borrow)]
    table: Cow<'a, str>,
    #[serde(borrow, default)]
    columns: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct JobDoc {
    job_id: i64,
}

#[derive(Deserialize)]
struct JobOnlyDoc {
    metadata: JobDoc,
}

/// Decodes a line, or says what is wrong with it.
pub(crate) fn decode(line: &[u8]) -> Result<Parts<'_>, LineProblem> {
    let text = std::str::from_utf8(line).map_err(|e| LineProblem::NotUtf8 {
        at: e.valid_up_to(),
        excerpt: excerpt_at(line, e.valid_up_to()),
    })?;
    let fast = serde_json::from_str::<LineDoc<'_>>(text)
        .ok()
        .filter(|doc| {
            !doc.message.metadata.table.is_empty()
                && doc
                    .message
                    .metadata
                    .columns
                    .is_none_or(|c| c.get().starts_with('{') || c.get() == "null")
        });
    match fast {
        Some(doc) => Ok(Parts {
            job_id: doc.metadata.job_id,
            table: doc.message.metadata.table,
            columns: doc.message.metadata.columns.filter(|c| c.get() != "null"),
            data: doc.message.data,
        }),
        None => Err(diagnose(text)),
    }
}

/// The schema in a `columns` object.
pub(crate) fn parse_columns(raw: &RawValue) -> Result<Schema, LineProblem> {
    let entries: Vec<(Cow<'_, str>, &RawValue)> = serde_json::from_str::<Entries<'_>>(raw.get())
        .map_err(|e| LineProblem::WrongType {
            field: "message.metadata.columns".to_owned(),
            expected: "an object of column names to type names",
            found: e.to_string(),
        })?
        .0;
    let mut schema = Schema::new();
    for (column, ty) in entries {
        let Ok(name) = serde_json::from_str::<Cow<'_, str>>(ty.get()) else {
            return Err(LineProblem::WrongType {
                field: format!("message.metadata.columns.{}", excerpt(&column)),
                expected: "a type name string",
                found: excerpt(ty.get()),
            });
        };
        let ty = name
            .parse::<WarehouseType>()
            .map_err(|e| LineProblem::UnknownType {
                column: excerpt(&column),
                type_name: e.name,
            })?;
        schema.insert_if_absent(&column, ty);
    }
    Ok(schema)
}

/// Names the first thing wrong with a line the fast parse refused. Only bad lines come here, so it may
/// build a whole tree.
fn diagnose(text: &str) -> LineProblem {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            let at = e.column().saturating_sub(1);
            let mut message = e.to_string();
            if let Some(cut) = message.find(" at line ") {
                message.truncate(cut);
            }
            return LineProblem::BrokenJson {
                message,
                column: e.column(),
                excerpt: excerpt_at(text.as_bytes(), at),
            };
        }
    };
    let root = match object(&value, "line") {
        Ok(root) => root,
        Err(problem) => return problem,
    };
    let checks = || -> Result<(), LineProblem> {
        let message = object(field(root, "message", "message")?, "message")?;
        let meta = object(
            field(message, "metadata", "message.metadata")?,
            "message.metadata",
        )?;
        let table = field(meta, "table", "message.metadata.table")?;
        match table {
            Value::String(s) if s.is_empty() => return Err(LineProblem::EmptyTable),
            Value::String(_) => {}
            other => return Err(wrong("message.metadata.table", "a string", other)),
        }
        match meta.get("columns") {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(other) => return Err(wrong("message.metadata.columns", "an object", other)),
        }
        object(field(message, "data", "message.data")?, "message.data")?;
        let job = object(field(root, "metadata", "metadata")?, "metadata")?;
        let job_id = field(job, "job_id", "metadata.job_id")?;
        if job_id.as_i64().is_none() {
            let expected = if job_id.is_u64() {
                "an integer within 64 bits"
            } else {
                "an integer"
            };
            return Err(wrong("metadata.job_id", expected, job_id));
        }
        Ok(())
    };
    match checks() {
        Err(problem) => problem,
        // The fast parse and this walk disagree: report the parser's own words rather than nothing.
        Ok(()) => LineProblem::WrongType {
            field: "line".to_owned(),
            expected: "an event object",
            found: serde_json::from_str::<LineDoc<'_>>(text).err().map_or_else(
                || "an unreadable event".to_owned(),
                |e| excerpt(&e.to_string()),
            ),
        },
    }
}

fn field<'v>(
    object: &'v serde_json::Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'v Value, LineProblem> {
    match object.get(key) {
        None | Some(Value::Null) => Err(LineProblem::Missing {
            field: path.to_owned(),
        }),
        Some(value) => Ok(value),
    }
}

fn object<'v>(
    value: &'v Value,
    path: &str,
) -> Result<&'v serde_json::Map<String, Value>, LineProblem> {
    value
        .as_object()
        .ok_or_else(|| wrong(path, "an object", value))
}

fn wrong(path: &str, expected: &'static str, found: &Value) -> LineProblem {
    let kind = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    LineProblem::WrongType {
        field: path.to_owned(),
        expected,
        found: format!("{kind} ({})", excerpt(&found.to_string())),
    }
}

/// The job id of a line that may be broken: a proper parse first, then a textual search for
/// `"job_id": <integer>` (last match first, since `metadata` follows `message` in the files written).
pub(crate) fn recover_job_id(parts: &[&[u8]]) -> Option<i64> {
    if let [line] = parts
        && let Ok(doc) = serde_json::from_slice::<JobOnlyDoc>(line)
    {
        return Some(doc.metadata.job_id);
    }
    parts.iter().rev().find_map(|part| find_job_id(part))
}

fn find_job_id(text: &[u8]) -> Option<i64> {
    let finder = memchr::memmem::FinderRev::new(b"\"job_id\"");
    let mut end = text.len();
    while let Some(at) = finder.rfind(&text[..end]) {
        if let Some(id) = integer_after_colon(&text[at + 8..]) {
            return Some(id);
        }
        end = at;
    }
    None
}

fn integer_after_colon(text: &[u8]) -> Option<i64> {
    let text = text
        .trim_ascii_start()
        .strip_prefix(b":")?
        .trim_ascii_start();
    let len = text
        .iter()
        .enumerate()
        .take_while(|&(i, b)| b.is_ascii_digit() || (i == 0 && *b == b'-'))
        .count();
    let digits = std::str::from_utf8(&text[..len]).ok()?;
    // `1.5` or `1e3` is not a job id.
    if matches!(text.get(len), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{decode, find_job_id, parse_columns, recover_job_id};
    use crate::{LineProblem, WarehouseType};

    const GOOD: &str = r#"{"message":{"metadata":{"table":"TRACKS","columns":{"ID":"string","N":"int"}},"data":{"ID":"a1"}},"metadata":{"job_id":1001}}"#;

    fn problem(line: &str) -> LineProblem {
        match decode(line.as_bytes()) {
            Ok(_) => panic!("accepted: {line}"),
            Err(p) => p,
        }
    }

    #[test]
    fn good_lines_decode() {
        let parts = decode(GOOD.as_bytes()).unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(parts.job_id, 1001);
        assert_eq!(parts.table, "TRACKS");
        assert_eq!(parts.data.0.len(), 1);
        assert_eq!(
            (parts.data.0[0].0.as_ref(), parts.data.0[0].1.get()),
            ("ID", r#""a1""#)
        );
        let schema = parse_columns(parts.columns.unwrap()).unwrap();
        assert_eq!(
            schema.iter().collect::<Vec<_>>(),
            vec![("ID", WarehouseType::String), ("N", WarehouseType::Int)]
        );
    }

    #[test]
    fn missing_or_null_columns_mean_none() {
        let line = r#"{"message":{"metadata":{"table":"T"},"data":{}},"metadata":{"job_id":1}}"#;
        assert!(
            decode(line.as_bytes())
                .unwrap_or_else(|p| panic!("{p}"))
                .columns
                .is_none()
        );
        let line = r#"{"message":{"metadata":{"table":"T","columns":null},"data":{}},"metadata":{"job_id":1}}"#;
        assert!(
            decode(line.as_bytes())
                .unwrap_or_else(|p| panic!("{p}"))
                .columns
                .is_none()
        );
    }

    #[test]
    fn each_problem_is_named() {
        let cases: &[(&str, &str)] = &[
            ("[1]", "`line` must be an object, found an array ([1])"),
            (
                r#"{"message":"#,
                "the line is not valid JSON: EOF while parsing a value at column 11 (near \"{\\\"message\\\":\")",
            ),
            (r#"{"metadata":{"job_id":1}}"#, "`message` is missing"),
            (
                r#"{"message":{"metadata":{"columns":{}},"data":{}},"metadata":{"job_id":1}}"#,
                "`message.metadata.table` is missing",
            ),
            (
                r#"{"message":{"metadata":{"table":""},"data":{}},"metadata":{"job_id":1}}"#,
                "`message.metadata.table` is empty",
            ),
            (
                r#"{"message":{"metadata":{"table":7},"data":{}},"metadata":{"job_id":1}}"#,
                "`message.metadata.table` must be a string, found a number (7)",
            ),
            (
                r#"{"message":{"metadata":{"table":"T"}},"metadata":{"job_id":1}}"#,
                "`message.data` is missing",
            ),
            (
                r#"{"message":{"metadata":{"table":"T"},"data":[]},"metadata":{"job_id":1}}"#,
                "`message.data` must be an object, found an array ([])",
            ),
            (
                r#"{"message":{"metadata":{"table":"T","columns":[]},"data":{}},"metadata":{"job_id":1}}"#,
                "`message.metadata.columns` must be an object, found an array ([])",
            ),
            (
                r#"{"message":{"metadata":{"table":"T"},"data":{}}}"#,
                "`metadata` is missing",
            ),
            (
                r#"{"message":{"metadata":{"table":"T"},"data":{}},"metadata":{}}"#,
                "`metadata.job_id` is missing",
            ),
            (
                r#"{"message":{"metadata":{"table":"T"},"data":{}},"metadata":{"job_id":"12"}}"#,
                "`metadata.job_id` must be an integer, found a string (\"12\")",
            ),
            (
                r#"{"message":{"metadata":{"table":"T"},"data":{}},"metadata":{"job_id":1.5}}"#,
                "`metadata.job_id` must be an integer, found a number (1.5)",
            ),
            (
                r#"{"message":{"metadata":{"table":"T"},"data":{}},"metadata":{"job_id":9223372036854775808}}"#,
                "`metadata.job_id` must be an integer within 64 bits, found a number (9223372036854775808)",
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(problem(line).to_string(), *expected, "{line}");
        }
        assert!(matches!(
            problem("{\"a\":\"\u{fffd}\"}\u{0}"),
            LineProblem::BrokenJson { .. }
        ));
        assert!(matches!(
            decode(b"{\"a\":\"\xff\"}"),
            Err(LineProblem::NotUtf8 { at: 6, .. })
        ));
    }

    #[test]
    fn broken_json_quotes_only_an_excerpt() {
        let line = format!(r#"{{"message":{{"data":"{}"#, "x".repeat(10_000));
        let text = problem(&line).to_string();
        assert!(text.len() < 300, "{text}");
    }

    #[test]
    fn column_types_are_checked() {
        let raw =
            serde_json::value::RawValue::from_string(r#"{"A":"int","B":"number"}"#.to_owned())
                .unwrap();
        assert_eq!(
            parse_columns(&raw).unwrap_err(),
            LineProblem::UnknownType {
                column: "B".into(),
                type_name: "number".into()
            }
        );
        let raw = serde_json::value::RawValue::from_string(r#"{"A":1}"#.to_owned()).unwrap();
        assert_eq!(
            parse_columns(&raw).unwrap_err().to_string(),
            "`message.metadata.columns.A` must be a type name string, found 1"
        );
    }

    #[test]
    fn job_ids_are_recovered_from_broken_lines() {
        assert_eq!(recover_job_id(&[GOOD.as_bytes()]), Some(1001));
        assert_eq!(
            recover_job_id(&[br#"{"message":{"data":{"job_id":1}, "metadata": {"job_id" : -42}"#]),
            Some(-42)
        );
        assert_eq!(recover_job_id(&[br#"{"metadata":{"job_id":"7"}}"#]), None);
        assert_eq!(recover_job_id(&[br#"{"metadata":{"job_id":7.5}}"#]), None);
        assert_eq!(
            recover_job_id(&[br#"{"metadata":{"job_id":9}, "#, b"xxxx"]),
            Some(9)
        );
        assert_eq!(find_job_id(br#""job_id":3 ... "job_id":"x""#), Some(3));
    }
}
