//! Subscriptions end to end: the subscriptions API, the Delta Sharing
//! protocol as seen over HTTP (files downloaded and read back), webhook push
//! through an outage, PostgreSQL push, and what a negative entry or a revoked
//! need does to every channel.

use crate::common::{Hub, pg_url, problem};
use arrow::array::AsArray;
use arrow::record_batch::RecordBatch;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tongban_hub::datasets::DatasetStore;
use tongban_policies::Mask;

const XUHUI: &str = "xuhui-district";
const OFFICE: &str = "data-office";
const RESIDENTS: &str = "/delta-sharing/shares/population/schemas/sh-gaj/tables/residents";

async fn json_of(resp: reqwest::Response, status: u16) -> Value {
    let url = resp.url().to_string();
    let got = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    assert_eq!(got, status, "{url}: {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// The lines of an NDJSON answer.
async fn lines(resp: reqwest::Response) -> (u16, Option<String>, Vec<Value>) {
    let status = resp.status().as_u16();
    let version = resp
        .headers()
        .get("delta-table-version")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (status, version, lines)
}

/// A row as the residents subscription releases it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Resident {
    citizen_id: String,
    name: String,
    gender: String,
    birth_date: String,
    street: String,
}

/// The rows the district may receive of the newest population version:
/// its own streets (return flow), citizen IDs masked, names clear (its need
/// says so), computed from the raw version, not through the hub.
async fn expected_residents(hub: &Hub) -> BTreeSet<Resident> {
    let key = std::fs::read_to_string(hub.data_dir().join("mask-hash.key")).unwrap();
    let v = hub.store_versions("101/000001").await;
    let batches = DatasetStore::local(hub.data_dir())
        .unwrap()
        .read_version(&v[0].location)
        .await
        .unwrap();
    let out: BTreeSet<Resident> = batches
        .iter()
        .flat_map(rows)
        .filter(|r| r.street.starts_with("310104"))
        .map(|r| Resident {
            citizen_id: Mask::CitizenId.apply(&r.citizen_id, key.trim().as_bytes()),
            ..r
        })
        .collect();
    assert!(out.len() > 20, "the district has residents: {}", out.len());
    out
}

/// The residents' items of a batch, as text.
fn rows(b: &RecordBatch) -> Vec<Resident> {
    let text = |c: &str| {
        arrow::compute::cast(
            b.column_by_name(c).unwrap(),
            &arrow::datatypes::DataType::Utf8,
        )
        .unwrap()
        .as_string::<i32>()
        .clone()
    };
    let (id, name, gender, born, street) = (
        text("citizen_id"),
        text("name"),
        text("gender"),
        text("birth_date"),
        text("residence_street"),
    );
    (0..b.num_rows())
        .map(|r| Resident {
            citizen_id: id.value(r).to_string(),
            name: name.value(r).to_string(),
            gender: gender.value(r).to_string(),
            birth_date: born.value(r).to_string(),
            street: street.value(r).to_string(),
        })
        .collect()
}

/// What the hub released: exactly the subscription's items, in order.
fn residents_of(batches: &[RecordBatch]) -> BTreeSet<Resident> {
    for b in batches {
        let schema = b.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "citizen_id",
                "name",
                "gender",
                "birth_date",
                "residence_street"
            ],
            "exactly the released items, in order"
        );
    }
    batches.iter().flat_map(rows).collect()
}

fn read_parquet(bytes: bytes::Bytes) -> Vec<RecordBatch> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

impl Hub {
    async fn store_versions(&self, resource: &str) -> Vec<tongban_catalog::DatasetVersion> {
        use tongban_catalog::Store;
        self.store.list_versions(resource).await.unwrap()
    }

