//! Two replicas on one PostgreSQL catalog and one S3-compatible object
//! store (s3s-fs, started by `.ci/run`): two `tongban serve` processes, as
//! a city runs them behind a load balancer.
//!
//! - both become ready (`/ready` 503 → 200) over versions on S3;
//! - a version published through A's configuration is served by B within
//!   2 s (`LISTEN/NOTIFY`), and a negative entry added through B stops the
//!   item on A within 2 s;
//! - a sync run through A's configuration is served by B within 2 s, and
//!   a scheduled job both replicas find due runs once;
//! - `/metrics` needs the data office on the API port, and the separate
//!   metrics port serves it alone;
//! - A killed with SIGKILL under lookups: B keeps answering every one; A,
//!   restarted, ships the segment it was writing; `audit verify` from B
//!   reads A's chain from the object store and the catalog's head and
//!   finds every lookup A answered; a shipped segment edited or deleted on
//!   the store is named (a deleted one by A's signed checkpoint);
//! - logs are JSON when asked.

use crate::common::{SCALE, pg_schema_url, s3_store, sync_job, tongban};
use crate::sync_runs;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tongban_catalog::sync::{SyncJobSpec, SyncMode};
use tongban_catalog::{SqlStore, Store};
use tongban_datagen as datagen;
use tongban_datasets::{DatasetStore, ObjectStoreConfig};

const POPULATION: &str = "101/000001";
const MATTER: &str = "310000-JZZ-001";

/// A `tongban serve` process, killed when dropped.
struct Replica {
    child: Child,
    url: String,
    metrics: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts replica `name` with JSON logs; returns once it says it serves.
fn start(dir: &Path, name: &str, store_url: &str, objects: &ObjectStoreConfig) -> Replica {
    let (port, metrics) = (free_port(), free_port());
    let data_dir = dir.join(name);
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "listen = '127.0.0.1:{port}'\ndata_dir = '{}'\nstore_url = '{store_url}'\n\
             replica_id = '{name}'\nmask_hash_key = 'replicas-share-this-key'\nlog_format = 'json'\n\
             audit_ship_interval_s = 1\n\
             [metrics]\nlisten = '127.0.0.1:{metrics}'\n\
             [object_store]\nurl = '{}'\nendpoint = '{}'\npath_style = true\nallow_http = true\n",
            data_dir.display(),
            objects.url,
            objects.endpoint.as_deref().unwrap(),
        ),
    )
    .unwrap();
    let mut child = tongban()
        .env("RUST_LOG", "info")
        .args(["serve", "--config"])
        .arg(&config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The log is JSON, one object a line: the first line says where it serves.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let serving = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("replica {name} ended before serving"))
            .unwrap();
        let entry: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!("replica {name} logged a line that is not JSON ({e}): {line}")
        });
        if entry["message"] == "tongban serving" {
            break entry;
        }
    };
    assert_eq!(serving["replica"], name);
    assert_eq!(serving["datasets"], objects.url.as_str());
    // Keep draining the log so the replica never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Replica {
        child,
        url: format!("http://127.0.0.1:{port}"),
        metrics: format!("http://127.0.0.1:{metrics}"),
    }
}

