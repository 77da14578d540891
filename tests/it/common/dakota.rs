//! A Dakota client for tests: one tenant (API key) of one sandbox, sending what the SDK
//! sends (an idempotency key on every POST), plus the sandbox's admin API.

use reqwest::Method;
use serde_json::{Value, json};

use super::webhooks::{Hooks, receiver};
use super::{Sandbox, client};

/// Speaks to one sandbox as one tenant.
pub struct Dakota {
    pub base: String,
    pub key: &'static str,
}

/// One answer: status, content type and JSON body (`Null` when there is none).
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Dakota {
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = client().request(method.clone(), format!("{}{path}", self.base));
        if !self.key.is_empty() {
            req = req.header("x-api-key", self.key);
        }
        // The SDK sends a fresh key on every write.
        if matches!(method, Method::POST | Method::PUT | Method::PATCH) && !path.contains("/replay")
        {
            req = req.header("x-idempotency-key", crate::contract_uuid());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("the sandbox answers");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = res.bytes().await.expect("a body");
        Reply {
            status,
            content_type,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, &[]).await
    }

    /// POSTs `body` to `path` and expects 201; returns the new record.
    pub async fn created(&self, path: &str, body: Value) -> Value {
        let r = self.send(Method::POST, path, Some(body), &[]).await;
        assert_eq!(r.status, 201, "POST {path}: {}", r.body);
        r.body
    }

    /// Freezes the clock (deliveries due now still go out) and registers a global webhook
    /// target; returns its URL and what it receives.
    pub async fn listen(&self) -> (String, Hooks) {
        let (url, seen) = receiver(false).await;
        self.admin(Method::POST, "/clock/freeze", None).await;
        self.created("/webhooks/targets", json!({"url": url, "global": true}))
            .await;
        (url, seen)
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = client().request(method, format!("{}/__sandbox{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
            .await
            .expect("the admin API answers")
            .json()
            .await
            .expect("admin JSON")
    }
}

pub fn dakota(s: &Sandbox, key: &'static str) -> Dakota {
    Dakota {
        base: s.url().to_owned(),
        key,
    }
}
