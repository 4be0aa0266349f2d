//! Who the client is on the ingest host: the key-pair JWT, hostname discovery and the scoped token, or a
//! programmatic access token in their place.
//!
//! Snowflake documents JSON answers for discovery (`{"hostname"}`) and the token exchange (`{"token"}`);
//! live accounts answer bare text. Both are read, and a quoted JSON string too. The scoped token's lifetime
//! is read from its own `exp` claim (undocumented: ten minutes to an hour is seen) and it is renewed ahead
//! of it; a 401 from the ingest host drops it so the next call fetches another.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use http_body_util::Full;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use snowpipe_api::{RetryConfig, https, retry::Sleep};
use snowpipe_auth::{SigningKey, Token, TokenCache, expiry_of_jwt, key_pair_jwt};

use crate::{
    classify::{self, Kind},
    config::{Credentials, RestConfig},
    error::RestError,
    http::{Http, Unanswered},
};

/// The header naming the kind of bearer token.
pub(crate) const TOKEN_TYPE: &str = "X-Snowflake-Authorization-Token-Type";

/// The lifetime assumed for a scoped token whose own expiry cannot be read: short, so a wrong guess costs
/// one early refresh rather than a run of 401s.
const ASSUMED_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Where the ingest host is, and the name its scoped tokens are scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ingest {
    /// Its base URL: scheme, host, port.
    pub(crate) base: String,
    /// Its host and port, without scheme: the token's scope.
    pub(crate) scope: String,
}

impl Ingest {
    /// The ingest host from a discovery answer or an override: `_` made `-` in the host (a documented
    /// known issue), `https://` when no scheme is given.
    pub(crate) fn from_host(text: &str) -> Option<Self> {
        let text = text.trim().trim_end_matches('/');
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("https".to_owned(), text),
        };
        let scope = rest.split('/').next()?.replace('_', "-");
        if scope.is_empty() {
            return None;
        }
        Some(Self {
            base: format!("{scheme}://{scope}"),
            scope,
        })
    }
}

/// A bearer for the ingest host.
#[derive(Debug, Clone)]
pub(crate) struct Bearer {
    pub(crate) token: Arc<Token>,
    pub(crate) kind: &'static str,
}

/// The client's identity and its tokens.
pub(crate) struct Session {
    http: Http,
    account_base: String,
    account: String,
    user: String,
    role: Option<String>,
    credentials: Credentials,
    ingest_override: Option<String>,
    retry: RetryConfig,
    sleep: Arc<dyn Sleep>,
    key: Mutex<Option<Arc<SigningKey>>>,
    jwt: TokenCache,
    ingest: tokio::sync::OnceCell<Ingest>,
    scoped: TokenCache,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("account_base", &self.account_base)
            .field("user", &self.user)
            .field("role", &self.role)
            .field("ingest", &self.ingest.get())
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(config: &RestConfig, http: Http) -> Self {
        Self {
            http,
            account_base: config.account_base(),
            account: config.account.clone(),
            user: config.user.clone(),
            role: config.role.clone().filter(|r| !r.trim().is_empty()),
            credentials: config.credentials.clone(),
            ingest_override: config.ingest_url.clone(),
            retry: config.retry.clone(),
            sleep: Arc::clone(&config.sleep),
            key: Mutex::default(),
            jwt: TokenCache::default(),
            ingest: tokio::sync::OnceCell::new(),
            scoped: TokenCache::new(config.token_refresh_margin),
        }
    }

    /// The ingest host, discovered on first use (or as configured).
    pub(crate) async fn ingest(&self) -> Result<&Ingest, AuthFailure> {
        self.ingest
            .get_or_try_init(|| async {
                if let Some(url) = &self.ingest_override {
                    return Ingest::from_host(url).ok_or_else(|| AuthFailure {
                        kind: Kind::Permanent,
                        error: RestError::Decode {
                            what: "the ingest URL".to_owned(),
                            origin: url.clone(),
                            reason: "no host".to_owned(),
                        },
                    });
                }
                let answer = self
                    .account_call(
                        "hostname discovery",
                        Method::GET,
                        "/v2/streaming/hostname",
                        None,
                    )
                    .await?;
                let text = String::from_utf8_lossy(&answer);
                let host = read_text_or_json(&text, "hostname");
                let ingest = host.as_deref().and_then(Ingest::from_host);
                tracing::debug!(ingest = ?ingest, "discovered the ingest host");
                ingest.ok_or_else(|| AuthFailure {
                    kind: Kind::Transient,
                    error: RestError::Decode {
                        what: "hostname discovery".to_owned(),
                        origin: self.account_base.clone(),
                        reason: format!(
                            "no host name in the answer {:?}",
                            snowpipe_api::Excerpt::new(&answer)
                        ),
                    },
                })
            })
            .await
    }

