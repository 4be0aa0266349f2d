//! Reading event files for the Snowpipe Streaming upload manager: decoding lines, grouping events by table
//! with each table's schema and offset, splitting by insert request size, and counting duplicates.
//!
//! Pure logic: no async, no clock (the upload time is a parameter), no I/O besides reading the event file it
//! is handed.
//!
//! ```
//! use std::path::Path;
//! use snowpipe_grouping::{Batch, ReadOptions, UploadTime, DEFAULT_MAX_INSERT_BYTES};
//! use time::macros::datetime;
//!
//! let file = br#"{"message":{"metadata":{"table":"TRACKS","columns":{"ID":"string","UUID_TS":"datetime"}},"data":{"ID":"a1"}},"metadata":{"job_id":1001}}
//! {"message":{"metadata":{"table":"PAGES","columns":{"ID":"string"}},"data":{"ID":"p1"}},"metadata":{"job_id":1000}}
//! "#;
//! let options = ReadOptions::new(UploadTime::new(datetime!(2024-01-02 03:04:05.678 UTC)));
//! let batch = Batch::read_from(&file[..], Path::new("batch.json"), &options).unwrap();
//! let partition = batch.partition(DEFAULT_MAX_INSERT_BYTES);
//! let tables: Vec<_> = partition.included.iter().map(|t| (t.name(), t.offset())).collect();
//! assert_eq!(tables, [("PAGES", 1000), ("TRACKS", 1001)]);
//! let row = partition.included[1].events()[0].data();
//! assert_eq!(row, r#"{"ID":"a1","UUID_TS":"2024-01-02T03:04:05.678Z"}"#);
//! ```

// Lets `test_util` name this crate the same way whether it is compiled here or into the benchmark.
#[cfg(feature = "test-util")]
extern crate self as snowpipe_grouping;

mod batch;
mod constraints;
mod duplicates;
mod error;
mod event;
mod excerpt;
pub mod raw;
mod read;
mod row;
mod schema;
mod split;
#[cfg(feature = "test-util")]
pub mod test_util;
#[cfg(all(test, feature = "test-util"))]
mod test_util_tests;
mod upload_time;
mod warehouse_type;

pub use batch::{Batch, TableBatch};
pub use constraints::{Constraint, Constraints};
pub use duplicates::{DUPLICATE_EXEMPT_TABLE, Duplicates, count_duplicates, counts_duplicates};
pub use error::{LineProblem, ReadError, ReadErrorKind};
pub use event::{Event, EventError, ID, RECEIVED_AT, UUID_TS};
pub use excerpt::EXCERPT_CHARS;
pub use read::{DEFAULT_MAX_LINE_BYTES, ReadOptions};
pub use row::value_bytes;
pub use schema::Schema;
pub use split::{DEFAULT_MAX_INSERT_BYTES, Partition, SizeSplit, rows_array_size, split_by_size};
pub use upload_time::UploadTime;
pub use warehouse_type::{UnknownTypeError, WarehouseType};
