//! One integration-test binary (one link step); each module covers one area.

mod common;
// Every operation of a spec answers validly and refuses invalid input as declared.
mod conformance;
