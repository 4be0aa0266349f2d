//! A schema: column names mapped to warehouse types, in the order the columns were first seen.

use std::{collections::HashMap, fmt};

use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{MapAccess, Visitor},
    ser::SerializeMap,
};

use crate::WarehouseType;

/// Column names mapped to warehouse types, keeping the order in which columns were first added.
///
/// Used both for one event's own `columns` and for a table's schema (the union of its events' columns, the
/// first type seen for a column winning).
///
/// ```
/// use snowpipe_grouping::{Schema, WarehouseType};
///
/// let mut schema: Schema = [("ID", WarehouseType::String)].into_iter().collect();
/// assert!(schema.insert_if_absent("PRICE", WarehouseType::Float));
/// assert!(!schema.insert_if_absent("ID", WarehouseType::Int)); // the first type wins
/// assert_eq!(schema.get("ID"), Some(WarehouseType::String));
/// assert_eq!(serde_json::to_string(&schema).unwrap(), r#"{"ID":"string","PRICE":"float"}"#);
/// ```
#[derive(Clone, Default)]
pub struct Schema {
    columns: Vec<(Box<str>, WarehouseType)>,
    // Tables can have hundreds of columns and coercion looks each event column up, so a linear scan would
    // not do; small schemas skip the map (see `get`).
    index: HashMap<Box<str>, usize>,
}

/// Below this many columns a linear scan beats hashing.
const LINEAR_LOOKUP_MAX: usize = 12;

impl Schema {
    /// An empty schema.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The type of `column`, if the schema has it.
    #[must_use]
    pub fn get(&self, column: &str) -> Option<WarehouseType> {
        if self.columns.len() <= LINEAR_LOOKUP_MAX {
            return self
                .columns
                .iter()
                .find(|(name, _)| &**name == column)
                .map(|(_, t)| *t);
        }
        self.index.get(column).map(|&i| self.columns[i].1)
    }

    /// Whether the schema has `column`.
    #[must_use]
    pub fn contains(&self, column: &str) -> bool {
        self.get(column).is_some()
    }

    /// Adds `column` with type `ty` unless the schema already has it (then its first type stays); returns
    /// whether it was added.
    pub fn insert_if_absent(&mut self, column: &str, ty: WarehouseType) -> bool {
        if self.contains(column) {
            return false;
        }
        self.index.insert(column.into(), self.columns.len());
        self.columns.push((column.into(), ty));
        true
    }

    /// Adds every column of `other` that this schema lacks, in `other`'s order.
    pub fn merge(&mut self, other: &Self) {
        for (name, ty) in other.iter() {
            self.insert_if_absent(name, ty);
        }
    }

    /// The columns and their types, in first-seen order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, WarehouseType)> + '_ {
        self.columns.iter().map(|(name, ty)| (&**name, *ty))
    }

    /// The number of columns.
    #[must_use]
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether the schema has no columns.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}

impl PartialEq for Schema {
    /// Schemas are equal when they have the same columns with the same types in the same order.
    fn eq(&self, other: &Self) -> bool {
        self.columns == other.columns
    }
}

impl Eq for Schema {}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<S: AsRef<str>> FromIterator<(S, WarehouseType)> for Schema {
    /// Collects columns; a repeated column keeps its first type.
    fn from_iter<I: IntoIterator<Item = (S, WarehouseType)>>(iter: I) -> Self {
        let mut schema = Self::new();
        for (name, ty) in iter {
            schema.insert_if_absent(name.as_ref(), ty);
        }
        schema
    }
}

impl Serialize for Schema {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, ty) in self.iter() {
            map.serialize_entry(name, &ty)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Schema {
    /// Reads a JSON object of column → type name, keeping the object's order; a repeated column keeps its
    /// first type; an unknown type name is an error.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SchemaVisitor;
        impl<'de> Visitor<'de> for SchemaVisitor {
            type Value = Schema;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of column names to warehouse type names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Schema, A::Error> {
                let mut schema = Schema::new();
                while let Some((name, ty)) =
                    map.next_entry::<std::borrow::Cow<'de, str>, WarehouseType>()?
                {
                    schema.insert_if_absent(&name, ty);
                }
                Ok(schema)
            }
        }
        deserializer.deserialize_map(SchemaVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::Schema;
    use crate::WarehouseType::{self, *};

    #[test]
    fn first_type_wins_and_order_is_kept() {
        let schema: Schema = [("B", Int), ("A", String), ("B", Float)]
            .into_iter()
            .collect();
        assert_eq!(
            schema.iter().collect::<Vec<_>>(),
            vec![("B", Int), ("A", String)]
        );
    }

    #[test]
    fn lookups_agree_for_small_and_large_schemas() {
        let names: Vec<std::string::String> = (0..40).map(|i| format!("C{i}")).collect();
        let mut schema = Schema::new();
        for (i, name) in names.iter().enumerate() {
            schema.insert_if_absent(name, WarehouseType::ALL[i % 8]);
            for (j, earlier) in names[..=i].iter().enumerate() {
                assert_eq!(
                    schema.get(earlier),
                    Some(WarehouseType::ALL[j % 8]),
                    "{earlier} after {i}"
                );
            }
            assert_eq!(schema.get("C999"), None);
        }
    }

    #[test]
    fn merge_adds_only_missing_columns() {
        let mut a: Schema = [("ID", String), ("X", Int)].into_iter().collect();
        let b: Schema = [("X", Float), ("Y", Boolean)].into_iter().collect();
        a.merge(&b);
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            vec![("ID", String), ("X", Int), ("Y", Boolean)]
        );
    }

    #[test]
    fn json_round_trip_keeps_order() {
        let json = r#"{"Z":"int","A":"text","M":"json"}"#;
        let schema: Schema = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&schema).unwrap(), json);
        assert!(serde_json::from_str::<Schema>(r#"{"A":"varchar"}"#).is_err());
    }
}
