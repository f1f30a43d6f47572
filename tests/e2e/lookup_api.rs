//! Real-time lookup and verification through the real server on demo data.

use crate::common::{
    Hub, cells, exchange, expect_json, grpc_code, ndjson, problem, read_parquet_file,
};
use arrow::array::{AsArray, RecordBatch};
use serde_json::{Value, json};

/// A few rows of a demo dataset, read straight from its Parquet file, as
/// text (a null as empty).
fn sample(hub: &Hub, dir: &str, columns: &[&str], n: usize) -> Vec<Vec<String>> {
    // Version 1's folder: `v1-` and the writer's suffix.
    let folder = std::fs::read_dir(hub.data_dir().join("datasets").join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("v1-") && !name.ends_with("-changes")
        })
        .expect("version 1 of the dataset");
    let batch = read_parquet_file(folder.join("part-00000.parquet")).remove(0);
    let columns: Vec<Vec<Option<String>>> = columns.iter().map(|c| cells(&batch, c)).collect();
    (0..n)
        .map(|row| {
            columns
                .iter()
                .map(|col| col[row].clone().unwrap_or_default())
                .collect()
        })
        .collect()
}

/// The answer of a lookup that must succeed (200).
async fn ok(resp: reqwest::Response) -> Value {
    expect_json(resp, 200).await
}

/// The demo's lookup of three citizens for 居住证: two in the data (one key
/// in lower case), one valid key that is not, and religion among the items.
fn three_citizens(people: &[Vec<String>]) -> Value {
    json!({
        "keys": [people[0][0], people[1][0].to_lowercase(), "11010519491231002X"],
        "items": ["name", "residence_address", "gender", "religion"],
        "matter": "310000-JZZ-001", "case": "JZZ-2026-000123"
    })
}

#[tokio::test]
async fn lookup_releases_permitted_masked_items() {
    let hub = Hub::start(None).await;
    let people = sample(
        &hub,
        "101-000001",
        &["citizen_id", "name", "residence_address", "gender"],
        3,
    );
    // The last key is valid, but not in the data.
    let body = three_citizens(&people);
    let r = ok(hub
        .post_when_ready("/v1/lookup/101/000001", "acceptance", &body)
        .await)
    .await;
    assert_eq!(r["version"], 1);
    assert!(r["as_of"].is_string());
    assert_eq!(r["within_sla"], true);
    assert_eq!(r["rule"], "need:2");
    let row = &r["results"][0]["rows"][0];
    assert_eq!(r["results"][0]["found"], true);
    assert_eq!(
        row["name"], people[0][1],
        "the need grants the name in clear"
    );
    let address = row["residence_address"].as_str().unwrap();
    assert!(
        address.ends_with("****") && people[0][2].starts_with(address.trim_end_matches('*')),
        "{address}"
    );
    assert_eq!(row["gender"], people[0][3]);
    assert!(row.get("religion").is_none() && row.get("citizen_id").is_none());
    assert_eq!(
        r["results"][1]["key"], people[1][0],
        "keys are normalised (upper-case X)"
    );
    assert_eq!(r["results"][1]["found"], true);
    assert_eq!(
        r["results"][2],
        json!({"key": "11010519491231002X", "found": false, "rows": []})
    );
    assert_eq!(
        r["denied"],
        json!([{"item": "religion", "rule": "negative:1", "reason": r["denied"][0]["reason"]}])
    );
}

