//! MySQL / MariaDB ⇄ Arrow type mapping, and the decoding of each supported
//! type from the bytes the binary protocol sends (every read is a prepared
//! statement, so values arrive in binary form). The table is documented in
//! `docs/connectors.md`; keep the two in step.

use crate::Error;
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{Datelike, NaiveDate};

/// A MySQL column type this connector moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MyType {
    /// `tinyint(1)`, which is what `BOOL` and `BOOLEAN` declare.
    Bool,
    /// Integers, by the Arrow type that holds every value of the column;
    /// `unsigned` says how to read the bytes the server sends (unsigned
    /// columns widen: `tinyint unsigned` is an `Int16`).
    Int8,
    Int16 {
        unsigned: bool,
    },
    Int32 {
        unsigned: bool,
    },
    Int64 {
        unsigned: bool,
    },
    UInt64,
    Float32,
    Float64,
    /// `decimal(p, s)` with p ≤ 38; wider decimals travel as exact text.
    Decimal {
        precision: u8,
        scale: i8,
    },
    DecimalText,
    /// Character types, `enum`, `set` and `json`.
    Text,
    /// `binary`, `varbinary` and the blobs.
    Binary,
    Date,
    /// `datetime` and `timestamp` (the session time zone is UTC, so
    /// `timestamp` values arrive in UTC).
    DateTime,
    /// `time`, as a time of day.
    Time,
}

impl MyType {
    /// The type of a column from its `information_schema.COLUMNS` row;
    /// `None` when the type has no mapping.
    pub fn from_schema(
        data_type: &str,
        column_type: &str,
        precision: Option<u64>,
        scale: Option<u64>,
    ) -> Option<MyType> {
        let column_type = column_type.to_ascii_lowercase();
        // `zerofill` implies `unsigned`, and COLUMN_TYPE then says both.
        let unsigned = column_type.contains("unsigned");
        Some(match data_type.to_ascii_lowercase().as_str() {
            // Only the exact `tinyint(1)`: MySQL 8 drops integer display
            // widths from COLUMN_TYPE except this one, kept because it means
            // a boolean.
            "tinyint" if column_type == "tinyint(1)" => MyType::Bool,
            "tinyint" if unsigned => MyType::Int16 { unsigned },
            "tinyint" => MyType::Int8,
            "smallint" if unsigned => MyType::Int32 { unsigned },
            "smallint" => MyType::Int16 { unsigned },
            "mediumint" => MyType::Int32 { unsigned },
            "int" | "integer" if unsigned => MyType::Int64 { unsigned },
            "int" | "integer" => MyType::Int32 { unsigned },
            "bigint" if unsigned => MyType::UInt64,
            "bigint" => MyType::Int64 { unsigned },
            // YEAR is sent as a two-byte unsigned integer.
            "year" => MyType::Int16 { unsigned: true },
            "float" => MyType::Float32,
            "double" | "real" => MyType::Float64,
            "decimal" | "numeric" => match (precision, scale) {
                (Some(p @ 1..=38), Some(s)) if s <= p => MyType::Decimal {
                    precision: p as u8,
                    scale: s as i8,
                },
                _ => MyType::DecimalText,
            },
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum"
            | "set" | "json" => MyType::Text,
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                MyType::Binary
            }
            "date" => MyType::Date,
            "datetime" | "timestamp" => MyType::DateTime,
            "time" => MyType::Time,
            _ => return None,
        })
    }

    /// The Arrow type its values become.
    pub fn arrow(self) -> DataType {
        match self {
            MyType::Bool => DataType::Boolean,
            MyType::Int8 => DataType::Int8,
            MyType::Int16 { .. } => DataType::Int16,
            MyType::Int32 { .. } => DataType::Int32,
            MyType::Int64 { .. } => DataType::Int64,
            MyType::UInt64 => DataType::UInt64,
            MyType::Float32 => DataType::Float32,
            MyType::Float64 => DataType::Float64,
            MyType::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
            MyType::DecimalText | MyType::Text => DataType::Utf8,
            MyType::Binary => DataType::Binary,
            MyType::Date => DataType::Date32,
            MyType::DateTime => DataType::Timestamp(TimeUnit::Microsecond, None),
            MyType::Time => DataType::Time64(TimeUnit::Microsecond),
        }
    }

    /// Whether the column is an integer (a possible range-split key, and a
    /// watermark bound as a number).
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            MyType::Int8
                | MyType::Int16 { .. }
                | MyType::Int32 { .. }
                | MyType::Int64 { .. }
                | MyType::UInt64
        )
    }

    /// Whether the integer's bytes are read as unsigned.
    pub fn is_unsigned(self) -> bool {
        matches!(
            self,
            MyType::Int16 { unsigned: true }
                | MyType::Int32 { unsigned: true }
                | MyType::Int64 { unsigned: true }
                | MyType::UInt64
        )
    }
}

/// The error for a column whose type is not mapped.
pub fn unsupported(column: &str, column_type: &str) -> Error {
    Error::UnsupportedType {
        column: column.to_string(),
        type_name: column_type.to_string(),
    }
}

type Decoded<T> = std::result::Result<T, String>;

