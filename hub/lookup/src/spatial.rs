//! Point-in-polygon over division boundaries: an R-tree (rstar) of polygon
//! bounding boxes narrows a point to a few candidates, an exact ray-casting
//! test decides. Boundaries come as WKT `POLYGON` / `MULTIPOLYGON` text in
//! the `boundary_wkt` item of a divisions resource.

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

/// One polygon (outer ring and holes), as (lon, lat) pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    pub rings: Vec<Vec<(f64, f64)>>,
}

/// Parses `POLYGON((x y, …), (…))` or `MULTIPOLYGON(((x y, …)), …)`.
pub fn parse_wkt(text: &str) -> Result<Vec<Polygon>, String> {
    let t = text.trim();
    let upper = t.to_ascii_uppercase();
    let body = if upper.starts_with("MULTIPOLYGON") {
        &t["MULTIPOLYGON".len()..]
    } else if upper.starts_with("POLYGON") {
        &t["POLYGON".len()..]
    } else {
        return Err(format!(
            "not a POLYGON or MULTIPOLYGON: '{}'",
            t.chars().take(30).collect::<String>()
        ));
    };
    // Every innermost parenthesised group is a ring; rings group into polygons
    // by the depth at which they close.
    let multi = upper.starts_with("MULTIPOLYGON");
    let (mut polygons, mut rings, mut depth, mut start) = (Vec::new(), Vec::new(), 0usize, 0usize);
    for (i, c) in body.char_indices() {
        match c {
            '(' => {
                depth += 1;
                start = i + 1;
            }
            ')' => {
                if depth == if multi { 3 } else { 2 } {
                    let ring = body[start..i]
                        .split(',')
                        .map(|pair| {
                            let mut it = pair.split_whitespace().map(str::parse::<f64>);
                            match (it.next(), it.next()) {
                                (Some(Ok(x)), Some(Ok(y))) => Ok((x, y)),
                                _ => Err(format!("bad coordinate '{}'", pair.trim())),
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    rings.push(ring);
                } else if depth == if multi { 2 } else { 1 } && !rings.is_empty() {
                    polygons.push(Polygon {
                        rings: std::mem::take(&mut rings),
                    });
                }
                depth = depth.checked_sub(1).ok_or("unbalanced parentheses")?;
            }
            _ => {}
        }
    }
    if depth != 0 || polygons.is_empty() {
        return Err("unbalanced parentheses or no ring".into());
    }
    Ok(polygons)
}

fn ring_contains(ring: &[(f64, f64)], (x, y): (f64, f64)) -> bool {
    let mut inside = false;
    let mut j = ring.len().wrapping_sub(1);
    for i in 0..ring.len() {
        let (xi, yi) = ring[i];
        let (xj, yj) = ring[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

impl Polygon {
    /// Inside the outer ring and outside every hole.
    pub fn contains(&self, p: (f64, f64)) -> bool {
        match self.rings.split_first() {
            Some((outer, holes)) => {
                ring_contains(outer, p) && !holes.iter().any(|h| ring_contains(h, p))
            }
            None => false,
        }
    }

    fn envelope(&self) -> AABB<[f64; 2]> {
        let pts: Vec<[f64; 2]> = self
            .rings
            .first()
            .into_iter()
            .flatten()
            .map(|&(x, y)| [x, y])
            .collect();
        AABB::from_points(pts.iter())
    }
}

/// A polygon's bounding box, tagged with (row, polygon number).
type Entry = GeomWithData<Rectangle<[f64; 2]>, (u32, u32)>;

/// Rows whose polygons contain a point.
pub struct Spatial {
    tree: RTree<Entry>,
    /// (row, polygon) → polygon.
    polygons: Vec<(u32, Polygon)>,
}

impl Spatial {
    /// Indexes the boundary of every row; rows without one are skipped,
    /// unreadable ones reported by row.
    pub fn build(
        boundaries: impl Iterator<Item = (u32, Option<String>)>,
    ) -> Result<Spatial, String> {
        let mut polygons = Vec::new();
        for (row, wkt) in boundaries {
            let Some(wkt) = wkt else { continue };
            for p in parse_wkt(&wkt).map_err(|e| format!("row {row}: {e}"))? {
                polygons.push((row, p));
            }
        }
        let items = polygons
            .iter()
            .enumerate()
            .map(|(i, (row, p))| {
                let e = p.envelope();
                GeomWithData::new(
                    Rectangle::from_corners(e.lower(), e.upper()),
                    (*row, i as u32),
                )
            })
            .collect();
        Ok(Spatial {
            tree: RTree::bulk_load(items),
            polygons,
        })
    }

    /// The rows containing the point (lon, lat), in row order.
    pub fn rows_at(&self, lon: f64, lat: f64) -> Vec<u32> {
        let mut rows: Vec<u32> = self
            .tree
            .locate_all_at_point(&[lon, lat])
            .filter(|g| self.polygons[g.data.1 as usize].1.contains((lon, lat)))
            .map(|g| g.data.0)
            .collect();
        rows.sort_unstable();
        rows.dedup();
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygons_with_holes_and_multipolygons() {
        let square = "POLYGON((0 0, 10 0, 10 10, 0 10, 0 0), (4 4, 6 4, 6 6, 4 6, 4 4))";
        let p = &parse_wkt(square).unwrap()[0];
        assert!(p.contains((1.0, 1.0)));
        assert!(!p.contains((5.0, 5.0)), "in the hole");
        assert!(!p.contains((11.0, 5.0)));
        let multi =
            parse_wkt("MULTIPOLYGON(((0 0, 1 0, 1 1, 0 1, 0 0)), ((5 5, 6 5, 6 6, 5 6, 5 5)))")
                .unwrap();
        assert_eq!(multi.len(), 2);
        assert!(parse_wkt("POINT(1 2)").is_err());
        assert!(parse_wkt("POLYGON((0 0, 1 x))").is_err());
        assert!(parse_wkt("POLYGON((0 0, 1 0, 1 1").is_err());
    }

    #[test]
    fn the_tree_finds_nested_divisions() {
        let rows = vec![
            (
                0,
                Some("POLYGON((0 0, 10 0, 10 10, 0 10, 0 0))".to_string()),
            ),
            (1, Some("POLYGON((0 0, 5 0, 5 5, 0 5, 0 0))".to_string())),
            (2, Some("POLYGON((5 0, 10 0, 10 5, 5 5, 5 0))".to_string())),
            (3, None),
        ];
        let s = Spatial::build(rows.into_iter()).unwrap();
        assert_eq!(s.rows_at(1.0, 1.0), [0, 1]);
        assert_eq!(s.rows_at(7.0, 1.0), [0, 2]);
        assert_eq!(s.rows_at(7.0, 7.0), [0]);
        assert!(s.rows_at(-1.0, 1.0).is_empty());
    }
}
