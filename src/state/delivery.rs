//! Sending webhooks: every delivery due on the virtual clock goes out, signed, in event
//! order per target URL, and its attempt is written back to the log (delivered, or retried
//! with backoff until the attempts run out).

use super::engine::Engine;
use super::webhooks::backoff;

/// Sends every delivery that is due on the virtual clock. Deliveries to one URL go out in
/// event order: a later event waits while an earlier one to the same URL is still pending.
pub async fn deliver_due(engine: &Engine, client: &reqwest::Client) {
    let now = engine.clock.now();
    let due: Vec<(usize, String, bytes::Bytes, String, String, bool)> = {
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
            out.push((
                i,
                d.url.clone(),
                d.body.clone(),
                d.event_type.clone(),
                d.event_id.clone(),
                d.replay,
            ));
        }
        out
    };
    for (i, url, body, event_type, event_id, replay) in due {
        let timestamp = engine.clock.now_secs().to_string();
        let signature = engine.signer.sign(&timestamp, &body);
        let mut req = client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-webhook-timestamp", &timestamp)
            .header("x-webhook-signature", signature)
            .header("x-webhook-event", &event_type)
            .header("x-webhook-id", &event_id)
            .timeout(std::time::Duration::from_secs(5))
            .body(body);
        if replay {
            req = req.header("x-webhook-replay", "true");
        }
        let result = req.send().await;
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
