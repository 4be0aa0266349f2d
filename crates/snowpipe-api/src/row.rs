//! One row of an insert request: the text of a JSON object, held as shared bytes.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _, ser::Error as _};
use serde_json::value::RawValue;

/// One row to insert: the text of a JSON object of column name to value, sent as it is.
///
/// Rows are bytes rather than a [`RawValue`] each so that a caller can keep many rows in one buffer and hand
/// out slices of it ([`Bytes::slice`]): a batch of hundreds of thousands of rows then costs a few large
/// allocations instead of one per row, and nothing is parsed on the way to the wire.
///
/// ```
/// use serde_json::value::RawValue;
/// use snowpipe_api::Row;
///
/// let row = Row::from_raw(&RawValue::from_string(r#"{"ID":"a1"}"#.to_owned())?);
/// assert_eq!(row.as_bytes(), br#"{"ID":"a1"}"#);
/// assert!(Row::parse(r#"{"ID":"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Row(Bytes);

impl Row {
    /// A row copied from JSON that serde_json has already checked.
    #[must_use]
    pub fn from_raw(raw: &RawValue) -> Self {
        Self(Bytes::copy_from_slice(raw.get().as_bytes()))
    }

    /// A row from text that is checked to be JSON first.
    ///
    /// # Errors
    /// serde_json's error when `text` is not one JSON value.
    pub fn parse(text: impl Into<Bytes>) -> Result<Self, serde_json::Error> {
        let bytes = text.into();
        serde_json::from_slice::<&RawValue>(&bytes)?;
        Ok(Self(bytes))
    }

    /// A row from bytes the caller serialised itself and vouches for: the text of one JSON object.
    ///
    /// Nothing is checked in release builds, because checking would parse every row a second time; text that
    /// is not JSON makes the service refuse the whole request (an error, never a panic or lost row). Debug
    /// builds, and so tests, check every row.
    #[must_use]
    pub fn from_serialized(bytes: Bytes) -> Self {
        debug_assert!(
            serde_json::from_slice::<&RawValue>(&bytes).is_ok(),
            "a row must be one JSON value: {}",
            String::from_utf8_lossy(&bytes)
        );
        Self(bytes)
    }

    /// The row's text.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The row's size in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the row has no bytes at all (never true of a valid row).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Box<RawValue>> for Row {
    fn from(raw: Box<RawValue>) -> Self {
        Self::from_raw(&raw)
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Row({})", String::from_utf8_lossy(&self.0))
    }
}

impl Serialize for Row {
    /// Writes the row's text as it is. This generic path parses the row to hand serde a [`RawValue`]; the HTTP
    /// client writes insert bodies itself and never takes it.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde_json::from_slice::<&RawValue>(&self.0)
            .map_err(S::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        if raw.get().starts_with('{') {
            Ok(Self::from(raw))
        } else {
            Err(D::Error::custom("a row must be a JSON object"))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::Row;

    #[test]
    fn rows_serialise_as_their_text_and_read_back() {
        let row = Row::parse(r#"{"A": [1, 2]}"#).unwrap();
        assert_eq!(serde_json::to_string(&row).unwrap(), r#"{"A": [1, 2]}"#);
        let back: Row = serde_json::from_str(r#"{"A": [1, 2]}"#).unwrap();
        assert_eq!(back, row);
        assert!(serde_json::from_str::<Row>("[1]").is_err());
        let raw = RawValue::from_string(r#"{"B":1}"#.to_owned()).unwrap();
        assert_eq!(Row::from(raw).as_bytes(), br#"{"B":1}"#);
    }

    #[test]
    fn parse_refuses_what_is_not_json() {
        assert!(Row::parse("{").is_err());
        assert!(Row::parse(&b"\xff"[..]).is_err());
    }
}
