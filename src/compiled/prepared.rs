//! A response ready to send, independent of the HTTP library: status, content type, headers
//! and body bytes. Success bodies, error bodies and idempotent replays are all `Prepared`.

use bytes::Bytes;
use serde_json::Value;

/// A response ready to send: status, content type, headers and body bytes.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub status: u16,
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Prepared {
    pub fn json(status: u16, content_type: &str, body: &Value) -> Self {
        Self {
            status,
            content_type: Some(content_type.to_owned()),
            headers: Vec::new(),
            body: json_bytes(body),
        }
    }
}

/// `value` as compact JSON bytes, in an allocation of exactly their size (answers are kept
/// for idempotent replays, so spare capacity would be kept with them).
pub fn json_bytes(value: &Value) -> Bytes {
    Bytes::from(
        serde_json::to_vec(value)
            .unwrap_or_default()
            .into_boxed_slice(),
    )
}
