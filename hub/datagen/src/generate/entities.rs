//! Legal entities (法人基础信息, `102/000001`).
//!
//! Each entity is registered at a generated address; its credit code carries that
//! address's district code, an organisation code (`MA…` for those registered since
//! the 2015 reform, older numeric ones before) and both check characters. The legal
//! representative is a generated, active adult citizen who was at least 18 when
//! the entity was established.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Builder, Decimal128Builder, StringBuilder};
use arrow::record_batch::RecordBatch;
use chrono::Datelike;
use rand::Rng;
use tongban_policies::ids::{CREDIT_CODE_CHARS, credit_code_check, org_code_check};

use super::addresses::Addresses;
use super::geo::Geo;
use super::population::Population;
use super::{
    Arena, Dataset, Weighted, add_months, batch_lengths, dataset_rng, push_mobile, random_day,
    vocab, ymd,
};

const SALT: u64 = 0xe271_7100_0000_0102;

/// How an entity type names itself and sizes its capital.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Company,
    StateOwned,
    JointStock,
    Listed,
    Foreign,
    Sole,
    LimitedPartnership,
    GeneralPartnership,
    Individual,
    Cooperative,
}

/// Entity types: name, second credit-code character (1 enterprise, 2 individual
/// business, 3 farmers' cooperative), style, weight.
const TYPES: &[(&str, u8, Style, u32)] = &[
    (
        "有限责任公司（自然人投资或控股）",
        b'1',
        Style::Company,
        4200,
    ),
    ("有限责任公司（自然人独资）", b'1', Style::Company, 900),
    (
        "有限责任公司（非自然人投资或控股的法人独资）",
        b'1',
        Style::Company,
        300,
    ),
    ("有限责任公司（国有独资）", b'1', Style::StateOwned, 30),
    (
        "股份有限公司（非上市、自然人投资或控股）",
        b'1',
        Style::JointStock,
        200,
    ),
    (
        "股份有限公司（上市、自然人投资或控股）",
        b'1',
        Style::Listed,
        20,
    ),
    (
        "有限责任公司（外商投资、非独资）",
        b'1',
        Style::Foreign,
        150,
    ),
    ("有限责任公司（外国法人独资）", b'1', Style::Foreign, 300),
    ("有限责任公司（港澳台法人独资）", b'1', Style::Foreign, 100),
    ("个人独资企业", b'1', Style::Sole, 350),
    ("有限合伙企业", b'1', Style::LimitedPartnership, 300),
    ("普通合伙企业", b'1', Style::GeneralPartnership, 50),
    ("个体工商户", b'2', Style::Individual, 3000),
    ("农民专业合作社", b'3', Style::Cooperative, 100),
];

const STATUS: [&str; 4] = ["存续", "在业", "吊销", "注销"];

/// Two-digit starts of pre-2015 numeric organisation codes.
const OLD_ORG_PREFIXES: &[&str] = &[
    "13", "60", "63", "66", "67", "68", "69", "70", "73", "74", "75", "76", "77", "78", "79",
];

const SOLE_SUFFIXES: &[&str] = &["商行", "经营部", "服务部", "工作室"];

/// What later datasets need to know about an entity.
pub(super) struct Entity {
    pub code: [u8; 18],
    /// District index (into `Geo::districts`).
    pub district: u8,
    /// Established date, Date32.
    pub established: i32,
    /// Sells or serves food (holds a 食品经营许可证).
    pub food: bool,
}

impl Entity {
    pub fn code_str(&self) -> &str {
        std::str::from_utf8(&self.code).expect("credit codes are ASCII")
    }
}

pub(super) struct Entities {
    pub list: Vec<Entity>,
    pub names: Arena,
}

/// Packs an 8-character organisation code body into an integer (base 36).
fn org_key(body: &[u8; 8]) -> u64 {
    body.iter().fold(0u64, |acc, &c| {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            _ => c - b'A' + 10,
        };
        acc * 36 + u64::from(v)
    })
}

