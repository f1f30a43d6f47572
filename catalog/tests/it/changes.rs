//! Change counters and the change feed: every write a replica must learn
//! of advances its topic and the catalog's counter, in commit order; a
//! write it need not learn of (a subscription's cursor) does not; a failed
//! write advances nothing; the feed reports a change from another
//! connection promptly (PostgreSQL: `NOTIFY`; SQLite: polling).

use crate::store::{Fixture, population, seed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tongban_catalog::changes::{ChangeFeed, FeedTiming, Topic};
use tongban_catalog::lists::NegativeSpec;
use tongban_catalog::*;

pub async fn change_counters(f: Fixture) {
    let s = &f.store;
    let start = s.changes().await.unwrap();
    seed(s).await;
    let after_seed = s.changes().await.unwrap();
    assert!(after_seed.counter > start.counter);
    assert_eq!(after_seed.since(&start), vec![Topic::Directory]);

    // Each write moves its own topic to the counter's new value.
    s.create_resource(&population("101/000001")).await.unwrap();
    let negative = NegativeSpec {
        resource: "101/000001".into(),
        items: vec!["religion".into()],
        legal_basis: "《个人信息保护法》第二十八条".into(),
        modes: vec![],
        consumers: vec![],
        note: "敏感个人信息".into(),
    };
    let before = s.changes().await.unwrap();
    s.create_negative(&negative).await.unwrap();
    let after = s.changes().await.unwrap();
    assert_eq!(after.since(&before), vec![Topic::Lists]);
    assert!(after.counter > before.counter);
    assert_eq!(after.at(Topic::Lists), after.counter);

    let before = after;
    s.record_version(&NewDatasetVersion {
        resource: "101/000001".into(),
        version: 1,
        row_count: 1,
        byte_size: 1,
        location: "101-000001/v1".into(),
        origin: "test".into(),
    })
    .await
    .unwrap();
    let after = s.changes().await.unwrap();
    assert_eq!(after.since(&before), vec![Topic::Versions]);

    let before = after;
    s.put_token(&TokenRecord {
        token_hash: "ef".repeat(32),
        department: "sh-gaj".into(),
        role: Role::Department,
        label: "t".into(),
    })
    .await
    .unwrap();
    let after = s.changes().await.unwrap();
    assert_eq!(after.since(&before), vec![Topic::Identities]);

    // A refused write changes nothing, counters included.
    let before = after;
    let bad = NegativeSpec {
        legal_basis: " ".into(),
        ..negative
    };
    s.create_negative(&bad).await.unwrap_err();
    assert_eq!(s.changes().await.unwrap(), before);
}

pub async fn change_feed(f: Fixture) {
    let store: Arc<dyn Store> = Arc::new(f.store.clone());
    seed(&f.store).await;
    let timing = FeedTiming {
        // Long: on PostgreSQL only a notification can be this quick.
        catch_up: Duration::from_secs(30),
        poll: Duration::from_millis(100),
    };
    let feed = ChangeFeed::start(store.clone(), timing).await.unwrap();
    let mut news = feed.subscribe();
    let seen = feed.current();
    // Give the listener its connection before the write.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another connection (a second store over the same catalog: another replica).
    let writer = f.reopen().await;
    let t0 = Instant::now();
    writer
        .create_resource(&population("101/000002"))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            news.changed().await.unwrap();
            let now = news.borrow_and_update().clone();
            if now.at(Topic::Directory) > seen.at(Topic::Directory) {
                return now;
            }
        }
    })
    .await
    .expect("the feed reports a change within 2 s");
    assert!(got.counter > seen.counter);
    assert!(t0.elapsed() < Duration::from_secs(2));
}
