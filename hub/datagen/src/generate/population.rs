//! Population (人口基础信息, `101/000001`).
//!
//! Ages follow a Shanghai-like pyramid (0–95 at 2025-12-31); about 65 % of people
//! have their household registered in a Shanghai district (weighted by district
//! population), the rest in a real district of another province. The citizen ID
//! encodes the household division, the birth date and the gender, with the
//! GB 11643 check character; marital status, education and health follow age.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Builder, StringBuilder};
use arrow::record_batch::RecordBatch;
use chrono::{Datelike, NaiveDate};
use rand::Rng;
use tongban_policies::ids::citizen_id_check;

use super::addresses::Addresses;
use super::geo::Geo;
use super::{
    Arena, Dataset, Weighted, batch_lengths, dataset_rng, days_of, pick_weighted, push_mobile,
    vocab,
};

const SALT: u64 = 0x9e09_1e00_0000_0101;

/// The year ages are counted at: age = 2025 − birth year.
const AGE_YEAR: i32 = 2025;

pub(super) const EDUCATION: [&str; 9] = [
    "学龄前",
    "小学",
    "初中",
    "高中",
    "中专",
    "大专",
    "本科",
    "硕士研究生",
    "博士研究生",
];
/// Index of 本科 in [`EDUCATION`].
pub(super) const BACHELOR: u8 = 6;
const MARITAL: [&str; 4] = ["未婚", "已婚", "离异", "丧偶"];
const STATUS: [&str; 3] = ["正常", "迁出", "死亡"];
const HEALTH: [&str; 5] = ["健康", "良好", "一般", "慢性病", "残疾"];
const RELIGIONS: &[(&str, u32)] = &[
    ("无", 9200),
    ("佛教", 450),
    ("基督教", 220),
    ("天主教", 60),
    ("道教", 40),
    ("伊斯兰教", 30),
];

/// Age bands (first age, last age, weight).
const AGE_BANDS: &[(u32, u32, u32)] = &[
    (0, 4, 30),
    (5, 9, 40),
    (10, 14, 40),
    (15, 19, 35),
    (20, 24, 55),
    (25, 29, 75),
    (30, 34, 95),
    (35, 39, 90),
    (40, 44, 75),
    (45, 49, 70),
    (50, 54, 70),
    (55, 59, 75),
    (60, 64, 75),
    (65, 69, 65),
    (70, 74, 50),
    (75, 79, 30),
    (80, 84, 20),
    (85, 89, 12),
    (90, 95, 5),
];

/// What later datasets need to know about a citizen.
pub(super) struct Citizen {
    pub id: [u8; 18],
    /// Birth date, Date32.
    pub birth: i32,
    pub male: bool,
    /// Household registered in Shanghai.
    pub shanghai: bool,
    /// Status 正常 (not moved out, not dead).
    pub active: bool,
    /// Married, divorced or widowed.
    pub ever_married: bool,
    /// Index into [`EDUCATION`].
    pub education: u8,
    /// District index (into `Geo::districts`) of the residence address.
    pub residence_district: u8,
    /// Length in bytes of the surname at the start of the name.
    pub surname_len: u8,
}

impl Citizen {
    pub fn id_str(&self) -> &str {
        std::str::from_utf8(&self.id).expect("citizen ids are ASCII")
    }

    /// Age at 2025-12-31.
    pub fn age(&self) -> i32 {
        AGE_YEAR - super::date_of(self.birth).year()
    }
}

pub(super) struct Population {
    pub people: Vec<Citizen>,
    pub names: Arena,
}

impl Population {
    pub fn name(&self, i: usize) -> &str {
        self.names.get(i)
    }

    pub fn surname(&self, i: usize) -> &str {
        &self.names.get(i)[..self.people[i].surname_len as usize]
    }
}

/// Given-name character pools.
pub(super) struct NameChars {
    male_classic: Vec<char>,
    male_modern: Vec<char>,
    female_classic: Vec<char>,
    female_modern: Vec<char>,
    surnames: Weighted,
}

impl NameChars {
    pub fn new() -> NameChars {
        NameChars {
            male_classic: vocab::MALE_CLASSIC.chars().collect(),
            male_modern: vocab::MALE_MODERN.chars().collect(),
            female_classic: vocab::FEMALE_CLASSIC.chars().collect(),
            female_modern: vocab::FEMALE_MODERN.chars().collect(),
            surnames: Weighted::new(vocab::SURNAMES.iter().map(|&(_, w)| u64::from(w))),
        }
    }

