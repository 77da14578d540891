//! Reports of a replay: a readable terminal summary (with a progress bar on a terminal),
//! JUnit XML for CI (one testcase per step), JSON for tools (including timings) and a
//! self-contained HTML page for people (a CI artifact).

pub mod html;
pub mod json;
pub mod junit;
pub mod terminal;
