//! The `snowpipe-emulator` command: flags, the address line, config files and a clean stop on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use snowpipe_emulator::demo;

const BIN: &str = env!("CARGO_BIN_EXE_snowpipe-emulator");

#[test]
fn help_documents_the_flags() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--bind",
        "--port",
        "--commit-lag",
        "--body-limit",
        "--config",
        "9078",
        "127.0.0.1",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn bad_flags_and_config_files_are_refused() {
    let out = Command::new(BIN)
        .args(["--commit-lag", "soon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(BIN)
        .args(["--port", "0", "--config", "/nonexistent/emulator.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "no address line when it did not start"
    );
}

#[tokio::test]
async fn serves_on_the_printed_address_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("snowpipe-emulator-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("loader.pub"), demo::PUBLIC_KEY_PEM).unwrap();
    let config = dir.join("emulator.toml");
    std::fs::write(
        &config,
        "[[users]]\nname = \"LOADER\"\npublic_key_file = \"loader.pub\"\nroles = [\"LOADER_ROLE\"]\n\n\
         [[databases]]\nname = \"ANALYTICS\"\nschemas = [\"RAW\"]\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--port",
            "0",
            "--commit-lag",
            "0",
            "--body-limit",
            "1000000",
            "--config",
        ])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not an address: {line:?}"));
    assert!(addr.ip().is_loopback());

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let health = client
        .get(format!("http://{addr}/health").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(health.status(), http::StatusCode::OK);
    let schemas = client
        .get(format!("http://{addr}/_emulator/schemas").parse().unwrap())
        .await
        .unwrap();
    let body = http_body_util::BodyExt::collect(schemas.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("ANALYTICS") && text.contains("RAW") && text.contains(demo::DATABASE),
        "{text}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "stopped with {status}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn jwt_prints_a_key_pair_jwt_for_a_user() {
    let out = Command::new(BIN).arg("jwt").output().unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    let claims = crate::rest_common::claims(token.trim());
    assert_eq!(claims["sub"], "DEMO.DEMO_USER");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    let out = Command::new(BIN)
        .args(["jwt", "--user", "loader", "--lifetime", "60"])
        .output()
        .unwrap();
    let claims = crate::rest_common::claims(String::from_utf8(out.stdout).unwrap().trim());
    assert_eq!(claims["sub"], "DEMO.LOADER");
    let out = Command::new(BIN)
        .args(["jwt", "--private-key", "/nonexistent/key.p8"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn print_destination_prints_a_destination_file_for_the_demo_account() {
    let out = Command::new(BIN)
        .args(["--print-destination", "--namespace", "my_events"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let destination: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(destination["config"], demo::destination_config("my_events"));
    assert!(destination["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(
        out.stderr.is_empty(),
        "no hint when stderr is not a terminal"
    );
    let out = Command::new(BIN)
        .arg("--print-destination")
        .output()
        .unwrap();
    let destination: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(destination["config"]["namespace"], "demo");
    // --namespace belongs to --print-destination.
    let out = Command::new(BIN)
        .args(["--namespace", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let mut child = Command::new(BIN)
        .args(["--port", "0", "--log", "debug"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.trim().parse::<std::net::SocketAddr>().is_ok(),
        "{line:?}"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("shutting down"),
        "logs were written: {stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "no escape codes: {stderr:?}");
}
