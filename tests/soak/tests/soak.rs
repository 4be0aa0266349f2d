//! The soak at CI size: 64 schedules from a fixed seed (`SOAK_SEED` overrides it), shrunk and reported when
//! one breaks an invariant. `cargo xtask soak --schedules N` runs it at any size.

use snowpipe_soak::{DEFAULT_SEED, soak};

fn seed() -> u64 {
    std::env::var("SOAK_SEED").map_or(DEFAULT_SEED, |text| {
        let parsed = match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse(),
        };
        parsed.expect("SOAK_SEED is a number")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_schedules_break_no_invariant() {
    let summary = soak(64, seed(), 2, 40, |_| {}).await;
    let reports: Vec<String> = summary.failing.iter().map(ToString::to_string).collect();
    assert_eq!(
        summary.violations,
        0,
        "{summary}\n\n{}",
        reports.join("\n\n")
    );
    assert!(
        summary.faults > 64,
        "the schedules injected faults: {summary}"
    );
}
