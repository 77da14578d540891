//! The journal: the most recent requests an API answered, with the verdict on each (`ok`,
//! or why it was refused), for `GET /__sandbox/journal` and the dashboard.
//!
//! Each entry is a summary (method, path, status, tenant, latency, and for an error the
//! problem's detail and field errors) plus the exchange itself: request and response
//! headers and bodies. The exchange is bounded (bodies cut at [`MAX_BODY_BYTES`]) and
//! credential headers and query parameters are redacted before anything is kept, so the
//! journal never holds a secret a client sent.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use crate::compiled::Prepared;
use crate::compiled::problem::FieldError;

/// Requests kept in the journal.
const JOURNAL_LEN: usize = 1000;
/// Bytes of each request and response body kept.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// What a redacted header or query value shows instead.
pub const REDACTED: &str = "<redacted>";

/// Why a request got an error: the problem's detail and each offending field.
#[derive(Debug, Clone, Serialize)]
pub struct Reason {
    pub detail: String,
    pub errors: Vec<FieldError>,
}

/// One line of `GET /__sandbox/journal`.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    /// Position in the journal, counting up from 1; `?after=N` lists the newer ones.
    pub seq: u64,
    /// The request id (`x-request-id`), which opens the exchange.
    pub id: String,
    /// Virtual unix seconds when the request arrived.
    pub at: f64,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub tenant: String,
    pub operation: Option<String>,
    /// `ok`, or why the request was refused.
    pub verdict: String,
    pub latency_ms: f64,
    /// For an error answer: what the problem body says, in plain words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// One side of an exchange as the journal keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// As received (their values copied out of the connection's buffer), shown in order
    /// as `[name, value]` pairs with credential values redacted.
    #[serde(serialize_with = "redacted")]
    pub headers: Headers,
    /// The body's first [`MAX_BODY_BYTES`], kept as bytes (a request's journey costs no copy
    /// of a small body) and shown as text: `null` when empty or not text.
    #[serde(serialize_with = "as_text")]
    pub body: bytes::Bytes,
    /// The whole body's size.
    pub body_bytes: usize,
    pub truncated: bool,
}

/// A message's headers: a request's as received; a response's as the answer they were made
/// from, made again only when shown (a request's journey pays for no copy of them).
#[derive(Debug, Clone)]
pub enum Headers {
    /// A request's, in one block of their own bytes ([`Received`]).
    Received(Received),
    Answered {
        answer: Arc<Prepared>,
        request_id: String,
        /// Headers of this response's own, after the answer's ([`Prepared::header_map`]).
        extra: Vec<(String, String)>,
    },
}

impl Headers {
    fn map(&self) -> std::borrow::Cow<'_, http::HeaderMap> {
        match self {
            Self::Received(received) => std::borrow::Cow::Owned(received.map()),
            Self::Answered {
                answer,
                request_id,
                extra,
            } => std::borrow::Cow::Owned(answer.header_map(request_id, extra)),
        }
    }
}

/// A request's headers as the journal keeps them: `name NUL value LF` for each, in one
/// allocation of their own bytes (neither a name nor a value may hold a NUL or a LF).
/// Kept for every request and mostly never read: one block is one allocation to make and
/// one to free, where a header map copied value by value was a dozen, for each request.
#[derive(Clone)]
pub struct Received(Box<[u8]>);

impl Received {
    fn of(headers: &http::HeaderMap) -> Self {
        let size = headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 2)
            .sum();
        let mut block = Vec::with_capacity(size);
        for (name, value) in headers {
            block.extend_from_slice(name.as_str().as_bytes());
            block.push(0);
            block.extend_from_slice(value.as_bytes());
            block.push(b'\n');
        }
        Self(block.into_boxed_slice())
    }

    /// The headers as a map again; credentials marked sensitive.
    fn map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for line in self.0.split(|b| *b == b'\n') {
            let Some(at) = line.iter().position(|b| *b == 0) else {
                continue;
            };
            let (name, value) = (&line[..at], &line[at + 1..]);
            if let (Ok(name), Ok(mut value)) = (
                http::HeaderName::from_bytes(name),
                http::HeaderValue::from_bytes(value),
            ) {
                value.set_sensitive(is_secret(name.as_str()));
                map.append(name, value);
            }
        }
        map
    }
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.map().fmt(f)
    }
}

