//! The pipeline by itself: lists given in memory, an audit log in a temp
//! folder, no server, store or network.

use super::*;
use chrono::Duration;
use tongban_audit::Record;
use tongban_policies::lists::{ItemPolicy, NeedStatus, NegativeEntry, PolicyInput, ResourcePolicy};
use tongban_policies::vocab::ShareType;
use tongban_policies::{Mask, Release};

const PEOPLE: &str = "101/000001";
const MATTER: &str = "310104-JZZ-001";

fn lists(negative: &[&str], quota: Option<u32>) -> PolicyInput {
    let item = |name: &str, share_type, mask| ItemPolicy {
        name: name.into(),
        share_type,
        mask,
    };
    PolicyInput {
        divisions: Default::default(),
        departments: vec!["xh-zwfw".into(), "sh-gaj".into()],
        resources: vec![ResourcePolicy {
            division_item: None,
            code: PEOPLE.into(),
            provider: "sh-gaj".into(),
            published: true,
            items: vec![
                item("citizen_id", ShareType::Conditional, Some(Mask::CitizenId)),
                item("name", ShareType::Conditional, Some(Mask::ChineseName)),
                item("gender", ShareType::Unconditional, None),
            ],
        }],
        needs: vec![tongban_policies::Need {
            id: 7,
            consumer: "xh-zwfw".into(),
            resource: PEOPLE.into(),
            items: vec!["citizen_id".into(), "name".into()],
            matter: MATTER.into(),
            mode: Mode::Lookup,
            row_filter: None,
            daily_quota: quota,
            clear_items: vec![],
            valid_from: Utc::now() - Duration::days(1),
            valid_until: None,
            status: NeedStatus::Approved,
        }],
        negatives: negative
            .iter()
            .enumerate()
            .map(|(i, item)| NegativeEntry {
                id: i as i64 + 1,
                resource: PEOPLE.into(),
                items: vec![(*item).into()],
                legal_basis: "《个人信息保护法》".into(),
                modes: vec![],
                consumers: vec![],
            })
            .collect(),
    }
}

struct Fixture {
    access: Access,
    dir: tempfile::TempDir,
}

fn fixture(negative: &[&str], quota: Option<u32>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let audit = Audit::open(&dir.path().join("audit"), b"secret", Some("hub")).unwrap();
    let policies = Policies::from_input(lists(negative, quota), Default::default());
    Fixture {
        access: Access::new(policies, Limits::default(), audit),
        dir,
    }
}

impl Fixture {
    fn records(&self) -> Vec<Record> {
        let path = self.dir.path().join("audit/audit-000001.jsonl");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('\0'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn ask(consumer: &str) -> Ask<'_> {
    Ask {
        consumer,
        resource: PEOPLE,
        matter: MATTER,
        case: "case-1",
        mode: Mode::Lookup,
        started: Instant::now(),
    }
}

fn items(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn a_permitted_request_is_decided_once_and_recorded_with_its_items() {
    let f = fixture(&[], None);
    let keys = vec!["310104199001011234".to_string()];
    let grant = f
        .access
        .open(
            &ask("xh-zwfw"),
            &items(&["name", "gender", "religion"]),
            &[],
        )
        .await
        .unwrap();
    let d = grant.decision();
    assert_eq!(d.items[0].release, Some(Release::Masked(Mask::ChineseName)));
    assert_eq!(d.items[1].release, Some(Release::Clear));
    assert_eq!(d.items[2].release, None, "an unknown item is denied");
    f.access
        .take_quota(&ask("xh-zwfw"), &grant, &keys)
        .await
        .unwrap();
    assert!(f.records().is_empty(), "nothing is recorded before release");
    f.access
        .release(&ask("xh-zwfw"), &grant, &keys)
        .await
        .unwrap();
    let records = f.records();
    assert_eq!(records.len(), 1);
    let e = &records[0].event;
    assert_eq!(e.outcome, Outcome::Released);
    assert_eq!(e.items, ["name", "gender"]);
    assert_eq!(e.denied, ["religion:unknown_item"]);
    assert_eq!(e.keys, [f.access.audit().key_hash(&keys[0])]);
    assert_ne!(e.keys[0], keys[0], "keys are recorded hashed");
    assert_eq!((e.matter.as_str(), e.case.as_str()), (MATTER, "case-1"));
}

#[tokio::test]
async fn a_negative_item_never_leaves_and_a_denial_is_recorded() {
    let f = fixture(&["name"], None);
    let grant = f
        .access
        .open(&ask("xh-zwfw"), &items(&["name", "citizen_id"]), &[])
        .await
        .unwrap();
    let name = &grant.decision().items[0];
    assert_eq!(
        (name.release, name.rule.to_string()),
        (None, "negative:1".into())
    );
    assert!(
        grant
            .decision()
            .projection()
            .iter()
            .all(|(c, _)| *c != "name"),
        "the projection leaves the item out"
    );
    // Only the negative item asked: nothing to release, recorded as denied.
    let Err(e) = f.access.open(&ask("xh-zwfw"), &items(&["name"]), &[]).await else {
        panic!("a request for a negative item alone is denied")
    };
    assert_eq!(e.code(), Code::Denied);
    assert_eq!(e.rule(), Some("negative:1"));
    let records = f.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].event.outcome, Outcome::Denied);
    assert!(records[0].event.items.is_empty());
}

#[tokio::test]
async fn missing_matter_or_case_is_refused_before_any_decision() {
    let f = fixture(&[], None);
    let mut a = ask("xh-zwfw");
    a.case = "  ";
    let Err(e) = f.access.open(&a, &items(&["name"]), &[]).await else {
        panic!("an empty case is refused")
    };
    assert_eq!((e.code(), e.field()), (Code::InvalidInput, Some("case")));
    assert!(f.records().is_empty(), "no decision, nothing recorded");
}

#[tokio::test]
async fn a_quota_refusal_names_its_rule_and_is_recorded() {
    let f = fixture(&[], Some(2));
    let a = ask("xh-zwfw");
    let grant = f.access.open(&a, &items(&["name"]), &[]).await.unwrap();
    let two = items(&["310104199001011234", "310104199001015678"]);
    f.access.take_quota(&a, &grant, &two).await.unwrap();
    let Err(e) = f.access.take_quota(&a, &grant, &two[..1]).await else {
        panic!("the third key is over a quota of two")
    };
    assert_eq!(e.code(), Code::QuotaExceeded);
    assert_eq!(e.rule(), Some("need:7"));
    assert!(e.retry_after_secs().is_some_and(|s| s > 3600), "{e:?}");
    let records = f.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].event.outcome, Outcome::QuotaExceeded);
    assert!(records[0].event.items.is_empty(), "nothing was released");
}

