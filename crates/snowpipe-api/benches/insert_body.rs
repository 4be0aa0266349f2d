//! The cost of building an insert body: writing the rows and gzip-compressing them, the way the client does
//! it (written through a 64 KiB buffer into the compressor) against writing them out first and compressing
//! that in one call, and against serde writing each token straight into the compressor.

use std::io::Write as _;

use flate2::{Compression, write::GzEncoder};
use serde_json::value::RawValue;
use snowpipe_api::{Row, sidecar::wire::InsertRequest};

fn main() {
    divan::main();
}

/// 20 000 rows of about 240 bytes: a 4.8 MB request, a typical table's share of a large batch.
fn request() -> InsertRequest {
    let rows = (0..20_000)
        .map(|i| {
            RawValue::from_string(format!(
                r#"{{"ID":"evt-{i:08}","USER_ID":"user-{}","EVENT":"event_{}","RECEIVED_AT":"2024-05-12T04:36:{:02}.000Z","CONTEXT_PAGE_URL":"https://example.com/products/{}","AMOUNT":{}.5,"QUANTITY":{},"IS_ACTIVE":true}}"#,
                i % 5000,
                i % 20,
                i % 60,
                i % 1000,
                i % 100,
                i % 7
            ))
            .map(Row::from)
            .unwrap()
        })
        .collect();
    InsertRequest {
        rows,
        offset: "20000".into(),
    }
}

#[divan::bench]
fn buffered_into_gzip(bencher: divan::Bencher<'_, '_>) {
    let request = request();
    bencher.bench(|| {
        let encoder = GzEncoder::new(Vec::new(), Compression::new(1));
        let mut buffered = std::io::BufWriter::with_capacity(64 * 1024, encoder);
        request.write_json(&mut buffered).unwrap();
        buffered.into_inner().unwrap().finish().unwrap().len()
    });
}

#[divan::bench]
fn serialise_then_gzip(bencher: divan::Bencher<'_, '_>) {
    let request = request();
    bencher.bench(|| {
        let mut json = Vec::new();
        request.write_json(&mut json).unwrap();
        let mut encoder = GzEncoder::new(Vec::new(), Compression::new(1));
        encoder.write_all(&json).unwrap();
        encoder.finish().unwrap().len()
    });
}

#[divan::bench]
fn serialise_into_gzip(bencher: divan::Bencher<'_, '_>) {
    let request = request();
    bencher.bench(|| {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::new(1));
        serde_json::to_writer(&mut encoder, &request).unwrap();
        encoder.finish().unwrap().len()
    });
}
