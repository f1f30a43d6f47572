//! The connector configs a sync job stores: closed, tagged enums
//! (`type = "postgres"`, …), checked without IO before anything runs.

use crate::{Result, Sink, Source};
use serde::{Deserialize, Serialize};

/// Where a sync job reads from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SourceConfig {
    Postgres(crate::postgres::SourceConfig),
    Mysql(crate::mysql::SourceConfig),
    File(crate::file::SourceConfig),
    Http(crate::http::SourceConfig),
}

impl SourceConfig {
    /// The connector type, as in the config's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Postgres(_) => "postgres",
            SourceConfig::Mysql(_) => "mysql",
            SourceConfig::File(_) => "file",
            SourceConfig::Http(_) => "http",
        }
    }

    /// Checks the config without any IO.
    pub fn validate(&self) -> Result<()> {
        match self {
            SourceConfig::Postgres(c) => c.validate(),
            SourceConfig::Mysql(c) => c.validate(),
            SourceConfig::File(c) => c.validate(),
            SourceConfig::Http(c) => c.validate(),
        }
    }

    /// The runtime source. Connections are made lazily, by `schema` and
    /// `read`.
    pub fn open(&self) -> Result<Box<dyn Source>> {
        self.validate()?;
        Ok(match self {
            SourceConfig::Postgres(c) => Box::new(crate::postgres::PgSource::new(c.clone())),
            SourceConfig::Mysql(c) => Box::new(crate::mysql::MySqlSource::new(c.clone())),
            SourceConfig::File(c) => Box::new(crate::file::FileSource::new(c.clone())?),
            SourceConfig::Http(c) => Box::new(crate::http::HttpSource::new(c.clone())?),
        })
    }
}

/// Where rows are written to (a department's own database, or a file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkConfig {
    Postgres(crate::postgres::SinkConfig),
    File(crate::file::SinkConfig),
}

impl SinkConfig {
    pub fn validate(&self) -> Result<()> {
        match self {
            SinkConfig::Postgres(c) => c.validate(),
            SinkConfig::File(c) => c.validate(),
        }
    }

    pub fn open(&self) -> Result<Box<dyn Sink>> {
        self.validate()?;
        Ok(match self {
            SinkConfig::Postgres(c) => Box::new(crate::postgres::PgSink::new(c.clone())),
            SinkConfig::File(c) => Box::new(crate::file::FileSink::new(c.clone())?),
        })
    }
}