#[tokio::test]
async fn a_grant_keeps_its_snapshot_when_the_lists_change() {
    let f = fixture(&[], None);
    let grant = f
        .access
        .open(&ask("xh-zwfw"), &items(&["name"]), &[])
        .await
        .unwrap();
    f.access.policies().replace(lists(&["name"], None));
    assert!(
        grant.decision().permitted,
        "a decided request finishes under the lists it was decided by"
    );
    let Err(e) = f.access.open(&ask("xh-zwfw"), &items(&["name"]), &[]).await else {
        panic!("the next request sees the new negative entry")
    };
    assert_eq!(e.rule(), Some("negative:1"));
}

#[tokio::test]
async fn a_stranger_gets_nothing_conditional() {
    let f = fixture(&[], None);
    let grant = f
        .access
        .open(&ask("sh-gaj"), &items(&["name", "gender"]), &[])
        .await
        .unwrap();
    let d = grant.decision();
    assert_eq!(d.items[0].release, None, "name needs an approved need");
    assert_eq!(d.items[1].release, Some(Release::Clear));
}

#[tokio::test]
async fn an_open_stream_ends_when_the_lists_stop_allowing_it() {
    let f = fixture(&[], None);
    let a = ask("xh-zwfw");
    let wanted = items(&["name", "citizen_id"]);
    let grant = f.access.open(&a, &wanted, &[]).await.unwrap();
    let keys = items(&["310104199001011234"]);
    assert!(
        f.access
            .recheck(&a, &grant, &wanted, &keys)
            .await
            .unwrap()
            .is_none()
    );
    // A change that decides this request the same way: it goes on.
    let mut same = lists(&[], None);
    same.departments.push("pd-zwfw".into());
    f.access.policies().replace(same);
    let renewed = f
        .access
        .recheck(&a, &grant, &wanted, &keys)
        .await
        .unwrap()
        .expect("a new snapshot, the same decision");
    assert_eq!(renewed.decision(), grant.decision());
    assert!(
        f.access
            .recheck(&a, &renewed, &wanted, &keys)
            .await
            .unwrap()
            .is_none()
    );
    // A negative entry on an item it releases: it ends, recorded.
    f.access.policies().replace(lists(&["name"], None));
    let Err(e) = f.access.recheck(&a, &renewed, &wanted, &keys).await else {
        panic!("the stream must not outlive the negative entry")
    };
    assert_eq!((e.code(), e.rule()), (Code::PolicyChanged, Some("need:7")));
    let records = f.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].event.outcome, Outcome::Denied);
    assert!(
        records[0]
            .event
            .denied
            .contains(&"name:negative:1".to_string())
    );
    assert_eq!(records[0].event.keys.len(), 1);
}
