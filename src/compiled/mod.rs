//! The compiled API: one spec and its profile prepared for serving, before any state is
//! kept. It holds what every request needs and nothing that changes with requests: the
//! route table ([`routing`]), validators per operation ([`validators`]), the API's error
//! style ([`error_style`]) and error bodies ([`problem`]), and success answers taken from
//! the spec ([`respond`]), all as [`prepared::Prepared`] responses independent of HTTP.

pub mod api;
pub mod error_style;
pub mod prepared;
pub mod problem;
pub mod respond;
pub mod routing;
pub mod validators;

pub use self::api::Api;
pub use self::prepared::Prepared;
