//! Interface sharing (接口共享): a department's own validation API, called
//! in real time through the hub under the same lists as every other
//! release.
//!
//! A call is one more path through the access pipeline
//! (`tongban_core::access`), in this order, and nothing reaches the
//! provider before the hub has said yes:
//!
//! 1. the service and endpoint exist, matter and case are stated, every
//!    parameter is declared, of its item's type, keys pass their check
//!    digits (422), and the request to the provider fits its size limit
//!    (413); not recorded: nothing was decided;
//! 2. **one decision** over the endpoint's parameter items and the response
//!    items asked for (mode `call`): every parameter must be permitted and at
//!    least one response item released, else 403, recorded;
//! 3. the need's **quota** (429, recorded);
//! 4. the service is enabled, its **circuit breaker** permits, the **rate**
//!    and **concurrency** limits toward the provider have room, else 503
//!    `provider_unavailable` with `Retry-After` (recorded); an idempotent
//!    endpoint with a cache TTL may answer from the **cache** instead;
//! 5. the provider is called over pooled keep-alive connections, each
//!    attempt under the endpoint's timeout; idempotent endpoints are retried
//!    under the **retry budget**;
//! 6. the answer is **checked** against every declared field (a broken
//!    answer is a provider error and is never passed on), then **projected**
//!    to the released items under their masks;
//! 7. a durable **audit** record with the call's evidence — provider status,
//!    SHA-256 of the request as sent and of the answer as received — before
//!    the answer leaves.
//!
//! # Layout
//! - this file: [`Services`] (the registry of runtimes, reloaded from the
//!   catalog), [`Services::call`] (the stages above), the call's input and
//!   output shapes;
//! - [`breaker`]: the circuit breaker (resilience4j semantics);
//! - [`budget`]: the retry budget (Envoy semantics);
//! - [`backend`]: one service's HTTP client, TLS, an attempt with its timeout
//!   and size limit, the request hash;
//! - [`answer`]: schema check, projection and masks of an answer;
//! - [`health`]: per-service health data;
//! - [`error`]: the crate's error, with its stable codes.
//!
//! Crate ladder (docs/architecture.md): above core (the pipeline), below
//! the console and the server.

pub mod answer;
pub mod backend;
pub mod breaker;
pub mod budget;
pub mod error;
pub mod health;

pub use error::{Error, Result};

use backend::{Attempt, Backend, Sent};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tongban_audit::{CallEvidence, Outcome};
use tongban_catalog::Store;
use tongban_catalog::services::{
    Endpoint, KeyKind, Param, ParamIn, Scalar, ServiceRecord, scalar_type,
};
use tongban_core::{Access, Ask};
use tongban_policies::Mode;
use utoipa::ToSchema;

/// A call as the consumer sends it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    /// The matter (事项) code the call serves.
    #[schema(example = "310000-SHBX-001")]
    pub matter: String,
    /// The case (办件) number.
    #[schema(example = "BJ2026120100042")]
    pub case: String,
    /// The person or company the case is for, as the caller's own login
    /// authenticated it (X-Road's `X-Road-UserId`): sent to the provider as
    /// `X-Tongban-UserId`, recorded as a keyed hash.
    #[serde(default)]
    pub subject: Option<String>,
    /// The caller's id for this call (printable ASCII, at most 128); the hub
    /// makes one when absent. Sent to the provider and recorded.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Parameter values by item name, e.g. `{"citizen_id": "3101…"}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// Response items wanted; empty asks for all of the endpoint's.
    #[serde(default)]
    pub items: Vec<String>,
}

/// What the consumer gets back.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallAnswer {
    pub resource: String,
    pub endpoint: String,
    pub request_id: String,
    /// The released response items, masked as the decision says.
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    /// Items asked for that were not released, and why.
    pub denied: Vec<DeniedItem>,
    /// The provider's HTTP status (of the cached answer, when cached).
    pub provider_status: u16,
    /// Served from the hub's response cache.
    pub cached: bool,
    /// SHA-256 (hex) of the request as sent to the provider; also the
    /// `X-Tongban-Request-Hash` header.
    pub request_hash: String,
    /// SHA-256 (hex) of the provider's answer as received; also the
    /// `X-Tongban-Response-Hash` header.
    pub response_hash: String,
    /// Released items of the call's subject that an open objection on
    /// this service's resource disputes (set by the transport, which holds
    /// the marks). Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disputed: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeniedItem {
    pub item: String,
    pub rule: String,
    pub reason: String,
}

