//! RSA keys as Snowflake users register and present them: public keys in PEM (or bare base64, as
//! `ALTER USER ... SET RSA_PUBLIC_KEY` takes them), private keys as PKCS#8 (plain or encrypted with a
//! passphrase, as `openssl pkcs8 -topk8 -v2 aes256|des3` writes them) or PKCS#1.
//!
//! Keys are compared by their `SubjectPublicKeyInfo` DER, the bytes Snowflake's fingerprint is taken over.

use std::sync::{Mutex, PoisonError};

use aws_lc_rs::{
    digest,
    encoding::AsDer,
    rsa::{KeyPair, PublicKey},
    signature::KeyPair as _,
};
use base64::{Engine, engine::general_purpose::STANDARD};

/// Why a key could not be used. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not PEM, or PEM whose body is not base64.
    #[error("the key is not valid PEM")]
    NotPem,
    /// A PEM label this emulator does not read (e.g. an OpenSSH or EC key).
    #[error("unsupported key type `{0}`")]
    Unsupported(String),
    /// An encrypted key and no passphrase, or a passphrase that does not decrypt it.
    #[error("the private key could not be decrypted with the passphrase given")]
    Decrypt,
    /// The DER inside is not an RSA key.
    #[error("the key is not a valid RSA key")]
    NotRsa,
}

/// Splits a PEM block into its label and decoded body. Lenient on whitespace: keys pasted into JSON
/// or TOML often lose their line breaks or gain indentation.
fn pem_decode(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let text = text.trim();
    let rest = text.strip_prefix("-----BEGIN ").ok_or(KeyError::NotPem)?;
    let (label, rest) = rest.split_once("-----").ok_or(KeyError::NotPem)?;
    let end = format!("-----END {label}-----");
    let body = rest
        .split(end.as_str())
        .next()
        .filter(|_| rest.contains(&end))
        .ok_or(KeyError::NotPem)?;
    if body.contains(':') {
        // RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`): OpenSSL's legacy encryption, not PKCS#8.
        return Err(KeyError::Unsupported(format!(
            "{label} with legacy encryption headers"
        )));
    }
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(compact).map_err(|_| KeyError::NotPem)?;
    Ok((label.to_owned(), der))
}

/// The `SubjectPublicKeyInfo` DER of a registered public key (PEM `PUBLIC KEY`, `RSA PUBLIC KEY`, or the
/// bare base64 body).
///
/// # Errors
/// [`KeyError`] when the text is not an RSA public key.
pub fn public_key_der(text: &str) -> Result<Vec<u8>, KeyError> {
    let der = if text.trim_start().starts_with("-----BEGIN") {
        let (label, der) = pem_decode(text)?;
        if label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" {
            return Err(KeyError::Unsupported(label));
        }
        der
    } else {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        STANDARD.decode(compact).map_err(|_| KeyError::NotPem)?
    };
    let key = PublicKey::from_der(&der).map_err(|_| KeyError::NotRsa)?;
    key.as_der()
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| KeyError::NotRsa)
}

/// Reads a private key, decrypting it with `passphrase` when it is encrypted.
pub(crate) fn private_key(text: &str, passphrase: Option<&str>) -> Result<KeyPair, KeyError> {
    let (label, der) = pem_decode(text)?;
    match label.as_str() {
        "PRIVATE KEY" => KeyPair::from_pkcs8(&der).map_err(|_| KeyError::NotRsa),
        "RSA PRIVATE KEY" => KeyPair::from_der(&der).map_err(|_| KeyError::NotRsa),
        "ENCRYPTED PRIVATE KEY" => {
            let passphrase = passphrase
                .filter(|p| !p.is_empty())
                .ok_or(KeyError::Decrypt)?;
            let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
                .map_err(|_| KeyError::NotPem)?;
            let plain = info.decrypt(passphrase).map_err(|_| KeyError::Decrypt)?;
            KeyPair::from_pkcs8(plain.as_bytes()).map_err(|_| KeyError::NotRsa)
        }
        other => Err(KeyError::Unsupported(other.to_owned())),
    }
}

/// The `SubjectPublicKeyInfo` DER of a private key's public half.
///
/// # Errors
/// [`KeyError`] when the key cannot be read or decrypted.
pub fn public_key_der_of_private(
    text: &str,
    passphrase: Option<&str>,
) -> Result<Vec<u8>, KeyError> {
    let pair = private_key(text, passphrase)?;
    pair.public_key()
        .as_der()
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| KeyError::NotRsa)
}

/// Public keys of private keys already parsed. A client opens every channel with the same key, and parsing
/// (and decrypting) an RSA key costs about a millisecond of CPU each time, on the path of every channel
/// open. A handful of entries, compared by the key's text; only keys that parsed are kept.
#[derive(Default)]
pub(crate) struct ParsedKeys(Mutex<Vec<ParsedKey>>);

