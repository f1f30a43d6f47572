//! The data-use record at 100M+ audit records (issue 16): the subject
//! index (`tongban_audit::subjects`) against a scan of the log.
//!
//! 1. writes an audit log of RECORDS records in 64 MiB segments, lines of
//!    the shape a real lookup writes (consumer, matter, case, three items,
//!    one subject key hash, rule, outcome), subjects drawn uniformly from
//!    SUBJECTS citizens (seeded, so runs are alike). The lines are not
//!    chained (the index reads only `seq` and `keys`; the chain is checked
//!    by `audit verify`, not here);
//! 2. indexes the sealed segments from their lines (`subjects::ensure_runs`,
//!    what opening a log that has no index does) and merges the runs
//!    (`subjects::compact`, what the indexer thread does as segments seal);
//! 3. answers, as `Audit::subject_entries` does (the runs, and the open
//!    segment's entries, which the hub keeps in memory), QUERIES
//!    random subjects' first page (50 uses): the index's entries, then each
//!    record read back from its line and checked — timing each;
//! 4. times what the index replaces: `tongban_audit::scan`, a read of every
//!    line, for one subject, over SCAN_SEGMENTS segments (all by default),
//!    and extrapolates to the whole log when fewer.
//!
//! Usage: data-use DIR RECORDS SUBJECTS QUERIES [SCAN_SEGMENTS]
//! Prints `name value` lines; `benches/data_use/run.sh` runs it.

use std::io::Write;
use std::path::Path;
use std::time::Instant;
use tongban_audit::subjects;

const SECRET: &[u8] = b"bench-secret";

/// xorshift64*: deterministic, fast, good enough to pick subjects.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn subject(i: u64) -> String {
    format!("31010419{:010}", i)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn dir_bytes(dir: &Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, records, subjects_n, queries, rest @ ..] = args.as_slice() else {
        return Err("usage: data-use DIR RECORDS SUBJECTS QUERIES [SCAN_SEGMENTS]".into());
    };
    let dir = Path::new(dir);
    let records: u64 = records.parse()?;
    let subjects_n: u64 = subjects_n.parse()?;
    let queries: usize = queries.parse()?;
    let scan_segments: Option<usize> = rest.first().map(|s| s.parse()).transpose()?;
    std::fs::create_dir_all(dir)?;

    let hashes: Vec<String> = (0..subjects_n)
        .map(|i| tongban_audit::key_hash(SECRET, &subject(i)))
        .collect();
    // A folder holding a log from an earlier run (KEEP=1): only query it.
    let reuse = dir.join("audit-000001.jsonl").exists();
    if !reuse {
        write_and_index(dir, records, subjects_n, &hashes)?;
    } else {
        println!("reused {}", dir.display());
    }
    let files = tongban_audit::segment_files(dir)?;

    // 3. Queries, as `Audit::subject_entries` answers them: the runs, and
    // the open segment's entries (which the hub holds in memory; read here
    // from its lines, as opening does).
    let last = files.last().ok_or("no segments")?;
    let n = files.len() as u32;
    let live = subjects::entries_of_text(n, &std::fs::read_to_string(last)?);
    query_and_scan(
        dir,
        &files,
        &hashes,
        subjects_n,
        queries,
        scan_segments,
        &live,
    )
}

