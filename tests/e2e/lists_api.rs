//! The three lists, their review workflow and the explain endpoint, through
//! the real server on demo data.

use crate::common::{Hub, expect_json, expect_text, problem};
use serde_json::{Value, json};

/// `POST /v1/policy/explain` as `who`: the decision (200).
async fn explain(hub: &Hub, who: &str, body: Value) -> Value {
    expect_json(
        hub.post("/v1/policy/explain", who)
            .json(&body)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await
}

fn item<'a>(d: &'a Value, name: &str) -> &'a Value {
    d["decision"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["item"] == name)
        .unwrap()
}

#[tokio::test]
async fn explain_names_the_deciding_rule() {
    let hub = Hub::start(None).await;
    // Allowed: the acceptance office verifies a citizen for the 居住证 matter.
    let d = explain(
        &hub,
        "acceptance",
        json!({
            "resource": "101/000001", "items": ["citizen_id", "name", "religion", "gender"],
            "matter": "310000-JZZ-001", "mode": "verify"
        }),
    )
    .await;
    assert_eq!(d["consumer"], "sh-zwfw");
    assert_eq!(d["decision"]["permitted"], true);
    assert_eq!(d["decision"]["rule"], "need:1");
    assert_eq!(
        item(&d, "citizen_id")["release"],
        json!({"kind": "match_only"})
    );
    assert_eq!(item(&d, "citizen_id")["rule"], "need:1");
    // A lookup need serves verification too (it discloses more).
    assert_eq!(item(&d, "gender")["rule"], "need:2");
    assert!(item(&d, "religion")["release"].is_null());
    assert_eq!(item(&d, "religion")["rule"], "negative:1");
    assert!(
        item(&d, "religion")["reason"]
            .as_str()
            .unwrap()
            .contains("个人信息保护法")
    );

    // Lookup under another need: masks, clear items, the district's row filter and quota.
    let d = explain(&hub, "acceptance", json!({
        "resource": "101/000001", "items": ["name", "residence_address"], "matter": "310000-JZZ-001", "mode": "lookup"
    }))
    .await;
    assert_eq!(
        item(&d, "name")["release"],
        json!({"kind": "clear"}),
        "the need grants the name in clear"
    );
    assert_eq!(
        item(&d, "residence_address")["release"],
        json!({"kind": "masked", "mask": "address"})
    );
    let d = explain(&hub, "xuhui-district", json!({
        "resource": "101/000001", "items": ["citizen_id", "birth_date"], "matter": "310104-LNBT-004", "mode": "lookup"
    }))
    .await;
    assert_eq!(
        d["decision"]["row_filters"],
        json!([{"item": "residence_street", "prefix": "310104"}])
    );
    assert_eq!(d["decision"]["daily_quota"], 2000);

    // Denied: the same district, another matter; the reason points at the nearest need.
    let d = explain(&hub, "xuhui-district", json!({
        "resource": "101/000001", "items": ["citizen_id"], "matter": "310104-OTHER-999", "mode": "lookup"
    }))
    .await;
    assert_eq!(d["decision"]["permitted"], false);
    assert_eq!(d["decision"]["rule"], "no_need");
    assert!(
        item(&d, "citizen_id")["reason"]
            .as_str()
            .unwrap()
            .contains("for matter 310104-LNBT-004"),
        "{d}"
    );
    // Batch phone numbers are on the negative list even for an approved consumer.
    let d = explain(&hub, "data-office", json!({
        "consumer": "sh-zwfw", "resource": "101/000001", "items": ["phone"], "matter": "310000-JZZ-001", "mode": "batch"
    }))
    .await;
    assert_eq!(item(&d, "phone")["rule"], "negative:2");
    // Only the data office explains for someone else; bad bodies are problems.
    let body =
        json!({"consumer": "sh-zwfw", "resource": "101/000001", "matter": "m", "mode": "lookup"});
    problem(
        hub.post("/v1/policy/explain", "xuhui-district")
            .json(&body)
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    let bad = json!({"resource": "101/000001", "matter": "m", "mode": "peek"});
    problem(
        hub.post("/v1/policy/explain", "acceptance")
            .json(&bad)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    let d = explain(
        &hub,
        "acceptance",
        json!({"resource": "109/000009", "matter": "m", "mode": "lookup"}),
    )
    .await;
    assert_eq!(d["decision"]["rule"], "unknown_resource");
}

/// The district's application for its 低保 matter: citizens' phone numbers.
fn phone_application() -> Value {
    json!({
        "resource": "101/000001", "items": ["phone"], "matter": "310104-DBSQ-007", "mode": "lookup",
        "justification": "低保申请：联系申请人补正材料"
    })
}

/// Applied for, reviewed by the provider then the data office (each in its
/// role only), revoked with a reason: the decision follows each step.
#[tokio::test]
async fn a_need_through_its_review_changes_the_decision() {
    let hub = Hub::start(None).await;
    let ask = json!({"resource": "101/000001", "items": ["phone"], "matter": "310104-DBSQ-007", "mode": "lookup"});
    let d = explain(&hub, "xuhui-district", ask.clone()).await;
    assert_eq!(item(&d, "phone")["rule"], "no_need");

    let application = phone_application();
    let resp = hub
        .post("/v1/lists/needs", "xuhui-district")
        .json(&application)
        .send()
        .await
        .unwrap();
    let need = expect_json(resp, 201).await;
    let id = need["id"].as_i64().unwrap();
    assert_eq!(need["status"], "pending_provider");
    assert!(need["due_at"].is_string());
    let d = explain(&hub, "xuhui-district", ask.clone()).await;
    assert!(
        item(&d, "phone")["reason"]
            .as_str()
            .unwrap()
            .contains("still under review (pending_provider)"),
        "{d}"
    );

    // Roles: the office cannot answer for the provider; the provider cannot approve for the office.
    let approve = |who: &str| {
        hub.post(&format!("/v1/lists/needs/{id}/approve"), who)
            .send()
    };
    problem(approve("data-office").await.unwrap(), 403, "forbidden").await;
    problem(approve("acceptance").await.unwrap(), 404, "not_found").await; // not a party: not disclosed
    assert_eq!(
        expect_json(approve("public-security").await.unwrap(), 200).await["status"],
        "pending_office"
    );
    problem(approve("public-security").await.unwrap(), 403, "forbidden").await;
    assert_eq!(
        expect_json(approve("data-office").await.unwrap(), 200).await["status"],
        "approved"
    );
    problem(approve("data-office").await.unwrap(), 409, "conflict").await;

    let d = explain(&hub, "xuhui-district", ask.clone()).await;
    assert_eq!(item(&d, "phone")["rule"], format!("need:{id}"));
    assert_eq!(
        item(&d, "phone")["release"],
        json!({"kind": "masked", "mask": "phone"})
    );

    // Revoking needs a reason and stops the release at once.
    let revoke = hub.post(&format!("/v1/lists/needs/{id}/revoke"), "data-office");
    let p = problem(revoke.send().await.unwrap(), 422, "invalid_input").await;
    assert_eq!(p["field"], "reason");
    let revoke = hub
        .post(&format!("/v1/lists/needs/{id}/revoke"), "data-office")
        .json(&json!({"reason": "事项调整"}));
    let need = expect_json(revoke.send().await.unwrap(), 200).await;
    let actions: Vec<&str> = need["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["applied", "provider_approved", "approved", "revoked"]
    );
    let d = explain(&hub, "xuhui-district", ask).await;
    assert!(
        item(&d, "phone")["reason"]
            .as_str()
            .unwrap()
            .contains("was revoked"),
        "{d}"
    );
}

/// Who sees which needs: the data office all, a consumer its own, a
/// provider those of its resources; overdue reviews are listed.
#[tokio::test]
async fn each_party_sees_its_own_needs_and_overdue_reviews_are_listed() {
    let hub = Hub::start(None).await;
    let all = expect_json(
        hub.get("/v1/lists/needs", "data-office")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let mine = expect_json(
        hub.get("/v1/lists/needs", "xuhui-district")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .all(|n| n["consumer"] == "xh-zwfw")
    );
    assert!(all.as_array().unwrap().len() > mine.as_array().unwrap().len());
    let provider = expect_json(
        hub.get("/v1/lists/needs", "public-security")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(
        provider
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["resource"] == "101/000001")
    );
    let overdue = expect_json(
        hub.get("/v1/lists/needs?overdue=true", "data-office")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(overdue.as_array().unwrap().len(), 1, "{overdue}");
    assert_eq!(overdue[0]["consumer"], "pd-zwfw");
}

/// Applications that cannot be granted are refused with the field at fault.
#[tokio::test]
async fn an_application_that_cannot_be_granted_is_refused_naming_the_field() {
    let hub = Hub::start(None).await;
    let mut bad = phone_application();
    bad["items"] = json!(["religion"]);
    let p = problem(
        hub.post("/v1/lists/needs", "xuhui-district")
            .json(&bad)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "items[0]");
}

/// Only the data office edits the negative list, with a legal basis; an
/// entry decides at once, and deleting it gives the decision back.
#[tokio::test]
async fn negative_entries_are_the_data_offices_and_decide_at_once() {
    let hub = Hub::start(None).await;
    let entry = json!({"resource": "102/000001", "items": ["address"], "legal_basis": "测试依据", "modes": ["lookup"]});
    problem(
        hub.post("/v1/lists/negative", "acceptance")
            .json(&entry)
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    let mut no_basis = entry.clone();
    no_basis["legal_basis"] = json!("");
    let p = problem(
        hub.post("/v1/lists/negative", "data-office")
            .json(&no_basis)
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "legal_basis");
    let created = expect_json(
        hub.post("/v1/lists/negative", "data-office")
            .json(&entry)
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let ask = json!({"resource": "102/000001", "items": ["address"], "matter": "310000-YYZZ-002", "mode": "lookup"});
    let d = explain(&hub, "acceptance", ask.clone()).await;
    assert_eq!(item(&d, "address")["rule"], format!("negative:{id}"));
    let del = hub.delete(&format!("/v1/lists/negative/{id}"), "data-office");
    assert_eq!(del.send().await.unwrap().status(), 204);
    let d = explain(&hub, "acceptance", ask).await;
    assert_eq!(item(&d, "address")["rule"], "need:3");
}

/// Export as CSV, break a row, import: the line is named and nothing
/// changes; a good file imports; the needs make a JSON round trip.
#[tokio::test]
async fn lists_export_and_import_as_csv_and_json() {
    let hub = Hub::start(None).await;
    let csv = expect_text(
        hub.get("/v1/lists/export/negative?format=csv", "data-office")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(
        csv.starts_with("\u{feff}id,resource,items,legal_basis"),
        "{csv}"
    );
    let before = expect_json(
        hub.get("/v1/lists/negative", "acceptance")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let broken = format!("{csv}9,101/000001,shoe_size,依据,,,\n");
    let import = |body: String, ct: &str| {
        hub.post("/v1/lists/import/negative", "data-office")
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let p = problem(
        import(broken, "text/csv").await.unwrap(),
        422,
        "invalid_import",
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .starts_with("line 5: items[0]: '101/000001' has no item 'shoe_size'"),
        "{p}"
    );
    assert_eq!(
        expect_json(
            hub.get("/v1/lists/negative", "acceptance")
                .send()
                .await
                .unwrap(),
            200
        )
        .await,
        before
    );
    let counts = expect_json(import(csv.clone(), "text/csv").await.unwrap(), 200).await;
    assert_eq!(counts, json!({"created": 0, "updated": 3}));
    problem(
        import(csv, "text/plain").await.unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    // JSON round trip of the needs, through the API.
    let needs = expect_json(
        hub.get("/v1/lists/export/needs", "data-office")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let text = needs
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| needs.to_string());
    let counts = expect_json(import(text, "application/json").await.unwrap(), 422).await;
    assert_eq!(
        counts["code"], "invalid_import",
        "needs do not import as negative entries"
    );
    let resp = hub
        .post("/v1/lists/import/needs", "data-office")
        .header("content-type", "application/json")
        .body(needs.to_string());
    let counts = expect_json(resp.send().await.unwrap(), 200).await;
    assert_eq!(counts["created"], 0);
}

/// Compliance: every responsibility on time with fresh data. The calendar:
/// a day cannot be both a holiday and a workday.
#[tokio::test]
async fn compliance_and_the_calendar() {
    let hub = Hub::start(None).await;
    let rows = expect_json(
        hub.get("/v1/lists/responsibilities/compliance", "acceptance")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(rows.as_array().unwrap().len(), 5);
    assert!(
        rows.as_array().unwrap().iter().all(|r| r["late"] == false),
        "fresh demo data is on time: {rows}"
    );
    let clash = json!({"holidays": ["2026-10-01"], "workdays": ["2026-10-01"]});
    let put = hub.put("/v1/lists/calendar", "data-office").json(&clash);
    problem(put.send().await.unwrap(), 422, "invalid_input").await;
    let good = json!({"holidays": ["2026-10-01", "2026-10-02"], "workdays": ["2026-10-10"]});
    let put = hub.put("/v1/lists/calendar", "data-office").json(&good);
    assert_eq!(expect_json(put.send().await.unwrap(), 200).await, good);
}
