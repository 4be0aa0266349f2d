//! `docs/EMULATOR.md`'s curl session, replayed: the fenced block after the marker is read as the
//! shell a person would paste (variables, `$(...)`, `| jq -r .field`, quotes, line continuations),
//! its `snowpipe-emulator jwt` run through the real binary and its `curl` calls sent with the test's
//! client to an emulator on a free port (the doc's `127.0.0.1:9078` rewritten to it).

use std::{collections::HashMap, process::Command, time::Duration};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::Value;
use snowpipe_emulator::{Emulator, demo};

const DOC: &str = include_str!("../../../../docs/EMULATOR.md");
const MARKER: &str = "<!-- replayed by crates/emulator/tests/emulator/rest_doc.rs -->";
const DOC_HOST: &str = "127.0.0.1:9078";
const BIN: &str = env!("CARGO_BIN_EXE_snowpipe-emulator");

/// The fenced block after the marker.
fn session() -> &'static str {
    let after = &DOC[DOC.find(MARKER).expect("the doc has the replay marker") + MARKER.len()..];
    let start = after
        .find("```sh\n")
        .expect("a ```sh block follows the marker")
        + 6;
    let end = after[start..].find("\n```").expect("the block ends");
    &after[start..start + end]
}

/// Splits the block into commands: newlines end a command unless escaped, quoted or inside `$(...)`.
/// Comment lines go.
fn commands(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let (mut single, mut double, mut depth) = (false, false, 0usize);
    let mut chars = block.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if !single && chars.peek() == Some(&'\n') => {
                chars.next();
                current.push(' ');
                continue;
            }
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '(' if !single && !double && current.ends_with('$') => depth += 1,
            ')' if !single && !double && depth > 0 => depth -= 1,
            '#' if !single && !double && current.trim().is_empty() => {
                // A comment line: skip to its end.
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
                current.clear();
                continue;
            }
            '\n' if !single && !double && depth == 0 => {
                if !current.trim().is_empty() {
                    out.push(current.trim().to_owned());
                }
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

/// Splits a command into words as the shell does: quotes removed, `$NAME` expanded outside single
/// quotes.
fn words(command: &str, vars: &HashMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let (mut single, mut double) = (false, false);
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' if !double => {
                single = !single;
                in_word = true;
            }
            '"' if !single => {
                double = !double;
                in_word = true;
            }
            '$' if !single => {
                let braced = chars.peek() == Some(&'{');
                if braced {
                    chars.next();
                }
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if braced {
                    chars.next();
                }
                word.push_str(
                    vars.get(&name)
                        .unwrap_or_else(|| panic!("${name} is not set")),
                );
                in_word = true;
            }
            c if c.is_whitespace() && !single && !double => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// Runs one simple command (`curl ...` or `snowpipe-emulator ...`); answers its output.
async fn run(words: &[String], addr: &str) -> String {
    let words: Vec<String> = words.iter().map(|w| w.replace(DOC_HOST, addr)).collect();
    match words[0].as_str() {
        "snowpipe-emulator" => {
            let out = Command::new(BIN).args(&words[1..]).output().unwrap();
            assert!(out.status.success(), "{words:?}");
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        }
        "curl" => curl(&words[1..]).await,
        other => panic!("the session runs only curl and snowpipe-emulator, not {other}"),
    }
}

/// The curl options the session uses: `-s`, `-X`, `-H`, `-d`/`--data-binary`, and the URL.
async fn curl(args: &[String]) -> String {
    let (mut method, mut url, mut body) = (None, None, None);
    let mut headers = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-s" => {}
            "-X" => method = Some(it.next().unwrap().clone()),
            "-H" => headers.push(it.next().unwrap().clone()),
            "-d" | "--data-binary" => body = Some(it.next().unwrap().clone()),
            other if other.starts_with('-') => panic!("the replay knows no curl option {other}"),
            other => url = Some(other.to_owned()),
        }
    }
    // As curl: a body without -X is a POST, and -d sends a form unless told otherwise.
    let method = method.unwrap_or_else(|| {
        if body.is_some() {
            "POST".into()
        } else {
            "GET".into()
        }
    });
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(url.expect("a URL"));
    let has_type = headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("content-type:"));
    if body.is_some() && !has_type {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    for h in &headers {
        let (k, v) = h.split_once(':').unwrap();
        req = req.header(k.trim(), v.trim());
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http();
    let resp = client.request(req).await.unwrap();
    let status = resp.status();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        status.is_success(),
        "curl {args:?} answered {status}: {text}"
    );
    text
}

#[tokio::test]
async fn the_documented_curl_session_replays() {
    let emu = Emulator::builder()
        .commit_lag(Duration::ZERO)
        .start()
        .await
        .unwrap();
    let addr = emu.addr().to_string();
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut outputs = Vec::new();
    let block = session();
    assert!(
        block.contains("snowpipe-emulator jwt"),
        "the session starts from the jwt subcommand"
    );
    for command in commands(block) {
        let assignment = command.split_once('=').filter(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        });
        match assignment {
            Some((name, value)) if value.starts_with("$(") && value.ends_with(')') => {
                let inner = &value[2..value.len() - 1];
                let (cmd, field) = match inner.rsplit_once("| jq -r .") {
                    Some((cmd, field)) => (cmd, Some(field.trim())),
                    None => (inner, None),
                };
                let mut out = run(&words(cmd, &vars), &addr).await;
                if let Some(field) = field {
                    let v: Value = serde_json::from_str(&out).unwrap();
                    out = v[field]
                        .as_str()
                        .unwrap_or_else(|| panic!("no .{field} in {out}"))
                        .to_owned();
                }
                vars.insert(name.to_owned(), out);
            }
            Some((name, value)) => {
                let value = words(value, &vars).concat();
                vars.insert(name.to_owned(), value);
            }
            None => outputs.push(run(&words(&command, &vars), &addr).await),
        }
    }
    assert!(vars.contains_key("JWT") && vars.contains_key("TOKEN") && vars.contains_key("NEXT"));
    assert!(
        outputs.contains(&emu.base_url()),
        "hostname discovery answered: {outputs:?}"
    );
    let status = outputs
        .iter()
        .find(|o| o.contains("channel_statuses"))
        .expect("the session reads a status");
    let status: Value = serde_json::from_str(status).unwrap();
    let ch = &status["channel_statuses"]["CH1"];
    assert_eq!(ch["last_committed_offset_token"], "2");
    assert_eq!(ch["rows_inserted"], 2);
    let rows = emu
        .control()
        .rows(demo::DATABASE, "PUBLIC", "EVENTS")
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        outputs.last().unwrap().contains("\"COLOR\":\"red\""),
        "{outputs:?}"
    );
    emu.shutdown().await;
}

#[test]
fn the_mini_shell_reads_what_the_session_writes() {
    let vars = HashMap::from([("A".to_owned(), "x y".to_owned())]);
    assert_eq!(
        words("curl -H \"K: $A\" 'lit $A' ${A}z", &vars),
        ["curl", "-H", "K: x y", "lit $A", "x yz"]
    );
    assert_eq!(
        commands("# c\nA=1\nB=$(curl \\\n  -s x\n  | jq -r .f)\ncurl 'a\nb'\n"),
        ["A=1", "B=$(curl    -s x\n  | jq -r .f)", "curl 'a\nb'"]
    );
}
