//! Divisions (行政区划, `103/000001`): the city, its 16 districts and their streets.
//!
//! Geometry is schematic: each district is an axis-aligned rectangle placed roughly
//! where the real district lies, with an area near the real one; the districts do
//! not overlap, and a district's streets are a grid of rectangles tiling it exactly.
//! Coordinates are kept in integer micro-degrees so that shared edges are exact.
//! Nothing here depends on the seed.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Builder, StringBuilder};
use arrow::record_batch::RecordBatch;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Dataset, vocab};

/// An axis-aligned rectangle in micro-degrees (lon x, lat y), x0 < x1, y0 < y1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rect {
    pub x0: i64,
    pub y0: i64,
    pub x1: i64,
    pub y1: i64,
}

const MICRO: f64 = 1_000_000.0;
const KM_PER_DEGREE: f64 = 111.32;

impl Rect {
    const fn deg(x0: f64, y0: f64, x1: f64, y1: f64) -> Rect {
        // Inputs have at most two decimals; round to whole micro-degrees.
        Rect {
            x0: (x0 * MICRO + 0.5) as i64,
            y0: (y0 * MICRO + 0.5) as i64,
            x1: (x1 * MICRO + 0.5) as i64,
            y1: (y1 * MICRO + 0.5) as i64,
        }
    }

    pub fn centroid(&self) -> (f64, f64) {
        (
            (self.x0 + self.x1) as f64 / 2.0 / MICRO,
            (self.y0 + self.y1) as f64 / 2.0 / MICRO,
        )
    }

    /// Area in km², 1° lat ≈ 111.32 km and 1° lon ≈ 111.32·cos(lat) km at the centroid.
    pub fn area_km2(&self) -> f64 {
        let (_, lat) = self.centroid();
        let w = (self.x1 - self.x0) as f64 / MICRO * KM_PER_DEGREE * lat.to_radians().cos();
        let h = (self.y1 - self.y0) as f64 / MICRO * KM_PER_DEGREE;
        w * h
    }

    /// `POLYGON((x0 y0, x1 y0, x1 y1, x0 y1, x0 y0))`, counter-clockwise and closed.
    pub fn write_wkt(&self, out: &mut String) {
        out.push_str("POLYGON((");
        let corners = [
            (self.x0, self.y0),
            (self.x1, self.y0),
            (self.x1, self.y1),
            (self.x0, self.y1),
            (self.x0, self.y0),
        ];
        for (i, (x, y)) in corners.into_iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_micro(out, x);
            out.push(' ');
            write_micro(out, y);
        }
        out.push_str("))");
    }

    /// A point strictly inside, at least 2 % of the width/height away from the edges,
    /// rounded to whole micro-degrees.
    pub fn random_point(&self, rng: &mut impl Rng) -> (f64, f64) {
        fn inner(rng: &mut impl Rng, a: i64, b: i64) -> i64 {
            let margin = ((b - a) / 50).max(1);
            let (lo, hi) = (a + margin, b - margin);
            if lo >= hi {
                (a + b) / 2
            } else {
                rng.random_range(lo..=hi)
            }
        }
        let x = inner(rng, self.x0, self.x1);
        let y = inner(rng, self.y0, self.y1);
        (x as f64 / MICRO, y as f64 / MICRO)
    }
}

fn write_micro(out: &mut String, v: i64) {
    let _ = write!(out, "{}.{:06}", v / 1_000_000, v % 1_000_000);
}

/// One district: code, name, rectangle, relative population (10 000s), streets.
struct DistrictDef {
    code: &'static str,
    name: &'static str,
    rect: Rect,
    population: u32,
    central: bool,
    streets: &'static [&'static str],
}

const fn d(
    code: &'static str,
    name: &'static str,
    rect: Rect,
    population: u32,
    central: bool,
    streets: &'static [&'static str],
) -> DistrictDef {
    DistrictDef {
        code,
        name,
        rect,
        population,
        central,
        streets,
    }
}

