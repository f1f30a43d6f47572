//! Answers of a few rows, written straight from the index's columns.
//!
//! The general path of a lookup gathers the asked rows into a new batch,
//! masks it with the `policies` helpers and lets Arrow's JSON writer encode
//! it: several arrays and a writer set up per request, which for the usual
//! answer of one row costs more than the row. [`Rows`] reads the values of
//! one row where they lie, masks text with the same [`Mask`] functions and
//! serialises the object directly, in the bytes Arrow's writer produces (keys
//! in projection order, nulls left out), which a test holds it to.
//!
//! It covers text, integer, boolean and date columns and row filters on text
//! columns: everything the base libraries' lookups use. For anything else
//! [`Rows::new`] returns `None` and the caller takes the general path.

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Date32Array, RecordBatch, StringArray};
use arrow::datatypes::{
    DataType, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;
use tongban_policies::{FilterOp, Reveal, RowFilter};

/// The released columns of a batch and the filters on its rows, resolved
/// once per request.
pub struct Rows<'a> {
    columns: Vec<(&'a str, Reveal, &'a ArrayRef)>,
    filters: Vec<(&'a StringArray, &'a FilterOp)>,
    hash_key: &'a [u8],
}

/// Whether this writer encodes a column of this type exactly as Arrow does.
fn supported(t: &DataType, reveal: Reveal) -> bool {
    let text = matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    match reveal {
        Reveal::Masked(_) => text,
        Reveal::Clear => {
            text || matches!(
                t,
                DataType::Boolean
                    | DataType::Int8
                    | DataType::Int16
                    | DataType::Int32
                    | DataType::Int64
                    | DataType::UInt8
                    | DataType::UInt16
                    | DataType::UInt32
                    | DataType::UInt64
                    | DataType::Date32
            )
        }
    }
}

