//! Helpers shared by the integration tests: events of exact sizes, event lines, a fixed upload time.

#![allow(dead_code, unreachable_pub)]

use serde_json::value::RawValue;
use snowpipe_grouping::{Event, ReadOptions, Schema, UploadTime};
use time::macros::datetime;

pub fn time() -> UploadTime {
    UploadTime::new(datetime!(2024-01-02 03:04:05.678 UTC))
}

pub fn options() -> ReadOptions {
    ReadOptions::new(time())
}

/// An event of `table` whose row is exactly `size` bytes (at least 8).
pub fn sized(job_id: i64, table: &str, size: usize) -> Event {
    assert!(size >= 8, "rows are at least {{\"a\":\"\"}}");
    let data = format!(r#"{{"a":"{}"}}"#, "x".repeat(size - 8));
    let event = Event::new(
        job_id,
        table,
        Schema::new(),
        &RawValue::from_string(data).unwrap(),
        &time(),
    )
    .unwrap();
    assert_eq!(event.size(), size);
    event
}

/// One line of an event file.
pub fn line(job_id: i64, table: &str, columns: &str, data: &str) -> String {
    format!(
        r#"{{"message":{{"metadata":{{"table":"{table}","columns":{columns}}},"data":{data}}},"metadata":{{"job_id":{job_id}}}}}"#
    )
}

pub fn job_ids(events: &[Event]) -> Vec<i64> {
    events.iter().map(Event::job_id).collect()
}
