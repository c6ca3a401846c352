//! How long to wait before a retry: exponential backoff with jitter, under
//! a cap, for a bounded number of retries, and never before the server's
//! `Retry-After`.
//!
//! # The delay
//!
//! Retry number `n` (counting from 0) starts from the exponential step
//! `d(n) = base · 2ⁿ`, computed saturating, so no attempt count overflows.
//! The [`Jitter`] then spreads it, and the cap bounds the result:
//!
//! | jitter | delay of retry `n` |
//! | --- | --- |
//! | [`None`](Jitter::None) | `min(d, cap)` |
//! | [`Full`](Jitter::Full) | uniform in `[0, min(d, cap)]` |
//! | [`Equal`](Jitter::Equal) | uniform in `[m/2, m]`, `m = min(d, cap)` |
//! | [`Decorrelated`](Jitter::Decorrelated) | uniform in `[base, min(cap, 3·previous)]`, the first previous being `base` |
//! | [`Additive(j)`](Jitter::Additive) | uniform in `[h − j, h]`, `h = min(d + j, cap)` |
//! | [`Proportional(p)`](Jitter::Proportional) | as additive with `j = p · min(d, cap)` |
//!
//! Full, equal and decorrelated jitter are the three of Marc Brooker's
//! "Exponential Backoff and Jitter" (AWS Architecture Blog, 2015). Additive
//! and proportional are what the teams ratekeeper grew out of configured
//! (GoHighLevel: "up to 1 s"; Supabase: "20%"). Under the cap they are
//! exactly "the step plus up to `j`"; near it, the window of width `j`
//! slides down so it ends at the cap instead of being cut off there, which
//! keeps clients that all reached the cap from retrying in the same
//! instant. **The cap bounds every delay, jitter included**; only a
//! `Retry-After` goes past it.
//!
//! # Retry-After wins
//!
//! [`Backoff::next_delay`] takes the server's `Retry-After` (as a span) and
//! returns `max(delay, retry_after)`: no retry is ever scheduled before the
//! server said it may come.
//!
//! # Randomness
//!
//! The random source is a parameter ([`RandomSource`]), so tests and
//! simulations are reproducible and firmware brings its own hardware RNG.
//! [`SplitMix64`] is a tiny seeded generator for when nothing better is at
//! hand; it is not cryptographic, and jitter needs no more.
//!
//! ```
//! use ratekeeper_core::{Backoff, BackoffConfig, Nanos, SplitMix64};
//!
//! let mut rng = SplitMix64::new(7);
//! let mut backoff = Backoff::new(BackoffConfig::SUPABASE);
//! // 100 ms plus up to 20%.
//! let first = backoff.next_delay(&mut rng, None).unwrap();
//! assert!(first >= Nanos::from_millis(100) && first <= Nanos::from_millis(120));
//! // The server's Retry-After wins over a shorter backoff.
//! let second = backoff.next_delay(&mut rng, Some(Nanos::from_secs(3))).unwrap();
//! assert_eq!(second, Nanos::from_secs(3));
//! ```

use core::fmt;

use crate::time::Nanos;

/// A source of uniformly distributed 64-bit values.
///
/// Anything works that is uniform enough to spread retries: a seeded
/// generator in tests ([`SplitMix64`]), `rand`'s generators on a host, a
/// hardware RNG in firmware.
///
/// ```
/// use ratekeeper_core::RandomSource;
///
/// /// Always the same value: the delays become fully predictable.
/// struct Fixed(u64);
/// impl RandomSource for Fixed {
///     fn next_u64(&mut self) -> u64 {
///         self.0
///     }
/// }
/// assert_eq!(Fixed(3).next_u64(), 3);
/// ```
pub trait RandomSource {
    /// The next value; every `u64` should be about equally likely.
    fn next_u64(&mut self) -> u64;
}

