//! The warehouse column types an event's `columns` can name, and which of them count as the same type.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A warehouse column type, as named in an event's `message.metadata.columns`.
///
/// `int` and `bigint` count as the same type, and so do `string` and `text` (see [`WarehouseType::same_as`]).
///
/// ```
/// use snowpipe_grouping::WarehouseType;
///
/// let t: WarehouseType = "bigint".parse().unwrap();
/// assert_eq!(t, WarehouseType::Bigint);
/// assert_eq!(t.as_str(), "bigint");
/// assert!(t.same_as(WarehouseType::Int));
/// assert!("varchar".parse::<WarehouseType>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WarehouseType {
    /// `int`: a whole number.
    Int,
    /// `bigint`: a whole number; the same type as `int`.
    Bigint,
    /// `float`: a floating point number.
    Float,
    /// `string`: text.
    String,
    /// `text`: text; the same type as `string`.
    Text,
    /// `datetime`: a timestamp.
    Datetime,
    /// `boolean`: `true` or `false`.
    Boolean,
    /// `json`: any JSON value, stored as a VARIANT.
    Json,
}

impl WarehouseType {
    /// Every type, in declaration order.
    pub const ALL: [Self; 8] = [
        Self::Int,
        Self::Bigint,
        Self::Float,
        Self::String,
        Self::Text,
        Self::Datetime,
        Self::Boolean,
        Self::Json,
    ];

    /// The type's name as it appears in event files: `int`, `bigint`, `float`, `string`, `text`, `datetime`,
    /// `boolean` or `json`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Int => "int",
            Self::Bigint => "bigint",
            Self::Float => "float",
            Self::String => "string",
            Self::Text => "text",
            Self::Datetime => "datetime",
            Self::Boolean => "boolean",
            Self::Json => "json",
        }
    }

    /// The representative of the type's equivalence class: `bigint` → `int`, `text` → `string`, others
    /// unchanged.
    #[must_use]
    pub const fn canonical(self) -> Self {
        match self {
            Self::Bigint => Self::Int,
            Self::Text => Self::String,
            other => other,
        }
    }

    /// Whether two types count as the same for coercion: equal, or both of `int`/`bigint`, or both of
    /// `string`/`text`.
    #[must_use]
    pub fn same_as(self, other: Self) -> bool {
        self.canonical() == other.canonical()
    }

    /// Whether the type is `int` or `bigint`.
    #[must_use]
    pub fn is_integer(self) -> bool {
        self.canonical() == Self::Int
    }

    /// Whether the type is `string` or `text`.
    #[must_use]
    pub fn is_text(self) -> bool {
        self.canonical() == Self::String
    }
}

impl fmt::Display for WarehouseType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A type name that is not one of the eight warehouse types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown warehouse type {name:?}: expected one of int, bigint, float, string, text, datetime, boolean, json"
)]
pub struct UnknownTypeError {
    /// The name that was given, cut to at most [`crate::EXCERPT_CHARS`] characters.
    pub name: String,
}

impl FromStr for WarehouseType {
    type Err = UnknownTypeError;

    /// Parses a type name exactly as event files spell it (lower case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "int" => Self::Int,
            "bigint" => Self::Bigint,
            "float" => Self::Float,
            "string" => Self::String,
            "text" => Self::Text,
            "datetime" => Self::Datetime,
            "boolean" => Self::Boolean,
            "json" => Self::Json,
            other => {
                return Err(UnknownTypeError {
                    name: crate::excerpt::excerpt(other),
                });
            }
        })
    }
}

impl Serialize for WarehouseType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WarehouseType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::WarehouseType;

    #[test]
    fn names_round_trip() {
        for t in WarehouseType::ALL {
            assert_eq!(t.as_str().parse::<WarehouseType>(), Ok(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
            assert_eq!(
                serde_json::from_str::<WarehouseType>(&format!("\"{t}\"")).unwrap(),
                t
            );
        }
    }

    #[test]
    fn names_are_case_sensitive_and_unknown_names_are_errors() {
        let err = "INT".parse::<WarehouseType>().unwrap_err();
        assert_eq!(err.name, "INT");
        assert!(err.to_string().contains("unknown warehouse type \"INT\""));
        assert!(serde_json::from_str::<WarehouseType>("\"number\"").is_err());
    }

    #[test]
    fn equivalence_pairs_int_bigint_and_string_text_only() {
        use WarehouseType::*;
        let same: Vec<(WarehouseType, WarehouseType)> = WarehouseType::ALL
            .iter()
            .flat_map(|a| WarehouseType::ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a != b && a.same_as(*b))
            .collect();
        assert_eq!(
            same,
            vec![(Int, Bigint), (Bigint, Int), (String, Text), (Text, String)]
        );
    }
}