struct ParsedKey {
    text: String,
    passphrase: Option<String>,
    public_der: Vec<u8>,
}

impl ParsedKeys {
    const CAPACITY: usize = 8;

    /// [`public_key_der_of_private`], remembered.
    pub(crate) fn public_key_der(
        &self,
        text: &str,
        passphrase: Option<&str>,
    ) -> Result<Vec<u8>, KeyError> {
        let lock = || self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let known = lock()
            .iter()
            .find(|k| k.text == text && k.passphrase.as_deref() == passphrase)
            .map(|k| k.public_der.clone());
        if let Some(der) = known {
            return Ok(der);
        }
        let public_der = public_key_der_of_private(text, passphrase)?;
        let mut keys = lock();
        if keys.len() >= Self::CAPACITY {
            keys.remove(0);
        }
        keys.push(ParsedKey {
            text: text.to_owned(),
            passphrase: passphrase.map(str::to_owned),
            public_der: public_der.clone(),
        });
        Ok(public_der)
    }
}

/// Snowflake's fingerprint of a public key: `SHA256:` and the base64 SHA-256 of its DER.
#[must_use]
pub fn fingerprint(spki_der: &[u8]) -> String {
    format!(
        "SHA256:{}",
        STANDARD.encode(digest::digest(&digest::SHA256, spki_der))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo;

    #[test]
    fn demo_keys_match() {
        let public = public_key_der(demo::PUBLIC_KEY_PEM).unwrap();
        assert_eq!(
            public_key_der_of_private(demo::PRIVATE_KEY_PEM, None).unwrap(),
            public
        );
        let encrypted = public_key_der_of_private(
            demo::ENCRYPTED_PRIVATE_KEY_PEM,
            Some(demo::PRIVATE_KEY_PASSPHRASE),
        );
        assert_eq!(encrypted.unwrap(), public);
        assert!(fingerprint(&public).starts_with("SHA256:"));
    }

    #[test]
    fn parsed_keys_answer_as_parsing_does_and_remember_only_good_keys() {
        let keys = ParsedKeys::default();
        let public = public_key_der(demo::PUBLIC_KEY_PEM).unwrap();
        for _ in 0..2 {
            assert_eq!(
                keys.public_key_der(demo::PRIVATE_KEY_PEM, None).unwrap(),
                public
            );
        }
        // The same text with another passphrase is another key: asked again, not taken from memory.
        assert!(
            keys.public_key_der(demo::ENCRYPTED_PRIVATE_KEY_PEM, Some("wrong"))
                .is_err()
        );
        assert_eq!(
            keys.public_key_der(
                demo::ENCRYPTED_PRIVATE_KEY_PEM,
                Some(demo::PRIVATE_KEY_PASSPHRASE)
            )
            .unwrap(),
            public
        );
        assert_eq!(keys.0.lock().unwrap().len(), 2);
        for i in 0..ParsedKeys::CAPACITY + 3 {
            let flat = demo::PRIVATE_KEY_PEM.replace('\n', &" ".repeat(i + 1));
            assert_eq!(keys.public_key_der(&flat, None).unwrap(), public);
        }
        assert_eq!(keys.0.lock().unwrap().len(), ParsedKeys::CAPACITY);
    }

    #[test]
    fn bare_base64_and_flattened_pem_are_read() {
        let public = public_key_der(demo::PUBLIC_KEY_PEM).unwrap();
        let body: String = demo::PUBLIC_KEY_PEM
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert_eq!(public_key_der(&body).unwrap(), public);
        let flat = demo::PRIVATE_KEY_PEM.replace('\n', " ");
        assert_eq!(public_key_der_of_private(&flat, None).unwrap(), public);
    }

    #[test]
    fn bad_keys_are_errors() {
        assert_eq!(public_key_der("nonsense!").unwrap_err(), KeyError::NotPem);
        assert_eq!(
            public_key_der("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .unwrap_err(),
            KeyError::NotRsa
        );
        assert!(matches!(
            public_key_der(demo::PRIVATE_KEY_PEM),
            Err(KeyError::Unsupported(_))
        ));
        assert_eq!(
            private_key(demo::ENCRYPTED_PRIVATE_KEY_PEM, None).err(),
            Some(KeyError::Decrypt)
        );
        assert_eq!(
            private_key(demo::ENCRYPTED_PRIVATE_KEY_PEM, Some("wrong")).err(),
            Some(KeyError::Decrypt)
        );
        assert_eq!(
            private_key("-----BEGIN PRIVATE KEY-----\n", None).err(),
            Some(KeyError::NotPem)
        );
        assert!(matches!(
            private_key(
                "-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----",
                None
            ),
            Err(KeyError::Unsupported(_))
        ));
    }
}
