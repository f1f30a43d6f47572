//! Subscriptions end to end: the subscriptions API, the Delta Sharing
//! protocol as seen over HTTP (files downloaded and read back), webhook push
//! through an outage and a restart, PostgreSQL push, and what a negative
//! entry or a revoked need does to every channel.

use crate::common::{
    Hub, Push, Webhook, cells, expect_json, ndjson, pg_connect, pg_url, problem, quick_delivery,
    read_parquet, s3_store,
};
use arrow::record_batch::RecordBatch;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tongban_policies::Mask;

const XUHUI: &str = "xuhui-district";
const RESIDENTS: &str = "/delta-sharing/shares/population/schemas/sh-gaj/tables/residents";

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
    let key = hub.mask_key();
    let (_, batches) = hub.read_newest("101/000001").await;
    let out: BTreeSet<Resident> = batches
        .iter()
        .flat_map(rows)
        .filter(|r| r.street.starts_with("310104"))
        .map(|r| Resident {
            citizen_id: Mask::CitizenId.apply(&r.citizen_id, key.as_bytes()),
            ..r
        })
        .collect();
    assert!(out.len() > 20, "the district has residents: {}", out.len());
    out
}

/// The residents' items of a batch, as text.
fn rows(b: &RecordBatch) -> Vec<Resident> {
    let text = |c: &str| cells(b, c);
    let (id, name, gender, born, street) = (
        text("citizen_id"),
        text("name"),
        text("gender"),
        text("birth_date"),
        text("residence_street"),
    );
    let at = |column: &[Option<String>], r: usize| column[r].clone().unwrap_or_default();
    (0..b.num_rows())
        .map(|r| Resident {
            citizen_id: at(&id, r),
            name: at(&name, r),
            gender: at(&gender, r),
            birth_date: at(&born, r),
            street: at(&street, r),
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

/// The entry the data office adds here: birth dates no longer go out in
/// bulk (subscribe mode).
fn no_bulk_birth_dates() -> Value {
    json!({"resource": "101/000001", "items": ["birth_date"], "modes": ["subscribe"],
           "legal_basis": "《个人信息保护法》第六条", "note": "出生日期不再批量回流"})
}

// ---- the subscriptions API ---------------------------------------------------

/// A subscription the district may make besides the demo's (a pull one).
async fn another(hub: &Hub) -> Value {
    let need = hub.approved_need(XUHUI, "subscribe").await;
    json!({"name": "more", "resource": "101/000001", "need": need, "channel": {"type": "pull"}})
}

/// [`another`] subscription, pushed by webhook: its answer (201).
async fn another_by_webhook(hub: &Hub) -> Value {
    let mut body = another(hub).await;
    body["channel"] = json!({"type": "webhook", "url": "http://127.0.0.1:9/in"});
    expect_json(hub.subscribe(XUHUI, &body).await, 201).await
}

/// Creating subscriptions: every rule is checked and answered clearly,
/// naming the field, and nothing half-made is left.
#[tokio::test]
async fn subscriptions_that_break_a_rule_are_refused_naming_the_field() {
    let hub = Hub::start(None).await;
    let base = another(&hub).await;
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let lookup_need = hub.approved_need(XUHUI, "lookup").await;
    for (body, field) in [
        (with("need", json!(lookup_need)), "need"),
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
        let p = problem(hub.subscribe(XUHUI, &body).await, 422, "invalid_input").await;
        assert_eq!(p["field"], field, "{body}: {p}");
    }
    problem(
        hub.subscribe(XUHUI, &with("channel", json!({"type": "carrier-pigeon"})))
            .await,
        422,
        "invalid_input",
    )
    .await;
    // Another department cannot subscribe under the district's need.
    let p = problem(
        hub.subscribe("acceptance", &base).await,
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "need");
    problem(
        hub.subscribe(XUHUI, &with("name", json!("residents")))
            .await,
        409,
        "duplicate",
    )
    .await;
    let all = expect_json(
        hub.get("/v1/subscriptions", XUHUI).send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(all.as_array().unwrap().len(), 1, "nothing half-made: {all}");
}

/// A webhook subscription shows its secret once; its status shows the plan
/// the policy makes of it now.
#[tokio::test]
async fn a_webhook_subscription_shows_its_secret_once_and_its_plan() {
    let hub = Hub::start(None).await;
    let hook = another_by_webhook(&hub).await;
    assert!(hook["secret"].as_str().unwrap().starts_with("whsec_"));
    let status = hub.subscription(XUHUI, hook["id"].as_i64().unwrap()).await;
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
}

/// The consumer and the data office see a subscription; nobody else does,
/// or may cancel it; without an identity nothing is listed.
#[tokio::test]
async fn a_subscription_is_seen_and_cancelled_only_by_its_parties() {
    let hub = Hub::start(None).await;
    let mine = expect_json(
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
    let id = another_by_webhook(&hub).await["id"].as_i64().unwrap();
    problem(
        hub.get(&format!("/v1/subscriptions/{id}"), "acceptance")
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    hub.subscription("data-office", id).await;
    let everyone = expect_json(
        hub.get("/v1/subscriptions", "data-office")
            .send()
            .await
            .unwrap(),
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
    let cancelled = expect_json(
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

// ---- Delta Sharing over HTTP -------------------------------------------------

/// A hub whose shared files hold at most 10 rows, and a second table of the
/// district's (`births`, birth dates only) besides the demo's `residents`.
async fn sharing_hub() -> Hub {
    sharing_hub_with(|_| {}).await
}

/// [`sharing_hub`] with the config adjusted first.
async fn sharing_hub_with(tweak: impl FnOnce(&mut tongban_core::config::Config)) -> Hub {
    let hub = Hub::start_with(None, |c| {
        c.delivery.file_rows = 10;
        tweak(c);
    })
    .await;
    let need = hub.approved_need(XUHUI, "subscribe").await;
    expect_json(
        hub.subscribe(
            XUHUI,
            &json!({"name": "births", "resource": "101/000001", "need": need, "items": ["birth_date"], "channel": {"type": "pull"}}),
        )
        .await,
        201,
    )
    .await;
    hub
}

/// A Delta Sharing request of the district's.
fn ds(hub: &Hub, path: &str) -> reqwest::RequestBuilder {
    hub.get(&format!("/delta-sharing{path}"), XUHUI)
}

/// A query of `residents`: its lines (200).
async fn query(hub: &Hub, body: Value) -> Vec<Value> {
    ndjson(query_answer(hub, body).await, 200).await
}

/// A query of `residents`: the answer, unchecked.
async fn query_answer(hub: &Hub, body: Value) -> reqwest::Response {
    hub.post(&format!("{RESIDENTS}/query"), XUHUI)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The `file` actions of Delta Sharing lines.
fn files(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter_map(|l| l.get("file")).collect()
}

/// The released-record count of the district's `residents` v1 in the audit
/// log, after asserting that no subscription record holds keys.
fn audited_releases(hub: &Hub) -> usize {
    let records = hub.audit_records();
    assert!(records.iter().all(|r| r["keys"] == json!([])));
    records
        .iter()
        .filter(|r| r["case"] == "sub:residents:v1" && r["outcome"] == "released")
        .count()
}

/// Shares, schemas and tables: only what is shared with the department,
/// listed in pages; bad page tokens and unknown shares are problems in the
/// protocol's terms.
#[tokio::test]
async fn delta_sharing_lists_what_is_shared_with_a_department_in_pages() {
    let hub = sharing_hub().await;
    let shares = expect_json(ds(&hub, "/shares").send().await.unwrap(), 200).await;
    assert_eq!(
        shares["items"],
        json!([{"name": "population", "id": "population"}])
    );
    let none = expect_json(
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
    let schemas = expect_json(
        ds(&hub, "/shares/population/schemas").send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(
        schemas["items"],
        json!([{"name": "sh-gaj", "share": "population"}])
    );
    let page1 = expect_json(
        ds(
            &hub,
            "/shares/population/schemas/sh-gaj/tables?maxResults=1",
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(page1["items"][0]["name"], "births");
    let token = page1["nextPageToken"].as_str().unwrap();
    let page2 = expect_json(
        ds(
            &hub,
            &format!("/shares/population/schemas/sh-gaj/tables?maxResults=1&pageToken={token}"),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(page2["items"][0]["name"], "residents");
    assert!(page2.get("nextPageToken").is_none());
    let all = expect_json(
        ds(&hub, "/shares/population/all-tables")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let bad = ds(
        &hub,
        &format!("/shares/population/all-tables?pageToken={token}"),
    )
    .send()
    .await
    .unwrap();
    let p = problem(bad, 400, "invalid_parameter").await;
    assert_eq!(p["errorCode"], "INVALID_PARAMETER_VALUE", "{p}");
    let p = problem(
        ds(&hub, "/shares/legal_entity/schemas")
            .send()
            .await
            .unwrap(),
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
}

/// A table's version, and its metadata: the released items with their
/// Delta types.
#[tokio::test]
async fn delta_sharing_describes_a_table_by_its_version_and_released_items() {
    let hub = sharing_hub().await;
    let v = ds(
        &hub,
        &format!("{}/version", &RESIDENTS["/delta-sharing".len()..]),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(v.headers()["delta-table-version"], "1");
    let resp = hub
        .get(&format!("{RESIDENTS}/metadata"), XUHUI)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["delta-table-version"], "1");
    let meta = ndjson(resp, 200).await;
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
}

/// Query: every file, downloaded through its signed URL, holds exactly the
/// permitted rows; the URLs serve ranges and HEAD as Parquet readers use
/// them.
#[tokio::test]
async fn delta_sharing_files_hold_exactly_the_permitted_rows() {
    let hub = sharing_hub().await;
    let resp = query_answer(&hub, json!({})).await;
    assert_eq!(resp.headers()["delta-table-version"], "1");
    let q = ndjson(resp, 200).await;
    let files = files(&q);
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
    ranges_are_served(&hub, url, files[0]["size"].as_u64().unwrap()).await;
}

/// A file URL answers the ranges Parquet readers ask for: the footer from
/// the end, an open range, and `416` past the end.
async fn ranges_are_served(hub: &Hub, url: &str, size: u64) {
    let get = |range: &str| hub.client.get(url).header("range", range).send();
    let footer = get("bytes=-4").await.unwrap();
    assert_eq!(footer.status(), 206);
    assert_eq!(
        footer.headers()["content-range"],
        format!("bytes {}-{}/{size}", size - 4, size - 1).as_str()
    );
    assert_eq!(&footer.bytes().await.unwrap()[..], b"PAR1");
    let tail = get(&format!("bytes={}-", size - 10)).await.unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap().len(), 10);
    let past = get(&format!("bytes={size}-")).await.unwrap();
    assert_eq!(
        past.headers()["content-range"],
        format!("bytes */{size}").as_str()
    );
    problem(past, 416, "range_not_satisfiable").await;
}

/// On an object store, as replicas run: the shared files are written to
/// the bucket (none on the hub's disk) and served from it, whole and in
/// ranges, holding exactly the permitted rows.
#[tokio::test]
async fn delta_sharing_files_live_on_the_object_store() {
    let objects = s3_store("e2e-sharing");
    let hub = sharing_hub_with(|c| c.object_store = Some(objects.clone())).await;
    let q = query(&hub, json!({})).await;
    let files = files(&q);
    let expected = expected_residents(&hub).await;
    let mut got = BTreeSet::new();
    for f in &files {
        let bytes = hub
            .client
            .get(f["url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.len() as u64, f["size"].as_u64().unwrap());
        got.extend(residents_of(&read_parquet(bytes)));
    }
    assert_eq!(got, expected);
    let url = files[0]["url"].as_str().unwrap();
    ranges_are_served(&hub, url, files[0]["size"].as_u64().unwrap()).await;

    use futures::TryStreamExt;
    use object_store::ObjectStore;
    let listed: Vec<String> = hub
        .datasets()
        .object_store()
        .list(Some(&"sharing".into()))
        .map_ok(|o| o.location.to_string())
        .try_collect()
        .await
        .unwrap();
    let parquet = listed.iter().filter(|p| p.ends_with(".parquet")).count();
    assert_eq!(parquet, files.len(), "{listed:?}");
    assert_eq!(
        listed
            .iter()
            .filter(|p| p.ends_with("/manifest.json"))
            .count(),
        1
    );
    assert!(
        !hub.data_dir().join("sharing").exists(),
        "nothing shared on the hub's disk"
    );
    // A second query reads the manifest: the same files, none written again.
    let again = query(&hub, json!({})).await;
    let same: Vec<&Value> = self::files(&again);
    assert_eq!(
        same.iter().map(|f| f["id"].clone()).collect::<Vec<_>>(),
        files.iter().map(|f| f["id"].clone()).collect::<Vec<_>>()
    );
}

/// Hints: a limit, a predicate no file can match, pages of files; a version
/// that does not exist, or a change feed asked of a query, are problems.
/// Each query is audited under the subscription's version.
#[tokio::test]
async fn delta_sharing_query_hints_limit_prune_and_page_the_files() {
    let hub = sharing_hub().await;
    let q = query(&hub, json!({})).await;
    let files = files(&q);
    let limited = query(&hub, json!({"limitHint": 1})).await;
    assert_eq!(
        limited.iter().filter(|l| l.get("file").is_some()).count(),
        1
    );
    let nothing = json!({"op": "equal", "children": [
        {"op": "column", "name": "residence_street", "valueType": "string"},
        {"op": "literal", "value": "310101001000", "valueType": "string"}]});
    let pruned = query(&hub, json!({"jsonPredicateHints": nothing.to_string()})).await;
    assert_eq!(
        pruned.iter().filter(|l| l.get("file").is_some()).count(),
        0,
        "other districts' streets are in no file"
    );
    let first = query(&hub, json!({"maxFiles": 2})).await;
    let page: Vec<&Value> = first.iter().filter_map(|l| l.get("file")).collect();
    assert_eq!(page.len(), 2.min(files.len()));
    if files.len() > 2 {
        let next = first.last().unwrap()["endStreamAction"]["nextPageToken"]
            .as_str()
            .unwrap();
        let second = query(&hub, json!({"maxFiles": 100, "pageToken": next})).await;
        let rest = second.iter().filter(|l| l.get("file").is_some()).count();
        assert_eq!(page.len() + rest, files.len());
    }
    problem(
        query_answer(&hub, json!({"version": 9})).await,
        404,
        "not_found",
    )
    .await;
    problem(
        query_answer(&hub, json!({"startingVersion": 1})).await,
        400,
        "invalid_parameter",
    )
    .await;
    let released = audited_releases(&hub);
    assert!(released >= 5, "each query audited: {released}");
}

/// Signed URLs: tampered or expired ones serve nothing.
#[tokio::test]
async fn delta_sharing_file_urls_cannot_be_tampered_with_or_used_after_expiry() {
    let hub = sharing_hub().await;
    let q = query(&hub, json!({})).await;
    let url = files(&q)[0]["url"].as_str().unwrap();
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
    let signer = tongban_delivery::file_url_signer(hub.mask_key().as_bytes());
    let mut grant: tongban_delivery::Grant = signer.verify(token, 0).unwrap();
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
}

/// A new negative entry: the old URLs die, new files lack the item, and a
/// table of nothing but the item is refused with the entry's rule.
#[tokio::test]
async fn a_negative_entry_ends_old_file_urls_and_new_files_lack_the_item() {
    let hub = sharing_hub().await;
    let q = query(&hub, json!({})).await;
    let url = files(&q)[0]["url"].as_str().unwrap();
    hub.add_negative(&no_bulk_birth_dates()).await;
    let p = problem(hub.client.get(url).send().await.unwrap(), 403, "forbidden").await;
    assert!(p["detail"].as_str().unwrap().contains("changed"), "{p}");
    let q2 = query(&hub, json!({})).await;
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
}

/// Revoking the need shuts the table and its URLs; the refusal is in the
/// audit log under the subscription.
#[tokio::test]
async fn a_revoked_need_shuts_the_shared_table_and_its_urls() {
    let hub = sharing_hub().await;
    let q = query(&hub, json!({})).await;
    let live = files(&q)[0]["url"].as_str().unwrap().to_string();
    hub.revoke_need(hub.approved_need(XUHUI, "subscribe").await)
        .await;
    let p = problem(query_answer(&hub, json!({})).await, 403, "denied").await;
    assert!(p["detail"].as_str().unwrap().contains("stopped"), "{p}");
    problem(hub.client.get(&live).send().await.unwrap(), 403, "denied").await;
    let shares = expect_json(ds(&hub, "/shares").send().await.unwrap(), 200).await;
    assert_eq!(shares["items"], json!([]));
    assert_eq!(audited_releases(&hub), 1, "the query before");
    assert!(
        hub.audit_records()
            .iter()
            .any(|r| r["case"] == "sub:residents" && r["outcome"] == "denied")
    );
}

// ---- push ------------------------------------------------------------------

/// A webhook subscription of the district's residents to `hook`, in
/// `format` (NDJSON when `None`): its id and secret.
async fn push_to(hub: &Hub, name: &str, hook: &Webhook, format: Option<&str>) -> (i64, String) {
    let need = hub.approved_need(XUHUI, "subscribe").await;
    let mut channel = json!({"type": "webhook", "url": hook.url});
    if let Some(format) = format {
        channel["format"] = json!(format);
    }
    let sub = expect_json(
        hub.subscribe(
            XUHUI,
            &json!({"name": name, "resource": "101/000001", "need": need, "channel": channel}),
        )
        .await,
        201,
    )
    .await;
    (
        sub["id"].as_i64().unwrap(),
        sub["secret"].as_str().unwrap().to_string(),
    )
}

/// Every push `hook` accepted, opened (signature and row count checked).
fn opened(hook: &Webhook, secret: &str) -> Vec<Push> {
    hook.pushed().iter().map(|p| p.open(secret)).collect()
}

/// Webhook rows as residents, after asserting each has only released items.
fn as_set(rows: &[Value]) -> BTreeSet<Resident> {
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
}

/// A webhook that is down while three versions are published receives all
/// three when it returns: each once, in order, signed, with only the
/// permitted rows and items.
#[tokio::test]
async fn webhook_push_survives_an_outage_with_nothing_lost_or_repeated() {
    let hub = Hub::start_with(None, quick_delivery).await;
    let hook = Webhook::start_down().await;
    let (id, secret) = push_to(&hub, "residents-push", &hook, None).await;
    let expected_v1 = expected_residents(&hub).await;

    // Down: v1 is tried again and again; v2 and v3 are published meanwhile.
    let s = hub
        .wait_for_subscription(XUHUI, id, "failed attempts", |s| {
            s["last_error"].as_str().is_some_and(|e| e.contains("503"))
        })
        .await;
    assert_eq!(s["pending"], 1);
    hub.publish_demo_versions(8).await;
    hub.publish_demo_versions(9).await;
    let expected_v3 = expected_residents(&hub).await;
    hub.wait_for_subscription(XUHUI, id, "three pending", |s| s["pending"] == 3)
        .await;
    // Still tried again and again (the backoff is capped at 300 ms here);
    // how many attempts fit in the publishing above depends on the machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hook.refused() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "retries stopped after {} attempts",
            hook.refused()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(hook.pushed().is_empty());

    // Back up: everything arrives, once, in order.
    hook.come_up();
    let s = hub
        .wait_for_subscription(XUHUI, id, "the cursor at v3", |s| s["cursor"] == 3)
        .await;
    assert_eq!(
        (s["pending"].as_i64(), s["behind"].as_i64()),
        (Some(0), Some(0))
    );
    let got = opened(&hook, &secret);
    assert_eq!(
        got.iter().map(|r| r.version).collect::<Vec<_>>(),
        [1, 2, 3],
        "once each, in order"
    );
    assert!(
        got.iter().all(|r| r.kind == "snapshot"),
        "full versions go as snapshots"
    );
    assert_eq!(as_set(&got[0].rows), expected_v1);
    assert_eq!(as_set(&got[2].rows), expected_v3);
    let deliveries = expect_json(
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

    // Every delivery is audited, and so is the failed attempt.
    let records = hub.audit_records();
    for v in 1..=3 {
        let case = format!("sub:residents-push:v{v}");
        assert!(
            records
                .iter()
                .any(|r| r["case"] == case.as_str() && r["outcome"] == "released"),
            "v{v} audited"
        );
    }
    assert!(
        records
            .iter()
            .any(|r| r["case"] == "sub:residents-push:v1" && r["outcome"] == "failed")
    );
}

/// A revoked need stops the deliveries: nothing more is pushed, whatever is
/// published.
#[tokio::test]
async fn a_revoked_need_stops_webhook_deliveries() {
    let hub = Hub::start_with(None, quick_delivery).await;
    let hook = Webhook::start().await;
    let (id, secret) = push_to(&hub, "residents-push", &hook, None).await;
    hub.wait_for_subscription(XUHUI, id, "v1 delivered", |s| s["cursor"] == 1)
        .await;
    assert_eq!(opened(&hook, &secret).len(), 1);
    hub.revoke_need(hub.approved_need(XUHUI, "subscribe").await)
        .await;
    let s = hub
        .wait_for_subscription(XUHUI, id, "stopped", |s| s["status"] == "stopped")
        .await;
    assert!(s["status_reason"].as_str().unwrap().contains("revoked"));
    hub.publish_demo_versions(10).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(hook.pushed().len(), 1, "nothing after the revocation");
}

/// Parquet bodies; pending deliveries survive a restart of the hub (the
/// outbox is in the catalog), and the two servers, one after the other,
/// write one unbroken audit chain.
#[tokio::test]
async fn pending_webhook_deliveries_survive_a_restart_of_the_hub() {
    let mut hub = Hub::start_with(None, quick_delivery).await;
    let hook = Webhook::start_down().await;
    let (id, secret) = push_to(&hub, "residents-parquet", &hook, Some("parquet")).await;
    let expected_v1 = expected_residents(&hub).await;
    hub.wait_for_subscription(XUHUI, id, "a failed attempt", |s| {
        s["last_error"].is_string()
    })
    .await;

    // The hub goes down and comes back; a version is published meanwhile.
    hub.restart().await;
    hub.publish_demo_versions(8).await;
    hook.come_up();
    hub.wait_for_subscription(XUHUI, id, "v2 delivered", |s| s["cursor"] == 2)
        .await;
    let got = opened(&hook, &secret);
    assert_eq!(got.iter().map(|r| r.version).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(got[0].rows.len(), expected_v1.len());
    assert!(got[0].rows.iter().all(|r| {
        r["residence_street"]
            .as_str()
            .unwrap()
            .starts_with("310104")
    }));
    hub.assert_audit_chain_intact();
}

/// Birth dates go on the negative list for bulk delivery: the next version
/// is pushed without them.
#[tokio::test]
async fn a_negative_entry_drops_its_item_from_the_next_webhook_delivery() {
    let hub = Hub::start_with(None, quick_delivery).await;
    let hook = Webhook::start().await;
    let (id, secret) = push_to(&hub, "residents-parquet", &hook, Some("parquet")).await;
    hub.wait_for_subscription(XUHUI, id, "v1 delivered", |s| s["cursor"] == 1)
        .await;
    hub.add_negative(&no_bulk_birth_dates()).await;
    hub.publish_demo_versions(9).await;
    hub.wait_for_subscription(XUHUI, id, "v2 delivered", |s| s["cursor"] == 2)
        .await;
    let got = opened(&hook, &secret);
    assert_eq!(got.iter().map(|r| r.version).collect::<Vec<_>>(), [1, 2]);
    assert!(got[0].rows.iter().all(|r| r.get("birth_date").is_some()));
    assert!(!got[1].rows.is_empty());
    assert!(
        got[1].rows.iter().all(|r| r.get("birth_date").is_none()),
        "a negative-listed item never leaves"
    );
}

/// Push into a department's own PostgreSQL table: the permitted rows,
/// replaced per version; a column for an item that is not released stays
/// empty.
#[tokio::test]
async fn postgres_push_replaces_the_table_with_the_permitted_rows() {
    use sqlx::{PgConnection, Row};
    let hub = Hub::start_with(None, quick_delivery).await;
    let mut db = pg_connect().await;
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
    let need = hub.approved_need(XUHUI, "subscribe").await;
    let url = pg_url().replace("postgresql://", "postgres://");
    let sub = expect_json(
        hub.subscribe(
            XUHUI,
            &json!({"name": "residents-db", "resource": "101/000001", "need": need,
                    "channel": {"type": "postgres", "url": url, "table": "tongban_e2e_push.residents"}}),
        )
        .await,
        201,
    )
    .await;
    let id = sub["id"].as_i64().unwrap();
    hub.wait_for_subscription(XUHUI, id, "v1 in the table", |s| s["cursor"] == 1)
        .await;
    let n1 = expected_residents(&hub).await.len() as i64;
    assert_eq!(count(&mut db).await, (n1, n1, 0, 0, n1));
    hub.publish_demo_versions(8).await;
    hub.wait_for_subscription(XUHUI, id, "v2 in the table", |s| s["cursor"] == 2)
        .await;
    let n2 = expected_residents(&hub).await.len() as i64;
    assert_eq!(
        count(&mut db).await,
        (n2, n2, 0, 0, n2),
        "replaced, not appended"
    );
}

/// Shared files carry the disputed mark (异议标注): once an objection is
/// open on a resident's name, the residents table's files are written
/// anew with a `_disputed` column — `name` on that resident's row, empty on
/// the others — and the metadata's schema says so; once it is closed, the
/// files are as before.
#[tokio::test]
async fn shared_files_mark_the_rows_an_objection_disputes() {
    let hub = sharing_hub().await;
    let (_, batches) = hub.read_newest("101/000001").await;
    let resident = batches
        .iter()
        .flat_map(rows)
        .find(|r| r.street.starts_with("310104"))
        .expect("a Xuhui resident");
    let masked = Mask::CitizenId.apply(&resident.citizen_id, hub.mask_key().as_bytes());
    let (_, before) = shared_marks(&hub).await;
    assert!(
        before.iter().all(|(_, d, col)| d.is_none() && !col),
        "no column before"
    );

    let raised = expect_json(
        hub.post("/v1/objections", "data-office")
            .json(&json!({"resource": "101/000001", "key": resident.citizen_id, "items": ["name", "phone"],
                          "evidence": "街道核查：姓名有误"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let (q, after) = shared_marks(&hub).await;
    let schema = q
        .iter()
        .find_map(|l| l.get("metaData"))
        .and_then(|m| m["schemaString"].as_str())
        .unwrap()
        .to_string();
    assert!(
        schema.contains("_disputed"),
        "the metadata names the column: {schema}"
    );
    let marked: Vec<_> = after.iter().filter(|(_, d, _)| d.is_some()).collect();
    assert_eq!(marked.len(), 1, "one row marked: {marked:?}");
    assert_eq!(marked[0].0, masked);
    assert_eq!(
        marked[0].1.as_deref(),
        Some("name"),
        "only the released items are marked"
    );
    assert!(
        after.iter().all(|(_, _, col)| *col),
        "every file has the column"
    );
    assert_eq!(after.len(), before.len(), "the same rows");

    // Rejected: the mark goes, and so does the column.
    let id = raised["id"].as_i64().unwrap();
    expect_json(
        hub.post(&format!("/v1/objections/{id}/reject"), "public-security")
            .json(&json!({"note": "与户籍档案一致"}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let (_, closed) = shared_marks(&hub).await;
    assert!(closed.iter().all(|(_, d, col)| d.is_none() && !col));
}

/// Everything the residents files hold: (masked citizen ID, `_disputed`,
/// whether the file has the column) per row, with the query's lines.
async fn shared_marks(hub: &Hub) -> (Vec<Value>, Vec<(String, Option<String>, bool)>) {
    let q = query(hub, json!({})).await;
    let mut out = Vec::new();
    for f in files(&q) {
        let bytes = hub
            .client
            .get(f["url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        for b in read_parquet(bytes) {
            let has_column = b.column_by_name("_disputed").is_some();
            let disputed = if has_column {
                cells(&b, "_disputed")
            } else {
                vec![None; b.num_rows()]
            };
            for (id, d) in cells(&b, "citizen_id").into_iter().zip(disputed) {
                out.push((id.unwrap(), d, has_column));
            }
        }
    }
    (q, out)
}
