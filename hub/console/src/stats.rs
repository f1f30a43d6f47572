//! Exchange statistics, read from the audit log itself: every lookup,
//! verification, delivery and denial is there with its consumer, resource,
//! rule and latency. The log is read incrementally — each page view parses
//! only the lines appended since the last — into compact records kept for
//! [`KEEP_DAYS`] days (at most [`KEEP_RECORDS`]), and aggregated per view.
//! A department sees its own requests only.

use super::charts::{self, Series};
use super::names::{Named, Names as DirectoryNames};
use super::{Frame, Session, render};
use crate::ConsoleApp as AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tongban_catalog::sync::SyncRun;

/// Days of records kept in memory.
pub const KEEP_DAYS: i64 = 7;
/// Most records kept in memory (about 40 bytes each).
pub const KEEP_RECORDS: usize = 2_000_000;

/// One audit record, reduced to what statistics need.
#[derive(Debug, Clone, Copy)]
struct Rec {
    /// Unix seconds.
    time: i64,
    consumer: u32,
    resource: u32,
    rule: u32,
    mode: Mode,
    released: bool,
    latency_us: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mode {
    Lookup,
    Verify,
    Delivery,
}

/// Strings stored once, referred to by index.
#[derive(Default)]
struct Names {
    index: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
    fn name(&self, i: u32) -> &str {
        &self.names[i as usize]
    }
}

#[derive(Default)]
struct Log {
    /// Bytes of each segment already read (up to its last complete line).
    read: HashMap<PathBuf, u64>,
    records: VecDeque<Rec>,
    names: Names,
}

/// The audit log's statistics, shared by all console requests.
#[derive(Clone)]
pub struct AuditStats {
    dir: PathBuf,
    log: Arc<Mutex<Log>>,
}

#[derive(serde::Deserialize)]
struct Line {
    time: DateTime<Utc>,
    consumer: String,
    resource: String,
    mode: String,
    rule: String,
    outcome: tongban_audit::Outcome,
    #[serde(default)]
    latency_us: u64,
}

impl AuditStats {
    pub fn new(audit_dir: PathBuf) -> AuditStats {
        AuditStats {
            dir: audit_dir,
            log: Default::default(),
        }
    }

    /// Reads what was appended since the last call (blocking file IO).
    fn catch_up(&self) {
        let mut log = self.log.lock().expect("stats lock");
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        files.sort();
        for path in files {
            let start = log.read.get(&path).copied().unwrap_or(0);
            let Ok(mut file) = std::fs::File::open(&path) else {
                continue;
            };
            if file.seek(SeekFrom::Start(start)).is_err() {
                continue;
            }
            let mut reader = std::io::BufReader::with_capacity(256 * 1024, &mut file);
            let mut consumed = start;
            let mut line: Vec<u8> = Vec::new();
            // Complete lines only; a segment's records end at its first zero
            // byte (the writer overwrites zeroed segments), and a line
            // without its newline is still being written: read it next time.
            'read: loop {
                let buf = match reader.fill_buf() {
                    Ok([]) | Err(_) => break,
                    Ok(buf) => buf,
                };
                let mut used = 0;
                for (i, &b) in buf.iter().enumerate() {
                    if b == 0 {
                        break 'read;
                    }
                    if b == b'\n' {
                        line.extend_from_slice(&buf[used..i]);
                        consumed += (line.len() + 1) as u64;
                        if let Ok(l) = serde_json::from_slice::<Line>(&line) {
                            let rec = Rec {
                                time: l.time.timestamp(),
                                consumer: log.names.id(&l.consumer),
                                resource: log.names.id(&l.resource),
                                rule: log.names.id(&l.rule),
                                mode: match l.mode.as_str() {
                                    "verify" => Mode::Verify,
                                    "lookup" => Mode::Lookup,
                                    _ => Mode::Delivery,
                                },
                                released: l.outcome == tongban_audit::Outcome::Released,
                                latency_us: l.latency_us.min(u64::from(u32::MAX)) as u32,
                            };
                            log.records.push_back(rec);
                        }
                        line.clear();
                        used = i + 1;
                    }
                }
                line.extend_from_slice(&buf[used..]);
                let n = buf.len();
                reader.consume(n);
            }
            log.read.insert(path, consumed);
        }
        let horizon = Utc::now().timestamp() - KEEP_DAYS * 86_400;
        while log
            .records
            .front()
            .is_some_and(|r| r.time < horizon || log.records.len() > KEEP_RECORDS)
        {
            log.records.pop_front();
        }
    }
}

/// Fewest buckets on the time chart.
const MIN_BUCKETS: usize = 12;

/// One time bucket of the chart.
fn bucket_seconds(span: i64) -> i64 {
    // About 24 buckets over the span, on a round size.
    const SIZES: [i64; 9] = [
        60,
        300,
        900,
        1800,
        3600,
        3 * 3600,
        6 * 3600,
        12 * 3600,
        86_400,
    ];
    SIZES.into_iter().find(|s| span / s <= 24).unwrap_or(86_400)
}

