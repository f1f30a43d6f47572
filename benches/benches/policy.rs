//! Policy decisions (`tongban-policies`): how long the pure decision engine
//! takes at Shanghai's published scale.
//!
//! What is measured:
//! - `compile/shanghai_scale`: [`PolicySet::compile`] of a synthetic input of
//!   200 departments, 300 resources × 15 items, 2,600 needs and 20 negative
//!   entries (throughput in list entries compiled);
//! - `decide/*`: [`PolicySet::decide`] for the requests the hub sees most — a
//!   typical 5-item lookup, a lookup of every item, a denial that has to be
//!   explained, and a verification;
//! - `mask/<method>`: [`Mask::apply_into`] on one realistic value;
//! - `enforce/*`: a decision carried out on a 65,536-row Arrow batch —
//!   projection with masking, and a row filter (throughput in rows).
//!
//! The input is generated deterministically (a fixed-seed LCG), so every run
//! measures the same lists and the same batch.
//!
//! Run (release, as `cargo bench` always builds):
//!
//! ```text
//! cargo bench -p tongban-benches --bench policy -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Figures are recorded in `docs/benchmarks.md`.

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{DateTime, TimeZone, Utc};
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use tongban_policies::ids::citizen_id_check;
use tongban_policies::lists::{ItemPolicy, ResourcePolicy};
use tongban_policies::{
    Decision, FilterOp, Mask, Mode, Need, NeedStatus, NegativeEntry, PolicyInput, PolicySet,
    Release, Request, Reveal, RowFilter, Rule, ShareType, enforce,
};

// ---- Scale (Shanghai's published lists, rounded) ----

const DEPARTMENTS: usize = 200;
const RESOURCES: usize = 300;
const NEEDS: usize = 2_600;
const NEGATIVES: usize = 20;
/// Rows in the enforcement batch: a typical Parquet row group slice / stream batch.
const BATCH_ROWS: usize = 65_536;

/// The secret `hash` masks are keyed with.
const HASH_KEY: &[u8] = b"benchmark hub secret, 32 bytes!!";

/// The 16 district codes of Shanghai with their names, for street codes,
/// addresses and citizen IDs.
const DISTRICTS: [(&str, &str); 16] = [
    ("310101", "黄浦区"),
    ("310104", "徐汇区"),
    ("310105", "长宁区"),
    ("310106", "静安区"),
    ("310107", "普陀区"),
    ("310109", "虹口区"),
    ("310110", "杨浦区"),
    ("310112", "闵行区"),
    ("310113", "宝山区"),
    ("310114", "嘉定区"),
    ("310115", "浦东新区"),
    ("310116", "金山区"),
    ("310117", "松江区"),
    ("310118", "青浦区"),
    ("310120", "奉贤区"),
    ("310151", "崇明区"),
];

/// The 15 items every synthetic resource has, modelled on the population base
/// library: 6 unconditional, 7 conditional (identity, name, contact, address —
/// as the demo directory marks them), 2 never shared (PIPL art. 28). Six carry
/// a directory mask, so released values go through every text mask.
const ITEMS: [(&str, ShareType, Option<Mask>); 15] = [
    ("citizen_id", ShareType::Conditional, Some(Mask::CitizenId)),
    ("name", ShareType::Conditional, Some(Mask::ChineseName)),
    ("gender", ShareType::Unconditional, None),
    ("birth_date", ShareType::Unconditional, None),
    ("ethnicity", ShareType::Unconditional, None),
    ("phone", ShareType::Conditional, Some(Mask::Phone)),
    (
        "residence_address",
        ShareType::Conditional,
        Some(Mask::Address),
    ),
    ("residence_street", ShareType::Unconditional, None),
    ("household_id", ShareType::Conditional, Some(Mask::Hash)),
    ("education", ShareType::Unconditional, None),
    ("marital_status", ShareType::Conditional, None),
    (
        "employer_credit_code",
        ShareType::Conditional,
        Some(Mask::CreditCode),
    ),
    ("status", ShareType::Unconditional, None),
    ("religion", ShareType::None, None),
    ("health_status", ShareType::None, None),
];

