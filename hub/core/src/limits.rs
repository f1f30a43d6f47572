//! Rate limits from need quotas (governor): a consumer using a resource under
//! a need with a daily quota gets that many keys a day, replenished evenly
//! (GCRA), with the whole quota available as a burst. Going over is a 429
//! with `Retry-After`.
//!
//! Limiters are kept per (consumer, resource, quota): when the data office
//! changes a quota, the next request starts a limiter with the new one.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Key = (String, String, u32);

#[derive(Clone, Default)]
pub struct Limits {
    limiters: Arc<Mutex<HashMap<Key, Arc<DefaultDirectRateLimiter>>>>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Retry after this long.
    RetryAfter(Duration),
    /// More keys in one request than the whole daily quota.
    TooMany,
}

impl Limits {
    /// Takes `n` keys from the consumer's daily quota for the resource.
    pub fn take(
        &self,
        consumer: &str,
        resource: &str,
        daily_quota: u32,
        n: usize,
    ) -> Result<(), Refused> {
        let Some(quota) = NonZeroU32::new(daily_quota) else {
            return Err(Refused::TooMany);
        };
        let key = (consumer.to_string(), resource.to_string(), daily_quota);
        let limiter = {
            let mut map = self.limiters.lock().expect("limits lock");
            map.entry(key)
                .or_insert_with(|| {
                    let per_cell = Duration::from_secs(86_400) / daily_quota;
                    let q = Quota::with_period(per_cell)
                        .expect("a positive period")
                        .allow_burst(quota);
                    Arc::new(RateLimiter::direct(q))
                })
                .clone()
        };
        let n = NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        match limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Refused::RetryAfter(
                not_until.wait_time_from(DefaultClock::default().now()),
            )),
            Err(_) => Err(Refused::TooMany),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daily_quota_is_a_burst_then_an_even_trickle() {
        let limits = Limits::default();
        assert_eq!(limits.take("xh", "101", 3, 2), Ok(()));
        assert_eq!(limits.take("xh", "101", 3, 1), Ok(()));
        let Err(Refused::RetryAfter(wait)) = limits.take("xh", "101", 3, 1) else {
            panic!("over quota")
        };
        assert!(
            wait > Duration::from_secs(8 * 3600 - 2) && wait <= Duration::from_secs(8 * 3600),
            "{wait:?}"
        );
        assert_eq!(limits.take("pd", "101", 3, 1), Ok(()), "per consumer");
        assert_eq!(limits.take("xh", "102", 3, 1), Ok(()), "per resource");
        assert_eq!(
            limits.take("xh", "101", 5, 1),
            Ok(()),
            "a changed quota starts afresh"
        );
        assert_eq!(limits.take("xh", "101", 5, 6), Err(Refused::TooMany));
    }
}
