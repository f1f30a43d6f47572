use std::collections::{HashMap, HashSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{Date32Type, Decimal128Type, Float64Type};
use chrono::{Datelike, NaiveDate};
use tongban_policies::ids::{validate_citizen_id, validate_credit_code};

use super::*;

/// All batches of one run, in emission order.
fn run(seed: u64, sizes: &Sizes) -> Vec<(Dataset, RecordBatch)> {
    let mut out = Vec::new();
    generate(seed, sizes, &mut |d, b| out.push((d, b)));
    out
}

/// One concatenated batch per dataset.
fn tables(batches: &[(Dataset, RecordBatch)]) -> HashMap<Dataset, RecordBatch> {
    Dataset::ALL
        .iter()
        .map(|&d| {
            let parts: Vec<RecordBatch> = batches
                .iter()
                .filter(|(x, _)| *x == d)
                .map(|(_, b)| b.clone())
                .collect();
            (d, concat_batches(&d.schema(), &parts).unwrap())
        })
        .collect()
}

fn small() -> Sizes {
    Sizes::for_scale(0.002)
}

fn strings<'a>(b: &'a RecordBatch, col: &str) -> Vec<&'a str> {
    let a = b.column_by_name(col).unwrap().as_string::<i32>();
    (0..a.len()).map(|i| a.value(i)).collect()
}

fn opt_strings<'a>(b: &'a RecordBatch, col: &str) -> Vec<Option<&'a str>> {
    let a = b.column_by_name(col).unwrap().as_string::<i32>();
    (0..a.len())
        .map(|i| (!a.is_null(i)).then(|| a.value(i)))
        .collect()
}

fn floats(b: &RecordBatch, col: &str) -> Vec<f64> {
    b.column_by_name(col)
        .unwrap()
        .as_primitive::<Float64Type>()
        .values()
        .to_vec()
}

fn dates(b: &RecordBatch, col: &str) -> Vec<Option<NaiveDate>> {
    let a = b.column_by_name(col).unwrap().as_primitive::<Date32Type>();
    (0..a.len())
        .map(|i| (!a.is_null(i)).then(|| date_of(a.value(i))))
        .collect()
}

fn assert_unique(values: &[&str], what: &str) {
    let set: HashSet<&str> = values.iter().copied().collect();
    assert_eq!(set.len(), values.len(), "{what} not unique");
}

