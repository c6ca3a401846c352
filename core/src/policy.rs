//! What is known about a bucket's limit, and how that becomes GCRA
//! parameters.
//!
//! A [`Policy`] says "`limit` requests per `window`", where that came from
//! ([`PolicySource`]) and when, plus the server's own last word on what is
//! left ([`ServerView`]). [`Policy::to_gcra`] turns it into a [`Gcra`] under
//! a [`PolicyConfig`].
//!
//! # The conversion
//!
//! Servers count requests in windows: fixed windows that reset, or sliding
//! ones. A GCRA with emission interval `T` and burst `B` admits at most
//! `B + ⌈W/T⌉ − 1` requests in any half-open interval of length `W` (the
//! TAT advances `T` per request and may run at most `B·T` ahead). So to
//! stay within `limit` requests in *every* window of length `W`, whatever
//! the server's window alignment, ratekeeper picks
//!
//! ```text
//! T = ⌈ W / ((limit − B + 1) · (1 − margin)) ⌉
//! ```
//!
//! rounding up, so the rounding itself never admits more. With the default
//! burst of 1 this paces requests evenly at `limit · (1 − margin)` per
//! window: against a fixed-window server that is the whole limit minus the
//! margin, and no request ever meets a window that is already spent. A
//! larger burst sends more back to back but lowers the sustained rate to
//! keep the same guarantee; it is the caller's trade.
//!
//! The [`SafetyMargin`] is the share of the limit deliberately left unused,
//! for network jitter that bunches requests up at the server and for
//! requests made outside ratekeeper. The default, 3%, aims at using the
//! limit rather than 80% of it; the learner (which reconciles with the
//! server's `remaining`) covers what a margin cannot.

use crate::gcra::Gcra;
use crate::time::{Instant, Nanos};

/// Where a [`Policy`] came from, most trusted last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PolicySource {
    /// Nothing is known: the conservative default for a bucket never seen.
    Default,
    /// Inferred from 429s alone (no headers): an estimate.
    Observed,
    /// Set by the user's configuration.
    Configured,
    /// Stated by the server in response headers.
    Header,
}

impl PolicySource {
    /// A stable lowercase name, as used in summaries and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            PolicySource::Default => "default",
            PolicySource::Observed => "observed",
            PolicySource::Configured => "configured",
            PolicySource::Header => "header",
        }
    }

    /// The inverse of [`PolicySource::as_str`].
    pub fn parse(name: &str) -> Option<PolicySource> {
        Some(match name {
            "default" => PolicySource::Default,
            "observed" => PolicySource::Observed,
            "configured" => PolicySource::Configured,
            "header" => PolicySource::Header,
            _ => return None,
        })
    }
}

/// The server's own last statement of a bucket's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServerView {
    /// Requests the server said were left.
    pub remaining: u32,
    /// Time until the server's window resets, as said.
    pub reset_after: Nanos,
    /// When the response saying so arrived.
    pub observed_at: Instant,
}

/// What is known about one bucket's limit: `limit` requests per `window`.
///
/// ```
/// use ratekeeper_core::{Instant, Nanos, Policy, PolicyConfig, PolicySource};
///
/// // Close's search endpoint: 16 requests per second.
/// let policy = Policy::new(16, Nanos::from_secs(1), PolicySource::Header, Instant::ZERO).unwrap();
/// let gcra = policy.to_gcra(&PolicyConfig::default());
/// assert_eq!(gcra.burst(), 1);
/// // 1 s / (16 × 0.97), rounded up.
/// assert_eq!(gcra.emission_interval(), Nanos::from_nanos(64_432_990));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Policy {
    limit: u32,
    window: Nanos,
    /// Where the figures came from.
    pub source: PolicySource,
    /// When they were learned or set.
    pub learned_at: Instant,
    /// The server's last statement of what is left, if any.
    pub server: Option<ServerView>,
}

/// Why a [`Policy`] or [`PolicyConfig`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PolicyError {
    /// A limit of zero requests: nothing could ever be sent.
    ZeroLimit,
    /// A window of zero length: an infinite rate is not a limit.
    ZeroWindow,
    /// A safety margin outside 0..=99%.
    MarginOutOfRange,
    /// A burst of zero.
    ZeroBurst,
}

impl core::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PolicyError::ZeroLimit => "a limit must allow at least 1 request",
            PolicyError::ZeroWindow => "a window must be longer than zero",
            PolicyError::MarginOutOfRange => "the safety margin must be between 0% and 99%",
            PolicyError::ZeroBurst => "the burst must be at least 1",
        })
    }
}

impl core::error::Error for PolicyError {}

