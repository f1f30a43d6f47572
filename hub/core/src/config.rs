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
    /// Items indexed for lookups besides each resource's key, by resource
    /// code, e.g. `"104/000001" = ["holder_id"]` (licences by holder).
    #[serde(default)]
    pub secondary_keys: std::collections::BTreeMap<String, Vec<String>>,
    /// Secret for the `hash` mask (HMAC key). Unset: a random key kept in
    /// `DATA_DIR/mask-hash.key`. Replicas sharing a catalog must share it.
    #[serde(default)]
    pub mask_hash_key: Option<String>,
    /// Address of the Arrow Flight endpoint (bulk lookups by `DoExchange`);
    /// unset: no Flight endpoint.
    #[serde(default)]
    pub flight_listen: Option<String>,
    /// Serve HTTPS (and accept client certificates) instead of plain HTTP.
    #[serde(default)]
    pub tls: Option<crate::tls::TlsConfig>,
    /// Subscriptions: Delta Sharing file URLs, push retries.
    #[serde(default)]
    pub delivery: DeliveryConfig,
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
    128 * 1024
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

fn default_listen() -> String {
    DEFAULT_LISTEN.to_string()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}
fn default_max_body_bytes() -> usize {
    2 * 1024 * 1024
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            data_dir: default_data_dir(),
            store_url: None,
            max_body_bytes: default_max_body_bytes(),
            secondary_keys: Default::default(),
            mask_hash_key: None,
            flight_listen: None,
            tls: None,
            delivery: DeliveryConfig::default(),
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(Error::file(path))?;
        let config: Config = toml::from_str(&text).map_err(|e| {
            Error::Config(vec![format!(
                "{}: {}",
                path.display(),
                e.to_string().trim()
            )])
        })?;
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
    }
}
