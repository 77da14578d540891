//! The `spend_policy` behaviour's settings, as the profile gives them.

use std::collections::BTreeMap;

use serde::Deserialize;

/// What the behaviour does for an operation the profile binds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Create,
    Approve,
    Decline,
    Cancel,
    Balance,
    Faucet,
    /// An account read, list or update, with its budget position added.
    Account,
    /// The team's receive address (made on first use), a new one, or whose one is.
    ReceiveAddress,
    RotateAddress,
    ResolveAddress,
    /// A single-use payment code issued, or whose one is.
    CreateCode,
    ResolveCode,
    /// A payment code or a receive address, whichever was pasted.
    ResolveRecipient,
    /// A transfer to another team offered, accepted, declined or cancelled.
    CreateTransfer,
    AcceptTransfer,
    DeclineTransfer,
    CancelTransfer,
}

fn default_wallet() -> i64 {
    100_000
}
fn default_spender() -> String {
    "agent".into()
}

/// Event types for what happens to a request after it is made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Events {
    pub approved: String,
    pub declined: String,
    pub cancelled: String,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            approved: "spend_request.approved".into(),
            declined: "spend_request.declined".into(),
            cancelled: "spend_request.cancelled".into(),
        }
    }
}

/// The profile's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub requests: String,
    pub accounts: String,
    pub ledger: String,
    /// Payment codes teams issue (for transfers).
    #[serde(default)]
    pub codes: Option<String>,
    /// Transfers between teams; each side keeps its own copy.
    #[serde(default)]
    pub transfers: Option<String>,
    #[serde(default = "default_wallet")]
    pub wallet_cents: i64,
    /// Where a held request is decided by a human; `{id}` is the request's id.
    #[serde(default)]
    pub approval_url: Option<String>,
    /// The role whose credential spends from its own account (others name `account_id`).
    #[serde(default = "default_spender")]
    pub spender_role: String,
    #[serde(default)]
    pub events: Events,
    #[serde(default)]
    pub answers: BTreeMap<String, Role>,
}