/// The request and the response of one journal entry.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// The query string, credential parameters redacted.
    pub query: Option<String>,
    pub request: Message,
    pub response: Message,
}

/// Which entries a listing wants (`GET /__sandbox/journal?status=4xx&tenant=...`).
#[derive(Debug, Default)]
pub struct Filter<'a> {
    /// `2xx`..`5xx` for a class, or one status (`404`).
    pub status: Option<&'a str>,
    pub tenant: Option<&'a str>,
    /// A substring of the path.
    pub path: Option<&'a str>,
    /// Only entries with a larger `seq`.
    pub after: u64,
    pub newest_first: bool,
    pub limit: Option<usize>,
}

impl Filter<'_> {
    fn keeps(&self, e: &JournalEntry) -> bool {
        let status = self.status.is_none_or(|s| match s.as_bytes() {
            [c, b'x', b'x'] | [c, b'X', b'X'] => e.status / 100 == u16::from(c - b'0'),
            _ => s.parse::<u16>().is_ok_and(|n| n == e.status),
        });
        status
            && e.seq > self.after
            && self.tenant.is_none_or(|t| t.is_empty() || t == e.tenant)
            && self.path.is_none_or(|p| e.path.contains(p))
    }
}

/// A bounded log of requests.
#[derive(Debug, Default)]
pub struct Journal {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: VecDeque<(JournalEntry, Arc<Exchange>)>,
    last_seq: u64,
}

impl Journal {
    /// Appends an entry (numbering it), dropping the oldest beyond the journal's length.
    pub fn record(&self, mut entry: JournalEntry, exchange: Exchange) {
        let exchange = Arc::new(exchange);
        let evicted = {
            let mut j = self.inner.lock();
            let evicted = (j.entries.len() >= JOURNAL_LEN)
                .then(|| j.entries.pop_front())
                .flatten();
            j.last_seq += 1;
            entry.seq = j.last_seq;
            j.entries.push_back((entry, exchange));
            evicted
        };
        // Freed after the lock is let go: other requests need not wait for it.
        drop(evicted);
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.list(&Filter::default())
    }

    /// The entries a filter keeps, in its order, at most its limit.
    pub fn list(&self, filter: &Filter) -> Vec<JournalEntry> {
        let j = self.inner.lock();
        let kept = j.entries.iter().map(|(e, _)| e).filter(|e| filter.keeps(e));
        let limit = filter.limit.unwrap_or(JOURNAL_LEN);
        if filter.newest_first {
            kept.rev().take(limit).cloned().collect()
        } else {
            kept.take(limit).cloned().collect()
        }
    }

    /// One entry and its exchange, by request id.
    pub fn get(&self, id: &str) -> Option<(JournalEntry, Arc<Exchange>)> {
        let j = self.inner.lock();
        j.entries.iter().rev().find(|(e, _)| e.id == id).cloned()
    }

    /// The `seq` of the newest entry (0 when none was recorded yet).
    pub fn last_seq(&self) -> u64 {
        self.inner.lock().last_seq
    }
}

/// Whether a header or query parameter carries a credential, by its name.
pub fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["authorization", "cookie", "token", "secret", "password"]
        .iter()
        .any(|s| n.contains(s))
        || ["api-key", "api_key", "apikey"]
            .iter()
            .any(|s| n.contains(s))
}

/// Headers as the journal shows them: `[name, value]` pairs, credential values redacted,
/// others as text.
fn redacted<S: serde::Serializer>(headers: &Headers, s: S) -> Result<S::Ok, S::Error> {
    let map = headers.map();
    s.collect_seq(map.iter().map(|(k, v)| {
        let value = if is_secret(k.as_str()) {
            std::borrow::Cow::Borrowed(REDACTED)
        } else {
            String::from_utf8_lossy(v.as_bytes())
        };
        (k.as_str(), value)
    }))
}

/// A query string with the values of credential parameters redacted.
pub fn query(raw: Option<&str>) -> Option<String> {
    let raw = raw.filter(|q| !q.is_empty())?;
    let pairs = form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| {
        let v = if is_secret(&k) { REDACTED.into() } else { v };
        (k, v)
    });
    Some(
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish(),
    )
}

