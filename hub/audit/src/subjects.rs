//! The subject index: which records name a key (a citizen ID, a credit
//! code), so that "who used my data" (数据使用记录) answers from an index
//! keyed by the subject's key hash instead of a scan of the log.
//!
//! An [`Entry`] points at one record that names one key: the first 64
//! bits of the key's keyed hash, the record's `seq`, and where its line
//! starts (segment and byte offset). The index holds no data of its own:
//! every answer is read back from the log's lines and checked against the
//! full key hash there, so a 64-bit collision can cost a read, never a
//! wrong answer, and the index can always be rebuilt from the log.
//!
//! Layout, beside the segments in `DATA_DIR/audit/`:
//! - `subjects-AAAAAA-BBBBBB.idx`: a *run*, the entries of sealed
//!   segments A to B sorted by key (then newest first), 24 bytes each
//!   after a 32-byte header. The writer hands the entries of a segment it
//!   seals to a background thread, which writes the segment's run and
//!   merges runs so that a lookup searches few: eight consecutive runs of
//!   the same span become one run of eight times the span (tiered, as
//!   an LSM tree does), so at 100M records (about 700 segments) a key is
//!   found by binary search in a few dozen runs at most;
//! - the current segment's entries are in memory ([`Live`]), rebuilt from
//!   the segment's lines on open; a sealed segment whose run is not yet
//!   written (or was lost) is indexed from its lines.
//!
//! Runs are written to a temporary name, synced and renamed; a merge
//! removes its inputs only after its output is in place, and a reader that
//! sees both drops the duplicates (by `seq`). A run that does not match its
//! header is ignored and rebuilt.

use crate::{Error, Record, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"TBSUBJ1\n";
const HEADER: u64 = 32;
/// Bytes of one entry in a run.
pub const ENTRY_BYTES: u64 = 24;
/// How many consecutive runs of one span are merged into one.
pub const FAN_IN: usize = 8;

/// One record naming one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The first 64 bits of the key's keyed hash.
    pub key: u64,
    pub seq: u64,
    pub segment: u32,
    /// Where the record's line starts in its segment.
    pub offset: u32,
}

impl Entry {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.segment.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
    }

    fn decode(b: &[u8]) -> Entry {
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        Entry {
            key: u64_at(0),
            seq: u64_at(8),
            segment: u32_at(16),
            offset: u32_at(20),
        }
    }

    /// Run order: by key, then newest first.
    fn order(&self) -> (u64, std::cmp::Reverse<u64>) {
        (self.key, std::cmp::Reverse(self.seq))
    }
}

/// The index's key for a key hash as records carry it (hex): its first 64
/// bits. `None` for text that is not such a hash.
pub fn key_of(hash_hex: &str) -> Option<u64> {
    let head = hash_hex.get(..16)?;
    u64::from_str_radix(head, 16).ok()
}

/// The entries of the segment being written, and of sealed segments whose
/// runs are still being written.
#[derive(Default)]
pub struct Live {
    pub segment: u32,
    pub entries: Vec<Entry>,
    /// Sealed, run not yet on disk.
    pub sealing: Vec<(u32, std::sync::Arc<Vec<Entry>>)>,
}

impl Live {
    /// The entries of `key`, in no order.
    pub fn matching(&self, key: u64) -> Vec<Entry> {
        let sealing = self.sealing.iter().flat_map(|(_, v)| v.iter());
        self.entries
            .iter()
            .chain(sealing)
            .filter(|e| e.key == key)
            .copied()
            .collect()
    }
}

/// The key hashes a line names, read without decoding the rest.
#[derive(serde::Deserialize)]
struct Keys<'a> {
    seq: u64,
    #[serde(borrow, default)]
    keys: Vec<std::borrow::Cow<'a, str>>,
}

/// The entries of segment `segment` from its text.
pub fn entries_of_text(segment: u32, text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut offset = 0usize;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        if line.trim().is_empty() {
            continue;
        }
        let Ok(k) = serde_json::from_str::<Keys>(line) else {
            continue; // verify reports broken lines; the index skips them
        };
        let Ok(start) = u32::try_from(start) else {
            break;
        };
        out.extend(k.keys.iter().filter_map(|h| key_of(h)).map(|key| Entry {
            key,
            seq: k.seq,
            segment,
            offset: start,
        }));
    }
    out
}

/// A run file: the segments it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub first: u32,
    pub last: u32,
    pub path: PathBuf,
}

impl Run {
    fn span(&self) -> u32 {
        self.last - self.first + 1
    }
}

