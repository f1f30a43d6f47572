//! The audit log: every release and every denial, append-only and
//! hash-chained, so that `tongban audit verify` detects any record edited,
//! removed or reordered, and `tongban audit trace --key K` tells who looked a
//! citizen or company up, when, and for which matter.
//!
//! Layout: `DATA_DIR/audit/audit-NNNNNN.jsonl`, one JSON record per line,
//! segments of at most [`SEGMENT_BYTES`] (or fewer: [`Audit::seal_segment`]
//! starts the next one early, so that sealed segments can be shipped to the
//! object store). The segment being written is preallocated: its file is
//! [`SEGMENT_BYTES`] long from the start (a sparse tail of zeros), so that a
//! commit's `fdatasync` need not journal a new file size each time. Its
//! records end at the first zero byte, where every reader stops
//! ([`written`], [`read_segment`]); a segment is cut to its records when it
//! is sealed and when the log closes, so stopped logs and sealed segments
//! are plain JSON Lines. Each record carries `seq` (1, 2, … across segments), the
//! `prev` record's hash, the `replica` whose chain it is, and its own
//! `hash`: SHA-256 of `prev` and the record's JSON without `hash`. Keys are
//! never written: only their keyed hash (HMAC-SHA256 with the hub's
//! secret), which `trace` recomputes. [`ChainCheck`] checks a chain from
//! lines wherever they are kept.
//!
//! Durability with group commit: a request seals its record under the
//! chain's lock (sequence number, previous hash, its own hash, the line's
//! bytes: encoded once) and appends it to the pending lines; one writer
//! thread takes everything pending, writes it, calls `fdatasync` once, then
//! wakes the whole batch. Under load a single `fdatasync` covers many
//! records, so durability does not cap throughput, and a request costs no
//! channel or allocation of its own. A request is answered only after its
//! record is on disk: no release goes unrecorded. A failed write cuts the
//! segment back to its durable end and fails every request sealed after it.
//!
//! The log is also a Merkle tree ([`merkle`], RFC 9162): the writer keeps
//! the roots of its perfect subtrees as records become durable
//! ([`Audit::tree`]), and saves them at each segment's start
//! (`tree-NNNNNN.json`) so that opening replays only the last segment.
//! Signed tree heads ([`checkpoint`]) commit to every record they cover:
//! a log cut off, edited or forked after a checkpoint no longer matches it.
//!
//! Crate ladder (docs/architecture.md): depends on no other Tongban crate.

pub mod checkpoint;
pub mod merkle;
pub mod rfc3339;
pub mod subjects;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use merkle::{Frontier, HashAlg};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

/// Largest segment before the writer starts the next one.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Hash of the (absent) record before the first.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How a request or delivery ended, as its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Data left the hub: the record's `items` were released.
    Released,
    /// The decision released nothing; `rule` says why.
    Denied,
    /// The need's quota was used up; nothing was released.
    QuotaExceeded,
    /// A push the consumer's system did not accept: the data may have
    /// reached it, so the record keeps its items.
    Failed,
    /// An interface call the provider did not answer usably (an error
    /// status, a timeout, an answer that breaks its schema, breaker open):
    /// nothing was released; `call` says what the provider did.
    ProviderFailed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Released => "released",
            Outcome::Denied => "denied",
            Outcome::QuotaExceeded => "quota_exceeded",
            Outcome::Failed => "failed",
            Outcome::ProviderFailed => "provider_failed",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened, as the data path tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub time: DateTime<Utc>,
    pub consumer: String,
    pub resource: String,
    /// `lookup`, `verify`, …
    pub mode: String,
    pub matter: String,
    pub case: String,
    /// Items released (verification: items answered).
    pub items: Vec<String>,
    /// Items denied, as `item:rule`.
    pub denied: Vec<String>,
    /// Keyed hashes of the keys asked for.
    pub keys: Vec<String>,
    /// The deciding rule.
    pub rule: String,
    pub outcome: Outcome,
    /// From the request's arrival to its decision and data, in microseconds.
    pub latency_us: u64,
    /// What an interface call sent and got (interface sharing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallEvidence>,
}

/// The evidence of one interface call, in the spirit of X-Road's message
/// log: what was asked of which endpoint for whom, and hashes of exactly
/// the bytes sent and received, so that either side can later prove what
/// passed. Bodies are kept only when the service opts in, up to its cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEvidence {
    pub endpoint: String,
    /// The caller's request id (or the hub's, when it gave none).
    pub request_id: String,
    /// Keyed hash of the subject the case is for (`X-Road-UserId`'s role), if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The provider's HTTP status; none when it never answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_status: Option<u16>,
    /// SHA-256 (hex) of the request as sent: `METHOD SP path-and-query LF body`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<String>,
    /// SHA-256 (hex) of the provider's answer body as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_hash: Option<String>,
    /// Attempts made (retries of idempotent endpoints); 0 when served from the cache.
    pub attempts: u32,
    /// Answered from the hub's response cache.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// Time spent waiting for the provider, in microseconds.
    pub provider_us: u64,
    /// Why the call failed at the provider, e.g. `timeout`, `breaker_open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The first bytes of the request and answer bodies, when the service logs bodies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

/// An [`Event`] of borrowed parts, as the data path has them: it encodes
/// exactly as the `Event` with the same values.
#[derive(Debug, Clone, Serialize)]
pub struct EventRef<'a> {
    #[serde(serialize_with = "rfc3339::serialize")]
    pub time: DateTime<Utc>,
    pub consumer: &'a str,
    pub resource: &'a str,
    pub mode: &'a str,
    pub matter: &'a str,
    pub case: &'a str,
    pub items: Vec<&'a str>,
    pub denied: Vec<String>,
    pub keys: Vec<String>,
    pub rule: &'a str,
    pub outcome: Outcome,
    pub latency_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<&'a CallEvidence>,
}

impl Event {
    pub fn as_ref(&self) -> EventRef<'_> {
        EventRef {
            time: self.time,
            consumer: &self.consumer,
            resource: &self.resource,
            mode: &self.mode,
            matter: &self.matter,
            case: &self.case,
            items: self.items.iter().map(String::as_str).collect(),
            denied: self.denied.clone(),
            keys: self.keys.clone(),
            rule: &self.rule,
            outcome: self.outcome,
            latency_us: self.latency_us,
            call: self.call.as_ref(),
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub prev: String,
    /// The replica whose chain this is (none in a log written before
    /// replicas had ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    #[serde(flatten)]
    pub event: Event,
    pub hash: String,
}

#[derive(Serialize)]
struct Unsealed<'a> {
    seq: u64,
    prev: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    replica: Option<&'a str>,
    #[serde(flatten)]
    event: &'a Event,
}

