//! One served API: its compiled spec, its engine and the record of the requests it
//! answered, plus what its port needs to know about itself (the address it is bound to, the
//! admin token, whether the server is stopping). Every request to the API's port is handled
//! against one `Sandbox`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::journal::Journal;
use crate::compiled::Api;
use crate::spec::SpecError;
use crate::state::Engine;

pub struct Sandbox {
    pub api: Api,
    pub engine: Engine,
    pub journal: Journal,
    /// The token `/__sandbox/` and the dashboard require (`None`: open).
    pub admin_token: Option<String>,
    /// The address the API is served at, once bound.
    pub addr: OnceLock<SocketAddr>,
    /// Set when the server shuts down, so long-lived responses (the dashboard's event
    /// stream) end and graceful shutdown does not wait for them.
    pub stopping: AtomicBool,
    /// Requests seen, for request ids.
    requests: AtomicU64,
}

impl Sandbox {
    /// Loads a spec file (and its profile) and builds its engine.
    pub fn load(file: &Path, seed: u64) -> Result<Self, SpecError> {
        Self::new(Api::load(file, seed)?)
    }

    /// The sandbox of an already compiled API, with the behaviours its profile names.
    pub fn new(api: Api) -> Result<Self, SpecError> {
        let mut engine = Engine::new(&api)?;
        engine.behaviours = crate::behaviours::build(&api.profile, &api.spec.file)?;
        Ok(Self {
            api,
            engine,
            journal: Journal::default(),
            admin_token: None,
            addr: OnceLock::new(),
            stopping: AtomicBool::new(false),
            requests: AtomicU64::new(0),
        })
    }

    /// A fresh request id (`req_0000000000000001`, ...).
    pub fn next_request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        format!("req_{n:016}")
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }
}
