//! Index build benchmark (DESIGN §6: an index over 10M population rows from
//! Parquet in under 10 s, memory within 2× the Arrow size).
//!
//! Reads a dataset version the way the hub does (`DatasetStore::read_version`:
//! the Parquet files into Arrow batches) and builds its lookup index the way
//! the hub does (`Index::build`: one batch, the key map, secondary maps),
//! timing each step and reporting the Arrow size of the data, the index's own
//! account of its memory (`Index::memory_bytes`) and the process's resident
//! memory. Run by `benches/index/run.sh`.
//!
//! Usage: index-build DATA_DIR RESOURCE VERSION KEY_ITEM [SECONDARY_ITEM ...]

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;
use tongban_datasets::DatasetStore;
use tongban_lookup::index::Index;

/// Resident memory of this process, in bytes (`VmRSS`).
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The folder of `version` of `resource` under the data dir: writers name
/// it `v{version}-<suffix>` (the catalog records which); a data dir fresh
/// from `tongban datagen` holds one per version.
fn version_location(
    data_dir: &std::path::Path,
    resource: &str,
    version: i64,
) -> Result<String, Box<dyn std::error::Error>> {
    let plain = DatasetStore::location(resource, version);
    let (folder, name) = plain.split_once('/').expect("resource-dashed/vN");
    let dir = data_dir.join("datasets").join(folder);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry?.file_name().to_string_lossy().into_owned();
        let tagged = entry.strip_prefix(name).is_some_and(|rest| {
            rest.is_empty() || (rest.starts_with('-') && !rest.ends_with("-changes"))
        });
        if tagged {
            found.push(format!("{folder}/{entry}"));
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("no folder of version {version} in {}", dir.display()).into()),
        many => Err(format!("several folders of version {version}: {many:?}; keep one").into()),
    }
}

fn mib(bytes: usize) -> String {
    format!("{:.1}", bytes as f64 / (1 << 20) as f64)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data_dir, resource, version, key, secondary @ ..] = args.as_slice() else {
        return Err(
            "usage: index-build DATA_DIR RESOURCE VERSION KEY_ITEM [SECONDARY_ITEM ...]".into(),
        );
    };
    let version: i64 = version.parse()?;
    let store = DatasetStore::local(std::path::Path::new(data_dir))?;
    let rss_start = rss();

    let location = version_location(std::path::Path::new(data_dir), resource, version)?;
    let started = Instant::now();
    let batches = store.read_version(&location).await?;
    let read_s = started.elapsed().as_secs_f64();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let arrow_bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let rss_read = rss();

    let started = Instant::now();
    let index = Index::build(
        resource,
        version,
        chrono::Utc::now(),
        std::slice::from_ref(key),
        secondary,
        &batches,
    )?;
    let build_s = started.elapsed().as_secs_f64();
    let rss_peak = rss();
    drop(batches);
    // Give the allocator a moment to hand the read batches' pages back.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let rss_index = rss();
    let index_bytes = index.memory_bytes();
    let found = (0..1000.min(rows))
        .filter(|&i| {
            let keys = index.batch.column_by_name(key).expect("key column");
            let keys = arrow::compute::cast(keys, &arrow::datatypes::DataType::Utf8).expect("text");
            let keys = keys
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .expect("Utf8");
            index.row(keys.value(i * (rows / 1000).max(1))).is_some()
        })
        .count();

    println!("rows {rows}");
    println!("read_s {read_s:.3}");
    println!("build_s {build_s:.3}");
    println!("total_s {:.3}", read_s + build_s);
    println!("arrow_mib {}", mib(arrow_bytes));
    println!("index_mib {}", mib(index_bytes));
    println!(
        "index_over_arrow {:.2}",
        index_bytes as f64 / arrow_bytes as f64
    );
    println!("rss_start_mib {}", mib(rss_start));
    println!("rss_after_read_mib {}", mib(rss_read));
    println!("rss_peak_build_mib {}", mib(rss_peak));
    println!("rss_index_only_mib {}", mib(rss_index));
    println!(
        "rss_index_over_arrow {:.2}",
        rss_index.saturating_sub(rss_start) as f64 / arrow_bytes as f64
    );
    println!("sampled_keys_found {found} of {}", 1000.min(rows));
    Ok(())
}
