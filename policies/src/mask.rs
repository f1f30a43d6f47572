//! Masking methods (脱敏方法) for released values.
//!
//! A [`Mask`] names how one text value is disguised before it leaves the hub:
//! fixed rules for the kinds of value the base libraries hold (citizen ID
//! numbers, unified social credit codes, mobile numbers, Chinese names,
//! addresses), generic `keep_first:N` / `keep_last:N`, and a keyed `hash` that
//! lets consumers join on a value without learning it.
//!
//! Every rule counts Unicode chars, never bytes, and replaces what it hides with
//! `*`. Every mask is idempotent: masking a masked value changes nothing, so a
//! value that passes through two hubs, or is masked twice by mistake, stays as
//! the first mask left it. All masks but `address` and `hash` keep the char
//! count of the value.
//!
//! The text form of a mask (`"phone"`, `"keep_last:4"`, …) is what the sharing
//! lists are written in; it is also the serde form.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

/// The char that stands for a hidden char.
pub const MASK_CHAR: char = '*';

/// What `address` appends after the kept administrative prefix, whatever the
/// length of the rest, so that the length of the rest is not revealed.
pub const ADDRESS_TAIL: &str = "****";

/// The largest `N` that `keep_first:N` and `keep_last:N` accept.
pub const MAX_KEEP: u8 = 64;

/// Compound surnames (复姓) that `chinese_name` keeps whole when the name has at
/// least 3 chars.
pub const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "夏侯", "司徒",
    "令狐", "宇文", "轩辕", "澹台", "端木", "百里", "呼延", "南宫", "司空", "闻人", "赫连", "太史",
    "申屠", "钟离", "濮阳", "公冶", "宗政", "拓跋", "万俟", "西门",
];

/// The prefix of every `hash` output.
const HASH_PREFIX: &str = "h:";
/// How many lowercase hex chars of the HMAC a `hash` output carries.
const HASH_HEX_LEN: usize = 16;

/// How a released value is masked. Text form (also its serde form, as a string):
/// "citizen_id", "credit_code", "phone", "chinese_name", "address", "keep_first:N", "keep_last:N", "hash".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mask {
    /// Citizen ID number: keeps the first 3 and last 4 chars; under 8 chars, hides all.
    CitizenId,
    /// Unified social credit code: keeps the first 6 and last 4 chars; under 11 chars, hides all.
    CreditCode,
    /// Phone number: keeps the first 3 and last 4 chars; under 8 chars, hides all.
    Phone,
    /// Chinese name: keeps the surname (two chars for a compound surname when
    /// the name has at least 3 chars); a one-char value is hidden whole.
    ChineseName,
    /// Address: keeps the administrative prefix up to the first `区` or `县`
    /// within the first 12 chars, else the first 6 chars, then appends `****`;
    /// a value of at most 6 chars without such a prefix becomes `****`.
    Address,
    /// Keeps the first `N` chars.
    KeepFirst(u8),
    /// Keeps the last `N` chars.
    KeepLast(u8),
    /// `h:` and the first 16 lowercase hex chars of HMAC-SHA256(key, value).
    Hash,
}

impl Mask {
    /// Masks one value, appending the result to `out` (no allocation when `out` has capacity).
    /// `key` is the hub's secret for `Hash` (HMAC-SHA256); other masks ignore it.
    pub fn apply_into(self, value: &str, key: &[u8], out: &mut String) {
        match self {
            Mask::CitizenId => keep_ends(value, 3, 4, 8, out),
            Mask::CreditCode => keep_ends(value, 6, 4, 11, out),
            Mask::Phone => keep_ends(value, 3, 4, 8, out),
            Mask::ChineseName => {
                let len = value.chars().count();
                let keep = if len <= 1 {
                    0
                } else if len >= 3 && COMPOUND_SURNAMES.iter().any(|s| value.starts_with(s)) {
                    2
                } else {
                    1
                };
                keep_ends(value, keep, 0, 0, out);
            }
            Mask::Address => {
                out.push_str(&value[..address_prefix_len(value)]);
                out.push_str(ADDRESS_TAIL);
            }
            Mask::KeepFirst(n) => keep_ends(value, usize::from(n), 0, 0, out),
            Mask::KeepLast(n) => keep_ends(value, 0, usize::from(n), 0, out),
            Mask::Hash => hash_into(value, key, out),
        }
    }

