//! Snowflake key-pair JWTs: RS256 tokens whose `sub` is `ACCOUNT.USER` and whose `iss` is
//! `ACCOUNT.USER.SHA256:<fingerprint of the public key>`, valid for at most an hour.
//!
//! Parsed by hand rather than with `jsonwebtoken`: a JWT is three base64url parts, the checks that matter
//! (iss/sub shapes, the key fingerprint, the one-hour limit) are Snowflake's own, and the signature check is
//! one `aws-lc-rs` call — the same crypto library rustls already brings, with no second backend to pick.

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{self, UnparsedPublicKey},
};
use base64::{
    Engine,
    engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD},
};
use serde::Deserialize;
use serde_json::json;

use super::keys::{self, KeyError};

/// Snowflake refuses tokens that live longer than this (`exp - iat`), in seconds.
const MAX_LIFETIME_SECS: i64 = 3600;
/// Clock skew tolerated on `iat`, in seconds.
const SKEW_SECS: i64 = 60;

/// Why a token was refused. The SQL API answers each with HTTP 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("JWT token is malformed")]
    Malformed,
    /// A header `alg` other than RS256.
    #[error("JWT algorithm `{0}` is not supported; use RS256")]
    Algorithm(String),
    /// `sub` or `iss` missing or not of Snowflake's shape.
    #[error("JWT claims `iss`/`sub` are not of the form ACCOUNT.USER[.SHA256:fingerprint]")]
    Claims,
    /// The account or user named is not known.
    #[error("JWT token names an unknown account or user")]
    UnknownUser,
    /// The fingerprint in `iss` is not one of the user's registered keys.
    #[error("JWT public key fingerprint does not match a key registered for the user")]
    Fingerprint,
    /// The signature does not verify against the user's key.
    #[error("JWT signature is invalid")]
    Signature,
    /// `exp` is in the past.
    #[error("JWT token has expired")]
    Expired,
    /// `exp` missing, or `iat` in the future, or a lifetime over one hour.
    #[error(
        "JWT token times are invalid (exp required, iat not in the future, at most one hour of life)"
    )]
    Times,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
}

fn decode_part(part: &str) -> Result<Vec<u8>, JwtError> {
    // Some signers pad; accept both forms.
    URL_SAFE_NO_PAD
        .decode(part)
        .or_else(|_| URL_SAFE.decode(part))
        .map_err(|_| JwtError::Malformed)
}

/// The account and user a verified token speaks for (upper case, as Snowflake compares them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subject {
    pub(crate) account: String,
    pub(crate) user: String,
}

/// Verifies `token` at `now` (Unix seconds). `keys_of(account, user)` answers the user's registered
/// public keys (SPKI DER), or `None` for an unknown account or user.
pub(crate) fn verify(
    token: &str,
    now: i64,
    keys_of: impl Fn(&str, &str) -> Option<Vec<Vec<u8>>>,
) -> Result<Subject, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Header =
        serde_json::from_slice(&decode_part(h)?).map_err(|_| JwtError::Malformed)?;
    if header.alg != "RS256" {
        return Err(JwtError::Algorithm(header.alg));
    }
    let claims: Claims =
        serde_json::from_slice(&decode_part(p)?).map_err(|_| JwtError::Malformed)?;
    let signature = decode_part(s)?;
    let sub = claims.sub.ok_or(JwtError::Claims)?.to_uppercase();
    let iss = claims.iss.ok_or(JwtError::Claims)?;
    // The account is everything before the first dot; user names may contain dots (e-mail addresses).
    let (account, user) = sub.split_once('.').ok_or(JwtError::Claims)?;
    let (issuer, fingerprint) = iss.rsplit_once(".SHA256:").ok_or(JwtError::Claims)?;
    if issuer.to_uppercase() != sub {
        return Err(JwtError::Claims);
    }
    let registered = keys_of(account, user).ok_or(JwtError::UnknownUser)?;
    let fingerprint = format!("SHA256:{fingerprint}");
    let key = registered
        .iter()
        .find(|k| keys::fingerprint(k) == fingerprint)
        .ok_or(JwtError::Fingerprint)?;
    let signed = &token[..h.len() + 1 + p.len()];
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| JwtError::Signature)?;
    let exp = claims.exp.ok_or(JwtError::Times)?;
    if let Some(iat) = claims.iat
        && (iat > now + SKEW_SECS || exp - iat > MAX_LIFETIME_SECS)
    {
        return Err(JwtError::Times);
    }
    if exp <= now {
        return Err(JwtError::Expired);
    }
    Ok(Subject {
        account: account.to_owned(),
        user: user.to_owned(),
    })
}

