//! The `tongban` command line.

use crate::server::{Server, shutdown_signal};
use crate::{Error, Result, datagen, demo};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use tongban_catalog::{ResourceQuery, SqlStore, Store, exchange};
use tongban_core::config::{Config, DEFAULT_DATA_DIR, DEFAULT_LISTEN};

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
        command: CatalogCommand,
    },
    /// Export and import the needs, negative and responsibility lists.
    Lists {
        #[command(subcommand)]
        command: ListsCommand,
    },
    /// Define, run and inspect sync jobs (a provider's source → a resource).
    Sync {
        #[command(subcommand)]
        command: SyncCommand,
    },
    /// Subscriptions and their deliveries.
    Subscription {
        #[command(subcommand)]
        command: SubscriptionCommand,
    },
    /// Delta Sharing: profile files for recipients.
    Sharing {
        #[command(subcommand)]
        command: SharingCommand,
    },
    /// Check and search the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Register client certificates (mTLS) to departments.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Issue and list API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// List resources (all pages).
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Text search over codes, names, summaries and items.
        #[arg(long)]
        q: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one resource with its items and versions.
    Show {
        #[command(flatten)]
        store: StoreArgs,
        /// Resource code, e.g. 101/000001.
        code: String,
        #[arg(long)]
        json: bool,
    },
    /// Create or update departments and resources from a file, all or nothing.
    Import {
        #[command(flatten)]
        store: StoreArgs,
        file: PathBuf,
        /// Defaults to the file's extension.
        #[arg(long, value_enum)]
        format: Option<FileFormat>,
    },
    /// Write the directory to a file or standard output.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "json")]
        format: FileFormat,
        /// Output file; standard output if absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SyncCommand {
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
enum SyncModeArg {
    Full,
    Incremental,
}

#[derive(Subcommand)]
enum ListsCommand {
    /// Write a list to a file or standard output.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(value_enum)]
        list: ListArg,
        #[arg(long, value_enum, default_value = "json")]
        format: FileFormat,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Create or replace list entries by id from a file, all or nothing.
    Import {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(value_enum)]
        list: ListArg,
        file: PathBuf,
        /// Defaults to the file's extension.
        #[arg(long, value_enum)]
        format: Option<FileFormat>,
    },
}

#[derive(Subcommand)]
enum SubscriptionCommand {
    /// Subscribe a department to a resource under one of its approved needs
    /// (mode subscribe or batch).
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// Unique among the consumer's subscriptions; the Delta Sharing table name.
        name: String,
        /// The subscribing department, e.g. xh-zwfw.
        #[arg(long)]
        consumer: String,
        /// Resource code, e.g. 101/000001.
        #[arg(long)]
        resource: String,
        /// The need's id.
        #[arg(long)]
        need: i64,
        /// Items to deliver, comma-separated; default: the need's items.
        #[arg(long, value_delimiter = ',')]
        items: Vec<String>,
        /// The channel as JSON, or @FILE: {"type":"pull"} (default),
        /// {"type":"webhook","url":"https://…","format":"ndjson"|"parquet"},
        /// {"type":"postgres","url":"postgres://user@host/db","table":"t","password_env":"PGPASS"}.
        #[arg(long, default_value = r#"{"type":"pull"}"#)]
        channel: String,
    },
    /// List subscriptions with their cursor and status.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Only this department's.
        #[arg(long)]
        consumer: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A push subscription's deliveries, newest first.
    Deliveries {
        #[command(flatten)]
        store: StoreArgs,
        id: i64,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a subscription: nothing more is delivered.
    Cancel {
        #[command(flatten)]
        store: StoreArgs,
        id: i64,
        #[arg(long, default_value = "cancelled from the command line")]
        reason: String,
    },
}

