//! The three lists and the review workflow, on both backends.

use crate::store::{Fixture, item, population, seed};
use chrono::{Duration, Utc};
use tongban_catalog::lists::*;
use tongban_catalog::*;
use tongban_policies::calendar::Calendar;
use tongban_policies::{FilterOp, Mode, NeedStatus, RowFilter, ShareType};

pub const OFFICE: Actor = Actor {
    department: "sh-dsjzx",
    role: Role::DataOffice,
};
pub const PROVIDER: Actor = Actor {
    department: "sh-gaj",
    role: Role::Department,
};
const CONSUMER: Actor = Actor {
    department: "xh-zwfw",
    role: Role::Department,
};

/// Departments, a published population resource with one unconditional-only
/// sibling, ready for needs.
pub async fn directory(s: &SqlStore) {
    seed(s).await;
    for (code, level, parent) in [
        ("sh-dsjzx", Level::City, None),
        ("sh-zwfw", Level::City, None),
        ("xh-zwfw", Level::District, Some("sh-zwfw")),
    ] {
        s.create_department(&Department {
            code: code.into(),
            name: format!("{code} 部门"),
            level,
            parent: parent.map(Into::into),
            division_code: None,
            credit_code: None,
        })
        .await
        .unwrap();
    }
    let mut r = population("101/000001");
    r.items
        .push(item("residence_street", ShareType::Unconditional));
    r.status = Some(Status::Published);
    s.create_resource(&r).await.unwrap();
    let mut draft = population("101/000002");
    draft.status = Some(Status::Draft);
    s.create_resource(&draft).await.unwrap();
}

pub fn application(items: &[&str]) -> NeedApplication {
    NeedApplication {
        resource: "101/000001".into(),
        items: items.iter().map(|s| s.to_string()).collect(),
        matter: "310104-JZZ-001".into(),
        mode: Mode::Lookup,
        justification: "居住证办理核验申请人身份".into(),
        row_filter: Some(RowFilter {
            item: "residence_street".into(),
            op: FilterOp::Prefix("310104".into()),
        }),
        daily_quota: Some(5000),
        clear_items: vec![],
        valid_from: None,
        valid_until: None,
        matter_name: None,
        covert_until: None,
    }
}

fn field_of(e: Error) -> String {
    match e {
        Error::Invalid { field, .. } => field,
        other => panic!("expected invalid input, got {other:?}"),
    }
}

