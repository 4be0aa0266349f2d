//! Opening a TCP connection: directly, or through an HTTP proxy with `CONNECT`.
//!
//! Only `https://` destinations are proxied. A `CONNECT` tunnel carries TLS end to end, so the proxy
//! learns the host name and nothing else; proxies commonly refuse `CONNECT` to plain-HTTP ports, and the
//! plain-HTTP services this project talks to (the emulator, a sidecar beside the pipeline) are local, so
//! `HTTP_PROXY` is deliberately not used.

use std::{
    error::Error as StdError,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::Uri;
use hyper_util::{
    client::{
        legacy::connect::{HttpConnector, proxy::Tunnel},
        proxy::matcher::Matcher,
    },
    rt::TokioIo,
};
use tokio::net::TcpStream;
use tower_service::Service;

use super::ClientOptions;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Opens connections for [`super::HttpsClient`], through the proxy the rules name for the destination.
#[derive(Clone)]
pub struct Connector {
    direct: HttpConnector,
    proxies: Arc<Matcher>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The proxy rules may hold a proxy's password.
        f.debug_struct("Connector").finish_non_exhaustive()
    }
}

/// The proxy could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy's URL is not `http://`: a TLS connection to the proxy itself is not supported.
    #[error(
        "proxy {proxy}: only http:// proxies are supported (the tunnel to the service is still TLS); check HTTPS_PROXY"
    )]
    UnsupportedScheme {
        /// The proxy, without credentials.
        proxy: String,
    },
    /// The proxy refused or failed the tunnel.
    #[error("proxy {proxy}: {source}; check HTTPS_PROXY and NO_PROXY")]
    Tunnel {
        /// The proxy, without credentials.
        proxy: String,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
}

impl Connector {
    /// Proxy rules from `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` (either case), read now.
    pub fn from_env(options: &ClientOptions) -> Self {
        Self::with_proxies(options, Matcher::from_env())
    }

    /// Given proxy rules.
    pub fn with_proxies(options: &ClientOptions, proxies: Matcher) -> Self {
        let mut direct = HttpConnector::new();
        direct.enforce_http(false);
        direct.set_connect_timeout(Some(options.connect_timeout));
        direct.set_nodelay(true);
        direct.set_keepalive(options.tcp_keepalive);
        Self {
            direct,
            proxies: Arc::new(proxies),
        }
    }

    /// Never a proxy, whatever the environment says.
    pub fn direct(options: &ClientOptions) -> Self {
        Self::with_proxies(options, Matcher::builder().build())
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, BoxError>> + Send>>;

impl Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.direct.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let proxy = (dst.scheme_str() == Some("https"))
            .then(|| self.proxies.intercept(&dst))
            .flatten();
        let Some(proxy) = proxy else {
            let connecting = self.direct.call(dst);
            return Box::pin(async move { connecting.await.map_err(Into::into) });
        };
        let name = super::origin(proxy.uri());
        if proxy.uri().scheme_str() != Some("http") {
            return Box::pin(
                async move { Err(ProxyError::UnsupportedScheme { proxy: name }.into()) },
            );
        }
        let mut tunnel = Tunnel::new(proxy.uri().clone(), self.direct.clone());
        if let Some(auth) = proxy.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        Box::pin(async move {
            let tunnelled = match std::future::poll_fn(|cx| tunnel.poll_ready(cx)).await {
                Ok(()) => tunnel.call(dst).await,
                Err(e) => Err(e),
            };
            tunnelled.map_err(|source| {
                ProxyError::Tunnel {
                    proxy: name,
                    source: Box::new(source),
                }
                .into()
            })
        })
    }
}
