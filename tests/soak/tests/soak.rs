//! The soak at CI size, on both backends: a fixed number of schedules from a fixed seed (`SOAK_SEED`
//! overrides it), shrunk and reported when one breaks an invariant. `cargo xtask soak --backend
//! rest|sidecar|both --schedules N` runs it at any size.

use snowpipe_soak::{Backend, DEFAULT_SEED, Options, SoakConfig, soak};

fn seed() -> u64 {
    std::env::var("SOAK_SEED").map_or(DEFAULT_SEED, |text| {
        let parsed = match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => text.parse(),
        };
        parsed.expect("SOAK_SEED is a number")
    })
}

async fn soak_on(backend: Backend, schedules: usize) {
    let config = SoakConfig {
        backend,
        options: Options::default(),
        schedules,
        seed: seed(),
        parallel: 2,
        shrink_budget: 40,
    };
    let summary = soak(config, |_| {}).await;
    let reports: Vec<String> = summary.failing.iter().map(ToString::to_string).collect();
    assert_eq!(
        summary.violations,
        0,
        "{summary}\n\n{}",
        reports.join("\n\n")
    );
    assert!(
        summary.faults > schedules,
        "the schedules injected faults: {summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_schedules_break_no_invariant() {
    soak_on(Backend::Rest, 96).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_schedules_break_no_invariant() {
    soak_on(Backend::Sidecar, 64).await;
}
