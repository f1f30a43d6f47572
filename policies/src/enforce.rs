//! Applying a decision to Arrow data.
//!
//! A decision says which columns a consumer may see, which of them masked
//! ([`Reveal`]), and which rows ([`RowFilter`] obligations, e.g. only the
//! residents of one street). The functions here carry that out on a
//! [`RecordBatch`], the same way on every data path:
//!
//! - [`project_and_mask`] keeps the listed columns in the listed order and masks
//!   the text of those marked [`Reveal::Masked`];
//! - [`filter_rows`] keeps the rows that meet every filter, with Arrow compute
//!   kernels.
//!
//! Both are pure functions of their inputs; they never touch values they need
//! not touch, and nulls stay null.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, GenericStringArray, GenericStringBuilder,
    LargeStringArray, OffsetSizeTrait, RecordBatch, RecordBatchOptions, StringArray,
    StringViewArray, StringViewBuilder,
};
use arrow::compute::kernels::cmp::eq;
use arrow::compute::kernels::comparison::starts_with;
use arrow::compute::{and, cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema};

use crate::error::{Error, Result};
use crate::mask::Mask;

/// What a consumer may see of one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "mask")]
pub enum Reveal {
    /// The values as they are.
    Clear,
    /// The values masked with the given mask.
    Masked(Mask),
}

/// A row filter obligation: rows whose `item` equals / starts with the value.
///
/// JSON: `{"item": "residence_street", "prefix": "310104"}` or
/// `{"item": "status", "equals": "正常"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowFilter {
    /// The column (data item) the filter looks at.
    pub item: String,
    /// How the column's value must relate to the filter's value.
    #[serde(flatten)]
    pub op: FilterOp,
}

/// How a [`RowFilter`] compares a column's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    /// The value equals this text.
    Equals(String),
    /// The value starts with this text.
    Prefix(String),
}

impl FilterOp {
    /// Whether a (non-null) value passes: the one definition of a filter's
    /// meaning, used row by row by the lookup writer and, vectorised, by
    /// [`filter_rows`] and [`visible_rows`].
    pub fn matches(&self, value: &str) -> bool {
        match self {
            FilterOp::Equals(v) => value == v,
            FilterOp::Prefix(p) => value.starts_with(p.as_str()),
        }
    }
}

impl fmt::Display for RowFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            FilterOp::Equals(v) => write!(f, "{} = {v}", self.item),
            FilterOp::Prefix(v) => write!(f, "{} starts with {v}", self.item),
        }
    }
}

/// Keeps the listed columns in the listed order, masking those marked `Masked`.
/// A column absent from the batch is `Error::MissingColumn`; a mask on a non-text
/// column (anything but Utf8 / LargeUtf8 / Utf8View) is `Error::MaskNotText`. Nulls stay null.
/// The output schema has the same field names, types (masked columns keep their string type)
/// and nullability as the input.
pub fn project_and_mask(
    batch: &RecordBatch,
    columns: &[(&str, Reveal)],
    hash_key: &[u8],
) -> Result<RecordBatch> {
    let schema = batch.schema_ref();
    let mut fields: Vec<Arc<Field>> = Vec::with_capacity(columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for &(name, reveal) in columns {
        let (index, field) = schema
            .column_with_name(name)
            .ok_or_else(|| Error::MissingColumn(name.to_owned()))?;
        let column = batch.column(index);
        let array = match reveal {
            Reveal::Clear => Arc::clone(column),
            Reveal::Masked(mask) => mask_column(name, column, mask, hash_key)?,
        };
        fields.push(Arc::clone(&schema.fields()[index]));
        debug_assert_eq!(array.data_type(), field.data_type());
        arrays.push(array);
    }
    let schema = Schema::new_with_metadata(fields, schema.metadata().clone());
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        Arc::new(schema),
        arrays,
        &options,
    )?)
}

/// Masks every non-null value of a text column into a new column of the same type.
fn mask_column(name: &str, column: &ArrayRef, mask: Mask, key: &[u8]) -> Result<ArrayRef> {
    Ok(match column.data_type() {
        DataType::Utf8 => Arc::new(mask_offsets(column.as_string::<i32>(), mask, key)),
        DataType::LargeUtf8 => Arc::new(mask_offsets(column.as_string::<i64>(), mask, key)),
        DataType::Utf8View => {
            let array = column.as_string_view();
            let mut builder = StringViewBuilder::with_capacity(array.len());
            let mut buf = String::new();
            for value in array.iter() {
                match value {
                    Some(value) => {
                        buf.clear();
                        mask.apply_into(value, key, &mut buf);
                        builder.append_value(&buf);
                    }
                    None => builder.append_null(),
                }
            }
            Arc::new(builder.finish())
        }
        other => {
            return Err(Error::MaskNotText {
                column: name.to_owned(),
                data_type: other.to_string(),
            });
        }
    })
}