fn seal(alg: HashAlg, seq: u64, prev: &str, replica: Option<&str>, event: &Event) -> String {
    let body = serde_json::to_vec(&Unsealed {
        seq,
        prev,
        replica,
        event,
    })
    .expect("events serialise");
    to_hex(&alg.digest(&[prev.as_bytes(), &body]))
}

/// Appends the sealed line of record `seq` (an event encoded as `body`,
/// chained to `prev`) to `out`, newline included; returns its hash. The
/// bytes are those of the [`Record`] serde writes, so [`seal`] (which
/// `verify` uses) computes the same hash from the parsed line.
fn seal_into(
    alg: HashAlg,
    out: &mut Vec<u8>,
    seq: u64,
    prev: &str,
    replica: Option<&str>,
    body: &[u8],
) -> String {
    debug_assert!(body.len() > 2 && body[0] == b'{' && body[body.len() - 1] == b'}');
    let start = out.len();
    write!(out, "{{\"seq\":{seq},\"prev\":\"{prev}\",").expect("writing to memory");
    if let Some(r) = replica {
        // A replica id is letters, digits, '-' and '_' (checked at open):
        // nothing to escape.
        write!(out, "\"replica\":\"{r}\",").expect("writing to memory");
    }
    out.extend_from_slice(&body[1..]);
    let hash = to_hex(&alg.digest(&[prev.as_bytes(), &out[start..]]));
    out.pop(); // the closing brace: the hash goes last
    out.extend_from_slice(b",\"hash\":\"");
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(b"\"}\n");
    hash
}

/// The keyed hash under which a key is recorded (HMAC-SHA256, the default).
pub fn key_hash(secret: &[u8], key: &str) -> String {
    key_hash_with(HashAlg::Sha256, secret, key)
}

/// The keyed hash of a key in a log of `alg` (HMAC-SHA256 or HMAC-SM3).
pub fn key_hash_with(alg: HashAlg, secret: &[u8], key: &str) -> String {
    Keyed::new(alg, secret).hash(key)
}

/// An HMAC keyed with the secret once: cloning the keyed state saves the
/// two key-block compressions of every fresh HMAC, which halves the cost
/// per key of a streamed lookup's audit record.
#[derive(Clone)]
enum Keyed {
    Sha256(Hmac<Sha256>),
    Sm3(Hmac<sm3::Sm3>),
}

impl Keyed {
    fn new(alg: HashAlg, secret: &[u8]) -> Keyed {
        const ANY: &str = "HMAC takes any key length";
        match alg {
            HashAlg::Sha256 => Keyed::Sha256(Hmac::new_from_slice(secret).expect(ANY)),
            HashAlg::Sm3 => Keyed::Sm3(Hmac::new_from_slice(secret).expect(ANY)),
        }
    }

    fn hash(&self, key: &str) -> String {
        fn run<M: Mac + Clone>(keyed: &M, key: &str) -> String {
            let mut mac = keyed.clone();
            mac.update(key.as_bytes());
            to_hex(&mac.finalize().into_bytes()[..16])
        }
        match self {
            Keyed::Sha256(m) => run(m, key),
            Keyed::Sm3(m) => run(m, key),
        }
    }
}

/// Lower-case hex, by table: `hex::encode` goes char by char through an
/// iterator, which was a tenth of a streamed lookup's CPU (one hash a key).
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

fn segments(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(Error::File {
                path: dir.to_path_buf(),
                source: e,
            });
        }
    };
    files.sort();
    Ok(files)
}

fn segment_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("audit-{n:06}.jsonl"))
}

/// The records of a segment's bytes: up to its first zero byte (the
/// preallocated tail of the segment being written).
pub fn written(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// The records of the segment file at `path` ([`written`]), as text.
pub fn read_segment(path: &Path) -> std::io::Result<String> {
    let mut bytes = std::fs::read(path)?;
    bytes.truncate(written(&bytes).len());
    String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

/// Opens the segment at `path` for writing at `size` (its records' end)
/// and preallocates it: anything past `size` (a torn write a crash left)
/// is cut off, then the file is extended with zeros to [`SEGMENT_BYTES`].
/// The extension is sparse (no data written): overwriting a hole costs the
/// `fdatasync` of the block it allocates, once per block, where an append
/// costs a journaled size change on every commit.
fn open_segment(path: &Path, size: u64) -> std::io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)?;
    file.set_len(size)?;
    if size < SEGMENT_BYTES {
        file.set_len(SEGMENT_BYTES)?;
    }
    Ok(file)
}

/// One group commit: the records appended while the writer was busy with
/// the previous one. Every request in it waits on the same batch, so a
/// request costs no channel and no allocation of its own.
#[derive(Default)]
struct Batch {
    done: std::sync::OnceLock<Result<(), String>>,
    notify: tokio::sync::Notify,
}

impl Batch {
    fn finish(&self, result: Result<(), String>) {
        let _ = self.done.set(result);
        self.notify.notify_waiters();
    }

    async fn wait(&self) -> Result<(), String> {
        // Registered before the check: a `notify_waiters` after it is seen.
        let notified = self.notify.notified();
        if let Some(r) = self.done.get() {
            return r.clone();
        }
        notified.await;
        self.done
            .get()
            .cloned()
            .unwrap_or_else(|| Err("the audit writer has stopped".into()))
    }
}

/// The head of the chain and the records not yet written, behind one lock.
struct Chain {
    /// The last sealed record (written or pending).
    seq: u64,
    prev: String,
    /// Sealed lines waiting for the writer.
    pending: Vec<u8>,
    /// What the pending lines' requests wait on.
    batch: Arc<Batch>,
    /// The writer sleeps on the condition variable (and must be woken).
    writer_idle: bool,
    /// Every handle is gone: the writer finishes what is pending and stops.
    closed: bool,
    /// Asked to seal the current segment (start the next) at the writer's
    /// next turn, so that it can be shipped.
    rotate: bool,
    /// The keys the pending lines name: key, record, where its line starts
    /// in `pending` (the writer adds the segment and its offset there).
    pending_keys: Vec<(u64, u64, usize)>,
}

struct Shared {
    chain: Mutex<Chain>,
    wake: Condvar,
    /// The newest record on disk: sequence number and hash.
    durable: Mutex<(u64, String)>,
    /// The Merkle tree of the records on disk (updated just after `durable`).
    tree: Mutex<Frontier>,
    /// The subject index of the current segment (and of sealed ones whose
    /// runs are being written), updated with the tree.
    live: Mutex<subjects::Live>,
    /// Where sealed segments' entries go to be written as runs.
    indexer: Mutex<std::sync::mpsc::Sender<(u32, Arc<Vec<subjects::Entry>>)>>,
    dir: PathBuf,
    /// Tests: the next writes fail half-way, as a full or broken disk would.
    #[cfg(test)]
    fail_writes: std::sync::atomic::AtomicBool,
}

