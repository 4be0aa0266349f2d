//! Snowflake's SQL API v2: the statements endpoint, its key-pair JWT authentication and its answers.
//! The DDL it runs is the account's, in the store.

mod statements;

pub(crate) use statements::serve;
