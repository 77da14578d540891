//! Stateful behaviour for any spec: what a POST creates, a GET returns, a list pages
//! through and filters, a PATCH changes, a DELETE removes, per tenant (credential).
//!
//! Types first, then the engine, then what it does:
//! - [`model`] infers resources from the spec and profile; [`store`] keeps records per
//!   tenant; [`shape`] builds and projects bodies; [`lists`] pages; [`lifecycle`] moves
//!   status fields; [`expr`] evaluates profile expressions; [`clock`], [`idempotency`],
//!   [`rate_limit`], [`events`] and [`webhooks`] hold what changes with time and requests;
//! - [`engine::Engine`] owns all of it for one API;
//! - `operations` answers a request ([`call::Call`] in, [`call::Outcome`] out),
//!   `effects` runs lifecycles and the profile's effects, `relations` follows references,
//!   `emit` records events, [`delivery_log`] serves webhook history through an API's own
//!   operations, [`delivery`] sends webhooks, [`persist`] writes `--state` files, and
//!   served creates take [`turns`] at writing.

pub mod behaviour;
pub mod body;
pub mod call;
pub mod clock;
pub mod credentials;
pub mod delivery;
pub mod delivery_log;
mod effects;
pub mod emit;
pub mod engine;
pub mod envelope;
pub mod events;
pub mod expr;
pub mod idempotency;
pub mod lifecycle;
pub mod lists;
pub mod model;
pub mod names;
mod operations;
pub mod payload;
pub mod persist;
pub mod rate_limit;
mod relations;
mod services;
pub mod shape;
pub mod store;
pub mod tenancy;
pub mod turns;
pub mod webhooks;

pub use self::call::{Call, Outcome};
pub use self::engine::Engine;
pub use self::events::Event;
