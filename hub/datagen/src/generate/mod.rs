//! Deterministic demo data of Shanghai's four base libraries (四大基础库).
//!
//! [`generate`] produces five datasets, always in [`Dataset::ALL`] order, as Arrow
//! record batches of at most 65 536 rows:
//!
//! | dataset | resource | module | what |
//! | --- | --- | --- | --- |
//! | [`Dataset::Divisions`] | `103/000001` | `geo` | the city, its 16 real districts and ~210 streets/towns, as tiling rectangles |
//! | [`Dataset::Addresses`] | `103/000002` | `addresses` | standard addresses with a point inside their street |
//! | [`Dataset::Population`] | `101/000001` | `population` | citizens with GB 11643 citizen IDs |
//! | [`Dataset::LegalEntities`] | `102/000001` | `entities` | legal entities with GB 32100 credit codes |
//! | [`Dataset::Licences`] | `104/000001` | `licences` | electronic licences sealed by their issuer (SM2 with SM3) |
//!
//! The word lists (surnames, given-name characters, roads, industries, other
//! provinces' divisions) live in `vocab`. Every later dataset refers only to rows
//! of earlier ones: an address lies in a generated street, a citizen lives at a
//! generated address, an entity's legal representative is a generated adult
//! citizen, a licence's holder is a generated citizen or entity.
//!
//! Licence seals: each licence's `signature` is its issuer's SM2 signature
//! (SM3 digest) of its core fields as `tongban_core::seal::message` writes
//! them, hex r ‖ s; the issuers' keys come from [`issuer_seal_key`], and
//! `run` registers their public keys in the directory. The tests live in
//! `tests.rs`.
//!
//! Determinism: each dataset draws from its own `ChaCha8Rng` seeded from the seed
//! and a per-dataset constant; divisions do not depend on the seed at all. Hash
//! sets and maps are used only to test membership or look up counters, never
//! iterated, and nothing reads the clock or spawns threads. The same seed and
//! [`Sizes`] therefore give identical batches, bit for bit.

mod addresses;
mod entities;
mod geo;
mod licences;
mod population;
mod vocab;

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{Datelike, Months, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Row counts per dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub citizens: usize,
    pub entities: usize,
    pub licences: usize,
    pub addresses: usize,
}

impl Sizes {
    /// scale 1.0 = 1_000_000 citizens, 200_000 entities, 500_000 licences, 400_000 addresses;
    /// each is round(base * scale) but at least 20. Panics are not allowed: callers validate scale > 0 and finite.
    pub fn for_scale(scale: f64) -> Sizes {
        fn scaled(base: f64, scale: f64) -> usize {
            let v = (base * scale).round();
            // `as` saturates (and maps NaN to 0), so this cannot panic.
            (v as usize).max(20)
        }
        Sizes {
            citizens: scaled(1_000_000.0, scale),
            entities: scaled(200_000.0, scale),
            licences: scaled(500_000.0, scale),
            addresses: scaled(400_000.0, scale),
        }
    }

    /// All five datasets, divisions included.
    pub fn total_rows(&self) -> u64 {
        [self.citizens, self.entities, self.licences, self.addresses]
            .iter()
            .fold(geo::DIVISION_ROWS as u64, |acc, &n| {
                acc.saturating_add(n as u64)
            })
    }
}

/// The five generated datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    Divisions,
    Addresses,
    Population,
    LegalEntities,
    Licences,
}

impl Dataset {
    /// In generation order.
    pub const ALL: [Dataset; 5] = [
        Dataset::Divisions,
        Dataset::Addresses,
        Dataset::Population,
        Dataset::LegalEntities,
        Dataset::Licences,
    ];