pub async fn need_workflow(f: Fixture) {
    let s = &f.store;
    directory(s).await;
    let calendar = Calendar::default();

    // Conditional items: the provider replies within 5 working days.
    let need = s
        .apply_need("xh-zwfw", &application(&["citizen_id", "name"]))
        .await
        .unwrap();
    assert_eq!(need.status, NeedStatus::PendingProvider);
    assert_eq!(need.due_at, Some(calendar.deadline(need.submitted_at, 5)));
    assert_eq!(need.history.len(), 1);
    assert_eq!(need.history[0].action, "applied");

    // Only the provider answers at its stage; the data office cannot approve for it.
    let e = s
        .review_need(need.id, OFFICE, ReviewAction::Approve, "")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
    let e = s
        .review_need(need.id, CONSUMER, ReviewAction::Approve, "")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
    let n = s
        .review_need(need.id, PROVIDER, ReviewAction::Approve, "同意")
        .await
        .unwrap();
    assert_eq!(n.status, NeedStatus::PendingOffice);
    assert!(n.due_at.unwrap() > n.submitted_at);
    let e = s
        .review_need(need.id, PROVIDER, ReviewAction::Approve, "")
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Forbidden(_)),
        "the office stage is the office's: {e:?}"
    );
    let n = s
        .review_need(need.id, OFFICE, ReviewAction::Approve, "")
        .await
        .unwrap();
    assert_eq!(n.status, NeedStatus::Approved);
    assert!(n.valid_from.is_some() && n.decided_at.is_some() && n.due_at.is_none());
    let actions: Vec<&str> = n.history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["applied", "provider_approved", "approved"]);

    // Revoking needs a reason; a revoked need cannot be approved again.
    assert_eq!(
        field_of(
            s.review_need(need.id, OFFICE, ReviewAction::Revoke, " ")
                .await
                .unwrap_err()
        ),
        "reason"
    );
    let n = s
        .review_need(need.id, PROVIDER, ReviewAction::Revoke, "事项已取消")
        .await
        .unwrap();
    assert_eq!(n.status, NeedStatus::Revoked);
    let e = s
        .review_need(need.id, OFFICE, ReviewAction::Approve, "")
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "need 1 is revoked: it cannot be approved");

    // Unconditional items only: straight to the data office, 2 working days.
    let plain = s
        .apply_need("xh-zwfw", &application(&["gender"]))
        .await
        .unwrap();
    assert_eq!(plain.status, NeedStatus::PendingOffice);
    assert_eq!(plain.due_at, Some(calendar.deadline(plain.submitted_at, 2)));
    // An unpublished resource gives the provider 10 working days.
    let mut draft = application(&["citizen_id"]);
    draft.resource = "101/000002".into();
    draft.row_filter = None;
    let slow = s.apply_need("xh-zwfw", &draft).await.unwrap();
    assert_eq!(slow.due_at, Some(calendar.deadline(slow.submitted_at, 10)));
    let e = s
        .review_need(slow.id, PROVIDER, ReviewAction::Reject, "")
        .await
        .unwrap_err();
    assert_eq!(field_of(e), "reason");
    let rejected = s
        .review_need(slow.id, PROVIDER, ReviewAction::Reject, "资源尚未发布")
        .await
        .unwrap();
    assert_eq!(rejected.status, NeedStatus::Rejected);
    assert_eq!(rejected.history.last().unwrap().reason, "资源尚未发布");

    // Overdue: pending past the deadline, seen from three weeks on.
    let later = Utc::now() + Duration::days(21);
    let overdue = s
        .list_needs(&NeedQuery {
            overdue_at: Some(later),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(overdue.iter().map(|n| n.id).collect::<Vec<_>>(), [plain.id]);
    assert!(
        s.list_needs(&NeedQuery {
            overdue_at: Some(Utc::now()),
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty()
    );
    // Parties: the consumer and the provider see the needs; others do not.
    assert_eq!(
        s.list_needs(&NeedQuery {
            party: Some("sh-gaj".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .len(),
        3
    );
    assert_eq!(
        s.list_needs(&NeedQuery {
            party: Some("sh-scjgj".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .len(),
        0
    );
    let approved = NeedQuery {
        status: Some(NeedStatus::Revoked),
        ..Default::default()
    };
    assert_eq!(s.list_needs(&approved).await.unwrap().len(), 1);
}

pub async fn bad_applications_change_nothing(f: Fixture) {
    let s = &f.store;
    directory(s).await;
    type Breaker = Box<dyn Fn(&mut NeedApplication)>;
    let cases: Vec<(&str, Breaker)> = vec![
        (
            "items[1]",
            Box::new(|a| a.items = vec!["name".into(), "religion".into()]),
        ),
        ("items[0]", Box::new(|a| a.items = vec!["shoe_size".into()])),
        ("items", Box::new(|a| a.items.clear())),
        (
            "items[1]",
            Box::new(|a| a.items = vec!["name".into(), "name".into()]),
        ),
        ("matter", Box::new(|a| a.matter = "  ".into())),
        (
            "justification",
            Box::new(|a| a.justification = String::new()),
        ),
        (
            "clear_items[0]",
            Box::new(|a| a.clear_items = vec!["gender".into()]),
        ),
        (
            "row_filter.item",
            Box::new(|a| a.row_filter.as_mut().unwrap().item = "nope".into()),
        ),
        ("resource", Box::new(|a| a.resource = "109/000001".into())),
        ("daily_quota", Box::new(|a| a.daily_quota = Some(0))),
        (
            "valid_until",
            Box::new(|a| {
                a.valid_from = Some(Utc::now());
                a.valid_until = Some(Utc::now() - Duration::days(1));
            }),
        ),
    ];
    for (field, break_it) in cases {
        let mut a = application(&["citizen_id", "name"]);
        break_it(&mut a);
        assert_eq!(
            field_of(s.apply_need("xh-zwfw", &a).await.unwrap_err()),
            field
        );
    }
    assert_eq!(
        field_of(
            s.apply_need("nobody", &application(&["name"]))
                .await
                .unwrap_err()
        ),
        "consumer"
    );
    // A negative-listed item cannot be applied for.
    let mut with_phone = population("101/000001");
    with_phone
        .items
        .push(item("residence_street", ShareType::Unconditional));
    with_phone.items.push(item("phone", ShareType::Conditional));
    s.update_resource("101/000001", &with_phone).await.unwrap();
    s.create_negative(&NegativeSpec {
        resource: "101/000001".into(),
        items: vec!["phone".into()],
        legal_basis: "《个人信息保护法》".into(),
        modes: vec![],
        consumers: vec![],
        note: String::new(),
    })
    .await
    .unwrap();
    let e = s
        .apply_need("xh-zwfw", &application(&["phone"]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("negative list (entry 1)"), "{e}");
    assert!(
        s.list_needs(&NeedQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    let e = s
        .review_need(99, OFFICE, ReviewAction::Approve, "")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
}

pub async fn negative_and_responsibility_lists(f: Fixture) {
    let s = &f.store;
    directory(s).await;
    let neg = NegativeSpec {
        resource: "101/000001".into(),
        items: vec!["religion".into()],
        legal_basis: "《个人信息保护法》第二十八条".into(),
        modes: vec![],
        consumers: vec![],
        note: "敏感个人信息".into(),
    };
    let created = s.create_negative(&neg).await.unwrap();
    assert_eq!(created.id, 1);
    for (field, bad) in [
        (
            "legal_basis",
            NegativeSpec {
                legal_basis: " ".into(),
                ..neg.clone()
            },
        ),
        (
            "items[0]",
            NegativeSpec {
                items: vec!["nope".into()],
                ..neg.clone()
            },
        ),
        (
            "resource",
            NegativeSpec {
                resource: "109/000001".into(),
                ..neg.clone()
            },
        ),
        (
            "consumers[0]",
            NegativeSpec {
                consumers: vec!["nobody".into()],
                ..neg.clone()
            },
        ),
    ] {
        assert_eq!(field_of(s.create_negative(&bad).await.unwrap_err()), field);
    }
    assert_eq!(s.list_negatives().await.unwrap().len(), 1);
    s.delete_negative(1).await.unwrap();
    assert!(matches!(
        s.delete_negative(1).await,
        Err(Error::NotFound { .. })
    ));

    let duty = ResponsibilitySpec {
        provider: "sh-gaj".into(),
        resource: "101/000001".into(),
        items: vec!["citizen_id".into()],
        refresh_interval_hours: 24,
        delivery: Mode::Lookup,
    };
    let r = s.create_responsibility(&duty).await.unwrap();
    let wrong = ResponsibilitySpec {
        provider: "sh-scjgj".into(),
        ..duty.clone()
    };
    let e = s.create_responsibility(&wrong).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "provider: '101/000001' is provided by sh-gaj, not sh-scjgj"
    );
    assert_eq!(
        field_of(
            s.create_responsibility(&ResponsibilitySpec {
                refresh_interval_hours: 0,
                ..duty.clone()
            })
            .await
            .unwrap_err()
        ),
        "refresh_interval_hours"
    );

    // Compliance from dataset version times: no version yet → due a day after the duty began.
    let now = Utc::now();
    let rows = s.compliance(now + Duration::hours(30)).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].late && (5..=6).contains(&rows[0].late_by_hours),
        "{rows:?}"
    );
    s.record_version(&NewDatasetVersion {
        resource: "101/000001".into(),
        version: 1,
        row_count: 1,
        byte_size: 1,
        location: "x".into(),
        origin: "test".into(),
    })
    .await
    .unwrap();
    let rows = s.compliance(Utc::now() + Duration::hours(1)).await.unwrap();
    assert!(
        !rows[0].late && rows[0].latest_version_at.is_some(),
        "{rows:?}"
    );
    assert_eq!(rows[0].late_by_hours, 0);
    s.delete_responsibility(r.id).await.unwrap();
    assert!(s.list_responsibilities().await.unwrap().is_empty());
}

pub async fn lists_round_trip_and_bad_rows_change_nothing(f: Fixture) {
    let s = &f.store;
    directory(s).await;
    s.apply_need("xh-zwfw", &application(&["citizen_id", "name"]))
        .await
        .unwrap();
    let mut verify = application(&["name"]);
    verify.mode = Mode::Verify;
    verify.row_filter = None;
    s.apply_need("sh-zwfw", &verify).await.unwrap();
    s.create_negative(&NegativeSpec {
        resource: "101/000001".into(),
        items: vec!["religion".into(), "gender".into()],
        legal_basis: "《个人信息保护法》第二十八条".into(),
        modes: vec![Mode::Batch, Mode::Subscribe],
        consumers: vec![],
        note: "批量不予提供".into(),
    })
    .await
    .unwrap();
    s.create_responsibility(&ResponsibilitySpec {
        provider: "sh-gaj".into(),
        resource: "101/000001".into(),
        items: vec!["citizen_id".into(), "name".into()],
        refresh_interval_hours: 24,
        delivery: Mode::Batch,
    })
    .await
    .unwrap();

    let needs = s.list_needs(&NeedQuery::default()).await.unwrap();
    let negatives = s.list_negatives().await.unwrap();
    let duties = s.list_responsibilities().await.unwrap();
    let strip = |mut v: Vec<NeedRecord>| {
        v.iter_mut().for_each(|n| n.history.clear());
        v
    };
    let values = |v: Vec<Located<NeedRecord>>| v.into_iter().map(|l| l.value).collect::<Vec<_>>();
    // Both file forms give back exactly the records.
    assert_eq!(
        values(list_exchange::from_csv(&list_exchange::to_csv(&needs)).unwrap()),
        strip(needs.clone())
    );
    assert_eq!(
        values(list_exchange::from_json(&list_exchange::to_json(&needs)).unwrap()),
        strip(needs.clone())
    );
    let neg_back: Vec<NegativeRecord> = list_exchange::from_csv(&list_exchange::to_csv(&negatives))
        .unwrap()
        .into_iter()
        .map(|l| l.value)
        .collect();
    assert_eq!(neg_back, negatives);
    let duty_back: Vec<ResponsibilityRecord> =
        list_exchange::from_json(&list_exchange::to_json(&duties))
            .unwrap()
            .into_iter()
            .map(|l| l.value)
            .collect();
    assert_eq!(duty_back, duties);

    // Import into the same store: updates in place.
    let counts = s
        .import_needs(&list_exchange::from_csv(&list_exchange::to_csv(&needs)).unwrap())
        .await
        .unwrap();
    assert_eq!(
        counts,
        ImportCounts {
            created: 0,
            updated: 2
        }
    );

    // A bad row names its line; nothing of the file is written.
    let mut csv = list_exchange::to_csv(&negatives);
    csv.push_str("2,101/000001,name,《个人信息保护法》,,,\n3,101/000001,shoe_size,依据,,,\n");
    let parsed = list_exchange::from_csv::<NegativeRecord>(&csv).unwrap();
    let e = s.import_negatives(&parsed).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 4: items[0]: '101/000001' has no item 'shoe_size'"
    );
    let e = list_exchange::from_csv::<NegativeRecord>(
        "id,resource,items,legal_basis\n5,101/000001,name,\n",
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "line 2: record: missing field `legal_basis`");
    assert_eq!(s.list_negatives().await.unwrap(), negatives);
    let e = list_exchange::from_csv::<ResponsibilityRecord>("id,provider,resource,items,refresh_interval_hours,delivery\n1,sh-gaj,101/000001,,daily,batch\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2: refresh_interval_hours: 'daily' is not a whole number"
    );
    let e = list_exchange::from_csv::<ResponsibilityRecord>("id,provider,colour\n").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("line 1: header: unknown column 'colour'"),
        "{e}"
    );
    let e = list_exchange::from_json::<NeedRecord>(r#"[{"id": 1}]"#).unwrap_err();
    assert!(
        e.to_string().starts_with("[0]: record: missing field"),
        "{e}"
    );
    let mut bad_need = strip(needs.clone());
    bad_need[1].items = vec!["religion".into()];
    let located: Vec<Located<NeedRecord>> = bad_need
        .into_iter()
        .enumerate()
        .map(|(i, value)| Located {
            at: format!("[{i}]"),
            value,
        })
        .collect();
    let e = s.import_needs(&located).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("[1]: items[0]: 'religion' is not shared"),
        "{e}"
    );
    assert_eq!(
        strip(s.list_needs(&NeedQuery::default()).await.unwrap()),
        strip(needs)
    );
}

pub async fn calendar_and_policy_input(f: Fixture) {
    let s = &f.store;
    directory(s).await;
    let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let c = Calendar {
        holidays: [day("2026-10-01"), day("2026-10-02")].into(),
        workdays: [day("2026-10-10")].into(),
    };
    s.set_calendar(&c).await.unwrap();
    assert_eq!(s.calendar().await.unwrap(), c);
    let clash = Calendar {
        holidays: [day("2026-10-10")].into(),
        workdays: [day("2026-10-10")].into(),
    };
    assert_eq!(
        field_of(s.set_calendar(&clash).await.unwrap_err()),
        "workdays"
    );
    assert_eq!(
        s.calendar().await.unwrap(),
        c,
        "a refused calendar changes nothing"
    );

    let need = s
        .apply_need("xh-zwfw", &application(&["citizen_id"]))
        .await
        .unwrap();
    let input = s.policy_input().await.unwrap();
    assert!(input.departments.contains(&"xh-zwfw".to_string()));
    let r = input
        .resources
        .iter()
        .find(|r| r.code == "101/000001")
        .unwrap();
    assert!(r.published);
    assert_eq!(r.items.len(), 5);
    assert_eq!(input.needs.len(), 1);
    assert_eq!(input.needs[0].id, need.id);
    assert!(
        !input
            .resources
            .iter()
            .find(|r| r.code == "101/000002")
            .unwrap()
            .published
    );
}
