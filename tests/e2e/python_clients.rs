//! The official clients against the real hub: the Delta Sharing Python
//! client (`load_as_pandas`, `load_table_changes_as_pandas`) and
//! `pyarrow.flight` read a subscription, and get exactly the rows and items
//! the policy permits, masked — including the change feed of incremental
//! syncs; `pyarrow.flight` also looks keys up with DoExchange. The clients run from a virtualenv this test makes
//! (`tests/python/requirements.txt`, PyPI); without it the test fails.

use crate::common::{Hub, citizen_id, expect_json, pg_connect, pg_url, repo, sync_job};
use serde_json::{Value, json};
use sqlx::PgConnection;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use tongban_catalog::sync::SyncMode;
use tongban_catalog::{ResourceSpec, Store};
use tongban_policies::Mask;

const CODE: &str = "301/000201";
const XUHUI: &str = "xuhui-district";

/// The virtualenv's python, made (once, kept under /var/tmp) if needed.
pub fn python() -> PathBuf {
    let dir = std::env::var("TONGBAN_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/var/tmp/tongban-test-venv"));
    let py = dir.join("bin/python");
    let ready = |py: &Path| {
        Command::new(py)
            .args([
                "-c",
                "import delta_sharing, pyarrow.flight, pandas, cryptography",
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&py) {
        return py;
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .status()
        .expect("python3 must be installed for the client tests");
    assert!(made.success(), "python3 -m venv {} failed", dir.display());
    let pip = Command::new(dir.join("bin/pip"))
        .args(["install", "-q", "-r"])
        .arg(repo().join("tests/python/requirements.txt"))
        .status()
        .unwrap();
    assert!(
        pip.success(),
        "pip could not install tests/python/requirements.txt (PyPI must be reachable)"
    );
    assert!(
        ready(&py),
        "the virtualenv at {} is not usable",
        dir.display()
    );
    py
}

fn resource() -> ResourceSpec {
    serde_json::from_value(json!({
        "code": CODE, "name": "社保缴费记录（分区）", "provider": "sh-rsj",
        "summary": "参保人员的缴费记录，带所在区", "category": "department", "format": "database",
        "update_cycle": "daily", "key_items": ["citizen_id"], "division_item": "district",
        "status": "published",
        "items": [
            {"name": "citizen_id", "label": "公民身份号码", "data_type": "Utf8", "sensitivity": "sensitive",
             "share_type": "conditional", "share_condition": "办理社保业务", "mask": "citizen_id"},
            {"name": "name", "label": "姓名", "data_type": "Utf8", "sensitivity": "sensitive",
             "share_type": "conditional", "share_condition": "办理社保业务", "mask": "chinese_name"},
            {"name": "district", "label": "所在区", "data_type": "Utf8", "sensitivity": "internal",
             "share_type": "unconditional"},
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

fn district(n: u32) -> &'static str {
    if n.is_multiple_of(2) {
        "310104"
    } else {
        "310101"
    }
}

fn amount(n: u32, updated: bool) -> String {
    if updated {
        format!("{}.25", n + 100)
    } else {
        format!("{n}.50")
    }
}

fn paid_on(n: u32) -> String {
    (chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(n.into()))
        .to_string()
}

async fn exec(db: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sql).execute(db).await.unwrap();
}

fn as_set(frame: &Value, columns: &[&str]) -> BTreeSet<Vec<Option<String>>> {
    let have: Vec<&str> = frame["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let at: Vec<usize> = columns
        .iter()
        .map(|c| {
            have.iter()
                .position(|h| h == c)
                .unwrap_or_else(|| panic!("no column {c} in {have:?}"))
        })
        .collect();
    frame["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            at.iter()
                .map(|&i| r[i].as_str().map(String::from))
                .collect()
        })
        .collect()
}

/// The provider's table, synced incrementally: v1, then v2 with updates,
/// inserts and deletes (a change set).
async fn two_synced_versions(hub: &Hub) {
    hub.store.create_resource(&resource()).await.unwrap();
    let mut db = pg_connect().await;
    exec(
        &mut db,
        "DROP SCHEMA IF EXISTS tongban_e2e_py CASCADE; CREATE SCHEMA tongban_e2e_py;
         CREATE TABLE tongban_e2e_py.payments (citizen_id text PRIMARY KEY, name text, district text,
            amount numeric(12,2), paid_on date, months int4, updated_at timestamp NOT NULL,
            deleted bool NOT NULL DEFAULT false)",
    )
    .await;
    for n in 0..30u32 {
        exec(
            &mut db,
            &format!(
                "INSERT INTO tongban_e2e_py.payments VALUES ('{}', '参保人{n}', '{}', {}, DATE '{}', {n}, TIMESTAMP '2026-11-01', false)",
                citizen_id(n),
                district(n),
                amount(n, false),
                paid_on(n)
            ),
        )
        .await;
    }
    let source = json!({"type": "postgres", "url": format!("{}?options=-c%20search_path%3Dtongban_e2e_py", pg_url()), "table": "payments"});
    hub.store
        .create_sync_job(&sync_job("payments", CODE, source, SyncMode::Incremental))
        .await
        .unwrap();
    hub.run_sync("payments").await.unwrap();
    exec(
        &mut db,
        "UPDATE tongban_e2e_py.payments SET amount = amount + 99.75, updated_at = TIMESTAMP '2026-11-02'
           WHERE months < 4;
         UPDATE tongban_e2e_py.payments SET deleted = true, updated_at = TIMESTAMP '2026-11-02'
           WHERE months IN (4, 5);",
    )
    .await;
    for n in 30..35u32 {
        exec(
            &mut db,
            &format!(
                "INSERT INTO tongban_e2e_py.payments VALUES ('{}', '参保人{n}', '{}', {}, DATE '{}', {n}, TIMESTAMP '2026-11-02', false)",
                citizen_id(n),
                district(n),
                amount(n, false),
                paid_on(n)
            ),
        )
        .await;
    }
    let v2 = hub.run_sync("payments").await.unwrap();
    assert_eq!(
        (
            v2.version,
            v2.counts.inserts,
            v2.counts.updates,
            v2.counts.deletes
        ),
        (Some(2), 5, 4, 2)
    );
}

/// The district's needs, approved by the provider, then the data office
/// (over the API, which recompiles the policy): one to subscribe, with its
/// pull subscription `payments`, and one to look some of the items up (for
/// DoExchange); the data office puts `months` on the negative list for bulk
/// delivery.
async fn the_district_is_granted_the_payments(hub: &Hub) {
    let need = hub
        .grant_need(
            XUHUI,
            &json!({"resource": CODE, "items": ["citizen_id", "name", "district", "amount", "paid_on", "months"],
                    "matter": "310104-SBBT-007", "mode": "subscribe",
                    "justification": "社保补贴：辖区参保缴费数据回流"}),
            Some("sh-rsj"),
        )
        .await;
    expect_json(
        hub.subscribe(
            XUHUI,
            &json!({"name": "payments", "resource": CODE, "need": need, "channel": {"type": "pull"}}),
        )
        .await,
        201,
    )
    .await;
    hub.add_negative(
        &json!({"resource": CODE, "items": ["months"], "modes": ["subscribe", "batch"],
                "legal_basis": "《社会保险法》第八十一条", "note": "缴费月数不批量回流"}),
    )
    .await;
    hub.grant_need(
        XUHUI,
        &json!({"resource": CODE, "items": ["citizen_id", "amount"],
                "matter": "310104-SBBT-008", "mode": "lookup",
                "justification": "社保补贴：核对申请人缴费"}),
        Some("sh-rsj"),
    )
    .await;
}

#[tokio::test]
async fn python_clients_read_exactly_what_the_policy_permits() {
    let python = python();
    let hub = Hub::start_with(None, |c| c.delivery.file_rows = 8).await;
    two_synced_versions(&hub).await;
    the_district_is_granted_the_payments(&hub).await;
    // The index picks v2 up within a refresh (10 s); until then any answer
    // only means "not yet".
    let asked = json!({"keys": [citizen_id(0)], "items": ["amount"], "matter": "310104-SBBT-008", "case": "PY-0"});
    hub.post_until_version(&format!("/v1/lookup/{CODE}"), XUHUI, &asked, 2, |_| true)
        .await;
    let profile_text = hub
        .post("/v1/sharing/profile", XUHUI)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let profile = hub.data_dir().join("xuhui.share");
    std::fs::write(&profile, &profile_text).unwrap();
    let token = serde_json::from_str::<Value>(&profile_text).unwrap()["bearerToken"]
        .as_str()
        .unwrap()
        .to_string();

    let args = json!({
        "profile": profile, "table": "department.sh-rsj.payments", "start": 1, "end": 2,
        "flight": hub.flight.replace("http://", "grpc://"), "token": token, "subscription": "payments",
        "exchange": {
            "cmd": {"resource": CODE, "matter": "310104-SBBT-008", "case": "PY-1", "items": ["citizen_id", "name", "amount"]},
            "denied": {"resource": CODE, "matter": "310104-NONE", "case": "PY-2", "items": ["citizen_id", "name"]},
            // Updated in v2 (lower case: keys are normalised), unchanged,
            // deleted in v2, inserted in v2, never there, a bad check digit.
            "keys": [citizen_id(0).to_lowercase(), citizen_id(6), citizen_id(4), citizen_id(30), citizen_id(999), "310101198001010001"],
        },
    });
    // The hub serves from this test's runtime: run the clients off it.
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(repo().join("tests/python/clients.py"))
            .arg(args.to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the Python clients failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Value = serde_json::from_slice(&out.stdout).unwrap();

    // What the district may see, computed from what was written to the
    // provider's table, not through the hub.
    let key = hub.mask_key();
    let key = key.as_bytes();
    let row = |n: u32, updated: bool| -> Vec<Option<String>> {
        vec![
            Some(Mask::CitizenId.apply(&citizen_id(n), key)),
            Some(Mask::ChineseName.apply(&format!("参保人{n}"), key)),
            Some(district(n).into()),
            Some(amount(n, updated)),
            Some(paid_on(n)),
        ]
    };
    let mine = |n: &u32| district(*n) == "310104";
    let snapshot: BTreeSet<_> = (0..35u32)
        .filter(mine)
        .filter(|n| !(4..6).contains(n))
        .map(|n| row(n, n < 4))
        .collect();
    let released = ["citizen_id", "name", "district", "amount", "paid_on"];

    assert_eq!(
        got["tables"],
        json!(["department.sh-rsj.payments", "population.sh-gaj.residents"]),
        "the district's pull subscriptions (the demo's and this one)"
    );
    assert_eq!(got["version"], 2);
    assert_eq!(
        got["snapshot"]["columns"],
        json!(released),
        "months is on the negative list"
    );
    assert_eq!(
        as_set(&got["snapshot"], &released),
        snapshot,
        "load_as_pandas"
    );
    assert_eq!(got["limited"], 3);
    assert_eq!(got["flight"]["columns"], json!(released));
    assert_eq!(
        as_set(&got["flight"], &released),
        snapshot,
        "pyarrow.flight DoGet"
    );
    assert_eq!(got["flights"], json!(["payments", "residents"]));

    // DoExchange: the items the lookup need permits (name is not in it),
    // masked, for the keys sent, in their order.
    let exchanged = &got["exchange"];
    assert_eq!(
        exchanged["columns"],
        json!(["key", "found", "error", "citizen_id", "amount"]),
        "name is not released"
    );
    let answer = |n: u32, updated: bool| {
        json!([
            citizen_id(n),
            "True",
            null,
            Mask::CitizenId.apply(&citizen_id(n), key),
            amount(n, updated)
        ])
    };
    let rows = exchanged["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{exchanged}");
    assert_eq!(rows[0], answer(0, true));
    assert_eq!(rows[1], answer(6, false));
    assert_eq!(
        rows[2],
        json!([citizen_id(4), "False", null, null, null]),
        "deleted in v2"
    );
    assert_eq!(rows[3], answer(30, false));
    assert_eq!(rows[4], json!([citizen_id(999), "False", null, null, null]));
    assert_eq!(
        (&rows[5][0], &rows[5][1], &rows[5][3]),
        (&json!("310101198001010001"), &json!("False"), &Value::Null)
    );
    assert!(
        rows[5][2]
            .as_str()
            .is_some_and(|e| e.contains("check character")),
        "{}",
        rows[5]
    );
    assert_eq!(
        got["exchange_denied"], "FlightUnauthorizedError",
        "no need for this matter: PERMISSION_DENIED"
    );

    // The change feed: v1's rows inserted; v2's change set, return-flowed.
    let mut changes: BTreeSet<Vec<Option<String>>> = BTreeSet::new();
    let with = |mut r: Vec<Option<String>>, kind: &str, v: u32| {
        r.push(Some(kind.into()));
        r.push(Some(v.to_string()));
        r
    };
    for n in (0..30u32).filter(mine) {
        changes.insert(with(row(n, false), "insert", 1));
    }
    for n in (0..4u32).filter(mine) {
        changes.insert(with(row(n, false), "update_preimage", 2));
        changes.insert(with(row(n, true), "update_postimage", 2));
    }
    for n in (4..6u32).filter(mine) {
        changes.insert(with(row(n, false), "delete", 2));
    }
    for n in (30..35u32).filter(mine) {
        changes.insert(with(row(n, false), "insert", 2));
    }
    let mut cdf_columns = released.to_vec();
    cdf_columns.extend(["_change_type", "_commit_version"]);
    assert_eq!(
        as_set(&got["changes"], &cdf_columns),
        changes,
        "load_table_changes_as_pandas"
    );
    // The exchange echoes the keys sent, which begin 310101 (where these
    // citizens were born): leave them out.
    got.as_object_mut().unwrap().remove("exchange");
    assert!(
        !got.to_string().contains("310101"),
        "no row of another district on any channel"
    );
}
