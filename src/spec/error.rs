//! The one error type for everything that can be wrong with a spec file. Every variant renders
//! as `file: JSON pointer: reason`, so a user can jump straight to the offending node.

use std::path::PathBuf;

/// A spec that cannot be served, and exactly where and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {pointer}: {reason}", file.display())]
pub struct SpecError {
    pub file: PathBuf,
    /// JSON pointer of the offending node (`/` for the document as a whole).
    pub pointer: String,
    pub reason: String,
}

impl SpecError {
    pub fn new(
        file: impl Into<PathBuf>,
        pointer: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        let pointer = pointer.into();
        Self {
            file: file.into(),
            pointer: if pointer.is_empty() {
                "/".to_owned()
            } else {
                pointer
            },
            reason: reason.into(),
        }
    }
}
