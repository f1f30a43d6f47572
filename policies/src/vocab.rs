//! The words the directory and the lists are written in.

use serde::{Deserialize, Serialize};

/// How a data item may be shared (共享类型), per the national catalogue rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareType {
    /// 无条件共享: any registered department may use it, for a stated matter.
    Unconditional,
    /// 有条件共享: only under an approved need that covers the item.
    Conditional,
    /// 不予共享: never released; the directory must record the legal basis.
    None,
}

/// How sensitive a data item is; drives default masking and review strictness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// 公开: may be published openly.
    Public,
    /// 内部: for government use.
    Internal,
    /// 敏感: personal or commercial information; masked unless a need says otherwise.
    Sensitive,
    /// 高度敏感: e.g. health, religion; normally on the negative list.
    HighlySensitive,
}

/// Gives a fieldless enum its stable lowercase names: `as_str`, `Display` and
/// `FromStr` (with an [`UnknownWord`] error that lists the expected names).
/// The names must match the enum's serde names; tests check the ones used.
#[macro_export]
macro_rules! str_enum {
    ($ty:ty, $what:literal, { $($variant:path => $s:literal),+ $(,)? }) => {
        impl $ty {
            /// The stable lowercase name used in the API, the store and files.
            pub fn as_str(self) -> &'static str {
                match self { $($variant => $s),+ }
            }
        }
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.pad(self.as_str())
            }
        }
        impl ::std::str::FromStr for $ty {
            type Err = $crate::vocab::UnknownWord;
            fn from_str(s: &str) -> ::std::result::Result<Self, $crate::vocab::UnknownWord> {
                match s {
                    $($s => Ok($variant),)+
                    _ => Err($crate::vocab::UnknownWord {
                        what: $what,
                        got: s.to_string(),
                        expected: &[$($s),+],
                    }),
                }
            }
        }
    };
}

str_enum!(ShareType, "share type", {
    ShareType::Unconditional => "unconditional",
    ShareType::Conditional => "conditional",
    ShareType::None => "none",
});

str_enum!(Sensitivity, "sensitivity", {
    Sensitivity::Public => "public",
    Sensitivity::Internal => "internal",
    Sensitivity::Sensitive => "sensitive",
    Sensitivity::HighlySensitive => "highly_sensitive",
});

/// A word that is not one of an enumeration's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{got}', expected one of: {}", expected.join(", "))]
pub struct UnknownWord {
    pub what: &'static str,
    pub got: String,
    pub expected: &'static [&'static str],
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn names_round_trip_and_unknown_words_say_what_is_expected() {
        for t in [
            ShareType::Unconditional,
            ShareType::Conditional,
            ShareType::None,
        ] {
            assert_eq!(ShareType::from_str(t.as_str()).unwrap(), t);
        }
        let err = "sometimes".parse::<ShareType>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown share type 'sometimes', expected one of: unconditional, conditional, none"
        );
    }
}