fn mask_offsets<O: OffsetSizeTrait>(
    array: &GenericStringArray<O>,
    mask: Mask,
    key: &[u8],
) -> GenericStringArray<O> {
    // Masked values are at most a little longer than the values (a `*` is never
    // longer than the char it hides); `address` and `hash` add a few bytes.
    let data_capacity = array.value_data().len() + 4 * array.len();
    let mut builder = GenericStringBuilder::<O>::with_capacity(array.len(), data_capacity);
    let mut buf = String::new();
    for value in array.iter() {
        match value {
            Some(value) => {
                buf.clear();
                mask.apply_into(value, key, &mut buf);
                builder.append_value(&buf);
            }
            None => builder.append_null(),
        }
    }
    builder.finish()
}

/// Keeps the rows that satisfy every filter (AND). Null values never match. A filter on a
/// missing column is `Error::MissingColumn`; on a non-text column, compare the value's
/// Arrow-cast string form (use `arrow::compute::cast` to Utf8 first) so e.g. Int64 columns work.
pub fn filter_rows(batch: &RecordBatch, filters: &[RowFilter]) -> Result<RecordBatch> {
    let mut keep: Option<BooleanArray> = None;
    for filter in filters {
        let matches = filter_matches(batch, filter)?;
        keep = Some(match keep {
            None => matches,
            // Plain (not Kleene) AND: a null on either side stays null, and
            // `filter_record_batch` drops rows whose predicate is null.
            Some(keep) => and(&keep, &matches)?,
        });
    }
    match keep {
        None => Ok(batch.clone()),
        Some(keep) => Ok(filter_record_batch(batch, &keep)?),
    }
}

/// Which rows satisfy every filter (AND), as a mask without nulls: a null
/// value never matches. [`filter_rows`] applied to the same batch keeps
/// exactly the rows marked true.
pub fn visible_rows(batch: &RecordBatch, filters: &[RowFilter]) -> Result<BooleanArray> {
    let mut keep = BooleanArray::from(vec![true; batch.num_rows()]);
    for filter in filters {
        let matches = filter_matches(batch, filter)?;
        // A null (no value) is a miss, not an unknown.
        let matches = arrow::compute::prep_null_mask_filter(&matches);
        keep = and(&keep, &matches)?;
    }
    Ok(keep)
}

