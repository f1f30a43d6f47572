//! `tongban service …`: register provider APIs (interface sharing), import
//! them from OpenAPI documents, list them, switch them on and off. Runs on
//! the catalog directly; a running hub picks changes up within its refresh
//! interval (its API does so at once). Health data lives in each running hub:
//! `GET /v1/services/health`.

use super::*;
use tongban_catalog::services::{DraftResource, ServiceRegistration, ServiceSwitch};

#[derive(Subcommand)]
pub(super) enum ServiceCommand {
    /// List the services with their endpoints.
    List {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Register (or replace) a service from a JSON file: `{"resource": {…}, "service": {…}}`.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        file: PathBuf,
    },
    /// Import a provider's OpenAPI 3 document as a draft service for review.
    ImportOpenapi {
        #[command(flatten)]
        store: StoreArgs,
        /// The OpenAPI document (JSON).
        file: PathBuf,
        /// Resource code to give it, e.g. 302/000109.
        #[arg(long)]
        code: String,
        /// The providing department's code.
        #[arg(long)]
        provider: String,
        /// Defaults to the document's title.
        #[arg(long)]
        name: Option<String>,
        /// Defaults to the document's first server.
        #[arg(long)]
        base_url: Option<String>,
    },
    /// Switch a service on.
    Enable {
        #[command(flatten)]
        store: StoreArgs,
        code: String,
    },
    /// Switch a service off: calls get `provider_unavailable` with the notice.
    Disable {
        #[command(flatten)]
        store: StoreArgs,
        code: String,
        /// Shown to callers, e.g. "系统升级，预计 18:00 恢复".
        #[arg(long)]
        notice: Option<String>,
    },
}

fn read_json(file: &std::path::Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(file).map_err(Error::file(file))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("{}: not JSON: {e}", file.display())))
}

pub(super) async fn run(command: ServiceCommand) -> Result<()> {
    match command {
        ServiceCommand::List { store, json } => {
            let all = store.open().await?.list_services().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&all).expect("serialises")
                );
                return Ok(());
            }
            println!(
                "{:<12} {:<10} {:<8} {:<32}  NAME",
                "CODE", "PROVIDER", "ENABLED", "BASE URL"
            );
            for s in &all {
                println!(
                    "{:<12} {:<10} {:<8} {:<32}  {}",
                    s.resource,
                    s.provider,
                    if s.service.enabled { "yes" } else { "no" },
                    s.service.base_url,
                    s.name
                );
                for e in &s.service.endpoints {
                    println!(
                        "    {:<24} {} {}  ({} ms{})",
                        e.name,
                        e.method,
                        e.path,
                        e.timeout_ms,
                        e.cache_ttl_ms
                            .map(|t| format!(", cached {t} ms"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        ServiceCommand::Add { store, file } => {
            let reg: ServiceRegistration = serde_json::from_value(read_json(&file)?)
                .map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?;
            tongban_services::Services::check_tls(&reg.service)
                .map_err(|e| Error::Usage(e.to_string()))?;
            let record = store.open().await?.register_service(&reg).await?;
            println!(
                "registered {} ({}), version {}, {} endpoints",
                record.resource,
                record.name,
                record.version,
                record.service.endpoints.len()
            );
        }
        ServiceCommand::ImportOpenapi {
            store,
            file,
            code,
            provider,
            name,
            base_url,
        } => {
            let doc = read_json(&file)?;
            let reg = tongban_catalog::services::from_openapi(
                &doc,
                DraftResource {
                    code,
                    provider,
                    name,
                },
                base_url,
            )?;
            let record = store.open().await?.register_service(&reg).await?;
            println!(
                "imported {} ({}) as a draft: {} endpoints, {} items to review (conditional, internal until changed); publish the resource when reviewed",
                record.resource,
                record.name,
                record.service.endpoints.len(),
                reg.resource.items.len()
            );
        }
        ServiceCommand::Enable { store, code } => {
            store
                .open()
                .await?
                .switch_service(
                    &code,
                    &ServiceSwitch {
                        enabled: true,
                        notice: None,
                    },
                )
                .await?;
            println!("{code} enabled");
        }
        ServiceCommand::Disable {
            store,
            code,
            notice,
        } => {
            store
                .open()
                .await?
                .switch_service(
                    &code,
                    &ServiceSwitch {
                        enabled: false,
                        notice,
                    },
                )
                .await?;
            println!("{code} disabled");
        }
    }
    Ok(())
}
