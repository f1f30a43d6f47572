//! `tongban sharing …`: Delta Sharing profiles for recipients.

use super::*;

#[derive(Subcommand)]
pub(super) enum SharingCommand {
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

pub(super) async fn run(command: SharingCommand) -> Result<()> {
    match command {
        SharingCommand::Profile {
            store,
            department,
            endpoint,
            out,
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
            let profile = tongban_delivery::sharing_profile(
                &format!("{}/delta-sharing", endpoint.trim_end_matches('/')),
                &token,
            );
            tongban_datagen::credentials::write_private(
                &out,
                &serde_json::to_string_pretty(&profile).expect("json"),
            )?;
            println!(
                "wrote {} for {department}; a running hub accepts its token within 10 s",
                out.display()
            );
            Ok(())
        }
    }
}
