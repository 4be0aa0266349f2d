//! One HTTP exchange: the shared client (proxies, TLS), the attempt's timeout, and whether a failed
//! request may have reached the service.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use snowpipe_api::{
    BoxError,
    https::{self, ClientOptions, HttpsClient},
};

use crate::config::{ConfigError, RestConfig};

/// Answers above this size are refused rather than buffered: no answer of the protocol comes near it.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Sent with every request: without `Accept` the service answers an error.
const USER_AGENT: &str = concat!("snowpipe-rest/", env!("CARGO_PKG_VERSION"));

/// An answer, read in full.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// A request that got no answer.
#[derive(Debug)]
pub(crate) enum Unanswered {
    /// The connection failed before any byte of the request was written.
    NotSent(BoxError),
    /// The request may have reached the service.
    MaybeSent(BoxError),
    /// No answer within the timeout: the request may have reached the service.
    Timeout(Duration),
}

/// The pooled connections to both hosts.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: HttpsClient,
    timeout: Duration,
}

impl Http {
    pub(crate) fn new(config: &RestConfig) -> Result<Self, ConfigError> {
        let options = ClientOptions::default()
            .connect_timeout(config.connect_timeout.min(config.timeout))
            .idle(16, Duration::from_secs(90));
        let client = https::client(&options).map_err(|e| ConfigError::Tls(e.to_string()))?;
        Ok(Self {
            client,
            timeout: config.timeout,
        })
    }

    /// Sends `request` once (adding `Accept` and `User-Agent`) and reads the whole answer, within the
    /// timeout.
    pub(crate) async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Answer, Unanswered> {
        let headers = request.headers_mut();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                // A connect error happens before any byte of the request is written; hyper-util itself
                // resends requests that a pooled connection closed before taking them.
                if e.is_connect() {
                    Unanswered::NotSent(Box::new(e))
                } else {
                    Unanswered::MaybeSent(Box::new(e))
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(Unanswered::MaybeSent)?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(Unanswered::Timeout(self.timeout)),
        }
    }
}
