use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use tongban_policies::lists::{ItemPolicy, ResourcePolicy};
use tongban_policies::*;

const ITEMS: [&str; 5] = ["i0", "i1", "i2", "i3", "i4"];

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        Just(Mode::Lookup),
        Just(Mode::Verify),
        Just(Mode::Batch),
        Just(Mode::Subscribe)
    ]
}

fn share_type() -> impl Strategy<Value = ShareType> {
    prop_oneof![
        Just(ShareType::Unconditional),
        Just(ShareType::Conditional),
        Just(ShareType::None)
    ]
}

fn subset() -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(ITEMS.to_vec(), 0..=ITEMS.len())
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

fn resource(code: &'static str, published: bool) -> impl Strategy<Value = ResourcePolicy> {
    proptest::collection::vec(
        (share_type(), proptest::option::of(Just(Mask::KeepFirst(1)))),
        ITEMS.len(),
    )
    .prop_map(move |items| ResourcePolicy {
        division_item: None,
        code: code.into(),
        provider: "d0".into(),
        published,
        items: items
            .into_iter()
            .zip(ITEMS)
            .map(|((share_type, mask), name)| ItemPolicy {
                name: name.into(),
                share_type,
                mask,
            })
            .collect(),
    })
}

fn need() -> impl Strategy<Value = Need> {
    let status = prop_oneof![
        Just(NeedStatus::PendingProvider),
        Just(NeedStatus::PendingOffice),
        Just(NeedStatus::Approved),
        Just(NeedStatus::Approved),
        Just(NeedStatus::Rejected),
        Just(NeedStatus::Revoked),
    ];
    (
        0..4usize,
        0..3usize,
        subset(),
        0..2usize,
        mode(),
        status,
        -3i64..2,
        proptest::option::of(-2i64..3),
        subset(),
        proptest::option::of(1u32..100),
        any::<bool>(),
    )
        .prop_map(
            |(c, r, items, m, mode, status, from, until, clear, quota, filtered)| Need {
                id: 0,
                consumer: format!("d{c}"),
                resource: format!("r{r}"),
                items,
                matter: format!("m{m}"),
                mode,
                row_filter: filtered.then(|| RowFilter {
                    item: "i0".into(),
                    op: FilterOp::Prefix(format!("31010{c}")),
                }),
                daily_quota: quota,
                clear_items: clear,
                valid_from: base() + Duration::days(from),
                valid_until: until.map(|d| base() + Duration::days(d)),
                status,
            },
        )
}

fn negative() -> impl Strategy<Value = NegativeEntry> {
    (
        0..3usize,
        subset(),
        proptest::sample::subsequence(vec![Mode::Lookup, Mode::Verify, Mode::Batch], 0..=2),
        proptest::sample::subsequence(vec!["d0", "d1"], 0..=1),
    )
        .prop_map(|(r, items, modes, consumers)| NegativeEntry {
            id: 0,
            resource: format!("r{r}"),
            items,
            legal_basis: "《个人信息保护法》第二十八条".into(),
            modes,
            consumers: consumers.into_iter().map(String::from).collect(),
        })
}

fn input() -> impl Strategy<Value = PolicyInput> {
    (
        resource("r0", true),
        resource("r1", true),
        resource("r2", false),
        proptest::collection::vec(need(), 0..10),
        proptest::collection::vec(negative(), 0..3),
    )
        .prop_map(|(r0, r1, r2, mut needs, mut negatives)| {
            for (i, n) in needs.iter_mut().enumerate() {
                n.id = i as i64 + 1;
            }
            for (i, n) in negatives.iter_mut().enumerate() {
                n.id = i as i64 + 1;
            }
            // r0's rows carry a division code and d1 is a district: bulk
            // releases of r0 to d1 are return flow.
            let r0 = ResourcePolicy {
                division_item: Some("i0".into()),
                ..r0
            };
            PolicyInput {
                divisions: [("d1".to_string(), "310104".to_string())].into(),
                departments: vec!["d0".into(), "d1".into(), "d2".into()],
                resources: vec![r0, r1, r2],
                needs,
                negatives,
            }
        })
}

#[derive(Debug, Clone)]
struct Req {
    consumer: String,
    resource: String,
    items: Vec<String>,
    matter: String,
    mode: Mode,
}

fn request() -> impl Strategy<Value = Req> {
    (
        0..4usize,
        0..4usize,
        subset(),
        prop_oneof![Just("m0"), Just("m1"), Just("")],
        mode(),
    )
        .prop_map(|(c, r, items, matter, mode)| Req {
            consumer: format!("d{c}"),
            resource: format!("r{r}"),
            items,
            matter: matter.into(),
            mode,
        })
}

fn decide(set: &PolicySet, r: &Req) -> Decision {
    set.decide(&Request {
        consumer: &r.consumer,
        resource: &r.resource,
        items: &r.items,
        matter: &r.matter,
        mode: r.mode,
        now: base(),
    })
}

