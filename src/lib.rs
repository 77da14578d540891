//! api-sandbox: a local, stateful sandbox of any OpenAPI 3.0 API, and a contract tester.
//!
//! The crate is a stack of layers; each module uses only the ones below it:
//!
//! ```text
//!   server/     HTTP: one port per API, the request journey, auth, the admin API
//!   behaviours/ what a profile cannot declare, one file each, behind one extension point
//!   state/      the engine: resources, records per tenant, lifecycles, events, webhooks
//!   compiled/   one spec prepared: routes, validators, error style, answers from the spec
//!   profile/    the optional sandbox.yaml: what the spec cannot say
//!   generate/   schema -> deterministic realistic data
//!   schema/     OpenAPI schemas -> JSON Schema 2020-12, compiled validators
//!   spec/       loading a document, `$ref`s, the operation catalogue
//!   hashing     the hash maps the layers above look things up in on every request
//! ```
//!
//! A request arrives at [`server::handler`], is routed by [`compiled::routing`],
//! authenticated by [`server::auth`], validated by [`server::request`] with the validators in
//! [`compiled::validators`], answered by [`state`] (or from the spec by
//! [`compiled::respond`] and [`generate`]), and refused, when it is, in the API's own format
//! by [`compiled::problem`].
//!
//! [`contract`] is the other side, beside `server` on top of `compiled`: it replays
//! recorded exchanges against any server and checks the answers against the spec.

pub mod behaviours;
pub mod cli;
pub mod compiled;
pub mod contract;
pub mod generate;
pub mod hashing;
pub mod profile;
pub mod schema;
pub mod server;
pub mod spec;
pub mod state;

pub use server::Running;
