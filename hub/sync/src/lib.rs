//! Sync runs: a job's source read into a new, immutable dataset version.
//!
//! A run: resolve the job, its resource and its connector config; check the
//! source's schema against the resource's items (before anything is
//! written); read — everything (`full`) or past the job's watermark
//! (`incremental`); pass each batch through the quality gate (`gate.rs`),
//! quarantining bad rows to `quarantine/<job>/run-<id>.parquet` on the dataset store
//! with their reason; write the new version's Parquet; then, in one catalog
//! transaction, record the version, the run and the job's new watermark.
//!
//! A run that fails or is killed at any point leaves the previous version
//! serving: its files may exist, unreferenced, in the run's own folder
//! (`v<N>-run<id>`), but nothing points at them. The next run then yields exactly the
//! source's rows — a full run by reading them all, an incremental one
//! because the watermark only moves with a published version.
//!
//! `transform.rs` runs a job's SQL transform (DataFusion) between the source
//! and the gate; `schedule.rs` runs due jobs from the server.
//!
//! Crate ladder (docs/architecture.md): depends on `tongban-policies`,
//! `tongban-catalog`, `tongban-connectors` and `tongban-datasets`; the only
//! crate that depends on DataFusion.

mod gate;
pub mod schedule;
pub mod transform;

pub use gate::Gate;