/// The registry of service runtimes: one per registered service, built
/// from its definition, reloaded when the catalog changes. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    by_code: Arc<RwLock<HashMap<String, Arc<Service>>>>,
    hash_key: Arc<str>,
    /// Distinguishes request ids the hub makes.
    counter: Arc<std::sync::atomic::AtomicU64>,
}

/// One service at run time.
pub struct Service {
    record: ServiceRecord,
    /// The version of the resource whose items it was built from.
    resource_version: i64,
    endpoints: HashMap<String, EndpointRt>,
    /// None when the client cannot be built (its TLS files are gone): every
    /// call is refused with the reason.
    backend: std::result::Result<Backend, String>,
    breaker: breaker::Breaker,
    budget: budget::Budget,
    bulkhead: Arc<tokio::sync::Semaphore>,
    limiter: governor::DefaultDirectRateLimiter,
    /// Answers by endpoint name and request hash.
    cache: Mutex<HashMap<String, Cached>>,
    health: Arc<health::Health>,
}

struct EndpointRt {
    def: Endpoint,
    params: Vec<(Param, Scalar)>,
    declared: Vec<answer::Declared>,
}

/// An answer's declared fields, checked: item → value, in declaration order.
type Checked = Arc<Vec<(String, Value)>>;

/// The parameters of a call as they will be sent, and its keys.
struct Params {
    values: Vec<(Param, Value)>,
    /// Key parameters, normalised and check-digit verified.
    keys: Vec<String>,
}

#[derive(Clone)]
struct Cached {
    until: Instant,
    status: u16,
    checked: Checked,
    response_hash: String,
}

/// Most answers a service's cache keeps.
const CACHE_ENTRIES: usize = 10_000;

impl Services {
    /// Builds a runtime for every registered service.
    pub async fn load(store: &dyn Store, hash_key: Arc<str>) -> Result<Services> {
        let services = Services {
            by_code: Arc::default(),
            hash_key,
            counter: Arc::default(),
        };
        services.reload(store).await?;
        Ok(services)
    }

    /// Rebuilds the runtimes whose definitions changed. Breaker state and
    /// health counters survive a change that keeps the breaker settings.
    pub async fn reload(&self, store: &dyn Store) -> Result<()> {
        let records = store.list_services().await?;
        let mut next = HashMap::new();
        for record in records {
            let current = self.get(&record.resource);
            // The resource's items (their types) are part of the runtime:
            // a change to either rebuilds it.
            let resource = store.get_resource(&record.resource).await?;
            if let Some(c) = &current
                && c.record.version == record.version
                && c.record.updated_at == record.updated_at
                && c.resource_version == resource.version
            {
                next.insert(record.resource.clone(), c.clone());
                continue;
            }
            let code = record.resource.clone();
            let service = Service::build(record, &resource, current.as_deref());
            next.insert(code, Arc::new(service));
        }
        *self.by_code.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    fn get(&self, code: &str) -> Option<Arc<Service>> {
        self.by_code
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(code)
            .cloned()
    }

    /// Health data of every service, by resource code.
    pub fn health(&self) -> Vec<health::HealthReport> {
        let mut all: Vec<_> = self
            .by_code
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|s| s.report())
            .collect();
        all.sort_by(|a, b| a.resource.cmp(&b.resource));
        all
    }

    /// Health data of one service.
    pub fn health_of(&self, code: &str) -> Option<health::HealthReport> {
        self.get(code).map(|s| s.report())
    }