impl Shared {
    #[cfg(test)]
    fn failing(&self) -> bool {
        self.fail_writes.load(std::sync::atomic::Ordering::SeqCst)
    }
    #[cfg(not(test))]
    fn failing(&self) -> bool {
        false
    }
}

/// Closes the log when the last handle goes.
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        let mut chain = self.0.chain.lock().expect("audit chain lock");
        chain.closed = true;
        self.0.wake.notify_one();
    }
}

/// The handle requests use to record events.
#[derive(Clone)]
pub struct Audit {
    shared: Arc<Closer>,
    /// The HMAC keyed with the hub's secret, cloned for each key hash.
    keyed: Keyed,
    /// The hash of the chain, the tree and key hashes.
    alg: HashAlg,
    /// This replica's id, sealed into every record.
    replica: Option<Arc<str>>,
}

/// The file side of the log: only the writer thread touches it.
struct Writer {
    dir: PathBuf,
    segment: u32,
    file: std::fs::File,
    /// Bytes durably in the current segment.
    size: u64,
}

/// The number of a segment file, `audit-NNNNNN.jsonl`.
fn segment_number(path: &Path) -> u32 {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .trim_start_matches("audit-")
        .trim_end_matches(".jsonl")
        .parse()
        .unwrap_or(1)
}

/// Where the tree at the start of segment `n` is saved.
fn tree_state_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("tree-{n:06}.json"))
}

/// Appends every line of `text` to the tree.
fn replay(tree: &mut Frontier, text: &str) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        tree.push(line.as_bytes());
    }
}

/// The tree of the whole log: the saved state at the last segment's start
/// and that segment's lines (`last_text`), or, when the state is missing or
/// does not fit, every segment's lines.
fn recover_tree(files: &[PathBuf], last_text: &str, head: u64, alg: HashAlg) -> Result<Frontier> {
    let Some(last) = files.last() else {
        return Ok(Frontier::new(alg));
    };
    let n = segment_number(last);
    let dir = last.parent().unwrap_or(Path::new("."));
    let start = if files.len() == 1 && n == 1 {
        Some(Frontier::new(alg))
    } else {
        std::fs::read(tree_state_path(dir, n))
            .ok()
            .and_then(|b| serde_json::from_slice::<Frontier>(&b).ok())
            // A state that is not a tree of its size would break pushes.
            .filter(|f| f.alg == alg && f.nodes.len() == f.size.count_ones() as usize)
    };
    if let Some(mut tree) = start {
        replay(&mut tree, last_text);
        if tree.size == head {
            return Ok(tree);
        }
    }
    tracing::info!(
        segments = files.len(),
        "rebuilding the audit log's Merkle tree from every segment"
    );
    let mut tree = Frontier::new(alg);
    for f in &files[..files.len() - 1] {
        replay(&mut tree, &read_segment(f).map_err(Error::file(f))?);
    }
    replay(&mut tree, last_text);
    Ok(tree)
}

/// Opens the log: the segment to append to, the chain's head, the tree,
/// and the subject index of the segment appended to (sealed segments' runs
/// are made sure of here).
fn open_log(dir: &Path, alg: HashAlg) -> Result<(Writer, u64, String, Frontier, subjects::Live)> {
    std::fs::create_dir_all(dir).map_err(Error::file(dir))?;
    let files = segments(dir)?;
    let (mut seq, mut prev) = (0, GENESIS.to_string());
    let mut last_text = String::new();
    let segment = match files.last() {
        Some(last) => {
            last_text = read_segment(last).map_err(Error::file(last))?;
            // The head is the newest line: in the last segment, or, when a
            // segment was just started (sealing leaves it empty), in the
            // newest one before it that holds any.
            for (i, file) in files.iter().enumerate().rev() {
                let earlier;
                let text = if i + 1 == files.len() {
                    &last_text
                } else {
                    earlier = read_segment(file).map_err(Error::file(file))?;
                    &earlier
                };
                if let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) {
                    let r: Record =
                        serde_json::from_str(line).map_err(|e| Error::UnreadableHead {
                            path: file.clone(),
                            message: e.to_string(),
                        })?;
                    (seq, prev) = (r.seq, r.hash);
                    break;
                }
            }
            segment_number(last)
        }
        None => 1,
    };
    let tree = recover_tree(&files, &last_text, seq, alg)?;
    subjects::ensure_runs(dir, &files)?;
    let live = subjects::Live {
        segment,
        entries: subjects::entries_of_text(segment, &last_text),
        sealing: Vec::new(),
    };
    let path = segment_path(dir, segment);
    let size = last_text.len() as u64;
    let file = open_segment(&path, size).map_err(Error::file(&path))?;
    let writer = Writer {
        dir: dir.to_path_buf(),
        segment,
        file,
        size,
    };
    Ok((writer, seq, prev, tree, live))
}

impl Writer {
    /// Appends sealed lines and makes them durable. On failure the segment
    /// is cut back to its durable end, so no torn line stays behind.
    /// `torn`: tests only, the write stops half-way and fails.
    /// `tree`: the tree of everything durable so far, saved with the next
    /// segment if this commit starts one.
    fn commit(&mut self, lines: &[u8], torn: bool, shared: &Shared) -> std::io::Result<()> {
        if self.size >= SEGMENT_BYTES {
            self.next_segment(shared)?;
        }
        use std::os::unix::fs::FileExt;
        let written = if torn {
            self.file
                .write_all_at(&lines[..lines.len() / 2], self.size)
                .and_then(|()| Err(std::io::Error::other("injected failure: no space left")))
        } else {
            self.file.write_all_at(lines, self.size).and_then(|()| {
                let started = std::time::Instant::now();
                let synced = self.file.sync_data();
                metrics::histogram!("tongban_audit_fdatasync_seconds")
                    .record(started.elapsed().as_secs_f64());
                synced
            })
        };
        match written {
            Ok(()) => {
                self.size += lines.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Zeros again from the durable end: cut, then extend.
                let _ = self
                    .file
                    .set_len(self.size)
                    .and_then(|()| self.file.set_len(self.size.max(SEGMENT_BYTES)));
                Err(e)
            }
        }
    }
}

impl Writer {
    /// Cuts the segment's preallocated tail: the file holds its records
    /// only. Readers stop at the first zero byte anyway, so a cut that a
    /// crash undoes loses nothing.
    fn cut(&self) {
        if let Err(e) = self.file.set_len(self.size) {
            tracing::warn!(error = %e, segment = self.segment, "could not cut an audit segment to its records");
        }
    }

