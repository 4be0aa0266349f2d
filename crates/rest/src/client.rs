//! [`RestClient`]: the ingest host's calls, each retried as the protocol allows, with the scoped token
//! refreshed once on 401.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::SystemTime,
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use http_body_util::Full;
use snowpipe_api::{Call, ChannelRef, Error, retry};

use crate::{
    auth::{self, AuthFailure, Session, TOKEN_TYPE},
    classify::{self, Kind},
    config::{ConfigError, RestConfig},
    error::RestError,
    http::{Http, Unanswered},
    names,
};

/// A client of Snowflake's Snowpipe Streaming REST API, and a [`Backend`](snowpipe_api::Backend).
///
/// Cheap to share behind an [`Arc`]: one client holds the connections, the tokens and every open channel's
/// continuation token for the process.
#[derive(Debug)]
pub struct RestClient {
    pub(crate) config: RestConfig,
    pub(crate) http: Http,
    pub(crate) session: Session,
    /// Each open channel's continuation token, behind a lock held for a whole append so that one channel's
    /// requests go in order.
    channels: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<String>>>>>,
}

/// What a failed ingest call left to its caller.
#[derive(Debug)]
pub(crate) struct Failed {
    /// What to do about it; `None`: no answer came and the request may have been applied.
    pub(crate) kind: Option<Kind>,
    /// Whether the service surely did not apply the request (a 429, a connection that never opened): an
    /// append may then be sent again; after anything else it may be in.
    pub(crate) not_applied: bool,
    pub(crate) error: RestError,
}

impl From<AuthFailure> for Failed {
    fn from(failure: AuthFailure) -> Self {
        Self {
            kind: Some(failure.kind),
            not_applied: true,
            error: failure.error,
        }
    }
}

impl Failed {
    /// The boundary's error for a failure of `call`.
    pub(crate) fn into_error(self, call: Call) -> Error {
        let code = self.error.code();
        let message = self.error.to_string();
        match self.kind {
            Some(Kind::Reopen) => {
                metrics::counter!("snowpipe_streaming_rest_reopen_errors_total", "code" => code.clone())
                    .increment(1);
                Error::Reopen {
                    call,
                    code,
                    message,
                }
            }
            Some(Kind::Unauthorized | Kind::Auth) => Error::Auth {
                call,
                code,
                message,
            },
            Some(Kind::Missing(object)) => Error::MissingObject {
                call,
                object,
                code,
                message,
            },
            Some(Kind::Permanent) => Error::Permanent {
                call,
                code,
                source: Box::new(self.error),
            },
            // A busy or failing service (after the retries), or an open that kept waiting.
            Some(Kind::Transient | Kind::Wait) => {
                if call == Call::Append && !self.not_applied {
                    // 408 and 5xx came after the body went out: the rows may be in.
                    Error::OutcomeUnknown {
                        call,
                        code,
                        source: Box::new(self.error),
                    }
                } else {
                    Error::Retryable {
                        call,
                        code,
                        source: Box::new(self.error),
                    }
                }
            }
            None if call == Call::Append => Error::OutcomeUnknown {
                call,
                code,
                source: Box::new(self.error),
            },
            None => Error::Retryable {
                call,
                code,
                source: Box::new(self.error),
            },
        }
    }
}

/// One ingest call, ready to be sent as often as needed.
#[derive(Debug, Clone)]
pub(crate) struct IngestCall {
    pub(crate) call: Call,
    /// What the call is, for messages: `open channel X of DB.S.T`.
    pub(crate) what: String,
    pub(crate) method: Method,
    /// Path and query after the ingest base URL.
    pub(crate) path: String,
    pub(crate) body: Bytes,
    pub(crate) content_type: &'static str,
    pub(crate) content_encoding: Option<&'static str>,
}

impl RestClient {
    /// A client for `config`. Nothing is sent until the first call; the key is read then.
    ///
    /// # Errors
    ///
    /// A setting that cannot work.
    pub fn new(config: RestConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let http = Http::new(&config)?;
        let session = Session::new(&config, http.clone());
        Ok(Self {
            config,
            http,
            session,
            channels: Mutex::default(),
        })
    }

    /// The settings the client runs with.
    pub fn config(&self) -> &RestConfig {
        &self.config
    }

    /// The ingest host's base URL, discovered on first use unless configured.
    ///
    /// # Errors
    ///
    /// Discovery failed: credentials refused ([`Error::Auth`]), or the account host was unreachable.
    pub async fn ingest_url(&self) -> Result<String, Error> {
        Ok(self
            .session
            .ingest()
            .await
            .map_err(|f| Failed::from(f).into_error(Call::OpenChannel))?
            .base
            .clone())
    }

