//! Subscriptions and the push outbox, on both backends.

use crate::lists::{OFFICE, PROVIDER, application, directory};
use crate::store::Fixture;
use chrono::{Duration, Utc};
use tongban_catalog::lists::*;
use tongban_catalog::subscriptions::*;
use tongban_catalog::*;
use tongban_policies::Mode;

/// An approved need of `mode` for xh-zwfw on the population resource.
async fn approved(s: &SqlStore, mode: Mode, items: &[&str]) -> NeedRecord {
    let mut a = application(items);
    a.mode = mode;
    a.row_filter = None;
    let need = s.apply_need("xh-zwfw", &a).await.unwrap();
    if need.status == tongban_policies::NeedStatus::PendingProvider {
        s.review_need(need.id, PROVIDER, ReviewAction::Approve, "")
            .await
            .unwrap();
    }
    s.review_need(need.id, OFFICE, ReviewAction::Approve, "")
        .await
        .unwrap()
}

fn spec(name: &str, need: i64, channel: Channel) -> SubscriptionSpec {
    SubscriptionSpec {
        name: name.into(),
        resource: "101/000001".into(),
        need,
        items: Vec::new(),
        channel,
    }
}

fn field_of(e: Error) -> String {
    match e {
        Error::Invalid { field, .. } => field,
        other => panic!("expected invalid input, got {other:?}"),
    }
}