/// Parses `POLYGON((x y, ...))` into its ring.
fn ring(wkt: &str) -> Vec<(f64, f64)> {
    let inner = wkt
        .strip_prefix("POLYGON((")
        .and_then(|s| s.strip_suffix("))"))
        .expect("WKT polygon");
    inner
        .split(", ")
        .map(|p| {
            let (x, y) = p.split_once(' ').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

/// (min lon, min lat, max lon, max lat) of a rectangle ring.
fn bbox(ring: &[(f64, f64)]) -> (f64, f64, f64, f64) {
    ring.iter().fold(
        (f64::MAX, f64::MAX, f64::MIN, f64::MIN),
        |(a, b, c, d), &(x, y)| (a.min(x), b.min(y), c.max(x), d.max(y)),
    )
}

#[test]
fn sizes_for_scale() {
    let s = Sizes::for_scale(1.0);
    assert_eq!(
        s,
        Sizes {
            citizens: 1_000_000,
            entities: 200_000,
            licences: 500_000,
            addresses: 400_000
        }
    );
    assert_eq!(
        s.total_rows(),
        2_100_000 + Dataset::Divisions.rows(&s) as u64
    );
    assert_eq!(
        Sizes::for_scale(0.000_001),
        Sizes {
            citizens: 20,
            entities: 20,
            licences: 20,
            addresses: 20
        }
    );
    assert_eq!(Sizes::for_scale(0.0025).entities, 500);
    // No panics on values callers should have rejected.
    for scale in [f64::NAN, f64::INFINITY, -1.0, 0.0, 1e300] {
        let s = Sizes::for_scale(scale);
        assert!(s.citizens >= 20);
        let _ = s.total_rows();
    }
    let codes: HashSet<&str> = Dataset::ALL.iter().map(|d| d.resource_code()).collect();
    assert_eq!(codes.len(), 5);
}

#[test]
fn batches_follow_schema_order_and_counts() {
    let sizes = small();
    let batches = run(7, &sizes);
    // Datasets come in ALL order, each contiguous.
    let mut order: Vec<Dataset> = batches.iter().map(|(d, _)| *d).collect();
    order.dedup();
    assert_eq!(order, Dataset::ALL.to_vec());
    for d in Dataset::ALL {
        let rows: usize = batches
            .iter()
            .filter(|(x, _)| *x == d)
            .map(|(_, b)| {
                assert_eq!(b.schema(), d.schema(), "{d:?} schema");
                assert!(b.num_rows() <= MAX_BATCH_ROWS && b.num_rows() > 0);
                b.num_rows()
            })
            .sum();
        assert_eq!(rows, d.rows(&sizes), "{d:?} rows");
    }
}

#[test]
fn large_and_tiny_sizes_split_into_batches() {
    let sizes = Sizes {
        citizens: 20,
        entities: 20,
        licences: 20,
        addresses: 140_000,
    };
    let batches = run(3, &sizes);
    let address_batches: Vec<usize> = batches
        .iter()
        .filter(|(d, _)| *d == Dataset::Addresses)
        .map(|(_, b)| b.num_rows())
        .collect();
    assert_eq!(address_batches, vec![65_536, 65_536, 8_928]);
    let t = tables(&batches);
    assert_unique(&strings(&t[&Dataset::Addresses], "address"), "address");
    assert_unique(
        &strings(&t[&Dataset::Addresses], "address_id"),
        "address_id",
    );
    for d in Dataset::ALL {
        assert_eq!(t[&d].num_rows(), d.rows(&sizes));
    }
}

#[test]
fn divisions_are_real_and_tile() {
    let t = tables(&run(1, &small()));
    let b = &t[&Dataset::Divisions];
    let code = strings(b, "code");
    let name = strings(b, "name");
    let level = strings(b, "level");
    let parent = opt_strings(b, "parent_code");
    let wkt = strings(b, "boundary_wkt");
    let (clon, clat, area) = (
        floats(b, "centroid_lon"),
        floats(b, "centroid_lat"),
        floats(b, "area_km2"),
    );
    assert_unique(&code, "division code");
    assert_eq!(
        (code[0], name[0], level[0], parent[0]),
        ("310000", "上海市", "city", None)
    );
    let districts: Vec<usize> = (0..b.num_rows())
        .filter(|&i| level[i] == "district")
        .collect();
    let streets: Vec<usize> = (0..b.num_rows())
        .filter(|&i| level[i] == "street")
        .collect();
    assert_eq!(districts.len(), 16);
    assert!(
        (200..=220).contains(&streets.len()),
        "{} streets",
        streets.len()
    );
    assert_eq!(1 + districts.len() + streets.len(), b.num_rows());
    let expected = [
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
    let got: Vec<(&str, &str)> = districts.iter().map(|&i| (code[i], name[i])).collect();
    assert_eq!(got, expected);

    let city = bbox(&ring(wkt[0]));
    let boxes: Vec<_> = wkt.iter().map(|w| bbox(&ring(w))).collect();
    for i in 0..b.num_rows() {
        let r = ring(wkt[i]);
        assert_eq!(r.len(), 5);
        assert_eq!(r[0], r[4], "closed ring");
        let (x0, y0, x1, y1) = boxes[i];
        assert!(x0 < x1 && y0 < y1);
        assert!(x0 >= 121.0 && x1 <= 121.95 && y0 >= 30.70 && y1 <= 31.70);
        assert!(x0 >= city.0 && y0 >= city.1 && x1 <= city.2 && y1 <= city.3);
        assert!((clon[i] - (x0 + x1) / 2.0).abs() < 1e-9);
        assert!((clat[i] - (y0 + y1) / 2.0).abs() < 1e-9);
        let expect_area = (x1 - x0) * 111.32 * clat[i].to_radians().cos() * (y1 - y0) * 111.32;
        assert!((area[i] - expect_area).abs() < 1e-6 * expect_area);
    }
    // Districts do not overlap; real-ish areas.
    for (a, &i) in districts.iter().enumerate() {
        assert!(
            area[i] > 15.0 && area[i] < 1400.0,
            "{} {}",
            name[i],
            area[i]
        );
        for &j in &districts[a + 1..] {
            let (p, q) = (boxes[i], boxes[j]);
            let overlap = p.0 < q.2 && q.0 < p.2 && p.1 < q.3 && q.1 < p.3;
            assert!(!overlap, "{} overlaps {}", name[i], name[j]);
        }
    }
    // Streets: 12-digit codes under their district, names unique within it, and
    // together they tile the district exactly.
    for &d in &districts {
        let mine: Vec<usize> = streets
            .iter()
            .copied()
            .filter(|&s| parent[s] == Some(code[d]))
            .collect();
        assert!(!mine.is_empty());
        let names: HashSet<&str> = mine.iter().map(|&s| name[s]).collect();
        assert_eq!(names.len(), mine.len());
        let mut sum = 0.0;
        for (k, &s) in mine.iter().enumerate() {
            assert_eq!(code[s], format!("{}{:03}000", code[d], k + 1));
            assert!(
                name[s].ends_with("街道") || name[s].ends_with('镇'),
                "{}",
                name[s]
            );
            let (p, q) = (boxes[s], boxes[d]);
            assert!(p.0 >= q.0 && p.1 >= q.1 && p.2 <= q.2 && p.3 <= q.3);
            for &o in &mine[k + 1..] {
                let r = boxes[o];
                let overlap = p.0 < r.2 && r.0 < p.2 && p.1 < r.3 && r.1 < p.3;
                assert!(!overlap);
            }
            sum += (p.2 - p.0) * (p.3 - p.1);
        }
        let whole = (boxes[d].2 - boxes[d].0) * (boxes[d].3 - boxes[d].1);
        assert!((sum - whole).abs() < 1e-9, "streets tile {}", name[d]);
    }
    for street in &super::geo::Geo::build().streets {
        let roads: HashSet<&str> = street.roads.iter().copied().collect();
        assert_eq!(roads.len(), street.roads.len(), "{}", street.name);
        assert!(roads.len() >= 8);
    }
    let xuhui: Vec<&str> = streets
        .iter()
        .filter(|&&s| parent[s] == Some("310104"))
        .map(|&s| name[s])
        .collect();
    assert!(xuhui.contains(&"天平路街道") && xuhui.contains(&"华泾镇"));
}

#[test]
fn addresses_lie_in_their_streets() {
    let t = tables(&run(2, &small()));
    let div = &t[&Dataset::Divisions];
    let rects: HashMap<&str, (f64, f64, f64, f64)> = strings(div, "code")
        .into_iter()
        .zip(strings(div, "boundary_wkt"))
        .map(|(c, w)| (c, bbox(&ring(w))))
        .collect();
    let street_names: HashMap<&str, &str> = strings(div, "code")
        .into_iter()
        .zip(strings(div, "name"))
        .collect();
    let a = &t[&Dataset::Addresses];
    let ids = strings(a, "address_id");
    let text = strings(a, "address");
    assert_unique(&ids, "address_id");
    assert_unique(&text, "address");
    let (dc, sc, road, house) = (
        strings(a, "district_code"),
        strings(a, "street_code"),
        strings(a, "road"),
        strings(a, "house_number"),
    );
    let (lon, lat) = (floats(a, "lon"), floats(a, "lat"));
    for i in 0..a.num_rows() {
        assert!(ids[i].len() == 12 && ids[i].starts_with("SH"));
        assert!(ids[i][2..].bytes().all(|c| c.is_ascii_digit()));
        assert_eq!(sc[i].len(), 12);
        assert_eq!(&sc[i][..6], dc[i]);
        let (x0, y0, x1, y1) = rects[sc[i]];
        assert!(
            x0 < lon[i] && lon[i] < x1 && y0 < lat[i] && lat[i] < y1,
            "{}",
            text[i]
        );
        let prefix = format!(
            "上海市{}{}{}{}",
            street_names[dc[i]], street_names[sc[i]], road[i], house[i]
        );
        assert!(text[i].starts_with(&prefix), "{} vs {prefix}", text[i]);
        assert!(house[i].ends_with('号'));
    }
}

#[test]
fn citizens_have_valid_consistent_ids() {
    let sizes = small();
    let t = tables(&run(3, &sizes));
    let p = &t[&Dataset::Population];
    let ids = strings(p, "citizen_id");
    assert_unique(&ids, "citizen_id");
    let addresses: HashSet<&str> = strings(&t[&Dataset::Addresses], "address")
        .into_iter()
        .collect();
    let address_street: HashMap<&str, &str> = strings(&t[&Dataset::Addresses], "address")
        .into_iter()
        .zip(strings(&t[&Dataset::Addresses], "street_code"))
        .collect();
    let (gender, birth, division) = (
        strings(p, "gender"),
        dates(p, "birth_date"),
        strings(p, "household_division"),
    );
    let (names, household, residence, street) = (
        strings(p, "name"),
        strings(p, "household_address"),
        strings(p, "residence_address"),
        strings(p, "residence_street"),
    );
    let (phone, marital, education, status) = (
        strings(p, "phone"),
        strings(p, "marital_status"),
        strings(p, "education"),
        strings(p, "status"),
    );
    let mut shanghai = 0;
    let mut han = 0;
    for (i, ethnicity) in strings(p, "ethnicity").into_iter().enumerate() {
        let info = validate_citizen_id(ids[i]).unwrap_or_else(|e| panic!("{}: {e}", ids[i]));
        let b = birth[i].unwrap();
        assert_eq!(
            (
                info.birth_year as i32,
                info.birth_month as u32,
                info.birth_day as u32
            ),
            (b.year(), b.month(), b.day())
        );
        assert_eq!(info.male, gender[i] == "男");
        assert!(gender[i] == "男" || gender[i] == "女");
        assert_eq!(&ids[i][..6], division[i]);
        let age = 2025 - b.year();
        assert!((0..=95).contains(&age));
        assert!(b <= NaiveDate::from_ymd_opt(2025, 12, 31).unwrap());
        if age < 20 {
            assert_eq!(marital[i], "未婚");
        }
        if age < 6 {
            assert_eq!(education[i], "学龄前");
        }
        let n = names[i].chars().count();
        assert!((2..=4).contains(&n), "{}", names[i]);
        if division[i].starts_with("31") {
            shanghai += 1;
            assert!(addresses.contains(household[i]));
        } else {
            assert!(!household[i].starts_with("上海"));
        }
        assert!(addresses.contains(residence[i]));
        assert_eq!(address_street[residence[i]], street[i]);
        assert!(phone[i].len() == 11 && phone[i].starts_with('1'));
        assert!(["正常", "迁出", "死亡"].contains(&status[i]));
        if ethnicity == "汉族" {
            han += 1;
        }
    }
    let n = p.num_rows() as f64;
    assert!((0.58..0.72).contains(&(shanghai as f64 / n)), "{shanghai}");
    assert!((0.86..0.95).contains(&(han as f64 / n)), "{han}");
}

#[test]
fn entities_have_valid_codes_and_real_representatives() {
    let t = tables(&run(4, &small()));
    let people: HashMap<&str, (&str, NaiveDate)> = {
        let p = &t[&Dataset::Population];
        strings(p, "citizen_id")
            .into_iter()
            .zip(strings(p, "name"))
            .zip(dates(p, "birth_date"))
            .map(|((id, n), b)| (id, (n, b.unwrap())))
            .collect()
    };
    let address_district: HashMap<&str, &str> = strings(&t[&Dataset::Addresses], "address")
        .into_iter()
        .zip(strings(&t[&Dataset::Addresses], "district_code"))
        .collect();
    let e = &t[&Dataset::LegalEntities];
    let codes = strings(e, "credit_code");
    let names = strings(e, "name");
    assert_unique(&codes, "credit_code");
    assert_unique(&names, "entity name");
    let (kind, rep, rep_id, address, division) = (
        strings(e, "entity_type"),
        strings(e, "legal_rep"),
        strings(e, "legal_rep_id"),
        strings(e, "address"),
        strings(e, "division_code"),
    );
    let est = dates(e, "established_date");
    let capital = e
        .column_by_name("registered_capital")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    for i in 0..e.num_rows() {
        validate_credit_code(codes[i]).unwrap_or_else(|err| panic!("{}: {err}", codes[i]));
        let c = codes[i].as_bytes();
        assert_eq!(c[0], b'9');
        let expected_kind = match kind[i] {
            "个体工商户" => b'2',
            "农民专业合作社" => b'3',
            _ => b'1',
        };
        assert_eq!(c[1], expected_kind, "{}", kind[i]);
        assert_eq!(&codes[i][2..8], division[i]);
        assert_eq!(address_district[address[i]], division[i]);
        let (name, birth) = people[rep_id[i]];
        assert_eq!(name, rep[i]);
        let est = est[i].unwrap();
        assert!(est.year() >= 1990 && est <= NaiveDate::from_ymd_opt(2025, 12, 31).unwrap());
        assert!(
            birth
                .checked_add_months(chrono::Months::new(18 * 12))
                .unwrap()
                <= est,
            "representative of {} under 18",
            names[i]
        );
        assert!(capital.value(i) > 0);
        if kind[i] == "个体工商户" {
            assert!(names[i].starts_with("上海") && names[i].contains('区'));
        }
    }
}

#[test]
fn licences_refer_to_holders_and_verify() {
    let seed = 5;
    let t = tables(&run(seed, &small()));
    let citizens: HashMap<&str, &str> = strings(&t[&Dataset::Population], "citizen_id")
        .into_iter()
        .zip(strings(&t[&Dataset::Population], "name"))
        .collect();
    let entities: HashMap<&str, &str> = strings(&t[&Dataset::LegalEntities], "credit_code")
        .into_iter()
        .zip(strings(&t[&Dataset::LegalEntities], "name"))
        .collect();
    let l = &t[&Dataset::Licences];
    let numbers = strings(l, "licence_no");
    assert_unique(&numbers, "licence_no");
    let (kind, holder_type, holder_id, holder_name) = (
        strings(l, "licence_type"),
        strings(l, "holder_type"),
        strings(l, "holder_id"),
        strings(l, "holder_name"),
    );
    let (issuer_code, issuer_name, status, signature) = (
        strings(l, "issuer_code"),
        strings(l, "issuer_name"),
        strings(l, "status"),
        strings(l, "signature"),
    );
    let (issue, from, to) = (
        dates(l, "issue_date"),
        dates(l, "valid_from"),
        dates(l, "valid_to"),
    );
    let reference =
        NaiveDate::from_ymd_opt(REFERENCE_DATE.0, REFERENCE_DATE.1, REFERENCE_DATE.2).unwrap();
    let mut entity_held = 0;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for i in 0..l.num_rows() {
        let (prefix, issuer, entity) = match kind[i] {
            "营业执照" => ("YZ", ("sh-scjgj", "上海市市场监督管理局"), true),
            "食品经营许可证" => ("JY", ("sh-scjgj", "上海市市场监督管理局"), true),
            "机动车驾驶证" => ("JZ", ("sh-gaj", "上海市公安局"), false),
            "居住证" => ("JZZ", ("sh-gaj", "上海市公安局"), false),
            "结婚证" => ("JH", ("sh-mzj", "上海市民政局"), false),
            "医师执业证书" => ("YS", ("sh-wjw", "上海市卫生健康委员会"), false),
            "职业资格证书" => ("ZG", ("sh-rsj", "上海市人力资源和社会保障局"), false),
            other => panic!("unknown licence type {other}"),
        };
        *counts.entry(prefix).or_default() += 1;
        assert_eq!((issuer_code[i], issuer_name[i]), issuer);
        let no = numbers[i];
        assert!(no.starts_with(prefix));
        let rest = &no[prefix.len()..];
        assert_eq!(rest.len(), 17, "{no}");
        assert!(rest.bytes().all(|c| c.is_ascii_digit()), "{no}");
        assert!(rest.starts_with("31"));
        let issue = issue[i].unwrap();
        assert_eq!(rest[6..10].parse::<i32>().unwrap(), issue.year());
        if entity {
            entity_held += 1;
            assert_eq!(holder_type[i], "entity");
            assert_eq!(entities[holder_id[i]], holder_name[i]);
        } else {
            assert_eq!(holder_type[i], "citizen");
            assert_eq!(citizens[holder_id[i]], holder_name[i]);
        }
        let from = from[i].unwrap();
        assert!(issue >= from && issue < reference && from < reference);
        if let Some(to) = to[i] {
            assert!(to > from);
        }
        if kind[i] == "结婚证" {
            assert!(to[i].is_none());
        }
        match to[i] {
            Some(to) if to < reference => assert_eq!(status[i], "expired"),
            _ => assert!(
                status[i] == "valid" || status[i] == "revoked",
                "{}",
                status[i]
            ),
        }
        // The issuer's seal over the core fields verifies.
        let iso = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
        let mut text = String::new();
        tongban_core::seal::message(
            &tongban_core::seal::LicenceFields {
                licence_no: no,
                licence_type: kind[i],
                holder_id: holder_id[i],
                holder_name: holder_name[i],
                issuer_code: issuer_code[i],
                issue_date: &iso(Some(issue)),
                valid_from: &iso(Some(from)),
                valid_to: &iso(to[i]),
            },
            &mut text,
        );
        let key = issuer_seal_key(issuer_code[i]).public_key();
        assert_eq!(
            tongban_core::seal::verify(&key, &text, signature[i]),
            Ok(()),
            "{no}"
        );
        assert_eq!(signature[i].len(), 128);
        // Not another issuer's.
        let other = if issuer_code[i] == "sh-gaj" {
            "sh-mzj"
        } else {
            "sh-gaj"
        };
        assert!(
            tongban_core::seal::verify(&issuer_seal_key(other).public_key(), &text, signature[i])
                .is_err()
        );
    }
    let share = entity_held as f64 / l.num_rows() as f64;
    assert!((0.33..0.47).contains(&share), "{share}");
    assert_eq!(counts.len(), 7, "{counts:?}");
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let sizes = small();
    let a = run(11, &sizes);
    let b = run(11, &sizes);
    assert_eq!(a.len(), b.len());
    for ((da, ba), (db, bb)) in a.iter().zip(&b) {
        assert_eq!(da, db);
        assert_eq!(ba, bb);
    }
    let c = run(12, &sizes);
    for d in [
        Dataset::Addresses,
        Dataset::Population,
        Dataset::LegalEntities,
        Dataset::Licences,
    ] {
        let x = a.iter().find(|(x, _)| *x == d).unwrap();
        let y = c.iter().find(|(x, _)| *x == d).unwrap();
        assert_ne!(x.1, y.1, "{d:?} ignores the seed");
    }
    // Divisions do not depend on the seed.
    assert_eq!(a[0].1, c[0].1);
}
