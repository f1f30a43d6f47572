//! One GET of one page: its timeout, retries and backoff; and the request
//! headers, with `${VAR}` expanded from the environment.

use super::{DEFAULT_BACKOFF_MS, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, SourceConfig};
use crate::{Error, Result};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use url::Url;

/// The longest `Retry-After` honoured: a server asking for more would stall
/// the sync job for longer than retrying is worth.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The HTTP client of one source. Redirects are followed only within the
/// configured URL's origin (at most 10), so headers carrying tokens are never
/// sent to another host.
pub(super) fn client(config: &SourceConfig) -> Result<reqwest::Client> {
    let timeout = Duration::from_millis(config.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        // `previous` starts with the URL first requested.
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same_origin && attempt.previous().len() <= 10 {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .redirect(redirects)
        .user_agent(concat!("tongban/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// Checks header names, `${VAR}` syntax and value characters, without
/// looking the variables up.
pub(super) fn check_headers(headers: &BTreeMap<String, String>) -> Result<()> {
    for (name, value) in headers {
        header_name(name)?;
        let sample = expand(name, value, |_| Some("x".into()))?;
        header_value(name, &sample)?;
    }
    Ok(())
}

/// The headers sent with every request, variables expanded now.
fn headers(config: &SourceConfig) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    map.insert(ACCEPT, HeaderValue::from_static("application/json"));
    for (name, value) in &config.headers {
        let expanded = expand(name, value, |var| std::env::var(var).ok())?;
        let mut value = header_value(name, &expanded)?;
        // Values may hold tokens: keep them out of debug output.
        value.set_sensitive(true);
        map.insert(header_name(name)?, value);
    }
    Ok(map)
}

fn header_name(name: &str) -> Result<HeaderName> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Error::Config(format!("http header '{name}': not a valid header name")))
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value).map_err(|_| {
        Error::Config(format!(
            "http header '{name}': the value has characters a header cannot carry"
        ))
    })
}

/// `value` with each `${VAR}` replaced by `lookup(VAR)`. A `$` not followed
/// by `{` is kept as it is.
fn expand(name: &str, value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| {
            Error::Config(format!(
                "http header '{name}': '${{' without a closing '}}'"
            ))
        })?;
        let var = &after[..end];
        let valid = !var.is_empty()
            && !var.starts_with(|c: char| c.is_ascii_digit())
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Error::Config(format!(
                "http header '{name}': '${{{var}}}' is not an environment variable name"
            )));
        }
        let v = lookup(var).ok_or_else(|| {
            Error::Config(format!(
                "http header '{name}': environment variable {var} is not set"
            ))
        })?;
        out.push_str(&v);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// GETs pages as JSON for one read.
pub(super) struct Fetcher {
    client: reqwest::Client,
    headers: HeaderMap,
    timeout_ms: u64,
    retries: u32,
    backoff: Duration,
}

/// Why one attempt failed.
enum Failure {
    /// Worth another attempt: the server or the network may recover.
    Retry {
        reason: String,
        wait: Option<Duration>,
    },
    /// Another attempt would fail the same way.
    Fatal(Error),
}

impl Fetcher {
    /// Expands the headers' variables, so a missing one fails the read
    /// before any request.
    pub(super) fn new(config: &SourceConfig, client: reqwest::Client) -> Result<Fetcher> {
        Ok(Fetcher {
            client,
            headers: headers(config)?,
            timeout_ms: config.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            retries: config.retries.unwrap_or(DEFAULT_RETRIES),
            backoff: Duration::from_millis(config.backoff_ms.unwrap_or(DEFAULT_BACKOFF_MS)),
        })
    }

    /// The JSON body at `url`, after as many retries as allowed.
    pub(super) async fn get(&self, url: &Url) -> Result<Value> {
        let mut attempt = 0u32;
        loop {
            let (reason, wait) = match self.try_get(url).await {
                Ok(body) => return Ok(body),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry { reason, wait }) => (reason, wait),
            };
            if attempt >= self.retries {
                return Err(Error::Remote {
                    system: "http",
                    message: format!(
                        "GET {url}: {reason} (gave up after {} attempts)",
                        attempt + 1
                    ),
                });
            }
            // Exponential backoff, unless the server said how long to wait.
            let wait =
                wait.unwrap_or_else(|| self.backoff.saturating_mul(2u32.saturating_pow(attempt)));
            tracing::warn!(%url, %reason, attempt = attempt + 1, wait_ms = wait.as_millis() as u64, "http source: retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn try_get(&self, url: &Url) -> Result<Value, Failure> {
        let response = self
            .client
            .get(url.clone())
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(|e| self.failed(e))?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(Failure::Retry {
                reason: format!("status {status}"),
                wait: retry_after(response.headers()),
            });
        }
        if !status.is_success() {
            let message = if status.is_redirection() {
                let to = response
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or("?");
                format!(
                    "GET {url}: status {status}: the redirect to {to} leaves the origin or is one too many, so it is not followed"
                )
            } else {
                // The start of the body usually says what was wrong.
                let body = response.text().await.unwrap_or_default();
                let body: String = body.trim().chars().take(200).collect();
                let body = if body.is_empty() {
                    String::new()
                } else {
                    format!(": {body}")
                };
                format!("GET {url}: status {status}, not retried{body}")
            };
            return Err(Failure::Fatal(Error::Remote {
                system: "http",
                message,
            }));
        }
        let body = response.bytes().await.map_err(|e| self.failed(e))?;
        serde_json::from_slice(&body).map_err(|e| {
            Failure::Fatal(Error::Remote {
                system: "http",
                message: format!("GET {url}: the body is not JSON: {e}"),
            })
        })
    }

    fn failed(&self, e: reqwest::Error) -> Failure {
        if e.is_timeout() {
            Failure::Retry {
                reason: format!(
                    "timed out: no response within timeout_ms = {} ms",
                    self.timeout_ms
                ),
                wait: None,
            }
        } else if e.is_connect() {
            Failure::Retry {
                reason: format!("cannot connect: {}", causes(&e)),
                wait: None,
            }
        } else {
            Failure::Fatal(Error::Http(e))
        }
    }
}

/// A `Retry-After` given in seconds (an HTTP date is ignored: the backoff
/// applies then).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// An error's causes, which say more than reqwest's own message.
fn causes(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}