pub async fn subscriptions_and_outbox(f: Fixture) {
    let s = &f.store;
    directory(s).await;
    let bulk = approved(s, Mode::Subscribe, &["citizen_id", "name", "gender"]).await;
    let lookup = approved(s, Mode::Lookup, &["name"]).await;
    let mut pending_app = application(&["name"]);
    pending_app.mode = Mode::Batch;
    let pending = s.apply_need("xh-zwfw", &pending_app).await.unwrap();

    // A subscription rests on the consumer's own approved bulk need.
    for (consumer, need, field) in [
        ("xh-zwfw", lookup.id, "need"),
        ("xh-zwfw", pending.id, "need"),
        ("xh-zwfw", 999, "need"),
        ("sh-zwfw", bulk.id, "need"),
    ] {
        let e = s
            .create_subscription(consumer, &spec("people", need, Channel::Pull {}), None)
            .await
            .unwrap_err();
        assert_eq!(field_of(e), field, "{consumer} under need {need}");
    }
    let mut wrong_item = spec("people", bulk.id, Channel::Pull {});
    wrong_item.items = vec!["name".into(), "religion".into()];
    assert_eq!(
        field_of(
            s.create_subscription("xh-zwfw", &wrong_item, None)
                .await
                .unwrap_err()
        ),
        "items[1]"
    );
    assert!(s.list_subscriptions(None).await.unwrap().is_empty());

    // Stored with the need's items, matter and mode, active, nothing read yet.
    let pull = s
        .create_subscription("xh-zwfw", &spec("people", bulk.id, Channel::Pull {}), None)
        .await
        .unwrap();
    assert_eq!(pull.spec.items, ["citizen_id", "name", "gender"]);
    assert_eq!(
        (pull.matter.as_str(), pull.mode),
        ("310104-JZZ-001", Mode::Subscribe)
    );
    assert_eq!(
        (pull.status, pull.cursor),
        (SubscriptionStatus::Active, None)
    );
    assert!(matches!(
        s.create_subscription("xh-zwfw", &spec("people", bulk.id, Channel::Pull {}), None)
            .await,
        Err(Error::Duplicate { .. })
    ));
    assert_eq!(
        s.find_subscription("xh-zwfw", "people").await.unwrap().id,
        pull.id
    );
    s.advance_cursor(pull.id, 3).await.unwrap();
    s.advance_cursor(pull.id, 2).await.unwrap();
    assert_eq!(
        s.get_subscription(pull.id).await.unwrap().cursor,
        Some(3),
        "a cursor never moves back"
    );

    // The outbox: one delivery per version, in version order, leased, retried.
    let hook = Channel::Webhook {
        url: "http://127.0.0.1:9/in".into(),
        format: PayloadFormat::Ndjson,
    };
    let push = s
        .create_subscription(
            "xh-zwfw",
            &spec("people-push", bulk.id, hook),
            Some("k".into()),
        )
        .await
        .unwrap();
    assert_eq!(push.secret.as_deref(), Some("k"));
    assert_eq!(s.enqueue_deliveries(push.id, &[1, 2, 3]).await.unwrap(), 3);
    assert_eq!(s.enqueue_deliveries(push.id, &[2, 3, 4]).await.unwrap(), 1);
    let now = Utc::now();
    let due = s.due_deliveries(now, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|d| d.version).collect::<Vec<_>>(),
        [1],
        "oldest first, one at a time"
    );
    let first = &due[0];
    assert!(
        s.claim_delivery(first.id, "hub-a", now, now + Duration::seconds(60))
            .await
            .unwrap()
    );
    assert!(
        !s.claim_delivery(first.id, "hub-a", now, now + Duration::seconds(60))
            .await
            .unwrap(),
        "a leased delivery is not claimed twice"
    );
    assert!(s.due_deliveries(now, 10).await.unwrap().is_empty());
    // A hub that stops mid-attempt gives its leases up; another may claim.
    assert_eq!(s.release_delivery_leases("hub-b").await.unwrap(), 0);
    assert_eq!(s.release_delivery_leases("hub-a").await.unwrap(), 1);
    assert!(
        s.claim_delivery(first.id, "hub-b", now, now + Duration::seconds(60))
            .await
            .unwrap()
    );
    let retry_at = now + Duration::seconds(30);
    let failed = s
        .finish_delivery(
            first.id,
            &Attempt::Failed {
                error: "503 Service Unavailable".into(),
                retry_at,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (failed.attempts, failed.status),
        (2, DeliveryStatus::Pending)
    );
    assert!(
        s.due_deliveries(now, 10).await.unwrap().is_empty(),
        "not before its retry time"
    );
    let later = retry_at + Duration::seconds(1);
    let due = s.due_deliveries(later, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|d| d.version).collect::<Vec<_>>(),
        [1],
        "v2 waits behind v1"
    );
    assert!(
        s.claim_delivery(due[0].id, "hub-a", later, later + Duration::seconds(60))
            .await
            .unwrap()
    );
    let done = s
        .finish_delivery(
            due[0].id,
            &Attempt::Delivered {
                kind: "snapshot".into(),
                rows: 10,
                bytes: 420,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.attempts, done.rows),
        (DeliveryStatus::Delivered, 3, Some(10))
    );
    assert_eq!(s.get_subscription(push.id).await.unwrap().cursor, Some(1));
    let due = s.due_deliveries(later, 10).await.unwrap();
    assert_eq!(due.iter().map(|d| d.version).collect::<Vec<_>>(), [2]);
    let history = s.list_deliveries(push.id, 10).await.unwrap();
    assert_eq!(
        history.iter().map(|d| d.version).collect::<Vec<_>>(),
        [4, 3, 2, 1]
    );

    // Revoking the need stops both subscriptions and abandons what waits.
    s.review_need(bulk.id, OFFICE, ReviewAction::Revoke, "事项已撤销")
        .await
        .unwrap();
    for id in [pull.id, push.id] {
        let sub = s.get_subscription(id).await.unwrap();
        assert_eq!(sub.status, SubscriptionStatus::Stopped);
        assert!(sub.status_reason.unwrap().contains("revoked"));
    }
    assert!(s.due_deliveries(later, 10).await.unwrap().is_empty());
    let history = s.list_deliveries(push.id, 10).await.unwrap();
    assert!(
        history[..3]
            .iter()
            .all(|d| d.status == DeliveryStatus::Abandoned)
    );
    assert!(matches!(
        s.set_subscription_status(push.id, SubscriptionStatus::Active, None)
            .await,
        Err(Error::Conflict(_))
    ));
    // A new need, a new subscription; cancelling ends it.
    let again = approved(s, Mode::Batch, &["gender"]).await;
    let sub = s
        .create_subscription("xh-zwfw", &spec("gender", again.id, Channel::Pull {}), None)
        .await
        .unwrap();
    let sub = s
        .set_subscription_status(
            sub.id,
            SubscriptionStatus::Cancelled,
            Some("no longer needed"),
        )
        .await
        .unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Cancelled);
    assert_eq!(
        s.list_subscriptions(Some("xh-zwfw")).await.unwrap().len(),
        3
    );
    assert!(
        s.list_subscriptions(Some("sh-zwfw"))
            .await
            .unwrap()
            .is_empty()
    );
}