/// Waits for `/ready` to answer 200 (it answers 503 meanwhile, never
/// anything else); the time it took.
async fn ready(client: &reqwest::Client, r: &Replica, name: &str) -> Duration {
    let t0 = Instant::now();
    loop {
        let res = client.get(format!("{}/ready", r.url)).send().await;
        if let Ok(res) = res {
            match res.status().as_u16() {
                200 => {
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(body["replica"], name);
                    assert!(body["indexes"].as_u64().unwrap() >= 4, "{body}");
                    return t0.elapsed();
                }
                503 => {
                    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
                    assert_eq!(ct, "application/problem+json");
                }
                other => panic!("/ready answered {other}"),
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{name} not ready in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn lookup(
    client: &reqwest::Client,
    r: &Replica,
    token: &str,
    key: &str,
) -> reqwest::Response {
    client
        .post(format!("{}/v1/lookup/{POPULATION}", r.url))
        .bearer_auth(token)
        .json(&json!({"keys": [key], "items": ["name", "gender"],
                      "matter": MATTER, "case": "JZZ-2026-000777"}))
        .send()
        .await
        .unwrap()
}

/// Whether replica `r` serves `version` of `resource`, by its metrics.
async fn index_version(
    client: &reqwest::Client,
    r: &Replica,
    resource: &str,
    version: i64,
) -> bool {
    let text = client
        .get(format!("{}/metrics", r.metrics))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gauge = format!("tongban_index_version{{resource=\"{resource}\"}} ");
    text.lines()
        .filter_map(|l| l.strip_prefix(&gauge))
        .any(|v| v.trim().parse::<f64>().ok() == Some(version as f64))
}

/// Polls `f` until it holds, for at most `limit`; how long it took.
async fn within<F, Fut>(limit: Duration, what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    while !f().await {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t0.elapsed()
}

#[tokio::test]
async fn two_replicas_share_a_catalog_and_an_object_store() {
    let dir = tempfile::tempdir().unwrap();
    let store_url = pg_schema_url("replicas").await;
    let objects = s3_store("e2e-replicas");
    // The catalog and the first versions, on PostgreSQL and S3.
    let store = SqlStore::open(&store_url).await.unwrap();
    let datasets = DatasetStore::open(Some(&objects), dir.path()).unwrap();
    let options = |seed| datagen::Options {
        scale: SCALE,
        seed,
        progress: false,
    };
    datagen::run(&store, &datasets, options(7)).await.unwrap();
    let creds = datagen::credentials::ensure_credentials(&store, dir.path())
        .await
        .unwrap();
    let (acceptance, office) = (
        creds.token("acceptance").unwrap().to_string(),
        creds.token("data-office").unwrap().to_string(),
    );
    let first = store
        .get_resource(POPULATION)
        .await
        .unwrap()
        .latest_version
        .unwrap();
    let batches = datasets.read_version(&first.location).await.unwrap();
    let people = arrow::compute::cast(
        batches[0].column_by_name("citizen_id").unwrap(),
        &arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    use arrow::array::AsArray;
    let key = people.as_string::<i32>().value(0).to_string();

    let a = start(dir.path(), "hub-a", &store_url, &objects);
    let b = start(dir.path(), "hub-b", &store_url, &objects);
    let client = reqwest::Client::new();
    let ready_a = ready(&client, &a, "hub-a").await;
    let ready_b = ready(&client, &b, "hub-b").await;
    eprintln!("ready after {ready_a:?} (A) and {ready_b:?} (B)");

    // Both serve the first version.
    for r in [&a, &b] {
        let res = lookup(&client, r, &acceptance, &key).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["version"], first.version, "{body}");
        assert_eq!(body["results"][0]["found"], true, "{body}");
    }

    // Metrics: the data office on the API port, anyone on the metrics port.
    let m = client
        .get(format!("{}/metrics", a.url))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 401);
    let m = client
        .get(format!("{}/metrics", a.url))
        .bearer_auth(&acceptance)
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 403);
    let text = client
        .get(format!("{}/metrics", a.url))
        .bearer_auth(&office)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "tongban_ready 1",
        "tongban_access_total{",
        "tongban_http_requests_total{",
        "tongban_index_rows{resource=\"101/000001\"}",
        "tongban_audit_fdatasync_seconds_bucket",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}:\n{text}");
    }
    let plain = client
        .get(format!("{}/metrics", a.metrics))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.text().await.unwrap().contains("tongban_ready 1"));

    // A new version, published through A's catalog and object store, is
    // served by B within 2 s.
    let store: Arc<dyn Store> = Arc::new(store);
    datagen::run(store.as_ref(), &datasets, options(8))
        .await
        .unwrap();
    let second = store
        .get_resource(POPULATION)
        .await
        .unwrap()
        .latest_version
        .unwrap();
    assert!(second.version > first.version);
    let took = within(
        Duration::from_secs(2),
        "B serves the new version",
        || async {
            let res = lookup(&client, &b, &acceptance, &key).await;
            let body: Value = res.json().await.unwrap();
            body["version"] == second.version
        },
    )
    .await;
    eprintln!(
        "version {} served by B {took:?} after it was published",
        second.version
    );

    // A negative entry added through B stops the item on A within 2 s.
    let entry = client
        .post(format!("{}/v1/lists/negative", b.url))
        .bearer_auth(&office)
        .json(&json!({"resource": POPULATION, "items": ["name"],
                      "legal_basis": "《个人信息保护法》第二十八条", "note": "replica test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(entry.status(), 201, "{}", entry.text().await.unwrap());
    let took = within(
        Duration::from_secs(2),
        "A stops releasing the name",
        || async {
            let res = lookup(&client, &a, &acceptance, &key).await;
            let body: Value = res.json().await.unwrap();
            let row = &body["results"][0]["rows"][0];
            row.get("name").is_none() && body["denied"].to_string().contains("name")
        },
    )
    .await;
    eprintln!("negative entry in force on A {took:?} after B took it");

    // A sync run through A (`tongban sync run` with A's configuration)
    // publishes a department's table; B serves the version within 2 s.
    store.create_resource(&sync_runs::resource()).await.unwrap();
    let mut provider = sync_runs::provider("replicas").await;
    provider.insert(0, 40, "2026-11-01 00:00").await;
    let job = |name: &str, schedule: Option<String>| SyncJobSpec {
        schedule,
        ..sync_job(name, sync_runs::CODE, provider.source(16), SyncMode::Full)
    };
    store
        .create_sync_job(&job("payments-by-hand", None))
        .await
        .unwrap();
    let out = tongban()
        .args(["sync", "run", "payments-by-hand", "--config"])
        .arg(dir.path().join("hub-a.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let published = store
        .get_resource(sync_runs::CODE)
        .await
        .unwrap()
        .latest_version
        .unwrap();
    let took = within(
        Duration::from_secs(2),
        "B serves the synced version",
        || index_version(&client, &b, sync_runs::CODE, published.version),
    )
    .await;
    eprintln!(
        "synced version {} served by B {took:?} after the run",
        published.version
    );

    // A scheduled job runs once, though both replicas' schedulers find it
    // due: it fires once, a few seconds from now (China time).
    let at = (chrono::Utc::now() + chrono::Duration::seconds(4))
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
    let fire_once = at.format("%S %M %H %d %m *").to_string();
    store
        .create_sync_job(&job("payments-scheduled", Some(fire_once)))
        .await
        .unwrap();
    let runs = || async {
        store
            .list_sync_runs(Some("payments-scheduled"), 10)
            .await
            .unwrap()
    };
    within(
        Duration::from_secs(20),
        "a scheduler runs the job",
        || async { runs().await.iter().any(|r| r.finished_at.is_some()) },
    )
    .await;
    // Both schedulers tick every 5 s: give each two more looks.
    tokio::time::sleep(tongban_sync::schedule::TICK * 2).await;
    let ran = runs().await;
    assert_eq!(ran.len(), 1, "the job ran more than once: {ran:?}");
    let version = ran[0].version.expect("the run published");
    for (r, name) in [(&a, "A"), (&b, "B")] {
        within(Duration::from_secs(2), name, || {
            index_version(&client, r, sync_runs::CODE, version)
        })
        .await;
    }

    // A is killed under lookups; B answers every one of its share.
    let mut a = a;
    let answered_by_a = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let load = {
        let (client, acceptance, key) = (client.clone(), acceptance.clone(), key.clone());
        let (a_url, b_url) = (a.url.clone(), b.url.clone());
        let answered_by_a = answered_by_a.clone();
        tokio::spawn(async move {
            let mut b_ok = 0u64;
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(3) {
                let (ra, rb) = tokio::join!(
                    client
                        .post(format!("{a_url}/v1/lookup/{POPULATION}"))
                        .bearer_auth(&acceptance)
                        .json(&json!({"keys": [&key], "items": ["gender"],
                                      "matter": MATTER, "case": "JZZ-2026-000778"}))
                        .send(),
                    client
                        .post(format!("{b_url}/v1/lookup/{POPULATION}"))
                        .bearer_auth(&acceptance)
                        .json(&json!({"keys": [&key], "items": ["gender"],
                                      "matter": MATTER, "case": "JZZ-2026-000778"}))
                        .send()
                );
                if ra.is_ok_and(|r| r.status() == 200) {
                    answered_by_a.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                let rb = rb.expect("B answers while A dies");
                assert_eq!(rb.status(), 200);
                b_ok += 1;
            }
            b_ok
        })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    a.child.kill().unwrap(); // SIGKILL
    a.child.wait().unwrap();
    let b_ok = load.await.unwrap();
    let a_ok = answered_by_a.load(std::sync::atomic::Ordering::Relaxed);
    assert!(a_ok > 0 && b_ok > a_ok, "A answered {a_ok}, B {b_ok}");

    // B still serves after A is gone.
    assert_eq!(lookup(&client, &b, &acceptance, &key).await.status(), 200);

    // A comes back on its disk: it seals the segment it was writing when it
    // died and ships it, so every chain can be read from the object store.
    drop(a);
    let restarted = chrono::Utc::now();
    let a = start(dir.path(), "hub-a", &store_url, &objects);
    ready(&client, &a, "hub-a").await;
    let shipped = |replica: &str| {
        let datasets = datasets.clone();
        let prefix = format!("audit/{replica}");
        async move {
            use futures::TryStreamExt;
            let mut names: Vec<String> = datasets
                .object_store()
                .list(Some(&prefix.as_str().into()))
                .map_ok(|o| o.location.to_string())
                .try_collect()
                .await
                .unwrap();
            names.sort();
            names
        }
    };
    // Shipped when the new process has recorded a head whose records are
    // all on the store (`shipped` reaches `seq`).
    within(
        Duration::from_secs(10),
        "A ships its crashed segment",
        || async {
            store.audit_heads().await.unwrap().iter().any(|h| {
                h.replica == "hub-a" && h.updated_at > restarted && h.seq > 0 && h.shipped == h.seq
            })
        },
    )
    .await;
    drop(a);

    // From B's side: A's chain comes from the object store and the catalog
    // (A's disk is not read), B's from its own disk; both verify.
    let verify = |config: &str| {
        tongban()
            .args(["audit", "verify", "--config"])
            .arg(dir.path().join(config))
            .output()
            .unwrap()
    };
    let out = verify("hub-b.toml");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success()
            && said.contains("hub-a: audit log intact")
            && said.contains("hub-b: audit log intact"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing A answered is missing: trace from B finds A's records.
    let trace = tongban()
        .args(["audit", "trace", "--json", "--key", &key, "--config"])
        .arg(dir.path().join("hub-b.toml"))
        .output()
        .unwrap();
    let records: Value = serde_json::from_slice(&trace.stdout)
        .unwrap_or_else(|e| panic!("trace: {e}: {}", String::from_utf8_lossy(&trace.stderr)));
    let by = |replica: &str| {
        records
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["case"] == "JZZ-2026-000778" && r["replica"] == replica)
            .count() as u64
    };
    assert!(
        by("hub-a") >= a_ok,
        "A answered {a_ok} lookups but logged {}",
        by("hub-a")
    );
    assert!(
        by("hub-b") >= b_ok,
        "B answered {b_ok} lookups but logged {}",
        by("hub-b")
    );

    // A shipped segment edited on the store: verify names it.
    let segments = shipped("hub-a").await;
    let last = segments.last().unwrap().clone();
    let store = datasets.object_store();
    let original = datasets.get(&last).await.unwrap();
    let edited =
        String::from_utf8_lossy(&original).replacen("JZZ-2026-000778", "JZZ-2026-000779", 1);
    store
        .put(&last.as_str().into(), bytes::Bytes::from(edited).into())
        .await
        .unwrap();
    let out = verify("hub-b.toml");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success() && err.contains("hub-a") && err.contains("it was edited"),
        "{err}"
    );
    // Deleted: A's signed checkpoint (taken when it came back) covers the
    // records that are gone, and verify names them.
    store.delete(&last.as_str().into()).await.unwrap();
    let out = verify("hub-b.toml");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success() && err.contains("hub-a") && err.contains("were cut off"),
        "{err}"
    );
    // Put back as it was: intact again.
    store
        .put(&last.as_str().into(), original.into())
        .await
        .unwrap();
    assert!(verify("hub-b.toml").status.success());
}