fn share_of<'a>(input: &'a PolicyInput, resource: &str, item: &str) -> Option<&'a ItemPolicy> {
    input
        .resources
        .iter()
        .find(|r| r.code == resource)?
        .items
        .iter()
        .find(|i| i.name == item)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// 1. The negative list always wins.
    #[test]
    fn the_negative_list_always_wins(input in input(), req in request()) {
        let set = PolicySet::compile(input.clone());
        let d = decide(&set, &req);
        for item in &d.items {
            let barred = input.negatives.iter().any(|n| n.resource == req.resource && n.bars(&item.item, &req.consumer, req.mode));
            if barred {
                prop_assert!(item.release.is_none(), "{item:?} released despite the negative list");
                prop_assert!(
                    matches!(item.rule, Rule::Negative(_) | Rule::UnknownConsumer | Rule::ResourceNotPublished | Rule::MissingMatter),
                    "{item:?}"
                );
            }
        }
    }

    /// 2. A conditional item is released only under an approved, unexpired
    ///    need of that consumer, resource, matter and mode that covers it.
    #[test]
    fn conditional_items_need_a_need_in_force(input in input(), req in request()) {
        let set = PolicySet::compile(input.clone());
        let d = decide(&set, &req);
        for item in d.items.iter().filter(|i| i.release.is_some()) {
            let policy = share_of(&input, &req.resource, &item.item).expect("released items exist");
            prop_assert_ne!(policy.share_type, ShareType::None);
            if policy.share_type == ShareType::Conditional {
                let Rule::Need(id) = item.rule else {
                    return Err(TestCaseError::fail(format!("conditional {item:?} released without a need")));
                };
                let n = input.needs.iter().find(|n| n.id == id).unwrap();
                prop_assert_eq!(&n.consumer, &req.consumer);
                prop_assert_eq!(&n.resource, &req.resource);
                prop_assert_eq!(&n.matter, &req.matter);
                prop_assert!(n.mode == req.mode || (req.mode == Mode::Verify && n.mode == Mode::Lookup));
                prop_assert_eq!(n.status, NeedStatus::Approved);
                prop_assert!(n.valid_from <= base() && n.valid_until.is_none_or(|u| base() < u));
                prop_assert!(n.items.contains(&item.item));
            }
        }
    }

    /// 3. Verification releases no values, and only verification is match-only.
    #[test]
    fn verify_releases_no_values(input in input(), req in request()) {
        let set = PolicySet::compile(input);
        let d = decide(&set, &req);
        for item in d.items.iter().filter_map(|i| i.release) {
            prop_assert_eq!(item == Release::MatchOnly, req.mode == Mode::Verify);
        }
        if req.mode == Mode::Verify {
            prop_assert!(d.projection().is_empty());
        }
    }

    /// 4. Decisions are deterministic, whatever order the lists come in.
    #[test]
    fn bulk_releases_to_a_district_keep_its_own_rows(input in input(), req in request()) {
        let set = PolicySet::compile(input);
        let d = decide(&set, &req);
        let return_flow = RowFilter { item: "i0".into(), op: FilterOp::Prefix("310104".into()) };
        let bulk = matches!(req.mode, Mode::Batch | Mode::Subscribe);
        if d.permitted && bulk && req.consumer == "d1" && req.resource == "r0" {
            prop_assert!(d.row_filters.contains(&return_flow), "{:?}", d.row_filters);
        } else {
            prop_assert!(!d.row_filters.contains(&return_flow), "{:?}", d.row_filters);
        }
    }

    #[test]
    fn decisions_are_deterministic(input in input(), req in request()) {
        let a = decide(&PolicySet::compile(input.clone()), &req);
        let mut shuffled = input;
        shuffled.needs.reverse();
        shuffled.negatives.reverse();
        shuffled.resources.reverse();
        shuffled.departments.reverse();
        let set = PolicySet::compile(shuffled);
        prop_assert_eq!(&a, &decide(&set, &req));
        prop_assert_eq!(&a, &decide(&set, &req));
    }

    /// Nothing leaves for an unregistered consumer, an unpublished resource or
    /// a request without a matter; every requested item gets a decision.
    #[test]
    fn request_level_rules(input in input(), req in request()) {
        let set = PolicySet::compile(input);
        let d = decide(&set, &req);
        if req.consumer == "d3" || req.resource == "r2" || req.matter.is_empty() {
            prop_assert!(!d.permitted);
            prop_assert!(d.items.iter().all(|i| i.release.is_none()));
        }
        if req.resource != "r3" {
            let expected: Vec<String> = if req.items.is_empty() { ITEMS.iter().map(|s| s.to_string()).collect() } else { req.items.clone() };
            prop_assert_eq!(d.items.iter().map(|i| i.item.clone()).collect::<Vec<_>>(), expected);
        }
        prop_assert_eq!(d.permitted, d.items.iter().any(|i| i.release.is_some()));
    }
}

