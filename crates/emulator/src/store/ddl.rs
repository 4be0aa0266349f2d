//! The DDL subset the manager runs through the SQL API, parsed into statements:
//!
//! ```text
//! CREATE [TRANSIENT] SCHEMA [IF NOT EXISTS] [db.]schema [option = value ...]
//! CREATE [OR REPLACE] [TRANSIENT | ICEBERG] TABLE [IF NOT EXISTS] [[db.]schema.]table (column type [NOT NULL | NULL | COMMENT 'x'] , ...) [option = value ...]
//! ALTER TABLE [IF EXISTS] [[db.]schema.]table ADD [COLUMN] [IF NOT EXISTS] column type [...], column type [...] ...
//! { DESCRIBE | DESC } TABLE [[db.]schema.]table [TYPE = COLUMNS]
//! SELECT { COUNT(*) | * } FROM [[db.]schema.]table
//! DROP SCHEMA [IF EXISTS] [db.]schema [CASCADE | RESTRICT]
//! ```
//!
//! `SELECT` and `DROP SCHEMA` are there for checks that read rows back and clean up after themselves
//! (the REST client's live check runs against the emulator too), not for the manager.
//!
//! Identifiers follow Snowflake: unquoted ones are ASCII letters, digits, `_` and `$` and are upper-cased;
//! double-quoted ones may hold any character, `""` being one quote. Anything outside the subset is a
//! syntax error naming the line, position and token, like Snowflake's.

use super::{ident, types::ColumnType};

/// A column in `CREATE TABLE` or `ALTER TABLE ... ADD COLUMN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnDef {
    pub(crate) name: String,
    pub(crate) ty: ColumnType,
    pub(crate) nullable: bool,
}

/// A dotted object name, each part resolved (1 to 3 parts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectName(pub(crate) Vec<String>);

/// One parsed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Statement {
    CreateSchema {
        name: ObjectName,
        if_not_exists: bool,
    },
    CreateTable {
        name: ObjectName,
        if_not_exists: bool,
        /// `CREATE OR REPLACE TABLE`: an existing table is dropped (rows, channels) and created anew.
        or_replace: bool,
        columns: Vec<ColumnDef>,
        /// `ENABLE_SCHEMA_EVOLUTION = TRUE`: rows landed through the REST API add columns for keys
        /// the table lacks.
        schema_evolution: bool,
    },
    AddColumns {
        table: ObjectName,
        if_exists: bool,
        if_not_exists: bool,
        columns: Vec<ColumnDef>,
    },
    /// `DESCRIBE TABLE` (or `DESC TABLE`): the table's columns as a result set.
    DescribeTable { table: ObjectName },
    /// `SHOW SCHEMAS [IN DATABASE db]`: the database's schemas (the session's database without `IN`).
    ShowSchemas { database: Option<String> },
    /// `SELECT COUNT(*) FROM t` (`count`) or `SELECT * FROM t`: the committed rows.
    Select { table: ObjectName, count: bool },
    /// `DROP SCHEMA`: the schema and its tables (and their channels) go.
    DropSchema { name: ObjectName, if_exists: bool },
}

/// Why a statement could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Not valid in the subset: Snowflake's code `001003`.
    Syntax(String),
    /// More than one statement in one request: Snowflake's code `000008`.
    StatementCount(usize),
    /// Valid syntax, invalid meaning (an unknown type, a bad length): code `002040`-like compile error.
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Number(String),
    Str(String),
    Sym(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    pos: usize,
    text: String,
}