const CITY_CODE: &str = "310000";
const CITY_NAME: &str = "上海市";

const DISTRICTS: &[DistrictDef] = &[
    d(
        "310101",
        "黄浦区",
        Rect::deg(121.47, 31.18, 121.51, 31.23),
        66,
        true,
        &[
            "南京东路街道",
            "外滩街道",
            "半淞园路街道",
            "小东门街道",
            "豫园街道",
            "老西门街道",
            "五里桥街道",
            "打浦桥街道",
            "淮海中路街道",
            "瑞金二路街道",
        ],
    ),
    d(
        "310104",
        "徐汇区",
        Rect::deg(121.42, 31.12, 121.47, 31.23),
        111,
        true,
        &[
            "天平路街道",
            "湖南路街道",
            "斜土路街道",
            "枫林路街道",
            "长桥街道",
            "田林街道",
            "虹梅路街道",
            "康健新村街道",
            "徐家汇街道",
            "凌云路街道",
            "龙华街道",
            "漕河泾街道",
            "华泾镇",
        ],
    ),
    d(
        "310105",
        "长宁区",
        Rect::deg(121.36, 31.17, 121.42, 31.23),
        69,
        true,
        &[
            "华阳路街道",
            "江苏路街道",
            "新华路街道",
            "周家桥街道",
            "天山路街道",
            "仙霞新村街道",
            "虹桥街道",
            "程家桥街道",
            "北新泾街道",
            "新泾镇",
        ],
    ),
    d(
        "310106",
        "静安区",
        Rect::deg(121.44, 31.23, 121.48, 31.30),
        97,
        true,
        &[
            "江宁路街道",
            "石门二路街道",
            "南京西路街道",
            "静安寺街道",
            "曹家渡街道",
            "天目西路街道",
            "北站街道",
            "宝山路街道",
            "共和新路街道",
            "大宁路街道",
            "彭浦新村街道",
            "临汾路街道",
            "芷江西路街道",
            "彭浦镇",
        ],
    ),
    d(
        "310107",
        "普陀区",
        Rect::deg(121.36, 31.23, 121.44, 31.30),
        124,
        true,
        &[
            "曹杨新村街道",
            "长风新村街道",
            "长寿路街道",
            "甘泉路街道",
            "石泉路街道",
            "宜川路街道",
            "万里街道",
            "真如镇街道",
            "长征镇",
            "桃浦镇",
        ],
    ),
    d(
        "310109",
        "虹口区",
        Rect::deg(121.48, 31.23, 121.51, 31.30),
        76,
        true,
        &[
            "欧阳路街道",
            "曲阳路街道",
            "广中路街道",
            "嘉兴路街道",
            "凉城新村街道",
            "四川北路街道",
            "北外滩街道",
            "江湾镇街道",
        ],
    ),
    d(
        "310110",
        "杨浦区",
        Rect::deg(121.51, 31.23, 121.56, 31.33),
        124,
        true,
        &[
            "定海路街道",
            "平凉路街道",
            "江浦路街道",
            "四平路街道",
            "控江路街道",
            "长白新村街道",
            "延吉新村街道",
            "殷行街道",
            "大桥街道",
            "五角场街道",
            "新江湾城街道",
            "长海路街道",
        ],
    ),
    d(
        "310112",
        "闵行区",
        Rect::deg(121.25, 30.98, 121.42, 31.17),
        265,
        false,
        &[
            "江川路街道",
            "古美街道",
            "新虹街道",
            "浦锦街道",
            "莘庄镇",
            "七宝镇",
            "颛桥镇",
            "华漕镇",
            "虹桥镇",
            "梅陇镇",
            "吴泾镇",
            "马桥镇",
            "浦江镇",
        ],
    ),
    d(
        "310113",
        "宝山区",
        Rect::deg(121.30, 31.30, 121.51, 31.42),
        224,
        false,
        &[
            "友谊路街道",
            "吴淞街道",
            "张庙街道",
            "罗店镇",
            "大场镇",
            "杨行镇",
            "月浦镇",
            "罗泾镇",
            "顾村镇",
            "高境镇",
            "庙行镇",
            "淞南镇",
        ],
    ),
    d(
        "310114",
        "嘉定区",
        Rect::deg(121.04, 31.24, 121.30, 31.42),
        183,
        false,
        &[
            "新成路街道",
            "真新街道",
            "嘉定镇街道",
            "南翔镇",
            "安亭镇",
            "马陆镇",
            "徐行镇",
            "华亭镇",
            "外冈镇",
            "江桥镇",
        ],
    ),
    d(
        "310115",
        "浦东新区",
        Rect::deg(121.51, 30.96, 121.95, 31.23),
        578,
        false,
        &[
            "潍坊新村街道",
            "陆家嘴街道",
            "周家渡街道",
            "塘桥街道",
            "上钢新村街道",
            "南码头路街道",
            "沪东新村街道",
            "金杨新村街道",
            "洋泾街道",
            "浦兴路街道",
            "东明路街道",
            "花木街道",
            "川沙新镇",
            "高桥镇",
            "北蔡镇",
            "合庆镇",
            "唐镇",
            "曹路镇",
            "金桥镇",
            "高行镇",
            "高东镇",
            "张江镇",
            "三林镇",
            "惠南镇",
            "周浦镇",
            "新场镇",
            "大团镇",
            "康桥镇",
            "航头镇",
            "祝桥镇",
            "泥城镇",
            "宣桥镇",
            "书院镇",
            "万祥镇",
            "老港镇",
            "南汇新城镇",
        ],
    ),
    d(
        "310116",
        "金山区",
        Rect::deg(121.00, 30.70, 121.40, 30.84),
        82,
        false,
        &[
            "石化街道",
            "朱泾镇",
            "枫泾镇",
            "张堰镇",
            "亭林镇",
            "吕巷镇",
            "廊下镇",
            "金山卫镇",
            "漕泾镇",
            "山阳镇",
        ],
    ),
    d(
        "310117",
        "松江区",
        Rect::deg(121.00, 30.84, 121.40, 30.98),
        190,
        false,
        &[
            "岳阳街道",
            "永丰街道",
            "方松街道",
            "中山街道",
            "广富林街道",
            "九里亭街道",
            "泗泾镇",
            "佘山镇",
            "车墩镇",
            "新桥镇",
            "洞泾镇",
            "九亭镇",
            "泖港镇",
            "石湖荡镇",
            "新浜镇",
            "叶榭镇",
            "小昆山镇",
        ],
    ),
    d(
        "310118",
        "青浦区",
        Rect::deg(121.00, 30.98, 121.25, 31.24),
        127,
        false,
        &[
            "夏阳街道",
            "盈浦街道",
            "香花桥街道",
            "朱家角镇",
            "练塘镇",
            "金泽镇",
            "赵巷镇",
            "徐泾镇",
            "华新镇",
            "重固镇",
            "白鹤镇",
        ],
    ),
    d(
        "310120",
        "奉贤区",
        Rect::deg(121.40, 30.80, 121.80, 30.96),
        114,
        false,
        &[
            "西渡街道",
            "奉浦街道",
            "金海街道",
            "南桥镇",
            "奉城镇",
            "庄行镇",
            "金汇镇",
            "四团镇",
            "青村镇",
            "柘林镇",
            "海湾镇",
        ],
    ),
    d(
        "310151",
        "崇明区",
        Rect::deg(121.30, 31.51, 121.90, 31.70),
        64,
        false,
        &[
            "城桥镇",
            "堡镇",
            "新河镇",
            "庙镇",
            "竖新镇",
            "向化镇",
            "三星镇",
            "港沿镇",
            "中兴镇",
            "陈家镇",
            "绿华镇",
            "港西镇",
            "建设镇",
            "新海镇",
            "东平镇",
            "长兴镇",
        ],
    ),
];

