//! PostgreSQL ⇄ Arrow type mapping, and the binary `COPY` encoding of each
//! supported type. The table is documented in `docs/connectors.md`; keep the
//! two in step.

use crate::Error;
use arrow::datatypes::{DataType, TimeUnit};

/// Days from 1970-01-01 (Arrow) to 2000-01-01 (PostgreSQL's epoch).
pub const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A PostgreSQL column type this connector moves, by type OID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// `numeric(p, s)`; unconstrained `numeric` travels as exact text.
    Numeric {
        precision: u8,
        scale: i8,
    },
    NumericText,
    /// text, varchar, bpchar, name, citext-free text types.
    Text,
    Json,
    Jsonb,
    Uuid,
    Bytea,
    Date,
    Time,
    Timestamp,
    Timestamptz,
}

impl PgType {
    /// The type of a column from its OID and `atttypmod`; `None` when the
    /// type has no mapping.
    pub fn from_oid(oid: u32, typmod: i32) -> Option<PgType> {
        Some(match oid {
            16 => PgType::Bool,
            21 => PgType::Int2,
            23 => PgType::Int4,
            20 => PgType::Int8,
            700 => PgType::Float4,
            701 => PgType::Float8,
            1700 if typmod >= 4 => {
                let t = typmod - 4;
                let precision = ((t >> 16) & 0xffff) as u8;
                let scale = (t & 0xffff) as i16;
                // numeric(p, s) with p ≤ 38 fits Decimal128; larger ones and
                // negative scales keep their exact text.
                if precision == 0 || precision > 38 || !(0..=38).contains(&scale) {
                    PgType::NumericText
                } else {
                    PgType::Numeric {
                        precision,
                        scale: scale as i8,
                    }
                }
            }
            1700 => PgType::NumericText,
            25 | 1043 | 1042 | 19 => PgType::Text,
            114 => PgType::Json,
            3802 => PgType::Jsonb,
            2950 => PgType::Uuid,
            17 => PgType::Bytea,
            1082 => PgType::Date,
            1083 => PgType::Time,
            1114 => PgType::Timestamp,
            1184 => PgType::Timestamptz,
            _ => return None,
        })
    }

