//! `lookup-rate`: a constant-rate (open-loop) load generator for the lookup
//! benchmark, because `wrk` can only keep a fixed number of requests in flight
//! and Debian has no `wrk2`.
//!
//! ```text
//! lookup-rate --url http://127.0.0.1:18180/v1/lookup/101/000001 --token TB \
//!     --keys keys.txt --rate 20000 --duration 10 --connections 64
//! ```
//!
//! How it measures (the wrk2 model, without coordinated omission):
//!
//! - request `i` is scheduled at `start + i / rate`; connection `c` sends the
//!   requests with `i % connections == c`, one at a time (HTTP/1.1 keep-alive);
//! - when a connection is still busy at a request's scheduled time, the request
//!   goes out as soon as the previous answer is in, and its latency counts from
//!   the **scheduled** time, so a slow server is charged for the queueing it
//!   causes;
//! - when the connection is idle, it sleeps until the scheduled time; tokio's
//!   timer wakes up to ~1 ms late, which is the generator's slack, not the
//!   server's, so then the latency counts from the actual send;
//! - a warm-up of `--warmup` seconds at the same rate is run first and not
//!   recorded; `--timeline` also prints p99 and max per second.
//!
//! `--method GET` sends bodiless GETs to the URL instead (no token used): run
//! against `/health`, it gives the floor of this generator and the HTTP stack
//! on the machine at the same rate.
//!
//! Requests are pre-built byte strings (one per key, cycling through the keys
//! file); responses are parsed just enough for status and `Content-Length`. It
//! runs on one thread so that the server keeps the other core. Prints
//! `key value` lines: achieved rate, p50/p90/p99/p99.9/max in microseconds,
//! non-200 answers and connection errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

struct Args {
    addr: SocketAddr,
    host: String,
    path: String,
    token: String,
    keys: String,
    rate: f64,
    duration: f64,
    warmup: f64,
    connections: usize,
    timeline: bool,
    /// `GET` sends bodiless requests to the URL: the floor of the generator
    /// and the HTTP stack (e.g. against `/health`).
    get: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: lookup-rate --url http://HOST:PORT/PATH --token TOKEN --keys FILE \
         [--rate 20000] [--duration 10] [--warmup 2] [--connections 64] [--method POST|GET] [--timeline]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut url = None;
    let mut token = None;
    let mut keys = None;
    let (mut rate, mut duration, mut warmup, mut connections) = (20000.0, 10.0, 2.0, 64usize);
    let mut timeline = false;
    let mut get = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--timeline" {
            timeline = true;
            continue;
        }
        let value = it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--url" => url = Some(value),
            "--token" => token = Some(value),
            "--keys" => keys = Some(value),
            "--rate" => rate = value.parse().unwrap_or_else(|_| usage()),
            "--duration" => duration = value.parse().unwrap_or_else(|_| usage()),
            "--warmup" => warmup = value.parse().unwrap_or_else(|_| usage()),
            "--connections" => connections = value.parse().unwrap_or_else(|_| usage()),
            "--method" => match value.as_str() {
                "GET" => get = true,
                "POST" => get = false,
                _ => usage(),
            },
            _ => usage(),
        }
    }
    let url = url.unwrap_or_else(|| usage());
    let rest = url.strip_prefix("http://").unwrap_or_else(|| usage());
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = host.parse().unwrap_or_else(|_| {
        eprintln!("--url: give an IP:port host (only plain HTTP to an address)");
        std::process::exit(2)
    });
    if rate <= 0.0 || duration <= 0.0 || warmup < 0.0 || connections == 0 {
        usage()
    }
    Args {
        addr,
        host: host.to_string(),
        path: if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
        token: token.unwrap_or_else(|| usage()),
        keys: keys.unwrap_or_else(|| usage()),
        rate,
        duration,
        warmup,
        connections,
        timeline,
        get,
    }
}

/// One complete lookup request per key.
fn build_requests(a: &Args) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(&a.keys).unwrap_or_else(|e| {
        eprintln!("{}: {e}", a.keys);
        std::process::exit(2)
    });
    let reqs: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, key)| {
            if a.get {
                return format!("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", a.path, a.host).into_bytes();
            }
            let body = format!(
                r#"{{"keys":["{}"],"items":["name","gender","residence_address"],"matter":"310000-JZZ-001","case":"RATE-{i}"}}"#,
                key.trim()
            );
            format!(
                "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                a.path,
                a.host,
                a.token,
                body.len(),
                body
            )
            .into_bytes()
        })
        .collect();
    if reqs.is_empty() {
        eprintln!("{}: no keys", a.keys);
        std::process::exit(2)
    }
    reqs
}

