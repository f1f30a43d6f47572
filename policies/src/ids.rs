//! Natural keys of the base libraries and their check digits.
//!
//! - Citizen ID number (公民身份号码), GB 11643-1999: 6-digit address code,
//!   8-digit birth date, 3-digit sequence (odd for men, even for women) and an
//!   ISO 7064 MOD 11-2 check character (`0`–`9` or `X`).
//! - Unified social credit code (统一社会信用代码), GB 32100-2015: registration
//!   authority, entity type, 6-digit division code, the 9-character organisation
//!   code (itself with a GB 11714 check character) and a check character, all
//!   over the 31-character set `0123456789ABCDEFGHJKLMNPQRTUWXY`.
//!
//! Both validators accept only the canonical upper-case form; callers normalise
//! (trim, upper-case) at the edge if they want to be lenient.

use std::fmt;

/// Why a key is not a valid citizen ID or credit code. Messages are lowercase
/// and name the position at fault (1-based, as the standards count).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{kind} must be 18 characters, got {got}")]
    Length { kind: KeyKind, got: usize },
    #[error("{kind} has an invalid character '{ch}' at position {pos}")]
    Character { kind: KeyKind, pos: usize, ch: char },
    #[error("{kind} has an invalid birth date '{date}'")]
    BirthDate { kind: KeyKind, date: String },
    #[error("{kind} has an invalid division code '{code}'")]
    Division { kind: KeyKind, code: String },
    #[error("{kind} check character is '{got}', expected '{expected}'")]
    Check {
        kind: KeyKind,
        got: char,
        expected: char,
    },
    #[error("{kind} organisation code check character is '{got}', expected '{expected}'")]
    OrgCheck {
        kind: KeyKind,
        got: char,
        expected: char,
    },
}

/// Which kind of key an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    CitizenId,
    CreditCode,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::CitizenId => "citizen id",
            KeyKind::CreditCode => "credit code",
        })
    }
}

/// GB 11643 weights: 2^(17-i) mod 11 for positions 1..=17.
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The check character of the first 17 digits of a citizen ID.
///
/// # Panics
/// If `first17` is not 17 ASCII digits; use [`validate_citizen_id`] on input.
pub fn citizen_id_check(first17: &[u8]) -> char {
    assert!(first17.len() == 17 && first17.iter().all(u8::is_ascii_digit));
    let sum: u32 = first17
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    ID_CHECK[(sum % 11) as usize]
}

/// What a valid citizen ID says about its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CitizenIdInfo {
    /// Address code at first registration (6 digits), e.g. 310104.
    pub division: u32,
    pub birth_year: u16,
    pub birth_month: u8,
    pub birth_day: u8,
    /// The sequence number is odd for men.
    pub male: bool,
}

