//! Directory rules checked without IO, before anything is written. Rules that
//! need the database (the provider exists, the code is free) live in the store.

use crate::model::{BaseLibrary, Category, Department, Level, ResourceSpec};
use crate::{Error, Result};
use arrow_schema::DataType;
use std::collections::HashSet;
use tongban_policies::ShareType;

const MAX_TEXT: usize = 2000;

fn required(field: &str, value: &str, max_chars: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(Error::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    Ok(())
}

fn optional_text(field: &str, value: &str) -> Result<()> {
    if value.chars().count() > MAX_TEXT {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
    Ok(())
}

/// A department code: 2–64 of `a-z 0-9 - .`, starting with a letter or digit.
pub fn department_code(field: &str, code: &str) -> Result<()> {
    let ok = (2..=64).contains(&code.len())
        && code
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && code
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("'{code}' is not a department code (2-64 of a-z, 0-9, '-', '.')"),
        ))
    }
}

/// Checks a department on its own; the parent's existence and level are the store's.
pub fn department(d: &Department) -> Result<()> {
    department_code("code", &d.code)?;
    required("name", &d.name, 200)?;
    match (d.level, &d.parent) {
        (Level::City, Some(_)) => {}
        (Level::City, None) => {}
        (_, None) => return Err(Error::invalid("parent", "required below city level")),
        (_, Some(p)) => department_code("parent", p)?,
    }
    if d.parent.as_deref() == Some(d.code.as_str()) {
        return Err(Error::invalid(
            "parent",
            "a department cannot be its own parent",
        ));
    }
    if let Some(div) = &d.division_code
        && (!(div.len() == 6 || div.len() == 12) || !div.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err(Error::invalid(
            "division_code",
            format!("'{div}' is not a 6-digit district or 12-digit street code"),
        ));
    }
    if let Some(cc) = &d.credit_code {
        tongban_policies::ids::validate_credit_code(cc)
            .map_err(|e| Error::invalid("credit_code", e.to_string()))?;
    }
    Ok(())
}

/// The parent of a department must sit one level or more above it.
pub fn parent_level(child: Level, parent: Level) -> Result<()> {
    let rank = |l: Level| match l {
        Level::City => 0,
        Level::District => 1,
        Level::Street => 2,
    };
    if rank(parent) < rank(child) {
        Ok(())
    } else {
        Err(Error::invalid(
            "parent",
            "the parent must be at a higher level",
        ))
    }
}

fn category_digit(c: Category) -> u8 {
    match c {
        Category::Base => b'1',
        Category::Theme => b'2',
        Category::Department => b'3',
    }
}

fn library_class(l: BaseLibrary) -> &'static str {
    match l {
        BaseLibrary::Population => "01",
        BaseLibrary::LegalEntity => "02",
        BaseLibrary::Geospatial => "03",
        BaseLibrary::ELicence => "04",
    }
}

/// Checks a resource code alone: `<3-9 digits>/<6 digits>`.
pub fn resource_code(code: &str) -> Result<()> {
    let ok = code.split_once('/').is_some_and(|(class, seq)| {
        (3..=9).contains(&class.len())
            && class.bytes().all(|c| c.is_ascii_digit())
            && seq.len() == 6
            && seq.bytes().all(|c| c.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "code",
            format!(
                "'{code}' is not a resource code like 101/000001 (3-9 digit class, '/', 6-digit sequence)"
            ),
        ))
    }
}

/// The Arrow types a data item may have: the flat types every connector and
/// the Parquet store can carry.
pub fn data_type(field: &str, s: &str) -> Result<DataType> {
    let dt: DataType = s.parse().map_err(|_| {
        Error::invalid(
            field,
            format!(
                "'{s}' is not an Arrow data type (e.g. Utf8, Int64, Date32, Decimal128(18, 2))"
            ),
        )
    })?;
    use DataType::*;
    match &dt {
        Decimal128(p, s) if *p == 0 || *p > 38 || *s < 0 || *s as u8 > *p => {
            return Err(Error::invalid(
                field,
                format!("{dt} needs a precision of 1 to 38 and a scale from 0 to the precision"),
            ));
        }
        Timestamp(_, Some(tz)) if !is_fixed_zone(tz) => {
            return Err(Error::invalid(
                field,
                format!(
                    "time zone '{tz}' is not supported: use \"UTC\" or an offset like \"+08:00\""
                ),
            ));
        }
        _ => {}
    }
    match &dt {
        Boolean
        | Int8
        | Int16
        | Int32
        | Int64
        | UInt8
        | UInt16
        | UInt32
        | UInt64
        | Float32
        | Float64
        | Utf8
        | LargeUtf8
        | Utf8View
        | Binary
        | LargeBinary
        | Date32
        | Date64
        | Time64(_)
        | Timestamp(_, _)
        | Decimal128(_, _) => Ok(dt),
        other => Err(Error::invalid(
            field,
            format!(
                "data type {other} is not supported for data items (use a flat type such as Utf8, Int64, Float64, Boolean, Date32, Timestamp or Decimal128)"
            ),
        )),
    }
}

/// `UTC` or a `±HH:MM` offset: zones every reader understands without a tz database.
fn is_fixed_zone(tz: &str) -> bool {
    let b = tz.as_bytes();
    tz == "UTC"
        || (b.len() == 6
            && (b[0] == b'+' || b[0] == b'-')
            && b[1..3].iter().all(u8::is_ascii_digit)
            && b[3] == b':'
            && b[4..6].iter().all(u8::is_ascii_digit))
}

