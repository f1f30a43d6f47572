use tongban_catalog::*;
use tongban_policies::{Sensitivity, ShareType};

/// A store and what keeps it alive (the temp dir for SQLite).
pub struct Fixture {
    pub store: SqlStore,
    /// The URL it was opened with, for a second store over the same catalog.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    /// Another store over the same catalog, as a second replica opens it.
    pub async fn reopen(&self) -> SqlStore {
        SqlStore::open(&self.url).await.unwrap()
    }
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_dir(dir.path()).await.unwrap();
    Fixture {
        store,
        url: SqlStore::dir_url(dir.path()),
        _dir: Some(dir),
    }
}

fn pg_url() -> String {
    std::env::var("TONGBAN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A fresh schema named after the test, so reruns replace rather than pile up.
async fn postgres(test: &str) -> Fixture {
    let schema = format!("tongban_it_{test}");
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&pg_url()).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {} must be reachable for this suite: {e}",
            pg_url()
        )
    });
    sqlx::raw_sql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ))
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
    let url = format!("{}?options=-c%20search_path%3D{schema}", pg_url());
    let store = SqlStore::open(&url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL store at {url} must be reachable for this suite: {e}")
    });
    Fixture {
        store,
        url,
        _dir: None,
    }
}

/// Runs each listed test body against both backends.
macro_rules! both {
    ($($name:ident),+ $(,)?) => {
        mod sqlite_backend {
            $(#[tokio::test] async fn $name() { super::$name(super::sqlite().await).await })+
        }
        mod postgres_backend {
            $(#[tokio::test] async fn $name() { super::$name(super::postgres(stringify!($name)).await).await })+
        }
    };
}

use crate::changes::{change_counters, change_feed};
use crate::lists::{
    bad_applications_change_nothing, calendar_and_policy_input,
    lists_round_trip_and_bad_rows_change_nothing, need_workflow, negative_and_responsibility_lists,
};
use crate::objections::objection_lifecycle_across_a_holiday;
use crate::subscriptions::subscriptions_and_outbox;
use crate::sync::{job_locks, sync_jobs_and_runs};

both!(
    need_workflow,
    bad_applications_change_nothing,
    negative_and_responsibility_lists,
    lists_round_trip_and_bad_rows_change_nothing,
    calendar_and_policy_input,
    departments_and_hierarchy,
    resource_create_get_list,
    invalid_resources_change_nothing,
    updates_and_lifecycle,
    search_filters_and_paging,
    import_is_all_or_nothing,
    dataset_versions,
    tokens,
    sync_jobs_and_runs,
    subscriptions_and_outbox,
    change_counters,
    change_feed,
    job_locks,
    objection_lifecycle_across_a_holiday,
);

fn dept(code: &str, level: Level, parent: Option<&str>) -> Department {
    Department {
        code: code.into(),
        name: format!("{code} 部门"),
        level,
        parent: parent.map(Into::into),
        division_code: None,
        credit_code: None,
    }
}

pub fn item(name: &str, share: ShareType) -> DataItem {
    DataItem {
        name: name.into(),
        label: format!("{name} 标签"),
        data_type: "Utf8".into(),
        description: String::new(),
        sensitivity: Sensitivity::Internal,
        share_type: share,
        share_condition: (share == ShareType::Conditional).then(|| "经审批".into()),
        legal_basis: (share == ShareType::None).then(|| "《个人信息保护法》第二十八条".into()),
        mask: None,
    }
}

pub fn population(code: &str) -> ResourceSpec {
    ResourceSpec {
        code: code.into(),
        name: "人口基础信息".into(),
        provider: "sh-gaj".into(),
        summary: "全市户籍和常住人口基础信息".into(),
        category: Category::Base,
        base_library: Some(BaseLibrary::Population),
        format: Format::Database,
        update_cycle: UpdateCycle::Daily,
        publish_date: None,
        key_items: vec!["citizen_id".into()],
        division_item: None,
        items: vec![
            item("citizen_id", ShareType::Conditional),
            item("name", ShareType::Conditional),
            item("gender", ShareType::Unconditional),
            item("religion", ShareType::None),
        ],
        status: None,
    }
}

pub async fn seed(store: &SqlStore) {
    store
        .create_department(&dept("sh-gaj", Level::City, None))
        .await
        .unwrap();
    store
        .create_department(&dept("sh-scjgj", Level::City, None))
        .await
        .unwrap();
}

fn invalid_field(e: Error) -> String {
    match e {
        Error::Invalid { field, .. } => field,
        other => panic!("expected an invalid-input error, got {other:?}"),
    }
}

async fn departments_and_hierarchy(f: Fixture) {
    let s = &f.store;
    seed(s).await;
    s.create_department(&dept("xh-zwfw", Level::District, Some("sh-gaj")))
        .await
        .unwrap();
    s.create_department(&dept("xh-tpl", Level::Street, Some("xh-zwfw")))
        .await
        .unwrap();
    // Wrong order of levels, unknown parent, missing parent, duplicate.
    let e = s
        .create_department(&dept("bad-1", Level::District, Some("xh-tpl")))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "parent: the parent must be at a higher level"
    );
    let e = s
        .create_department(&dept("bad-2", Level::District, Some("nope")))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "parent: unknown department 'nope'");
    let e = s
        .create_department(&dept("bad-3", Level::Street, None))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(e), "parent");
    let e = s
        .create_department(&dept("sh-gaj", Level::City, None))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Duplicate { .. }), "{e:?}");
    let mut bad_cc = dept("bad-4", Level::City, None);
    bad_cc.credit_code = Some("91350100M000100Y42".into());
    assert_eq!(
        invalid_field(s.create_department(&bad_cc).await.unwrap_err()),
        "credit_code"
    );
    let codes: Vec<_> = s
        .list_departments()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.code)
        .collect();
    assert_eq!(codes, ["sh-gaj", "sh-scjgj", "xh-tpl", "xh-zwfw"]);
    assert_eq!(
        s.get_department("xh-tpl").await.unwrap().parent.as_deref(),
        Some("xh-zwfw")
    );
    assert!(matches!(
        s.get_department("nope").await,
        Err(Error::NotFound { .. })
    ));
}

