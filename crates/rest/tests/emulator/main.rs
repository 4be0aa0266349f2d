//! The client against the emulator's REST API over real HTTP on loopback: the boundary's conformance
//! suite, then the client's own behaviours (auth, errors, appends, channels, status, exact outcomes
//! through the channel layer). One test binary with modules, so the suite links once.

mod appends;
mod auth;
mod channels;
mod conformance;
mod errors;
mod exactly_once;
mod status;
mod support;
