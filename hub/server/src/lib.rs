//! The server: the HTTP and Arrow Flight transports over the hub, and the
//! one place that wires the other crates together (the composition root).
//! Nothing imports it but the `tongban` binary.
//!
//! # Layout
//! - this file: [`Server`] (bind, serve, background work), the router, the
//!   OpenAPI document;
//! - [`problem`]: every error response (`application/problem+json`) and the
//!   one table from error codes to HTTP and gRPC statuses;
//! - [`extract`]: extractors with problem rejections, and the caller's identity;
//! - [`catalog`]: the directory API under `/v1/catalog`;
//! - [`lists`]: the three lists and their review workflow under `/v1/lists`;
//! - [`policy`]: `POST /v1/policy/explain`;
//! - [`lookup`]: real-time lookup and verification over the in-memory indexes;
//! - [`subscriptions`]: subscriptions, their delivery status, Delta Sharing
//!   profiles;
//! - [`services`]: interface sharing: services in the directory under
//!   `/v1/services`, their health, and calls (`POST /v1/call/...`);
//! - [`sharing`]: the Delta Sharing protocol under `/delta-sharing/`;
//! - [`objections`]: `/v1/objections`, objections to records and their answers;
//! - [`uses`]: `GET /v1/uses`, a subject's data-use record (数据使用记录);
//! - [`flight`]: Arrow Flight `DoExchange` lookups, and ([`flight_get`])
//!   `DoGet` of pull subscriptions, over TLS with the API's certificates
//!   ([`flight_tls`], which also holds the TLS accept loop HTTPS uses);
//! - [`ops`]: `/ready`, `/metrics`, request metrics, and the loop that
//!   keeps a replica current with the catalog's change feed.
//!
//! Every route that releases data calls the access pipeline
//! (`tongban_core::access`); each router gets only its own state: the API
//! this crate's [`AppState`], the console its `ConsoleApp`.
//!
//! Crate ladder (docs/architecture.md): depends on every crate but the
//! binary; none depends on it.

// A `Problem` (an HTTP error body) is ~150 bytes and is returned by value
// from handlers: it is built once per failed request, never in a loop, and
// boxing it would only add an allocation to every error.
#![allow(clippy::result_large_err)]