    /// Seals the current segment (it is never written again) and opens the
    /// next; an empty one is kept. The tree so far is saved as the next
    /// segment's start (a cache: opening rebuilds it if it is missing);
    /// the segment's subject entries go to the indexer thread, which
    /// writes their run off the writer's path.
    fn next_segment(&mut self, shared: &Shared) -> std::io::Result<()> {
        if self.size == 0 {
            return Ok(());
        }
        let state = serde_json::to_vec(&*shared.tree.lock().expect("audit tree lock"))
            .expect("trees serialise");
        let state_path = tree_state_path(&self.dir, self.segment + 1);
        let tmp = state_path.with_extension("json.tmp");
        if let Err(e) =
            std::fs::write(&tmp, state).and_then(|()| std::fs::rename(&tmp, &state_path))
        {
            tracing::warn!(error = %e, "could not save the audit tree; the next open rebuilds it");
        }
        let path = segment_path(&self.dir, self.segment + 1);
        let next = open_segment(&path, 0)?;
        // Sealed: its records only, plain JSON Lines for whoever reads it.
        self.cut();
        self.file = next;
        self.segment += 1;
        self.size = 0;
        let sealed = {
            let mut live = shared.live.lock().expect("audit index lock");
            let sealed = (live.segment, Arc::new(std::mem::take(&mut live.entries)));
            live.segment = self.segment;
            live.sealing.push(sealed.clone());
            sealed
        };
        // The indexer stops only after the writer: a send cannot fail but
        // in a panic, and then the run is rebuilt on the next open.
        let _ = shared
            .indexer
            .lock()
            .expect("audit indexer lock")
            .send(sealed);
        Ok(())
    }
}

/// The writer thread: takes everything pending, writes it with one
/// `fdatasync`, answers the batch; repeats. A failed write rolls the chain
/// back to its durable head and fails every request sealed after it.
fn write_loop(shared: Arc<Shared>, mut writer: Writer, seq: u64, prev: String) {
    let (mut durable_seq, mut durable_prev) = (seq, prev);
    let mut lines = Vec::new();
    let mut keys = Vec::new();
    loop {
        let (batch, seq, prev) = {
            let mut chain = shared.chain.lock().expect("audit chain lock");
            while chain.pending.is_empty() && !chain.closed && !chain.rotate {
                chain.writer_idle = true;
                chain = shared.wake.wait(chain).expect("audit chain lock");
                chain.writer_idle = false;
            }
            if std::mem::take(&mut chain.rotate)
                && let Err(e) = writer.next_segment(&shared)
            {
                tracing::warn!(error = %e, "could not start the next audit segment; the current one goes on");
            }
            if chain.pending.is_empty() {
                if chain.closed {
                    writer.cut();
                    return; // closed, nothing left
                }
                continue;
            }
            std::mem::swap(&mut lines, &mut chain.pending);
            std::mem::swap(&mut keys, &mut chain.pending_keys);
            let batch = std::mem::take(&mut chain.batch);
            (batch, chain.seq, chain.prev.clone())
        };
        match writer.commit(&lines, shared.failing(), &shared) {
            Ok(()) => {
                let records = seq - durable_seq;
                metrics::histogram!("tongban_audit_batch_records").record(records as f64);
                metrics::counter!("tongban_audit_records_total").increment(records);
                *shared.durable.lock().expect("audit head lock") = (seq, prev.clone());
                (durable_seq, durable_prev) = (seq, prev);
                // Before the answers (a vector's extend): a record its
                // request has seen answered is in the subject index.
                let base = writer.size - lines.len() as u64;
                let segment = writer.segment;
                shared
                    .live
                    .lock()
                    .expect("audit index lock")
                    .entries
                    .extend(keys.drain(..).filter_map(|(key, seq, start)| {
                        // Segments end near 64 MiB: an offset past 4 GiB is
                        // a record the index cannot point at (trace still
                        // finds it).
                        let offset = u32::try_from(base + start as u64).ok()?;
                        Some(subjects::Entry {
                            key,
                            seq,
                            segment,
                            offset,
                        })
                    }));
                batch.finish(Ok(()));
                // After the answers: the tree costs the requests no latency.
                let mut tree = shared.tree.lock().expect("audit tree lock");
                for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    tree.push(line);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "audit write failed: refusing releases until it works again");
                let failed = {
                    let mut chain = shared.chain.lock().expect("audit chain lock");
                    // Records sealed meanwhile chain to the lost ones: they go too.
                    chain.pending.clear();
                    (chain.seq, chain.prev) = (durable_seq, durable_prev.clone());
                    std::mem::take(&mut chain.batch)
                };
                batch.finish(Err(e.to_string()));
                failed.finish(Err(e.to_string()));
            }
        }
        lines.clear();
        keys.clear();
    }
}

/// The indexer thread: writes the run of each segment the writer seals,
/// then merges runs; ends when the writer has stopped.
fn index_loop(
    dir: &Path,
    shared: std::sync::Weak<Shared>,
    sealed: std::sync::mpsc::Receiver<(u32, Arc<Vec<subjects::Entry>>)>,
) {
    // Background work: on a busy machine the hub's requests come first
    // (nice 19; the entries stay in memory until their run is written).
    if let Err(e) =
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
    {
        tracing::debug!(error = ?e, "the audit indexer runs at normal priority");
    }
    let compact = || {
        if let Err(e) = subjects::compact(dir) {
            tracing::warn!(error = %e, "could not merge subject index runs; lookups search more of them");
        }
    };
    compact();
    while let Ok((segment, entries)) = sealed.recv() {
        let mut entries = entries.as_ref().clone();
        match subjects::write_run(dir, segment, segment, &mut entries) {
            Ok(_) => {
                compact();
                // Only now: until the run is merged a reader may find the
                // entries twice, never not at all.
                if let Some(shared) = shared.upgrade() {
                    shared
                        .live
                        .lock()
                        .expect("audit index lock")
                        .sealing
                        .retain(|(n, _)| *n != segment);
                }
            }
            // The entries stay in memory; the next open indexes the segment.
            Err(e) => tracing::warn!(error = %e, segment, "could not write a subject index run"),
        }
    }
}

impl Audit {
    /// Opens the log in `dir` and starts its writer on a dedicated thread
    /// (it blocks on `fsync`, which must not stall the async workers).
    /// Every record is sealed with `replica`, if given (letters, digits,
    /// `-` and `_`).
    pub fn open(dir: &Path, secret: &[u8], replica: Option<&str>) -> Result<Audit> {
        Self::open_with(dir, secret, replica, HashAlg::Sha256)
    }

