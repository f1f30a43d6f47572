//! From the provider's answer to what the caller may see: the answer is
//! checked against every declared field (a missing required field or a
//! value of the wrong type is a provider error, and nothing of the answer is
//! passed on raw), then only the fields the decision releases are taken,
//! each under its mask.

use serde_json::{Map, Value};
use tongban_catalog::services::{Field, Scalar};
use tongban_policies::{Decision, Release};

/// A field of an endpoint's answer with the JSON shape of its item.
#[derive(Debug, Clone)]
pub struct Declared {
    pub field: Field,
    pub scalar: Scalar,
    /// The pointer's reference tokens, unescaped once (RFC 6901): walking
    /// them costs no allocation per answer, where `Value::pointer` splits
    /// and unescapes the pointer text on every call.
    tokens: Vec<String>,
}

impl Declared {
    pub fn new(field: Field, scalar: Scalar) -> Declared {
        let tokens = field
            .pointer
            .split('/')
            .skip(1)
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        Declared {
            field,
            scalar,
            tokens,
        }
    }

    /// The value at the field's pointer, as `Value::pointer` finds it.
    fn find<'a>(&self, answer: &'a Value) -> Option<&'a Value> {
        self.tokens.iter().try_fold(answer, |v, token| match v {
            Value::Object(map) => map.get(token),
            Value::Array(list) => token
                .parse::<usize>()
                .ok()
                .filter(|_| !(token.starts_with('0') && token.len() > 1))
                .and_then(|i| list.get(i)),
            _ => None,
        })
    }
}

/// The answer's declared fields, checked: item → value (`null` when an
/// optional field is absent). `Err` says where the answer breaks its schema.
pub fn check(answer: &Value, fields: &[Declared]) -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::with_capacity(fields.len());
    for d in fields {
        let value = d.find(answer);
        let value = match value {
            None | Some(Value::Null) if d.field.required => {
                return Err(format!(
                    "required field '{}' is missing at {}",
                    d.field.item,
                    pointer_text(&d.field.pointer)
                ));
            }
            None | Some(Value::Null) => Value::Null,
            Some(v) => {
                if !fits(v, d.scalar) {
                    return Err(format!(
                        "field '{}' at {} should be {}, got {}",
                        d.field.item,
                        pointer_text(&d.field.pointer),
                        scalar_word(d.scalar),
                        kind(v)
                    ));
                }
                v.clone()
            }
        };
        out.push((d.field.item.clone(), value));
    }
    Ok(out)
}

/// The released fields under their masks, in declaration order.
pub fn project(
    checked: &[(String, Value)],
    decision: &Decision,
    hash_key: &[u8],
) -> Map<String, Value> {
    let mut out = Map::new();
    for (item, value) in checked {
        let Some(d) = decision.items.iter().find(|d| &d.item == item) else {
            continue;
        };
        let value = match (d.release, value) {
            (Some(Release::Clear), v) => v.clone(),
            (Some(Release::Masked(mask)), Value::String(s)) => {
                Value::String(mask.apply(s, hash_key))
            }
            // Masks apply to text items only (the directory checks it); a
            // null stays null.
            (Some(Release::Masked(_)), v) => v.clone(),
            (Some(Release::MatchOnly) | None, _) => continue,
        };
        out.insert(item.clone(), value);
    }
    out
}

fn fits(v: &Value, s: Scalar) -> bool {
    match s {
        Scalar::Text => v.is_string(),
        Scalar::Integer => v.is_i64() || v.is_u64(),
        Scalar::Number => v.is_number(),
        Scalar::Boolean => v.is_boolean(),
        Scalar::Date => v
            .as_str()
            .is_some_and(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()),
    }
}

pub(crate) fn scalar_word(s: Scalar) -> &'static str {
    match s {
        Scalar::Text => "a string",
        Scalar::Integer => "an integer",
        Scalar::Number => "a number",
        Scalar::Boolean => "true or false",
        Scalar::Date => "a YYYY-MM-DD date",
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn pointer_text(p: &str) -> &str {
    if p.is_empty() { "the root" } else { p }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn declared(item: &str, pointer: &str, scalar: Scalar, required: bool) -> Declared {
        Declared::new(
            Field {
                item: item.into(),
                pointer: pointer.into(),
                required,
            },
            scalar,
        )
    }

    #[test]
    fn pointers_find_what_serde_json_finds() {
        let answer = json!({"a": {"b/c": [10, {"~d": true}]}, "": 1, "x": [1, 2]});
        for p in [
            "",
            "/a",
            "/a/b~1c",
            "/a/b~1c/0",
            "/a/b~1c/1/~0d",
            "/",
            "/x/01",
            "/x/2",
            "/a/zz",
        ] {
            let d = declared("i", p, Scalar::Text, false);
            assert_eq!(d.find(&answer), answer.pointer(p), "{p}");
        }
    }

    #[test]
    fn answers_that_break_the_schema_are_refused_with_the_place() {
        let fields = [
            declared("paid_up", "/paid_up", Scalar::Boolean, true),
            declared("months", "/detail/months", Scalar::Integer, false),
            declared("since", "/since", Scalar::Date, false),
        ];
        let ok = check(&json!({"paid_up": true, "detail": {"months": 12}}), &fields).unwrap();
        assert_eq!(ok[1], ("months".to_string(), json!(12)));
        assert_eq!(ok[2].1, Value::Null, "an absent optional field is null");
        let e = check(&json!({"detail": {"months": 12}}), &fields).unwrap_err();
        assert_eq!(e, "required field 'paid_up' is missing at /paid_up");
        let e = check(&json!({"paid_up": "yes"}), &fields).unwrap_err();
        assert_eq!(
            e,
            "field 'paid_up' at /paid_up should be true or false, got a string"
        );
        let e = check(&json!({"paid_up": true, "since": "2024-13-01"}), &fields).unwrap_err();
        assert!(e.contains("YYYY-MM-DD"), "{e}");
        assert!(check(&json!([1, 2]), &fields).is_err());
    }
}