async fn resource_create_get_list(f: Fixture) {
    let s = &f.store;
    seed(s).await;
    let created = s.create_resource(&population("101/000001")).await.unwrap();
    assert_eq!(created.status(), Status::Draft);
    assert_eq!(created.version, 1);
    let got = s.get_resource("101/000001").await.unwrap();
    assert_eq!(got, created);
    assert_eq!(got.spec.items.len(), 4);
    let names: Vec<_> = got.spec.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["citizen_id", "name", "gender", "religion"],
        "items keep their order"
    );
    assert_eq!(
        got.spec.items[3].legal_basis.as_deref(),
        Some("《个人信息保护法》第二十八条")
    );
    let page = s.list_resources(&ResourceQuery::default()).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].spec.items.len(), 4, "listings carry items");
    assert!(matches!(
        s.get_resource("101/999999").await,
        Err(Error::NotFound { .. })
    ));
    let e = s
        .create_resource(&population("101/000001"))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "resource '101/000001' already exists");
}

async fn invalid_resources_change_nothing(f: Fixture) {
    let s = &f.store;
    seed(s).await;
    type Breaker = Box<dyn Fn(&mut ResourceSpec)>;
    let cases: Vec<(&str, Breaker)> = vec![
        ("provider", Box::new(|r| r.provider = "no-such-dept".into())),
        ("code", Box::new(|r| r.code = "101-000001".into())),
        ("code", Box::new(|r| r.code = "201/000001".into())),
        ("code", Box::new(|r| r.code = "102/000001".into())),
        (
            "items[3].legal_basis",
            Box::new(|r| r.items[3].legal_basis = None),
        ),
        (
            "items[3].legal_basis",
            Box::new(|r| r.items[3].legal_basis = Some("  ".into())),
        ),
        (
            "items[0].share_condition",
            Box::new(|r| r.items[0].share_condition = None),
        ),
        (
            "items[2].data_type",
            Box::new(|r| r.items[2].data_type = "varchar".into()),
        ),
        (
            "items[1].name",
            Box::new(|r| r.items[1].name = "citizen_id".into()),
        ),
        (
            "items[1].name",
            Box::new(|r| r.items[1].name = "Name".into()),
        ),
        (
            "key_items[0]",
            Box::new(|r| r.key_items = vec!["nope".into()]),
        ),
        ("key_items", Box::new(|r| r.key_items.clear())),
        (
            "division_item",
            Box::new(|r| r.division_item = Some("nope".into())),
        ),
        ("base_library", Box::new(|r| r.base_library = None)),
        ("items", Box::new(|r| r.items.clear())),
        ("name", Box::new(|r| r.name = " ".into())),
    ];
    for (field, break_it) in cases {
        let mut r = population("101/000001");
        break_it(&mut r);
        let e = s.create_resource(&r).await.unwrap_err();
        assert_eq!(invalid_field(e), field);
    }
    assert_eq!(
        s.list_resources(&ResourceQuery::default())
            .await
            .unwrap()
            .total,
        0
    );
    // A failed update leaves the stored resource as it was.
    s.create_resource(&population("101/000001")).await.unwrap();
    let before = s.get_resource("101/000001").await.unwrap();
    let mut r = population("101/000001");
    r.items[3].legal_basis = None;
    r.name = "改名".into();
    assert!(s.update_resource("101/000001", &r).await.is_err());
    assert_eq!(s.get_resource("101/000001").await.unwrap(), before);
}

