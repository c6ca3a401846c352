//! # ratekeeper-embassy
//!
//! ratekeeper on Embassy firmware. So far: [`EmbassyClock`], the core's
//! [`Clock`] over `embassy_time::Instant`. The fixed-capacity store and the
//! async `acquire` follow.
//!
//! This crate never picks an `embassy-time` tick rate or driver: the
//! firmware does (two choices would fail its build).
#![no_std]
#![forbid(unsafe_code)]

use ratekeeper_core::{Clock, Instant};

/// The core's [`Clock`] over `embassy_time::Instant::now()`.
///
/// Ticks become nanoseconds exactly when the tick rate divides 10⁹ (every
/// usual rate: 1 kHz, 32.768 kHz is the exception and rounds down), and
/// saturate at the core's 584-year horizon.
///
/// ```
/// use ratekeeper_core::Clock;
/// use ratekeeper_embassy::EmbassyClock;
///
/// let clock = EmbassyClock;
/// let a = clock.now();
/// assert!(clock.now() >= a);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct EmbassyClock;

impl Clock for EmbassyClock {
    fn now(&self) -> Instant {
        ticks_to_instant(embassy_time::Instant::now().as_ticks(), embassy_time::TICK_HZ)
    }
}

fn ticks_to_instant(ticks: u64, tick_hz: u64) -> Instant {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(tick_hz.max(1));
    Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_convert_to_nanoseconds() {
        assert_eq!(ticks_to_instant(1_500, 1_000), Instant::from_nanos(1_500_000_000));
        assert_eq!(ticks_to_instant(1, 32_768), Instant::from_nanos(30_517));
        assert_eq!(ticks_to_instant(u64::MAX, 1), Instant::MAX);
    }

    #[test]
    fn follows_the_embassy_clock() {
        let driver = embassy_time::MockDriver::get();
        let before = EmbassyClock.now();
        driver.advance(embassy_time::Duration::from_millis(20));
        assert!(
            EmbassyClock.now().saturating_duration_since(before) >= ratekeeper_core::Nanos::from_millis(20)
        );
    }
}
