//! `tongban audit …`: verify the chain and the tree against signed
//! checkpoints, take a checkpoint, prove a record, trace a key.

use super::*;

#[derive(Subcommand)]
pub(super) enum AuditCommand {
    /// Check every replica's hash chain (shipped segments, this data
    /// directory's log, the heads in the catalog) and Merkle tree (against
    /// every signed checkpoint in the catalog, and --checkpoint FILE);
    /// fails at the first edited, removed or reordered record, missing
    /// segment, cut-off tail or fork.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// A signed checkpoint kept outside the hub (as `audit checkpoint`
        /// printed it): the log must still hold exactly what it signed.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// The verifier key the checkpoint is checked with (as `audit key`
        /// prints it); unset: this hub's own.
        #[arg(long, value_name = "VKEY", requires = "checkpoint")]
        key: Option<String>,
    },
    /// Sign a checkpoint of a replica's log now (its tree's size and root),
    /// keep it in the catalog and print it: save it to verify against later.
    Checkpoint {
        #[command(flatten)]
        store: StoreArgs,
        /// The replica whose log (default: this configuration's).
        #[arg(long)]
        replica: Option<String>,
    },
    /// Print the proof, as JSON, that record SEQ is in the tree of a
    /// signed checkpoint (the newest that covers it, or --size), and with
    /// --from that this tree extends the one of that size.
    Prove {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        seq: u64,
        #[arg(long)]
        replica: Option<String>,
        /// The tree size to prove against (signed now if the catalog has
        /// no checkpoint of that size).
        #[arg(long)]
        size: Option<u64>,
        /// Also prove that the tree extends its first N records.
        #[arg(long, value_name = "N")]
        from: Option<u64>,
    },
    /// Print the verifier key of a replica's checkpoints (C2SP
    /// `name+id+key`), for third parties who check them.
    Key {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        replica: Option<String>,
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
        AuditCommand::Verify {
            store,
            checkpoint,
            key,
        } => {
            let config = store.config()?;
            let catalog = store.open().await?;
            let datasets = shipped_store(&config)?;
            let dir = config.data_dir.join("audit");
            let secret = config.mask_hash_key()?;
            let note =
                match &checkpoint {
                    Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                        Error::Usage(format!("--checkpoint {}: {e}", path.display()))
                    })?),
                    None => None,
                };
            let reports = tongban_core::audit_log::verify_all(
                &catalog,
                datasets.as_ref(),
                Some(&dir),
                &config.replica(),
                tongban_core::audit_log::Against {
                    secret: secret.as_bytes(),
                    note: note.as_deref(),
                    key: key.as_deref(),
                },
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
                        "{}: audit log intact: {} records ({} shipped segments, {} local; {head}; \
                         matches {} signed checkpoints)",
                        r.replica, r.records, r.shipped_segments, r.local_segments, r.checkpoints
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
        AuditCommand::Checkpoint { store, replica } => {
            let config = store.config()?;
            let catalog = store.open().await?;
            let secret = config.mask_hash_key()?;
            let replica = replica.unwrap_or_else(|| config.replica());
            let c = tongban_core::audit_log::take_checkpoint(
                &catalog,
                shipped_store(&config)?.as_ref(),
                Some(&config.data_dir.join("audit")),
                &config.replica(),
                secret.as_bytes(),
                config.audit_signature,
                &replica,
            )
            .await?;
            let alg = tongban_audit::log_alg(&config.data_dir.join("audit"))?.unwrap_or_default();
            eprintln!(
                "{replica}: checkpoint of {} records ({}, signed with {}), kept in the catalog",
                c.size,
                tongban_audit::checkpoint::describe(alg),
                config.audit_signature.as_str()
            );
            print!("{}", c.note);
            Ok(())
        }
        AuditCommand::Prove {
            store,
            seq,
            replica,
            size,
            from,
        } => {
            let config = store.config()?;
            let catalog = store.open().await?;
            let secret = config.mask_hash_key()?;
            let replica = replica.unwrap_or_else(|| config.replica());
            let proof = tongban_core::audit_log::prove(
                &catalog,
                shipped_store(&config)?.as_ref(),
                Some(&config.data_dir.join("audit")),
                &config.replica(),
                secret.as_bytes(),
                config.audit_signature,
                &replica,
                seq,
                size,
                from,
            )
            .await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&proof).expect("proofs serialise")
            );
            Ok(())
        }
        AuditCommand::Key { store, replica } => {
            let config = store.config()?;
            let secret = config.mask_hash_key()?;
            let replica = replica.unwrap_or_else(|| config.replica());
            println!(
                "{}",
                tongban_core::audit_log::signer(
                    secret.as_bytes(),
                    &replica,
                    config.audit_signature
                )
                .verifier_key()
            );
            Ok(())
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
