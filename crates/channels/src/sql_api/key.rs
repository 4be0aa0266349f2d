//! The destination's RSA private key: PKCS#8 PEM, encrypted with a passphrase or not, and the public-key
//! fingerprint Snowflake matches a key-pair JWT against.

use std::fmt;

use aws_lc_rs::{
    digest,
    encoding::AsDer,
    rand::SystemRandom,
    rsa::KeyPair,
    signature::{KeyPair as _, RSA_PKCS1_SHA256},
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use pkcs8::{EncryptedPrivateKeyInfo, der::SecretDocument};
use snowpipe_api::Secret;

/// Why the private key cannot be used. Never quotes the key or the passphrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is not PEM (`-----BEGIN PRIVATE KEY-----` or `-----BEGIN ENCRYPTED PRIVATE KEY-----`).
    #[error(
        "the destination's private key is not a PKCS#8 PEM key ({0}); give the output of `openssl pkcs8 -topk8`"
    )]
    NotPem(String),
    /// The PEM block is of another kind (e.g. `RSA PRIVATE KEY`, PKCS#1).
    #[error(
        "the destination's private key is a `{0}` PEM block; convert it to PKCS#8 with `openssl pkcs8 -topk8`"
    )]
    WrongLabel(String),
    /// The key is encrypted and no passphrase was given.
    #[error("the destination's private key is encrypted but no passphrase is configured")]
    PassphraseMissing,
    /// The passphrase does not decrypt the key.
    #[error("the destination's private key passphrase is wrong (the key does not decrypt)")]
    WrongPassphrase,
    /// The key is not a usable RSA key.
    #[error("the destination's private key is not a usable RSA key: {0}")]
    NotRsa(String),
    /// Signing failed.
    #[error("cannot sign with the destination's private key")]
    Sign,
}

/// An RSA key ready to sign RS256 tokens, with its fingerprint.
pub struct SigningKey {
    pair: KeyPair,
    fingerprint: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a PKCS#8 PEM private key, decrypting it with `passphrase` when it is encrypted (PBES2 with
    /// AES or 3DES, as `openssl pkcs8 -topk8 -v2 aes256|des3` writes).
    pub fn from_pem(pem: &str, passphrase: &Secret) -> Result<Self, KeyError> {
        let (label, document) =
            SecretDocument::from_pem(pem.trim()).map_err(|e| KeyError::NotPem(e.to_string()))?;
        let plain = match label {
            "PRIVATE KEY" => document,
            "ENCRYPTED PRIVATE KEY" => {
                if passphrase.is_empty() {
                    return Err(KeyError::PassphraseMissing);
                }
                let info = EncryptedPrivateKeyInfo::try_from(document.as_bytes())
                    .map_err(|e| KeyError::NotPem(e.to_string()))?;
                info.decrypt(passphrase.expose())
                    .map_err(|_| KeyError::WrongPassphrase)?
            }
            other => return Err(KeyError::WrongLabel(other.to_owned())),
        };
        let pair =
            KeyPair::from_pkcs8(plain.as_bytes()).map_err(|e| KeyError::NotRsa(e.to_string()))?;
        let spki = pair
            .public_key()
            .as_der()
            .map_err(|_| KeyError::NotRsa("no public key".to_owned()))?;
        let digest = digest::digest(&digest::SHA256, spki.as_ref());
        let fingerprint = format!("SHA256:{}", STANDARD.encode(digest.as_ref()));
        Ok(Self { pair, fingerprint })
    }

    /// `SHA256:<base64 of the SHA-256 of the public key's DER>`, as Snowflake shows it in `RSA_PUBLIC_KEY_FP`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Signs `message` with RSASSA-PKCS1-v1_5 and SHA-256 (RS256).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| KeyError::Sign)?;
        Ok(signature)
    }

    /// The public key as DER (SubjectPublicKeyInfo), e.g. to verify signatures in tests.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.pair
            .public_key()
            .as_der()
            .map(|der| der.as_ref().to_vec())
            .unwrap_or_default()
    }
}
