//! Sync runs end to end: a provider's PostgreSQL table → quality gate →
//! a new dataset version the directory shows; incremental runs with
//! tombstones; schema drift; a run killed midway; the CLI.

use crate::common::{
    Hub, cells, citizen_id, expect_json, pg_connect, pg_url, read_parquet_file, run_ok, sync_job,
    tongban,
};
use sqlx::PgConnection;
use std::process::Command;
use tongban_catalog::sync::{RunOutcome, SyncJobSpec, SyncMode};
use tongban_catalog::{ResourceSpec, Store};
use tongban_sync::run_job;

pub(crate) const CODE: &str = "301/000101";

/// A department resource with one item of each common type.
pub(crate) fn resource() -> ResourceSpec {
    serde_json::from_value(serde_json::json!({
        "code": CODE, "name": "社保参保缴费信息", "provider": "sh-rsj",
        "summary": "参保人员的缴费记录", "category": "department", "format": "database",
        "update_cycle": "daily", "key_items": ["citizen_id"], "status": "published",
        "items": [
            {"name": "citizen_id", "label": "公民身份号码", "data_type": "Utf8", "sensitivity": "sensitive",
             "share_type": "conditional", "share_condition": "办理社保业务"},
            {"name": "name", "label": "姓名", "data_type": "Utf8", "sensitivity": "sensitive",
             "share_type": "conditional", "share_condition": "办理社保业务"},
            {"name": "amount", "label": "缴费金额", "data_type": "Decimal128(12, 2)", "sensitivity": "internal",
             "share_type": "unconditional"},
            {"name": "paid_on", "label": "缴费日期", "data_type": "Date32", "sensitivity": "internal",
             "share_type": "unconditional"},
            {"name": "months", "label": "缴费月数", "data_type": "Int32", "sensitivity": "internal",
             "share_type": "unconditional"}
        ]
    }))
    .unwrap()
}

pub(crate) struct Provider {
    conn: PgConnection,
    url: String,
}

/// The provider's own database: a schema of `test` with a `payments` table.
pub(crate) async fn provider(name: &str) -> Provider {
    let mut conn = pg_connect().await;
    let schema = format!("tongban_e2e_sync_{name}");
    sqlx::raw_sql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema};
         CREATE TABLE payments (citizen_id text, name text, amount numeric(12,2), paid_on date,
            months int4, updated_at timestamp NOT NULL DEFAULT now(), deleted bool NOT NULL DEFAULT false);"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let url = format!("{}?options=-c%20search_path%3D{schema}", pg_url());
    Provider { conn, url }
}

impl Provider {
    async fn exec(&mut self, sql: &str) {
        sqlx::raw_sql(sql).execute(&mut self.conn).await.unwrap();
    }

    pub(crate) async fn insert(&mut self, from: u32, to: u32, at: &str) {
        for n in from..to {
            self.exec(&format!(
                "INSERT INTO payments VALUES ('{}', '参保人{n}', {n}.50, DATE '2026-01-01' + {n}, {n}, TIMESTAMP '{at}', false)",
                citizen_id(n)
            ))
            .await;
        }
    }

    pub(crate) fn source(&self, batch_rows: usize) -> serde_json::Value {
        serde_json::json!({"type": "postgres", "url": self.url, "table": "payments", "batch_rows": batch_rows})
    }
}

/// A hub with the resource, and a provider table of `rows` rows updated
/// at 2026-11-01.
async fn start(name: &str, rows: u32) -> (Hub, Provider) {
    let hub = Hub::start(None).await;
    hub.store.create_resource(&resource()).await.unwrap();
    let mut p = provider(name).await;
    p.insert(0, rows, "2026-11-01 00:00").await;
    (hub, p)
}

/// A job of the resource here (see [`sync_job`]).
fn job(name: &str, source: serde_json::Value, mode: SyncMode) -> SyncJobSpec {
    sync_job(name, CODE, source, mode)
}