    /// Masks one value into a new string; see [`Mask::apply_into`].
    pub fn apply(self, value: &str, key: &[u8]) -> String {
        let mut out = String::with_capacity(value.len() + HASH_PREFIX.len() + HASH_HEX_LEN);
        self.apply_into(value, key, &mut out);
        out
    }
}

/// Appends `value` with all but its first `first` and last `last` chars
/// replaced by `*`; a value of fewer than `min_len` chars is replaced whole.
/// Kept ranges that overlap keep the whole value.
fn keep_ends(value: &str, first: usize, last: usize, min_len: usize, out: &mut String) {
    let len = value.chars().count();
    if len < min_len {
        out.extend(std::iter::repeat_n(MASK_CHAR, len));
        return;
    }
    let tail_from = len.saturating_sub(last);
    for (i, c) in value.chars().enumerate() {
        out.push(if i < first || i >= tail_from {
            c
        } else {
            MASK_CHAR
        });
    }
}

/// The byte length of the prefix that `address` keeps.
fn address_prefix_len(value: &str) -> usize {
    for (byte, c) in value.char_indices().take(12) {
        if c == '区' || c == '县' {
            return byte + c.len_utf8();
        }
    }
    // No district or county: the first 6 chars, unless that is the whole value.
    match value.char_indices().nth(6) {
        Some((byte, _)) => byte,
        None => 0,
    }
}

/// Whether `value` already is a `hash` output: `h:` and 16 lowercase hex chars.
fn is_hashed(value: &str) -> bool {
    value.len() == HASH_PREFIX.len() + HASH_HEX_LEN
        && value.starts_with(HASH_PREFIX)
        && value.as_bytes()[HASH_PREFIX.len()..]
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hash_into(value: &str, key: &[u8], out: &mut String) {
    if is_hashed(value) {
        out.push_str(value);
        return;
    }
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(value.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut hex_buf = [0u8; HASH_HEX_LEN];
    hex::encode_to_slice(&digest[..HASH_HEX_LEN / 2], &mut hex_buf)
        .expect("the buffer holds exactly two hex chars per byte");
    out.push_str(HASH_PREFIX);
    out.push_str(std::str::from_utf8(&hex_buf).expect("hex is ASCII"));
}

impl FromStr for Mask {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let unknown = || Error::UnknownMask(s.to_owned());
        Ok(match s {
            "citizen_id" => Mask::CitizenId,
            "credit_code" => Mask::CreditCode,
            "phone" => Mask::Phone,
            "chinese_name" => Mask::ChineseName,
            "address" => Mask::Address,
            "hash" => Mask::Hash,
            _ => {
                let (kind, n) = s.split_once(':').ok_or_else(unknown)?;
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(unknown());
                }
                let n: u8 = n.parse().map_err(|_| unknown())?;
                if n > MAX_KEEP {
                    return Err(unknown());
                }
                match kind {
                    "keep_first" => Mask::KeepFirst(n),
                    "keep_last" => Mask::KeepLast(n),
                    _ => return Err(unknown()),
                }
            }
        })
    }
}

impl fmt::Display for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mask::CitizenId => f.write_str("citizen_id"),
            Mask::CreditCode => f.write_str("credit_code"),
            Mask::Phone => f.write_str("phone"),
            Mask::ChineseName => f.write_str("chinese_name"),
            Mask::Address => f.write_str("address"),
            Mask::KeepFirst(n) => write!(f, "keep_first:{n}"),
            Mask::KeepLast(n) => write!(f, "keep_last:{n}"),
            Mask::Hash => f.write_str("hash"),
        }
    }
}

impl serde::Serialize for Mask {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mask {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MaskVisitor;

