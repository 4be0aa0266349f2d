//! [`HttpClient`]: the sidecar service's HTTP/JSON protocol, call by call.

use std::{fmt::Write as _, future::Future, pin::Pin, sync::Arc, time::SystemTime};

use backon::Retryable;
use bytes::Bytes;
use flate2::{Compression, write::GzEncoder};
use http::{Method, StatusCode, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Serialize, de::DeserializeOwned};

use super::{
    classify::is_retryable,
    config::{ConfigError, HttpConfig},
    error::{Endpoint as Call, HttpError as Error, Result},
    transport::{Answer, Body, Outgoing, Transport},
    wire::{
        BulkStatusResponse, ChannelResponse, CreateChannelRequest, InsertResponse, StatusResponse,
        write_insert_json,
    },
};
use crate::{Row, retry};

/// Characters left as they are in a path segment or query value; everything else is percent-encoded, so a
/// channel id can never change the path or add a parameter.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Bodies above this size are compressed on tokio's blocking pool. Compressing inline would hold the calling
/// task for the whole time, and with it every insert that the caller drives from the same task (a stream of
/// tables with `buffered`), so their compression would run one after another instead of side by side.
const BLOCKING_COMPRESS_BYTES: usize = 1 << 20;

/// The client of the Snowpipe Streaming sidecar service: one method per endpoint of its protocol, answers as
/// the protocol's bodies. [`Sidecar`](super::Sidecar) builds the backend-neutral [`Backend`](crate::Backend)
/// on it.
///
/// Cheap to clone (clones share the connection pool). Every call retries retryable failures as
/// [`RetryConfig`](crate::RetryConfig) says, logging each retry at `warn` level. Answers that say
/// `success: false` are returned as data; `Err` means the call itself failed.
///
/// ```no_run
/// use snowpipe_api::sidecar::{HttpClient, HttpConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = HttpClient::new(HttpConfig { base_url: "http://localhost:9078".into(), ..HttpConfig::default() })?;
/// let statuses = client.bulk_status(&["channel-1".to_owned()]).await?;
/// for id in &statuses.not_found {
///     println!("{id} is gone: the service restarted");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    transport: Transport,
    /// `scheme://authority/prefix` without a trailing slash.
    base: String,
    config: HttpConfig,
}

