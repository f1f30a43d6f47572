//! Electronic licences (电子证照, `104/000001`).
//!
//! Business licences and food-business permits are held by generated entities
//! (each entity in turn, then around again); the other five kinds by generated
//! active citizens who fit them (adults drive, only non-Shanghai households hold a
//! residence permit, only married people a marriage certificate, doctors have a
//! degree). Validity periods are type-appropriate; the status is computed at
//! [`REFERENCE_DATE`](super::REFERENCE_DATE). Every licence is sealed by its
//! issuer: an SM2 signature of its core fields (see
//! [`issuer_seal_key`](super::issuer_seal_key)); the seals of a batch are
//! made on every core at once (an SM2 signature costs tens of microseconds).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Builder, StringBuilder};
use arrow::record_batch::RecordBatch;
use chrono::Datelike;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::entities::Entities;
use super::geo::Geo;
use super::population::{BACHELOR, Population};
use super::{
    Dataset, Weighted, add_months, batch_lengths, dataset_rng, date_of, issuer_seal_key,
    push_iso_date, random_day, reference_days, ymd,
};
use tongban_core::seal::{self, LicenceFields, SealKey};

const SALT: u64 = 0x11ce_0ce5_0000_0104;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Business,
    Food,
    Driving,
    Residence,
    Marriage,
    Physician,
    Qualification,
}

struct LicenceType {
    kind: Kind,
    prefix: &'static str,
    name: &'static str,
    entity: bool,
    issuer_code: &'static str,
    issuer_name: &'static str,
    weight: u64,
}

const fn t(
    kind: Kind,
    prefix: &'static str,
    name: &'static str,
    entity: bool,
    issuer: (&'static str, &'static str),
    weight: u64,
) -> LicenceType {
    LicenceType {
        kind,
        prefix,
        name,
        entity,
        issuer_code: issuer.0,
        issuer_name: issuer.1,
        weight,
    }
}

const SCJGJ: (&str, &str) = ("sh-scjgj", "上海市市场监督管理局");
const GAJ: (&str, &str) = ("sh-gaj", "上海市公安局");
const MZJ: (&str, &str) = ("sh-mzj", "上海市民政局");
const WJW: (&str, &str) = ("sh-wjw", "上海市卫生健康委员会");
const RSJ: (&str, &str) = ("sh-rsj", "上海市人力资源和社会保障局");

/// The departments that issue the demo's licences.
pub(super) fn issuer_codes() -> Vec<&'static str> {
    let mut codes: Vec<&str> = TYPES.iter().map(|t| t.issuer_code).collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// Seals `messages` (issuer index by type, text) on every core.
fn seal_all(keys: &[SealKey], messages: &[(usize, String)]) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = messages.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = messages
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(ti, text)| keys[*ti].sign(text))
                        .collect::<Vec<String>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("sealing does not panic"))
            .collect()
    })
}

/// Licence types; entity-held ones make up 40 %.
const TYPES: [LicenceType; 7] = [
    t(Kind::Business, "YZ", "营业执照", true, SCJGJ, 28),
    t(Kind::Food, "JY", "食品经营许可证", true, SCJGJ, 12),
    t(Kind::Driving, "JZ", "机动车驾驶证", false, GAJ, 25),
    t(Kind::Residence, "JZZ", "居住证", false, GAJ, 15),
    t(Kind::Marriage, "JH", "结婚证", false, MZJ, 10),
    t(Kind::Physician, "YS", "医师执业证书", false, WJW, 3),
    t(Kind::Qualification, "ZG", "职业资格证书", false, RSJ, 7),
];

/// Hands out the members of a pool in a shuffled order, then around again, so
/// holders repeat only once the pool is used up.
struct Cycle {
    order: Vec<u32>,
    next: usize,
}

impl Cycle {
    fn new(rng: &mut ChaCha8Rng, mut order: Vec<u32>, fallback: usize) -> Cycle {
        if order.is_empty() {
            order = (0..fallback as u32).collect();
        }
        for i in (1..order.len()).rev() {
            let j = rng.random_range(0..=i);
            order.swap(i, j);
        }
        Cycle { order, next: 0 }
    }

    fn take(&mut self) -> usize {
        let v = self.order[self.next % self.order.len()];
        self.next += 1;
        v as usize
    }
}

/// A `from + years - 1 day` validity end, Date32.
fn years_after(from: i32, years: u32) -> i32 {
    add_months(from, years * 12) - 1
}