/// What can go wrong in a sync run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Catalog(#[from] tongban_catalog::Error),
    #[error(transparent)]
    Dataset(#[from] tongban_datasets::Error),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Another hub is running the job now (it holds the job's run lock).
    #[error("sync job '{job}' is running on another hub; try again when it has finished")]
    Busy { job: String },
    /// The job's connector config cannot be read or is invalid.
    #[error("source: {0}")]
    SourceConfig(String),
    /// The source failed while it was read.
    #[error("source: {0}")]
    Source(#[from] tongban_connectors::Error),
    /// The source's columns do not match the resource's items.
    #[error("dataset {resource}: {message}")]
    Mismatch { resource: String, message: String },
    /// The job's settings do not fit the rows it reads (a watermark or
    /// tombstone column it cannot see, no key items to merge by).
    #[error("{0}")]
    JobDoesNotFit(String),
    /// The job's SQL transform is not valid or failed while running.
    #[error("transform: {0}")]
    Transform(String),
    /// The run failed and was recorded as failed.
    #[error("sync run {run} of '{job}' failed: {message}")]
    RunFailed {
        run: i64,
        job: String,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

use arrow::array::{Array, ArrayRef, BooleanArray, StringArray};
use arrow::compute::{cast, concat_batches, filter, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tongban_catalog::sync::{RunCounts, RunFinish, RunOutcome, SyncJob, SyncMode, SyncRun};
use tongban_catalog::{NewDatasetVersion, ResourceSpec, Store};
use tongban_connectors::{Read, SourceConfig};
use tongban_datasets::{DatasetStore, next_version};

/// What a run needs from the hub.
#[derive(Clone)]
pub struct SyncContext {
    pub store: Arc<dyn Store>,
    /// Versions, change sets and quarantine files.
    pub datasets: DatasetStore,
}

/// Progress of a running sync, reported after every batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub rows_read: u64,
    /// Arrow bytes of the rows read.
    pub bytes_read: u64,
    pub rows_quarantined: u64,
}

/// Parses and checks a job's connector config.
pub fn source_config(job_source: &serde_json::Value) -> Result<SourceConfig> {
    let config: SourceConfig = serde_json::from_value(job_source.clone())
        .map_err(|e| Error::SourceConfig(e.to_string()))?;
    config
        .validate()
        .map_err(|e| Error::SourceConfig(e.to_string()))?;
    Ok(config)
}

/// Runs a job once and returns its run record. A failed run is recorded as
/// failed (with its error) and also returned as an error. The job's run
/// lock is held throughout: while another hub runs the job, this one
/// refuses ([`Error::Busy`]).
pub async fn run_job(
    ctx: &SyncContext,
    name: &str,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<SyncRun> {
    let Some(lock) = ctx.store.lock_sync_job(name).await? else {
        return Err(Error::Busy {
            job: name.to_string(),
        });
    };
    let result = run_locked(ctx, name, progress).await;
    lock.release().await;
    result
}

/// [`run_job`] for a caller that holds the job's run lock.
pub(crate) async fn run_locked(
    ctx: &SyncContext,
    name: &str,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<SyncRun> {
    let job = ctx.store.get_sync_job(name).await?;
    let resource = ctx.store.get_resource(&job.spec.resource).await?;
    let run = ctx.store.start_sync_run(name).await?;
    let mut counts = RunCounts::default();
    let outcome = execute(ctx, &job, &resource.spec, run.id, &mut counts, progress).await;
    let failure = outcome.as_ref().err().map(|e| e.to_string());
    let finish = match outcome {
        Ok(done) => RunFinish {
            outcome: RunOutcome::Succeeded,
            counts,
            version: Some(done.version),
            quarantine: done.quarantine,
            watermark: done.watermark,
            error: None,
        },
        Err(_) => RunFinish {
            outcome: RunOutcome::Failed,
            counts,
            version: None,
            quarantine: None,
            watermark: job.watermark.clone(),
            error: failure.clone(),
        },
    };
    let recorded = ctx.store.finish_sync_run(run.id, &finish).await?;
    record_metrics(name, &finish);
    match failure {
        None => Ok(recorded),
        Some(message) => Err(Error::RunFailed {
            run: recorded.id,
            job: name.to_string(),
            message,
        }),
    }
}

/// A finished run in Prometheus' terms: runs by job and outcome, rows by
/// job and kind.
fn record_metrics(job: &str, finish: &RunFinish) {
    let outcome = match finish.outcome {
        RunOutcome::Succeeded => "succeeded",
        _ => "failed",
    };
    metrics::counter!("tongban_sync_runs_total", "job" => job.to_string(), "outcome" => outcome)
        .increment(1);
    let c = &finish.counts;
    for (kind, rows) in [
        ("read", c.rows_read),
        ("published", c.rows_written),
        ("quarantined", c.rows_quarantined),
    ] {
        metrics::counter!("tongban_sync_rows_total", "job" => job.to_string(), "kind" => kind)
            .increment(rows.max(0) as u64);
    }
}

struct Done {
    version: NewDatasetVersion,
    quarantine: Option<String>,
    watermark: Option<String>,
}

async fn execute(
    ctx: &SyncContext,
    job: &SyncJob,
    spec: &ResourceSpec,
    run_id: i64,
    counts: &mut RunCounts,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Done> {
    let config = source_config(&job.spec.source)?;
    let source = config.open().map_err(connector)?;
    let source_schema = source.schema().await.map_err(connector)?;
    let (watermark_col, tombstone_col) = match job.spec.mode {
        SyncMode::Full => (None, None),
        SyncMode::Incremental => (
            job.spec.watermark_column.clone(),
            job.spec.tombstone_column.clone(),
        ),
    };
    // The watermark filters the source itself, before any transform.
    if let Some(col) = &watermark_col
        && source_schema.index_of(col).is_err()
    {
        return Err(Error::JobDoesNotFit(format!(
            "watermark column '{col}' is not in the source"
        )));
    }
    let read = match (&watermark_col, &job.watermark) {
        (Some(column), Some(after)) => Read::Since {
            column: column.clone(),
            after: after.clone(),
        },
        _ => Read::Full,
    };
    let raw = source
        .read(&read)
        .await
        .map_err(connector)?
        .map(|b| b.map_err(connector))
        .boxed();
    let (schema, mut stream) = match &job.spec.transform {
        Some(sql) => transform::apply(sql, source_schema.clone(), raw).await?,
        None => (source_schema.clone(), raw),
    };
    // Without a transform, the source's unique keys hold for what the gate
    // sees; a query over them may repeat keys, so then nothing is vouched.
    let unique = match job.spec.transform {
        None => source.unique_keys().await.map_err(connector)?,
        Some(_) => Vec::new(),
    };
    // Checked against what the run will see, before anything is written
    // (the read has started, but dropping it cancels it).
    let mut gate = Gate::new(spec, &schema, &unique)?;
    for col in watermark_col.iter().chain(&tombstone_col) {
        if schema.index_of(col).is_err() {
            return Err(Error::JobDoesNotFit(format!(
                "column '{col}' is not in the rows the run reads (a transform must select it)"
            )));
        }
    }
    let version = next_version(ctx.store.as_ref(), &spec.code).await?;
    let location = DatasetStore::run_location(&spec.code, version, run_id);
    let mut quarantine = Quarantine::new(&job.spec.name, run_id, gate.quarantine_schema());
    let mut seen = Progress::default();
    let origin = format!("sync:{}#{run_id}", job.spec.name);

    match job.spec.mode {
        SyncMode::Full => {
            let mut writer =
                ctx.datasets
                    .begin_in(&spec.code, version, location.clone(), gate.schema())?;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let gated = admit(&mut gate, &mut quarantine, &mut seen, &batch)?;
                if gated.valid.num_rows() > 0 {
                    writer.write(&gated.valid).await?;
                }
                progress(seen);
            }
            counts.rows_read = seen.rows_read as i64;
            counts.rows_quarantined = seen.rows_quarantined as i64;
            let record = writer.complete(&origin).await?;
            counts.rows_written = record.row_count;
            counts.bytes = record.byte_size;
            counts.inserts = record.row_count;
            Ok(Done {
                version: record,
                quarantine: quarantine.finish(&ctx.datasets).await?,
                watermark: None,
            })
        }
        SyncMode::Incremental => {
            let watermark_col = watermark_col.expect("incremental jobs have one");
            let mut changed = Vec::new();
            let mut deleted: Vec<BooleanArray> = Vec::new();
            let mut marks: Vec<ArrayRef> = Vec::new();
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let gated = admit(&mut gate, &mut quarantine, &mut seen, &batch)?;
                let mark = batch.column_by_name(&watermark_col).expect("checked");
                marks.push(filter(mark, &gated.passed)?);
                let tomb = match &tombstone_col {
                    Some(t) => {
                        let col = cast(
                            batch.column_by_name(t).expect("checked"),
                            &DataType::Boolean,
                        )
                        .map_err(|e| {
                            Error::JobDoesNotFit(format!("tombstone column '{t}': {e}"))
                        })?;
                        let col = filter(&col, &gated.passed)?;
                        let b = col
                            .as_any()
                            .downcast_ref::<BooleanArray>()
                            .expect("boolean")
                            .clone();
                        // NULL means not deleted.
                        b.iter().map(|v| Some(v == Some(true))).collect()
                    }
                    None => BooleanArray::from(vec![false; gated.valid.num_rows()]),
                };
                deleted.push(tomb);
                changed.push(gated.valid);
                progress(seen);
            }
            counts.rows_read = seen.rows_read as i64;
            counts.rows_quarantined = seen.rows_quarantined as i64;
            let watermark =
                new_watermark(&watermark_col, &marks)?.or_else(|| job.watermark.clone());
            let previous = match ctx.store.list_versions(&spec.code).await?.first() {
                Some(v) => Some(ctx.datasets.read_version(&v.location).await?),
                None => None,
            };
            let present = match job.spec.diff_deletes {
                true => Some(present_keys(job, &spec.key_items, source.as_ref()).await?),
                false => None,
            };
            let merged = merge(
                spec,
                &gate.schema(),
                previous,
                &changed,
                &deleted,
                present.as_ref(),
            )?;
            counts.inserts = merged.inserts;
            counts.updates = merged.updates;
            counts.deletes = merged.deletes;
            let mut changes = ctx.datasets.begin_in(
                &spec.code,
                version,
                DatasetStore::changes_location(&location),
                merged.changes.schema(),
            )?;
            changes.write(&merged.changes).await?;
            changes.complete(&origin).await?;
            let mut writer =
                ctx.datasets
                    .begin_in(&spec.code, version, location.clone(), gate.schema())?;
            for b in &merged.rows {
                if b.num_rows() > 0 {
                    writer.write(b).await?;
                }
            }
            let record = writer.complete(&origin).await?;
            counts.rows_written = record.row_count;
            counts.bytes = record.byte_size;
            Ok(Done {
                version: record,
                quarantine: quarantine.finish(&ctx.datasets).await?,
                watermark,
            })
        }
    }
}

/// Passes a batch through the gate, quarantines what fails, counts both.
fn admit(
    gate: &mut Gate,
    quarantine: &mut Quarantine,
    seen: &mut Progress,
    batch: &RecordBatch,
) -> Result<gate::Gated> {
    let gated = gate.apply(batch, seen.rows_read + 1)?;
    seen.rows_read += batch.num_rows() as u64;
    seen.bytes_read += batch.get_array_memory_size() as u64;
    if let Some(rejected) = &gated.rejected {
        seen.rows_quarantined += rejected.num_rows() as u64;
        quarantine.write(rejected)?;
    }
    Ok(gated)
}

fn connector(e: tongban_connectors::Error) -> Error {
    Error::Source(e)
}

/// The largest watermark value among the rows read, in the column's type.
fn new_watermark(column: &str, marks: &[ArrayRef]) -> Result<Option<String>> {
    let Some(first) = marks.first() else {
        return Ok(None);
    };
    let schema = Arc::new(Schema::new(vec![Field::new(
        column,
        first.data_type().clone(),
        true,
    )]));
    let batches = marks
        .iter()
        .map(|m| RecordBatch::try_new(schema.clone(), vec![m.clone()]))
        .collect::<Result<Vec<_>, _>>()?;
    let all = concat_batches(&schema, &batches)?;
    tongban_connectors::watermark_of(&all, column).map_err(connector)
}

/// The new version of an incremental run and its change set.
struct Merged {
    rows: Vec<RecordBatch>,
    /// The resource's items plus `_change_type`: `insert`,
    /// `update_preimage`, `update_postimage` or `delete` (Delta Sharing's
    /// change data feed vocabulary).
    changes: RecordBatch,
    inserts: i64,
    updates: i64,
    deletes: i64,
}

/// Each row's key as text (parts joined by U+001F).
fn keys_of(batch: &RecordBatch, key_items: &[String]) -> Result<Vec<String>> {
    let parts: Vec<ArrayRef> = key_items
        .iter()
        .map(|k| {
            let col = batch
                .column_by_name(k)
                .ok_or_else(|| Error::JobDoesNotFit(format!("key item '{k}' is missing")))?;
            Ok(cast(col, &DataType::Utf8)?)
        })
        .collect::<Result<_>>()?;
    let parts: Vec<&StringArray> = parts
        .iter()
        .map(|p| p.as_any().downcast_ref::<StringArray>().expect("utf8"))
        .collect();
    Ok((0..batch.num_rows())
        .map(|r| {
            parts
                .iter()
                .map(|p| p.value(r))
                .collect::<Vec<_>>()
                .join("\u{1f}")
        })
        .collect())
}

/// Every key the source holds now (after the transform, if any): the "full
/// diff" way to find deletes. Only the keys are kept.
async fn present_keys(
    job: &SyncJob,
    key_items: &[String],
    source: &dyn tongban_connectors::Source,
) -> Result<HashSet<String>> {
    let schema = source.schema().await.map_err(connector)?;
    let raw = source
        .read(&Read::Full)
        .await
        .map_err(connector)?
        .map(|b| b.map_err(connector))
        .boxed();
    let mut stream = match &job.spec.transform {
        Some(sql) => transform::apply(sql, schema, raw).await?.1,
        None => raw,
    };
    let mut keys = HashSet::new();
    while let Some(batch) = stream.next().await {
        keys.extend(keys_of(&batch?, key_items)?);
    }
    Ok(keys)
}

/// Applies the changed rows (upserts, and deletes where `deleted`) to the
/// previous version, by key; with `present`, previous rows whose key the
/// source no longer has are deleted too.
fn merge(
    spec: &ResourceSpec,
    schema: &SchemaRef,
    previous: Option<Vec<RecordBatch>>,
    changed: &[RecordBatch],
    deleted: &[BooleanArray],
    present: Option<&HashSet<String>>,
) -> Result<Merged> {
    if spec.key_items.is_empty() {
        return Err(Error::JobDoesNotFit(format!(
            "resource {} has no key items; an incremental job needs them to merge",
            spec.code
        )));
    }
    let changed = concat_batches(schema, changed)?;
    let deleted: Vec<bool> = deleted
        .iter()
        .flat_map(|d| d.iter().map(|v| v == Some(true)))
        .collect();
    let change_keys = keys_of(&changed, &spec.key_items)?;
    let by_key: HashMap<&str, usize> = change_keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let previous = match previous {
        Some(batches) if !batches.is_empty() => {
            let prev = concat_batches(&batches[0].schema(), &batches)?;
            if prev.schema().fields() != schema.fields() {
                return Err(Error::JobDoesNotFit(
                    "the previous version's columns differ from the directory's items; run a full sync".into(),
                ));
            }
            // Same fields; adopt the target schema's metadata.
            RecordBatch::try_new(schema.clone(), prev.columns().to_vec())?
        }
        _ => RecordBatch::new_empty(schema.clone()),
    };
    let prev_keys = keys_of(&previous, &spec.key_items)?;
    let mut keep = Vec::with_capacity(previous.num_rows());
    let mut in_previous = vec![false; changed.num_rows()];
    let gone = |k: &str| present.is_some_and(|p| !p.contains(k));
    for k in &prev_keys {
        match by_key.get(k.as_str()) {
            Some(&i) => {
                in_previous[i] = true;
                keep.push(false);
            }
            None => keep.push(!gone(k)),
        }
    }
    let keep = BooleanArray::from(keep);
    let upsert = BooleanArray::from(deleted.iter().map(|d| !d).collect::<Vec<_>>());
    let mut rows = vec![filter_record_batch(&previous, &keep)?];
    rows.push(filter_record_batch(&changed, &upsert)?);

    // The change set: preimages and deletes from the previous version,
    // inserts and postimages from the changed rows.
    let mut prev_kind: Vec<Option<&str>> = Vec::with_capacity(previous.num_rows());
    for k in &prev_keys {
        prev_kind.push(match by_key.get(k.as_str()) {
            Some(&i) if deleted[i] => Some("delete"),
            Some(_) => Some("update_preimage"),
            None if gone(k) => Some("delete"),
            None => None,
        });
    }
    let new_kind: Vec<Option<&str>> = (0..changed.num_rows())
        .map(|i| match (deleted[i], in_previous[i]) {
            (true, _) => None,
            (false, true) => Some("update_postimage"),
            (false, false) => Some("insert"),
        })
        .collect();
    let (mut inserts, mut updates, mut deletes) = (0, 0, 0);
    for k in new_kind.iter().chain(&prev_kind).flatten() {
        match *k {
            "insert" => inserts += 1,
            "update_postimage" => updates += 1,
            "delete" => deletes += 1,
            _ => {}
        }
    }
    let with_kind = |batch: &RecordBatch, kinds: &[Option<&str>]| -> Result<RecordBatch> {
        let mask: BooleanArray = kinds.iter().map(|k| Some(k.is_some())).collect();
        let rows = filter_record_batch(batch, &mask)?;
        let kinds = StringArray::from_iter_values(kinds.iter().flatten().copied());
        let mut cols = rows.columns().to_vec();
        cols.push(Arc::new(kinds));
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("_change_type", DataType::Utf8, false));
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
    };
    let a = with_kind(&previous, &prev_kind)?;
    let b = with_kind(&changed, &new_kind)?;
    let changes = concat_batches(&a.schema(), &[a.clone(), b])?;
    Ok(Merged {
        rows,
        changes,
        inserts,
        updates,
        deletes,
    })
}

/// The run's quarantine file: rows collected as they are rejected, written
/// to the dataset store once, create-only, when the run ends.
struct Quarantine {
    path: String,
    schema: SchemaRef,
    writer: Option<parquet::arrow::ArrowWriter<Vec<u8>>>,
}

impl Quarantine {
    fn new(job: &str, run: i64, schema: SchemaRef) -> Quarantine {
        Quarantine {
            path: format!("quarantine/{job}/run-{run}.parquet"),
            schema,
            writer: None,
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.writer.is_none() {
            self.writer = Some(parquet::arrow::ArrowWriter::try_new(
                Vec::new(),
                self.schema.clone(),
                None,
            )?);
        }
        self.writer.as_mut().expect("opened").write(batch)?;
        Ok(())
    }

    /// Stores the file; where it is if any row was quarantined. A run's
    /// id is unique, so the file exists already only if this very run
    /// wrote it (an attempt retried after a lost answer).
    async fn finish(self, datasets: &DatasetStore) -> Result<Option<String>> {
        let Some(writer) = self.writer else {
            return Ok(None);
        };
        let bytes = writer.into_inner()?;
        datasets.put_new(&self.path, bytes.into()).await?;
        Ok(Some(datasets.display(&self.path)))
    }
}
