//! A webhook receiver the tests start on 127.0.0.1, and the checks every webhook test makes:
//! the sandbox's published Ed25519 key, and signatures over timestamp ‖ raw body.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::Value;

use super::client;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hook {
    pub timestamp: String,
    pub signature: String,
    /// `X-Webhook-Replay: true`.
    pub replay: bool,
    pub body: Vec<u8>,
    /// Every header, lower-cased names.
    pub headers: Vec<(String, String)>,
}

impl Hook {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A header's value, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the signature is `key`'s over the timestamp followed by the raw body.
    pub fn verifies(&self, key: &VerifyingKey) -> bool {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(&self.signature) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&raw) else {
            return false;
        };
        let mut message = self.timestamp.as_bytes().to_vec();
        message.extend_from_slice(&self.body);
        key.verify(&message, &sig).is_ok()
    }
}

pub type Hooks = Arc<Mutex<Vec<Hook>>>;

/// Starts a receiver that keeps every request; with `fail_first`, the first gets a 500.
/// Returns its URL and what it saw.
pub async fn receiver(fail_first: bool) -> (String, Hooks) {
    let seen: Hooks = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicBool::new(!fail_first));
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State((seen, failed)): axum::extract::State<(
                    Hooks,
                    Arc<AtomicBool>,
                )>,
                 headers: http::HeaderMap,
                 body: bytes::Bytes| async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    seen.lock().expect("lock").push(Hook {
                        timestamp: h("x-webhook-timestamp"),
                        signature: h("x-webhook-signature"),
                        replay: h("x-webhook-replay") == "true",
                        body: body.to_vec(),
                        headers: headers
                            .iter()
                            .map(|(k, v)| {
                                (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                            })
                            .collect(),
                    });
                    if failed.swap(true, Ordering::SeqCst) {
                        http::StatusCode::OK
                    } else {
                        http::StatusCode::INTERNAL_SERVER_ERROR
                    }
                },
            ),
        )
        .with_state((seen.clone(), failed));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Waits (up to 20 s) until the receiver holds `n` webhooks, and returns them.
pub async fn wait_for(seen: &Hooks, n: usize) -> Vec<Hook> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = seen.lock().expect("lock").clone();
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The verification key the sandbox at `base` publishes: 64 hex characters.
pub async fn public_key(base: &str) -> VerifyingKey {
    let body: Value = client()
        .get(format!("{base}/__sandbox/webhooks/public-key"))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    let hex = body["public_key"].as_str().expect("a key");
    assert_eq!(hex.len(), 64, "{hex}");
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    VerifyingKey::from_bytes(&key).expect("a valid key")
}
