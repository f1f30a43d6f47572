//! The console's pages over HTTP, without a browser: signed in with demo
//! tokens, every page that lists departments, resources or data items shows
//! their names (浦东新区企业服务中心, 人口基础信息, 公民身份号码) with the codes
//! beside them, in Chinese and in English.

use crate::common::Hub;
use serde_json::json;

/// A signed-in console session.
struct Console {
    client: reqwest::Client,
    url: String,
    cookie: String,
}

impl Console {
    async fn sign_in(hub: &Hub, who: &str) -> Console {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = client
            .post(format!("{}/console/login", hub.url))
            .form(&[
                ("token", hub.token(who).as_str()),
                ("next", "/console/needs"),
            ])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection(), "sign-in: {}", r.status());
        let set = r.headers()["set-cookie"].to_str().unwrap();
        Console {
            client,
            url: hub.url.clone(),
            cookie: set.split(';').next().unwrap().to_string(),
        }
    }

    /// A page's HTML, in Chinese or (`en`) English.
    async fn page(&self, path: &str, en: bool) -> String {
        let lang = if en { "en" } else { "zh" };
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .header("cookie", format!("{}; tongban_lang={lang}", self.cookie))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.text().await.unwrap()
    }
}

/// The text of some HTML: tags dropped, runs of white space made one space.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text of each row marked `data-testid="{testid}"`.
fn rows(html: &str, testid: &str) -> Vec<String> {
    html.split(&format!(r#"data-testid="{testid}""#))
        .skip(1)
        .map(|r| text(&format!("<tr {}", &r[..r.find("</tr>").unwrap_or(r.len())])))
        .collect()
}

/// The one row containing `marker`.
fn row(html: &str, testid: &str, marker: &str) -> String {
    let all = rows(html, testid);
    let found: Vec<&String> = all.iter().filter(|r| r.contains(marker)).collect();
    assert_eq!(
        found.len(),
        1,
        "one {testid} with {marker} in:\n{}",
        all.join("\n")
    );
    found[0].clone()
}

fn has(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "{n:?} missing from:\n{haystack}");
    }
}

