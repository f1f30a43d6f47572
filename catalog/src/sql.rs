//! [`SqlStore`]: the [`Store`] over SQLite (embedded default) or PostgreSQL,
//! through sqlx's `Any` driver so that both run the very same SQL. The SQL is
//! kept portable on purpose: `$n` placeholders (SQLite accepts them too), TEXT
//! times, BIGINT integers, no vendor functions.

use crate::lists::*;
use crate::model::*;
use crate::sql_lists;
use crate::sql_subscriptions;
use crate::sql_sync;
use crate::store::Store;
use crate::subscriptions::*;
use crate::sync::*;
use crate::{Error, Result, validate};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Arguments, Row};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use tongban_policies::PolicyInput;
use tongban_policies::calendar::Calendar;

/// Migrations, applied in order, each once, each in its own transaction.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "directory",
        include_str!("../migrations/0001_directory.sql"),
    ),
    (2, "lists", include_str!("../migrations/0002_lists.sql")),
    (3, "sync", include_str!("../migrations/0003_sync.sql")),
    (
        4,
        "sync diff deletes",
        include_str!("../migrations/0004_sync_diff.sql"),
    ),
    (
        5,
        "subscriptions and return flow",
        include_str!("../migrations/0005_subscriptions.sql"),
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
}

pub(crate) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn now_text() -> String {
    time_text(Utc::now())
}

pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::Corrupt(format!("time '{s}': {e}")))
}

pub(crate) fn parse_word<T: FromStr>(s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| Error::Corrupt(e.to_string()))
}

/// Positional arguments with `$n` placeholders, for queries built at run time.
#[derive(Default)]
struct Args {
    args: AnyArguments<'static>,
    n: usize,
}

impl Args {
    fn text(&mut self, v: impl Into<String>) -> String {
        self.args.add(v.into()).expect("string argument");
        self.n += 1;
        format!("${}", self.n)
    }
    fn int(&mut self, v: i64) -> String {
        self.args.add(v).expect("integer argument");
        self.n += 1;
        format!("${}", self.n)
    }
    fn list<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) -> String {
        values
            .into_iter()
            .map(|v| self.text(v))
            .collect::<Vec<_>>()
            .join(", ")
    }
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
        let store = SqlStore { pool, backend };
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
            for &(version, description, sql) in MIGRATIONS {
                if applied.contains(&version) {
                    continue;
                }
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

// ---- departments ----------------------------------------------------------

const DEPARTMENT_COLS: &str = "code, name, level, parent_code, division_code, credit_code";

fn department_from_row(row: &AnyRow) -> Result<Department> {
    Ok(Department {
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        level: parse_word(&row.try_get::<String, _>("level")?)?,
        parent: row.try_get("parent_code")?,
        division_code: row.try_get("division_code")?,
        credit_code: row.try_get("credit_code")?,
    })
}

pub(crate) async fn find_department(
    conn: &mut AnyConnection,
    code: &str,
) -> Result<Option<Department>> {
    let row = sqlx::query(&format!(
        "SELECT {DEPARTMENT_COLS} FROM departments WHERE code = $1"
    ))
    .bind(code.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(department_from_row).transpose()
}

/// Validates a department against the rules and the parent it names.
async fn check_department(conn: &mut AnyConnection, d: &Department) -> Result<()> {
    validate::department(d)?;
    if let Some(parent) = &d.parent {
        let p = find_department(conn, parent)
            .await?
            .ok_or_else(|| Error::invalid("parent", format!("unknown department '{parent}'")))?;
        validate::parent_level(d.level, p.level)?;
    }
    Ok(())
}

/// Inserts or (with `replace`) updates a department. Returns whether it was new.
async fn upsert_department(
    conn: &mut AnyConnection,
    d: &Department,
    replace: bool,
) -> Result<bool> {
    check_department(conn, d).await?;
    let t = now_text();
    let exists = find_department(conn, &d.code).await?.is_some();
    if exists && !replace {
        return Err(Error::Duplicate {
            what: "department",
            key: d.code.clone(),
        });
    }
    let sql = if exists {
        "UPDATE departments SET name = $2, level = $3, parent_code = $4, division_code = $5,
         credit_code = $6, updated_at = $7 WHERE code = $1"
    } else {
        "INSERT INTO departments (code, name, level, parent_code, division_code, credit_code,
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
    };
    sqlx::query(sql)
        .bind(d.code.clone())
        .bind(d.name.clone())
        .bind(d.level.as_str())
        .bind(d.parent.clone())
        .bind(d.division_code.clone())
        .bind(d.credit_code.clone())
        .bind(t)
        .execute(&mut *conn)
        .await
        .map_err(|e| unique_to_duplicate(e, "department", &d.code))?;
    Ok(!exists)
}

/// A concurrent writer may win the race between our check and our insert.
pub(crate) fn unique_to_duplicate(e: sqlx::Error, what: &'static str, key: &str) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Duplicate {
            what,
            key: key.to_string(),
        },
        _ => Error::Database(e),
    }
}

