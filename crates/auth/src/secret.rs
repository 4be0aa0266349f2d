//! Secrets that must never reach logs, errors or `Debug` output.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string, such as a private key or its passphrase.
///
/// `Debug` prints `Secret([REDACTED])` and there is deliberately no `Display`, so a secret cannot end up in a
/// log line or an error message by accident; the value is only reachable through [`Secret::expose`]. It still
/// serialises to its real value, because the service needs it on the wire.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Call this only where the value is sent or used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string (e.g. an unencrypted key has no passphrase).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<String>::deserialize(deserializer).map(|v| Self(v.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_serde_keeps_the_value() {
        let secret = Secret::new("-----BEGIN PRIVATE KEY-----abc");
        assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, "\"-----BEGIN PRIVATE KEY-----abc\"");
        let back: Secret = serde_json::from_str(&json).unwrap();
        assert_eq!(back.expose(), secret.expose());
        let null: Secret = serde_json::from_str("null").unwrap();
        assert!(null.is_empty());
    }
}
