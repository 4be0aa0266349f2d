//! The emulated Snowflake account's objects: databases, schemas, tables with their columns, and the rows
//! committed into each table. DDL statements run here; channels look their tables up here.
//!
//! A table keeps its columns as a [`TableSchema`] and its rows as [`Row`]s: the catalog imports both,
//! and neither imports the catalog.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
};

use serde::Serialize;
use serde_json::Value;

use super::{
    ddl::{self, ColumnDef, ObjectName, ParseError, Statement},
    ident,
    row::Row,
    table_schema::{Column, TableSchema},
};

/// Names a table: database, schema and table, each resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TableRef {
    pub(crate) database: String,
    pub(crate) schema: String,
    pub(crate) table: String,
}

impl TableRef {
    fn display(&self) -> String {
        ddl::display_name(&[
            self.database.clone(),
            self.schema.clone(),
            self.table.clone(),
        ])
    }
}

/// The columns of a `SHOW SCHEMAS` answer, as Snowflake names them.
pub(crate) const SHOW_SCHEMAS_COLUMNS: [&str; 9] = [
    "created_on",
    "name",
    "is_default",
    "is_current",
    "database_name",
    "owner",
    "comment",
    "options",
    "retention_time",
];

/// The columns of Snowflake's `DESCRIBE TABLE` answer, in order (the last, `schema evolution record`,
/// says which columns schema evolution added).
pub(crate) const DESCRIBE_TABLE_COLUMNS: [&str; 13] = [
    "name",
    "type",
    "kind",
    "null?",
    "default",
    "primary key",
    "unique key",
    "check",
    "expression",
    "comment",
    "policy name",
    "privacy domain",
    "schema evolution record",
];

/// Rows a statement answers. Every value is text or null, as the SQL API's `jsonv2` format gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResultSet {
    /// Column names, in order.
    pub(crate) columns: Vec<String>,
    /// One entry per row, one value per column.
    pub(crate) rows: Vec<Vec<Option<String>>>,
}

/// What a statement answers when it succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StatementResult {
    /// DDL: Snowflake's one-line status message.
    Status(String),
    /// A statement that returns rows (`DESCRIBE TABLE`, `SELECT`).
    Rows(ResultSet),
}

impl StatementResult {
    /// The status line: the DDL message, or for rows the SQL API's statement-level message (the rows
    /// themselves only travel over the SQL API).
    pub(crate) fn into_message(self) -> String {
        match self {
            Self::Status(message) => message,
            Self::Rows(_) => "Statement executed successfully.".to_owned(),
        }
    }
}

/// The kind of object a `002003` error names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectKind {
    Database,
    Schema,
    Table,
}

impl ObjectKind {
    fn word(self) -> &'static str {
        match self {
            Self::Database => "Database",
            Self::Schema => "Schema",
            Self::Table => "Table",
        }
    }

    /// Snowflake files a missing table under "base table or view not found" and a missing database or
    /// schema under "no data"; the code is `002003` either way.
    fn sql_state(self) -> &'static str {
        match self {
            Self::Table => "42S02",
            Self::Database | Self::Schema => "02000",
        }
    }
}

/// A SQL API error in Snowflake's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{code}: {message}")]
pub struct SqlError {
    /// Snowflake's error code, e.g. `002003` for an object that does not exist.
    pub code: String,
    /// The SQL state, e.g. `02000` for a missing schema, `42S02` for a missing table.
    pub sql_state: String,
    /// The message, starting `SQL compilation error:` for compilation errors.
    pub message: String,
    /// The HTTP status the SQL API answers with.
    #[serde(skip)]
    pub status: u16,
}

impl SqlError {
    pub(crate) fn compilation(code: &str, sql_state: &str, message: &str) -> Self {
        Self {
            code: code.to_owned(),
            sql_state: sql_state.to_owned(),
            message: format!("SQL compilation error:\n{message}"),
            status: 422,
        }
    }

    fn does_not_exist(kind: ObjectKind, name: &str) -> Self {
        Self::compilation(
            "002003",
            kind.sql_state(),
            &format!("{} '{name}' does not exist or not authorized.", kind.word()),
        )
    }

    fn already_exists(name: &str) -> Self {
        Self::compilation(
            "002002",
            "42710",
            &format!("Object '{name}' already exists."),
        )
    }

    pub(crate) fn from_parse(err: ParseError) -> Self {
        match err {
            ParseError::Syntax(m) => Self::compilation("001003", "42000", &m),
            ParseError::Invalid(m) => Self::compilation("002040", "42601", &m),
            ParseError::StatementCount(n) => Self {
                code: "000008".to_owned(),
                sql_state: "0A000".to_owned(),
                message: format!(
                    "Actual statement count {n} did not match the desired statement count 1."
                ),
                status: 422,
            },
        }
    }
}