// ---- resources -------------------------------------------------------------

const RESOURCE_COLS: &str = "code, name, provider_code, summary, category, base_library, format, \
     update_cycle, publish_date, key_items, division_item, status, version, created_at, updated_at";
const ITEM_COLS: &str = "resource_code, name, label, data_type, description, sensitivity, \
     share_type, share_condition, legal_basis, mask";
const VERSION_COLS: &str =
    "resource_code, version, created_at, row_count, byte_size, location, origin";

fn resource_from_row(row: &AnyRow) -> Result<Resource> {
    let key_items: String = row.try_get("key_items")?;
    let publish_date: Option<String> = row.try_get("publish_date")?;
    Ok(Resource {
        spec: ResourceSpec {
            code: row.try_get("code")?,
            name: row.try_get("name")?,
            provider: row.try_get("provider_code")?,
            summary: row.try_get("summary")?,
            category: parse_word(&row.try_get::<String, _>("category")?)?,
            base_library: row
                .try_get::<Option<String>, _>("base_library")?
                .map(|s| parse_word(&s))
                .transpose()?,
            format: parse_word(&row.try_get::<String, _>("format")?)?,
            update_cycle: parse_word(&row.try_get::<String, _>("update_cycle")?)?,
            publish_date: publish_date
                .map(|s| {
                    NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                        .map_err(|e| Error::Corrupt(format!("date '{s}': {e}")))
                })
                .transpose()?,
            key_items: serde_json::from_str(&key_items)
                .map_err(|e| Error::Corrupt(format!("key_items '{key_items}': {e}")))?,
            division_item: row.try_get("division_item")?,
            items: Vec::new(),
            status: Some(parse_word(&row.try_get::<String, _>("status")?)?),
        },
        version: row.try_get("version")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_time(&row.try_get::<String, _>("updated_at")?)?,
        latest_version: None,
    })
}

fn item_from_row(row: &AnyRow) -> Result<DataItem> {
    Ok(DataItem {
        name: row.try_get("name")?,
        label: row.try_get("label")?,
        data_type: row.try_get("data_type")?,
        description: row.try_get("description")?,
        sensitivity: parse_word(&row.try_get::<String, _>("sensitivity")?)?,
        share_type: parse_word(&row.try_get::<String, _>("share_type")?)?,
        share_condition: row.try_get("share_condition")?,
        legal_basis: row.try_get("legal_basis")?,
        mask: row
            .try_get::<Option<String>, _>("mask")?
            .map(|m| parse_word(&m))
            .transpose()?,
    })
}

fn version_from_row(row: &AnyRow) -> Result<DatasetVersion> {
    Ok(DatasetVersion {
        resource: row.try_get("resource_code")?,
        version: row.try_get("version")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
        row_count: row.try_get("row_count")?,
        byte_size: row.try_get("byte_size")?,
        location: row.try_get("location")?,
        origin: row.try_get("origin")?,
    })
}

/// Fills in items and latest versions for resources read without them.
async fn complete_resources(conn: &mut AnyConnection, resources: &mut [Resource]) -> Result<()> {
    if resources.is_empty() {
        return Ok(());
    }
    let mut args = Args::default();
    let codes = args.list(resources.iter().map(|r| r.spec.code.as_str()));
    let rows = sqlx::query_with(
        &format!(
            "SELECT {ITEM_COLS} FROM data_items WHERE resource_code IN ({codes})
             ORDER BY resource_code, position"
        ),
        args.args,
    )
    .fetch_all(&mut *conn)
    .await?;
    let index: HashMap<String, usize> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| (r.spec.code.clone(), i))
        .collect();
    for row in &rows {
        let code: String = row.try_get("resource_code")?;
        if let Some(&i) = index.get(&code) {
            resources[i].spec.items.push(item_from_row(row)?);
        }
    }
    let mut args = Args::default();
    let codes = args.list(resources.iter().map(|r| r.spec.code.as_str()));
    let rows = sqlx::query_with(
        &format!(
            "SELECT {VERSION_COLS} FROM dataset_versions v WHERE resource_code IN ({codes})
             AND version = (SELECT MAX(version) FROM dataset_versions w
                            WHERE w.resource_code = v.resource_code)"
        ),
        args.args,
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in &rows {
        let v = version_from_row(row)?;
        if let Some(&i) = index.get(&v.resource) {
            resources[i].latest_version = Some(v);
        }
    }
    Ok(())
}

