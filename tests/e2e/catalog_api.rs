//! The directory API against demo data, on the embedded store and on the
//! machine's PostgreSQL: what it lists, how it is searched, who may write
//! and what is refused, the OpenAPI document, and the dataset files behind
//! the versions.

use crate::common::{Hub, SCALE, expect_json, pg_schema_url, problem, read_parquet_file};
use serde_json::{Value, json};

/// What a newcomer sees first: the four base libraries with their items and data.
async fn lists_the_four_base_libraries(hub: &Hub) {
    let page = expect_json(
        hub.get("/v1/catalog/resources", "acceptance")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(page["total"], 5);
    let codes: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "101/000001",
            "102/000001",
            "103/000001",
            "103/000002",
            "104/000001"
        ]
    );
    let mut libraries: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["base_library"].as_str().unwrap())
        .collect();
    libraries.dedup();
    assert_eq!(
        libraries,
        ["population", "legal_entity", "geospatial", "e_licence"]
    );
    for r in page["items"].as_array().unwrap() {
        assert_eq!(r["status"], "published");
        assert!(r["items"].as_array().unwrap().len() >= 8, "{}", r["code"]);
        assert!(
            r["latest_version"]["row_count"].as_i64().unwrap() > 0,
            "{}",
            r["code"]
        );
    }
    let population = &page["items"][0];
    assert_eq!(
        population["latest_version"]["row_count"],
        (1_000_000.0 * SCALE) as i64
    );
    let religion = population["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "religion")
        .unwrap();
    assert_eq!(religion["share_type"], "none");
    assert!(
        religion["legal_basis"]
            .as_str()
            .unwrap()
            .contains("个人信息保护法")
    );
}

#[tokio::test]
async fn the_directory_lists_the_four_base_libraries() {
    let hub = Hub::start(None).await;
    lists_the_four_base_libraries(&hub).await;
}

#[tokio::test]
async fn resources_are_filtered_searched_and_paged() {
    let hub = Hub::start(None).await;
    let q = |query: &str| {
        hub.get(&format!("/v1/catalog/resources?{query}"), "acceptance")
            .send()
    };
    let geo = expect_json(q("base_library=geospatial").await.unwrap(), 200).await;
    assert_eq!(geo["total"], 2);
    let found = expect_json(q("q=%E8%AF%81%E7%85%A7").await.unwrap(), 200).await; // 证照
    assert_eq!(found["total"], 1);
    assert_eq!(found["items"][0]["code"], "104/000001");
    let by_item = expect_json(q("q=credit_code").await.unwrap(), 200).await;
    assert_eq!(by_item["items"][0]["code"], "102/000001");
    let none = expect_json(q("share_type=none").await.unwrap(), 200).await;
    assert_eq!(
        none["total"], 1,
        "only the population resource has unshared items"
    );
    let page2 = expect_json(q("page_size=2&page=2").await.unwrap(), 200).await;
    assert_eq!(
        (
            page2["total"].as_i64(),
            page2["items"].as_array().unwrap().len()
        ),
        (Some(5), 2)
    );
    assert_eq!(page2["items"][0]["code"], "103/000001");
    problem(q("page_size=0").await.unwrap(), 422, "invalid_input").await;
    problem(q("page=abc").await.unwrap(), 400, "invalid_query").await;
    problem(q("category=nonsense").await.unwrap(), 400, "invalid_query").await;
    problem(q("unknown=1").await.unwrap(), 400, "invalid_query").await;
}

