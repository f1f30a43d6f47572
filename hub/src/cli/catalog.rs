//! `tongban catalog …`: list, show, export and import the directory.

use super::*;

#[derive(Subcommand)]
pub(super) enum CatalogCommand {
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

pub(super) async fn run(command: CatalogCommand) -> Result<()> {
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
