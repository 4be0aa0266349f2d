//! Sample rows for benchmarks against the emulator: NDJSON shaped like the end-to-end benchmark's events
//! (nine columns, about 300 bytes a row), deterministic, so the emulator's own REST bench and the REST
//! client's bench measure the same bytes.

use std::io::Write as _;

/// At least `bytes` of NDJSON rows (one JSON object per line), the same for the same `bytes`.
///
/// ```
/// let rows = snowpipe_emulator::sample::ndjson(1_000);
/// assert!(rows.len() >= 1_000);
/// assert!(rows.ends_with(b"\n"));
/// ```
#[must_use]
pub fn ndjson(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 1024);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut i = 0u64;
    while out.len() < bytes {
        // xorshift: cheap, and the same sequence on every platform.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        i += 1;
        let _ = writeln!(
            out,
            r#"{{"ID":"evt-{i:08}-{state:016x}","USER_ID":"user-{}","EVENT":"event_{}","RECEIVED_AT":"2024-05-12T04:36:{:02}.{:03}Z","CONTEXT_PAGE_URL":"https://example.com/products/{}?ref=campaign-{}","AMOUNT":{}.{:02},"QUANTITY":{},"IS_ACTIVE":{}}}"#,
            state % 50_000,
            i % 20,
            i % 60,
            i % 1000,
            state % 10_000,
            state % 97,
            state % 1000,
            state % 100,
            state % 20,
            state.is_multiple_of(2),
        );
    }
    out
}
