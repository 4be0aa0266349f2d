//! The admin API: the [`Control`](crate::Control) handle over HTTP, under [`ADMIN_PREFIX`].

mod api;

pub use api::ADMIN_PREFIX;
pub(crate) use api::serve;
