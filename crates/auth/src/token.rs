//! One bearer token shared by a client's requests and renewed ahead of its expiry, whatever issues it
//! (key-pair JWTs signed here, OAuth scoped tokens fetched from Snowflake).
//!
//! Time is a parameter of every call, never read from a clock, so callers decide what "now" is and tests
//! step through a token's life without waiting.

use std::{
    fmt,
    future::Future,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::{Secret, jwt::RENEW_BEFORE};

/// A bearer token and when it stops being accepted.
///
/// `Debug` redacts the value: a token is as good as a password until it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    value: Secret,
    expires_at: SystemTime,
}

impl Token {
    /// A token whose value is `value`, valid until `expires_at`.
    pub fn new(value: impl Into<String>, expires_at: SystemTime) -> Self {
        Self {
            value: Secret::new(value),
            expires_at,
        }
    }

    /// The token itself, for the `Authorization: Bearer` header. Never log it.
    pub fn value(&self) -> &str {
        self.value.expose()
    }

    /// When the issuer stops accepting the token.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("value", &self.value)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The cached token with the time it is due for renewal, fixed when it was obtained.
struct Cached {
    token: Arc<Token>,
    renew_at: SystemTime,
}

/// Holds one bearer token and refreshes it ahead of its expiry, one refresh at a time.
///
/// A token is reused while `now` is before its renewal time: `renew_before` ahead of its expiry, or, for a
/// token that lived less than twice `renew_before` when it was obtained, halfway through what it had left,
/// so that a short-lived token is not fetched again on every call.
///
/// Refreshes are single flight: callers that find the token due wait for the one refresh under way and
/// then share its token. A refresh that fails caches nothing; its error goes to the caller whose `refresh`
/// ran, and the next caller runs its own. Dropping a caller's future mid-refresh (e.g. on a timeout) also
/// caches nothing.
pub struct TokenCache {
    renew_before: Duration,
    current: Mutex<Option<Cached>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("renew_before", &self.renew_before)
            .finish_non_exhaustive()
    }
}

impl Default for TokenCache {
    /// A cache renewing [`RENEW_BEFORE`] ahead of expiry, as key-pair JWTs need.
    fn default() -> Self {
        Self::new(RENEW_BEFORE)
    }
}

impl TokenCache {
    /// An empty cache renewing its token `renew_before` ahead of the token's expiry.
    pub fn new(renew_before: Duration) -> Self {
        Self {
            renew_before,
            current: Mutex::new(None),
        }
    }

    /// How long before its expiry a token is renewed.
    pub fn renew_before(&self) -> Duration {
        self.renew_before
    }

    /// The cached token while it is not due for renewal at `now`; otherwise the token `refresh` returns,
    /// which is cached for the next callers.
    ///
    /// `refresh` runs at most once per call, and not at all when another caller refreshed the token while
    /// this one waited. A caller that waited still judges the token by the `now` it passed in, which
    /// `renew_before` leaves ample room for.
    ///
    /// # Errors
    ///
    /// The error of `refresh`, when it ran and failed.
    pub async fn get_or_refresh<F, Fut, E>(
        &self,
        now: SystemTime,
        refresh: F,
    ) -> Result<Arc<Token>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, E>>,
    {
        // Held across the refresh on purpose: it is what makes concurrent callers wait and reuse the result.
        let mut current = self.current.lock().await;
        if let Some(cached) = current.as_ref().filter(|c| now < c.renew_at) {
            return Ok(Arc::clone(&cached.token));
        }
        let token = Arc::new(refresh().await?);
        let renew_at = self.renew_at(&token, now);
        *current = Some(Cached {
            token: Arc::clone(&token),
            renew_at,
        });
        Ok(token)
    }

    /// Forgets the cached token if it is still `stale`, e.g. after the server answered 401 to it, so the next
    /// [`get_or_refresh`](Self::get_or_refresh) refreshes. A token refreshed meanwhile by another caller is
    /// kept. Tokens are compared by value and expiry.
    pub async fn invalidate(&self, stale: &Token) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| *c.token == *stale) {
            *current = None;
        }
    }

    /// When `token`, obtained at `now`, is due for renewal.
    fn renew_at(&self, token: &Token, now: SystemTime) -> SystemTime {
        let left = token.expires_at.duration_since(now).unwrap_or_default();
        // Only a token expiring near the platform's earliest time could underflow; renew it straight away.
        token
            .expires_at
            .checked_sub(self.renew_before.min(left / 2))
            .unwrap_or(now)
    }
}

/// The expiry (`exp` claim, seconds since the epoch) of a JWT, read from its payload without verifying the
/// signature: for tokens the client is handed rather than signs, such as OAuth scoped tokens, whose
/// lifetime Snowflake does not document. `None` when `token` is not a JWT with a numeric `exp`.
pub fn expiry_of_jwt(token: &str) -> Option<SystemTime> {
    #[derive(Deserialize)]
    struct Payload {
        exp: serde_json::Number,
    }
    let payload = token.trim().split('.').nth(1)?;
    // Padding is not part of a JWT, but tolerating it costs nothing.
    let json = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let exp = serde_json::from_slice::<Payload>(&json).ok()?.exp;
    let since_epoch = match exp.as_u64() {
        Some(seconds) => Duration::from_secs(seconds),
        // RFC 7519 allows fractional seconds.
        None => Duration::try_from_secs_f64(exp.as_f64()?).ok()?,
    };
    UNIX_EPOCH.checked_add(since_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn a_token_is_renewed_ahead_of_expiry_or_halfway_when_short_lived() {
        let cache = TokenCache::new(Duration::from_secs(300));
        let check = |obtained: u64, expires: u64, renew: u64| {
            let token = Token::new("t", at(expires));
            assert_eq!(
                cache.renew_at(&token, at(obtained)),
                at(renew),
                "{obtained} {expires}"
            );
        };
        check(1_000, 4_600, 4_300);
        check(1_000, 1_600, 1_300);
        check(1_000, 1_240, 1_120);
        check(1_000, 1_000, 1_000);
        check(1_000, 900, 900);
    }

    #[test]
    fn expiry_is_read_from_integer_and_fractional_claims_only() {
        let jwt = |payload: &str| format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(payload));
        assert_eq!(
            expiry_of_jwt(&jwt(r#"{"exp":1750003540}"#)),
            Some(at(1_750_003_540))
        );
        assert_eq!(
            expiry_of_jwt(&jwt(r#"{"exp":1750003540.5}"#)),
            Some(UNIX_EPOCH + Duration::from_millis(1_750_003_540_500))
        );
        assert_eq!(expiry_of_jwt(&jwt(r#"{"exp":-1}"#)), None);
        assert_eq!(expiry_of_jwt(&jwt(r#"{"exp":"soon"}"#)), None);
        assert_eq!(expiry_of_jwt(&jwt(r#"{"iat":1}"#)), None);
        assert_eq!(expiry_of_jwt("not a token"), None);
        assert_eq!(expiry_of_jwt("a.!!!.c"), None);
    }
}