/// The session a statement runs in: the request's database, schema and role, resolved.
#[derive(Debug, Clone, Default)]
pub(crate) struct SqlContext {
    pub(crate) database: Option<String>,
    pub(crate) schema: Option<String>,
    /// `None` runs with every privilege (the handle's own DDL).
    pub(crate) role: Option<String>,
}

/// Why a channel cannot be opened on a table; maps to the service's codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LookupError {
    Database,
    Schema,
    Table,
}

pub(super) struct Table {
    pub(super) schema: Arc<TableSchema>,
    rows: VecDeque<Row>,
    committed: u64,
    /// `ENABLE_SCHEMA_EVOLUTION = TRUE`: REST commits add columns for keys the table lacks.
    pub(super) schema_evolution: bool,
    /// Columns schema evolution added, with the commit time (ms) that added them, for `DESCRIBE`.
    pub(super) evolved: Vec<(String, i64)>,
}

impl Table {
    fn new(schema: TableSchema, schema_evolution: bool) -> Self {
        Self {
            schema: Arc::new(schema),
            rows: VecDeque::new(),
            committed: 0,
            schema_evolution,
            evolved: Vec::new(),
        }
    }

    /// Stores committed rows, keeping at most `max_rows` for inspection.
    pub(super) fn append(&mut self, rows: Vec<Row>, max_rows: usize) {
        self.committed += u64::try_from(rows.len()).unwrap_or(u64::MAX);
        self.rows.extend(rows);
        while self.rows.len() > max_rows {
            self.rows.pop_front();
        }
    }
}

#[derive(Default)]
struct Schema {
    tables: BTreeMap<String, Table>,
}

struct Database {
    /// Roles that may use the database; empty means every role.
    roles: Vec<String>,
    schemas: BTreeMap<String, Schema>,
}

/// What the inspection API tells about a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableInfo {
    /// Database name.
    pub database: String,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Columns in table order.
    pub columns: Vec<ColumnInfo>,
    /// Rows committed so far (including rows no longer retained for inspection).
    pub committed_rows: u64,
    /// Whether the table was created with `ENABLE_SCHEMA_EVOLUTION = TRUE` (REST commits then add
    /// columns for keys the table lacks).
    pub enable_schema_evolution: bool,
}

/// One column of a [`TableInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnInfo {
    /// Column name, exactly as stored.
    pub name: String,
    /// Snowflake type, e.g. `NUMBER(38,0)`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether the column accepts nulls.
    pub nullable: bool,
}

/// All databases, schemas and tables of the emulated account.
pub(crate) struct Catalog {
    databases: BTreeMap<String, Database>,
    /// Rows kept per table for inspection; older rows are counted but forgotten (bounded memory).
    pub(super) max_rows_per_table: usize,
    /// Tables `CREATE OR REPLACE` replaced (or `DROP SCHEMA` dropped) since the last
    /// [`Self::take_replaced`]: their channels must go, as Snowflake's go with the table they belonged to.
    replaced: Vec<TableRef>,
}

impl Catalog {
    pub(crate) fn new(max_rows_per_table: usize) -> Self {
        Self {
            databases: BTreeMap::new(),
            max_rows_per_table,
            replaced: Vec::new(),
        }
    }

    /// The tables replaced since the last call.
    pub(crate) fn take_replaced(&mut self) -> Vec<TableRef> {
        std::mem::take(&mut self.replaced)
    }

    /// Adds a database (with its `PUBLIC` schema, as Snowflake creates one) and extra schemas.
    pub(crate) fn add_database(&mut self, name: &str, roles: Vec<String>, schemas: &[String]) {
        let db = self
            .databases
            .entry(name.to_owned())
            .or_insert_with(|| Database {
                roles: Vec::new(),
                schemas: BTreeMap::new(),
            });
        db.roles = roles;
        db.schemas.entry("PUBLIC".to_owned()).or_default();
        for s in schemas {
            db.schemas.entry(s.clone()).or_default();
        }
    }

    fn may_use(db: &Database, role: Option<&str>) -> bool {
        match role {
            None => true,
            Some(role) => db.roles.is_empty() || db.roles.iter().any(|r| r == role),
        }
    }

    /// The schema a channel on `table` sees, if `role` may use it.
    pub(crate) fn lookup(
        &self,
        table: &TableRef,
        role: &str,
    ) -> Result<Arc<TableSchema>, LookupError> {
        let db = self
            .databases
            .get(&table.database)
            .filter(|db| Self::may_use(db, Some(role)))
            .ok_or(LookupError::Database)?;
        let schema = db.schemas.get(&table.schema).ok_or(LookupError::Schema)?;
        let t = schema.tables.get(&table.table).ok_or(LookupError::Table)?;
        Ok(Arc::clone(&t.schema))
    }

    /// Stores committed rows. Rows for a table that no longer exists are dropped.
    pub(crate) fn append(&mut self, table: &TableRef, rows: Vec<Row>) {
        let max = self.max_rows_per_table;
        if let Some(t) = self.table_mut(table) {
            t.append(rows, max);
        }
    }