const fn street_count() -> usize {
    let mut i = 0;
    let mut n = 0;
    while i < DISTRICTS.len() {
        n += DISTRICTS[i].streets.len();
        i += 1;
    }
    n
}

/// Rows of the divisions dataset: the city, the districts, the streets.
pub(super) const DIVISION_ROWS: usize = 1 + DISTRICTS.len() + street_count();

/// Salt of the fixed generator that assigns roads to streets.
const ROADS_SEED: u64 = 0x7368_5f72_6f61_6473;

pub(super) struct District {
    pub code: &'static str,
    pub name: &'static str,
    pub rect: Rect,
    /// Relative resident population (10 000s), for weighting.
    pub population: u32,
    /// Inner-city district (no farmland).
    pub central: bool,
    pub streets: Range<usize>,
}

pub(super) struct Street {
    /// 12 digits: district code, 3-digit sequence from 001, `000`.
    pub code: String,
    pub name: &'static str,
    pub district: usize,
    pub rect: Rect,
    /// Distinct road names of the street.
    pub roads: Vec<&'static str>,
}

pub(super) struct Geo {
    pub city: Rect,
    pub districts: Vec<District>,
    pub streets: Vec<Street>,
}

impl Geo {
    pub fn build() -> Geo {
        let mut rng = ChaCha8Rng::seed_from_u64(ROADS_SEED);
        let mut districts = Vec::with_capacity(DISTRICTS.len());
        let mut streets = Vec::with_capacity(street_count());
        let mut city = DISTRICTS[0].rect;
        for (di, def) in DISTRICTS.iter().enumerate() {
            city.x0 = city.x0.min(def.rect.x0);
            city.y0 = city.y0.min(def.rect.y0);
            city.x1 = city.x1.max(def.rect.x1);
            city.y1 = city.y1.max(def.rect.y1);
            let first = streets.len();
            let cells = grid(def.rect, def.streets.len());
            for (si, (&name, rect)) in def.streets.iter().zip(cells).enumerate() {
                let roads = street_roads(&mut rng, def, name);
                streets.push(Street {
                    code: format!("{}{:03}000", def.code, si + 1),
                    name,
                    district: di,
                    rect,
                    roads,
                });
            }
            districts.push(District {
                code: def.code,
                name: def.name,
                rect: def.rect,
                population: def.population,
                central: def.central,
                streets: first..streets.len(),
            });
        }
        Geo {
            city,
            districts,
            streets,
        }
    }