/// Which rows one filter matches: true, false, or null where the value is null.
fn filter_matches(batch: &RecordBatch, filter: &RowFilter) -> Result<BooleanArray> {
    let column = batch
        .column_by_name(&filter.item)
        .ok_or_else(|| Error::MissingColumn(filter.item.clone()))?;
    let column: ArrayRef = match column.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Arc::clone(column),
        _ => cast(column, &DataType::Utf8)?,
    };
    let (FilterOp::Equals(value) | FilterOp::Prefix(value)) = &filter.op;
    let compare = match filter.op {
        FilterOp::Equals(_) => eq,
        FilterOp::Prefix(_) => starts_with,
    };
    let matches = match column.data_type() {
        DataType::Utf8 => compare(&column, &StringArray::new_scalar(value))?,
        DataType::LargeUtf8 => compare(&column, &LargeStringArray::new_scalar(value))?,
        _ => compare(&column, &StringViewArray::new_scalar(value))?,
    };
    Ok(matches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use proptest::prelude::*;

    const KEY: &[u8] = b"hub secret";

    fn people() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("citizen_id", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("residence_street", DataType::LargeUtf8, true),
            Field::new("status", DataType::Utf8View, true),
            Field::new("age", DataType::Int64, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![
                    "310104199001011234",
                    "310104198512120021",
                    "320583197001010019",
                    "310101200002020048",
                ])),
                Arc::new(StringArray::from(vec![
                    Some("张三"),
                    None,
                    Some("欧阳娜娜"),
                    Some("王"),
                ])),
                Arc::new(LargeStringArray::from(vec![
                    Some("310104001"),
                    Some("310104002"),
                    None,
                    Some("310101003"),
                ])),
                Arc::new(StringViewArray::from(vec![
                    Some("正常"),
                    Some("注销"),
                    Some("正常"),
                    None,
                ])),
                Arc::new(Int64Array::from(vec![Some(34), Some(39), None, Some(24)])),
            ],
        )
        .unwrap()
    }

    fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let column = cast(batch.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
        column
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    }

    fn some(values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|v| Some((*v).to_owned())).collect()
    }

    // ---- project_and_mask ----

    #[test]
    fn projects_subset_in_listed_order() {
        let batch = people();
        let out = project_and_mask(
            &batch,
            &[("status", Reveal::Clear), ("citizen_id", Reveal::Clear)],
            KEY,
        )
        .unwrap();
        let names: Vec<_> = out
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["status", "citizen_id"]);
        assert_eq!(out.num_rows(), 4);
        assert_eq!(out.column(0), batch.column(3));
        assert_eq!(out.column(1), batch.column(0));
        assert_eq!(out.schema().field(0), batch.schema().field(3));
        assert_eq!(out.schema().field(1), batch.schema().field(0));
    }

    #[test]
    fn empty_projection_keeps_row_count() {
        let out = project_and_mask(&people(), &[], KEY).unwrap();
        assert_eq!(out.num_columns(), 0);
        assert_eq!(out.num_rows(), 4);
    }

    #[test]
    fn masks_text_columns_and_keeps_nulls() {
        let batch = people();
        let out = project_and_mask(
            &batch,
            &[
                ("citizen_id", Reveal::Masked(Mask::CitizenId)),
                ("name", Reveal::Masked(Mask::ChineseName)),
                ("residence_street", Reveal::Masked(Mask::KeepFirst(6))),
                ("status", Reveal::Masked(Mask::KeepLast(1))),
                ("age", Reveal::Clear),
            ],
            KEY,
        )
        .unwrap();
        assert_eq!(out.schema(), batch.schema());
        assert_eq!(
            strings(&out, "citizen_id"),
            some(&[
                "310***********1234",
                "310***********0021",
                "320***********0019",
                "310***********0048",
            ])
        );
        assert_eq!(
            strings(&out, "name"),
            vec![
                Some("张*".into()),
                None,
                Some("欧阳**".into()),
                Some("*".into())
            ]
        );
        assert_eq!(
            strings(&out, "residence_street"),
            vec![
                Some("310104***".into()),
                Some("310104***".into()),
                None,
                Some("310101***".into())
            ]
        );
        assert_eq!(
            strings(&out, "status"),
            vec![
                Some("*常".into()),
                Some("*销".into()),
                Some("*常".into()),
                None
            ]
        );
        assert_eq!(out.column(4), batch.column(4));
    }

    #[test]
    fn hash_mask_uses_the_key() {
        let batch = people();
        let cols = [("citizen_id", Reveal::Masked(Mask::Hash))];
        let a = project_and_mask(&batch, &cols, b"k1").unwrap();
        let b = project_and_mask(&batch, &cols, b"k2").unwrap();
        let a = strings(&a, "citizen_id");
        assert_eq!(
            a[0].as_deref(),
            Some(Mask::Hash.apply("310104199001011234", b"k1").as_str())
        );
        assert_ne!(a, strings(&b, "citizen_id"));
    }

    #[test]
    fn missing_column_is_an_error() {
        let err = project_and_mask(&people(), &[("nope", Reveal::Clear)], KEY).unwrap_err();
        assert!(
            matches!(&err, Error::MissingColumn(c) if c == "nope"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "column 'nope' is not in the data");
    }

    #[test]
    fn mask_on_non_text_is_an_error() {
        let err =
            project_and_mask(&people(), &[("age", Reveal::Masked(Mask::Hash))], KEY).unwrap_err();
        match &err {
            Error::MaskNotText { column, data_type } => {
                assert_eq!(column, "age");
                assert_eq!(data_type, "Int64");
            }
            other => panic!("{other:?}"),
        }
    }

    // ---- filter_rows ----

    fn equals(item: &str, v: &str) -> RowFilter {
        RowFilter {
            item: item.into(),
            op: FilterOp::Equals(v.into()),
        }
    }

    fn prefix(item: &str, v: &str) -> RowFilter {
        RowFilter {
            item: item.into(),
            op: FilterOp::Prefix(v.into()),
        }
    }

    #[test]
    fn no_filters_keeps_the_batch() {
        let batch = people();
        assert_eq!(filter_rows(&batch, &[]).unwrap(), batch);
    }

    #[test]
    fn filters_equals_on_utf8_and_utf8view() {
        let batch = people();
        let out = filter_rows(&batch, &[equals("status", "正常")]).unwrap();
        assert_eq!(out.schema(), batch.schema());
        assert_eq!(
            strings(&out, "citizen_id"),
            some(&["310104199001011234", "320583197001010019"])
        );
        let out = filter_rows(&batch, &[equals("citizen_id", "310104198512120021")]).unwrap();
        assert_eq!(out.num_rows(), 1);
        let out = filter_rows(&batch, &[equals("citizen_id", "3101")]).unwrap();
        assert_eq!(out.num_rows(), 0);
    }

    #[test]
    fn filters_prefix_on_large_utf8_and_drops_nulls() {
        let batch = people();
        let out = filter_rows(&batch, &[prefix("residence_street", "310104")]).unwrap();
        assert_eq!(
            strings(&out, "citizen_id"),
            some(&["310104199001011234", "310104198512120021"])
        );
        // The empty prefix matches every value, but never a null.
        let out = filter_rows(&batch, &[prefix("residence_street", "")]).unwrap();
        assert_eq!(out.num_rows(), 3);
        let out = filter_rows(&batch, &[prefix("name", "")]).unwrap();
        assert_eq!(strings(&out, "name"), some(&["张三", "欧阳娜娜", "王"]));
    }

    #[test]
    fn filters_are_anded() {
        let batch = people();
        let out = filter_rows(
            &batch,
            &[prefix("citizen_id", "310"), equals("status", "正常")],
        )
        .unwrap();
        assert_eq!(strings(&out, "citizen_id"), some(&["310104199001011234"]));
        // Row 3 matches the prefix but its status is null: dropped.
        let out = filter_rows(
            &batch,
            &[prefix("citizen_id", "310101"), prefix("status", "")],
        )
        .unwrap();
        assert_eq!(out.num_rows(), 0);
    }

    #[test]
    fn filters_int64_by_its_text_form() {
        let batch = people();
        let out = filter_rows(&batch, &[equals("age", "39")]).unwrap();
        assert_eq!(strings(&out, "citizen_id"), some(&["310104198512120021"]));
        // The age column keeps its type.
        assert_eq!(
            out.column_by_name("age").unwrap().data_type(),
            &DataType::Int64
        );
        let out = filter_rows(&batch, &[prefix("age", "3")]).unwrap();
        assert_eq!(out.num_rows(), 2);
        let out = filter_rows(&batch, &[equals("age", "039")]).unwrap();
        assert_eq!(out.num_rows(), 0);
    }

    #[test]
    fn filter_on_missing_column_is_an_error() {
        let err =
            filter_rows(&people(), &[equals("status", "正常"), equals("nope", "x")]).unwrap_err();
        assert!(
            matches!(&err, Error::MissingColumn(c) if c == "nope"),
            "{err:?}"
        );
    }

    // ---- serde and text ----

    #[test]
    fn row_filter_json_shapes() {
        let f = prefix("residence_street", "310104");
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, r#"{"item":"residence_street","prefix":"310104"}"#);
        assert_eq!(serde_json::from_str::<RowFilter>(&json).unwrap(), f);

        let f = equals("status", "正常");
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, r#"{"item":"status","equals":"正常"}"#);
        assert_eq!(serde_json::from_str::<RowFilter>(&json).unwrap(), f);

        // Key order does not matter.
        let f2: RowFilter =
            serde_json::from_str(r#"{"equals": "正常", "item": "status"}"#).unwrap();
        assert_eq!(f2, f);

        for bad in [
            r#"{"item": "status"}"#,
            r#"{"equals": "正常"}"#,
            r#"{"item": "status", "like": "正"}"#,
            r#"{"item": "status", "equals": "正常", "extra": 1}"#,
            r#"{"item": "status", "equals": "正常", "prefix": "正"}"#,
            r#"{"item": "status", "equals": 3}"#,
        ] {
            assert!(
                serde_json::from_str::<RowFilter>(bad).is_err(),
                "accepted {bad}"
            );
        }
    }

    #[test]
    fn row_filter_display() {
        assert_eq!(
            prefix("residence_street", "310104").to_string(),
            "residence_street starts with 310104"
        );
        assert_eq!(equals("status", "正常").to_string(), "status = 正常");
    }

    #[test]
    fn reveal_json_shapes() {
        assert_eq!(
            serde_json::to_string(&Reveal::Clear).unwrap(),
            r#"{"kind":"clear"}"#
        );
        let masked = Reveal::Masked(Mask::KeepLast(4));
        let json = serde_json::to_string(&masked).unwrap();
        assert_eq!(json, r#"{"kind":"masked","mask":"keep_last:4"}"#);
        assert_eq!(serde_json::from_str::<Reveal>(&json).unwrap(), masked);
        assert_eq!(
            serde_json::from_str::<Reveal>(r#"{"kind":"clear"}"#).unwrap(),
            Reveal::Clear
        );
        assert!(serde_json::from_str::<Reveal>(r#"{"kind":"masked","mask":"nope"}"#).is_err());
    }

    // ---- properties ----

    fn column_values() -> impl Strategy<Value = Vec<Option<String>>> {
        let value = prop_oneof![
            3 => "[0-9]{0,4}",
            1 => "[张王欧阳区*]{0,4}",
            1 => any::<String>(),
        ];
        prop::collection::vec(prop::option::weighted(0.8, value), 0..24)
    }

    fn one_column(values: &[Option<String>], data_type: DataType) -> RecordBatch {
        let array: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
        let array = cast(&array, &data_type).unwrap();
        let schema = Schema::new(vec![Field::new("v", data_type, true)]);
        RecordBatch::try_new(Arc::new(schema), vec![array]).unwrap()
    }

    fn text_type() -> impl Strategy<Value = DataType> {
        prop::sample::select(vec![
            DataType::Utf8,
            DataType::LargeUtf8,
            DataType::Utf8View,
        ])
    }

    fn any_mask() -> impl Strategy<Value = Mask> {
        prop_oneof![
            Just(Mask::CitizenId),
            Just(Mask::CreditCode),
            Just(Mask::Phone),
            Just(Mask::ChineseName),
            Just(Mask::Address),
            (0..=64u8).prop_map(Mask::KeepFirst),
            (0..=64u8).prop_map(Mask::KeepLast),
            Just(Mask::Hash),
        ]
    }

    proptest! {
        #[test]
        fn masking_a_column_masks_each_value(
            values in column_values(),
            data_type in text_type(),
            mask in any_mask(),
        ) {
            let batch = one_column(&values, data_type.clone());
            let out = project_and_mask(&batch, &[("v", Reveal::Masked(mask))], KEY).unwrap();
            prop_assert_eq!(out.schema(), batch.schema());
            let expected: Vec<Option<String>> = values
                .iter()
                .map(|v| v.as_deref().map(|v| mask.apply(v, KEY)))
                .collect();
            prop_assert_eq!(strings(&out, "v"), expected);
        }

        #[test]
        fn filtering_matches_a_row_by_row_check(
            values in column_values(),
            data_type in text_type(),
            probe in "[0-9]{0,2}",
            by_prefix in any::<bool>(),
            second in prop::option::of("[0-9]{0,1}"),
        ) {
            let batch = one_column(&values, data_type);
            let op = |v: &str| if by_prefix { FilterOp::Prefix(v.into()) } else { FilterOp::Equals(v.into()) };
            let mut filters = vec![RowFilter { item: "v".into(), op: op(&probe) }];
            if let Some(s) = &second {
                filters.push(RowFilter { item: "v".into(), op: FilterOp::Prefix(s.clone()) });
            }
            let out = filter_rows(&batch, &filters).unwrap();
            let expected: Vec<Option<String>> = values
                .iter()
                .filter(|v| match v {
                    None => false,
                    Some(v) => {
                        let first = if by_prefix { v.starts_with(&probe) } else { *v == probe };
                        first && second.as_ref().is_none_or(|s| v.starts_with(s.as_str()))
                    }
                })
                .cloned()
                .collect();
            prop_assert_eq!(strings(&out, "v"), expected);
        }

        #[test]
        fn filtering_int64_matches_its_decimal_text(
            values in prop::collection::vec(prop::option::of(-1000i64..1000), 0..24),
            probe in -1000i64..1000,
        ) {
            let schema = Schema::new(vec![Field::new("n", DataType::Int64, true)]);
            let batch = RecordBatch::try_new(
                Arc::new(schema),
                vec![Arc::new(Int64Array::from(values.clone()))],
            )
            .unwrap();
            let out = filter_rows(&batch, &[equals("n", &probe.to_string())]).unwrap();
            let expected = values.iter().filter(|v| **v == Some(probe)).count();
            prop_assert_eq!(out.num_rows(), expected);
        }
    }
}