    pub(super) fn table_mut(&mut self, r: &TableRef) -> Option<&mut Table> {
        self.databases
            .get_mut(&r.database)?
            .schemas
            .get_mut(&r.schema)?
            .tables
            .get_mut(&r.table)
    }

    pub(super) fn table(&self, r: &TableRef) -> Option<&Table> {
        self.databases
            .get(&r.database)?
            .schemas
            .get(&r.schema)?
            .tables
            .get(&r.table)
    }

    /// The committed rows still retained for `table`, oldest first.
    pub(crate) fn rows(&self, table: &TableRef) -> Option<Vec<Value>> {
        self.table(table)
            .map(|t| t.rows.iter().map(Row::to_json).collect())
    }

    pub(crate) fn table_info(&self, r: &TableRef) -> Option<TableInfo> {
        self.table(r).map(|t| info(r, t))
    }

    pub(crate) fn tables(&self) -> Vec<TableInfo> {
        let mut out = Vec::new();
        for (dn, db) in &self.databases {
            for (sn, s) in &db.schemas {
                for (tn, t) in &s.tables {
                    let r = TableRef {
                        database: dn.clone(),
                        schema: sn.clone(),
                        table: tn.clone(),
                    };
                    out.push(info(&r, t));
                }
            }
        }
        out
    }

    /// Names of the schemas of every database (for inspection).
    pub(crate) fn schemas(&self) -> Vec<(String, String)> {
        self.databases
            .iter()
            .flat_map(|(dn, db)| db.schemas.keys().map(move |sn| (dn.clone(), sn.clone())))
            .collect()
    }

    /// Parses and runs one statement; answers Snowflake's status message (see
    /// [`StatementResult::into_message`] for statements that return rows).
    #[cfg(test)]
    pub(crate) fn execute(&mut self, sql_text: &str, ctx: &SqlContext) -> Result<String, SqlError> {
        self.run(sql_text, ctx).map(StatementResult::into_message)
    }

    /// Parses and runs one statement; answers its status message or its rows.
    pub(crate) fn run(
        &mut self,
        sql_text: &str,
        ctx: &SqlContext,
    ) -> Result<StatementResult, SqlError> {
        let stmt = ddl::parse(sql_text).map_err(SqlError::from_parse)?;
        match stmt {
            Statement::CreateSchema {
                name,
                if_not_exists,
            } => self
                .create_schema(&name, if_not_exists, ctx)
                .map(StatementResult::Status),
            Statement::CreateTable {
                name,
                if_not_exists,
                or_replace,
                columns,
                schema_evolution,
            } => self
                .create_table(
                    &name,
                    CreateMode {
                        if_not_exists,
                        or_replace,
                        schema_evolution,
                    },
                    columns,
                    ctx,
                )
                .map(StatementResult::Status),
            Statement::AddColumns {
                table,
                if_exists,
                if_not_exists,
                columns,
            } => self
                .add_columns(&table, if_exists, if_not_exists, columns, ctx)
                .map(StatementResult::Status),
            Statement::DescribeTable { table } => {
                self.describe_table(&table, ctx).map(StatementResult::Rows)
            }
            Statement::ShowSchemas { database } => self
                .show_schemas(database.as_ref(), ctx)
                .map(StatementResult::Rows),
            Statement::Select { table, count } => {
                self.select(&table, count, ctx).map(StatementResult::Rows)
            }
            Statement::DropSchema { name, if_exists } => self
                .drop_schema(&name, if_exists, ctx)
                .map(StatementResult::Status),
        }
    }

    fn database_mut(&mut self, name: &str, ctx: &SqlContext) -> Result<&mut Database, SqlError> {
        match self.databases.get_mut(name) {
            Some(db) if Self::may_use(db, ctx.role.as_deref()) => Ok(db),
            _ => Err(SqlError::does_not_exist(
                ObjectKind::Database,
                &ident::display(name),
            )),
        }
    }

    fn resolve_database(
        &self,
        explicit: Option<&String>,
        ctx: &SqlContext,
        what: &str,
    ) -> Result<String, SqlError> {
        match explicit.or(ctx.database.as_ref()) {
            Some(db) => Ok(db.clone()),
            None => Err(SqlError::compilation(
                "090105",
                "22000",
                &format!(
                    "Cannot perform {what}. This session does not have a current database. Call 'USE DATABASE', or use a qualified name."
                ),
            )),
        }
    }

