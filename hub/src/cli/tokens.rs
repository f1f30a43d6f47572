//! `tongban token …`, `tongban cert …`: identities (stored hashed); and
//! `tongban seal-key …`: the keys departments seal licences with.

use super::*;

#[derive(Subcommand)]
pub(super) enum CertCommand {
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
pub(super) enum TokenCommand {
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
pub(super) enum RoleArg {
    /// Reads the directory, applies for needs, looks up and subscribes under them.
    Department,
    /// Edits the directory and the lists.
    DataOffice,
    /// The citizens' portal (一网通办): reads a subject's data-use record for it.
    Portal,
}

pub(super) async fn token(command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Add {
            store,
            department,
            role,
            label,
        } => {
            let store = store.open().await?;
            let role = match role {
                RoleArg::Department => tongban_catalog::Role::Department,
                RoleArg::DataOffice => tongban_catalog::Role::DataOffice,
                RoleArg::Portal => tongban_catalog::Role::Portal,
            };
            let token = tongban_core::auth::issue(&store, &department, role, label).await?;
            eprintln!(
                "Keep this token now: it is stored only as a hash. Running hubs pick it up within a second."
            );
            println!("{token}");
            Ok(())
        }
        TokenCommand::List { store } => {
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
    }
}

pub(super) async fn cert(command: CertCommand) -> Result<()> {
    match command {
        CertCommand::Add {
            store,
            department,
            role,
            label,
            file,
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
                        RoleArg::Portal => tongban_catalog::Role::Portal,
                    },
                    label,
                })
                .await?;
            println!("registered certificate {fingerprint} for {department}");
            Ok(())
        }
    }
}

#[derive(Subcommand)]
pub(super) enum SealKeyCommand {
    /// Register (or replace) the key a department seals its licences with:
    /// an SM2 public key, hex of the uncompressed SEC1 point (04 ‖ x ‖ y).
    Add {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        department: String,
        #[arg(long)]
        public_key: String,
    },
    /// The registered seal keys.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub(super) async fn seal_key(command: SealKeyCommand) -> Result<()> {
    match command {
        SealKeyCommand::Add {
            store,
            department,
            public_key,
        } => {
            tongban_core::seal::check_public_key(&public_key)
                .map_err(|e| Error::Usage(format!("--public-key: {e}")))?;
            let store = store.open().await?;
            store
                .register_seal_key(&tongban_catalog::SealKeyRecord {
                    department: department.clone(),
                    algorithm: tongban_core::seal::ALGORITHM.to_string(),
                    public_key: public_key.trim().to_ascii_lowercase(),
                    registered_at: chrono::Utc::now(),
                })
                .await?;
            println!("registered the seal key of {department}");
            Ok(())
        }
        SealKeyCommand::List { store } => {
            let store = store.open().await?;
            println!(
                "{:<14} {:<8} {:<20} PUBLIC KEY",
                "DEPARTMENT", "ALG", "REGISTERED (UTC)"
            );
            for k in store.seal_keys().await? {
                println!(
                    "{:<14} {:<8} {:<20} {}",
                    k.department,
                    k.algorithm,
                    k.registered_at.format("%Y-%m-%d %H:%M:%S"),
                    k.public_key
                );
            }
            Ok(())
        }
    }
}