fn run_path(dir: &Path, first: u32, last: u32) -> PathBuf {
    dir.join(format!("subjects-{first:06}-{last:06}.idx"))
}

/// The runs in `dir`, oldest first; runs covered by a larger one (a merge
/// that stopped before removing its inputs) are left out.
pub fn runs(dir: &Path) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(runs),
        Err(e) => return Err(Error::file(dir)(e)),
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(span) = name
            .strip_prefix("subjects-")
            .and_then(|n| n.strip_suffix(".idx"))
        else {
            continue;
        };
        let Some((a, b)) = span.split_once('-') else {
            continue;
        };
        if let (Ok(first), Ok(last)) = (a.parse(), b.parse())
            && first <= last
        {
            runs.push(Run {
                first,
                last,
                path: e.path(),
            });
        }
    }
    runs.sort_by_key(|r| (r.first, std::cmp::Reverse(r.last)));
    let mut kept: Vec<Run> = Vec::new();
    for r in runs {
        match kept.last() {
            Some(k) if r.last <= k.last => {} // covered
            _ => kept.push(r),
        }
    }
    Ok(kept)
}

/// Writes a run of `entries` (sorted here) covering segments `first` to
/// `last`: temporary name, sync, rename.
pub fn write_run(dir: &Path, first: u32, last: u32, entries: &mut [Entry]) -> Result<PathBuf> {
    entries.sort_unstable_by_key(Entry::order);
    let mut buf = Vec::with_capacity(HEADER as usize + entries.len() * ENTRY_BYTES as usize);
    header(&mut buf, first, last, entries.len() as u64);
    for e in entries.iter() {
        e.encode(&mut buf);
    }
    let path = run_path(dir, first, last);
    let tmp = tmp_path(&path);
    let mut f = std::fs::File::create(&tmp).map_err(Error::file(&tmp))?;
    f.write_all(&buf)
        .and_then(|()| f.sync_data())
        .map_err(Error::file(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(Error::file(&path))?;
    Ok(path)
}

/// A temporary name of its own: a log closed and reopened in one process
/// may have two indexers at work for a moment, which then write the same
/// run (same entries) and rename it into place one after the other.
fn tmp_path(path: &Path) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_extension(format!("idx.{}-{n}.tmp", std::process::id()))
}

fn header(buf: &mut Vec<u8>, first: u32, last: u32, count: u64) {
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&first.to_be_bytes());
    buf.extend_from_slice(&last.to_be_bytes());
    buf.extend_from_slice(&count.to_be_bytes());
    buf.extend_from_slice(&[0; 8]);
}

/// An open run, checked against its header.
struct OpenRun {
    file: std::fs::File,
    count: u64,
}

enum Opened {
    Run(OpenRun),
    /// Merged away since the listing: its entries are in the merge.
    Gone,
    /// Torn or not a run: ignored, and rebuilt on the next open.
    Unsound,
}

fn open_run(run: &Run) -> std::io::Result<Opened> {
    let file = match std::fs::File::open(&run.path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Opened::Gone),
        Err(e) => return Err(e),
    };
    let mut h = [0u8; HEADER as usize];
    if file.read_exact_at(&mut h, 0).is_err() || &h[..8] != MAGIC {
        return Ok(Opened::Unsound);
    }
    let first = u32::from_be_bytes(h[8..12].try_into().expect("4 bytes"));
    let last = u32::from_be_bytes(h[12..16].try_into().expect("4 bytes"));
    let count = u64::from_be_bytes(h[16..24].try_into().expect("8 bytes"));
    let len = file.metadata()?.len();
    if (first, last) != (run.first, run.last) || len != HEADER + count * ENTRY_BYTES {
        return Ok(Opened::Unsound);
    }
    Ok(Opened::Run(OpenRun { file, count }))
}

impl OpenRun {
    fn entry(&self, i: u64) -> std::io::Result<Entry> {
        let mut b = [0u8; ENTRY_BYTES as usize];
        self.file.read_exact_at(&mut b, HEADER + i * ENTRY_BYTES)?;
        Ok(Entry::decode(&b))
    }

    /// The entries of `key`: binary search for the first, then a read of
    /// the rest in one go.
    fn find(&self, key: u64) -> std::io::Result<Vec<Entry>> {
        let (mut lo, mut hi) = (0u64, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid)?.key < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out = Vec::new();
        let mut at = lo;
        // Most subjects have few uses: read a small block, more if needed.
        let mut block = 16u64;
        while at < self.count {
            let n = block.min(self.count - at);
            let mut b = vec![0u8; (n * ENTRY_BYTES) as usize];
            self.file.read_exact_at(&mut b, HEADER + at * ENTRY_BYTES)?;
            for chunk in b.chunks_exact(ENTRY_BYTES as usize) {
                let e = Entry::decode(chunk);
                if e.key != key {
                    return Ok(out);
                }
                out.push(e);
            }
            at += n;
            block = (block * 4).min(1 << 16);
        }
        Ok(out)
    }
}

