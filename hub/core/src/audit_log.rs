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
//! - [`trace_all`]: the records of one key, across every replica;
//! - signed checkpoints of each replica's Merkle tree ([`Shipper`] takes one
//!   every `audit_checkpoint_interval_s` into the catalog; [`take_checkpoint`]
//!   on demand), which [`verify_all`] checks the log against, and from which
//!   [`prove`] answers inclusion and consistency proofs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tongban_audit::checkpoint::{Checkpoint, SigAlg, Signer, Verifier};
use tongban_audit::merkle::{self, Frontier, Hash, HashAlg};
use tongban_audit::{Audit, ChainCheck, Record};
use tongban_catalog::{AuditCheckpoint, AuditHead, Store};
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
    /// A checkpoint or proof asked for cannot be made or read.
    #[error("{0}")]
    Checkpoint(String),
    /// A shipped segment is not what this replica holds under its name:
    /// one of the two was altered, or two replicas share an id.
    #[error("shipped segment {0} differs from the local one; two replicas may share a replica_id")]
    Differs(String),
}

/// The key a hub signs its logs' checkpoints with, made from its secret
/// (replicas sharing the secret sign alike; each log has its own name),
/// of the configured signature type.
pub fn signer(secret: &[u8], replica: &str, alg: SigAlg) -> Signer {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(b"tongban audit checkpoint key v1");
    let seed: [u8; 32] = mac.finalize().into_bytes().into();
    Signer::with_alg(&Checkpoint::origin_of(Some(replica)), alg, &seed)
}

/// The hub's verifier keys of a replica's log, one per signature type: a
/// note signed by either is the hub's (the type may have been changed
/// between checkpoints).
fn own_verifiers(secret: &[u8], replica: &str) -> Vec<Verifier> {
    [SigAlg::Ed25519, SigAlg::Sm2]
        .into_iter()
        .map(|alg| {
            Verifier::parse(&signer(secret, replica, alg).verifier_key())
                .expect("our own keys parse")
        })
        .collect()
}

/// Opens `note` with the first of `verifiers` that signed it.
fn open_with_any(verifiers: &[Verifier], note: &str) -> Result<Checkpoint, String> {
    let mut first_error = None;
    for v in verifiers {
        match v.open(note) {
            Ok(c) => return Ok(c),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| "no key to check it with".into()))
}

/// The hash of a log from its first line (SHA-256 for none).
fn alg_of(lines: &[String]) -> HashAlg {
    lines
        .first()
        .and_then(|l| tongban_audit::alg_of_line(l))
        .unwrap_or_default()
}

/// Ships one replica's sealed segments, records its head, and takes
/// signed checkpoints of its tree.
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
    signer: Signer,
    checkpoint_every: std::time::Duration,
    /// The size of the last checkpoint taken, and when.
    checkpointed: Option<(u64, std::time::Instant)>,
}

impl Shipper {
    pub fn new(
        audit: Audit,
        dir: &Path,
        replica: &str,
        datasets: Option<DatasetStore>,
        store: Arc<dyn Store>,
        signer: Signer,
        checkpoint_every: std::time::Duration,
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
            signer,
            checkpoint_every,
            checkpointed: None,
        }
    }

    /// Signs a checkpoint of the tree as it is now and keeps it in the
    /// catalog, unless nothing was added since the last one.
    pub async fn checkpoint(&mut self) -> Result<Option<AuditCheckpoint>, ShipError> {
        let (size, root) = self.audit.tree();
        if size == 0 || self.checkpointed.is_some_and(|(s, _)| s == size) {
            return Ok(None);
        }
        let c = signed(&self.signer, &self.replica, size, root);
        self.store.record_audit_checkpoint(&c).await?;
        self.checkpointed = Some((size, std::time::Instant::now()));
        Ok(Some(c))
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
                let mut bytes = std::fs::read(file).map_err(|source| ShipError::File {
                    path: file.clone(),
                    source,
                })?;
                // A sealed segment is cut to its records; one a crash left
                // uncut is shipped without its zeros.
                bytes.truncate(tongban_audit::written(&bytes).len());
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
        let due = self
            .checkpointed
            .is_none_or(|(_, at)| at.elapsed() >= self.checkpoint_every);
        if due {
            self.checkpoint().await?;
        }
        Ok(())
    }
}