/// One resource, by its two-segment path or with the slash encoded.
#[tokio::test]
async fn a_resource_is_read_by_its_code_with_its_versions() {
    let hub = Hub::start(None).await;
    let r = expect_json(
        hub.get("/v1/catalog/resources/102/000001", "acceptance")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(r["name"], "法人基础信息");
    assert_eq!(r["key_items"], json!(["credit_code"]));
    let same = expect_json(
        hub.get("/v1/catalog/resources/102%2F000001", "acceptance")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(same, r);
    let versions = expect_json(
        hub.get("/v1/catalog/resources/102/000001/versions", "acceptance")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(versions[0]["version"], 1);
    problem(
        hub.get("/v1/catalog/resources/109/000009", "acceptance")
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn departments_and_the_callers_identity_are_shown() {
    let hub = Hub::start(None).await;
    let depts = expect_json(
        hub.get("/v1/catalog/departments", "acceptance")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(
        depts
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["code"] == "sh-gaj" && d["name"] == "上海市公安局")
    );
    let xh = expect_json(
        hub.get("/v1/catalog/departments/xh-zwfw", "acceptance")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        (xh["level"].as_str(), xh["parent"].as_str()),
        (Some("district"), Some("sh-zwfw"))
    );
    let me = expect_json(
        hub.get("/v1/me", "xuhui-district").send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(me, json!({"department": "xh-zwfw", "role": "department"}));
}

#[tokio::test]
async fn resource_writes_are_for_the_data_office_and_validated() {
    let hub = Hub::start(None).await;
    bad_resource_writes_are_refused_and_write_nothing(&hub).await;
}

#[tokio::test]
async fn a_resource_goes_from_draft_to_published_to_retired() {
    let hub = Hub::start(None).await;
    a_resource_is_created_updated_published_and_retired(&hub).await;
}

#[tokio::test]
async fn departments_are_added_by_the_data_office_under_a_parent() {
    let hub = Hub::start(None).await;
    departments_are_added_under_a_parent(&hub).await;
}

#[tokio::test]
async fn requests_without_a_valid_identity_are_refused() {
    let hub = Hub::start(None).await;
    let anonymous = hub
        .client
        .get(format!("{}/v1/catalog/resources", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    problem(anonymous, 401, "unauthorized").await;
    let forged = hub
        .client
        .get(format!("{}/v1/catalog/resources", hub.url))
        .bearer_auth("tb_forged")
        .send()
        .await
        .unwrap();
    problem(forged, 401, "unauthorized").await;
    let basic = hub
        .client
        .get(format!("{}/v1/catalog/departments", hub.url))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    problem(basic, 401, "unauthorized").await;
    let health = hub
        .client
        .get(format!("{}/health", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(health, 200).await["status"], "ok");
}

fn new_resource() -> Value {
    json!({
        "code": "301/000001",
        "name": "社会保障卡信息",
        "provider": "sh-rsj",
        "summary": "本市社会保障卡的制发与状态",
        "category": "department",
        "format": "database",
        "update_cycle": "daily",
        "key_items": ["card_no"],
        "items": [
            {"name": "card_no", "label": "社会保障卡号", "data_type": "Utf8", "sensitivity": "sensitive",
             "share_type": "conditional", "share_condition": "经需求清单审批"},
            {"name": "holder_id", "label": "持卡人身份证号", "data_type": "Utf8", "sensitivity": "sensitive",
             "share_type": "conditional", "share_condition": "经需求清单审批"},
            {"name": "issued_on", "label": "发卡日期", "data_type": "Date32", "sensitivity": "internal",
             "share_type": "unconditional"},
            {"name": "bank_account", "label": "金融账户", "data_type": "Utf8", "sensitivity": "highly_sensitive",
             "share_type": "none", "legal_basis": "《中华人民共和国个人信息保护法》第二十八条"}
        ]
    })
}

async fn total(hub: &Hub) -> i64 {
    expect_json(
        hub.get("/v1/catalog/resources", "data-office")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await["total"]
        .as_i64()
        .unwrap()
}

/// Only the data office writes; bad input gets a clear 4xx naming the
/// field, and nothing is written.
async fn bad_resource_writes_are_refused_and_write_nothing(hub: &Hub) {
    let body = new_resource();
    problem(
        hub.post("/v1/catalog/resources", "acceptance")
            .json(&body)
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;

    // Bad input: a clear 4xx naming the field, and nothing written.
    let before = total(hub).await;
    let mut no_basis = body.clone();
    no_basis["items"][3]
        .as_object_mut()
        .unwrap()
        .remove("legal_basis");
    let p = problem(
        hub.post("/v1/catalog/resources", "data-office")
            .json(&no_basis)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "items[3].legal_basis");
    let mut bad_type = body.clone();
    bad_type["items"][2]["data_type"] = json!("datetime");
    let p = problem(
        hub.post("/v1/catalog/resources", "data-office")
            .json(&bad_type)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "items[2].data_type");
    let mut unknown_dept = body.clone();
    unknown_dept["provider"] = json!("sh-nobody");
    let p = problem(
        hub.post("/v1/catalog/resources", "data-office")
            .json(&unknown_dept)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(
        (p["field"].as_str(), p["detail"].as_str()),
        (
            Some("provider"),
            Some("provider: unknown department 'sh-nobody'")
        )
    );
    let mut bad_share = body.clone();
    bad_share["items"][0]["share_type"] = json!("sometimes");
    let p = problem(
        hub.post("/v1/catalog/resources", "data-office")
            .json(&bad_share)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("items[0].share_type"),
        "{p}"
    );
    let mut extra = body.clone();
    extra["colour"] = json!("blue");
    problem(
        hub.post("/v1/catalog/resources", "data-office")
            .json(&extra)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    let raw = hub
        .post("/v1/catalog/resources", "data-office")
        .header("content-type", "application/json")
        .body("{\"code\": ");
    problem(raw.send().await.unwrap(), 400, "invalid_json").await;
    let text = hub
        .post("/v1/catalog/resources", "data-office")
        .body(body.to_string());
    problem(text.send().await.unwrap(), 415, "unsupported_media_type").await;
    let huge = hub
        .post("/v1/catalog/resources", "data-office")
        .header("content-type", "application/json")
        .body(vec![b' '; 3 << 20]);
    problem(huge.send().await.unwrap(), 413, "too_large").await;
    assert_eq!(total(hub).await, before, "rejected input wrote nothing");
}

/// Create, duplicate, update, publish, retire.
async fn a_resource_is_created_updated_published_and_retired(hub: &Hub) {
    let body = new_resource();
    let before = total(hub).await;
    let resp = hub
        .post("/v1/catalog/resources", "data-office")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["location"],
        "/v1/catalog/resources/301/000001"
    );
    let created = expect_json(resp, 201).await;
    assert_eq!(
        (created["status"].as_str(), created["version"].as_i64()),
        (Some("draft"), Some(1))
    );
    problem(
        hub.post("/v1/catalog/resources", "data-office")
            .json(&body)
            .send()
            .await
            .unwrap(),
        409,
        "duplicate",
    )
    .await;
    let mut changed = body.clone();
    changed["summary"] = json!("新的摘要");
    let updated = expect_json(
        hub.put("/v1/catalog/resources/301/000001", "data-office")
            .json(&changed)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        (updated["summary"].as_str(), updated["version"].as_i64()),
        (Some("新的摘要"), Some(2))
    );
    let p = problem(
        hub.put("/v1/catalog/resources/301/000002", "data-office")
            .json(&changed)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "code");
    let published = expect_json(
        hub.post("/v1/catalog/resources/301/000001/publish", "data-office")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(published["status"], "published");
    assert!(published["publish_date"].is_string());
    let mut back = changed.clone();
    back["status"] = json!("draft");
    problem(
        hub.put("/v1/catalog/resources/301/000001", "data-office")
            .json(&back)
            .send()
            .await
            .unwrap(),
        409,
        "conflict",
    )
    .await;
    let retired = expect_json(
        hub.post("/v1/catalog/resources/301/000001/retire", "data-office")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(retired["status"], "retired");
    problem(
        hub.put("/v1/catalog/resources/301/000001", "data-office")
            .json(&changed)
            .send()
            .await
            .unwrap(),
        409,
        "conflict",
    )
    .await;
    problem(
        hub.post("/v1/catalog/resources/301/000009/publish", "data-office")
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    assert_eq!(total(hub).await, before + 1);
}

/// Departments: created by the data office only, once, under a parent.
async fn departments_are_added_under_a_parent(hub: &Hub) {
    let dept = json!({"code": "jd-zwfw", "name": "嘉定区政务服务中心", "level": "district", "parent": "sh-zwfw", "division_code": "310114"});
    problem(
        hub.post("/v1/catalog/departments", "acceptance")
            .json(&dept)
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    let made = expect_json(
        hub.post("/v1/catalog/departments", "data-office")
            .json(&dept)
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert_eq!(made["code"], "jd-zwfw");
    problem(
        hub.post("/v1/catalog/departments", "data-office")
            .json(&dept)
            .send()
            .await
            .unwrap(),
        409,
        "duplicate",
    )
    .await;
    let orphan = json!({"code": "x-street", "name": "某街道", "level": "street"});
    let p = problem(
        hub.post("/v1/catalog/departments", "data-office")
            .json(&orphan)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "parent");
    problem(
        hub.get("/v1/catalog/departments/x-street", "data-office")
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let hub = Hub::start(None).await;
    problem(
        hub.client
            .get(format!("{}/openapi.json", hub.url))
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let doc = expect_json(
        hub.get("/openapi.json", "acceptance").send().await.unwrap(),
        200,
    )
    .await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/catalog/resources",
        "/v1/catalog/resources/{class}/{seq}",
        "/v1/catalog/departments",
        "/health",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["paths"]["/v1/catalog/resources"]["post"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
    // Shared responses are documented on every operation that can give them.
    let list = &doc["paths"]["/v1/catalog/resources"];
    assert!(list["get"]["responses"]["401"].is_object());
    for code in ["400", "401", "403", "413", "415", "422"] {
        assert!(
            list["post"]["responses"][code].is_object(),
            "POST resources documents {code}"
        );
    }
    // Stored resources validate against their schema: the output side of the
    // flattened input schema allows the stored fields.
    let resource = doc["components"]["schemas"]["Resource"].to_string();
    assert!(
        resource.contains("ResourceFields") && !resource.contains("/ResourceSpec\""),
        "{resource}"
    );
    assert!(doc["components"]["schemas"]["ResourceFields"]["additionalProperties"].is_null());
    assert_eq!(
        doc["components"]["schemas"]["ResourceSpec"]["additionalProperties"],
        false
    );
    // Interface calls, with the statuses that say whose fault a failure is.
    let call = &doc["paths"]["/v1/call/{class}/{seq}/{endpoint}"]["post"];
    for code in ["200", "403", "422", "429", "502", "503", "504"] {
        assert!(
            call["responses"][code].is_object(),
            "the call documents {code}"
        );
    }
    assert!(call["responses"]["200"]["headers"]["X-Tongban-Request-Hash"].is_object());
    for path in [
        "/v1/services",
        "/v1/services/health",
        "/v1/services/import-openapi",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    // Every reference resolves: no schema is named without being there.
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r.to_string());
                }
                m.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 50, "{} references", all.len());
    for r in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("a local ref: {r}"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let hub = Hub::start(None).await;
    problem(
        hub.get("/v1/nothing-here", "acceptance")
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    problem(
        hub.delete("/v1/catalog/resources", "data-office")
            .send()
            .await
            .unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
}

/// Production layout: the catalog in PostgreSQL, datasets on the object store.
#[tokio::test]
async fn directory_api_on_postgres() {
    let hub = Hub::start(Some(pg_schema_url("directory_api").await)).await;
    lists_the_four_base_libraries(&hub).await;
    bad_resource_writes_are_refused_and_write_nothing(&hub).await;
    a_resource_is_created_updated_published_and_retired(&hub).await;
    departments_are_added_under_a_parent(&hub).await;
}

/// Published versions are complete Parquet files whose keys pass their check digits.
#[tokio::test]
async fn dataset_versions_are_complete_parquet_files() {
    let hub = Hub::start(None).await;
    let page = expect_json(
        hub.get("/v1/catalog/resources", "acceptance")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    for r in page["items"].as_array().unwrap() {
        let v = &r["latest_version"];
        let file = hub
            .data_dir()
            .join("datasets")
            .join(v["location"].as_str().unwrap())
            .join("part-00000.parquet");
        let batches = read_parquet_file(&file);
        assert!(!batches.is_empty(), "{} has rows", r["code"]);
        let items: Vec<&str> = r["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        let mut rows = 0;
        let key = r["key_items"][0].as_str().unwrap().to_string();
        for batch in &batches {
            let schema = batch.schema();
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            assert_eq!(names, items, "{} columns are its items", r["code"]);
            rows += batch.num_rows() as i64;
            let keys = batch.column_by_name(&key).unwrap();
            let keys = keys
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            for k in keys.iter().map(Option::unwrap) {
                match key.as_str() {
                    "citizen_id" => tongban_policies::ids::validate_citizen_id(k)
                        .map(drop)
                        .unwrap(),
                    "credit_code" => tongban_policies::ids::validate_credit_code(k).unwrap(),
                    _ => {}
                }
            }
        }
        assert_eq!(rows, v["row_count"].as_i64().unwrap(), "{}", r["code"]);
    }
}
