//! Keys as callers send them, made into keys as the index holds them:
//! trimmed, upper-cased, and for citizen IDs (GB 11643) and unified social
//! credit codes (GB 32100) with their check digit verified, so that a
//! mistyped key is an error, never a silent "not found".

/// The key trimmed and upper-cased, or what is wrong with it. `item` is the
/// key item (`citizen_id`, `credit_code`, …, or `a+b` for composite keys).
/// The key is normalised in place: a valid key costs no allocation beyond
/// its own (a stream checks millions).
pub fn normalise(item: &str, mut key: String) -> Result<String, String> {
    let trimmed = key.trim();
    if trimmed.len() != key.len() {
        key = trimmed.to_string();
    }
    key.make_ascii_uppercase();
    match item {
        "citizen_id" | "legal_rep_id" => tongban_policies::ids::validate_citizen_id(&key).map(drop),
        "credit_code" => tongban_policies::ids::validate_credit_code(&key),
        _ if key.is_empty() => return Err("a key must not be empty".into()),
        _ => Ok(()),
    }
    .map_err(|e| e.to_string())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_trimmed_upper_cased_and_check_digit_checked() {
        let body = "11010519491231002";
        let id = format!(
            "{body}{}",
            tongban_policies::ids::citizen_id_check(body.as_bytes())
        );
        let lower = format!("  {}  ", id.to_ascii_lowercase());
        assert_eq!(normalise("citizen_id", lower).unwrap(), id);
        let mut wrong = id.clone();
        wrong.pop();
        wrong.push(if id.ends_with('0') { '1' } else { '0' });
        assert!(normalise("citizen_id", wrong).is_err());
        assert!(normalise("licence_no", "  ".into()).is_err());
        assert_eq!(normalise("licence_no", "ab-1".into()).unwrap(), "AB-1");
    }
}
