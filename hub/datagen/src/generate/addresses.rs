//! Standard addresses (标准地址, `103/000002`).
//!
//! Each address lies on one of its street's roads, with a point strictly inside the
//! street's rectangle; streets are drawn in proportion to their district's
//! population. Full address strings are unique.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Builder, StringBuilder};
use arrow::record_batch::RecordBatch;
use rand::Rng;

use super::geo::Geo;
use super::{Arena, Dataset, Weighted, batch_lengths, dataset_rng};

const SALT: u64 = 0xadd5_0000_0000_0002;

/// The generated addresses, kept for the later datasets.
pub(super) struct Addresses {
    /// Full address strings, in row order.
    pub text: Arena,
    /// Street index (into `Geo::streets`) of each address.
    pub street: Vec<u16>,
    /// Address indices per district (index into `Geo::districts`).
    pub by_district: Vec<Vec<u32>>,
}

impl Addresses {
    pub fn len(&self) -> usize {
        self.street.len()
    }

    /// A uniformly drawn address index.
    pub fn random(&self, rng: &mut impl Rng) -> usize {
        rng.random_range(0..self.len())
    }

    /// An address in district `d`, or any address if it has none.
    pub fn random_in_district(&self, rng: &mut impl Rng, d: usize) -> usize {
        let list = &self.by_district[d];
        if list.is_empty() {
            self.random(rng)
        } else {
            list[rng.random_range(0..list.len())] as usize
        }
    }
}

/// A multiplier coprime to 10^10, so `i -> (i * M + offset) mod 10^10` is a bijection.
const ID_MULTIPLIER: u128 = 6_364_136_223;
const ID_MODULUS: u128 = 10_000_000_000;

pub(super) fn generate(
    seed: u64,
    n: usize,
    geo: &Geo,
    emit: &mut dyn FnMut(Dataset, RecordBatch),
) -> Addresses {
    let mut rng = dataset_rng(seed, SALT);
    let street_weights = Weighted::new(geo.streets.iter().map(|s| {
        let d = &geo.districts[s.district];
        u64::from(d.population) * 10_000 / d.streets.len() as u64
    }));
    let id_offset = u128::from(rng.random_range(0..10_000_000_000u64));
    let schema = Dataset::Addresses.schema();
    let mut seen: HashSet<u64> = HashSet::with_capacity(n);
    let mut out = Addresses {
        text: Arena::with_capacity(n, n * 72),
        street: Vec::with_capacity(n),
        by_district: vec![Vec::new(); geo.districts.len()],
    };
    let mut text = String::with_capacity(128);
    let mut house = String::with_capacity(16);
    let mut id = String::with_capacity(12);
    let mut row: u128 = 0;

    for len in batch_lengths(n) {
        let mut address_id = StringBuilder::with_capacity(len, len * 12);
        let mut address = StringBuilder::with_capacity(len, len * 72);
        let mut district_code = StringBuilder::with_capacity(len, len * 6);
        let mut street_code = StringBuilder::with_capacity(len, len * 12);
        let mut road_col = StringBuilder::with_capacity(len, len * 12);
        let mut house_col = StringBuilder::with_capacity(len, len * 8);
        let mut lon = Float64Builder::with_capacity(len);
        let mut lat = Float64Builder::with_capacity(len);

        for _ in 0..len {
            // Draw until the (street, road, number, building, room) tuple is new;
            // distinct tuples give distinct address strings.
            let (si, road, number, building, room) = loop {
                let si = street_weights.pick(&mut rng);
                let road = rng.random_range(0..geo.streets[si].roads.len());
                let number: u32 = if rng.random_bool(0.7) {
                    rng.random_range(1..=500)
                } else {
                    rng.random_range(501..=1999)
                };
                let form = rng.random_range(0..100u32);
                let (building, room) = if form < 35 {
                    (0, 0)
                } else if form < 60 {
                    (0, random_room(&mut rng))
                } else {
                    (rng.random_range(1..=40u32), random_room(&mut rng))
                };
                let key = (si as u64) << 48
                    | (road as u64) << 40
                    | u64::from(number) << 24
                    | u64::from(building) << 16
                    | u64::from(room);
                if seen.insert(key) {
                    break (si, road, number, building, room);
                }
            };
            let street = &geo.streets[si];
            let district = &geo.districts[street.district];
            let road_name = street.roads[road];

            house.clear();
            let _ = write!(house, "{number}号");
            text.clear();
            text.push_str("上海市");
            text.push_str(district.name);
            text.push_str(street.name);
            text.push_str(road_name);
            text.push_str(&house);
            if building > 0 {
                let _ = write!(text, "{building}号楼");
            }
            if room > 0 {
                let _ = write!(text, "{room}室");
            }

            id.clear();
            let _ = write!(
                id,
                "SH{:010}",
                (row % ID_MODULUS * ID_MULTIPLIER + id_offset) % ID_MODULUS
            );
            let (x, y) = street.rect.random_point(&mut rng);

            address_id.append_value(&id);
            address.append_value(&text);
            district_code.append_value(district.code);
            street_code.append_value(&street.code);
            road_col.append_value(road_name);
            house_col.append_value(&house);
            lon.append_value(x);
            lat.append_value(y);

            let index = out.street.len() as u32;
            out.text.push(&text);
            out.street.push(si as u16);
            out.by_district[street.district].push(index);
            row += 1;
        }

        let columns: Vec<ArrayRef> = vec![
            Arc::new(address_id.finish()),
            Arc::new(address.finish()),
            Arc::new(district_code.finish()),
            Arc::new(street_code.finish()),
            Arc::new(road_col.finish()),
            Arc::new(house_col.finish()),
            Arc::new(lon.finish()),
            Arc::new(lat.finish()),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)
            .expect("addresses batch matches its schema");
        emit(Dataset::Addresses, batch);
    }
    out
}

/// A room number such as 1202 (floor 12, unit 02): low-rise or high-rise.
fn random_room(rng: &mut impl Rng) -> u32 {
    let top_floor = if rng.random_bool(0.5) { 6 } else { 33 };
    rng.random_range(1..=top_floor) * 100 + rng.random_range(1..=4u32)
}
