//! Key-pair JWTs, the token Snowflake's SQL and REST APIs accept with `KEYPAIR_JWT`: RS256, issued for
//! `<ACCOUNT>.<USER>` with the key's fingerprint.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Serialize;

use crate::{
    key::{KeyError, SigningKey},
    token::Token,
};

/// How long a token is valid; Snowflake accepts at most one hour.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(59 * 60);
/// A token is renewed when less than this is left, so it never expires in flight.
pub const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// The account part of a JWT's issuer and subject, as Snowflake documents it: upper case; for an account
/// locator with a region or cloud (`xy12345.us-east-2.aws`) only the locator; for a global URL
/// (`xy12345-ab.global`) the part before the `-`. Organisation-account names (`myorg-myaccount`) stay whole.
/// A trailing `.snowflakecomputing.com` is ignored.
pub fn account_for_jwt(account: &str) -> String {
    let account = account.trim();
    let account = account
        .strip_suffix(".snowflakecomputing.com")
        .unwrap_or(account);
    let base = if account.contains(".global") {
        account.split('-').next().unwrap_or(account)
    } else {
        account.split('.').next().unwrap_or(account)
    };
    base.to_uppercase()
}

/// The claims of a key-pair token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// `<ACCOUNT>.<USER>.<fingerprint>`.
    pub iss: String,
    /// `<ACCOUNT>.<USER>`.
    pub sub: String,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
}

impl Claims {
    /// Claims for `user` of `account`, valid from `now` for [`TOKEN_LIFETIME`]. The time is a parameter
    /// because this crate reads no clock.
    pub fn new(account: &str, user: &str, fingerprint: &str, now: SystemTime) -> Self {
        let qualified = format!(
            "{}.{}",
            account_for_jwt(account),
            user.trim().to_uppercase()
        );
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Self {
            iss: format!("{qualified}.{fingerprint}"),
            sub: qualified,
            iat,
            exp: iat + TOKEN_LIFETIME.as_secs(),
        }
    }

    /// When the token expires, as a time (the epoch for an `exp` no clock can represent, so such a token
    /// counts as expired).
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH
            .checked_add(Duration::from_secs(self.exp))
            .unwrap_or(UNIX_EPOCH)
    }
}

/// Encodes and signs a token: `base64url(header).base64url(claims).base64url(signature)`.
///
/// # Errors
///
/// [`KeyError::Sign`] when the key cannot sign.
pub fn encode(claims: &Claims, key: &SigningKey) -> Result<String, KeyError> {
    const HEADER: &str = r#"{"alg":"RS256","typ":"JWT"}"#;
    let claims = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
    let mut token = URL_SAFE_NO_PAD.encode(HEADER);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims));
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

/// A signed key-pair JWT for `user` of `account`, issued at `now`, as a [`Token`] expiring at its `exp`
/// (whole seconds, so never later than `now` + [`TOKEN_LIFETIME`]): what a
/// [`TokenCache`](crate::TokenCache) refresh returns for key-pair authentication.
///
/// # Errors
///
/// [`KeyError::Sign`] when the key cannot sign.
pub fn key_pair_jwt(
    key: &SigningKey,
    account: &str,
    user: &str,
    now: SystemTime,
) -> Result<Token, KeyError> {
    let claims = Claims::new(account, user, key.fingerprint(), now);
    let value = encode(&claims, key)?;
    Ok(Token::new(value, claims.expires_at()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_identifiers_follow_snowflakes_rules() {
        let check =
            |input: &str, expect: &str| assert_eq!(account_for_jwt(input), expect, "{input}");
        check("myorg-myaccount", "MYORG-MYACCOUNT");
        check("xy12345", "XY12345");
        check("xy12345.us-east-2.aws", "XY12345");
        check("xy12345.eu-central-1", "XY12345");
        check("xy12345-ab.global", "XY12345");
        check("myorg-myaccount.snowflakecomputing.com", "MYORG-MYACCOUNT");
        check(" xy12345.us-east-2.aws.snowflakecomputing.com ", "XY12345");
    }

    #[test]
    fn claims_name_account_user_and_fingerprint() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_900);
        let claims = Claims::new("xy12345.us-east-2.aws", "loader", "SHA256:abc=", now);
        assert_eq!(claims.sub, "XY12345.LOADER");
        assert_eq!(claims.iss, "XY12345.LOADER.SHA256:abc=");
        assert_eq!(claims.iat, 1_700_000_000);
        assert_eq!(claims.exp - claims.iat, 59 * 60);
        assert_eq!(
            claims.expires_at(),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 59 * 60)
        );
    }
}
