//! Reports of a replay: a readable terminal summary (with a progress bar on a terminal),
//! JUnit XML for CI (one testcase per step) and JSON for tools (including timings).

pub mod json;
pub mod junit;
pub mod terminal;