async fn updates_and_lifecycle(f: Fixture) {
    let s = &f.store;
    seed(s).await;
    s.create_resource(&population("101/000001")).await.unwrap();
    let mut r = population("101/000001");
    r.items.push(item("phone", ShareType::Conditional));
    r.summary = "更新后的摘要".into();
    let updated = s.update_resource("101/000001", &r).await.unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.spec.items.len(), 5);
    assert_eq!(updated.spec.summary, "更新后的摘要");
    let e = s
        .update_resource("101/000002", &population("101/000002"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let e = s
        .update_resource("101/000001", &population("101/000002"))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(e), "code");

    let published = s
        .set_resource_status("101/000001", Status::Published)
        .await
        .unwrap();
    assert_eq!(published.status(), Status::Published);
    assert!(
        published.spec.publish_date.is_some(),
        "publishing dates the resource"
    );
    let e = s
        .set_resource_status("101/000001", Status::Draft)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict(_)), "{e:?}");
    let retired = s
        .set_resource_status("101/000001", Status::Retired)
        .await
        .unwrap();
    assert_eq!(retired.status(), Status::Retired);
    let e = s.update_resource("101/000001", &r).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "resource '101/000001' is retired and read-only"
    );
    assert_eq!(s.get_resource("101/000001").await.unwrap(), retired);
}

async fn search_filters_and_paging(f: Fixture) {
    let s = &f.store;
    seed(s).await;
    for i in 1..=25 {
        let mut r = population(&format!("101/{i:06}"));
        r.name = format!("人口资源{i}");
        s.create_resource(&r).await.unwrap();
    }
    let mut lic = population("104/000001");
    lic.name = "电子证照 Licence".into();
    lic.base_library = Some(BaseLibrary::ELicence);
    lic.provider = "sh-scjgj".into();
    lic.items.retain(|i| i.share_type != ShareType::None);
    s.create_resource(&lic).await.unwrap();

    let q = |f: fn(&mut ResourceQuery)| {
        let mut q = ResourceQuery::default();
        f(&mut q);
        q
    };
    let page = s
        .list_resources(&q(|q| q.page_size = Some(10)))
        .await
        .unwrap();
    assert_eq!((page.total, page.items.len()), (26, 10));
    let page3 = s
        .list_resources(&q(|q| {
            q.page_size = Some(10);
            q.page = Some(3)
        }))
        .await
        .unwrap();
    assert_eq!(page3.items.len(), 6);
    assert_eq!(page3.items.last().unwrap().spec.code, "104/000001");
    // Text search: Chinese, case-insensitive ASCII, item labels, literal wildcards.
    assert_eq!(
        s.list_resources(&q(|q| q.q = Some("证照".into())))
            .await
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        s.list_resources(&q(|q| q.q = Some("LICENCE".into())))
            .await
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        s.list_resources(&q(|q| q.q = Some("资源1".into())))
            .await
            .unwrap()
            .total,
        11
    );
    assert_eq!(
        s.list_resources(&q(|q| q.q = Some("%".into())))
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        s.list_resources(&q(|q| q.q = Some("religion 标签".into())))
            .await
            .unwrap()
            .total,
        25
    );
    assert_eq!(
        s.list_resources(&q(|q| q.provider = Some("sh-scjgj".into())))
            .await
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        s.list_resources(&q(|q| q.base_library = Some(BaseLibrary::Population)))
            .await
            .unwrap()
            .total,
        25
    );
    assert_eq!(
        s.list_resources(&q(|q| q.share_type = Some(ShareType::None)))
            .await
            .unwrap()
            .total,
        25
    );
    assert_eq!(
        s.list_resources(&q(|q| q.status = Some(Status::Published)))
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        invalid_field(
            s.list_resources(&q(|q| q.page = Some(0)))
                .await
                .unwrap_err()
        ),
        "page"
    );
    assert_eq!(
        invalid_field(
            s.list_resources(&q(|q| q.page_size = Some(201)))
                .await
                .unwrap_err()
        ),
        "page_size"
    );
}

