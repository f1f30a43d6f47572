//! An answer's status and body, checked the same way in every test: the
//! URL and the body are in every failure.

use serde_json::Value;

/// The JSON body of an answer, after asserting its status. A body that is
/// not JSON fails the test too: a test that reads fields of an answer
/// relies on there being some.
pub async fn expect_json(resp: reqwest::Response, status: u16) -> Value {
    let url = resp.url().to_string();
    let body = expect_text(resp, status).await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {body}"))
}

/// The body of an answer as text (a CSV export, say), after asserting its
/// status.
pub async fn expect_text(resp: reqwest::Response, status: u16) -> String {
    let url = resp.url().to_string();
    let got = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    assert_eq!(got, status, "{url}: {body}");
    body
}

/// Asserts a problem+json answer: its status, its content type, its `code`,
/// the same `status` in the body and a `detail` that is not empty. Returns
/// the body, for a test's own checks of `field`, `rule` or `detail`.
pub async fn problem(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status of {}", resp.url());
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(ct, "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

/// The lines of an NDJSON answer (a lookup stream, a Delta Sharing
/// listing, query or change feed), after asserting its status.
pub async fn ndjson(resp: reqwest::Response, status: u16) -> Vec<Value> {
    ndjson_lines(&expect_text(resp, status).await)
}

/// NDJSON text, line by line; a line that is not JSON fails the test,
/// naming the line.
pub fn ndjson_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