fn lex(sql: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut line_start) = (0, 1, 0);
    while i < chars.len() {
        let c = chars[i];
        let (tok_line, tok_pos, start) = (line, i - line_start, i);
        if c == '\n' {
            line += 1;
            i += 1;
            line_start = i;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '-' && chars.get(i + 1) == Some(&'-') || c == '/' && chars.get(i + 1) == Some(&'/')
        {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(ParseError::Syntax(format!(
                            "syntax error line {tok_line} at position {tok_pos} unterminated comment"
                        )));
                    }
                    Some('*') if chars.get(i + 1) == Some(&'/') => {
                        i += 2;
                        break;
                    }
                    Some('\n') => {
                        line += 1;
                        i += 1;
                        line_start = i;
                    }
                    Some(_) => i += 1,
                }
            }
            continue;
        }
        let tok = if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            Tok::Word(chars[start..i].iter().collect())
        } else if c.is_ascii_digit() {
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            Tok::Number(chars[start..i].iter().collect())
        } else if c == '"' || c == '\'' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        let what = if c == '"' {
                            "unterminated quoted identifier"
                        } else {
                            "unterminated string"
                        };
                        return Err(ParseError::Syntax(format!(
                            "syntax error line {tok_line} at position {tok_pos} {what}"
                        )));
                    }
                    Some(&q) if q == c => {
                        if chars.get(i + 1) == Some(&c) {
                            text.push(c);
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some('\\') if c == '\'' && i + 1 < chars.len() => {
                        text.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(&ch) => {
                        if ch == '\n' {
                            line += 1;
                            line_start = i + 1;
                        }
                        text.push(ch);
                        i += 1;
                    }
                }
            }
            if c == '"' {
                if text.is_empty() {
                    return Err(ParseError::Syntax(format!(
                        "syntax error line {tok_line} at position {tok_pos} unexpected '\"\"'"
                    )));
                }
                Tok::Quoted(text)
            } else {
                Tok::Str(text)
            }
        } else if "(),.;=*".contains(c) {
            i += 1;
            Tok::Sym(c)
        } else {
            return Err(ParseError::Syntax(format!(
                "syntax error line {tok_line} at position {tok_pos} unexpected '{c}'."
            )));
        };
        out.push(Token {
            tok,
            line: tok_line,
            pos: tok_pos,
            text: chars[start..i].iter().collect(),
        });
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Token>,
    at: usize,
}

/// The trailing options the emulator keeps.
#[derive(Default)]
struct Options {
    schema_evolution: Option<bool>,
}