    /// The catalogue resource code of the dataset.
    pub fn resource_code(self) -> &'static str {
        match self {
            Dataset::Divisions => "103/000001",
            Dataset::Addresses => "103/000002",
            Dataset::Population => "101/000001",
            Dataset::LegalEntities => "102/000001",
            Dataset::Licences => "104/000001",
        }
    }

    /// The Arrow schema of every batch of the dataset.
    pub fn schema(self) -> SchemaRef {
        fn text(name: &str) -> Field {
            Field::new(name, DataType::Utf8, false)
        }
        fn float(name: &str) -> Field {
            Field::new(name, DataType::Float64, false)
        }
        fn date(name: &str) -> Field {
            Field::new(name, DataType::Date32, false)
        }
        let fields = match self {
            Dataset::Divisions => vec![
                text("code"),
                text("name"),
                text("level"),
                Field::new("parent_code", DataType::Utf8, true),
                text("boundary_wkt"),
                float("centroid_lon"),
                float("centroid_lat"),
                float("area_km2"),
            ],
            Dataset::Addresses => vec![
                text("address_id"),
                text("address"),
                text("district_code"),
                text("street_code"),
                text("road"),
                text("house_number"),
                float("lon"),
                float("lat"),
            ],
            Dataset::Population => vec![
                text("citizen_id"),
                text("name"),
                text("gender"),
                text("ethnicity"),
                date("birth_date"),
                text("household_division"),
                text("household_address"),
                text("residence_address"),
                text("residence_street"),
                text("phone"),
                text("marital_status"),
                text("education"),
                text("religion"),
                text("health_status"),
                text("status"),
            ],
            Dataset::LegalEntities => vec![
                text("credit_code"),
                text("name"),
                text("entity_type"),
                text("legal_rep"),
                text("legal_rep_id"),
                Field::new("registered_capital", DataType::Decimal128(18, 2), false),
                date("established_date"),
                text("business_scope"),
                text("address"),
                text("division_code"),
                text("status"),
                text("phone"),
            ],
            Dataset::Licences => vec![
                text("licence_no"),
                text("licence_type"),
                text("holder_type"),
                text("holder_id"),
                text("holder_name"),
                text("issuer_code"),
                text("issuer_name"),
                date("issue_date"),
                date("valid_from"),
                Field::new("valid_to", DataType::Date32, true),
                text("status"),
                text("signature"),
            ],
        };
        Arc::new(Schema::new(fields))
    }

    /// Row count of the dataset at `sizes`; divisions have a fixed count.
    pub fn rows(self, sizes: &Sizes) -> usize {
        match self {
            Dataset::Divisions => geo::DIVISION_ROWS,
            Dataset::Addresses => sizes.addresses,
            Dataset::Population => sizes.citizens,
            Dataset::LegalEntities => sizes.entities,
            Dataset::Licences => sizes.licences,
        }
    }
}

/// The reference date at which licence status (valid/expired) is computed: 2026-01-01.
pub const REFERENCE_DATE: (i32, u32, u32) = (2026, 1, 1);

/// Generates all five datasets in `Dataset::ALL` order, calling `emit` with batches of at
/// most 65_536 rows, in row order. Same seed and sizes => identical batches, bit for bit,
/// regardless of anything else (no clock, no HashMap iteration order, no threads affecting order).
pub fn generate(seed: u64, sizes: &Sizes, emit: &mut dyn FnMut(Dataset, RecordBatch)) {
    let geo = geo::Geo::build();
    geo.emit(emit);
    let addresses = addresses::generate(seed, sizes.addresses, &geo, emit);
    let population = population::generate(seed, sizes.citizens, &geo, &addresses, emit);
    let entities = entities::generate(seed, sizes.entities, &geo, &addresses, &population, emit);
    licences::generate(seed, sizes.licences, &geo, &population, &entities, emit);
}

/// The seal key of a demo issuer: an SM2 key whose secret is the SM3 digest
/// of `tongban-demo/licence-issuer/<issuer_code>` (and a counter, in the
/// rare case a digest is not a valid scalar). A demo key, derivable from
/// this source: real issuers keep theirs in their own seal systems and
/// register only the public key.
pub fn issuer_seal_key(issuer_code: &str) -> tongban_core::seal::SealKey {
    use sm3::Digest;
    for counter in 0u32.. {
        let mut d = sm3::Sm3::new();
        d.update(b"tongban-demo/licence-issuer/");
        d.update(issuer_code.as_bytes());
        d.update(counter.to_be_bytes());
        let secret: [u8; 32] = d.finalize().into();
        if let Some(key) = tongban_core::seal::SealKey::from_secret(&secret) {
            return key;
        }
    }
    unreachable!("some counter gives a scalar below the order")
}