pub mod catalog;
pub mod extract;
pub mod flight;
pub mod flight_get;
pub mod flight_tls;
pub mod lists;
pub mod lookup;
pub mod objections;
pub mod ops;
pub mod policy;
pub mod problem;
pub mod services;
pub mod sharing;
pub mod subscriptions;
pub mod uses;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::get;
use extract::Caller;
use problem::Problem;
use serde::Serialize;
use std::sync::Arc;
use tokio::net::TcpListener;
use tongban_catalog::Store;
use tongban_core::Config;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What can keep the server from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The hub cannot be built (configuration, store, audit log, TLS files).
    #[error(transparent)]
    Core(#[from] tongban_core::Error),
    #[error(transparent)]
    Catalog(#[from] tongban_catalog::Error),
    /// The registered services cannot be loaded.
    #[error(transparent)]
    Services(#[from] tongban_services::Error),
    /// The data directory cannot be made.
    #[error("{path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A listen address cannot be bound.
    #[error("cannot listen on {addr} for {what}: {source}")]
    Listen {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What every handler can reach. One `Arc`: axum clones the state for every
/// request, and a clone of the fields themselves (a dozen reference counts
/// and a keyed HMAC) was a visible part of a lookup's cost.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;
    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The parts of [`AppState`]: the hub, and what the API's own paths add.
/// Fields of the hub (`store`, `access`, `indexes`, …) are reached through
/// it (`Deref`).
pub struct SharedState {
    /// The hub and the delivery settings (`state.delivery`).
    pub base: tongban_delivery::DeliveryState,
    /// The runtimes of registered provider APIs (interface sharing).
    pub services: tongban_services::Services,
    /// Whether this replica's indexes are loaded (`/ready`).
    pub readiness: ops::Readiness,
    /// This replica's name (`replica_id`).
    pub replica: String,
    /// The shared (work-stealing) runtime: bulk work — a stream's chunks —
    /// goes there, on every core, even when the request itself is served
    /// by a single-threaded per-core runtime.
    pub bulk: tokio::runtime::Handle,
}

impl std::ops::Deref for SharedState {
    type Target = tongban_delivery::DeliveryState;
    fn deref(&self) -> &tongban_delivery::DeliveryState {
        &self.base
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tongban exchange hub",
        description = "Government data-sharing exchange hub: the resource directory, the three \
                       lists, real-time lookups and verification, subscriptions (Delta Sharing, \
                       Flight, webhooks, PostgreSQL). Every release goes through one access \
                       pipeline: identity, checks, one policy decision, quota, masks and row \
                       filters, a durable audit record. Errors are application/problem+json with \
                       a stable `code`.",
    ),
    tags((name = "catalog", description = "The resource directory (数据资源目录)"),
         (name = "lists", description = "Needs, negative and responsibility lists (三清单)"),
         (name = "policy", description = "The decision point"),
         (name = "lookup", description = "Real-time lookup and verification (实时查询核验)"),
         (name = "services", description = "Interface sharing (接口共享): provider APIs called through the hub"),
         (name = "subscriptions", description = "Subscriptions and their delivery (订阅与推送); Delta Sharing under /delta-sharing"),
         (name = "objections", description = "Objections and corrections (异议核实与纠错)"),
         (name = "audit", description = "The data-use record (数据使用记录): who used a subject's data"),
         (name = "system", description = "Health and identity")),
    components(schemas(
        Problem,
        tongban_catalog::Status,
        tongban_catalog::model::ShareTypeSchema,
        tongban_catalog::lists::NeedStatusSchema,
        tongban_catalog::list_exchange::ListName,
    )),
)]
struct ApiDoc;

/// What every operation shares, added in one place rather than on each
/// handler: the bearer scheme, and the problem responses that extractors and
/// middleware can give (401 without identity, 403 for a write by the wrong
/// role, 400/413/415 for an unreadable body). Applied once all routes are in.
struct CommonParts;

impl Modify for CommonParts {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tb_…")
                    .build(),
            ),
        );
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        problem::PROBLEM_JSON,
                        Content::new(Some(Ref::from_schema_name("Problem"))),
                    )
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for (i, op) in ops.into_iter().enumerate() {
                let Some(op) = op else { continue };
                let responses = &mut op.responses.responses;
                if op.security.is_some() {
                    responses
                        .entry("401".into())
                        .or_insert_with(|| problem("No, malformed or unknown token"));
                    // Every operation but a GET changes something: role-checked.
                    if i > 0 {
                        responses
                            .entry("403".into())
                            .or_insert_with(|| problem("The identity's role may not do this"));
                    }
                }
                let in_path = |p: &utoipa::openapi::path::Parameter| {
                    matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Path)
                };
                if op
                    .parameters
                    .as_ref()
                    .is_some_and(|ps| ps.iter().any(in_path))
                {
                    responses
                        .entry("404".into())
                        .or_insert_with(|| problem("No such resource or record"));
                }
                if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                    responses
                        .entry("400".into())
                        .or_insert_with(|| problem("A path or query parameter cannot be read"));
                }
                if op.request_body.is_some() {
                    responses
                        .entry("400".into())
                        .or_insert_with(|| problem("The body is not JSON"));
                    responses
                        .entry("413".into())
                        .or_insert_with(|| problem("The body is too large"));
                    responses
                        .entry("422".into())
                        .or_insert_with(|| problem("The body breaks a rule; `field` names it"));
                    responses
                        .entry("415".into())
                        .or_insert_with(|| problem("The body is not sent as application/json"));
                }
            }
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the hub answers.
    status: &'static str,
    version: &'static str,
}

/// Liveness: the one endpoint that needs no identity
#[utoipa::path(get, path = "/health", tag = "system",
    responses((status = 200, description = "The hub is up", body = Health)))]
async fn health() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    department: String,
    #[schema(value_type = String, example = "department")]
    role: tongban_catalog::Role,
}

/// Who the caller's token says it is
#[utoipa::path(get, path = "/v1/me", tag = "system",
    responses((status = 200, description = "The caller's identity", body = Me),
              (status = 401, description = "No or unknown token", body = Problem, content_type = "application/problem+json")),
    security(("token" = [])))]
async fn me(Caller(who): Caller) -> axum::Json<Me> {
    axum::Json(Me {
        department: who.department,
        role: who.role,
    })
}