/// The catalog row of a checkpoint signed now.
fn signed(signer: &Signer, replica: &str, size: u64, root: Hash) -> AuditCheckpoint {
    let note = signer.sign(&Checkpoint {
        origin: Checkpoint::origin_of(Some(replica)),
        size,
        root,
    });
    AuditCheckpoint {
        replica: replica.to_string(),
        size: size as i64,
        root: hex::encode(root),
        note,
        created_at: chrono::Utc::now(),
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
    /// Signed checkpoints the log was checked against (the catalog's, and
    /// one given by the caller).
    pub checkpoints: usize,
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
    let text = tongban_audit::read_segment(first).ok()?;
    let line = text.lines().find(|l| !l.trim().is_empty())?;
    serde_json::from_str::<Record>(line).ok()?.replica
}

/// The segments of the local log in `local_dir`, and whose they are (its
/// records say; `default_replica` for a log written before replica ids).
fn local_log(
    local_dir: Option<&Path>,
    default_replica: &str,
) -> Result<(Vec<PathBuf>, Option<String>), ShipError> {
    let files = match local_dir {
        Some(dir) => tongban_audit::segment_files(dir)?,
        None => Vec::new(),
    };
    let name = (!files.is_empty())
        .then(|| local_replica(&files).unwrap_or_else(|| default_replica.to_string()));
    Ok((files, name))
}

/// What [`verify_all`] checks the chains against besides the catalog's
/// heads: the signed checkpoints in the catalog, and one kept elsewhere.
#[derive(Debug, Clone, Copy)]
pub struct Against<'a> {
    /// The hub's secret: checkpoints must carry the signature of the key
    /// made from it (or `key`'s, for `note`).
    pub secret: &'a [u8],
    /// A signed checkpoint from outside the catalog (`--checkpoint FILE`).
    pub note: Option<&'a str>,
    /// The verifier key `note` is checked with (`name+id+key`); unset: the
    /// hub's own.
    pub key: Option<&'a str>,
}

/// The replica a checkpoint's origin names (`tongban/audit/<replica>`).
fn replica_of_origin(note: &str) -> Option<String> {
    note.lines()
        .next()?
        .strip_prefix("tongban/audit/")
        .map(str::to_string)
}

/// A checkpoint to check a log against, and where it came from.
struct Expected {
    source: String,
    checkpoint: Checkpoint,
}

/// The checkpoints each replica's log must match: the catalog's (each
/// signed by the hub's key) and the caller's note.
async fn expected_checkpoints(
    store: &dyn Store,
    against: &Against<'_>,
) -> Result<BTreeMap<String, Vec<Expected>>, ShipError> {
    let mut by_replica: BTreeMap<String, Vec<Expected>> = BTreeMap::new();
    for row in store.audit_checkpoints(None).await? {
        let checkpoint = open_with_any(&own_verifiers(against.secret, &row.replica), &row.note)
            .map_err(|e| {
                ShipError::Checkpoint(format!(
                    "{}: the catalog's checkpoint of size {} is not this hub's: {e}",
                    row.replica, row.size
                ))
            })?;
        if checkpoint.size != row.size as u64 || hex::encode(checkpoint.root) != row.root {
            return Err(ShipError::Checkpoint(format!(
                "{}: the catalog's checkpoint of size {} does not say what its note says",
                row.replica, row.size
            )));
        }
        by_replica
            .entry(row.replica.clone())
            .or_default()
            .push(Expected {
                source: format!(
                    "the catalog's checkpoint of {}",
                    row.created_at.to_rfc3339()
                ),
                checkpoint,
            });
    }
    if let Some(note) = against.note {
        let replica = replica_of_origin(note).ok_or_else(|| {
            ShipError::Checkpoint(
                "the checkpoint is not of a Tongban audit log (its origin)".into(),
            )
        })?;
        let verifiers = match against.key {
            Some(k) => vec![
                Verifier::parse(k)
                    .map_err(|e| ShipError::Checkpoint(format!("the verifier key: {e}")))?,
            ],
            None => own_verifiers(against.secret, &replica),
        };
        let checkpoint = open_with_any(&verifiers, note)
            .map_err(|e| ShipError::Checkpoint(format!("the checkpoint given: {e}")))?;
        by_replica.entry(replica).or_default().push(Expected {
            source: "the checkpoint given".into(),
            checkpoint,
        });
    }
    for list in by_replica.values_mut() {
        list.sort_by_key(|e| e.checkpoint.size);
    }
    Ok(by_replica)
}

/// Checks every replica's chain: the shipped segments (with an object
/// store), the local log in `local_dir` (the replica this runs beside, if
/// any), the heads the catalog recorded, and the signed checkpoints.
pub async fn verify_all(
    store: &dyn Store,
    datasets: Option<&DatasetStore>,
    local_dir: Option<&Path>,
    default_replica: &str,
    against: Against<'_>,
) -> Result<Vec<ReplicaReport>, ShipError> {
    let mut expected = expected_checkpoints(store, &against).await?;
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
    let (local_files, local_name) = local_log(local_dir, default_replica)?;
    let mut replicas: BTreeSet<String> = heads.keys().cloned().collect();
    replicas.extend(shipped.keys().cloned());
    replicas.extend(local_name.clone());
    replicas.extend(expected.keys().cloned());
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
        let checkpoints = expected.remove(&replica).unwrap_or_default();
        reports.push(verify_one(&replica, segments, head, checkpoints, datasets).await?);
    }
    Ok(reports)
}