fn write_and_index(
    dir: &Path,
    records: u64,
    subjects_n: u64,
    hashes: &[String],
) -> Result<(), Box<dyn std::error::Error>> {
    // 1. The log.
    let started = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut segment = 1u32;
    let mut out = std::io::BufWriter::with_capacity(
        8 << 20,
        std::fs::File::create(dir.join(format!("audit-{segment:06}.jsonl")))?,
    );
    let mut size = 0u64;
    let mut line = String::with_capacity(512);
    let time = "2026-12-01T09:30:00.000000Z";
    let fake = "0".repeat(64);
    for seq in 1..=records {
        if size >= tongban_audit::SEGMENT_BYTES {
            out.flush()?;
            segment += 1;
            out = std::io::BufWriter::with_capacity(
                8 << 20,
                std::fs::File::create(dir.join(format!("audit-{segment:06}.jsonl")))?,
            );
            size = 0;
        }
        let s = rng.next() % subjects_n;
        line.clear();
        use std::fmt::Write as _;
        write!(
            line,
            "{{\"seq\":{seq},\"prev\":\"{fake}\",\"replica\":\"hub-a\",\"time\":\"{time}\",\
             \"consumer\":\"sh-zwfw\",\"resource\":\"101/000001\",\"mode\":\"lookup\",\
             \"matter\":\"310000-JZZ-001\",\"case\":\"JZZ-2026-{seq:010}\",\
             \"items\":[\"name\",\"gender\",\"residence_address\"],\"denied\":[],\
             \"keys\":[\"{}\"],\"rule\":\"need:3\",\"outcome\":\"released\",\
             \"latency_us\":41,\"hash\":\"{fake}\"}}\n",
            hashes[s as usize]
        )?;
        out.write_all(line.as_bytes())?;
        size += line.len() as u64;
    }
    out.flush()?;
    drop(out);
    let log_bytes = dir_bytes(dir, "audit-");
    println!("records {records}");
    println!("subjects {subjects_n}");
    println!("segments {segment}");
    println!("log_bytes {log_bytes}");
    println!("log_write_s {:.1}", started.elapsed().as_secs_f64());

    // 2. The index: every sealed segment's run, then the merges.
    let started = Instant::now();
    let files = tongban_audit::segment_files(dir)?;
    let indexed = subjects::ensure_runs(dir, &files)?;
    let build_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let merges = subjects::compact(dir)?;
    let merge_s = started.elapsed().as_secs_f64();
    let runs = subjects::runs(dir)?;
    let index_bytes = dir_bytes(dir, "subjects-");
    println!("index_segments {indexed}");
    println!("index_build_s {build_s:.1}");
    println!(
        "index_build_records_per_s {:.0}",
        records as f64 / build_s.max(1e-9)
    );
    println!("index_merges {merges}");
    println!("index_merge_s {merge_s:.1}");
    println!("index_runs {}", runs.len());
    println!("index_bytes {index_bytes}");
    println!(
        "index_bytes_per_record {:.1}",
        index_bytes as f64 / records as f64
    );

    Ok(())
}

fn query_and_scan(
    dir: &Path,
    files: &[std::path::PathBuf],
    hashes: &[String],
    subjects_n: u64,
    queries: usize,
    scan_segments: Option<usize>,
    live: &[subjects::Entry],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut entries_us = Vec::with_capacity(queries);
    let mut page_us = Vec::with_capacity(queries);
    let mut found = 0usize;
    let mut q = Rng(42);
    for _ in 0..queries {
        let s = q.next() % subjects_n;
        let hash = &hashes[s as usize];
        let t = Instant::now();
        let key = subjects::key_of(hash).expect("a key hash");
        let open: Vec<subjects::Entry> = live.iter().filter(|e| e.key == key).copied().collect();
        let entries = subjects::find(dir, key, open)?;
        entries_us.push(t.elapsed().as_secs_f64() * 1e6);
        let mut page = 0;
        for e in entries.iter().take(50) {
            if let Some(r) = subjects::read_record(dir, e)?
                && r.event.keys.contains(hash)
            {
                page += 1;
            }
        }
        page_us.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(
            page,
            entries.len().min(50),
            "every entry's record names the subject"
        );
        found += entries.len();
    }
    entries_us.sort_by(f64::total_cmp);
    page_us.sort_by(f64::total_cmp);
    println!("queries {queries}");
    println!("uses_per_subject_mean {:.1}", found as f64 / queries as f64);
    println!("entries_p50_us {:.0}", quantile(&entries_us, 0.5));
    println!("entries_p99_us {:.0}", quantile(&entries_us, 0.99));
    println!("page_p50_us {:.0}", quantile(&page_us, 0.5));
    println!("page_p99_us {:.0}", quantile(&page_us, 0.99));
    println!("page_max_us {:.0}", page_us[page_us.len() - 1]);

    // 4. The scan the index replaces.
    let scan: Vec<_> = match scan_segments {
        Some(n) => files.iter().take(n).cloned().collect(),
        None => files.to_vec(),
    };
    let scan_dir = if scan.len() < files.len() {
        let d = dir.join("scan");
        std::fs::create_dir_all(&d)?;
        for f in &scan {
            let link = d.join(f.file_name().expect("a segment file"));
            let _ = std::os::unix::fs::symlink(f, &link);
        }
        d
    } else {
        dir.to_path_buf()
    };
    let started = Instant::now();
    let traced = tongban_audit::scan(&scan_dir, SECRET, &subject(q.next() % subjects_n))?;
    let scan_s = started.elapsed().as_secs_f64();
    let whole = scan_s * files.len() as f64 / scan.len() as f64;
    println!("scan_segments {}", scan.len());
    println!("scan_s {scan_s:.1}");
    println!("scan_found {}", traced.len());
    println!("scan_whole_log_s {whole:.1}");
    println!(
        "speedup_page_p99_vs_scan {:.0}",
        whole * 1e6 / quantile(&page_us, 0.99)
    );
    Ok(())
}