/// A request as the journal keeps it: its headers and its body, bounded. The headers are
/// copied into a block of their own: values as hyper parses them are slices of the
/// connection's read buffer, so a journal entry that kept them kept that whole buffer alive
/// (with a dakkio batch of 1,000 readings in it, about 120 bytes per stored reading, measured
/// with `cargo bench --bench timeseries`).
pub fn received(headers: http::HeaderMap, body: &bytes::Bytes) -> Message {
    message(Headers::Received(Received::of(&headers)), body)
}

/// A response as the journal keeps it: the answer it was made from, its body bounded.
pub fn answered(
    answer: Arc<Prepared>,
    request_id: String,
    extra: Vec<(String, String)>,
) -> Message {
    let body = answer.body.clone();
    // The answer is kept for its headers; a large body is kept only as far as it is shown
    // (cut), not whole inside the answer too: a dakkio batch answered with its readings
    // kept ~200 KB per journal entry that way.
    let answer = if body.len() > MAX_BODY_BYTES {
        Arc::new(Prepared {
            body: bytes::Bytes::new(),
            ..(*answer).clone()
        })
    } else {
        answer
    };
    let headers = Headers::Answered {
        answer,
        request_id,
        extra,
    };
    message(headers, &body)
}

/// One side of an exchange: its headers and its body, bounded.
fn message(headers: Headers, body: &bytes::Bytes) -> Message {
    let truncated = body.len() > MAX_BODY_BYTES;
    Message {
        headers,
        // A slice would keep the whole large body alive: copy the part kept instead.
        body: if truncated {
            bytes::Bytes::copy_from_slice(&body[..MAX_BODY_BYTES])
        } else {
            body.clone()
        },
        body_bytes: body.len(),
        truncated,
    }
}

