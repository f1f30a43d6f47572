//! The audit log: every release and every denial, append-only and
//! hash-chained, so that `tongban audit verify` detects any record edited,
//! removed or reordered, and `tongban audit trace --key K` tells who looked a
//! citizen or company up, when, and for which matter.
//!
//! Layout: `DATA_DIR/audit/audit-NNNNNN.jsonl`, one JSON record per line,
//! segments of at most [`SEGMENT_BYTES`]. Each record carries `seq` (1, 2, …
//! across segments), the `prev` record's hash and its own `hash`: SHA-256 of
//! `prev` and the record's JSON without `hash`. Keys are never written: only
//! their keyed hash (HMAC-SHA256 with the hub's secret), which `trace` recomputes.
//!
//! Durability with group commit: requests hand records to one writer task and
//! wait; the writer takes everything queued, writes it, calls `fsync` once,
//! then answers them all. Under load a single `fsync` covers many records, so
//! durability does not cap throughput. A request is answered only after its
//! record is on disk: no release goes unrecorded.

use crate::{Error, Result};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};

/// Largest segment before the writer starts the next one.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Hash of the (absent) record before the first.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
    /// `released`, `denied`.
    pub outcome: String,
    /// From the request's arrival to its decision and data, in microseconds.
    pub latency_us: u64,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub prev: String,
    #[serde(flatten)]
    pub event: Event,
    pub hash: String,
}

#[derive(Serialize)]
struct Unsealed<'a> {
    seq: u64,
    prev: &'a str,
    #[serde(flatten)]
    event: &'a Event,
}

fn seal(seq: u64, prev: &str, event: &Event) -> String {
    let body = serde_json::to_vec(&Unsealed { seq, prev, event }).expect("events serialise");
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(&body);
    to_hex(&h.finalize())
}

/// The keyed hash under which a key is recorded.
pub fn key_hash(secret: &[u8], key: &str) -> String {
    keyed_hash(
        &Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length"),
        key,
    )
}

/// [`key_hash`] from an HMAC already keyed with the secret: cloning the keyed
/// state saves the two key-block compressions of every fresh HMAC, which
/// halves the cost per key of a streamed lookup's audit record.
fn keyed_hash(keyed: &Hmac<Sha256>, key: &str) -> String {
    let mut mac = keyed.clone();
    mac.update(key.as_bytes());
    to_hex(&mac.finalize().into_bytes()[..16])
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

struct Job {
    event: Event,
    done: oneshot::Sender<Result<u64, String>>,
}

/// The handle requests use to record events.
#[derive(Clone)]
pub struct Audit {
    tx: mpsc::Sender<Job>,
    /// HMAC-SHA256 keyed with the hub's secret, cloned for each key hash.
    keyed: Hmac<Sha256>,
}

struct Writer {
    dir: PathBuf,
    segment: u32,
    file: std::fs::File,
    size: u64,
    seq: u64,
    prev: String,
}

impl Writer {
    /// Opens the log, continuing after its last record.
    fn open(dir: &Path) -> Result<Writer> {
        std::fs::create_dir_all(dir).map_err(Error::file(dir))?;
        let files = segments(dir)?;
        let (mut seq, mut prev) = (0, GENESIS.to_string());
        let segment = match files.last() {
            Some(last) => {
                let text = std::fs::read_to_string(last).map_err(Error::file(last))?;
                if let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) {
                    let r: Record = serde_json::from_str(line).map_err(|e| {
                        Error::Usage(format!("{}: the last audit record is unreadable ({e}); run `tongban audit verify`", last.display()))
                    })?;
                    (seq, prev) = (r.seq, r.hash);
                }
                let name = last
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                name.trim_start_matches("audit-")
                    .trim_end_matches(".jsonl")
                    .parse()
                    .unwrap_or(1)
            }
            None => 1,
        };
        let path = segment_path(dir, segment);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Error::file(&path))?;
        let size = file.metadata().map_err(Error::file(&path))?.len();
        Ok(Writer {
            dir: dir.to_path_buf(),
            segment,
            file,
            size,
            seq,
            prev,
        })
    }

    /// Writes records and makes them durable; returns their sequence numbers.
    fn commit(&mut self, events: &[Event]) -> std::io::Result<Vec<u64>> {
        if self.size >= SEGMENT_BYTES {
            self.segment += 1;
            let path = segment_path(&self.dir, self.segment);
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            self.size = 0;
        }
        let mut buf = Vec::with_capacity(events.len() * 512);
        let (mut seq, mut prev) = (self.seq, self.prev.clone());
        let mut seqs = Vec::with_capacity(events.len());
        for event in events {
            seq += 1;
            let hash = seal(seq, &prev, event);
            let record = Record {
                seq,
                prev,
                event: event.clone(),
                hash: hash.clone(),
            };
            serde_json::to_writer(&mut buf, &record).expect("records serialise");
            buf.push(b'\n');
            seqs.push(seq);
            prev = hash;
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        // Only a durable batch moves the chain on.
        self.size += buf.len() as u64;
        (self.seq, self.prev) = (seq, prev);
        Ok(seqs)
    }
}

