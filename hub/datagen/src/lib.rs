//! Demo data: the four base libraries of a city, generated deterministically
//! and published as dataset versions of the demo directory.
//!
//! - [`credentials`]: the demo identities and their tokens;
//! - [`directory`]: the departments and the five resources (items, share types);
//! - [`generate`]: the seeded generators that produce Arrow batches;
//! - this module: registers the directory, streams generated batches into
//!   Parquet dataset versions and records them, with progress bars.
//!
//! A crate of its own so that it builds beside DataFusion rather than after
//! it (docs/build-times.md); the `tongban` binary, the end-to-end tests and
//! the benchmarks use it.
//!
//! Crate ladder (docs/architecture.md): depends on `tongban-policies`,
//! `tongban-catalog` and `tongban-datasets`.

pub mod credentials;
pub mod directory;
pub mod generate;
pub mod services;

/// What can go wrong generating the demo data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Catalog(#[from] tongban_catalog::Error),
    #[error(transparent)]
    Dataset(#[from] tongban_datasets::Error),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// `--scale` is out of range.
    #[error("--scale must be a number in (0, 100], got {0}")]
    Scale(f64),
    /// The demo directory is not as the generator expects (a bug, caught
    /// before anything is served).
    #[error("demo data: {0}")]
    Directory(String),
    /// A file the demo keeps (its credentials) cannot be written or read.
    #[error("{path}: {source}")]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The demo's credentials file cannot be read back.
    #[error("{path}: {message}; delete it to make new tokens")]
    Unreadable {
        path: std::path::PathBuf,
        message: String,
    },
    /// The generator thread panicked.
    #[error("data generator failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn file(path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::File { path, source }
    }
}
use generate::{Dataset, Sizes};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::{Duration, Instant};
use tongban_catalog::{Located, Store};
use tongban_datasets::{self as datasets, DatasetStore, VersionWriter};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// 1.0 = 1,000,000 citizens, 200,000 entities, 500,000 licences, 400,000 addresses.
    pub scale: f64,
    pub seed: u64,
    /// Draw progress bars (on a terminal).
    pub progress: bool,
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct Report {
    pub versions: Vec<tongban_catalog::DatasetVersion>,
    pub rows: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Checks the scale before anything is written.
pub fn check_scale(scale: f64) -> Result<()> {
    if scale.is_finite() && scale > 0.0 && scale <= 100.0 {
        Ok(())
    } else {
        Err(Error::Scale(scale))
    }
}

/// Registers the demo directory (departments and resources; existing entries
/// are updated) and publishes a new version of every base-library dataset.
pub async fn run(store: &dyn Store, datasets: &DatasetStore, options: Options) -> Result<Report> {
    check_scale(options.scale)?;
    let started = Instant::now();
    let departments: Vec<_> = directory::departments()
        .into_iter()
        .map(|value| Located {
            at: format!("demo department {}", value.code),
            value,
        })
        .collect();
    let specs = directory::resources();
    let resources: Vec<_> = specs
        .iter()
        .map(|value| Located {
            at: format!("demo resource {}", value.code),
            value: value.clone(),
        })
        .collect();
    store.import(&departments, &resources).await?;
    install_lists(store).await?;
    // The licence issuers' seal keys, so that licence seals verify.
    for issuer in generate::licence_issuers() {
        store
            .register_seal_key(&tongban_catalog::SealKeyRecord {
                department: issuer.to_string(),
                algorithm: tongban_core::seal::ALGORITHM.to_string(),
                public_key: generate::issuer_seal_key(issuer).public_key(),
                registered_at: chrono::Utc::now(),
            })
            .await?;
    }

    let sizes = Sizes::for_scale(options.scale);
    let bars = MultiProgress::with_draw_target(if options.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template(
        "{prefix:>12} {bar:32.cyan/blue} {human_pos:>9}/{human_len:9} rows {per_sec:>12} {msg}",
    )
    .expect("valid template")
    .progress_chars("=> ");

    // Open a writer and a bar per dataset; check every schema against the
    // directory before a single row is written.
    let mut writers = Vec::new();
    for dataset in Dataset::ALL {
        let spec = specs
            .iter()
            .find(|s| s.code == dataset.resource_code())
            .expect("every generated dataset has a demo resource");
        datasets::check_schema(spec, &dataset.schema())?;
        let version = datasets::next_version(store, &spec.code).await?;
        let writer = datasets.begin(&spec.code, version, dataset.schema())?;
        let bar = bars.add(ProgressBar::new(dataset.rows(&sizes) as u64));
        bar.set_style(style.clone());
        bar.set_prefix(spec.name.clone());
        writers.push((dataset, writer, bar));
    }

    // Generation is CPU work: it runs on a blocking thread and hands batches
    // to this task, which writes them while the next ones are generated.
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let seed = options.seed;
    let generator = tokio::task::spawn_blocking(move || {
        generate::generate(seed, &sizes, &mut |dataset, batch| {
            // The receiver only goes away on a write error, reported below.
            let _ = tx.blocking_send((dataset, batch));
        });
    });
    let origin = format!("datagen seed={} scale={}", options.seed, options.scale);
    let mut report = Report {
        versions: Vec::new(),
        rows: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
    };
    let mut pending: Vec<Option<(Dataset, VersionWriter, ProgressBar)>> =
        writers.into_iter().map(Some).collect();
    let mut current = 0;
    while let Some((dataset, batch)) = rx.recv().await {
        // Datasets arrive in order: publish each as soon as the next starts.
        while pending[current].as_ref().map(|(d, _, _)| *d) != Some(dataset) {
            publish(store, &mut pending[current], &origin, &mut report).await?;
            current += 1;
        }
        let (_, writer, bar) = pending[current].as_mut().expect("current writer is open");
        writer.write(&batch).await?;
        bar.inc(batch.num_rows() as u64);
    }
    generator.await?;
    for slot in pending.iter_mut().skip(current) {
        publish(store, slot, &origin, &mut report).await?;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Installs the demo lists, once: a directory that already has lists keeps them.
/// Needs go through the real workflow (apply, provider reply, office review),
/// plus one imported need that is overdue, so every page has something to show.
async fn install_lists(store: &dyn Store) -> Result<()> {
    use tongban_catalog::Role;
    use tongban_catalog::lists::{Actor, NeedQuery, ReviewAction};
    let has_lists = !store.list_needs(&NeedQuery::default()).await?.is_empty()
        || !store.list_negatives().await?.is_empty()
        || !store.list_responsibilities().await?.is_empty();
    if has_lists {
        return Ok(());
    }
    for n in directory::negatives() {
        store.create_negative(&n).await?;
    }
    for r in directory::responsibilities() {
        store.create_responsibility(&r).await?;
    }
    let office = Actor {
        department: directory::DATA_OFFICE,
        role: Role::DataOffice,
    };
    for (consumer, application, outcome) in directory::needs() {
        let need = store.apply_need(consumer, &application).await?;
        let provider = store.get_resource(&need.resource).await?.spec.provider;
        let provider = Actor {
            department: &provider,
            role: Role::Department,
        };
        match outcome {
            directory::Outcome::Pending => {}
            directory::Outcome::ProviderApproved => {
                store
                    .review_need(
                        need.id,
                        provider,
                        ReviewAction::Approve,
                        "同意共享，请大数据中心审核",
                    )
                    .await?;
            }
            directory::Outcome::Rejected(reason) => {
                store
                    .review_need(need.id, provider, ReviewAction::Reject, reason)
                    .await?;
            }
            directory::Outcome::Approved => {
                if need.status == tongban_policies::NeedStatus::PendingProvider {
                    store
                        .review_need(need.id, provider, ReviewAction::Approve, "同意共享")
                        .await?;
                }
                store
                    .review_need(need.id, office, ReviewAction::Approve, "")
                    .await?;
            }
        }
    }
    for s in directory::subscriptions() {
        let need = store
            .list_needs(&NeedQuery::default())
            .await?
            .into_iter()
            .find(|n| {
                n.consumer == s.consumer
                    && n.resource == s.resource
                    && n.matter == s.matter
                    && n.mode == s.mode
            })
            .ok_or_else(|| Error::Directory(format!("no demo need for subscription {}", s.name)))?;
        store
            .create_subscription(
                s.consumer,
                &tongban_catalog::subscriptions::SubscriptionSpec {
                    name: s.name.into(),
                    resource: s.resource.into(),
                    need: need.id,
                    items: Vec::new(),
                    channel: tongban_catalog::subscriptions::Channel::Pull {},
                },
                None,
            )
            .await?;
    }
    // One need whose provider reply is late, as happens.
    let mut late = store
        .list_needs(&NeedQuery::default())
        .await?
        .last()
        .cloned()
        .expect("demo needs exist");
    let filed = chrono::Utc::now() - chrono::Duration::days(12);
    late.id += 1;
    late.consumer = "pd-zwfw".into();
    late.resource = "101/000001".into();
    late.items = vec!["citizen_id".into(), "marital_status".into()];
    late.matter = "310115-JYBZ-006".into();
    late.mode = tongban_policies::Mode::Lookup;
    late.justification = "就业困难人员认定：核对婚姻状况".into();
    late.status = tongban_policies::NeedStatus::PendingProvider;
    late.submitted_at = filed;
    late.due_at = Some(
        store
            .calendar()
            .await?
            .deadline(filed, tongban_catalog::lists::PROVIDER_REPLY_DAYS),
    );
    late.decided_at = None;
    late.history.clear();
    store
        .import_needs(&[Located {
            at: "demo overdue need".into(),
            value: late,
        }])
        .await?;
    Ok(())
}

async fn publish(
    store: &dyn Store,
    slot: &mut Option<(Dataset, VersionWriter, ProgressBar)>,
    origin: &str,
    report: &mut Report,
) -> Result<()> {
    let (_, writer, bar) = slot.take().expect("each dataset is published once");
    let version = writer.publish(store, origin).await?;
    bar.finish_with_message(format!(
        "v{} {:.1} MiB",
        version.version,
        version.byte_size as f64 / 1048576.0
    ));
    report.rows += version.row_count as u64;
    report.bytes += version.byte_size as u64;
    report.versions.push(version);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated files carry exactly the items the directory promises.
    #[test]
    fn generated_schemas_match_the_directory() {
        let specs = directory::resources();
        for dataset in Dataset::ALL {
            let spec = specs
                .iter()
                .find(|s| s.code == dataset.resource_code())
                .unwrap();
            datasets::check_schema(spec, &dataset.schema()).unwrap();
        }
    }

    #[test]
    fn the_demo_directory_is_valid() {
        for d in directory::departments() {
            tongban_catalog::validate::department(&d).unwrap();
        }
        for r in directory::resources() {
            tongban_catalog::validate::resource(&r).unwrap();
        }
    }

    #[test]
    fn scales_outside_the_range_are_refused() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1000.0] {
            assert!(check_scale(bad).is_err(), "{bad}");
        }
        check_scale(0.001).unwrap();
    }
}