/// The resource the typical requests go to: the population base library.
const POPULATION: &str = "101/000001";
/// The consumer of the typical requests, e.g. a district acceptance centre.
const FRONT_OFFICE: &str = "sh-d017";
/// The matter (事项) of the typical requests.
const MATTER: &str = "310100000123";

/// A tiny deterministic generator (Knuth's MMIX LCG): the benchmark needs
/// varied but reproducible data, not statistical quality.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A value in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

/// The time of every request: decisions read no clock.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 2, 0, 0).unwrap()
}

fn department(i: usize) -> String {
    format!("sh-d{i:03}")
}

/// Resource codes `<class>/<sequence>`: the four base libraries first, then
/// theme (2xx) and department (3xx) resources.
fn resource_code(i: usize) -> String {
    let class = match i {
        0..4 => 101 + i,
        4..60 => 201,
        _ => 301,
    };
    format!("{class}/{:06}", if i < 4 { 1 } else { i + 1 })
}

fn items_where(pred: impl Fn(ShareType) -> bool) -> Vec<&'static str> {
    ITEMS
        .iter()
        .filter(|(_, st, _)| pred(*st))
        .map(|(name, _, _)| *name)
        .collect()
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// A need with the common defaults: approved, lookup, in force since 2025,
/// no obligations. Callers adjust the rest.
fn need(id: i64, consumer: String, resource: String, items: Vec<String>, matter: String) -> Need {
    Need {
        id,
        consumer,
        resource,
        items,
        matter,
        mode: Mode::Lookup,
        row_filter: None,
        daily_quota: None,
        clear_items: Vec::new(),
        valid_from: utc(2025, 1, 1),
        valid_until: None,
        status: NeedStatus::Approved,
    }
}

