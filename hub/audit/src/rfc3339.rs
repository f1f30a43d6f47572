//! Timestamps as RFC 3339 text, byte for byte as chrono's `Serialize` for
//! `DateTime<Utc>` writes them (`2026-12-03T12:46:25.626773Z`: the fraction
//! in 3, 6 or 9 digits, as few as its non-zero digits allow, none when it
//! is zero), without going through `fmt`. chrono writes through `fmt`
//! character by character: about 6,000 instructions a timestamp, and a
//! lookup writes two (its audit record's time and its answer's `as_of`),
//! 7 % of a lookup's instructions in the profile (docs/benchmarks.md).
//!
//! The audit chain hashes the bytes serde writes, and `verify` re-encodes
//! parsed records with chrono: the two must agree exactly, which the tests
//! hold them to.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;

/// `t` as chrono writes it, in `buf`; `None` where this writer does not
/// apply (a year outside 0–9999, a leap second): chrono writes those.
pub fn format<'b>(t: &DateTime<Utc>, buf: &'b mut [u8; 32]) -> Option<&'b str> {
    let (year, nanos) = (t.year(), t.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    fn digits(out: &mut [u8], mut v: u32) {
        for d in out.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    digits(&mut buf[0..4], year as u32);
    buf[4] = b'-';
    digits(&mut buf[5..7], t.month());
    buf[7] = b'-';
    digits(&mut buf[8..10], t.day());
    buf[10] = b'T';
    digits(&mut buf[11..13], t.hour());
    buf[13] = b':';
    digits(&mut buf[14..16], t.minute());
    buf[16] = b':';
    digits(&mut buf[17..19], t.second());
    let mut end = 19;
    let (shown, value) = if nanos == 0 {
        (0, 0)
    } else if nanos % 1_000_000 == 0 {
        (3, nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        (6, nanos / 1_000)
    } else {
        (9, nanos)
    };
    if shown > 0 {
        buf[end] = b'.';
        digits(&mut buf[end + 1..end + 1 + shown], value);
        end += 1 + shown;
    }
    buf[end] = b'Z';
    std::str::from_utf8(&buf[..end + 1]).ok()
}

/// `#[serde(serialize_with = "tongban_audit::rfc3339::serialize")]` for a
/// `DateTime<Utc>` field: the same text as chrono's, written faster.
pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 32];
    match format(t, &mut buf) {
        Some(text) => s.serialize_str(text),
        None => t.serialize(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn ours(t: &DateTime<Utc>) -> String {
        let mut buf = [0u8; 32];
        format(t, &mut buf)
            .map(String::from)
            .unwrap_or_else(|| "-".into())
    }

    fn chrono_text(t: &DateTime<Utc>) -> String {
        serde_json::to_string(t)
            .unwrap()
            .trim_matches('"')
            .to_string()
    }

    #[test]
    fn every_fraction_width_is_chronos() {
        let base = Utc.with_ymd_and_hms(2026, 12, 3, 9, 5, 7).unwrap();
        for nanos in [
            0,
            1,
            10,
            999,
            1_000,
            120_000,
            999_000,
            1_000_000,
            500_000_000,
            999_999_999,
        ] {
            let t = base + chrono::Duration::nanoseconds(nanos);
            assert_eq!(ours(&t), chrono_text(&t), "{nanos} ns");
        }
        let early = Utc.with_ymd_and_hms(7, 1, 2, 0, 0, 0).unwrap();
        assert_eq!(ours(&early), chrono_text(&early));
    }

    proptest! {
        #[test]
        fn any_time_is_written_as_chrono_writes_it(
            secs in -62_167_219_200i64..253_402_300_800, // 0000-01-01 to 9999-12-31T23:59:59
            nanos in prop_oneof![Just(0u32), (0u32..1000).prop_map(|m| m * 1_000_000),
                                 (0u32..1_000_000).prop_map(|u| u * 1000), 0u32..1_000_000_000],
        ) {
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            prop_assert_eq!(ours(&t), chrono_text(&t));
            // Through serde, as a record's field.
            #[derive(Serialize)]
            struct R { #[serde(serialize_with = "serialize")] t: DateTime<Utc> }
            prop_assert_eq!(serde_json::to_string(&R { t }).unwrap(), format!("{{\"t\":{}}}", serde_json::to_string(&t).unwrap()));
        }
    }
}
