//! One HTTP exchange with the service: connection pool, connection cap, timeout, and the mapping of
//! transport failures to [`Error`] kinds that say whether the request may have been sent.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use tokio::sync::Semaphore;

use super::config::{ConfigError, HttpConfig};
use super::error::{Delivery, Endpoint as Call, HttpError as Error};
use crate::{
    Excerpt,
    https::{self, ClientOptions, HttpsClient},
};

/// Answers above this size are refused rather than buffered: no answer of the protocol comes near it.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A request that can be sent more than once: the body is shared, not copied, between attempts.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) call: Call,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) body: Option<Body>,
    /// Values to scrub from any answer quoted in an error (the credentials a create-channel request carries).
    pub(crate) secrets: Arc<[String]>,
}

impl Outgoing {
    pub(crate) fn new(call: Call, method: Method, uri: Uri, body: Option<Body>) -> Self {
        Self {
            call,
            method,
            uri,
            body,
            secrets: Arc::new([]),
        }
    }

    /// The start of an answer's body for an error message, secrets scrubbed.
    pub(crate) fn excerpt(&self, body: &[u8]) -> Excerpt {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        Excerpt::redacted(body, &secrets)
    }
}

/// A request body and its content headers.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub(crate) bytes: Bytes,
    pub(crate) gzip: bool,
}

/// The service's answer, read in full.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// The pooled connections to the service.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    client: HttpsClient,
    permits: Arc<Semaphore>,
    timeout: Duration,
}

impl Transport {
    pub(crate) fn new(config: &HttpConfig) -> Result<Self, ConfigError> {
        let idle = if config.keep_alive {
            config.max_idle_connections
        } else {
            0
        };
        let options = ClientOptions::default()
            .connect_timeout(config.connect_timeout.min(config.timeout))
            .tcp_keepalive(config.keep_alive.then_some(Duration::from_secs(60)))
            .idle(idle, config.idle_timeout);
        let client = https::client(&options).map_err(|e| ConfigError::Tls(e.to_string()))?;
        Ok(Self {
            client,
            permits: Arc::new(Semaphore::new(config.max_connections)),
            timeout: config.timeout,
        })
    }

    /// Sends the request once and reads the whole answer, within the timeout. Waiting for a free
    /// connection does not count against the timeout.
    ///
    /// Takes itself and the request by value: the retry loop needs a future that borrows nothing.
    pub(crate) async fn send(self, outgoing: Outgoing) -> Result<Answer, Error> {
        let call = outgoing.call;
        let origin = || https::origin(&outgoing.uri);
        let _permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| Error::Transport {
                call,
                origin: origin(),
                delivery: Delivery::NotSent,
                source: Box::new(e),
            })?;
        let exchange = async {
            let response = self.client.request(build(&outgoing)).await.map_err(|e| {
                // A connect error happens before any byte of the request is written; hyper-util itself
                // resends requests that a pooled connection closed before taking them.
                let delivery = if e.is_connect() {
                    Delivery::NotSent
                } else {
                    Delivery::MaybeSent
                };
                Error::Transport {
                    call,
                    origin: origin(),
                    delivery,
                    source: Box::new(e),
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|source| Error::Transport {
                    call,
                    origin: origin(),
                    delivery: Delivery::MaybeSent,
                    source,
                })?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(Error::Timeout {
                call,
                timeout: self.timeout,
                delivery: Delivery::MaybeSent,
            }),
        }
    }
}

fn build(outgoing: &Outgoing) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(
        outgoing
            .body
            .as_ref()
            .map(|b| b.bytes.clone())
            .unwrap_or_default(),
    ));
    *request.method_mut() = outgoing.method.clone();
    *request.uri_mut() = outgoing.uri.clone();
    let headers = request.headers_mut();
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(
        header::USER_AGENT,
        HeaderValue::from_static(concat!("snowpipe-api/", env!("CARGO_PKG_VERSION"))),
    );
    if let Some(body) = &outgoing.body {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if body.gzip {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
    }
    request
}
