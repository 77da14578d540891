//! HTTP: everything that speaks it, on top of the compiled API and the engine. `serve`
//! binds one port per API and runs the scheduler; `handler` takes every request through
//! its journey (route, authenticate, validate, answer); `request` parses and validates
//! parameters and bodies (`form` reads form-encoded ones); `auth` reads credentials; `admin` is the `/__sandbox/` API, with
//! `view` reading the engine's state for it; `journal` remembers recent requests (and their
//! exchanges); `guard` keeps `/__sandbox/` behind the admin token when one is set; `ui` is
//! the dashboard at `/__sandbox/ui`; `sandbox` ties one API's parts together.

pub mod admin;
pub mod auth;
pub mod form;
pub mod guard;
pub mod handler;
pub mod journal;
pub mod request;
pub mod running;
pub mod sandbox;
pub mod serve;
pub mod ui;
pub mod view;

pub use self::running::Running;
pub use self::sandbox::Sandbox;
pub use self::serve::{Bound, ServeError, ServeOptions, prepare, router, shutdown_signal};