    /// Emits the divisions dataset (a single batch).
    pub fn emit(&self, emit: &mut dyn FnMut(Dataset, RecordBatch)) {
        let n = DIVISION_ROWS;
        let mut code = StringBuilder::with_capacity(n, n * 12);
        let mut name = StringBuilder::with_capacity(n, n * 18);
        let mut level = StringBuilder::with_capacity(n, n * 6);
        let mut parent = StringBuilder::with_capacity(n, n * 12);
        let mut wkt = StringBuilder::with_capacity(n, n * 128);
        let mut lon = Float64Builder::with_capacity(n);
        let mut lat = Float64Builder::with_capacity(n);
        let mut area = Float64Builder::with_capacity(n);
        let mut buf = String::with_capacity(128);
        let mut row = |c: &str, nm: &str, lv: &str, p: Option<&str>, rect: &Rect| {
            code.append_value(c);
            name.append_value(nm);
            level.append_value(lv);
            parent.append_option(p);
            buf.clear();
            rect.write_wkt(&mut buf);
            wkt.append_value(&buf);
            let (x, y) = rect.centroid();
            lon.append_value(x);
            lat.append_value(y);
            area.append_value(rect.area_km2());
        };
        row(CITY_CODE, CITY_NAME, "city", None, &self.city);
        for d in &self.districts {
            row(d.code, d.name, "district", Some(CITY_CODE), &d.rect);
        }
        for s in &self.streets {
            let parent_code = self.districts[s.district].code;
            row(&s.code, s.name, "street", Some(parent_code), &s.rect);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(code.finish()),
            Arc::new(name.finish()),
            Arc::new(level.finish()),
            Arc::new(parent.finish()),
            Arc::new(wkt.finish()),
            Arc::new(lon.finish()),
            Arc::new(lat.finish()),
            Arc::new(area.finish()),
        ];
        let batch = RecordBatch::try_new(Dataset::Divisions.schema(), columns)
            .expect("divisions batch matches its schema");
        emit(Dataset::Divisions, batch);
    }
}

