//! [`SqlStore`]: the [`Store`] over SQLite (embedded default) or PostgreSQL,
//! through sqlx's `Any` driver so that both run the very same SQL. The SQL is
//! kept portable on purpose: `$n` placeholders (SQLite accepts them too), TEXT
//! times, BIGINT integers, no vendor functions.
//!
//! # Layout
//! - this file: opening, migrations, transactions, and the [`Store`]
//!   methods, each a short call into the table modules;
//! - `common`: times as text, enum words, positional arguments, unique
//!   violations as duplicates (used by every module below);
//! - `directory`: departments, resources and items, dataset versions;
//! - `lists`, `subscriptions`, `sync`: the three lists and the calendar;
//!   subscriptions and the push outbox; sync jobs and runs;
//! - `services`: provider API definitions (interface sharing);
//! - `objections`: objections to records and their history.
//!
//! Modules depend on `common` and `directory` only (and `subscriptions`
//! on `lists`, for the need a subscription rests on): no circles.

use crate::lists::*;
use crate::model::*;
use crate::objections::{ObjectionQuery, ObjectionRecord, Raise, Step};
use crate::store::Store;
use crate::subscriptions::*;
use crate::sync::*;
use crate::{Error, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use std::path::Path;
use std::time::Duration;
use tongban_policies::PolicyInput;
use tongban_policies::calendar::Calendar;

mod common;
mod directory;
mod lists;
mod objections;
mod services;
mod subscriptions;
mod sync;

use common::*;
use directory::*;

/// A migration's SQL: the same for both backends, or one each where they
/// differ (triggers).
enum Migration {
    Same(&'static str),
    Split {
        sqlite: &'static str,
        postgres: &'static str,
    },
}
use Migration::Same;

/// Migrations, applied in order, each once, each in its own transaction.
const MIGRATIONS: &[(i64, &str, Migration)] = &[
    (
        1,
        "directory",
        Same(include_str!("../../migrations/0001_directory.sql")),
    ),
    (
        2,
        "lists",
        Same(include_str!("../../migrations/0002_lists.sql")),
    ),
    (
        3,
        "sync",
        Same(include_str!("../../migrations/0003_sync.sql")),
    ),
    (
        4,
        "sync diff deletes",
        Same(include_str!("../../migrations/0004_sync_diff.sql")),
    ),
    (
        5,
        "subscriptions and return flow",
        Same(include_str!("../../migrations/0005_subscriptions.sql")),
    ),
    (
        6,
        "services",
        Same(include_str!("../../migrations/0006_services.sql")),
    ),
    (
        7,
        "change counters",
        Migration::Split {
            sqlite: include_str!("../../migrations/0007_changes.sqlite.sql"),
            postgres: include_str!("../../migrations/0007_changes.postgres.sql"),
        },
    ),
    (
        8,
        "audit heads",
        Same(include_str!("../../migrations/0008_audit_heads.sql")),
    ),
    (
        9,
        "audit checkpoints",
        Same(include_str!("../../migrations/0009_audit_checkpoints.sql")),
    ),
    (
        10,
        "seal keys",
        Same(include_str!("../../migrations/0010_seal_keys.sql")),
    ),
    (
        11,
        "data-use record",
        Same(include_str!("../../migrations/0011_data_use.sql")),
    ),
    (
        12,
        "objections",
        Same(include_str!("../../migrations/0012_objections.sql")),
    ),
    (
        13,
        "objections in the change feed",
        Migration::Split {
            sqlite: include_str!("../../migrations/0013_objections_changes.sqlite.sql"),
            postgres: include_str!("../../migrations/0013_objections_changes.postgres.sql"),
        },
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The SQL directory store. Cheap to clone (it is a pool handle).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// The PostgreSQL URL, for the change feed's `LISTEN` connection.
    url: Option<String>,
}

impl SqlStore {
    /// Opens (creating if needed) and migrates a store: `sqlite://PATH`,
    /// `sqlite::memory:` or `postgres://…` (a `?options=-c search_path=S`
    /// parameter selects a schema).
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(Error::StoreUrl(url.to_string()));
        };
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        options = match backend {
            // An in-memory SQLite database lives and dies with its one connection.
            Backend::Sqlite if url.contains(":memory:") => options.max_connections(1),
            Backend::Sqlite => options.max_connections(4),
            Backend::Postgres => options.max_connections(8),
        };
        let pool = options.connect(url).await?;
        if backend == Backend::Sqlite {
            // WAL (kept in the file) lets readers go on while a writer commits.
            // sqlx already turns SQLite's foreign keys on and sets a busy timeout.
            sqlx::raw_sql("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        let url = (backend == Backend::Postgres).then(|| url.to_string());
        let store = SqlStore { pool, backend, url };
        store.migrate().await?;
        Ok(store)
    }

    /// A write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads, then writes,
    /// fails with "database is locked" — without waiting — when another
    /// connection wrote in between, and the hub writes from several tasks
    /// (requests, the scheduler, the push outbox). PostgreSQL needs nothing.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// The embedded store of a data directory: `DIR/catalog.db`.
    pub async fn open_dir(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        Self::open(&Self::dir_url(dir)).await
    }

    /// The store URL of a data directory's embedded catalog.
    pub fn dir_url(dir: &Path) -> String {
        format!("sqlite://{}?mode=rwc", dir.join("catalog.db").display())
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Every resource with its items and newest version, by code.
    async fn export_resources(&self) -> Result<Vec<Resource>> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(&format!(
            "SELECT {RESOURCE_COLS} FROM resources ORDER BY code"
        ))
        .fetch_all(&mut *conn)
        .await?;
        let mut resources = rows
            .iter()
            .map(resource_from_row)
            .collect::<Result<Vec<_>>>()?;
        complete_resources(&mut conn, &mut resources).await?;
        Ok(resources)
    }

    async fn migrate(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        // Replicas starting together must not migrate twice.
        if self.backend == Backend::Postgres {
            sqlx::raw_sql("DO $$ BEGIN PERFORM pg_advisory_lock(7426001); END $$;")
                .execute(&mut *conn)
                .await?;
        }
        let result = async {
            sqlx::raw_sql(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)",
            )
            .execute(&mut *conn)
            .await?;
            let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
                .fetch_all(&mut *conn)
                .await?;
            for (version, description, migration) in MIGRATIONS {
                let (version, description) = (*version, *description);
                if applied.contains(&version) {
                    continue;
                }
                let sql = match (migration, self.backend) {
                    (Same(sql), _) => sql,
                    (Migration::Split { sqlite, .. }, Backend::Sqlite) => sqlite,
                    (Migration::Split { postgres, .. }, Backend::Postgres) => postgres,
                };
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)")
                    .bind(version)
                    .bind(description)
                    .bind(now_text())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                tracing::info!(version, description, "applied catalog migration");
            }
            Ok::<_, Error>(())
        }
        .await;
        if self.backend == Backend::Postgres {
            sqlx::raw_sql("DO $$ BEGIN PERFORM pg_advisory_unlock(7426001); END $$;")
                .execute(&mut *conn)
                .await?;
        }
        result
    }
}

/// Page size bounds for listings.
pub const MAX_PAGE_SIZE: u32 = 200;
pub const DEFAULT_PAGE_SIZE: u32 = 20;

#[async_trait]
impl Store for SqlStore {
    async fn create_department(&self, department: &Department) -> Result<Department> {
        let mut tx = self.begin().await?;
        upsert_department(&mut tx, department, false).await?;
        tx.commit().await?;
        self.get_department(&department.code).await
    }

    async fn get_department(&self, code: &str) -> Result<Department> {
        let mut conn = self.pool.acquire().await?;
        find_department(&mut conn, code)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "department",
                key: code.to_string(),
            })
    }

    async fn list_departments(&self) -> Result<Vec<Department>> {
        let rows = sqlx::query(&format!(
            "SELECT {DEPARTMENT_COLS} FROM departments ORDER BY code"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(department_from_row).collect()
    }

    async fn create_resource(&self, spec: &ResourceSpec) -> Result<Resource> {
        let mut tx = self.begin().await?;
        upsert_resource(&mut tx, spec, false).await?;
        tx.commit().await?;
        self.get_resource(&spec.code).await
    }

    async fn update_resource(&self, code: &str, spec: &ResourceSpec) -> Result<Resource> {
        if spec.code != code {
            return Err(Error::invalid("code", "a resource's code cannot change"));
        }
        let mut tx = self.begin().await?;
        if find_resource(&mut tx, code).await?.is_none() {
            return Err(Error::NotFound {
                what: "resource",
                key: code.to_string(),
            });
        }
        upsert_resource(&mut tx, spec, true).await?;
        tx.commit().await?;
        self.get_resource(code).await
    }

    async fn set_resource_status(&self, code: &str, status: Status) -> Result<Resource> {
        let mut tx = self.begin().await?;
        let Some(mut current) = find_resource(&mut tx, code).await? else {
            return Err(Error::NotFound {
                what: "resource",
                key: code.to_string(),
            });
        };
        if current.status() != status {
            current.spec.status = Some(status);
            upsert_resource(&mut tx, &current.spec, true).await?;
            tx.commit().await?;
        }
        self.get_resource(code).await
    }

    async fn get_resource(&self, code: &str) -> Result<Resource> {
        let mut conn = self.pool.acquire().await?;
        find_resource(&mut conn, code)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "resource",
                key: code.to_string(),
            })
    }

    async fn list_resources(&self, query: &ResourceQuery) -> Result<Page<Resource>> {
        let page = query.page.unwrap_or(1);
        let page_size = query.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if page == 0 {
            return Err(Error::invalid("page", "pages count from 1"));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(Error::invalid(
                "page_size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        // The same filter twice (count and page): build it as a function of fresh args.
        let filter = |args: &mut Args| {
            let mut w = vec!["1 = 1".to_string()];
            if let Some(q) = query.q.as_deref().filter(|q| !q.trim().is_empty()) {
                w.push(format!(
                    "search_text LIKE {} ESCAPE '\\'",
                    args.text(like_pattern(q.trim()))
                ));
            }
            if let Some(p) = &query.provider {
                w.push(format!("provider_code = {}", args.text(p.clone())));
            }
            if let Some(c) = query.category {
                w.push(format!("category = {}", args.text(c.as_str())));
            }
            if let Some(b) = query.base_library {
                w.push(format!("base_library = {}", args.text(b.as_str())));
            }
            if let Some(s) = query.status {
                w.push(format!("status = {}", args.text(s.as_str())));
            }
            if let Some(s) = query.share_type {
                w.push(format!(
                    "EXISTS (SELECT 1 FROM data_items i WHERE i.resource_code = resources.code
                     AND i.share_type = {})",
                    args.text(s.as_str())
                ));
            }
            w.join(" AND ")
        };
        let mut conn = self.pool.acquire().await?;
        let mut args = Args::default();
        let w = filter(&mut args);
        let total: i64 = sqlx::query_scalar_with(
            &format!("SELECT COUNT(*) FROM resources WHERE {w}"),
            args.args,
        )
        .fetch_one(&mut *conn)
        .await?;
        let mut args = Args::default();
        let w = filter(&mut args);
        let limit = args.int(i64::from(page_size));
        let offset = args.int(i64::from(page - 1) * i64::from(page_size));
        let rows = sqlx::query_with(
            &format!(
                "SELECT {RESOURCE_COLS} FROM resources WHERE {w} ORDER BY code LIMIT {limit} OFFSET {offset}"
            ),
            args.args,
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut items = rows
            .iter()
            .map(resource_from_row)
            .collect::<Result<Vec<_>>>()?;
        complete_resources(&mut conn, &mut items).await?;
        Ok(Page {
            items,
            total,
            page,
            page_size,
        })
    }

    async fn export(&self) -> Result<Directory> {
        let mut departments = self.list_departments().await?;
        // Parents before children, so the export imports as it is.
        departments.sort_by_key(|d| (d.level as u8, d.code.clone()));
        let resources = self.export_resources().await?;
        Ok(Directory {
            departments,
            resources: resources.into_iter().map(|r| r.spec).collect(),
        })
    }

    async fn import(
        &self,
        departments: &[Located<Department>],
        resources: &[Located<ResourceSpec>],
    ) -> Result<ImportReport> {
        let mut report = ImportReport::default();
        let mut tx = self.begin().await?;
        // Parents first, whatever order the file has them in.
        let mut ordered: Vec<&Located<Department>> = departments.iter().collect();
        ordered.sort_by_key(|d| d.value.level as u8);
        for d in ordered {
            let created = upsert_department(&mut tx, &d.value, true)
                .await
                .map_err(|e| e.at(&d.at))?;
            *if created {
                &mut report.departments_created
            } else {
                &mut report.departments_updated
            } += 1;
        }
        for r in resources {
            let created = upsert_resource(&mut tx, &r.value, true)
                .await
                .map_err(|e| e.at(&r.at))?;
            *if created {
                &mut report.resources_created
            } else {
                &mut report.resources_updated
            } += 1;
        }
        tx.commit().await?;
        Ok(report)
    }

    async fn record_version(&self, v: &NewDatasetVersion) -> Result<DatasetVersion> {
        let mut tx = self.begin().await?;
        insert_version(&mut tx, v).await?;
        tx.commit().await?;
        Ok(self
            .list_versions(&v.resource)
            .await?
            .into_iter()
            .find(|x| x.version == v.version)
            .expect("the version just recorded"))
    }

    async fn list_versions(&self, resource: &str) -> Result<Vec<DatasetVersion>> {
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLS} FROM dataset_versions WHERE resource_code = $1 ORDER BY version DESC"
        ))
        .bind(resource.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    async fn create_sync_job(&self, spec: &SyncJobSpec) -> Result<SyncJob> {
        let mut tx = self.begin().await?;
        sync::create_job(&mut tx, spec).await?;
        tx.commit().await?;
        self.get_sync_job(&spec.name).await
    }

    async fn get_sync_job(&self, name: &str) -> Result<SyncJob> {
        let mut conn = self.pool.acquire().await?;
        sync::find_job(&mut conn, name)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "sync job",
                key: name.to_string(),
            })
    }

    async fn list_sync_jobs(&self) -> Result<Vec<SyncJob>> {
        let mut conn = self.pool.acquire().await?;
        sync::list_jobs(&mut conn).await
    }

    async fn start_sync_run(&self, job: &str) -> Result<SyncRun> {
        let mut tx = self.begin().await?;
        let id = sync::start_run(&mut tx, job).await?;
        tx.commit().await?;
        let mut conn = self.pool.acquire().await?;
        sync::find_run(&mut conn, id).await
    }

    async fn lock_sync_job(&self, job: &str) -> Result<Option<JobLock>> {
        let Some(url) = &self.url else {
            return Ok(Some(JobLock { conn: None }));
        };
        // A connection of its own, outside the pool: the lock lives and
        // dies with it.
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await?;
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(7426002, hashtext($1))")
            .bind(job)
            .fetch_one(&mut conn)
            .await?;
        if held {
            Ok(Some(JobLock { conn: Some(conn) }))
        } else {
            let _ = sqlx::Connection::close(conn).await;
            Ok(None)
        }
    }

    async fn finish_sync_run(&self, run: i64, finish: &RunFinish) -> Result<SyncRun> {
        let mut tx = self.begin().await?;
        sync::finish_run(&mut tx, run, finish).await?;
        tx.commit().await?;
        let mut conn = self.pool.acquire().await?;
        sync::find_run(&mut conn, run).await
    }

    async fn create_subscription(
        &self,
        consumer: &str,
        spec: &SubscriptionSpec,
        secret: Option<String>,
    ) -> Result<Subscription> {
        let mut tx = self.begin().await?;
        let id = subscriptions::create(&mut tx, consumer, spec, secret).await?;
        let sub = subscriptions::find(&mut tx, id).await?;
        tx.commit().await?;
        Ok(sub)
    }

    async fn get_subscription(&self, id: i64) -> Result<Subscription> {
        let mut conn = self.pool.acquire().await?;
        subscriptions::find(&mut conn, id).await
    }

    async fn find_subscription(&self, consumer: &str, name: &str) -> Result<Subscription> {
        let mut conn = self.pool.acquire().await?;
        subscriptions::find_by_name(&mut conn, consumer, name).await
    }

    async fn list_subscriptions(&self, consumer: Option<&str>) -> Result<Vec<Subscription>> {
        let mut conn = self.pool.acquire().await?;
        subscriptions::list(&mut conn, consumer).await
    }

    async fn set_subscription_status(
        &self,
        id: i64,
        status: SubscriptionStatus,
        reason: Option<&str>,
    ) -> Result<Subscription> {
        let mut tx = self.begin().await?;
        subscriptions::set_status(&mut tx, id, status, reason).await?;
        let sub = subscriptions::find(&mut tx, id).await?;
        tx.commit().await?;
        Ok(sub)
    }

    async fn advance_cursor(&self, id: i64, version: i64) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        subscriptions::advance_cursor(&mut conn, id, version).await
    }

    async fn enqueue_deliveries(&self, subscription: i64, versions: &[i64]) -> Result<usize> {
        let mut tx = self.begin().await?;
        let added = subscriptions::enqueue(&mut tx, subscription, versions).await?;
        tx.commit().await?;
        Ok(added)
    }

    async fn due_deliveries(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Delivery>> {
        let mut conn = self.pool.acquire().await?;
        subscriptions::due(&mut conn, now, limit).await
    }

    async fn claim_delivery(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        subscriptions::claim(&mut conn, id, owner, now, lease_until).await
    }

    async fn release_delivery_leases(&self, owner: &str) -> Result<u64> {
        let mut conn = self.pool.acquire().await?;
        subscriptions::release_leases(&mut conn, owner).await
    }

    async fn finish_delivery(&self, id: i64, attempt: &Attempt) -> Result<Delivery> {
        let mut tx = self.begin().await?;
        subscriptions::finish(&mut tx, id, attempt).await?;
        let delivery = subscriptions::find_delivery(&mut tx, id).await?;
        tx.commit().await?;
        Ok(delivery)
    }

    async fn list_deliveries(&self, subscription: i64, limit: i64) -> Result<Vec<Delivery>> {
        let mut conn = self.pool.acquire().await?;
        subscriptions::list_deliveries(&mut conn, subscription, limit).await
    }

    async fn list_sync_runs(&self, job: Option<&str>, limit: i64) -> Result<Vec<SyncRun>> {
        let mut conn = self.pool.acquire().await?;
        sync::list_runs(&mut conn, job, limit).await
    }

    async fn put_token(&self, t: &TokenRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        if find_department(&mut tx, &t.department).await?.is_none() {
            return Err(Error::invalid(
                "department",
                format!("unknown department '{}'", t.department),
            ));
        }
        sqlx::query(
            "INSERT INTO tokens (token_hash, department_code, role, label, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(t.token_hash.clone())
        .bind(t.department.clone())
        .bind(t.role.as_str())
        .bind(t.label.clone())
        .bind(now_text())
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_to_duplicate(e, "token", &t.label))?;
        tx.commit().await?;
        Ok(())
    }

    async fn apply_need(
        &self,
        consumer: &str,
        application: &NeedApplication,
    ) -> Result<NeedRecord> {
        let mut tx = self.begin().await?;
        let id = lists::apply_need(&mut tx, consumer, application).await?;
        tx.commit().await?;
        self.get_need(id).await
    }

    async fn review_need(
        &self,
        id: i64,
        actor: Actor<'_>,
        action: ReviewAction,
        reason: &str,
    ) -> Result<NeedRecord> {
        let mut tx = self.begin().await?;
        lists::review_need(&mut tx, id, actor, &action, reason).await?;
        if action == ReviewAction::Revoke {
            // Nothing more is delivered under a revoked need, in the same
            // transaction as the revocation.
            let subs: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM subscriptions WHERE need_id = $1 AND status = 'active'",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            for sub in subs {
                subscriptions::set_status(
                    &mut tx,
                    sub,
                    SubscriptionStatus::Stopped,
                    Some(&format!("need {id} was revoked: {reason}")),
                )
                .await?;
            }
        }
        tx.commit().await?;
        self.get_need(id).await
    }

    async fn get_need(&self, id: i64) -> Result<NeedRecord> {
        let mut conn = self.pool.acquire().await?;
        lists::find_need(&mut conn, id)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "need",
                key: id.to_string(),
            })
    }

    async fn list_needs(&self, query: &NeedQuery) -> Result<Vec<NeedRecord>> {
        let mut conn = self.pool.acquire().await?;
        lists::list_needs(&mut conn, query).await
    }

    async fn import_needs(&self, records: &[Located<NeedRecord>]) -> Result<ImportCounts> {
        let mut tx = self.begin().await?;
        let (created, updated) = lists::import_needs(&mut tx, records).await?;
        tx.commit().await?;
        Ok(ImportCounts { created, updated })
    }

    async fn create_negative(&self, spec: &NegativeSpec) -> Result<NegativeRecord> {
        let mut tx = self.begin().await?;
        let id = lists::create_negative(&mut tx, spec.clone()).await?;
        tx.commit().await?;
        Ok(NegativeRecord::new(id, spec.clone()))
    }

    async fn delete_negative(&self, id: i64) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        lists::delete_row(&mut conn, "negative_entries", "negative entry", id).await
    }

    async fn list_negatives(&self) -> Result<Vec<NegativeRecord>> {
        let mut conn = self.pool.acquire().await?;
        lists::list_negatives(&mut conn).await
    }

    async fn import_negatives(&self, records: &[Located<NegativeRecord>]) -> Result<ImportCounts> {
        let mut tx = self.begin().await?;
        let mut counts = ImportCounts::default();
        for r in records {
            let created = lists::write_negative(&mut tx, &r.value)
                .await
                .map_err(|e| e.at(&r.at))?;
            *if created {
                &mut counts.created
            } else {
                &mut counts.updated
            } += 1;
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn create_responsibility(
        &self,
        spec: &ResponsibilitySpec,
    ) -> Result<ResponsibilityRecord> {
        let mut tx = self.begin().await?;
        let id = lists::create_responsibility(&mut tx, spec.clone()).await?;
        tx.commit().await?;
        Ok(ResponsibilityRecord::new(id, spec.clone()))
    }

    async fn delete_responsibility(&self, id: i64) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        lists::delete_row(&mut conn, "responsibilities", "responsibility", id).await
    }

    async fn list_responsibilities(&self) -> Result<Vec<ResponsibilityRecord>> {
        let mut conn = self.pool.acquire().await?;
        Ok(lists::list_responsibilities(&mut conn)
            .await?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    async fn import_responsibilities(
        &self,
        records: &[Located<ResponsibilityRecord>],
    ) -> Result<ImportCounts> {
        let mut tx = self.begin().await?;
        let mut counts = ImportCounts::default();
        for r in records {
            let created = lists::write_responsibility(&mut tx, &r.value)
                .await
                .map_err(|e| e.at(&r.at))?;
            *if created {
                &mut counts.created
            } else {
                &mut counts.updated
            } += 1;
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn compliance(&self, now: DateTime<Utc>) -> Result<Vec<ComplianceRow>> {
        let mut conn = self.pool.acquire().await?;
        lists::compliance(&mut conn, now).await
    }

    async fn calendar(&self) -> Result<Calendar> {
        let mut conn = self.pool.acquire().await?;
        lists::get_calendar(&mut conn).await
    }

    async fn set_calendar(&self, calendar: &Calendar) -> Result<()> {
        let mut tx = self.begin().await?;
        lists::put_calendar(&mut tx, calendar).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn policy_input(&self) -> Result<PolicyInput> {
        let resources = self.export_resources().await?;
        let mut conn = self.pool.acquire().await?;
        lists::policy_input(&mut conn, resources).await
    }

    async fn changes(&self) -> Result<crate::changes::Changes> {
        let rows = sqlx::query("SELECT topic, counter FROM catalog_changes")
            .fetch_all(&self.pool)
            .await?;
        let mut changes = crate::changes::Changes::default();
        for row in rows {
            let topic: String = row.try_get("topic")?;
            let counter: i64 = row.try_get("counter")?;
            match crate::changes::Topic::parse(&topic) {
                Some(t) => {
                    changes.topics.insert(t, counter);
                }
                None if topic == "clock" => changes.counter = counter,
                // A topic of a newer hub's migration: not ours to reload.
                None => {}
            }
        }
        Ok(changes)
    }

    fn listen_url(&self) -> Option<String> {
        self.url.clone()
    }

    async fn record_audit_head(&self, head: &AuditHead) -> Result<()> {
        // Heads only advance: an older report (a replica restarted from an
        // old disk) never moves one back; verify then reports the gap.
        sqlx::query(
            "INSERT INTO audit_heads (replica, seq, hash, shipped, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (replica) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
                 shipped = excluded.shipped, updated_at = excluded.updated_at
             WHERE audit_heads.seq <= excluded.seq",
        )
        .bind(&head.replica)
        .bind(head.seq)
        .bind(&head.hash)
        .bind(head.shipped)
        .bind(time_text(head.updated_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_heads(&self) -> Result<Vec<AuditHead>> {
        let rows = sqlx::query(
            "SELECT replica, seq, hash, shipped, updated_at FROM audit_heads ORDER BY replica",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditHead {
                    replica: r.try_get("replica")?,
                    seq: r.try_get("seq")?,
                    hash: r.try_get("hash")?,
                    shipped: r.try_get("shipped")?,
                    updated_at: parse_time(&r.try_get::<String, _>("updated_at")?)?,
                })
            })
            .collect()
    }

    async fn raise_objection(&self, raise: &Raise<'_>) -> Result<ObjectionRecord> {
        let calendar = self.calendar().await?;
        let mut tx = self.begin().await?;
        let id = objections::raise(&mut tx, raise, &calendar).await?;
        tx.commit().await?;
        self.get_objection(id).await
    }

    async fn get_objection(&self, id: i64) -> Result<ObjectionRecord> {
        let mut conn = self.pool.acquire().await?;
        objections::find(&mut conn, id).await
    }

    async fn list_objections(&self, query: &ObjectionQuery) -> Result<Vec<ObjectionRecord>> {
        let mut conn = self.pool.acquire().await?;
        objections::list(&mut conn, query).await
    }

    async fn objection_step(
        &self,
        id: i64,
        actor: &str,
        step: &Step,
        now: DateTime<Utc>,
    ) -> Result<ObjectionRecord> {
        let mut tx = self.begin().await?;
        objections::step(&mut tx, id, actor, step, now).await?;
        tx.commit().await?;
        self.get_objection(id).await
    }

    async fn record_audit_checkpoint(&self, c: &AuditCheckpoint) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (replica, size, root, note, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (replica, size) DO NOTHING",
        )
        .bind(&c.replica)
        .bind(c.size)
        .bind(&c.root)
        .bind(&c.note)
        .bind(time_text(c.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_checkpoints(&self, replica: Option<&str>) -> Result<Vec<AuditCheckpoint>> {
        const SELECT: &str = "SELECT replica, size, root, note, created_at FROM audit_checkpoints";
        let rows = match replica {
            Some(r) => {
                sqlx::query(&format!("{SELECT} WHERE replica = $1 ORDER BY size"))
                    .bind(r)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("{SELECT} ORDER BY replica, size"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(AuditCheckpoint {
                    replica: r.try_get("replica")?,
                    size: r.try_get("size")?,
                    root: r.try_get("root")?,
                    note: r.try_get("note")?,
                    created_at: parse_time(&r.try_get::<String, _>("created_at")?)?,
                })
            })
            .collect()
    }

    async fn register_seal_key(&self, key: &SealKeyRecord) -> Result<()> {
        let exists = sqlx::query("SELECT 1 FROM departments WHERE code = $1")
            .bind(&key.department)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Err(Error::NotFound {
                what: "department",
                key: key.department.clone(),
            });
        }
        sqlx::query(
            "INSERT INTO seal_keys (department, algorithm, public_key, registered_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (department) DO UPDATE SET algorithm = excluded.algorithm,
                 public_key = excluded.public_key, registered_at = excluded.registered_at",
        )
        .bind(&key.department)
        .bind(&key.algorithm)
        .bind(&key.public_key)
        .bind(time_text(key.registered_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn seal_keys(&self) -> Result<Vec<SealKeyRecord>> {
        let rows = sqlx::query(
            "SELECT department, algorithm, public_key, registered_at FROM seal_keys ORDER BY department",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SealKeyRecord {
                    department: r.try_get("department")?,
                    algorithm: r.try_get("algorithm")?,
                    public_key: r.try_get("public_key")?,
                    registered_at: parse_time(&r.try_get::<String, _>("registered_at")?)?,
                })
            })
            .collect()
    }

    async fn register_service(
        &self,
        registration: &crate::services::ServiceRegistration,
    ) -> Result<crate::services::ServiceRecord> {
        let mut tx = self.begin().await?;
        services::register(&mut tx, registration).await?;
        let record = services::get(&mut tx, &registration.resource.code).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn get_service(&self, code: &str) -> Result<crate::services::ServiceRecord> {
        let mut conn = self.pool.acquire().await?;
        services::get(&mut conn, code).await
    }

    async fn list_services(&self) -> Result<Vec<crate::services::ServiceRecord>> {
        let mut conn = self.pool.acquire().await?;
        services::list(&mut conn).await
    }

    async fn switch_service(
        &self,
        code: &str,
        switch: &crate::services::ServiceSwitch,
    ) -> Result<crate::services::ServiceRecord> {
        let mut tx = self.begin().await?;
        services::switch(&mut tx, code, switch).await?;
        let record = services::get(&mut tx, code).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query(
            "SELECT token_hash, department_code, role, label FROM tokens ORDER BY label",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TokenRecord {
                    token_hash: row.try_get("token_hash")?,
                    department: row.try_get("department_code")?,
                    role: parse_word(&row.try_get::<String, _>("role")?)?,
                    label: row.try_get("label")?,
                })
            })
            .collect()
    }
}
