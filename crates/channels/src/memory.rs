//! [`MemoryWarehouse`]: the [`Warehouse`] in memory, over snowpipe-api's in-memory backend, so that the whole
//! channel layer runs in memory in tests: DDL creates the schemas, tables and columns the backend's channels
//! then find.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use snowpipe_api::{Column, TableRef, memory::InMemory};
use snowpipe_grouping::Schema;

use crate::{Warehouse, WarehouseError, sql};

/// A warehouse in memory: statements act on an [`InMemory`] backend's catalog, and are recorded.
#[derive(Debug)]
pub struct MemoryWarehouse {
    backend: Arc<InMemory>,
    database: String,
    iceberg: bool,
    statements: Mutex<Vec<String>>,
}

impl MemoryWarehouse {
    /// A warehouse over `backend`'s catalog, for tables in `database`.
    pub fn new(backend: Arc<InMemory>, database: &str) -> Self {
        Self {
            backend,
            database: database.to_owned(),
            iceberg: false,
            statements: Mutex::default(),
        }
    }

    /// The statements run so far, as the SQL API client would write them.
    pub fn statements(&self) -> Vec<String> {
        self.statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, statement: String) {
        self.statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(statement);
    }

    fn table(&self, schema: &str, table: &str) -> TableRef {
        TableRef {
            database: self.database.clone(),
            schema: schema.to_owned(),
            table: table.to_owned(),
            enable_iceberg: self.iceberg,
        }
    }

    fn columns<'a>(&self, columns: &'a Schema) -> Vec<(&'a str, &'static str)> {
        columns
            .iter()
            .map(|(name, ty)| (name, sql::column_type(ty, self.iceberg)))
            .collect()
    }
}

#[async_trait]
impl Warehouse for MemoryWarehouse {
    async fn create_schema(&self, schema: &str) -> Result<(), WarehouseError> {
        self.record(sql::create_schema(schema));
        self.backend.create_schema(&self.database, schema);
        Ok(())
    }

    async fn create_table(
        &self,
        schema: &str,
        table: &str,
        columns: &Schema,
    ) -> Result<(), WarehouseError> {
        self.record(sql::create_table(
            schema,
            table,
            columns.iter(),
            self.iceberg,
        ));
        self.backend
            .create_table(&self.table(schema, table), &self.columns(columns));
        Ok(())
    }

    async fn add_columns(
        &self,
        schema: &str,
        table: &str,
        columns: &Schema,
    ) -> Result<(), WarehouseError> {
        self.record(sql::add_columns(
            schema,
            table,
            columns.iter(),
            self.iceberg,
        ));
        if self
            .backend
            .add_columns(&self.table(schema, table), &self.columns(columns))
        {
            Ok(())
        } else {
            Err(WarehouseError::ObjectMissing {
                code: "002003".into(),
                message: format!("Table '{schema}.{table}' does not exist or not authorized."),
            })
        }
    }

    async fn describe_table(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Option<Vec<Column>>, WarehouseError> {
        self.record(sql::describe_table(schema, table));
        Ok(self.backend.columns(&self.table(schema, table)))
    }
}