/// The API and its OpenAPI document, both built from the same route list.
pub fn router(
    state: AppState,
    console: tongban_console::ConsoleApp,
    max_body_bytes: usize,
) -> Router {
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::metrics))
        .routes(routes!(me))
        .routes(routes!(catalog::list_resources, catalog::create_resource))
        .routes(routes!(catalog::get_resource, catalog::update_resource))
        .routes(routes!(catalog::publish_resource))
        .routes(routes!(catalog::retire_resource))
        .routes(routes!(catalog::list_versions))
        .routes(routes!(
            catalog::list_departments,
            catalog::create_department
        ))
        .routes(routes!(catalog::get_department))
        .routes(routes!(catalog::register_seal_key))
        .routes(routes!(catalog::seal_keys))
        .routes(routes!(lists::list_needs, lists::apply_need))
        .routes(routes!(lists::get_need))
        .routes(routes!(lists::approve_need))
        .routes(routes!(lists::reject_need))
        .routes(routes!(lists::revoke_need))
        .routes(routes!(lists::list_negatives, lists::create_negative))
        .routes(routes!(lists::delete_negative))
        .routes(routes!(
            lists::list_responsibilities,
            lists::create_responsibility
        ))
        .routes(routes!(lists::delete_responsibility))
        .routes(routes!(lists::compliance))
        .routes(routes!(lists::get_calendar, lists::put_calendar))
        .routes(routes!(lists::export_list))
        .routes(routes!(lists::import_list))
        .routes(routes!(policy::explain))
        .routes(routes!(lookup::lookup))
        .routes(routes!(lookup::verify))
        .routes(routes!(lookup::stream))
        .routes(routes!(lookup::locate))
        .routes(routes!(subscriptions::list, subscriptions::create))
        .routes(routes!(subscriptions::get, subscriptions::cancel))
        .routes(routes!(subscriptions::deliveries))
        .routes(routes!(subscriptions::profile))
        .routes(routes!(services::list, services::register))
        .routes(routes!(services::import_openapi))
        .routes(routes!(services::health_all))
        .routes(routes!(services::get))
        .routes(routes!(services::switch))
        .routes(routes!(services::health))
        .routes(routes!(services::call))
        .routes(routes!(uses::list))
        .routes(routes!(objections::list, objections::raise))
        .routes(routes!(objections::get))
        .routes(routes!(objections::correcting))
        .routes(routes!(objections::reject))
        .split_for_parts();
    // After the split: only now does the document hold every route.
    let mut doc = doc;
    CommonParts.modify(&mut doc);
    let mut doc = serde_json::to_value(doc).expect("the OpenAPI document serialises");
    for (spec, fields) in FLATTENED_INPUTS {
        let copy = doc["components"]["schemas"][spec].clone();
        doc["components"]["schemas"][fields] = copy;
        if let Some(f) = doc["components"]["schemas"][fields].as_object_mut() {
            f.remove("additionalProperties");
        }
        point_flattened_at_fields(&mut doc, spec, fields);
    }
    let doc = Arc::new(doc);
    // Each router gets only its own state: the API and Delta Sharing the
    // server's, the console its own.
    let api: Router = api
        .merge(sharing::routes())
        .route(
            "/v1/catalog/resources/{code}",
            get(catalog::get_resource_encoded),
        )
        .route(
            "/openapi.json",
            get(move |_: Caller| {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .with_state(state);
    api.merge(tongban_console::routes().with_state(console))
        // On matched routes only, where the route's template is known.
        .route_layer(axum::middleware::from_fn(ops::http_metrics))
        .fallback(problem::no_route)
        .method_not_allowed_fallback(problem::no_method)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            Problem::internal().into_response()
        }))
        .layer(TraceLayer::new_for_http())
}

/// How long a reload that failed (or an index that would not load) waits
/// before it is tried again, when no news from the catalog comes first.
pub const RELOAD_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

/// Inputs that stored records flatten, and the name of their lenient copy.
const FLATTENED_INPUTS: [(&str, &str); 2] = [
    ("ResourceSpec", "ResourceFields"),
    ("SubscriptionSpec", "SubscriptionFields"),
];

/// `Resource` flattens `ResourceSpec` (an `allOf`), but `ResourceSpec` is an
/// input and forbids unknown properties, so every stored resource would fail
/// its own schema (the same for subscriptions). Wherever such a spec is part
/// of an `allOf`, point at its `…Fields` copy without that rule. Request
/// bodies keep the strict spec.
fn point_flattened_at_fields(v: &mut serde_json::Value, spec: &str, fields: &str) {
    match v {
        serde_json::Value::Object(map) => {
            let target = format!("#/components/schemas/{spec}");
            if let Some(serde_json::Value::Array(parts)) = map.get_mut("allOf") {
                for part in parts.iter_mut() {
                    if part.get("$ref").and_then(|r| r.as_str()) == Some(target.as_str()) {
                        *part =
                            serde_json::json!({"$ref": format!("#/components/schemas/{fields}")});
                    }
                }
            }
            map.values_mut()
                .for_each(|v| point_flattened_at_fields(v, spec, fields));
        }
        serde_json::Value::Array(items) => items
            .iter_mut()
            .for_each(|v| point_flattened_at_fields(v, spec, fields)),
        _ => {}
    }
}

