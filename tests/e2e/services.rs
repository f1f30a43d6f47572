//! Interface sharing (接口共享): a provider department's own API registered
//! in the directory as a service and called through the hub, under the same
//! lists as every other release.
//!
//! The provider's system is a real HTTP server started by each test
//! ([`Provider`]): it answers as told (normally, slowly, with an error, with
//! junk, with too much), counts what it receives and keeps every request
//! and answer, so a test can say what reached it — nothing, when the hub
//! must refuse first — and recompute the hashes the hub records.
//!
//! The service ([`registration`]) is `302/000901` of `sh-rsj`: a
//! contribution-status API whose items are the parameters `citizen_id` (a
//! key, conditional) and `year` (unconditional), and the response fields
//! `paid_up` (unconditional), `months` (conditional), `name` (conditional,
//! masked as a Chinese name) and `secret_note` (conditional, put on the
//! negative list by one test).

use crate::common::{Hub, citizen_id, expect_json, problem};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CODE: &str = "302/000901";
const PROVIDER: &str = "sh-rsj";
/// The acceptance front office (sh-zwfw) and its matter.
const A: &str = "acceptance";
const MATTER_A: &str = "310000-SHBX-001";
/// The Xuhui district (xh-zwfw) and its matter.
const B: &str = "xuhui-district";
const MATTER_B: &str = "310104-SHBX-002";
/// What the provider's normal answer says.
const NAME: &str = "张三";
const NOTE: &str = "内部备注：存在补缴记录";

// ---- the provider's system -------------------------------------------------

/// How the provider answers from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// 200 with the declared fields.
    Normal,
    /// [`Behaviour::Normal`] after this many milliseconds.
    Slow(u64),
    /// 500, as a system that is down behind its gateway.
    Failing,
    /// 404: the provider rejects the input (its own business answer).
    NotFound,
    /// 200 with an HTML error page.
    Junk,
    /// 200 with `paid_up` a string.
    WrongType,
    /// 200 with a body of 4 KiB, its length announced.
    Oversized,
    /// The same, chunked: no length announced.
    OversizedChunked,
}

/// Marks what must never leave the hub in any answer of a broken provider.
const JUNK_MARKER: &str = "com.rsj.InternalError";

/// One request as the provider received it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("the provider got no {name}: {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    /// The request hash as the provider computes it from what it got:
    /// SHA-256 of `METHOD SP path-and-query LF body`.
    fn hash(&self) -> String {
        let mut bytes = format!("{} {}\n", self.method, self.path_and_query).into_bytes();
        bytes.extend_from_slice(&self.body);
        sha256(&bytes)
    }
}

struct ProviderState {
    behaviour: Mutex<Behaviour>,
    received: Mutex<Vec<Received>>,
    /// Every body the provider answered with, in order.
    answered: Mutex<Vec<Bytes>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// The provider's API on 127.0.0.1, answering every path.
#[derive(Clone)]
struct Provider {
    base_url: String,
    state: Arc<ProviderState>,
}

/// Counts a request in flight at the provider until dropped (also when
/// the hub gives up on it and the handler is cancelled).
struct InFlight<'a>(&'a ProviderState);