async fn import_is_all_or_nothing(f: Fixture) {
    let s = &f.store;
    // Children listed before parents still import.
    let json = r#"{
      "departments": [
        {"code": "xh-zwfw", "name": "徐汇区行政服务中心", "level": "district", "parent": "sh-gaj"},
        {"code": "sh-gaj", "name": "上海市公安局", "level": "city"}
      ],
      "resources": []
    }"#;
    let parsed = exchange::from_json(json).unwrap();
    let report = s
        .import(&parsed.departments, &parsed.resources)
        .await
        .unwrap();
    assert_eq!(report.departments_created, 2);

    let good = population("101/000001");
    let mut bad = population("101/000002");
    bad.provider = "nobody".into();
    let csv = exchange::to_csv(&[good.clone(), bad]);
    let parsed = exchange::from_csv(&csv).unwrap();
    let e = s
        .import(&parsed.departments, &parsed.resources)
        .await
        .unwrap_err();
    // 1 header line + 4 item rows of the first resource: the second starts at line 6.
    assert_eq!(
        e.to_string(),
        "line 6: provider: unknown department 'nobody'"
    );
    assert_eq!(
        s.list_resources(&ResourceQuery::default())
            .await
            .unwrap()
            .total,
        0,
        "nothing written"
    );

    let csv = exchange::to_csv(std::slice::from_ref(&good));
    let parsed = exchange::from_csv(&csv).unwrap();
    let report = s
        .import(&parsed.departments, &parsed.resources)
        .await
        .unwrap();
    assert_eq!(report.resources_created, 1);
    let report = s
        .import(&parsed.departments, &parsed.resources)
        .await
        .unwrap();
    assert_eq!(report.resources_updated, 1, "re-import updates");

    // Round trip: export, import into a fresh directory, same content.
    let exported = s.export().await.unwrap();
    let text = exchange::to_json(&exported);
    let reparsed = exchange::from_json(&text).unwrap();
    assert_eq!(reparsed.resources[0].value.items, good.items);
    let csv = exchange::to_csv(&exported.resources);
    let reparsed_csv = exchange::from_csv(&csv).unwrap();
    assert_eq!(reparsed_csv.resources[0].value, exported.resources[0]);
}

async fn dataset_versions(f: Fixture) {
    let s = &f.store;
    seed(s).await;
    s.create_resource(&population("101/000001")).await.unwrap();
    let v = |n| NewDatasetVersion {
        resource: "101/000001".into(),
        version: n,
        row_count: 10 * n,
        byte_size: 1000,
        location: format!("datasets/101-000001/v{n}"),
        origin: "test".into(),
    };
    assert!(
        s.get_resource("101/000001")
            .await
            .unwrap()
            .latest_version
            .is_none()
    );
    s.record_version(&v(1)).await.unwrap();
    s.record_version(&v(2)).await.unwrap();
    let e = s.record_version(&v(2)).await.unwrap_err();
    assert!(matches!(e, Error::Duplicate { .. }), "{e:?}");
    let versions = s.list_versions("101/000001").await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    let latest = s
        .get_resource("101/000001")
        .await
        .unwrap()
        .latest_version
        .unwrap();
    assert_eq!((latest.version, latest.row_count), (2, 20));
    let mut orphan = v(1);
    orphan.resource = "101/000009".into();
    assert!(matches!(
        s.record_version(&orphan).await,
        Err(Error::NotFound { .. })
    ));
}

async fn tokens(f: Fixture) {
    let s = &f.store;
    seed(s).await;
    let t = TokenRecord {
        token_hash: "ab".repeat(32),
        department: "sh-gaj".into(),
        role: Role::Department,
        label: "gaj".into(),
    };
    s.put_token(&t).await.unwrap();
    assert_eq!(s.list_tokens().await.unwrap(), vec![t.clone()]);
    let mut unknown = t.clone();
    unknown.token_hash = "cd".repeat(32);
    unknown.department = "nobody".into();
    assert_eq!(
        invalid_field(s.put_token(&unknown).await.unwrap_err()),
        "department"
    );
    assert!(matches!(
        s.put_token(&t).await,
        Err(Error::Duplicate { .. })
    ));
}
