//! The server's sync scheduler: every `TICK`, each enabled job with a cron
//! schedule whose next fire time (after its last run, or its creation) has
//! passed is run, one run per job at a time across every hub sharing the
//! catalog: a hub runs a due job only under the job's run lock, and checks
//! under it that the job is still due (another hub may have just run it).
//! Schedules are read in China time (UTC+8), where the departments'
//! nightly windows are defined.

use super::{SyncContext, run_locked};
use chrono::{DateTime, FixedOffset, Utc};
use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often due jobs are looked for.
pub const TICK: Duration = Duration::from_secs(5);

/// Parses a schedule: a cron expression with seconds first
/// (`sec min hour day-of-month month day-of-week`, e.g. `0 30 2 * * *`).
pub fn parse(expr: &str) -> Result<cron::Schedule, String> {
    cron::Schedule::from_str(expr).map_err(|e| {
        format!("schedule '{expr}': {e} (six fields, seconds first, e.g. '0 30 2 * * *' for 02:30 daily)")
    })
}

fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("a valid offset")
}

/// The first fire time of `schedule` strictly after `after`.
pub fn next_after(schedule: &cron::Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule
        .after(&after.with_timezone(&china()))
        .next()
        .map(|t| t.with_timezone(&Utc))
}

/// Runs due jobs until the process ends.
pub async fn run(ctx: SyncContext) {
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        if let Err(e) = run_due(&ctx, &running, Utc::now()).await {
            tracing::warn!(error = %e, "sync scheduler: could not check jobs");
        }
    }
}

async fn run_due(
    ctx: &SyncContext,
    running: &Arc<Mutex<HashSet<String>>>,
    now: DateTime<Utc>,
) -> crate::Result<()> {
    for job in ctx.store.list_sync_jobs().await? {
        let Some(expr) = job.spec.schedule.as_deref().filter(|_| job.spec.enabled) else {
            continue;
        };
        let schedule = match parse(expr) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(job = %job.spec.name, error = %e, "sync scheduler: bad schedule");
                continue;
            }
        };
        if !due(ctx, &job, &schedule, now).await? {
            continue;
        }
        let name = job.spec.name.clone();
        if !running.lock().expect("not poisoned").insert(name.clone()) {
            continue;
        }
        // Another hub holds the lock: it runs the job.
        let lock = match ctx.store.lock_sync_job(&name).await {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                running.lock().expect("not poisoned").remove(&name);
                continue;
            }
            Err(e) => {
                running.lock().expect("not poisoned").remove(&name);
                return Err(e.into());
            }
        };
        // Under the lock: a run another hub finished a moment ago counts.
        let still_due = due(ctx, &job, &schedule, now).await;
        if !matches!(still_due, Ok(true)) {
            lock.release().await;
            running.lock().expect("not poisoned").remove(&name);
            still_due?;
            continue;
        }
        let (ctx, running) = (ctx.clone(), running.clone());
        tokio::spawn(async move {
            tracing::info!(job = %name, "scheduled sync run starts");
            let result = run_locked(&ctx, &name, &|_| {}).await;
            lock.release().await;
            match result {
                Ok(run) => tracing::info!(
                    job = %name,
                    run = run.id,
                    version = run.version,
                    rows = run.counts.rows_written,
                    quarantined = run.counts.rows_quarantined,
                    "scheduled sync run published"
                ),
                Err(e) => tracing::warn!(job = %name, error = %e, "scheduled sync run failed"),
            }
            running.lock().expect("not poisoned").remove(&name);
        });
    }
    Ok(())
}

/// Whether `job`'s next fire time after its last run (or its creation)
/// has passed.
async fn due(
    ctx: &SyncContext,
    job: &tongban_catalog::sync::SyncJob,
    schedule: &cron::Schedule,
    now: DateTime<Utc>,
) -> crate::Result<bool> {
    let last = ctx
        .store
        .list_sync_runs(Some(&job.spec.name), 1)
        .await?
        .first()
        .map_or(job.created_at, |r| r.started_at);
    Ok(next_after(schedule, last).is_some_and(|due| due <= now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_fire_in_china_time() {
        let s = parse("0 30 2 * * *").unwrap();
        let after: DateTime<Utc> = "2026-11-22T00:00:00Z".parse().unwrap();
        // 02:30 in Shanghai is 18:30 UTC the day before; next is 18:30 UTC.
        assert_eq!(
            next_after(&s, after).unwrap().to_rfc3339(),
            "2026-11-22T18:30:00+00:00"
        );
        assert!(parse("every night").unwrap_err().contains("seconds first"));
    }
}
