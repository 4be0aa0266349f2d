//! Snowflake's SQL API v2, for the DDL the manager runs and the table descriptions it reads: statement
//! submission with key-pair JWTs (`snowpipe-auth`), polling of asynchronous statements, and the mapping of
//! Snowflake's errors to kinds.

mod client;

pub use client::{SqlApiConfig, SqlApiWarehouse};
