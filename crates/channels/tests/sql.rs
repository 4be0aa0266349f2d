//! Property test: any identifier, however odd, round-trips through the generated statements, read back by
//! an independent tokenizer of Snowflake's quoted identifiers.

use proptest::prelude::*;
use snowpipe_channels::sql;
use snowpipe_grouping::WarehouseType;

/// Splits a statement into words and quoted identifiers (`"` ... `"` with `""` as a quote), as Snowflake
/// reads it; returns the identifiers in order and the statement with each replaced by `?`.
fn tokenize(statement: &str) -> (Vec<String>, String) {
    let mut idents = Vec::new();
    let mut shape = String::new();
    let mut chars = statement.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            shape.push(c);
            continue;
        }
        let mut ident = String::new();
        loop {
            match chars.next() {
                Some('"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    ident.push('"');
                }
                Some('"') => break,
                Some(other) => ident.push(other),
                None => panic!("unterminated identifier in {statement}"),
            }
        }
        idents.push(ident);
        shape.push('?');
    }
    (idents, shape)
}

fn ident() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z_][A-Z0-9_]{0,10}",
        "\\PC{1,12}",
        Just("\"".to_owned()),
        Just("a\"\"b; DROP TABLE x; --".to_owned())
    ]
}

fn types() -> impl Strategy<Value = WarehouseType> {
    proptest::sample::select(WarehouseType::ALL.to_vec())
}

proptest! {
    #[test]
    fn quoting_round_trips(name in "\\PC{0,24}") {
        let (idents, shape) = tokenize(&sql::quote_ident(&name));
        prop_assert_eq!(idents, vec![name]);
        prop_assert_eq!(shape, "?");
    }

    #[test]
    fn statements_keep_every_name_an_identifier(
        schema in ident(),
        table in ident(),
        columns in proptest::collection::vec((ident(), types()), 1..5),
        iceberg in any::<bool>(),
    ) {
        let (idents, shape) = tokenize(&sql::create_schema(&schema));
        prop_assert_eq!(idents, vec![schema.clone()]);
        prop_assert_eq!(shape, "CREATE SCHEMA IF NOT EXISTS ?");

        let pairs: Vec<(&str, WarehouseType)> = columns.iter().map(|(c, t)| (c.as_str(), *t)).collect();
        let mut expected = vec![schema.clone(), table.clone()];
        expected.extend(columns.iter().map(|(c, _)| c.clone()));
        let types: Vec<String> = pairs.iter().map(|(_, t)| format!("? {}", sql::column_type(*t, iceberg))).collect();

        let (idents, shape) = tokenize(&sql::create_table(&schema, &table, pairs.iter().copied(), iceberg));
        prop_assert_eq!(&idents, &expected);
        let kind = if iceberg { "ICEBERG TABLE" } else { "TABLE" };
        let tail = if iceberg { " CATALOG = 'SNOWFLAKE'" } else { "" };
        prop_assert_eq!(shape, format!("CREATE {kind} IF NOT EXISTS ?.? ({}){tail}", types.join(", ")));

        let (idents, shape) = tokenize(&sql::add_columns(&schema, &table, pairs.iter().copied(), iceberg));
        prop_assert_eq!(&idents, &expected);
        let alter = if iceberg { "ALTER ICEBERG TABLE" } else { "ALTER TABLE" };
        prop_assert_eq!(shape, format!("{alter} ?.? ADD COLUMN IF NOT EXISTS {}", types.join(", ")));
    }
}
