//! The demo's sample batches: a small shop's events in rudder-server's event file format.
//!
//! Batch 1 creates five tables and carries a few values whose type differs from the column's (some are
//! converted, some cannot be and become discards); batch 2 adds a column to two tables and carries one more
//! mismatch. Everything is deterministic, so the demo prints the same counts every time.

use std::{
    collections::BTreeMap,
    io::Write as _,
    path::{Path, PathBuf},
};

use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339, macros::datetime};

/// One written batch.
#[derive(Debug, Clone)]
pub(crate) struct SampleBatch {
    /// Where it was written.
    pub(crate) path: PathBuf,
    /// Events (lines) in it.
    pub(crate) events: usize,
    /// Events per table.
    pub(crate) tables: BTreeMap<String, usize>,
    /// What this batch shows, in a few words.
    pub(crate) note: &'static str,
}

/// Events being collected for one batch.
struct Writer {
    lines: Vec<String>,
    tables: BTreeMap<String, usize>,
    next_job: i64,
}

const PRODUCTS: &[(&str, &str, f64)] = &[
    ("sku-1001", "Trail running shoes", 129.0),
    ("sku-1002", "Merino socks", 18.5),
    ("sku-1003", "Rain shell", 249.99),
    ("sku-1004", "Headlamp", 42.0),
    ("sku-1005", "Water bottle", 24.0),
];

const PAGES: &[(&str, &str)] = &[
    ("/", "Home"),
    ("/shoes", "Shoes"),
    ("/shoes/trail", "Trail running shoes"),
    ("/cart", "Your cart"),
    ("/checkout", "Checkout"),
];

const EVENTS: &[&str] = &[
    "product_viewed",
    "product_added",
    "cart_viewed",
    "checkout_started",
];

const NAMES: &[&str] = &[
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Frances Allen",
    "Ken Thompson",
];

impl Writer {
    fn new(first_job: i64) -> Self {
        Self {
            lines: Vec::new(),
            tables: BTreeMap::new(),
            next_job: first_job,
        }
    }

    /// Adds an event; `columns` are (name, warehouse type) besides ID, RECEIVED_AT and UUID_TS.
    fn event(&mut self, table: &str, columns: &[(&str, &str)], data: Value) {
        let job = self.next_job;
        self.next_job += 1;
        let mut types = Map::new();
        for (name, ty) in [("ID", "string"), ("RECEIVED_AT", "datetime")]
            .iter()
            .chain(columns)
            .chain(&[("UUID_TS", "datetime")])
        {
            types.insert((*name).to_owned(), json!(ty));
        }
        let mut data = data;
        if let Value::Object(map) = &mut data {
            map.insert(
                "ID".to_owned(),
                json!(format!("{}-{job}", table.to_lowercase())),
            );
            map.insert("RECEIVED_AT".to_owned(), json!(received_at(job)));
        }
        let line = json!({
            "message": {"metadata": {"table": table, "columns": types}, "data": data},
            "metadata": {"job_id": job},
        });
        self.lines.push(line.to_string());
        *self.tables.entry(table.to_owned()).or_default() += 1;
    }

    fn write(self, dir: &Path, name: &str, note: &'static str) -> std::io::Result<SampleBatch> {
        let path = dir.join(name);
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for line in &self.lines {
            writeln!(file, "{line}")?;
        }
        file.flush()?;
        Ok(SampleBatch {
            path,
            events: self.lines.len(),
            tables: self.tables,
            note,
        })
    }
}

fn received_at(job: i64) -> String {
    let at: OffsetDateTime = datetime!(2024-05-12 04:36:50.199 UTC) + Duration::seconds(job * 7);
    at.format(&Rfc3339).unwrap_or_default()
}

fn user(i: usize) -> String {
    format!("user-{}", i % NAMES.len() + 1)
}

const IDENTIFY: &[(&str, &str)] = &[
    ("USER_ID", "string"),
    ("EMAIL", "string"),
    ("CONTEXT_TRAITS_AGE", "int"),
];
const USERS: &[(&str, &str)] = &[("EMAIL", "string"), ("NAME", "string")];
const TRACK: &[(&str, &str)] = &[
    ("USER_ID", "string"),
    ("EVENT", "string"),
    ("EVENT_TEXT", "string"),
];
const PAGE: &[(&str, &str)] = &[
    ("USER_ID", "string"),
    ("PATH", "string"),
    ("TITLE", "string"),
    ("LOAD_TIME_MS", "int"),
];
const ORDER: &[(&str, &str)] = &[
    ("USER_ID", "string"),
    ("ORDER_ID", "string"),
    ("REVENUE", "float"),
    ("QUANTITY", "int"),
    ("CURRENCY", "string"),
    ("PRODUCTS", "json"),
];

