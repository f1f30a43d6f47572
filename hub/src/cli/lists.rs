//! `tongban lists …`: export and import the three lists.

use super::*;

#[derive(Subcommand)]
pub(super) enum ListsCommand {
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

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum ListArg {
    /// 需求清单
    Needs,
    /// 负面清单
    Negative,
    /// 责任清单
    Responsibilities,
}

pub(super) async fn run(command: ListsCommand) -> Result<()> {
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
