//! `tongban sync …`: define, run and review sync jobs.

use super::*;

#[derive(Subcommand)]
pub(super) enum SyncCommand {
    /// Define a job. The source is a connector config (docs/connectors.md).
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// A unique name, e.g. population-nightly.
        name: String,
        /// The resource the job publishes, e.g. 101/000001.
        #[arg(long)]
        resource: String,
        /// The connector config as JSON, or @FILE to read it from a file.
        #[arg(long)]
        source: String,
        #[arg(long, value_enum, default_value = "full")]
        mode: SyncModeArg,
        /// Incremental: the column whose growing values mark changed rows.
        #[arg(long)]
        watermark_column: Option<String>,
        /// Incremental: a boolean column marking deleted rows.
        #[arg(long)]
        tombstone_column: Option<String>,
        /// Incremental: find deletes by reading the source's keys in full
        /// each run (for sources without a tombstone column).
        #[arg(long)]
        diff_deletes: bool,
        /// Cron, seconds first, China time: '0 30 2 * * *' is 02:30 daily.
        #[arg(long)]
        schedule: Option<String>,
        /// SQL over the table `source` (DataFusion) whose output the run
        /// publishes, e.g. to rename or derive columns.
        #[arg(long)]
        transform: Option<String>,
        /// Define the job disabled (the scheduler skips it).
        #[arg(long)]
        disabled: bool,
    },
    /// List the jobs with their last run.
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Run a job now and publish a new dataset version.
    Run {
        #[command(flatten)]
        store: StoreArgs,
        name: String,
    },
    /// Show the run history, newest first.
    History {
        #[command(flatten)]
        store: StoreArgs,
        /// Only this job's runs.
        name: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum SyncModeArg {
    Full,
    Incremental,
}

pub(super) async fn run(command: SyncCommand) -> Result<()> {
    use tongban_catalog::sync::{SyncJobSpec, SyncMode};
    match command {
        SyncCommand::Add {
            store,
            name,
            resource,
            source,
            mode,
            watermark_column,
            tombstone_column,
            diff_deletes,
            schedule,
            transform,
            disabled,
        } => {
            let text = match source.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).map_err(Error::file(path))?,
                None => source,
            };
            let source: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::Usage(format!("--source: not JSON: {e}")))?;
            tongban_sync::source_config(&source)?;
            if let Some(sql) = &transform {
                tongban_sync::transform::check(sql)?;
            }
            if let Some(expr) = &schedule {
                tongban_sync::schedule::parse(expr).map_err(Error::Usage)?;
            }
            let store = store.open().await?;
            let job = store
                .create_sync_job(&SyncJobSpec {
                    name,
                    resource,
                    source,
                    mode: match mode {
                        SyncModeArg::Full => SyncMode::Full,
                        SyncModeArg::Incremental => SyncMode::Incremental,
                    },
                    watermark_column,
                    tombstone_column,
                    diff_deletes,
                    schedule,
                    transform,
                    enabled: !disabled,
                })
                .await?;
            println!(
                "added sync job '{}' ({}) for {}",
                job.spec.name, job.spec.mode, job.spec.resource
            );
            Ok(())
        }
        SyncCommand::List { store, json } => {
            let store = store.open().await?;
            let jobs = store.list_sync_jobs().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&jobs).expect("jobs serialise")
                );
                return Ok(());
            }
            println!(
                "{:<24} {:<12} {:<12} {:<10} {:<16} {:<12} LAST RUN",
                "NAME", "RESOURCE", "MODE", "SOURCE", "SCHEDULE", "WATERMARK"
            );
            for job in jobs {
                let last = store.list_sync_runs(Some(&job.spec.name), 1).await?;
                let last = last.first().map_or("never".to_string(), |r| {
                    format!(
                        "#{} {} {}",
                        r.id,
                        r.outcome,
                        r.started_at.format("%Y-%m-%d %H:%M")
                    )
                });
                println!(
                    "{:<24} {:<12} {:<12} {:<10} {:<16} {:<12} {}",
                    job.spec.name,
                    job.spec.resource,
                    job.spec.mode.as_str(),
                    job.spec
                        .source
                        .get("type")
                        .and_then(|t| t.as_str())
                        .unwrap_or("?"),
                    job.spec.schedule.as_deref().unwrap_or("-"),
                    job.watermark.as_deref().unwrap_or("-"),
                    last
                );
            }
            Ok(())
        }
        SyncCommand::Run { store: args, name } => {
            let config = args.config()?;
            let store = args.open().await?;
            let ctx = tongban_sync::SyncContext {
                store: std::sync::Arc::new(store),
                datasets: tongban_datasets::DatasetStore::open(
                    config.object_store.as_ref(),
                    &config.data_dir,
                )?,
            };
            let bar = if std::io::stderr().is_terminal() {
                indicatif::ProgressBar::new_spinner()
            } else {
                indicatif::ProgressBar::hidden()
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .expect("a valid template"),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            let started = std::time::Instant::now();
            let report = |p: tongban_sync::Progress| {
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                bar.set_message(format!(
                    "{} rows, {:.1} MiB read ({:.0} rows/s, {:.1} MiB/s), {} quarantined",
                    p.rows_read,
                    p.bytes_read as f64 / 1048576.0,
                    p.rows_read as f64 / secs,
                    p.bytes_read as f64 / 1048576.0 / secs,
                    p.rows_quarantined
                ));
            };
            let result = tongban_sync::run_job(&ctx, &name, &report).await;
            bar.finish_and_clear();
            let run = result?;
            print_run(&run);
            Ok(())
        }
        SyncCommand::History {
            store,
            name,
            limit,
            json,
        } => {
            let store = store.open().await?;
            let runs = store.list_sync_runs(name.as_deref(), limit).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&runs).expect("runs serialise")
                );
                return Ok(());
            }
            println!(
                "{:>5} {:<24} {:<16} {:<11} {:>9} {:>10} {:>11} {:>9} {:>8} {:>8}  ERROR",
                "RUN",
                "JOB",
                "STARTED",
                "OUTCOME",
                "VERSION",
                "ROWS",
                "QUARANTINED",
                "MiB",
                "SECONDS",
                "+/~/-"
            );
            let now = chrono::Utc::now();
            for r in runs {
                println!(
                    "{:>5} {:<24} {:<16} {:<11} {:>9} {:>10} {:>11} {:>9.1} {:>8.1} {:>8}  {}",
                    r.id,
                    r.job,
                    r.started_at.format("%Y-%m-%d %H:%M"),
                    r.outcome.as_str(),
                    r.version.map_or("-".into(), |v| format!("v{v}")),
                    r.counts.rows_written,
                    r.counts.rows_quarantined,
                    r.counts.bytes as f64 / 1048576.0,
                    r.duration_s(now),
                    format!(
                        "{}/{}/{}",
                        r.counts.inserts, r.counts.updates, r.counts.deletes
                    ),
                    r.error.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
    }
}

fn print_run(r: &tongban_catalog::sync::SyncRun) {
    println!(
        "run {} of '{}': {} — {} v{} with {} rows ({:.1} MiB) in {:.1} s; read {}, quarantined {}{}; changes +{} ~{} -{}",
        r.id,
        r.job,
        r.outcome,
        r.resource,
        r.version.unwrap_or(0),
        r.counts.rows_written,
        r.counts.bytes as f64 / 1048576.0,
        r.duration_s(chrono::Utc::now()),
        r.counts.rows_read,
        r.counts.rows_quarantined,
        r.quarantine
            .as_deref()
            .map_or(String::new(), |q| format!(" (see {q})")),
        r.counts.inserts,
        r.counts.updates,
        r.counts.deletes,
    );
}
