//! `tongban audit …`: verify the chain, trace a key.

use super::*;

#[derive(Subcommand)]
pub(super) enum AuditCommand {
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

pub(super) async fn run(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify { store } => {
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
        AuditCommand::Trace { store, key, json } => {
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
