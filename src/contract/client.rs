//! The HTTP side of a replay: turns a step's (substituted) request into a real request to
//! any base URL, http or https (rustls), and reads the whole answer. Redirects are not
//! followed, because a 3xx is part of the contract under test.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

/// A request ready to send: placeholders already substituted.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: http::Method,
    /// Path without query, already percent-encoded where needed.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

/// What came back.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
    #[error("'{0}' is not a usable base URL (expected http://host[:port][/prefix])")]
    BaseUrl(String),
    /// No connection could be made: the server is not there.
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    /// `--header` values; they replace the fixture's header of the same name.
    extra: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl Client {
    pub fn new(
        base_url: &str,
        extra: &[(String, String)],
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let parsed =
            reqwest::Url::parse(base_url).map_err(|_| ClientError::BaseUrl(base_url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(ClientError::BaseUrl(base_url.to_owned()));
        }
        let extra = extra
            .iter()
            .map(|(n, v)| {
                Ok((
                    http::HeaderName::from_bytes(n.trim().as_bytes())
                        .map_err(|e| ClientError::Build(format!("header '{n}': {e}")))?,
                    http::HeaderValue::from_str(v.trim())
                        .map_err(|e| ClientError::Build(format!("header '{n}': {e}")))?,
                ))
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            extra,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn send(&self, req: &Outgoing) -> Result<Answer, ClientError> {
        let url = format!("{}{}", self.base, req.path);
        let mut builder = self.http.request(req.method.clone(), &url);
        if !req.query.is_empty() {
            builder = builder.query(&req.query);
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &req.headers {
            let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) else {
                return Err(ClientError::Transport {
                    url,
                    reason: format!("header '{name}' has a value that cannot be sent"),
                });
            };
            headers.append(n, v);
        }
        for (n, v) in &self.extra {
            headers.insert(n.clone(), v.clone());
        }
        if let Some(body) = &req.body {
            let json_type = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(crate::spec::catalog::is_json);
            let bytes = match (body, json_type) {
                // A string under a non-JSON content type is sent as it is (form, text, xml).
                (Value::String(s), Some(false)) => s.clone().into_bytes(),
                _ => {
                    if json_type.is_none() {
                        headers.insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/json"),
                        );
                    }
                    serde_json::to_vec(body).map_err(|e| ClientError::Transport {
                        url: url.clone(),
                        reason: e.to_string(),
                    })?
                }
            };
            builder = builder.body(bytes);
        }
        let response = builder.headers(headers).send().await.map_err(|e| {
            let reason = error_chain(&e);
            if e.is_connect() {
                ClientError::Connect {
                    url: url.clone(),
                    reason,
                }
            } else {
                ClientError::Transport {
                    url: url.clone(),
                    reason,
                }
            }
        })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| ClientError::Transport {
            url,
            reason: error_chain(&e),
        })?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// reqwest's top-level message is generic ("error sending request"); the cause says why.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