impl<'a> Rows<'a> {
    /// `None` when a column or filter is of a kind only the general path
    /// handles (or is missing, which the general path reports).
    pub fn new(
        batch: &'a RecordBatch,
        projection: &[(&'a str, Reveal)],
        filters: &'a [RowFilter],
        hash_key: &'a [u8],
    ) -> Option<Rows<'a>> {
        let schema = batch.schema_ref();
        let mut columns = Vec::with_capacity(projection.len());
        for &(name, reveal) in projection {
            let i = schema.index_of(name).ok()?;
            let column = batch.column(i);
            if !supported(column.data_type(), reveal) {
                return None;
            }
            columns.push((name, reveal, column));
        }
        let mut text_filters = Vec::with_capacity(filters.len());
        for f in filters {
            let column = batch.column_by_name(&f.item)?;
            text_filters.push((column.as_any().downcast_ref::<StringArray>()?, &f.op));
        }
        Some(Rows {
            columns,
            filters: text_filters,
            hash_key,
        })
    }

    /// Whether the row filters let row `row` through (nulls never match).
    pub fn visible(&self, row: usize) -> bool {
        self.filters
            .iter()
            .all(|(column, op)| column.is_valid(row) && op.matches(column.value(row)))
    }

    /// Row `row` as a JSON object of the released items.
    pub fn object(&self, row: usize) -> Box<RawValue> {
        serde_json::value::to_raw_value(&Row { rows: self, row })
            .expect("rows of supported types serialise")
    }

    /// Appends row `row`'s JSON object (the bytes of [`Rows::object`]) to
    /// `out`: a stream writes its answer lines with no value per row.
    pub fn write_object(&self, row: usize, out: &mut Vec<u8>) {
        serde::Serialize::serialize(
            &Row { rows: self, row },
            &mut serde_json::Serializer::new(out),
        )
        .expect("rows of supported types serialise into memory")
    }
}

struct Row<'r, 'a> {
    rows: &'r Rows<'a>,
    row: usize,
}

impl serde::Serialize for Row<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let row = self.row;
        let mut map = s.serialize_map(None)?;
        let mut masked = String::new();
        for &(name, reveal, column) in &self.rows.columns {
            if column.is_null(row) {
                continue;
            }
            let text = match column.data_type() {
                DataType::Utf8 => Some(column.as_string::<i32>().value(row)),
                DataType::LargeUtf8 => Some(column.as_string::<i64>().value(row)),
                DataType::Utf8View => Some(column.as_string_view().value(row)),
                _ => None,
            };
            if let Some(text) = text {
                match reveal {
                    Reveal::Clear => map.serialize_entry(name, text)?,
                    Reveal::Masked(mask) => {
                        masked.clear();
                        mask.apply_into(text, self.rows.hash_key, &mut masked);
                        map.serialize_entry(name, &masked)?
                    }
                }
                continue;
            }
            macro_rules! int {
                ($t:ty) => {
                    map.serialize_entry(name, &column.as_primitive::<$t>().value(row))?
                };
            }
            match column.data_type() {
                DataType::Boolean => {
                    let b = column.as_any().downcast_ref::<BooleanArray>();
                    map.serialize_entry(name, &b.expect("boolean").value(row))?
                }
                DataType::Int8 => int!(Int8Type),
                DataType::Int16 => int!(Int16Type),
                DataType::Int32 => int!(Int32Type),
                DataType::Int64 => int!(Int64Type),
                DataType::UInt8 => int!(UInt8Type),
                DataType::UInt16 => int!(UInt16Type),
                DataType::UInt32 => int!(UInt32Type),
                DataType::UInt64 => int!(UInt64Type),
                DataType::Date32 => {
                    let d = column.as_any().downcast_ref::<Date32Array>();
                    match d.expect("date32").value_as_date(row) {
                        Some(date) => {
                            map.serialize_entry(name, &date.format("%Y-%m-%d").to_string())?
                        }
                        None => continue,
                    }
                }
                other => unreachable!("Rows::new admits no {other} column"),
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BooleanArray, Date32Array, Int32Array, Int64Array, LargeStringArray, StringViewArray,
        UInt8Array,
    };
    use std::sync::Arc;
    use tongban_policies::Mask;
    use tongban_policies::enforce::project_and_mask;

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            (
                "citizen_id",
                Arc::new(StringArray::from(vec![
                    Some("11010519491231002X"),
                    None,
                    Some("310104199001011234"),
                ])) as ArrayRef,
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![
                    Some("欧阳小明"),
                    Some("王\"引号\"\\\n\t\u{1}"),
                    Some(""),
                ])),
            ),
            (
                "address",
                Arc::new(LargeStringArray::from(vec![
                    Some("上海市徐汇区漕溪北路1200弄"),
                    Some("x"),
                    None,
                ])),
            ),
            (
                "street",
                Arc::new(StringViewArray::from(vec![
                    Some("310104001"),
                    None,
                    Some("a long value that does not fit inline in a view"),
                ])),
            ),
            (
                "age",
                Arc::new(Int32Array::from(vec![Some(-7), Some(0), None])),
            ),
            (
                "big",
                Arc::new(Int64Array::from(vec![Some(i64::MAX), None, Some(i64::MIN)])),
            ),
            ("small", Arc::new(UInt8Array::from(vec![255, 0, 1]))),
            (
                "alive",
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            ),
            (
                "born",
                Arc::new(Date32Array::from(vec![Some(0), Some(-36500), None])),
            ),
        ])
        .unwrap()
    }

    /// What the general path (project, mask, Arrow's JSON writer) writes.
    fn by_arrow(batch: &RecordBatch, projection: &[(&str, Reveal)], key: &[u8]) -> Vec<String> {
        let released = project_and_mask(batch, projection, key).unwrap();
        let mut w = arrow::json::LineDelimitedWriter::new(Vec::new());
        w.write(&released).unwrap();
        w.finish().unwrap();
        String::from_utf8(w.into_inner())
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn rows_are_the_bytes_arrow_writes() {
        let batch = batch();
        let key = b"secret";
        let schema = batch.schema();
        let projections: Vec<Vec<(&str, Reveal)>> = vec![
            schema
                .fields()
                .iter()
                .map(|f| (f.name().as_str(), Reveal::Clear))
                .collect(),
            vec![
                ("born", Reveal::Clear),
                ("citizen_id", Reveal::Masked(Mask::CitizenId)),
                ("name", Reveal::Masked(Mask::ChineseName)),
                ("address", Reveal::Masked(Mask::Address)),
                ("street", Reveal::Masked(Mask::Hash)),
                ("alive", Reveal::Clear),
            ],
            vec![],
        ];
        for projection in &projections {
            let rows = Rows::new(&batch, projection, &[], key).expect("supported");
            let ours: Vec<String> = (0..batch.num_rows())
                .map(|r| rows.object(r).get().to_string())
                .collect();
            // Arrow writes `{}` for a row with nothing in it.
            assert_eq!(ours, by_arrow(&batch, projection, key), "{projection:?}");
            let mut written = Vec::new();
            for r in 0..batch.num_rows() {
                rows.write_object(r, &mut written);
                written.push(b'\n');
            }
            assert_eq!(
                String::from_utf8(written).unwrap(),
                ours.iter().map(|o| format!("{o}\n")).collect::<String>()
            );
        }
    }

    #[test]
    fn filters_and_unsupported_columns() {
        let batch = batch();
        let prefix = [RowFilter {
            item: "citizen_id".into(),
            op: FilterOp::Prefix("3101".into()),
        }];
        let rows = Rows::new(&batch, &[("age", Reveal::Clear)], &prefix, b"k").unwrap();
        assert_eq!(
            (0..3).map(|r| rows.visible(r)).collect::<Vec<_>>(),
            [false, false, true],
            "nulls never match"
        );
        let on_number = [RowFilter {
            item: "age".into(),
            op: FilterOp::Equals("0".into()),
        }];
        assert!(Rows::new(&batch, &[], &on_number, b"k").is_none());
        assert!(Rows::new(&batch, &[("age", Reveal::Masked(Mask::Hash))], &[], b"k").is_none());
        assert!(Rows::new(&batch, &[("missing", Reveal::Clear)], &[], b"k").is_none());
    }
}
