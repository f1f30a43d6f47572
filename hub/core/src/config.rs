//! The server configuration file (TOML). Every field is optional and
//! documented in `deploy/tongban.toml`; [`Config::validate`] checks it without
//! IO before anything starts.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default data directory, relative to where `tongban` runs.
pub const DEFAULT_DATA_DIR: &str = "tongban-data";
/// Default listen address: loopback only, until an operator says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port the HTTP API listens on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Where the embedded catalog, dataset versions and audit log live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Catalog store: `sqlite://PATH` or `postgres://USER@HOST/DB`. Unset means
    /// the embedded SQLite catalog in `data_dir`.
    #[serde(default)]
    pub store_url: Option<String>,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// How the plain-HTTP API's connections are served: `shared` (the
    /// default: one work-stealing runtime for everything) or `per_core`
    /// (one single-threaded runtime per core, each accepting on its own
    /// `SO_REUSEPORT` socket, so a connection's requests never move between
    /// threads). docs/benchmarks.md measures both (issue 17). With `[tls]`
    /// the API is served on the shared runtime either way.
    #[serde(default)]
    pub http_runtime: HttpRuntime,
    /// Items indexed for lookups besides each resource's key, by resource
    /// code, e.g. `"104/000001" = ["holder_id"]` (licences by holder).
    #[serde(default)]
    pub secondary_keys: std::collections::BTreeMap<String, Vec<String>>,
    /// Secret for the `hash` mask (HMAC key). Unset: a random key kept in
    /// `DATA_DIR/mask-hash.key`. Replicas sharing a catalog must share it.
    #[serde(default)]
    pub mask_hash_key: Option<String>,
    /// Address of the Arrow Flight endpoint (bulk lookups by `DoExchange`);
    /// unset: no Flight endpoint. It serves gRPC over TLS with `[tls]`'s
    /// certificates and client-certificate identities.
    #[serde(default)]
    pub flight_listen: Option<String>,
    /// Serve Flight without TLS. Callers send their tokens on it, so only
    /// for a private network (a compose network, a loopback demo); the log
    /// warns at start. Without `[tls]`, Flight needs this said explicitly.
    #[serde(default)]
    pub flight_plaintext: bool,
    /// Serve HTTPS (and accept client certificates) instead of plain HTTP.
    #[serde(default)]
    pub tls: Option<crate::tls::TlsConfig>,
    /// Subscriptions: Delta Sharing file URLs, push retries.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// This replica's name: in its audit records, its push leases and its
    /// metrics. Unset: the `HOSTNAME` environment variable (a Kubernetes
    /// pod's name), else `hub`. Replicas sharing a catalog need distinct ones.
    #[serde(default)]
    pub replica_id: Option<String>,
    /// Where dataset versions, change sets and quarantine files live. Unset:
    /// `data_dir` on the local disk (one machine).
    #[serde(default)]
    pub object_store: Option<ObjectStoreConfig>,
    /// Prometheus metrics (`GET /metrics`).
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// How the log is written: `text` (for people) or `json` (one object a
    /// line, for a log collector). `RUST_LOG` picks the levels either way.
    #[serde(default)]
    pub log_format: LogFormat,
    /// With `[object_store]`: how often the audit log's current segment is
    /// sealed and shipped there, in seconds (a replica whose disk is lost
    /// loses at most this much of its chain, and `audit verify` names the
    /// gap from the head recorded in the catalog).
    #[serde(default = "default_audit_ship_interval_s")]
    pub audit_ship_interval_s: u64,
    /// How often a signed checkpoint of the audit log's Merkle tree is
    /// taken and kept in the catalog, in seconds (when records were added).
    #[serde(default = "default_audit_checkpoint_interval_s")]
    pub audit_checkpoint_interval_s: u64,
    /// The hash of the audit chain, its Merkle tree and its key hashes:
    /// `sha256` (the default) or `sm3` (GB/T 32905, the national
    /// algorithm; key hashes are then HMAC-SM3). A log keeps the hash it
    /// was started with: this applies to a new log.
    #[serde(default)]
    pub audit_hash: tongban_audit::merkle::HashAlg,
    /// How checkpoints are signed: `ed25519` (the default) or `sm2` (SM2
    /// with SM3, GB/T 32918). Verification accepts either of the hub's keys.
    #[serde(default)]
    pub audit_signature: tongban_audit::checkpoint::SigAlg,
}

fn default_audit_ship_interval_s() -> u64 {
    60
}

fn default_audit_checkpoint_interval_s() -> u64 {
    60
}

pub use tongban_datasets::ObjectStoreConfig;

/// The `[metrics]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// A separate address serving `GET /metrics` without an identity, for a
    /// Prometheus scraper on a private network, e.g. `0.0.0.0:9464`. On the
    /// API port `/metrics` always needs a data-office identity.
    #[serde(default)]
    pub listen: Option<String>,
}

