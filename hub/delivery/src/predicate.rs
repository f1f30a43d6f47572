//! Delta Sharing's JSON predicate hints, checked against a file's
//! statistics: can any row of the file match? Hints are best effort by the
//! protocol — the client filters again — so whatever cannot be decided
//! (an unknown op, a type without statistics, `not`) keeps the file.
//!
//! Supported: `and`, `or`, `isNull`, `equal`, `lessThan`,
//! `lessThanOrEqual`, `greaterThan`, `greaterThanOrEqual` over a `column`
//! and a `literal` of value type `int`, `long`, `float`, `double`,
//! `string` or `date`.

use serde_json::Value;
use std::cmp::Ordering;

/// Whether a file with `stats` (`minValues`, `maxValues`, `nullCount`) may
/// hold a row matching `predicate`.
pub fn may_match(predicate: &Value, stats: &Value) -> bool {
    let op = predicate.get("op").and_then(Value::as_str).unwrap_or("");
    let children: &[Value] = predicate
        .get("children")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    match op {
        "and" => children.iter().all(|c| may_match(c, stats)),
        "or" => children.is_empty() || children.iter().any(|c| may_match(c, stats)),
        "isNull" => match children.first().and_then(column_name) {
            Some(col) => stats["nullCount"]
                .get(col)
                .and_then(Value::as_u64)
                .is_none_or(|n| n > 0),
            None => true,
        },
        "equal" | "lessThan" | "lessThanOrEqual" | "greaterThan" | "greaterThanOrEqual" => {
            compare(op, children, stats).unwrap_or(true)
        }
        _ => true,
    }
}

fn column_name(v: &Value) -> Option<&str> {
    (v.get("op")?.as_str()? == "column").then(|| v.get("name")?.as_str())?
}

/// A comparison of a column with a literal, or `None` when undecidable.
fn compare(op: &str, children: &[Value], stats: &Value) -> Option<bool> {
    let [a, b] = children else { return None };
    // `literal < column` is `column > literal`.
    let (col, lit, op) = match (column_name(a), column_name(b)) {
        (Some(c), None) => (c, b, op),
        (None, Some(c)) => (
            c,
            a,
            match op {
                "lessThan" => "greaterThan",
                "lessThanOrEqual" => "greaterThanOrEqual",
                "greaterThan" => "lessThan",
                "greaterThanOrEqual" => "lessThanOrEqual",
                other => other,
            },
        ),
        _ => return None,
    };
    if lit.get("op")?.as_str()? != "literal" {
        return None;
    }
    let kind = lit.get("valueType")?.as_str()?;
    let value = lit.get("value")?.as_str()?;
    let min = stats.get("minValues")?.get(col)?;
    let max = stats.get("maxValues")?.get(col)?;
    let lo = order(kind, min, value)?; // min vs literal
    let hi = order(kind, max, value)?; // max vs literal
    Some(match op {
        "equal" => lo != Ordering::Greater && hi != Ordering::Less,
        "lessThan" => lo == Ordering::Less,
        "lessThanOrEqual" => lo != Ordering::Greater,
        "greaterThan" => hi == Ordering::Greater,
        "greaterThanOrEqual" => hi != Ordering::Less,
        _ => return None,
    })
}

/// How a statistic compares with a literal of the given value type.
fn order(kind: &str, stat: &Value, literal: &str) -> Option<Ordering> {
    match kind {
        "int" | "long" => Some(stat.as_i64()?.cmp(&literal.trim().parse::<i64>().ok()?)),
        "float" | "double" => stat
            .as_f64()?
            .partial_cmp(&literal.trim().parse::<f64>().ok()?),
        // Dates are kept as YYYY-MM-DD, which sorts as it reads.
        "string" | "date" => Some(stat.as_str()?.cmp(literal)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stats() -> Value {
        json!({
            "numRecords": 10,
            "minValues": {"street": "310104001000", "age": 60, "born": "1930-01-01"},
            "maxValues": {"street": "310104009000", "age": 99, "born": "1966-12-31"},
            "nullCount": {"street": 0, "age": 2, "born": 0}
        })
    }

    fn cmp(op: &str, col: &str, kind: &str, value: &str) -> Value {
        json!({"op": op, "children": [
            {"op": "column", "name": col, "valueType": kind},
            {"op": "literal", "value": value, "valueType": kind}]})
    }

    #[test]
    fn comparisons_prune_by_min_and_max() {
        let s = stats();
        assert!(may_match(
            &cmp("equal", "street", "string", "310104005000"),
            &s
        ));
        assert!(!may_match(
            &cmp("equal", "street", "string", "310101001000"),
            &s
        ));
        assert!(!may_match(&cmp("greaterThan", "age", "int", "99"), &s));
        assert!(may_match(
            &cmp("greaterThanOrEqual", "age", "int", "99"),
            &s
        ));
        assert!(!may_match(&cmp("lessThan", "age", "long", "60"), &s));
        assert!(may_match(
            &cmp("lessThanOrEqual", "born", "date", "1930-01-01"),
            &s
        ));
        assert!(!may_match(
            &cmp("lessThan", "born", "date", "1930-01-01"),
            &s
        ));
        // literal < column reads as column > literal
        let flipped = json!({"op": "lessThan", "children": [
            {"op": "literal", "value": "99", "valueType": "int"},
            {"op": "column", "name": "age", "valueType": "int"}]});
        assert!(!may_match(&flipped, &s));
    }

    #[test]
    fn logic_and_the_undecidable() {
        let s = stats();
        let no = cmp("equal", "street", "string", "310101001000");
        let yes = cmp("equal", "age", "int", "70");
        assert!(!may_match(&json!({"op": "and", "children": [yes, no]}), &s));
        assert!(may_match(&json!({"op": "or", "children": [yes, no]}), &s));
        assert!(
            may_match(&json!({"op": "not", "children": [no]}), &s),
            "not: kept"
        );
        assert!(
            may_match(&cmp("equal", "unknown", "string", "x"), &s),
            "no stats: kept"
        );
        assert!(
            may_match(&cmp("equal", "age", "timestamp", "x"), &s),
            "no order: kept"
        );
        assert!(may_match(
            &json!({"op": "isNull", "children": [{"op": "column", "name": "age"}]}),
            &s
        ));
        assert!(!may_match(
            &json!({"op": "isNull", "children": [{"op": "column", "name": "born"}]}),
            &s
        ));
        assert!(may_match(&json!({"op": "frobnicate"}), &s));
    }
}
