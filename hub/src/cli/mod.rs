//! The `tongban` command line: one file per command group.
//!
//! # Layout
//! - this file: the argument tree, `demo`, `serve` and `datagen`, the store
//!   options every command shares (`StoreArgs`), and error printing;
//! - `catalog`, `lists`, `objection`, `service`, `sync`, `subscription`, `sharing`, `audit`,
//!   `tokens` (`token` and `cert`), `config`: each group's subcommands and
//!   what they do.

mod audit;
mod catalog;
mod config;
mod lists;
mod objection;
mod service;
mod sharing;
mod subscription;
mod sync;
mod tokens;

use crate::server::{Server, shutdown_signal};
use crate::{Error, Result, datagen, demo};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use tongban_catalog::{ResourceQuery, SqlStore, Store, exchange};
use tongban_core::config::{Config, DEFAULT_DATA_DIR, DEFAULT_LISTEN, LogFormat};

#[derive(Parser)]
#[command(
    name = "tongban",
    version,
    about = "Tongban (通办): a government data-sharing exchange hub"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate demo data if missing, then run a hub on it with demo tokens.
    Demo {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: String,
        /// 1 = a city slice of 1,000,000 citizens, 200,000 legal entities,
        /// 500,000 licences and 400,000 addresses; 0.01 = a hundredth of it.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// How the API's connections are served: `shared` or `per_core`
        /// (one single-threaded runtime per core; `http_runtime` in the
        /// configuration file).
        #[arg(long, default_value = "shared")]
        http_runtime: tongban_core::config::HttpRuntime,
    },
    /// Run the demo's three department systems (人社局, 税务局, 公积金中心) on
    /// their own ports, on the people and companies of a demo data directory.
    DemoProviders {
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// The seed the demo data was made with.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Ports of social insurance, tax and housing fund (0 = any free one).
        #[arg(long, value_delimiter = ',', default_values_t = demo::PROVIDER_PORTS)]
        ports: Vec<u16>,
    },
    /// Run the hub with a configuration file.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Generate the four base libraries and publish them as new dataset versions.
    Datagen {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Read and edit the resource directory.
    Catalog {
        #[command(subcommand)]
        command: catalog::CatalogCommand,
    },
    /// Export and import the needs, negative and responsibility lists.
    Lists {
        #[command(subcommand)]
        command: lists::ListsCommand,
    },
    /// Provider APIs called through the hub (接口共享): register, import, switch.
    Service {
        #[command(subcommand)]
        command: service::ServiceCommand,
    },
    /// Define, run and inspect sync jobs (a provider's source → a resource).
    Sync {
        #[command(subcommand)]
        command: sync::SyncCommand,
    },
    /// Subscriptions and their deliveries.
    Subscription {
        #[command(subcommand)]
        command: subscription::SubscriptionCommand,
    },
    /// Delta Sharing: profile files for recipients.
    Sharing {
        #[command(subcommand)]
        command: sharing::SharingCommand,
    },
    /// Objections to records (异议核实与纠错): list (overdue ones) and show.
    Objection {
        #[command(subcommand)]
        command: objection::ObjectionCommand,
    },
    /// Check and search the audit log.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Register client certificates (mTLS) to departments.
    Cert {
        #[command(subcommand)]
        command: tokens::CertCommand,
    },
    /// Register and list the public keys departments seal licences with (SM2).
    SealKey {
        #[command(subcommand)]
        command: tokens::SealKeyCommand,
    },
    /// Issue and list API tokens.
    Token {
        #[command(subcommand)]
        command: tokens::TokenCommand,
    },
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum FileFormat {
    /// The whole directory: departments and resources.
    Json,
    /// Resources only, one row per data item.
    Csv,
}

/// Which catalog to open: a config file's, a store URL, or a data directory's.
#[derive(Args)]
struct StoreArgs {
    /// Use the store of this configuration file.
    #[arg(long, conflicts_with_all = ["data_dir", "store_url"])]
    config: Option<PathBuf>,
    /// Use the embedded catalog of this data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use this store (sqlite://PATH or postgres://...).
    #[arg(long, conflicts_with = "data_dir")]
    store_url: Option<String>,
}

impl StoreArgs {
    fn config(&self) -> Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.store_url {
            config.store_url = Some(url.clone());
        }
        config.validate()?;
        Ok(config)
    }

    async fn open(&self) -> Result<SqlStore> {
        let config = self.config()?;
        if config.store_url.is_none() {
            std::fs::create_dir_all(&config.data_dir).map_err(Error::file(&config.data_dir))?;
        }
        Ok(SqlStore::open(&config.store_url()).await?)
    }
}

