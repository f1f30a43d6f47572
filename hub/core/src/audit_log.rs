//! The audit log across replicas. Each replica keeps its own hash chain on
//! its own disk (its id in every record); this module makes the chains
//! hold up together:
//!
//! - [`Shipper`]: a replica's sealed segments go to the object store,
//!   create-only, as `audit/<replica>/audit-NNNNNN.jsonl`, and its head
//!   (sequence number and hash) is recorded in the catalog as it advances;
//! - [`verify_all`]: every replica's chain, read from the shipped segments
//!   (and from the local disk for the replica the command runs beside),
//!   checked record by record and against the head the catalog recorded —
//!   so an edited, removed or reordered record, a missing or altered
//!   segment and a cut-off tail all show;
//! - [`trace_all`]: the records of one key, across every replica.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tongban_audit::{Audit, ChainCheck, Record};
use tongban_catalog::{AuditHead, Store};
use tongban_datasets::{DatasetStore, Put};

/// Where a replica's shipped segments live under the store's root.
pub fn shipped_prefix(replica: &str) -> String {
    format!("audit/{replica}")
}

/// What can go wrong while shipping or reading shipped segments.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(transparent)]
    Audit(#[from] tongban_audit::Error),
    #[error(transparent)]
    Store(#[from] tongban_datasets::Error),
    #[error(transparent)]
    Catalog(#[from] tongban_catalog::Error),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A shipped segment is not what this replica holds under its name:
    /// one of the two was altered, or two replicas share an id.
    #[error("shipped segment {0} differs from the local one; two replicas may share a replica_id")]
    Differs(String),
}

/// Ships one replica's sealed segments and records its head.
pub struct Shipper {
    audit: Audit,
    dir: PathBuf,
    replica: String,
    /// None: no object store is configured, only the head is recorded.
    datasets: Option<DatasetStore>,
    store: Arc<dyn Store>,
    /// Segments known to be on the object store.
    shipped: BTreeSet<String>,
    /// The last record of the newest shipped segment.
    shipped_seq: i64,
    recorded: Option<(u64, i64)>,
}

impl Shipper {
    pub fn new(
        audit: Audit,
        dir: &Path,
        replica: &str,
        datasets: Option<DatasetStore>,
        store: Arc<dyn Store>,
    ) -> Shipper {
        Shipper {
            audit,
            dir: dir.to_path_buf(),
            replica: replica.to_string(),
            datasets,
            store,
            shipped: BTreeSet::new(),
            shipped_seq: 0,
            recorded: None,
        }
    }

    /// Asks the log to seal its current segment (shipped at the next
    /// [`Shipper::tick`]).
    pub fn seal(&self) {
        if self.datasets.is_some() {
            self.audit.seal_segment();
        }
    }

    /// Ships the sealed segments not shipped yet, then records the head.
    pub async fn tick(&mut self) -> Result<(), ShipError> {
        if let Some(datasets) = &self.datasets {
            let files = tongban_audit::segment_files(&self.dir)?;
            let sealed = files.len().saturating_sub(1);
            for file in &files[..sealed] {
                let name = file_name(file);
                if self.shipped.contains(&name) {
                    continue;
                }
                let bytes = std::fs::read(file).map_err(|source| ShipError::File {
                    path: file.clone(),
                    source,
                })?;
                let path = format!("{}/{name}", shipped_prefix(&self.replica));
                let last = last_seq(&bytes);
                match datasets.put_new(&path, bytes.clone().into()).await? {
                    Put::Created => {
                        metrics::counter!("tongban_audit_segments_shipped_total").increment(1);
                        tracing::info!(segment = %name, last_seq = last, "audit segment shipped");
                    }
                    // Shipped before (by this replica, before a restart).
                    Put::Exists => {
                        if datasets.get(&path).await? != bytes {
                            return Err(ShipError::Differs(path));
                        }
                    }
                }
                self.shipped.insert(name);
                self.shipped_seq = self.shipped_seq.max(last);
            }
        }
        let (seq, hash) = self.audit.head();
        if self.recorded != Some((seq, self.shipped_seq)) {
            self.store
                .record_audit_head(&AuditHead {
                    replica: self.replica.clone(),
                    seq: seq as i64,
                    hash,
                    shipped: self.shipped_seq,
                    updated_at: chrono::Utc::now(),
                })
                .await?;
            self.recorded = Some((seq, self.shipped_seq));
        }
        Ok(())
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string()
}

/// The sequence number of a segment's last record (0 if none is readable).
fn last_seq(bytes: &[u8]) -> i64 {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| serde_json::from_str::<Record>(l).ok())
        .map_or(0, |r| r.seq as i64)
}

/// What `verify_all` found for one replica.
#[derive(Debug, Clone)]
pub struct ReplicaReport {
    pub replica: String,
    /// Records checked, all intact up to the first problem.
    pub records: u64,
    pub shipped_segments: usize,
    pub local_segments: usize,
    /// The head the catalog recorded, if any.
    pub head: Option<AuditHead>,
    /// The first problem, naming the segment (and line) it is in.
    pub problem: Option<String>,
}

/// The segments of one replica's chain, by name: where each one is read
/// from (the local copy when both exist, after checking they agree).
struct Segments {
    shipped: BTreeMap<String, object_store::path::Path>,
    local: BTreeMap<String, PathBuf>,
}

async fn shipped_segments(
    datasets: &DatasetStore,
) -> Result<BTreeMap<String, BTreeMap<String, object_store::path::Path>>, ShipError> {
    use futures::TryStreamExt;
    let store = datasets.object_store();
    let prefix = object_store::path::Path::from("audit");
    let objects: Vec<object_store::ObjectMeta> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(tongban_datasets::Error::from)?;
    let mut by_replica: BTreeMap<String, BTreeMap<String, _>> = BTreeMap::new();
    for o in objects {
        let parts: Vec<&str> = o.location.as_ref().split('/').collect();
        if let [_, replica, name] = parts[..]
            && name.starts_with("audit-")
            && name.ends_with(".jsonl")
        {
            by_replica
                .entry(replica.to_string())
                .or_default()
                .insert(name.to_string(), o.location.clone());
        }
    }
    Ok(by_replica)
}

/// The replica a local log belongs to: its records say.
fn local_replica(files: &[PathBuf]) -> Option<String> {
    let first = files.first()?;
    let text = std::fs::read_to_string(first).ok()?;
    let line = text.lines().find(|l| !l.trim().is_empty())?;
    serde_json::from_str::<Record>(line).ok()?.replica
}

/// Checks every replica's chain: the shipped segments (with an object
/// store), the local log in `local_dir` (the replica this runs beside, if
/// any), and the heads the catalog recorded.
pub async fn verify_all(
    store: &dyn Store,
    datasets: Option<&DatasetStore>,
    local_dir: Option<&Path>,
    default_replica: &str,
) -> Result<Vec<ReplicaReport>, ShipError> {
    let heads: BTreeMap<String, AuditHead> = store
        .audit_heads()
        .await?
        .into_iter()
        .map(|h| (h.replica.clone(), h))
        .collect();
    let mut shipped = match datasets {
        Some(d) => shipped_segments(d).await?,
        None => BTreeMap::new(),
    };
    let local_files = match local_dir {
        Some(dir) => tongban_audit::segment_files(dir)?,
        None => Vec::new(),
    };
    let local_name = (!local_files.is_empty())
        .then(|| local_replica(&local_files).unwrap_or_else(|| default_replica.to_string()));
    let mut replicas: BTreeSet<String> = heads.keys().cloned().collect();
    replicas.extend(shipped.keys().cloned());
    replicas.extend(local_name.clone());
    let mut reports = Vec::new();
    for replica in replicas {
        let segments = Segments {
            shipped: shipped.remove(&replica).unwrap_or_default(),
            local: if local_name.as_deref() == Some(replica.as_str()) {
                local_files
                    .iter()
                    .map(|p| (file_name(p), p.clone()))
                    .collect()
            } else {
                BTreeMap::new()
            },
        };
        let head = heads.get(&replica).cloned();
        reports.push(verify_one(&replica, segments, head, datasets).await?);
    }
    Ok(reports)
}

async fn verify_one(
    replica: &str,
    segments: Segments,
    head: Option<AuditHead>,
    datasets: Option<&DatasetStore>,
) -> Result<ReplicaReport, ShipError> {
    let mut report = ReplicaReport {
        replica: replica.to_string(),
        records: 0,
        shipped_segments: segments.shipped.len(),
        local_segments: segments.local.len(),
        head: head.clone(),
        problem: None,
    };
    let names: BTreeSet<&String> = segments
        .shipped
        .keys()
        .chain(segments.local.keys())
        .collect();
    let mut check = ChainCheck::default();
    // The hash of the record the head names, once the chain reaches it.
    let mut at_head: Option<String> = None;
    for name in names {
        let local = match segments.local.get(name) {
            Some(p) => Some(std::fs::read(p).map_err(|source| ShipError::File {
                path: p.clone(),
                source,
            })?),
            None => None,
        };
        let remote = match (segments.shipped.get(name), datasets) {
            (Some(path), Some(d)) => Some(d.get(path.as_ref()).await?.to_vec()),
            _ => None,
        };
        if let (Some(l), Some(r)) = (&local, &remote)
            && l != r
        {
            report.problem = Some(format!(
                "{name}: the shipped copy differs from the local one: one of them was altered"
            ));
            return Ok(report);
        }
        let bytes = local.or(remote).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for (i, line) in text.lines().enumerate() {
            match check.line(line) {
                Ok(Some(r)) => {
                    if r.replica.as_deref().is_some_and(|id| id != replica) {
                        report.problem = Some(format!(
                            "{name} line {}: record {} belongs to replica {:?}",
                            i + 1,
                            r.seq,
                            r.replica
                        ));
                        return Ok(report);
                    }
                    if head.as_ref().is_some_and(|h| h.seq as u64 == r.seq) {
                        at_head = Some(r.hash.clone());
                    }
                }
                Ok(None) => {}
                Err(problem) => {
                    report.problem = Some(format!("{name} line {}: {problem}", i + 1));
                    return Ok(report);
                }
            }
        }
        report.records = check.head().0;
    }
    if let Some(h) = &head {
        let end = check.head().0;
        if end < h.seq as u64 {
            report.problem = Some(format!(
                "the chain ends at record {end}, but the catalog recorded record {} as its head \
                 on {}: records {}–{} are missing (a cut-off tail or a missing segment)",
                h.seq,
                h.updated_at.to_rfc3339(),
                end + 1,
                h.seq
            ));
        } else if h.seq > 0 && at_head.as_deref() != Some(h.hash.as_str()) {
            report.problem = Some(format!(
                "record {} is not the one the catalog recorded as the head: the chain was rewritten",
                h.seq
            ));
        }
    }
    Ok(report)
}

/// Every record of `key` on every replica (shipped segments, and the local
/// log in `local_dir`), oldest first.
pub async fn trace_all(
    datasets: Option<&DatasetStore>,
    local_dir: Option<&Path>,
    secret: &[u8],
    key: &str,
) -> Result<Vec<Record>, ShipError> {
    let wanted = tongban_audit::key_hash(secret, key);
    let mut found: BTreeMap<(String, u64), Record> = BTreeMap::new();
    let mut keep = |text: &str, replica: &str| {
        for line in text.lines() {
            if let Some(r) = tongban_audit::record_of_key(line, &wanted) {
                let id = r.replica.clone().unwrap_or_else(|| replica.to_string());
                found.insert((id, r.seq), r);
            }
        }
    };
    if let Some(dir) = local_dir {
        for file in tongban_audit::segment_files(dir)? {
            let text = std::fs::read_to_string(&file).map_err(|source| ShipError::File {
                path: file.clone(),
                source,
            })?;
            keep(&text, "local");
        }
    }
    if let Some(d) = datasets {
        for (replica, segments) in shipped_segments(d).await? {
            for path in segments.values() {
                let bytes = d.get(path.as_ref()).await?;
                keep(&String::from_utf8_lossy(&bytes), &replica);
            }
        }
    }
    let mut records: Vec<Record> = found.into_values().collect();
    records.sort_by_key(|r| r.event.time);
    Ok(records)
}