pub(super) fn generate(
    seed: u64,
    n: usize,
    geo: &Geo,
    population: &Population,
    entities: &Entities,
    emit: &mut dyn FnMut(Dataset, RecordBatch),
) {
    let mut rng = dataset_rng(seed, SALT);
    let schema = Dataset::Licences.schema();
    let types = Weighted::new(TYPES.iter().map(|t| t.weight));
    let keys: Vec<SealKey> = TYPES
        .iter()
        .map(|t| issuer_seal_key(t.issuer_code))
        .collect();

    let people = &population.people;
    let citizens = people.len();
    let pool = |f: &dyn Fn(&super::population::Citizen) -> bool| -> Vec<u32> {
        (0..citizens as u32)
            .filter(|&i| f(&people[i as usize]))
            .collect()
    };
    let mut drivers = Cycle::new(
        &mut rng,
        pool(&|c| c.active && (18..=80).contains(&c.age())),
        citizens,
    );
    let mut residents = Cycle::new(
        &mut rng,
        pool(&|c| c.active && !c.shanghai && c.age() >= 16),
        citizens,
    );
    let mut married = Cycle::new(&mut rng, pool(&|c| c.active && c.ever_married), citizens);
    let mut physicians = Cycle::new(
        &mut rng,
        pool(&|c| c.active && (25..=70).contains(&c.age()) && c.education >= BACHELOR),
        citizens,
    );
    let mut workers = Cycle::new(
        &mut rng,
        pool(&|c| c.active && (18..=65).contains(&c.age())),
        citizens,
    );
    let all_entities = entities.list.len();
    let mut businesses = Cycle::new(&mut rng, (0..all_entities as u32).collect(), all_entities);
    let food_entities: Vec<u32> = (0..all_entities as u32)
        .filter(|&i| entities.list[i as usize].food)
        .collect();
    let mut food = Cycle::new(&mut rng, food_entities, all_entities);

    let reference = reference_days();
    let last_day = reference - 1;
    let mut sequences: HashMap<(u8, u8, i32), u32> = HashMap::new();
    let mut number = String::with_capacity(32);
    let (mut issued, mut starts, mut ends) = (String::new(), String::new(), String::new());

    for len in batch_lengths(n) {
        let mut no_col = StringBuilder::with_capacity(len, len * 24);
        let mut type_col = StringBuilder::with_capacity(len, len * 15);
        let mut holder_type_col = StringBuilder::with_capacity(len, len * 7);
        let mut holder_id_col = StringBuilder::with_capacity(len, len * 18);
        let mut holder_name_col = StringBuilder::with_capacity(len, len * 18);
        let mut issuer_code_col = StringBuilder::with_capacity(len, len * 8);
        let mut issuer_name_col = StringBuilder::with_capacity(len, len * 24);
        let mut issue_col = Date32Builder::with_capacity(len);
        let mut from_col = Date32Builder::with_capacity(len);
        let mut to_col = Date32Builder::with_capacity(len);
        let mut status_col = StringBuilder::with_capacity(len, len * 7);
        let mut messages: Vec<(usize, String)> = Vec::with_capacity(len);

        for _ in 0..len {
            let ti = types.pick(&mut rng);
            let lt = &TYPES[ti];

            // Holder, its district (for the number) and the dates.
            let (holder_id, holder_name, district, issue, from, to) = if lt.entity {
                let e = if lt.kind == Kind::Business {
                    businesses.take()
                } else {
                    food.take()
                };
                let entity = &entities.list[e];
                let est = entity.established;
                let (issue, from, to) = if lt.kind == Kind::Business {
                    let issue = if rng.random_bool(0.35) {
                        random_day(&mut rng, est, last_day)
                    } else {
                        est
                    };
                    let to = if rng.random_bool(0.7) {
                        None
                    } else {
                        Some(years_after(est, [10, 20, 30][rng.random_range(0..3)]))
                    };
                    (issue, est, to)
                } else {
                    // Food-business permits run for five years.
                    let from = (reference - rng.random_range(1..=6 * 365)).max(est);
                    (from, from, Some(years_after(from, 5)))
                };
                (
                    entity.code_str(),
                    entities.names.get(e),
                    entity.district,
                    issue,
                    from,
                    to,
                )
            } else {
                let c = match lt.kind {
                    Kind::Driving => drivers.take(),
                    Kind::Residence => residents.take(),
                    Kind::Marriage => married.take(),
                    Kind::Physician => physicians.take(),
                    _ => workers.take(),
                };
                let citizen = &people[c];
                let after_years = |years: u32| add_months(citizen.birth, years * 12);
                let (from, to) = match lt.kind {
                    Kind::Driving => {
                        // 6 years, then 10, then long-term for older drivers.
                        if citizen.age() >= 40 && rng.random_bool(0.3) {
                            let from = reference - rng.random_range(1..=15 * 365);
                            (from.max(after_years(18)), None)
                        } else {
                            let years = if rng.random_bool(0.5) { 6 } else { 10 };
                            let back = rng.random_range(1..=(years as i32 + 1) * 365);
                            let from = (reference - back).max(after_years(18));
                            (from, Some(years_after(from, years)))
                        }
                    }
                    Kind::Residence => {
                        let from = (reference - rng.random_range(1..=430)).max(citizen.birth);
                        (from, Some(years_after(from, 1)))
                    }
                    Kind::Marriage => {
                        // Married within about 12 years of the legal age.
                        let legal = after_years(if citizen.male { 22 } else { 20 });
                        let day = legal + rng.random_range(0..12 * 365);
                        (day.min(random_day(&mut rng, legal, last_day)), None)
                    }
                    Kind::Physician => {
                        let start = after_years(25).max(ymd(1999, 5, 1));
                        (random_day(&mut rng, start, last_day), None)
                    }
                    _ => {
                        if rng.random_bool(0.6) {
                            let start = after_years(18).max(ymd(2000, 1, 1));
                            (random_day(&mut rng, start, last_day), None)
                        } else {
                            let from =
                                (reference - rng.random_range(1..=4 * 365)).max(after_years(18));
                            (from, Some(years_after(from, 3)))
                        }
                    }
                };
                (
                    citizen.id_str(),
                    population.name(c),
                    citizen.residence_district,
                    from,
                    from,
                    to,
                )
            };
            // Tiny fallback pools could push a date past the last day; clamp.
            let from = from.min(last_day);
            let issue = issue.clamp(from, last_day);
            let to = to.map(|t| t.max(from));

            let year = date_of(issue).year();
            // Each (type, district, year) numbers on from its own random start.
            let sequence = sequences
                .entry((ti as u8, district, year))
                .or_insert_with(|| rng.random_range(0..400_000));
            *sequence += 1;
            number.clear();
            let _ = write!(
                number,
                "{}{}{year:04}{:07}",
                lt.prefix, geo.districts[district as usize].code, *sequence
            );

            let status = match to {
                Some(t) if t < reference => "expired",
                _ if rng.random_bool(0.02) => "revoked",
                _ => "valid",
            };

            for (out, day) in [
                (&mut issued, Some(issue)),
                (&mut starts, Some(from)),
                (&mut ends, to),
            ] {
                out.clear();
                if let Some(day) = day {
                    push_iso_date(out, day);
                }
            }
            let mut message = String::with_capacity(256);
            seal::message(
                &LicenceFields {
                    licence_no: &number,
                    licence_type: lt.name,
                    holder_id,
                    holder_name,
                    issuer_code: lt.issuer_code,
                    issue_date: &issued,
                    valid_from: &starts,
                    valid_to: &ends,
                },
                &mut message,
            );
            messages.push((ti, message));

            no_col.append_value(&number);
            type_col.append_value(lt.name);
            holder_type_col.append_value(if lt.entity { "entity" } else { "citizen" });
            holder_id_col.append_value(holder_id);
            holder_name_col.append_value(holder_name);
            issuer_code_col.append_value(lt.issuer_code);
            issuer_name_col.append_value(lt.issuer_name);
            issue_col.append_value(issue);
            from_col.append_value(from);
            to_col.append_option(to);
            status_col.append_value(status);
        }
        let mut signature_col = StringBuilder::with_capacity(len, len * 128);
        for seal in seal_all(&keys, &messages) {
            signature_col.append_value(seal);
        }

        let columns: Vec<ArrayRef> = vec![
            Arc::new(no_col.finish()),
            Arc::new(type_col.finish()),
            Arc::new(holder_type_col.finish()),
            Arc::new(holder_id_col.finish()),
            Arc::new(holder_name_col.finish()),
            Arc::new(issuer_code_col.finish()),
            Arc::new(issuer_name_col.finish()),
            Arc::new(issue_col.finish()),
            Arc::new(from_col.finish()),
            Arc::new(to_col.finish()),
            Arc::new(status_col.finish()),
            Arc::new(signature_col.finish()),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)
            .expect("licences batch matches its schema");
        emit(Dataset::Licences, batch);
    }
}