    fn pool(&self, male: bool, modern: bool) -> &[char] {
        match (male, modern) {
            (true, false) => &self.male_classic,
            (true, true) => &self.male_modern,
            (false, false) => &self.female_classic,
            (false, true) => &self.female_modern,
        }
    }

    /// Appends a surname and a given name fitting gender and birth year; returns
    /// the surname's length in bytes.
    pub fn push_name(
        &self,
        rng: &mut impl Rng,
        male: bool,
        birth_year: i32,
        out: &mut String,
    ) -> u8 {
        let surname = vocab::SURNAMES[self.surnames.pick(rng)].0;
        out.push_str(surname);
        let cohort = match birth_year {
            ..1960 => 0,
            1960..1980 => 1,
            1980..2000 => 2,
            _ => 3,
        };
        if rng.random_bool(0.15) {
            let names = vocab::COHORT_NAMES[cohort][usize::from(!male)];
            out.push_str(names[rng.random_range(0..names.len())]);
            return surname.len() as u8;
        }
        let modern_share = [0.1, 0.2, 0.5, 0.85][cohort];
        let single_share = [0.3, 0.35, 0.3, 0.1][cohort];
        let p = self.pool(male, rng.random_bool(modern_share));
        let first = p[rng.random_range(0..p.len())];
        out.push(first);
        if !rng.random_bool(single_share) {
            let p = self.pool(male, rng.random_bool(modern_share));
            let mut second = p[rng.random_range(0..p.len())];
            // Reduplicated names (婷婷) only for women, and rarely.
            if second == first && (male || rng.random_bool(0.7)) {
                second = p[(p.iter().position(|&c| c == first).unwrap_or(0) + 1) % p.len()];
            }
            out.push(second);
        }
        surname.len() as u8
    }
}

fn put_digits(buf: &mut [u8], mut v: u32) {
    for b in buf.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

fn pick_index(rng: &mut impl Rng, weights: &[u32]) -> u8 {
    let total: u32 = weights.iter().sum();
    let mut r = rng.random_range(0..total);
    for (i, &w) in weights.iter().enumerate() {
        if r < w {
            return i as u8;
        }
        r -= w;
    }
    (weights.len() - 1) as u8
}

fn education(rng: &mut impl Rng, age: i32) -> u8 {
    let w: [u32; 9] = match age {
        ..=5 => return 0,
        6..=11 => return 1,
        12..=14 => return 2,
        15..=17 => [0, 0, 20, 60, 20, 0, 0, 0, 0],
        18..=21 => [0, 0, 10, 45, 15, 15, 15, 0, 0],
        22..=24 => [0, 1, 8, 16, 10, 22, 36, 7, 0],
        25..=44 => [0, 1, 9, 14, 8, 21, 35, 10, 2],
        45..=59 => [0, 5, 25, 28, 12, 14, 13, 2, 1],
        60..=74 => [0, 20, 35, 24, 7, 7, 6, 1, 0],
        _ => [0, 40, 30, 15, 5, 5, 4, 1, 0],
    };
    pick_index(rng, &w)
}

fn marital(rng: &mut impl Rng, age: i32, male: bool) -> u8 {
    // Legal marriage age: 22 for men, 20 for women.
    if age < if male { 22 } else { 20 } {
        return 0;
    }
    let w: [u32; 4] = match age {
        ..=24 => [85, 15, 0, 0],
        25..=29 => [55, 43, 2, 0],
        30..=34 => [25, 70, 5, 0],
        35..=59 => [7, 83, 8, 2],
        60..=69 => [3, 82, 6, 9],
        70..=79 => [2, 70, 4, 24],
        _ => [1, 48, 2, 49],
    };
    pick_index(rng, &w)
}

fn health(rng: &mut impl Rng, age: i32) -> u8 {
    let w: [u32; 5] = match age {
        ..=39 => [80, 15, 4, 1, 1],
        40..=59 => [55, 25, 10, 8, 2],
        60..=79 => [28, 26, 20, 22, 4],
        _ => [15, 20, 25, 33, 7],
    };
    pick_index(rng, &w)
}

fn status(rng: &mut impl Rng, age: i32) -> u8 {
    let w: [u32; 3] = match age {
        ..=69 => [972, 25, 3],
        70..=84 => [950, 10, 40],
        _ => [880, 5, 115],
    };
    pick_index(rng, &w)
}

fn religion(rng: &mut impl Rng, ethnicity: &str) -> &'static str {
    match ethnicity {
        "回族" | "维吾尔族" if rng.random_bool(0.85) => "伊斯兰教",
        "藏族" if rng.random_bool(0.8) => "佛教",
        _ => pick_weighted::<&str>(rng, RELIGIONS),
    }
}

