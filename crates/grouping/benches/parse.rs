//! Reading and grouping a generated event file (200k events, 20 tables, 10% mismatched columns), beside
//! serde_json's own parse of the same bytes measured in the same run.
//!
//! Run with `cargo bench -p snowpipe-grouping`; each benchmark takes 10 samples of one pass over the file.

use std::{path::Path, sync::LazyLock};

use divan::{
    Bencher, black_box,
    counter::{BytesCount, ItemsCount},
};
use serde::de::IgnoredAny;
use serde_json::Value;
use snowpipe_grouping::{
    Batch, DEFAULT_MAX_INSERT_BYTES, ReadOptions, UploadTime, count_duplicates,
};
use test_util::{SampleSpec, sample_file};
use time::macros::datetime;

// The generator behind the `test-util` feature, compiled in so `cargo bench -p snowpipe-grouping` needs no
// feature flag.
#[allow(dead_code, unreachable_pub)]
#[path = "../src/test_util.rs"]
mod test_util;

static FILE: LazyLock<Vec<u8>> = LazyLock::new(|| sample_file(&SampleSpec::default()));

fn main() {
    divan::main();
}

fn options() -> ReadOptions {
    ReadOptions::new(UploadTime::new(datetime!(2024-01-02 03:04:05.678 UTC)))
}

fn lines() -> impl Iterator<Item = &'static [u8]> {
    FILE.split(|&b| b == b'\n').filter(|line| !line.is_empty())
}

fn counted<'a, 'b>(bencher: Bencher<'a, 'b>) -> Bencher<'a, 'b> {
    bencher
        .counter(BytesCount::of_slice(&*FILE))
        .counter(ItemsCount::new(SampleSpec::default().events))
}

/// Baseline: every line parsed into a `serde_json::Value` tree.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn serde_json_value(bencher: Bencher<'_, '_>) {
    counted(bencher).bench(|| {
        for line in lines() {
            black_box(serde_json::from_slice::<Value>(line).expect("generated lines are JSON"));
        }
    });
}

/// The floor: every line validated by serde_json without building anything.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn serde_json_validate_only(bencher: Bencher<'_, '_>) {
    counted(bencher).bench(|| {
        for line in lines() {
            black_box(
                serde_json::from_slice::<IgnoredAny>(line).expect("generated lines are JSON"),
            );
        }
    });
}

/// Reading the file into a batch grouped by table, `UUID_TS` set on every row (lines decoded on as many
/// threads as the machine has cores, at most four: the default).
#[divan::bench(sample_count = 10, sample_size = 1)]
fn read_and_group(bencher: Bencher<'_, '_>) {
    let options = options();
    counted(bencher).bench(|| {
        Batch::read_from(&FILE[..], Path::new("bench"), &options).expect("generated file reads")
    });
}

/// The same on one thread, to show what the decoding threads bring.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn read_and_group_one_thread(bencher: Bencher<'_, '_>) {
    let options = options().with_threads(1);
    counted(bencher).bench(|| {
        Batch::read_from(&FILE[..], Path::new("bench"), &options).expect("generated file reads")
    });
}

/// Reading, grouping and splitting by the default maximum insert request size.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn read_group_and_partition(bencher: Bencher<'_, '_>) {
    let options = options();
    counted(bencher).bench(|| {
        Batch::read_from(&FILE[..], Path::new("bench"), &options)
            .expect("generated file reads")
            .partition(DEFAULT_MAX_INSERT_BYTES)
    });
}

/// Counting repeated `ID`s in every table of the read batch, as upload does before sending a table (the
/// batch read once, outside the timing).
#[divan::bench(sample_count = 10, sample_size = 1)]
fn count_duplicates_per_table(bencher: Bencher<'_, '_>) {
    let batch =
        Batch::read_from(&FILE[..], Path::new("bench"), &options()).expect("generated file reads");
    bencher
        .counter(ItemsCount::new(SampleSpec::default().events))
        .bench(|| {
            batch
                .tables()
                .iter()
                .map(|table| count_duplicates(table.events()).repeated_ids)
                .sum::<usize>()
        });
}
