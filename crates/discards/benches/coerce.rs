//! Coercing a generated batch (200k events, 20 tables, 10% with a mismatched column) against the tables'
//! schema, beside serde_json's own parse of the same file's bytes measured in the same run.
//!
//! Run with `cargo bench -p snowpipe-discards`; each benchmark takes 10 samples of one pass.

use std::{path::Path, sync::LazyLock};

use divan::{
    Bencher, black_box,
    counter::{BytesCount, ItemsCount},
};
use serde_json::Value;
use snowpipe_discards::Coercer;
use snowpipe_grouping::{
    Batch, ReadOptions, Schema, UploadTime,
    test_util::{SampleSpec, sample_file, table_schema},
};
use time::macros::datetime;

static FILE: LazyLock<Vec<u8>> = LazyLock::new(|| sample_file(&SampleSpec::default()));

static BATCH: LazyLock<Batch> = LazyLock::new(|| {
    let options = ReadOptions::new(upload_time());
    Batch::read_from(&FILE[..], Path::new("bench"), &options).expect("generated file reads")
});

fn upload_time() -> UploadTime {
    UploadTime::new(datetime!(2024-01-02 03:04:05.678 UTC))
}

fn main() {
    divan::main();
}

fn counted<'a, 'b>(bencher: Bencher<'a, 'b>) -> Bencher<'a, 'b> {
    bencher
        .counter(BytesCount::of_slice(&*FILE))
        .counter(ItemsCount::new(SampleSpec::default().events))
}

/// Baseline: every line of the file parsed into a `serde_json::Value` tree.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn serde_json_value(bencher: Bencher<'_, '_>) {
    counted(bencher).bench(|| {
        for line in FILE.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
            black_box(serde_json::from_slice::<Value>(line).expect("generated lines are JSON"));
        }
    });
}

/// Coercing every event of the batch (one coercer per table), keeping rewritten rows and discard rows.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn coerce_batch(bencher: Bencher<'_, '_>) {
    let batch = &*BATCH;
    let schema: Schema = table_schema();
    let time = upload_time();
    counted(bencher).bench(|| {
        let mut converted = Vec::new();
        let mut discards = Vec::new();
        for table in batch.tables() {
            let mut coercer = Coercer::new(&schema, &time);
            for event in table.events() {
                let coercion = coercer.coerce(event);
                converted.extend(coercion.converted);
                discards.extend(coercion.discards);
            }
        }
        (converted, discards)
    });
}

/// Coercing and serialising the discard rows, as an upload does.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn coerce_batch_with_discard_rows(bencher: Bencher<'_, '_>) {
    let batch = &*BATCH;
    let schema: Schema = table_schema();
    let time = upload_time();
    counted(bencher).bench(|| {
        let mut rows = Vec::new();
        for table in batch.tables() {
            let mut coercer = Coercer::new(&schema, &time);
            for event in table.events() {
                rows.extend(
                    coercer
                        .coerce(event)
                        .discards
                        .iter()
                        .map(snowpipe_discards::DiscardRow::to_row),
                );
            }
        }
        rows
    });
}
