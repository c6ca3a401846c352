//! Where "now" comes from: the [`Clock`] trait, a [`ManualClock`] for tests
//! and simulations, and (with the `std` feature) a `MonotonicClock`.
//!
//! A clock is a generic parameter of whatever needs one, never a global, so
//! tests that each own a manual clock run in parallel and a simulator can
//! drive a whole fleet of clients from one clock.

use crate::time::{Instant, Nanos};

/// A source of [`Instant`]s.
///
/// # Contract for implementors
///
/// - `now` MUST be monotonic: a later call never returns an earlier instant
///   than a previous call on the same clock (it may return the same one).
///   Limiters tolerate a clock that stalls, but one that jumps back makes
///   them admit too little, never too much: GCRA treats a theoretical
///   arrival time in the future as "not yet replenished".
/// - `now` MUST be cheap and MUST NOT block: it sits on the hot path of
///   every decision.
/// - The origin is the clock's own. Instants from different clocks are never
///   compared; anything that crosses a process boundary travels as a span
///   ([`Nanos`]).
///
/// ```
/// use ratekeeper_core::{Clock, Instant, ManualClock, Nanos};
///
/// fn elapsed<C: Clock>(clock: &C, since: Instant) -> Nanos {
///     clock.now().saturating_duration_since(since)
/// }
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Nanos::from_millis(250));
/// assert_eq!(elapsed(&clock, start), Nanos::from_millis(250));
/// ```
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

#[cfg(target_has_atomic = "64")]
type ManualCell = core::sync::atomic::AtomicU64;
#[cfg(not(target_has_atomic = "64"))]
type ManualCell = core::cell::Cell<u64>;

/// A clock that moves only when told to: the one clock of every test and
/// of the simulator.
///
/// On targets with 64-bit atomics it is `Sync`, so many threads can share
/// one (`&ManualClock` is itself a [`Clock`]); on targets without them
/// (thumbv6m, thumbv7em) it is single-threaded. Moving it backwards is
/// refused, keeping the monotonic contract of [`Clock`].
///
/// ```
/// use ratekeeper_core::{Clock, Instant, ManualClock, Nanos};
///
/// let clock = ManualClock::starting_at(Instant::from_nanos(10));
/// clock.advance(Nanos::from_nanos(5));
/// assert_eq!(clock.now(), Instant::from_nanos(15));
/// assert!(clock.set(Instant::from_nanos(20)));
/// assert!(!clock.set(Instant::from_nanos(1)), "never backwards");
/// assert_eq!(clock.now(), Instant::from_nanos(20));
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: ManualCell,
}

impl ManualClock {
    /// A clock at its origin, [`Instant::ZERO`].
    pub const fn new() -> ManualClock {
        ManualClock::starting_at(Instant::ZERO)
    }

    /// A clock at `start`.
    pub const fn starting_at(start: Instant) -> ManualClock {
        ManualClock {
            nanos: ManualCell::new(start.as_nanos()),
        }
    }

    /// Moves the clock forward by `span`, saturating at [`Instant::MAX`].
    /// Returns the new instant.
    pub fn advance(&self, span: Nanos) -> Instant {
        #[cfg(target_has_atomic = "64")]
        {
            use core::sync::atomic::Ordering;
            let mut current = self.nanos.load(Ordering::Acquire);
            loop {
                let next = current.saturating_add(span.as_nanos());
                match self
                    .nanos
                    .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return Instant::from_nanos(next),
                    Err(seen) => current = seen,
                }
            }
        }
        #[cfg(not(target_has_atomic = "64"))]
        {
            let next = self.nanos.get().saturating_add(span.as_nanos());
            self.nanos.set(next);
            Instant::from_nanos(next)
        }
    }

    /// Moves the clock to `instant` if that is not in its past; returns
    /// whether it moved (or was already there).
    pub fn set(&self, instant: Instant) -> bool {
        #[cfg(target_has_atomic = "64")]
        {
            use core::sync::atomic::Ordering;
            self.nanos.fetch_max(instant.as_nanos(), Ordering::AcqRel) <= instant.as_nanos()
        }
        #[cfg(not(target_has_atomic = "64"))]
        {
            if self.nanos.get() <= instant.as_nanos() {
                self.nanos.set(instant.as_nanos());
                true
            } else {
                false
            }
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        #[cfg(target_has_atomic = "64")]
        {
            Instant::from_nanos(self.nanos.load(core::sync::atomic::Ordering::Acquire))
        }
        #[cfg(not(target_has_atomic = "64"))]
        {
            Instant::from_nanos(self.nanos.get())
        }
    }
}

/// The operating system's monotonic clock (`std::time::Instant`), with its
/// origin at the moment the `MonotonicClock` was made.
///
/// ```
/// use ratekeeper_core::{Clock, MonotonicClock};
///
/// let clock = MonotonicClock::new();
/// let a = clock.now();
/// assert!(clock.now() >= a);
/// ```
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl MonotonicClock {
    /// A clock whose origin is now.
    pub fn new() -> MonotonicClock {
        MonotonicClock {
            origin: std::time::Instant::now(),
        }
    }
}

#[cfg(feature = "std")]
impl Default for MonotonicClock {
    fn default() -> MonotonicClock {
        MonotonicClock::new()
    }
}

#[cfg(feature = "std")]
impl Clock for MonotonicClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(Nanos::from_duration(self.origin.elapsed()).as_nanos())
    }
}