/// Writes the two sample batches into `dir`.
pub(crate) fn write(dir: &Path) -> std::io::Result<Vec<SampleBatch>> {
    let mut first = Writer::new(1);
    for (i, name) in NAMES.iter().enumerate() {
        let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
        let age = 27 + i * 3;
        first.event(
            "IDENTIFIES",
            IDENTIFY,
            json!({"USER_ID": user(i), "EMAIL": email, "CONTEXT_TRAITS_AGE": age}),
        );
        first.event("USERS", USERS, json!({"EMAIL": email, "NAME": name}));
    }
    for i in 0..20 {
        let event = EVENTS[i % EVENTS.len()];
        first.event(
            "TRACKS",
            TRACK,
            json!({"USER_ID": user(i), "EVENT": event, "EVENT_TEXT": event.replace('_', " ")}),
        );
    }
    for i in 0..12 {
        let (path, title) = PAGES[i % PAGES.len()];
        first.event(
            "PAGES",
            PAGE,
            json!({"USER_ID": user(i), "PATH": path, "TITLE": title, "LOAD_TIME_MS": 80 + i * 13}),
        );
    }
    for i in 0..6 {
        first.event("ORDER_COMPLETED", ORDER, order(i, 1 + i % 3));
    }
    // Values whose type differs from the column's. Convertible: an int into a float column, a float into an
    // int column (truncated), an int into a string column (its text). Not convertible (NULL and a discard
    // row): a word into an int column.
    first.event(
        "ORDER_COMPLETED",
        &with_type(ORDER, "REVENUE", "int"),
        json!({"USER_ID": user(6), "ORDER_ID": "ord-5006", "REVENUE": 40, "QUANTITY": 1, "CURRENCY": "EUR",
               "PRODUCTS": [{"sku": "sku-1004", "quantity": 1}]}),
    );
    first.event(
        "ORDER_COMPLETED",
        &with_type(ORDER, "QUANTITY", "string"),
        json!({"USER_ID": user(7), "ORDER_ID": "ord-5007", "REVENUE": 37.0, "QUANTITY": "two", "CURRENCY": "EUR",
               "PRODUCTS": [{"sku": "sku-1002", "quantity": 2}]}),
    );
    first.event(
        "PAGES",
        &with_type(PAGE, "LOAD_TIME_MS", "float"),
        json!({"USER_ID": user(1), "PATH": "/shoes", "TITLE": "Shoes", "LOAD_TIME_MS": 132.7}),
    );
    first.event(
        "PAGES",
        &with_type(PAGE, "TITLE", "int"),
        json!({"USER_ID": user(2), "PATH": "/missing", "TITLE": 404, "LOAD_TIME_MS": 31}),
    );
    first.event(
        "IDENTIFIES",
        &with_type(IDENTIFY, "CONTEXT_TRAITS_AGE", "string"),
        json!({"USER_ID": user(3), "EMAIL": "alan.turing@example.com", "CONTEXT_TRAITS_AGE": "thirty-one"}),
    );
    let next = first.next_job;
    let first = first.write(
        dir,
        "batch-1.jsonl",
        "five new tables; five values of another type (three converted, two discarded)",
    )?;

    let mut second = Writer::new(next);
    for i in 20..30 {
        let event = EVENTS[i % EVENTS.len()];
        second.event(
            "TRACKS",
            TRACK,
            json!({"USER_ID": user(i), "EVENT": event, "EVENT_TEXT": event.replace('_', " ")}),
        );
    }
    let mut page = PAGE.to_vec();
    page.push(("REFERRER", "string"));
    for i in 12..17 {
        let (path, title) = PAGES[i % PAGES.len()];
        second.event(
            "PAGES",
            &page,
            json!({"USER_ID": user(i), "PATH": path, "TITLE": title, "LOAD_TIME_MS": 70 + i * 5,
                   "REFERRER": "https://search.example.org/?q=trail+shoes"}),
        );
    }
    let mut order_with_coupon = ORDER.to_vec();
    order_with_coupon.push(("COUPON", "string"));
    for i in 6..10 {
        let mut data = order(i, 1 + i % 2);
        data["COUPON"] = json!(if i % 2 == 0 { "SPRING10" } else { "WELCOME" });
        second.event("ORDER_COMPLETED", &order_with_coupon, data);
    }
    second.event(
        "ORDER_COMPLETED",
        &with_type(ORDER, "REVENUE", "string"),
        json!({"USER_ID": user(5), "ORDER_ID": "ord-5010", "REVENUE": "free", "QUANTITY": 1, "CURRENCY": "EUR",
               "PRODUCTS": [{"sku": "sku-1005", "quantity": 1}]}),
    );
    let second = second.write(
        dir,
        "batch-2.jsonl",
        "new columns ORDER_COMPLETED.COUPON and PAGES.REFERRER; one more discarded value",
    )?;
    Ok(vec![first, second])
}

fn order(i: usize, quantity: usize) -> Value {
    let (sku, _, price) = PRODUCTS[i % PRODUCTS.len()];
    #[expect(
        clippy::cast_precision_loss,
        reason = "single-digit quantities are exact in f64"
    )]
    let revenue = price * quantity as f64;
    json!({"USER_ID": user(i), "ORDER_ID": format!("ord-{}", 5000 + i), "REVENUE": revenue,
           "QUANTITY": quantity, "CURRENCY": "EUR", "PRODUCTS": [{"sku": sku, "quantity": quantity}]})
}

fn with_type<'a>(
    columns: &[(&'a str, &'a str)],
    name: &str,
    ty: &'a str,
) -> Vec<(&'a str, &'a str)> {
    columns
        .iter()
        .map(|&(n, t)| if n == name { (n, ty) } else { (n, t) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batches_are_event_files_with_rising_job_ids() {
        let dir = tempfile::tempdir().unwrap();
        let batches = write(dir.path()).unwrap();
        assert_eq!(batches.len(), 2);
        let mut last = 0;
        for batch in &batches {
            let text = std::fs::read_to_string(&batch.path).unwrap();
            assert_eq!(text.lines().count(), batch.events);
            assert_eq!(batch.tables.values().sum::<usize>(), batch.events);
            for line in text.lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                let job = v["metadata"]["job_id"].as_i64().unwrap();
                assert!(job > last, "job ids rise");
                last = job;
                let data = &v["message"]["data"];
                assert!(
                    data["ID"].is_string() && data["RECEIVED_AT"].is_string(),
                    "{line}"
                );
                assert!(
                    v["message"]["metadata"]["columns"]["UUID_TS"] == "datetime",
                    "{line}"
                );
            }
        }
        assert_eq!(received_at(0), "2024-05-12T04:36:50.199Z");
    }
}