/// The log's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// How subscriptions are delivered (the `[delivery]` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// The hub's base URL as consumers reach it, e.g.
    /// `https://tongban.example.gov.cn`: Delta Sharing profiles and file URLs
    /// point there. Unset: `http://` (or `https://` with TLS) and `listen`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Lifetime of a signed Delta Sharing file URL, in seconds.
    #[serde(default = "default_url_ttl_s")]
    pub url_ttl_s: u64,
    /// Rows per shared Parquet file (Delta Sharing files, pagination unit).
    /// Clients pay per file (a `HEAD`, a footer read, their own setup), so
    /// the default is large: 1,048,576 rows (about 13 MiB for the
    /// population's twelve bulk items); the writer still flushes a row
    /// group every 131,072 rows, so its memory does not grow with it.
    #[serde(default = "default_file_rows")]
    pub file_rows: usize,
    /// How often the push outbox is polled, in milliseconds.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// Wait before the first retry of a failed push, in milliseconds; it
    /// doubles with each failure up to `retry_max_ms`.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Longest wait between retries, in milliseconds.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Time limit of one push attempt (a webhook POST, a database write), in
    /// milliseconds.
    #[serde(default = "default_push_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_url_ttl_s() -> u64 {
    900
}
fn default_file_rows() -> usize {
    1024 * 1024
}
fn default_tick_ms() -> u64 {
    1000
}
fn default_retry_base_ms() -> u64 {
    1000
}
fn default_retry_max_ms() -> u64 {
    5 * 60 * 1000
}
fn default_push_timeout_ms() -> u64 {
    60 * 1000
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            public_url: None,
            url_ttl_s: default_url_ttl_s(),
            file_rows: default_file_rows(),
            tick_ms: default_tick_ms(),
            retry_base_ms: default_retry_base_ms(),
            retry_max_ms: default_retry_max_ms(),
            timeout_ms: default_push_timeout_ms(),
        }
    }
}

impl DeliveryConfig {
    fn problems(&self, out: &mut Vec<String>) {
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            out.push(format!(
                "delivery.public_url: '{url}' is not an http:// or https:// URL"
            ));
        }
        if !(10..=7 * 24 * 3600).contains(&self.url_ttl_s) {
            out.push("delivery.url_ttl_s: must be between 10 and 604800".to_string());
        }
        if !(1..=16 * 1024 * 1024).contains(&self.file_rows) {
            out.push("delivery.file_rows: must be between 1 and 16777216".to_string());
        }
        if !(10..=60_000).contains(&self.tick_ms) {
            out.push("delivery.tick_ms: must be between 10 and 60000".to_string());
        }
        if self.retry_base_ms == 0 || self.retry_base_ms > self.retry_max_ms {
            out.push(
                "delivery.retry_base_ms: must be positive and at most retry_max_ms".to_string(),
            );
        }
        if !(100..=3_600_000).contains(&self.timeout_ms) {
            out.push("delivery.timeout_ms: must be between 100 and 3600000".to_string());
        }
    }
}

/// A replica id: a label Prometheus, Kubernetes and file names all accept.
fn valid_replica_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_string()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}
fn default_max_body_bytes() -> usize {
    2 * 1024 * 1024
}

/// [`Config::http_runtime`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpRuntime {
    #[default]
    Shared,
    PerCore,
}

impl std::str::FromStr for HttpRuntime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "shared" => Ok(HttpRuntime::Shared),
            "per_core" | "per-core" => Ok(HttpRuntime::PerCore),
            other => Err(format!("'{other}': expected shared or per_core")),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            data_dir: default_data_dir(),
            store_url: None,
            max_body_bytes: default_max_body_bytes(),
            http_runtime: HttpRuntime::default(),
            secondary_keys: Default::default(),
            mask_hash_key: None,
            flight_listen: None,
            flight_plaintext: false,
            tls: None,
            delivery: DeliveryConfig::default(),
            replica_id: None,
            object_store: None,
            metrics: MetricsConfig::default(),
            log_format: LogFormat::Text,
            audit_ship_interval_s: default_audit_ship_interval_s(),
            audit_checkpoint_interval_s: default_audit_checkpoint_interval_s(),
            audit_hash: Default::default(),
            audit_signature: Default::default(),
        }
    }
}

