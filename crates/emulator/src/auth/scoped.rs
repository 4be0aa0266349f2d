//! Scoped tokens: what `POST /oauth/token` hands out in exchange for a key-pair JWT, and what the ingest
//! host checks on every call. Like Snowflake's, a scoped token is itself a JWT whose `exp` tells its
//! lifetime; the emulator signs it with a secret of its own (HS256: nobody else needs to verify it) and
//! numbers every token it issues, so "every token issued so far has expired" is one number to move.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::hmac;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::json;

/// Who a scoped token speaks for, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    /// `ACCOUNT` as the emulator names it.
    pub(crate) account: String,
    /// The user, resolved.
    pub(crate) user: String,
    /// The role the token's session uses, resolved.
    pub(crate) role: String,
    /// The host the token is scoped to (`127.0.0.1:<port>`).
    pub(crate) scope: String,
}

/// Why a scoped token was refused; the ingest host answers each with 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ScopedTokenError {
    /// Not a JWT of the emulator's shape.
    #[error("the token is not a scoped token issued by this emulator")]
    Malformed,
    /// The signature is not this emulator's.
    #[error("the token's signature is not this emulator's")]
    Signature,
    /// Its `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// Issued before every token was expired by hand.
    #[error("the token has expired (every token issued so far was expired)")]
    Revoked,
    /// Scoped to another host.
    #[error("the token is scoped to {0}, not to this host")]
    Scope(String),
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    scope: String,
    role: String,
    exp: i64,
    jti: u64,
}

/// The issuing side of scoped tokens: the secret, the lifetime and the serial numbers.
pub(crate) struct ScopedTokens {
    key: hmac::Key,
    lifetime_secs: i64,
    /// The serial of the last token issued.
    issued: AtomicU64,
    /// Tokens with a lower serial are expired.
    valid_from: AtomicU64,
}

impl ScopedTokens {
    /// A fresh secret: tokens of another emulator (or an earlier run) never verify here.
    pub(crate) fn new(lifetime_secs: i64) -> Self {
        let mut secret = [0u8; 32];
        // A failed system RNG leaves the secret guessable, which only matters to an emulator on a
        // shared network; the tokens still work.
        let _ = aws_lc_rs::rand::fill(&mut secret);
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            lifetime_secs,
            issued: AtomicU64::new(0),
            valid_from: AtomicU64::new(1),
        }
    }

    /// Signs a token for `grant`, issued at `now` (Unix seconds).
    pub(crate) fn issue(&self, grant: &Grant, now: i64) -> String {
        let serial = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string());
        let claims = json!({
            "iss": "snowpipe-emulator",
            "sub": format!("{}.{}", grant.account, grant.user),
            "scope": grant.scope,
            "role": grant.role,
            "iat": now,
            "exp": now.saturating_add(self.lifetime_secs),
            "jti": serial,
        });
        let signed = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let tag = hmac::sign(&self.key, signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Checks a token at `now` for the ingest host `host`.
    pub(crate) fn verify(
        &self,
        token: &str,
        now: i64,
        host: &str,
    ) -> Result<Grant, ScopedTokenError> {
        let mut parts = token.rsplitn(2, '.');
        let (Some(sig), Some(signed)) = (parts.next(), parts.next()) else {
            return Err(ScopedTokenError::Malformed);
        };
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| ScopedTokenError::Malformed)?;
        hmac::verify(&self.key, signed.as_bytes(), &sig)
            .map_err(|_| ScopedTokenError::Signature)?;
        let payload = signed
            .split('.')
            .nth(1)
            .ok_or(ScopedTokenError::Malformed)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(ScopedTokenError::Malformed)?;
        if claims.jti < self.valid_from.load(Ordering::SeqCst) {
            return Err(ScopedTokenError::Revoked);
        }
        if claims.exp <= now {
            return Err(ScopedTokenError::Expired);
        }
        if !claims.scope.eq_ignore_ascii_case(host) {
            return Err(ScopedTokenError::Scope(claims.scope));
        }
        let (account, user) = claims
            .sub
            .split_once('.')
            .ok_or(ScopedTokenError::Malformed)?;
        Ok(Grant {
            account: account.to_owned(),
            user: user.to_owned(),
            role: claims.role,
            scope: claims.scope,
        })
    }

    /// Expires every token issued so far.
    pub(crate) fn expire_all(&self) {
        let issued = self.issued.load(Ordering::SeqCst);
        self.valid_from.store(issued + 1, Ordering::SeqCst);
    }

    /// The lifetime given to new tokens, in seconds.
    pub(crate) fn lifetime_secs(&self) -> i64 {
        self.lifetime_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(scope: &str) -> Grant {
        Grant {
            account: "DEMO".to_owned(),
            user: "U".to_owned(),
            role: "R".to_owned(),
            scope: scope.to_owned(),
        }
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let tokens = ScopedTokens::new(60);
        let t = tokens.issue(&grant("127.0.0.1:1"), 1000);
        assert_eq!(
            tokens.verify(&t, 1059, "127.0.0.1:1"),
            Ok(grant("127.0.0.1:1"))
        );
        assert_eq!(
            tokens.verify(&t, 1060, "127.0.0.1:1"),
            Err(ScopedTokenError::Expired)
        );
        assert_eq!(
            tokens.verify(&t, 1000, "127.0.0.1:2"),
            Err(ScopedTokenError::Scope("127.0.0.1:1".to_owned()))
        );
        let other = ScopedTokens::new(60);
        assert_eq!(
            other.verify(&t, 1000, "127.0.0.1:1"),
            Err(ScopedTokenError::Signature)
        );
        assert_eq!(
            tokens.verify("abc", 1000, "h"),
            Err(ScopedTokenError::Malformed)
        );
        let mut tampered = t.clone();
        tampered.insert(t.find('.').unwrap() + 2, 'x');
        assert!(tokens.verify(&tampered, 1000, "127.0.0.1:1").is_err());
    }

    #[test]
    fn expiring_all_spares_later_tokens() {
        let tokens = ScopedTokens::new(60);
        let old = tokens.issue(&grant("h"), 1000);
        tokens.expire_all();
        let new = tokens.issue(&grant("h"), 1000);
        assert_eq!(
            tokens.verify(&old, 1000, "h"),
            Err(ScopedTokenError::Revoked)
        );
        assert!(tokens.verify(&new, 1000, "h").is_ok());
    }
}
