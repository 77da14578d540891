//! The engine's side of one request: what it reads of a validated request ([`Call`]) and
//! what it decides ([`Outcome`]). Parsing and answering HTTP is the server's job.

use serde_json::Value;

use std::collections::BTreeMap;

use super::store::{Body, Id};

/// What the engine decided for a request.
pub enum Outcome {
    /// A body for the operation's success status (`Value::Null` for none).
    Body(Value),
    /// A record shown through the operation's success schema, and the record as it was
    /// shown: enough to show the same answer again (an idempotent replay) without keeping
    /// its bytes twice.
    Shown(Value, Snapshot),
    /// A body already written as JSON text (a record just stored, in the text it was stored
    /// as), for the operation's success status.
    Text(bytes::Bytes),
    /// [`Text`](Self::Text) showing a stored record exactly as it is stored, and that record
    /// (as [`Shown`](Self::Shown) keeps it, for a replay).
    ShownText(bytes::Bytes, Snapshot),
    /// An error: status and detail.
    Problem(u16, String),
    /// An error with the machine code the API gives it (`insufficient_wallet_balance`):
    /// status, code, detail.
    Coded(u16, String, String),
    /// An error naming what is wrong, member by member (a batch's bad items).
    Invalid(u16, String, Vec<crate::compiled::problem::FieldError>),
    /// Not a stateful operation: answer from the spec.
    Stateless,
}

/// A record as one answer showed it: its id and its stored bytes (shared with the store
/// while the record does not change).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: Id,
    pub body: Body,
}

/// The parts of a validated request the engine reads.
pub struct Call<'a> {
    pub tenant: &'a str,
    pub path_params: &'a [(String, String)],
    pub query: &'a [(String, String)],
    pub body: Option<&'a Value>,
    pub now: i64,
    /// `X-Sandbox-Scenario`, kept on created resources to choose lifecycle branches.
    pub scenario: Option<String>,
    /// `X-Sandbox-Instant-Completion`: run a new resource's lifecycle to its end at once.
    pub instant: bool,
    pub headers: Option<&'a http::HeaderMap>,
    /// Who the credential is (its role and parts), when the operation needs one.
    pub identity: Option<&'a Identity>,
}

impl<'a> Call<'a> {
    /// The same call with another body (the record inside a request envelope).
    pub fn with_body<'b>(&'b self, body: Option<&'b Value>) -> Call<'b>
    where
        'a: 'b,
    {
        Call {
            tenant: self.tenant,
            path_params: self.path_params,
            query: self.query,
            body,
            now: self.now,
            scenario: self.scenario.clone(),
            instant: self.instant,
            headers: self.headers,
            identity: self.identity,
        }
    }

    /// A boolean request header (`true`, `1`, `yes`; anything else is false).
    pub fn flag(&self, name: &str) -> bool {
        self.headers
            .and_then(|h| h.get(name))
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
    }

    /// The value of path parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.path_params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Who a request's credential is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub tenant: String,
    /// The role its class gives (none without classes).
    pub role: Option<String>,
    /// Members whose values requests may not name otherwise: (member, value).
    pub scope: Vec<(String, String)>,
    /// The class that matched, by position.
    pub class: Option<usize>,
    /// Named parts of the credential (`din_test_{team}` -> `team`).
    pub vars: BTreeMap<String, String>,
}
