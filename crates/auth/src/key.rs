//! The user's RSA private key, as Snowflake users keep it (PKCS#8 PEM, encrypted with a passphrase or not,
//! or traditional PKCS#1 PEM), and the public-key fingerprint Snowflake matches a key-pair JWT against.

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

use crate::Secret;

/// Why the private key cannot be used. Never quotes the key or the passphrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is not PEM at all (no `-----BEGIN ...-----` block, or a body that is not base64 DER).
    #[error(
        "the destination's private key is not a PEM private key ({0}); give the output of `openssl pkcs8 -topk8`"
    )]
    NotPem(String),
    /// The PEM block holds something other than a private key, e.g. `PUBLIC KEY` or `CERTIFICATE`.
    #[error(
        "the destination's private key is a `{0}` PEM block, not a private key; give a `PRIVATE KEY`, \
         `ENCRYPTED PRIVATE KEY` or `RSA PRIVATE KEY` block"
    )]
    WrongLabel(String),
    /// A traditional PEM key encrypted with OpenSSL's legacy scheme (`Proc-Type: 4,ENCRYPTED` headers),
    /// which is not read; encrypted keys must be PKCS#8.
    #[error(
        "the destination's private key uses OpenSSL's legacy PEM encryption (`Proc-Type: 4,ENCRYPTED`), \
         which is not supported; convert it with `openssl pkcs8 -topk8 -v2 aes256 -in key.pem -out key.p8`"
    )]
    EncryptedLegacyPem,
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

/// An RSA key ready to sign RS256 tokens, with its public key and fingerprint.
pub struct SigningKey {
    pair: KeyPair,
    public_key_der: Vec<u8>,
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
    /// Reads a PEM private key:
    ///
    /// - `PRIVATE KEY`: PKCS#8, as `openssl pkcs8 -topk8 -nocrypt` writes it;
    /// - `ENCRYPTED PRIVATE KEY`: PKCS#8 decrypted with `passphrase` (PBES2 with AES or 3DES, as
    ///   `openssl pkcs8 -topk8 -v2 aes256|des3` writes it);
    /// - `RSA PRIVATE KEY`: PKCS#1, as `openssl genrsa` (1.x) or `openssl rsa -traditional` writes it,
    ///   unencrypted only.
    ///
    /// `passphrase` is ignored for an unencrypted key.
    ///
    /// # Errors
    ///
    /// [`KeyError`] saying what to change in the key or its passphrase.
    pub fn from_pem(pem: &str, passphrase: &Secret) -> Result<Self, KeyError> {
        let pem = pem.trim();
        // Checked first: RFC 7468's strict parser would call these headers "not PEM", which hides the fix.
        if has_legacy_encryption_headers(pem) {
            return Err(KeyError::EncryptedLegacyPem);
        }
        let (label, document) =
            SecretDocument::from_pem(pem).map_err(|e| KeyError::NotPem(e.to_string()))?;
        let pair = match label {
            "PRIVATE KEY" => KeyPair::from_pkcs8(document.as_bytes()),
            "ENCRYPTED PRIVATE KEY" => {
                if passphrase.is_empty() {
                    return Err(KeyError::PassphraseMissing);
                }
                let info = EncryptedPrivateKeyInfo::try_from(document.as_bytes())
                    .map_err(|e| KeyError::NotPem(e.to_string()))?;
                let plain = info
                    .decrypt(passphrase.expose())
                    .map_err(|_| KeyError::WrongPassphrase)?;
                KeyPair::from_pkcs8(plain.as_bytes())
            }
            "RSA PRIVATE KEY" => KeyPair::from_der(document.as_bytes()),
            other => return Err(KeyError::WrongLabel(other.to_owned())),
        }
        .map_err(|e| KeyError::NotRsa(e.to_string()))?;
        let public_key_der = pair
            .public_key()
            .as_der()
            .map_err(|_| KeyError::NotRsa("no public key".to_owned()))?
            .as_ref()
            .to_vec();
        let digest = digest::digest(&digest::SHA256, &public_key_der);
        let fingerprint = format!("SHA256:{}", STANDARD.encode(digest.as_ref()));
        Ok(Self {
            pair,
            public_key_der,
            fingerprint,
        })
    }

    /// `SHA256:<base64 of the SHA-256 of the public key's DER>`, as Snowflake shows it in `RSA_PUBLIC_KEY_FP`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Signs `message` with RSASSA-PKCS1-v1_5 and SHA-256 (RS256).
    ///
    /// # Errors
    ///
    /// [`KeyError::Sign`] when aws-lc refuses to sign.
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

    /// The public key as DER (SubjectPublicKeyInfo, what `openssl pkey -pubout -outform DER` writes), e.g. to
    /// verify signatures.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    /// The public key as `ALTER USER ... SET RSA_PUBLIC_KEY='...'` takes it: the base64 of
    /// [`public_key_der`](Self::public_key_der) on one line, without the PEM armour.
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(&self.public_key_der)
    }
}

/// Whether the PEM text carries RFC 1421 encryption headers, which OpenSSL writes for a traditional key
/// encrypted with `-aes256`/`-des3` (`openssl genrsa -aes256`, `openssl rsa -aes256`).
fn has_legacy_encryption_headers(pem: &str) -> bool {
    pem.lines().map(str::trim).any(|line| {
        (line.starts_with("Proc-Type:") && line.contains("ENCRYPTED"))
            || line.starts_with("DEK-Info:")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_encryption_headers_are_recognised() {
        let check = |pem: &str, expect: bool| {
            assert_eq!(has_legacy_encryption_headers(pem), expect, "{pem}");
        };
        check(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n",
            true,
        );
        check(
            "-----BEGIN RSA PRIVATE KEY-----\r\n  Proc-Type: 4,ENCRYPTED\r\n",
            true,
        );
        check("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n", false);
        check("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIE\n", false);
    }
}