/// Whether a run is usable (exists and matches its header).
pub fn run_is_sound(run: &Run) -> bool {
    matches!(open_run(run), Ok(Opened::Run(_)))
}

/// The entries of `key` in every run of `dir`, with `extra` (the live
/// entries, taken before: a segment leaves them only once its run is in
/// place), newest first, each record once.
pub fn find(dir: &Path, key: u64, extra: Vec<Entry>) -> Result<Vec<Entry>> {
    // A merge may replace runs between the listing and the reads: a run
    // gone means its entries are in the merged run, so list again.
    'listing: for _ in 0..16 {
        let mut out = extra.clone();
        for run in runs(dir)? {
            match open_run(&run).map_err(Error::file(&run.path))? {
                Opened::Run(open) => out.extend(open.find(key).map_err(Error::file(&run.path))?),
                Opened::Gone => continue 'listing,
                Opened::Unsound => {}
            }
        }
        out.sort_unstable_by_key(|e| std::cmp::Reverse(e.seq));
        out.dedup_by_key(|e| e.seq);
        return Ok(out);
    }
    Err(Error::file(dir)(std::io::Error::other(
        "the subject index kept changing while it was read",
    )))
}

/// Reads the record an entry points at. `None` if the line is not there
/// or is not a record (the log was cut or edited: verify says how).
pub fn read_record(dir: &Path, e: &Entry) -> Result<Option<Record>> {
    let path = crate::segment_path(dir, e.segment);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::file(&path)(err)),
    };
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(u64::from(e.offset)))
        .map_err(Error::file(&path))?;
    let mut line = String::new();
    BufReader::with_capacity(4096, file)
        .read_line(&mut line)
        .map_err(Error::file(&path))?;
    Ok(serde_json::from_str::<Record>(&line)
        .ok()
        .filter(|r| r.seq == e.seq))
}

/// Makes sure every sealed segment (all of `segments` but the last) is in
/// a sound run: indexes those that are not from their lines. Returns how
/// many segments it indexed.
pub fn ensure_runs(dir: &Path, segments: &[PathBuf]) -> Result<usize> {
    remove_stale_temporaries(dir);
    let Some((_, sealed)) = segments.split_last() else {
        return Ok(0);
    };
    // Unsound runs go first: listed, they would hide the runs rebuilt
    // for their segments.
    loop {
        let unsound: Vec<Run> = runs(dir)?
            .into_iter()
            .filter(|r| !run_is_sound(r))
            .collect();
        if unsound.is_empty() {
            break;
        }
        for r in unsound {
            tracing::warn!(run = %r.path.display(), "a subject index run is torn; rebuilding it");
            std::fs::remove_file(&r.path).map_err(Error::file(&r.path))?;
        }
    }
    let covered: Vec<(u32, u32)> = runs(dir)?.iter().map(|r| (r.first, r.last)).collect();
    let mut built = 0;
    for path in sealed {
        let n = crate::segment_number(path);
        if covered.iter().any(|&(a, b)| a <= n && n <= b) {
            continue;
        }
        let text = crate::read_segment(path).map_err(Error::file(path))?;
        let mut entries = entries_of_text(n, &text);
        write_run(dir, n, n, &mut entries)?;
        built += 1;
    }
    if built > 0 {
        tracing::info!(segments = built, "indexed sealed audit segments by subject");
    }
    Ok(built)
}

/// Removes runs left half-written by a process that stopped (temporary
/// names older than ten minutes: a younger one may be another indexer's
/// of this process, about to be renamed).
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let stale = std::time::Duration::from_secs(600);
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > stale);
        if name.starts_with("subjects-") && name.ends_with(".tmp") && old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Merges eight consecutive runs of one span into one, oldest first, as
/// long as there are such; returns how many merges it made.
pub fn compact(dir: &Path) -> Result<usize> {
    let mut merges = 0;
    loop {
        let runs = runs(dir)?;
        let group = runs.windows(FAN_IN).find(|w| {
            let span = w[0].span();
            w.iter().all(|r| r.span() == span) && w.windows(2).all(|p| p[0].last + 1 == p[1].first)
        });
        let Some(group) = group else {
            return Ok(merges);
        };
        merge(dir, group)?;
        merges += 1;
    }
}