/// What the page shows.
pub struct Summary {
    pub total: u64,
    pub released: u64,
    pub denied: u64,
    pub labels: Vec<String>,
    pub lookups: Vec<u64>,
    pub verifies: Vec<u64>,
    pub deliveries: Vec<u64>,
    pub top_consumers: Vec<(String, u64)>,
    pub top_resources: Vec<(String, u64)>,
    pub denials: Vec<(String, u64)>,
    /// (mode, count, p50, p90, p99, max), milliseconds.
    pub latency: Vec<(String, u64, f64, f64, f64, f64)>,
    pub window: String,
}

fn top(counts: HashMap<u32, u64>, names: &Names, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(k, c)| (names.name(k).to_string(), c))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

impl AuditStats {
    /// The statistics of `consumer`'s records, or of all.
    pub fn summary(&self, consumer: Option<&str>) -> Summary {
        self.catch_up();
        let log = self.log.lock().expect("stats lock");
        let only = consumer.and_then(|c| log.names.index.get(c).copied());
        let recs: Vec<&Rec> = log
            .records
            .iter()
            .filter(|r| match (consumer, only) {
                (None, _) => true,
                (Some(_), Some(id)) => r.consumer == id,
                (Some(_), None) => false,
            })
            .collect();
        let (first, last) = (
            recs.iter().map(|r| r.time).min().unwrap_or(0),
            recs.iter().map(|r| r.time).max().unwrap_or(0),
        );
        let size = bucket_seconds(last - first);
        // At least a dozen buckets up to the last, so a short burst still
        // reads as a point in time, with the quiet before it.
        let last_start = last - last.rem_euclid(size);
        let n = if recs.is_empty() {
            0
        } else {
            (((last_start - (first - first.rem_euclid(size))) / size + 1) as usize).max(MIN_BUCKETS)
        };
        let start = last_start - (n.max(1) as i64 - 1) * size;
        let (mut lookups, mut verifies, mut deliveries) = (vec![0; n], vec![0; n], vec![0; n]);
        let mut by_consumer = HashMap::new();
        let mut by_resource = HashMap::new();
        let mut denials = HashMap::new();
        let mut lat: HashMap<Mode, Vec<u32>> = HashMap::new();
        let (mut released, mut denied) = (0, 0);
        for r in &recs {
            let b = ((r.time - start) / size) as usize;
            match r.mode {
                Mode::Lookup => lookups[b] += 1,
                Mode::Verify => verifies[b] += 1,
                Mode::Delivery => deliveries[b] += 1,
            }
            if r.released {
                released += 1;
                *by_consumer.entry(r.consumer).or_insert(0) += 1;
                *by_resource.entry(r.resource).or_insert(0) += 1;
                lat.entry(r.mode).or_default().push(r.latency_us);
            } else {
                denied += 1;
                *denials.entry(r.rule).or_insert(0) += 1;
            }
        }
        let cst = chrono::FixedOffset::east_opt(8 * 3600).expect("a valid offset");
        let fmt = if size >= 86_400 {
            "%m-%d"
        } else {
            "%m-%d %H:%M"
        };
        let labels = (0..n)
            .map(|i| {
                DateTime::from_timestamp(start + i as i64 * size, 0)
                    .map(|t| t.with_timezone(&cst).format(fmt).to_string())
                    .unwrap_or_default()
            })
            .collect();
        let mut latency = Vec::new();
        for (mode, name) in [
            (Mode::Lookup, "lookup"),
            (Mode::Verify, "verify"),
            (Mode::Delivery, "subscribe"),
        ] {
            if let Some(mut v) = lat.remove(&mode) {
                v.sort_unstable();
                latency.push((
                    name.to_string(),
                    v.len() as u64,
                    percentile(&v, 0.5),
                    percentile(&v, 0.9),
                    percentile(&v, 0.99),
                    f64::from(*v.last().expect("not empty")) / 1000.0,
                ));
            }
        }
        let window = if recs.is_empty() {
            String::new()
        } else {
            format!(
                "{} – {}",
                super::local_time(DateTime::from_timestamp(first, 0).unwrap_or_default()),
                super::local_time(DateTime::from_timestamp(last, 0).unwrap_or_default())
            )
        };
        Summary {
            total: recs.len() as u64,
            released,
            denied,
            labels,
            lookups,
            verifies,
            deliveries,
            top_consumers: top(by_consumer, &log.names, 10),
            top_resources: top(by_resource, &log.names, 10),
            denials: top(denials, &log.names, 10),
            latency,
            window,
        }
    }
}

#[derive(Template)]
#[template(path = "stats.html")]
struct StatsPage {
    f: Frame,
    s: Summary,
    own_only: bool,
    over_time: String,
    consumers_chart: String,
    resources_chart: String,
    denials_chart: String,
    runs: Vec<SyncRun>,
    runs_chart: String,
    names: DirectoryNames,
}

/// Bars labelled with names, their codes on hover.
fn named_bars(rows: &[(String, u64)], name: impl Fn(&str) -> Named, color: &str) -> String {
    let rows: Vec<(String, String, u64)> = rows
        .iter()
        .map(|(code, v)| {
            let n = name(code);
            (n.text().to_string(), n.full(), *v)
        })
        .collect();
    charts::bars_titled(&rows, color)
}