/// The log's format: `TONGBAN_LOG_FORMAT` (`text` or `json`), else, for
/// `serve`, the configuration file's `log_format`, else text.
fn log_format(cli: &Cli) -> LogFormat {
    match std::env::var("TONGBAN_LOG_FORMAT").as_deref() {
        Ok("json") => return LogFormat::Json,
        Ok("text") => return LogFormat::Text,
        _ => {}
    }
    match &cli.command {
        // A file that does not load is reported when `serve` loads it.
        Command::Serve { config } => Config::load(config).map_or(LogFormat::Text, |c| c.log_format),
        _ => LogFormat::Text,
    }
}

/// Parses arguments, runs the command, prints errors as one clear message.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "tongban=info,tower_http=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log_format(&cli) {
        LogFormat::Text => logs.init(),
        // One JSON object a line: time, level, target, message, fields.
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Demo {
            data_dir,
            listen,
            scale,
            seed,
            http_runtime,
        } => {
            demo::run(demo::DemoArgs {
                data_dir,
                listen,
                scale,
                seed,
                http_runtime,
            })
            .await
        }
        Command::Serve { config } => {
            let config = Config::load(&config)?;
            let server = Server::bind(&config).await?;
            tracing::info!(
                addr = %server.local_addr(),
                replica = %config.replica(),
                data_dir = %config.data_dir.display(),
                datasets = %server.datasets_root(),
                flight = ?server.flight_addr(),
                metrics = ?server.metrics_addr(),
                "tongban serving"
            );
            Ok(server.serve(shutdown_signal()).await?)
        }
        Command::Datagen {
            store: args,
            scale,
            seed,
        } => {
            datagen::check_scale(scale)?;
            let config = args.config()?;
            let store = args.open().await?;
            let datasets = tongban_datasets::DatasetStore::open(
                config.object_store.as_ref(),
                &config.data_dir,
            )?;
            let report = datagen::run(
                &store,
                &datasets,
                datagen::Options {
                    scale,
                    seed,
                    progress: std::io::stderr().is_terminal(),
                },
            )
            .await?;
            for v in &report.versions {
                println!(
                    "{:<12} v{:<3} {:>9} rows {:>8.1} MiB  {}",
                    v.resource,
                    v.version,
                    v.row_count,
                    v.byte_size as f64 / 1048576.0,
                    v.location
                );
            }
            println!(
                "generated {} rows, {:.1} MiB, in {:.1} s",
                report.rows,
                report.bytes as f64 / 1048576.0,
                report.elapsed.as_secs_f64()
            );
            Ok(())
        }
        Command::Catalog { command } => catalog::run(command).await,
        Command::Service { command } => service::run(command).await,
        Command::DemoProviders {
            data_dir,
            seed,
            host,
            ports,
        } => {
            let ports: [u16; 3] = ports.try_into().map_err(|_| {
                Error::Usage("--ports takes three ports, e.g. 7301,7302,7303".into())
            })?;
            let store = SqlStore::open_dir(&data_dir).await?;
            let datasets = tongban_datasets::DatasetStore::local(&data_dir)?;
            let registry = crate::providers::Registry::load(&store, &datasets, seed).await?;
            let running =
                crate::providers::start(std::sync::Arc::new(registry), &host, ports).await?;
            for r in &running {
                println!("{:<22} http://{}  ({})", r.name, r.addr, r.department);
            }
            shutdown_signal().await;
            Ok(())
        }
        Command::Sync { command } => sync::run(command).await,
        Command::Subscription { command } => subscription::run(command).await,
        Command::Sharing { command } => sharing::run(command).await,
        Command::Audit { command } => audit::run(command).await,
        Command::Token { command } => tokens::token(command).await,
        Command::Cert { command } => tokens::cert(command).await,
        Command::SealKey { command } => tokens::seal_key(command).await,
        Command::Config { command } => config::run(command),
        Command::Lists { command } => lists::run(command).await,
        Command::Objection { command } => objection::run(command).await,
    }
}

fn format_of(file: &std::path::Path, format: Option<FileFormat>) -> Result<FileFormat> {
    match format {
        Some(f) => Ok(f),
        None => match file.extension().and_then(|e| e.to_str()) {
            Some("json") => Ok(FileFormat::Json),
            Some("csv") => Ok(FileFormat::Csv),
            _ => Err(Error::Usage(format!(
                "cannot tell the format of {}; pass --format json|csv",
                file.display()
            ))),
        },
    }
}