    /// The bearer for ingest calls: the programmatic access token, or a scoped token (fetched or renewed
    /// when due).
    pub(crate) async fn bearer(&self) -> Result<Bearer, AuthFailure> {
        if let Some(pat) = self.pat() {
            return Ok(pat);
        }
        let ingest = self.ingest().await?.clone();
        let token = self
            .scoped
            .get_or_refresh(SystemTime::now(), || self.exchange(&ingest))
            .await?;
        Ok(Bearer {
            token,
            kind: "OAUTH",
        })
    }

    /// The programmatic access token as a bearer, when that is how the client authenticates.
    fn pat(&self) -> Option<Bearer> {
        let Credentials::ProgrammaticAccessToken(pat) = &self.credentials else {
            return None;
        };
        // The token's lifetime is the user's business: it is never renewed, only used.
        let never = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX));
        Some(Bearer {
            token: Arc::new(Token::new(pat.expose(), never)),
            kind: "PROGRAMMATIC_ACCESS_TOKEN",
        })
    }

    /// Forgets a scoped token the ingest host refused, so the next call fetches another.
    pub(crate) async fn refused(&self, bearer: &Bearer) {
        self.scoped.invalidate(&bearer.token).await;
    }

    /// Exchanges a key-pair JWT for a token scoped to the ingest host (and the role, when one is set).
    async fn exchange(&self, ingest: &Ingest) -> Result<Token, AuthFailure> {
        let scope = match &self.role {
            Some(role) => format!("{} session:role:{role}", ingest.scope),
            None => ingest.scope.clone(),
        };
        let form = format!(
            "grant_type={}&scope={}",
            utf8_percent_encode(
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                NON_ALPHANUMERIC
            ),
            utf8_percent_encode(&scope, NON_ALPHANUMERIC)
        );
        let answer = self
            .account_call(
                "the scoped token exchange",
                Method::POST,
                "/oauth/token",
                Some(Bytes::from(form)),
            )
            .await?;
        let text = String::from_utf8_lossy(&answer);
        let Some(value) =
            read_text_or_json(&text, "token").or_else(|| read_text_or_json(&text, "access_token"))
        else {
            return Err(AuthFailure {
                kind: Kind::Transient,
                error: RestError::Decode {
                    what: "the scoped token exchange".to_owned(),
                    origin: self.account_base.clone(),
                    reason: "the answer holds no token".to_owned(),
                },
            });
        };
        let now = SystemTime::now();
        let expires = expiry_of_jwt(&value).unwrap_or(now + ASSUMED_LIFETIME);
        metrics::counter!("snowpipe_streaming_rest_token_refreshes_total").increment(1);
        tracing::debug!(expires_in = ?expires.duration_since(now).unwrap_or_default(), "obtained a scoped token");
        Ok(Token::new(value, expires))
    }

    fn signing_key(&self) -> Result<Arc<SigningKey>, RestError> {
        let mut key = self.key.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = key.as_ref() {
            return Ok(Arc::clone(key));
        }
        let Credentials::KeyPair {
            private_key,
            passphrase,
        } = &self.credentials
        else {
            // Only key-pair sessions sign; the caller checked.
            return Err(RestError::Decode {
                what: "signing".to_owned(),
                origin: self.account_base.clone(),
                reason: "no private key configured".to_owned(),
            });
        };
        let parsed = Arc::new(SigningKey::from_pem(private_key.expose(), passphrase)?);
        *key = Some(Arc::clone(&parsed));
        Ok(parsed)
    }

    /// The bearer for the account host: a key-pair JWT, or the programmatic access token.
    async fn account_bearer(&self) -> Result<Bearer, AuthFailure> {
        if let Some(pat) = self.pat() {
            return Ok(pat);
        }
        let now = SystemTime::now();
        let token = self
            .jwt
            .get_or_refresh(now, || async {
                let key = self.signing_key().map_err(|error| AuthFailure {
                    kind: Kind::Auth,
                    error,
                })?;
                key_pair_jwt(&key, &self.account, &self.user, now).map_err(|e| AuthFailure {
                    kind: Kind::Auth,
                    error: e.into(),
                })
            })
            .await?;
        Ok(Bearer {
            token,
            kind: "KEYPAIR_JWT",
        })
    }

    /// A call to the account host, retried while the failure may pass.
    async fn account_call(
        &self,
        what: &str,
        method: Method,
        path: &str,
        form: Option<Bytes>,
    ) -> Result<Bytes, AuthFailure> {
        let url = format!("{}{path}", self.account_base);
        let origin = self.account_base.clone();
        let mut delays = self.retry.delays();
        loop {
            let bearer = self.account_bearer().await?;
            let mut request = Request::new(Full::new(form.clone().unwrap_or_default()));
            *request.method_mut() = method.clone();
            *request.uri_mut() = url
                .parse()
                .map_err(|e: http::uri::InvalidUri| AuthFailure {
                    kind: Kind::Permanent,
                    error: RestError::Decode {
                        what: what.to_owned(),
                        origin: origin.clone(),
                        reason: format!("bad URL: {e}"),
                    },
                })?;
            let headers = request.headers_mut();
            headers.insert(header::AUTHORIZATION, authorization(&bearer.token));
            headers.insert(TOKEN_TYPE, HeaderValue::from_static(bearer.kind));
            if form.is_some() {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
            }
            let (kind, error, retry_after) = match self.http.send(request).await {
                Ok(answer) if answer.status.is_success() => return Ok(answer.body),
                Ok(answer) => {
                    let body = classify::error_body(&answer.body, &[bearer.token.value()]);
                    let status = answer.status.as_u16();
                    let kind = match classify::kind(status, body.code.as_deref()) {
                        // The account host refuses a JWT or a PAT for good: a 401 here is not a stale token.
                        Kind::Unauthorized | Kind::Auth | Kind::Permanent | Kind::Missing(_) => {
                            Kind::Auth
                        }
                        other => other,
                    };
                    let retry_after =
                        snowpipe_api::retry::retry_after(&answer.headers, SystemTime::now());
                    (
                        kind,
                        RestError::Service {
                            what: what.to_owned(),
                            origin: origin.clone(),
                            status,
                            code: body.code,
                            message: body.message,
                        },
                        retry_after,
                    )
                }
                Err(unanswered) => (
                    Kind::Transient,
                    unanswered_error(what, &origin, unanswered),
                    None,
                ),
            };
            if kind == Kind::Transient
                && let Some(wait) = self.retry.adjust(retry_after, delays.next())
            {
                tracing::debug!(what, %error, ?wait, "retrying a call to the account host");
                self.sleep.sleep(wait).await;
                continue;
            }
            return Err(AuthFailure { kind, error });
        }
    }
}