/// Splits `rect` into `n` rectangles that tile it exactly: rows from north to
/// south, each row split into equal columns, row-major order.
fn grid(rect: Rect, n: usize) -> Vec<Rect> {
    let w = (rect.x1 - rect.x0) as f64;
    let h = (rect.y1 - rect.y0) as f64;
    // Make cells roughly square in degrees.
    let rows = ((n as f64 * h / w).sqrt().round() as usize).clamp(1, n.max(1));
    let (base, extra) = (n / rows, n % rows);
    let mut cells = Vec::with_capacity(n);
    let (rows_i, hi) = (rows as i64, rect.y1 - rect.y0);
    for r in 0..rows {
        let top = rect.y1 - hi * r as i64 / rows_i;
        let bottom = rect.y1 - hi * (r as i64 + 1) / rows_i;
        let cols = base + usize::from(r < extra);
        let (cols_i, wi) = (cols as i64, rect.x1 - rect.x0);
        for c in 0..cols as i64 {
            cells.push(Rect {
                x0: rect.x0 + wi * c / cols_i,
                y0: bottom,
                x1: rect.x0 + wi * (c + 1) / cols_i,
                y1: top,
            });
        }
    }
    cells
}

/// The road pools of a district: for its 街道 and for its 镇.
fn district_roads(code: &str) -> (&'static [&'static str], &'static [&'static str]) {
    let roads = match code {
        "310101" => vocab::ROADS_HUANGPU,
        "310104" => vocab::ROADS_XUHUI,
        "310105" => vocab::ROADS_CHANGNING,
        "310106" => vocab::ROADS_JINGAN,
        "310107" => vocab::ROADS_PUTUO,
        "310109" => vocab::ROADS_HONGKOU,
        "310110" => vocab::ROADS_YANGPU,
        "310112" => vocab::ROADS_MINHANG,
        "310113" => vocab::ROADS_BAOSHAN,
        "310114" => vocab::ROADS_JIADING,
        "310115" => return (vocab::ROADS_PUDONG, vocab::ROADS_PUDONG_TOWNS),
        "310116" => vocab::ROADS_JINSHAN,
        "310117" => vocab::ROADS_SONGJIANG,
        "310118" => vocab::ROADS_QINGPU,
        "310120" => vocab::ROADS_FENGXIAN,
        _ => vocab::ROADS_CHONGMING,
    };
    (roads, roads)
}

/// The roads of a street: the street's own road if it is named after one
/// (e.g. 天平路街道 → 天平路), then distinct roads drawn from its district's pools.
fn street_roads(
    rng: &mut ChaCha8Rng,
    district: &DistrictDef,
    street: &'static str,
) -> Vec<&'static str> {
    let (street_pool, town_pool) = district_roads(district.code);
    let town = street.ends_with('镇') && !street.ends_with("镇街道");
    let pool = if town { town_pool } else { street_pool };
    let count = (if district.central { 12 } else { 9 }).min(pool.len());
    let mut roads: Vec<&'static str> = Vec::with_capacity(count + 1);
    if let Some(stem) = street.strip_suffix("街道")
        && stem.ends_with('路')
    {
        roads.push(stem);
    }
    while roads.len() < count {
        // Pudong's towns also lie on the inner roads now and then.
        let from = if town && rng.random_bool(0.2) {
            street_pool
        } else {
            pool
        };
        let road = from[rng.random_range(0..from.len())];
        if !roads.contains(&road) {
            roads.push(road);
        }
    }
    roads
}
