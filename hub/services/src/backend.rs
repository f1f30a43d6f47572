//! One service's HTTP client and a single attempt of a call.
//!
//! One `reqwest` client per service: its connection pool keeps keep-alive
//! connections to the provider (as many idle as the concurrency limit), its
//! TLS trusts the service's own CA when it names one (and then only that),
//! and presents the hub's client certificate when the service asks for
//! mutual TLS. Redirects are not followed: a provider that redirects is
//! answering with a status, and the hub never calls an address the
//! directory does not name.
//!
//! The request hash is SHA-256 over exactly what is sent, in this form:
//! `METHOD SP path-and-query LF body` — e.g. `GET /v2/contributions/3101…\n`.
//! The provider can compute the same from what it received and so both
//! sides hold the same proof, as with X-Road's `X-Road-Request-Hash`.

use crate::{Error, Result, Service};
use bytes::Bytes;
use reqwest::Url;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tongban_catalog::services::{Endpoint, HttpMethod, Param, ParamIn, ServiceLimits, ServiceSpec};
use tongban_core::Ask;

/// A service's client.
pub struct Backend {
    client: reqwest::Client,
    /// The base URL, parsed once: a call only sets its path and query.
    base: Url,
}

/// A request as it will be sent, with its hash.
pub struct Sent {
    pub method: HttpMethod,
    pub url: Url,
    pub body: Option<Bytes>,
    pub request_id: String,
    /// SHA-256 (hex) of `METHOD SP path-and-query LF body`.
    pub hash: String,
}

/// How one attempt went.
pub enum Attempt {
    Answered {
        status: u16,
        body: Bytes,
    },
    TimedOut,
    Unreachable(String),
    /// The answer (with this status) is longer than the service's limit.
    TooLarge {
        limit: u32,
        status: u16,
    },
}

impl Backend {
    /// The client for a definition; `Err` says what of its TLS is unusable.
    pub fn new(spec: &ServiceSpec) -> std::result::Result<Backend, String> {
        let mut builder = reqwest::Client::builder()
            .pool_max_idle_per_host(spec.limits.max_concurrent as usize)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tongban/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &spec.tls.ca_pem {
            let cert = reqwest::Certificate::from_pem(ca.as_bytes())
                .map_err(|e| format!("ca_pem: {}", chain(&e)))?;
            builder = builder
                .tls_built_in_root_certs(false)
                .add_root_certificate(cert);
        }
        if let Some(file) = &spec.tls.client_identity_file {
            let pem =
                std::fs::read(file).map_err(|e| format!("client_identity_file {file}: {e}"))?;
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| format!("client_identity_file {file}: {}", chain(&e)))?;
            builder = builder.identity(identity);
        }
        let client = builder.build().map_err(|e| chain(&e))?;
        let base = Url::parse(&spec.base_url).map_err(|e| format!("base_url: {e}"))?;
        Ok(Backend { client, base })
    }

    /// One attempt under the endpoint's timeout, reading at most the
    /// service's response limit.
    pub async fn send(
        &self,
        sent: &Sent,
        ep: &Endpoint,
        limits: &ServiceLimits,
        ask: &Ask<'_>,
        subject: Option<&str>,
    ) -> Attempt {
        let method = match sent.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
        };
        let mut rb = self
            .client
            .request(method, sent.url.clone())
            .header("accept", "application/json")
            .header("x-tongban-client", header_text(ask.consumer))
            .header("x-tongban-matter", header_text(ask.matter))
            .header("x-tongban-case", header_text(ask.case))
            .header("x-tongban-request-id", header_text(&sent.request_id))
            .header("x-tongban-request-hash", sent.hash.as_str());
        if let Some(subject) = subject {
            rb = rb.header("x-tongban-userid", header_text(subject));
        }
        if let Some(body) = &sent.body {
            rb = rb
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let limit = limits.max_response_bytes;
        let exchange = async {
            let mut resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => return Attempt::Unreachable(chain(&e)),
            };
            let status = resp.status().as_u16();
            if resp.content_length().is_some_and(|n| n > u64::from(limit)) {
                return Attempt::TooLarge { limit, status };
            }
            let mut body = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > limit as usize {
                            return Attempt::TooLarge { limit, status };
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return Attempt::Unreachable(chain(&e)),
                }
            }
            Attempt::Answered {
                status,
                body: Bytes::from(body),
            }
        };
        match tokio::time::timeout(Duration::from_millis(ep.timeout_ms), exchange).await {
            Ok(attempt) => attempt,
            Err(_) => Attempt::TimedOut,
        }
    }
}

