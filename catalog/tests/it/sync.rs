//! Sync jobs and their runs, on both backends.

use crate::store::{Fixture, population, seed};
use tongban_catalog::sync::*;
use tongban_catalog::*;

fn spec(name: &str, mode: SyncMode) -> SyncJobSpec {
    SyncJobSpec {
        name: name.into(),
        resource: "101/000001".into(),
        source: serde_json::json!({"type": "file", "path": "/srv/people.csv"}),
        mode,
        watermark_column: (mode == SyncMode::Incremental).then(|| "updated_at".into()),
        tombstone_column: None,
        diff_deletes: false,
        schedule: Some("0 30 2 * * *".into()),
        transform: None,
        enabled: true,
    }
}

fn version(n: i64) -> NewDatasetVersion {
    NewDatasetVersion {
        resource: "101/000001".into(),
        version: n,
        row_count: 10,
        byte_size: 100,
        location: format!("101-000001/v{n}"),
        origin: "sync:people#1".into(),
    }
}

fn finish(outcome: RunOutcome, v: Option<i64>, watermark: Option<&str>) -> RunFinish {
    RunFinish {
        outcome,
        counts: RunCounts {
            rows_read: 12,
            rows_written: 10,
            rows_quarantined: 2,
            bytes: 100,
            ..RunCounts::default()
        },
        version: v.map(version),
        quarantine: None,
        watermark: watermark.map(Into::into),
        error: (outcome == RunOutcome::Failed).then(|| "source: connection refused".into()),
    }
}

pub async fn sync_jobs_and_runs(f: Fixture) {
    let s = &f.store;
    seed(s).await;
    s.create_resource(&population("101/000001")).await.unwrap();

    // Definitions are checked before anything is stored.
    let mut bad = spec("people", SyncMode::Incremental);
    bad.watermark_column = None;
    assert!(
        matches!(s.create_sync_job(&bad).await, Err(Error::Invalid { field, .. }) if field == "watermark_column")
    );
    let mut bad = spec("bad name!", SyncMode::Full);
    assert!(
        matches!(s.create_sync_job(&bad).await, Err(Error::Invalid { field, .. }) if field == "name")
    );
    bad = spec("people", SyncMode::Full);
    bad.resource = "101/999999".into();
    assert!(
        matches!(s.create_sync_job(&bad).await, Err(Error::Invalid { field, .. }) if field == "resource")
    );
    bad = spec("people", SyncMode::Full);
    bad.diff_deletes = true;
    assert!(
        matches!(s.create_sync_job(&bad).await, Err(Error::Invalid { field, .. }) if field == "diff_deletes")
    );
    bad = spec("people", SyncMode::Full);
    bad.source = serde_json::json!({"path": "/x.csv"});
    assert!(
        matches!(s.create_sync_job(&bad).await, Err(Error::Invalid { field, .. }) if field == "source")
    );
    assert!(
        s.list_sync_jobs().await.unwrap().is_empty(),
        "nothing half-saved"
    );

    let job = s
        .create_sync_job(&spec("people", SyncMode::Incremental))
        .await
        .unwrap();
    assert_eq!(job.spec, spec("people", SyncMode::Incremental));
    assert_eq!(job.watermark, None);
    assert!(matches!(
        s.create_sync_job(&spec("people", SyncMode::Full)).await,
        Err(Error::Duplicate { .. })
    ));
    assert_eq!(s.get_sync_job("people").await.unwrap(), job);

    // A succeeded run: version, run record and watermark together.
    let run = s.start_sync_run("people").await.unwrap();
    assert_eq!(run.outcome, RunOutcome::Running);
    let done = s
        .finish_sync_run(
            run.id,
            &finish(RunOutcome::Succeeded, Some(1), Some("2026-11-01")),
        )
        .await
        .unwrap();
    assert_eq!(
        (done.outcome, done.version),
        (RunOutcome::Succeeded, Some(1))
    );
    assert_eq!(done.counts.rows_quarantined, 2);
    assert!(done.finished_at.is_some());
    assert_eq!(s.list_versions("101/000001").await.unwrap()[0].version, 1);
    assert_eq!(
        s.get_sync_job("people").await.unwrap().watermark.as_deref(),
        Some("2026-11-01")
    );
    // A run ends once.
    assert!(matches!(
        s.finish_sync_run(run.id, &finish(RunOutcome::Failed, None, None))
            .await,
        Err(Error::Conflict(_))
    ));

    // A failed run keeps the watermark and publishes nothing.
    let run = s.start_sync_run("people").await.unwrap();
    s.finish_sync_run(
        run.id,
        &finish(RunOutcome::Failed, None, Some("2026-11-01")),
    )
    .await
    .unwrap();
    assert_eq!(s.list_versions("101/000001").await.unwrap().len(), 1);

    // A run whose version cannot be recorded (a duplicate) records nothing:
    // the run stays running and the watermark does not move.
    let run = s.start_sync_run("people").await.unwrap();
    assert!(
        s.finish_sync_run(
            run.id,
            &finish(RunOutcome::Succeeded, Some(1), Some("2026-12-31"))
        )
        .await
        .is_err()
    );
    assert_eq!(
        s.get_sync_job("people").await.unwrap().watermark.as_deref(),
        Some("2026-11-01")
    );
    // The next start marks it interrupted.
    let next = s.start_sync_run("people").await.unwrap();
    let history = s.list_sync_runs(Some("people"), 10).await.unwrap();
    assert_eq!(history.len(), 4);
    assert_eq!(history[0].id, next.id);
    assert_eq!(history[1].outcome, RunOutcome::Interrupted);
    assert_eq!(history[2].outcome, RunOutcome::Failed);
    assert_eq!(
        history[2].error.as_deref(),
        Some("source: connection refused")
    );
    assert_eq!(history[3].outcome, RunOutcome::Succeeded);
    assert_eq!(s.list_sync_runs(None, 2).await.unwrap().len(), 2);
    assert!(matches!(
        s.list_sync_runs(Some("nobody"), 2).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.start_sync_run("nobody").await,
        Err(Error::NotFound { .. })
    ));
}

/// A job's run lock: on PostgreSQL one holder across every store over the
/// catalog, let go of on release and when its holder's connection dies;
/// on SQLite (one hub) it holds nothing.
pub async fn job_locks(f: Fixture) {
    let other = f.reopen().await;
    let first = f.store.lock_sync_job("nightly").await.unwrap().unwrap();
    let second = other.lock_sync_job("nightly").await.unwrap();
    let postgres = f.url.starts_with("postgres");
    assert_eq!(second.is_none(), postgres, "{second:?}");
    // Another job's lock is another lock.
    assert!(other.lock_sync_job("hourly").await.unwrap().is_some());
    drop(second);
    first.release().await;
    let again = other.lock_sync_job("nightly").await.unwrap().unwrap();
    // A holder that dies (its connection dropped, not closed) lets go.
    drop(again);
    let t0 = std::time::Instant::now();
    loop {
        if f.store.lock_sync_job("nightly").await.unwrap().is_some() {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(2),
            "a dropped lock is still held"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
