//! Integer time: [`Nanos`] (a span) and [`Instant`] (a point on a [`Clock`]'s
//! line), both whole nanoseconds in a `u64`.
//!
//! Why integers and not `core::time::Duration`: `Duration` is 12 bytes with a
//! split representation, its arithmetic panics on overflow, and a bucket's
//! whole state should be one machine word that a store can compare-and-swap
//! or a Redis script can hold as one integer. A `u64` of nanoseconds spans
//! about 584 years: that is the overflow horizon of every time in
//! ratekeeper, and every operation here saturates or reports overflow at it
//! instead of wrapping or panicking.
//!
//! `Duration` appears only at the edges ([`Nanos::from_duration`],
//! [`Nanos::to_duration`]), and every conversion that can lose precision
//! says in its name which way it rounds.
//!
//! [`Clock`]: crate::Clock

use core::fmt;
use core::time::Duration;

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A span of time in whole nanoseconds.
///
/// Arithmetic saturates at [`Nanos::MAX`] (about 584 years) and at zero;
/// nothing here panics.
///
/// ```
/// use ratekeeper_core::Nanos;
///
/// let t = Nanos::from_secs(1) / 3;
/// assert_eq!(t.as_nanos(), 333_333_333);
/// assert_eq!(Nanos::from_millis(1500).as_secs_ceil(), 2);
/// assert_eq!(Nanos::MAX + Nanos::from_secs(1), Nanos::MAX);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Nanos(u64);

impl Nanos {
    /// No time at all.
    pub const ZERO: Nanos = Nanos(0);
    /// The longest span representable, about 584 years.
    pub const MAX: Nanos = Nanos(u64::MAX);

