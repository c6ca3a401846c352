//! A monotonic clock read from the CPU's time-stamp counter.

use ratekeeper_core::{Clock, Instant};

/// A monotonic [`Clock`] over [`quanta`]: on x86 with an invariant TSC it
/// reads the time-stamp counter and scales it to nanoseconds, a few
/// nanoseconds per reading where `std::time::Instant` makes a (vDSO)
/// system call; elsewhere quanta falls back to the operating system's
/// monotonic clock. Its origin is the moment it was made.
///
/// The first `QuantaClock` in a process calibrates the counter against the
/// operating system's clock, which takes a few milliseconds; later ones
/// reuse the calibration. Readings on different cores are as consistent as
/// the CPU's counters are with each other (invariant and synchronized on
/// current x86 servers); a reading that would go backwards reads as the
/// origin's distance instead, never an earlier instant than the origin.
///
/// ```
/// use ratekeeper_core::Clock;
/// use ratekeeper_memory::QuantaClock;
///
/// let clock = QuantaClock::new();
/// let a = clock.now();
/// assert!(clock.now() >= a);
/// ```
#[derive(Debug, Clone)]
pub struct QuantaClock {
    clock: quanta::Clock,
    origin: u64,
}

impl QuantaClock {
    /// A clock whose origin is now.
    pub fn new() -> QuantaClock {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        QuantaClock { clock, origin }
    }
}

impl Default for QuantaClock {
    fn default() -> QuantaClock {
        QuantaClock::new()
    }
}

impl Clock for QuantaClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::from_nanos(self.clock.delta_as_nanos(self.origin, self.clock.raw()))
    }
}
