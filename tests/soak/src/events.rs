//! Events as the soak writes them: each job's line, with a marker (`MARK = "m<job id>"`) that identifies
//! its row in the table and a `RECEIVED_AT` unique to the job that identifies its discard rows.

use serde_json::{Map, Value, json};
use time::{Duration as TimeDuration, OffsetDateTime, format_description::well_known::Rfc3339};

use crate::schedule::{EventKind, EventPlan, TABLES};

/// The soak's maximum insert request size (the rows array of one insert).
pub const MAX_INSERT_BYTES: usize = 2048;
/// The soak's maximum line length.
pub const MAX_LINE_BYTES: usize = 8192;

/// The types of the `C<k>` columns, by `k % 4`.
const TYPES: [&str; 4] = ["string", "int", "float", "boolean"];

/// One job: what the router sends every time it sends the job.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job id.
    pub id: i64,
    /// The table.
    pub table: &'static str,
    /// What the generator meant it to be.
    pub kind: EventKind,
    /// Its line in an event file.
    pub line: String,
    /// The columns it declares with a value: (name, declared type).
    pub columns: Vec<(String, &'static str)>,
    /// `data.RECEIVED_AT`.
    pub received_at: OffsetDateTime,
}

impl Job {
    /// The value of `MARK` in its row.
    pub fn mark(&self) -> String {
        mark(self.id)
    }
}

/// The marker of a job's row.
pub fn mark(job_id: i64) -> String {
    format!("m{job_id}")
}

fn value_of(ty: &str, job_id: i64) -> Value {
    match ty {
        "string" => json!(format!("s{job_id}")),
        "int" => json!(job_id % 1000),
        "float" => json!(1.5),
        _ => json!(job_id % 2 == 0),
    }
}

/// Builds the job for a planned event.
pub fn job(id: i64, plan: EventPlan) -> Job {
    let table = TABLES[usize::from(plan.table) % TABLES.len()];
    let received_at = OffsetDateTime::UNIX_EPOCH + TimeDuration::days(19_723) // 2024-01-01
        + TimeDuration::seconds(id);
    let mut columns: Vec<(String, &'static str)> = vec![
        ("ID".into(), "string"),
        ("RECEIVED_AT".into(), "datetime"),
        ("MARK".into(), "string"),
        ("N".into(), "int"),
    ];
    let mut data = Map::new();
    data.insert("ID".into(), json!(format!("u{}", plan.id)));
    data.insert(
        "RECEIVED_AT".into(),
        json!(received_at.format(&Rfc3339).unwrap_or_default()),
    );
    data.insert("MARK".into(), json!(mark(id)));
    data.insert("N".into(), json!(id % 1000));
    match plan.kind {
        EventKind::Plain => {}
        EventKind::NewColumn(k) => {
            let ty = TYPES[usize::from(k) % TYPES.len()];
            columns.push((format!("C{k}"), ty));
            data.insert(format!("C{k}"), value_of(ty, id));
        }
        EventKind::Mismatch(0) => {
            columns[3].1 = "string";
            data.insert("N".into(), json!(format!("n{id}")));
        }
        EventKind::Mismatch(k) => {
            let ty = TYPES[(usize::from(k) + 1) % TYPES.len()];
            columns.push((format!("C{k}"), ty));
            data.insert(format!("C{k}"), value_of(ty, id));
        }
        EventKind::ManyMismatches => {
            columns[3].1 = "string";
            data.insert("N".into(), json!(format!("n{id}")));
            for k in 1..6u8 {
                let ty = TYPES[(usize::from(k) + 1) % TYPES.len()];
                columns.push((format!("C{k}"), ty));
                data.insert(format!("C{k}"), value_of(ty, id));
            }
        }
        EventKind::Json => {
            columns.push(("J".into(), "json"));
            let value = if plan.id.is_multiple_of(2) {
                json!({"k": id, "tags": ["a", "b"]})
            } else {
                json!([id, "x"])
            };
            data.insert("J".into(), value);
        }
        EventKind::NearLimit | EventKind::OverLimit => {
            let len = if plan.kind == EventKind::NearLimit {
                MAX_INSERT_BYTES - 400
            } else {
                MAX_INSERT_BYTES + 200
            };
            columns.push(("PAD".into(), "string"));
            data.insert("PAD".into(), json!("p".repeat(len)));
        }
    }
    let mut declared = Map::new();
    for (name, ty) in &columns {
        declared.insert(name.clone(), json!(ty));
    }
    declared.insert("UUID_TS".into(), json!("datetime"));
    let line = json!({
        "message": {"metadata": {"table": table, "columns": declared}, "data": data},
        "metadata": {"job_id": id},
    })
    .to_string();
    Job {
        id,
        table,
        kind: plan.kind,
        line,
        columns,
        received_at,
    }
}

/// A line too long to read, holding a job id the manager can still find.
pub fn too_long_line(job: &Job) -> String {
    let value: Value = serde_json::from_str(&job.line).unwrap_or(Value::Null);
    let mut value = value;
    value["message"]["data"]["FILLER"] = json!("f".repeat(MAX_LINE_BYTES));
    value.to_string()
}

/// The event's type name as a table's Snowflake type reads (`NUMBER(38,0)` → int, ...).
pub fn warehouse_type(snowflake: &str) -> &'static str {
    let upper = snowflake.to_ascii_uppercase();
    if upper.starts_with("NUMBER") || upper.starts_with("INT") || upper.starts_with("DECIMAL") {
        "int"
    } else if upper.starts_with("FLOAT") || upper.starts_with("DOUBLE") || upper.starts_with("REAL")
    {
        "float"
    } else if upper.starts_with("BOOLEAN") {
        "boolean"
    } else if upper.starts_with("TIMESTAMP") || upper.starts_with("DATE") {
        "datetime"
    } else if upper.starts_with("VARIANT")
        || upper.starts_with("OBJECT")
        || upper.starts_with("ARRAY")
    {
        "json"
    } else {
        "string"
    }
}

/// Whether a value declared `event` lands as a discard in a column of type `table`, by the behaviour
/// page's rules (a string table column takes anything as text, int and float convert both ways, a json
/// column takes anything).
pub fn is_discarded(event: &str, table: &str) -> bool {
    fn canon(t: &str) -> &str {
        match t {
            "bigint" => "int",
            "text" => "string",
            other => other,
        }
    }
    let (event, table) = (canon(event), canon(table));
    if event == table || table == "string" || table == "json" {
        return false;
    }
    !matches!((event, table), ("int", "float") | ("float", "int"))
}
