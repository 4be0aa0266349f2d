//! Tests of the generated event files (kept apart from `test_util`, which the benchmark compiles in).

use std::path::Path;

use time::macros::datetime;

use snowpipe_grouping::{Batch, ReadOptions, UploadTime};

use crate::test_util::{SampleSpec, sample_file, table_schema};

#[test]
fn samples_are_deterministic_and_readable() {
    let spec = SampleSpec {
        events: 2_000,
        tables: 5,
        mismatch_percent: 10,
        seed: 7,
    };
    let bytes = sample_file(&spec);
    assert_eq!(bytes, sample_file(&spec));
    let options = ReadOptions::new(UploadTime::new(datetime!(2024-01-02 03:04:05 UTC)));
    let batch = Batch::read_from(&bytes[..], Path::new("sample"), &options).unwrap();
    assert_eq!(batch.len(), 2_000);
    assert_eq!(batch.tables().len(), 5);
    let mismatched = batch
        .tables()
        .iter()
        .flat_map(|t| t.events())
        .filter(|e| *e.columns() != table_schema())
        .count();
    assert!((150..250).contains(&mismatched), "{mismatched}");
}
