//! Objections on both backends: the deadline counted in working days across
//! a holiday, overdue listing, the provider's steps in order, the hub's
//! check of a correction, history kept.

use crate::lists::directory;
use crate::store::Fixture;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use tongban_catalog::objections::*;
use tongban_catalog::*;
use tongban_policies::calendar::Calendar;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub async fn objection_lifecycle_across_a_holiday(f: Fixture) {
    let s = &f.store;
    directory(s).await;
    // National Day: 1–7 October 2026 off, Saturday the 10th worked.
    let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let holidays = (1..=7).map(|d| day(&format!("2026-10-{d:02}"))).collect();
    s.set_calendar(&Calendar {
        holidays,
        workdays: [day("2026-10-10")].into(),
    })
    .await
    .unwrap();
    let spec = ObjectionSpec {
        resource: "101/000001".into(),
        key: "110105194912310021".into(),
        items: vec!["name".into()],
        claimed: BTreeMap::from([("name".into(), "王小明".into())]),
        evidence: "户口簿第 3 页姓名为王小明".into(),
    };
    // Raised on Wednesday 30 September, 10:00 in Shanghai.
    let raised = at("2026-09-30T02:00:00Z");
    let raise = Raise {
        spec: &spec,
        raised_by: "xh-zwfw",
        raised_for: None,
        provider: "sh-gaj",
        version: 3,
        value_hashes: BTreeMap::from([("name".into(), "ab12".into())]),
        now: raised,
        days: ANSWER_DAYS,
    };
    let o = s.raise_objection(&raise).await.unwrap();
    assert_eq!(o.status, ObjectionStatus::Open);
    // Five working days after the 30th: 8, 9, 10 (worked Saturday), 12, 13
    // October — due at the end of Tuesday the 13th, Shanghai time.
    assert_eq!(o.due_at, at("2026-10-13T16:00:00Z"));
    assert_eq!(o.value_hashes["name"], "ab12");
    let actions: Vec<&str> = o.history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["raised", "accepted"]);
    assert_eq!(o.history[0].actor, "xh-zwfw");

    // Aging: not overdue on the 13th, overdue on the 14th.
    let overdue = |t: &str| ObjectionQuery {
        overdue_at: Some(at(t)),
        ..Default::default()
    };
    assert!(
        s.list_objections(&overdue("2026-10-13T15:00:00Z"))
            .await
            .unwrap()
            .is_empty()
    );
    let late = s
        .list_objections(&overdue("2026-10-14T01:00:00Z"))
        .await
        .unwrap();
    assert_eq!(late.iter().map(|o| o.id).collect::<Vec<_>>(), [o.id]);
    assert!(late[0].overdue(at("2026-10-14T01:00:00Z")));
    let marking = ObjectionQuery {
        marking: true,
        ..Default::default()
    };
    assert_eq!(s.list_objections(&marking).await.unwrap().len(), 1);
    let mine = ObjectionQuery {
        party: Some("xh-zwfw".into()),
        ..Default::default()
    };
    assert_eq!(s.list_objections(&mine).await.unwrap().len(), 1);
    let other = ObjectionQuery {
        party: Some("sh-zwfw".into()),
        ..Default::default()
    };
    assert!(s.list_objections(&other).await.unwrap().is_empty());

    // Only the provider answers; steps in order; nothing changes otherwise.
    let t = at("2026-10-09T02:00:00Z");
    let correcting = Step::Correcting {
        note: "核实有误，随下次同步更正".into(),
    };
    assert!(matches!(
        s.objection_step(o.id, "xh-zwfw", &correcting, t)
            .await
            .unwrap_err(),
        Error::Forbidden(_)
    ));
    assert!(matches!(
        s.objection_step(
            o.id,
            "hub",
            &Step::Corrected {
                version: 4,
                note: String::new()
            },
            t
        )
        .await
        .unwrap_err(),
        Error::Conflict(_)
    ));
    let o = s
        .objection_step(o.id, "sh-gaj", &correcting, t)
        .await
        .unwrap();
    assert_eq!(o.status, ObjectionStatus::Correcting);
    let o = s
        .objection_step(o.id, "hub", &Step::Unchanged { version: 4 }, t)
        .await
        .unwrap();
    assert_eq!(
        o.status,
        ObjectionStatus::Correcting,
        "a version without the fix keeps it open"
    );
    let o = s
        .objection_step(
            o.id,
            "hub",
            &Step::Corrected {
                version: 5,
                note: "name changed".into(),
            },
            t,
        )
        .await
        .unwrap();
    assert_eq!(o.status, ObjectionStatus::Corrected);
    assert_eq!((o.corrected_version, o.closed_at), (Some(5), Some(t)));
    let actions: Vec<&str> = o.history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["raised", "accepted", "correcting", "unchanged", "corrected"]
    );
    assert!(
        s.list_objections(&marking).await.unwrap().is_empty(),
        "closed: no mark"
    );
    assert!(
        s.list_objections(&overdue("2026-12-01T00:00:00Z"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.objection_step(
            o.id,
            "sh-gaj",
            &Step::Reject {
                reason: "no".into()
            },
            t
        )
        .await
        .unwrap_err(),
        Error::Conflict(_)
    ));

    // A second one, rejected: a reason is required.
    let o2 = s
        .raise_objection(&Raise {
            now: at("2026-10-12T02:00:00Z"),
            ..raise.clone()
        })
        .await
        .unwrap();
    assert_eq!(o2.id, o.id + 1);
    assert!(matches!(
        s.objection_step(o2.id, "sh-gaj", &Step::Reject { reason: " ".into() }, t)
            .await
            .unwrap_err(),
        Error::Invalid { .. }
    ));
    let o2 = s
        .objection_step(
            o2.id,
            "sh-gaj",
            &Step::Reject {
                reason: "与户籍档案一致".into(),
            },
            t,
        )
        .await
        .unwrap();
    assert_eq!(o2.status, ObjectionStatus::Rejected);
    assert_eq!(o2.history.last().unwrap().note, "与户籍档案一致");
    let rejected = ObjectionQuery {
        status: Some(ObjectionStatus::Rejected),
        ..Default::default()
    };
    assert_eq!(s.list_objections(&rejected).await.unwrap().len(), 1);
    assert!(matches!(
        s.get_objection(99).await.unwrap_err(),
        Error::NotFound { .. }
    ));
}
