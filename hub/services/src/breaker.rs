//! A circuit breaker with resilience4j's semantics (`CircuitBreaker`, count-
//! based sliding window), so that operators who know resilience4j read its
//! settings and its states the same way:
//!
//! - **closed**: every call is permitted; the outcomes of the last `window`
//!   calls are kept. Once at least `min_calls` are recorded, a failure rate
//!   at or above `failure_rate_pct`, or a slow-call rate (calls longer than
//!   `slow_call_ms`) at or above `slow_call_rate_pct`, opens the breaker;
//! - **open**: every call is refused, with the time left, for `wait_open_ms`;
//!   then the first call finds it **half-open**;
//! - **half-open**: `half_open_calls` trial calls are permitted, no more;
//!   when all have ended, their rates decide: above a threshold it opens
//!   again, otherwise it closes with an empty window.
//!
//! A permit that is dropped without an outcome (the caller went away) gives
//! its trial slot back, as resilience4j's `releasePermission` does, so an
//! abandoned call never wedges the breaker half-open. Times are passed in:
//! the breaker reads no clock, and its tests need no sleeping.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tongban_catalog::services::BreakerSettings;

/// The breaker's state, as health data shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
struct Outcome {
    failed: bool,
    slow: bool,
}

#[derive(Debug)]
enum Phase {
    Closed,
    Open {
        since: Instant,
    },
    HalfOpen {
        /// Trial calls handed out and not yet ended.
        in_flight: u32,
        /// Trial calls ended.
        done: Vec<Outcome>,
    },
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    window: VecDeque<Outcome>,
    /// How many times the breaker opened: health data.
    opened: u64,
}

/// One service's breaker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Breaker {
    settings: BreakerSettings,
    inner: Arc<Mutex<Inner>>,
}

/// Why a call is not permitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Open: retry after this long.
    Open(Duration),
    /// Half-open and all trial calls are out.
    TrialsTaken,
}

/// Permission for one call. Record its outcome with [`Permit::record`];
/// dropping it unrecorded gives a half-open trial slot back.
#[must_use]
#[derive(Debug)]
pub struct Permit {
    breaker: Breaker,
    trial: bool,
    done: bool,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Breaker {
        Breaker {
            settings,
            inner: Arc::new(Mutex::new(Inner {
                phase: Phase::Closed,
                window: VecDeque::new(),
                opened: 0,
            })),
        }
    }

    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    /// The state at `now` (open turns half-open once its wait is over).
    pub fn state(&self, now: Instant) -> State {
        let inner = self.lock();
        match inner.phase {
            Phase::Closed => State::Closed,
            Phase::Open { since } if now < since + self.wait() => State::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => State::HalfOpen,
        }
    }

    /// How many times it has opened.
    pub fn times_opened(&self) -> u64 {
        self.lock().opened
    }

    /// Asks to make a call at `now`.
    pub fn try_acquire(&self, now: Instant) -> Result<Permit, Refusal> {
        let mut inner = self.lock();
        if let Phase::Open { since } = inner.phase {
            let until = since + self.wait();
            if now < until {
                return Err(Refusal::Open(until - now));
            }
            inner.phase = Phase::HalfOpen {
                in_flight: 0,
                done: Vec::new(),
            };
        }
        let trial = match &mut inner.phase {
            Phase::Closed => false,
            Phase::HalfOpen { in_flight, done } => {
                if *in_flight + done.len() as u32 >= self.settings.half_open_calls {
                    return Err(Refusal::TrialsTaken);
                }
                *in_flight += 1;
                true
            }
            Phase::Open { .. } => unreachable!("open was handled above"),
        };
        Ok(Permit {
            breaker: self.clone(),
            trial,
            done: false,
        })
    }

    fn wait(&self) -> Duration {
        Duration::from_millis(self.settings.wait_open_ms)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding it cannot leave it half-updated in a way
        // that matters more than refusing every call would.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether these outcomes open the breaker.
    fn trips<'a>(&self, outcomes: impl Iterator<Item = &'a Outcome> + Clone) -> bool {
        let n = outcomes.clone().count() as u64;
        if n == 0 {
            return false;
        }
        let failed = outcomes.clone().filter(|o| o.failed).count() as u64;
        let slow = outcomes.filter(|o| o.slow).count() as u64;
        failed * 100 >= u64::from(self.settings.failure_rate_pct) * n
            || slow * 100 >= u64::from(self.settings.slow_call_rate_pct) * n
    }