    /// Discovers the ingest host (unless configured) and obtains a token for it: the scoped token from the
    /// key-pair exchange, or the programmatic access token. Answers the ingest host's base URL. What
    /// `check` asks before the first upload: nothing is written.
    ///
    /// # Errors
    ///
    /// Discovery or the exchange failed: credentials or role refused ([`Error::Auth`]), or a host
    /// unreachable.
    pub async fn authenticate(&self) -> Result<String, Error> {
        let ingest = self.ingest_url().await?;
        self.session
            .bearer()
            .await
            .map_err(|f| Failed::from(f).into_error(Call::OpenChannel))?;
        Ok(ingest)
    }

    /// The slot holding a channel's continuation token.
    pub(crate) fn slot(&self, channel: &ChannelRef) -> Arc<tokio::sync::Mutex<Option<String>>> {
        let key = format!("{}/{}", names::pipe_path(&channel.table), channel.name());
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(channels.entry(key).or_default())
    }

    /// Sends an ingest call, retrying what `retry_in_place` allows with the project's retry policy, and
    /// once more with a fresh token after a 401. Returns the success answer's body.
    pub(crate) async fn send(
        &self,
        call: &IngestCall,
        retry_in_place: impl Fn(&Failed) -> bool,
    ) -> Result<Bytes, Failed> {
        let mut delays = self.config.retry.delays();
        let mut refreshed = false;
        loop {
            let ingest = self.session.ingest().await?;
            let origin = ingest.base.clone();
            let bearer = self.session.bearer().await?;
            let request = build(call, &ingest.base, &bearer)?;
            let (failed, retry_after) = match self.http.send(request).await {
                Ok(answer) if answer.status.is_success() => return Ok(answer.body),
                Ok(answer) => {
                    let status = answer.status.as_u16();
                    let body = classify::error_body(&answer.body, &[bearer.token.value()]);
                    let kind = classify::kind(status, body.code.as_deref());
                    if kind == Kind::Unauthorized && !refreshed {
                        tracing::debug!(what = %call.what, "the scoped token was refused: fetching another");
                        self.session.refused(&bearer).await;
                        refreshed = true;
                        continue;
                    }
                    let retry_after = retry::retry_after(&answer.headers, SystemTime::now());
                    (
                        Failed {
                            kind: Some(kind),
                            not_applied: status == 429,
                            error: RestError::Service {
                                what: call.what.clone(),
                                origin,
                                status,
                                code: body.code,
                                message: body.message,
                            },
                        },
                        retry_after,
                    )
                }
                Err(unanswered) => {
                    let not_applied = matches!(unanswered, Unanswered::NotSent(_));
                    (
                        Failed {
                            kind: not_applied.then_some(Kind::Transient),
                            not_applied,
                            error: auth::unanswered_error(&call.what, &origin, unanswered),
                        },
                        None,
                    )
                }
            };
            if retry_in_place(&failed)
                && let Some(wait) = self.config.retry.adjust(retry_after, delays.next())
            {
                metrics::counter!("snowpipe_streaming_rest_retries_total", "call" => call.call.as_str(), "code" => failed.error.code())
                    .increment(1);
                tracing::debug!(what = %call.what, error = %failed.error, ?wait, "retrying");
                self.config.sleep.sleep(wait).await;
                continue;
            }
            return Err(failed);
        }
    }
}

/// Whether an idempotent call (status, drop) or an open may be sent again at once: whenever the service was
/// busy or failing, or no answer came.
pub(crate) fn retry_idempotent(failed: &Failed) -> bool {
    matches!(failed.kind, None | Some(Kind::Transient))
}

/// Whether an append may be sent again at once: only when the service surely did not take it (429, or a
/// connection that never opened). A 408, a 5xx or a lost answer may have left its rows in.
pub(crate) fn retry_append(failed: &Failed) -> bool {
    failed.kind == Some(Kind::Transient) && failed.not_applied
}

fn build(
    call: &IngestCall,
    base: &str,
    bearer: &auth::Bearer,
) -> Result<Request<Full<Bytes>>, Failed> {
    let url = format!("{base}/v2/streaming/{}", call.path);
    let mut request = Request::new(Full::new(call.body.clone()));
    *request.method_mut() = call.method.clone();
    *request.uri_mut() = url.parse().map_err(|e: http::uri::InvalidUri| Failed {
        kind: Some(Kind::Permanent),
        not_applied: true,
        error: RestError::Decode {
            what: call.what.clone(),
            origin: base.to_owned(),
            reason: format!("cannot build the URL: {e}"),
        },
    })?;
    let headers = request.headers_mut();
    headers.insert(header::AUTHORIZATION, auth::authorization(&bearer.token));
    headers.insert(TOKEN_TYPE, HeaderValue::from_static(bearer.kind));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(call.content_type),
    );
    if let Some(encoding) = call.content_encoding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    Ok(request)
}
