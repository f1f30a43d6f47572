//! `tongban subscription …`: subscribe departments, list, cancel, deliveries.

use super::*;

#[derive(Subcommand)]
pub(super) enum SubscriptionCommand {
    /// Subscribe a department to a resource under one of its approved needs
    /// (mode subscribe or batch).
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// Unique among the consumer's subscriptions; the Delta Sharing table name.
        name: String,
        /// The subscribing department, e.g. xh-zwfw.
        #[arg(long)]
        consumer: String,
        /// Resource code, e.g. 101/000001.
        #[arg(long)]
        resource: String,
        /// The need's id.
        #[arg(long)]
        need: i64,
        /// Items to deliver, comma-separated; default: the need's items.
        #[arg(long, value_delimiter = ',')]
        items: Vec<String>,
        /// The channel as JSON, or @FILE: {"type":"pull"} (default),
        /// {"type":"webhook","url":"https://…","format":"ndjson"|"parquet"},
        /// {"type":"postgres","url":"postgres://user@host/db","table":"t","password_env":"PGPASS"}.
        #[arg(long, default_value = r#"{"type":"pull"}"#)]
        channel: String,
    },
    /// List subscriptions with their cursor and status.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Only this department's.
        #[arg(long)]
        consumer: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A push subscription's deliveries, newest first.
    Deliveries {
        #[command(flatten)]
        store: StoreArgs,
        id: i64,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a subscription: nothing more is delivered.
    Cancel {
        #[command(flatten)]
        store: StoreArgs,
        id: i64,
        #[arg(long, default_value = "cancelled from the command line")]
        reason: String,
    },
}

pub(super) async fn run(command: SubscriptionCommand) -> Result<()> {
    use tongban_catalog::subscriptions::{Channel, SubscriptionSpec, SubscriptionStatus};
    match command {
        SubscriptionCommand::Add {
            store,
            name,
            consumer,
            resource,
            need,
            items,
            channel,
        } => {
            let text = match channel.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).map_err(Error::file(path))?,
                None => channel,
            };
            let channel: Channel =
                serde_json::from_str(&text).map_err(|e| Error::Usage(format!("--channel: {e}")))?;
            let secret = matches!(channel, Channel::Webhook { .. }).then(|| {
                format!(
                    "whsec_{}",
                    tongban_core::auth::new_token().trim_start_matches("tb_")
                )
            });
            let store = store.open().await?;
            let sub = store
                .create_subscription(
                    &consumer,
                    &SubscriptionSpec {
                        name,
                        resource,
                        need,
                        items,
                        channel,
                    },
                    secret,
                )
                .await?;
            println!(
                "subscription {} '{}': {} → {} ({}), items {}",
                sub.id,
                sub.spec.name,
                sub.spec.resource,
                sub.consumer,
                sub.spec.channel.kind(),
                sub.spec.items.join(",")
            );
            if let Some(secret) = &sub.secret {
                println!("webhook signing secret (shown once): {secret}");
            }
            Ok(())
        }
        SubscriptionCommand::List {
            store,
            consumer,
            json,
        } => {
            let store = store.open().await?;
            let subs = store.list_subscriptions(consumer.as_deref()).await?;
            if json {
                let subs: Vec<_> = subs
                    .into_iter()
                    .map(|mut s| {
                        s.secret = None;
                        s
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&subs).expect("json"));
                return Ok(());
            }
            println!(
                "{:<4} {:<10} {:<20} {:<11} {:<9} {:<9} {:<6} MATTER",
                "ID", "CONSUMER", "NAME", "RESOURCE", "CHANNEL", "STATUS", "CURSOR"
            );
            for s in subs {
                println!(
                    "{:<4} {:<10} {:<20} {:<11} {:<9} {:<9} {:<6} {}",
                    s.id,
                    s.consumer,
                    s.spec.name,
                    s.spec.resource,
                    s.spec.channel.kind(),
                    s.status,
                    s.cursor.map_or("-".to_string(), |c| format!("v{c}")),
                    s.matter
                );
            }
            Ok(())
        }
        SubscriptionCommand::Deliveries {
            store,
            id,
            limit,
            json,
        } => {
            let store = store.open().await?;
            store.get_subscription(id).await?;
            let deliveries = store.list_deliveries(id, limit).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&deliveries).expect("json")
                );
                return Ok(());
            }
            println!(
                "{:<6} {:<8} {:<10} {:<8} {:>8} {:>10} {:<20} ERROR",
                "ID", "VERSION", "STATUS", "KIND", "ATTEMPTS", "ROWS", "DELIVERED (UTC)"
            );
            for d in deliveries {
                println!(
                    "{:<6} v{:<7} {:<10} {:<8} {:>8} {:>10} {:<20} {}",
                    d.id,
                    d.version,
                    d.status,
                    d.kind.as_deref().unwrap_or("-"),
                    d.attempts,
                    d.rows.map_or("-".to_string(), |r| r.to_string()),
                    d.delivered_at.map_or("-".to_string(), |t| t
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string()),
                    d.last_error.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        SubscriptionCommand::Cancel { store, id, reason } => {
            let store = store.open().await?;
            let sub = store
                .set_subscription_status(id, SubscriptionStatus::Cancelled, Some(&reason))
                .await?;
            println!("subscription {} '{}' cancelled", sub.id, sub.spec.name);
            Ok(())
        }
    }
}
