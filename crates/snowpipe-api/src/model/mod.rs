//! The service's request and response bodies, field for field as the protocol names them.
//!
//! Every response type tolerates unknown fields (they are ignored) and `null` where the service sends it
//! (read as the field's default), because the service adds fields over time and its SDK leaves some unset.

mod channel;
mod insert;
mod nullable;
mod row;
mod schema;
mod status;

pub use channel::{Account, ChannelErrorCode, ChannelResponse, CreateChannelRequest, TableRef};
pub use insert::{InsertRequest, InsertResponse, RowError};
pub use row::Row;
pub use schema::{ColumnInfo, WarehouseType};
pub use status::{BulkStatusResponse, StatusResponse};