    /// [`Audit::open`] with the tree's hash chosen.
    pub fn open_with(
        dir: &Path,
        secret: &[u8],
        replica: Option<&str>,
        alg: HashAlg,
    ) -> Result<Audit> {
        if let Some(r) = replica
            && !(1..=63).contains(&r.len())
                | !r.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::ReplicaId(r.to_string()));
        }
        // A log keeps the hash it was started with: a configuration that
        // names another applies to a new log only.
        if let Some(log) = log_alg(dir)?
            && log != alg
        {
            return Err(Error::AlgMismatch {
                dir: dir.to_path_buf(),
                log,
                configured: alg,
            });
        }
        let (writer, seq, prev, tree, live) = open_log(dir, alg)?;
        let (indexer, sealed) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared {
            chain: Mutex::new(Chain {
                seq,
                prev: prev.clone(),
                pending: Vec::with_capacity(1 << 20),
                batch: Arc::default(),
                writer_idle: false,
                closed: false,
                rotate: false,
                pending_keys: Vec::new(),
            }),
            wake: Condvar::new(),
            durable: Mutex::new((seq, prev.clone())),
            tree: Mutex::new(tree),
            live: Mutex::new(live),
            indexer: Mutex::new(indexer),
            dir: dir.to_path_buf(),
            #[cfg(test)]
            fail_writes: Default::default(),
        });
        let for_writer = shared.clone();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_loop(for_writer, writer, seq, prev))
            .map_err(Error::Writer)?;
        // The indexer holds the shared state weakly: the log closes when
        // its last handle goes, whatever the indexer is doing.
        let for_indexer = Arc::downgrade(&shared);
        let index_dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("audit-indexer".into())
            .spawn(move || index_loop(&index_dir, for_indexer, sealed))
            .map_err(Error::Writer)?;
        Ok(Audit {
            shared: Arc::new(Closer(shared)),
            keyed: Keyed::new(alg, secret),
            alg,
            replica: replica.map(Into::into),
        })
    }

    /// The newest durable record: its sequence number and hash (0 and
    /// [`GENESIS`] for an empty log).
    pub fn head(&self) -> (u64, String) {
        self.shared
            .0
            .durable
            .lock()
            .expect("audit head lock")
            .clone()
    }

    /// The Merkle tree of the durable records: its size and root. It may
    /// trail [`Audit::head`] by the batch being added.
    pub fn tree(&self) -> (u64, merkle::Hash) {
        let tree = self.shared.0.tree.lock().expect("audit tree lock");
        (tree.size, tree.root())
    }

    /// The hash of the log's chain, tree and key hashes.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// Asks the writer to seal the current segment, if it holds anything,
    /// and start the next: sealed segments are what gets shipped.
    pub fn seal_segment(&self) {
        let shared = &self.shared.0;
        let mut chain = shared.chain.lock().expect("audit chain lock");
        chain.rotate = true;
        if chain.writer_idle {
            chain.writer_idle = false;
            shared.wake.notify_one();
        }
    }

    pub fn key_hash(&self, key: &str) -> String {
        self.keyed.hash(key)
    }

    /// Where the log is.
    pub fn dir(&self) -> &Path {
        &self.shared.0.dir
    }

    /// The records that name the key whose keyed hash is `key_hash`,
    /// newest first, from the subject index: sealed segments' runs and the
    /// durable part of the current segment. Reads files: call it off the
    /// async workers.
    pub fn subject_entries(&self, key_hash: &str) -> Result<Vec<subjects::Entry>> {
        let Some(key) = subjects::key_of(key_hash) else {
            return Ok(Vec::new());
        };
        let shared = &self.shared.0;
        let live = shared.live.lock().expect("audit index lock").matching(key);
        subjects::find(&shared.dir, key, live)
    }

    /// Records an event durably; returns its sequence number.
    pub async fn record(&self, event: Event) -> Result<u64> {
        self.record_ref(&event.as_ref()).await
    }

    /// Records an event durably from borrowed parts; returns its sequence
    /// number. The record is sealed and encoded once, here, under the
    /// chain's lock; the writer only writes bytes.
    pub async fn record_ref(&self, event: &EventRef<'_>) -> Result<u64> {
        let body = serde_json::to_vec(event).map_err(|e| Error::NotRecorded(e.to_string()))?;
        let (seq, batch) = {
            let shared = &self.shared.0;
            let mut chain = shared.chain.lock().expect("audit chain lock");
            if chain.closed {
                return Err(Error::NotRecorded("the audit writer has stopped".into()));
            }
            let chain = &mut *chain;
            let seq = chain.seq + 1;
            let start = chain.pending.len();
            let hash = seal_into(
                self.alg,
                &mut chain.pending,
                seq,
                &chain.prev,
                self.replica.as_deref(),
                &body,
            );
            for k in &event.keys {
                if let Some(key) = subjects::key_of(k) {
                    chain.pending_keys.push((key, seq, start));
                }
            }
            (chain.seq, chain.prev) = (seq, hash);
            if chain.writer_idle {
                chain.writer_idle = false;
                shared.wake.notify_one();
            }
            (seq, chain.batch.clone())
        };
        batch.wait().await.map(|()| seq).map_err(Error::NotRecorded)
    }
}

/// The first problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub file: PathBuf,
    pub line: usize,
    pub problem: String,
}

/// Checks a chain record by record, from its first, wherever its lines
/// come from (a local segment, a shipped copy).
#[derive(Debug, Clone)]
pub struct ChainCheck {
    seq: u64,
    prev: String,
    /// The chain's hash, told by its first record (the one of the two
    /// whose hash it carries) and held to from there on.
    alg: Option<HashAlg>,
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck {
            seq: 0,
            prev: GENESIS.to_string(),
            alg: None,
        }
    }
}

/// The hash a record line was sealed with, if it is a record sealed with
/// either (SHA-256 or SM3).
pub fn alg_of_line(line: &str) -> Option<HashAlg> {
    let r: Record = serde_json::from_str(line).ok()?;
    [HashAlg::Sha256, HashAlg::Sm3]
        .into_iter()
        .find(|&alg| seal(alg, r.seq, &r.prev, r.replica.as_deref(), &r.event) == r.hash)
}

/// The hash of the log in `dir`, from its first record; `None` for an
/// empty log (or one whose first record matches neither: verify says so).
pub fn log_alg(dir: &Path) -> Result<Option<HashAlg>> {
    for file in segments(dir)? {
        let text = read_segment(&file).map_err(Error::file(&file))?;
        if let Some(line) = text.lines().find(|l| !l.trim().is_empty()) {
            return Ok(alg_of_line(line));
        }
    }
    Ok(None)
}

impl ChainCheck {
    /// Checks the next line (blank lines are skipped): the record it holds,
    /// or what is wrong with it.
    pub fn line(&mut self, line: &str) -> Result<Option<Record>, String> {
        if line.trim().is_empty() {
            return Ok(None);
        }
        let r: Record =
            serde_json::from_str(line).map_err(|e| format!("not an audit record ({e})"))?;
        if r.seq != self.seq + 1 {
            return Err(format!(
                "record {} follows record {}: records were removed or reordered",
                r.seq, self.seq
            ));
        }
        if r.prev != self.prev {
            return Err(format!(
                "record {} does not chain to record {}: records were removed, reordered or replaced",
                r.seq, self.seq
            ));
        }
        let sealed = |alg| seal(alg, r.seq, &r.prev, r.replica.as_deref(), &r.event) == r.hash;
        let alg = match self.alg {
            Some(alg) => sealed(alg).then_some(alg),
            None => [HashAlg::Sha256, HashAlg::Sm3]
                .into_iter()
                .find(|&a| sealed(a)),
        };
        let Some(alg) = alg else {
            return Err(format!(
                "record {} does not match its hash: it was edited",
                r.seq
            ));
        };
        self.alg = Some(alg);
        (self.seq, self.prev) = (r.seq, r.hash.clone());
        Ok(Some(r))
    }

