//! The shared HTTP client against real sockets on loopback: failures named by cause, proxies used
//! for `https://` only, `NO_PROXY` honoured, proxy credentials sent but never shown.

use std::{
    io::{Read, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
    thread,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::proxy::matcher::Matcher;
use snowpipe_api::https::{self, ClientOptions, ConnectFailure, Connector};

/// What a failed GET of `url` is named, through a client with the given proxy rules.
async fn failure_of(url: &str, proxies: Matcher) -> (ConnectFailure, String) {
    let options = ClientOptions::default();
    let client = https::client_with(&options, Connector::with_proxies(&options, proxies)).unwrap();
    let request = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let error = client.request(request).await.unwrap_err();
    (https::describe(&error), format!("{error:?}"))
}

fn no_proxy() -> Matcher {
    Matcher::builder().build()
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A one-shot server that records the first request head it reads and answers `reply`; with `listen`
/// false, it answers at once without reading (a TLS client speaks first and never sends a blank line).
fn one_shot(reply: &'static [u8]) -> (u16, Arc<Mutex<String>>) {
    server(reply, true)
}

fn server(reply: &'static [u8], listen: bool) -> (u16, Arc<Mutex<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(String::new()));
    let record = Arc::clone(&seen);
    thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut head = Vec::new();
            let mut byte = [0_u8; 1];
            while listen && !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1
            {
                head.push(byte[0]);
            }
            *record.lock().unwrap() = String::from_utf8_lossy(&head).into_owned();
            let _ = stream.write_all(reply);
        }
    });
    (port, seen)
}

#[tokio::test]
async fn a_closed_port_is_named_refused() {
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let (failure, _) = failure_of(&url, no_proxy()).await;
    assert_eq!(failure, ConnectFailure::Refused);
}

#[tokio::test]
async fn an_unknown_host_is_named_dns() {
    let (failure, debug) = failure_of("http://no-such-account.invalid/", no_proxy()).await;
    assert_eq!(failure, ConnectFailure::Dns, "{debug}");
}

#[tokio::test]
async fn a_plain_http_server_behind_an_https_url_is_named_tls() {
    let (port, _) = server(
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
        false,
    );
    let url = format!("https://127.0.0.1:{port}/");
    let (failure, debug) = failure_of(&url, no_proxy()).await;
    assert_eq!(failure, ConnectFailure::Tls, "{debug}");
}

#[tokio::test]
async fn https_goes_through_the_proxy_with_connect_and_its_credentials() {
    let (proxy_port, seen) = one_shot(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
    let proxies = Matcher::builder()
        .https(format!("http://loader:hunter2@127.0.0.1:{proxy_port}"))
        .build();
    let (failure, _) = failure_of("https://myorg-acct.snowflakecomputing.com/x", proxies).await;
    assert_eq!(failure, ConnectFailure::Proxy);
    let head = seen.lock().unwrap().clone();
    assert!(
        head.starts_with("CONNECT myorg-acct.snowflakecomputing.com:443 HTTP/1.1\r\n"),
        "{head}"
    );
    // base64("loader:hunter2")
    assert!(
        head.contains("Basic bG9hZGVyOmh1bnRlcjI="),
        "credentials go to the proxy: {head}"
    );
}

#[tokio::test]
async fn a_proxy_failure_names_the_proxy_without_its_password() {
    let (proxy_port, _) = one_shot(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
    let options = ClientOptions::default();
    let proxies = Matcher::builder()
        .https(format!("http://loader:hunter2@127.0.0.1:{proxy_port}"))
        .build();
    let client = https::client_with(&options, Connector::with_proxies(&options, proxies)).unwrap();
    let request = http::Request::get("https://acct.snowflakecomputing.com/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let error = client.request(request).await.unwrap_err();
    let mut messages = String::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = current {
        messages.push_str(&format!("{e} / {e:?}\n"));
        current = e.source();
    }
    assert!(
        messages.contains(&format!("http://127.0.0.1:{proxy_port}")),
        "{messages}"
    );
    assert!(!messages.contains("hunter2"), "{messages}");
}

#[tokio::test]
async fn no_proxy_hosts_and_plain_http_go_direct() {
    let (proxy_port, seen) = one_shot(b"HTTP/1.1 403 Forbidden\r\n\r\n");
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let proxies = || {
        Matcher::builder()
            .https(proxy.clone())
            .http(proxy.clone())
            .no("internal.invalid")
            .build()
    };
    let (failure, _) = failure_of("https://acct.internal.invalid/", proxies()).await;
    assert_eq!(
        failure,
        ConnectFailure::Dns,
        "NO_PROXY host resolved directly"
    );
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let (failure, _) = failure_of(&url, proxies()).await;
    assert_eq!(failure, ConnectFailure::Refused, "plain HTTP never proxied");
    assert!(seen.lock().unwrap().is_empty(), "the proxy saw no request");
}

#[tokio::test]
async fn an_https_proxy_url_is_refused_by_name() {
    let proxies = Matcher::builder().https("https://127.0.0.1:1").build();
    let (failure, debug) = failure_of("https://acct.snowflakecomputing.com/", proxies).await;
    assert_eq!(failure, ConnectFailure::Proxy, "{debug}");
    assert!(debug.contains("UnsupportedScheme"), "{debug}");
}

#[test]
fn origin_keeps_scheme_host_and_port_only() {
    let uri: http::Uri = "https://user:secret@acct.example:8443/path?token=abc"
        .parse()
        .unwrap();
    assert_eq!(https::origin(&uri), "https://acct.example:8443");
}
