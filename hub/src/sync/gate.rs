//! The data-quality gate of a sync run: every row read is either conformed
//! to the resource's items or quarantined with the reason, never dropped.
//!
//! Checks, in order, per row: each item's value converts to the item's Arrow
//! type; key items are present (not null, not blank); ID items pass their
//! check digits (`citizen_id`, `legal_rep_id`: GB 11643; `credit_code`:
//! GB 32100); the key is not a duplicate of an earlier row of the run.
//! Required items beyond the key are not yet declared in the directory.

use crate::datasets::schema_of;
use crate::{Error, Result};
use arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, StringArray};
use arrow::compute::{CastOptions, cast_with_options, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use tongban_catalog::ResourceSpec;

/// Which check digit an item's values carry.
#[derive(Clone, Copy)]
enum IdKind {
    Citizen,
    Credit,
}

fn id_kind(item: &str) -> Option<IdKind> {
    match item {
        "citizen_id" | "legal_rep_id" => Some(IdKind::Citizen),
        "credit_code" => Some(IdKind::Credit),
        _ => None,
    }
}

/// What the gate made of one batch.
pub struct Gated {
    /// The rows that passed, with the resource's schema.
    pub valid: RecordBatch,
    /// Which input rows passed (to filter columns the caller carries along,
    /// such as the watermark and tombstone).
    pub passed: BooleanArray,
    /// The rows that did not: `_row`, `_reason`, then every item as text.
    pub rejected: Option<RecordBatch>,
}

pub struct Gate {
    target: SchemaRef,
    /// The target with every field nullable, for batches not yet checked.
    relaxed: SchemaRef,
    /// For each target item, its column in the source batches.
    columns: Vec<usize>,
    keys: Vec<usize>,
    ids: Vec<(usize, IdKind)>,
    /// Keys seen so far, as 128-bit hashes: two independent 64-bit hashes,
    /// so a false duplicate needs a 128-bit collision (never, in practice)
    /// at 16 bytes a row.
    seen: HashSet<u128>,
    hashers: (foldhash::quality::FixedState, foldhash::quality::FixedState),
    quarantine: SchemaRef,
}

impl Gate {
    /// A gate from the source's schema to the resource's items. Fails,
    /// before anything is read, if an item is missing from the source or
    /// its source type cannot be converted; the error lists every problem.
    pub fn new(spec: &ResourceSpec, source: &Schema) -> Result<Gate> {
        let target = Arc::new(schema_of(spec)?);
        let mut columns = Vec::new();
        let mut problems = Vec::new();
        for field in target.fields() {
            match source.index_of(field.name()) {
                Ok(i) => {
                    let from = source.field(i).data_type();
                    if !arrow::compute::can_cast_types(from, field.data_type()) {
                        problems.push(format!(
                            "item '{}' is {} in the source and cannot become {}",
                            field.name(),
                            from,
                            field.data_type()
                        ));
                    }
                    columns.push(i);
                }
                Err(_) => problems.push(format!(
                    "item '{}' is missing from the source",
                    field.name()
                )),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Dataset {
                resource: spec.code.clone(),
                message: format!(
                    "the source does not match the directory's items: {}",
                    problems.join("; ")
                ),
            });
        }
        let keys = spec
            .key_items
            .iter()
            .filter_map(|k| target.index_of(k).ok())
            .collect();
        let ids = target
            .fields()
            .iter()
            .enumerate()
            .filter_map(|(i, f)| id_kind(f.name()).map(|k| (i, k)))
            .collect();
        let mut qfields = vec![
            Field::new("_row", DataType::Int64, false),
            Field::new("_reason", DataType::Utf8, false),
        ];
        qfields.extend(
            target
                .fields()
                .iter()
                .map(|f| Field::new(f.name(), DataType::Utf8, true)),
        );
        let relaxed = Arc::new(Schema::new(
            target
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        Ok(Gate {
            relaxed,
            target,
            columns,
            keys,
            ids,
            seen: HashSet::new(),
            hashers: (
                foldhash::quality::FixedState::with_seed(0x7458_6f6e_6762_616e),
                foldhash::quality::FixedState::with_seed(0x9e37_79b9_7f4a_7c15),
            ),
            quarantine: Arc::new(Schema::new(qfields)),
        })
    }

    /// The resource's schema: what valid batches have.
    pub fn schema(&self) -> SchemaRef {
        self.target.clone()
    }

    /// The quarantine file's schema.
    pub fn quarantine_schema(&self) -> SchemaRef {
        self.quarantine.clone()
    }

    /// Checks one batch; `first_row` is the run-wide number of its first row
    /// (from 1), for the quarantine's `_row`.
    pub fn apply(&mut self, batch: &RecordBatch, first_row: u64) -> Result<Gated> {
        let n = batch.num_rows();
        let mut reasons: Vec<Option<String>> = vec![None; n];
        let safe = CastOptions {
            safe: true,
            ..Default::default()
        };
        let mut converted: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for (t, &s) in self.columns.iter().enumerate() {
            let field = self.target.field(t);
            let from = batch.column(s);
            let to = cast_with_options(from, field.data_type(), &safe)?;
            // A value that was there and is gone did not convert.
            if to.null_count() > from.null_count() {
                let text = cast_with_options(from, &DataType::Utf8, &safe)?;
                let text = text.as_any().downcast_ref::<StringArray>().expect("utf8");
                for (r, reason) in reasons.iter_mut().enumerate() {
                    if reason.is_none() && from.is_valid(r) && to.is_null(r) {
                        *reason = Some(format!(
                            "item '{}': '{}' is not a {}",
                            field.name(),
                            text.value(r),
                            field.data_type()
                        ));
                    }
                }
            }
            converted.push(to);
        }
        // Key items are non-nullable in the target; until the empty keys are
        // out, the batch has to allow them.
        let valid_all = RecordBatch::try_new(self.relaxed.clone(), converted)?;
        let key_text: Vec<StringArray> = self
            .keys
            .iter()
            .map(|&k| {
                cast_with_options(valid_all.column(k), &DataType::Utf8, &safe).map(|a| {
                    a.as_any()
                        .downcast_ref::<StringArray>()
                        .expect("utf8")
                        .clone()
                })
            })
            .collect::<Result<_, _>>()?;
        for (&k, text) in self.keys.iter().zip(&key_text) {
            for (r, reason) in reasons.iter_mut().enumerate() {
                if reason.is_none() && (text.is_null(r) || text.value(r).trim().is_empty()) {
                    *reason = Some(format!(
                        "key item '{}' is empty",
                        self.target.field(k).name()
                    ));
                }
            }
        }
        for &(i, kind) in &self.ids {
            let col = valid_all.column(i);
            let Some(text) = col.as_any().downcast_ref::<StringArray>() else {
                continue;
            };
            for (r, reason) in reasons.iter_mut().enumerate() {
                if reason.is_some() || text.is_null(r) {
                    continue;
                }
                let v = text.value(r);
                let checked = match kind {
                    IdKind::Citizen => tongban_policies::ids::validate_citizen_id(v).map(drop),
                    IdKind::Credit => tongban_policies::ids::validate_credit_code(v),
                };
                if let Err(e) = checked {
                    *reason = Some(format!("item '{}': {e}", self.target.field(i).name()));
                }
            }
        }
        if !self.keys.is_empty() {
            for (r, reason) in reasons.iter_mut().enumerate() {
                if reason.is_some() {
                    continue;
                }
                let mut h1 = self.hashers.0.build_hasher();
                let mut h2 = self.hashers.1.build_hasher();
                for t in &key_text {
                    h1.write(t.value(r).as_bytes());
                    h1.write_u8(0x1f);
                    h2.write(t.value(r).as_bytes());
                    h2.write_u8(0x1f);
                }
                let h = (u128::from(h1.finish()) << 64) | u128::from(h2.finish());
                if !self.seen.insert(h) {
                    let key: Vec<&str> = key_text.iter().map(|t| t.value(r)).collect();
                    *reason = Some(format!(
                        "duplicate key '{}': an earlier row of this run has it",
                        key.join("+")
                    ));
                }
            }
        }
        let passed: BooleanArray = reasons.iter().map(|r| Some(r.is_none())).collect();
        let rejected_rows: Vec<usize> = (0..n).filter(|&r| reasons[r].is_some()).collect();
        let valid = if rejected_rows.is_empty() {
            valid_all
        } else {
            filter_record_batch(&valid_all, &passed)?
        };
        let valid = RecordBatch::try_new(self.target.clone(), valid.columns().to_vec())?;
        let rejected = if rejected_rows.is_empty() {
            None
        } else {
            let mut cols: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_iter_values(
                    rejected_rows.iter().map(|&r| (first_row + r as u64) as i64),
                )),
                Arc::new(StringArray::from_iter_values(
                    rejected_rows
                        .iter()
                        .map(|&r| reasons[r].clone().expect("a reason")),
                )),
            ];
            let idx = arrow::array::UInt32Array::from_iter_values(
                rejected_rows.iter().map(|&r| r as u32),
            );
            for &s in &self.columns {
                let text = cast_with_options(batch.column(s), &DataType::Utf8, &safe)?;
                cols.push(arrow::compute::take(&text, &idx, None)?);
            }
            Some(RecordBatch::try_new(self.quarantine.clone(), cols)?)
        };
        Ok(Gated {
            valid,
            passed,
            rejected,
        })
    }
}