impl Policy {
    /// `limit` requests per `window`, from `source`, known since `learned_at`.
    pub const fn new(
        limit: u32,
        window: Nanos,
        source: PolicySource,
        learned_at: Instant,
    ) -> Result<Policy, PolicyError> {
        if limit == 0 {
            return Err(PolicyError::ZeroLimit);
        }
        if window.is_zero() {
            return Err(PolicyError::ZeroWindow);
        }
        Ok(Policy {
            limit,
            window,
            source,
            learned_at,
            server: None,
        })
    }

    /// The same policy with the server's view attached.
    pub const fn with_server(mut self, server: ServerView) -> Policy {
        self.server = Some(server);
        self
    }

    /// Requests allowed per window (at least 1).
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// The window's length (longer than zero).
    pub const fn window(&self) -> Nanos {
        self.window
    }

    /// The GCRA that keeps within this policy under `config`; see the
    /// [module docs](self) for the formula and the guarantee.
    pub fn to_gcra(&self, config: &PolicyConfig) -> Gcra {
        let burst = config.burst.min(self.limit);
        // `1 ≤ limit − burst + 1 ≤ 2^32` since `burst ≤ limit`: exact.
        let intervals = u64::from(self.limit.wrapping_sub(burst)).wrapping_add(1);
        let usable_bp = u64::from(BASIS_POINTS.saturating_sub(config.safety_margin.basis_points()));
        // `1·100 ≤ denominator < 2^32 · 10^4 < 2^46`: the margin is at most
        // 99%, so the product is exact (wrapping is cheaper than saturating
        // on 32-bit targets).
        let denominator = intervals.wrapping_mul(usable_bp).max(1);
        // ⌈window · 10^4 / denominator⌉ without a 128-bit product: with
        // `window = q·d + r`, it is `q·10^4 + ⌈r·10^4 / d⌉`, and
        // `⌈r·10^4 / d⌉ = ⌊(r·10^4 + d − 1) / d⌋` where `r·10^4 + d < 2^61`
        // fits. Past `u64` the clamp below applies anyway.
        let window = self.window.as_nanos();
        let scale = u64::from(BASIS_POINTS);
        let whole = window.checked_div(denominator).unwrap_or(u64::MAX);
        let rest = window.checked_rem(denominator).unwrap_or(0);
        let rest_scaled = rest
            .wrapping_mul(scale)
            .wrapping_add(denominator.wrapping_sub(1))
            .checked_div(denominator)
            .unwrap_or(0);
        // `q·10^4` fits exactly when `q ≤ ⌊u64::MAX / 10^4⌋`.
        let interval = if whole > u64::MAX.checked_div(scale).unwrap_or(0) {
            u64::MAX
        } else {
            whole.wrapping_mul(scale).saturating_add(rest_scaled)
        };
        // `T·B` must fit the time range. Past it, lower the burst, never the
        // interval: a smaller burst with the interval computed for a larger
        // one admits less, so the guarantee above still holds. Both figures
        // are at least 1: `burst` is the smaller of two that are, and a
        // window of at least 1 ns gives `whole ≥ 1` or `rest ≥ 1`, so
        // `interval ≥ 1` either way.
        Gcra::with_burst_at_most(Nanos::from_nanos(interval), burst)
    }
}

const BASIS_POINTS: u16 = 10_000;

/// The share of a limit left unused on purpose, in basis points
/// (1/100 of a percent), from 0% to 99%.
///
/// ```
/// use ratekeeper_core::SafetyMargin;
///
/// assert_eq!(SafetyMargin::from_percent(20).unwrap().basis_points(), 2000);
/// assert!(SafetyMargin::from_basis_points(10_000).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SafetyMargin(u16);

impl SafetyMargin {
    /// No margin: use the whole limit.
    pub const NONE: SafetyMargin = SafetyMargin(0);
    /// The default: 3%.
    pub const DEFAULT: SafetyMargin = SafetyMargin(300);
    /// The largest margin accepted.
    pub const MAX: SafetyMargin = SafetyMargin(9_900);

    /// A margin of `bp` basis points; more than 9,900 (99%) is an error.
    pub const fn from_basis_points(bp: u16) -> Result<SafetyMargin, PolicyError> {
        if bp > SafetyMargin::MAX.0 {
            Err(PolicyError::MarginOutOfRange)
        } else {
            Ok(SafetyMargin(bp))
        }
    }

    /// A margin of `percent`%; more than 99 is an error.
    pub const fn from_percent(percent: u8) -> Result<SafetyMargin, PolicyError> {
        SafetyMargin::from_basis_points((percent as u16).saturating_mul(100))
    }