/// A bound, not yet serving, hub.
pub struct Server {
    listener: TcpListener,
    /// `per_core`: the API is served by one single-threaded runtime per
    /// core, each on its own `SO_REUSEPORT` socket ([`serve_per_core`]).
    per_core: bool,
    app: Router,
    state: AppState,
    /// Set: serve HTTPS, passing client certificates on to requests.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Set: serve Arrow Flight lookups here too.
    flight: Option<TcpListener>,
    /// Set: serve `/metrics` alone here, without identity.
    metrics: Option<TcpListener>,
    /// Tells this replica what changed in the catalog.
    feed: tongban_catalog::changes::ChangeFeed,
    /// With an object store: how often the audit log's segment is sealed
    /// and shipped there.
    audit_ship: Option<std::time::Duration>,
    /// How often a signed checkpoint of the audit log is taken.
    audit_checkpoint: std::time::Duration,
    /// How checkpoints are signed (`audit_signature`).
    audit_signature: tongban_audit::checkpoint::SigAlg,
}

impl Server {
    /// Opens the store, loads identities and binds the listen address.
    pub async fn bind(config: &Config) -> Result<Server> {
        if config.store_url.is_none() {
            std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::DataDir {
                path: config.data_dir.clone(),
                source,
            })?;
        }
        let store = tongban_catalog::SqlStore::open(&config.store_url()).await?;
        Self::bind_with(config, Arc::new(store)).await
    }

    pub async fn bind_with(config: &Config, store: Arc<dyn Store>) -> Result<Server> {
        // Installed before anything records.
        ops::prometheus();
        // Read before the hub loads its state, so that a change made in
        // between is news to the feed rather than lost.
        let feed =
            tongban_catalog::changes::ChangeFeed::start(store.clone(), Default::default()).await?;
        let hub = tongban_core::Hub::open(config, store).await?;
        let addr = config.listen_addr()?;
        // Per core: every runtime's socket shares the port (SO_REUSEPORT,
        // set before the first bind), the kernel spreading connections.
        let per_core = config.http_runtime == tongban_core::config::HttpRuntime::PerCore
            && config.tls.is_none();
        let listener = if per_core {
            reuseport_listener(addr)
        } else {
            TcpListener::bind(addr).await
        }
        .map_err(|source| Error::Listen {
            what: "the API",
            addr: addr.to_string(),
            source,
        })?;
        let bound = listener.local_addr().map_err(|source| Error::Listen {
            what: "the API",
            addr: addr.to_string(),
            source,
        })?;
        let delivery = tongban_delivery::Delivery::new(
            config.delivery.clone(),
            &config.data_dir,
            config.public_url(bound),
            hub.hash_key.as_bytes(),
        );
        let services =
            tongban_services::Services::load(hub.store.as_ref(), hub.hash_key.clone()).await?;
        let console = tongban_console::ConsoleApp::new(
            hub.clone(),
            tongban_console::ConsoleState::new(&config.data_dir, hub.hash_key.as_bytes()),
            services.clone(),
        );
        let state = AppState(Arc::new(SharedState {
            base: tongban_delivery::DeliveryState { hub, delivery },
            services,
            readiness: Default::default(),
            replica: config.replica(),
            bulk: tokio::runtime::Handle::current(),
        }));
        let app = router(state.clone(), console, config.max_body_bytes);
        let tls = config
            .tls
            .as_ref()
            .map(tongban_core::tls::server_config)
            .transpose()?;
        let flight = match &config.flight_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| Error::Listen {
                        what: "Flight",
                        addr: addr.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        if let Some(addr) = &config.flight_listen
            && config.tls.is_none()
        {
            tracing::warn!(%addr, "Arrow Flight serves plaintext gRPC (flight_plaintext): tokens travel in clear; keep this port on a private network");
        }
        let metrics = match &config.metrics.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| Error::Listen {
                        what: "metrics",
                        addr: addr.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        Ok(Server {
            listener,
            per_core,
            app,
            state,
            tls,
            flight,
            metrics,
            feed,
            audit_ship: config
                .object_store
                .is_some()
                .then(|| std::time::Duration::from_secs(config.audit_ship_interval_s)),
            audit_checkpoint: std::time::Duration::from_secs(config.audit_checkpoint_interval_s),
            audit_signature: config.audit_signature,
        })
    }

    /// Where dataset versions live: a folder or `s3://bucket/prefix`.
    pub fn datasets_root(&self) -> String {
        self.state.datasets.root().to_string()
    }

    /// The metrics-only endpoint's bound address, if it has one.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The Flight endpoint's bound address, if it has one.
    pub fn flight_addr(&self) -> Option<std::net::SocketAddr> {
        self.flight.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The hub's lookup indexes (they load once the server serves).
    pub fn indexes(&self) -> tongban_lookup::index::Indexes {
        self.state.indexes.clone()
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        self.serve_until(Box::pin(shutdown)).await
    }

    /// [`Server::serve`] with the signal boxed: the accept loops and every
    /// connection's hyper machinery are instantiated here, in this crate at
    /// its optimisation level, rather than in each caller's (the binary's
    /// crate is built at opt-level 1, docs/build-times.md).
    async fn serve_until(
        self,
        shutdown: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>,
    ) -> Result<()> {
        // Flight answers from the same state; both stop on the same signal.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let flight = self.flight.map(|listener| {
            let service =
                arrow_flight::flight_service_server::FlightServiceServer::new(flight::Lookups {
                    state: self.state.clone(),
                });
            let mut stopped = stopped.clone();
            // With [tls], Flight speaks TLS with the API's certificates;
            // without, only because flight_plaintext said so (validated).
            let tls = self.tls.as_deref().map(flight_tls::config);
            tokio::spawn(async move {
                let done = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                let router = tonic::transport::Server::builder().add_service(service);
                let served = match tls {
                    Some(tls) => {
                        router
                            .serve_with_incoming_shutdown(flight_tls::incoming(listener, tls), done)
                            .await
                    }
                    None => {
                        let incoming =
                            tonic::codegen::tokio_stream::wrappers::TcpListenerStream::new(
                                listener,
                            );
                        router.serve_with_incoming_shutdown(incoming, done).await
                    }
                };
                if let Err(e) = served {
                    tracing::error!(error = %e, "the Flight endpoint failed");
                }
            })
        });
        let shutdown = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        // Push subscriptions are delivered from here.
        let outbox = tokio::spawn(tongban_delivery::push::run(
            self.state.base.clone(),
            stopped.clone(),
        ));
        // How long a push attempt may take to finish when the hub stops.
        let outbox_grace =
            std::time::Duration::from_millis(self.state.delivery.config().timeout_ms + 1_000);
        let (outbox_store, instance) = (
            self.state.store.clone(),
            self.state.delivery.instance().to_string(),
        );
        // Sync jobs with a schedule run from here.
        let scheduler = tokio::spawn(tongban_sync::schedule::run(tongban_sync::SyncContext {
            store: self.state.store.clone(),
            datasets: self.state.datasets.clone(),
        }));
        // The catalog can change behind this replica's back (another
        // replica, the CLI): the feed tells, and what changed is reloaded.
        // Indexes load right after start, while the server already answers
        // (lookups get 503 and /ready says so until they are in).
        let refresh = tokio::spawn(ops::keep_current(
            self.state.clone(),
            self.feed,
            RELOAD_RETRY,
        ));
        // The audit chain's head goes to the catalog every second, and a
        // signed checkpoint of its tree every `audit_checkpoint_interval_s`;
        // with an object store, sealed segments are shipped there (the
        // segment in use is sealed on start — a crashed run's tail — every
        // interval, and on stop).
        let shipper = {
            let mut shipper = tongban_core::audit_log::Shipper::new(
                self.state.access.audit().clone(),
                &self.state.data_dir.join("audit"),
                &self.state.replica,
                self.audit_ship.map(|_| self.state.datasets.clone()),
                self.state.store.clone(),
                tongban_core::audit_log::signer(
                    self.state.hash_key.as_bytes(),
                    &self.state.replica,
                    self.audit_signature,
                ),
                self.audit_checkpoint,
            );
            let every = self.audit_ship;
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                shipper.seal();
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
                let mut sealed_at = tokio::time::Instant::now();
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stopped.wait_for(|s| *s) => break,
                    }
                    if every.is_some_and(|e| sealed_at.elapsed() >= e) {
                        shipper.seal();
                        sealed_at = tokio::time::Instant::now();
                    }
                    if let Err(e) = shipper.tick().await {
                        tracing::warn!(error = %e, "could not ship the audit log or record its head");
                    }
                }
                shipper
            })
        };
        // Histograms are drained into their buckets by the upkeep (a scrape
        // runs it too): without it, unscraped samples would pile up.
        let upkeep = tokio::spawn(async {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                ops::prometheus().run_upkeep();
            }
        });
        let metrics = self.metrics.map(|listener| {
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let done = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(listener, ops::metrics_router())
                    .with_graceful_shutdown(done)
                    .await
                {
                    tracing::error!(error = %e, "the metrics endpoint failed");
                }
            })
        });
        let served = match self.tls {
            None if self.per_core => serve_per_core(self.listener, self.app, shutdown).await,
            None => {
                axum::serve(self.listener, self.app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            Some(tls) => {
                serve_tls(self.listener, self.app, tls, shutdown).await;
                Ok(())
            }
        };
        // Background work stops before serve returns, so that nothing of
        // this server writes (audit, outbox) once it has.
        // The outbox was told to stop with the server and ends between
        // attempts; one still running past its timeout is cut off.
        let mut outbox = outbox;
        if tokio::time::timeout(outbox_grace, &mut outbox)
            .await
            .is_err()
        {
            outbox.abort();
            let _ = outbox.await;
        }
        for task in [refresh, scheduler, upkeep] {
            task.abort();
            let _ = task.await;
        }
        // A push stopped mid-attempt is tried again by the next hub at once.
        match outbox_store.release_delivery_leases(&instance).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "push leases released"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release push leases; they expire on their own")
            }
        }
        for task in [flight, metrics].into_iter().flatten() {
            let _ = task.await;
        }
        // Nothing records any more: seal the last segment, ship it, record
        // the final head.
        if let Ok(mut shipper) = shipper.await {
            shipper.seal();
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if let Err(e) = shipper.tick().await {
                tracing::warn!(error = %e, "could not ship the audit log's last segment");
            }
            if let Err(e) = shipper.checkpoint().await {
                tracing::warn!(error = %e, "could not take the audit log's last checkpoint");
            }
        }
        served.map_err(Error::Serve)
    }
}