impl<R: RandomSource + ?Sized> RandomSource for &mut R {
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): one `u64` of state, every seed
/// valid, statistically sound for jitter, and not cryptographic.
///
/// ```
/// use ratekeeper_core::{RandomSource, SplitMix64};
///
/// let mut a = SplitMix64::new(1);
/// let mut b = SplitMix64::new(1);
/// assert_eq!(a.next_u64(), b.next_u64(), "the same seed, the same values");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A uniform value in `[low, low + spread]` (both inclusive; the sum
/// fits), by multiply-and-shift: no division, and a bias below 2⁻⁶⁴ per
/// value. Given the spread rather than the upper bound, so a draw from
/// zero (full jitter) has no subtraction to make.
fn uniform(rng: &mut impl RandomSource, low: Nanos, spread: Nanos) -> Nanos {
    // `⌊draw · (d + 1) / 2^64⌋` with `d = spread`: `draw·d + draw` stays
    // below 2^128, so the wrapping operations are exact (and cheaper than
    // saturating ones on 32-bit targets).
    let draw = rng.next_u64();
    let product = u128::from(draw).wrapping_mul(u128::from(spread.as_nanos()));
    // `+ draw` reaches the upper half only through the carry out of the
    // lower one: a 64 × 64-bit product, not one by the 65-bit `d + 1`.
    let (_, carry) = (product as u64).overflowing_add(draw);
    // `scaled ≤ d < 2^64`, so the sum is exact and `low + scaled` fits.
    let scaled = ((product >> 64) as u64).wrapping_add(u64::from(carry));
    Nanos::from_nanos(low.as_nanos().wrapping_add(scaled))
}

/// `⌊value · bp / 10^4⌋` for `bp ≤ 10^4`, without a 128-bit product or
/// division: with `value = q·10^4 + r`, it is `q·bp + ⌊r·bp / 10^4⌋`, where
/// `q·bp ≤ value`, `r·bp < 10^8 < 2^32` and their sum `≤ value` all fit:
/// the wrapping operations are exact, and the second division is 32-bit.
fn proportion(value: Nanos, bp: u16) -> Nanos {
    const BASIS_POINTS: u64 = 10_000;
    let value = value.as_nanos();
    let whole = (value / BASIS_POINTS).wrapping_mul(u64::from(bp));
    // `r < 10^4` fits a `u32`; so does `r·bp < 10^8`.
    let rest = (value % BASIS_POINTS) as u32;
    let rest = rest.wrapping_mul(u32::from(bp)) / 10_000;
    Nanos::from_nanos(whole.wrapping_add(u64::from(rest)))
}

/// How a backoff step is spread; see the [module docs](self) for each rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Jitter {
    /// No spreading: every client retries at the same instants.
    None,
    /// Uniform between zero and the step: the widest spread.
    Full,
    /// Uniform between half the step and the step.
    Equal,
    /// Each delay uniform between `base` and three times the previous one.
    Decorrelated,
    /// The step plus up to this much.
    Additive(Nanos),
    /// The step plus up to this share of it, in basis points (1/100 %,
    /// at most 10,000).
    Proportional(u16),
}

/// Why a [`BackoffConfig`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BackoffError {
    /// The base delay was zero: exponential growth from zero stays zero.
    ZeroBase,
    /// The cap was below the base delay.
    CapBelowBase,
    /// A proportional jitter above 100%.
    JitterOutOfRange,
}

impl fmt::Display for BackoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackoffError::ZeroBase => "the base delay must be longer than zero",
            BackoffError::CapBelowBase => "the cap must be at least the base delay",
            BackoffError::JitterOutOfRange => "a proportional jitter must be between 0% and 100%",
        })
    }
}

impl core::error::Error for BackoffError {}

/// The shape of a backoff: base delay, cap, how many retries, which jitter.
///
/// Validated once, by [`BackoffConfig::new`]; every `BackoffConfig` has
/// `0 < base ≤ cap` and a jitter in range.
///
/// ```
/// use ratekeeper_core::{BackoffConfig, BackoffError, Jitter, Nanos};
///
/// let config = BackoffConfig::new(Nanos::from_millis(50), Nanos::from_secs(5), 4, Jitter::Full).unwrap();
/// assert_eq!(config.max_retries(), 4);
/// assert_eq!(
///     BackoffConfig::new(Nanos::from_secs(2), Nanos::from_secs(1), 4, Jitter::Full),
///     Err(BackoffError::CapBelowBase)
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BackoffConfig {
    base: Nanos,
    cap: Nanos,
    max_retries: u32,
    jitter: Jitter,
}