/// Registered capital in 万元 with two decimals, as the Decimal128 integer (×100).
fn capital(rng: &mut impl Rng, style: Style) -> i128 {
    fn choose(rng: &mut impl Rng, table: &[(i128, u32)]) -> i128 {
        *super::pick_weighted(rng, table) * 100
    }
    fn jitter(rng: &mut impl Rng, cents: i128) -> i128 {
        ((cents as f64) * rng.random_range(0.6..1.6)).round() as i128
    }
    match style {
        Style::Company => {
            let v = choose(
                rng,
                &[
                    (3, 2),
                    (5, 3),
                    (10, 12),
                    (20, 6),
                    (30, 6),
                    (50, 12),
                    (100, 20),
                    (200, 10),
                    (300, 6),
                    (500, 10),
                    (1000, 8),
                    (2000, 3),
                    (3000, 1),
                    (5000, 2),
                    (10000, 1),
                ],
            );
            if rng.random_bool(0.1) {
                jitter(rng, v)
            } else {
                v
            }
        }
        Style::StateOwned => choose(rng, &[(5000, 3), (10000, 4), (50000, 2), (100000, 1)]),
        Style::JointStock => choose(
            rng,
            &[
                (500, 2),
                (1000, 4),
                (2000, 3),
                (5000, 3),
                (10000, 2),
                (20000, 1),
            ],
        ),
        Style::Listed => rng.random_range(1_000_000..=50_000_000i128),
        Style::Foreign => {
            // Capital subscribed in US dollars, recorded in yuan.
            let usd = choose(
                rng,
                &[(50, 2), (100, 4), (200, 3), (500, 3), (1000, 2), (3000, 1)],
            );
            (usd as f64 * rng.random_range(6.1..7.3)).round() as i128
        }
        Style::Sole => choose(
            rng,
            &[(1, 3), (3, 2), (5, 3), (10, 4), (30, 2), (50, 2), (100, 1)],
        ),
        Style::LimitedPartnership => choose(
            rng,
            &[
                (100, 3),
                (500, 3),
                (1000, 4),
                (3000, 2),
                (10000, 2),
                (50000, 1),
            ],
        ),
        Style::GeneralPartnership => choose(rng, &[(10, 3), (30, 2), (50, 2), (100, 2)]),
        Style::Individual => *super::pick_weighted(
            rng,
            &[
                (50, 3),
                (100, 5),
                (200, 3),
                (300, 4),
                (500, 5),
                (1000, 3),
                (2000, 1),
                (3000, 1),
            ],
        ),
        Style::Cooperative => choose(rng, &[(10, 2), (50, 3), (100, 3), (200, 2), (500, 1)]),
    }
}

/// Established date: more entities in recent years, individual businesses most so.
fn established(rng: &mut impl Rng, style: Style, years: &Weighted, recent: &Weighted) -> i32 {
    let table = if style == Style::Individual {
        recent
    } else {
        years
    };
    let year = 1990 + table.pick(rng) as i32;
    random_day(rng, ymd(year, 1, 1), ymd(year, 12, 31))
}