    /// Checks that a definition's TLS settings can be used (the CA parses,
    /// the identity file reads), before it is saved.
    pub fn check_tls(spec: &tongban_catalog::services::ServiceSpec) -> Result<()> {
        Backend::new(spec)
            .map(drop)
            .map_err(|message| Error::Tls { message })
    }

    /// Calls `endpoint` of the service of `resource` for `consumer`, through
    /// every stage of the pipeline (see the crate's documentation).
    pub async fn call(
        &self,
        access: &Access,
        consumer: &str,
        resource: &str,
        endpoint: &str,
        req: &CallRequest,
    ) -> Result<CallAnswer> {
        let started = Instant::now();
        let service = self.get(resource).ok_or_else(|| Error::NoService {
            resource: resource.to_string(),
        })?;
        let ep = service
            .endpoints
            .get(endpoint)
            .ok_or_else(|| Error::NoEndpoint {
                resource: resource.to_string(),
                endpoint: endpoint.to_string(),
                known: service.endpoints.keys().cloned().collect(),
            })?;
        let ask = Ask {
            consumer,
            resource,
            matter: &req.matter,
            case: &req.case,
            mode: Mode::Call,
            started,
        };
        // Stage 1: the input, before anything is decided.
        ask.check()?;
        let request_id = self.request_id(req.request_id.as_deref())?;
        let subject = check_subject(req.subject.as_deref())?;
        let Params { values, keys } = check_params(ep, &req.params)?;
        let items = items_asked(ep, &req.items)?;
        // The request as it will be sent (and its size checked) is input
        // too: one the hub would refuse to send uses no quota.
        let sent = Sent::build(&service, &ep.def, &values, &request_id)?;

        // Stage 2: one decision over parameters and response items.
        let grant = access.open(&ask, &items, &keys).await?;
        let decision = grant.decision();
        let n_params = ep.params.len();
        let refusal = decision.items[..n_params]
            .iter()
            .find(|d| d.release.is_none())
            .map(|d| (d.rule, format!("parameter '{}': {}", d.item, d.reason)))
            .or_else(|| {
                let response = &decision.items[n_params..];
                response
                    .iter()
                    .all(|d| d.release.is_none())
                    .then(|| match response.first() {
                        Some(d) => (d.rule, format!("{}: {}", d.item, d.reason)),
                        None => (
                            decision.rule,
                            "no response item may be released".to_string(),
                        ),
                    })
            });
        if let Some((rule, detail)) = refusal {
            // The decision may permit other items (an unconditional field,
            // say), and then its rule is the one that released them. The
            // call is refused by the item that refused it: the answer and
            // the record name that item's rule.
            let mut refused = decision.clone();
            refused.permitted = false;
            refused.rule = rule;
            access
                .record(&ask, &refused, &keys, Outcome::Denied)
                .await?;
            return Err(tongban_core::Error::Denied {
                rule: rule.to_string(),
                detail,
            }
            .into());
        }
        // Stage 3: the quota.
        access.take_quota(&ask, &grant, &keys).await?;

        // Stages 4–6: the provider.
        let mut evidence = CallEvidence {
            endpoint: ep.def.name.clone(),
            request_id: request_id.clone(),
            subject: subject.map(|s| access.audit().key_hash(s)),
            provider_status: None,
            request_hash: Some(sent.hash.clone()),
            response_hash: None,
            attempts: 0,
            cached: false,
            provider_us: 0,
            failure: None,
            request_body: service.logged(sent.body.as_deref()),
            response_body: None,
        };
        let outcome = service
            .answer(ep, &sent, &ask, subject, &mut evidence)
            .await;
        service.count(resource, outcome.as_ref().err(), &evidence);
        let (status, checked) = match outcome {
            Ok(ok) => ok,
            Err(e) => {
                evidence.failure = Some(e.reason().to_string());
                access
                    .record_call(&ask, decision, &keys, Outcome::ProviderFailed, &evidence)
                    .await?;
                return Err(e);
            }
        };
        let data = answer::project(&checked, decision, self.hash_key.as_bytes());

        // Stage 7: the record, then the answer.
        access
            .record_call(&ask, decision, &keys, Outcome::Released, &evidence)
            .await?;
        Ok(CallAnswer {
            resource: resource.to_string(),
            endpoint: ep.def.name.clone(),
            request_id,
            data,
            denied: decision.items[n_params..]
                .iter()
                .filter(|d| d.release.is_none())
                .map(|d| DeniedItem {
                    item: d.item.clone(),
                    rule: d.rule.to_string(),
                    reason: d.reason.clone(),
                })
                .collect(),
            provider_status: status,
            cached: evidence.cached,
            request_hash: sent.hash,
            response_hash: evidence.response_hash.unwrap_or_default(),
            disputed: Vec::new(),
        })
    }