impl Sent {
    /// Builds the request: the path template filled (values percent-
    /// encoded), query parameters, the JSON body of body parameters.
    pub(crate) fn build(
        service: &Service,
        ep: &Endpoint,
        values: &[(Param, Value)],
        request_id: &str,
    ) -> Result<Sent> {
        let mut url = match &service.backend {
            Ok(b) => b.base.clone(),
            Err(_) => {
                Url::parse(&service.record.service.base_url).map_err(|e| Error::Unavailable {
                    reason: "misconfigured",
                    detail: format!("the service's address cannot be built: {e}"),
                    retry_after_secs: 60,
                })?
            }
        };
        let mut path = ep.path.clone();
        let mut query = Vec::new();
        let mut body = Map::new();
        for (param, value) in values {
            match param.location {
                ParamIn::Path => {
                    path = path.replace(
                        &format!("{{{}}}", param.item),
                        &percent_encode(&text(value)),
                    );
                }
                ParamIn::Query => query.push((param.item.as_str(), text(value))),
                ParamIn::Body => {
                    body.insert(param.item.clone(), value.clone());
                }
            }
        }
        // The base's own path (`/v2`, or `/` when it has none), then the
        // endpoint's.
        let joined = format!("{}{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let body = (ep.method == HttpMethod::Post).then(|| {
            Bytes::from(serde_json::to_vec(&Value::Object(body)).expect("JSON values serialise"))
        });
        let limit = service.record.service.limits.max_request_bytes;
        if let Some(b) = &body
            && b.len() > limit as usize
        {
            return Err(Error::TooLarge {
                message: format!(
                    "the request to the provider would be {} bytes, more than the service's limit of {limit}",
                    b.len()
                ),
            });
        }
        let path_and_query = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let hash = request_hash(
            method_word(ep.method),
            &path_and_query,
            body.as_deref().unwrap_or_default(),
        );
        Ok(Sent {
            method: ep.method,
            url,
            body,
            request_id: request_id.to_string(),
            hash,
        })
    }
}

fn method_word(m: HttpMethod) -> &'static str {
    match m {
        HttpMethod::Get => "GET",
        HttpMethod::Post => "POST",
    }
}

/// The request hash: SHA-256 (hex) of `METHOD SP path-and-query LF body`.
pub fn request_hash(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    h.update(path_and_query.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex(&h.finalize())
}

/// SHA-256 (hex) of bytes: the response hash.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// A parameter's value as path or query text.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Everything but RFC 3986's unreserved characters, percent-encoded: a
/// value can never add a path segment or a query.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Header values are visible ASCII; anything else (a matter's Chinese
/// name, say) is percent-encoded as UTF-8.
fn header_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x21..0x7f).contains(&b) && b != b'%' || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An error with its sources: reqwest's own message alone is only
/// "error sending request".
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_hash_covers_method_path_query_and_body() {
        let a = request_hash("GET", "/v2/x/1?y=2", b"");
        assert_eq!(a.len(), 64);
        assert_ne!(a, request_hash("POST", "/v2/x/1?y=2", b""));
        assert_ne!(a, request_hash("GET", "/v2/x/1?y=3", b""));
        assert_ne!(
            request_hash("POST", "/p", b"{}"),
            request_hash("POST", "/p", b"{ }")
        );
        // The form is fixed: a provider recomputes it from what it received.
        assert_eq!(request_hash("GET", "/a", b""), sha256_hex(b"GET /a\n"));
    }

    #[test]
    fn values_cannot_leave_their_path_segment_or_header() {
        assert_eq!(percent_encode("a/../b?c"), "a%2F..%2Fb%3Fc");
        assert_eq!(header_text("事项 1"), "%E4%BA%8B%E9%A1%B9 1");
        assert_eq!(header_text("a\r\nb"), "a%0D%0Ab");
    }
}
