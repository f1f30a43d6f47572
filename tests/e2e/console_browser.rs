//! The console in a real browser. This test starts a hub on demo data, gives
//! it a morning's traffic (lookups, verifications, denials, a subscription
//! read, two sync runs), then runs `tests/browser/console.test.mjs` — Debian's
//! headless Chromium driven by playwright-core — which signs in as the data
//! office and as a department, works the pages, and saves their screenshots
//! in `$CARGO_TARGET_DIR/console-screenshots/` (or `TONGBAN_SCREENSHOTS`).
//!
//! It needs Node.js, `/usr/bin/chromium` (Debian's `chromium`, with a CJK
//! font such as `fonts-wqy-microhei` for legible screenshots) and the npm
//! registry for playwright-core the first time; without them it fails.

use crate::common::{Hub, repo, sync_job};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use tongban_catalog::Store;
use tongban_catalog::sync::SyncMode;

/// `tests/browser/node_modules`, installed from the lock file if missing.
fn node_modules() -> PathBuf {
    let dir = repo().join("tests/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .status()
            .expect("npm (Node.js) must be installed for the console browser test");
        assert!(ok.success(), "npm ci failed in {}", dir.display());
    }
    dir
}

fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: install Debian's chromium (apt-get install chromium fonts-wqy-microhei)"
    );
    path
}

fn screenshots() -> PathBuf {
    std::env::var("TONGBAN_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let target = std::env::var("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|_| repo().join("target"));
            target.join("console-screenshots")
        })
}

/// A morning's traffic, so the statistics and the trace have something to show.
async fn traffic(hub: &Hub) -> String {
    let ids = hub.citizen_ids(12).await;
    // The indexes load right after start: wait for the first answer.
    let r = hub
        .post_when_ready(
            "/v1/lookup/101/000001",
            "acceptance",
            &json!({"keys": [&ids[0]], "items": ["gender"], "matter": "310000-JZZ-001", "case": "WARM-UP"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    for (i, id) in ids.iter().enumerate() {
        let r = hub
            .post("/v1/lookup/101/000001", "acceptance")
            .json(
                &json!({"keys": [id], "items": ["name", "gender", "residence_address"],
                          "matter": "310000-JZZ-001", "case": format!("JZZ-2026-{i:04}")}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = hub
            .post("/v1/verify/101/000001", "acceptance")
            .json(&json!({"key": id, "claims": {"name": "张三"},
                          "matter": "310000-JZZ-001", "case": format!("JZZ-2026-{i:04}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Denials: a negative-listed item; a district without a need.
    for id in &ids[..4] {
        let r = hub
            .post("/v1/lookup/101/000001", "acceptance")
            .json(&json!({"keys": [id], "items": ["religion"], "matter": "310000-JZZ-001", "case": "X-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let r = hub
            .post("/v1/lookup/101/000001", "xuhui-district")
            .json(
                &json!({"keys": [id], "items": ["name"], "matter": "310104-QT-099", "case": "X-2"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    // The district reads its subscription (a delivery).
    let r = hub
        .post(
            "/delta-sharing/shares/population/schemas/sh-gaj/tables/residents/query",
            "xuhui-district",
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    ids[0].clone()
}

/// A department resource fed by a CSV drop: one run that succeeds, one that
/// fails on a file that lost a column.
async fn sync_runs(hub: &Hub) {
    let spec = serde_json::from_value(json!({
        "code": "301/000300", "name": "社区活动场地", "provider": "sh-mzj",
        "summary": "各街道社区活动场地登记", "category": "department", "format": "database",
        "update_cycle": "monthly", "key_items": ["site_id"], "status": "published",
        "items": [
            {"name": "site_id", "label": "场地编号", "data_type": "Utf8", "sensitivity": "public", "share_type": "unconditional"},
            {"name": "site_name", "label": "场地名称", "data_type": "Utf8", "sensitivity": "public", "share_type": "unconditional"},
            {"name": "street_code", "label": "所在街道", "data_type": "Utf8", "sensitivity": "public", "share_type": "unconditional"}
        ]
    }))
    .unwrap();
    hub.store.create_resource(&spec).await.unwrap();
    let good = hub.data_dir().join("sites.csv");
    let mut csv = String::from("site_id,site_name,street_code\n");
    for n in 0..40 {
        csv.push_str(&format!(
            "S{n:04},社区活动室{n},3101040{:02}000\n",
            n % 13 + 1
        ));
    }
    std::fs::write(&good, csv).unwrap();
    let bad = hub.data_dir().join("sites-broken.csv");
    std::fs::write(&bad, "site_id,site_name\nS9999,无街道\n").unwrap();
    let columns = json!([{"name": "site_id", "type": "Utf8"}, {"name": "site_name", "type": "Utf8"},
                         {"name": "street_code", "type": "Utf8"}]);
    for (name, path) in [("sites", &good), ("sites-broken", &bad)] {
        let source = if name == "sites" {
            json!({"type": "file", "path": path, "format": "csv", "columns": columns})
        } else {
            // Inferred from a file that lost a column: the run fails its
            // schema check.
            json!({"type": "file", "path": path, "format": "csv"})
        };
        hub.store
            .create_sync_job(&sync_job(name, "301/000300", source, SyncMode::Full))
            .await
            .unwrap();
    }
    assert!(hub.run_sync("sites").await.is_ok());
    assert!(hub.run_sync("sites-broken").await.is_err());
}

#[tokio::test]
async fn the_console_works_in_a_real_browser() {
    let (browser_dir, chromium) = (node_modules(), chromium());
    let hub = Hub::start(None).await;
    let traced = traffic(&hub).await;
    sync_runs(&hub).await;
    let shots = screenshots();
    let _ = std::fs::remove_dir_all(&shots);
    let env = [
        ("HUB", hub.url.clone()),
        ("OFFICE_TOKEN", hub.token("data-office")),
        ("XUHUI_TOKEN", hub.token("xuhui-district")),
        ("TRACED_KEY", traced),
        ("SCREENSHOTS", shots.display().to_string()),
        ("CHROMIUM", chromium),
    ];
    // The hub serves from this test's runtime: run the browser off it.
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("node");
        cmd.arg("console.test.mjs").current_dir(&browser_dir);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("node must be installed")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let taken = std::fs::read_dir(&shots).unwrap().count();
    assert_eq!(
        taken,
        17,
        "a screenshot of every page in {}",
        shots.display()
    );
}