impl BackoffConfig {
    /// GoHighLevel's plan: 1 s doubling to a 30 s cap, 5 retries, each
    /// delay plus up to 1 s of jitter.
    pub const GO_HIGH_LEVEL: BackoffConfig = BackoffConfig {
        base: Nanos::from_secs(1),
        cap: Nanos::from_secs(30),
        max_retries: 5,
        jitter: Jitter::Additive(Nanos::from_secs(1)),
    };

    /// Supabase's plan: 100 ms doubling to a 10 s cap, 3 retries, each delay
    /// plus up to 20% of it.
    pub const SUPABASE: BackoffConfig = BackoffConfig {
        base: Nanos::from_millis(100),
        cap: Nanos::from_secs(10),
        max_retries: 3,
        jitter: Jitter::Proportional(2_000),
    };

    /// A backoff from `base`, doubling up to `cap`, for at most
    /// `max_retries` retries (zero: never retry), spread by `jitter`.
    pub const fn new(
        base: Nanos,
        cap: Nanos,
        max_retries: u32,
        jitter: Jitter,
    ) -> Result<BackoffConfig, BackoffError> {
        if base.is_zero() {
            return Err(BackoffError::ZeroBase);
        }
        if cap.as_nanos() < base.as_nanos() {
            return Err(BackoffError::CapBelowBase);
        }
        if let Jitter::Proportional(10_001..) = jitter {
            return Err(BackoffError::JitterOutOfRange);
        }
        Ok(BackoffConfig {
            base,
            cap,
            max_retries,
            jitter,
        })
    }

    /// The first step.
    pub const fn base(&self) -> Nanos {
        self.base
    }

    /// The longest delay backoff alone ever asks for.
    pub const fn cap(&self) -> Nanos {
        self.cap
    }

    /// How many retries at most (not counting the first call).
    pub const fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// How steps are spread.
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The same configuration with another retry limit.
    pub const fn with_max_retries(mut self, max_retries: u32) -> BackoffConfig {
        self.max_retries = max_retries;
        self
    }

    /// `base · 2^retry`, saturating, before cap and jitter.
    ///
    /// ```
    /// use ratekeeper_core::{BackoffConfig, Nanos};
    ///
    /// let c = BackoffConfig::GO_HIGH_LEVEL;
    /// assert_eq!(c.step(3), Nanos::from_secs(8));
    /// assert_eq!(c.step(200), Nanos::MAX);
    /// ```
    // Inlined: where the configuration is known at compile time, the
    // base's leading zeros are too, and only the doubling loop remains.
    #[inline(always)]
    pub const fn step(&self, retry: u32) -> Nanos {
        // `base · 2^retry` fits exactly when `base` has `retry` leading
        // zero bits to shift out (and `retry < 64`). Then doubled one step
        // at a time, at most 63: a 64-bit shift by a variable amount costs
        // a 32-bit target a library routine, and a multiplication more.
        let mut step = self.base.as_nanos();
        if retry >= u64::BITS || step.leading_zeros() < retry {
            return Nanos::MAX;
        }
        let mut doublings = retry;
        while doublings > 0 {
            step = step.wrapping_add(step);
            doublings = doublings.wrapping_sub(1);
        }
        Nanos::from_nanos(step)
    }

