//! One served API: its compiled spec, its engine and the record of the requests it
//! answered. Every request to the API's port is handled against one `Sandbox`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::journal::Journal;
use crate::compiled::Api;
use crate::spec::SpecError;
use crate::state::Engine;

pub struct Sandbox {
    pub api: Api,
    pub engine: Engine,
    pub journal: Journal,
    /// Requests seen, for request ids.
    requests: AtomicU64,
}

impl Sandbox {
    /// Loads a spec file (and its profile) and builds its engine.
    pub fn load(file: &Path, seed: u64) -> Result<Self, SpecError> {
        Self::new(Api::load(file, seed)?)
    }

    /// The sandbox of an already compiled API.
    pub fn new(api: Api) -> Result<Self, SpecError> {
        let engine = Engine::new(&api)?;
        Ok(Self {
            api,
            engine,
            journal: Journal::default(),
            requests: AtomicU64::new(0),
        })
    }

    /// A fresh request id (`req_0000000000000001`, ...).
    pub fn next_request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        format!("req_{n:016}")
    }
}