        impl serde::de::Visitor<'_> for MaskVisitor {
            type Value = Mask;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mask such as \"phone\" or \"keep_last:4\"")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Mask, E> {
                v.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(MaskVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &[u8] = b"hub secret";

    const ALL: [Mask; 10] = [
        Mask::CitizenId,
        Mask::CreditCode,
        Mask::Phone,
        Mask::ChineseName,
        Mask::Address,
        Mask::KeepFirst(0),
        Mask::KeepFirst(3),
        Mask::KeepLast(0),
        Mask::KeepLast(4),
        Mask::Hash,
    ];

    // ---- examples ----

    #[test]
    fn citizen_id_examples() {
        assert_eq!(
            Mask::CitizenId.apply("310104199001011234", KEY),
            "310***********1234"
        );
        assert_eq!(Mask::CitizenId.apply("1234567", KEY), "*******");
        assert_eq!(Mask::CitizenId.apply("12345678", KEY), "123*5678");
        assert_eq!(Mask::CitizenId.apply("", KEY), "");
    }

    #[test]
    fn credit_code_examples() {
        assert_eq!(
            Mask::CreditCode.apply("91310104MA1FL8T0X1", KEY),
            "913101********T0X1"
        );
        assert_eq!(Mask::CreditCode.apply("9131010", KEY), "*******");
        assert_eq!(Mask::CreditCode.apply("0123456789", KEY), "**********");
        assert_eq!(Mask::CreditCode.apply("0123456789A", KEY), "012345*789A");
    }

    #[test]
    fn phone_examples() {
        assert_eq!(Mask::Phone.apply("13812345678", KEY), "138****5678");
        assert_eq!(Mask::Phone.apply("1381234", KEY), "*******");
        assert_eq!(Mask::Phone.apply("+86-13812345678", KEY), "+86********5678");
    }

    #[test]
    fn chinese_name_examples() {
        assert_eq!(Mask::ChineseName.apply("张三", KEY), "张*");
        assert_eq!(Mask::ChineseName.apply("张三丰", KEY), "张**");
        assert_eq!(Mask::ChineseName.apply("欧阳娜娜", KEY), "欧阳**");
        assert_eq!(Mask::ChineseName.apply("诸葛亮", KEY), "诸葛*");
        assert_eq!(Mask::ChineseName.apply("欧阳", KEY), "欧*");
        assert_eq!(Mask::ChineseName.apply("王", KEY), "*");
        assert_eq!(Mask::ChineseName.apply("", KEY), "");
    }

    #[test]
    fn address_examples() {
        assert_eq!(
            Mask::Address.apply("上海市徐汇区天平路街道衡山路123号", KEY),
            "上海市徐汇区****"
        );
        assert_eq!(
            Mask::Address.apply("江苏省苏州市昆山县玉山镇", KEY),
            "江苏省苏州市昆山县****"
        );
        // The first 区 or 县 wins, however short the prefix.
        assert_eq!(Mask::Address.apply("区政府大院3号", KEY), "区****");
        // None within the first 12 chars: the first 6.
        assert_eq!(
            Mask::Address.apply("广东省深圳市南山科技园一路二号楼区", KEY),
            "广东省深圳市****"
        );
        // The 12th char still counts; the 13th does not.
        assert_eq!(
            Mask::Address.apply("一二三四五六七八九十甲区路1号", KEY),
            "一二三四五六七八九十甲区****"
        );
        assert_eq!(
            Mask::Address.apply("一二三四五六七八九十甲乙区路1号", KEY),
            "一二三四五六****"
        );
        // Short and without a district: nothing is kept.
        assert_eq!(Mask::Address.apply("衡山路123", KEY), "****");
        assert_eq!(Mask::Address.apply("", KEY), "****");
        assert_eq!(Mask::Address.apply("徐汇区", KEY), "徐汇区****");
    }

    #[test]
    fn keep_examples() {
        assert_eq!(Mask::KeepFirst(2).apply("abcdef", KEY), "ab****");
        assert_eq!(Mask::KeepLast(2).apply("abcdef", KEY), "****ef");
        assert_eq!(Mask::KeepFirst(0).apply("张三", KEY), "**");
        assert_eq!(Mask::KeepLast(0).apply("张三", KEY), "**");
        assert_eq!(Mask::KeepFirst(10).apply("张三", KEY), "张三");
        assert_eq!(Mask::KeepLast(1).apply("张三丰", KEY), "**丰");
    }

    #[test]
    fn hash_examples() {
        let h = Mask::Hash.apply("310104199001011234", KEY);
        assert_eq!(h.len(), 18);
        assert!(is_hashed(&h), "{h}");
        assert_eq!(Mask::Hash.apply(&h, KEY), h);
        assert_ne!(Mask::Hash.apply("310104199001011234", b"other key"), h);
        // Known answer: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog")
        // = f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8.
        assert_eq!(
            Mask::Hash.apply("The quick brown fox jumps over the lazy dog", b"key"),
            "h:f7bc83f430538424"
        );
        // Upper-case hex or a wrong length is not a hash output: it gets hashed.
        assert_ne!(
            Mask::Hash.apply("h:F7BC83F430538424", KEY),
            "h:F7BC83F430538424"
        );
        assert_ne!(
            Mask::Hash.apply("h:f7bc83f43053842", KEY),
            "h:f7bc83f43053842"
        );
    }

    #[test]
    fn apply_into_appends() {
        let mut out = String::with_capacity(64);
        out.push_str("x=");
        let cap = out.capacity();
        Mask::Phone.apply_into("13812345678", KEY, &mut out);
        Mask::Hash.apply_into("13812345678", KEY, &mut out);
        assert!(out.starts_with("x=138****5678h:"));
        assert_eq!(out.capacity(), cap);
    }

    #[test]
    fn text_form() {
        for (text, mask) in [
            ("citizen_id", Mask::CitizenId),
            ("credit_code", Mask::CreditCode),
            ("phone", Mask::Phone),
            ("chinese_name", Mask::ChineseName),
            ("address", Mask::Address),
            ("keep_first:3", Mask::KeepFirst(3)),
            ("keep_last:0", Mask::KeepLast(0)),
            ("keep_last:64", Mask::KeepLast(64)),
            ("hash", Mask::Hash),
        ] {
            assert_eq!(text.parse::<Mask>().unwrap(), mask);
            assert_eq!(mask.to_string(), text);
            let json = serde_json::to_string(&mask).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<Mask>(&json).unwrap(), mask);
        }
        for bad in [
            "",
            "Phone",
            " phone",
            "keep_first",
            "keep_first:",
            "keep_first:65",
            "keep_first:256",
            "keep_first:-1",
            "keep_first:+1",
            "keep_first:x",
            "keep_first:1:2",
            "keep_middle:3",
            "hash:3",
        ] {
            match bad.parse::<Mask>() {
                Err(Error::UnknownMask(s)) => assert_eq!(s, bad),
                other => panic!("{bad:?} parsed as {other:?}"),
            }
        }
        let err = serde_json::from_str::<Mask>("\"keep_last:99\"").unwrap_err();
        assert!(
            err.to_string().contains("unknown mask 'keep_last:99'"),
            "{err}"
        );
        assert!(serde_json::from_str::<Mask>("3").is_err());
    }

    // ---- properties ----

    /// Arbitrary Unicode mixed with the chars the masks look for.
    fn text() -> impl Strategy<Value = String> {
        let ch = prop_oneof![
            3 => any::<char>(),
            2 => prop::sample::select(
                "*区县欧阳诸葛张王三丰上海市徐汇0123456789abcdefh:X".chars().collect::<Vec<_>>()
            ),
        ];
        let base = prop::collection::vec(ch, 0..32).prop_map(String::from_iter);
        prop_oneof![
            3 => base.clone(),
            1 => (prop::sample::select(COMPOUND_SURNAMES), base.clone())
                .prop_map(|(s, rest)| format!("{s}{rest}")),
            1 => "h:[0-9a-f]{16}",
            1 => any::<String>(),
        ]
    }

    fn mask() -> impl Strategy<Value = Mask> {
        prop_oneof![
            Just(Mask::CitizenId),
            Just(Mask::CreditCode),
            Just(Mask::Phone),
            Just(Mask::ChineseName),
            Just(Mask::Address),
            (0..=MAX_KEEP).prop_map(Mask::KeepFirst),
            (0..=MAX_KEEP).prop_map(Mask::KeepLast),
            Just(Mask::Hash),
        ]
    }

    /// Which char positions a length-preserving mask keeps, worked out here
    /// independently of the implementation.
    fn kept(mask: Mask, value: &str) -> Vec<bool> {
        let n = value.chars().count();
        let ends = |first: usize, last: usize| -> Vec<bool> {
            (0..n).map(|i| i < first || i + last >= n).collect()
        };
        match mask {
            Mask::CitizenId | Mask::Phone if n < 8 => vec![false; n],
            Mask::CitizenId | Mask::Phone => ends(3, 4),
            Mask::CreditCode if n < 11 => vec![false; n],
            Mask::CreditCode => ends(6, 4),
            Mask::ChineseName => {
                let chars: Vec<char> = value.chars().collect();
                let compound = n >= 3
                    && COMPOUND_SURNAMES.iter().any(|s| {
                        let s: Vec<char> = s.chars().collect();
                        chars[..2] == s[..]
                    });
                match n {
                    0 | 1 => vec![false; n],
                    _ if compound => ends(2, 0),
                    _ => ends(1, 0),
                }
            }
            Mask::KeepFirst(k) => ends(usize::from(k), 0),
            Mask::KeepLast(k) => ends(0, usize::from(k)),
            Mask::Address | Mask::Hash => unreachable!("not length-preserving"),
        }
    }

    /// The address prefix, worked out independently.
    fn address_prefix(value: &str) -> String {
        let chars: Vec<char> = value.chars().collect();
        if let Some(i) = chars.iter().take(12).position(|&c| c == '区' || c == '县') {
            chars[..=i].iter().collect()
        } else if chars.len() > 6 {
            chars[..6].iter().collect()
        } else {
            String::new()
        }
    }

    proptest! {
        #[test]
        fn every_mask_is_idempotent(m in mask(), x in text(), key in any::<Vec<u8>>()) {
            let once = m.apply(&x, &key);
            prop_assert_eq!(m.apply(&once, &key), once);
        }

        #[test]
        fn apply_into_equals_apply(m in mask(), x in text(), prefix in text()) {
            let mut out = prefix.clone();
            m.apply_into(&x, KEY, &mut out);
            prop_assert_eq!(out, format!("{prefix}{}", m.apply(&x, KEY)));
        }

        #[test]
        fn hidden_positions_are_stars(m in mask(), x in text()) {
            prop_assume!(!matches!(m, Mask::Address | Mask::Hash));
            let out = m.apply(&x, KEY);
            let keep = kept(m, &x);
            prop_assert_eq!(out.chars().count(), x.chars().count());
            for ((i, (a, b)), k) in x.chars().zip(out.chars()).enumerate().zip(keep) {
                if k {
                    prop_assert_eq!(a, b, "kept position {} of {:?}", i, x);
                } else {
                    prop_assert_eq!(b, MASK_CHAR, "hidden position {} of {:?}", i, x);
                }
            }
        }

        #[test]
        fn address_is_prefix_and_tail(x in text()) {
            let out = Mask::Address.apply(&x, KEY);
            let prefix = address_prefix(&x);
            prop_assert_eq!(&out, &format!("{prefix}{ADDRESS_TAIL}"));
            prop_assert!(x.starts_with(&prefix));
            let rest: Vec<char> = x.chars().skip(prefix.chars().count()).collect();
            for c in out.chars() {
                prop_assert!(
                    !rest.contains(&c) || prefix.contains(c) || c == MASK_CHAR,
                    "{:?} leaks {:?} of the rest of {:?}", out, c, x
                );
            }
        }

        #[test]
        fn hash_is_keyed_and_deterministic(
            x in text(),
            y in text(),
            k1 in prop::collection::vec(any::<u8>(), 0..40),
            k2 in prop::collection::vec(any::<u8>(), 0..40),
        ) {
            prop_assume!(!is_hashed(&x) && !is_hashed(&y));
            let h = Mask::Hash.apply(&x, &k1);
            prop_assert!(is_hashed(&h));
            prop_assert_eq!(&Mask::Hash.apply(&x, &k1), &h);
            if x != y {
                prop_assert_ne!(&Mask::Hash.apply(&y, &k1), &h);
            }
            // HMAC pads short keys with zeros, so keys that differ only in
            // trailing zeros are the same key.
            let trim = |k: &[u8]| k.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            if k1[..trim(&k1)] != k2[..trim(&k2)] {
                prop_assert_ne!(&Mask::Hash.apply(&x, &k2), &h);
            }
        }

        #[test]
        fn text_form_round_trips(m in mask()) {
            prop_assert_eq!(m.to_string().parse::<Mask>().unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            prop_assert_eq!(serde_json::from_str::<Mask>(&json).unwrap(), m);
        }
    }

    #[test]
    fn all_listed_masks_are_idempotent_on_examples() {
        for m in ALL {
            for x in [
                "310104199001011234",
                "欧阳娜娜",
                "上海市徐汇区天平路街道衡山路123号",
                "",
                "*",
                "h:0123456789abcdef",
            ] {
                let once = m.apply(x, KEY);
                assert_eq!(m.apply(&once, KEY), once, "{m} on {x:?}");
            }
        }
    }
}
