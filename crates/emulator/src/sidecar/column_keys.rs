//! Resolves the keys of insert rows to column indexes. Resolving a key (trim, upper-case or unquote,
//! then a search of the columns) costs more than the rest of a value's validation, and a request's rows
//! repeat the same few keys, nearly always in the same order; so each distinct key text is resolved
//! once per request, and the next key is first looked for right after the last one found.

use crate::store::TableSchema;

/// Distinct key texts remembered per request. Past this a request with ever-new keys (a client bug
/// or an attack) is resolved key by key, as before, instead of growing a list that is searched.
const MAX_REMEMBERED: usize = 256;

/// Key text to column index (`None`: no such column), for one request's rows.
pub(crate) struct KeyResolver<'s> {
    schema: &'s TableSchema,
    known: Vec<(Box<str>, Option<usize>)>,
    /// Where the next key probably is in `known`: right after the last one found.
    next: usize,
}

impl<'s> KeyResolver<'s> {
    pub(crate) fn new(schema: &'s TableSchema) -> Self {
        Self {
            schema,
            known: Vec::new(),
            next: 0,
        }
    }

    /// The index of the column `key` names, as [`TableSchema::column_index`] answers it.
    pub(crate) fn resolve(&mut self, key: &str) -> Option<usize> {
        if let Some((k, column)) = self.known.get(self.next)
            && same(k, key)
        {
            self.next += 1;
            return *column;
        }
        if let Some(i) = self.known.iter().position(|(k, _)| same(k, key)) {
            self.next = i + 1;
            return self.known[i].1;
        }
        let column = self.schema.column_index(key);
        if self.known.len() < MAX_REMEMBERED {
            self.known.push((key.into(), column));
            self.next = self.known.len();
        }
        column
    }
}

/// Compares two keys. Keys are short, and a byte loop the compiler inlines beats a `memcmp` call,
/// which showed up as a few percent of an insert.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Column, ColumnType};

    fn schema() -> TableSchema {
        let column = |name: &str| Column {
            name: name.to_owned(),
            ty: ColumnType::Boolean,
            nullable: true,
        };
        TableSchema {
            columns: vec![column("ID"), column("odd col"), column("É")],
        }
    }

    #[test]
    fn resolves_as_the_schema_does_in_any_order() {
        let s = schema();
        let mut r = KeyResolver::new(&s);
        let keys = [
            "id",
            " Id ",
            "\"odd col\"",
            "ODD COL",
            "é",
            "\"ID\"",
            "\"id\"",
            "",
            "\"\"",
        ];
        // Twice forwards, then backwards: answers never depend on what was seen before.
        let order = keys.iter().chain(&keys).chain(keys.iter().rev());
        for key in order {
            assert_eq!(r.resolve(key), s.column_index(key), "{key:?}");
        }
        assert_eq!(r.resolve("id"), Some(0));
        assert_eq!(r.resolve("\"odd col\""), Some(1));
        assert_eq!(r.resolve("é"), Some(2));
        assert_eq!(r.resolve("\"id\""), None);
        assert_eq!(r.known.len(), keys.len());
    }

    #[test]
    fn remembers_a_bounded_number_of_keys() {
        let s = schema();
        let mut r = KeyResolver::new(&s);
        for i in 0..MAX_REMEMBERED + 50 {
            assert_eq!(r.resolve(&format!("K{i}")), None);
        }
        assert_eq!(r.known.len(), MAX_REMEMBERED);
        assert_eq!(r.resolve("id"), Some(0));
        assert_eq!(r.resolve("ID"), Some(0));
    }
}
