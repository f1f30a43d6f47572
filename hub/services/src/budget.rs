//! A retry budget, after Envoy's `retry_budget`: retries in flight may be at
//! most `budget_pct` percent of the calls in flight to the service, but
//! `min_concurrent` retries are always allowed. Unlike a fixed retry count,
//! a budget cannot multiply the load on a provider that is already failing:
//! when every call fails, retries stay a fraction of the traffic.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// One service's budget. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Budget {
    pct: u32,
    min: u32,
    calls: Arc<AtomicU32>,
    retries: Arc<AtomicU32>,
}

/// A call in flight; counted until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicU32>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Budget {
    pub fn new(budget_pct: u32, min_concurrent: u32) -> Budget {
        Budget {
            pct: budget_pct,
            min: min_concurrent,
            calls: Arc::default(),
            retries: Arc::default(),
        }
    }

    /// Counts a call in flight.
    pub fn call(&self) -> InFlight {
        self.calls.fetch_add(1, Ordering::Relaxed);
        InFlight(self.calls.clone())
    }

    /// A retry, if the budget has room: counted until dropped.
    pub fn retry(&self) -> Option<InFlight> {
        let calls = self.calls.load(Ordering::Relaxed);
        let allowed = self.min.max(calls * self.pct / 100);
        let mut current = self.retries.load(Ordering::Relaxed);
        loop {
            if current >= allowed {
                return None;
            }
            match self.retries.compare_exchange_weak(
                current,
                current + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(InFlight(self.retries.clone())),
                Err(now) => current = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_a_share_of_calls_with_a_floor() {
        let b = Budget::new(20, 2);
        let calls: Vec<_> = (0..20).map(|_| b.call()).collect();
        // 20 % of 20 calls = 4 retries at once.
        let retries: Vec<_> = (0..4).map(|_| b.retry().expect("within budget")).collect();
        assert!(b.retry().is_none(), "a fifth retry exceeds the budget");
        drop(retries);
        drop(calls);
        // No calls: the floor of 2 still holds.
        let _a = b.retry().unwrap();
        let _b = b.retry().unwrap();
        assert!(b.retry().is_none());
    }
}
