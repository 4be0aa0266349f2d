//! The DDL statements the manager runs, built so that no name, however odd, can change their meaning.
//!
//! Table and column names come from events, so every identifier is double-quoted with `"` doubled, and
//! column types come only from the fixed warehouse-type map: nothing from an event is ever spliced in bare.

use std::fmt::Write as _;

use snowpipe_grouping::WarehouseType;

/// Quotes an identifier for Snowflake: wrapped in `"`, each `"` inside doubled. A quoted identifier keeps
/// its case and may hold any character.
pub fn quote_ident(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for c in name.chars() {
        if c == '"' {
            quoted.push('"');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// The Snowflake column type of a warehouse type, for standard or Iceberg tables.
pub fn column_type(ty: WarehouseType, iceberg: bool) -> &'static str {
    match (ty, iceberg) {
        (WarehouseType::Boolean, _) => "BOOLEAN",
        (WarehouseType::Int | WarehouseType::Bigint, false) => "NUMBER",
        (WarehouseType::Int, true) => "NUMBER(10,0)",
        (WarehouseType::Bigint, true) => "NUMBER(19,0)",
        (WarehouseType::Float, _) => "DOUBLE PRECISION",
        (WarehouseType::String | WarehouseType::Text, _) => "VARCHAR",
        (WarehouseType::Datetime, false) => "TIMESTAMP_TZ",
        (WarehouseType::Datetime, true) => "TIMESTAMP_NTZ(6)",
        (WarehouseType::Json, false) => "VARIANT",
        (WarehouseType::Json, true) => "VARCHAR",
    }
}

/// `CREATE SCHEMA IF NOT EXISTS "<schema>"`.
pub fn create_schema(schema: &str) -> String {
    format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema))
}

/// `CREATE TABLE IF NOT EXISTS "<schema>"."<table>" ("<column>" <type>, ...)`; Iceberg tables use
/// Snowflake as their catalog and the database's default external volume.
pub fn create_table<'a>(
    schema: &str,
    table: &str,
    columns: impl IntoIterator<Item = (&'a str, WarehouseType)>,
    iceberg: bool,
) -> String {
    let kind = if iceberg { "ICEBERG TABLE" } else { "TABLE" };
    let mut sql = format!(
        "CREATE {kind} IF NOT EXISTS {}.{} (",
        quote_ident(schema),
        quote_ident(table)
    );
    push_columns(&mut sql, columns, iceberg);
    sql.push(')');
    if iceberg {
        sql.push_str(" CATALOG = 'SNOWFLAKE'");
    }
    sql
}

/// `ALTER TABLE "<schema>"."<table>" ADD COLUMN IF NOT EXISTS "<column>" <type>, ...`: one statement for
/// all new columns, since each statement wakes the warehouse.
pub fn add_columns<'a>(
    schema: &str,
    table: &str,
    columns: impl IntoIterator<Item = (&'a str, WarehouseType)>,
    iceberg: bool,
) -> String {
    let mut sql = format!(
        "ALTER {}TABLE {}.{} ADD COLUMN IF NOT EXISTS ",
        if iceberg { "ICEBERG " } else { "" },
        quote_ident(schema),
        quote_ident(table)
    );
    push_columns(&mut sql, columns, iceberg);
    sql
}

/// `DESCRIBE TABLE "<schema>"."<table>"`: the table's columns, in the request's database.
pub fn describe_table(schema: &str, table: &str) -> String {
    format!(
        "DESCRIBE TABLE {}.{}",
        quote_ident(schema),
        quote_ident(table)
    )
}

fn push_columns<'a>(
    sql: &mut String,
    columns: impl IntoIterator<Item = (&'a str, WarehouseType)>,
    iceberg: bool,
) {
    for (i, (name, ty)) in columns.into_iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let _ = write!(sql, "{} {}", quote_ident(name), column_type(ty, iceberg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_quote_every_name() {
        assert_eq!(
            create_schema("RUDDER"),
            r#"CREATE SCHEMA IF NOT EXISTS "RUDDER""#
        );
        assert_eq!(
            create_table(
                "S",
                "T",
                [("ID", WarehouseType::String), ("N", WarehouseType::Bigint)],
                false
            ),
            r#"CREATE TABLE IF NOT EXISTS "S"."T" ("ID" VARCHAR, "N" NUMBER)"#
        );
        assert_eq!(
            add_columns(
                "S",
                r#"a"b"#,
                [("x y", WarehouseType::Json), ("Z", WarehouseType::Datetime)],
                false
            ),
            r#"ALTER TABLE "S"."a""b" ADD COLUMN IF NOT EXISTS "x y" VARIANT, "Z" TIMESTAMP_TZ"#
        );
        assert_eq!(
            describe_table("S", "we\"ird"),
            r#"DESCRIBE TABLE "S"."we""ird""#
        );
        assert_eq!(
            quote_ident("\";DROP TABLE X;--"),
            "\"\"\";DROP TABLE X;--\""
        );
    }

    #[test]
    fn iceberg_tables_have_their_own_types() {
        let columns = [
            ("A", WarehouseType::Int),
            ("B", WarehouseType::Bigint),
            ("C", WarehouseType::Datetime),
            ("D", WarehouseType::Json),
            ("E", WarehouseType::Boolean),
        ];
        assert_eq!(
            create_table("S", "T", columns, true),
            r#"CREATE ICEBERG TABLE IF NOT EXISTS "S"."T" ("A" NUMBER(10,0), "B" NUMBER(19,0), "C" TIMESTAMP_NTZ(6), "D" VARCHAR, "E" BOOLEAN) CATALOG = 'SNOWFLAKE'"#
        );
        assert_eq!(
            add_columns("S", "T", [("F", WarehouseType::Float)], true),
            r#"ALTER ICEBERG TABLE "S"."T" ADD COLUMN IF NOT EXISTS "F" DOUBLE PRECISION"#
        );
    }
}
