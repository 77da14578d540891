//! Webhooks: every event goes to the targets that want it, asynchronously, on the virtual
//! clock, signed, with retries and backoff, and with a delivery log that can be replayed.
//!
//! Signing (per profile): `ed25519` signs the timestamp's bytes immediately followed by the
//! raw body, sent as base64 in `X-Webhook-Signature` with unix seconds in
//! `X-Webhook-Timestamp` (Dakota's scheme); `hmac-sha256` sends the hex HMAC of the same
//! message. The key comes from the seed (or `--webhook-key`), is printed at start, and is
//! served at `GET /__sandbox/webhooks/public-key`. Deliveries go out from
//! [`super::delivery`]; the log can also be served through an API's own operations
//! ([`super::delivery_log`]).

use std::collections::HashMap;

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::{KeyInit, Mac};
use serde::Serialize;
use serde_json::Value;

/// Delivery attempts before giving up, unless the profile says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The event types a target asks for (an array of names; none when absent).
pub fn event_types(member: Option<&Value>) -> Vec<String> {
    member
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The targets, the delivery log and the replay counts of one API.
#[derive(Debug, Default)]
pub struct WebhookState {
    pub targets: Vec<Target>,
    pub deliveries: Vec<Delivery>,
    /// Event id -> replays made through the API's own replay operation.
    pub replays: HashMap<String, u32>,
}

/// The event a delivery carries: its id (`None`: the delivery's own, for a webhook to an
/// address a record names), type, tenant and payload.
pub struct Outgoing<'a> {
    pub event_id: Option<&'a str>,
    pub kind: &'a str,
    pub tenant: &'a str,
    pub body: &'a bytes::Bytes,
}

/// When a delivery is queued and how often it may be tried: (virtual time, attempts, a
/// replay of an event sent before).
pub type Schedule = (f64, u32, bool);

impl WebhookState {
    /// Queues a delivery of `event` to `url`, signed with the target's own `secret` when it
    /// has one.
    pub fn queue(
        &mut self,
        event: &Outgoing,
        (url, secret): (String, Option<String>),
        (at, max_attempts, replay): Schedule,
    ) {
        let id = format!("dlv_{:08}", self.deliveries.len() + 1);
        self.deliveries.push(Delivery {
            event_id: event.event_id.map_or_else(|| id.clone(), str::to_owned),
            id,
            event_type: event.kind.to_owned(),
            tenant: event.tenant.to_owned(),
            url,
            status: "pending".into(),
            attempts: 0,
            max_attempts,
            next_attempt_at: at,
            response_code: None,
            last_error: None,
            replay,
            created_at: at,
            delivered_at: None,
            body: event.body.clone(),
            in_flight: false,
            secret,
        });
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub id: String,
    /// `None`: every tenant's events.
    pub tenant: Option<String>,
    pub url: String,
    /// Empty: every event type.
    pub event_types: Vec<String>,
    /// Its own signing secret, when the profile gives targets one (shown once).
    #[serde(skip)]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub tenant: String,
    pub url: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub max_attempts: u32,
    /// Virtual time of the next attempt.
    pub next_attempt_at: f64,
    pub response_code: Option<u16>,
    pub last_error: Option<String>,
    pub replay: bool,
    /// Virtual time the delivery was queued.
    pub created_at: f64,
    /// Virtual time of the successful attempt.
    pub delivered_at: Option<f64>,
    #[serde(skip)]
    pub body: bytes::Bytes,
    #[serde(skip)]
    pub in_flight: bool,
    /// The target's own secret, when it has one.
    #[serde(skip)]
    pub secret: Option<String>,
}

pub enum Signer {
    Ed25519(SigningKey),
    Hmac(Vec<u8>),
}

impl Signer {
    /// `secret` is 32 bytes (from the seed or `--webhook-key`).
    pub fn new(kind: Option<&str>, secret: [u8; 32]) -> Self {
        match kind {
            Some("hmac-sha256") => Self::Hmac(secret.to_vec()),
            _ => Self::Ed25519(SigningKey::from_bytes(&secret)),
        }
    }

    /// The verification key (Ed25519 public key, or the HMAC secret) as hex.
    pub fn public_hex(&self) -> String {
        let bytes = match self {
            Self::Ed25519(k) => k.verifying_key().to_bytes().to_vec(),
            Self::Hmac(secret) => secret.clone(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "ed25519",
            Self::Hmac(_) => "hmac-sha256",
        }
    }

    /// The signature of `timestamp` followed directly by `body`.
    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        let mut message = Vec::with_capacity(timestamp.len() + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(body);
        self.sign_message(&message)
    }

    /// The hex HMAC-SHA256 of `message` under a target's own secret (its text's bytes).
    pub fn hmac_with(secret: &str, message: &[u8]) -> String {
        match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
            Ok(mut mac) => {
                mac.update(message);
                mac.finalize()
                    .into_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            }
            Err(_) => String::new(),
        }
    }

    /// The signature of `message` as it is.
    pub fn sign_message(&self, message: &[u8]) -> String {
        let message = message.to_vec();
        match self {
            Self::Ed25519(k) => {
                base64::engine::general_purpose::STANDARD.encode(k.sign(&message).to_bytes())
            }
            Self::Hmac(secret) => match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) {
                Ok(mut mac) => {
                    mac.update(&message);
                    mac.finalize()
                        .into_bytes()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect()
                }
                Err(_) => String::new(),
            },
        }
    }
}

/// Seconds to wait before attempt `attempts + 1`: 2, 4, 8, ... (sandbox time).
pub fn backoff(attempts: u32) -> f64 {
    f64::from(2u32.saturating_pow(attempts.min(10)))
}

/// Parses a 64-character hex key.
pub fn parse_key(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    #[test]
    fn ed25519_signatures_verify_with_the_published_key() {
        let signer = Signer::new(None, [7; 32]);
        let sig = signer.sign("1700000000", b"{\"a\":1}");
        let key = parse_key(&signer.public_hex()).unwrap();
        let vk = VerifyingKey::from_bytes(&key).unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .unwrap();
        let sig = Signature::from_slice(&raw).unwrap();
        assert!(vk.verify(b"1700000000{\"a\":1}", &sig).is_ok());
        assert!(vk.verify(b"1700000001{\"a\":1}", &sig).is_err());
        assert_eq!(
            Signer::new(Some("hmac-sha256"), [1; 32])
                .sign("1", b"x")
                .len(),
            64
        );
    }
}
