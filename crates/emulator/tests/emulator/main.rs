//! End-to-end tests of the emulator over real HTTP on loopback, with a plain hyper client (the project's
//! own client, `snowpipe-api`, gets its conformance tests against the emulator separately).
//! One test binary with modules, so the suite links once.

mod admin_api;
mod binary;
mod common;
mod faults;
mod protocol;
mod rest;
mod rest_common;
mod rest_doc;
mod rest_faults;
mod sql_api;