    fn create_schema(
        &mut self,
        name: &ObjectName,
        if_not_exists: bool,
        ctx: &SqlContext,
    ) -> Result<String, SqlError> {
        let (db_name, schema) = match name.0.as_slice() {
            [s] => (
                self.resolve_database(None, ctx, "CREATE SCHEMA")?,
                s.clone(),
            ),
            [d, s] => (d.clone(), s.clone()),
            _ => {
                return Err(SqlError::compilation(
                    "001003",
                    "42000",
                    "invalid schema name",
                ));
            }
        };
        let db = self.database_mut(&db_name, ctx)?;
        let shown = ident::display(&schema);
        if db.schemas.contains_key(&schema) {
            return if if_not_exists {
                Ok(format!("{shown} already exists, statement succeeded."))
            } else {
                Err(SqlError::already_exists(&shown))
            };
        }
        db.schemas.insert(schema, Schema::default());
        Ok(format!("Schema {shown} successfully created."))
    }

    fn resolve_table(
        &self,
        name: &ObjectName,
        ctx: &SqlContext,
        what: &str,
    ) -> Result<TableRef, SqlError> {
        let no_schema = || {
            SqlError::compilation(
                "090106",
                "22000",
                &format!(
                    "Cannot perform {what}. This session does not have a current schema. Call 'USE SCHEMA', or use a qualified name."
                ),
            )
        };
        let (database, schema, table) = match name.0.as_slice() {
            [t] => (
                self.resolve_database(None, ctx, what)?,
                ctx.schema.clone().ok_or_else(no_schema)?,
                t.clone(),
            ),
            [s, t] => (
                self.resolve_database(None, ctx, what)?,
                s.clone(),
                t.clone(),
            ),
            [d, s, t] => (d.clone(), s.clone(), t.clone()),
            _ => {
                return Err(SqlError::compilation(
                    "001003",
                    "42000",
                    "invalid table name",
                ));
            }
        };
        Ok(TableRef {
            database,
            schema,
            table,
        })
    }

    fn schema_mut(&mut self, r: &TableRef, ctx: &SqlContext) -> Result<&mut Schema, SqlError> {
        let db = self.database_mut(&r.database, ctx)?;
        db.schemas.get_mut(&r.schema).ok_or_else(|| {
            SqlError::does_not_exist(
                ObjectKind::Schema,
                &ddl::display_name(&[r.database.clone(), r.schema.clone()]),
            )
        })
    }

    fn create_table(
        &mut self,
        name: &ObjectName,
        mode: CreateMode,
        columns: Vec<ColumnDef>,
        ctx: &SqlContext,
    ) -> Result<String, SqlError> {
        let r = self.resolve_table(name, ctx, "CREATE TABLE")?;
        let mut seen: Vec<&str> = Vec::new();
        for c in &columns {
            if seen.contains(&c.name.as_str()) {
                return Err(SqlError::compilation(
                    "002025",
                    "42S21",
                    &format!("duplicate column name '{}'", ident::display(&c.name)),
                ));
            }
            seen.push(&c.name);
        }
        let schema = self.schema_mut(&r, ctx)?;
        let shown = ident::display(&r.table);
        let exists = schema.tables.contains_key(&r.table);
        if exists && !mode.or_replace {
            return if mode.if_not_exists {
                Ok(format!("{shown} already exists, statement succeeded."))
            } else {
                Err(SqlError::already_exists(&shown))
            };
        }
        let columns = columns
            .into_iter()
            .map(|c| Column {
                name: c.name,
                ty: c.ty,
                nullable: c.nullable,
            })
            .collect();
        schema.tables.insert(
            r.table.clone(),
            Table::new(TableSchema { columns }, mode.schema_evolution),
        );
        if exists {
            self.replaced.push(r);
        }
        Ok(format!("Table {shown} successfully created."))
    }

    fn add_columns(
        &mut self,
        name: &ObjectName,
        if_exists: bool,
        if_not_exists: bool,
        columns: Vec<ColumnDef>,
        ctx: &SqlContext,
    ) -> Result<String, SqlError> {
        let r = self.resolve_table(name, ctx, "ALTER TABLE")?;
        let shown = r.display();
        let schema = self.schema_mut(&r, ctx)?;
        let Some(table) = schema.tables.get_mut(&r.table) else {
            return if if_exists {
                Ok("Statement executed successfully.".to_owned())
            } else {
                Err(SqlError::does_not_exist(ObjectKind::Table, &shown))
            };
        };
        let mut next = (*table.schema).clone();
        for c in columns {
            if next.columns.iter().any(|x| x.name == c.name) {
                if if_not_exists {
                    continue;
                }
                return Err(SqlError::compilation(
                    "001430",
                    "42601",
                    &format!("column '{}' already exists", ident::display(&c.name)),
                ));
            }
            next.columns.push(Column {
                name: c.name,
                ty: c.ty,
                nullable: c.nullable,
            });
        }
        table.schema = Arc::new(next);
        Ok("Statement executed successfully.".to_owned())
    }

