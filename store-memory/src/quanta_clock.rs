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
/// reuse the calibration. Each clock reads that calibration once, into a
/// fixed-point factor, so a reading costs the counter, one multiplication
/// and a constant shift. Readings on different cores are as consistent as
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
    /// Nanoseconds per tick of the counter, in units of 2⁻³².
    scale: u64,
}

/// The fixed point of [`QuantaClock::scale`]: a constant shift costs one
/// instruction where quanta's own conversion, whose shift is a variable,
/// costs several on every reading.
const SCALE_SHIFT: u32 = 32;

/// Ticks over which the scale is read from quanta's calibration: many
/// enough that the scale keeps about 2⁻³⁰ of relative precision on a 3 GHz
/// counter (a few microseconds an hour from quanta's own conversion, far
/// below the error of the calibration itself), few enough that their
/// nanoseconds fit `u64` for any counter faster than 60 Hz.
const SCALE_PROBE_TICKS: u64 = 1 << 40;

impl QuantaClock {
    /// A clock whose origin is now.
    pub fn new() -> QuantaClock {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        let probe_nanos = u128::from(clock.delta_as_nanos(0, SCALE_PROBE_TICKS));
        let scale = (probe_nanos << SCALE_SHIFT) / u128::from(SCALE_PROBE_TICKS);
        QuantaClock {
            clock,
            origin,
            scale: u64::try_from(scale).unwrap_or(u64::MAX),
        }
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
        // The rare reading behind the origin (another core's counter
        // lagging the one the clock was made on) is a call to a cold
        // function, so that it compiles to a predicted branch rather than a
        // conditional move in the chain a decision waits for.
        match self.clock.raw().checked_sub(self.origin) {
            Some(ticks) => Instant::from_nanos(self.nanos(ticks)),
            None => before_origin(),
        }
    }
}

impl QuantaClock {
    /// `ticks` of the counter in nanoseconds: a multiplication and a
    /// constant shift.
    #[inline]
    fn nanos(&self, ticks: u64) -> u64 {
        let nanos = (u128::from(ticks) * u128::from(self.scale)) >> SCALE_SHIFT;
        // Exact, not a truncation: with a scale of at most one nanosecond
        // per tick (counters of 1 GHz and more, and the operating system's
        // clock) `nanos ≤ ticks`; with a slower counter it stays below
        // 2⁶⁴ for the 584 years an `Instant` spans from the origin.
        nanos as u64
    }
}

/// A reading behind the origin reads as the origin.
#[cold]
#[inline(never)]
fn before_origin() -> Instant {
    Instant::from_nanos(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed-point scale converts as quanta's own conversion does, to
    /// within its stated precision, from one tick to years of them.
    #[test]
    fn converts_as_quanta() {
        let clock = QuantaClock::new();
        for ticks in [0, 1, 999, 1 << 20, 3_000_000_000, 10_800_000_000_000, 1 << 50] {
            let ours = clock.nanos(ticks);
            let quanta = clock.clock.delta_as_nanos(0, ticks);
            let allowed = quanta / (1 << 29) + 1;
            assert!(
                ours.abs_diff(quanta) <= allowed,
                "{ticks} ticks: {ours} ns here, {quanta} ns by quanta"
            );
        }
    }
}