impl<'a> InFlight<'a> {
    fn enter(state: &'a ProviderState) -> Self {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Provider {
    async fn start() -> Provider {
        let state = Arc::new(ProviderState {
            behaviour: Mutex::new(Behaviour::Normal),
            received: Mutex::default(),
            answered: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .fallback(provider_answer)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/api", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Provider { base_url, state }
    }

    fn behave(&self, b: Behaviour) {
        *self.state.behaviour.lock().unwrap() = b;
    }

    /// Requests received so far.
    fn requests(&self) -> usize {
        self.state.received.lock().unwrap().len()
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    fn last(&self) -> Received {
        self.received()
            .pop()
            .expect("the provider received a request")
    }

    fn answered(&self) -> Vec<Bytes> {
        self.state.answered.lock().unwrap().clone()
    }

    fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

async fn provider_answer(
    axum::extract::State(state): axum::extract::State<Arc<ProviderState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let _in_flight = InFlight::enter(&state);
    state.received.lock().unwrap().push(Received {
        method: method.to_string(),
        path_and_query: uri.path_and_query().map(|p| p.to_string()).unwrap(),
        headers,
        body,
    });
    let behaviour = *state.behaviour.lock().unwrap();
    if let Behaviour::Slow(ms) = behaviour {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let normal = json!({"code": 0, "paid_up": true, "detail": {"months": 36},
                        "name": NAME, "note": NOTE});
    let padding = "x".repeat(4096);
    let (status, content_type, answer) = match behaviour {
        Behaviour::Normal | Behaviour::Slow(_) => (200, "application/json", normal.to_string()),
        Behaviour::Failing => (
            500,
            "application/json",
            json!({"error": JUNK_MARKER}).to_string(),
        ),
        Behaviour::NotFound => (
            404,
            "application/json",
            json!({"code": 404, "message": "no such insured person"}).to_string(),
        ),
        Behaviour::Junk => (
            200,
            "text/html",
            format!("<html><body>系统维护中 at {JUNK_MARKER}</body></html>"),
        ),
        Behaviour::WrongType => (
            200,
            "application/json",
            json!({"paid_up": JUNK_MARKER, "detail": {"months": 36}}).to_string(),
        ),
        Behaviour::Oversized | Behaviour::OversizedChunked => (
            200,
            "application/json",
            json!({"paid_up": true, "note": JUNK_MARKER, "pad": padding}).to_string(),
        ),
    };
    let answer = Bytes::from(answer);
    state.answered.lock().unwrap().push(answer.clone());
    let status = StatusCode::from_u16(status).unwrap();
    let headers = [("content-type", content_type)];
    if behaviour == Behaviour::OversizedChunked {
        let chunks: Vec<Result<Bytes, std::convert::Infallible>> = answer
            .chunks(512)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let body = axum::body::Body::from_stream(futures::stream::iter(chunks));
        return (status, headers, body).into_response();
    }
    (status, headers, answer).into_response()
}

/// SHA-256 (hex) computed outside the hub, by coreutils' `sha256sum`.
fn sha256(bytes: &[u8]) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils) must be installed");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

// ---- the service and the hub -----------------------------------------------

fn item(name: &str, label: &str, data_type: &str, sensitivity: &str, share: &str) -> Value {
    let mut item = json!({"name": name, "label": label, "data_type": data_type,
                          "sensitivity": sensitivity, "share_type": share});
    if share == "conditional" {
        item["share_condition"] = json!("经需求清单审批");
    }
    item
}

/// The contribution-status service against `base_url`: `status` (GET, the
/// key in the path, `year` in the query), `check` (POST, both in the
/// body), and two cached GETs of the same provider URL as `status`:
/// `cached` (every field) and `cached-paid` (`paid_up` only). Timeouts are
/// short and retries off (one attempt): tests that need more say so.
fn registration(base_url: &str) -> Value {
    let mut name = item("name", "姓名", "Utf8", "sensitive", "conditional");
    name["mask"] = json!("chinese_name");
    let key = json!({"item": "citizen_id", "in": "path", "key": "citizen_id"});
    let year = json!({"item": "year", "in": "query", "required": false});
    let every_field = json!([
        {"item": "paid_up", "pointer": "/paid_up", "required": true},
        {"item": "months", "pointer": "/detail/months"},
        {"item": "name", "pointer": "/name"},
        {"item": "secret_note", "pointer": "/note"}
    ]);
    json!({
        "resource": {
            "code": CODE, "name": "社会保险缴费状态核验接口", "provider": PROVIDER,
            "summary": "人社局社保缴费状态实时核验", "category": "department",
            "format": "self_describing", "update_cycle": "realtime", "status": "published",
            "items": [
                item("citizen_id", "公民身份号码", "Utf8", "sensitive", "conditional"),
                item("year", "缴费年度", "Int64", "internal", "unconditional"),
                item("paid_up", "是否足额缴费", "Boolean", "internal", "unconditional"),
                item("months", "累计缴费月数", "Int64", "internal", "conditional"),
                name,
                item("secret_note", "内部备注", "Utf8", "internal", "conditional")
            ]
        },
        "service": {
            "base_url": base_url,
            "endpoints": [
                {"name": "status", "method": "GET", "path": "/contributions/{citizen_id}",
                 "params": [key, year], "response": every_field, "timeout_ms": 1000},
                {"name": "check", "method": "POST", "path": "/checks",
                 "params": [{"item": "citizen_id", "in": "body", "key": "citizen_id"},
                            {"item": "year", "in": "body", "required": false}],
                 "response": [{"item": "paid_up", "pointer": "/paid_up", "required": true},
                              {"item": "months", "pointer": "/detail/months"}],
                 "timeout_ms": 1000},
                {"name": "cached", "method": "GET", "path": "/contributions/{citizen_id}",
                 "params": [key], "response": every_field, "timeout_ms": 1000,
                 "cache_ttl_ms": 60000},
                {"name": "cached-paid", "method": "GET", "path": "/contributions/{citizen_id}",
                 "params": [key],
                 "response": [{"item": "paid_up", "pointer": "/paid_up", "required": true}],
                 "timeout_ms": 1000, "cache_ttl_ms": 60000}
            ],
            "retry": {"max_attempts": 1}
        }
    })
}

/// A hub with the service registered against a running provider.
struct Fixture {
    hub: Hub,
    provider: Provider,
}

impl Fixture {
    /// The service as [`registration`] defines it.
    async fn start() -> Fixture {
        Self::start_with(|_| {}).await
    }

    /// The service with its definition (`service`) changed first.
    async fn start_with(tweak: impl FnOnce(&mut Value)) -> Fixture {
        let hub = Hub::start(None).await;
        let provider = Provider::start().await;
        let f = Fixture { hub, provider };
        f.register(tweak).await;
        f
    }

    /// Registers (or replaces) the service as the data office (201).
    async fn register(&self, tweak: impl FnOnce(&mut Value)) -> Value {
        let mut reg = registration(&self.provider.base_url);
        tweak(&mut reg["service"]);
        expect_json(
            self.hub
                .post("/v1/services", "data-office")
                .json(&reg)
                .send()
                .await
                .unwrap(),
            201,
        )
        .await
    }

    /// Grants `who` an approved need of mode `call` for `matter` covering
    /// `items` (approved by the provider, then the data office), with
    /// `extra` members added to the application (`clear_items`, a quota).
    async fn grant(&self, who: &str, matter: &str, items: &[&str], extra: Value) -> i64 {
        let mut application = json!({"resource": CODE, "items": items, "matter": matter,
                                      "mode": "call", "justification": "社保补贴：核验申请人缴费状态"});
        for (k, v) in extra.as_object().unwrap() {
            application[k] = v.clone();
        }
        self.hub.grant_need(who, &application, Some(PROVIDER)).await
    }

    /// The usual grants: A may call for every field (name masked), B for
    /// the key and `months` only.
    async fn grant_both(&self) -> (i64, i64) {
        let a = self
            .grant(
                A,
                MATTER_A,
                &[
                    "citizen_id",
                    "year",
                    "paid_up",
                    "months",
                    "name",
                    "secret_note",
                ],
                json!({}),
            )
            .await;
        let b = self
            .grant(B, MATTER_B, &["citizen_id", "months"], json!({}))
            .await;
        (a, b)
    }

    /// `POST /v1/call/302/000901/{endpoint}` as `who`: the answer, unchecked.
    async fn call(&self, who: &str, endpoint: &str, body: &Value) -> reqwest::Response {
        self.hub
            .post(&format!("/v1/call/{CODE}/{endpoint}"), who)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A call that must succeed: its headers and body.
    async fn call_ok(&self, who: &str, endpoint: &str, body: &Value) -> (HeaderMap, Value) {
        let resp = self.call(who, endpoint, body).await;
        let headers = resp.headers().clone();
        (headers, expect_json(resp, 200).await)
    }

    /// The service's health data (200).
    async fn health(&self) -> Value {
        expect_json(
            self.hub
                .get(&format!("/v1/services/{CODE}/health"), "data-office")
                .send()
                .await
                .unwrap(),
            200,
        )
        .await
    }

    /// The breaker's state as health data shows it.
    async fn breaker(&self) -> String {
        self.health().await["breaker"].as_str().unwrap().to_string()
    }

    /// The one audit record of `case`.
    fn record(&self, case: &str) -> Value {
        let found: Vec<Value> = self
            .hub
            .audit_records()
            .into_iter()
            .filter(|r| r["case"] == case)
            .collect();
        assert_eq!(found.len(), 1, "one record of {case}: {found:?}");
        let r = found.into_iter().next().unwrap();
        assert_eq!(
            (r["mode"].as_str(), r["resource"].as_str()),
            (Some("call"), Some(CODE)),
            "{r}"
        );
        r
    }
}

/// A change to a service definition (its `service` member).
type Change = Box<dyn Fn(&mut Value)>;

/// A call's body: `matter`, `case`, `params`.
fn ask(matter: &str, case: &str, params: Value) -> Value {
    json!({"matter": matter, "case": case, "params": params})
}

/// A call of A's for a citizen, with `year` in the query.
fn ask_a(case: &str, n: u32) -> Value {
    ask(
        MATTER_A,
        case,
        json!({"citizen_id": citizen_id(n), "year": 2025}),
    )
}

/// A call of B's for a citizen.
fn ask_b(case: &str, n: u32) -> Value {
    ask(MATTER_B, case, json!({"citizen_id": citizen_id(n)}))
}

/// The rule of an item in an answer's `denied`, if it is there.
fn denied_rule(answer: &Value, item: &str) -> Option<String> {
    answer["denied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["item"] == item)
        .map(|d| d["rule"].as_str().unwrap().to_string())
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header: {headers:?}"))
        .to_str()
        .unwrap()
}

/// A 503 `provider_unavailable`: its body, after checking `Retry-After`.
async fn unavailable(resp: reqwest::Response) -> Value {
    let retry: u64 = header(resp.headers(), "retry-after")
        .parse()
        .expect("Retry-After in seconds");
    let p = problem(resp, 503, "provider_unavailable").await;
    assert!(retry >= 1 && p["retry_after"] == retry, "{p}");
    p
}

// ---- the tests -------------------------------------------------------------

/// A permitted call reaches the provider exactly once, with the caller's
/// identity, matter, case, request id and subject in headers, and releases
/// the permitted fields; the POST endpoint sends its parameters as a JSON
/// body.
#[tokio::test]
async fn an_allowed_call_reaches_the_provider_once_with_who_asks_and_why() {
    let f = Fixture::start().await;
    f.grant_both().await;
    let mut body = ask_a("SB-1", 1);
    body["request_id"] = json!("req-0001");
    body["subject"] = json!(citizen_id(1));
    let (headers, r) = f.call_ok(A, "status", &body).await;
    assert_eq!(
        r["data"],
        json!({"paid_up": true, "months": 36, "name": "张*", "secret_note": NOTE})
    );
    assert_eq!(r["denied"], json!([]));
    assert_eq!(
        (r["resource"].as_str(), r["endpoint"].as_str()),
        (Some(CODE), Some("status"))
    );
    assert_eq!(
        (r["provider_status"].as_u64(), r["cached"].as_bool()),
        (Some(200), Some(false))
    );
    assert_eq!(r["request_id"], "req-0001");
    assert_eq!(header(&headers, "x-tongban-request-id"), "req-0001");

    assert_eq!(
        f.provider.requests(),
        1,
        "exactly one request reached the provider"
    );
    let got = f.provider.last();
    assert_eq!(got.method, "GET");
    assert_eq!(
        got.path_and_query,
        format!("/api/contributions/{}?year=2025", citizen_id(1))
    );
    assert_eq!(got.header("x-tongban-client"), "sh-zwfw");
    assert_eq!(got.header("x-tongban-matter"), MATTER_A);
    assert_eq!(got.header("x-tongban-case"), "SB-1");
    assert_eq!(got.header("x-tongban-request-id"), "req-0001");
    assert_eq!(got.header("x-tongban-userid"), citizen_id(1));
    assert_eq!(got.header("x-tongban-request-hash"), r["request_hash"]);
    assert_eq!(got.header("accept"), "application/json");
    assert!(
        got.headers.get("authorization").is_none(),
        "the caller's token stays at the hub"
    );

    // The POST endpoint: the parameters as a JSON body; a request id made
    // by the hub when the caller gives none.
    let (headers, r) = f.call_ok(A, "check", &ask_a("SB-2", 2)).await;
    assert_eq!(r["data"], json!({"paid_up": true, "months": 36}));
    assert_eq!(f.provider.requests(), 2);
    let got = f.provider.last();
    assert_eq!(
        (got.method.as_str(), got.path_and_query.as_str()),
        ("POST", "/api/checks")
    );
    assert_eq!(got.header("content-type"), "application/json");
    let sent: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(sent, json!({"citizen_id": citizen_id(2), "year": 2025}));
    let id = header(&headers, "x-tongban-request-id");
    assert!(
        !id.is_empty() && got.header("x-tongban-request-id") == id,
        "{id}"
    );
    assert!(
        got.headers.get("x-tongban-userid").is_none(),
        "no subject given"
    );
}

/// Conditional fields the need does not cover are denied and absent;
/// unconditional ones are released without a need. A call whose parameter
/// is not permitted (no need, a need of another mode, a need without the
/// key) is refused naming the rule, and the provider is never touched.
#[tokio::test]
async fn uncovered_items_are_denied_and_unpermitted_params_never_reach_the_provider() {
    let f = Fixture::start().await;
    f.grant_both().await;
    let (_, r) = f.call_ok(B, "status", &ask_b("SB-B1", 1)).await;
    assert_eq!(
        r["data"],
        json!({"paid_up": true, "months": 36}),
        "paid_up is unconditional, months is in B's need"
    );
    for item in ["name", "secret_note"] {
        assert_eq!(denied_rule(&r, item).as_deref(), Some("no_need"), "{r}");
    }
    assert!(
        !r.to_string().contains(NOTE) && !r.to_string().contains("张"),
        "{r}"
    );
    assert_eq!(f.provider.requests(), 1);

    // Only denied response items asked for: nothing to release, refused.
    let mut only_name = ask_b("SB-B2", 1);
    only_name["items"] = json!(["name"]);
    let p = problem(f.call(B, "status", &only_name).await, 403, "denied").await;
    assert_eq!(p["rule"], "no_need", "{p}");

    // sh-gaj: no need at all; then a lookup need (another mode); then a
    // call need for months without the key. Each is refused on the key.
    let gaj = "public-security";
    let matter = "310000-GAJ-009";
    let gaj_call = |case: &str| ask(matter, case, json!({"citizen_id": citizen_id(3)}));
    for (case, grant) in [
        ("SB-G1", None),
        ("SB-G2", Some(("lookup", vec!["citizen_id", "months"]))),
        ("SB-G3", Some(("call", vec!["months"]))),
    ] {
        if let Some((mode, items)) = grant {
            f.hub
                .grant_need(
                    gaj,
                    &json!({"resource": CODE, "items": items, "matter": matter, "mode": mode,
                            "justification": "核查"}),
                    Some(PROVIDER),
                )
                .await;
        }
        let p = problem(f.call(gaj, "status", &gaj_call(case)).await, 403, "denied").await;
        assert_eq!(p["rule"], "no_need", "{case}: the key's rule: {p}");
        assert!(
            p["detail"].as_str().unwrap().contains("citizen_id"),
            "{case}: {p}"
        );
        let rec = f.record(case);
        assert_eq!(
            (rec["outcome"].as_str(), rec["rule"].as_str()),
            (Some("denied"), Some("no_need")),
            "{rec}"
        );
    }
    assert_eq!(
        f.provider.requests(),
        1,
        "no refused call reached the provider"
    );
    assert_eq!(f.record("SB-B2")["outcome"], "denied");
}

/// A masked field is masked under its directory mask, unless the need
/// grants it in clear; the provider's answer is the same both times.
#[tokio::test]
async fn masks_apply_to_response_fields_unless_the_need_grants_them_clear() {
    let f = Fixture::start().await;
    f.grant(A, MATTER_A, &["citizen_id", "name"], json!({}))
        .await;
    let clear_matter = "310000-SHBX-009";
    f.grant(
        A,
        clear_matter,
        &["citizen_id", "name"],
        json!({"clear_items": ["name"]}),
    )
    .await;
    let (_, masked) = f.call_ok(A, "status", &ask_a("SB-M1", 1)).await;
    assert_eq!(masked["data"]["name"], "张*", "{masked}");
    let (_, clear) = f
        .call_ok(
            A,
            "status",
            &ask(clear_matter, "SB-M2", json!({"citizen_id": citizen_id(1)})),
        )
        .await;
    assert_eq!(clear["data"]["name"], NAME, "{clear}");
    assert_eq!(f.provider.requests(), 2);
}

/// A field on the negative list is never released, even though an
/// approved need covers it: the entry wins; asked for alone, the call is
/// refused before the provider.
#[tokio::test]
async fn a_negative_listed_field_never_passes_even_under_a_need() {
    let f = Fixture::start().await;
    f.grant_both().await;
    // Before the entry the need releases it: the checks below are not vacuous.
    let (_, r) = f.call_ok(A, "status", &ask_a("SB-N1", 1)).await;
    assert_eq!(r["data"]["secret_note"], NOTE);
    let entry = f
        .hub
        .add_negative(&json!({"resource": CODE, "items": ["secret_note"], "modes": ["call"],
                              "legal_basis": "《个人信息保护法》第六条：最小必要", "note": "内部备注不共享"}))
        .await;
    let rule = format!("negative:{}", entry["id"]);
    let (_, r) = f.call_ok(A, "status", &ask_a("SB-N2", 1)).await;
    assert!(r["data"].get("secret_note").is_none(), "{r}");
    assert!(!r.to_string().contains(NOTE), "{r}");
    assert_eq!(denied_rule(&r, "secret_note"), Some(rule.clone()));
    assert_eq!(r["data"]["months"], 36, "the rest still passes");
    let rec = f.record("SB-N2");
    assert!(
        rec["denied"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("secret_note:{rule}"))),
        "{rec}"
    );
    assert!(
        !rec["items"]
            .as_array()
            .unwrap()
            .contains(&json!("secret_note")),
        "{rec}"
    );

    let before = f.provider.requests();
    let mut only_note = ask_a("SB-N3", 1);
    only_note["items"] = json!(["secret_note"]);
    let p = problem(f.call(A, "status", &only_note).await, 403, "denied").await;
    assert_eq!(p["rule"], rule, "{p}");
    assert_eq!(f.provider.requests(), before, "refused before the provider");
}

/// Input that is wrong is refused (422, naming the field) before anything
/// is decided, and the provider is not touched: a key with a bad check
/// digit, a parameter of the wrong type, an unknown or missing one.
#[tokio::test]
async fn bad_input_is_refused_before_the_provider() {
    let f = Fixture::start().await;
    f.grant_both().await;
    let good = citizen_id(1);
    let last = good.chars().last().unwrap();
    let wrong_digit = if last == '0' { '1' } else { '0' };
    let bad_key = format!("{}{wrong_digit}", &good[..17]);
    for (case, params, field, says) in [
        (
            "SB-I1",
            json!({"citizen_id": bad_key}),
            "params.citizen_id",
            "check",
        ),
        (
            "SB-I2",
            json!({"citizen_id": good, "year": "2025"}),
            "params.year",
            "integer",
        ),
        (
            "SB-I3",
            json!({"citizen_id": good, "month": 1}),
            "params.month",
            "not a parameter",
        ),
        (
            "SB-I4",
            json!({"year": 2025}),
            "params.citizen_id",
            "required",
        ),
    ] {
        let p = problem(
            f.call(A, "status", &ask(MATTER_A, case, params)).await,
            422,
            "invalid_input",
        )
        .await;
        assert_eq!(p["field"], field, "{case}: {p}");
        assert!(p["detail"].as_str().unwrap().contains(says), "{case}: {p}");
    }
    let p = problem(
        f.call(A, "nope", &ask_a("SB-I5", 1)).await,
        404,
        "not_found",
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("status"),
        "names the endpoints: {p}"
    );
    // The call's own members: a request id with a space, a subject with a
    // control character.
    for (case, member, value) in [
        ("SB-I7", "request_id", "id 1"),
        ("SB-I8", "subject", "王\u{7}五"),
    ] {
        let mut body = ask_a(case, 1);
        body[member] = json!(value);
        let p = problem(f.call(A, "status", &body).await, 422, "invalid_input").await;
        assert_eq!(p["field"], member, "{p}");
    }
    // No identity: 401.
    let anonymous = f
        .hub
        .client
        .post(format!("{}/v1/call/{CODE}/status", f.hub.url))
        .json(&ask_a("SB-I9", 1))
        .send()
        .await
        .unwrap();
    problem(anonymous, 401, "unauthorized").await;
    assert_eq!(f.provider.requests(), 0, "nothing reached the provider");
    assert!(
        f.hub.audit_records().is_empty(),
        "nothing was decided: {:?}",
        f.hub.audit_records()
    );
    // Lower case is the same key: normalised, not refused.
    let x = (0..1000)
        .map(citizen_id)
        .find(|id| id.ends_with('X'))
        .unwrap();
    f.call_ok(
        A,
        "status",
        &ask(MATTER_A, "SB-I6", json!({"citizen_id": x.to_lowercase()})),
    )
    .await;
    assert!(
        f.provider.last().path_and_query.ends_with(&x),
        "upper-case X sent"
    );
}

/// A provider slower than the endpoint's timeout: 504 `provider_timeout`
/// once the timeout has passed, not when the provider answers; the
/// idempotent GET is retried once (two attempts), the POST is not.
#[tokio::test]
async fn a_provider_slower_than_its_timeout_is_a_gateway_timeout() {
    let f = Fixture::start_with(|s| {
        for ep in s["endpoints"].as_array_mut().unwrap() {
            ep["timeout_ms"] = json!(200);
        }
        s["retry"] = json!({"max_attempts": 2, "backoff_ms": 10});
    })
    .await;
    f.grant_both().await;
    f.provider.behave(Behaviour::Slow(1_500));
    let t0 = Instant::now();
    let p = problem(
        f.call(A, "status", &ask_a("SB-T1", 1)).await,
        504,
        "provider_timeout",
    )
    .await;
    assert!(
        t0.elapsed() < Duration::from_millis(1_200),
        "{:?}",
        t0.elapsed()
    );
    assert!(p["detail"].as_str().unwrap().contains("200 ms"), "{p}");
    assert_eq!(f.provider.requests(), 2, "the GET is retried once");
    let t0 = Instant::now();
    problem(
        f.call(A, "check", &ask_a("SB-T2", 1)).await,
        504,
        "provider_timeout",
    )
    .await;
    assert!(
        t0.elapsed() < Duration::from_millis(1_200),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(f.provider.requests(), 3, "the POST is not retried");
    for (case, attempts) in [("SB-T1", 2), ("SB-T2", 1)] {
        let r = f.record(case);
        assert_eq!(r["outcome"], "provider_failed", "{r}");
        assert_eq!(
            (
                r["call"]["failure"].as_str(),
                r["call"]["attempts"].as_u64()
            ),
            (Some("timeout"), Some(attempts)),
            "{r}"
        );
        assert!(
            r["items"].as_array().unwrap().is_empty(),
            "nothing released: {r}"
        );
    }
    let h = f.health().await;
    assert_eq!(
        (h["timeouts"].as_u64(), h["failures"].as_u64()),
        (Some(2), Some(2)),
        "{h}"
    );
}

/// resilience4j's breaker: failures open it (then the provider is not
/// called), after its wait it is half-open; failing trials open it again,
/// succeeding trials close it.
#[tokio::test]
async fn the_breaker_opens_on_failures_half_opens_after_its_wait_and_closes_again() {
    let f = Fixture::start_with(|s| {
        s["breaker"] = json!({"window": 4, "min_calls": 4, "failure_rate_pct": 50,
                              "wait_open_ms": 500, "half_open_calls": 2});
    })
    .await;
    f.grant_both().await;
    let fr = &f;
    let call = move |case: String| async move { fr.call(A, "status", &ask_a(&case, 1)).await };
    f.provider.behave(Behaviour::Failing);
    for i in 0..4 {
        assert_eq!(f.breaker().await, "closed", "before failure {i}");
        let p = problem(call(format!("SB-F{i}")).await, 502, "provider_error").await;
        assert_eq!(p["provider_status"], 500, "{p}");
        assert!(
            !p.to_string().contains(JUNK_MARKER),
            "the provider's body stays at the hub: {p}"
        );
    }
    assert_eq!(f.provider.requests(), 4);
    assert_eq!(f.breaker().await, "open", "4 of 4 calls failed");
    let p = unavailable(call("SB-F4".into()).await).await;
    assert!(
        p["detail"].as_str().unwrap().contains("circuit breaker"),
        "{p}"
    );
    assert_eq!(f.provider.requests(), 4, "an open breaker keeps calls away");
    assert_eq!(f.record("SB-F4")["call"]["failure"], "breaker_open");

    // Half-open: two trials, both fail: open again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(f.breaker().await, "half_open");
    problem(call("SB-H1".into()).await, 502, "provider_error").await;
    assert_eq!(f.breaker().await, "half_open", "one of two trials done");
    problem(call("SB-H2".into()).await, 502, "provider_error").await;
    assert_eq!(f.breaker().await, "open");
    unavailable(call("SB-H3".into()).await).await;
    assert_eq!(f.provider.requests(), 6);

    // The provider is back: two good trials close it.
    f.provider.behave(Behaviour::Normal);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(f.breaker().await, "half_open");
    for case in ["SB-C1", "SB-C2", "SB-C3"] {
        expect_json(call(case.into()).await, 200).await;
    }
    let h = f.health().await;
    assert_eq!(
        (h["breaker"].as_str(), h["breaker_opened"].as_u64()),
        (Some("closed"), Some(2)),
        "{h}"
    );
    assert_eq!(f.provider.requests(), 9);
}

/// An answer the hub cannot vouch for — not JSON, a field of the wrong
/// type, larger than the service's limit (announced or streamed), an error
/// status — is a provider error, and none of its bytes reach the caller.
#[tokio::test]
async fn broken_answers_are_provider_errors_and_never_passed_on() {
    let f = Fixture::start_with(|s| s["limits"] = json!({"max_response_bytes": 1024})).await;
    f.grant_both().await;
    for (i, (behaviour, status, says)) in [
        (Behaviour::Junk, Some(200), "not JSON"),
        (Behaviour::WrongType, Some(200), "should be true or false"),
        // The provider answered 200, with too much.
        (Behaviour::Oversized, Some(200), "1024 bytes"),
        (Behaviour::OversizedChunked, Some(200), "1024 bytes"),
        (Behaviour::NotFound, Some(404), "status 404"),
    ]
    .into_iter()
    .enumerate()
    {
        f.provider.behave(behaviour);
        let case = format!("SB-J{i}");
        let resp = f.call(A, "status", &ask_a(&case, 1)).await;
        let p = problem(resp, 502, "provider_error").await;
        assert_eq!(p["provider_status"].as_u64(), status, "{behaviour:?}: {p}");
        assert!(
            p["detail"].as_str().unwrap().contains(says),
            "{behaviour:?}: {p}"
        );
        assert!(
            !p.to_string().contains(JUNK_MARKER),
            "{behaviour:?}: raw answer passed on: {p}"
        );
        let r = f.record(&case);
        assert_eq!(r["outcome"], "provider_failed", "{r}");
        assert!(
            !r.to_string().contains(JUNK_MARKER),
            "bodies are not logged by default: {r}"
        );
    }
    assert_eq!(f.provider.requests(), 5, "one attempt each");

    // A provider that is down altogether: nothing listens at its address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    f.register(|s| s["base_url"] = json!(format!("http://{closed}/api")))
        .await;
    let p = problem(
        f.call(A, "status", &ask_a("SB-J9", 1)).await,
        502,
        "provider_error",
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("cannot be reached"),
        "{p}"
    );
    assert!(p.get("provider_status").is_none(), "{p}");
    assert_eq!(f.record("SB-J9")["call"]["failure"], "unreachable");
}

/// A burst beyond the concurrency limit: the calls over it are refused at
/// once (503, never queued) and the provider never has more than the
/// limit in flight; over the rate limit, likewise.
#[tokio::test]
async fn a_burst_beyond_the_limits_is_refused_and_the_provider_never_sees_more() {
    let f = Fixture::start_with(|s| s["limits"] = json!({"max_concurrent": 2})).await;
    f.grant_both().await;
    f.provider.behave(Behaviour::Slow(300));
    let fr = &f;
    let calls = (0..10).map(|i| {
        let body = ask_a(&format!("SB-L{i}"), i);
        async move { fr.call(A, "status", &body).await }
    });
    let answers = futures::future::join_all(calls).await;
    let (mut ok, mut refused) = (0, 0);
    for resp in answers {
        match resp.status().as_u16() {
            200 => {
                expect_json(resp, 200).await;
                ok += 1;
            }
            _ => {
                let p = unavailable(resp).await;
                assert!(p["detail"].as_str().unwrap().contains("in flight"), "{p}");
                refused += 1;
            }
        }
    }
    assert!(ok >= 2 && refused >= 1, "{ok} answered, {refused} refused");
    assert_eq!(ok + refused, 10);
    assert_eq!(
        f.provider.requests(),
        ok,
        "refused calls never reach the provider"
    );
    assert!(
        f.provider.max_in_flight() <= 2,
        "the provider saw {} at once",
        f.provider.max_in_flight()
    );
    let h = f.health().await;
    assert_eq!(
        (h["in_flight"].as_u64(), h["refused"].as_u64()),
        (Some(0), Some(refused as u64)),
        "{h}"
    );

    // One call a second: the next one at once is refused with the wait.
    f.register(|s| s["limits"] = json!({"rate_per_sec": 1}))
        .await;
    f.provider.behave(Behaviour::Normal);
    let before = f.provider.requests();
    f.call_ok(A, "status", &ask_a("SB-R1", 1)).await;
    let p = unavailable(f.call(A, "status", &ask_a("SB-R2", 1)).await).await;
    assert!(
        p["detail"].as_str().unwrap().contains("1 calls a second"),
        "{p}"
    );
    assert_eq!(f.provider.requests(), before + 1);
}

/// A cached answer is served again for the same parameters without
/// calling the provider, but each caller gets what its own decision
/// releases; a cached answer of one endpoint is never another's; answers
/// expire after their TTL.
#[tokio::test]
async fn a_cached_answer_still_obeys_the_policy_of_each_caller() {
    let f = Fixture::start_with(|s| s["endpoints"][2]["cache_ttl_ms"] = json!(1_000)).await;
    f.grant_both().await;
    let (headers_a, a) = f
        .call_ok(
            A,
            "cached",
            &ask(MATTER_A, "SB-K1", json!({"citizen_id": citizen_id(1)})),
        )
        .await;
    assert_eq!(a["cached"], false);
    assert_eq!(a["data"]["name"], "张*");
    assert_eq!(f.provider.requests(), 1);

    let (headers_b, b) = f.call_ok(B, "cached", &ask_b("SB-K2", 1)).await;
    assert_eq!(b["cached"], true, "{b}");
    assert_eq!(f.provider.requests(), 1, "served from the cache");
    assert_eq!(
        b["data"],
        json!({"paid_up": true, "months": 36}),
        "B's own decision: {b}"
    );
    assert_eq!(denied_rule(&b, "name").as_deref(), Some("no_need"));
    assert!(!b.to_string().contains("张"), "{b}");
    // The same evidence: the answer is the one the provider gave A.
    for h in ["x-tongban-request-hash", "x-tongban-response-hash"] {
        assert_eq!(header(&headers_a, h), header(&headers_b, h), "{h}");
    }
    let rec = f.record("SB-K2");
    assert_eq!(
        (
            rec["call"]["cached"].as_bool(),
            rec["call"]["attempts"].as_u64()
        ),
        (Some(true), Some(0)),
        "{rec}"
    );
    // A caller the policy refuses is refused, cache or not.
    let p = problem(
        f.call(
            "public-security",
            "cached",
            &ask(
                "310000-GAJ-009",
                "SB-K3",
                json!({"citizen_id": citizen_id(1)}),
            ),
        )
        .await,
        403,
        "denied",
    )
    .await;
    assert_eq!(p["rule"], "no_need");

    // Another endpoint of the same provider URL has answers of its own.
    let (_, paid) = f
        .call_ok(
            A,
            "cached-paid",
            &ask(MATTER_A, "SB-K4", json!({"citizen_id": citizen_id(2)})),
        )
        .await;
    assert_eq!(paid["data"], json!({"paid_up": true}));
    let (_, full) = f
        .call_ok(
            A,
            "cached",
            &ask(MATTER_A, "SB-K5", json!({"citizen_id": citizen_id(2)})),
        )
        .await;
    assert_eq!(full["cached"], false, "not cached-paid's answer: {full}");
    assert_eq!(full["data"]["months"], 36, "{full}");
    assert_eq!(f.provider.requests(), 3);

    // After the TTL the provider is asked again.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (_, again) = f.call_ok(B, "cached", &ask_b("SB-K6", 1)).await;
    assert_eq!(again["cached"], false, "{again}");
    assert_eq!(f.provider.requests(), 4);
    assert_eq!(f.health().await["cache_hits"], 1);
}

/// A service the data office switched off answers every call with its
/// notice and Retry-After, without touching the provider; switched on, it
/// works again. Only the data office switches.
#[tokio::test]
async fn a_disabled_service_answers_with_its_notice() {
    let f = Fixture::start().await;
    f.grant_both().await;
    let notice = "系统升级，预计 18:00 恢复";
    let hub = &f.hub;
    let switch = move |who: &'static str, body: Value| async move {
        hub.put(&format!("/v1/services/{CODE}/switch"), who)
            .json(&body)
            .send()
            .await
            .unwrap()
    };
    problem(switch(A, json!({"enabled": false})).await, 403, "forbidden").await;
    let record = expect_json(
        switch("data-office", json!({"enabled": false, "notice": notice})).await,
        200,
    )
    .await;
    assert_eq!(
        (
            record["service"]["enabled"].as_bool(),
            record["service"]["disabled_notice"].as_str()
        ),
        (Some(false), Some(notice)),
        "{record}"
    );

    let p = unavailable(f.call(A, "status", &ask_a("SB-D1", 1)).await).await;
    assert_eq!(p["notice"], notice, "{p}");
    assert!(p["detail"].as_str().unwrap().contains(notice), "{p}");
    assert_eq!(f.provider.requests(), 0);
    assert_eq!(f.health().await["enabled"], false);
    let all = expect_json(
        f.hub.get("/v1/services/health", B).send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(
        (
            all[0]["resource"].as_str(),
            all[0]["enabled"].as_bool(),
            all[0]["refused"].as_u64()
        ),
        (Some(CODE), Some(false), Some(1)),
        "{all}"
    );
    let r = f.record("SB-D1");
    assert_eq!(
        (r["outcome"].as_str(), r["call"]["failure"].as_str()),
        (Some("provider_failed"), Some("disabled")),
        "{r}"
    );

    expect_json(switch("data-office", json!({"enabled": true})).await, 200).await;
    let (_, r) = f.call_ok(A, "status", &ask_a("SB-D2", 1)).await;
    assert_eq!(r["data"]["paid_up"], true);
    assert_eq!(f.provider.requests(), 1);
    let service = expect_json(
        f.hub
            .get(&format!("/v1/services/{CODE}"), A)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(
        service["service"].get("disabled_notice").is_none(),
        "the notice goes with the outage: {service}"
    );
}

/// Every call is one audit record; a released call's record holds the
/// request hash the caller got in its header and the provider can
/// recompute from what it received, and the hash of the exact answer the
/// provider sent; denied and failed calls are recorded with their outcome;
/// the chain verifies.
#[tokio::test]
async fn every_call_is_audited_with_hashes_both_sides_can_recompute() {
    let f = Fixture::start().await;
    f.grant_both().await;
    let mut get = ask_a("SB-A1", 1);
    get["subject"] = json!("某某公司经办人 王五");
    let (h_get, r_get) = f.call_ok(A, "status", &get).await;
    let (h_post, r_post) = f.call_ok(A, "check", &ask_a("SB-A2", 2)).await;
    let received = f.provider.received();
    let answered = f.provider.answered();
    for (i, (case, headers, answer)) in [("SB-A1", h_get, r_get), ("SB-A2", h_post, r_post)]
        .into_iter()
        .enumerate()
    {
        let rec = f.record(case);
        let call = &rec["call"];
        assert_eq!(rec["outcome"], "released", "{rec}");
        assert_eq!(rec["consumer"], "sh-zwfw");
        let request_hash = received[i].hash();
        assert_eq!(
            call["request_hash"], request_hash,
            "{case}: the provider recomputes it: {rec}"
        );
        assert_eq!(
            header(&headers, "x-tongban-request-hash"),
            request_hash,
            "{case}"
        );
        assert_eq!(answer["request_hash"], request_hash, "{case}");
        let response_hash = sha256(&answered[i]);
        assert_eq!(
            call["response_hash"], response_hash,
            "{case}: the answer as sent: {rec}"
        );
        assert_eq!(
            header(&headers, "x-tongban-response-hash"),
            response_hash,
            "{case}"
        );
        assert_eq!(answer["response_hash"], response_hash, "{case}");
        assert_eq!(
            (call["provider_status"].as_u64(), call["attempts"].as_u64()),
            (Some(200), Some(1)),
            "{rec}"
        );
        assert_eq!(call["endpoint"], answer["endpoint"]);
        assert_eq!(call["request_id"], answer["request_id"]);
        assert_eq!(
            rec["keys"].as_array().unwrap().len(),
            1,
            "the key, hashed: {rec}"
        );
        assert!(
            call["request_body"].is_null() && call["response_body"].is_null(),
            "no bodies by default: {rec}"
        );
    }
    assert_eq!(
        f.record("SB-A1")["items"],
        json!([
            "citizen_id",
            "year",
            "paid_up",
            "months",
            "name",
            "secret_note"
        ])
    );
    let subject = &f.record("SB-A1")["call"]["subject"];
    assert!(
        subject.as_str().is_some_and(|s| !s.contains("王五")),
        "a keyed hash: {subject}"
    );

    // A denied call and a failed one are recorded too.
    let mut only_name = ask_b("SB-A3", 3);
    only_name["items"] = json!(["name"]);
    problem(f.call(B, "status", &only_name).await, 403, "denied").await;
    f.provider.behave(Behaviour::Failing);
    problem(
        f.call(A, "status", &ask_a("SB-A4", 4)).await,
        502,
        "provider_error",
    )
    .await;
    let denied = f.record("SB-A3");
    assert_eq!(
        (denied["outcome"].as_str(), denied["consumer"].as_str()),
        (Some("denied"), Some("xh-zwfw")),
        "{denied}"
    );
    let failed = f.record("SB-A4");
    assert_eq!(failed["outcome"], "provider_failed", "{failed}");
    assert_eq!(
        (
            failed["call"]["provider_status"].as_u64(),
            failed["call"]["failure"].as_str()
        ),
        (Some(500), Some("provider_status")),
        "{failed}"
    );
    assert_eq!(failed["call"]["request_hash"], f.provider.last().hash());
    assert_eq!(
        failed["call"]["response_hash"],
        sha256(f.provider.answered().last().unwrap())
    );

    let log = f
        .hub
        .audit_records()
        .iter()
        .map(Value::to_string)
        .collect::<String>();
    for clear in [citizen_id(1), citizen_id(4), "王五".to_string()] {
        assert!(!log.contains(&clear), "{clear} in the log in clear");
    }
    f.hub.assert_audit_chain_intact();
}

/// A need's daily quota counts calls: over it, 429 with Retry-After,
/// recorded, and the provider is not called. A call refused for its own
/// input (a body over the service's request limit) uses none of it.
#[tokio::test]
async fn a_need_quota_limits_calls() {
    let f = Fixture::start_with(|s| s["limits"] = json!({"max_request_bytes": 16})).await;
    f.grant(
        A,
        MATTER_A,
        &["citizen_id", "paid_up"],
        json!({"daily_quota": 2}),
    )
    .await;
    let p = problem(
        f.call(A, "check", &ask_a("SB-Q0", 1)).await,
        413,
        "too_large",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("16"), "{p}");
    assert!(
        f.hub.audit_records().is_empty(),
        "input refused, nothing decided"
    );
    for case in ["SB-Q1", "SB-Q2"] {
        f.call_ok(A, "status", &ask_a(case, 1)).await;
    }
    let resp = f.call(A, "status", &ask_a("SB-Q3", 1)).await;
    assert!(resp.headers().get("retry-after").is_some());
    problem(resp, 429, "quota_exceeded").await;
    assert_eq!(f.provider.requests(), 2);
    assert_eq!(f.record("SB-Q3")["outcome"], "quota_exceeded");
}

/// A definition that breaks a rule is refused with the field at fault,
/// and nothing is saved: neither the service nor its resource; a bad
/// change to a registered service leaves the one in force. Only the data
/// office registers.
#[tokio::test]
async fn invalid_service_definitions_are_refused_and_save_nothing() {
    let hub = Hub::start(None).await;
    let provider = Provider::start().await;
    let hub = &hub;
    let post = move |who: &'static str, reg: Value| async move {
        hub.post("/v1/services", who)
            .json(&reg)
            .send()
            .await
            .unwrap()
    };
    let nothing_saved = move || async move {
        problem(
            hub.get(&format!("/v1/services/{CODE}"), A)
                .send()
                .await
                .unwrap(),
            404,
            "not_found",
        )
        .await;
        problem(
            hub.get(&format!("/v1/catalog/resources/{CODE}"), A)
                .send()
                .await
                .unwrap(),
            404,
            "not_found",
        )
        .await;
        let all = expect_json(hub.get("/v1/services", A).send().await.unwrap(), 200).await;
        assert_eq!(all, json!([]));
    };
    // Each change breaks one rule; the field the answer must name.
    let broken: Vec<(Change, &str)> = vec![
        (
            Box::new(|s| s["endpoints"][0]["path"] = json!("/contributions/{citizen_id}/{year}")),
            "service.endpoints[0].path",
        ),
        (
            Box::new(|s| s["endpoints"][0]["timeout_ms"] = json!(61_000)),
            "service.endpoints[0].timeout_ms",
        ),
        (
            Box::new(|s| s["endpoints"][1]["response"][0]["item"] = json!("salary")),
            "service.endpoints[1].response[0].item",
        ),
        (
            Box::new(|s| s["endpoints"][3]["method"] = json!("POST")),
            "service.endpoints[3].cache_ttl_ms",
        ),
        (
            Box::new(|s| s["base_url"] = json!("ftp://rsj.example")),
            "service.base_url",
        ),
        (
            Box::new(|s| s["breaker"] = json!({"window": 4, "min_calls": 5})),
            "service.breaker.min_calls",
        ),
    ];
    for (change, field) in &broken {
        let mut reg = registration(&provider.base_url);
        change(&mut reg["service"]);
        let p = problem(post("data-office", reg).await, 422, "invalid_input").await;
        assert_eq!(p["field"], *field, "{p}");
        nothing_saved().await;
    }
    problem(
        post(A, registration(&provider.base_url)).await,
        403,
        "forbidden",
    )
    .await;
    nothing_saved().await;

    // Registered, then a broken change: the registered one stays.
    let record = expect_json(
        post("data-office", registration(&provider.base_url)).await,
        201,
    )
    .await;
    assert_eq!(
        (
            record["resource"].as_str(),
            record["provider"].as_str(),
            record["version"].as_i64()
        ),
        (Some(CODE), Some(PROVIDER), Some(1)),
        "{record}"
    );
    let mut reg = registration(&provider.base_url);
    (broken[1].0)(&mut reg["service"]);
    problem(post("data-office", reg).await, 422, "invalid_input").await;
    let kept = expect_json(
        hub.get(&format!("/v1/services/{CODE}"), A)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        (
            kept["version"].as_i64(),
            kept["service"]["endpoints"][0]["timeout_ms"].as_u64()
        ),
        (Some(1), Some(1000)),
        "{kept}"
    );
}

/// A provider's OpenAPI document becomes a draft service: one endpoint per
/// operation, its parameters and answer properties as conditional items.
/// Nothing can be called before the data office publishes it; then it is
/// called like any other.
#[tokio::test]
async fn an_openapi_import_is_a_draft_until_published() {
    let hub = Hub::start(None).await;
    let provider = Provider::start().await;
    let code = "302/000902";
    let document = json!({
        "openapi": "3.0.3",
        "info": {"title": "社保缴费查询", "version": "2"},
        "servers": [{"url": provider.base_url}],
        "paths": {"/contributions/{citizenId}": {"get": {
            "operationId": "getContributionStatus",
            "parameters": [{"name": "citizenId", "in": "path", "required": true,
                            "description": "公民身份号码", "schema": {"type": "string"}}],
            "responses": {"200": {"content": {"application/json": {"schema": {
                "type": "object",
                "properties": {"paid_up": {"type": "boolean"}, "code": {"type": "integer"}}
            }}}}}
        }}}
    });
    let import = json!({"code": code, "provider": PROVIDER, "document": document});
    let import_as = |who: &str| {
        hub.post("/v1/services/import-openapi", who)
            .json(&import)
            .send()
    };
    problem(import_as(A).await.unwrap(), 403, "forbidden").await;
    let record = expect_json(import_as("data-office").await.unwrap(), 201).await;
    let ep = &record["service"]["endpoints"][0];
    assert_eq!(
        (
            ep["name"].as_str(),
            ep["method"].as_str(),
            ep["path"].as_str()
        ),
        (
            Some("get-contribution-status"),
            Some("GET"),
            Some("/contributions/{citizen_id}")
        ),
        "{record}"
    );
    assert_eq!(
        ep["params"],
        json!([{"item": "citizen_id", "in": "path", "required": true, "key": "citizen_id"}])
    );
    let resource = expect_json(
        hub.get(&format!("/v1/catalog/resources/{code}"), A)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(resource["status"], "draft", "{resource}");

    hub.grant_need(
        A,
        &json!({"resource": code, "items": ["citizen_id", "paid_up"], "matter": MATTER_A,
                "mode": "call", "justification": "核验缴费"}),
        Some(PROVIDER),
    )
    .await;
    let call = |case: &str| {
        hub.post(&format!("/v1/call/{code}/get-contribution-status"), A)
            .json(&ask(MATTER_A, case, json!({"citizen_id": citizen_id(1)})))
            .send()
    };
    let p = problem(call("SB-O1").await.unwrap(), 403, "denied").await;
    assert_eq!(p["rule"], "resource_not_published", "{p}");
    assert_eq!(provider.requests(), 0);

    expect_json(
        hub.post(
            &format!("/v1/catalog/resources/{code}/publish"),
            "data-office",
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    let r = expect_json(call("SB-O2").await.unwrap(), 200).await;
    assert_eq!(
        r["data"],
        json!({"paid_up": true}),
        "code is not in the need: {r}"
    );
    assert_eq!(
        provider.last().path_and_query,
        format!("/api/contributions/{}", citizen_id(1))
    );
}

/// Bodies are kept in the audit record only when the service opts in, and
/// then only up to its cap: the first bytes of what the provider received
/// and of what it answered.
#[tokio::test]
async fn bodies_are_logged_only_when_the_service_opts_in_up_to_its_cap() {
    let f = Fixture::start_with(|s| s["log_body_bytes"] = json!(12)).await;
    f.grant_both().await;
    let check = ask(MATTER_A, "SB-LOG", json!({"citizen_id": citizen_id(1)}));
    let resp = f.call(A, "check", &check).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let call = &f.record("SB-LOG")["call"];
    let sent = f.provider.last().body;
    let answered = f.provider.answered().last().unwrap().clone();
    assert!(
        sent.len() > 12 && answered.len() > 12,
        "bodies longer than the cap"
    );
    let first = |b: &[u8]| json!(String::from_utf8_lossy(&b[..12]));
    assert_eq!(call["request_body"], first(&sent), "{call}");
    assert_eq!(call["response_body"], first(&answered), "{call}");

    // Without the opt-in (the default), hashes only.
    f.register(|_| {}).await;
    let check = ask(MATTER_A, "SB-NOLOG", json!({"citizen_id": citizen_id(1)}));
    assert_eq!(f.call(A, "check", &check).await.status(), 200);
    let call = &f.record("SB-NOLOG")["call"];
    assert!(
        call.get("request_body").is_none() && call.get("response_body").is_none(),
        "{call}"
    );
    assert_eq!(call["request_hash"].as_str().unwrap().len(), 64, "{call}");
}