/// The synthetic lists at Shanghai's scale.
///
/// Needs 1 and 2 are written out: the front office's lookup need on the
/// population library (with a row filter and a quota, as district needs have)
/// and a batch need of the same pair, so that the typical decision scans more
/// than one need. The other 2,598 are generated: 30 % go to the four base
/// libraries (they are by far the most requested), ~86 % are approved (1 in 15
/// of those has expired), the rest pending, rejected or revoked; a quarter
/// carry a district row filter and two fifths a daily quota.
fn policy_input() -> PolicyInput {
    let departments: Vec<String> = (0..DEPARTMENTS).map(department).collect();
    let resources = (0..RESOURCES)
        .map(|i| ResourcePolicy {
            division_item: None,
            code: resource_code(i),
            provider: department(i % DEPARTMENTS),
            // A few drafts: requests for them stop at the first check.
            published: i % 37 != 36,
            items: ITEMS
                .iter()
                .map(|&(name, share_type, mask)| ItemPolicy {
                    name: name.to_owned(),
                    share_type,
                    mask,
                })
                .collect(),
        })
        .collect();

    let conditional = items_where(|st| st == ShareType::Conditional);
    let unconditional = items_where(|st| st == ShareType::Unconditional);
    let mut needs = Vec::with_capacity(NEEDS);
    let mut typical = need(
        1,
        FRONT_OFFICE.to_owned(),
        POPULATION.to_owned(),
        strings(&[
            "citizen_id",
            "name",
            "phone",
            "residence_address",
            "gender",
            "residence_street",
        ]),
        MATTER.to_owned(),
    );
    typical.row_filter = Some(RowFilter {
        item: "residence_street".to_owned(),
        op: FilterOp::Prefix("310104".to_owned()),
    });
    typical.daily_quota = Some(20_000);
    needs.push(typical);
    let mut sibling = need(
        2,
        FRONT_OFFICE.to_owned(),
        POPULATION.to_owned(),
        strings(&["citizen_id", "name", "residence_street"]),
        "310100000456".to_owned(),
    );
    sibling.mode = Mode::Batch;
    needs.push(sibling);

    let mut rng = Lcg(20_261_122);
    for id in 3..=NEEDS as i64 {
        let consumer = department(rng.below(DEPARTMENTS));
        let resource = if rng.below(10) < 3 {
            resource_code(rng.below(4))
        } else {
            resource_code(rng.below(RESOURCES))
        };
        // 2–5 consecutive conditional items and 1–3 unconditional ones.
        let start = rng.below(conditional.len());
        let mut items: Vec<String> = (0..2 + rng.below(4))
            .map(|k| conditional[(start + k) % conditional.len()].to_owned())
            .collect();
        let start = rng.below(unconditional.len());
        items.extend(
            (0..1 + rng.below(3)).map(|k| unconditional[(start + k) % unconditional.len()].into()),
        );
        let matter = format!("3101{:08}", rng.below(800));
        let mut n = need(id, consumer, resource, items, matter);
        n.mode = match rng.below(20) {
            0..14 => Mode::Lookup,
            14..17 => Mode::Batch,
            17..19 => Mode::Verify,
            _ => Mode::Subscribe,
        };
        n.status = match rng.below(100) {
            0..86 => NeedStatus::Approved,
            86..89 => NeedStatus::PendingProvider,
            89..91 => NeedStatus::PendingOffice,
            91..96 => NeedStatus::Rejected,
            _ => NeedStatus::Revoked,
        };
        n.valid_from = utc(2024, 1, 1) + chrono::Duration::days(rng.below(600) as i64);
        n.valid_until = match rng.below(15) {
            0 => Some(utc(2026, 6, 30)), // expired
            1..4 => Some(utc(2027, 12, 31)),
            _ => None,
        };
        if rng.below(4) == 0 {
            let (district, _) = DISTRICTS[rng.below(DISTRICTS.len())];
            n.row_filter = Some(RowFilter {
                item: "residence_street".to_owned(),
                op: FilterOp::Prefix(district.to_owned()),
            });
        }
        if rng.below(5) < 2 {
            n.daily_quota = Some(1_000 * (1 + rng.below(50) as u32));
        }
        if rng.below(10) == 0 {
            n.clear_items = strings(&["citizen_id"]);
        }
        needs.push(n);
    }

    // Entry 1 bars health data on the population library for everyone; the
    // others vary in scope (items, modes, consumers) over other resources.
    let mut negatives = vec![NegativeEntry {
        id: 1,
        resource: POPULATION.to_owned(),
        items: strings(&["health_status"]),
        legal_basis: "《个人信息保护法》第二十八条".to_owned(),
        modes: Vec::new(),
        consumers: Vec::new(),
    }];
    for id in 2..=NEGATIVES as i64 {
        let i = id as usize;
        negatives.push(NegativeEntry {
            id,
            resource: resource_code(4 + (i * 29) % (RESOURCES - 4)),
            items: match i % 3 {
                0 => Vec::new(),
                1 => strings(&["religion"]),
                _ => strings(&["phone", "residence_address"]),
            },
            legal_basis: format!("沪府规〔2025〕{i}号"),
            modes: if i.is_multiple_of(2) {
                vec![Mode::Batch, Mode::Subscribe]
            } else {
                Vec::new()
            },
            consumers: if i.is_multiple_of(4) {
                vec![department(i * 7 % DEPARTMENTS)]
            } else {
                Vec::new()
            },
        });
    }

    PolicyInput {
        divisions: Default::default(),
        departments,
        resources,
        needs,
        negatives,
    }
}

/// The list entries a compile reads: departments, resources, their items,
/// needs and negative entries.
fn entries(input: &PolicyInput) -> usize {
    input.departments.len()
        + input.resources.len()
        + input.resources.iter().map(|r| r.items.len()).sum::<usize>()
        + input.needs.len()
        + input.negatives.len()
}

fn request<'a>(consumer: &'a str, items: &'a [String], mode: Mode) -> Request<'a> {
    Request {
        consumer,
        resource: POPULATION,
        items,
        matter: MATTER,
        mode,
        now: now(),
    }
}

