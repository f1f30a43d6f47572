//! The data-use record (数据使用记录, `GET /v1/uses`): the portal sees its
//! user's uses and nothing else, the data office any subject's; a company's
//! legal representative sees the company's; uses under a covert need stay
//! hidden until its date; paging and periods; every query is recorded.

use crate::common::{Hub, cells, expect_json, problem};
use serde_json::{Value, json};

async fn lookup(
    hub: &Hub,
    who: &str,
    resource: &str,
    key: &str,
    items: &[&str],
    matter: &str,
    case: &str,
) {
    let body = json!({"keys": [key], "items": items, "matter": matter, "case": case});
    expect_json(
        hub.post_when_ready(&format!("/v1/lookup/{resource}"), who, &body)
            .await,
        200,
    )
    .await;
}

/// `GET /v1/uses` as `who`, for the portal's `user` if given.
async fn uses(hub: &Hub, who: &str, user: Option<&str>, query: &str) -> reqwest::Response {
    let mut req = hub.get(&format!("/v1/uses?{query}"), who);
    if let Some(u) = user {
        req = req.header("X-Tongban-UserId", u);
    }
    req.send().await.unwrap()
}

fn cases_and_modes(page: &Value) -> Vec<(String, String)> {
    page["uses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["consumer"].as_str().unwrap().to_string(),
                u["mode"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_portal_sees_its_users_uses_and_nothing_else() {
    let hub = Hub::start(None).await;
    let ids = hub.citizen_ids(3).await;
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    for case in ["JZZ-1", "JZZ-2"] {
        lookup(
            &hub,
            "acceptance",
            "101/000001",
            a,
            &["name"],
            "310000-JZZ-001",
            case,
        )
        .await;
    }
    lookup(
        &hub,
        "acceptance",
        "101/000001",
        b,
        &["name"],
        "310000-JZZ-001",
        "JZZ-3",
    )
    .await;

    // The user's own record, newest first, named for people to read.
    let page = expect_json(
        uses(&hub, "portal", Some(a), &format!("subject={a}")).await,
        200,
    )
    .await;
    let list = page["uses"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{page}");
    let first = &list[0];
    assert_eq!(first["consumer"], "sh-zwfw");
    assert_eq!(first["consumer_name"], "上海市政务服务中心（统一受理）");
    assert_eq!(first["resource"], "101/000001");
    assert_eq!(first["matter"], "310000-JZZ-001");
    assert_eq!(first["matter_name"], "居住证申领");
    assert_eq!(first["mode"], "lookup");
    assert_eq!(first["items"], json!(["name"]));
    assert_eq!(first["outcome"], "released");
    assert!(first["record"]["seq"].as_u64().unwrap() > list[1]["record"]["seq"].as_u64().unwrap());
    assert!(first["time"].as_str().unwrap() >= list[1]["time"].as_str().unwrap());
    // The key is answered normalised: lower-case x and spaces are the same subject.
    let lower = format!(" {} ", a.to_ascii_lowercase());
    let again = expect_json(
        uses(
            &hub,
            "portal",
            Some(a),
            &format!("subject={}", urlencode(&lower)),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(again["uses"].as_array().unwrap().len(), 2);

    // Another subject: refused, and nothing of it shown.
    let refused = problem(
        uses(&hub, "portal", Some(a), &format!("subject={b}")).await,
        403,
        "forbidden",
    )
    .await;
    assert!(!refused.to_string().contains("JZZ-3"));
    // No user named; a department; no token; a subject that is no ID.
    let p = problem(
        uses(&hub, "portal", None, &format!("subject={a}")).await,
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "X-Tongban-UserId");
    problem(
        uses(&hub, "acceptance", None, &format!("subject={a}")).await,
        403,
        "forbidden",
    )
    .await;
    let anonymous = reqwest::get(format!("{}/v1/uses?subject={a}", hub.url))
        .await
        .unwrap();
    problem(anonymous, 401, "unauthorized").await;
    let p = problem(
        uses(&hub, "data-office", None, "subject=12345").await,
        422,
        "invalid_input",
    )
    .await;
    assert_eq!(p["field"], "subject");
    problem(
        uses(
            &hub,
            "data-office",
            None,
            &format!("subject={a}&from=yesterday"),
        )
        .await,
        400,
        "invalid_query",
    )
    .await;
    problem(
        uses(
            &hub,
            "data-office",
            None,
            &format!("subject={a}&page_size=0"),
        )
        .await,
        400,
        "invalid_query",
    )
    .await;

    // The data office reads any subject; its query is a use the subject sees.
    let office = expect_json(
        uses(&hub, "data-office", None, &format!("subject={b}")).await,
        200,
    )
    .await;
    assert_eq!(
        cases_and_modes(&office),
        [("sh-zwfw".into(), "lookup".into())]
    );
    let seen = expect_json(
        uses(&hub, "portal", Some(b), &format!("subject={b}")).await,
        200,
    )
    .await;
    assert_eq!(
        cases_and_modes(&seen),
        [
            ("sh-dsjzx".into(), "data_use".into()),
            ("sh-zwfw".into(), "lookup".into())
        ],
        "the office's query shows; the portal's own queries do not: {seen}"
    );
    // ... and the portal's queries are in the log, as data-use queries of the subject.
    let hash = tongban_audit::key_hash(hub.mask_key().as_bytes(), b);
    let portal_queries = hub
        .audit_records()
        .into_iter()
        .filter(|r| {
            r["mode"] == "data_use" && r["consumer"] == "sh-ywtb" && r["keys"][0] == hash.as_str()
        })
        .count();
    assert_eq!(portal_queries, 1);

    // Paging and periods.
    let one = expect_json(
        uses(&hub, "portal", Some(a), &format!("subject={a}&page_size=1")).await,
        200,
    )
    .await;
    assert_eq!(one["uses"].as_array().unwrap().len(), 1);
    let next = one["next"].as_u64().expect("a next page");
    let two = expect_json(
        uses(
            &hub,
            "portal",
            Some(a),
            &format!("subject={a}&page_size=1&before={next}"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(two["uses"].as_array().unwrap().len(), 1);
    assert_ne!(
        two["uses"][0]["record"]["seq"],
        one["uses"][0]["record"]["seq"]
    );
    assert!(two.get("next").is_none() || two["next"].is_null(), "{two}");
    let tomorrow = (chrono::Utc::now() + chrono::TimeDelta::days(2)).format("%Y-%m-%d");
    let later = expect_json(
        uses(
            &hub,
            "portal",
            Some(a),
            &format!("subject={a}&from={tomorrow}"),
        )
        .await,
        200,
    )
    .await;
    assert!(later["uses"].as_array().unwrap().is_empty());
    let today = expect_json(
        uses(
            &hub,
            "portal",
            Some(a),
            &format!("subject={a}&to={tomorrow}&from=2020-01-01"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(today["uses"].as_array().unwrap().len(), 2);

    // A covert need: its uses stay hidden until its date, then show.
    let until = chrono::Utc::now() + chrono::TimeDelta::seconds(6);
    let application = json!({
        "resource": "101/000001", "items": ["name"], "matter": "310104-ZCDC-009", "mode": "lookup",
        "justification": "涉案人员核查（依法不予告知）", "matter_name": "案件核查",
        "covert_until": until.to_rfc3339(),
    });
    let need = expect_json(
        hub.post("/v1/lists/needs", "xuhui-district")
            .json(&application)
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert_eq!(
        need["covert_until"].as_str().map(|t| t.len() > 10),
        Some(true),
        "{need}"
    );
    let id = need["id"].as_i64().unwrap();
    let reviewers: &[&str] = match need["status"].as_str().unwrap() {
        "pending_provider" => &["public-security", "data-office"],
        _ => &["data-office"],
    };
    for who in reviewers {
        expect_json(
            hub.post(&format!("/v1/lists/needs/{id}/approve"), who)
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
    }
    lookup(
        &hub,
        "xuhui-district",
        "101/000001",
        c,
        &["name"],
        "310104-ZCDC-009",
        "ZC-1",
    )
    .await;
    let hidden = expect_json(
        uses(&hub, "portal", Some(c), &format!("subject={c}")).await,
        200,
    )
    .await;
    assert!(
        hidden["uses"].as_array().unwrap().is_empty(),
        "withheld: {hidden}"
    );
    let office = expect_json(
        uses(&hub, "data-office", None, &format!("subject={c}")).await,
        200,
    )
    .await;
    assert!(
        !cases_and_modes(&office).contains(&("xh-zwfw".into(), "lookup".into())),
        "withheld from everyone: {office}"
    );
    let wait = (until - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + std::time::Duration::from_millis(200)).await;
    let shown = expect_json(
        uses(&hub, "portal", Some(c), &format!("subject={c}")).await,
        200,
    )
    .await;
    let modes = cases_and_modes(&shown);
    assert!(
        modes.contains(&("xh-zwfw".into(), "lookup".into())),
        "shown after its date: {shown}"
    );
    let covert_use = shown["uses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["consumer"] == "xh-zwfw")
        .unwrap();
    assert_eq!(covert_use["matter_name"], "案件核查");
    assert_eq!(covert_use["consumer_name"], "徐汇区行政服务中心");
}

#[tokio::test]
async fn a_legal_representative_sees_the_companys_uses() {
    let hub = Hub::start(None).await;
    let (_, batches) = hub.read_newest("102/000001").await;
    let codes = cells(&batches[0], "credit_code");
    let reps = cells(&batches[0], "legal_rep_id");
    let (code, rep) = (codes[0].clone().unwrap(), reps[0].clone().unwrap());
    let other = hub.citizen_ids(1).await.remove(0);
    assert_ne!(other, rep);
    lookup(
        &hub,
        "acceptance",
        "102/000001",
        &code,
        &["name", "status"],
        "310000-YYZZ-002",
        "YYZZ-1",
    )
    .await;

    let page = expect_json(
        uses(&hub, "portal", Some(&rep), &format!("subject={code}")).await,
        200,
    )
    .await;
    assert_eq!(
        cases_and_modes(&page),
        [("sh-zwfw".into(), "lookup".into())],
        "{page}"
    );
    assert_eq!(page["uses"][0]["matter_name"], "营业执照变更登记");
    assert_eq!(page["uses"][0]["resource"], "102/000001");
    problem(
        uses(&hub, "portal", Some(&other), &format!("subject={code}")).await,
        403,
        "forbidden",
    )
    .await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