impl HttpClient {
    /// Builds a client, checking every setting.
    pub fn new(config: HttpConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let base = base_url(&config.base_url)?;
        let transport = Transport::new(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                base,
                config,
            }),
        })
    }

    /// The settings the client was built with.
    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    fn uri(&self, call: Call, path: &str) -> Result<Uri> {
        format!("{}{path}", self.inner.base)
            .parse()
            .map_err(|e| Error::InvalidRequest {
                call,
                reason: format!("bad request URI: {e}"),
            })
    }

    /// Sends with retries and returns the answer of the last attempt.
    async fn exchange(&self, outgoing: Outgoing) -> Result<Answer> {
        let retry = &self.inner.config.retry;
        let sleep = Arc::clone(&self.inner.config.sleep);
        // Each attempt owns cheap clones (shared pool, shared body bytes): a future that borrows across the
        // retry loop trips the compiler's higher-ranked `Send` inference.
        let attempt = || {
            let transport = self.inner.transport.clone();
            let outgoing = outgoing.clone();
            async move {
                let call = outgoing.call;
                let answer = transport.send(outgoing.clone()).await?;
                if retryable_status(answer.status) {
                    return Err(Error::UnexpectedStatus {
                        call,
                        status: answer.status.as_u16(),
                        retry_after: retry::retry_after(&answer.headers, SystemTime::now()),
                        body: outgoing.excerpt(&answer.body),
                    });
                }
                Ok(answer)
            }
        };
        let (call, uri) = (outgoing.call, outgoing.uri.clone());
        let adjust_with = retry.clone();
        let retrying = attempt
            .retry(retry.backoff())
            .sleep(move |delay| sleep.sleep(delay))
            .when(is_retryable)
            .adjust(move |error: &Error, next| adjust_with.adjust(error.retry_after(), next))
            .notify(move |error, delay| {
                tracing::warn!(%call, %uri, ?delay, %error, "retrying service call");
            });
        // Naming the future as `Send` here, rather than leaving it to `async_trait`'s boxing, is what lets the
        // compiler prove it for every lifetime (rust-lang/rust#102211).
        let retrying: Pin<Box<dyn Future<Output = Result<Answer>> + Send + '_>> =
            Box::pin(retrying);
        retrying.await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        outgoing: Outgoing,
        channel_id: Option<&str>,
    ) -> Result<T> {
        let call = outgoing.call;
        let answer = self.exchange(outgoing.clone()).await?;
        match (answer.status, channel_id) {
            (StatusCode::OK, _) => {
                serde_json::from_slice(&answer.body).map_err(|source| Error::Decode {
                    call,
                    source,
                    body: outgoing.excerpt(&answer.body),
                })
            }
            (StatusCode::NOT_FOUND, Some(channel_id)) => Err(Error::ChannelNotFound {
                call,
                channel_id: channel_id.to_owned(),
            }),
            (status, _) => Err(unexpected(&outgoing, status, &answer)),
        }
    }

    fn json_body(call: Call, value: &impl Serialize) -> Result<Body> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::InvalidRequest {
            call,
            reason: e.to_string(),
        })?;
        Ok(Body {
            bytes: bytes.into(),
            gzip: false,
        })
    }

    async fn insert_body(&self, rows: &Arc<[Row]>, offset: &str) -> Result<Body> {
        let invalid = |reason: String| Error::InvalidRequest {
            call: Call::Insert,
            reason,
        };
        let hint = json_len_hint(rows, offset);
        let Some(level) = self.inner.config.insert_gzip_level else {
            let mut json = Vec::with_capacity(hint);
            write_insert_json(rows, offset, &mut json)
                .map_err(|e| invalid(format!("cannot encode rows: {e}")))?;
            return Ok(Body {
                bytes: json.into(),
                gzip: false,
            });
        };
        let bytes = if hint > BLOCKING_COMPRESS_BYTES {
            // The rows are shared: the blocking task takes a handle to them and writes them straight into the
            // compressor, with no serialised copy in between.
            let (rows, offset) = (Arc::clone(rows), offset.to_owned());
            tokio::task::spawn_blocking(move || gzip(&rows, &offset, level))
                .await
                .map_err(|e| invalid(format!("compressing the rows failed: {e}")))?
        } else {
            gzip(rows, offset, level)
        }
        .map_err(|e| invalid(format!("cannot compress rows: {e}")))?;
        Ok(Body { bytes, gzip: true })
    }

    /// `POST /channels`: opens the channel the request names. Opening it again returns it anew and
    /// invalidates older ids.
    pub async fn create_channel(&self, request: &CreateChannelRequest) -> Result<ChannelResponse> {
        let call = Call::CreateChannel;
        let body = Self::json_body(call, request)?;
        let mut outgoing =
            Outgoing::new(call, Method::POST, self.uri(call, "/channels")?, Some(body));
        let account = &request.account;
        outgoing.secrets = [
            account.private_key.expose().to_owned(),
            account.private_key_passphrase.expose().to_owned(),
        ]
        .into();
        self.call(outgoing, None).await
    }

    /// `DELETE /channels/{id}?sync=`: with `sync`, the service waits until the channel's buffered rows are
    /// flushed first; without, the rows still flush after the channel is gone.
    pub async fn delete_channel(&self, channel_id: &str, sync: bool) -> Result<()> {
        let call = Call::DeleteChannel;
        let path = format!("/channels/{}?sync={sync}", encode(channel_id));
        let outgoing = Outgoing::new(call, Method::DELETE, self.uri(call, &path)?, None);
        let answer = self.exchange(outgoing.clone()).await?;
        match answer.status {
            StatusCode::NO_CONTENT | StatusCode::ACCEPTED | StatusCode::OK => Ok(()),
            StatusCode::NOT_FOUND => Err(Error::ChannelNotFound {
                call,
                channel_id: channel_id.to_owned(),
            }),
            status => Err(unexpected(&outgoing, status, &answer)),
        }
    }

    /// `GET /channels/{id}`: reads a channel, with its table's schema.
    pub async fn get_channel(&self, channel_id: &str) -> Result<ChannelResponse> {
        let call = Call::GetChannel;
        let path = format!("/channels/{}", encode(channel_id));
        self.call(
            Outgoing::new(call, Method::GET, self.uri(call, &path)?, None),
            Some(channel_id),
        )
        .await
    }

    /// `POST /channels/{id}/insert`: appends rows marked with the offset token, gzip-compressed unless the
    /// settings say otherwise. Not idempotent: when it fails with an unknown outcome
    /// ([`HttpError::is_outcome_unknown`](super::HttpError::is_outcome_unknown)), the rows may be in.
    pub async fn insert(
        &self,
        channel_id: &str,
        rows: &Arc<[Row]>,
        offset: &str,
    ) -> Result<Inserted> {
        let call = Call::Insert;
        let body = self.insert_body(rows, offset).await?;
        let body_bytes = body.bytes.len() as u64;
        let path = format!("/channels/{}/insert", encode(channel_id));
        let outgoing = Outgoing::new(call, Method::POST, self.uri(call, &path)?, Some(body));
        let response = self.call(outgoing, Some(channel_id)).await?;
        Ok(Inserted {
            response,
            body_bytes,
        })
    }

    /// `GET /channels/{id}/status`: one channel's committed and latest inserted offsets, checked on the
    /// channel itself.
    pub async fn channel_status(&self, channel_id: &str) -> Result<StatusResponse> {
        let call = Call::Status;
        let path = format!("/channels/{}/status", encode(channel_id));
        self.call(
            Outgoing::new(call, Method::GET, self.uri(call, &path)?, None),
            Some(channel_id),
        )
        .await
    }

    /// `GET /channels/bulk-status`: statuses of many channels; unknown ids are listed in `not_found`. No
    /// call is made for no ids.
    pub async fn bulk_status(&self, channel_ids: &[String]) -> Result<BulkStatusResponse> {
        if channel_ids.is_empty() {
            return Ok(BulkStatusResponse {
                success: true,
                ..BulkStatusResponse::default()
            });
        }
        let call = Call::BulkStatus;
        let mut path = String::from("/channels/bulk-status");
        for (i, id) in channel_ids.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            let _ = write!(path, "{sep}channelIds={}", encode(id));
        }
        self.call(
            Outgoing::new(call, Method::GET, self.uri(call, &path)?, None),
            None,
        )
        .await
    }
}

