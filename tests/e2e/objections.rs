//! Objections and corrections (异议核实与纠错, `/v1/objections`): raised by
//! a consumer, the items marked disputed on lookups and verifications at
//! once, the deadline counted in working days across the hub's holidays,
//! the provider's answer, a new version that leaves the value as it was
//! (still open), one that changes it (closed, the mark gone), the history
//! and the audit log; who may do what; the portal for its user.

use crate::common::{Hub, cells, expect_json, problem, tongban};
use arrow::array::AsArray;
use arrow::record_batch::RecordBatch;
use serde_json::{Value, json};
use std::time::Duration;

/// Publishes a new population version, `name` of citizen `id` set to
/// `name` (or left as it is); returns the version number.
async fn publish_population(hub: &Hub, id: &str, name: Option<&str>) -> i64 {
    let (_, batches) = hub.read_newest("101/000001").await;
    let changed: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let ids = b.column_by_name("citizen_id").unwrap().as_string::<i32>();
            let names = b.column_by_name("name").unwrap().as_string::<i32>();
            let altered: arrow::array::StringArray = (0..b.num_rows())
                .map(|i| {
                    Some(match name {
                        Some(n) if ids.value(i) == id => n,
                        _ => names.value(i),
                    })
                })
                .collect();
            let i = b.schema().index_of("name").unwrap();
            let mut columns = b.columns().to_vec();
            columns[i] = std::sync::Arc::new(altered);
            RecordBatch::try_new(b.schema(), columns).unwrap()
        })
        .collect();
    let next = tongban_datasets::next_version(&hub.store, "101/000001")
        .await
        .unwrap();
    let mut writer = hub
        .datasets()
        .begin("101/000001", next, changed[0].schema())
        .unwrap();
    for b in &changed {
        writer.write(b).await.unwrap();
    }
    writer
        .publish(&hub.store, "published by the test")
        .await
        .unwrap();
    next
}

async fn lookup(hub: &Hub, id: &str) -> Value {
    let body = json!({"keys": [id], "items": ["name", "gender"], "matter": "310000-JZZ-001", "case": "YY-1"});
    expect_json(
        hub.post_when_ready("/v1/lookup/101/000001", "acceptance", &body)
            .await,
        200,
    )
    .await
}