#[derive(Subcommand)]
enum SharingCommand {
    /// Issue a token for a recipient department and write its Delta Sharing
    /// profile file (the token is in the file only; it is stored hashed).
    Profile {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        department: String,
        /// The hub's base URL as the recipient reaches it, e.g. https://tongban.example.gov.cn
        #[arg(long)]
        endpoint: String,
        /// Where to write the profile (readable by its owner only).
        #[arg(long, default_value = "config.share")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; fails at the first edited, removed or reordered record.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Who looked a citizen ID, credit code or other key up, when, and for which matter.
    Trace {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        key: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ListArg {
    /// 需求清单
    Needs,
    /// 负面清单
    Negative,
    /// 责任清单
    Responsibilities,
}

#[derive(Subcommand)]
enum CertCommand {
    /// Register a client certificate (PEM): requests presenting it act as the department.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        department: String,
        #[arg(long, value_enum, default_value = "department")]
        role: RoleArg,
        #[arg(long)]
        label: String,
        /// The client's certificate, PEM.
        #[arg(long)]
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token for a department; it is printed once and stored hashed.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// Department code, e.g. sh-zwfw.
        #[arg(long)]
        department: String,
        #[arg(long, value_enum, default_value = "department")]
        role: RoleArg,
        /// What the token is for, e.g. "acceptance system, production".
        #[arg(long)]
        label: String,
    },
    /// List tokens (labels and departments; tokens themselves are not kept).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    /// Reads the directory, applies for needs, looks up and subscribes under them.
    Department,
    /// Edits the directory and the lists.
    DataOffice,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file without starting anything.
    Check { file: PathBuf },
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

/// Parses arguments, runs the command, prints errors as one clear message.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tongban_hub=info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
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
        } => {
            demo::run(demo::DemoArgs {
                data_dir,
                listen,
                scale,
                seed,
            })
            .await
        }
        Command::Serve { config } => {
            let config = Config::load(&config)?;
            let server = Server::bind(&config).await?;
            tracing::info!(addr = %server.local_addr(), data_dir = %config.data_dir.display(), "tongban serving");
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
            let report = datagen::run(
                &store,
                &config.data_dir,
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
        Command::Catalog { command } => catalog(command).await,
        Command::Sync { command } => sync(command).await,
        Command::Subscription { command } => subscription(command).await,
        Command::Sharing {
            command:
                SharingCommand::Profile {
                    store,
                    department,
                    endpoint,
                    out,
                },
        } => {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(Error::Usage(format!(
                    "--endpoint: '{endpoint}' is not an http:// or https:// URL"
                )));
            }
            let store = store.open().await?;
            store.get_department(&department).await?;
            let token = tongban_core::auth::issue(
                &store,
                &department,
                tongban_catalog::Role::Department,
                format!("delta-sharing {department} (cli)"),
            )
            .await?;
            let profile = crate::delivery::sharing_profile(
                &format!("{}/delta-sharing", endpoint.trim_end_matches('/')),
                &token,
            );
            crate::demo::write_private(
                &out,
                &serde_json::to_string_pretty(&profile).expect("json"),
            )?;
            println!(
                "wrote {} for {department}; a running hub accepts its token within 10 s",
                out.display()
            );
            Ok(())
        }
        Command::Lists { command } => lists(command).await,
        Command::Audit {
            command: AuditCommand::Verify { store },
        } => {
            let config = store.config()?;
            let dir = config.data_dir.join("audit");
            match tongban_audit::verify(&dir)? {
                Ok(n) => {
                    println!("audit log intact: {n} records in {}", dir.display());
                    Ok(())
                }
                Err(b) => Err(Error::AuditBroken {
                    file: b.file,
                    line: b.line,
                    problem: b.problem,
                }),
            }
        }
        Command::Audit {
            command: AuditCommand::Trace { store, key, json },
        } => {
            let config = store.config()?;
            let secret = config.mask_hash_key()?;
            // Keys are recorded as the lookups normalise them.
            let key = key.trim().to_ascii_uppercase();
            let records =
                tongban_audit::trace(&config.data_dir.join("audit"), secret.as_bytes(), &key)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&records).expect("records serialise")
                );
                return Ok(());
            }
            println!(
                "{:<20} {:<10} {:<11} {:<7} {:<16} {:<18} {:<9} ITEMS",
                "TIME (UTC)", "CONSUMER", "RESOURCE", "MODE", "MATTER", "CASE", "OUTCOME"
            );
            for r in &records {
                let e = &r.event;
                println!(
                    "{:<20} {:<10} {:<11} {:<7} {:<16} {:<18} {:<9} {}",
                    e.time.format("%Y-%m-%d %H:%M:%S"),
                    e.consumer,
                    e.resource,
                    e.mode,
                    e.matter,
                    e.case,
                    e.outcome,
                    e.items.join(",")
                );
            }
            println!("{} lookups of this key", records.len());
            Ok(())
        }
        Command::Token {
            command:
                TokenCommand::Add {
                    store,
                    department,
                    role,
                    label,
                },
        } => {
            let store = store.open().await?;
            let role = match role {
                RoleArg::Department => tongban_catalog::Role::Department,
                RoleArg::DataOffice => tongban_catalog::Role::DataOffice,
            };
            let token = tongban_core::auth::issue(&store, &department, role, label).await?;
            eprintln!(
                "Keep this token now: it is stored only as a hash. Running hubs pick it up within {} s.",
                crate::server::IDENTITY_REFRESH.as_secs()
            );
            println!("{token}");
            Ok(())
        }
        Command::Cert {
            command:
                CertCommand::Add {
                    store,
                    department,
                    role,
                    label,
                    file,
                },
        } => {
            let fingerprint = tongban_core::tls::fingerprint_of_file(&file)?;
            let store = store.open().await?;
            store
                .put_token(&tongban_catalog::TokenRecord {
                    token_hash: tongban_core::auth::certificate_key(&fingerprint),
                    department: department.clone(),
                    role: match role {
                        RoleArg::Department => tongban_catalog::Role::Department,
                        RoleArg::DataOffice => tongban_catalog::Role::DataOffice,
                    },
                    label,
                })
                .await?;
            println!("registered certificate {fingerprint} for {department}");
            Ok(())
        }
        Command::Token {
            command: TokenCommand::List { store },
        } => {
            let store = store.open().await?;
            println!("{:<14} {:<12} {:<14} LABEL", "DEPARTMENT", "ROLE", "HASH");
            for t in store.list_tokens().await? {
                println!(
                    "{:<14} {:<12} {:<14} {}",
                    t.department,
                    t.role,
                    &t.token_hash[..12],
                    t.label
                );
            }
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => {
            let config = Config::load(&file)?;
            println!("{}: ok", file.display());
            println!("  listen          {}", config.listen);
            println!("  data_dir        {}", config.data_dir.display());
            println!(
                "  store           {}",
                config
                    .store_url
                    .as_deref()
                    .unwrap_or("embedded SQLite in data_dir")
            );
            println!("  max_body_bytes  {}", config.max_body_bytes);
            Ok(())
        }
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

async fn lists(command: ListsCommand) -> Result<()> {
    use tongban_catalog::list_exchange::{self as lx, ListFile};
    use tongban_catalog::lists::{NeedQuery, NeedRecord, NegativeRecord, ResponsibilityRecord};
    fn render<T: ListFile>(records: &[T], format: FileFormat) -> String {
        match format {
            FileFormat::Json => lx::to_json(records),
            FileFormat::Csv => lx::to_csv(records),
        }
    }
    fn parse<T: ListFile>(
        text: &str,
        format: FileFormat,
    ) -> tongban_catalog::Result<Vec<tongban_catalog::Located<T>>> {
        match format {
            FileFormat::Json => lx::from_json(text),
            FileFormat::Csv => lx::from_csv(text),
        }
    }
    match command {
        ListsCommand::Export {
            store,
            list,
            format,
            out,
        } => {
            let store = store.open().await?;
            let text = match list {
                ListArg::Needs => render(&store.list_needs(&NeedQuery::default()).await?, format),
                ListArg::Negative => render(&store.list_negatives().await?, format),
                ListArg::Responsibilities => render(&store.list_responsibilities().await?, format),
            };
            match out {
                Some(path) => std::fs::write(&path, &text).map_err(Error::file(&path))?,
                None => print!("{text}"),
            }
            Ok(())
        }
        ListsCommand::Import {
            store,
            list,
            file,
            format,
        } => {
            let format = format_of(&file, format)?;
            let text = std::fs::read_to_string(&file).map_err(Error::file(&file))?;
            let fail = |e: tongban_catalog::Error| {
                Error::Usage(format!("{}: {e}; nothing was imported", file.display()))
            };
            let store = store.open().await?;
            let counts = match list {
                ListArg::Needs => {
                    store
                        .import_needs(&parse::<NeedRecord>(&text, format).map_err(fail)?)
                        .await
                }
                ListArg::Negative => {
                    store
                        .import_negatives(&parse::<NegativeRecord>(&text, format).map_err(fail)?)
                        .await
                }
                ListArg::Responsibilities => {
                    store
                        .import_responsibilities(
                            &parse::<ResponsibilityRecord>(&text, format).map_err(fail)?,
                        )
                        .await
                }
            }
            .map_err(fail)?;
            println!(
                "imported {} into the {:?} list: {} created, {} updated",
                file.display(),
                list,
                counts.created,
                counts.updated
            );
            Ok(())
        }
    }
}

async fn subscription(command: SubscriptionCommand) -> Result<()> {
    use tongban_catalog::subscriptions::{Channel, SubscriptionSpec, SubscriptionStatus};
    match command {
        SubscriptionCommand::Add {
            store,
            name,
            consumer,
            resource,
            need,
            items,
            channel,
        } => {
            let text = match channel.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).map_err(Error::file(path))?,
                None => channel,
            };
            let channel: Channel =
                serde_json::from_str(&text).map_err(|e| Error::Usage(format!("--channel: {e}")))?;
            let secret = matches!(channel, Channel::Webhook { .. }).then(|| {
                format!(
                    "whsec_{}",
                    tongban_core::auth::new_token().trim_start_matches("tb_")
                )
            });
            let store = store.open().await?;
            let sub = store
                .create_subscription(
                    &consumer,
                    &SubscriptionSpec {
                        name,
                        resource,
                        need,
                        items,
                        channel,
                    },
                    secret,
                )
                .await?;
            println!(
                "subscription {} '{}': {} → {} ({}), items {}",
                sub.id,
                sub.spec.name,
                sub.spec.resource,
                sub.consumer,
                sub.spec.channel.kind(),
                sub.spec.items.join(",")
            );
            if let Some(secret) = &sub.secret {
                println!("webhook signing secret (shown once): {secret}");
            }
            Ok(())
        }
        SubscriptionCommand::List {
            store,
            consumer,
            json,
        } => {
            let store = store.open().await?;
            let subs = store.list_subscriptions(consumer.as_deref()).await?;
            if json {
                let subs: Vec<_> = subs
                    .into_iter()
                    .map(|mut s| {
                        s.secret = None;
                        s
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&subs).expect("json"));
                return Ok(());
            }
            println!(
                "{:<4} {:<10} {:<20} {:<11} {:<9} {:<9} {:<6} MATTER",
                "ID", "CONSUMER", "NAME", "RESOURCE", "CHANNEL", "STATUS", "CURSOR"
            );
            for s in subs {
                println!(
                    "{:<4} {:<10} {:<20} {:<11} {:<9} {:<9} {:<6} {}",
                    s.id,
                    s.consumer,
                    s.spec.name,
                    s.spec.resource,
                    s.spec.channel.kind(),
                    s.status,
                    s.cursor.map_or("-".to_string(), |c| format!("v{c}")),
                    s.matter
                );
            }
            Ok(())
        }
        SubscriptionCommand::Deliveries {
            store,
            id,
            limit,
            json,
        } => {
            let store = store.open().await?;
            store.get_subscription(id).await?;
            let deliveries = store.list_deliveries(id, limit).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&deliveries).expect("json")
                );
                return Ok(());
            }
            println!(
                "{:<6} {:<8} {:<10} {:<8} {:>8} {:>10} {:<20} ERROR",
                "ID", "VERSION", "STATUS", "KIND", "ATTEMPTS", "ROWS", "DELIVERED (UTC)"
            );
            for d in deliveries {
                println!(
                    "{:<6} v{:<7} {:<10} {:<8} {:>8} {:>10} {:<20} {}",
                    d.id,
                    d.version,
                    d.status,
                    d.kind.as_deref().unwrap_or("-"),
                    d.attempts,
                    d.rows.map_or("-".to_string(), |r| r.to_string()),
                    d.delivered_at.map_or("-".to_string(), |t| t
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string()),
                    d.last_error.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        SubscriptionCommand::Cancel { store, id, reason } => {
            let store = store.open().await?;
            let sub = store
                .set_subscription_status(id, SubscriptionStatus::Cancelled, Some(&reason))
                .await?;
            println!("subscription {} '{}' cancelled", sub.id, sub.spec.name);
            Ok(())
        }
    }
}

