//! Authentication for Snowflake: the user's private key, key-pair JWTs, and a cache that keeps one bearer
//! token fresh.
//!
//! Snowflake's SQL API (and its REST APIs) accept a JWT signed with the user's RSA key, whose public key
//! was registered with `ALTER USER ... SET RSA_PUBLIC_KEY='...'`. This crate holds what every client of
//! those APIs needs for that, and nothing of HTTP:
//!
//! - [`Secret`], the workspace's one type for keys, passphrases and other values that must never reach a
//!   log: `Debug` is redacted and there is no `Display`.
//! - [`SigningKey`], an RSA private key read from PEM (PKCS#8, encrypted PKCS#8 or PKCS#1), with its
//!   fingerprint and public key; [`KeyError`] says what to fix without quoting the key or passphrase.
//! - [`jwt`]: the key-pair token's [`Claims`], Snowflake's account-name rules ([`account_for_jwt`]), and
//!   [`key_pair_jwt`], a signed token ready for the cache.
//! - [`TokenCache`], holding one [`Token`] and refreshing it ahead of its expiry, one refresh at a time;
//!   [`expiry_of_jwt`] reads the expiry of a token that is handed to the client rather than signed by it.
//!
//! The crate reads no clock: every call that depends on the time takes it as a parameter.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! use snowpipe_auth::{Secret, SigningKey, TOKEN_LIFETIME, TokenCache, key_pair_jwt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), snowpipe_auth::KeyError> {
//! let pem = Secret::new(include_str!("../tests/fixtures/rsa_key.p8"));
//! let key = SigningKey::from_pem(pem.expose(), &Secret::default())?;
//! // What the user registers with `ALTER USER loader SET RSA_PUBLIC_KEY='...'`.
//! assert!(key.public_key_base64().starts_with("MIIBIjAN"));
//! assert!(key.fingerprint().starts_with("SHA256:"));
//!
//! // The time comes from the caller (here fixed; in a client, its clock).
//! let now = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
//! let cache = TokenCache::default();
//! let token = cache
//!     .get_or_refresh(now, || async { key_pair_jwt(&key, "myorg-myaccount", "loader", now) })
//!     .await?;
//! assert_eq!(token.expires_at(), now + TOKEN_LIFETIME);
//! let bearer = format!("Bearer {}", token.value());
//! assert!(bearer.starts_with("Bearer eyJhbGciOiJSUzI1NiIs"));
//!
//! // A minute later the same token is reused: the refresh does not run.
//! let later = now + Duration::from_secs(60);
//! let again = cache
//!     .get_or_refresh(later, || async { Err(snowpipe_auth::KeyError::Sign) })
//!     .await?;
//! assert_eq!(again.value(), token.value());
//!
//! // After the server refused it (401), the next call signs a new one.
//! cache.invalidate(&again).await;
//! let fresh = cache
//!     .get_or_refresh(later, || async { key_pair_jwt(&key, "myorg-myaccount", "loader", later) })
//!     .await?;
//! assert_eq!(fresh.expires_at(), later + TOKEN_LIFETIME);
//! # Ok(()) }
//! ```

pub mod jwt;
mod key;
mod secret;
mod token;

pub use jwt::{Claims, RENEW_BEFORE, TOKEN_LIFETIME, account_for_jwt, key_pair_jwt};
pub use key::{KeyError, SigningKey};
pub use secret::Secret;
pub use token::{Token, TokenCache, expiry_of_jwt};