    fn request_id(&self, given: Option<&str>) -> Result<String> {
        match given {
            Some(id) => {
                if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(invalid(
                        "request_id",
                        "request_id: 1–128 printable ASCII characters, no spaces",
                    ));
                }
                Ok(id.to_string())
            }
            None => {
                let n = self
                    .counter
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let t = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f");
                Ok(format!("tb-{t}-{n}"))
            }
        }
    }
}

impl Service {
    fn build(
        record: ServiceRecord,
        resource: &tongban_catalog::Resource,
        previous: Option<&Service>,
    ) -> Service {
        let types: HashMap<&str, &str> = resource
            .spec
            .items
            .iter()
            .map(|i| (i.name.as_str(), i.data_type.as_str()))
            .collect();
        // Definitions are checked against their items when saved; an item
        // whose type a service cannot carry is treated as text.
        let scalar = |item: &str| {
            types
                .get(item)
                .and_then(|t| scalar_type(t))
                .unwrap_or(Scalar::Text)
        };
        let spec = &record.service;
        let endpoints = spec
            .endpoints
            .iter()
            .map(|e| {
                let rt = EndpointRt {
                    params: e
                        .params
                        .iter()
                        .map(|p| (p.clone(), scalar(&p.item)))
                        .collect(),
                    declared: e
                        .response
                        .iter()
                        .map(|f| answer::Declared::new(f.clone(), scalar(&f.item)))
                        .collect(),
                    def: e.clone(),
                };
                (e.name.clone(), rt)
            })
            .collect();
        let breaker = match previous {
            Some(p) if p.breaker.settings() == &spec.breaker => p.breaker.clone(),
            _ => breaker::Breaker::new(spec.breaker.clone()),
        };
        let rate = std::num::NonZeroU32::new(spec.limits.rate_per_sec.max(1)).expect("≥ 1");
        let backend = Backend::new(spec);
        if let Err(e) = &backend {
            tracing::error!(service = %record.resource, error = %e, "service cannot be called");
        }
        Service {
            resource_version: resource.version,
            endpoints,
            backend,
            breaker,
            budget: budget::Budget::new(spec.retry.budget_pct, spec.retry.min_concurrent),
            bulkhead: Arc::new(tokio::sync::Semaphore::new(
                spec.limits.max_concurrent as usize,
            )),
            limiter: governor::RateLimiter::direct(
                governor::Quota::per_second(rate).allow_burst(rate),
            ),
            cache: Mutex::default(),
            health: previous.map(|p| p.health.clone()).unwrap_or_default(),
            record,
        }
    }

    fn report(&self) -> health::HealthReport {
        let spec = &self.record.service;
        let mut r = health::HealthReport {
            resource: self.record.resource.clone(),
            name: self.record.name.clone(),
            provider: self.record.provider.clone(),
            enabled: spec.enabled,
            breaker: self.breaker.state(Instant::now()),
            breaker_opened: self.breaker.times_opened(),
            calls: 0,
            successes: 0,
            failures: 0,
            timeouts: 0,
            refused: 0,
            cache_hits: 0,
            last_success: None,
            last_failure: None,
            last_failure_reason: None,
            in_flight: (spec.limits.max_concurrent as usize)
                .saturating_sub(self.bulkhead.available_permits()) as u32,
            latency_window: 0,
            latency_min_ms: None,
            latency_avg_ms: None,
            latency_max_ms: None,
        };
        self.health.fill(&mut r);
        r
    }

