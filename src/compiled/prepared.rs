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
    /// The headers of the response made from this answer to request `request_id`, with
    /// `extra` ones after its own (replacing any of the same name).
    pub fn header_map(&self, request_id: &str, extra: &[(String, String)]) -> http::HeaderMap {
        use http::{HeaderName, HeaderValue};
        let mut headers = http::HeaderMap::with_capacity(self.headers.len() + extra.len() + 2);
        if let Some(ct) = &self.content_type
            && let Ok(v) = HeaderValue::from_str(ct)
        {
            headers.insert(http::header::CONTENT_TYPE, v);
        }
        for (k, v) in self.headers.iter().chain(extra) {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.insert(k, v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(request_id) {
            headers.insert(HeaderName::from_static("x-request-id"), v);
        }
        headers
    }

    pub fn json(status: u16, content_type: &str, body: &Value) -> Self {
        Self {
            status,
            content_type: Some(content_type.to_owned()),
            headers: Vec::new(),
            body: json_bytes(body),
        }
    }
}

/// `value` as compact JSON bytes, in an allocation of exactly their size (answers, records
/// and events are kept, so spare capacity would be kept with them).
///
/// Written into a buffer the thread keeps, then copied once: growing a fresh buffer as the
/// text comes took three or four reallocations per record, inside the store's lock when a
/// behaviour makes records.
pub fn json_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Bytes {
    /// Larger texts are written into a buffer of their own, not kept by the thread.
    const KEPT_MAX: usize = 64 * 1024;
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|cell| {
        // A value whose serializing writes JSON of its own gets a buffer of its own.
        let Ok(mut scratch) = cell.try_borrow_mut() else {
            return Bytes::from(serde_json::to_vec(value).unwrap_or_default());
        };
        scratch.clear();
        if serde_json::to_writer(&mut *scratch, value).is_err() {
            scratch.clear();
        }
        let text = Bytes::copy_from_slice(&scratch);
        if scratch.capacity() > KEPT_MAX {
            *scratch = Vec::new();
        }
        text
    })
}