pub(super) fn generate(
    seed: u64,
    n: usize,
    geo: &Geo,
    addresses: &Addresses,
    emit: &mut dyn FnMut(Dataset, RecordBatch),
) -> Population {
    let mut rng = dataset_rng(seed, SALT);
    let schema = Dataset::Population.schema();
    let chars = NameChars::new();
    let ages = Weighted::new(AGE_BANDS.iter().map(|&(_, _, w)| u64::from(w)));
    let sh_districts = Weighted::new(geo.districts.iter().map(|d| u64::from(d.population)));
    let others = Weighted::new(vocab::OTHER_DIVISIONS.iter().map(|&(_, _, w)| u64::from(w)));
    let ethnicities = Weighted::new(vocab::ETHNICITIES.iter().map(|&(_, w)| u64::from(w)));

    let mut seen: HashSet<u64> = HashSet::with_capacity(n);
    let mut out = Population {
        people: Vec::with_capacity(n),
        names: Arena::with_capacity(n, n * 9),
    };
    let mut name = String::with_capacity(16);
    let mut household = String::with_capacity(128);
    let mut phone = String::with_capacity(12);

    for len in batch_lengths(n) {
        let mut id_col = StringBuilder::with_capacity(len, len * 18);
        let mut name_col = StringBuilder::with_capacity(len, len * 9);
        let mut gender_col = StringBuilder::with_capacity(len, len * 3);
        let mut ethnicity_col = StringBuilder::with_capacity(len, len * 6);
        let mut birth_col = Date32Builder::with_capacity(len);
        let mut division_col = StringBuilder::with_capacity(len, len * 6);
        let mut household_col = StringBuilder::with_capacity(len, len * 72);
        let mut residence_col = StringBuilder::with_capacity(len, len * 72);
        let mut street_col = StringBuilder::with_capacity(len, len * 12);
        let mut phone_col = StringBuilder::with_capacity(len, len * 11);
        let mut marital_col = StringBuilder::with_capacity(len, len * 6);
        let mut education_col = StringBuilder::with_capacity(len, len * 6);
        let mut religion_col = StringBuilder::with_capacity(len, len * 3);
        let mut health_col = StringBuilder::with_capacity(len, len * 6);
        let mut status_col = StringBuilder::with_capacity(len, len * 6);

        for _ in 0..len {
            let male = rng.random_bool(0.51);
            let (first_age, last_age, _) = AGE_BANDS[ages.pick(&mut rng)];
            let age = rng.random_range(first_age..=last_age) as i32;
            let year = AGE_YEAR - age;
            let days_in_year = if NaiveDate::from_ymd_opt(year, 2, 29).is_some() {
                366
            } else {
                365
            };

            // Household division: a Shanghai district or another province's.
            let shanghai = rng.random_bool(0.65);
            let mut sh_district = 0usize;
            let mut other = 0usize;
            let mut pick_division = |rng: &mut rand_chacha::ChaCha8Rng| {
                if shanghai {
                    sh_district = sh_districts.pick(rng);
                    geo.districts[sh_district].code
                } else {
                    other = others.pick(rng);
                    vocab::OTHER_DIVISIONS[other].0
                }
            };
            let mut division = pick_division(&mut rng);

            // Birth date and sequence; redraw until the ID is new.
            let mut id = [0u8; 18];
            let mut birth = NaiveDate::from_yo_opt(year, rng.random_range(1..=days_in_year))
                .expect("valid ordinal");
            let mut attempts = 0u32;
            loop {
                let seq = if male {
                    rng.random_range(0..500u32) * 2 + 1
                } else {
                    rng.random_range(1..500u32) * 2
                };
                let date_num = birth.year() as u32 * 10_000 + birth.month() * 100 + birth.day();
                let division_num: u32 = division.parse().expect("numeric division code");
                let key = u64::from(division_num) * 100_000_000_000
                    + u64::from(date_num) * 1_000
                    + u64::from(seq);
                if seen.insert(key) {
                    id[..6].copy_from_slice(division.as_bytes());
                    put_digits(&mut id[6..14], date_num);
                    put_digits(&mut id[14..17], seq);
                    id[17] = citizen_id_check(&id[..17]) as u8;
                    break;
                }
                attempts += 1;
                if attempts.is_multiple_of(8) {
                    birth = NaiveDate::from_yo_opt(year, rng.random_range(1..=days_in_year))
                        .expect("valid ordinal");
                }
                if attempts.is_multiple_of(64) {
                    division = pick_division(&mut rng);
                }
            }
            let birth_days = days_of(birth);

            name.clear();
            let surname_len = chars.push_name(&mut rng, male, year, &mut name);
            let ethnicity = vocab::ETHNICITIES[ethnicities.pick(&mut rng)].0;

            // Household address: a generated address in the district for
            // Shanghai households, else a plausible address in that city.
            household.clear();
            let household_index = if shanghai {
                let a = addresses.random_in_district(&mut rng, sh_district);
                household.push_str(addresses.text.get(a));
                Some(a)
            } else {
                household.push_str(vocab::OTHER_DIVISIONS[other].1);
                let road = vocab::GENERIC_ROADS[rng.random_range(0..vocab::GENERIC_ROADS.len())];
                let _ = write!(household, "{road}{}号", rng.random_range(1..=600u32));
                if rng.random_bool(0.6) {
                    let _ = write!(
                        household,
                        "{}栋{}单元{}{:02}室",
                        rng.random_range(1..=30u32),
                        rng.random_range(1..=4u32),
                        rng.random_range(1..=18u32),
                        rng.random_range(1..=4u32)
                    );
                }
                None
            };
            let residence = match household_index {
                Some(a) if rng.random_bool(0.6) => a,
                _ => addresses.random(&mut rng),
            };
            let residence_street = &geo.streets[addresses.street[residence] as usize];

            phone.clear();
            push_mobile(&mut rng, &mut phone);
            let marital_status = marital(&mut rng, age, male);
            let education_level = education(&mut rng, age);
            let religion_name = religion(&mut rng, ethnicity);
            let health_status = health(&mut rng, age);
            let status_code = status(&mut rng, age);

            let id_str = std::str::from_utf8(&id).expect("ASCII id");
            id_col.append_value(id_str);
            name_col.append_value(&name);
            gender_col.append_value(if male { "男" } else { "女" });
            ethnicity_col.append_value(ethnicity);
            birth_col.append_value(birth_days);
            division_col.append_value(division);
            household_col.append_value(&household);
            residence_col.append_value(addresses.text.get(residence));
            street_col.append_value(&residence_street.code);
            phone_col.append_value(&phone);
            marital_col.append_value(MARITAL[marital_status as usize]);
            education_col.append_value(EDUCATION[education_level as usize]);
            religion_col.append_value(religion_name);
            health_col.append_value(HEALTH[health_status as usize]);
            status_col.append_value(STATUS[status_code as usize]);

            out.names.push(&name);
            out.people.push(Citizen {
                id,
                birth: birth_days,
                male,
                shanghai,
                active: status_code == 0,
                ever_married: marital_status != 0,
                education: education_level,
                residence_district: residence_street.district as u8,
                surname_len,
            });
        }

        let columns: Vec<ArrayRef> = vec![
            Arc::new(id_col.finish()),
            Arc::new(name_col.finish()),
            Arc::new(gender_col.finish()),
            Arc::new(ethnicity_col.finish()),
            Arc::new(birth_col.finish()),
            Arc::new(division_col.finish()),
            Arc::new(household_col.finish()),
            Arc::new(residence_col.finish()),
            Arc::new(street_col.finish()),
            Arc::new(phone_col.finish()),
            Arc::new(marital_col.finish()),
            Arc::new(education_col.finish()),
            Arc::new(religion_col.finish()),
            Arc::new(health_col.finish()),
            Arc::new(status_col.finish()),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)
            .expect("population batch matches its schema");
        emit(Dataset::Population, batch);
    }
    out
}