    /// `SHOW SCHEMAS [IN DATABASE db]`: one row per schema, by name, with [`SHOW_SCHEMAS_COLUMNS`]; a
    /// database that is missing or that the role may not use answers "does not exist or not authorized".
    fn show_schemas(
        &self,
        database: Option<&String>,
        ctx: &SqlContext,
    ) -> Result<ResultSet, SqlError> {
        let name = self.resolve_database(database, ctx, "SHOW SCHEMAS")?;
        let db = self
            .databases
            .get(&name)
            .filter(|db| Self::may_use(db, ctx.role.as_deref()))
            .ok_or_else(|| {
                SqlError::does_not_exist(ObjectKind::Database, &ident::display(&name))
            })?;
        let text = |s: &str| Some(s.to_owned());
        Ok(ResultSet {
            columns: SHOW_SCHEMAS_COLUMNS.map(str::to_owned).to_vec(),
            rows: db
                .schemas
                .keys()
                .map(|schema| {
                    vec![
                        None, // created_on: the emulator keeps no times
                        Some(schema.clone()),
                        text("N"),
                        text("N"),
                        Some(name.clone()),
                        None, // owner
                        None, // comment
                        None, // options
                        None, // retention_time
                    ]
                })
                .collect(),
        })
    }

    /// The table `name` names, if the session's role may see it; a missing table, schema or database
    /// answers alike, as a missing table (the answer must not tell a role which object it cannot see).
    fn visible_table(
        &self,
        name: &ObjectName,
        ctx: &SqlContext,
        what: &str,
    ) -> Result<&Table, SqlError> {
        let r = self.resolve_table(name, ctx, what)?;
        self.databases
            .get(&r.database)
            .filter(|db| Self::may_use(db, ctx.role.as_deref()))
            .and_then(|db| db.schemas.get(&r.schema))
            .and_then(|s| s.tables.get(&r.table))
            .ok_or_else(|| SqlError::does_not_exist(ObjectKind::Table, &r.display()))
    }

    /// `SELECT COUNT(*)`: every row committed (also those no longer retained); `SELECT *`: the rows
    /// retained, oldest first, each value as the `jsonv2` format gives it (text, or null).
    fn select(
        &self,
        name: &ObjectName,
        count: bool,
        ctx: &SqlContext,
    ) -> Result<ResultSet, SqlError> {
        let table = self.visible_table(name, ctx, "SELECT")?;
        if count {
            return Ok(ResultSet {
                columns: vec!["COUNT(*)".to_owned()],
                rows: vec![vec![Some(table.committed.to_string())]],
            });
        }
        let columns: Vec<String> = table
            .schema
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let rows = table
            .rows
            .iter()
            .map(|row| {
                let values = row.to_json();
                columns
                    .iter()
                    .map(|c| match values.get(c) {
                        None | Some(Value::Null) => None,
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(other) => Some(other.to_string()),
                    })
                    .collect()
            })
            .collect();
        Ok(ResultSet { columns, rows })
    }

    /// `DROP SCHEMA`: the schema goes with its tables, whose channels go too (as replaced tables' do).
    fn drop_schema(
        &mut self,
        name: &ObjectName,
        if_exists: bool,
        ctx: &SqlContext,
    ) -> Result<String, SqlError> {
        let (db_name, schema) = match name.0.as_slice() {
            [s] => (self.resolve_database(None, ctx, "DROP SCHEMA")?, s.clone()),
            [d, s] => (d.clone(), s.clone()),
            _ => {
                return Err(SqlError::compilation(
                    "001003",
                    "42000",
                    "invalid schema name",
                ));
            }
        };
        let db = self.database_mut(&db_name, ctx)?;
        let shown = ident::display(&schema);
        let Some(dropped) = db.schemas.remove(&schema) else {
            return if if_exists {
                Ok(format!(
                    "Drop statement executed successfully ({shown} already dropped)."
                ))
            } else {
                Err(SqlError::does_not_exist(
                    ObjectKind::Schema,
                    &ddl::display_name(&[db_name, schema]),
                ))
            };
        };
        for table in dropped.tables.into_keys() {
            self.replaced.push(TableRef {
                database: db_name.clone(),
                schema: schema.clone(),
                table,
            });
        }
        Ok(format!("{shown} successfully dropped."))
    }

    /// `DESCRIBE TABLE`: one row per column, in column order, with [`DESCRIBE_TABLE_COLUMNS`].
    fn describe_table(&self, name: &ObjectName, ctx: &SqlContext) -> Result<ResultSet, SqlError> {
        let table = self.visible_table(name, ctx, "DESCRIBE TABLE")?;
        Ok(ResultSet {
            columns: DESCRIBE_TABLE_COLUMNS.map(str::to_owned).to_vec(),
            rows: table
                .schema
                .columns
                .iter()
                .map(|c| {
                    let evolved = table.evolved.iter().find(|(n, _)| *n == c.name);
                    describe_row(c, evolved.map(|(_, at)| *at))
                })
                .collect(),
        })
    }
}

/// How `CREATE TABLE` treats an existing table, and the option it keeps.
#[derive(Debug, Clone, Copy)]
struct CreateMode {
    if_not_exists: bool,
    or_replace: bool,
    schema_evolution: bool,
}