    /// The id of the district's approved subscribe need (the demo's).
    async fn subscribe_need(&self) -> i64 {
        let needs = json_of(
            self.get("/v1/lists/needs", XUHUI).send().await.unwrap(),
            200,
        )
        .await;
        needs
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["mode"] == "subscribe" && n["status"] == "approved")
            .expect("the demo's subscribe need")["id"]
            .as_i64()
            .unwrap()
    }

    async fn subscribe(&self, who: &str, body: Value) -> reqwest::Response {
        self.post("/v1/subscriptions", who)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Polls a subscription's status until `done` holds (at most 30 s).
    async fn wait_for(&self, id: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..300 {
            let s = json_of(
                self.get(&format!("/v1/subscriptions/{id}"), XUHUI)
                    .send()
                    .await
                    .unwrap(),
                200,
            )
            .await;
            if done(&s) {
                return s;
            }
            last = s;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let deliveries = self
            .get(&format!("/v1/subscriptions/{id}/deliveries"), XUHUI)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        panic!("subscription {id}: timed out waiting for {what}: {last}\n{deliveries}");
    }

    /// Revokes a need as the data office.
    async fn revoke(&self, need: i64) {
        json_of(
            self.post(&format!("/v1/lists/needs/{need}/revoke"), OFFICE)
                .json(&json!({"reason": "事项终止"}))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
    }
}

/// Creating subscriptions: every rule is checked and answered clearly;
/// who sees what.
#[tokio::test]
async fn subscriptions_are_checked_and_visible_to_their_parties() {
    let hub = Hub::start(None).await;
    let need = hub.subscribe_need().await;
    let mine = json_of(
        hub.get("/v1/subscriptions", XUHUI).send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(
        mine.as_array().unwrap().len(),
        1,
        "the demo subscription: {mine}"
    );
    assert_eq!(mine[0]["name"], "residents");

    let base = json!({"name": "more", "resource": "101/000001", "need": need, "channel": {"type": "pull"}});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let lookup_need = json_of(hub.get("/v1/lists/needs", XUHUI).send().await.unwrap(), 200)
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["mode"] == "lookup" && n["status"] == "approved")
        .unwrap()["id"]
        .clone();
    for (body, field) in [
        (with("need", lookup_need), "need"),
        (
            with("items", json!(["name", "household_address"])),
            "items[1]",
        ),
        (with("name", json!("has space")), "name"),
        (
            with(
                "channel",
                json!({"type": "webhook", "url": "ftp://x.gov.cn"}),
            ),
            "channel.url",
        ),
        (
            with(
                "channel",
                json!({"type": "postgres", "url": "postgres://u:secret@db/x", "table": "t"}),
            ),
            "channel",
        ),
    ] {
        let p = problem(
            hub.subscribe(XUHUI, body.clone()).await,
            422,
            "invalid_input",
        )
        .await;
        assert_eq!(p["field"], field, "{body}: {p}");
    }
    problem(
        hub.subscribe(XUHUI, with("channel", json!({"type": "carrier-pigeon"})))
            .await,
        422,
        "invalid_input",
    )
    .await;
    // Another department cannot subscribe under the district's need.
    let p = problem(
        hub.subscribe("acceptance", base.clone()).await,
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "need");
    problem(
        hub.subscribe(XUHUI, with("name", json!("residents"))).await,
        409,
        "duplicate",
    )
    .await;
    let all = json_of(
        hub.get("/v1/subscriptions", XUHUI).send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(all.as_array().unwrap().len(), 1, "nothing half-made: {all}");

    // A webhook subscription shows its secret once.
    let hook = json_of(
        hub.subscribe(
            XUHUI,
            with(
                "channel",
                json!({"type": "webhook", "url": "http://127.0.0.1:9/in"}),
            ),
        )
        .await,
        201,
    )
    .await;
    assert!(hook["secret"].as_str().unwrap().starts_with("whsec_"));
    let id = hook["id"].as_i64().unwrap();
    let status = json_of(
        hub.get(&format!("/v1/subscriptions/{id}"), XUHUI)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(status.get("secret").is_none(), "{status}");
    assert_eq!(status["plan"]["permitted"], true);
    let released: Vec<&str> = status["plan"]["released"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item"].as_str().unwrap())
        .collect();
    assert_eq!(
        released,
        [
            "citizen_id",
            "name",
            "gender",
            "birth_date",
            "residence_street"
        ]
    );
    assert_eq!(
        status["plan"]["row_filters"],
        json!([{"item": "residence_street", "prefix": "310104"}]),
        "return flow to the district's own streets"
    );
    // The consumer and the data office see it; nobody else.
    problem(
        hub.get(&format!("/v1/subscriptions/{id}"), "acceptance")
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    json_of(
        hub.get(&format!("/v1/subscriptions/{id}"), OFFICE)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let everyone = json_of(
        hub.get("/v1/subscriptions", OFFICE).send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(everyone.as_array().unwrap().len(), 2);
    problem(
        hub.delete(&format!("/v1/subscriptions/{id}"), "acceptance")
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    let cancelled = json_of(
        hub.delete(&format!("/v1/subscriptions/{id}"), XUHUI)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    problem(
        hub.delete(&format!("/v1/subscriptions/{id}"), XUHUI)
            .send()
            .await
            .unwrap(),
        409,
        "conflict",
    )
    .await;
    problem(
        hub.client
            .get(format!("{}/v1/subscriptions", hub.url))
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
}

/// The Delta Sharing protocol over HTTP: listings with pages, version,
/// metadata, query with its hints and pages, files that hold exactly the
/// permitted rows, signed URLs that expire and die with a policy change,
/// and a revoked need that shuts the table.
#[tokio::test]
async fn delta_sharing_serves_exactly_the_permitted_rows() {
    let hub = Hub::start_with(None, |c| c.delivery.file_rows = 10).await;
    let need = hub.subscribe_need().await;
    // A second table, to page through.
    json_of(
        hub.subscribe(
            XUHUI,
            json!({"name": "births", "resource": "101/000001", "need": need, "items": ["birth_date"], "channel": {"type": "pull"}}),
        )
        .await,
        201,
    )
    .await;
    let ds = |path: &str| hub.get(&format!("/delta-sharing{path}"), XUHUI);

    let shares = json_of(ds("/shares").send().await.unwrap(), 200).await;
    assert_eq!(
        shares["items"],
        json!([{"name": "population", "id": "population"}])
    );
    let none = json_of(
        hub.get("/delta-sharing/shares", "acceptance")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        none["items"],
        json!([]),
        "nothing is shared with a department without subscriptions"
    );
    let schemas = json_of(ds("/shares/population/schemas").send().await.unwrap(), 200).await;
    assert_eq!(
        schemas["items"],
        json!([{"name": "sh-gaj", "share": "population"}])
    );
    let page1 = json_of(
        ds("/shares/population/schemas/sh-gaj/tables?maxResults=1")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(page1["items"][0]["name"], "births");
    let token = page1["nextPageToken"].as_str().unwrap();
    let page2 = json_of(
        ds(&format!(
            "/shares/population/schemas/sh-gaj/tables?maxResults=1&pageToken={token}"
        ))
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(page2["items"][0]["name"], "residents");
    assert!(page2.get("nextPageToken").is_none());
    let all = json_of(
        ds("/shares/population/all-tables").send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let bad = ds(&format!("/shares/population/all-tables?pageToken={token}"))
        .send()
        .await
        .unwrap();
    let p = problem(bad, 400, "invalid_parameter").await;
    assert_eq!(p["errorCode"], "INVALID_PARAMETER_VALUE", "{p}");
    let p = problem(
        ds("/shares/legal_entity/schemas").send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    assert_eq!(p["errorCode"], "RESOURCE_DOES_NOT_EXIST");
    problem(
        hub.client
            .get(format!("{}/delta-sharing/shares", hub.url))
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;

    let v = ds(&format!("{}/version", &RESIDENTS["/delta-sharing".len()..]))
        .send()
        .await
        .unwrap();
    assert_eq!(v.headers()["delta-table-version"], "1");
    let table = |p: &str| format!("{RESIDENTS}{p}");
    let (status, version, meta) =
        lines(hub.get(&table("/metadata"), XUHUI).send().await.unwrap()).await;
    assert_eq!((status, version.as_deref()), (200, Some("1")));
    assert_eq!(meta[0], json!({"protocol": {"minReaderVersion": 1}}));
    let schema: Value =
        serde_json::from_str(meta[1]["metaData"]["schemaString"].as_str().unwrap()).unwrap();
    let fields: Vec<(String, String)> = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().into(),
                f["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("citizen_id", "string"),
            ("name", "string"),
            ("gender", "string"),
            ("birth_date", "date"),
            ("residence_street", "string")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );

    // Query: every file, downloaded, holds exactly the permitted rows.
    let query = |body: Value| hub.post(&table("/query"), XUHUI).json(&body).send();
    let (status, version, q) = lines(query(json!({})).await.unwrap()).await;
    assert_eq!((status, version.as_deref()), (200, Some("1")));
    let files: Vec<&Value> = q.iter().filter_map(|l| l.get("file")).collect();
    let expected = expected_residents(&hub).await;
    assert_eq!(
        files.len(),
        expected.len().div_ceil(10),
        "files of at most 10 rows"
    );
    let mut got = BTreeSet::new();
    for f in &files {
        let resp = hub
            .client
            .get(f["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "a signed URL needs no token");
        let bytes = resp.bytes().await.unwrap();
        assert_eq!(bytes.len() as u64, f["size"].as_u64().unwrap());
        let stats: Value = serde_json::from_str(f["stats"].as_str().unwrap()).unwrap();
        let batches = read_parquet(bytes);
        assert_eq!(
            batches.iter().map(RecordBatch::num_rows).sum::<usize>() as u64,
            stats["numRecords"].as_u64().unwrap()
        );
        got.extend(residents_of(&batches));
    }
    assert_eq!(
        got, expected,
        "exactly the district's residents, masked as decided"
    );
    assert!(got.iter().all(|r| r.citizen_id.contains("***********")));

    // Ranges and HEAD, as Parquet readers use them.
    let url = files[0]["url"].as_str().unwrap();
    let head = hub.client.head(url).send().await.unwrap();
    assert_eq!(
        head.headers()["content-length"],
        files[0]["size"].to_string().as_str()
    );
    let range = hub
        .client
        .get(url)
        .header("range", "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(&range.bytes().await.unwrap()[..], b"PAR1");

    // Hints: a limit, a predicate no file can match, pages of files.
    let (_, _, limited) = lines(query(json!({"limitHint": 1})).await.unwrap()).await;
    assert_eq!(
        limited.iter().filter(|l| l.get("file").is_some()).count(),
        1
    );
    let nothing = json!({"op": "equal", "children": [
        {"op": "column", "name": "residence_street", "valueType": "string"},
        {"op": "literal", "value": "310101001000", "valueType": "string"}]});
    let (_, _, pruned) = lines(
        query(json!({"jsonPredicateHints": nothing.to_string()}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        pruned.iter().filter(|l| l.get("file").is_some()).count(),
        0,
        "other districts' streets are in no file"
    );
    let (_, _, first) = lines(query(json!({"maxFiles": 2})).await.unwrap()).await;
    let page: Vec<&Value> = first.iter().filter_map(|l| l.get("file")).collect();
    assert_eq!(page.len(), 2.min(files.len()));
    if files.len() > 2 {
        let next = first.last().unwrap()["endStreamAction"]["nextPageToken"]
            .as_str()
            .unwrap();
        let (_, _, second) = lines(
            query(json!({"maxFiles": 100, "pageToken": next}))
                .await
                .unwrap(),
        )
        .await;
        let rest = second.iter().filter(|l| l.get("file").is_some()).count();
        assert_eq!(page.len() + rest, files.len());
    }
    problem(
        query(json!({"version": 9})).await.unwrap(),
        404,
        "not_found",
    )
    .await;
    problem(
        query(json!({"startingVersion": 1})).await.unwrap(),
        400,
        "invalid_parameter",
    )
    .await;

    // Signed URLs: tampered or expired ones serve nothing.
    let token = url.rsplit('/').next().unwrap();
    let (payload, _) = token.split_once('.').unwrap();
    problem(
        hub.client
            .get(format!("{}/delta-sharing/files/{payload}.AAAA", hub.url))
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    let key = std::fs::read_to_string(hub.data_dir().join("mask-hash.key")).unwrap();
    let signer = tongban_hub::delivery::file_url_signer(key.trim().as_bytes());
    let mut grant: tongban_hub::delivery::Grant = signer.verify(token, 0).unwrap();
    grant.expires_ms = chrono::Utc::now().timestamp_millis() - 1;
    let p = problem(
        hub.client
            .get(format!(
                "{}/delta-sharing/files/{}",
                hub.url,
                signer.sign(&grant)
            ))
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("expired"), "{p}");

    // A new negative entry: the old URLs die, new files lack the item.
    json_of(
        hub.post("/v1/lists/negative", OFFICE)
            .json(&json!({"resource": "101/000001", "items": ["birth_date"], "modes": ["subscribe"],
                          "legal_basis": "《个人信息保护法》第六条", "note": "出生日期不再批量回流"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let p = problem(hub.client.get(url).send().await.unwrap(), 403, "forbidden").await;
    assert!(p["detail"].as_str().unwrap().contains("changed"), "{p}");
    let (_, _, q2) = lines(query(json!({})).await.unwrap()).await;
    let schema: Value =
        serde_json::from_str(q2[1]["metaData"]["schemaString"].as_str().unwrap()).unwrap();
    assert!(!schema.to_string().contains("birth_date"), "{schema}");
    let f = q2.iter().find_map(|l| l.get("file")).unwrap();
    let batches = read_parquet(
        hub.client
            .get(f["url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    );
    assert!(batches[0].column_by_name("birth_date").is_none());
    // The births table held only birth_date: nothing is left to share.
    let p = problem(
        hub.post(
            "/delta-sharing/shares/population/schemas/sh-gaj/tables/births/query",
            XUHUI,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap(),
        403,
        "denied",
    )
    .await;
    assert_eq!(p["rule"], "negative:4", "{p}");

    // Revoking the need shuts the table and its URLs.
    let live = q2.iter().find_map(|l| l.get("file")).unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    hub.revoke(need).await;
    let p = problem(query(json!({})).await.unwrap(), 403, "denied").await;
    assert!(p["detail"].as_str().unwrap().contains("stopped"), "{p}");
    problem(hub.client.get(&live).send().await.unwrap(), 403, "denied").await;
    let shares = json_of(ds("/shares").send().await.unwrap(), 200).await;
    assert_eq!(shares["items"], json!([]));

    // Every release and refusal is in the audit log, under its subscription.
    let audit = std::fs::read_to_string(hub.data_dir().join("audit/audit-000001.jsonl")).unwrap();
    let records: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let released = records
        .iter()
        .filter(|r| r["case"] == "sub:residents:v1" && r["outcome"] == "released")
        .count();
    assert!(released >= 5, "each query audited: {released}");
    assert!(
        records
            .iter()
            .any(|r| r["case"] == "sub:residents" && r["outcome"] == "denied")
    );
    assert!(records.iter().all(|r| r["keys"] == json!([])));
}

/// What the test receiver got.
#[derive(Debug, Clone)]
struct Received {
    version: i64,
    kind: String,
    rows: Vec<Value>,
}

#[derive(Clone, Default)]
struct Receiver {
    up: Arc<std::sync::atomic::AtomicBool>,
    refused: Arc<std::sync::atomic::AtomicUsize>,
    got: Arc<Mutex<Vec<Received>>>,
    secret: Arc<Mutex<String>>,
}

/// A department's webhook endpoint that is down (503) until told otherwise,
/// and checks every signature.
async fn receiver() -> (Receiver, String) {
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::atomic::Ordering;
    let r = Receiver::default();
    let state = r.clone();
    let app = axum::Router::new().route(
        "/in",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let r = state.clone();
            async move {
                if !r.up.load(Ordering::SeqCst) {
                    r.refused.fetch_add(1, Ordering::SeqCst);
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let sig = headers["tongban-signature"].to_str().unwrap();
                let t: i64 = sig.split(',').next().unwrap()["t=".len()..]
                    .parse()
                    .unwrap();
                let secret = r.secret.lock().unwrap().clone();
                assert_eq!(
                    sig,
                    tongban_hub::delivery::push::signature(secret.as_bytes(), t, &body),
                    "the body is signed with the subscription's secret"
                );
                let rows: Vec<Value> =
                    if headers["content-type"] == "application/vnd.apache.parquet" {
                        let mut w = arrow::json::ArrayWriter::new(Vec::new());
                        for b in read_parquet(body.clone()) {
                            w.write(&b).unwrap();
                        }
                        w.finish().unwrap();
                        serde_json::from_slice::<Vec<Value>>(&w.into_inner()).unwrap_or_default()
                    } else {
                        std::str::from_utf8(&body)
                            .unwrap()
                            .lines()
                            .map(|l| serde_json::from_str(l).unwrap())
                            .collect()
                    };
                assert_eq!(
                    headers["tongban-rows"].to_str().unwrap(),
                    rows.len().to_string()
                );
                r.got.lock().unwrap().push(Received {
                    version: headers["tongban-version"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap(),
                    kind: headers["tongban-kind"].to_str().unwrap().into(),
                    rows,
                });
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/in", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, url)
}

/// A webhook that is down while three versions are published receives all
/// three when it returns: each once, in order, signed, with only the
/// permitted rows and items. A revoked need stops the deliveries.
#[tokio::test]
async fn webhook_push_survives_an_outage_with_nothing_lost_or_repeated() {
    use std::sync::atomic::Ordering;
    let hub = Hub::start_with(None, |c| {
        c.delivery.tick_ms = 50;
        c.delivery.retry_base_ms = 50;
        c.delivery.retry_max_ms = 300;
    })
    .await;
    let (rx, url) = receiver().await;
    let need = hub.subscribe_need().await;
    let sub = json_of(
        hub.subscribe(
            XUHUI,
            json!({"name": "residents-push", "resource": "101/000001", "need": need,
                   "channel": {"type": "webhook", "url": url}}),
        )
        .await,
        201,
    )
    .await;
    *rx.secret.lock().unwrap() = sub["secret"].as_str().unwrap().to_string();
    let id = sub["id"].as_i64().unwrap();
    let expected_v1 = expected_residents(&hub).await;

    // Down: v1 is tried again and again; v2 and v3 are published meanwhile.
    let s = hub
        .wait_for(id, "failed attempts", |s| {
            s["last_error"].as_str().is_some_and(|e| e.contains("503"))
        })
        .await;
    assert_eq!(s["pending"], 1);
    hub.publish_demo_versions(8).await;
    hub.publish_demo_versions(9).await;
    let expected_v3 = expected_residents(&hub).await;
    hub.wait_for(id, "three pending", |s| s["pending"] == 3)
        .await;
    // Still tried again and again (the backoff is capped at 300 ms here);
    // how many attempts fit in the publishing above depends on the machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while rx.refused.load(Ordering::SeqCst) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "retries stopped after {} attempts",
            rx.refused.load(Ordering::SeqCst)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(rx.got.lock().unwrap().is_empty());

    // Back up: everything arrives, once, in order.
    rx.up.store(true, Ordering::SeqCst);
    let s = hub
        .wait_for(id, "the cursor at v3", |s| s["cursor"] == 3)
        .await;
    assert_eq!(
        (s["pending"].as_i64(), s["behind"].as_i64()),
        (Some(0), Some(0))
    );
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(
        got.iter().map(|r| r.version).collect::<Vec<_>>(),
        [1, 2, 3],
        "once each, in order"
    );
    assert!(
        got.iter().all(|r| r.kind == "snapshot"),
        "full versions go as snapshots"
    );
    let as_set = |rows: &[Value]| -> BTreeSet<Resident> {
        rows.iter()
            .map(|r| {
                let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
                assert!(
                    keys.iter().all(|k| [
                        "citizen_id",
                        "name",
                        "gender",
                        "birth_date",
                        "residence_street"
                    ]
                    .contains(&k.as_str())),
                    "only released items: {r}"
                );
                Resident {
                    citizen_id: r["citizen_id"].as_str().unwrap().into(),
                    name: r["name"].as_str().unwrap().into(),
                    gender: r["gender"].as_str().unwrap().into(),
                    birth_date: r["birth_date"].as_str().unwrap().into(),
                    street: r["residence_street"].as_str().unwrap().into(),
                }
            })
            .collect()
    };
    assert_eq!(as_set(&got[0].rows), expected_v1);
    assert_eq!(as_set(&got[2].rows), expected_v3);
    let deliveries = json_of(
        hub.get(&format!("/v1/subscriptions/{id}/deliveries"), XUHUI)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let v1 = deliveries
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["version"] == 1)
        .unwrap();
    assert_eq!(v1["status"], "delivered");
    assert!(v1["attempts"].as_i64().unwrap() >= 2, "{v1}");

    // Revoked: no more deliveries, whatever is published.
    hub.revoke(need).await;
    let s = hub
        .wait_for(id, "stopped", |s| s["status"] == "stopped")
        .await;
    assert!(s["status_reason"].as_str().unwrap().contains("revoked"));
    hub.publish_demo_versions(10).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        rx.got.lock().unwrap().len(),
        3,
        "nothing after the revocation"
    );
    let records = std::fs::read_to_string(hub.data_dir().join("audit/audit-000001.jsonl")).unwrap();
    for v in 1..=3 {
        let case = format!("\"case\":\"sub:residents-push:v{v}\"");
        assert!(
            records
                .lines()
                .any(|l| l.contains(&case) && l.contains("\"outcome\":\"released\"")),
            "v{v} audited"
        );
    }
    assert!(
        records
            .lines()
            .any(|l| l.contains("sub:residents-push:v1") && l.contains("\"outcome\":\"failed\""))
    );
}

/// Parquet bodies; pending deliveries survive a restart of the hub (the
/// outbox is in the catalog); a new negative entry drops its item from the
/// next delivery.
#[tokio::test]
async fn webhook_outbox_survives_a_restart_and_follows_the_negative_list() {
    use std::sync::atomic::Ordering;
    let mut hub = Hub::start_with(None, |c| {
        c.delivery.tick_ms = 50;
        c.delivery.retry_base_ms = 50;
        c.delivery.retry_max_ms = 300;
    })
    .await;
    let (rx, url) = receiver().await;
    let need = hub.subscribe_need().await;
    let sub = json_of(
        hub.subscribe(
            XUHUI,
            json!({"name": "residents-parquet", "resource": "101/000001", "need": need,
                   "channel": {"type": "webhook", "url": url, "format": "parquet"}}),
        )
        .await,
        201,
    )
    .await;
    *rx.secret.lock().unwrap() = sub["secret"].as_str().unwrap().to_string();
    let id = sub["id"].as_i64().unwrap();
    let expected_v1 = expected_residents(&hub).await;
    hub.wait_for(id, "a failed attempt", |s| s["last_error"].is_string())
        .await;

    // The hub goes down and comes back; a version is published meanwhile.
    hub.restart().await;
    hub.publish_demo_versions(8).await;
    rx.up.store(true, Ordering::SeqCst);
    hub.wait_for(id, "v2 delivered", |s| s["cursor"] == 2).await;
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.iter().map(|r| r.version).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(got[0].rows.len(), expected_v1.len());
    assert!(got[0].rows.iter().all(|r| {
        r["residence_street"]
            .as_str()
            .unwrap()
            .starts_with("310104")
    }));

    // Birth dates go on the negative list for bulk delivery: v3 comes without.
    json_of(
        hub.post("/v1/lists/negative", OFFICE)
            .json(&json!({"resource": "101/000001", "items": ["birth_date"], "modes": ["subscribe"],
                          "legal_basis": "《个人信息保护法》第六条", "note": "出生日期不再批量回流"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    hub.publish_demo_versions(9).await;
    hub.wait_for(id, "v3 delivered", |s| s["cursor"] == 3).await;
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.iter().map(|r| r.version).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(got[1].rows.iter().all(|r| r.get("birth_date").is_some()));
    assert!(!got[2].rows.is_empty());
    assert!(
        got[2].rows.iter().all(|r| r.get("birth_date").is_none()),
        "a negative-listed item never leaves"
    );
    // Two servers, one after the other, wrote one unbroken audit chain.
    let chain = tongban_hub::audit::verify(&hub.data_dir().join("audit")).unwrap();
    assert!(chain.is_ok(), "{chain:?}");
}

/// Push into a department's own PostgreSQL table: the permitted rows,
/// replaced per version; a column for an item that is not released stays
/// empty.
#[tokio::test]
async fn postgres_push_replaces_the_table_with_the_permitted_rows() {
    use sqlx::{Connection, PgConnection, Row};
    let hub = Hub::start_with(None, |c| {
        c.delivery.tick_ms = 50;
        c.delivery.retry_base_ms = 50;
        c.delivery.retry_max_ms = 300;
    })
    .await;
    let mut db = PgConnection::connect(&pg_url())
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} must be reachable: {e}", pg_url()));
    async fn count(db: &mut PgConnection) -> (i64, i64, i64, i64, i64) {
        let row = sqlx::query(
            "SELECT count(*) AS n, count(*) FILTER (WHERE residence_street LIKE '310104%') AS mine,
                    count(phone) AS phones, count(religion) AS religions,
                    count(*) FILTER (WHERE citizen_id LIKE '___***********%') AS masked
             FROM tongban_e2e_push.residents",
        )
        .fetch_one(db)
        .await
        .unwrap();
        let get = |c: &str| row.get::<i64, _>(c);
        (
            get("n"),
            get("mine"),
            get("phones"),
            get("religions"),
            get("masked"),
        )
    }
    sqlx::raw_sql(
        "DROP SCHEMA IF EXISTS tongban_e2e_push CASCADE; CREATE SCHEMA tongban_e2e_push;
         CREATE TABLE tongban_e2e_push.residents (citizen_id text, name text, gender text,
            birth_date date, residence_street text, phone text, religion text)",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let need = hub.subscribe_need().await;
    let url = pg_url().replace("postgresql://", "postgres://");
    let sub = json_of(
        hub.subscribe(
            XUHUI,
            json!({"name": "residents-db", "resource": "101/000001", "need": need,
                   "channel": {"type": "postgres", "url": url, "table": "tongban_e2e_push.residents"}}),
        )
        .await,
        201,
    )
    .await;
    let id = sub["id"].as_i64().unwrap();
    hub.wait_for(id, "v1 in the table", |s| s["cursor"] == 1)
        .await;
    let n1 = expected_residents(&hub).await.len() as i64;
    assert_eq!(count(&mut db).await, (n1, n1, 0, 0, n1));
    hub.publish_demo_versions(8).await;
    hub.wait_for(id, "v2 in the table", |s| s["cursor"] == 2)
        .await;
    let n2 = expected_residents(&hub).await.len() as i64;
    assert_eq!(
        count(&mut db).await,
        (n2, n2, 0, 0, n2),
        "replaced, not appended"
    );
}
