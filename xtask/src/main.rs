//! `cargo xtask`: every project command in one place, so CI and people run exactly the same steps.
//!
//! `cargo xtask ci` is the whole of CI: formatting, lints, tests (nextest and doc tests), the dependency
//! policy (`cargo deny`) and packaging of every publishable crate.

// Project commands talk to the person running them.
#![allow(clippy::print_stderr)]

mod e2e_bench;
mod tidy;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Project commands for the snowpipe-streaming workspace"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Everything CI runs: fmt check, clippy, tests, doc tests, cargo deny, cargo package.
    Ci,
    /// Format every crate.
    Fmt,
    /// Clippy on all targets and features, warnings denied.
    Lint,
    /// Tests with nextest, then doc tests.
    Test,
    /// Dependency policy: bans, licenses and sources (advisories need network access CI does not have).
    Deny,
    /// Package every publishable crate without building it, as `cargo publish` would.
    Package,
    /// Man pages of `snowpipe-streaming` (one per command), generated from its clap definitions, into
    /// target/man.
    Man,
    /// Benchmarks (release builds): the micro-benchmarks (with the emulator's REST appends per second and
    /// the REST client's append throughput), then the end-to-end run (`bench e2e` alone, `bench rest` the
    /// emulator's REST appends alone, `bench client` the REST client's throughput alone); any other
    /// FILTER is passed to the micro-benchmarks' harness.
    Bench {
        /// `e2e`, `rest`, `client`, or a filter for the micro-benchmarks.
        filter: Option<String>,
    },
    /// The REST client's live check against a real Snowflake account named by `SNOWFLAKE_ACCOUNT`,
    /// `SNOWFLAKE_USER`, `SNOWFLAKE_PRIVATE_KEY_FILE`, `SNOWFLAKE_DATABASE`, `SNOWFLAKE_WAREHOUSE` (and
    /// optionally `SNOWFLAKE_ROLE`, `SNOWFLAKE_PRIVATE_KEY_PASSPHRASE`); without them it says what it
    /// needs and succeeds.
    Live,
    /// The fault soak (release build): random batches and faults against the manager and the emulator, on
    /// the REST API, the sidecar or both (each with its own faults); the last line is `soak: N schedules on
    /// BACKEND, F faults injected, D duplicates (by cause: ...), V violations` (with `both`, the last two).
    Soak {
        /// `rest`, `sidecar` or `both`.
        #[arg(long, default_value = "both", value_parser = ["rest", "sidecar", "both"])]
        backend: String,
        /// How many schedules to run (on each backend).
        #[arg(long, default_value_t = 1000)]
        schedules: usize,
        /// REST: leave out the rows rejected at commit (a seed names the same schedule either way).
        #[arg(long)]
        no_rejected_rows: bool,
        /// The seed every schedule's seed derives from (decimal or 0x-hex); random when absent.
        #[arg(long)]
        seed: Option<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = project_root();
    std::env::set_current_dir(&root).with_context(|| format!("cannot enter {}", root.display()))?;
    match cli.command {
        Cmd::Ci => ci(),
        Cmd::Fmt => cargo(&["fmt", "--all"]),
        Cmd::Lint => lint(),
        Cmd::Test => test(),
        Cmd::Deny => deny(),
        Cmd::Package => package(),
        Cmd::Man => man(&root),
        Cmd::Bench { filter } => match filter.as_deref() {
            Some("e2e") => e2e_bench::run(&root),
            Some("rest") => cargo(&["bench", "-p", "snowpipe-emulator", "--bench", "rest_append"]),
            Some("client") => cargo(&[
                "bench",
                "-p",
                "snowpipe-rest",
                "--bench",
                "append_throughput",
            ]),
            Some(filter) => bench(Some(filter)),
            None => bench(None).and_then(|()| e2e_bench::run(&root)),
        },
        Cmd::Soak {
            backend,
            schedules,
            no_rejected_rows,
            seed,
        } => soak(&backend, schedules, no_rejected_rows, seed.as_deref()),
        Cmd::Live => cargo(&["run", "--quiet", "--package", "snowpipe-live"]),
    }
}