/// One `DESCRIBE TABLE` row. The emulator keeps no defaults, keys, checks, comments or policies, so
/// those are null, or `N` where Snowflake always answers Y/N. A column schema evolution added (at
/// `evolved_at`, ms) has a `schema evolution record`, as Snowflake keeps one.
fn describe_row(c: &Column, evolved_at: Option<i64>) -> Vec<Option<String>> {
    let text = |s: &str| Some(s.to_owned());
    let record = evolved_at.map(|at| {
        serde_json::json!({
            "evolutionType": "ADD_COLUMN",
            "evolutionSubType": null,
            "fileName": null,
            "triggeringTime": at,
            "queryId": null,
        })
        .to_string()
    });
    // In the order of DESCRIBE_TABLE_COLUMNS.
    vec![
        Some(c.name.clone()),
        Some(c.ty.sql_name()),
        text("COLUMN"),
        text(if c.nullable { "Y" } else { "N" }),
        None,      // default
        text("N"), // primary key
        text("N"), // unique key
        None,      // check
        None,      // expression
        None,      // comment
        None,      // policy name
        None,      // privacy domain
        record,
    ]
}

fn info(r: &TableRef, t: &Table) -> TableInfo {
    TableInfo {
        database: r.database.clone(),
        schema: r.schema.clone(),
        table: r.table.clone(),
        columns: t
            .schema
            .columns
            .iter()
            .map(|c| ColumnInfo {
                name: c.name.clone(),
                ty: c.ty.sql_name(),
                nullable: c.nullable,
            })
            .collect(),
        committed_rows: t.committed,
        enable_schema_evolution: t.schema_evolution,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let mut c = Catalog::new(10);
        c.add_database("DB", vec!["LOADER".to_owned()], &[]);
        c
    }

    fn ctx(db: Option<&str>, schema: Option<&str>, role: Option<&str>) -> SqlContext {
        SqlContext {
            database: db.map(str::to_owned),
            schema: schema.map(str::to_owned),
            role: role.map(str::to_owned),
        }
    }

    fn table(db: &str, s: &str, t: &str) -> TableRef {
        TableRef {
            database: db.to_owned(),
            schema: s.to_owned(),
            table: t.to_owned(),
        }
    }

    #[test]
    fn ddl_round_trip() {
        let mut c = catalog();
        let cx = ctx(Some("DB"), None, Some("LOADER"));
        assert_eq!(
            c.execute("CREATE SCHEMA IF NOT EXISTS \"my s\"", &cx)
                .as_deref(),
            Ok("Schema \"my s\" successfully created.")
        );
        assert_eq!(
            c.execute("CREATE SCHEMA IF NOT EXISTS \"my s\"", &cx)
                .as_deref(),
            Ok("\"my s\" already exists, statement succeeded.")
        );
        assert_eq!(
            c.execute("CREATE SCHEMA \"my s\"", &cx).map_err(|e| e.code),
            Err("002002".to_owned())
        );
        c.execute("CREATE TABLE IF NOT EXISTS \"my s\".t (id varchar)", &cx)
            .unwrap();
        c.execute(
            "ALTER TABLE \"my s\".t ADD COLUMN IF NOT EXISTS id int, n number(10,2) not null",
            &cx,
        )
        .unwrap();
        let info = c.table_info(&table("DB", "my s", "T")).unwrap();
        let cols: Vec<_> = info
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.ty.as_str(), c.nullable))
            .collect();
        assert_eq!(
            cols,
            [
                ("ID", "VARCHAR(16777216)", true),
                ("N", "NUMBER(10,2)", false)
            ]
        );
        let err = c
            .execute("ALTER TABLE \"my s\".t ADD COLUMN n int", &cx)
            .unwrap_err();
        assert_eq!(err.code, "001430");
    }

    #[test]
    fn missing_objects_answer_002003() {
        let mut c = catalog();
        let cx = ctx(Some("DB"), Some("NOPE"), Some("LOADER"));
        let e = c.execute("CREATE TABLE t (a int)", &cx).unwrap_err();
        assert_eq!((e.code.as_str(), e.status), ("002003", 422));
        assert!(
            e.message
                .contains("Schema 'DB.NOPE' does not exist or not authorized."),
            "{}",
            e.message
        );
        assert_eq!(e.sql_state, "02000");
        let e = c
            .execute("ALTER TABLE PUBLIC.t ADD COLUMN a int", &cx)
            .unwrap_err();
        assert!(
            e.message.contains("Table 'DB.PUBLIC.T' does not exist"),
            "{}",
            e.message
        );
        assert_eq!(e.sql_state, "42S02");
        assert!(
            c.execute("ALTER TABLE IF EXISTS PUBLIC.t ADD COLUMN a int", &cx)
                .is_ok()
        );
        let e = c.execute("CREATE SCHEMA OTHER.S", &cx).unwrap_err();
        assert!(e.message.contains("Database 'OTHER'"), "{}", e.message);
        // A role without access sees the database as missing, as Snowflake reports it.
        let e = c
            .execute("CREATE SCHEMA S", &ctx(Some("DB"), None, Some("OTHER")))
            .unwrap_err();
        assert_eq!(e.code, "002003");
        let e = c
            .execute("CREATE SCHEMA S", &ctx(None, None, Some("LOADER")))
            .unwrap_err();
        assert_eq!(e.code, "090105");
        let e = c
            .execute(
                "CREATE TABLE T (a int)",
                &ctx(Some("DB"), None, Some("LOADER")),
            )
            .unwrap_err();
        assert_eq!(e.code, "090106");
        let e = c
            .execute(
                "CREATE TABLE T (a int, A int)",
                &ctx(Some("DB"), Some("PUBLIC"), None),
            )
            .unwrap_err();
        assert_eq!(e.code, "002025");
    }

    #[test]
    fn describe_table_rows_and_visibility() {
        let mut c = catalog();
        let cx = ctx(Some("DB"), Some("PUBLIC"), Some("LOADER"));
        c.execute(
            "CREATE TABLE \"t\" (id int not null, \"Name\" varchar(5))",
            &cx,
        )
        .unwrap();
        // Only name, type and null? vary: the emulator keeps no defaults, keys, checks or comments.
        let row = |name: &str, ty: &str, null: &str| {
            let mut row = vec![None; DESCRIBE_TABLE_COLUMNS.len()];
            row[0] = Some(name.to_owned());
            row[1] = Some(ty.to_owned());
            row[2] = Some("COLUMN".to_owned());
            row[3] = Some(null.to_owned());
            row[5] = Some("N".to_owned());
            row[6] = Some("N".to_owned());
            row
        };
        assert_eq!(
            c.run("DESC TABLE DB.PUBLIC.\"t\"", &cx),
            Ok(StatementResult::Rows(ResultSet {
                columns: DESCRIBE_TABLE_COLUMNS.map(str::to_owned).to_vec(),
                rows: vec![
                    row("ID", "NUMBER(38,0)", "N"),
                    row("Name", "VARCHAR(5)", "Y")
                ],
            }))
        );
        // Through the DDL entry point a result set reads as the SQL API's statement message.
        assert_eq!(
            c.execute("DESCRIBE TABLE \"t\"", &cx).as_deref(),
            Ok("Statement executed successfully.")
        );
        // Every way of not seeing the table answers the same: the table does not exist.
        for (sql, role, shown) in [
            ("DESCRIBE TABLE T", "LOADER", "DB.PUBLIC.T"),
            ("DESCRIBE TABLE NOPE.\"t\"", "LOADER", "DB.NOPE.\"t\""),
            (
                "DESCRIBE TABLE OTHER.PUBLIC.\"t\"",
                "LOADER",
                "OTHER.PUBLIC.\"t\"",
            ),
            ("DESCRIBE TABLE \"t\"", "STRANGER", "DB.PUBLIC.\"t\""),
        ] {
            let e = c
                .run(sql, &ctx(Some("DB"), Some("PUBLIC"), Some(role)))
                .unwrap_err();
            assert_eq!(
                (e.code.as_str(), e.sql_state.as_str(), e.status),
                ("002003", "42S02", 422),
                "{sql}"
            );
            assert_eq!(
                e.message,
                format!(
                    "SQL compilation error:\nTable '{shown}' does not exist or not authorized."
                ),
                "{sql}"
            );
        }
        // The administrator (no role) sees everything.
        assert!(
            c.run("DESCRIBE TABLE DB.PUBLIC.\"t\"", &SqlContext::default())
                .is_ok()
        );
    }

    #[test]
    fn lookup_and_rows_are_bounded() {
        let mut c = catalog();
        c.execute("CREATE TABLE DB.PUBLIC.T (a int)", &SqlContext::default())
            .unwrap();
        let t = table("DB", "PUBLIC", "T");
        assert!(c.lookup(&t, "LOADER").is_ok());
        assert_eq!(c.lookup(&t, "OTHER").unwrap_err(), LookupError::Database);
        assert_eq!(
            c.lookup(&table("DB", "X", "T"), "LOADER").unwrap_err(),
            LookupError::Schema
        );
        assert_eq!(
            c.lookup(&table("DB", "PUBLIC", "X"), "LOADER").unwrap_err(),
            LookupError::Table
        );
        let schema = c.lookup(&t, "LOADER").unwrap();
        for i in 0..15 {
            let row = Row::from_json(&schema, &serde_json::json!({ "A": i }));
            c.append(&t, vec![row]);
        }
        let rows = c.rows(&t).unwrap();
        assert_eq!(rows.len(), 10);
        assert_eq!(rows[0]["A"], 5);
        assert_eq!(c.table_info(&t).unwrap().committed_rows, 15);
    }

    #[test]
    fn select_counts_every_committed_row_and_reads_back_the_retained_ones() {
        let mut c = catalog();
        let cx = ctx(Some("DB"), Some("PUBLIC"), Some("LOADER"));
        c.execute("CREATE TABLE \"t\" (ID varchar, N int, J variant)", &cx)
            .unwrap();
        let t = table("DB", "PUBLIC", "t");
        let schema = c.lookup(&t, "LOADER").unwrap();
        for i in 0..12 {
            let row = Row::from_json(
                &schema,
                &serde_json::json!({ "ID": format!("r{i}"), "N": i, "J": {"k": [i]} }),
            );
            c.append(&t, vec![row]);
        }
        let text = |s: &str| Some(s.to_owned());
        assert_eq!(
            c.run("SELECT COUNT(*) FROM \"t\"", &cx),
            Ok(StatementResult::Rows(ResultSet {
                columns: vec!["COUNT(*)".to_owned()],
                rows: vec![vec![text("12")]],
            }))
        );
        let Ok(StatementResult::Rows(all)) = c.run("select * from DB.PUBLIC.\"t\"", &cx) else {
            panic!("rows expected");
        };
        assert_eq!(all.columns, ["ID", "N", "J"]);
        // Ten rows are retained; values come as text, nulls as null.
        assert_eq!(all.rows.len(), 10);
        assert_eq!(all.rows[0], [text("r2"), text("2"), text(r#"{"k":[2]}"#)]);
        c.execute("ALTER TABLE \"t\" ADD COLUMN X int", &cx)
            .unwrap();
        let Ok(StatementResult::Rows(wider)) = c.run("SELECT * FROM \"t\"", &cx) else {
            panic!("rows expected");
        };
        assert_eq!(wider.rows[9][3], None);
        // A table the role cannot see is missing, as for DESCRIBE.
        let other = ctx(Some("DB"), Some("PUBLIC"), Some("OTHER"));
        let missing = c.run("SELECT COUNT(*) FROM \"t\"", &other).unwrap_err();
        assert_eq!(
            (missing.code.as_str(), missing.sql_state.as_str()),
            ("002003", "42S02")
        );
    }

    #[test]
    fn drop_schema_takes_its_tables_and_their_channels() {
        let mut c = catalog();
        let cx = ctx(Some("DB"), None, Some("LOADER"));
        c.execute("CREATE SCHEMA S", &cx).unwrap();
        c.execute("CREATE TABLE S.A (x int)", &cx).unwrap();
        c.execute("CREATE TABLE S.B (x int)", &cx).unwrap();
        assert_eq!(
            c.execute("DROP SCHEMA DB.S CASCADE", &cx).as_deref(),
            Ok("S successfully dropped.")
        );
        assert!(c.table_info(&table("DB", "S", "A")).is_none());
        assert_eq!(
            c.take_replaced(),
            [table("DB", "S", "A"), table("DB", "S", "B")]
        );
        assert_eq!(c.execute("DROP SCHEMA S", &cx).unwrap_err().code, "002003");
        assert_eq!(
            c.execute("DROP SCHEMA IF EXISTS S", &cx).as_deref(),
            Ok("Drop statement executed successfully (S already dropped).")
        );
        // The role must be able to use the database.
        c.execute("CREATE SCHEMA T", &cx).unwrap();
        let other = ctx(Some("DB"), None, Some("OTHER"));
        assert_eq!(
            c.execute("DROP SCHEMA T", &other).unwrap_err().code,
            "002003"
        );
    }
}

#[cfg(test)]
mod show_schemas_tests {
    use super::*;

    #[test]
    fn show_schemas_lists_a_usable_databases_schemas_and_refuses_others() {
        let mut c = Catalog::new(10);
        c.add_database("DB", vec!["LOADER".to_owned()], &["RAW".to_owned()]);
        let loader = SqlContext {
            role: Some("LOADER".to_owned()),
            ..SqlContext::default()
        };
        let Ok(StatementResult::Rows(rows)) = c.run("SHOW SCHEMAS IN DATABASE db", &loader) else {
            panic!("rows")
        };
        let names: Vec<_> = rows
            .rows
            .iter()
            .map(|r| r[1].clone().unwrap_or_default())
            .collect();
        assert_eq!(names, ["PUBLIC", "RAW"]);
        let stranger = SqlContext {
            role: Some("STRANGER".to_owned()),
            ..SqlContext::default()
        };
        let Err(e) = c.run("SHOW SCHEMAS IN DATABASE DB", &stranger) else {
            panic!("refused")
        };
        assert_eq!(e.code, "002003");
        assert!(
            e.message.contains("Database 'DB' does not exist"),
            "{}",
            e.message
        );
        assert!(
            c.run("SHOW SCHEMAS", &loader).is_err(),
            "no current database"
        );
    }
}