    /// The margin in basis points.
    pub const fn basis_points(self) -> u16 {
        self.0
    }
}

impl Default for SafetyMargin {
    fn default() -> SafetyMargin {
        SafetyMargin::DEFAULT
    }
}

/// How policies become GCRA parameters, and what an unknown bucket gets.
///
/// ```
/// use ratekeeper_core::{Instant, Nanos, PolicyConfig, SafetyMargin};
///
/// let config = PolicyConfig::new(SafetyMargin::from_percent(5).unwrap(), 2, 10, Nanos::from_secs(1)).unwrap();
/// let unknown = config.default_policy(Instant::ZERO);
/// assert_eq!(unknown.limit(), 10);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PolicyConfig {
    safety_margin: SafetyMargin,
    burst: u32,
    default_limit: u32,
    default_window: Nanos,
}

impl PolicyConfig {
    /// The defaults: a 3% margin, bursts of 1 (even pacing), and 1 request
    /// per second for a bucket never seen.
    pub const DEFAULT: PolicyConfig = PolicyConfig {
        safety_margin: SafetyMargin::DEFAULT,
        burst: 1,
        default_limit: 1,
        default_window: Nanos::from_secs(1),
    };

    /// A configuration with the given margin, largest burst, and default
    /// policy (`default_limit` per `default_window`) for unknown buckets.
    pub const fn new(
        safety_margin: SafetyMargin,
        burst: u32,
        default_limit: u32,
        default_window: Nanos,
    ) -> Result<PolicyConfig, PolicyError> {
        if burst == 0 {
            return Err(PolicyError::ZeroBurst);
        }
        if default_limit == 0 {
            return Err(PolicyError::ZeroLimit);
        }
        if default_window.is_zero() {
            return Err(PolicyError::ZeroWindow);
        }
        Ok(PolicyConfig {
            safety_margin,
            burst,
            default_limit,
            default_window,
        })
    }

    /// The share of each limit left unused.
    pub const fn safety_margin(&self) -> SafetyMargin {
        self.safety_margin
    }