    /// A span of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: u64) -> Nanos {
        Nanos(nanos)
    }

    /// A span of `micros` microseconds, saturating at [`Nanos::MAX`].
    pub const fn from_micros(micros: u64) -> Nanos {
        Nanos(micros.saturating_mul(NANOS_PER_MICRO))
    }

    /// A span of `millis` milliseconds, saturating at [`Nanos::MAX`].
    pub const fn from_millis(millis: u64) -> Nanos {
        Nanos(millis.saturating_mul(NANOS_PER_MILLI))
    }

    /// A span of `secs` seconds, saturating at [`Nanos::MAX`].
    pub const fn from_secs(secs: u64) -> Nanos {
        Nanos(secs.saturating_mul(NANOS_PER_SEC))
    }

    /// Converts from [`Duration`], saturating at [`Nanos::MAX`].
    ///
    /// ```
    /// # use ratekeeper_core::Nanos;
    /// # use core::time::Duration;
    /// assert_eq!(Nanos::from_duration(Duration::from_millis(5)), Nanos::from_millis(5));
    /// assert_eq!(Nanos::from_duration(Duration::MAX), Nanos::MAX);
    /// ```
    pub const fn from_duration(duration: Duration) -> Nanos {
        let nanos = duration.as_nanos();
        if nanos > u64::MAX as u128 {
            Nanos::MAX
        } else {
            Nanos(nanos as u64)
        }
    }

    /// Converts to [`Duration`]; exact, since every `Nanos` fits.
    pub const fn to_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// Whole nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole microseconds, rounding down.
    pub const fn as_micros_floor(self) -> u64 {
        self.0 / NANOS_PER_MICRO
    }

    /// Whole milliseconds, rounding down.
    pub const fn as_millis_floor(self) -> u64 {
        self.0 / NANOS_PER_MILLI
    }

    /// Whole milliseconds, rounding up: the right choice for "wait at least".
    pub const fn as_millis_ceil(self) -> u64 {
        // `⌈n / d⌉ = (n − 1) / d + 1` for `n > 0`: one division, and no
        // remainder to work out (shorter code on 32-bit targets). The
        // quotient is below `u64::MAX`, so the `+ 1` is exact.
        match self.0.checked_sub(1) {
            Some(less) => (less / NANOS_PER_MILLI).wrapping_add(1),
            None => 0,
        }
    }

    /// Whole seconds, rounding down.
    pub const fn as_secs_floor(self) -> u64 {
        self.0 / NANOS_PER_SEC
    }

    /// Whole seconds, rounding up: the right choice for "wait at least".
    pub const fn as_secs_ceil(self) -> u64 {
        self.0.div_ceil(NANOS_PER_SEC)
    }

    /// Whether this span is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + rhs`, or `None` past [`Nanos::MAX`].
    pub const fn checked_add(self, rhs: Nanos) -> Option<Nanos> {
        match self.0.checked_add(rhs.0) {
            Some(n) => Some(Nanos(n)),
            None => None,
        }
    }

    /// `self - rhs`, or `None` below zero.
    pub const fn checked_sub(self, rhs: Nanos) -> Option<Nanos> {
        match self.0.checked_sub(rhs.0) {
            Some(n) => Some(Nanos(n)),
            None => None,
        }
    }

    /// `self * rhs`, or `None` past [`Nanos::MAX`].
    pub const fn checked_mul(self, rhs: u64) -> Option<Nanos> {
        match self.0.checked_mul(rhs) {
            Some(n) => Some(Nanos(n)),
            None => None,
        }
    }

    /// `self + rhs`, saturating at [`Nanos::MAX`].
    pub const fn saturating_add(self, rhs: Nanos) -> Nanos {
        Nanos(self.0.saturating_add(rhs.0))
    }

    /// `self - rhs`, saturating at zero.
    pub const fn saturating_sub(self, rhs: Nanos) -> Nanos {
        Nanos(self.0.saturating_sub(rhs.0))
    }

    /// `self * rhs`, saturating at [`Nanos::MAX`].
    pub const fn saturating_mul(self, rhs: u64) -> Nanos {
        Nanos(self.0.saturating_mul(rhs))
    }

    /// `self / rhs` rounding down; `None` when `rhs` is zero.
    pub const fn checked_div_floor(self, rhs: u64) -> Option<Nanos> {
        match self.0.checked_div(rhs) {
            Some(n) => Some(Nanos(n)),
            None => None,
        }
    }

    /// `self / rhs` rounding up; `None` when `rhs` is zero.
    ///
    /// Rounding up is what a limiter wants when it splits a window into
    /// intervals: a slightly longer interval never admits more than the limit.
    pub const fn checked_div_ceil(self, rhs: u64) -> Option<Nanos> {
        // `⌈n / d⌉ = (n − 1) / d + 1` for `n > 0`, as in
        // [`Nanos::as_millis_ceil`]: no remainder to work out.
        if rhs == 0 {
            return None;
        }
        Some(Nanos(match self.0.checked_sub(1) {
            Some(less) => match less.checked_div(rhs) {
                Some(whole) => whole.wrapping_add(1),
                // Never: `rhs > 0`.
                None => 0,
            },
            None => 0,
        }))
    }

    /// The smaller of two spans.
    pub const fn min(self, other: Nanos) -> Nanos {
        if self.0 <= other.0 { self } else { other }
    }

    /// The larger of two spans.
    pub const fn max(self, other: Nanos) -> Nanos {
        if self.0 >= other.0 { self } else { other }
    }
}

impl core::ops::Add for Nanos {
    type Output = Nanos;
    /// Saturating, like [`Nanos::saturating_add`].
    fn add(self, rhs: Nanos) -> Nanos {
        self.saturating_add(rhs)
    }
}

impl core::ops::Sub for Nanos {
    type Output = Nanos;
    /// Saturating at zero, like [`Nanos::saturating_sub`].
    fn sub(self, rhs: Nanos) -> Nanos {
        self.saturating_sub(rhs)
    }
}

impl core::ops::Mul<u64> for Nanos {
    type Output = Nanos;
    /// Saturating, like [`Nanos::saturating_mul`].
    fn mul(self, rhs: u64) -> Nanos {
        self.saturating_mul(rhs)
    }
}