fn released(d: &Decision) -> usize {
    d.items.iter().filter(|i| i.release.is_some()).count()
}

fn bench_compile(c: &mut Criterion) {
    let input = policy_input();
    let mut group = c.benchmark_group("compile");
    // One compile takes milliseconds: 20 flat samples fit the measurement time.
    group.sample_size(20).sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(entries(&input) as u64));
    // `compile` consumes its input: the clone is made outside the timing.
    group.bench_function("shanghai_scale", |b| {
        b.iter_batched(|| input.clone(), PolicySet::compile, BatchSize::LargeInput)
    });
    group.finish();
}

fn bench_decide(c: &mut Criterion) {
    let input = policy_input();
    // A registered department with no need on the population library.
    let stranger = (0..DEPARTMENTS)
        .map(department)
        .find(|d| {
            !input
                .needs
                .iter()
                .any(|n| &n.consumer == d && n.resource == POPULATION)
        })
        .expect("some department has no need on the population library");
    let set = PolicySet::compile(input);

    // The acceptance front office's usual ask: three conditional items
    // covered by its need (all masked) and two unconditional ones.
    let typical = strings(&[
        "citizen_id",
        "name",
        "residence_address",
        "gender",
        "residence_street",
    ]);
    let all: Vec<String> = Vec::new();
    let conditional = strings(&["citizen_id"]);
    let claimed = strings(&["citizen_id", "name", "phone"]);

    // Check that each case decides what its name says before timing it.
    let d = set.decide(&request(FRONT_OFFICE, &typical, Mode::Lookup));
    assert!(d.permitted && released(&d) == 5 && d.rule == Rule::Need(1));
    let d = set.decide(&request(FRONT_OFFICE, &all, Mode::Lookup));
    assert!(d.items.len() == ITEMS.len() && d.permitted);
    let d = set.decide(&request(&stranger, &conditional, Mode::Lookup));
    assert!(!d.permitted && d.rule == Rule::NoNeed);
    let d = set.decide(&request(FRONT_OFFICE, &claimed, Mode::Verify));
    assert!(
        d.items
            .iter()
            .all(|i| i.release == Some(Release::MatchOnly))
    );

    let mut group = c.benchmark_group("decide");
    let cases = [
        ("lookup_typical", FRONT_OFFICE, &typical, Mode::Lookup),
        ("lookup_all_items", FRONT_OFFICE, &all, Mode::Lookup),
        (
            "denied_no_need",
            stranger.as_str(),
            &conditional,
            Mode::Lookup,
        ),
        ("verify", FRONT_OFFICE, &claimed, Mode::Verify),
    ];
    for (name, consumer, items, mode) in cases {
        let req = request(consumer, items, mode);
        // The decision is returned, so its drop (freeing the per-item
        // strings) is timed too, as it is in the hub.
        group.bench_function(name, |b| b.iter(|| set.decide(black_box(&req))));
    }
    group.finish();
}

fn bench_mask(c: &mut Criterion) {
    let cases = [
        ("citizen_id", Mask::CitizenId, "310104199001011234"),
        ("chinese_name", Mask::ChineseName, "王小明"),
        ("phone", Mask::Phone, "13812345678"),
        (
            "address",
            Mask::Address,
            "上海市徐汇区漕溪北路1200弄3号601室",
        ),
        ("hash", Mask::Hash, "310104199001011234"),
    ];
    let mut group = c.benchmark_group("mask");
    // One buffer reused, as `enforce` does per column: no allocation per value.
    let mut out = String::with_capacity(64);
    for (name, mask, value) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                mask.apply_into(black_box(value), HASH_KEY, &mut out);
            })
        });
    }
    group.finish();
}