    /// The most requests sent back to back (capped by each policy's limit).
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    /// The policy of a bucket never seen, as of `now`.
    pub const fn default_policy(&self, now: Instant) -> Policy {
        Policy {
            limit: self.default_limit,
            window: self.default_window,
            source: PolicySource::Default,
            learned_at: now,
            server: None,
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> PolicyConfig {
        PolicyConfig::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `to_gcra` as first written (saturating arithmetic, the burst clamped
    /// by a division, then `Gcra::new`): the reference.
    fn to_gcra_reference(policy: &Policy, config: &PolicyConfig) -> Gcra {
        let burst = config.burst.min(policy.limit);
        // `limit − burst + 1 ≥ 1` since `burst ≤ limit`.
        let intervals = u64::from(policy.limit.saturating_sub(burst)).saturating_add(1);
        let usable_bp = u64::from(BASIS_POINTS.saturating_sub(config.safety_margin.basis_points()));
        // `1·100 ≤ denominator < 2^32 · 10^4 < 2^46`: the margin is at most 99%.
        let denominator = intervals.saturating_mul(usable_bp).max(1);
        // ⌈window · 10^4 / denominator⌉ without a 128-bit product: with
        // `window = q·d + r`, it is `q·10^4 + ⌈r·10^4 / d⌉`, and
        // `r·10^4 < 2^60` fits. Past `u64` the clamp below applies anyway.
        let window = policy.window.as_nanos();
        let whole = window.checked_div(denominator).unwrap_or(u64::MAX);
        let rest = window.checked_rem(denominator).unwrap_or(0);
        let rest_scaled = rest.saturating_mul(u64::from(BASIS_POINTS)).div_ceil(denominator);
        let interval = whole
            .checked_mul(u64::from(BASIS_POINTS))
            .and_then(|scaled| scaled.checked_add(rest_scaled))
            .unwrap_or(u64::MAX)
            .max(1);
        // `T·B` must fit the time range. Past it, lower the burst, never the
        // interval: a smaller burst with the interval computed for a larger
        // one admits less, so the guarantee above still holds.
        let burst = u32::try_from(u64::MAX.checked_div(interval).unwrap_or(1))
            .unwrap_or(u32::MAX)
            // `burst ≥ 1` (a policy's limit and a config's burst are), so
            // this is `clamp(1, burst)` without clamp's panic path.
            .min(burst)
            .max(1);
        match Gcra::new(Nanos::from_nanos(interval), burst) {
            Ok(gcra) => gcra,
            // Unreachable: interval ≥ 1, burst ≥ 1, and T·B fits by the
            // clamp above (with a burst of 1 any interval fits). The slowest
            // GCRA is the safe answer anyway.
            Err(_) => Gcra::SLOWEST,
        }
    }

    mod differential {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(20_000))]

            #[test]
            fn paces_as_before(
                limit in prop_oneof![1..100u32, 1..u32::MAX, Just(u32::MAX)],
                window in prop_oneof![1..u64::MAX, 1..1u64 << 40, Just(u64::MAX), Just(1u64)],
                burst in prop_oneof![1..100u32, 1..u32::MAX, Just(u32::MAX)],
                margin in 0..=9_900u16,
            ) {
                let policy = Policy::new(limit, Nanos::from_nanos(window), PolicySource::Header, Instant::ZERO).unwrap();
                let config = PolicyConfig::new(
                    SafetyMargin::from_basis_points(margin).unwrap(),
                    burst,
                    1,
                    Nanos::from_secs(1),
                )
                .unwrap();
                prop_assert_eq!(policy.to_gcra(&config), to_gcra_reference(&policy, &config));
            }
        }
    }

    #[test]
    fn invalid_policies_are_refused() {
        assert_eq!(
            Policy::new(0, Nanos::from_secs(1), PolicySource::Header, Instant::ZERO),
            Err(PolicyError::ZeroLimit)
        );
        assert_eq!(
            Policy::new(1, Nanos::ZERO, PolicySource::Header, Instant::ZERO),
            Err(PolicyError::ZeroWindow)
        );
        assert_eq!(
            PolicyConfig::new(SafetyMargin::NONE, 0, 1, Nanos::from_secs(1)),
            Err(PolicyError::ZeroBurst)
        );
        assert_eq!(
            SafetyMargin::from_percent(100),
            Err(PolicyError::MarginOutOfRange)
        );
    }

    #[test]
    fn default_is_one_per_second() {
        let p = PolicyConfig::DEFAULT.default_policy(Instant::ZERO);
        assert_eq!(
            (p.limit(), p.window(), p.source),
            (1, Nanos::from_secs(1), PolicySource::Default)
        );
        let gcra = p.to_gcra(&PolicyConfig::DEFAULT);
        assert_eq!(gcra.burst(), 1);
        assert!(gcra.emission_interval() >= Nanos::from_secs(1));
    }

    #[test]
    fn burst_is_capped_by_the_limit_and_slows_the_rate() {
        let config = PolicyConfig::new(SafetyMargin::NONE, 100, 1, Nanos::from_secs(1)).unwrap();
        let p = Policy::new(10, Nanos::from_secs(10), PolicySource::Configured, Instant::ZERO).unwrap();
        let gcra = p.to_gcra(&config);
        assert_eq!(gcra.burst(), 10);
        // All ten at once, then the next full batch a window later.
        assert_eq!(gcra.emission_interval(), Nanos::from_secs(10));
    }

    #[test]
    fn extreme_policies_still_convert() {
        let config = PolicyConfig::new(SafetyMargin::MAX, u32::MAX, 1, Nanos::from_secs(1)).unwrap();
        let p = Policy::new(u32::MAX, Nanos::MAX, PolicySource::Header, Instant::ZERO).unwrap();
        let gcra = p.to_gcra(&config);
        // T·B cannot fit: the burst gives way, never the interval.
        assert_eq!((gcra.burst(), gcra.emission_interval()), (1, Nanos::MAX));
        // 1000 per 366 days with bursts of 1000: T·B just past the horizon.
        let config = PolicyConfig::new(SafetyMargin::NONE, 1000, 1, Nanos::from_secs(1)).unwrap();
        let p = Policy::new(
            1000,
            Nanos::from_secs(366 * 86_400),
            PolicySource::Header,
            Instant::ZERO,
        )
        .unwrap();
        let gcra = p.to_gcra(&config);
        assert!(gcra.burst() < 1000);
        assert_eq!(gcra.emission_interval(), Nanos::from_secs(366 * 86_400));
        let p = Policy::new(
            u32::MAX,
            Nanos::from_nanos(1),
            PolicySource::Header,
            Instant::ZERO,
        )
        .unwrap();
        assert_eq!(
            p.to_gcra(&PolicyConfig::DEFAULT).emission_interval(),
            Nanos::from_nanos(1)
        );
    }

    #[test]
    fn source_names_round_trip() {
        for s in [
            PolicySource::Default,
            PolicySource::Observed,
            PolicySource::Configured,
            PolicySource::Header,
        ] {
            assert_eq!(PolicySource::parse(s.as_str()), Some(s));
        }
        assert_eq!(PolicySource::parse("nope"), None);
    }
}
