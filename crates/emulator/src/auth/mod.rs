//! Authentication as Snowflake does it: RSA keys as users register and present them, their
//! fingerprints, and key-pair JWTs verified (and signed, for tests).

pub mod jwt;
mod keys;

pub(crate) use keys::ParsedKeys;
pub use keys::{KeyError, fingerprint, public_key_der, public_key_der_of_private};