pub(super) fn generate(
    seed: u64,
    n: usize,
    geo: &Geo,
    addresses: &Addresses,
    population: &Population,
    emit: &mut dyn FnMut(Dataset, RecordBatch),
) -> Entities {
    let mut rng = dataset_rng(seed, SALT);
    let schema = Dataset::LegalEntities.schema();
    let types = Weighted::new(TYPES.iter().map(|t| u64::from(t.3)));
    let shops = Weighted::new(vocab::SHOPS.iter().map(|s| u64::from(s.3)));
    let years = Weighted::new((1990..=2025u64).map(|y| 10 + (y - 1990) * 3));
    let recent = Weighted::new((1990..=2025u64).map(|y| 1 + (y - 1990) * (y - 1990)));
    let rural = Weighted::new(geo.districts.iter().map(|d| {
        if d.central {
            0
        } else {
            u64::from(d.population)
        }
    }));
    let trade_chars: Vec<char> = vocab::TRADE_NAME_CHARS.chars().collect();

    // Active citizens aged 22–75 may represent an entity; fall back to anyone
    // adult, then anyone, for tiny populations.
    let mut reps: Vec<u32> = (0..population.people.len() as u32)
        .filter(|&i| {
            let c = &population.people[i as usize];
            c.active && (22..=75).contains(&c.age())
        })
        .collect();
    if reps.is_empty() {
        reps = (0..population.people.len() as u32)
            .filter(|&i| population.people[i as usize].age() >= 18)
            .collect();
    }
    if reps.is_empty() {
        reps = (0..population.people.len() as u32).collect();
    }

    let reform = ymd(2015, 10, 1);
    let last_day = ymd(2025, 12, 31);
    let mut orgs: HashSet<u64> = HashSet::with_capacity(n);
    let mut names: HashSet<String> = HashSet::with_capacity(n);
    let mut out = Entities {
        list: Vec::with_capacity(n),
        names: Arena::with_capacity(n, n * 36),
    };
    let mut name = String::with_capacity(96);
    let mut trade = String::with_capacity(16);
    let mut scope = String::with_capacity(512);
    let mut phone = String::with_capacity(16);

    for len in batch_lengths(n) {
        let mut code_col = StringBuilder::with_capacity(len, len * 18);
        let mut name_col = StringBuilder::with_capacity(len, len * 36);
        let mut type_col = StringBuilder::with_capacity(len, len * 48);
        let mut rep_col = StringBuilder::with_capacity(len, len * 9);
        let mut rep_id_col = StringBuilder::with_capacity(len, len * 18);
        let mut capital_col = Decimal128Builder::with_capacity(len)
            .with_precision_and_scale(18, 2)
            .expect("valid decimal precision");
        let mut date_col = Date32Builder::with_capacity(len);
        let mut scope_col = StringBuilder::with_capacity(len, len * 200);
        let mut address_col = StringBuilder::with_capacity(len, len * 72);
        let mut division_col = StringBuilder::with_capacity(len, len * 6);
        let mut status_col = StringBuilder::with_capacity(len, len * 6);
        let mut phone_col = StringBuilder::with_capacity(len, len * 13);

        for _ in 0..len {
            let (type_name, kind, style, _) = TYPES[types.pick(&mut rng)];
            let address = if style == Style::Cooperative {
                let d = rural.pick(&mut rng);
                addresses.random_in_district(&mut rng, d)
            } else {
                addresses.random(&mut rng)
            };
            let street = &geo.streets[addresses.street[address] as usize];
            let district = &geo.districts[street.district];

            let rep = reps[rng.random_range(0..reps.len())] as usize;
            let rep_citizen = &population.people[rep];
            let adult_from = add_months(rep_citizen.birth, 18 * 12);
            let mut est = established(&mut rng, style, &years, &recent);
            if est < adult_from {
                est = random_day(&mut rng, adult_from, last_day);
            }

            // Organisation code: unique across all entities.
            let mut body = [0u8; 8];
            loop {
                if est >= reform {
                    body[0] = b'M';
                    body[1] = b'A';
                    for b in &mut body[2..] {
                        *b = CREDIT_CODE_CHARS[rng.random_range(0..CREDIT_CODE_CHARS.len())];
                    }
                } else if style == Style::Individual {
                    body[0] = b'L';
                    for b in &mut body[1..] {
                        *b = b'0' + rng.random_range(0..10u8);
                    }
                } else {
                    let prefix = OLD_ORG_PREFIXES[rng.random_range(0..OLD_ORG_PREFIXES.len())];
                    body[..2].copy_from_slice(prefix.as_bytes());
                    for b in &mut body[2..] {
                        *b = b'0' + rng.random_range(0..10u8);
                    }
                }
                if orgs.insert(org_key(&body)) {
                    break;
                }
            }
            let mut code = [0u8; 18];
            code[0] = b'9';
            code[1] = kind;
            code[2..8].copy_from_slice(district.code.as_bytes());
            code[8..16].copy_from_slice(&body);
            code[16] = org_code_check(&body) as u8;
            code[17] = credit_code_check(&code[..17]) as u8;

            // Line of business and business scope.
            scope.clear();
            let (segment, food) = match style {
                Style::Individual => {
                    let (shop, text, food, _) = vocab::SHOPS[shops.pick(&mut rng)];
                    scope.push_str(text);
                    (shop, food)
                }
                Style::Cooperative => {
                    let product =
                        vocab::COOP_PRODUCTS[rng.random_range(0..vocab::COOP_PRODUCTS.len())];
                    let _ = write!(
                        scope,
                        "组织采购、供应成员所需的农业生产资料；组织收购、销售成员生产的{product}；开展与农业生产经营有关的技术培训、技术交流和信息咨询服务。"
                    );
                    (product, false)
                }
                Style::LimitedPartnership | Style::GeneralPartnership => {
                    let (activity, text) = vocab::PARTNERSHIP_ACTIVITIES
                        [rng.random_range(0..vocab::PARTNERSHIP_ACTIVITIES.len())];
                    scope.push_str(text);
                    (activity, false)
                }
                _ => {
                    let (industry, text, food) =
                        vocab::INDUSTRIES[rng.random_range(0..vocab::INDUSTRIES.len())];
                    scope.push_str(text);
                    (industry, food)
                }
            };
            scope.push_str(vocab::SCOPE_SUFFIX);

            // Name: unique across all entities.
            let sole_suffix = SOLE_SUFFIXES[rng.random_range(0..SOLE_SUFFIXES.len())];
            let town = street
                .name
                .strip_suffix("街道")
                .or_else(|| street.name.strip_suffix('镇'))
                .unwrap_or(street.name);
            let mut attempt = 0u32;
            loop {
                trade.clear();
                let trade_len = match attempt {
                    0..=7 if rng.random_bool(0.85) => 2,
                    0..=31 => 3,
                    _ => 4,
                };
                for _ in 0..trade_len {
                    trade.push(trade_chars[rng.random_range(0..trade_chars.len())]);
                }
                name.clear();
                match style {
                    Style::Company | Style::StateOwned => {
                        let _ = write!(name, "上海{trade}{segment}有限公司");
                    }
                    Style::JointStock | Style::Listed => {
                        let _ = write!(name, "上海{trade}{segment}股份有限公司");
                    }
                    Style::Foreign => {
                        if rng.random_bool(0.5) {
                            let _ = write!(name, "{trade}{segment}（上海）有限公司");
                        } else {
                            let _ = write!(name, "上海{trade}{segment}有限公司");
                        }
                    }
                    Style::Sole => {
                        let _ = write!(name, "上海{trade}{segment}{sole_suffix}");
                    }
                    Style::LimitedPartnership => {
                        let _ = write!(name, "上海{trade}{segment}合伙企业（有限合伙）");
                    }
                    Style::GeneralPartnership => {
                        let _ = write!(name, "上海{trade}{segment}中心（普通合伙）");
                    }
                    Style::Individual => {
                        if attempt < 2 && rng.random_bool(0.4) {
                            let surname = population.surname(rep);
                            let _ = write!(name, "上海{}{surname}记{segment}", district.name);
                        } else {
                            let _ = write!(name, "上海{}{trade}{segment}", district.name);
                        }
                    }
                    Style::Cooperative => {
                        if attempt == 0 {
                            let _ = write!(name, "上海{town}{segment}专业合作社");
                        } else {
                            let _ = write!(name, "上海{town}{trade}{segment}专业合作社");
                        }
                    }
                }
                if attempt >= 1000 {
                    // Practically unreachable; guarantees termination.
                    let _ = write!(name, "（{attempt}）");
                }
                if !names.contains(name.as_str()) {
                    names.insert(name.clone());
                    break;
                }
                attempt += 1;
            }

            let status = {
                let w: [u32; 4] = match super::date_of(est).year() {
                    ..2005 => [55, 10, 15, 20],
                    2005..2016 => [70, 12, 6, 12],
                    _ => [80, 13, 2, 5],
                };
                *super::pick_weighted(
                    &mut rng,
                    &[
                        (STATUS[0], w[0]),
                        (STATUS[1], w[1]),
                        (STATUS[2], w[2]),
                        (STATUS[3], w[3]),
                    ],
                )
            };

            phone.clear();
            let mobile_share = match style {
                Style::Individual | Style::Sole | Style::Cooperative => 0.85,
                _ => 0.35,
            };
            if rng.random_bool(mobile_share) {
                push_mobile(&mut rng, &mut phone);
            } else {
                let first = [3u32, 5, 6][rng.random_range(0..3)];
                let _ = write!(
                    phone,
                    "021-{first}{:07}",
                    rng.random_range(0..10_000_000u32)
                );
            }

            let code_str = std::str::from_utf8(&code).expect("ASCII code");
            code_col.append_value(code_str);
            name_col.append_value(&name);
            type_col.append_value(type_name);
            rep_col.append_value(population.name(rep));
            rep_id_col.append_value(population.people[rep].id_str());
            capital_col.append_value(capital(&mut rng, style));
            date_col.append_value(est);
            scope_col.append_value(&scope);
            address_col.append_value(addresses.text.get(address));
            division_col.append_value(district.code);
            status_col.append_value(status);
            phone_col.append_value(&phone);

            out.names.push(&name);
            out.list.push(Entity {
                code,
                district: street.district as u8,
                established: est,
                food,
            });
        }

        let columns: Vec<ArrayRef> = vec![
            Arc::new(code_col.finish()),
            Arc::new(name_col.finish()),
            Arc::new(type_col.finish()),
            Arc::new(rep_col.finish()),
            Arc::new(rep_id_col.finish()),
            Arc::new(capital_col.finish()),
            Arc::new(date_col.finish()),
            Arc::new(scope_col.finish()),
            Arc::new(address_col.finish()),
            Arc::new(division_col.finish()),
            Arc::new(status_col.finish()),
            Arc::new(phone_col.finish()),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)
            .expect("legal entities batch matches its schema");
        emit(Dataset::LegalEntities, batch);
    }
    out
}