    /// The last record checked: sequence number and hash.
    pub fn head(&self) -> (u64, &str) {
        (self.seq, &self.prev)
    }

    /// The chain's hash, once a record was checked.
    pub fn alg(&self) -> Option<HashAlg> {
        self.alg
    }
}

/// Checks the whole chain. `Ok(n)`: n records, all intact.
pub fn verify(dir: &Path) -> Result<Result<u64, Broken>> {
    let mut check = ChainCheck::default();
    for file in segments(dir)? {
        let text = read_segment(&file).map_err(Error::file(&file))?;
        for (i, line) in text.lines().enumerate() {
            if let Err(problem) = check.line(line) {
                return Ok(Err(Broken {
                    file: file.clone(),
                    line: i + 1,
                    problem,
                }));
            }
        }
    }
    Ok(Ok(check.head().0))
}

/// The log's segment files, oldest first; all but the newest are sealed
/// (never written again).
pub fn segment_files(dir: &Path) -> Result<Vec<PathBuf>> {
    segments(dir)
}

/// Whether a line of a segment holds a record of `wanted` (a key hash),
/// and the record if so.
pub fn record_of_key(line: &str, wanted: &str) -> Option<Record> {
    if !line.contains(wanted) {
        return None;
    }
    serde_json::from_str::<Record>(line)
        .ok()
        .filter(|r| r.event.keys.iter().any(|k| k == wanted))
}

/// Every record that asked for a key, oldest first: from the subject index
/// for the segments its runs cover, by reading the lines of the others
/// (the segment being written, a log from before the index).
pub fn trace(dir: &Path, secret: &[u8], key: &str) -> Result<Vec<Record>> {
    let wanted = key_hash_with(log_alg(dir)?.unwrap_or_default(), secret, key);
    let runs: Vec<subjects::Run> = subjects::runs(dir)?
        .into_iter()
        .filter(subjects::run_is_sound)
        .collect();
    let covered = |n: u32| runs.iter().any(|r| r.first <= n && n <= r.last);
    let mut found = Vec::new();
    if let Some(k) = subjects::key_of(&wanted) {
        for e in subjects::find(dir, k, Vec::new())? {
            if covered(e.segment)
                && let Some(r) = subjects::read_record(dir, &e)?
                && r.event.keys.contains(&wanted)
            {
                found.push(r);
            }
        }
    }
    let rest: Vec<PathBuf> = segments(dir)?
        .into_iter()
        .filter(|f| !covered(segment_number(f)))
        .collect();
    found.extend(scan_files(&rest, &wanted)?);
    found.sort_by_key(|r| r.seq);
    Ok(found)
}

/// [`trace`] by reading every line of the log, index or not: what the
/// subject index saves (`benches/data_use` measures both).
pub fn scan(dir: &Path, secret: &[u8], key: &str) -> Result<Vec<Record>> {
    let alg = log_alg(dir)?.unwrap_or_default();
    scan_files(&segments(dir)?, &key_hash_with(alg, secret, key))
}

