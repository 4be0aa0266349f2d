//! Authentication as Snowflake does it: RSA keys as users register and present them, their
//! fingerprints, key-pair JWTs verified (and signed, for tests), and the scoped tokens the REST API's
//! token exchange issues and its ingest host verifies.

pub mod jwt;
mod keys;
mod scoped;

pub(crate) use keys::ParsedKeys;
pub use keys::{KeyError, fingerprint, public_key_der, public_key_der_of_private};
pub(crate) use scoped::{Grant, ScopedTokens};