/// Parses MySQL's decimal text (`-1234.56`) into the integer of a
/// `Decimal128(_, scale)` (`-123456` for scale 2), exactly: digits past the
/// scale must be zeros, and a value that overflows `i128` is an error.
pub fn decimal_to_i128(text: &str, scale: i8) -> Decoded<i128> {
    let bad = || format!("'{text}' is not a decimal with {scale} fractional digits");
    let scale = usize::try_from(scale).map_err(|_| bad())?;
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return Err(bad());
    }
    // Digits past the scale may only be zeros: nothing is rounded away.
    if frac.len() > scale && frac.bytes().skip(scale).any(|b| b != b'0') {
        return Err(bad());
    }
    let mut acc: i128 = 0;
    let kept = int.bytes().chain(frac.bytes().take(scale));
    let padding = std::iter::repeat_n(b'0', scale.saturating_sub(frac.len()));
    for b in kept.chain(padding) {
        acc = acc
            .checked_mul(10)
            .and_then(|a| a.checked_add(i128::from(b - b'0')))
            .ok_or_else(|| format!("'{text}' is out of range"))?;
    }
    Ok(if negative { -acc } else { acc })
}

/// A little-endian integer of 1, 2, 4 or 8 bytes.
pub fn wire_int(v: &[u8], unsigned: bool) -> Decoded<i128> {
    Ok(match (v.len(), unsigned) {
        (1, false) => i128::from(v[0] as i8),
        (1, true) => i128::from(v[0]),
        (2, false) => i128::from(i16::from_le_bytes([v[0], v[1]])),
        (2, true) => i128::from(u16::from_le_bytes([v[0], v[1]])),
        (4, false) => i128::from(i32::from_le_bytes(fixed(v)?)),
        (4, true) => i128::from(u32::from_le_bytes(fixed(v)?)),
        (8, false) => i128::from(i64::from_le_bytes(fixed(v)?)),
        (8, true) => i128::from(u64::from_le_bytes(fixed(v)?)),
        (n, _) => return Err(format!("an integer of {n} bytes")),
    })
}

/// Exactly `N` bytes.
pub fn fixed<const N: usize>(v: &[u8]) -> Decoded<[u8; N]> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const UNIX_EPOCH_FROM_CE: i32 = 719_163;

/// A binary DATE, DATETIME or TIMESTAMP: a length byte (0, 4, 7 or 11),
/// then year (2 bytes), month, day, hour, minute, second, microsecond (4
/// bytes). Returns the date and the microseconds into the day.
fn wire_date_time(v: &[u8]) -> Decoded<(NaiveDate, i64)> {
    let len = usize::from(*v.first().ok_or("an empty date")?);
    if v.len() != len + 1 || !matches!(len, 0 | 4 | 7 | 11) {
        return Err(format!("a date of {len} bytes"));
    }
    // Length 0 is MySQL's zero date, which has no calendar day.
    if len == 0 {
        return Err("the zero date 0000-00-00 is not a date".into());
    }
    let (year, month, day) = (u16::from_le_bytes([v[1], v[2]]), v[3], v[4]);
    let date = NaiveDate::from_ymd_opt(i32::from(year), u32::from(month), u32::from(day))
        .ok_or_else(|| format!("{year:04}-{month:02}-{day:02} is not a date"))?;
    let (h, m, s) = if len >= 7 {
        (v[5], v[6], v[7])
    } else {
        (0, 0, 0)
    };
    let micros = if len == 11 {
        u32::from_le_bytes(fixed(&v[8..12])?)
    } else {
        0
    };
    if h > 23 || m > 59 || s > 59 || micros > 999_999 {
        return Err(format!(
            "{h:02}:{m:02}:{s:02}.{micros:06} is not a time of day"
        ));
    }
    let time =
        ((i64::from(h) * 60 + i64::from(m)) * 60 + i64::from(s)) * 1_000_000 + i64::from(micros);
    Ok((date, time))
}

/// A binary DATE as a `Date32` (days since 1970-01-01).
pub fn wire_date(v: &[u8]) -> Decoded<i32> {
    let (date, _) = wire_date_time(v)?;
    Ok(date.num_days_from_ce() - UNIX_EPOCH_FROM_CE)
}

/// A binary DATETIME or TIMESTAMP as microseconds since 1970-01-01 00:00.
pub fn wire_datetime(v: &[u8]) -> Decoded<i64> {
    let (date, time) = wire_date_time(v)?;
    let days = i64::from(date.num_days_from_ce() - UNIX_EPOCH_FROM_CE);
    Ok(days * 86_400_000_000 + time)
}

/// A binary TIME as microseconds since midnight: a length byte (0, 8 or
/// 12), then sign, days (4 bytes), hour, minute, second, microsecond (4
/// bytes). MySQL's TIME is a duration (−838:59:59 to 838:59:59); only
/// values within one day are a time of day.
pub fn wire_time(v: &[u8]) -> Decoded<i64> {
    let len = usize::from(*v.first().ok_or("an empty time")?);
    if v.len() != len + 1 || !matches!(len, 0 | 8 | 12) {
        return Err(format!("a time of {len} bytes"));
    }
    if len == 0 {
        return Ok(0);
    }
    let negative = v[1] != 0;
    let days = u32::from_le_bytes(fixed(&v[2..6])?);
    let (h, m, s) = (i64::from(v[6]), i64::from(v[7]), i64::from(v[8]));
    let micros = if len == 12 {
        i64::from(u32::from_le_bytes(fixed(&v[9..13])?))
    } else {
        0
    };
    if negative || days > 0 {
        let hours = i64::from(days) * 24 + h;
        let sign = if negative { "-" } else { "" };
        return Err(format!(
            "{sign}{hours:02}:{m:02}:{s:02} is not a time of day (00:00:00 to 23:59:59.999999)"
        ));
    }
    Ok(((h * 60 + m) * 60 + s) * 1_000_000 + micros)
}