fn scan_files(files: &[PathBuf], wanted: &str) -> Result<Vec<Record>> {
    let mut found = Vec::new();
    for file in files {
        let text = read_segment(file).map_err(Error::file(file))?;
        for line in text.lines() {
            found.extend(record_of_key(line, wanted));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_hex() {
        assert_eq!(
            super::to_hex(&[0x00, 0x9f, 0xa0, 0xff]),
            hex::encode([0x00, 0x9f, 0xa0, 0xff])
        );
    }

    use super::*;

    fn event(n: u32) -> Event {
        Event {
            time: Utc::now(),
            consumer: "sh-zwfw".into(),
            resource: "101/000001".into(),
            mode: "lookup".into(),
            matter: "310000-JZZ-001".into(),
            case: format!("case-{n}"),
            items: vec!["name".into()],
            denied: vec!["religion:negative:1".into()],
            keys: vec![key_hash(b"secret", &format!("key-{n}"))],
            rule: "need:1".into(),
            outcome: Outcome::Released,
            latency_us: 42,
            // Every other record is an interface call: both shapes must
            // seal and verify alike.
            call: n.is_multiple_of(2).then(|| CallEvidence {
                endpoint: "status".into(),
                request_id: format!("req-{n}"),
                subject: None,
                provider_status: Some(200),
                request_hash: Some("ab".repeat(32)),
                response_hash: Some("cd".repeat(32)),
                attempts: 1,
                cached: false,
                provider_us: 900,
                failure: None,
                request_body: None,
                response_body: Some("{\"paid_up\":true}".into()),
            }),
        }
    }

    #[test]
    fn a_sealed_line_is_the_record_serde_writes() {
        let e = event(3);
        let body = serde_json::to_vec(&e.as_ref()).unwrap();
        assert_eq!(
            body,
            serde_json::to_vec(&e).unwrap(),
            "EventRef encodes as Event"
        );
        let mut out = b"earlier line\n".to_vec();
        let hash = seal_into(HashAlg::Sha256, &mut out, 7, GENESIS, Some("hub-a"), &body);
        let line = std::str::from_utf8(&out[13..]).unwrap();
        assert!(line.ends_with('\n'));
        let r: Record = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!((r.seq, r.prev.as_str(), &r.event), (7, GENESIS, &e));
        assert_eq!(r.hash, hash);
        assert_eq!(
            seal(
                HashAlg::Sha256,
                r.seq,
                &r.prev,
                r.replica.as_deref(),
                &r.event
            ),
            hash,
            "verify computes the same hash"
        );
        assert_eq!(serde_json::to_string(&r).unwrap(), line.trim_end());
    }

    #[tokio::test]
    async fn a_failed_write_fails_its_requests_and_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open(dir.path(), b"secret", Some("hub-a")).unwrap();
        for n in 0..3 {
            audit.record(event(n)).await.unwrap();
        }
        let before = std::fs::read(segment_path(dir.path(), 1)).unwrap();
        let fail = |on: bool| {
            audit
                .shared
                .0
                .fail_writes
                .store(on, std::sync::atomic::Ordering::SeqCst)
        };
        fail(true);
        let tries: Vec<_> = (10..30)
            .map(|n| {
                let a = audit.clone();
                tokio::spawn(async move { a.record(event(n)).await })
            })
            .collect();
        for t in tries {
            let refused = t.await.unwrap().unwrap_err();
            assert!(refused.to_string().contains("no space left"), "{refused}");
        }
        assert_eq!(
            std::fs::read(segment_path(dir.path(), 1)).unwrap(),
            before,
            "the torn write was cut back"
        );
        fail(false);
        // The chain goes on from the last durable record.
        assert_eq!(audit.record(event(99)).await.unwrap(), 4);
        drop(audit);
        assert_eq!(verify(dir.path()).unwrap(), Ok(4));
        let cases: Vec<String> = read_segment(&segment_path(dir.path(), 1))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Record>(l).unwrap().event.case)
            .collect();
        assert_eq!(cases, ["case-0", "case-1", "case-2", "case-99"]);
    }

    /// Every line of every segment, in order, as leaf data.
    fn all_lines(dir: &Path) -> Vec<Vec<u8>> {
        segment_files(dir)
            .unwrap()
            .iter()
            .flat_map(|f| {
                read_segment(f)
                    .unwrap()
                    .lines()
                    .map(|l| l.as_bytes().to_vec())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The tree once the writer has added what is durable (it does so just
    /// after answering the batch).
    async fn settled(audit: &Audit) -> (u64, merkle::Hash) {
        for _ in 0..200 {
            if audit.tree().0 == audit.head().0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        audit.tree()
    }

    #[tokio::test]
    async fn the_tree_covers_every_durable_record_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let alg = HashAlg::Sha256;
        let root_of = |dir: &Path| {
            let leaves: Vec<merkle::Hash> = all_lines(dir).iter().map(|l| alg.leaf(l)).collect();
            (leaves.len() as u64, merkle::root(alg, &leaves))
        };
        let audit = Audit::open(dir.path(), b"secret", Some("hub-a")).unwrap();
        assert_eq!(audit.tree(), (0, alg.empty()));
        for n in 0..5 {
            audit.record(event(n)).await.unwrap();
        }
        assert_eq!(settled(&audit).await, root_of(dir.path()));
        // Sealed segments save the tree at the next one's start.
        audit.seal_segment();
        for n in 5..12 {
            audit.record(event(n)).await.unwrap();
        }
        audit.seal_segment();
        audit.record(event(12)).await.unwrap();
        assert_eq!(settled(&audit).await, root_of(dir.path()));
        assert_eq!(settled(&audit).await.0, 13);
        drop(audit);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(tree_state_path(dir.path(), 3).exists());

        // Reopened from the saved state and the last segment...
        let audit = Audit::open(dir.path(), b"secret", Some("hub-a")).unwrap();
        assert_eq!(settled(&audit).await, root_of(dir.path()));
        drop(audit);
        // ... and, with the state gone or wrong, from every segment.
        std::fs::remove_file(tree_state_path(dir.path(), 3)).unwrap();
        let audit = Audit::open(dir.path(), b"secret", Some("hub-a")).unwrap();
        assert_eq!(settled(&audit).await, root_of(dir.path()));
        audit.record(event(13)).await.unwrap();
        assert_eq!(settled(&audit).await, root_of(dir.path()));
        drop(audit);
        std::fs::write(
            tree_state_path(dir.path(), 3),
            b"{\"alg\":\"sha256\",\"size\":2,\"nodes\":[]}",
        )
        .unwrap();
        let audit = Audit::open(dir.path(), b"secret", Some("hub-a")).unwrap();
        assert_eq!(settled(&audit).await, root_of(dir.path()));
    }

    /// The national-algorithm option: a log started with SM3 seals its
    /// chain, builds its tree and hashes its keys with SM3 (HMAC-SM3);
    /// verify tells the hash from the first record and still catches an
    /// edit; a configuration naming SHA-256 refuses to go on with it.
    #[tokio::test]
    async fn a_log_started_with_sm3_is_sm3_throughout() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open_with(dir.path(), b"secret", Some("hub-a"), HashAlg::Sm3).unwrap();
        for n in 0..6 {
            // Keys are hashed by the log's own keyed hash, as the pipeline does.
            let mut e = event(n);
            e.keys = vec![audit.key_hash(&format!("key-{n}"))];
            audit.record(e).await.unwrap();
        }
        assert_eq!(log_alg(dir.path()).unwrap(), Some(HashAlg::Sm3));
        assert_eq!(verify(dir.path()).unwrap(), Ok(6));
        let leaves: Vec<merkle::Hash> = all_lines(dir.path())
            .iter()
            .map(|l| HashAlg::Sm3.leaf(l))
            .collect();
        assert_eq!(
            settled(&audit).await,
            (6, merkle::root(HashAlg::Sm3, &leaves))
        );
        let sm3_key = key_hash_with(HashAlg::Sm3, b"secret", "key-4");
        assert_ne!(sm3_key, key_hash(b"secret", "key-4"));
        assert_eq!(audit.key_hash("key-4"), sm3_key);
        let lines = read_segment(&segment_path(dir.path(), 1)).unwrap();
        assert!(lines.contains(&sm3_key) && !lines.contains(&key_hash(b"secret", "key-4")));
        // A record sealed with SM3 is not one sealed with SHA-256.
        let first = lines.lines().next().unwrap();
        assert_eq!(alg_of_line(first), Some(HashAlg::Sm3));
        assert_eq!(trace(dir.path(), b"secret", "key-4").unwrap().len(), 1);
        drop(audit);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        match Audit::open(dir.path(), b"secret", Some("hub-a")) {
            Err(Error::AlgMismatch {
                log, configured, ..
            }) => {
                assert_eq!((log, configured), (HashAlg::Sm3, HashAlg::Sha256));
            }
            other => panic!(
                "a SHA-256 hub must not go on with an SM3 log: {:?}",
                other.map(|_| ())
            ),
        }
        rewrite(dir.path(), |lines| {
            lines[2] = lines[2].replace("case-2", "case-9")
        });
        let broken = verify(dir.path()).unwrap().unwrap_err();
        assert!(
            broken.problem.contains("record 3 does not match its hash"),
            "{broken:?}"
        );
    }

    /// The indexer yields to the requests: its thread runs at nice 19.
    #[tokio::test]
    async fn the_indexer_runs_at_the_lowest_priority() {
        let dir = tempfile::tempdir().unwrap();
        let _audit = Audit::open(dir.path(), b"secret", None).unwrap();
        let nice_of_indexer = || {
            std::fs::read_dir("/proc/self/task").unwrap().find_map(|t| {
                let t = t.unwrap().path();
                let comm = std::fs::read_to_string(t.join("comm")).ok()?;
                (comm.trim() == "audit-indexer").then(|| {
                    let stat = std::fs::read_to_string(t.join("stat")).unwrap();
                    // Fields after the command's closing parenthesis; nice is the 19th field.
                    let rest = &stat[stat.rfind(')').unwrap() + 2..];
                    rest.split(' ').nth(16).unwrap().parse::<i32>().unwrap()
                })
            })
        };
        let mut nice = None;
        for _ in 0..100 {
            nice = nice_of_indexer();
            if nice == Some(19) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(nice, Some(19));
    }

    /// The segment being written is preallocated (zeros to its full size)
    /// and every reader stops at its records' end; a closed log leaves
    /// plain JSON Lines, and what a crash left past the records (a torn
    /// batch after a hole) is dropped when the log reopens.
    #[tokio::test]
    async fn the_open_segment_is_preallocated_and_readers_stop_at_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 1);
        let audit = Audit::open(dir.path(), b"secret", None).unwrap();
        for n in 0..3 {
            let mut e = event(n);
            e.keys = vec![audit.key_hash(&format!("key-{n}"))];
            audit.record(e).await.unwrap();
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), SEGMENT_BYTES);
        let text = read_segment(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert_eq!(verify(dir.path()).unwrap(), Ok(3));
        assert_eq!(log_alg(dir.path()).unwrap(), Some(HashAlg::Sha256));
        assert_eq!(trace(dir.path(), b"secret", "key-1").unwrap().len(), 1);
        assert_eq!(scan(dir.path(), b"secret", "key-2").unwrap().len(), 1);
        drop(audit);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "cut on close"
        );

        // A crash: a hole, then bytes of a batch that was never answered.
        let mut crashed = text.clone().into_bytes();
        crashed.extend_from_slice(&[0; 100]);
        crashed.extend_from_slice(b"{\"seq\":9,\"torn\n");
        std::fs::write(&path, &crashed).unwrap();
        let audit = Audit::open(dir.path(), b"secret", None).unwrap();
        audit.record(event(3)).await.unwrap();
        assert_eq!(verify(dir.path()).unwrap(), Ok(4));
        drop(audit);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(after.starts_with(&text) && !after.contains("torn") && !after.contains('\0'));
        assert_eq!(after.lines().count(), 4);
        // Sealed segments are cut to their records as well.
        let audit = Audit::open(dir.path(), b"secret", None).unwrap();
        audit.seal_segment();
        audit.record(event(4)).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), after);
        assert_eq!(
            std::fs::metadata(segment_path(dir.path(), 2))
                .unwrap()
                .len(),
            SEGMENT_BYTES
        );
        assert_eq!(verify(dir.path()).unwrap(), Ok(5));
    }

    /// Sealing leaves the new segment empty until the next record: a log
    /// closed then must reopen at its head, not start a second chain.
    #[tokio::test]
    async fn a_log_closed_just_after_sealing_reopens_at_its_head() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open(dir.path(), b"secret", Some("hub-a")).unwrap();
        for n in 0..3 {
            audit.record(event(n)).await.unwrap();
        }
        let head = audit.head();
        audit.seal_segment();
        drop(audit);
        for _ in 0..100 {
            if segment_path(dir.path(), 2).exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            segment_path(dir.path(), 2).exists(),
            "sealing started segment 2"
        );
        let audit = Audit::open(dir.path(), b"secret", Some("hub-a")).unwrap();
        assert_eq!(audit.head(), head);
        assert_eq!(audit.record(event(3)).await.unwrap(), 4);
        drop(audit);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(verify(dir.path()).unwrap(), Ok(4));
    }

    fn rewrite(dir: &Path, f: impl Fn(&mut Vec<String>)) {
        let path = segment_path(dir, 1);
        let mut lines: Vec<String> = read_segment(&path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        f(&mut lines);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }

    #[tokio::test]
    async fn the_chain_catches_edits_removals_and_reordering() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open(dir.path(), b"secret", Some("hub-a")).unwrap();
        let handles: Vec<_> = (0..50)
            .map(|n| {
                let a = audit.clone();
                tokio::spawn(async move { a.record(event(n)).await.unwrap() })
            })
            .collect();
        let mut seqs = Vec::new();
        for h in handles {
            seqs.push(h.await.unwrap());
        }
        seqs.sort();
        assert_eq!(
            seqs,
            (1..=50).collect::<Vec<_>>(),
            "every record gets its own place"
        );
        drop(audit);
        assert_eq!(verify(dir.path()).unwrap(), Ok(50));

        // A reopened log continues the chain.
        let audit = Audit::open(dir.path(), b"secret", Some("hub-a")).unwrap();
        assert_eq!(audit.record(event(99)).await.unwrap(), 51);
        assert_eq!(verify(dir.path()).unwrap(), Ok(51));
        let traced = trace(dir.path(), b"secret", "key-7").unwrap();
        assert_eq!(traced.len(), 1);
        assert_eq!(traced[0].event.case, "case-7");
        assert!(
            trace(dir.path(), b"other-secret", "key-7")
                .unwrap()
                .is_empty(),
            "the key hash is keyed"
        );

        let original = read_segment(&segment_path(dir.path(), 1)).unwrap();
        let restore = || std::fs::write(segment_path(dir.path(), 1), &original).unwrap();
        rewrite(dir.path(), |l| l[9] = l[9].replace("sh-zwfw", "sh-gaj"));
        let b = verify(dir.path()).unwrap().unwrap_err();
        assert_eq!(
            (b.line, b.problem.as_str()),
            (10, "record 10 does not match its hash: it was edited")
        );
        restore();
        rewrite(dir.path(), |l| {
            l.remove(20);
        });
        assert!(
            verify(dir.path())
                .unwrap()
                .unwrap_err()
                .problem
                .contains("removed or reordered")
        );
        restore();
        rewrite(dir.path(), |l| l.swap(3, 4));
        assert_eq!(verify(dir.path()).unwrap().unwrap_err().line, 4);
        restore();
        // A chain alone cannot see its newest records cut off: verify reports
        // the count, to be compared with the last sequence number the hub logged.
        rewrite(dir.path(), |l| {
            l.pop();
        });
        assert_eq!(verify(dir.path()).unwrap(), Ok(50));
    }
}

/// What can go wrong with the audit log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A segment or the log's folder could not be read, made or opened.
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The newest record cannot be read, so the chain cannot go on from it.
    #[error("{}: the last audit record is unreadable ({message}); run `tongban audit verify`", path.display())]
    UnreadableHead { path: PathBuf, message: String },
    /// The writer thread could not be started.
    #[error("audit writer: {0}")]
    Writer(std::io::Error),
    /// A replica id that cannot be sealed into a record as it is.
    #[error("replica id '{0}' must be 1 to 63 letters, digits, '-' or '_'")]
    ReplicaId(String),
    /// A record was not made durable (the write failed, or the writer
    /// stopped): whatever it was for must not be released.
    #[error("audit record not written: {0}")]
    NotRecorded(String),
    /// The configured hash is not the one the log was started with.
    #[error("{}: the audit log is sealed with {}; audit_hash = \"{}\" applies to a new log only (set it back, or start the new log in another data directory)", dir.display(), log.as_str(), configured.as_str())]
    AlgMismatch {
        dir: PathBuf,
        log: HashAlg,
        configured: HashAlg,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn file(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::File { path, source }
    }
}