    fn record(&self, trial: bool, outcome: Outcome, now: Instant) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        match &mut inner.phase {
            Phase::Closed if !trial => {
                inner.window.push_back(outcome);
                while inner.window.len() > self.settings.window as usize {
                    inner.window.pop_front();
                }
                if inner.window.len() >= self.settings.min_calls as usize
                    && self.trips(inner.window.iter())
                {
                    inner.phase = Phase::Open { since: now };
                    inner.window.clear();
                    inner.opened += 1;
                }
            }
            Phase::HalfOpen { in_flight, done } if trial => {
                *in_flight = in_flight.saturating_sub(1);
                done.push(outcome);
                if done.len() as u32 >= self.settings.half_open_calls {
                    if self.trips(done.iter()) {
                        inner.phase = Phase::Open { since: now };
                        inner.opened += 1;
                    } else {
                        inner.phase = Phase::Closed;
                    }
                    inner.window.clear();
                }
            }
            // A call permitted in an earlier phase ends after the phase
            // changed: resilience4j ignores it too.
            _ => {}
        }
    }

    fn release(&self, trial: bool) {
        if !trial {
            return;
        }
        if let Phase::HalfOpen { in_flight, .. } = &mut self.lock().phase {
            *in_flight = in_flight.saturating_sub(1);
        }
    }
}

impl Permit {
    /// Records how the call went: `failed` (an error status, a timeout, a
    /// broken answer) and how long it took.
    pub fn record(mut self, failed: bool, took: Duration, now: Instant) {
        self.done = true;
        let slow = took.as_millis() > u128::from(self.breaker.settings.slow_call_ms);
        self.breaker
            .record(self.trial, Outcome { failed, slow }, now);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.release(self.trial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            window: 10,
            min_calls: 4,
            failure_rate_pct: 50,
            slow_call_ms: 100,
            slow_call_rate_pct: 100,
            wait_open_ms: 1_000,
            half_open_calls: 2,
        }
    }

    const FAST: Duration = Duration::from_millis(5);

    #[test]
    fn opens_at_the_failure_rate_once_min_calls_are_in() {
        let b = Breaker::new(settings());
        let t = Instant::now();
        for _ in 0..3 {
            b.try_acquire(t).unwrap().record(true, FAST, t);
        }
        assert_eq!(b.state(t), State::Closed, "3 calls < min_calls");
        b.try_acquire(t).unwrap().record(false, FAST, t);
        // 3 of 4 failed: 75 % ≥ 50 %.
        assert_eq!(b.state(t), State::Open);
        assert_eq!(
            b.try_acquire(t + Duration::from_millis(400)).unwrap_err(),
            Refusal::Open(Duration::from_millis(600))
        );
        assert_eq!(b.times_opened(), 1);
    }

    #[test]
    fn stays_closed_below_the_rate() {
        let b = Breaker::new(settings());
        let t = Instant::now();
        for i in 0..20 {
            b.try_acquire(t).unwrap().record(i % 4 == 0, FAST, t);
        }
        assert_eq!(b.state(t), State::Closed);
    }

    #[test]
    fn slow_calls_open_it_too() {
        let b = Breaker::new(settings());
        let t = Instant::now();
        for _ in 0..4 {
            b.try_acquire(t)
                .unwrap()
                .record(false, Duration::from_millis(150), t);
        }
        assert_eq!(b.state(t), State::Open);
    }

    #[test]
    fn half_open_permits_its_trials_then_closes_or_opens_again() {
        let b = Breaker::new(settings());
        let t = Instant::now();
        for _ in 0..4 {
            b.try_acquire(t).unwrap().record(true, FAST, t);
        }
        let later = t + Duration::from_millis(1_000);
        assert_eq!(b.state(later), State::HalfOpen);
        let p1 = b.try_acquire(later).unwrap();
        let p2 = b.try_acquire(later).unwrap();
        assert_eq!(b.try_acquire(later).unwrap_err(), Refusal::TrialsTaken);
        p1.record(false, FAST, later);
        p2.record(true, FAST, later);
        // 1 of 2 trials failed: 50 % ≥ 50 %, open again.
        assert_eq!(b.state(later), State::Open);
        let again = later + Duration::from_millis(1_000);
        b.try_acquire(again).unwrap().record(false, FAST, again);
        b.try_acquire(again).unwrap().record(false, FAST, again);
        assert_eq!(b.state(again), State::Closed);
        assert_eq!(b.times_opened(), 2);
    }

    #[test]
    fn an_abandoned_trial_gives_its_slot_back() {
        let b = Breaker::new(settings());
        let t = Instant::now();
        for _ in 0..4 {
            b.try_acquire(t).unwrap().record(true, FAST, t);
        }
        let later = t + Duration::from_secs(2);
        let p1 = b.try_acquire(later).unwrap();
        let p2 = b.try_acquire(later).unwrap();
        drop(p1);
        let p3 = b
            .try_acquire(later)
            .expect("the dropped trial's slot is free again");
        p2.record(false, FAST, later);
        p3.record(false, FAST, later);
        assert_eq!(b.state(later), State::Closed);
    }
}