impl core::ops::Div<u64> for Nanos {
    type Output = Nanos;
    /// Rounds down; dividing by zero gives [`Nanos::MAX`] rather than a panic
    /// (an infinitely long span is the limit of `x / 0` for any `x > 0`).
    fn div(self, rhs: u64) -> Nanos {
        match self.checked_div_floor(rhs) {
            Some(n) => n,
            None => Nanos::MAX,
        }
    }
}

impl From<Duration> for Nanos {
    fn from(duration: Duration) -> Nanos {
        Nanos::from_duration(duration)
    }
}

impl From<Nanos> for Duration {
    fn from(nanos: Nanos) -> Duration {
        nanos.to_duration()
    }
}

impl fmt::Debug for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_duration(), f)
    }
}

impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_duration(), f)
    }
}

/// A point in time on one [`Clock`]'s line: nanoseconds since that clock's
/// own origin.
///
/// Instants of different clocks are not comparable; a Redis store, for
/// instance, decides on the server's clock and hands back only spans
/// ([`Nanos`]), never instants. Arithmetic saturates at the ends of the line.
///
/// ```
/// use ratekeeper_core::{Instant, Nanos};
///
/// let start = Instant::from_nanos(1_000);
/// let later = start + Nanos::from_micros(1);
/// assert_eq!(later.saturating_duration_since(start), Nanos::from_micros(1));
/// assert_eq!(start.saturating_duration_since(later), Nanos::ZERO);
/// ```
///
/// [`Clock`]: crate::Clock
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(u64);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(0);
    /// The last representable instant, about 584 years after the origin.
    pub const MAX: Instant = Instant(u64::MAX);

    /// The instant `nanos` nanoseconds after the clock's origin.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }

    /// Nanoseconds since the clock's origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The span since the origin.
    pub const fn since_origin(self) -> Nanos {
        Nanos(self.0)
    }

    /// `self + span`, or `None` past [`Instant::MAX`].
    pub const fn checked_add(self, span: Nanos) -> Option<Instant> {
        match self.0.checked_add(span.0) {
            Some(n) => Some(Instant(n)),
            None => None,
        }
    }

    /// `self - span`, or `None` before the origin.
    pub const fn checked_sub(self, span: Nanos) -> Option<Instant> {
        match self.0.checked_sub(span.0) {
            Some(n) => Some(Instant(n)),
            None => None,
        }
    }

    /// `self + span`, saturating at [`Instant::MAX`].
    pub const fn saturating_add(self, span: Nanos) -> Instant {
        Instant(self.0.saturating_add(span.0))
    }

    /// `self - span`, saturating at the origin.
    pub const fn saturating_sub(self, span: Nanos) -> Instant {
        Instant(self.0.saturating_sub(span.0))
    }

    /// The span from `earlier` to `self`, or `None` when `earlier` is later.
    pub const fn checked_duration_since(self, earlier: Instant) -> Option<Nanos> {
        match self.0.checked_sub(earlier.0) {
            Some(n) => Some(Nanos(n)),
            None => None,
        }
    }

    /// The span from `earlier` to `self`, zero when `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Nanos {
        Nanos(self.0.saturating_sub(earlier.0))
    }

    /// The later of two instants.
    pub const fn max(self, other: Instant) -> Instant {
        if self.0 >= other.0 { self } else { other }
    }

    /// The earlier of two instants.
    pub const fn min(self, other: Instant) -> Instant {
        if self.0 <= other.0 { self } else { other }
    }
}

impl core::ops::Add<Nanos> for Instant {
    type Output = Instant;
    /// Saturating, like [`Instant::saturating_add`].
    fn add(self, rhs: Nanos) -> Instant {
        self.saturating_add(rhs)
    }
}

impl core::ops::Sub<Nanos> for Instant {
    type Output = Instant;
    /// Saturating, like [`Instant::saturating_sub`].
    fn sub(self, rhs: Nanos) -> Instant {
        self.saturating_sub(rhs)
    }
}