/// A failure to authenticate or to find the ingest host, with what to do about it.
#[derive(Debug)]
pub(crate) struct AuthFailure {
    pub(crate) kind: Kind,
    pub(crate) error: RestError,
}

/// `Bearer <token>`, marked sensitive so no log of headers shows it.
pub(crate) fn authorization(token: &Token) -> HeaderValue {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.value()))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid-token"));
    value.set_sensitive(true);
    value
}

/// The error of a request that got no answer.
pub(crate) fn unanswered_error(what: &str, origin: &str, unanswered: Unanswered) -> RestError {
    match unanswered {
        Unanswered::NotSent(source) | Unanswered::MaybeSent(source) => RestError::Transport {
            what: what.to_owned(),
            origin: origin.to_owned(),
            failure: https::describe(source.as_ref()),
            source,
        },
        Unanswered::Timeout(timeout) => RestError::Timeout {
            what: what.to_owned(),
            origin: origin.to_owned(),
            timeout,
        },
    }
}

/// A value from an answer that is either `{"<field>": "..."}`, a quoted JSON string, or bare text.
fn read_text_or_json(text: &str, field: &str) -> Option<String> {
    let text = text.trim();
    let value = match text.chars().next()? {
        '{' => serde_json::from_str::<serde_json::Value>(text)
            .ok()?
            .get(field)?
            .as_str()?
            .to_owned(),
        '"' => serde_json::from_str::<String>(text).ok()?,
        _ => text.to_owned(),
    };
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_answers_in_every_shape_give_the_ingest_host() {
        let host = |text: &str| {
            read_text_or_json(text, "hostname")
                .as_deref()
                .and_then(Ingest::from_host)
        };
        let expected = Some(Ingest {
            base: "https://abc-snowpipe.snowflakecomputing.com".into(),
            scope: "abc-snowpipe.snowflakecomputing.com".into(),
        });
        assert_eq!(host("abc_snowpipe.snowflakecomputing.com\n"), expected);
        assert_eq!(host(r#""abc_snowpipe.snowflakecomputing.com""#), expected);
        assert_eq!(
            host(r#"{"hostname":"abc-snowpipe.snowflakecomputing.com","other":1}"#),
            expected
        );
        assert_eq!(
            host("http://127.0.0.1:8080"),
            Some(Ingest {
                base: "http://127.0.0.1:8080".into(),
                scope: "127.0.0.1:8080".into(),
            })
        );
        assert_eq!(host(""), None);
        assert_eq!(host("{}"), None);
    }

    #[test]
    fn token_answers_as_text_or_json() {
        assert_eq!(
            read_text_or_json("eyJ.abc.def", "token").as_deref(),
            Some("eyJ.abc.def")
        );
        assert_eq!(
            read_text_or_json(r#"{"token":"eyJ.abc.def"}"#, "token").as_deref(),
            Some("eyJ.abc.def")
        );
    }

    #[test]
    fn the_authorization_header_is_sensitive() {
        let value = authorization(&Token::new("secret", SystemTime::now()));
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains("secret"));
    }
}