/// The needs list and the review queue, in both languages, and one need;
/// a department sees its own needs, by name too.
#[tokio::test]
async fn the_needs_pages_show_names_with_their_codes() {
    let hub = Hub::start(None).await;
    let office = Console::sign_in(&hub, "data-office").await;

    // The needs list, in both languages: 浦东新区's need whose provider
    // reply is late, and its rejected batch need.
    for en in [false, true] {
        let html = office.page("/console/needs", en).await;
        let late = [
            "浦东新区企业服务中心 pd-zwfw",
            "人口基础信息 101/000001",
            "公民身份号码 citizen_id, 婚姻状况 marital_status",
        ];
        has(&row(&html, "need-row", "310115-JYBZ-006"), &late);
        has(&row(&html, "queue-row", "310115-JYBZ-006"), &late);
        let r = row(&html, "need-row", "310115-QYBT-005");
        has(
            &r,
            &[
                "浦东新区企业服务中心 pd-zwfw",
                "法人基础信息 102/000001",
                "统一社会信用代码 credit_code, 名称 name, 联系电话 phone",
            ],
        );
        // The codes on hover too.
        has(&html, &[r#"title="pd-zwfw""#, r#"title="102/000001""#]);
        let r = row(&html, "need-row", "310000-YYZZ-002");
        has(
            &r,
            &[
                "上海市政务服务中心（统一受理） sh-zwfw",
                "法人基础信息 102/000001",
            ],
        );
        // The review queue too.
        let q = row(&html, "queue-row", "310104-LNBT-004");
        has(
            &q,
            &[
                "徐汇区行政服务中心 xh-zwfw",
                "公民身份号码 citizen_id, 姓名 name, 出生日期 birth_date",
            ],
        );
        has(&html, &[if en { ">Consumer<" } else { ">使用方<" }]);
    }

    // One need, with its provider and history.
    let html = office.page("/console/needs", false).await;
    let at = html.find("310115-QYBT-005").unwrap();
    let start = html[..at].rfind(r#"href="/console/needs/"#).unwrap() + r#"href=""#.len();
    let link = &html[start..start + html[start..].find('"').unwrap()];
    let need = text(&office.page(link, false).await);
    has(
        &need,
        &[
            "浦东新区企业服务中心 pd-zwfw",
            "上海市市场监督管理局 sh-scjgj",
            "法人基础信息 102/000001",
            "联系电话 phone",
        ],
    );

    // A department sees its own needs, by name too.
    let xuhui = Console::sign_in(&hub, "xuhui-district").await;
    let html = xuhui.page("/console/needs", false).await;
    let consumers = rows(&html, "need-row");
    assert!(consumers.len() >= 3, "{consumers:?}");
    for r in &consumers {
        has(
            r,
            &["徐汇区行政服务中心 xh-zwfw", "人口基础信息 101/000001"],
        );
    }
}

/// The negative and responsibility lists, compliance, the subscriptions
/// (with the items released now, masked ones marked `*`) and the directory.
#[tokio::test]
async fn the_list_subscription_and_directory_pages_show_names_with_their_codes() {
    let hub = Hub::start(None).await;
    let office = Console::sign_in(&hub, "data-office").await;
    // The negative and responsibility lists, and compliance.
    let html = office.page("/console/lists/negative", false).await;
    let r = row(&html, "negative-row", "religion");
    has(
        &r,
        &[
            "人口基础信息 101/000001",
            "宗教信仰 religion, 健康状况 health_status",
        ],
    );
    let html = text(&office.page("/console/lists/responsibilities", true).await);
    has(
        &html,
        &[
            "上海市公安局 sh-gaj",
            "人口基础信息 101/000001",
            "公民身份号码 citizen_id",
        ],
    );
    let html = office.page("/console/compliance", false).await;
    let r = row(&html, "compliance-row", "101/000001");
    has(&r, &["上海市公安局 sh-gaj", "人口基础信息 101/000001"]);

    // Subscriptions: who, what, and the items released now (masked: `*`).
    let html = office.page("/console/subscriptions", false).await;
    let r = row(&html, "subscription-row", "residents");
    has(
        &r,
        &[
            "徐汇区行政服务中心 xh-zwfw",
            "人口基础信息 101/000001",
            "公民身份号码 citizen_id*",
            "姓名 name",
        ],
    );

    // The directory: providers and key items.
    let html = office.page("/console/directory", false).await;
    let r = row(&html, "dir-row", "101/000001");
    has(&r, &["上海市公安局 sh-gaj"]);
    let html = text(&office.page("/console/directory/101/000001", false).await);
    has(
        &html,
        &[
            "公民身份号码 citizen_id",
            "居住地街道代码 residence_street",
            "上海市公安局 sh-gaj",
        ],
    );
}

/// A lookup, traced and counted: the audit trace and the statistics name
/// its consumer, resource and items.
#[tokio::test]
async fn the_audit_trace_and_statistics_show_names_with_their_codes() {
    let hub = Hub::start(None).await;
    let office = Console::sign_in(&hub, "data-office").await;
    // A lookup, traced and counted.
    let id = hub.citizen_ids(1).await.remove(0);
    let r = hub
        .post_when_ready(
            "/v1/lookup/101/000001",
            "acceptance",
            &json!({"keys": [&id], "items": ["name", "gender"],
                    "matter": "310000-JZZ-001", "case": "NAMES-1"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let mut traced = Vec::new();
    for _ in 0..100 {
        traced = rows(
            &office
                .page(&format!("/console/audit?key={id}"), false)
                .await,
            "audit-row",
        );
        if !traced.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = traced
        .iter()
        .find(|r| r.contains("NAMES-1"))
        .unwrap_or_else(|| panic!("the lookup is traced: {traced:?}"));
    has(
        r,
        &[
            "上海市政务服务中心（统一受理） sh-zwfw",
            "人口基础信息 101/000001",
            "姓名 name, 性别 gender",
        ],
    );
    // The data-use record of the same citizen, as the portal shows it.
    let used = rows(
        &office
            .page(&format!("/console/uses?subject={id}"), false)
            .await,
        "uses-row",
    );
    assert_eq!(used.len(), 1, "{used:?}");
    has(
        &used[0],
        &[
            "上海市政务服务中心（统一受理）",
            "居住证申领 310000-JZZ-001",
            "人口基础信息",
            "查询",
            "name, gender",
            "released",
        ],
    );
    // A department's session cannot open it; a key that is no ID is explained.
    let other = Console::sign_in(&hub, "acceptance").await;
    let refused = other
        .client
        .get(format!("{}/console/uses?subject={id}", other.url))
        .header("cookie", other.cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let bad = office.page("/console/uses?subject=12345", true).await;
    assert!(
        bad.contains("uses-problem") && bad.contains("citizen ID"),
        "{bad}"
    );
    let stats = office.page("/console/stats", false).await;
    has(
        &stats,
        &[
            "<title>上海市政务服务中心（统一受理） (sh-zwfw)</title>",
            "<title>人口基础信息 (101/000001)</title>",
        ],
    );
}

/// The text of the one service card (a `<section>`) containing `marker`.
fn section(html: &str, marker: &str) -> String {
    let cards: Vec<String> = html
        .split(r#"data-testid="service""#)
        .skip(1)
        .map(|c| {
            text(&format!(
                "<section {}",
                &c[..c.find("</section>").unwrap_or(c.len())]
            ))
        })
        .filter(|c| c.contains(marker))
        .collect();
    assert_eq!(cards.len(), 1, "one service card with {marker}");
    cards[0].clone()
}

/// The services page: a registered service with its endpoint and its health
/// on this hub (a failed call counted, the breaker closed), and the data
/// office switching it off with a notice that callers then get.
#[tokio::test]
async fn the_services_page_shows_health_and_switches_a_service_off() {
    let hub = Hub::start(None).await;
    // A provider address nothing listens on: calls fail as unreachable.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let registration = json!({
        "resource": {
            "code": "302/000801", "name": "婚姻登记状态核验接口", "provider": "sh-mzj",
            "category": "department", "format": "self_describing", "update_cycle": "realtime",
            "status": "published",
            "items": [
                {"name": "citizen_id", "label": "公民身份号码", "data_type": "Utf8",
                 "sensitivity": "sensitive", "share_type": "unconditional"},
                {"name": "married", "label": "是否已婚", "data_type": "Boolean",
                 "sensitivity": "internal", "share_type": "unconditional"}
            ]
        },
        "service": {
            "base_url": base_url,
            "endpoints": [{
                "name": "marriage-status", "method": "GET", "path": "/marriages/{citizen_id}",
                "params": [{"item": "citizen_id", "in": "path", "key": "citizen_id"}],
                "response": [{"item": "married", "pointer": "/married", "required": true}],
                "timeout_ms": 500
            }],
            "retry": {"max_attempts": 1}
        }
    });
    let r = hub
        .post("/v1/services", "data-office")
        .json(&registration)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let id = hub.citizen_ids(1).await.remove(0);
    let call = json!({"matter": "310000-HYDJ-001", "case": "HY-1", "params": {"citizen_id": id}});
    let r = hub
        .post("/v1/call/302/000801/marriage-status", "acceptance")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        502,
        "unreachable provider: {}",
        r.text().await.unwrap()
    );

    let office = Console::sign_in(&hub, "data-office").await;
    let html = office.page("/console/services", false).await;
    let card = section(&html, "302/000801");
    has(
        &card,
        &[
            "婚姻登记状态核验接口",
            "marriage-status",
            "/marriages/{citizen_id}",
            "上海市民政局",
        ],
    );
    let health = row(&html, "service-health", "closed");
    // Calls, succeeded, failed: one call, one failure.
    assert!(
        html.contains("<td>1</td><td>0</td><td>1</td>"),
        "health row: {health}"
    );
    assert!(
        health.contains("unreachable"),
        "the failure's reason: {health}"
    );

    // Switch it off with a notice, through the console's form.
    let csrf = html
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let r = office
        .client
        .post(format!("{}/console/services/302/000801/switch", office.url))
        .header("cookie", &office.cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("enabled", "false"),
            ("notice", "系统升级，预计 18:00 恢复"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "switch: {}", r.status());
    let html = office.page("/console/services", true).await;
    has(
        &section(&html, "302/000801"),
        &["Disabled", "系统升级，预计 18:00 恢复"],
    );
    let r = hub
        .post("/v1/call/302/000801/marriage-status", "acceptance")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let problem: serde_json::Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "provider_unavailable");
    assert_eq!(problem["notice"], "系统升级，预计 18:00 恢复");
}

/// The objections pages: the office's list with the open objection and its
/// deadline; the provider answering it through the detail page's form (a
/// rejection needs its reason); the consumer sees it closed, with history.
#[tokio::test]
async fn the_objections_pages_list_and_answer_an_objection() {
    let hub = Hub::start(None).await;
    let id = hub.citizen_ids(1).await.remove(0);
    // The index must be loaded for the record to be found.
    hub.post_when_ready(
        "/v1/lookup/101/000001",
        "acceptance",
        &json!({"keys": [&id], "items": ["name"], "matter": "310000-JZZ-001", "case": "OBJ-1"}),
    )
    .await;
    let r = hub
        .post("/v1/objections", "acceptance")
        .json(
            &json!({"resource": "101/000001", "key": &id, "items": ["name"],
                      "evidence": "户口簿姓名不同"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let objection: serde_json::Value = r.json().await.unwrap();
    let n = objection["id"].as_i64().unwrap();

    let office = Console::sign_in(&hub, "data-office").await;
    let listed = rows(
        &office.page("/console/objections", false).await,
        "objection-row",
    );
    assert_eq!(listed.len(), 1, "{listed:?}");
    has(
        &listed[0],
        &[
            "待核实",
            "人口基础信息 101/000001",
            "姓名 name",
            &id,
            "上海市公安局 sh-gaj",
        ],
    );
    let overdue = rows(
        &office.page("/console/objections?overdue=1", false).await,
        "objection-row",
    );
    assert!(overdue.is_empty(), "due in five working days");
    // The office reads it but does not answer for the provider.
    assert!(
        !office
            .page(&format!("/console/objections/{n}"), false)
            .await
            .contains("data-testid=\"reject\"")
    );

    let provider = Console::sign_in(&hub, "public-security").await;
    let html = provider
        .page(&format!("/console/objections/{n}"), false)
        .await;
    assert!(
        html.contains("data-testid=\"reject\"") && html.contains("户口簿姓名不同"),
        "{html}"
    );
    let csrf = html
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let post = |note: &'static str| {
        provider
            .client
            .post(format!("{}/console/objections/{n}/reject", provider.url))
            .header("cookie", &provider.cookie)
            .form(&[("csrf", csrf.clone()), ("note", note.to_string())])
            .send()
    };
    let refused = post("").await.unwrap();
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("form-error"));
    let r = post("与户籍档案一致").await.unwrap();
    assert!(r.status().is_redirection(), "reject: {}", r.status());

    let consumer = Console::sign_in(&hub, "acceptance").await;
    let detail = text(
        &consumer
            .page(&format!("/console/objections/{n}"), true)
            .await,
    );
    has(
        &detail,
        &["rejected", "与户籍档案一致", "raised", "accepted"],
    );
    let r = hub
        .post_when_ready(
            "/v1/lookup/101/000001",
            "acceptance",
            &json!({"keys": [&id], "items": ["name"], "matter": "310000-JZZ-001", "case": "OBJ-2"}),
        )
        .await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["results"][0].get("disputed").is_none(),
        "the mark is gone: {body}"
    );
}