async fn sync(command: SyncCommand) -> Result<()> {
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
                datasets: tongban_datasets::DatasetStore::local(&config.data_dir)?,
                data_dir: config.data_dir.clone(),
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

async fn catalog(command: CatalogCommand) -> Result<()> {
    match command {
        CatalogCommand::List { store, q, json } => {
            let store = store.open().await?;
            let mut all = Vec::new();
            let mut query = ResourceQuery {
                q,
                page_size: Some(200),
                ..Default::default()
            };
            for page in 1.. {
                query.page = Some(page);
                let p = store.list_resources(&query).await?;
                let done = (page as i64) * 200 >= p.total;
                all.extend(p.items);
                if done {
                    break;
                }
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&all).expect("serialises")
                );
            } else {
                println!(
                    "{:<12} {:<10} {:<10} {:<9} {:>5} {:>8}  NAME",
                    "CODE", "PROVIDER", "CATEGORY", "STATUS", "ITEMS", "VERSION"
                );
                for r in &all {
                    let s = &r.spec;
                    let version = r
                        .latest_version
                        .as_ref()
                        .map_or("-".to_string(), |v| format!("v{}", v.version));
                    println!(
                        "{:<12} {:<10} {:<10} {:<9} {:>5} {:>8}  {}",
                        s.code,
                        s.provider,
                        s.category,
                        r.status(),
                        s.items.len(),
                        version,
                        s.name
                    );
                }
                println!("{} resources", all.len());
            }
            Ok(())
        }
        CatalogCommand::Show { store, code, json } => {
            let store = store.open().await?;
            let r = store.get_resource(&code).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r).expect("serialises"));
                return Ok(());
            }
            let s = &r.spec;
            println!("{}  {}", s.code, s.name);
            println!("  provider      {}", s.provider);
            println!(
                "  category      {}{}",
                s.category,
                s.base_library
                    .map(|b| format!(" ({b})"))
                    .unwrap_or_default()
            );
            println!(
                "  status        {} (description version {})",
                r.status(),
                r.version
            );
            println!("  update cycle  {}", s.update_cycle);
            println!("  key items     {}", s.key_items.join(", "));
            println!("  summary       {}", s.summary);
            println!("  items:");
            for i in &s.items {
                println!(
                    "    {:<20} {:<18} {:<10} {:<16} {}",
                    i.name, i.data_type, i.share_type, i.sensitivity, i.label
                );
            }
            let versions = store.list_versions(&code).await?;
            println!("  versions:");
            for v in versions.iter().take(10) {
                println!(
                    "    v{:<4} {} {:>9} rows {:>8.1} MiB  {}",
                    v.version,
                    v.created_at.format("%Y-%m-%d %H:%M:%S"),
                    v.row_count,
                    v.byte_size as f64 / 1048576.0,
                    v.origin
                );
            }
            Ok(())
        }
        CatalogCommand::Import {
            store,
            file,
            format,
        } => {
            let format = format_of(&file, format)?;
            let text = std::fs::read_to_string(&file).map_err(Error::file(&file))?;
            let parsed = match format {
                FileFormat::Json => exchange::from_json(&text),
                FileFormat::Csv => exchange::from_csv(&text),
            }
            .map_err(|e| Error::Usage(format!("{}: {e}; nothing was imported", file.display())))?;
            let store = store.open().await?;
            let report = store
                .import(&parsed.departments, &parsed.resources)
                .await
                .map_err(|e| {
                    Error::Usage(format!("{}: {e}; nothing was imported", file.display()))
                })?;
            println!(
                "imported {}: departments {} created, {} updated; resources {} created, {} updated",
                file.display(),
                report.departments_created,
                report.departments_updated,
                report.resources_created,
                report.resources_updated
            );
            Ok(())
        }
        CatalogCommand::Export { store, format, out } => {
            let store = store.open().await?;
            let dir = store.export().await?;
            let text = match format {
                FileFormat::Json => exchange::to_json(&dir),
                FileFormat::Csv => exchange::to_csv(&dir.resources),
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, &text).map_err(Error::file(&path))?;
                    eprintln!(
                        "wrote {} resources to {}",
                        dir.resources.len(),
                        path.display()
                    );
                }
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}