    /// The Arrow type its values become.
    pub fn arrow(self) -> DataType {
        match self {
            PgType::Bool => DataType::Boolean,
            PgType::Int2 => DataType::Int16,
            PgType::Int4 => DataType::Int32,
            PgType::Int8 => DataType::Int64,
            PgType::Float4 => DataType::Float32,
            PgType::Float8 => DataType::Float64,
            PgType::Numeric { precision, scale } => DataType::Decimal128(precision, scale),
            PgType::NumericText | PgType::Text | PgType::Json | PgType::Jsonb | PgType::Uuid => {
                DataType::Utf8
            }
            PgType::Bytea => DataType::Binary,
            PgType::Date => DataType::Date32,
            PgType::Time => DataType::Time64(TimeUnit::Microsecond),
            PgType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            PgType::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

/// The error for a column whose type is not mapped.
pub fn unsupported(column: &str, type_name: &str) -> Error {
    Error::UnsupportedType {
        column: column.to_string(),
        type_name: type_name.to_string(),
    }
}

/// Decodes a binary `numeric` into the integer of a `Decimal128(_, scale)`.
pub fn numeric_to_i128(buf: &[u8], scale: i8) -> std::result::Result<i128, String> {
    let (ndigits, weight, sign, digits) = numeric_parts(buf)?;
    let mut acc: i128 = 0;
    for d in digits.chunks_exact(2).take(ndigits) {
        let d = i16::from_be_bytes([d[0], d[1]]) as i128;
        acc = acc
            .checked_mul(10_000)
            .and_then(|a| a.checked_add(d))
            .ok_or("numeric out of range")?;
    }
    // acc × 10000^(weight − ndigits + 1) × 10^scale
    let exp10 = 4 * (weight as i32 - ndigits as i32 + 1) + scale as i32;
    let value = if exp10 >= 0 {
        10i128
            .checked_pow(exp10 as u32)
            .and_then(|p| acc.checked_mul(p))
            .ok_or("numeric out of range")?
    } else {
        // PostgreSQL rounds values to the column's scale, so the digits cut
        // here are zeros.
        acc / 10i128
            .checked_pow((-exp10) as u32)
            .ok_or("numeric out of range")?
    };
    Ok(if sign == 0x4000 { -value } else { value })
}

/// Decodes a binary `numeric` into its exact decimal text.
pub fn numeric_to_text(buf: &[u8]) -> std::result::Result<String, String> {
    let (ndigits, weight, sign, digits) = numeric_parts(buf)?;
    let dscale = i16::from_be_bytes([buf[6], buf[7]]).max(0) as usize;
    let groups: Vec<i16> = digits
        .chunks_exact(2)
        .take(ndigits)
        .map(|d| i16::from_be_bytes([d[0], d[1]]))
        .collect();
    let mut int = String::new();
    for g in 0..=weight.max(-1) {
        let d = groups.get(g as usize).copied().unwrap_or(0);
        if int.is_empty() {
            if d != 0 {
                int.push_str(&d.to_string());
            }
        } else {
            int.push_str(&format!("{d:04}"));
        }
    }
    if int.is_empty() {
        int.push('0');
    }
    let mut frac = String::new();
    let mut g = weight as i32 + 1;
    while frac.len() < dscale {
        let d = if g < 0 {
            0
        } else {
            groups.get(g as usize).copied().unwrap_or(0)
        };
        frac.push_str(&format!("{d:04}"));
        g += 1;
    }
    frac.truncate(dscale);
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    out.push_str(&int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(&frac);
    }
    Ok(out)
}

fn numeric_parts(buf: &[u8]) -> std::result::Result<(usize, i16, u16, &[u8]), String> {
    if buf.len() < 8 {
        return Err("numeric shorter than its header".into());
    }
    let ndigits = i16::from_be_bytes([buf[0], buf[1]]).max(0) as usize;
    let weight = i16::from_be_bytes([buf[2], buf[3]]);
    let sign = u16::from_be_bytes([buf[4], buf[5]]);
    if sign == 0xC000 {
        return Err("NaN has no decimal value".into());
    }
    if sign != 0 && sign != 0x4000 {
        return Err("infinite numeric has no decimal value".into());
    }
    let digits = &buf[8..];
    if digits.len() < ndigits * 2 {
        return Err("numeric shorter than its digits".into());
    }
    Ok((ndigits, weight, sign, digits))
}

/// Encodes the integer of a `Decimal128(_, scale)` as a binary `numeric`.
pub fn i128_to_numeric(value: i128, scale: i8, out: &mut Vec<u8>) {
    let scale = scale.max(0) as u32;
    let negative = value < 0;
    let mut v = value.unsigned_abs();
    // Align the scale to base-10000 groups: pad the fraction with zeros.
    let pad = (4 - scale % 4) % 4;
    v *= 10u128.pow(pad);
    let frac_groups = (scale + pad) / 4;
    let mut groups: Vec<i16> = Vec::new();
    while v > 0 {
        groups.push((v % 10_000) as i16);
        v /= 10_000;
    }
    groups.reverse();
    let weight = groups.len() as i32 - frac_groups as i32 - 1;
    // Trailing zero groups need not be sent.
    while groups.last() == Some(&0) {
        groups.pop();
    }
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&(if groups.is_empty() { 0 } else { weight as i16 }).to_be_bytes());
    out.extend_from_slice(&(if negative { 0x4000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&(scale as i16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

/// Formats a binary `uuid` (16 bytes) as its canonical text.
pub fn uuid_text(b: &[u8]) -> std::result::Result<String, String> {
    if b.len() != 16 {
        return Err(format!("uuid of {} bytes", b.len()));
    }
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: i128, scale: i8) -> i128 {
        let mut buf = Vec::new();
        i128_to_numeric(v, scale, &mut buf);
        numeric_to_i128(&buf, scale).unwrap()
    }

    #[test]
    fn numerics_round_trip_through_the_binary_form() {
        for (v, s) in [
            (0, 2),
            (1, 2),
            (-1, 2),
            (12_345_678, 2),
            (-99_999, 0),
            (10_000, 0),
            (123_456_789_012_345, 6),
            (5, 5),
        ] {
            assert_eq!(roundtrip(v, s), v, "{v} scale {s}");
        }
    }

    #[test]
    fn numeric_text_is_exact() {
        let mut buf = Vec::new();
        i128_to_numeric(-1_234_500, 3, &mut buf);
        assert_eq!(numeric_to_text(&buf).unwrap(), "-1234.500");
        buf.clear();
        i128_to_numeric(7, 4, &mut buf);
        assert_eq!(numeric_to_text(&buf).unwrap(), "0.0007");
    }

    #[test]
    fn typmods_give_precision_and_scale() {
        assert_eq!(
            PgType::from_oid(1700, ((12 << 16) | 2) + 4),
            Some(PgType::Numeric {
                precision: 12,
                scale: 2
            })
        );
        assert_eq!(PgType::from_oid(1700, -1), Some(PgType::NumericText));
        assert_eq!(PgType::from_oid(600, -1), None); // point
    }
}