    /// The delay of retry number `retry` (from 0), given the previous delay
    /// (only decorrelated jitter looks at it; `None` before the first
    /// retry), drawing randomness from `rng`. Always within the bounds the
    /// [module docs](self) give, so never above the cap.
    // Inlined, as is `Backoff::next_delay`: where the configuration is
    // known at compile time (a firmware's constant), only its jitter's
    // code remains, and the shared draw is one call.
    #[inline(always)]
    pub fn delay(&self, retry: u32, previous: Option<Nanos>, rng: &mut impl RandomSource) -> Nanos {
        let step = self.step(retry);
        let capped = step.min(self.cap);
        // Every jittered delay is one uniform draw between bounds: one
        // copy of that code, whichever the jitter; the additive and
        // proportional ones share their bounds' code too.
        let (low, high) = 'bounds: {
            let (from, spread) = match self.jitter {
                Jitter::None => return capped,
                Jitter::Full => break 'bounds (Nanos::ZERO, capped),
                Jitter::Equal => {
                    let half = capped.checked_div_floor(2).unwrap_or(Nanos::ZERO);
                    break 'bounds (capped.saturating_sub(half), capped);
                }
                Jitter::Decorrelated => {
                    let previous = previous.unwrap_or(self.base).max(self.base);
                    break 'bounds (self.base, previous.saturating_mul(3).min(self.cap));
                }
                Jitter::Additive(spread) => (step, spread),
                Jitter::Proportional(bp) => (capped, proportion(capped, bp)),
            };
            // `[high − spread, high]` with `high = min(from + spread, cap)`.
            let high = from.saturating_add(spread).min(self.cap);
            (high.saturating_sub(spread), high)
        };
        uniform(rng, low, high.saturating_sub(low))
    }
}

/// The retries of one call: how many are left and how long to wait before
/// each.
///
/// ```
/// use ratekeeper_core::{Backoff, BackoffConfig, Jitter, Nanos, SplitMix64};
///
/// let config = BackoffConfig::new(Nanos::from_secs(1), Nanos::from_secs(30), 3, Jitter::None).unwrap();
/// let mut backoff = Backoff::new(config);
/// let mut rng = SplitMix64::new(0);
/// assert_eq!(backoff.next_delay(&mut rng, None), Some(Nanos::from_secs(1)));
/// assert_eq!(backoff.next_delay(&mut rng, None), Some(Nanos::from_secs(2)));
/// assert_eq!(backoff.next_delay(&mut rng, None), Some(Nanos::from_secs(4)));
/// assert_eq!(backoff.next_delay(&mut rng, None), None, "three retries, no more");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Backoff {
    config: BackoffConfig,
    retries: u32,
    previous: Option<Nanos>,
}

impl Backoff {
    /// A call with no retries made yet.
    pub const fn new(config: BackoffConfig) -> Backoff {
        Backoff {
            config,
            retries: 0,
            previous: None,
        }
    }

    /// The configuration.
    pub const fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// Retries scheduled so far.
    pub const fn retries(&self) -> u32 {
        self.retries
    }

    /// Whether every retry allowed has been scheduled.
    pub const fn is_exhausted(&self) -> bool {
        self.retries >= self.config.max_retries
    }

    /// Schedules the next retry: the wait before it, never shorter than
    /// `retry_after` (the server's `Retry-After`, as a span from now), or
    /// `None` when no retries are left.
    // Inlined: see `BackoffConfig::delay`.
    #[inline(always)]
    pub fn next_delay(&mut self, rng: &mut impl RandomSource, retry_after: Option<Nanos>) -> Option<Nanos> {
        if self.is_exhausted() {
            return None;
        }
        let delay = self.config.delay(self.retries, self.previous, rng);
        // Decorrelated jitter grows from its own last draw, not from the
        // server's Retry-After, so its delays stay within the cap.
        self.previous = Some(delay);
        self.retries = self.retries.saturating_add(1);
        Some(match retry_after {
            Some(server) => delay.max(server),
            None => delay,
        })
    }