/// Validates an 18-character citizen ID (GB 11643-1999).
pub fn validate_citizen_id(id: &str) -> Result<CitizenIdInfo, KeyError> {
    let kind = KeyKind::CitizenId;
    let b = id.as_bytes();
    if b.len() != 18 || id.chars().count() != 18 {
        return Err(KeyError::Length {
            kind,
            got: id.chars().count(),
        });
    }
    if let Some(pos) = b[..17].iter().position(|c| !c.is_ascii_digit()) {
        return Err(KeyError::Character {
            kind,
            pos: pos + 1,
            ch: b[pos] as char,
        });
    }
    let last = b[17] as char;
    if !(last.is_ascii_digit() || last == 'X') {
        return Err(KeyError::Character {
            kind,
            pos: 18,
            ch: last,
        });
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let division = num(0..6);
    if division < 110_000 {
        return Err(KeyError::Division {
            kind,
            code: id[..6].to_string(),
        });
    }
    let (year, month, day) = (num(6..10), num(10..12), num(12..14));
    if !(1800..=2100).contains(&year) || !is_valid_date(year, month, day) {
        return Err(KeyError::BirthDate {
            kind,
            date: id[6..14].to_string(),
        });
    }
    let expected = citizen_id_check(&b[..17]);
    if last != expected {
        return Err(KeyError::Check {
            kind,
            got: last,
            expected,
        });
    }
    Ok(CitizenIdInfo {
        division,
        birth_year: year as u16,
        birth_month: month as u8,
        birth_day: day as u8,
        male: num(14..17) % 2 == 1,
    })
}

fn is_valid_date(y: u32, m: u32, d: u32) -> bool {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// The GB 32100 alphabet: digits and upper-case letters without I, O, S, V, Z.
pub const CREDIT_CODE_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// GB 32100 weights: 3^(i-1) mod 31 for positions 1..=17.
const CC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
/// GB 11714 weights for the 8 body characters of an organisation code.
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

fn cc_value(c: u8) -> Option<u32> {
    CREDIT_CODE_CHARS
        .iter()
        .position(|&x| x == c)
        .map(|p| p as u32)
}

/// The GB 11714 check character of an 8-character organisation code body.
///
/// # Panics
/// If a character is not a digit or upper-case letter.
pub fn org_code_check(body8: &[u8]) -> char {
    let sum: u32 = body8
        .iter()
        .zip(ORG_WEIGHTS)
        .map(|(&c, w)| {
            let v = match c {
                b'0'..=b'9' => u32::from(c - b'0'),
                b'A'..=b'Z' => u32::from(c - b'A') + 10,
                _ => panic!("organisation code character out of range"),
            };
            v * w
        })
        .sum();
    match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        n => char::from(b'0' + n as u8),
    }
}

/// The GB 32100 check character of the first 17 characters of a credit code.
///
/// # Panics
/// If a character is outside [`CREDIT_CODE_CHARS`].
pub fn credit_code_check(first17: &[u8]) -> char {
    assert_eq!(first17.len(), 17);
    let sum: u32 = first17
        .iter()
        .zip(CC_WEIGHTS)
        .map(|(&c, w)| cc_value(c).expect("credit code character") * w)
        .sum();
    CREDIT_CODE_CHARS[((31 - sum % 31) % 31) as usize] as char
}

/// Validates an 18-character unified social credit code (GB 32100-2015),
/// including the GB 11714 check of the embedded organisation code.
pub fn validate_credit_code(code: &str) -> Result<(), KeyError> {
    let kind = KeyKind::CreditCode;
    let b = code.as_bytes();
    if b.len() != 18 || code.chars().count() != 18 {
        return Err(KeyError::Length {
            kind,
            got: code.chars().count(),
        });
    }
    if let Some(pos) = b.iter().position(|&c| cc_value(c).is_none()) {
        return Err(KeyError::Character {
            kind,
            pos: pos + 1,
            ch: b[pos] as char,
        });
    }
    if let Some(pos) = b[2..8].iter().position(|c| !c.is_ascii_digit()) {
        return Err(KeyError::Character {
            kind,
            pos: pos + 3,
            ch: b[pos + 2] as char,
        });
    }
    let expected = credit_code_check(&b[..17]);
    if b[17] as char != expected {
        return Err(KeyError::Check {
            kind,
            got: b[17] as char,
            expected,
        });
    }
    let org_expected = org_code_check(&b[8..16]);
    if b[16] as char != org_expected {
        return Err(KeyError::OrgCheck {
            kind,
            got: b[16] as char,
            expected: org_expected,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gb11643_examples_pass() {
        // The example printed in GB 11643-1999 itself, with its X check.
        let info = validate_citizen_id("11010519491231002X").unwrap();
        assert_eq!(
            (info.birth_year, info.birth_month, info.birth_day),
            (1949, 12, 31)
        );
        assert_eq!(info.division, 110105);
        assert!(!info.male);
        // The second example of the standard's annex.
        let info = validate_citizen_id("440524188001010014").unwrap();
        assert!(info.male);
    }

    #[test]
    fn citizen_id_errors_name_the_fault() {
        assert_eq!(
            validate_citizen_id("110105194912310021")
                .unwrap_err()
                .to_string(),
            "citizen id check character is '1', expected 'X'"
        );
        assert!(matches!(
            validate_citizen_id("11010519491231002"),
            Err(KeyError::Length { got: 17, .. })
        ));
        assert!(matches!(
            validate_citizen_id("1101051949123100x2"),
            Err(KeyError::Character { pos: 17, .. })
        ));
        // Lower-case x is not the canonical form.
        assert!(matches!(
            validate_citizen_id("11010519491231002x"),
            Err(KeyError::Character {
                pos: 18,
                ch: 'x',
                ..
            })
        ));
        assert!(matches!(
            validate_citizen_id("110105194902300028"),
            Err(KeyError::BirthDate { .. })
        ));
        assert!(matches!(
            validate_citizen_id("１１０１０５１９４９１２３１００２Ｘ"),
            Err(KeyError::Length { got: 18, .. })
        ));
    }

    #[test]
    fn every_single_digit_change_is_caught() {
        let good = b"11010519491231002X";
        for pos in 0..17 {
            for d in b'0'..=b'9' {
                if d == good[pos] {
                    continue;
                }
                let mut bad = *good;
                bad[pos] = d;
                let s = std::str::from_utf8(&bad).unwrap();
                assert!(validate_citizen_id(s).is_err(), "{s} passed");
            }
        }
    }

    #[test]
    fn gb32100_example_passes() {
        // The worked example used in GB 32100-2015 guidance material.
        validate_credit_code("91350100M000100Y43").unwrap();
        assert_eq!(credit_code_check(b"91350100M000100Y4"), '3');
        assert_eq!(org_code_check(b"M000100Y"), '4');
    }

    #[test]
    fn credit_code_errors_name_the_fault() {
        assert_eq!(
            validate_credit_code("91350100M000100Y42")
                .unwrap_err()
                .to_string(),
            "credit code check character is '2', expected '3'"
        );
        assert!(matches!(
            validate_credit_code("91350100M000100I43"),
            Err(KeyError::Character {
                pos: 16,
                ch: 'I',
                ..
            })
        ));
        assert!(matches!(
            validate_credit_code("9135A100M000100Y43"),
            Err(KeyError::Character { pos: 5, .. })
        ));
        assert!(matches!(
            validate_credit_code(""),
            Err(KeyError::Length { got: 0, .. })
        ));
    }

    #[test]
    fn credit_code_built_from_parts_validates() {
        let mut code = b"91310104".to_vec();
        code.extend_from_slice(b"MA1FL8T0");
        code.push(org_code_check(b"MA1FL8T0") as u8);
        code.push(credit_code_check(&code) as u8);
        validate_credit_code(std::str::from_utf8(&code).unwrap()).unwrap();
    }
}
