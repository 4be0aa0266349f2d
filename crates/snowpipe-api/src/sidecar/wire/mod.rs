//! The sidecar's request and response bodies, field for field as its protocol names them.
//!
//! Every response type tolerates unknown fields (they are ignored) and `null` where the service sends it
//! (read as the field's default), because the service adds fields over time and its SDK leaves some unset.

mod channel;
mod column;
mod insert;
mod nullable;
mod status;

pub use channel::{Account, ChannelErrorCode, ChannelResponse, CreateChannelRequest};
pub use column::ColumnInfo;
pub use insert::{InsertRequest, InsertResponse, RowError, write_insert_json};
pub use status::{BulkStatusResponse, StatusResponse};