    /// The first bytes of a body, when the service logs bodies.
    fn logged(&self, body: Option<&[u8]>) -> Option<String> {
        let cap = self.record.service.log_body_bytes? as usize;
        let body = body?;
        Some(String::from_utf8_lossy(&body[..body.len().min(cap)]).into_owned())
    }

    /// Stages 4–6: availability, cache, the attempts, the checked answer.
    async fn answer(
        &self,
        ep: &EndpointRt,
        sent: &Sent,
        ask: &Ask<'_>,
        subject: Option<&str>,
        evidence: &mut CallEvidence,
    ) -> Result<(u16, Checked)> {
        let spec = &self.record.service;
        if !spec.enabled {
            self.health.note(health::Ended::Refused);
            return Err(Error::Disabled {
                notice: spec.disabled_notice.clone(),
            });
        }
        let cacheable = ep.def.cache_ttl_ms.filter(|_| ep.def.is_idempotent());
        // Per endpoint: two endpoints may call the same provider URL with
        // different declared fields, and an answer is checked against (and
        // projected from) its own endpoint's fields only.
        let cache_key = format!("{}\n{}", ep.def.name, sent.hash);
        if cacheable.is_some()
            && let Some(hit) = self.cached(&cache_key)
        {
            self.health.note(health::Ended::CacheHit);
            evidence.cached = true;
            evidence.provider_status = Some(hit.status);
            evidence.response_hash = Some(hit.response_hash.clone());
            return Ok((hit.status, hit.checked));
        }
        let backend = self.backend.as_ref().map_err(|reason| Error::Unavailable {
            reason: "misconfigured",
            detail: format!("the hub cannot reach this service: {reason}"),
            retry_after_secs: 60,
        })?;
        let refuse = |reason: &'static str, detail: String, wait: Duration| {
            self.health.note(health::Ended::Refused);
            Error::Unavailable {
                reason,
                detail,
                retry_after_secs: wait.as_secs() + 1,
            }
        };
        let mut permit = match self.breaker.try_acquire(Instant::now()) {
            Ok(p) => p,
            Err(breaker::Refusal::Open(wait)) => {
                return Err(refuse(
                    "breaker_open",
                    format!(
                        "the provider failed too often; the circuit breaker is open for {} s more",
                        wait.as_secs() + 1
                    ),
                    wait,
                ));
            }
            Err(breaker::Refusal::TrialsTaken) => {
                return Err(refuse(
                    "breaker_half_open",
                    "the circuit breaker is half-open and its trial calls are taken".into(),
                    Duration::ZERO,
                ));
            }
        };
        if let Err(not_until) = self.limiter.check() {
            use governor::clock::{Clock, DefaultClock};
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(refuse(
                "rate_limit",
                format!(
                    "the hub sends this provider at most {} calls a second",
                    spec.limits.rate_per_sec
                ),
                wait,
            ));
        }
        let Ok(_slot) = self.bulkhead.clone().try_acquire_owned() else {
            return Err(refuse(
                "concurrency_limit",
                format!(
                    "{} calls to this provider are in flight, its limit",
                    spec.limits.max_concurrent
                ),
                Duration::ZERO,
            ));
        };
        let _in_flight = self.budget.call();
        let mut _retry = None;
        let mut attempt_no = 0;
        loop {
            attempt_no += 1;
            evidence.attempts = attempt_no;
            let t0 = Instant::now();
            let attempt = backend
                .send(sent, &ep.def, &spec.limits, ask, subject)
                .await;
            let took = t0.elapsed();
            evidence.provider_us += took.as_micros() as u64;
            let result = self.classify(ep, attempt, evidence);
            let failed = matches!(&result, Err(e) if e.counts_as_failure());
            permit.record(failed, took, Instant::now());
            match result {
                Ok((status, checked)) => {
                    self.health.note(health::Ended::Success {
                        provider_us: took.as_micros() as u64,
                    });
                    if let Some(ttl) = cacheable {
                        self.remember(&cache_key, status, &checked, evidence, ttl);
                    }
                    return Ok((status, checked));
                }
                Err(e) => {
                    let retry = e.retryable()
                        && ep.def.is_idempotent()
                        && attempt_no < spec.retry.max_attempts;
                    let next = retry.then(|| self.budget.retry()).flatten().and_then(|r| {
                        self.breaker
                            .try_acquire(Instant::now())
                            .ok()
                            .map(|p| (r, p))
                    });
                    let Some((r, p)) = next else {
                        self.health.note(health::Ended::Failure {
                            provider_us: Some(took.as_micros() as u64),
                            reason: e.reason(),
                            timeout: matches!(e, Error::ProviderTimeout { .. }),
                        });
                        return Err(e);
                    };
                    _retry = Some(r);
                    permit = p;
                    tokio::time::sleep(backoff(spec.retry.backoff_ms, attempt_no)).await;
                }
            }
        }
    }

    /// One call in Prometheus' terms: by service and outcome (`ok` or the
    /// failure's reason), the provider's time, the breaker's state after it.
    fn count(&self, resource: &str, failure: Option<&Error>, evidence: &CallEvidence) {
        let outcome = failure.map_or("ok", |e| e.reason());
        metrics::counter!("tongban_service_calls_total",
            "service" => resource.to_string(), "outcome" => outcome)
        .increment(1);
        if evidence.provider_us > 0 {
            metrics::histogram!("tongban_service_call_duration_seconds",
                "service" => resource.to_string())
            .record(evidence.provider_us as f64 / 1e6);
        }
        let state = match self.breaker.state(Instant::now()) {
            breaker::State::Closed => 0.0,
            breaker::State::HalfOpen => 1.0,
            breaker::State::Open => 2.0,
        };
        metrics::gauge!("tongban_service_breaker_state", "service" => resource.to_string())
            .set(state);
    }

    /// An attempt's result as an answer or an error, with its evidence.
    fn classify(
        &self,
        ep: &EndpointRt,
        attempt: Attempt,
        evidence: &mut CallEvidence,
    ) -> Result<(u16, Checked)> {
        let timeout_ms = ep.def.timeout_ms;
        let (status, body) = match attempt {
            Attempt::Answered { status, body } => (status, body),
            Attempt::TimedOut => return Err(Error::ProviderTimeout { timeout_ms }),
            Attempt::Unreachable(detail) => return Err(Error::Unreachable { detail }),
            Attempt::TooLarge { limit, status } => {
                evidence.provider_status = Some(status);
                return Err(Error::ProviderBroken {
                    status: Some(status),
                    detail: format!(
                        "the provider's answer is larger than the service's limit of {limit} bytes"
                    ),
                });
            }
        };
        evidence.provider_status = Some(status);
        evidence.response_hash = Some(backend::sha256_hex(&body));
        evidence.response_body = self.logged(Some(&body));
        if !(200..300).contains(&status) {
            return Err(Error::ProviderStatus { status });
        }
        let value: Value = serde_json::from_slice(&body).map_err(|e| Error::ProviderBroken {
            status: Some(status),
            detail: format!("the provider's answer is not JSON ({e})"),
        })?;
        let checked =
            answer::check(&value, &ep.declared).map_err(|detail| Error::ProviderBroken {
                status: Some(status),
                detail: format!("the provider's answer breaks its declared schema: {detail}"),
            })?;
        Ok((status, Arc::new(checked)))
    }

    fn cached(&self, key: &str) -> Option<Cached> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(key).filter(|c| c.until > Instant::now()).cloned()
    }

    fn remember(
        &self,
        key: &str,
        status: u16,
        checked: &Checked,
        evidence: &CallEvidence,
        ttl_ms: u64,
    ) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if cache.len() >= CACHE_ENTRIES {
            cache.retain(|_, c| c.until > now);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(
            key.to_string(),
            Cached {
                until: now + Duration::from_millis(ttl_ms),
                status,
                checked: checked.clone(),
                response_hash: evidence.response_hash.clone().unwrap_or_default(),
            },
        );
    }
}