/// A body as text; `None` when empty or not UTF-8 (a body cut inside a character keeps the
/// whole characters before the cut).
pub fn text(body: &[u8]) -> Option<&str> {
    let text = match std::str::from_utf8(body) {
        Ok(s) => Some(s),
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&body[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    text.filter(|t| !t.is_empty())
}

fn as_text<S: serde::Serializer>(body: &bytes::Bytes, s: S) -> Result<S::Ok, S::Error> {
    text(body).serialize(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large answer is kept only as far as it is shown: its whole body is not held on to
    /// by the answer the response's headers are made from.
    #[test]
    fn a_large_answer_is_kept_cut() {
        let whole = bytes::Bytes::from(vec![b'a'; 4 * MAX_BODY_BYTES]);
        let answer = Arc::new(Prepared {
            status: 200,
            content_type: Some("application/json".into()),
            headers: vec![("x-kept".into(), "yes".into())],
            body: whole.clone(),
        });
        let kept = answered(answer, "req_1".into(), Vec::new());
        assert!(kept.truncated);
        assert_eq!(kept.body_bytes, whole.len());
        assert_eq!(kept.body.len(), MAX_BODY_BYTES);
        let Headers::Answered { answer, .. } = &kept.headers else {
            panic!("a response keeps its answer");
        };
        assert!(
            answer.body.len() <= MAX_BODY_BYTES,
            "the whole body is still held"
        );
        assert_eq!(
            kept.headers.map().get("x-kept").map(|v| v.as_bytes()),
            Some(&b"yes"[..])
        );
    }

    /// A request's headers come back from the journal as they were received: every value
    /// of a repeated header, in order, bytes that are not UTF-8 included, and credentials
    /// marked sensitive.
    #[test]
    fn kept_headers_come_back_as_received() {
        let mut headers = http::HeaderMap::new();
        headers.append("accept", http::HeaderValue::from_static("text/plain"));
        headers.append("accept", http::HeaderValue::from_static("application/json"));
        headers.append("authorization", http::HeaderValue::from_static("Bearer k"));
        let opaque = http::HeaderValue::from_bytes(b"caf\xe9").unwrap();
        headers.append("x-note", opaque.clone());
        let kept = received(headers.clone(), &bytes::Bytes::new());
        let back = kept.headers.map();
        assert_eq!(*back, headers);
        let accepts: Vec<_> = back.get_all("accept").iter().collect();
        assert_eq!(accepts, ["text/plain", "application/json"]);
        assert_eq!(back.get("x-note"), Some(&opaque));
        assert!(back.get("authorization").unwrap().is_sensitive());
        assert!(!back.get("accept").unwrap().is_sensitive());
    }

    /// A kept request's header values are its own bytes, not a view into the buffer they
    /// were read from (which would stay alive, with every request read into it, for as long
    /// as the journal keeps the entry).
    #[test]
    fn kept_headers_do_not_hold_the_buffer_they_were_read_from() {
        let buffer = bytes::Bytes::from(vec![b'a'; 256 * 1024]);
        let mut value = http::HeaderValue::from_maybe_shared(buffer.slice(..16)).unwrap();
        value.set_sensitive(true);
        let mut headers = http::HeaderMap::new();
        headers.insert("x-api-key", value);
        let kept = received(headers, &bytes::Bytes::new());
        let map = kept.headers.map();
        let kept_value = map.get("x-api-key").unwrap();
        assert_eq!(kept_value.as_bytes(), &buffer[..16]);
        assert!(
            kept_value.is_sensitive(),
            "a credential stays marked sensitive"
        );
        let range = buffer.as_ptr_range();
        assert!(
            !range.contains(&kept_value.as_bytes().as_ptr()),
            "the kept value points into the read buffer"
        );
    }

    #[test]
    fn credentials_are_redacted_by_name() {
        for name in [
            "Authorization",
            "x-api-key",
            "Cookie",
            "X-Application-Token",
            "apikey",
        ] {
            assert!(is_secret(name), "{name}");
        }
        for name in ["content-type", "x-idempotency-key", "accept"] {
            assert!(!is_secret(name), "{name}");
        }
        assert_eq!(
            query(Some("limit=5&api_key=abc")).as_deref(),
            Some("limit=5&api_key=%3Credacted%3E")
        );
    }

    #[test]
    fn headers_show_as_pairs_with_credentials_redacted() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        h.insert("x-api-key", http::HeaderValue::from_static("sk_live_1"));
        h.insert("authorization", http::HeaderValue::from_static("Bearer t"));
        let shown = serde_json::to_value(received(h, &bytes::Bytes::new())).ok();
        assert_eq!(
            shown.as_ref().map(|m| &m["headers"]),
            Some(&serde_json::json!([
                ["content-type", "application/json"],
                ["x-api-key", REDACTED],
                ["authorization", REDACTED]
            ]))
        );
    }

    #[test]
    fn bodies_are_cut_at_a_character_boundary() {
        let mut body = vec![b'a'; MAX_BODY_BYTES - 1];
        body.extend("é".as_bytes());
        let m = received(http::HeaderMap::new(), &body.into());
        assert!(m.truncated);
        assert_eq!(m.body.len(), MAX_BODY_BYTES);
        assert_eq!(text(&m.body).map(str::len), Some(MAX_BODY_BYTES - 1));
        assert_eq!(text(&[0xff, 0xfe]), None);
        assert_eq!(text(b""), None);
    }

    #[test]
    fn filters_by_class_tenant_and_path() {
        let j = Journal::default();
        for (status, tenant, path) in [(201, "a", "/x"), (404, "b", "/y"), (422, "a", "/x/1")] {
            let entry = JournalEntry {
                seq: 0,
                id: format!("req_{status}"),
                at: 0.0,
                method: "GET".into(),
                path: path.into(),
                status,
                tenant: tenant.into(),
                operation: None,
                verdict: "ok".into(),
                latency_ms: 0.0,
                reason: None,
            };
            j.record(
                entry,
                Exchange {
                    query: None,
                    request: received(http::HeaderMap::new(), &bytes::Bytes::new()),
                    response: received(http::HeaderMap::new(), &bytes::Bytes::new()),
                },
            );
        }
        let ids = |f: Filter| -> Vec<String> { j.list(&f).into_iter().map(|e| e.id).collect() };
        let class = Filter {
            status: Some("4xx"),
            newest_first: true,
            ..Filter::default()
        };
        assert_eq!(ids(class), ["req_422", "req_404"]);
        let tenant = Filter {
            tenant: Some("a"),
            path: Some("/x"),
            ..Filter::default()
        };
        assert_eq!(ids(tenant), ["req_201", "req_422"]);
        assert_eq!(
            ids(Filter {
                after: 2,
                ..Filter::default()
            }),
            ["req_422"]
        );
        assert_eq!(j.get("req_404").map(|(e, _)| e.seq), Some(2));
    }
}
