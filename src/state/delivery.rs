//! Sending webhooks: every delivery due on the virtual clock goes out, signed, in event
//! order per target URL, and its attempt is written back to the log (delivered, or retried
//! with backoff until the attempts run out).

use super::engine::Engine;
use super::webhooks::{Signer, backoff};

/// Sends every delivery that is due on the virtual clock. Deliveries to one URL go out in
/// event order: a later event waits while an earlier one to the same URL is still pending.
pub async fn deliver_due(engine: &Engine, client: &reqwest::Client) {
    let now = engine.clock.now();
    let due: Vec<Due> = {
        let mut hooks = engine.webhooks.lock();
        let mut blocked: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (i, d) in hooks.deliveries.iter_mut().enumerate() {
            if d.status != "pending" || blocked.contains(&d.url) {
                continue;
            }
            blocked.insert(d.url.clone());
            if d.in_flight || d.next_attempt_at > now {
                continue;
            }
            d.in_flight = true;
            out.push(Due {
                index: i,
                url: d.url.clone(),
                body: d.body.clone(),
                event_type: d.event_type.clone(),
                event_id: d.event_id.clone(),
                replay: d.replay,
                attempt: d.attempts + 1,
                secret: d.secret.clone(),
            });
        }
        out
    };
    for d in due {
        let i = d.index;
        let result = request(engine, client, &d).send().await;
        let mut hooks = engine.webhooks.lock();
        let Some(d) = hooks.deliveries.get_mut(i) else {
            continue;
        };
        d.in_flight = false;
        d.attempts += 1;
        match result {
            Ok(res) if res.status().is_success() => {
                d.status = "delivered".into();
                d.delivered_at = Some(engine.clock.now());
                d.response_code = Some(res.status().as_u16());
                d.last_error = None;
            }
            other => {
                match other {
                    Ok(res) => {
                        d.response_code = Some(res.status().as_u16());
                        d.last_error = Some(format!("target answered {}", res.status()));
                    }
                    Err(e) => d.last_error = Some(e.to_string()),
                }
                if d.attempts >= d.max_attempts {
                    d.status = "failed".into();
                } else {
                    d.next_attempt_at = engine.clock.now() + backoff(d.attempts);
                }
            }
        }
    }
}

/// A delivery taken to be sent.
struct Due {
    index: usize,
    url: String,
    body: bytes::Bytes,
    event_type: String,
    event_id: String,
    replay: bool,
    /// 1 on the first try.
    attempt: u32,
    /// The target's own secret, when it has one.
    secret: Option<String>,
}

/// The request for one attempt: the sandbox's headers, the signature where and over what
/// the profile says, and the API's own headers.
fn request(engine: &Engine, client: &reqwest::Client, d: &Due) -> reqwest::RequestBuilder {
    let hooks = &engine.profile.webhooks;
    let timestamp = engine.clock.now_secs().to_string();
    let message: Vec<u8> = match hooks.signed.as_deref() {
        Some("body") => d.body.to_vec(),
        _ => [timestamp.as_bytes(), &d.body[..]].concat(),
    };
    let signature = match &d.secret {
        Some(secret) => Signer::hmac_with(secret, &message),
        None => engine.signer.sign_message(&message),
    };
    let signature_header = hooks
        .signature_header
        .as_deref()
        .unwrap_or("x-webhook-signature");
    let mut req = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("x-webhook-timestamp", &timestamp)
        .header(signature_header, signature)
        .header("x-webhook-event", &d.event_type)
        .header("x-webhook-id", &d.event_id)
        .timeout(std::time::Duration::from_secs(5))
        .body(d.body.clone());
    let attempt = d.attempt.to_string();
    for (name, value) in &hooks.headers {
        let value = value
            .replace("{id}", &d.event_id)
            .replace("{type}", &d.event_type)
            .replace("{attempt}", &attempt);
        req = req.header(name.as_str(), value);
    }
    if d.replay {
        req = req.header("x-webhook-replay", "true");
    }
    req
}
