//! What the end-to-end tests share: [`Hub`], a running hub over fresh demo
//! data, and the helpers every module uses to talk to it and to check what
//! it answers, so that a check means the same in every test.
//!
//! - [`responses`]: an answer's status and its body as JSON, a problem,
//!   NDJSON or text;
//! - [`batches`]: Parquet read back, columns as text, valid citizen IDs;
//! - [`flight`]: Arrow Flight clients and `DoExchange`;
//! - [`flows`]: what tests do over the API the same way: needs granted or
//!   revoked, negative entries, subscriptions waited for, versions waited
//!   for;
//! - [`webhook`]: a department's webhook endpoint, and pushes opened;
//! - [`commands`]: the `tongban` binary and the repository around it.

mod batches;
mod commands;
mod flight;
mod flows;
mod responses;
mod webhook;

pub use batches::{cells, citizen_id, read_parquet, read_parquet_file};
pub use commands::{repo, run_ok, tongban};
pub use flight::{exchange, grpc_code, key_batch};
pub use responses::{expect_json, expect_text, ndjson, ndjson_lines, problem};
pub use webhook::{Push, Webhook};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tongban_catalog::sync::{SyncJobSpec, SyncMode, SyncRun};
use tongban_catalog::{SqlStore, Store};
use tongban_core::Config;
use tongban_datagen as datagen;
use tongban_datagen::credentials::{self as demo, Credentials};
use tongban_server::Server;

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
    served: Option<tokio::task::JoinHandle<tongban_server::Result<()>>>,
}

/// Scale of the demo data in tests: ~1,000 citizens.
pub const SCALE: f64 = 0.001;

/// The local dataset store of a data directory.
pub fn local(dir: &Path) -> tongban_datasets::DatasetStore {
    tongban_datasets::DatasetStore::local(dir).expect("a local dataset store")
}

/// A prefix of its own in the S3 test bucket (`.ci/run` starts s3s-fs and
/// sets the credentials and endpoint); fails loudly without them.
pub fn s3_store(name: &str) -> tongban_datasets::ObjectStoreConfig {
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "TONGBAN_TEST_S3_ENDPOINT",
    ] {
        assert!(
            std::env::var(var).is_ok(),
            "{var} must be set for tests on S3 (.ci/run starts s3s-fs and sets it)"
        );
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    tongban_datasets::ObjectStoreConfig {
        url: format!(
            "s3://{}/{name}-{nanos}",
            std::env::var("TONGBAN_TEST_S3_BUCKET").unwrap_or_else(|_| "tongban-test".into())
        ),
        endpoint: std::env::var("TONGBAN_TEST_S3_ENDPOINT").ok(),
        region: None,
        path_style: true,
        allow_http: true,
    }
}