/// Reads one response; returns its status. Needs `Content-Length` (axum sets
/// it on every JSON answer); anything else is treated as a broken connection.
async fn read_response(conn: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    let broken =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(|_| broken("head not UTF-8"))?;
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| broken("no status"))?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .ok_or_else(|| broken("no Content-Length"))?;
            let total = end + 4 + len;
            while buf.len() < total {
                read_more(conn, buf).await?;
            }
            buf.drain(..total);
            return Ok(status);
        }
        read_more(conn, buf).await?;
    }
}

async fn read_more(conn: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 16384];
    let n = conn.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// A request not answered within this is an error and its connection is
/// dropped, so that a stuck server cannot hold the run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    /// Recorded second of the schedule of each latency (for --timeline).
    seconds: Vec<u32>,
    non200: u64,
    errors: u64,
    sent: u64,
}

/// Connection `c`: requests c, c + C, c + 2C, … until `end`.
async fn connection(
    c: usize,
    a: Arc<Args>,
    reqs: Arc<Vec<Vec<u8>>>,
    start: Instant,
    record_from: Instant,
    end: Instant,
) -> Tally {
    let mut t = Tally::default();
    let interval = Duration::from_secs_f64(1.0 / a.rate);
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(65536);
    let mut i = c as u64;
    loop {
        let scheduled = start + interval.mul_f64(i as f64);
        if scheduled >= end {
            break;
        }
        let now = Instant::now();
        // Idle connection: wait for the schedule, then charge from the send.
        let from = if now < scheduled {
            tokio::time::sleep_until(scheduled).await;
            Instant::now()
        } else {
            scheduled
        };
        let record = scheduled >= record_from;
        let req = &reqs[(i as usize) % reqs.len()];
        let result = tokio::time::timeout(REQUEST_TIMEOUT, async {
            if conn.is_none() {
                let s = TcpStream::connect(a.addr).await?;
                s.set_nodelay(true)?;
                conn = Some(s);
                buf.clear();
            }
            let s = conn.as_mut().expect("connected");
            s.write_all(req).await?;
            read_response(s, &mut buf).await
        })
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
        let failed = result.is_err();
        let done = Instant::now();
        if record {
            t.sent += 1;
            match result {
                Ok(status) => {
                    if status != 200 {
                        t.non200 += 1;
                    }
                    t.latencies_us.push((done - from).as_micros() as u64);
                    t.seconds.push((scheduled - record_from).as_secs() as u32);
                }
                Err(_) => t.errors += 1,
            }
        }
        if failed {
            conn = None;
        }
        i += a.connections as u64;
    }
    t
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let a = Arc::new(parse_args());
    let reqs = Arc::new(build_requests(&a));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let start = Instant::now() + Duration::from_millis(50);
        let record_from = start + Duration::from_secs_f64(a.warmup);
        let end = record_from + Duration::from_secs_f64(a.duration);
        let tasks: Vec<_> = (0..a.connections)
            .map(|c| {
                tokio::spawn(connection(
                    c,
                    a.clone(),
                    reqs.clone(),
                    start,
                    record_from,
                    end,
                ))
            })
            .collect();
        let mut all = Tally::default();
        for task in tasks {
            let t = task.await.expect("connection task");
            all.latencies_us.extend(t.latencies_us);
            all.seconds.extend(t.seconds);
            all.non200 += t.non200;
            all.errors += t.errors;
            all.sent += t.sent;
        }
        // The last answers may land after `end`: the rate is over the window
        // from the first recorded schedule to the last answer.
        let elapsed = (Instant::now() - record_from).as_secs_f64();
        if a.timeline {
            // second, answers, p99 and max of the requests scheduled in it
            let mut by_second: Vec<Vec<u64>> = Vec::new();
            for (&s, &l) in all.seconds.iter().zip(&all.latencies_us) {
                let s = s as usize;
                if by_second.len() <= s {
                    by_second.resize(s + 1, Vec::new());
                }
                by_second[s].push(l);
            }
            for (s, mut l) in by_second.into_iter().enumerate() {
                l.sort_unstable();
                println!(
                    "second {s} answered {} p99_us {} max_us {}",
                    l.len(),
                    percentile(&l, 99.0),
                    l.last().copied().unwrap_or(0)
                );
            }
        }
        let mut l = all.latencies_us;
        l.sort_unstable();
        println!("target_rate {:.0}", a.rate);
        println!("connections {}", a.connections);
        println!("duration_s {:.1}", a.duration);
        println!("sent {}", all.sent);
        println!("answered {}", l.len());
        println!("achieved_rate {:.0}", l.len() as f64 / elapsed);
        println!("non200 {}", all.non200);
        println!("errors {}", all.errors);
        for (name, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9)] {
            println!("{name}_us {}", percentile(&l, p));
        }
        println!("max_us {}", l.last().copied().unwrap_or(0));
    });
}