impl Audit {
    /// Opens the log in `dir` and starts its writer on a dedicated thread
    /// (it blocks on `fsync`, which must not stall the async workers).
    pub fn open(dir: &Path, secret: &[u8]) -> Result<Audit> {
        let mut writer = Writer::open(dir)?;
        let (tx, mut rx) = mpsc::channel::<Job>(64 * 1024);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < 4096 {
                        match rx.try_recv() {
                            Ok(job) => jobs.push(job),
                            Err(_) => break,
                        }
                    }
                    let events: Vec<Event> = jobs.iter().map(|j| j.event.clone()).collect();
                    match writer.commit(&events) {
                        Ok(seqs) => {
                            for (job, seq) in jobs.into_iter().zip(seqs) {
                                let _ = job.done.send(Ok(seq));
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "audit write failed: refusing releases until it works again");
                            for job in jobs {
                                let _ = job.done.send(Err(e.to_string()));
                            }
                        }
                    }
                }
            })
            .map_err(Error::Io)?;
        Ok(Audit {
            tx,
            keyed: Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length"),
        })
    }

    pub fn key_hash(&self, key: &str) -> String {
        keyed_hash(&self.keyed, key)
    }

    /// Records an event durably; returns its sequence number.
    pub async fn record(&self, event: Event) -> Result<u64, String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job { event, done })
            .await
            .map_err(|_| "the audit writer has stopped".to_string())?;
        wait.await
            .map_err(|_| "the audit writer has stopped".to_string())?
    }
}

/// The first problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub file: PathBuf,
    pub line: usize,
    pub problem: String,
}

/// Checks the whole chain. `Ok(n)`: n records, all intact.
pub fn verify(dir: &Path) -> Result<Result<u64, Broken>> {
    let (mut seq, mut prev) = (0u64, GENESIS.to_string());
    for file in segments(dir)? {
        let reader =
            std::io::BufReader::new(std::fs::File::open(&file).map_err(Error::file(&file))?);
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(Error::file(&file))?;
            let broken = |problem: String| {
                Ok(Err(Broken {
                    file: file.clone(),
                    line: i + 1,
                    problem,
                }))
            };
            if line.trim().is_empty() {
                continue;
            }
            let r: Record = match serde_json::from_str(&line) {
                Ok(r) => r,
                Err(e) => return broken(format!("not an audit record ({e})")),
            };
            if r.seq != seq + 1 {
                return broken(format!(
                    "record {} follows record {seq}: records were removed or reordered",
                    r.seq
                ));
            }
            if r.prev != prev {
                return broken(format!(
                    "record {} does not chain to record {seq}: records were removed, reordered or replaced",
                    r.seq
                ));
            }
            if seal(r.seq, &r.prev, &r.event) != r.hash {
                return broken(format!(
                    "record {} does not match its hash: it was edited",
                    r.seq
                ));
            }
            (seq, prev) = (r.seq, r.hash);
        }
    }
    Ok(Ok(seq))
}

/// Every record that asked for a key, oldest first.
pub fn trace(dir: &Path, secret: &[u8], key: &str) -> Result<Vec<Record>> {
    let wanted = key_hash(secret, key);
    let mut found = Vec::new();
    for file in segments(dir)? {
        let reader =
            std::io::BufReader::new(std::fs::File::open(&file).map_err(Error::file(&file))?);
        for line in reader.lines() {
            let line = line.map_err(Error::file(&file))?;
            if !line.contains(&wanted) {
                continue;
            }
            if let Ok(r) = serde_json::from_str::<Record>(&line)
                && r.event.keys.contains(&wanted)
            {
                found.push(r);
            }
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
            outcome: "released".into(),
            latency_us: 42,
        }
    }

    fn rewrite(dir: &Path, f: impl Fn(&mut Vec<String>)) {
        let path = segment_path(dir, 1);
        let mut lines: Vec<String> = std::fs::read_to_string(&path)
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
        let audit = Audit::open(dir.path(), b"secret").unwrap();
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
        let audit = Audit::open(dir.path(), b"secret").unwrap();
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

        let original = std::fs::read_to_string(segment_path(dir.path(), 1)).unwrap();
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