/// Streams the sorted runs of `group` into one run, then removes them.
fn merge(dir: &Path, group: &[Run]) -> Result<()> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let (first, last) = (group[0].first, group[group.len() - 1].last);
    let mut readers = Vec::new();
    let mut total = 0u64;
    for run in group {
        let Opened::Run(open) = open_run(run).map_err(Error::file(&run.path))? else {
            return Err(Error::file(&run.path)(std::io::Error::other(
                "run is gone or does not match its header",
            )));
        };
        total += open.count;
        let mut r = BufReader::with_capacity(1 << 20, open.file);
        std::io::Seek::seek(&mut r, std::io::SeekFrom::Start(HEADER))
            .map_err(Error::file(&run.path))?;
        readers.push((r, open.count));
    }
    let next = |(r, left): &mut (BufReader<std::fs::File>, u64)| -> std::io::Result<Option<Entry>> {
        if *left == 0 {
            return Ok(None);
        }
        let mut b = [0u8; ENTRY_BYTES as usize];
        r.read_exact(&mut b)?;
        *left -= 1;
        Ok(Some(Entry::decode(&b)))
    };
    let mut heap = BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        if let Some(e) = next(r).map_err(Error::file(&group[i].path))? {
            heap.push(Reverse((e.order(), i, e.seq, e.segment, e.offset)));
        }
    }
    let path = run_path(dir, first, last);
    let tmp = tmp_path(&path);
    let file = std::fs::File::create(&tmp).map_err(Error::file(&tmp))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut buf = Vec::with_capacity(HEADER as usize);
    header(&mut buf, first, last, total);
    out.write_all(&buf).map_err(Error::file(&tmp))?;
    while let Some(Reverse(((key, _), i, seq, segment, offset))) = heap.pop() {
        buf.clear();
        Entry {
            key,
            seq,
            segment,
            offset,
        }
        .encode(&mut buf);
        out.write_all(&buf).map_err(Error::file(&tmp))?;
        if let Some(e) = next(&mut readers[i]).map_err(Error::file(&group[i].path))? {
            heap.push(Reverse((e.order(), i, e.seq, e.segment, e.offset)));
        }
    }
    let file = out
        .into_inner()
        .map_err(|e| Error::file(&tmp)(e.into_error()))?;
    file.sync_data().map_err(Error::file(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(Error::file(&path))?;
    for run in group {
        let _ = std::fs::remove_file(&run.path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Audit, Event, Outcome, key_hash};
    use chrono::Utc;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"secret";

    fn event(n: usize, keys: &[&str]) -> Event {
        Event {
            time: Utc::now(),
            consumer: "sh-zwfw".into(),
            resource: "101/000001".into(),
            mode: "lookup".into(),
            matter: "310000-JZZ-001".into(),
            case: format!("case-{n}"),
            items: vec!["name".into()],
            denied: Vec::new(),
            keys: keys.iter().map(|k| key_hash(SECRET, k)).collect(),
            rule: "need:1".into(),
            outcome: Outcome::Released,
            latency_us: 42,
            call: None,
        }
    }

    /// The cases of the records the index gives for `key`, newest first.
    fn cases(audit: &Audit, key: &str) -> Vec<String> {
        audit
            .subject_entries(&key_hash(SECRET, key))
            .unwrap()
            .iter()
            .map(|e| {
                let r = read_record(audit.dir(), e)
                    .unwrap()
                    .expect("the entry's record");
                assert!(r.event.keys.contains(&key_hash(SECRET, key)), "{r:?}");
                r.event.case
            })
            .collect()
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    /// Waits until no sealed segment's run is still being written.
    fn settle(audit: &Audit) {
        for _ in 0..500 {
            let chain = audit.shared.0.chain.lock().unwrap();
            if !chain.rotate && audit.shared.0.live.lock().unwrap().sealing.is_empty() {
                return;
            }
            drop(chain);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the indexer did not write its runs");
    }

    #[test]
    fn a_subjects_records_are_found_live_sealed_merged_and_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let rt = rt();
        let audit = Audit::open(dir.path(), SECRET, Some("hub-a")).unwrap();
        // 20 segments of 3 records; every third names "alice" and "bob".
        let mut want = Vec::new();
        for n in 0..60 {
            let keys: &[&str] = if n % 3 == 0 {
                &["alice", "bob"]
            } else {
                &["carol"]
            };
            rt.block_on(audit.record(event(n, keys))).unwrap();
            if n % 3 == 0 {
                want.insert(0, format!("case-{n}"));
            }
            if n % 3 == 2 {
                audit.seal_segment();
            }
            assert_eq!(cases(&audit, "alice"), want, "after record {n}");
        }
        settle(&audit);
        // Eight runs of one segment became one of eight, twice over.
        let spans: Vec<(u32, u32)> = runs(dir.path())
            .unwrap()
            .iter()
            .map(|r| (r.first, r.last))
            .collect();
        assert_eq!(spans[..2], [(1, 8), (9, 16)], "{spans:?}");
        assert_eq!(spans.len(), 2 + 4, "{spans:?}");
        assert_eq!(cases(&audit, "alice"), want);
        assert_eq!(cases(&audit, "bob"), want);
        assert_eq!(cases(&audit, "carol").len(), 40);
        assert!(cases(&audit, "dave").is_empty());
        // `trace` reads the covered segments through the index, the open
        // one line by line: the same records as a read of every line.
        for who in ["alice", "carol", "dave"] {
            let traced = crate::trace(dir.path(), SECRET, who).unwrap();
            assert_eq!(
                traced,
                crate::scan(dir.path(), SECRET, who).unwrap(),
                "{who}"
            );
        }
        assert_eq!(crate::trace(dir.path(), SECRET, "alice").unwrap().len(), 20);
        drop(audit);

        // A run lost or torn is rebuilt from the segment's lines on open,
        // and a temporary a stopped process left behind is removed.
        std::fs::remove_file(dir.path().join("subjects-000017-000017.idx")).unwrap();
        let left = dir.path().join("subjects-000017-000017.idx.1-0.tmp");
        let fresh = dir.path().join("subjects-000018-000018.idx.1-1.tmp");
        std::fs::write(&left, b"half a run").unwrap();
        std::fs::write(&fresh, b"being written").unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&left)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let torn = dir.path().join("subjects-000001-000008.idx");
        let len = std::fs::metadata(&torn).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&torn)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        let audit = Audit::open(dir.path(), SECRET, Some("hub-a")).unwrap();
        assert!(
            !left.exists() && fresh.exists(),
            "only the stale temporary goes"
        );
        assert_eq!(cases(&audit, "alice"), want);
        rt.block_on(audit.record(event(60, &["alice"]))).unwrap();
        want.insert(0, "case-60".into());
        assert_eq!(cases(&audit, "alice"), want);
    }

    #[test]
    fn a_merge_stopped_before_removing_its_inputs_counts_each_record_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut all = Vec::new();
        for n in 1..=8u32 {
            let mut e = vec![Entry {
                key: 7,
                seq: u64::from(n),
                segment: n,
                offset: 0,
            }];
            all.extend(e.clone());
            write_run(dir.path(), n, n, &mut e).unwrap();
        }
        // The merged run as a merge writes it, the inputs still there.
        write_run(dir.path(), 1, 8, &mut all).unwrap();
        assert_eq!(
            runs(dir.path()).unwrap().len(),
            1,
            "covered runs are not searched"
        );
        let found = find(dir.path(), 7, vec![all[7]]).unwrap();
        assert_eq!(
            found.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [8, 7, 6, 5, 4, 3, 2, 1]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Whatever records name whichever subjects, across sealed and
        /// merged segments: a subject's answer holds every record that
        /// names it, newest first, and no record that does not.
        #[test]
        fn a_subject_sees_its_records_and_no_one_elses(
            records in proptest::collection::vec(
                (proptest::collection::btree_set(0usize..12, 1..4), any::<bool>()),
                1..80,
            )
        ) {
            let dir = tempfile::tempdir().unwrap();
            let rt = rt();
            let audit = Audit::open(dir.path(), SECRET, None).unwrap();
            let subjects: Vec<String> = (0..12).map(|i| format!("31010419900101{i:04}")).collect();
            let mut want: Vec<Vec<String>> = vec![Vec::new(); 12];
            for (n, (named, seal)) in records.iter().enumerate() {
                let keys: Vec<&str> = named.iter().map(|&i| subjects[i].as_str()).collect();
                rt.block_on(audit.record(event(n, &keys))).unwrap();
                for &i in named {
                    want[i].insert(0, format!("case-{n}"));
                }
                if *seal {
                    audit.seal_segment();
                }
            }
            for (i, s) in subjects.iter().enumerate() {
                prop_assert_eq!(&cases(&audit, s), &want[i], "subject {}", i);
            }
            settle(&audit);
            for (i, s) in subjects.iter().enumerate() {
                prop_assert_eq!(&cases(&audit, s), &want[i], "subject {} after merging", i);
            }
        }
    }
}