pub fn pg_url() -> String {
    std::env::var("TONGBAN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A connection to the machine's PostgreSQL (a provider's or a consumer's
/// database in the tests); fails loudly if PostgreSQL is down.
pub async fn pg_connect() -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(&pg_url())
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} must be reachable: {e}", pg_url()))
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

/// A config tweak for [`Hub::start_with`]: the delivery worker ticks every
/// 50 ms and retries a failed push after 50 ms, backing off to 300 ms at
/// most, so that push tests see outages and recoveries within seconds.
pub fn quick_delivery(c: &mut Config) {
    c.delivery.tick_ms = 50;
    c.delivery.retry_base_ms = 50;
    c.delivery.retry_max_ms = 300;
}

/// A sync job of `resource` from `source`; an incremental one follows the
/// source's `updated_at` watermark and its `deleted` tombstones.
pub fn sync_job(
    name: &str,
    resource: &str,
    source: serde_json::Value,
    mode: SyncMode,
) -> SyncJobSpec {
    SyncJobSpec {
        name: name.into(),
        resource: resource.into(),
        source,
        mode,
        watermark_column: (mode == SyncMode::Incremental).then(|| "updated_at".into()),
        tombstone_column: (mode == SyncMode::Incremental).then(|| "deleted".into()),
        diff_deletes: false,
        schedule: None,
        transform: None,
        enabled: true,
    }
}

impl Hub {
    /// What a sync run needs, over this hub's catalog and data dir.
    pub fn sync_context(&self) -> tongban_sync::SyncContext {
        tongban_sync::SyncContext {
            store: Arc::new(self.store.clone()),
            datasets: self.datasets(),
        }
    }

    /// Runs a stored sync job once, in-process, as the scheduler would.
    pub async fn run_sync(&self, job: &str) -> tongban_sync::Result<SyncRun> {
        tongban_sync::run_job(&self.sync_context(), job, &|_| {}).await
    }

    /// Demo data at [`SCALE`] in a temp dir, served on a free port. With
    /// `store_url`, the catalog lives there instead of the embedded file.
    pub async fn start(store_url: Option<String>) -> Hub {
        Self::start_with(store_url, |_| {}).await
    }

    /// [`Hub::start`] with the config adjusted first (e.g. [`quick_delivery`]).
    pub async fn start_with(store_url: Option<String>, tweak: impl FnOnce(&mut Config)) -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_path_buf(),
            store_url,
            secondary_keys: tongban_datagen::directory::secondary_keys(),
            flight_listen: Some("127.0.0.1:0".into()),
            flight_plaintext: true,
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
        let datasets =
            tongban_datasets::DatasetStore::open(config.object_store.as_ref(), dir.path()).unwrap();
        datagen::run(&store, &datasets, options).await.unwrap();
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
        self.stop().await;
        self.serve().await;
    }

    /// Stops the server as a process that is shut down would (its data
    /// directory and catalog stay).
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.unwrap().unwrap();
        }
        // Let the old audit writer finish its last group.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where this hub keeps its versions and shared files: the data dir,
    /// or its `[object_store]`.
    pub fn datasets(&self) -> tongban_datasets::DatasetStore {
        tongban_datasets::DatasetStore::open(self.config.object_store.as_ref(), self.data_dir())
            .unwrap()
    }

    /// The key the hub's hash masks (and its signed file URLs) are made
    /// with, as a test needs it to compute what a consumer should receive.
    pub fn mask_key(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("mask-hash.key"))
            .unwrap()
            .trim()
            .to_string()
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

    pub fn put(&self, path: &str, who: &str) -> reqwest::RequestBuilder {
        self.client
            .put(format!("{}{path}", self.url))
            .bearer_auth(self.token(who))
    }

    pub fn delete(&self, path: &str, who: &str) -> reqwest::RequestBuilder {
        self.client
            .delete(format!("{}{path}", self.url))
            .bearer_auth(self.token(who))
    }

    /// Publishes new versions of the demo datasets (another seed: other
    /// rows; the same seed 7 as at start: the same rows again).
    pub async fn publish_demo_versions(&self, seed: u64) {
        datagen::run(
            &self.store,
            &self.datasets(),
            datagen::Options {
                scale: SCALE,
                seed,
                progress: false,
            },
        )
        .await
        .unwrap();
    }

    /// Sends a request again while the lookup indexes are still loading
    /// (503), for up to 10 s: right after [`Hub::start`] the indexes load
    /// in the background. The first other answer, unchecked.
    pub async fn send_when_ready(
        &self,
        what: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> reqwest::Response {
        for _ in 0..200 {
            let resp = request().send().await.unwrap();
            if resp.status() != 503 {
                return resp;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what}: the index never loaded");
    }

    /// [`Hub::send_when_ready`] of a JSON `body` posted to `path` as `who`.
    pub async fn post_when_ready(
        &self,
        path: &str,
        who: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.send_when_ready(path, || self.post(path, who).json(body))
            .await
    }

    /// The newest dataset version of a resource, read from its files (not
    /// through the hub): its number and its rows.
    pub async fn read_newest(
        &self,
        resource: &str,
    ) -> (i64, Vec<arrow::record_batch::RecordBatch>) {
        let versions = self.store.list_versions(resource).await.unwrap();
        let newest = versions.first().expect("a published version");
        let batches = self
            .datasets()
            .read_version(&newest.location)
            .await
            .unwrap();
        (newest.version, batches)
    }

    /// The first `n` citizen IDs of the demo population's newest version:
    /// keys a test can look up and find.
    pub async fn citizen_ids(&self, n: usize) -> Vec<String> {
        let (_, batches) = self.read_newest("101/000001").await;
        let ids = cells(&batches[0], "citizen_id");
        (0..n)
            .map(|i| ids[i].clone().expect("a citizen ID"))
            .collect()
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
            .flat_map(|p| ndjson_lines(&tongban_audit::read_segment(p).unwrap()))
            .collect()
    }

    /// Asserts that the audit log's hash chain is intact
    /// (`tongban_audit::verify`, in-process).
    pub fn assert_audit_chain_intact(&self) {
        let chain = tongban_audit::verify(&self.data_dir().join("audit")).unwrap();
        assert!(chain.is_ok(), "{chain:?}");
    }
}