/// Checks a resource description on its own; the provider's existence is the store's.
pub fn resource(r: &ResourceSpec) -> Result<()> {
    resource_code(&r.code)?;
    let class = r.code.split('/').next().unwrap_or_default().as_bytes();
    if class[0] != category_digit(r.category) {
        return Err(Error::invalid(
            "code",
            format!(
                "a {} resource code must start with {}",
                r.category,
                category_digit(r.category) as char
            ),
        ));
    }
    match (r.category, r.base_library) {
        (Category::Base, None) => {
            return Err(Error::invalid(
                "base_library",
                "required for base resources",
            ));
        }
        (Category::Base, Some(lib)) => {
            if &class[1..3] != library_class(lib).as_bytes() {
                return Err(Error::invalid(
                    "code",
                    format!(
                        "a {lib} base resource code must start with 1{}",
                        library_class(lib)
                    ),
                ));
            }
        }
        (_, Some(_)) => {
            return Err(Error::invalid(
                "base_library",
                "only base resources belong to a base library",
            ));
        }
        (_, None) => {}
    }
    required("name", &r.name, 200)?;
    department_code("provider", &r.provider)?;
    optional_text("summary", &r.summary)?;
    if r.items.is_empty() {
        return Err(Error::invalid(
            "items",
            "a resource needs at least one data item",
        ));
    }
    let mut names = HashSet::new();
    for (i, item) in r.items.iter().enumerate() {
        let at = |f: &str| format!("items[{i}].{f}");
        let name_ok = (1..=63).contains(&item.name.len())
            && item
                .name
                .bytes()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase())
            && item
                .name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
        if !name_ok {
            return Err(Error::invalid(
                at("name"),
                format!(
                    "'{}' is not an item name (lowercase letter, then a-z, 0-9, '_'; at most 63)",
                    item.name
                ),
            ));
        }
        if !names.insert(item.name.as_str()) {
            return Err(Error::invalid(
                at("name"),
                format!("duplicate item '{}'", item.name),
            ));
        }
        required(&at("label"), &item.label, 100)?;
        let dt = data_type(&at("data_type"), &item.data_type)?;
        if item.mask.is_some()
            && !matches!(
                dt,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            )
        {
            return Err(Error::invalid(
                at("mask"),
                format!("masks apply to text items, not {dt}"),
            ));
        }
        optional_text(&at("description"), &item.description)?;
        let filled = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        match item.share_type {
            ShareType::None if !filled(&item.legal_basis) => {
                return Err(Error::invalid(
                    at("legal_basis"),
                    "required when share_type is none",
                ));
            }
            ShareType::Conditional if !filled(&item.share_condition) => {
                return Err(Error::invalid(
                    at("share_condition"),
                    "required when share_type is conditional",
                ));
            }
            _ => {}
        }
        for (f, v) in [
            ("share_condition", &item.share_condition),
            ("legal_basis", &item.legal_basis),
        ] {
            if let Some(v) = v {
                optional_text(&at(f), v)?;
            }
        }
    }
    let mut keys = HashSet::new();
    for (i, k) in r.key_items.iter().enumerate() {
        if !names.contains(k.as_str()) {
            return Err(Error::invalid(
                format!("key_items[{i}]"),
                format!("'{k}' is not one of the items"),
            ));
        }
        if !keys.insert(k.as_str()) {
            return Err(Error::invalid(
                format!("key_items[{i}]"),
                format!("duplicate key item '{k}'"),
            ));
        }
    }
    if let Some(d) = &r.division_item {
        match r.items.iter().find(|i| &i.name == d) {
            None => {
                return Err(Error::invalid(
                    "division_item",
                    format!("'{d}' is not one of the items"),
                ));
            }
            Some(i) if i.data_type != "Utf8" => {
                return Err(Error::invalid(
                    "division_item",
                    format!(
                        "'{d}' holds division codes as text: its type must be Utf8, not {}",
                        i.data_type
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if r.category == Category::Base && r.key_items.is_empty() {
        return Err(Error::invalid(
            "key_items",
            "base resources need at least one key item",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_types_parse_as_arrow_prints_them() {
        for ok in [
            "Utf8",
            "Int64",
            "Float64",
            "Boolean",
            "Date32",
            "Decimal128(18, 2)",
        ] {
            data_type("t", ok).unwrap();
        }
        let err = data_type("items[0].data_type", "varchar(20)").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("items[0].data_type: 'varchar(20)' is not an Arrow data type")
        );
        data_type("t", "Timestamp(µs, \"+08:00\")").unwrap();
        assert!(data_type("t", "Decimal128(40, 2)").is_err());
        assert!(data_type("t", "Decimal128(10, 12)").is_err());
        assert!(data_type("t", "Timestamp(µs, \"Mars/Olympus\")").is_err());
        let err = data_type("t", "List(Int64)").unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
    }

    #[test]
    fn resource_codes() {
        resource_code("101/000001").unwrap();
        resource_code("310203001/123456").unwrap();
        for bad in [
            "",
            "101",
            "10/000001",
            "101/00001",
            "1a1/000001",
            "101-000001",
            "101/000001/1",
        ] {
            assert!(resource_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn department_codes() {
        department_code("c", "sh-gaj").unwrap();
        department_code("c", "310104.zwfw").unwrap();
        for bad in ["", "a", "SH-GAJ", "-sh", "sh gaj", "上海"] {
            assert!(department_code("c", bad).is_err(), "{bad}");
        }
    }
}