/// The outcome of an insert the service answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inserted {
    /// The service's answer.
    pub response: InsertResponse,
    /// Bytes of the request body as sent (after compression), for metrics.
    pub body_bytes: u64,
}

/// The size of an insert body before compression, give or take the offset's escapes.
fn json_len_hint(rows: &[Row], offset: &str) -> usize {
    rows.iter().map(|r| r.len() + 1).sum::<usize>() + offset.len() + 24
}

fn encode(value: &str) -> impl std::fmt::Display + '_ {
    utf8_percent_encode(value, UNRESERVED)
}

fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED)
}

fn unexpected(outgoing: &Outgoing, status: StatusCode, answer: &Answer) -> Error {
    Error::UnexpectedStatus {
        call: outgoing.call,
        status: status.as_u16(),
        body: outgoing.excerpt(&answer.body),
        retry_after: retry::retry_after(&answer.headers, SystemTime::now()),
    }
}

/// Writes the request into a gzip encoder through a buffer: the encoder gets blocks of 64 KiB, never the many
/// tiny writes of single tokens and rows, which cost it more than the copying the buffer does.
fn gzip(rows: &[Row], offset: &str, level: u32) -> std::io::Result<Bytes> {
    // JSON rows shrink to well under a quarter; a fair first guess saves most reallocations.
    let encoder = GzEncoder::new(
        Vec::with_capacity(json_len_hint(rows, offset) / 4 + 64),
        Compression::new(level),
    );
    let mut buffered = std::io::BufWriter::with_capacity(64 * 1024, encoder);
    write_insert_json(rows, offset, &mut buffered)?;
    let encoder = buffered
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    Ok(encoder.finish()?.into())
}

/// Checks the base URL and returns it without a trailing slash.
fn base_url(url: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::BaseUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Err(invalid("the scheme must be http or https")),
        None => return Err(invalid("the URL needs a scheme (http:// or https://)")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("the URL needs a host"));
    }
    if uri.query().is_some() {
        return Err(invalid("the URL must not have a query"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_is_checked_and_trimmed() {
        assert_eq!(
            base_url("http://localhost:9078/").unwrap(),
            "http://localhost:9078"
        );
        assert_eq!(
            base_url("https://proxy.example/snowpipe").unwrap(),
            "https://proxy.example/snowpipe"
        );
        for bad in [
            "localhost:9078",
            "ftp://host",
            "http://",
            "not a url",
            "http://h/?a=b",
        ] {
            assert!(
                matches!(base_url(bad), Err(ConfigError::BaseUrl { .. })),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn channel_ids_cannot_escape_their_path_segment() {
        assert_eq!(
            encode("a/b?c=d&e#f g").to_string(),
            "a%2Fb%3Fc%3Dd%26e%23f%20g"
        );
        assert_eq!(encode("plain-id_1.2~x").to_string(), "plain-id_1.2~x");
    }
}
