//! `tongban objection …`: objections to records (异议核实与纠错) — list
//! them (the overdue ones for the data office's follow-up) and show one
//! with its history. Raising and answering are the API's and the
//! console's: they need an identity.

use super::*;
use tongban_catalog::objections::{ObjectionQuery, ObjectionStatus};

#[derive(Subcommand)]
pub(super) enum ObjectionCommand {
    /// List objections, oldest first.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Only those past their deadline and not yet closed.
        #[arg(long)]
        overdue: bool,
        /// open, correcting, corrected or rejected.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        resource: Option<String>,
        /// As JSON (one array) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One objection with its history.
    Show {
        #[command(flatten)]
        store: StoreArgs,
        id: i64,
    },
}

pub(super) async fn run(command: ObjectionCommand) -> Result<()> {
    match command {
        ObjectionCommand::List {
            store,
            overdue,
            status,
            resource,
            json,
        } => {
            let status = status
                .map(|s| s.parse::<ObjectionStatus>())
                .transpose()
                .map_err(|e| Error::Usage(e.to_string()))?;
            let store = store.open().await?;
            let now = chrono::Utc::now();
            let found = store
                .list_objections(&ObjectionQuery {
                    status,
                    resource,
                    overdue_at: overdue.then_some(now),
                    ..Default::default()
                })
                .await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&found).expect("objections serialise")
                );
                return Ok(());
            }
            println!(
                "{:>5}  {:<11}  {:<11}  {:<20}  {:<18}  {:<10}  {:<10}  due (UTC+8)",
                "id", "status", "resource", "key", "items", "raised by", "provider"
            );
            for o in &found {
                let due = o
                    .due_at
                    .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"));
                println!(
                    "{:>5}  {:<11}  {:<11}  {:<20}  {:<18}  {:<10}  {:<10}  {}{}",
                    o.id,
                    o.status.as_str(),
                    o.resource,
                    o.key,
                    o.items.join(","),
                    o.raised_by,
                    o.provider,
                    due.format("%Y-%m-%d %H:%M"),
                    if o.overdue(now) { "  OVERDUE" } else { "" }
                );
            }
            eprintln!("{} objection(s)", found.len());
            Ok(())
        }
        ObjectionCommand::Show { store, id } => {
            let store = store.open().await?;
            let o = store.get_objection(id).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&o).expect("objections serialise")
            );
            Ok(())
        }
    }
}
