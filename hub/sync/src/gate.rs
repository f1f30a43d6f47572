//! The data-quality gate of a sync run: every row read is either conformed
//! to the resource's items or quarantined with the reason, never dropped.
//!
//! Checks, in order, per row: each item's value converts to the item's Arrow
//! type; key items are present (not null, not blank); ID items pass their
//! check digits (`citizen_id`, `legal_rep_id`: GB 11643; `credit_code`:
//! GB 32100); the key is not a duplicate of an earlier row of the run.
//! Required items beyond the key are not yet declared in the directory.

use crate::{Error, Result};
use arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, StringArray};
use arrow::compute::{CastOptions, cast_with_options, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use tongban_catalog::ResourceSpec;
use tongban_datasets::schema_of;

/// The hasher of the seen-key set: its values are already 128-bit hashes,
/// so their low 64 bits serve as they are (hashing them again was a tenth
/// of a large sync's CPU).
#[derive(Default, Clone, Copy)]
struct PreHashed;

impl BuildHasher for PreHashed {
    type Hasher = PreHashedHasher;
    fn build_hasher(&self) -> PreHashedHasher {
        PreHashedHasher(0)
    }
}

#[derive(Default)]
struct PreHashedHasher(u64);

impl Hasher for PreHashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u128 values are hashed here (see `write_u128`); fold anything
        // else rather than lose it.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

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
    /// `None` when the source vouches for the key's uniqueness.
    seen: Option<HashSet<u128, PreHashed>>,
    hashers: (foldhash::quality::FixedState, foldhash::quality::FixedState),
    quarantine: SchemaRef,
}

impl Gate {
    /// A gate from the source's schema to the resource's items. Fails,
    /// before anything is read, if an item is missing from the source or
    /// its source type cannot be converted; the error lists every problem.
    ///
    /// `unique_keys` are the column sets the source guarantees unique: when
    /// the resource's key is one of them, with the same types, duplicates
    /// cannot occur and the per-row duplicate check (a set of every key of
    /// the run, the gate's largest cost on a big table) is skipped.
    pub fn new(spec: &ResourceSpec, source: &Schema, unique_keys: &[Vec<String>]) -> Result<Gate> {
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
            return Err(Error::Mismatch {
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
        let mut key = spec.key_items.clone();
        key.sort();
        let vouched = unique_keys.iter().any(|set| {
            let mut set = set.clone();
            set.sort();
            set == key
                && key.iter().all(|k| {
                    source.field_with_name(k).map(|f| f.data_type()).ok()
                        == target.field_with_name(k).map(|f| f.data_type()).ok()
                })
        });
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
            seen: (!vouched).then(HashSet::default),
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
        if let Some(seen) = self.seen.as_mut().filter(|_| !self.keys.is_empty()) {
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
                if !seen.insert(h) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int32Array;

    fn spec() -> ResourceSpec {
        serde_json::from_value(serde_json::json!({
            "code": "301/000101", "name": "n", "provider": "p", "summary": "s",
            "category": "department", "format": "database", "update_cycle": "daily",
            "key_items": ["citizen_id"],
            "items": [
                {"name": "citizen_id", "label": "号码", "data_type": "Utf8", "sensitivity": "internal", "share_type": "unconditional"},
                {"name": "months", "label": "月数", "data_type": "Int32", "sensitivity": "internal", "share_type": "unconditional"}
            ]
        }))
        .unwrap()
    }

    fn batch(ids: &[&str]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("citizen_id", DataType::Utf8, true),
            Field::new("months", DataType::Int32, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(ids.to_vec())),
                Arc::new(Int32Array::from(vec![1; ids.len()])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn duplicates_are_quarantined_unless_the_source_vouches_for_the_key() {
        let id = "11010519491231002X";
        let b = batch(&[id, id]);
        let mut checked = Gate::new(&spec(), &b.schema(), &[]).unwrap();
        let gated = checked.apply(&b, 1).unwrap();
        assert_eq!(gated.valid.num_rows(), 1);
        assert_eq!(gated.rejected.unwrap().num_rows(), 1);
        // Across batches too.
        assert_eq!(checked.apply(&batch(&[id]), 3).unwrap().valid.num_rows(), 0);
        // A source whose primary key is the resource's key: no per-row set.
        let vouched = Gate::new(&spec(), &b.schema(), &[vec!["citizen_id".into()]]).unwrap();
        assert!(vouched.seen.is_none());
        // A unique set of other columns does not count.
        let other = Gate::new(&spec(), &b.schema(), &[vec!["months".into()]]).unwrap();
        assert!(other.seen.is_some());
    }
}