fn fixture() -> PolicyInput {
    let item = |name: &str, share_type, mask| ItemPolicy {
        name: name.into(),
        share_type,
        mask,
    };
    PolicyInput {
        divisions: Default::default(),
        departments: vec!["sh-zwfw".into(), "xh-zwfw".into(), "sh-gaj".into()],
        resources: vec![ResourcePolicy {
            division_item: None,
            code: "101/000001".into(),
            provider: "sh-gaj".into(),
            published: true,
            items: vec![
                item("citizen_id", ShareType::Conditional, Some(Mask::CitizenId)),
                item("name", ShareType::Conditional, Some(Mask::ChineseName)),
                item("gender", ShareType::Unconditional, None),
                item("religion", ShareType::None, None),
                item("phone", ShareType::Conditional, Some(Mask::Phone)),
            ],
        }],
        needs: vec![Need {
            id: 7,
            consumer: "xh-zwfw".into(),
            resource: "101/000001".into(),
            items: vec!["citizen_id".into(), "name".into()],
            matter: "310104-JZZ-001".into(),
            mode: Mode::Lookup,
            row_filter: Some(RowFilter {
                item: "residence_street".into(),
                op: FilterOp::Prefix("310104".into()),
            }),
            daily_quota: Some(5000),
            clear_items: vec!["name".into()],
            valid_from: base() - Duration::days(30),
            valid_until: Some(base() + Duration::days(335)),
            status: NeedStatus::Approved,
        }],
        negatives: vec![NegativeEntry {
            id: 1,
            resource: "101/000001".into(),
            items: vec!["phone".into()],
            legal_basis: "《个人信息保护法》第二十八条".into(),
            modes: vec![],
            consumers: vec![],
        }],
    }
}

#[test]
fn an_explained_lookup_names_every_rule() {
    let set = PolicySet::compile(fixture());
    let items: Vec<String> = [
        "citizen_id",
        "name",
        "gender",
        "religion",
        "phone",
        "shoe_size",
    ]
    .map(String::from)
    .into();
    let d = set.decide(&Request {
        consumer: "xh-zwfw",
        resource: "101/000001",
        items: &items,
        matter: "310104-JZZ-001",
        mode: Mode::Lookup,
        now: base(),
    });
    let rules: Vec<String> = d.items.iter().map(|i| i.rule.to_string()).collect();
    assert_eq!(
        rules,
        [
            "need:7",
            "need:7",
            "unconditional",
            "share_type_none",
            "negative:1",
            "unknown_item"
        ]
    );
    assert_eq!(d.items[0].release, Some(Release::Masked(Mask::CitizenId)));
    assert_eq!(
        d.items[1].release,
        Some(Release::Clear),
        "the need lists name as clear"
    );
    assert_eq!(d.rule, Rule::Need(7));
    assert_eq!(d.daily_quota, Some(5000));
    assert_eq!(d.row_filters.len(), 1);
    assert!(
        d.items[4].reason.contains("negative list"),
        "{}",
        d.items[4].reason
    );
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(
        json["items"][0]["release"],
        serde_json::json!({"kind": "masked", "mask": "citizen_id"})
    );
    assert_eq!(json["rule"], "need:7");
}

#[test]
fn denials_explain_the_nearest_miss() {
    let mut input = fixture();
    let set = PolicySet::compile(input.clone());
    let items = vec!["citizen_id".to_string()];
    let ask = |set: &PolicySet, consumer, matter, mode, now| {
        set.decide(&Request {
            consumer,
            resource: "101/000001",
            items: &items,
            matter,
            mode,
            now,
        })
        .items
        .remove(0)
    };
    let other_matter = ask(&set, "xh-zwfw", "310104-OTHER", Mode::Lookup, base());
    assert_eq!(other_matter.rule, Rule::NoNeed);
    assert!(
        other_matter
            .reason
            .contains("for matter 310104-JZZ-001, not 310104-OTHER"),
        "{}",
        other_matter.reason
    );
    let batch = ask(&set, "xh-zwfw", "310104-JZZ-001", Mode::Batch, base());
    assert!(
        batch.reason.contains("for mode lookup, not batch"),
        "{}",
        batch.reason
    );
    let later = ask(
        &set,
        "xh-zwfw",
        "310104-JZZ-001",
        Mode::Lookup,
        base() + Duration::days(400),
    );
    assert!(later.reason.contains("expired"), "{}", later.reason);
    let verify = ask(&set, "xh-zwfw", "310104-JZZ-001", Mode::Verify, base());
    assert_eq!(
        verify.release,
        Some(Release::MatchOnly),
        "a lookup need serves verification"
    );
    let stranger = ask(&set, "sh-zwfw", "310104-JZZ-001", Mode::Lookup, base());
    assert!(
        stranger.reason.contains("needs an approved need"),
        "{}",
        stranger.reason
    );
    input.needs[0].status = NeedStatus::PendingProvider;
    let pending = ask(
        &PolicySet::compile(input),
        "xh-zwfw",
        "310104-JZZ-001",
        Mode::Lookup,
        base(),
    );
    assert!(
        pending
            .reason
            .contains("still under review (pending_provider)"),
        "{}",
        pending.reason
    );
}
