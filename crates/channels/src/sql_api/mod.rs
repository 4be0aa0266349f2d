//! Snowflake's SQL API v2, for the DDL the manager runs: key-pair JWT authentication, statement
//! submission, polling of asynchronous statements, and the mapping of Snowflake's errors to kinds.

mod client;
pub mod jwt;
mod key;

pub use client::{SqlApiConfig, SqlApiWarehouse};
pub use key::{KeyError, SigningKey};