/// The issuers of the demo's licences (the departments whose seal keys the
/// directory registers).
pub fn licence_issuers() -> Vec<&'static str> {
    licences::issuer_codes()
}

// ---------------------------------------------------------------------------
// Shared private helpers.

/// Maximum rows per emitted batch.
const MAX_BATCH_ROWS: usize = 65_536;

/// A per-dataset random generator.
fn dataset_rng(seed: u64, salt: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ salt)
}

/// Batch lengths covering `total` rows.
fn batch_lengths(total: usize) -> impl Iterator<Item = usize> {
    (0..total)
        .step_by(MAX_BATCH_ROWS)
        .map(move |start| (total - start).min(MAX_BATCH_ROWS))
}

/// Cumulative integer weights for drawing an index.
struct Weighted {
    cumulative: Vec<u64>,
}

impl Weighted {
    fn new(weights: impl IntoIterator<Item = u64>) -> Weighted {
        let mut total = 0u64;
        let cumulative: Vec<u64> = weights
            .into_iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        assert!(total > 0, "weights must not all be zero");
        Weighted { cumulative }
    }

    fn pick(&self, rng: &mut impl Rng) -> usize {
        let total = *self.cumulative.last().expect("non-empty");
        let r = rng.random_range(0..total);
        self.cumulative.partition_point(|&c| c <= r)
    }
}

/// Draws from a `(value, weight)` table.
fn pick_weighted<'a, T>(rng: &mut impl Rng, table: &'a [(T, u32)]) -> &'a T {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut r = rng.random_range(0..total);
    for (v, w) in table {
        if r < *w {
            return v;
        }
        r -= w;
    }
    &table[table.len() - 1].0
}

/// Many short strings in one buffer.
#[derive(Default)]
struct Arena {
    buf: String,
    ends: Vec<usize>,
}

impl Arena {
    fn with_capacity(items: usize, bytes: usize) -> Arena {
        Arena {
            buf: String::with_capacity(bytes),
            ends: Vec::with_capacity(items),
        }
    }

    fn push(&mut self, s: &str) {
        self.buf.push_str(s);
        self.ends.push(self.buf.len());
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }
}

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

/// Date32 value (days since 1970-01-01) of a date.
fn days_of(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - UNIX_EPOCH_CE_DAYS
}

/// The date of a Date32 value.
fn date_of(days: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(days + UNIX_EPOCH_CE_DAYS).expect("date in range")
}

fn ymd(y: i32, m: u32, d: u32) -> i32 {
    days_of(NaiveDate::from_ymd_opt(y, m, d).expect("valid date"))
}

/// Date32 of [`REFERENCE_DATE`].
fn reference_days() -> i32 {
    ymd(REFERENCE_DATE.0, REFERENCE_DATE.1, REFERENCE_DATE.2)
}

/// `days` plus whole months (clamped to the month's end), as Date32.
fn add_months(days: i32, months: u32) -> i32 {
    days_of(
        date_of(days)
            .checked_add_months(Months::new(months))
            .expect("date in range"),
    )
}

fn push_iso_date(out: &mut String, days: i32) {
    let d = date_of(days);
    let _ = write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
}

/// Uniform day in `[from, to]` (Date32 values).
fn random_day(rng: &mut impl Rng, from: i32, to: i32) -> i32 {
    if to <= from {
        from
    } else {
        rng.random_range(from..=to)
    }
}

/// An 11-digit Chinese mobile number.
fn push_mobile(rng: &mut impl Rng, out: &mut String) {
    let prefix = vocab::MOBILE_PREFIXES[rng.random_range(0..vocab::MOBILE_PREFIXES.len())];
    let _ = write!(out, "{prefix}{:08}", rng.random_range(0..100_000_000u32));
}

#[cfg(test)]
mod tests;