/// A 65,536-row slice of the population library: six Utf8 columns named as
/// its items, with valid citizen IDs, Chinese names (some with compound
/// surnames), mobile numbers, addresses, genders consistent with the IDs and
/// 12-digit street codes spread over the 16 districts.
fn population_batch() -> RecordBatch {
    const SURNAMES: [&str; 22] = [
        "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡",
        "郭", "何", "林", "罗", "高", "欧阳", "司马",
    ];
    const GIVEN: [&str; 20] = [
        "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
        "明", "超", "秀", "霞", "华",
    ];
    const ROADS: [&str; 8] = [
        "漕溪北路",
        "淮海中路",
        "南京西路",
        "世纪大道",
        "四平路",
        "虹桥路",
        "共和新路",
        "沪闵路",
    ];
    let mut rng = Lcg(65_536);
    let mut ids = Vec::with_capacity(BATCH_ROWS);
    let mut names = Vec::with_capacity(BATCH_ROWS);
    let mut phones = Vec::with_capacity(BATCH_ROWS);
    let mut addresses = Vec::with_capacity(BATCH_ROWS);
    let mut genders = Vec::with_capacity(BATCH_ROWS);
    let mut streets = Vec::with_capacity(BATCH_ROWS);
    for _ in 0..BATCH_ROWS {
        let (district, district_name) = DISTRICTS[rng.below(DISTRICTS.len())];
        let birth = utc(1940, 1, 1) + chrono::Duration::days(rng.below(25_000) as i64);
        let seq = rng.below(1_000);
        let first17 = format!("{district}{}{seq:03}", birth.format("%Y%m%d"));
        ids.push(format!("{first17}{}", citizen_id_check(first17.as_bytes())));
        genders.push(if seq % 2 == 1 { "男" } else { "女" });
        let mut name = SURNAMES[rng.below(SURNAMES.len())].to_owned();
        for _ in 0..1 + rng.below(2) {
            name.push_str(GIVEN[rng.below(GIVEN.len())]);
        }
        names.push(name);
        phones.push(format!(
            "1{}{:09}",
            [3, 5, 7, 8, 9][rng.below(5)],
            rng.below(1_000_000_000)
        ));
        addresses.push(format!(
            "上海市{district_name}{}{}弄{}号{}室",
            ROADS[rng.below(ROADS.len())],
            1 + rng.below(2_000),
            1 + rng.below(40),
            101 + rng.below(2_000)
        ));
        streets.push(format!("{district}{:03}000", 1 + rng.below(20)));
    }
    let columns: [(&str, ArrayRef); 6] = [
        ("citizen_id", Arc::new(StringArray::from(ids))),
        ("name", Arc::new(StringArray::from(names))),
        ("phone", Arc::new(StringArray::from(phones))),
        ("residence_address", Arc::new(StringArray::from(addresses))),
        ("gender", Arc::new(StringArray::from(genders))),
        ("residence_street", Arc::new(StringArray::from(streets))),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(name, _)| Field::new(*name, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, array)| array).collect(),
    )
    .unwrap()
}

fn bench_enforce(c: &mut Criterion) {
    let batch = population_batch();
    // What the typical decision above releases: five of the six columns,
    // the three personal ones under their directory masks.
    let projection = [
        ("citizen_id", Reveal::Masked(Mask::CitizenId)),
        ("name", Reveal::Masked(Mask::ChineseName)),
        ("residence_address", Reveal::Masked(Mask::Address)),
        ("gender", Reveal::Clear),
        ("residence_street", Reveal::Clear),
    ];
    // The typical need's obligation: residents of Xuhui (~1/16 of the rows).
    let filters = [RowFilter {
        item: "residence_street".to_owned(),
        op: FilterOp::Prefix("310104".to_owned()),
    }];

    let mut group = c.benchmark_group("enforce");
    // One call takes milliseconds: 20 flat samples fit the measurement time.
    group.sample_size(20).sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(BATCH_ROWS as u64));
    group.bench_function("project_and_mask_64k", |b| {
        b.iter(|| enforce::project_and_mask(black_box(&batch), &projection, HASH_KEY).unwrap())
    });
    group.bench_function("filter_rows_64k", |b| {
        b.iter(|| enforce::filter_rows(black_box(&batch), &filters).unwrap())
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_compile,
    bench_decide,
    bench_mask,
    bench_enforce
);
criterion_main!(benches);