/// Waits until the hub answers from `version`, then returns the objection.
async fn objection_after(hub: &Hub, id: i64, version: i64, someone: &str) -> Value {
    for _ in 0..150 {
        let o = expect_json(
            hub.get(&format!("/v1/objections/{id}"), "data-office")
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        let served = lookup(hub, someone).await["version"].as_i64().unwrap();
        if served >= version && o["history"].as_array().unwrap().len() > 3 {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("version {version} never checked against objection {id}");
}

#[tokio::test]
async fn an_objection_marks_ages_and_closes_through_a_corrected_version() {
    let hub = Hub::start(None).await;
    let ids = hub.citizen_ids(3).await;
    let (a, b) = (&ids[0], &ids[1]);
    // Answered before: no mark.
    let before = lookup(&hub, a).await;
    assert!(before["results"][0].get("disputed").is_none(), "{before}");

    // The next three days are holidays on the hub's calendar: the five
    // working days start after them.
    let today = (chrono::Utc::now() + chrono::TimeDelta::hours(8)).date_naive();
    let holidays: Vec<String> = (1..=3)
        .map(|d| {
            (today + chrono::TimeDelta::days(d))
                .format("%Y-%m-%d")
                .to_string()
        })
        .collect();
    expect_json(
        hub.put("/v1/lists/calendar", "data-office")
            .json(&json!({"holidays": holidays, "workdays": []}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;

    let spec = json!({
        "resource": "101/000001", "key": a.to_ascii_lowercase(), "items": ["name"],
        "claimed": {"name": "王小明"}, "evidence": "申请人出示的户口簿姓名为王小明",
    });
    let o = expect_json(
        hub.post("/v1/objections", "acceptance")
            .json(&spec)
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let id = o["id"].as_i64().unwrap();
    assert_eq!(o["status"], "open");
    assert_eq!(o["key"], a.as_str(), "the key is normalised");
    assert_eq!(o["provider"], "sh-gaj");
    assert_eq!(o["raised_by"], "sh-zwfw");
    assert!(
        o.get("value_hashes").is_none(),
        "value hashes are never shown: {o}"
    );
    let calendar = tongban_policies::calendar::Calendar {
        holidays: holidays.iter().map(|d| d.parse().unwrap()).collect(),
        workdays: Default::default(),
    };
    let raised_at: chrono::DateTime<chrono::Utc> =
        o["raised_at"].as_str().unwrap().parse().unwrap();
    let due: chrono::DateTime<chrono::Utc> = o["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        due,
        calendar.deadline(raised_at, 5),
        "five working days, holidays skipped"
    );
    assert!(due > calendar.deadline(raised_at, 5) - chrono::TimeDelta::days(1));
    assert!(
        due >= raised_at + chrono::TimeDelta::days(8),
        "3 holidays and 5 working days: {due}"
    );

    // Marked at once on every answer that carries the item; others not.
    let marked = lookup(&hub, a).await;
    assert_eq!(
        marked["results"][0]["disputed"],
        json!(["name"]),
        "{marked}"
    );
    assert!(
        lookup(&hub, b).await["results"][0]
            .get("disputed")
            .is_none()
    );
    let names = cells(&hub.read_newest("101/000001").await.1[0], "name");
    let verify = json!({"key": a, "claims": {"name": names[0].clone().unwrap()}, "matter": "310000-JZZ-001", "case": "YY-2"});
    let checked = expect_json(
        hub.post("/v1/verify/101/000001", "acceptance")
            .json(&verify)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(checked["disputed"], json!(["name"]), "{checked}");
    // And on a stream's answer lines, key by key.
    let streamed = hub
        .post(
            "/v1/lookup/101/000001/stream?matter=310000-JZZ-001&case=YY-3&items=name,gender",
            "acceptance",
        )
        .header("content-type", "application/x-ndjson")
        .body(format!("{a}\n{b}\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 200);
    let lines: Vec<Value> = streamed
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["disputed"], json!(["name"]), "{lines:?}");
    assert!(lines[1].get("disputed").is_none(), "{lines:?}");
    // Not overdue yet; listed as open for both parties.
    let overdue = expect_json(
        hub.get("/v1/objections?overdue=true", "data-office")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(overdue.as_array().unwrap().is_empty());
    for who in ["acceptance", "public-security", "data-office"] {
        let open = expect_json(
            hub.get("/v1/objections?status=open", who)
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        assert_eq!(open.as_array().unwrap().len(), 1, "{who}");
    }
    let outsider = expect_json(
        hub.get("/v1/objections", "xuhui-district")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(outsider.as_array().unwrap().is_empty());
    problem(
        hub.get(&format!("/v1/objections/{id}"), "xuhui-district")
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;

    // Bad input changes nothing.
    let bad = |patch: Value| {
        let mut s = spec.clone();
        for (k, v) in patch.as_object().unwrap() {
            s[k] = v.clone();
        }
        s
    };
    for (body, status, code) in [
        (bad(json!({"items": ["shoe_size"]})), 422, "invalid_input"),
        (bad(json!({"evidence": "  "})), 422, "invalid_input"),
        (
            bad(json!({"claimed": {"gender": "男"}})),
            422,
            "invalid_input",
        ),
        (
            bad(json!({"key": "110105194912310020"})),
            422,
            "invalid_input",
        ),
        (bad(json!({"resource": "101/999999"})), 404, "not_found"),
    ] {
        problem(
            hub.post("/v1/objections", "acceptance")
                .json(&body)
                .send()
                .await
                .unwrap(),
            status,
            code,
        )
        .await;
    }
    // The provider itself has no need to object under; it answers instead.
    problem(
        hub.post("/v1/objections", "public-security")
            .json(&spec)
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        expect_json(
            hub.get("/v1/objections", "data-office")
                .send()
                .await
                .unwrap(),
            200
        )
        .await
        .as_array()
        .unwrap()
        .len(),
        1
    );

    // Only the provider answers.
    let answer = json!({"note": "户籍档案核实有误，随下次同步更正"});
    problem(
        hub.post(&format!("/v1/objections/{id}/correcting"), "acceptance")
            .json(&answer)
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    let o = expect_json(
        hub.post(
            &format!("/v1/objections/{id}/correcting"),
            "public-security",
        )
        .json(&answer)
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(o["status"], "correcting");

    // A version that leaves the name as it was: still disputed.
    let same = publish_population(&hub, a, None).await;
    let o = objection_after(&hub, id, same, a).await;
    assert_eq!(o["status"], "correcting", "{o}");
    assert_eq!(
        o["history"].as_array().unwrap().last().unwrap()["action"],
        "unchanged"
    );
    assert_eq!(
        lookup(&hub, a).await["results"][0]["disputed"],
        json!(["name"])
    );

    // The corrected version: closed, the mark gone.
    let fixed = publish_population(&hub, a, Some("王小明")).await;
    let mut o = Value::Null;
    for _ in 0..100 {
        o = objection_after(&hub, id, fixed, a).await;
        if o["status"] == "corrected" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(o["status"], "corrected", "{o}");
    assert_eq!(o["corrected_version"], fixed);
    assert!(o["closed_at"].is_string());
    let actions: Vec<&str> = o["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["raised", "accepted", "correcting", "unchanged", "corrected"]
    );
    let after = lookup(&hub, a).await;
    assert!(after["results"][0].get("disputed").is_none(), "{after}");
    assert_eq!(after["results"][0]["rows"][0]["name"], "王小明");
    problem(
        hub.post(&format!("/v1/objections/{id}/reject"), "public-security")
            .json(&json!({"note": "x"}))
            .send()
            .await
            .unwrap(),
        409,
        "conflict",
    )
    .await;

    // The audit log has each step, under the record's key hash.
    let hash = tongban_audit::key_hash(hub.mask_key().as_bytes(), a);
    let steps: Vec<String> = hub
        .audit_records()
        .into_iter()
        .filter(|r| r["mode"] == "objection" && r["keys"][0] == hash.as_str())
        .map(|r| r["rule"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        steps,
        [
            format!("objection:{id}:raised:name"),
            format!("objection:{id}:correcting:name"),
            format!("objection:{id}:corrected:name")
        ]
    );

    // The portal objects for its user's own record, and only that; a
    // rejection needs its reason and removes the mark.
    let mut mine = spec.clone();
    mine["key"] = json!(b);
    problem(
        hub.post("/v1/objections", "portal")
            .header("X-Tongban-UserId", a.as_str())
            .json(&mine)
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    let o2 = expect_json(
        hub.post("/v1/objections", "portal")
            .header("X-Tongban-UserId", b.as_str())
            .json(&mine)
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let id2 = o2["id"].as_i64().unwrap();
    assert_eq!(
        lookup(&hub, b).await["results"][0]["disputed"],
        json!(["name"])
    );
    let portal_list = expect_json(
        hub.get("/v1/objections", "portal")
            .header("X-Tongban-UserId", b.as_str())
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(portal_list.as_array().unwrap().len(), 1);
    let other_user = expect_json(
        hub.get("/v1/objections", "portal")
            .header("X-Tongban-UserId", a.as_str())
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(other_user.as_array().unwrap().is_empty());
    // One by id: the portal sees it for its user, not for another.
    let path = format!("/v1/objections/{id2}");
    let mine_by_id = hub
        .get(&path, "portal")
        .header("X-Tongban-UserId", b.as_str());
    expect_json(mine_by_id.send().await.unwrap(), 200).await;
    let theirs = hub
        .get(&path, "portal")
        .header("X-Tongban-UserId", a.as_str());
    problem(theirs.send().await.unwrap(), 404, "not_found").await;
    problem(
        hub.get(&path, "portal").send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    problem(
        hub.post(&format!("/v1/objections/{id2}/reject"), "public-security")
            .json(&json!({"note": " "}))
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    let o2 = expect_json(
        hub.post(&format!("/v1/objections/{id2}/reject"), "public-security")
            .json(&json!({"note": "与户籍档案一致"}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(o2["status"], "rejected");
    assert!(
        lookup(&hub, b).await["results"][0]
            .get("disputed")
            .is_none()
    );
    // The subject sees in their data-use record that an objection was raised.
    let uses = expect_json(
        hub.get(&format!("/v1/uses?subject={b}"), "portal")
            .header("X-Tongban-UserId", b.as_str())
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(
        uses["uses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["mode"] == "objection" && u["consumer"] == "sh-ywtb"),
        "{uses}"
    );

    // The CLI lists them, and none is overdue.
    let cli = |args: &[&str]| {
        let out = tongban()
            .arg("objection")
            .args(args)
            .arg("--data-dir")
            .arg(hub.data_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let all: Value = serde_json::from_str(&cli(&["list", "--json"])).unwrap();
    let statuses: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["corrected", "rejected"]);
    let table = cli(&["list", "--overdue"]);
    assert_eq!(table.lines().count(), 1, "only the header: {table}");
    assert!(cli(&["show", &id.to_string()]).contains("户籍档案核实有误"));
}
