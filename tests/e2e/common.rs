//! A running hub over fresh demo data, for tests.

use std::path::Path;
use std::sync::Arc;
use tongban_catalog::{SqlStore, Store};
use tongban_hub::demo::{self, Credentials};
use tongban_hub::server::Server;
use tongban_hub::{Config, datagen};

pub struct Hub {
    pub url: String,
    pub creds: Credentials,
    pub client: reqwest::Client,
    /// The hub's catalog, for tests that change data behind its back.
    pub store: SqlStore,
    /// The Arrow Flight endpoint, `http://127.0.0.1:PORT`.
    pub flight: String,
    dir: tempfile::TempDir,
    config: Config,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<tongban_hub::server::Result<()>>>,
}

/// Scale of the demo data in tests: ~1,000 citizens.
pub const SCALE: f64 = 0.001;

pub fn pg_url() -> String {
    std::env::var("TONGBAN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A fresh PostgreSQL schema for one test; fails loudly if PostgreSQL is down.
pub async fn pg_schema_url(name: &str) -> String {
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&pg_url())
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} must be reachable: {e}", pg_url()));
    let schema = format!("tongban_e2e_{name}");
    sqlx::raw_sql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ))
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
    format!("{}?options=-c%20search_path%3D{schema}", pg_url())
}

impl Hub {
    /// What a sync run needs, over this hub's catalog and data dir.
    pub fn sync_context(&self) -> tongban_hub::sync::SyncContext {
        tongban_hub::sync::SyncContext {
            store: Arc::new(self.store.clone()),
            datasets: tongban_hub::datasets::DatasetStore::local(self.data_dir()).unwrap(),
            data_dir: self.data_dir().to_path_buf(),
        }
    }

    /// Demo data at [`SCALE`] in a temp dir, served on a free port. With
    /// `store_url`, the catalog lives there instead of the embedded file.
    pub async fn start(store_url: Option<String>) -> Hub {
        Self::start_with(store_url, |_| {}).await
    }

    /// [`Hub::start`] with the config adjusted first (e.g. quick push retries).
    pub async fn start_with(store_url: Option<String>, tweak: impl FnOnce(&mut Config)) -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_path_buf(),
            store_url,
            secondary_keys: tongban_hub::datagen::directory::secondary_keys(),
            flight_listen: Some("127.0.0.1:0".into()),
            ..Config::default()
        };
        tweak(&mut config);
        config.validate().unwrap();
        let store = SqlStore::open(&config.store_url()).await.unwrap();
        let options = datagen::Options {
            scale: SCALE,
            seed: 7,
            progress: false,
        };
        datagen::run(&store, dir.path(), options).await.unwrap();
        let creds = demo::ensure_credentials(&store, dir.path()).await.unwrap();
        let mut hub = Hub {
            url: String::new(),
            creds,
            client: reqwest::Client::new(),
            store,
            flight: String::new(),
            dir,
            config,
            shutdown: None,
            served: None,
        };
        hub.serve().await;
        hub
    }

    /// Binds and starts a server on the hub's data (new ports).
    async fn serve(&mut self) {
        let server =
            Server::bind_with(&self.config, Arc::new(self.store.clone()) as Arc<dyn Store>)
                .await
                .unwrap();
        self.url = format!("http://{}", server.local_addr());
        self.flight = format!(
            "http://{}",
            server.flight_addr().expect("a Flight endpoint")
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.served = Some(tokio::spawn(server.serve(async {
            let _ = rx.await;
        })));
        self.shutdown = Some(tx);
    }

    /// Stops the server (as a process that is shut down would) and starts a
    /// new one on the same data directory and catalog.
    pub async fn restart(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.unwrap().unwrap();
        }
        // Let the old audit writer finish its last group.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        self.serve().await;
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn token(&self, label: &str) -> String {
        self.creds
            .token(label)
            .unwrap_or_else(|| panic!("no demo token {label}"))
            .to_string()
    }

    pub fn get(&self, path: &str, who: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(self.token(who))
    }

    pub fn post(&self, path: &str, who: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.url))
            .bearer_auth(self.token(who))
    }

    pub fn delete(&self, path: &str, who: &str) -> reqwest::RequestBuilder {
        self.client
            .delete(format!("{}{path}", self.url))
            .bearer_auth(self.token(who))
    }

    /// Publishes new versions of the demo datasets (another seed: other rows).
    pub async fn publish_demo_versions(&self, seed: u64) {
        datagen::run(
            &self.store,
            self.data_dir(),
            datagen::Options {
                scale: SCALE,
                seed,
                progress: false,
            },
        )
        .await
        .unwrap();
    }

    pub fn put(&self, path: &str, who: &str) -> reqwest::RequestBuilder {
        self.client
            .put(format!("{}{path}", self.url))
            .bearer_auth(self.token(who))
    }

    /// Posts JSON, again while the lookup indexes are still loading (503),
    /// for up to 5 s.
    pub async fn post_when_ready(
        &self,
        path: &str,
        who: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        for _ in 0..100 {
            let resp = self.post(path, who).json(body).send().await.unwrap();
            if resp.status() != 503 {
                return resp;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{path}: the index never loaded");
    }

    /// The newest dataset version of a resource, read from its files (not
    /// through the hub): its number and its rows.
    pub async fn read_newest(
        &self,
        resource: &str,
    ) -> (i64, Vec<arrow::record_batch::RecordBatch>) {
        let versions = self.store.list_versions(resource).await.unwrap();
        let newest = versions.first().expect("a published version");
        let batches = tongban_hub::datasets::DatasetStore::local(self.data_dir())
            .unwrap()
            .read_version(&newest.location)
            .await
            .unwrap();
        (newest.version, batches)
    }

    /// An Arrow Flight client of the hub that speaks as `who`.
    pub async fn flight_client(&self, who: &str) -> arrow_flight::FlightClient {
        let channel = tonic::transport::Channel::from_shared(self.flight.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = arrow_flight::FlightClient::new(channel);
        client
            .add_header("authorization", &format!("Bearer {}", self.token(who)))
            .unwrap();
        client
    }

    /// Every audit record so far, in order, across the log's segments.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        let dir = self.data_dir().join("audit");
        let mut segments: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        segments.sort();
        segments
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// The JSON body of an answer, after asserting its status.
pub async fn expect_json(resp: reqwest::Response, status: u16) -> serde_json::Value {
    let url = resp.url().to_string();
    let got = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    assert_eq!(got, status, "{url}: {body}");
    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
}

/// One request a [`Webhook`] received.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub headers: axum::http::HeaderMap,
    pub body: bytes::Bytes,
}

/// A department's webhook endpoint that accepts (204) every push and keeps
/// it, unchecked: tests look at what arrived.
#[derive(Clone)]
pub struct Webhook {
    /// Where the hub should push, `http://127.0.0.1:PORT/in`.
    pub url: String,
    pushed: Arc<std::sync::Mutex<Vec<Pushed>>>,
}

impl Webhook {
    pub async fn start() -> Webhook {
        let pushed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = pushed.clone();
        let app = axum::Router::new().route(
            "/in",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
                let kept = kept.clone();
                async move {
                    kept.lock().unwrap().push(Pushed { headers, body });
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/in", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Webhook { url, pushed }
    }

    /// What arrived so far, in order.
    pub fn pushed(&self) -> Vec<Pushed> {
        self.pushed.lock().unwrap().clone()
    }
}

/// Asserts a problem+json response and returns its body.
pub async fn problem(resp: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status, "status of {}", resp.url());
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(ct, "application/problem+json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}
