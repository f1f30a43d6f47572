//! How a replica learns that the catalog changed behind its back: another
//! replica, or the CLI, wrote a version, a list entry, a token, a service.
//!
//! The catalog keeps change counters (migration 7): a `clock` that every
//! changing transaction advances — it locks the clock's row until commit,
//! so transactions commit in counter order — and, per [`Topic`], the
//! clock's value at that topic's last change. A replica compares the
//! counters with the ones it last applied and reloads only the topics that
//! moved. On PostgreSQL each change also sends `NOTIFY tongban_catalog`, so
//! a listening replica reads the counters at once; notifications sent while
//! its listener was disconnected are lost, which is why the counters, not
//! the notifications, carry the truth: the [`ChangeFeed`] reads them on
//! start, after every reconnect and on a jittered timer.

use crate::{Result, Store};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What a replica holds in memory, by the catalog tables it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    /// Departments, resources and their items.
    Directory,
    /// Dataset versions.
    Versions,
    /// Tokens and certificates.
    Identities,
    /// Needs, negative entries, responsibilities, the calendar.
    Lists,
    /// Provider APIs (interface sharing).
    Services,
    /// Subscriptions (created, removed, paused or resumed).
    Subscriptions,
}

impl Topic {
    pub const ALL: [Topic; 6] = [
        Topic::Directory,
        Topic::Versions,
        Topic::Identities,
        Topic::Lists,
        Topic::Services,
        Topic::Subscriptions,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Directory => "directory",
            Topic::Versions => "versions",
            Topic::Identities => "identities",
            Topic::Lists => "lists",
            Topic::Services => "services",
            Topic::Subscriptions => "subscriptions",
        }
    }

    pub fn parse(s: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The catalog's change counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The catalog's change counter: how many changing transactions have
    /// committed (0 before the first).
    pub counter: i64,
    /// The counter's value at each topic's last change.
    pub topics: BTreeMap<Topic, i64>,
}

impl Changes {
    /// The counter at `topic`'s last change (0: never changed).
    pub fn at(&self, topic: Topic) -> i64 {
        self.topics.get(&topic).copied().unwrap_or(0)
    }

    /// The topics that changed after `applied` was read.
    pub fn since(&self, applied: &Changes) -> Vec<Topic> {
        Topic::ALL
            .into_iter()
            .filter(|&t| self.at(t) > applied.at(t))
            .collect()
    }
}

/// The `NOTIFY` channel the catalog's triggers send on.
pub const CHANNEL: &str = "tongban_catalog";

/// How the feed waits between reads of the counters.
#[derive(Debug, Clone, Copy)]
pub struct FeedTiming {
    /// Between catch-up reads when notifications arrive (PostgreSQL); the
    /// actual wait is jittered between this and twice this, so replicas
    /// started together do not read together.
    pub catch_up: Duration,
    /// Between reads without notifications (SQLite: one process and the
    /// CLI share the file, and reading a seven-row table is cheap).
    pub poll: Duration,
}

impl Default for FeedTiming {
    fn default() -> Self {
        FeedTiming {
            catch_up: Duration::from_secs(10),
            poll: Duration::from_millis(500),
        }
    }
}

/// The newest counters, kept current by a background task; dropping the
/// feed stops the task.
pub struct ChangeFeed {
    rx: watch::Receiver<Changes>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ChangeFeed {
    /// Reads the counters once (failing if the catalog does not answer),
    /// then keeps reading them: on every notification when the store is
    /// PostgreSQL, and on the timer.
    pub async fn start(store: Arc<dyn Store>, timing: FeedTiming) -> Result<ChangeFeed> {
        let first = store.changes().await?;
        let (tx, rx) = watch::channel(first);
        let task = tokio::spawn(run(store, tx, timing));
        Ok(ChangeFeed { rx, task })
    }

    /// A receiver of the newest counters (`changed()` wakes on news).
    pub fn subscribe(&self) -> watch::Receiver<Changes> {
        self.rx.clone()
    }

    /// The counters last read.
    pub fn current(&self) -> Changes {
        self.rx.borrow().clone()
    }
}

async fn run(store: Arc<dyn Store>, tx: watch::Sender<Changes>, timing: FeedTiming) {
    let read = |store: Arc<dyn Store>, tx: watch::Sender<Changes>| async move {
        match store.changes().await {
            Ok(changes) => {
                tx.send_if_modified(|current| {
                    // Counters only grow; an older read racing a newer
                    // one must not move the feed back.
                    if changes.counter > current.counter {
                        *current = changes;
                        true
                    } else {
                        false
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "could not read the catalog's change counters"),
        }
    };
    let Some(url) = store.listen_url() else {
        loop {
            tokio::time::sleep(timing.poll).await;
            read(store.clone(), tx.clone()).await;
        }
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        let mut listener = match listen(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "could not LISTEN for catalog changes; polling until it can");
                tokio::time::sleep(backoff).await;
                read(store.clone(), tx.clone()).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        // Whatever was sent while no listener was connected is lost.
        read(store.clone(), tx.clone()).await;
        loop {
            let wait = jittered(timing.catch_up);
            tokio::select! {
                got = listener.try_recv() => match got {
                    Ok(Some(_)) => read(store.clone(), tx.clone()).await,
                    // The connection dropped; sqlx reconnects on the next
                    // call, and the read covers what was missed.
                    Ok(None) => {
                        tracing::info!("catalog listener reconnecting");
                        read(store.clone(), tx.clone()).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "catalog listener failed");
                        break;
                    }
                },
                _ = tokio::time::sleep(wait) => read(store.clone(), tx.clone()).await,
            }
        }
    }
}

async fn listen(url: &str) -> Result<sqlx::postgres::PgListener> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// `base` to `2 × base`, at random.
fn jittered(base: Duration) -> Duration {
    let unit = getrandom::u64().unwrap_or(0) as f64 / u64::MAX as f64;
    base + base.mul_f64(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_topics_that_moved_are_news() {
        let mut applied = Changes {
            counter: 3,
            ..Default::default()
        };
        applied.topics.insert(Topic::Lists, 3);
        applied.topics.insert(Topic::Versions, 2);
        let mut now = applied.clone();
        now.counter = 5;
        now.topics.insert(Topic::Lists, 5);
        now.topics.insert(Topic::Identities, 4);
        assert_eq!(now.since(&applied), vec![Topic::Identities, Topic::Lists]);
        assert!(applied.since(&now).is_empty());
        for t in Topic::ALL {
            assert_eq!(Topic::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn the_jitter_stays_within_twice_the_base() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(1));
            assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(2));
        }
    }
}
