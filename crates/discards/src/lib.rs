//! Type coercion of events against a Snowflake table's schema, and the discard rows written for values that
//! cannot be converted.
//!
//! Pure logic: no async, no clock (the upload time is a parameter), no I/O. Works on
//! [`snowpipe_grouping::Event`]s: rows that need no change stay the raw bytes read from the file.
//!
//! Beyond the behaviour contract, two choices: a null value is never converted (it fits every column) and
//! never yields a discard row; and the text form of objects and arrays is their JSON text exactly as the
//! event had it (see [`text_form`]).

mod coerce;
mod convert;
mod row;
mod table;
mod text;

pub use coerce::{Coercer, Coercion, coerce};
pub use convert::{Conversion, convert, discard_reason};
pub use row::DiscardRow;
pub use table::{DISCARDS_COLUMNS, DISCARDS_TABLE, discards_schema};
pub use text::text_form;