impl core::ops::Sub<Instant> for Instant {
    type Output = Nanos;
    /// Saturating at zero, like [`Instant::saturating_duration_since`].
    fn sub(self, rhs: Instant) -> Nanos {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({:?})", Nanos(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_as_named() {
        let t = Nanos::from_nanos(1_500_000_001);
        assert_eq!(t.as_secs_floor(), 1);
        assert_eq!(t.as_secs_ceil(), 2);
        assert_eq!(t.as_millis_floor(), 1500);
        assert_eq!(t.as_millis_ceil(), 1501);
        assert_eq!(t.as_micros_floor(), 1_500_000);
        assert_eq!(Nanos::from_secs(2).as_secs_ceil(), 2);
    }

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        assert_eq!(Nanos::from_secs(u64::MAX), Nanos::MAX);
        assert_eq!(Nanos::from_millis(u64::MAX), Nanos::MAX);
        assert_eq!(Nanos::from_micros(u64::MAX), Nanos::MAX);
        assert_eq!(Nanos::ZERO - Nanos::from_nanos(1), Nanos::ZERO);
        assert_eq!(Nanos::MAX * 2, Nanos::MAX);
        assert_eq!(Nanos::from_secs(1) / 0, Nanos::MAX);
        assert_eq!(Instant::MAX + Nanos::from_nanos(1), Instant::MAX);
        assert_eq!(Instant::ZERO - Nanos::from_nanos(1), Instant::ZERO);
        assert_eq!(Instant::ZERO.checked_sub(Nanos::from_nanos(1)), None);
        assert_eq!(Instant::MAX.checked_add(Nanos::from_nanos(1)), None);
        assert_eq!(Nanos::from_secs(1).checked_div_ceil(0), None);
    }

    #[test]
    fn duration_round_trip() {
        let d = Duration::new(3, 7);
        assert_eq!(Nanos::from(d).to_duration(), d);
        assert_eq!(Duration::from(Nanos::from_millis(2)), Duration::from_millis(2));
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// Rounding up to the millisecond by one division is rounding up
        /// by division and remainder, as it was: on whole milliseconds,
        /// one off them, and anywhere up to the horizon.
        #[test]
        fn millis_ceil_is_div_ceil(
            nanos in proptest::prop_oneof![
                0..u64::MAX,
                (0..u64::MAX / NANOS_PER_MILLI, 0..3u64).prop_map(|(ms, ns)| (ms * NANOS_PER_MILLI + ns).saturating_sub(1)),
                (u64::MAX - 3 * NANOS_PER_MILLI)..=u64::MAX,
                proptest::strategy::Just(0),
            ],
        ) {
            proptest::prop_assert_eq!(Nanos::from_nanos(nanos).as_millis_ceil(), nanos.div_ceil(NANOS_PER_MILLI));
        }

        /// Dividing rounding up by one division is the division and
        /// remainder it was: for zero, multiples and one off them, any
        /// divisor, and at the horizon.
        #[test]
        fn checked_div_ceil_is_div_ceil(
            (nanos, divisor) in proptest::prop_oneof![
                (0..u64::MAX, 0..u64::MAX),
                (0..u64::MAX, 0..1_000u64),
                (0..1u64 << 40, 1..1u64 << 20, 0..3u64)
                    .prop_map(|(q, d, off)| (q.saturating_mul(d).saturating_add(off).saturating_sub(1), d)),
                ((u64::MAX - 3)..=u64::MAX, proptest::prop_oneof![0..3u64, (u64::MAX - 3)..=u64::MAX]),
                (proptest::strategy::Just(0u64), 0..u64::MAX),
            ],
        ) {
            let reference = nanos.checked_div(divisor).map(|_| Nanos::from_nanos(nanos.div_ceil(divisor)));
            proptest::prop_assert_eq!(Nanos::from_nanos(nanos).checked_div_ceil(divisor), reference);
        }
    }
}