pub async fn page(State(state): State<AppState>, s: Session) -> Response {
    let consumer = (!s.is_office()).then(|| s.who.department.clone());
    let stats = state.console.stats.clone();
    let summary =
        match tokio::task::spawn_blocking(move || stats.summary(consumer.as_deref())).await {
            Ok(summary) => summary,
            Err(e) => {
                return s.error(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("statistics failed: {e}"),
                );
            }
        };
    // Sync runs: all for the data office; a department its own resources'.
    let (runs, names) = tokio::join!(
        state.store.list_sync_runs(None, 30),
        DirectoryNames::load(state.store.as_ref())
    );
    let mut runs = runs.unwrap_or_default();
    if !s.is_office() {
        runs.retain(|r| names.provider(&r.resource) == Some(s.who.department.as_str()));
    }
    let t = s.t;
    let over_time = charts::lines(
        &summary.labels,
        &[
            Series {
                name: t.t("stats.lookups"),
                color: "#b3261e",
                values: summary.lookups.clone(),
            },
            Series {
                name: t.t("stats.verifies"),
                color: "#1f5fa8",
                values: summary.verifies.clone(),
            },
            Series {
                name: t.t("stats.deliveries"),
                color: "#1e7a3d",
                values: summary.deliveries.clone(),
            },
        ],
    );
    let run_rows: Vec<(String, u64)> = runs
        .iter()
        .take(12)
        .map(|r| {
            (
                format!("{} #{}", r.job, r.id),
                r.counts.rows_written.max(0) as u64,
            )
        })
        .collect();
    let page = StatsPage {
        f: s.frame("stats", t.t("stats.title")),
        own_only: !s.is_office(),
        consumers_chart: named_bars(&summary.top_consumers, |c| names.department(c), "#1f5fa8"),
        resources_chart: named_bars(&summary.top_resources, |c| names.resource(c), "#b3261e"),
        denials_chart: charts::bars(&summary.denials, "#a15c00"),
        runs_chart: charts::bars(&run_rows, "#1e7a3d"),
        over_time,
        s: summary,
        runs,
        names,
    };
    render(&page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(consumer: &str, mode: &str, outcome: &str, rule: &str, latency: u64) -> String {
        format!(
            r#"{{"seq":1,"prev":"0","time":"{}","consumer":"{consumer}","resource":"101/000001","mode":"{mode}","matter":"m","case":"c","items":[],"denied":[],"keys":[],"rule":"{rule}","outcome":"{outcome}","latency_us":{latency},"hash":"h"}}"#,
            Utc::now().to_rfc3339()
        ) + "\n"
    }

    #[test]
    fn records_are_read_once_and_counted_per_consumer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-000001.jsonl");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(line("sh-zwfw", "lookup", "released", "need:2", 900).as_bytes())
            .unwrap();
        f.write_all(line("xh-zwfw", "verify", "denied", "no_need", 100).as_bytes())
            .unwrap();
        // A line being written: not read yet.
        f.write_all(br#"{"seq":3,"#).unwrap();
        let stats = AuditStats::new(dir.path().to_path_buf());
        let all = stats.summary(None);
        assert_eq!((all.total, all.released, all.denied), (2, 1, 1));
        assert_eq!(all.denials, [("no_need".to_string(), 1)]);
        assert_eq!(all.top_consumers, [("sh-zwfw".to_string(), 1)]);
        assert_eq!(all.latency[0].0, "lookup");
        // The rest of the line arrives, and one more; nothing is counted twice.
        let rest = line("sh-zwfw", "lookup", "released", "need:2", 1100);
        f.write_all(&rest.as_bytes()[r#"{"seq":3,"#.len()..])
            .unwrap();
        let again = stats.summary(None);
        assert_eq!(again.total, 3);
        let own = stats.summary(Some("xh-zwfw"));
        assert_eq!((own.total, own.denied), (1, 1));
        assert_eq!(stats.summary(Some("nobody")).total, 0);
    }

    #[test]
    fn a_zeroed_segment_ends_at_its_first_zero_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-000001.jsonl");
        let mut bytes = line("sh-zwfw", "lookup", "released", "need:2", 900).into_bytes();
        bytes.extend(std::iter::repeat_n(0u8, 4096));
        std::fs::write(&path, &bytes).unwrap();
        let stats = AuditStats::new(dir.path().to_path_buf());
        assert_eq!(stats.summary(None).total, 1);
        // The writer overwrites the zeros with the next record.
        let next = line("xh-zwfw", "verify", "denied", "no_need", 100);
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let at = bytes.iter().position(|&b| b == 0).unwrap() as u64;
        std::os::unix::fs::FileExt::write_at(&f, next.as_bytes(), at).unwrap();
        assert_eq!(stats.summary(None).total, 2);
    }

    #[test]
    fn buckets_are_round_and_about_24() {
        assert_eq!(bucket_seconds(0), 60);
        assert_eq!(bucket_seconds(3600), 300);
        assert_eq!(bucket_seconds(86_400), 3600);
        assert_eq!(bucket_seconds(30 * 86_400), 86_400);
    }
}