    /// Back to no retries made, as for a new call.
    pub fn reset(&mut self) {
        self.retries = 0;
        self.previous = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that always answers the same value.
    struct Fixed(u64);
    impl RandomSource for Fixed {
        fn next_u64(&mut self) -> u64 {
            self.0
        }
    }

    #[test]
    fn construction_is_validated() {
        let s = Nanos::from_secs(1);
        assert_eq!(
            BackoffConfig::new(Nanos::ZERO, s, 1, Jitter::None),
            Err(BackoffError::ZeroBase)
        );
        assert_eq!(
            BackoffConfig::new(s * 2, s, 1, Jitter::None),
            Err(BackoffError::CapBelowBase)
        );
        assert_eq!(
            BackoffConfig::new(s, s, 1, Jitter::Proportional(10_001)),
            Err(BackoffError::JitterOutOfRange)
        );
        assert!(BackoffConfig::new(s, s, 0, Jitter::Proportional(10_000)).is_ok());
        // The presets are what `new` would build.
        let ghl = BackoffConfig::GO_HIGH_LEVEL;
        assert_eq!(
            BackoffConfig::new(ghl.base, ghl.cap, ghl.max_retries, ghl.jitter),
            Ok(ghl)
        );
        let supabase = BackoffConfig::SUPABASE;
        assert_eq!(
            BackoffConfig::new(supabase.base, supabase.cap, supabase.max_retries, supabase.jitter),
            Ok(supabase)
        );
    }

    #[test]
    fn uniform_reaches_both_ends() {
        let (low, high) = (Nanos::from_nanos(10), Nanos::from_nanos(20));
        assert_eq!(uniform(&mut Fixed(0), low, high - low), low);
        assert_eq!(uniform(&mut Fixed(u64::MAX), low, high - low), high);
        assert_eq!(uniform(&mut Fixed(u64::MAX), Nanos::ZERO, Nanos::MAX), Nanos::MAX);
        assert_eq!(uniform(&mut Fixed(u64::MAX), Nanos::MAX, Nanos::ZERO), Nanos::MAX);
    }

    #[test]
    fn go_high_level_defaults() {
        let config = BackoffConfig::GO_HIGH_LEVEL;
        let expected_steps = [1u64, 2, 4, 8, 16];
        for (retry, secs) in (0u32..).zip(expected_steps) {
            let step = Nanos::from_secs(secs);
            assert_eq!(config.delay(retry, None, &mut Fixed(0)), step);
            assert_eq!(
                config.delay(retry, None, &mut Fixed(u64::MAX)),
                step + Nanos::from_secs(1)
            );
        }
        // From the sixth step on the cap holds: 32 s + jitter slides to [29 s, 30 s].
        assert_eq!(config.delay(5, None, &mut Fixed(0)), Nanos::from_secs(29));
        assert_eq!(config.delay(5, None, &mut Fixed(u64::MAX)), Nanos::from_secs(30));
        let mut backoff = Backoff::new(config);
        let mut rng = SplitMix64::new(3);
        for _ in 0..5 {
            assert!(backoff.next_delay(&mut rng, None).is_some());
        }
        assert_eq!(backoff.next_delay(&mut rng, None), None);
    }

    #[test]
    fn supabase_defaults() {
        let config = BackoffConfig::SUPABASE;
        for (retry, millis) in (0u32..).zip([100u64, 200, 400]) {
            let step = Nanos::from_millis(millis);
            assert_eq!(config.delay(retry, None, &mut Fixed(0)), step);
            assert_eq!(config.delay(retry, None, &mut Fixed(u64::MAX)), step + step / 5);
        }
        // At the cap the 20% window ends at the cap: [8 s, 10 s].
        assert_eq!(config.delay(20, None, &mut Fixed(0)), Nanos::from_secs(8));
        assert_eq!(config.delay(20, None, &mut Fixed(u64::MAX)), Nanos::from_secs(10));
        let mut backoff = Backoff::new(config);
        let mut rng = SplitMix64::new(3);
        for _ in 0..3 {
            assert!(backoff.next_delay(&mut rng, None).is_some());
        }
        assert!(backoff.is_exhausted());
        assert_eq!(backoff.next_delay(&mut rng, None), None);
        backoff.reset();
        assert_eq!(backoff.retries(), 0);
    }

    #[test]
    fn retry_after_wins_even_past_the_cap() {
        let mut backoff = Backoff::new(BackoffConfig::SUPABASE);
        let delay = backoff.next_delay(&mut Fixed(0), Some(Nanos::from_secs(60)));
        assert_eq!(delay, Some(Nanos::from_secs(60)));
        // A short Retry-After does not shorten the backoff.
        let delay = backoff.next_delay(&mut Fixed(0), Some(Nanos::from_millis(1)));
        assert_eq!(delay, Some(Nanos::from_millis(200)));
    }

    #[test]
    fn huge_attempt_counts_saturate() {
        let config = BackoffConfig::new(Nanos::from_nanos(3), Nanos::MAX, u32::MAX, Jitter::None).unwrap();
        assert_eq!(config.delay(63, None, &mut Fixed(0)), Nanos::MAX);
        assert_eq!(config.delay(u32::MAX, None, &mut Fixed(0)), Nanos::MAX);
        let config = BackoffConfig::new(Nanos::MAX, Nanos::MAX, 1, Jitter::Decorrelated).unwrap();
        assert_eq!(
            config.delay(0, Some(Nanos::MAX), &mut Fixed(u64::MAX)),
            Nanos::MAX
        );
    }

    /// Nanoseconds: the ends, small spans and any.
    fn span() -> impl proptest::strategy::Strategy<Value = u64> {
        proptest::prop_oneof![
            proptest::strategy::Just(0u64),
            proptest::strategy::Just(u64::MAX),
            0u64..1_000_000,
            proptest::prelude::any::<u64>(),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// The shifted step is the saturating product `base · 2^retry`.
        #[test]
        fn step_is_the_saturating_product(
            base in proptest::prop_oneof![
                proptest::strategy::Just(1u64),
                proptest::strategy::Just(u64::MAX),
                1u64..1_000_000,
                1u64..,
            ],
            retry in proptest::prop_oneof![0u32..70, proptest::prelude::any::<u32>()],
        ) {
            let config = BackoffConfig::new(Nanos::from_nanos(base), Nanos::MAX, 1, Jitter::None).unwrap();
            let product = 1u64.checked_shl(retry).map_or(u64::MAX, |factor| base.saturating_mul(factor));
            proptest::prop_assert_eq!(config.step(retry).as_nanos(), product);
            // And the shifting form it replaced.
            let shifted = if retry < u64::BITS && base.leading_zeros() >= retry { base << retry } else { u64::MAX };
            proptest::prop_assert_eq!(config.step(retry).as_nanos(), shifted);
        }

        /// A draw given its spread is the draw between bounds it replaced,
        /// for any bounds (a spread from bounds the wrong way round is
        /// zero, as the earlier form's was).
        #[test]
        fn uniform_by_spread_is_the_draw_between_bounds(
            low in span(),
            high in span(),
            draw in proptest::prop_oneof![
                proptest::strategy::Just(0u64),
                proptest::strategy::Just(u64::MAX),
                proptest::prelude::any::<u64>(),
            ],
        ) {
            let (low, high) = (Nanos::from_nanos(low), Nanos::from_nanos(high));
            let between = |low: Nanos, high: Nanos| {
                let draw = u128::from(draw);
                let scaled = draw
                    .wrapping_mul(u128::from(high.saturating_sub(low).as_nanos()))
                    .wrapping_add(draw)
                    >> 64;
                low.saturating_add(Nanos::from_nanos(u64::try_from(scaled).unwrap_or(u64::MAX)))
            };
            proptest::prop_assert_eq!(
                uniform(&mut Fixed(draw), low, high.saturating_sub(low)),
                between(low, high)
            );
        }

        /// The split form of a proportional spread is the 128-bit one.
        #[test]
        fn proportion_is_bit_identical_to_the_u128_form(
            value in span(),
            bp in 0u16..=10_000,
        ) {
            let wide = u128::from(value) * u128::from(bp) / 10_000;
            proptest::prop_assert_eq!(
                proportion(Nanos::from_nanos(value), bp).as_nanos(),
                u64::try_from(wide).unwrap()
            );
            // And the saturating form it replaced.
            let (whole, rest) = (value / 10_000, value % 10_000);
            let saturating = whole
                .saturating_mul(u64::from(bp))
                .saturating_add(rest.saturating_mul(u64::from(bp)) / 10_000);
            proptest::prop_assert_eq!(proportion(Nanos::from_nanos(value), bp).as_nanos(), saturating);
        }
    }
}