/// A key that fails its check digit is refused before any lookup; so are a
/// lookup nothing permits (naming the rule), one without an identity or a
/// case, and one of a resource that does not exist.
#[tokio::test]
async fn lookups_that_break_a_rule_are_refused() {
    let hub = Hub::start(None).await;
    let people = sample(&hub, "101-000001", &["citizen_id"], 2);
    let mut bad_key = three_citizens(&people);
    bad_key["keys"][2] = json!("110105194912310021");
    let p = problem(
        hub.post_when_ready("/v1/lookup/101/000001", "acceptance", &bad_key)
            .await,
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "keys[2]");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("check character is '1', expected 'X'"),
        "{p}"
    );

    // The index is in: what follows is not refused for want of it.
    let body = three_citizens(&people);
    ok(hub
        .post_when_ready("/v1/lookup/101/000001", "acceptance", &body)
        .await)
    .await;

    // Nothing permitted: 403 naming the rule. No identity: 401.
    let other_matter =
        json!({"keys": [people[0][0]], "items": ["name"], "matter": "310000-OTHER", "case": "1"});
    let p = problem(
        hub.post("/v1/lookup/101/000001", "acceptance")
            .json(&other_matter)
            .send()
            .await
            .unwrap(),
        403,
        "denied",
    )
    .await;
    assert_eq!(p["rule"], "no_need");
    let anon = hub
        .client
        .post(format!("{}/v1/lookup/101/000001", hub.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(anon, 401, "unauthorized").await;
    let no_case = json!({"keys": [people[0][0]], "matter": "310000-JZZ-001", "case": " "});
    let p = problem(
        hub.post("/v1/lookup/101/000001", "acceptance")
            .json(&no_case)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "case");
    problem(
        hub.post("/v1/lookup/109/000009", "acceptance")
            .json(&body)
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn row_filters_hide_rows_like_missing_keys() {
    let hub = Hub::start(None).await;
    let people = sample(&hub, "101-000001", &["citizen_id", "residence_street"], 200);
    let inside = people
        .iter()
        .find(|p| p[1].starts_with("310104"))
        .expect("a Xuhui resident in the sample");
    let outside = people.iter().find(|p| !p[1].starts_with("310104")).unwrap();
    let body = json!({"keys": [inside[0], outside[0]], "items": ["citizen_id", "birth_date"], "matter": "310104-LNBT-004", "case": "LNBT-1"});
    let r = ok(hub
        .post_when_ready("/v1/lookup/101/000001", "xuhui-district", &body)
        .await)
    .await;
    assert_eq!(r["results"][0]["found"], true);
    let id = r["results"][0]["rows"][0]["citizen_id"].as_str().unwrap();
    assert_eq!(
        id,
        format!("{}***********{}", &inside[0][..3], &inside[0][14..]),
        "masked citizen ID"
    );
    assert_eq!(
        r["results"][1],
        json!({"key": outside[0], "found": false, "rows": []}),
        "another district's resident looks absent"
    );
}

#[tokio::test]
async fn verify_answers_match_or_not_and_discloses_nothing() {
    let hub = Hub::start(None).await;
    let people = sample(&hub, "101-000001", &["citizen_id", "name", "birth_date"], 2);
    let body = json!({
        "key": people[0][0],
        "claims": {"name": people[0][1], "birth_date": people[0][2], "religion": "无"},
        "matter": "310000-JZZ-001", "case": "JZZ-2026-000124"
    });
    let r = ok(hub
        .post_when_ready("/v1/verify/101/000001", "acceptance", &body)
        .await)
    .await;
    assert_eq!(r["found"], true);
    assert_eq!(r["matches"], json!({"birth_date": true, "name": true}));
    assert_eq!(r["denied"][0]["item"], "religion");
    assert!(
        !r.to_string().contains(&people[0][1]),
        "no value is disclosed: {r}"
    );
    let mut wrong = body.clone();
    wrong["claims"] = json!({"name": people[1][1], "birth_date": "1900-01-01"});
    let r = ok(hub
        .post("/v1/verify/101/000001", "acceptance")
        .json(&wrong)
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(
        r["matches"],
        json!({"birth_date": false, "name": people[0][1] == people[1][1]})
    );
    let mut bad_key = body.clone();
    bad_key["key"] = json!("12345");
    let p = problem(
        hub.post("/v1/verify/101/000001", "acceptance")
            .json(&bad_key)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "key");
}

/// Licences: verify a company's food licence is valid, and find licences by
/// holder. Credit codes are checked too.
#[tokio::test]
async fn licence_claims_are_verified_and_credit_codes_checked() {
    let hub = Hub::start(None).await;
    let licences = sample(
        &hub,
        "104-000001",
        &["licence_no", "holder_id", "status", "licence_type"],
        400,
    );
    let food = licences
        .iter()
        .find(|l| l[3] == "食品经营许可证")
        .expect("a food licence in the sample");
    let body = json!({"key": food[0], "claims": {"status": "valid", "holder_id": food[1]}, "matter": "310000-SPJY-003", "case": "SP-1"});
    let r = ok(hub
        .post_when_ready("/v1/verify/104/000001", "acceptance", &body)
        .await)
    .await;
    assert_eq!(
        r["matches"],
        json!({"holder_id": true, "status": food[2] == "valid"})
    );
    // Credit codes are checked too.
    let body = json!({"keys": ["91350100M000100Y42"], "matter": "310000-YYZZ-002", "case": "YY-1"});
    let p = problem(
        hub.post_when_ready("/v1/lookup/102/000001", "acceptance", &body)
            .await,
        422,
        "invalid_input",
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("credit code check character"),
        "{p}"
    );
}

/// E-licences carry their issuer's SM2 seal (SM3 digest) over their core
/// fields: verify answers that a demo licence's seal is valid; checked
/// against another department's key, or once the licence was altered in a
/// new version (its seal left as it was), it is not.
#[tokio::test]
async fn licence_seals_are_verified_and_tampered_licences_fail() {
    let hub = Hub::start(None).await;
    let licences = sample(&hub, "104-000001", &["licence_no", "licence_type"], 400);
    let food = licences
        .iter()
        .find(|l| l[1] == "食品经营许可证")
        .expect("a food licence in the sample");
    let ask = json!({"key": food[0], "seal": true, "matter": "310000-SPJY-003", "case": "SP-9"});
    let check = |r: Value| r["seal"].clone();
    let r = ok(hub
        .post_when_ready("/v1/verify/104/000001", "acceptance", &ask)
        .await)
    .await;
    assert_eq!(
        check(r),
        json!({"valid": true, "issuer": "sh-scjgj", "algorithm": "SM2-SM3"})
    );

    // Another department's key registered as the issuer's (over the API,
    // by the data office): not valid.
    let register = |issuer: &str| {
        let key = tongban_datagen::generate::issuer_seal_key(issuer).public_key();
        hub.put("/v1/catalog/departments/sh-scjgj/seal-key", "data-office")
            .json(&json!({ "public_key": key }))
            .send()
    };
    let registered = ok(register("sh-gaj").await.unwrap()).await;
    assert_eq!(registered["department"], "sh-scjgj");
    assert_eq!(registered["algorithm"], "SM2-SM3");
    // Only the data office registers; a key that is no SM2 point is refused.
    let by_department = hub
        .put("/v1/catalog/departments/sh-scjgj/seal-key", "acceptance")
        .json(&json!({"public_key": registered["public_key"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_department.status(), 403);
    let bad = hub
        .put("/v1/catalog/departments/sh-scjgj/seal-key", "data-office")
        .json(&json!({"public_key": "04abcd"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let unknown = hub
        .put("/v1/catalog/departments/no-such/seal-key", "data-office")
        .json(&json!({"public_key": registered["public_key"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let keys = ok(hub
        .get("/v1/catalog/seal-keys", "acceptance")
        .send()
        .await
        .unwrap())
    .await;
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["department"] == "sh-scjgj" && k["public_key"] == registered["public_key"]),
        "{keys}"
    );
    let r = ok(hub
        .post("/v1/verify/104/000001", "acceptance")
        .json(&ask)
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(r["seal"]["valid"], false, "{r}");
    assert!(
        r["seal"]["reason"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{r}"
    );
    ok(register("sh-scjgj").await.unwrap()).await;

    // A new version in which this licence's holder name was altered.
    let (_, batches) = hub.read_newest("104/000001").await;
    let tampered: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let no = b.column_by_name("licence_no").unwrap().as_string::<i32>();
            let names = b.column_by_name("holder_name").unwrap().as_string::<i32>();
            let altered: arrow::array::StringArray = (0..b.num_rows())
                .map(|i| {
                    Some(if no.value(i) == food[0] {
                        "改过的名称"
                    } else {
                        names.value(i)
                    })
                })
                .collect();
            let i = b.schema().index_of("holder_name").unwrap();
            let mut columns = b.columns().to_vec();
            columns[i] = std::sync::Arc::new(altered);
            RecordBatch::try_new(b.schema(), columns).unwrap()
        })
        .collect();
    let datasets = hub.datasets();
    let next = tongban_datasets::next_version(&hub.store, "104/000001")
        .await
        .unwrap();
    let mut writer = datasets
        .begin("104/000001", next, tampered[0].schema())
        .unwrap();
    for b in &tampered {
        writer.write(b).await.unwrap();
    }
    writer
        .publish(&hub.store, "tampered by the test")
        .await
        .unwrap();
    let mut r = Value::Null;
    for _ in 0..100 {
        r = ok(hub
            .post("/v1/verify/104/000001", "acceptance")
            .json(&ask)
            .send()
            .await
            .unwrap())
        .await;
        if r["version"] == next {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(r["version"], next, "the new version is served");
    assert_eq!(r["seal"]["valid"], false, "{r}");
    assert_eq!(r["seal"]["issuer"], "sh-scjgj");
}

/// Every release and denial is recorded; `audit trace` finds who looked a
/// citizen up; `audit verify` catches an edited record.
#[tokio::test]
async fn releases_and_denials_are_audited() {
    let hub = Hub::start(None).await;
    let people = sample(&hub, "101-000001", &["citizen_id"], 2);
    let body = json!({"keys": [people[0][0]], "items": ["name"], "matter": "310000-JZZ-001", "case": "JZZ-9"});
    ok(hub
        .post_when_ready("/v1/lookup/101/000001", "acceptance", &body)
        .await)
    .await;
    let denied =
        json!({"keys": [people[0][0]], "items": ["name"], "matter": "310104-OTHER", "case": "X-1"});
    problem(
        hub.post("/v1/lookup/101/000001", "xuhui-district")
            .json(&denied)
            .send()
            .await
            .unwrap(),
        403,
        "denied",
    )
    .await;
    let verify = json!({"key": people[1][0], "claims": {"name": "某某"}, "matter": "310000-JZZ-001", "case": "JZZ-10"});
    ok(hub
        .post("/v1/verify/101/000001", "acceptance")
        .json(&verify)
        .send()
        .await
        .unwrap())
    .await;

    let out = hub.audit_verify();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success() && stdout.contains("audit log intact: 3 records"),
        "{stdout}"
    );
    let traced = hub.audit_trace(&people[0][0].to_lowercase());
    let traced = traced.as_array().unwrap();
    assert_eq!(traced.len(), 2, "one release, one denial: {traced:?}");
    assert_eq!(
        (
            traced[0]["consumer"].as_str(),
            traced[0]["outcome"].as_str()
        ),
        (Some("sh-zwfw"), Some("released"))
    );
    assert_eq!(
        (traced[0]["matter"].as_str(), traced[0]["case"].as_str()),
        (Some("310000-JZZ-001"), Some("JZZ-9"))
    );
    assert_eq!(
        (
            traced[1]["consumer"].as_str(),
            traced[1]["outcome"].as_str(),
            traced[1]["rule"].as_str()
        ),
        (Some("xh-zwfw"), Some("denied"), Some("no_need"))
    );
    let log = std::fs::read_to_string(hub.data_dir().join("audit/audit-000001.jsonl")).unwrap();
    assert!(
        !log.contains(&people[0][0]),
        "keys are recorded only as keyed hashes"
    );

    // Someone edits the log: verify names the record and fails.
    std::fs::write(
        hub.data_dir().join("audit/audit-000001.jsonl"),
        log.replacen("JZZ-9", "JZZ-8", 1),
    )
    .unwrap();
    let out = hub.audit_verify();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("line 1: record 1 does not match its hash: it was edited"),
        "{err}"
    );
}

/// NDJSON in, NDJSON out: answers in input order, bad lines answered in place,
/// chunks past 4,096 keys, each chunk audited.
#[tokio::test]
async fn streamed_lookups_answer_every_line_in_order() {
    let hub = Hub::start(None).await;
    let people = sample(&hub, "101-000001", &["citizen_id", "name"], 3);
    let body = format!(
        "{}\n\"{}\"\n{{\"key\": \"{}\"}}\n12345\n\n11010519491231002X",
        people[0][0], people[1][0], people[2][0]
    );
    let path =
        "/v1/lookup/101/000001/stream?matter=310000-JZZ-001&case=BATCH-1&items=name,religion";
    let resp = hub
        .send_when_ready(path, || {
            hub.post(path, "acceptance")
                .header("content-type", "application/x-ndjson")
                .body(body.clone())
        })
        .await;
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let lines = ndjson(resp, 200).await;
    assert_eq!(lines.len(), 5, "{lines:?}");
    for (i, p) in people.iter().enumerate() {
        assert_eq!(lines[i]["key"], p[0]);
        assert_eq!(lines[i]["rows"][0]["name"], p[1]);
        assert!(lines[i]["rows"][0].get("religion").is_none());
    }
    assert_eq!(lines[3]["line"], 4);
    assert!(
        lines[3]["error"]
            .as_str()
            .unwrap()
            .contains("citizen id must be 18 characters"),
        "{}",
        lines[3]
    );
    assert_eq!(
        lines[4],
        json!({"key": "11010519491231002X", "found": false, "rows": []})
    );

    // 10,000 keys: three chunks, every answer, in order.
    let keys: Vec<&str> = (0..10_000).map(|i| people[i % 3][0].as_str()).collect();
    let resp = hub
        .post(path, "acceptance")
        .body(keys.join("\n"))
        .send()
        .await
        .unwrap();
    let answers = ndjson(resp, 200).await;
    assert_eq!(answers.len(), 10_000);
    assert!(answers[9_999].to_string().contains(&people[9_999 % 3][0]));
    let verify = hub.audit_verify();
    assert!(
        String::from_utf8(verify.stdout)
            .unwrap()
            .contains("intact: 4 records"),
        "one record per chunk"
    );
}

/// A denied stream is refused before anything streams; so is one that
/// names no matter.
#[tokio::test]
async fn streams_that_are_not_permitted_are_refused_before_anything_streams() {
    let hub = Hub::start(None).await;
    let people = sample(&hub, "101-000001", &["citizen_id"], 1);
    let denied = "/v1/lookup/101/000001/stream?matter=310000-NONE&case=B-2&items=name";
    problem(
        hub.send_when_ready(denied, || {
            hub.post(denied, "acceptance").body(people[0][0].clone())
        })
        .await,
        403,
        "denied",
    )
    .await;
    problem(
        hub.post("/v1/lookup/101/000001/stream?case=B-3", "acceptance")
            .body("x")
            .send()
            .await
            .unwrap(),
        400,
        "invalid_query",
    )
    .await;
}

/// A new dataset version is loaded in the background and swapped in while
/// lookups go on: none fails, and answers move from version 1 to 2.
#[tokio::test]
async fn a_new_version_swaps_in_under_load() {
    let hub = std::sync::Arc::new(Hub::start(None).await);
    let people = sample(&hub, "101-000001", &["citizen_id"], 20);
    let body = json!({"keys": people.iter().map(|p| &p[0]).collect::<Vec<_>>(), "items": ["name"], "matter": "310000-JZZ-001", "case": "SWAP"});
    ok(hub
        .post_when_ready("/v1/lookup/101/000001", "acceptance", &body)
        .await)
    .await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (hub, body, done) = (hub.clone(), body.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let (mut versions, mut failures, mut requests) =
                (std::collections::BTreeSet::new(), 0, 0);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let resp = hub
                    .post("/v1/lookup/101/000001", "acceptance")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                requests += 1;
                if resp.status() != 200 {
                    failures += 1;
                    continue;
                }
                let r: Value = resp.json().await.unwrap();
                assert!(
                    r["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|k| k["found"] == true)
                );
                versions.insert(r["version"].as_i64().unwrap());
            }
            (versions, failures, requests)
        }));
    }
    // Publish version 2 of everything (same seed: same keys) while they run.
    hub.publish_demo_versions(7).await;
    // Every answer meanwhile is 200 too.
    hub.post_until_version("/v1/lookup/101/000001", "acceptance", &body, 2, |_| false)
        .await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut versions, mut failures, mut requests) = (std::collections::BTreeSet::new(), 0, 0);
    for w in workers {
        let (v, f, r) = w.await.unwrap();
        versions.extend(v);
        failures += f;
        requests += r;
    }
    assert_eq!(
        failures, 0,
        "{failures} of {requests} lookups failed during the swap"
    );
    assert_eq!(
        versions.into_iter().collect::<Vec<_>>(),
        [1, 2],
        "served both versions across {requests} lookups"
    );
}

/// A need's daily quota is enforced per consumer and resource: over it, 429
/// with Retry-After.
#[tokio::test]
async fn quotas_refuse_with_retry_after() {
    let hub = Hub::start(None).await;
    let people = sample(&hub, "101-000001", &["citizen_id"], 3);
    let application = json!({
        "resource": "101/000001", "items": ["gender"], "matter": "310104-QUOTA-1", "mode": "lookup",
        "justification": "配额测试", "daily_quota": 2
    });
    let id = hub.grant_need("xuhui-district", &application, None).await;
    let ask = |key: &str| json!({"keys": [key], "items": ["gender"], "matter": "310104-QUOTA-1", "case": "Q"});
    ok(hub
        .post_when_ready(
            "/v1/lookup/101/000001",
            "xuhui-district",
            &ask(&people[0][0]),
        )
        .await)
    .await;
    ok(hub
        .post("/v1/lookup/101/000001", "xuhui-district")
        .json(&ask(&people[1][0]))
        .send()
        .await
        .unwrap())
    .await;
    let resp = hub
        .post("/v1/lookup/101/000001", "xuhui-district")
        .json(&ask(&people[2][0]))
        .send()
        .await
        .unwrap();
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (40_000..=43_201).contains(&retry),
        "half a day for a quota of 2: {retry}"
    );
    let p = problem(resp, 429, "quota_exceeded").await;
    assert_eq!(p["rule"], format!("need:{id}"));
    // Another consumer, or no quota: unaffected.
    let other = json!({"keys": [people[2][0]], "items": ["gender"], "matter": "310000-JZZ-001", "case": "Q"});
    ok(hub
        .post("/v1/lookup/101/000001", "acceptance")
        .json(&other)
        .send()
        .await
        .unwrap())
    .await;
    // The refusal is on the record too.
    let traced = hub.audit_trace(&people[2][0]);
    let outcomes: Vec<&str> = traced
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["quota_exceeded", "released"]);
    assert_eq!(
        traced[0]["items"],
        json!([]),
        "nothing was released to the refused request"
    );
}

/// Geospatial: a point falls in its city, district and street (R-tree plus
/// exact test); a point in the sea in none; bad coordinates and resources
/// without boundaries are refused.
#[tokio::test]
async fn points_find_their_city_district_and_street() {
    let hub = Hub::start(None).await;
    let streets = sample(
        &hub,
        "103-000001",
        &[
            "code",
            "level",
            "parent_code",
            "centroid_lon",
            "centroid_lat",
        ],
        40,
    );
    let street = streets
        .iter()
        .find(|s| s[1] == "street")
        .expect("a street among the first rows");
    let body = json!({
        "lon": street[3].parse::<f64>().unwrap(), "lat": street[4].parse::<f64>().unwrap(),
        "items": ["code", "name", "level"], "matter": "310000-JZZ-001", "case": "GEO-1"
    });
    let r = ok(hub
        .post_when_ready("/v1/locate/103/000001", "acceptance", &body)
        .await)
    .await;
    let rows = r["results"][0]["rows"].as_array().unwrap();
    let codes: Vec<&str> = rows.iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        ["310000", street[2].as_str(), street[0].as_str()],
        "city, district, street: {r}"
    );
    let sea = json!({"lon": 123.5, "lat": 31.0, "matter": "310000-JZZ-001", "case": "GEO-2"});
    let r = ok(hub
        .post("/v1/locate/103/000001", "acceptance")
        .json(&sea)
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(
        r["results"][0]["found"], false,
        "the East China Sea is in no district"
    );
    let bad = json!({"lon": 500.0, "lat": 31.0, "matter": "m", "case": "c"});
    problem(
        hub.post("/v1/locate/103/000001", "acceptance")
            .json(&bad)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    let people = json!({"lon": 121.4, "lat": 31.2, "matter": "m", "case": "c"});
    problem(
        hub.post_when_ready("/v1/locate/101/000001", "acceptance", &people)
            .await,
        422,
        "invalid_input",
    )
    .await;
}

/// Geospatial: an address text finds its district and street.
#[tokio::test]
async fn addresses_find_their_district_and_street() {
    let hub = Hub::start(None).await;
    let addresses = sample(
        &hub,
        "103-000002",
        &["address", "district_code", "street_code"],
        1,
    );
    let body = json!({"keys": [addresses[0][0]], "by": "address", "items": ["district_code", "street_code", "lon", "lat"], "matter": "310000-JZZ-001", "case": "GEO-3"});
    let r = ok(hub
        .post_when_ready("/v1/lookup/103/000002", "acceptance", &body)
        .await)
    .await;
    let row = &r["results"][0]["rows"][0];
    assert_eq!(
        (row["district_code"].as_str(), row["street_code"].as_str()),
        (
            Some(addresses[0][1].as_str()),
            Some(addresses[0][2].as_str())
        )
    );
    assert!(row["lon"].is_number());
}

/// E-licences: in force at a date, from status and validity window.
#[tokio::test]
async fn licences_are_checked_in_force_at_a_date() {
    let hub = Hub::start(None).await;
    let licences = sample(
        &hub,
        "104-000001",
        &["licence_no", "status", "valid_from", "valid_to"],
        500,
    );
    let ask = |no: &str, at: &str| json!({"key": no, "valid_at": at, "matter": "310000-SPJY-003", "case": "SP-2"});
    let valid = licences
        .iter()
        .find(|l| l[1] == "valid" && !l[3].is_empty())
        .expect("a valid, dated licence");
    let r = ok(hub
        .post_when_ready(
            "/v1/verify/104/000001",
            "acceptance",
            &ask(&valid[0], &valid[2]),
        )
        .await)
    .await;
    assert_eq!(r["in_force"], true, "{r}");
    assert_eq!(
        r["matches"],
        json!({}),
        "nothing claimed, nothing disclosed"
    );
    let r = ok(hub
        .post("/v1/verify/104/000001", "acceptance")
        .json(&ask(&valid[0], &valid[3]))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(r["in_force"], false, "valid_to is exclusive");
    if let Some(revoked) = licences.iter().find(|l| l[1] == "revoked") {
        let r = ok(hub
            .post("/v1/verify/104/000001", "acceptance")
            .json(&ask(&revoked[0], &revoked[2]))
            .send()
            .await
            .unwrap())
        .await;
        assert_eq!(r["in_force"], false, "revoked");
    }
    let people = sample(&hub, "101-000001", &["citizen_id"], 1);
    let p = problem(
        hub.post("/v1/verify/101/000001", "acceptance").json(&json!({"key": people[0][0], "valid_at": "2026-01-01", "matter": "310000-JZZ-001", "case": "x"})).send().await.unwrap(),
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "valid_at");
}

/// Arrow Flight DoExchange: batches of keys in, batches of permitted, masked
/// items out, under the same policy, row filters and audit.
#[tokio::test]
async fn flight_exchange_answers_batches_of_keys() {
    let hub = Hub::start(None).await;
    let people = sample(&hub, "101-000001", &["citizen_id", "name"], 3);
    // Wait for the index through HTTP first.
    let body = json!({"keys": [people[0][0]], "items": ["name"], "matter": "310000-JZZ-001", "case": "F-0"});
    ok(hub
        .post_when_ready("/v1/lookup/101/000001", "acceptance", &body)
        .await)
    .await;

    let cmd = json!({"resource": "101/000001", "matter": "310000-JZZ-001", "case": "F-1", "items": ["name", "religion"]});
    let keys = vec![
        people[0][0].clone(),
        "12345".into(),
        "11010519491231002X".into(),
        people[1][0].to_lowercase(),
    ];
    let batches = exchange(hub.flight_client("acceptance").await, &cmd, keys)
        .await
        .unwrap();
    let batch = &batches[0];
    let schema = batch.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        ["key", "found", "error", "name"],
        "religion is not released"
    );
    let (found, name, error) = (
        cells(batch, "found"),
        cells(batch, "name"),
        cells(batch, "error"),
    );
    assert_eq!(
        (found[0].as_deref(), name[0].clone()),
        (Some("true"), Some(people[0][1].clone()))
    );
    assert_eq!(found[1].as_deref(), Some("false"));
    assert!(error[1].as_ref().unwrap().contains("18 characters"));
    assert_eq!(
        (found[2].as_deref(), name[2].clone()),
        (Some("false"), None)
    );
    assert_eq!(
        name[3].clone(),
        Some(people[1][1].clone()),
        "keys are normalised"
    );

    // No token, or nothing permitted: refused with the gRPC status that says so.
    let err = exchange(
        hub.flight_client_bearer("tb_nope").await,
        &cmd,
        vec![people[0][0].clone()],
    )
    .await
    .unwrap_err();
    assert_eq!(grpc_code(err), tonic::Code::Unauthenticated);
    let denied = json!({"resource": "101/000001", "matter": "310000-NONE", "case": "F-2", "items": ["name"]});
    let err = exchange(
        hub.flight_client("acceptance").await,
        &denied,
        vec![people[0][0].clone()],
    )
    .await
    .unwrap_err();
    assert_eq!(grpc_code(err), tonic::Code::PermissionDenied);
    let verify = hub.audit_verify();
    assert!(
        String::from_utf8(verify.stdout)
            .unwrap()
            .contains("intact: 3 records"),
        "the HTTP lookup, the Flight batch and the Flight denial are audited"
    );
}

/// `http_runtime = "per_core"`: the API on one single-threaded runtime per
/// core, each accepting on its own `SO_REUSEPORT` socket, streams on the
/// shared runtime. Lookups from many connections at once and a stream are
/// all answered and recorded, and the hub stops cleanly with a log that
/// verifies.
#[tokio::test]
async fn the_per_core_runtime_answers_many_connections_and_stops_cleanly() {
    let mut hub = Hub::start_with(None, |c| {
        c.http_runtime = tongban_core::config::HttpRuntime::PerCore;
    })
    .await;
    let keys = hub.citizen_ids(8).await;
    let lookup = |key: &str| json!({"keys": [key], "items": ["name"], "matter": "310000-JZZ-001", "case": "PER-CORE"});
    ok(hub
        .post_when_ready("/v1/lookup/101/000001", "acceptance", &lookup(&keys[0]))
        .await)
    .await;
    // Eight clients, each on its own connections, ten lookups each.
    let token = hub.token("acceptance");
    let url = format!("{}/v1/lookup/101/000001", hub.url);
    let clients = keys.iter().map(|key| {
        let (client, url, token, body) = (
            reqwest::Client::new(),
            url.clone(),
            token.clone(),
            lookup(key),
        );
        tokio::spawn(async move {
            let mut found = 0;
            for _ in 0..10 {
                let resp = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let answer: Value = expect_json(resp, 200).await;
                found += usize::from(answer["results"][0]["found"] == true);
            }
            found
        })
    });
    let found: usize = futures::future::join_all(clients)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    assert_eq!(found, 80);
    let streamed = ndjson(
        hub.client
            .post(format!(
                "{}/v1/lookup/101/000001/stream?matter=310000-JZZ-001&case=PER-CORE&items=name",
                hub.url
            ))
            .bearer_auth(&token)
            .header("content-type", "application/x-ndjson")
            .body(keys.join("\n"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(streamed.len(), keys.len());
    assert!(streamed.iter().all(|l| l["found"] == true), "{streamed:?}");
    hub.stop().await;
    let records = tongban_audit::verify(&hub.data_dir().join("audit"))
        .unwrap()
        .unwrap();
    assert!(records >= 82, "{records} records");
}