impl Config {
    /// Reads a config file, applies the environment's secrets
    /// ([`Config::apply_env`]) and validates the result.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(Error::file(path))?;
        let config: Config = toml::from_str(&text).map_err(|e| {
            Error::Config(vec![format!(
                "{}: {}",
                path.display(),
                e.to_string().trim()
            )])
        })?;
        let mut config = config;
        config.apply_env();
        config.validate()?;
        Ok(config)
    }

    /// Checks every field, reporting all problems at once.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "listen: '{}' is not an address like 127.0.0.1:8080",
                self.listen
            ));
        }
        if let Some(f) = &self.flight_listen
            && f.parse::<SocketAddr>().is_err()
        {
            problems.push(format!(
                "flight_listen: '{f}' is not an address like 127.0.0.1:8815"
            ));
        }
        if self.flight_listen.is_some() && self.tls.is_none() && !self.flight_plaintext {
            problems.push(
                "flight_listen: Flight without [tls] would carry tokens in clear; set [tls], \
                 or flight_plaintext = true for a private network"
                    .to_string(),
            );
        }
        if self.data_dir.as_os_str().is_empty() {
            problems.push("data_dir: must not be empty".to_string());
        }
        if let Some(url) = &self.store_url {
            let ok = ["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| url.starts_with(p));
            if !ok {
                problems.push(format!(
                    "store_url: '{url}' is not a sqlite://PATH or postgres://USER@HOST/DB url"
                ));
            }
        }
        if self.mask_hash_key.as_ref().is_some_and(|k| k.len() < 16) {
            problems.push("mask_hash_key: use at least 16 characters".to_string());
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_body_bytes) {
            problems.push("max_body_bytes: must be between 1024 and 67108864".to_string());
        }
        self.delivery.problems(&mut problems);
        if let Some(id) = &self.replica_id
            && !valid_replica_id(id)
        {
            problems.push(format!(
                "replica_id: '{id}' must be 1 to 63 letters, digits, '-' or '_'"
            ));
        }
        if let Some(store) = &self.object_store {
            problems.extend(store.problems());
        }
        if !(1..=86_400).contains(&self.audit_checkpoint_interval_s) {
            problems.push("audit_checkpoint_interval_s: must be between 1 and 86400".to_string());
        }
        if !(1..=86_400).contains(&self.audit_ship_interval_s) {
            problems.push("audit_ship_interval_s: must be between 1 and 86400".to_string());
        }
        if let Some(m) = &self.metrics.listen
            && m.parse::<SocketAddr>().is_err()
        {
            problems.push(format!(
                "metrics.listen: '{m}' is not an address like 127.0.0.1:9464"
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(problems))
        }
    }

    /// The socket address to bind (valid after [`Config::validate`]).
    pub fn listen_addr(&self) -> Result<SocketAddr> {
        self.listen.parse().map_err(|_| {
            Error::Config(vec![format!("listen: '{}' is not an address", self.listen)])
        })
    }

    /// The `hash` mask's key: the configured one, or the data directory's
    /// (created with random bytes on first use).
    pub fn mask_hash_key(&self) -> Result<String> {
        if let Some(k) = &self.mask_hash_key {
            return Ok(k.clone());
        }
        let path = self.data_dir.join("mask-hash.key");
        match std::fs::read_to_string(&path) {
            Ok(k) => Ok(k.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.data_dir).map_err(Error::file(&self.data_dir))?;
                let key = crate::auth::new_token();
                std::fs::write(&path, &key).map_err(Error::file(&path))?;
                Ok(key)
            }
            Err(e) => Err(Error::File { path, source: e }),
        }
    }

    /// The hub's base URL as consumers reach it (no trailing `/`).
    pub fn public_url(&self, bound: SocketAddr) -> String {
        match &self.delivery.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{bound}")
            }
        }
    }

    /// This replica's name (see [`Config::replica_id`]).
    pub fn replica(&self) -> String {
        self.replica_id
            .clone()
            .or_else(|| {
                std::env::var("HOSTNAME")
                    .ok()
                    .filter(|h| valid_replica_id(h))
            })
            .unwrap_or_else(|| "hub".to_string())
    }

    /// Secrets a deployment passes in the environment (a Kubernetes Secret)
    /// rather than in the file: `TONGBAN_STORE_URL` (it carries the database
    /// password) and `TONGBAN_MASK_HASH_KEY` override the file's values.
    pub fn apply_env(&mut self) {
        if let Ok(url) = std::env::var("TONGBAN_STORE_URL")
            && !url.is_empty()
        {
            self.store_url = Some(url);
        }
        if let Ok(key) = std::env::var("TONGBAN_MASK_HASH_KEY")
            && !key.is_empty()
        {
            self.mask_hash_key = Some(key);
        }
    }

    /// The catalog store URL, defaulting to the embedded one in the data directory.
    pub fn store_url(&self) -> String {
        self.store_url
            .clone()
            .unwrap_or_else(|| tongban_catalog::SqlStore::dir_url(&self.data_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_is_valid() {
        let text = include_str!("../../../deploy/tongban.toml");
        let c: Config = toml::from_str(text).unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn every_problem_is_reported_and_unknown_fields_are_rejected() {
        let c = Config {
            listen: "localhost".into(),
            store_url: Some("mysql://x".into()),
            max_body_bytes: 1,
            ..Config::default()
        };
        let Err(Error::Config(problems)) = c.validate() else {
            panic!("expected errors")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        let e = toml::from_str::<Config>("listn = '127.0.0.1:1'").unwrap_err();
        assert!(e.to_string().contains("unknown field `listn`"), "{e}");
        let c: Config = toml::from_str(
            "replica_id = 'a b'\n[object_store]\nurl = 's3:///x'\nendpoint = 'http://s3:9000'\n[metrics]\nlisten = 'x'",
        )
        .unwrap();
        let Err(Error::Config(problems)) = c.validate() else {
            panic!("expected errors")
        };
        assert_eq!(problems.len(), 4, "{problems:?}");
        let e = toml::from_str::<Config>("log_format = 'xml'").unwrap_err();
        assert!(e.to_string().contains("unknown variant `xml`"), "{e}");
    }
}
