//! Sync jobs and their runs: which source feeds which resource, how (full or
//! incremental by a watermark column), when (a cron schedule), and what each
//! run did. The catalog stores a job's source config as JSON without reading
//! it: the connectors crate owns its shape, and the hub checks it before a
//! job is saved.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a run reads its source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Every run reads every row; the new version is exactly the source.
    #[default]
    Full,
    /// A run reads the rows past the job's watermark and merges them by key
    /// into the previous version.
    Incremental,
}

tongban_policies::str_enum!(SyncMode, "sync mode", {
    SyncMode::Full => "full",
    SyncMode::Incremental => "incremental",
});

/// A job as it is defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncJobSpec {
    /// A unique name, e.g. `population-nightly` (letters, digits, `-`, `_`).
    pub name: String,
    /// The resource whose versions the job publishes.
    pub resource: String,
    /// The connector config (`{"type": "postgres", …}`, see docs/connectors.md).
    #[schema(value_type = Object)]
    pub source: serde_json::Value,
    #[serde(default)]
    pub mode: SyncMode,
    /// Incremental: the source column whose growing values mark new rows
    /// (e.g. `updated_at`).
    #[serde(default)]
    pub watermark_column: Option<String>,
    /// Incremental: a boolean source column; a row with it true is a delete.
    /// Without one, an incremental run cannot see deletes (use a full run).
    #[serde(default)]
    pub tombstone_column: Option<String>,
    /// Incremental: also read the source's keys in full each run and delete
    /// the keys that are gone (for sources without a tombstone column). It
    /// costs a full read of the source, but only the keys are kept.
    #[serde(default)]
    pub diff_deletes: bool,
    /// A cron expression (seconds first, China time: `0 30 2 * * *` is
    /// 02:30 daily); none: run by hand only.
    #[serde(default)]
    pub schedule: Option<String>,
    /// SQL over the table `source` (DataFusion), e.g. to rename or derive
    /// columns so they match the resource's items.
    #[serde(default)]
    pub transform: Option<String>,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
}

fn enabled_default() -> bool {
    true
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncJob {
    pub id: i64,
    #[serde(flatten)]
    pub spec: SyncJobSpec,
    /// The watermark of the last published incremental run.
    pub watermark: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    Running,
    Succeeded,
    Failed,
    /// Found still running when a later run started: its process died.
    Interrupted,
}

tongban_policies::str_enum!(RunOutcome, "run outcome", {
    RunOutcome::Running => "running",
    RunOutcome::Succeeded => "succeeded",
    RunOutcome::Failed => "failed",
    RunOutcome::Interrupted => "interrupted",
});

/// What a run did, counted as it went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunCounts {
    /// Rows read from the source.
    pub rows_read: i64,
    /// Rows in the published version.
    pub rows_written: i64,
    /// Rows sent to the quarantine file.
    pub rows_quarantined: i64,
    /// Bytes of the published Parquet.
    pub bytes: i64,
    /// Incremental runs: the change set against the previous version.
    pub inserts: i64,
    pub updates: i64,
    pub deletes: i64,
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SyncRun {
    pub id: i64,
    pub job: String,
    pub resource: String,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: DateTime<Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: RunOutcome,
    #[serde(flatten)]
    pub counts: RunCounts,
    /// The dataset version it published.
    pub version: Option<i64>,
    /// Where its quarantined rows are (a Parquet file with a `_reason` column).
    pub quarantine: Option<String>,
    /// The watermark after the run.
    pub watermark: Option<String>,
    pub error: Option<String>,
}

impl SyncRun {
    /// Seconds from start to finish (or to now, while running).
    pub fn duration_s(&self, now: DateTime<Utc>) -> f64 {
        (self.finished_at.unwrap_or(now) - self.started_at).num_milliseconds() as f64 / 1000.0
    }
}

/// How a run ended, to be recorded with [`crate::Store::finish_sync_run`].
#[derive(Debug, Clone, PartialEq)]
pub struct RunFinish {
    pub outcome: RunOutcome,
    pub counts: RunCounts,
    /// The version to make visible, in the same transaction as the run's
    /// record and the job's new watermark.
    pub version: Option<crate::NewDatasetVersion>,
    pub quarantine: Option<String>,
    pub watermark: Option<String>,
    pub error: Option<String>,
}

/// A job's run lock, held while one hub runs the job: every hub sharing
/// a PostgreSQL catalog runs a job at most once at a time. On PostgreSQL it
/// is a session advisory lock on a connection of its own, so a hub that
/// dies (SIGKILL, a lost machine) lets go of it with its connection; the
/// embedded SQLite catalog has one hub, whose scheduler already runs a job
/// once at a time, so its lock holds nothing.
pub struct JobLock {
    pub(crate) conn: Option<sqlx::AnyConnection>,
}

impl JobLock {
    /// Lets go of the lock now (dropping it does too, by closing its
    /// connection).
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let released = sqlx::query("SELECT pg_advisory_unlock_all()")
                .execute(&mut conn)
                .await;
            if released.is_ok() {
                let _ = sqlx::Connection::close(conn).await;
            }
        }
    }
}

impl std::fmt::Debug for JobLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobLock")
            .field("held", &self.conn.is_some())
            .finish()
    }
}