/// Inserts a dataset version record (in the caller's transaction).
pub(crate) async fn insert_version(conn: &mut AnyConnection, v: &NewDatasetVersion) -> Result<()> {
    if find_resource(&mut *conn, &v.resource).await?.is_none() {
        return Err(Error::NotFound {
            what: "resource",
            key: v.resource.clone(),
        });
    }
    if v.version < 1 || v.row_count < 0 || v.byte_size < 0 {
        return Err(Error::invalid(
            "version",
            "version must be positive and counts not negative",
        ));
    }
    sqlx::query(
        "INSERT INTO dataset_versions (resource_code, version, created_at, row_count, byte_size,
         location, origin) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(v.resource.clone())
    .bind(v.version)
    .bind(now_text())
    .bind(v.row_count)
    .bind(v.byte_size)
    .bind(v.location.clone())
    .bind(v.origin.clone())
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        unique_to_duplicate(
            e,
            "dataset version",
            &format!("{}@{}", v.resource, v.version),
        )
    })?;
    Ok(())
}

pub(crate) async fn find_resource(
    conn: &mut AnyConnection,
    code: &str,
) -> Result<Option<Resource>> {
    let row = sqlx::query(&format!(
        "SELECT {RESOURCE_COLS} FROM resources WHERE code = $1"
    ))
    .bind(code.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut r = [resource_from_row(&row)?];
    complete_resources(conn, &mut r).await?;
    let [r] = r;
    Ok(Some(r))
}

fn search_text(spec: &ResourceSpec) -> String {
    let mut s = format!("{} {} {}", spec.code, spec.name, spec.summary);
    for item in &spec.items {
        s.push(' ');
        s.push_str(&item.name);
        s.push(' ');
        s.push_str(&item.label);
    }
    s.to_lowercase()
}

/// Whether a resource may move from one state to another.
fn check_transition(code: &str, from: Status, to: Status) -> Result<()> {
    use Status::*;
    match (from, to) {
        (Draft, Draft | Published | Retired) | (Published, Published | Retired) => Ok(()),
        (Retired, _) => Err(Error::Conflict(format!(
            "resource '{code}' is retired and read-only"
        ))),
        (Published, Draft) => Err(Error::Conflict(format!(
            "resource '{code}' is published and cannot go back to draft; retire it instead"
        ))),
    }
}

/// Inserts or (with `replace`) replaces a resource and its items. Returns
/// whether it was new.
async fn upsert_resource(
    conn: &mut AnyConnection,
    spec: &ResourceSpec,
    replace: bool,
) -> Result<bool> {
    validate::resource(spec)?;
    if find_department(conn, &spec.provider).await?.is_none() {
        return Err(Error::invalid(
            "provider",
            format!("unknown department '{}'", spec.provider),
        ));
    }
    let existing = find_resource(conn, &spec.code).await?;
    let t = now_text();
    let today = Utc::now().date_naive();
    let status = match &existing {
        Some(_) if !replace => {
            return Err(Error::Duplicate {
                what: "resource",
                key: spec.code.clone(),
            });
        }
        Some(old) if old.status() == Status::Retired => {
            return Err(Error::Conflict(format!(
                "resource '{}' is retired and read-only",
                spec.code
            )));
        }
        Some(old) => {
            let to = spec.status.unwrap_or(old.status());
            check_transition(&spec.code, old.status(), to)?;
            to
        }
        None => spec.status.unwrap_or(Status::Draft),
    };
    let publish_date = spec
        .publish_date
        .or_else(|| existing.as_ref().and_then(|r| r.spec.publish_date))
        .or((status == Status::Published).then_some(today))
        .map(|d| d.format("%Y-%m-%d").to_string());
    let key_items = serde_json::to_string(&spec.key_items).expect("strings serialise");
    let sql = if existing.is_some() {
        "UPDATE resources SET name = $2, provider_code = $3, summary = $4, category = $5,
         base_library = $6, format = $7, update_cycle = $8, publish_date = $9, key_items = $10,
         status = $11, version = version + 1, updated_at = $12, search_text = $13,
         division_item = $14 WHERE code = $1"
    } else {
        "INSERT INTO resources (code, name, provider_code, summary, category, base_library,
         format, update_cycle, publish_date, key_items, status, version, created_at, updated_at,
         search_text, division_item)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12, $13, $14)"
    };
    sqlx::query(sql)
        .bind(spec.code.clone())
        .bind(spec.name.clone())
        .bind(spec.provider.clone())
        .bind(spec.summary.clone())
        .bind(spec.category.as_str())
        .bind(spec.base_library.map(|b| b.as_str()))
        .bind(spec.format.as_str())
        .bind(spec.update_cycle.as_str())
        .bind(publish_date)
        .bind(key_items)
        .bind(status.as_str())
        .bind(t)
        .bind(search_text(spec))
        .bind(spec.division_item.clone())
        .execute(&mut *conn)
        .await
        .map_err(|e| unique_to_duplicate(e, "resource", &spec.code))?;
    sqlx::query("DELETE FROM data_items WHERE resource_code = $1")
        .bind(spec.code.clone())
        .execute(&mut *conn)
        .await?;
    for (position, item) in spec.items.iter().enumerate() {
        sqlx::query(
            "INSERT INTO data_items (resource_code, position, name, label, data_type, description,
             sensitivity, share_type, share_condition, legal_basis, mask)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(spec.code.clone())
        .bind(position as i64)
        .bind(item.name.clone())
        .bind(item.label.clone())
        .bind(item.data_type.clone())
        .bind(item.description.clone())
        .bind(item.sensitivity.as_str())
        .bind(item.share_type.as_str())
        .bind(item.share_condition.clone())
        .bind(item.legal_basis.clone())
        .bind(item.mask.map(|m| m.to_string()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(existing.is_none())
}

/// `%` and `_` in a search are literal characters, not wildcards.
fn like_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
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
        sql_sync::create_job(&mut tx, spec).await?;
        tx.commit().await?;
        self.get_sync_job(&spec.name).await
    }

    async fn get_sync_job(&self, name: &str) -> Result<SyncJob> {
        let mut conn = self.pool.acquire().await?;
        sql_sync::find_job(&mut conn, name)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "sync job",
                key: name.to_string(),
            })
    }

    async fn list_sync_jobs(&self) -> Result<Vec<SyncJob>> {
        let mut conn = self.pool.acquire().await?;
        sql_sync::list_jobs(&mut conn).await
    }

    async fn start_sync_run(&self, job: &str) -> Result<SyncRun> {
        let mut tx = self.begin().await?;
        let id = sql_sync::start_run(&mut tx, job).await?;
        tx.commit().await?;
        let mut conn = self.pool.acquire().await?;
        sql_sync::find_run(&mut conn, id).await
    }

    async fn finish_sync_run(&self, run: i64, finish: &RunFinish) -> Result<SyncRun> {
        let mut tx = self.begin().await?;
        sql_sync::finish_run(&mut tx, run, finish).await?;
        tx.commit().await?;
        let mut conn = self.pool.acquire().await?;
        sql_sync::find_run(&mut conn, run).await
    }

    async fn create_subscription(
        &self,
        consumer: &str,
        spec: &SubscriptionSpec,
        secret: Option<String>,
    ) -> Result<Subscription> {
        let mut tx = self.begin().await?;
        let id = sql_subscriptions::create(&mut tx, consumer, spec, secret).await?;
        let sub = sql_subscriptions::find(&mut tx, id).await?;
        tx.commit().await?;
        Ok(sub)
    }

    async fn get_subscription(&self, id: i64) -> Result<Subscription> {
        let mut conn = self.pool.acquire().await?;
        sql_subscriptions::find(&mut conn, id).await
    }

    async fn find_subscription(&self, consumer: &str, name: &str) -> Result<Subscription> {
        let mut conn = self.pool.acquire().await?;
        sql_subscriptions::find_by_name(&mut conn, consumer, name).await
    }

    async fn list_subscriptions(&self, consumer: Option<&str>) -> Result<Vec<Subscription>> {
        let mut conn = self.pool.acquire().await?;
        sql_subscriptions::list(&mut conn, consumer).await
    }

    async fn set_subscription_status(
        &self,
        id: i64,
        status: SubscriptionStatus,
        reason: Option<&str>,
    ) -> Result<Subscription> {
        let mut tx = self.begin().await?;
        sql_subscriptions::set_status(&mut tx, id, status, reason).await?;
        let sub = sql_subscriptions::find(&mut tx, id).await?;
        tx.commit().await?;
        Ok(sub)
    }

    async fn advance_cursor(&self, id: i64, version: i64) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        sql_subscriptions::advance_cursor(&mut conn, id, version).await
    }

    async fn enqueue_deliveries(&self, subscription: i64, versions: &[i64]) -> Result<usize> {
        let mut tx = self.begin().await?;
        let added = sql_subscriptions::enqueue(&mut tx, subscription, versions).await?;
        tx.commit().await?;
        Ok(added)
    }

    async fn due_deliveries(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Delivery>> {
        let mut conn = self.pool.acquire().await?;
        sql_subscriptions::due(&mut conn, now, limit).await
    }

    async fn claim_delivery(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        sql_subscriptions::claim(&mut conn, id, owner, now, lease_until).await
    }

    async fn release_delivery_leases(&self, owner: &str) -> Result<u64> {
        let mut conn = self.pool.acquire().await?;
        sql_subscriptions::release_leases(&mut conn, owner).await
    }

    async fn finish_delivery(&self, id: i64, attempt: &Attempt) -> Result<Delivery> {
        let mut tx = self.begin().await?;
        sql_subscriptions::finish(&mut tx, id, attempt).await?;
        let delivery = sql_subscriptions::find_delivery(&mut tx, id).await?;
        tx.commit().await?;
        Ok(delivery)
    }

    async fn list_deliveries(&self, subscription: i64, limit: i64) -> Result<Vec<Delivery>> {
        let mut conn = self.pool.acquire().await?;
        sql_subscriptions::list_deliveries(&mut conn, subscription, limit).await
    }

    async fn list_sync_runs(&self, job: Option<&str>, limit: i64) -> Result<Vec<SyncRun>> {
        let mut conn = self.pool.acquire().await?;
        sql_sync::list_runs(&mut conn, job, limit).await
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
        let id = sql_lists::apply_need(&mut tx, consumer, application).await?;
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
        sql_lists::review_need(&mut tx, id, actor, &action, reason).await?;
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
                sql_subscriptions::set_status(
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
        sql_lists::find_need(&mut conn, id)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "need",
                key: id.to_string(),
            })
    }

    async fn list_needs(&self, query: &NeedQuery) -> Result<Vec<NeedRecord>> {
        let mut conn = self.pool.acquire().await?;
        sql_lists::list_needs(&mut conn, query).await
    }

    async fn import_needs(&self, records: &[Located<NeedRecord>]) -> Result<ImportCounts> {
        let mut tx = self.begin().await?;
        let (created, updated) = sql_lists::import_needs(&mut tx, records).await?;
        tx.commit().await?;
        Ok(ImportCounts { created, updated })
    }

    async fn create_negative(&self, spec: &NegativeSpec) -> Result<NegativeRecord> {
        let mut tx = self.begin().await?;
        let id = sql_lists::create_negative(&mut tx, spec.clone()).await?;
        tx.commit().await?;
        Ok(NegativeRecord::new(id, spec.clone()))
    }

    async fn delete_negative(&self, id: i64) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        sql_lists::delete_row(&mut conn, "negative_entries", "negative entry", id).await
    }

    async fn list_negatives(&self) -> Result<Vec<NegativeRecord>> {
        let mut conn = self.pool.acquire().await?;
        sql_lists::list_negatives(&mut conn).await
    }

    async fn import_negatives(&self, records: &[Located<NegativeRecord>]) -> Result<ImportCounts> {
        let mut tx = self.begin().await?;
        let mut counts = ImportCounts::default();
        for r in records {
            let created = sql_lists::write_negative(&mut tx, &r.value)
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
        let id = sql_lists::create_responsibility(&mut tx, spec.clone()).await?;
        tx.commit().await?;
        Ok(ResponsibilityRecord::new(id, spec.clone()))
    }

    async fn delete_responsibility(&self, id: i64) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        sql_lists::delete_row(&mut conn, "responsibilities", "responsibility", id).await
    }

    async fn list_responsibilities(&self) -> Result<Vec<ResponsibilityRecord>> {
        let mut conn = self.pool.acquire().await?;
        Ok(sql_lists::list_responsibilities(&mut conn)
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
            let created = sql_lists::write_responsibility(&mut tx, &r.value)
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
        sql_lists::compliance(&mut conn, now).await
    }

    async fn calendar(&self) -> Result<Calendar> {
        let mut conn = self.pool.acquire().await?;
        sql_lists::get_calendar(&mut conn).await
    }

    async fn set_calendar(&self, calendar: &Calendar) -> Result<()> {
        let mut tx = self.begin().await?;
        sql_lists::put_calendar(&mut tx, calendar).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn policy_input(&self) -> Result<PolicyInput> {
        let resources = self.export_resources().await?;
        let mut conn = self.pool.acquire().await?;
        sql_lists::policy_input(&mut conn, resources).await
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
