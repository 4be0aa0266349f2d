//! Deterministic generated event files for benchmarks and other crates' tests (feature `test-util`).
//!
//! This crate's own benchmark includes this file as a module (a package cannot enable its own features for
//! its benchmarks), so it names the crate `snowpipe_grouping` rather than `crate`.

use std::fmt::Write as _;

use snowpipe_grouping::{Schema, WarehouseType};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleSpec {
    /// Number of events (lines).
    pub events: usize,
    /// Number of tables, named `TABLE_00`, `TABLE_01`, ….
    pub tables: usize,
    /// Percentage (0 to 100) of events with one column typed differently from [`table_schema`].
    pub mismatch_percent: u64,
    /// Seed of the pseudo-random choices; the same spec always gives the same bytes.
    pub seed: u64,
}

impl Default for SampleSpec {
    /// 200 000 events over 20 tables, 10% of them with a mismatched column.
    fn default() -> Self {
        Self {
            events: 200_000,
            tables: 20,
            mismatch_percent: 10,
            seed: 42,
        }
    }
}

/// The columns every generated table has, with the types the table has in the warehouse.
const COLUMNS: [(&str, WarehouseType); 14] = [
    ("ID", WarehouseType::String),
    ("ANONYMOUS_ID", WarehouseType::String),
    ("EVENT", WarehouseType::String),
    ("RECEIVED_AT", WarehouseType::Datetime),
    ("SENT_AT", WarehouseType::Datetime),
    ("TIMESTAMP", WarehouseType::Datetime),
    ("UUID_TS", WarehouseType::Datetime),
    ("PRICE", WarehouseType::Float),
    ("QUANTITY", WarehouseType::Int),
    ("ACTIVE", WarehouseType::Boolean),
    ("CONTEXT_IP", WarehouseType::String),
    ("CONTEXT_LIBRARY_NAME", WarehouseType::String),
    ("CONTEXT_PAGE_URL", WarehouseType::String),
    ("PROPERTIES", WarehouseType::Json),
];

/// The schema every generated table has in the warehouse.
#[must_use]
pub fn table_schema() -> Schema {
    COLUMNS.into_iter().collect()
}

/// The name of generated table `i`.
#[must_use]
pub fn table_name(i: usize) -> String {
    format!("TABLE_{i:02}")
}

/// A generated event file: one event per line, job ids 1, 2, … in order, tables chosen at random.
///
/// A mismatched event changes one column's type in its `columns` (and its value to match): `PRICE` as a
/// string (`"12.50 EUR"`, cannot be converted), `QUANTITY` as a float (truncated), `ACTIVE` as a string
/// (cannot be converted), `CONTEXT_IP` as an int (becomes text) or `PROPERTIES` as a string (becomes a
/// JSON string).
#[must_use]
pub fn sample_file(spec: &SampleSpec) -> Vec<u8> {
    let mut rng = SplitMix(spec.seed);
    let mut out = String::with_capacity(spec.events * 900);
    for job_id in 1..=spec.events {
        let table = table_name(usize::try_from(rng.below(spec.tables.max(1) as u64)).unwrap_or(0));
        let mismatch = if rng.below(100) < spec.mismatch_percent {
            Some(rng.below(5))
        } else {
            None
        };
        write_event(&mut out, &mut rng, job_id, &table, mismatch);
        out.push('\n');
    }
    out.into_bytes()
}

fn write_event(
    out: &mut String,
    rng: &mut SplitMix,
    job_id: usize,
    table: &str,
    mismatch: Option<u64>,
) {
    let ty = |column: &str, default: WarehouseType| -> &'static str {
        match (mismatch, column) {
            (Some(0), "PRICE") | (Some(2), "ACTIVE") | (Some(4), "PROPERTIES") => "string",
            (Some(1), "QUANTITY") => "float",
            (Some(3), "CONTEXT_IP") => "int",
            _ => default.as_str(),
        }
    };
    out.push_str(r#"{"message":{"metadata":{"table":""#);
    out.push_str(table);
    out.push_str(r#"","columns":{"#);
    for (i, (column, default)) in COLUMNS.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, r#""{column}":"{}""#, ty(column, *default));
    }
    let id = rng.next();
    let anonymous = rng.next();
    let ms = rng.below(1000);
    let second = rng.below(60);
    let price = rng.below(100_000);
    let quantity = rng.below(50);
    let path = rng.below(1000);
    let _ = write!(
        out,
        r#"}}}},"data":{{"ID":"{id:016x}-{job_id:08}","ANONYMOUS_ID":"{anonymous:032x}","EVENT":"product_added","RECEIVED_AT":"2023-05-12T04:36:{second:02}.{ms:03}Z","SENT_AT":"2023-05-12T04:36:{second:02}.{ms:03}Z","TIMESTAMP":"2023-05-12T04:36:{second:02}.{ms:03}Z","#
    );
    match mismatch {
        Some(0) => out.push_str(r#""PRICE":"12.50 EUR","#),
        _ => {
            let _ = write!(out, r#""PRICE":{}.{:02},"#, price / 100, price % 100);
        }
    }
    match mismatch {
        Some(1) => {
            let _ = write!(out, r#""QUANTITY":{quantity}.75,"#);
        }
        _ => {
            let _ = write!(out, r#""QUANTITY":{quantity},"#);
        }
    }
    out.push_str(if mismatch == Some(2) {
        r#""ACTIVE":"yes","#
    } else {
        r#""ACTIVE":true,"#
    });
    match mismatch {
        Some(3) => {
            let _ = write!(out, r#""CONTEXT_IP":{},"#, rng.below(1 << 32));
        }
        _ => {
            let _ = write!(
                out,
                r#""CONTEXT_IP":"10.{}.{}.{}","#,
                rng.below(256),
                rng.below(256),
                rng.below(256)
            );
        }
    }
    let _ = write!(
        out,
        r#""CONTEXT_LIBRARY_NAME":"rudder-analytics-js","CONTEXT_PAGE_URL":"https://shop.example.com/products/{path}?utm_source=newsletter&utm_medium=email","#
    );
    match mismatch {
        Some(4) => out.push_str(r#""PROPERTIES":"gift wrap""#),
        _ => {
            let _ = write!(
                out,
                r#""PROPERTIES":{{"sku":"SKU-{path:05}","category":"Games","brand":"Example","variant":"blue","coupon":null,"position":{quantity},"url":"https://shop.example.com/p/{path}"}}"#
            );
        }
    }
    let _ = write!(out, r#"}}}},"metadata":{{"job_id":{job_id}}}}}"#);
}

/// splitmix64: tiny, fast and good enough for test data.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}
