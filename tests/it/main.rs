//! One integration-test binary (one link step); each module covers one area.

// A failed expectation in a test is a test failure: panicking with a message is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]
// A scenario test reads as one user's journey, step after step against one server; cutting it
// into helpers would hide the order that is the point. The 100-line limit is for the product.
#![allow(clippy::too_many_lines)]

mod common;
// Each layer uses only the ones below it; no file depends on another in a circle.
mod architecture;
// Every operation of a spec answers validly and refuses invalid input as declared.
mod conformance;
// The dakkio sandbox: scoped keys, ingest, aggregate queries, alerts, analytics.
mod dakkio;
// The Dino sandbox: policy decisions, operator approval, wallet and ledger, expiry.
mod dino;
// Generated values always satisfy their own schema, for any seed.
mod generation;
// Broken specs fail fast with file, pointer and reason; nothing panics.
mod spec_loading;
// OpenAPI 3.1 (FastAPI's and every 2020-12 keyword) and Swagger 2.0, served and round-tripped.
mod spec_versions;
// Zero-code state on real API shapes: sid + .json + forms, {data: {gid}}, {incident: {}}.
mod shapes;
// Our Dakota spec against the official one, operation by operation.
mod spec_match;
// Routing, auth, validation and leniency over HTTP.
mod http;
// Hostile input never gets a 5xx or stops the server.
mod robustness;
// Resources created, read, listed, updated and deleted per tenant; idempotency; --state.
mod stateful;
// --state survives kill -9 and torn writes, and carries older files over.
mod durability;
// The sandbox started from Rust code, and the installed binary from anywhere.
mod library;
// Lifecycles on the virtual clock, events, faults and signed webhooks.
mod lifecycle;
// The Dakota sandbox driven the way an SDK user drives it, snapshot by snapshot.
mod dakota_flow;
// The contract tester against our sandbox, a broken server, and through the recording proxy.
mod contract;
// The Dakota profile: auth fallback, webhook history and replay, event envelope, scenarios.
mod dakota_hooks;
// Dakota wallets: links to signer groups and policies, balances, deposits and sends.
mod dakota_wallets;
// The dashboard: its admin endpoints, the admin token, and the page in headless Chromium.
mod dashboard;

/// A fresh UUID v4 for idempotency keys.
fn contract_uuid() -> String {
    api_sandbox::contract::fixture::uuid_v4()
}
