//! # ratekeeper-embassy
//!
//! ratekeeper on Embassy firmware, with no heap:
//!
//! - [`EmbassyClock`]: the core's [`Clock`] over `embassy_time::Instant`;
//! - [`FixedStore`]: the core's [`Store`](ratekeeper_core::Store) in
//!   fixed-size tables behind an `embassy_sync` blocking mutex, 16 bytes a
//!   bucket, with a clear error when full;
//! - [`acquire`]: reserve a slot and sleep until it comes on
//!   `embassy_time::Delay` (a `Timer` underneath), and
//!   [`acquire_with_delay`] for HALs that offer only an
//!   `embedded_hal_async` delay.
//!
//! ```
//! use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
//! use ratekeeper_core::{Acquire, Instant, ManualClock, Nanos, Policy, PolicyConfig, PolicySource, Store};
//! use ratekeeper_embassy::FixedStore;
//!
//! // Firmware passes `EmbassyClock`; a manual clock keeps this example exact.
//! static STORE: FixedStore<CriticalSectionRawMutex, 16, 4, ManualClock> = FixedStore::new(ManualClock::new());
//!
//! // Close's search endpoint allows 16 requests per second.
//! let key = "api.close.com/api/v1/data/search/";
//! let policy = Policy::new(16, Nanos::from_secs(1), PolicySource::Configured, Instant::ZERO).unwrap();
//! STORE.set_policy(key, &policy).unwrap();
//!
//! let gcra = STORE.policy(key).unwrap().unwrap().to_gcra(&PolicyConfig::default());
//! let first = STORE.acquire(key, &Acquire::reserve(gcra, Nanos::from_secs(5))).unwrap();
//! let second = STORE.acquire(key, &Acquire::reserve(gcra, Nanos::from_secs(5))).unwrap();
//! assert_eq!(first.allowed().unwrap().wait, Nanos::ZERO);
//! // In firmware, `ratekeeper_embassy::acquire` would sleep this long.
//! assert_eq!(second.allowed().unwrap().wait, gcra.emission_interval());
//! ```
//!
//! This crate never picks an `embassy-time` tick rate or driver: the
//! firmware does (two choices would fail its build). It builds for
//! thumbv6m-none-eabi, which has no compare-and-swap: use a
//! `CriticalSectionRawMutex` there.
//!
//! ## Features
//!
//! - `defmt`: `defmt::Format` for [`FixedStoreError`] and the core's types.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod acquire;
mod bucket;
mod store;

pub use acquire::{acquire, acquire_with_delay};
pub use bucket::key_hash;
pub use store::{FixedStore, FixedStoreError};

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
    const NANOS_PER_SEC: u64 = 1_000_000_000;
    // Every usual tick rate divides a second into whole nanoseconds: then
    // one saturating product is exact (the branch is decided at compile
    // time; the 128-bit form costs 32-bit targets code).
    if tick_hz != 0 && NANOS_PER_SEC.is_multiple_of(tick_hz) {
        return Instant::from_nanos(ticks.saturating_mul(NANOS_PER_SEC / tick_hz));
    }
    let nanos = u128::from(ticks) * u128::from(NANOS_PER_SEC) / u128::from(tick_hz.max(1));
    Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Held by every test that moves embassy-time's mock driver, which all the
/// tests of the crate share: one moving it under another would break
/// what that one expects of it.
#[cfg(test)]
static MOCK_DRIVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_convert_to_nanoseconds() {
        assert_eq!(ticks_to_instant(1_500, 1_000), Instant::from_nanos(1_500_000_000));
        assert_eq!(ticks_to_instant(1, 32_768), Instant::from_nanos(30_517));
        assert_eq!(ticks_to_instant(u64::MAX, 1), Instant::MAX);
        assert_eq!(ticks_to_instant(u64::MAX / 3, 32_768), Instant::MAX);
        assert_eq!(ticks_to_instant(u64::MAX / 1_000_000 + 1, 1_000), Instant::MAX);
        assert_eq!(
            ticks_to_instant(u64::MAX / 1_000_000, 1_000),
            Instant::from_nanos(u64::MAX / 1_000_000 * 1_000_000)
        );
        assert_eq!(ticks_to_instant(7, 0), Instant::from_nanos(7_000_000_000));
    }

    #[test]
    fn follows_the_embassy_clock() {
        let _moving = MOCK_DRIVER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let driver = embassy_time::MockDriver::get();
        let before = EmbassyClock.now();
        driver.advance(embassy_time::Duration::from_millis(20));
        assert!(
            EmbassyClock.now().saturating_duration_since(before) >= ratekeeper_core::Nanos::from_millis(20)
        );
    }
}