async fn verify_one(
    replica: &str,
    segments: Segments,
    head: Option<AuditHead>,
    checkpoints: Vec<Expected>,
    datasets: Option<&DatasetStore>,
) -> Result<ReplicaReport, ShipError> {
    let mut report = ReplicaReport {
        replica: replica.to_string(),
        records: 0,
        shipped_segments: segments.shipped.len(),
        local_segments: segments.local.len(),
        head: head.clone(),
        checkpoints: checkpoints.len(),
        problem: None,
    };
    // The tree, grown record by record, is compared with each checkpoint
    // as it reaches the checkpoint's size.
    // The tree takes the chain's hash, which its first record tells.
    let mut tree: Option<Frontier> = None;
    let mut pending = checkpoints.iter().peekable();
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
            Some(p) => Some(
                tongban_audit::read_segment(p)
                    .map_err(|source| ShipError::File {
                        path: p.clone(),
                        source,
                    })?
                    .into_bytes(),
            ),
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
                    let tree =
                        tree.get_or_insert_with(|| Frontier::new(check.alg().unwrap_or_default()));
                    tree.push(line.as_bytes());
                    while let Some(e) = pending.next_if(|e| e.checkpoint.size == tree.size) {
                        if tree.root() != e.checkpoint.root {
                            report.problem = Some(format!(
                                "the first {} records are not those {} signed: a record up to \
                                 {} was edited, removed or reordered, or the log was rewritten \
                                 (a fork) after it",
                                e.checkpoint.size, e.source, e.checkpoint.size
                            ));
                            return Ok(report);
                        }
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
    let size = tree.as_ref().map_or(0, |t| t.size);
    if let Some(e) = checkpoints.last()
        && e.checkpoint.size > size
    {
        report.problem = Some(format!(
            "the log ends at record {}, but {} covers {} records: records {}–{} were cut off",
            size,
            e.source,
            e.checkpoint.size,
            size + 1,
            e.checkpoint.size
        ));
        return Ok(report);
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
    // Either hash: each replica's log keeps the one it was started with.
    let wanted =
        [HashAlg::Sha256, HashAlg::Sm3].map(|alg| tongban_audit::key_hash_with(alg, secret, key));
    let mut found: BTreeMap<(String, u64), Record> = BTreeMap::new();
    let mut keep = |text: &str, replica: &str| {
        for line in text.lines() {
            if let Some(r) = wanted
                .iter()
                .find_map(|w| tongban_audit::record_of_key(line, w))
            {
                let id = r.replica.clone().unwrap_or_else(|| replica.to_string());
                found.insert((id, r.seq), r);
            }
        }
    };
    if let Some(dir) = local_dir {
        for file in tongban_audit::segment_files(dir)? {
            let text = tongban_audit::read_segment(&file).map_err(|source| ShipError::File {
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

/// Every complete line of one replica's log, oldest first: the local log
/// in `local_dir` if it is that replica's, else its shipped segments. A
/// last line still being written (no newline yet) is left out.
async fn replica_lines(
    replica: &str,
    datasets: Option<&DatasetStore>,
    local_dir: Option<&Path>,
    default_replica: &str,
) -> Result<Vec<String>, ShipError> {
    let (local_files, local_name) = local_log(local_dir, default_replica)?;
    let mut texts = Vec::new();
    if local_name.as_deref() == Some(replica) {
        for f in &local_files {
            texts.push(
                tongban_audit::read_segment(f).map_err(|source| ShipError::File {
                    path: f.clone(),
                    source,
                })?,
            );
        }
    } else if let Some(d) = datasets {
        for path in shipped_segments(d)
            .await?
            .remove(replica)
            .unwrap_or_default()
            .values()
        {
            texts.push(String::from_utf8_lossy(&d.get(path.as_ref()).await?).into_owned());
        }
    }
    let mut lines = Vec::new();
    for text in texts {
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        lines.extend(
            complete
                .split('\n')
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
    }
    Ok(lines)
}

/// Signs a checkpoint of `replica`'s log as it is now (read as
/// [`replica_lines`] reads it), keeps it in the catalog, and returns it.
pub async fn take_checkpoint(
    store: &dyn Store,
    datasets: Option<&DatasetStore>,
    local_dir: Option<&Path>,
    default_replica: &str,
    secret: &[u8],
    sig: SigAlg,
    replica: &str,
) -> Result<AuditCheckpoint, ShipError> {
    let lines = replica_lines(replica, datasets, local_dir, default_replica).await?;
    if lines.is_empty() {
        return Err(ShipError::Checkpoint(format!(
            "{replica}: no audit records here to take a checkpoint of"
        )));
    }
    let mut tree = Frontier::new(alg_of(&lines));
    for l in &lines {
        tree.push(l.as_bytes());
    }
    let c = signed(
        &signer(secret, replica, sig),
        replica,
        tree.size,
        tree.root(),
    );
    store.record_audit_checkpoint(&c).await?;
    Ok(c)
}

/// What `tongban audit prove` answers: a record, the path that proves it is
/// in the tree a signed checkpoint names, and optionally that this tree
/// extends an earlier one.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Proof {
    pub replica: String,
    pub seq: u64,
    /// The record's line: the leaf's data.
    pub record: String,
    /// Hex of `H(0x00 ‖ record)`.
    pub leaf_hash: String,
    /// `seq - 1`: leaves count from 0.
    pub leaf_index: u64,
    pub tree_size: u64,
    /// Hex hashes, nearest sibling first (RFC 9162 §2.1.3).
    pub inclusion_path: Vec<String>,
    /// The signed checkpoint of `tree_size`.
    pub checkpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyProof>,
}

/// That the tree of `tree_size` leaves extends the one of `from` leaves.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsistencyProof {
    pub from: u64,
    /// Hex of the root at `from`.
    pub from_root: String,
    /// Hex hashes (RFC 9162 §2.1.4).
    pub path: Vec<String>,
}

/// The inclusion proof of record `seq` of `replica`'s log in the tree of
/// the newest signed checkpoint that covers it (or of `size`, signed now
/// if the catalog has no checkpoint of that size), and, with `from`, the
/// consistency proof from that earlier size.
#[allow(clippy::too_many_arguments)]
pub async fn prove(
    store: &dyn Store,
    datasets: Option<&DatasetStore>,
    local_dir: Option<&Path>,
    default_replica: &str,
    secret: &[u8],
    sig: SigAlg,
    replica: &str,
    seq: u64,
    size: Option<u64>,
    from: Option<u64>,
) -> Result<Proof, ShipError> {
    let lines = replica_lines(replica, datasets, local_dir, default_replica).await?;
    let have = lines.len() as u64;
    if seq == 0 || seq > have {
        return Err(ShipError::Checkpoint(format!(
            "{replica}: no record {seq} (the log here has records 1–{have})"
        )));
    }
    let checkpoints = store.audit_checkpoints(Some(replica)).await?;
    let chosen = match size {
        Some(s) => checkpoints.iter().find(|c| c.size as u64 == s),
        None => checkpoints
            .iter()
            .rev()
            .find(|c| c.size as u64 >= seq && c.size as u64 <= have),
    };
    let size = size.or(chosen.map(|c| c.size as u64)).unwrap_or(have);
    if size < seq || size > have {
        return Err(ShipError::Checkpoint(format!(
            "{replica}: a tree of {size} records cannot prove record {seq} from a log of {have}"
        )));
    }
    let alg = alg_of(&lines);
    let leaves: Vec<Hash> = lines[..size as usize]
        .iter()
        .map(|l| alg.leaf(l.as_bytes()))
        .collect();
    let root = merkle::root(alg, &leaves);
    let note = match chosen {
        Some(c) if c.root == hex::encode(root) => c.note.clone(),
        Some(c) => {
            return Err(ShipError::Checkpoint(format!(
                "{replica}: the log's first {size} records are not those the checkpoint of {} \
                 signed; run `tongban audit verify`",
                c.created_at.to_rfc3339()
            )));
        }
        None => {
            let c = signed(&signer(secret, replica, sig), replica, size, root);
            store.record_audit_checkpoint(&c).await?;
            c.note
        }
    };
    let index = (seq - 1) as usize;
    let consistency = match from {
        None => None,
        Some(f) if f == 0 || f > size => {
            return Err(ShipError::Checkpoint(format!(
                "--from {f}: must be between 1 and the tree's size {size}"
            )));
        }
        Some(f) => Some(ConsistencyProof {
            from: f,
            from_root: hex::encode(merkle::root(alg, &leaves[..f as usize])),
            path: merkle::consistency_proof(alg, &leaves, f as usize)
                .iter()
                .map(hex::encode)
                .collect(),
        }),
    };
    Ok(Proof {
        replica: replica.to_string(),
        seq,
        record: lines[index].clone(),
        leaf_hash: hex::encode(leaves[index]),
        leaf_index: index as u64,
        tree_size: size,
        inclusion_path: merkle::inclusion_proof(alg, &leaves, index)
            .iter()
            .map(hex::encode)
            .collect(),
        checkpoint: note,
        consistency,
    })
}