/// A listener on `addr` with `SO_REUSEPORT`: others may bind the same
/// port, and the kernel spreads new connections over them.
fn reuseport_listener(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves the API on one single-threaded runtime per core (`per_core`):
/// each thread accepts on its own `SO_REUSEPORT` socket and keeps its
/// connections, so a request is read, answered and woken on one thread,
/// never stolen by another. Background work stays on the shared runtime.
/// Returns once every runtime has finished its connections after
/// `shutdown`.
async fn serve_per_core(
    listener: TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut listeners = vec![listener.into_std()?];
    for _ in 1..cores {
        listeners.push(reuseport_listener(addr)?.into_std()?);
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut finished = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let (app, mut stopped) = (app.clone(), stopped.clone());
        let (done, finish) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name(format!("http-{i}"))
            .spawn(move || {
                let served = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            axum::serve(TcpListener::from_std(listener)?, app)
                                .with_graceful_shutdown(async move {
                                    let _ = stopped.wait_for(|s| *s).await;
                                })
                                .await
                        })
                    });
                let _ = done.send(served);
            })?;
        finished.push(finish);
    }
    tracing::info!(%addr, runtimes = cores, "the API is served by one runtime per core");
    shutdown.await;
    let _ = stop.send(true);
    for finish in finished {
        finish
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("an API runtime stopped")))?;
    }
    Ok(())
}

/// Accepts TLS connections and serves each with hyper, adding the client
/// certificate's fingerprint (if any) to every request. A failed handshake
/// ends that connection only.
async fn serve_tls(
    listener: TcpListener,
    app: Router,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    flight_tls::accept(
        listener,
        tls,
        shutdown,
        "HTTPS",
        move |stream, fingerprint, peer| {
            let app = app.clone();
            async move {
                let service = hyper::service::service_fn(
                    move |mut req: axum::http::Request<hyper::body::Incoming>| {
                        req.extensions_mut()
                            .insert(tongban_core::tls::PeerCertificate(fingerprint.clone()));
                        tower::ServiceExt::oneshot(app.clone(), req)
                    },
                );
                if let Err(e) = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            }
        },
    )
    .await;
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