/// Exponential backoff with jitter (50–100 % of the step), so retries of
/// many calls do not arrive together.
fn backoff(base_ms: u64, attempt: u32) -> Duration {
    let step = base_ms.saturating_mul(1 << (attempt - 1).min(6));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let jitter = u64::from(nanos % 1000);
    Duration::from_micros(step * 500 + step * jitter / 2)
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Access(tongban_core::Error::invalid(field, message))
}

fn check_subject(subject: Option<&str>) -> Result<Option<&str>> {
    match subject.map(str::trim) {
        None => Ok(None),
        Some(s) if s.is_empty() || s.chars().count() > 64 || s.chars().any(char::is_control) => {
            Err(invalid(
                "subject",
                "subject: 1–64 characters without control characters",
            ))
        }
        Some(s) => Ok(Some(s)),
    }
}

/// Each parameter's value as text (what goes into the path, query or
/// body), and the keys among them, normalised (trimmed, upper-cased) and
/// check-digit verified.
fn check_params(ep: &EndpointRt, given: &Map<String, Value>) -> Result<Params> {
    if let Some(unknown) = given
        .keys()
        .find(|k| !ep.params.iter().any(|(p, _)| &p.item == *k))
    {
        let known: Vec<_> = ep.params.iter().map(|(p, _)| p.item.as_str()).collect();
        return Err(invalid(
            &format!("params.{unknown}"),
            format!(
                "params.{unknown}: not a parameter of '{}'; its parameters are {}",
                ep.def.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    let mut values = Vec::new();
    let mut keys = Vec::new();
    for (param, scalar) in &ep.params {
        let field = format!("params.{}", param.item);
        let value = match given.get(&param.item) {
            None | Some(Value::Null) if param.required || param.location == ParamIn::Path => {
                return Err(invalid(&field, format!("{field}: required")));
            }
            None | Some(Value::Null) => continue,
            Some(v) => v,
        };
        let fits = match scalar {
            Scalar::Text => value.is_string(),
            Scalar::Integer => value.is_i64() || value.is_u64(),
            Scalar::Number => value.is_number(),
            Scalar::Boolean => value.is_boolean(),
            Scalar::Date => value
                .as_str()
                .is_some_and(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()),
        };
        if !fits {
            return Err(invalid(
                &field,
                format!("{field}: should be {}", answer::scalar_word(*scalar)),
            ));
        }
        let value = match (param.key, value) {
            (Some(kind), Value::String(s)) => {
                let key = s.trim().to_ascii_uppercase();
                let checked = match kind {
                    KeyKind::CitizenId => {
                        tongban_policies::ids::validate_citizen_id(&key).map(drop)
                    }
                    KeyKind::CreditCode => tongban_policies::ids::validate_credit_code(&key),
                };
                checked.map_err(|e| invalid(&field, format!("{field}: {e}")))?;
                keys.push(key.clone());
                Value::String(key)
            }
            (_, v) => v.clone(),
        };
        values.push((param.clone(), value));
    }
    Ok(Params { values, keys })
}

/// The items one decision covers: the endpoint's parameters (all of them,
/// given or not: using the endpoint needs them), then the response items
/// asked for (all by default).
fn items_asked(ep: &EndpointRt, asked: &[String]) -> Result<Vec<String>> {
    let mut items: Vec<String> = ep.params.iter().map(|(p, _)| p.item.clone()).collect();
    if asked.is_empty() {
        items.extend(ep.declared.iter().map(|d| d.field.item.clone()));
        return Ok(items);
    }
    for (i, item) in asked.iter().enumerate() {
        if !ep.declared.iter().any(|d| &d.field.item == item) {
            let known: Vec<_> = ep.declared.iter().map(|d| d.field.item.as_str()).collect();
            return Err(invalid(
                &format!("items[{i}]"),
                format!(
                    "items[{i}]: '{item}' is not a response item of '{}'; its items are {}",
                    ep.def.name,
                    known.join(", ")
                ),
            ));
        }
        if !items[ep.params.len()..].contains(item) {
            items.push(item.clone());
        }
    }
    Ok(items)
}
