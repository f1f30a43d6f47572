//! A dataset version streamed through a plan: each batch is row-filtered,
//! then projected and masked with the `policies` enforcement helpers — the
//! same code every other data path uses. Nothing is held beyond one batch.

use super::plan::{DISPUTED, Disputed, Plan};
use crate::Result;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::sync::Arc;
use tongban_catalog::ResourceSpec;
use tongban_datasets::DatasetStore;
use tongban_policies::{Reveal, enforce};

/// The change type column of change sets (Delta's change data feed name).
pub const CHANGE_TYPE: &str = "_change_type";

/// What is streamed: a version's rows, or its change set's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Snapshot,
    Changes,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Snapshot => "snapshot",
            Part::Changes => "changes",
        }
    }
}

/// The columns a part releases under a plan: the projection, plus the change
/// type of a change set (in the clear: it is about the row, not in it).
fn columns(plan: &Plan, part: Part) -> Vec<(&str, Reveal)> {
    let mut cols = plan.columns();
    if part == Part::Changes {
        cols.push((CHANGE_TYPE, Reveal::Clear));
    }
    cols
}

/// The schema of what a part releases under a plan (from the directory's
/// items, so it is known before any data is read).
pub fn released_schema(spec: &ResourceSpec, plan: &Plan, part: Part) -> Result<SchemaRef> {
    let all = tongban_datasets::schema_of(spec)?;
    let mut fields = Vec::new();
    for (name, _) in &plan.projection {
        let field = all
            .field_with_name(name)
            .map_err(|_| crate::Error::VersionMismatch {
                resource: spec.code.clone(),
                message: format!("released item '{name}' is not among the resource's items"),
            })?;
        // Masks and filters keep types; every released column may be null.
        fields.push(field.clone().with_nullable(true));
    }
    if part == Part::Changes {
        fields.push(arrow::datatypes::Field::new(
            CHANGE_TYPE,
            arrow::datatypes::DataType::Utf8,
            false,
        ));
    }
    if plan.disputed.is_some() {
        fields.push(arrow::datatypes::Field::new(
            DISPUTED,
            arrow::datatypes::DataType::Utf8,
            true,
        ));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// The released batches of the files at `location`.
pub async fn released(
    datasets: &DatasetStore,
    location: &str,
    plan: &Plan,
    part: Part,
    hash_key: Arc<str>,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let input = datasets.stream_version(location).await?;
    let filters = plan.row_filters.clone();
    let cols: Vec<(String, Reveal)> = columns(plan, part)
        .into_iter()
        .map(|(c, r)| (c.to_string(), r))
        .collect();
    let disputed = plan.disputed.clone();
    Ok(input
        .map(move |batch| {
            let batch = batch?;
            apply_marked(
                &batch,
                &filters,
                &cols,
                hash_key.as_bytes(),
                disputed.as_ref(),
            )
        })
        .filter(|b| std::future::ready(!matches!(b, Ok(b) if b.num_rows() == 0)))
        .boxed())
}

/// [`apply_batch`], then the `_disputed` column when the plan marks
/// records: each row's disputed items, from its key before masking.
fn apply_marked(
    batch: &RecordBatch,
    filters: &[tongban_policies::RowFilter],
    cols: &[(String, Reveal)],
    hash_key: &[u8],
    disputed: Option<&Disputed>,
) -> Result<RecordBatch> {
    let Some(d) = disputed else {
        return apply_batch(batch, filters, cols, hash_key);
    };
    let kept = enforce::filter_rows(batch, filters)?;
    let released = apply_batch(&kept, &[], cols, hash_key)?;
    let keys = kept
        .column_by_name(&d.key_item)
        .and_then(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).ok());
    let marks: arrow::array::StringArray = (0..kept.num_rows())
        .map(|i| {
            let keys = keys.as_ref()?;
            let keys = arrow::array::AsArray::as_string::<i32>(keys.as_ref());
            if arrow::array::Array::is_null(keys, i) {
                return None;
            }
            d.records.get(keys.value(i)).map(String::as_str)
        })
        .collect();
    let mut fields: Vec<arrow::datatypes::FieldRef> =
        released.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(arrow::datatypes::Field::new(
        DISPUTED,
        arrow::datatypes::DataType::Utf8,
        true,
    )));
    let mut columns = released.columns().to_vec();
    columns.push(Arc::new(marks));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Row filters, then projection and masks, on one batch.
pub fn apply_batch(
    batch: &RecordBatch,
    filters: &[tongban_policies::RowFilter],
    cols: &[(String, Reveal)],
    hash_key: &[u8],
) -> Result<RecordBatch> {
    let kept = enforce::filter_rows(batch, filters)?;
    let cols: Vec<(&str, Reveal)> = cols.iter().map(|(c, r)| (c.as_str(), *r)).collect();
    let released = enforce::project_and_mask(&kept, &cols, hash_key)?;
    // The released schema marks every column nullable (see released_schema).
    let schema = Arc::new(Schema::new(
        released
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let nullable = f.name() != CHANGE_TYPE;
                f.as_ref().clone().with_nullable(nullable)
            })
            .collect::<Vec<_>>(),
    ));
    Ok(RecordBatch::try_new(schema, released.columns().to_vec())?)
}
