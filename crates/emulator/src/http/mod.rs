//! HTTP plumbing shared by every protocol and the admin API: requests read (bodies bounded, gzip and
//! zstd decoded into reused buffers, query strings) and answers given.

mod answer;
mod buffers;
mod gzip;
mod request;

pub(crate) use answer::{
    Outcome, Reject, Resp, empty_response, error_response, json_response, text_response,
};
pub(crate) use buffers::BufferPool;
pub(crate) use request::{decode_body, decode_rest_body, query_pairs, query_value, read_body};
