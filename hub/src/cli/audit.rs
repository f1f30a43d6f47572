//! `tongban audit …`: verify the chain, trace a key.

use super::*;

#[derive(Subcommand)]
pub(super) enum AuditCommand {
    /// Check every replica's hash chain (shipped segments, this data
    /// directory's log, the heads in the catalog); fails at the first
    /// edited, removed or reordered record, missing segment or cut-off tail.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Who looked a citizen ID, credit code or other key up, when, and for
    /// which matter, on every replica.
    Trace {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        key: String,
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn run(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify { store } => {
            let config = store.config()?;
            let catalog = store.open().await?;
            let datasets = shipped_store(&config)?;
            let dir = config.data_dir.join("audit");
            let reports = tongban_core::audit_log::verify_all(
                &catalog,
                datasets.as_ref(),
                Some(&dir),
                &config.replica(),
            )
            .await?;
            if reports.is_empty() {
                println!("audit log empty: no records in {}", dir.display());
                return Ok(());
            }
            let mut broken = Vec::new();
            for r in &reports {
                let head = r.head.as_ref().map_or_else(
                    || "no head recorded".to_string(),
                    |h| format!("head {} recorded", h.seq),
                );
                match &r.problem {
                    None => println!(
                        "{}: audit log intact: {} records ({} shipped segments, {} local; {head})",
                        r.replica, r.records, r.shipped_segments, r.local_segments
                    ),
                    Some(p) => {
                        println!("{}: BROKEN after {} records: {p}", r.replica, r.records);
                        broken.push(format!("{}: {p}", r.replica));
                    }
                }
            }
            if broken.is_empty() {
                Ok(())
            } else {
                Err(Error::AuditChains(broken.join("; ")))
            }
        }
        AuditCommand::Trace { store, key, json } => {
            let config = store.config()?;
            let secret = config.mask_hash_key()?;
            // Keys are recorded as the lookups normalise them.
            let key = key.trim().to_ascii_uppercase();
            let datasets = shipped_store(&config)?;
            let records = tongban_core::audit_log::trace_all(
                datasets.as_ref(),
                Some(&config.data_dir.join("audit")),
                secret.as_bytes(),
                &key,
            )
            .await?;
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
                    match &e.call {
                        // An interface call: which endpoint, and the
                        // provider's status.
                        Some(c) => format!(
                            "{} [{} → {}]",
                            e.items.join(","),
                            c.endpoint,
                            c.provider_status
                                .map_or_else(|| "no answer".to_string(), |s| s.to_string())
                        ),
                        None => e.items.join(","),
                    }
                );
            }
            println!("{} uses of this key", records.len());
            Ok(())
        }
    }
}

/// The object store holding shipped audit segments, if one is configured.
fn shipped_store(config: &Config) -> Result<Option<tongban_datasets::DatasetStore>> {
    config
        .object_store
        .as_ref()
        .map(|o| tongban_datasets::DatasetStore::open(Some(o), &config.data_dir))
        .transpose()
        .map_err(Into::into)
}