/// Parses exactly one statement (an optional trailing `;` allowed).
pub(crate) fn parse(sql: &str) -> Result<Statement, ParseError> {
    let toks = lex(sql)?;
    // Count statements first, as the SQL API does before compiling anything.
    let mut count = 0;
    let mut pending = false;
    for t in &toks {
        if t.tok == Tok::Sym(';') {
            if pending {
                count += 1;
            }
            pending = false;
        } else {
            pending = true;
        }
    }
    if pending {
        count += 1;
    }
    if count > 1 {
        return Err(ParseError::StatementCount(count));
    }
    if count == 0 {
        return Err(ParseError::Syntax("Empty SQL statement.".to_owned()));
    }
    let mut p = Parser { toks, at: 0 };
    let stmt = p.statement()?;
    while p.eat_sym(';') {}
    if p.at < p.toks.len() {
        return Err(p.unexpected());
    }
    Ok(stmt)
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|t| &t.tok)
    }

    fn unexpected(&self) -> ParseError {
        match self.toks.get(self.at) {
            Some(t) => ParseError::Syntax(format!(
                "syntax error line {} at position {} unexpected '{}'.",
                t.line, t.pos, t.text
            )),
            None => {
                let (line, pos) = self
                    .toks
                    .last()
                    .map_or((1, 0), |t| (t.line, t.pos + t.text.chars().count()));
                ParseError::Syntax(format!(
                    "syntax error line {line} at position {pos} unexpected '<EOF>'."
                ))
            }
        }
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn eat_sym(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(&Tok::Sym(c));
        if hit {
            self.at += 1;
        }
        hit
    }

    fn expect_sym(&mut self, c: char) -> Result<(), ParseError> {
        if self.eat_sym(c) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// `IF NOT EXISTS`, all or nothing.
    fn if_not_exists(&mut self) -> Result<bool, ParseError> {
        if !self.eat_kw("IF") {
            return Ok(false);
        }
        self.expect_kw("NOT")?;
        self.expect_kw("EXISTS")?;
        Ok(true)
    }

    fn identifier(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok::Word(w)) => {
                let name = w.to_uppercase();
                self.at += 1;
                Ok(name)
            }
            Some(Tok::Quoted(q)) => {
                let name = q.clone();
                self.at += 1;
                Ok(name)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn object_name(&mut self, max_parts: usize) -> Result<ObjectName, ParseError> {
        let mut parts = vec![self.identifier()?];
        while self.eat_sym('.') {
            if parts.len() == max_parts {
                return Err(self.unexpected());
            }
            parts.push(self.identifier()?);
        }
        Ok(ObjectName(parts))
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        if self.eat_kw("CREATE") {
            let or_replace = self.eat_kw("OR");
            if or_replace {
                self.expect_kw("REPLACE")?;
            }
            let _transient = self.eat_kw("TRANSIENT");
            if self.eat_kw("SCHEMA") {
                if or_replace {
                    // Only tables are replaced: that is the trap a channel must survive (exact outcomes).
                    return Err(ParseError::Invalid(
                        "CREATE OR REPLACE SCHEMA is not supported by the emulator (only tables are replaced)".to_owned(),
                    ));
                }
                let if_not_exists = self.if_not_exists()?;
                let name = self.object_name(2)?;
                self.options()?;
                return Ok(Statement::CreateSchema {
                    name,
                    if_not_exists,
                });
            }
            let _iceberg = self.eat_kw("ICEBERG");
            self.expect_kw("TABLE")?;
            let if_not_exists = self.if_not_exists()?;
            if or_replace && if_not_exists {
                // Snowflake refuses the pair: replacing and keeping contradict each other.
                return Err(ParseError::Invalid(
                    "OR REPLACE and IF NOT EXISTS are incompatible.".to_owned(),
                ));
            }
            let name = self.object_name(3)?;
            self.expect_sym('(')?;
            let mut columns = vec![self.column_def()?];
            while self.eat_sym(',') {
                columns.push(self.column_def()?);
            }
            self.expect_sym(')')?;
            let options = self.options()?;
            return Ok(Statement::CreateTable {
                name,
                if_not_exists,
                or_replace,
                columns,
                schema_evolution: options.schema_evolution.unwrap_or(false),
            });
        }
        if self.eat_kw("ALTER") {
            self.expect_kw("TABLE")?;
            let if_exists = if self.eat_kw("IF") {
                self.expect_kw("EXISTS")?;
                true
            } else {
                false
            };
            let table = self.object_name(3)?;
            self.expect_kw("ADD")?;
            let _column = self.eat_kw("COLUMN");
            let if_not_exists = self.if_not_exists()?;
            let mut columns = vec![self.column_def()?];
            while self.eat_sym(',') {
                columns.push(self.column_def()?);
            }
            return Ok(Statement::AddColumns {
                table,
                if_exists,
                if_not_exists,
                columns,
            });
        }
        if self.eat_kw("SHOW") {
            self.expect_kw("SCHEMAS")?;
            let database = if self.eat_kw("IN") {
                self.expect_kw("DATABASE")?;
                Some(self.identifier()?)
            } else {
                None
            };
            return Ok(Statement::ShowSchemas { database });
        }
        if self.eat_kw("SELECT") {
            let count = if self.eat_kw("COUNT") {
                self.expect_sym('(')?;
                self.expect_sym('*')?;
                self.expect_sym(')')?;
                true
            } else {
                self.expect_sym('*')?;
                false
            };
            self.expect_kw("FROM")?;
            let table = self.object_name(3)?;
            return Ok(Statement::Select { table, count });
        }
        if self.eat_kw("DROP") {
            self.expect_kw("SCHEMA")?;
            let if_exists = if self.eat_kw("IF") {
                self.expect_kw("EXISTS")?;
                true
            } else {
                false
            };
            let name = self.object_name(2)?;
            let _ = self.eat_kw("CASCADE") || self.eat_kw("RESTRICT");
            return Ok(Statement::DropSchema { name, if_exists });
        }
        if self.eat_kw("DESCRIBE") || self.eat_kw("DESC") {
            self.expect_kw("TABLE")?;
            let table = self.object_name(3)?;
            self.describe_type()?;
            return Ok(Statement::DescribeTable { table });
        }
        Err(self.unexpected())
    }

    /// `DESCRIBE TABLE`'s optional `TYPE = COLUMNS | STAGE`. Only `COLUMNS` (the default) is modelled:
    /// the emulator has no stages, so `STAGE` is refused as unsupported rather than answered wrongly.
    fn describe_type(&mut self) -> Result<(), ParseError> {
        if !self.eat_kw("TYPE") {
            return Ok(());
        }
        self.expect_sym('=')?;
        if self.eat_kw("COLUMNS") {
            return Ok(());
        }
        if self.is_kw("STAGE") {
            return Err(ParseError::Invalid(
                "DESCRIBE TABLE ... TYPE = STAGE is not supported by the emulator".to_owned(),
            ));
        }
        Err(self.unexpected())
    }

    /// Trailing `KEY = value` options. `ENABLE_SCHEMA_EVOLUTION` is kept (it changes what a commit
    /// does); the rest (comments, retention, Iceberg's catalog and volume) are accepted and ignored,
    /// since they do not change what the emulator stores.
    fn options(&mut self) -> Result<Options, ParseError> {
        let mut options = Options::default();
        while let Some(Tok::Word(key)) = self.peek() {
            let evolution = key.eq_ignore_ascii_case("ENABLE_SCHEMA_EVOLUTION");
            self.at += 1;
            self.expect_sym('=')?;
            if evolution {
                if self.eat_kw("TRUE") {
                    options.schema_evolution = Some(true);
                    continue;
                }
                if self.eat_kw("FALSE") {
                    options.schema_evolution = Some(false);
                    continue;
                }
                return Err(self.unexpected());
            }
            match self.peek() {
                Some(Tok::Word(_) | Tok::Str(_) | Tok::Number(_) | Tok::Quoted(_)) => self.at += 1,
                _ => return Err(self.unexpected()),
            }
        }
        Ok(options)
    }

    fn column_def(&mut self) -> Result<ColumnDef, ParseError> {
        let name = self.identifier()?;
        let ty = self.column_type()?;
        let mut nullable = true;
        loop {
            if self.eat_kw("NOT") {
                self.expect_kw("NULL")?;
                nullable = false;
            } else if self.eat_kw("NULL") {
                nullable = true;
            } else if self.eat_kw("COMMENT") {
                let _ = self.eat_sym('=');
                match self.peek() {
                    Some(Tok::Str(_)) => self.at += 1,
                    _ => return Err(self.unexpected()),
                }
            } else {
                break;
            }
        }
        Ok(ColumnDef { name, ty, nullable })
    }

    fn column_type(&mut self) -> Result<ColumnType, ParseError> {
        let Some(Tok::Word(first)) = self.peek() else {
            return Err(self.unexpected());
        };
        let mut name = first.to_uppercase();
        self.at += 1;
        let follow: &[&[&str]] = match name.as_str() {
            "DOUBLE" => &[&["PRECISION"]],
            "CHAR" | "NCHAR" => &[&["VARYING"]],
            "TIMESTAMP" => &[
                &["WITH", "TIME", "ZONE"],
                &["WITH", "LOCAL", "TIME", "ZONE"],
                &["WITHOUT", "TIME", "ZONE"],
            ],
            _ => &[],
        };
        for words in follow {
            let matches = words.iter().enumerate().all(|(k, w)| {
                matches!(self.toks.get(self.at + k).map(|t| &t.tok), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
            });
            if matches {
                self.at += words.len();
                name = format!("{name} {}", words.join(" "));
                break;
            }
        }
        let mut args = Vec::new();
        if self.eat_sym('(') {
            loop {
                match self.peek() {
                    Some(Tok::Number(n)) => {
                        let n = n.parse::<u32>().map_err(|_| {
                            ParseError::Invalid(format!("number {n} is out of range"))
                        })?;
                        args.push(n);
                        self.at += 1;
                    }
                    _ => return Err(self.unexpected()),
                }
                if !self.eat_sym(',') {
                    break;
                }
            }
            self.expect_sym(')')?;
        }
        ColumnType::from_sql(&name, &args).map_err(ParseError::Invalid)
    }
}

/// Renders a statement's object name for messages (`DB.SCHEMA.TABLE`, quoting odd parts).
pub(crate) fn display_name(parts: &[String]) -> String {
    parts
        .iter()
        .map(|p| ident::display(p))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(defs: &[(&str, ColumnType, bool)]) -> Vec<ColumnDef> {
        defs.iter()
            .map(|(n, ty, nullable)| ColumnDef {
                name: (*n).to_owned(),
                ty: *ty,
                nullable: *nullable,
            })
            .collect()
    }

    fn name(parts: &[&str]) -> ObjectName {
        ObjectName(parts.iter().map(|p| (*p).to_owned()).collect())
    }

    const INT: ColumnType = ColumnType::Number {
        precision: 38,
        scale: 0,
    };
    const TEXT: ColumnType = ColumnType::Varchar { length: 16_777_216 };

    fn check(sql: &str, expect: &Result<Statement, ParseError>) {
        assert_eq!(&parse(sql), expect, "{sql}");
    }

    #[test]
    fn create_schema() {
        check(
            "create schema if not exists my_schema",
            &Ok(Statement::CreateSchema {
                name: name(&["MY_SCHEMA"]),
                if_not_exists: true,
            }),
        );
        check(
            "CREATE SCHEMA \"db\".\"odd \"\"schema\"\"\";",
            &Ok(Statement::CreateSchema {
                name: name(&["db", "odd \"schema\""]),
                if_not_exists: false,
            }),
        );
    }

    #[test]
    fn create_table_with_odd_identifiers() {
        check(
            "CREATE TABLE IF NOT EXISTS \"DB\".\"S p a c e\".\"tâblé 🎉\" (\"ID\" VARCHAR, \"wëird \"\"col\"\"\" int NOT NULL, ts TIMESTAMP_TZ)",
            &Ok(Statement::CreateTable {
                name: name(&["DB", "S p a c e", "tâblé 🎉"]),
                if_not_exists: true,
                or_replace: false,
                columns: cols(&[
                    ("ID", TEXT, true),
                    ("wëird \"col\"", INT, false),
                    ("TS", ColumnType::TimestampTz { scale: 9 }, true),
                ]),
                schema_evolution: false,
            }),
        );
        check(
            "create table t (a double precision, b number(10, 2), c timestamp with time zone) comment = 'x'",
            &Ok(Statement::CreateTable {
                name: name(&["T"]),
                if_not_exists: false,
                or_replace: false,
                schema_evolution: false,
                columns: cols(&[
                    ("A", ColumnType::Float, true),
                    (
                        "B",
                        ColumnType::Number {
                            precision: 10,
                            scale: 2,
                        },
                        true,
                    ),
                    ("C", ColumnType::TimestampTz { scale: 9 }, true),
                ]),
            }),
        );
    }

    #[test]
    fn replace_and_schema_evolution() {
        check(
            "create or replace transient table t (a int) comment = 'x' enable_schema_evolution = true",
            &Ok(Statement::CreateTable {
                name: name(&["T"]),
                if_not_exists: false,
                or_replace: true,
                columns: cols(&[("A", INT, true)]),
                schema_evolution: true,
            }),
        );
        check(
            "CREATE TABLE IF NOT EXISTS t (a int) ENABLE_SCHEMA_EVOLUTION = FALSE",
            &Ok(Statement::CreateTable {
                name: name(&["T"]),
                if_not_exists: true,
                or_replace: false,
                columns: cols(&[("A", INT, true)]),
                schema_evolution: false,
            }),
        );
    }

    #[test]
    fn alter_table_add_columns() {
        check(
            "ALTER TABLE s.t ADD COLUMN IF NOT EXISTS a BOOLEAN, \"b c\" VARIANT -- trailing comment\n;",
            &Ok(Statement::AddColumns {
                table: name(&["S", "T"]),
                if_exists: false,
                if_not_exists: true,
                columns: cols(&[
                    ("A", ColumnType::Boolean, true),
                    ("b c", ColumnType::Variant, true),
                ]),
            }),
        );
    }

    #[test]
    fn describe_table_long_and_short_forms() {
        let describe = |parts: &[&str]| Ok(Statement::DescribeTable { table: name(parts) });
        check("DESCRIBE TABLE events", &describe(&["EVENTS"]));
        check(
            "desc table \"My Db\".raw.\"mixed Case \"\"t\"\"\";",
            &describe(&["My Db", "RAW", "mixed Case \"t\""]),
        );
        check(
            "Desc Table s.t type = columns -- the default kind\n",
            &describe(&["S", "T"]),
        );
    }

    #[test]
    fn selects_and_drop_schema() {
        check(
            "SELECT COUNT(*) FROM db.\"odd s\".t",
            &Ok(Statement::Select {
                table: name(&["DB", "odd s", "T"]),
                count: true,
            }),
        );
        check(
            "select * from t;",
            &Ok(Statement::Select {
                table: name(&["T"]),
                count: false,
            }),
        );
        check(
            "DROP SCHEMA IF EXISTS db.s CASCADE",
            &Ok(Statement::DropSchema {
                name: name(&["DB", "S"]),
                if_exists: true,
            }),
        );
        check(
            "drop schema \"s\"",
            &Ok(Statement::DropSchema {
                name: name(&["s"]),
                if_exists: false,
            }),
        );
        for (sql, token) in [
            ("SELECT ID FROM t", "ID"),
            ("SELECT COUNT(ID) FROM t", "ID"),
            ("SELECT * FROM t WHERE x = 1", "WHERE"),
            ("DROP TABLE t", "TABLE"),
            ("DROP SCHEMA a.b.c", "c"),
            ("SELECT 1", "1"),
        ] {
            let got = parse(sql);
            assert!(
                matches!(&got, Err(ParseError::Syntax(m)) if m.contains(&format!("unexpected '{token}'"))),
                "{sql}: {got:?}"
            );
        }
    }

    #[test]
    fn bad_describes() {
        let syntax = |sql: &str, token: &str| {
            let got = parse(sql);
            assert!(
                matches!(&got, Err(ParseError::Syntax(m)) if m.contains(&format!("unexpected '{token}'"))),
                "{sql}: {got:?}"
            );
        };
        syntax("DESCRIBE events", "events");
        syntax("DESC VIEW v", "VIEW");
        syntax("DESCRIBE TABLE", "<EOF>");
        syntax("DESCRIBE TABLE a.b.c.d", "d");
        syntax("DESCRIBE TABLE t extra", "extra");
        syntax("DESCRIBE TABLE t TYPE = ROWS", "ROWS");
        syntax("DESCRIBE TABLE t TYPE COLUMNS", "COLUMNS");
        assert!(matches!(
            parse("DESCRIBE TABLE t TYPE = STAGE"),
            Err(ParseError::Invalid(_))
        ));
        assert_eq!(
            parse("DESC TABLE a; DESC TABLE b"),
            Err(ParseError::StatementCount(2))
        );
    }

    #[test]
    fn errors() {
        assert!(
            matches!(parse("UPDATE t SET a = 1"), Err(ParseError::Syntax(m)) if m.contains("unexpected 'UPDATE'"))
        );
        assert!(
            matches!(parse("CREATE TABLE t (a INT"), Err(ParseError::Syntax(m)) if m.contains("<EOF>"))
        );
        assert!(matches!(
            parse("CREATE TABLE \"t (a INT)"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse("CREATE TABLE \"\" (a INT)"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse("CREATE TABLE t (a GEOGRAPHY)"),
            Err(ParseError::Invalid(_))
        ));
        assert!(matches!(
            parse("CREATE TABLE t (a NUMBER(99999999999))"),
            Err(ParseError::Invalid(_))
        ));
        assert!(matches!(
            parse("CREATE TABLE a.b.c.d (a INT)"),
            Err(ParseError::Syntax(_))
        ));
        assert_eq!(
            parse("CREATE SCHEMA a; CREATE SCHEMA b"),
            Err(ParseError::StatementCount(2))
        );
        assert!(matches!(parse(" ; "), Err(ParseError::Syntax(_))));
        assert!(matches!(
            parse("CREATE OR REPLACE SCHEMA s"),
            Err(ParseError::Invalid(_))
        ));
        assert!(matches!(
            parse("CREATE OR REPLACE TABLE IF NOT EXISTS t (a INT)"),
            Err(ParseError::Invalid(_))
        ));
        assert!(matches!(
            parse("CREATE TABLE t (a INT) ENABLE_SCHEMA_EVOLUTION = maybe"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse("CREATE TABLE ünï (a INT)"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(parse("/* open"), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn display_quotes_odd_names() {
        assert_eq!(
            display_name(&["DB".to_owned(), "odd \"x\"".to_owned()]),
            "DB.\"odd \"\"x\"\"\""
        );
    }
}
