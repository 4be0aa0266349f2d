//! The HTTP client every client of the project shares: the sidecar's, the SQL API's and the REST API's.
//!
//! One place decides how a connection is made, so that all of them behave alike where users meet it:
//!
//! - TLS through rustls with the webpki roots (no system OpenSSL to install), plain HTTP for `http://`
//!   URLs (a sidecar on a private network, the emulator);
//! - `HTTPS_PROXY`/`https_proxy`, `ALL_PROXY` and `NO_PROXY` read from the environment, as curl reads
//!   them, for `https://` URLs: the connection goes through the proxy with `CONNECT`, so the proxy sees
//!   only the host name, never the request ([`connector`]);
//! - a failed connection named by its cause — refused, DNS, TLS, timeout, proxy — rather than
//!   "client error (Connect)" ([`ConnectFailure`]).

mod connector;
mod failure;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

pub use connector::{Connector, ProxyError};
pub use failure::{ConnectFailure, describe};

/// A pooled HTTP/1.1 client over [`Connector`], with TLS for `https://` URLs.
pub type HttpsClient = Client<HttpsConnector<Connector>, Full<Bytes>>;

/// How [`client`] sets up its connections.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The longest a TCP connection (to the service or to the proxy) may take to open.
    pub connect_timeout: Duration,
    /// TCP keep-alive probes on open connections; `None` leaves the system default.
    pub tcp_keepalive: Option<Duration>,
    /// Idle connections kept per host for reuse; 0 closes each connection after its request.
    pub max_idle_per_host: usize,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            tcp_keepalive: Some(Duration::from_secs(60)),
            max_idle_per_host: 8,
            idle_timeout: Duration::from_secs(90),
        }
    }
}

impl ClientOptions {
    /// Sets the connect timeout.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets TCP keep-alive (`None`: the system default).
    #[must_use]
    pub fn tcp_keepalive(mut self, interval: Option<Duration>) -> Self {
        self.tcp_keepalive = interval;
        self
    }

    /// Sets how many idle connections are kept per host, and for how long.
    #[must_use]
    pub fn idle(mut self, max_per_host: usize, timeout: Duration) -> Self {
        self.max_idle_per_host = max_per_host;
        self.idle_timeout = timeout;
        self
    }
}

/// TLS could not be set up (the crypto provider refused its configuration): a broken build, not an input.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS: {0}")]
pub struct TlsSetupError(String);

/// A client honouring the proxy variables of the environment as it is now.
pub fn client(options: &ClientOptions) -> Result<HttpsClient, TlsSetupError> {
    client_with(options, Connector::from_env(options))
}

/// A client over a given [`Connector`] (tests choose the proxy rules instead of the environment).
pub fn client_with(
    options: &ClientOptions,
    connector: Connector,
) -> Result<HttpsClient, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(provider)
        .map_err(|e| TlsSetupError(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(options.max_idle_per_host)
        .pool_idle_timeout(options.idle_timeout)
        .build(https))
}

/// The scheme, host and port of a URL: what an error may name without quoting user information, a path
/// or a query that could hold a credential.
pub fn origin(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or("(no host)");
    let port = uri.port().map(|p| format!(":{p}")).unwrap_or_default();
    match uri.scheme_str() {
        Some(scheme) => format!("{scheme}://{host}{port}"),
        None => format!("{host}{port}"),
    }
}