/// The rows of the newest version, as (citizen_id, name, amount text, months).
async fn published(hub: &Hub) -> Vec<(String, String, String, i32)> {
    use arrow::array::AsArray;
    let (_, batches) = hub.read_newest(CODE).await;
    let mut rows = Vec::new();
    for b in batches {
        let id = b
            .column_by_name("citizen_id")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let name = b.column_by_name("name").unwrap().as_string::<i32>().clone();
        let amount = arrow::compute::cast(
            b.column_by_name("amount").unwrap(),
            &arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let amount = amount.as_string::<i32>().clone();
        let months = b
            .column_by_name("months")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int32Type>()
            .clone();
        for r in 0..b.num_rows() {
            rows.push((
                id.value(r).to_string(),
                name.value(r).to_string(),
                amount.value(r).to_string(),
                months.value(r),
            ));
        }
    }
    rows.sort();
    rows
}

/// A full run: valid rows published, bad rows quarantined with their
/// reasons and counted, the version visible over the directory API.
#[tokio::test]
async fn a_full_run_publishes_good_rows_and_quarantines_bad_ones() {
    let (hub, mut p) = start("full", 250).await;
    // Bad rows: a wrong check digit, an empty key, a duplicate key.
    let good = citizen_id(1);
    let bad_id = format!(
        "{}{}",
        &good[..17],
        if good.ends_with('0') { '1' } else { '0' }
    );
    p.exec(&format!(
        "INSERT INTO payments VALUES ('{bad_id}', '坏号', 1, '2026-01-01', 1, now(), false),
            (NULL, '无号', 1, '2026-01-01', 1, now(), false),
            ('{}', '重复', 1, '2026-01-01', 1, now(), false)",
        citizen_id(3)
    ))
    .await;
    hub.store
        .create_sync_job(&job("payments-full", p.source(64), SyncMode::Full))
        .await
        .unwrap();
    let seen = std::sync::Mutex::new(0u64);
    let run = run_job(&hub.sync_context(), "payments-full", &|pr| {
        *seen.lock().unwrap() = pr.rows_read
    })
    .await
    .unwrap();
    assert_eq!(run.outcome, RunOutcome::Succeeded);
    assert_eq!(
        *seen.lock().unwrap(),
        253,
        "progress reports every row read"
    );
    assert_eq!(run.counts.rows_read, 253);
    assert_eq!(run.counts.rows_written, 250);
    assert_eq!(run.counts.rows_quarantined, 3);
    assert!(run.counts.bytes > 0);
    let rows = published(&hub).await;
    assert_eq!(rows.len(), 250);
    assert!(rows.contains(&(citizen_id(7), "参保人7".into(), "7.50".into(), 7)));
    // The quarantine file names each bad row and why.
    let path = run.quarantine.clone().expect("a quarantine file");
    let mut reasons = Vec::new();
    for b in read_parquet_file(&path) {
        reasons.extend(
            cells(&b, "_reason")
                .into_iter()
                .map(|s| s.expect("a reason")),
        );
    }
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("citizen_id") && r.contains("check")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("key item 'citizen_id' is empty")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("duplicate key")),
        "{reasons:?}"
    );
    // The directory shows the version.
    let versions = expect_json(
        hub.get(
            &format!("/v1/catalog/resources/{CODE}/versions"),
            "data-office",
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(versions[0]["version"], run.version.unwrap());
    assert_eq!(versions[0]["row_count"], 250);
    assert_eq!(
        versions[0]["origin"],
        format!("sync:payments-full#{}", run.id)
    );

    // A second full run after deletes and edits is exactly the source.
    p.exec(&format!("DELETE FROM payments WHERE citizen_id = '{}' OR citizen_id IS NULL OR name IN ('坏号', '重复')", citizen_id(0))).await;
    p.exec(&format!(
        "UPDATE payments SET name = '改名' WHERE citizen_id = '{}'",
        citizen_id(9)
    ))
    .await;
    let run2 = hub.run_sync("payments-full").await.unwrap();
    assert_eq!(run2.version, Some(run.version.unwrap() + 1));
    assert_eq!(run2.counts.rows_quarantined, 0);
    assert_eq!(run2.quarantine, None);
    let rows = published(&hub).await;
    assert_eq!(rows.len(), 249);
    assert!(rows.iter().any(|r| r.0 == citizen_id(9) && r.1 == "改名"));
    assert!(!rows.iter().any(|r| r.0 == citizen_id(0)));
}

/// Incremental runs read past the watermark and merge by key: inserts,
/// updates and tombstoned deletes, each counted; the change set records them.
#[tokio::test]
async fn incremental_runs_merge_changes_past_the_watermark() {
    let (hub, mut p) = start("incr", 100).await;
    hub.store
        .create_sync_job(&job("payments-incr", p.source(32), SyncMode::Incremental))
        .await
        .unwrap();
    let first = hub.run_sync("payments-incr").await.unwrap();
    assert_eq!((first.counts.rows_read, first.counts.inserts), (100, 100));
    assert_eq!(
        first.watermark.as_deref(),
        Some("2026-11-01 00:00:00.000000")
    );

    // Nothing new: nothing read, the same rows in a new version.
    let idle = hub.run_sync("payments-incr").await.unwrap();
    assert_eq!(idle.counts.rows_read, 0);
    assert_eq!(idle.counts.rows_written, 100);

    p.insert(100, 110, "2026-11-02 00:00").await;
    p.exec(&format!("UPDATE payments SET name = '更新', updated_at = '2026-11-02 01:00' WHERE citizen_id = '{}'", citizen_id(5))).await;
    p.exec(&format!("UPDATE payments SET deleted = true, updated_at = '2026-11-02 02:00' WHERE citizen_id IN ('{}', '{}')", citizen_id(6), citizen_id(7))).await;
    let run = hub.run_sync("payments-incr").await.unwrap();
    assert_eq!(run.counts.rows_read, 13);
    assert_eq!(
        (run.counts.inserts, run.counts.updates, run.counts.deletes),
        (10, 1, 2)
    );
    assert_eq!(run.counts.rows_written, 108);
    assert_eq!(run.watermark.as_deref(), Some("2026-11-02 02:00:00.000000"));
    let rows = published(&hub).await;
    assert_eq!(rows.len(), 108);
    assert!(rows.iter().any(|r| r.0 == citizen_id(5) && r.1 == "更新"));
    assert!(
        !rows
            .iter()
            .any(|r| r.0 == citizen_id(6) || r.0 == citizen_id(7))
    );
    // What a full read of the source would give, minus tombstones.
    let source_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM payments WHERE NOT deleted")
        .fetch_one(&mut p.conn)
        .await
        .unwrap();
    assert_eq!(rows.len() as i64, source_rows);
    // The change set: 10 inserts, 1 pre- and 1 postimage, 2 deletes.
    let changes = hub
        .sync_context()
        .datasets
        .read_version(&tongban_datasets::DatasetStore::changes_location(
            &hub.store.list_versions(CODE).await.unwrap()[0].location,
        ))
        .await
        .unwrap();
    let mut kinds = std::collections::BTreeMap::new();
    for b in &changes {
        for k in cells(b, "_change_type") {
            *kinds.entry(k.expect("a change type")).or_insert(0) += 1;
        }
    }
    assert_eq!(
        kinds,
        [
            ("delete", 2),
            ("insert", 10),
            ("update_postimage", 1),
            ("update_preimage", 1)
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    );
}

/// A source whose columns no longer match the items fails before anything
/// is written, naming the problem; the previous version keeps serving.
#[tokio::test]
async fn schema_drift_fails_the_run_before_writing() {
    let (hub, mut p) = start("drift", 20).await;
    hub.store
        .create_sync_job(&job("payments-drift", p.source(8), SyncMode::Full))
        .await
        .unwrap();
    let ok = hub.run_sync("payments-drift").await.unwrap();
    p.exec("ALTER TABLE payments RENAME COLUMN months TO month_count; ALTER TABLE payments ALTER COLUMN paid_on TYPE bytea USING '\\x00'::bytea").await;
    let err = hub
        .run_sync("payments-drift")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("item 'months' is missing from the source"),
        "{err}"
    );
    assert!(err.contains("item 'paid_on'"), "{err}");
    let history = hub
        .store
        .list_sync_runs(Some("payments-drift"), 10)
        .await
        .unwrap();
    assert_eq!(history[0].outcome, RunOutcome::Failed);
    assert!(history[0].error.as_deref().unwrap().contains("months"));
    assert_eq!(history[0].version, None);
    let versions = hub.store.list_versions(CODE).await.unwrap();
    assert_eq!(
        versions[0].version,
        ok.version.unwrap(),
        "the previous version still serves"
    );
}

/// `tongban sync ARGS`.
fn sync() -> Command {
    let mut c = tongban();
    c.arg("sync");
    c
}

/// `tongban sync ARGS`, which must succeed; its standard output.
fn sync_ok(args: &[&str]) -> String {
    run_ok(sync().args(args))
}

/// `tongban sync add|run|list` as a user runs them; a bad source config is
/// refused before anything is stored.
#[tokio::test]
async fn the_cli_adds_runs_and_lists_jobs() {
    let (hub, p) = start("cli", 50).await;
    let dir = hub.data_dir().to_str().unwrap().to_string();
    let source = p.source(10).to_string();
    sync_ok(&[
        "add",
        "payments-cli",
        "--data-dir",
        &dir,
        "--resource",
        CODE,
        "--schedule",
        "0 30 2 * * *",
        "--source",
        &source,
    ]);
    // A bad source config is refused before anything is stored.
    let out = sync()
        .args([
            "add",
            "bad",
            "--data-dir",
            &dir,
            "--resource",
            CODE,
            "--source",
            r#"{"type":"postgres","url":"postgres://x/y"}"#,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exactly one of `table` and `query`"));
    let text = sync_ok(&["run", "payments-cli", "--data-dir", &dir]);
    assert!(
        text.contains("succeeded") && text.contains("with 50 rows"),
        "{text}"
    );
    let list = sync_ok(&["list", "--data-dir", &dir]);
    assert!(
        list.contains("payments-cli")
            && list.contains("0 30 2 * * *")
            && list.contains("succeeded"),
        "{list}"
    );
}

/// A run killed midway leaves the previous version, is marked interrupted,
/// and the rerun publishes exactly the source's rows.
#[tokio::test]
async fn a_killed_run_changes_nothing_and_its_rerun_publishes_the_source() {
    let (hub, mut p) = start("killed", 50).await;
    let dir = hub.data_dir().to_str().unwrap().to_string();
    // The previous version.
    hub.store
        .create_sync_job(&job("payments-before", p.source(10), SyncMode::Full))
        .await
        .unwrap();
    hub.run_sync("payments-before").await.unwrap();

    // Kill a run midway: a big, slow source (one row per batch).
    p.insert(50, 60, "2026-11-01 00:00").await;
    let slow = serde_json::json!({"type": "postgres", "url": p.url,
        "query": "SELECT p.*, pg_sleep(0.02) IS NULL AS slow FROM payments p", "batch_rows": 1});
    hub.store
        .create_sync_job(&job("payments-slow", slow, SyncMode::Full))
        .await
        .unwrap();
    let before = hub.store.list_versions(CODE).await.unwrap()[0].version;
    let mut child = sync()
        .args(["run", "payments-slow", "--data-dir", &dir])
        .spawn()
        .unwrap();
    // Wait until the run is recorded as running, then kill it.
    let started = std::time::Instant::now();
    loop {
        let runs = hub
            .store
            .list_sync_runs(Some("payments-slow"), 1)
            .await
            .unwrap();
        if runs
            .first()
            .is_some_and(|r| r.outcome == RunOutcome::Running)
        {
            break;
        }
        assert!(started.elapsed().as_secs() < 30, "the run never started");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        hub.store.list_versions(CODE).await.unwrap()[0].version,
        before,
        "nothing published"
    );
    // The rerun: the dead run is marked interrupted; exactly the source's rows.
    sync_ok(&["run", "payments-slow", "--data-dir", &dir]);
    let runs = hub
        .store
        .list_sync_runs(Some("payments-slow"), 10)
        .await
        .unwrap();
    assert_eq!(runs[0].outcome, RunOutcome::Succeeded);
    assert_eq!(runs[1].outcome, RunOutcome::Interrupted);
    assert_eq!(published(&hub).await.len(), 60);
    let history = sync_ok(&["history", "--data-dir", &dir]);
    assert!(
        history.contains("interrupted") && history.contains("payments-slow"),
        "{history}"
    );
}

/// The server runs a job when its schedule comes due, and the new version
/// reaches lookups' directory without anyone running the CLI.
#[tokio::test]
async fn the_server_runs_scheduled_jobs() {
    let (hub, p) = start("scheduled", 30).await;
    let mut spec = job("payments-every-second", p.source(16), SyncMode::Full);
    spec.schedule = Some("* * * * * *".into());
    hub.store.create_sync_job(&spec).await.unwrap();
    let started = std::time::Instant::now();
    let run = loop {
        let runs = hub
            .store
            .list_sync_runs(Some("payments-every-second"), 1)
            .await
            .unwrap();
        if let Some(r) = runs
            .into_iter()
            .find(|r| r.outcome == RunOutcome::Succeeded)
        {
            break r;
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "no scheduled run within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(run.counts.rows_written, 30);
    assert_eq!(
        hub.store.list_versions(CODE).await.unwrap()[0].version,
        run.version.unwrap()
    );
}

/// A job's SQL transform (DataFusion) reshapes the source before the gate:
/// columns renamed and derived, rows filtered; an incremental job's
/// watermark still filters the source.
#[tokio::test]
async fn a_transform_reshapes_the_source() {
    let (hub, mut p) = start("transform", 40).await;
    p.exec("ALTER TABLE payments RENAME COLUMN citizen_id TO sfzh")
        .await;
    let mut spec = job("payments-transform", p.source(16), SyncMode::Incremental);
    spec.transform = Some(
        "SELECT sfzh AS citizen_id, 'T-' || name AS name, amount, paid_on, months * 2 AS months, \
         updated_at, deleted FROM source WHERE months < 30"
            .into(),
    );
    hub.store.create_sync_job(&spec).await.unwrap();
    let run = hub.run_sync("payments-transform").await.unwrap();
    assert_eq!((run.counts.rows_read, run.counts.rows_written), (30, 30));
    let rows = published(&hub).await;
    assert!(
        rows.contains(&(citizen_id(4), "T-参保人4".into(), "4.50".into(), 8)),
        "{:?}",
        &rows[..3]
    );
    // Past the watermark only: two new rows, one filtered out by the query.
    p.exec(&format!(
        "INSERT INTO payments VALUES ('{}', 'x', 1, '2026-01-01', 5, '2026-11-03', false), ('{}', 'y', 1, '2026-01-01', 50, '2026-11-03', false)",
        citizen_id(500), citizen_id(501)
    ))
    .await;
    let run = hub.run_sync("payments-transform").await.unwrap();
    assert_eq!(
        (
            run.counts.rows_read,
            run.counts.inserts,
            run.counts.rows_written
        ),
        (1, 1, 31)
    );
    // A transform that drops an item fails the run before anything is written.
    let mut bad = job("payments-bad-transform", p.source(16), SyncMode::Full);
    bad.transform = Some("SELECT sfzh AS citizen_id, name FROM source".into());
    hub.store.create_sync_job(&bad).await.unwrap();
    let err = hub
        .run_sync("payments-bad-transform")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("item 'amount' is missing"), "{err}");
    let mut bad = job("payments-bad-sql", p.source(16), SyncMode::Full);
    bad.transform = Some("SELECT nope FROM source".into());
    hub.store.create_sync_job(&bad).await.unwrap();
    let err = hub
        .run_sync("payments-bad-sql")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("transform") && err.contains("nope"), "{err}");
}

/// The same pipeline from MariaDB: a table read in key ranges, a bad row
/// quarantined, the rest published.
#[tokio::test]
async fn a_mariadb_table_syncs_too() {
    use sqlx::{Connection, MySqlConnection};
    let url = std::env::var("TONGBAN_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
    let mut my = MySqlConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("MariaDB at {url} must be reachable: {e}"));
    for sql in [
        "DROP TABLE IF EXISTS tongban_e2e_payments".to_string(),
        "CREATE TABLE tongban_e2e_payments (id INT PRIMARY KEY, citizen_id VARCHAR(18), name VARCHAR(50), \
         amount DECIMAL(12,2), paid_on DATE, months INT)"
            .to_string(),
    ] {
        sqlx::raw_sql(&sql).execute(&mut my).await.unwrap();
    }
    let rows: Vec<String> = (0..120)
        .map(|n| {
            format!(
                "({n}, '{}', '参保人{n}', {n}.25, '2026-02-01', {n})",
                citizen_id(n)
            )
        })
        .chain(std::iter::once(
            "(999, '310101198001010000', '坏号', 1, '2026-02-01', 1)".to_string(),
        ))
        .collect();
    sqlx::raw_sql(&format!(
        "INSERT INTO tongban_e2e_payments VALUES {}",
        rows.join(", ")
    ))
    .execute(&mut my)
    .await
    .unwrap();
    let hub = Hub::start(None).await;
    hub.store.create_resource(&resource()).await.unwrap();
    let source = serde_json::json!({"type": "mysql", "url": url, "table": "tongban_e2e_payments",
        "split_rows": 25, "batch_rows": 16});
    hub.store
        .create_sync_job(&job("payments-mariadb", source, SyncMode::Full))
        .await
        .unwrap();
    let run = hub.run_sync("payments-mariadb").await.unwrap();
    assert_eq!(
        (
            run.counts.rows_read,
            run.counts.rows_written,
            run.counts.rows_quarantined
        ),
        (121, 120, 1)
    );
    let rows = published(&hub).await;
    assert!(rows.contains(&(citizen_id(42), "参保人42".into(), "42.25".into(), 42)));
}

/// An incremental job without tombstones finds deletes by a full diff of
/// the source's keys.
#[tokio::test]
async fn diffed_deletes_remove_rows_gone_from_the_source() {
    let (hub, mut p) = start("diff", 50).await;
    let mut spec = job("payments-diff", p.source(16), SyncMode::Incremental);
    spec.tombstone_column = None;
    spec.diff_deletes = true;
    hub.store.create_sync_job(&spec).await.unwrap();
    hub.run_sync("payments-diff").await.unwrap();
    p.exec(&format!(
        "DELETE FROM payments WHERE citizen_id IN ('{}', '{}', '{}')",
        citizen_id(1),
        citizen_id(2),
        citizen_id(3)
    ))
    .await;
    p.insert(50, 52, "2026-11-05 00:00").await;
    let run = hub.run_sync("payments-diff").await.unwrap();
    assert_eq!(
        (run.counts.inserts, run.counts.updates, run.counts.deletes),
        (2, 0, 3)
    );
    assert_eq!(run.counts.rows_written, 49);
    let rows = published(&hub).await;
    assert!(!rows.iter().any(|r| r.0 == citizen_id(2)));
    assert!(rows.iter().any(|r| r.0 == citizen_id(51)));
}
