//! Whether decisions go to Redis or to the fallback, and when to probe.
//!
//! On Redis, every call goes to Redis. After a failure, calls go to the
//! fallback, and one call at a time is let through to Redis as a probe once
//! the backoff has passed; its success moves everything back, its failure
//! doubles the backoff (up to the maximum).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Where one call should go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Redis is answering.
    Redis,
    /// On fallback, and this call probes Redis.
    Probe,
    /// On fallback.
    Fallback,
}

#[derive(Debug)]
struct Probing {
    in_flight: bool,
    next_at: Instant,
    backoff: Duration,
}

/// The state machine, shared by every call of a store.
#[derive(Debug)]
pub(crate) struct Health {
    on_redis: AtomicBool,
    probing: Mutex<Probing>,
    min: Duration,
    max: Duration,
    pub(crate) fallbacks_entered: AtomicU64,
    pub(crate) recoveries: AtomicU64,
}

impl Health {
    pub(crate) fn new(min: Duration, max: Duration) -> Health {
        metrics::gauge!("ratekeeper_redis_on_fallback").set(0.0);
        Health {
            on_redis: AtomicBool::new(true),
            probing: Mutex::new(Probing {
                in_flight: false,
                next_at: Instant::now(),
                backoff: min,
            }),
            min,
            max,
            fallbacks_entered: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Probing> {
        // Every update under the lock is a few plain assignments: a panic
        // cannot leave it half done.
        self.probing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn on_redis(&self) -> bool {
        self.on_redis.load(Ordering::Acquire)
    }

    /// Where the next call goes.
    pub(crate) fn route(&self) -> Route {
        if self.on_redis() {
            return Route::Redis;
        }
        let mut probing = self.lock();
        if self.on_redis() {
            return Route::Redis;
        }
        if !probing.in_flight && Instant::now() >= probing.next_at {
            probing.in_flight = true;
            Route::Probe
        } else {
            Route::Fallback
        }
    }

    /// Redis answered a call.
    pub(crate) fn succeeded(&self) {
        if self.on_redis() {
            return;
        }
        let mut probing = self.lock();
        if self.on_redis.swap(true, Ordering::AcqRel) {
            return;
        }
        probing.in_flight = false;
        probing.backoff = self.min;
        self.recoveries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ratekeeper_redis_recovered_total").increment(1);
        metrics::gauge!("ratekeeper_redis_on_fallback").set(0.0);
        tracing::info!("ratekeeper: Redis answers again; decisions are back on Redis");
    }

    /// Redis failed a call (`route` is where the call was sent).
    pub(crate) fn failed(&self, route: Route, reason: &dyn std::fmt::Display) {
        let mut probing = self.lock();
        if self.on_redis.swap(false, Ordering::AcqRel) {
            probing.in_flight = false;
            probing.backoff = self.min;
            probing.next_at = Instant::now() + self.min;
            self.fallbacks_entered.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("ratekeeper_redis_fallback_entered_total").increment(1);
            metrics::gauge!("ratekeeper_redis_on_fallback").set(1.0);
            tracing::warn!(
                %reason,
                "ratekeeper: Redis failed; deciding on the in-process fallback with a share of each limit"
            );
        } else if route == Route::Probe {
            probing.in_flight = false;
            probing.backoff = probing.backoff.saturating_mul(2).min(self.max);
            probing.next_at = Instant::now() + probing.backoff;
            tracing::debug!(%reason, backoff = ?probing.backoff, "ratekeeper: Redis probe failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_probe_at_a_time_and_back_on_success() {
        let health = Health::new(Duration::from_secs(1), Duration::from_secs(1));
        assert_eq!(health.route(), Route::Redis);
        health.failed(Route::Redis, &"down");
        assert!(!health.on_redis());
        health.lock().next_at = Instant::now();
        assert_eq!(health.route(), Route::Probe);
        assert_eq!(health.route(), Route::Fallback, "one probe at a time");
        health.failed(Route::Probe, &"still down");
        health.lock().next_at = Instant::now();
        assert_eq!(health.route(), Route::Probe);
        health.succeeded();
        assert_eq!(health.route(), Route::Redis);
        assert_eq!(health.fallbacks_entered.load(Ordering::Relaxed), 1);
        assert_eq!(health.recoveries.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let health = Health::new(Duration::from_secs(1), Duration::from_secs(3));
        health.failed(Route::Redis, &"down");
        for expected in [2, 3, 3] {
            health.lock().next_at = Instant::now();
            assert_eq!(health.route(), Route::Probe);
            health.failed(Route::Probe, &"down");
            assert_eq!(health.lock().backoff, Duration::from_secs(expected));
        }
    }
}
