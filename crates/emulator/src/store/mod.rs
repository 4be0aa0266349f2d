//! The emulated account that every protocol serves: identifiers, column types and values, the catalog
//! of databases, schemas and tables (with the DDL that changes it), the rows committed into tables, and
//! the channel state machines: the sidecar's (`channels`) and the REST API's (`rest_channels`, whose
//! rows `landing` converts at commit). Rows landed through either protocol go into the same tables. It
//! imports nothing of the protocols, auth or faults that sit above it; inside, imports point one way:
//! `catalog` → `row` → `table_schema`.

mod catalog;
mod channels;
#[cfg(test)]
mod channels_props;
pub(crate) mod ddl;
mod field;
pub(crate) mod ident;
mod landing;
mod rest_channels;
mod row;
mod table_schema;
mod types;
mod utc_stamp;

pub(crate) use catalog::{Catalog, LookupError, ResultSet, SqlContext, StatementResult, TableRef};
pub use catalog::{ColumnInfo, SqlError, TableInfo};
pub use channels::ChannelInfo;
pub(crate) use channels::{ChannelKey, Committed, InsertError, Store};
pub(crate) use field::{Field, Key};
pub(crate) use landing::{Converted, check_object, split_lines};
pub(crate) use rest_channels::{
    Appended, ChannelError, ChannelStatus, Due, PIPE_SUFFIX, Pending, RestChannels, RestKey,
    TokenCheck,
};
pub use rest_channels::{PendingRequest, RejectedRow, RestChannelInfo, RestRequest};
pub(crate) use row::{Row, RowWriter};
#[cfg(test)]
pub(crate) use table_schema::Column;
pub(crate) use table_schema::TableSchema;
pub use types::ColumnType;