/// Signs a Snowflake key-pair JWT for `account` and `user`, issued at `issued_at` (Unix seconds) and
/// expiring `lifetime_secs` later — what a Snowflake client sends as `Authorization: Bearer`. For tests
/// and tools that talk to the emulator's SQL API.
///
/// # Errors
/// [`KeyError`] when the private key cannot be read or decrypted.
///
/// # Example
/// ```
/// use snowpipe_emulator::{demo, jwt};
/// let token = jwt::sign(demo::PRIVATE_KEY_PEM, None, demo::ACCOUNT, demo::USER, 1_700_000_000, 3600)?;
/// assert_eq!(token.split('.').count(), 3);
/// # Ok::<(), snowpipe_emulator::KeyError>(())
/// ```
pub fn sign(
    private_key_pem: &str,
    passphrase: Option<&str>,
    account: &str,
    user: &str,
    issued_at: i64,
    lifetime_secs: i64,
) -> Result<String, KeyError> {
    let pair = keys::private_key(private_key_pem, passphrase)?;
    let public = keys::public_key_der_of_private(private_key_pem, passphrase)?;
    let sub = format!("{}.{}", account.to_uppercase(), user.to_uppercase());
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT"}).to_string());
    let claims = json!({
        "iss": format!("{sub}.{}", keys::fingerprint(&public)),
        "sub": sub,
        "iat": issued_at,
        "exp": issued_at + lifetime_secs,
    });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{payload}");
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(
        &signature::RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signed.as_bytes(),
        &mut sig,
    )
    .map_err(|_| KeyError::NotRsa)?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo;

    const NOW: i64 = 1_700_000_000;

    fn keys_of(account: &str, user: &str) -> Option<Vec<Vec<u8>>> {
        (account == "DEMO" && user == "DEMO_USER")
            .then(|| vec![keys::public_key_der(demo::PUBLIC_KEY_PEM).unwrap()])
    }

    fn token(lifetime: i64, issued: i64) -> String {
        sign(
            demo::PRIVATE_KEY_PEM,
            None,
            "demo",
            "demo_user",
            issued,
            lifetime,
        )
        .unwrap()
    }

    #[test]
    fn good_token_verifies() {
        let s = verify(&token(3600, NOW - 10), NOW, keys_of).unwrap();
        assert_eq!(
            s,
            Subject {
                account: "DEMO".to_owned(),
                user: "DEMO_USER".to_owned()
            }
        );
    }

    #[test]
    fn bad_tokens_are_refused() {
        assert_eq!(
            verify(&token(60, NOW - 120), NOW, keys_of),
            Err(JwtError::Expired)
        );
        assert_eq!(
            verify(&token(7200, NOW), NOW, keys_of),
            Err(JwtError::Times)
        );
        assert_eq!(
            verify(&token(60, NOW + 600), NOW, keys_of),
            Err(JwtError::Times)
        );
        assert_eq!(verify("a.b", NOW, keys_of), Err(JwtError::Malformed));
        assert_eq!(verify("!!.!!.!!", NOW, keys_of), Err(JwtError::Malformed));
        let t = token(3600, NOW);
        // Tamper with the payload: the signature no longer matches.
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&decode_part(&parts[1]).unwrap()).unwrap();
        claims["exp"] = json!(NOW + 3000);
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_eq!(
            verify(&parts.join("."), NOW, keys_of),
            Err(JwtError::Signature)
        );
        // The same claims under another user: unknown.
        let other = sign(demo::PRIVATE_KEY_PEM, None, "demo", "someone", NOW, 60).unwrap();
        assert_eq!(verify(&other, NOW, keys_of), Err(JwtError::UnknownUser));
        let none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        assert_eq!(
            verify(&format!("{none}.{}.", parts[1]), NOW, keys_of),
            Err(JwtError::Algorithm("none".to_owned()))
        );
    }
}