fn ci() -> Result<()> {
    // Check every tool first, so a missing one fails in a second rather than after the build.
    require_tool(
        "cargo-fmt",
        &["fmt", "--version"],
        "rustup component add rustfmt",
    )?;
    require_tool(
        "cargo-clippy",
        &["clippy", "--version"],
        "rustup component add clippy",
    )?;
    require_tool(
        "cargo-nextest",
        &["nextest", "--version"],
        "cargo install --locked cargo-nextest",
    )?;
    require_tool(
        "cargo-deny",
        &["deny", "--version"],
        "cargo install --locked cargo-deny",
    )?;
    cargo(&["fmt", "--all", "--", "--check"])
        .context("formatting differs: run `cargo xtask fmt`")?;
    lint()?;
    test()?;
    deny()?;
    package()?;
    eprintln!("xtask ci: all checks passed");
    Ok(())
}

fn lint() -> Result<()> {
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ])
}

fn test() -> Result<()> {
    cargo(&[
        "nextest",
        "run",
        "--workspace",
        "--all-features",
        "--no-tests=fail",
    ])?;
    cargo(&["test", "--workspace", "--all-features", "--doc"])
}

fn deny() -> Result<()> {
    cargo(&[
        "deny",
        "--all-features",
        "check",
        "bans",
        "licenses",
        "sources",
    ])
}

fn package() -> Result<()> {
    // `cargo package --workspace` would also pack the unpublished members (tests, xtask), whose path
    // dependencies have no registry to resolve against.
    let unpublished = unpublished_packages()?;
    let mut args = vec![
        "package",
        "--workspace",
        "--no-verify",
        "--allow-dirty",
        "--quiet",
    ];
    for name in &unpublished {
        args.extend(["--exclude", name.as_str()]);
    }
    cargo(&args)
}

/// Names of the workspace members marked `publish = false`.
fn unpublished_packages() -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut manifests = vec![PathBuf::from("xtask/Cargo.toml")];
    for dir in ["crates", "tests"] {
        for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {dir}"))? {
            manifests.push(entry?.path().join("Cargo.toml"));
        }
    }
    for manifest in manifests {
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        if !text.lines().any(|l| l.trim() == "publish = false") {
            continue;
        }
        let name = text
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("name = ")
                    .map(|v| v.trim_matches('"').to_owned())
            })
            .with_context(|| format!("{} has no package name", manifest.display()))?;
        names.push(name);
    }
    Ok(names)
}

/// Builds the command and has it write its man pages (its hidden `man` command) into target/man.
fn man(root: &Path) -> Result<()> {
    let dir = root.join("target/man");
    let dir = dir
        .to_str()
        .context("the target folder's path is not UTF-8")?;
    cargo(&[
        "run",
        "--quiet",
        "--package",
        "snowpipe-streaming",
        "--",
        "man",
        "--out-dir",
        dir,
    ])?;
    eprintln!("xtask man: read them with `man {dir}/snowpipe-streaming.1`");
    Ok(())
}

fn bench(filter: Option<&str>) -> Result<()> {
    let mut args = vec!["bench", "--workspace", "--all-features"];
    if let Some(filter) = filter {
        args.extend(["--", filter]);
    }
    cargo(&args)
}

/// Runs the soak binary; its summary must stay the last line printed, so a failing soak exits with its status
/// here instead of returning an error for `main` to print after it.
#[allow(clippy::exit)]
fn soak(backend: &str, schedules: usize, no_rejected_rows: bool, seed: Option<&str>) -> Result<()> {
    let schedules = schedules.to_string();
    let mut args = vec![
        "run",
        "--release",
        "--quiet",
        "--package",
        "snowpipe-soak",
        "--",
        "--backend",
        backend,
        "--schedules",
        &schedules,
    ];
    if no_rejected_rows {
        args.push("--no-rejected-rows");
    }
    if let Some(seed) = seed {
        args.extend(["--seed", seed]);
    }
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(cargo_bin())
        .args(&args)
        .status()
        .context("cannot run the soak")?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}

fn require_tool(name: &str, args: &[&str], install: &str) -> Result<()> {
    let ok = Command::new(cargo_bin())
        .args(args)
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false);
    if !ok {
        bail!("`{name}` is missing; install it with `{install}` and run again");
    }
    Ok(())
}

fn cargo(args: &[&str]) -> Result<()> {
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(cargo_bin())
        .args(args)
        .status()
        .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// The workspace root: xtask lives one level below it.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}
