//! `tongban config …`: check a configuration file.

use super::*;

#[derive(Subcommand)]
pub(super) enum ConfigCommand {
    /// Validate a configuration file without starting anything.
    Check { file: PathBuf },
}

pub(super) fn run(command: ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Check { file } => {
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
