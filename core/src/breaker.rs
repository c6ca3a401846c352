//! The circuit breaker: stop calling an endpoint that keeps failing, and
//! find out, a few calls at a time, when it is back.
//!
//! # States
//!
//! - **Closed**: calls pass. Each result is recorded; the breaker *trips*
//!   (opens) after `N` consecutive failures, or when the failure rate over
//!   the last `window` calls reaches a threshold once at least `min_calls`
//!   have been seen. Either condition may be switched off, not both.
//! - **Open**: calls are refused without being sent, for `open_for`. Each
//!   trip without a recovery in between may lengthen that time by a growth
//!   factor, up to a cap, so an endpoint that stays down is asked less and
//!   less often.
//! - **Half-open**: once the open time is over, at most `probes` calls pass
//!   as probes and the rest are refused. The first probe to succeed closes
//!   the breaker; the first to fail opens it again. A probe that reports
//!   nothing within `open_for` counts as failed, so a lost probe cannot
//!   wedge the breaker half-open.
//! - **Forced open**: refused until [`Breaker::reset`], for operators.
//!
//! # Permits
//!
//! [`Breaker::permit`] hands out a [`Permit`], which the result of the call
//! is recorded against ([`Breaker::record`]). A permit remembers the state
//! it was granted in, so a slow call that started before a transition
//! cannot, by finishing late, close a breaker that opened since, or count
//! twice. Which outcomes are failures is the caller's choice: a 429 shows
//! the endpoint is up and busy, not down, and is best given back with
//! [`Breaker::release`] ([`Outcome::for_breaker`] is a sensible default).
//!
//! # Memory
//!
//! The failure-rate window is a ring of bits in `WORDS` 64-bit words, a
//! const-generic capacity: `Breaker<1>` (the default) remembers up to 64
//! calls, `Breaker<4>` up to 256. No allocation, and the whole breaker is a
//! few dozen bytes. A breaker on consecutive failures alone needs no
//! window: `Breaker<0>` keeps none, and the code that fills one is left
//! out of a firmware's flash.
//!
//! The breaker does not read a clock: every operation takes `now` from the
//! caller's [`Clock`], so tests drive it with a [`ManualClock`].
//!
//! ```
//! use ratekeeper_core::{Breaker, BreakerConfig, BreakerState, CallResult, Clock, ManualClock, Nanos};
//!
//! let clock = ManualClock::new();
//! let mut breaker: Breaker = Breaker::new(BreakerConfig::GO_HIGH_LEVEL).unwrap();
//! for _ in 0..5 {
//!     let permit = breaker.permit(clock.now()).unwrap();
//!     breaker.record(permit, CallResult::Failure, clock.now());
//! }
//! // Five failures in a row: refused for a minute.
//! let refused = breaker.permit(clock.now()).unwrap_err();
//! assert_eq!(refused.retry_after, Nanos::from_secs(60));
//! clock.advance(Nanos::from_secs(60));
//! // Then one probe; its success closes the breaker.
//! let probe = breaker.permit(clock.now()).unwrap();
//! assert!(probe.is_probe());
//! breaker.record(probe, CallResult::Success, clock.now());
//! assert_eq!(breaker.snapshot(clock.now()).state, BreakerState::Closed);
//! ```
//!
//! [`Outcome::for_breaker`]: crate::Outcome::for_breaker
//! [`Clock`]: crate::Clock
//! [`ManualClock`]: crate::ManualClock

use core::fmt;

use crate::error::{Error, ErrorKind};
use crate::time::{Instant, Nanos};

/// The verdict on one call, as far as the breaker is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CallResult {
    /// The endpoint worked.
    Success,
    /// The endpoint is failing.
    Failure,
}

/// Which state a breaker is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BreakerState {
    /// Calls pass.
    Closed,
    /// Calls are refused until the open time is over.
    Open,
    /// A bounded number of probe calls pass.
    HalfOpen,
    /// Calls are refused until a manual reset.
    ForcedOpen,
}

impl BreakerState {
    /// A stable lowercase name, for health checks and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
        }
    }
}

/// Why a [`Breaker`] could not be built from a [`BreakerConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BreakerError {
    /// Neither consecutive failures nor a failure rate would ever trip it.
    NoTripCondition,
    /// A failure rate above 100%.
    RateOutOfRange,
    /// A failure-rate window of zero calls, or more than the breaker's
    /// capacity (64 calls per word).
    WindowOutOfRange,
    /// A minimum number of calls of zero, or more than the window.
    MinCallsOutOfRange,
    /// An open time of zero.
    ZeroOpenTime,
    /// A longest open time shorter than the first.
    MaxOpenBelowOpen,
    /// A growth factor of zero (1 means no growth).
    ZeroGrowth,
    /// No probes: a half-open breaker could never close.
    ZeroProbes,
}

impl fmt::Display for BreakerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakerError::NoTripCondition => "set consecutive failures, a failure rate, or both",
            BreakerError::RateOutOfRange => "the failure rate must be between 0.01% and 100%",
            BreakerError::WindowOutOfRange => {
                "the window must hold between 1 call and the breaker's capacity"
            }
            BreakerError::MinCallsOutOfRange => {
                "the minimum number of calls must be between 1 and the window"
            }
            BreakerError::ZeroOpenTime => "the open time must be longer than zero",
            BreakerError::MaxOpenBelowOpen => "the longest open time must be at least the first",
            BreakerError::ZeroGrowth => "the growth factor must be at least 1",
            BreakerError::ZeroProbes => "at least one probe must be let through when half-open",
        })
    }
}

impl core::error::Error for BreakerError {}

/// When a breaker trips, how long it stays open, and how many probes it
/// lets through. Checked by [`Breaker::new`].
///
/// ```
/// use ratekeeper_core::{Breaker, BreakerConfig, Nanos};
///
/// // Trip on 50% failures over the last 20 calls (once 10 are seen) or on
/// // 8 in a row; open 10 s, doubling per trip up to 5 minutes; 2 probes.
/// let config = BreakerConfig::consecutive_failures(8, Nanos::from_secs(10))
///     .with_failure_rate(5_000, 20, 10)
///     .with_growth(2, Nanos::from_secs(300))
///     .with_probes(2);
/// let breaker: Breaker = Breaker::new(config).unwrap();
/// assert_eq!(breaker.config().probes(), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BreakerConfig {
    consecutive_failures: u32,
    failure_rate_bp: u16,
    window: u32,
    min_calls: u32,
    open_for: Nanos,
    max_open_for: Nanos,
    growth: u32,
    probes: u32,
}

impl BreakerConfig {
    /// GoHighLevel's plan: open after 5 consecutive failures, for 60 s, one
    /// probe.
    pub const GO_HIGH_LEVEL: BreakerConfig = BreakerConfig::consecutive_failures(5, Nanos::from_secs(60));

    /// Supabase's plan: open after 5 consecutive failures, for 60 s, one
    /// probe.
    pub const SUPABASE: BreakerConfig = BreakerConfig::consecutive_failures(5, Nanos::from_secs(60));

    /// Trip after `failures` consecutive failures (0: never on a streak),
    /// stay open `open_for`, one probe, no growth, no failure rate.
    pub const fn consecutive_failures(failures: u32, open_for: Nanos) -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: failures,
            failure_rate_bp: 0,
            window: 0,
            min_calls: 0,
            open_for,
            max_open_for: open_for,
            growth: 1,
            probes: 1,
        }
    }

    /// Trip on a failure rate of `rate_bp` basis points (1/100 %) or more
    /// over the last `window` calls, once `min_calls` are seen; stay open
    /// `open_for`; one probe, no growth, no streak condition.
    pub const fn failure_rate(rate_bp: u16, window: u32, min_calls: u32, open_for: Nanos) -> BreakerConfig {
        BreakerConfig::consecutive_failures(0, open_for).with_failure_rate(rate_bp, window, min_calls)
    }

    /// The same configuration, also tripping on a failure rate.
    pub const fn with_failure_rate(mut self, rate_bp: u16, window: u32, min_calls: u32) -> BreakerConfig {
        self.failure_rate_bp = rate_bp;
        self.window = window;
        self.min_calls = min_calls;
        self
    }

    /// The same configuration, multiplying the open time by `factor` for
    /// each trip without a recovery in between, up to `max_open_for`.
    pub const fn with_growth(mut self, factor: u32, max_open_for: Nanos) -> BreakerConfig {
        self.growth = factor;
        self.max_open_for = max_open_for;
        self
    }

    /// The same configuration, letting `probes` calls through when
    /// half-open.
    pub const fn with_probes(mut self, probes: u32) -> BreakerConfig {
        self.probes = probes;
        self
    }

    /// Consecutive failures that trip the breaker (0: off).
    pub const fn consecutive_failure_threshold(&self) -> u32 {
        self.consecutive_failures
    }

    /// The failure rate that trips the breaker, in basis points (0: off).
    pub const fn failure_rate_bp(&self) -> u16 {
        self.failure_rate_bp
    }

    /// The calls the failure rate is measured over.
    pub const fn window(&self) -> u32 {
        self.window
    }

    /// The calls that must be seen before the failure rate counts.
    pub const fn min_calls(&self) -> u32 {
        self.min_calls
    }

    /// The open time after a first trip.
    pub const fn open_for(&self) -> Nanos {
        self.open_for
    }

    /// The longest open time.
    pub const fn max_open_for(&self) -> Nanos {
        self.max_open_for
    }

    /// The growth factor of the open time per trip.
    pub const fn growth(&self) -> u32 {
        self.growth
    }

    /// Probes let through when half-open.
    pub const fn probes(&self) -> u32 {
        self.probes
    }

    /// The open time after `trips` trips without recovery (from 1):
    /// `open_for · growth^(trips − 1)`, saturating, at most `max_open_for`.
    ///
    /// ```
    /// use ratekeeper_core::{BreakerConfig, Nanos};
    ///
    /// let config = BreakerConfig::consecutive_failures(3, Nanos::from_secs(10)).with_growth(2, Nanos::from_secs(60));
    /// assert_eq!(config.open_time(1), Nanos::from_secs(10));
    /// assert_eq!(config.open_time(3), Nanos::from_secs(40));
    /// assert_eq!(config.open_time(4), Nanos::from_secs(60));
    /// assert_eq!(config.open_time(u32::MAX), Nanos::from_secs(60));
    /// ```
    pub const fn open_time(&self, trips: u32) -> Nanos {
        let cap = self.max_open_for.as_nanos();
        let growth = self.growth as u64;
        let mut growths = trips.saturating_sub(1);
        if growth == 0 && growths > 0 {
            return Nanos::ZERO;
        }
        // Grown one factor at a time, and only while it can still matter:
        // the open time never shrinks (`growth ≥ 1`), so once it reaches
        // the cap, the cap is the answer. Without `checked_pow` and a second
        // 64-bit multiplication, which cost 32-bit targets code; at most 64
        // rounds, since each one at least doubles a nonzero time.
        let mut open = self.open_for.as_nanos();
        while growths > 0 && growth > 1 && open > 0 && open < cap {
            open = open.saturating_mul(growth);
            growths = growths.wrapping_sub(1); // `growths > 0`: exact.
        }
        Nanos::from_nanos(if open < cap { open } else { cap })
    }

    const fn validate(&self, capacity: u32) -> Result<(), BreakerError> {
        if self.consecutive_failures == 0 && self.failure_rate_bp == 0 {
            return Err(BreakerError::NoTripCondition);
        }
        if self.failure_rate_bp > 10_000 {
            return Err(BreakerError::RateOutOfRange);
        }
        if self.failure_rate_bp > 0 {
            if self.window == 0 || self.window > capacity {
                return Err(BreakerError::WindowOutOfRange);
            }
            if self.min_calls == 0 || self.min_calls > self.window {
                return Err(BreakerError::MinCallsOutOfRange);
            }
        }
        if self.open_for.is_zero() {
            return Err(BreakerError::ZeroOpenTime);
        }
        if self.max_open_for.as_nanos() < self.open_for.as_nanos() {
            return Err(BreakerError::MaxOpenBelowOpen);
        }
        if self.growth == 0 {
            return Err(BreakerError::ZeroGrowth);
        }
        if self.probes == 0 {
            return Err(BreakerError::ZeroProbes);
        }
        Ok(())
    }
}

/// Leave to make one call, to be given back with its result
/// ([`Breaker::record`]) or without one ([`Breaker::release`]).
///
/// Neither `Clone` nor `Copy`: giving it back consumes it, so one permit
/// can never be counted twice (nor free a second half-open probe).
#[derive(Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use = "record the call's result against its permit"]
pub struct Permit {
    generation: u32,
    probe: bool,
}

impl Permit {
    /// Whether this call is a half-open probe.
    pub const fn is_probe(&self) -> bool {
        self.probe
    }
}

/// A call the breaker refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rejected {
    /// The state that refused it.
    pub state: BreakerState,
    /// How long until the breaker may let a call through again: the rest
    /// of the open time, or of the probes' time when half-open with every
    /// probe out. Zero when forced open (it waits for a person).
    pub retry_after: Nanos,
}

impl Rejected {
    /// The error to report: `RATE_LIMIT_CIRCUIT_OPEN`, with the wait when
    /// one is known.
    ///
    /// ```
    /// use ratekeeper_core::{BreakerState, ErrorKind, Nanos, Rejected};
    ///
    /// let rejected = Rejected { state: BreakerState::Open, retry_after: Nanos::from_secs(30) };
    /// assert_eq!(rejected.error().kind(), ErrorKind::CircuitOpen);
    /// assert_eq!(rejected.error().retry_after(), Some(Nanos::from_secs(30)));
    /// ```
    pub const fn error(&self) -> Error {
        let error = Error::new(ErrorKind::CircuitOpen);
        match self.state {
            BreakerState::ForcedOpen => error,
            _ => error.with_retry_after(self.retry_after),
        }
    }
}

impl From<Rejected> for Error {
    fn from(rejected: Rejected) -> Error {
        rejected.error()
    }
}

/// A breaker's state at one instant, for health checks and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BreakerSnapshot {
    /// The state (an open breaker whose time is over reads as half-open).
    pub state: BreakerState,
    /// Failures in a row while closed.
    pub consecutive_failures: u32,
    /// Calls in the failure-rate window.
    pub window_calls: u32,
    /// Failures among them.
    pub window_failures: u32,
    /// Trips since the breaker was last closed by a success or a reset.
    pub trips: u32,
    /// The rest of the open time, when open.
    pub open_for: Option<Nanos>,
    /// Probes let through in this half-open period.
    pub probes_in_flight: u32,
}

/// The last `window` results as bits (1 = failure) in a ring of `WORDS`
/// 64-bit words, each kept as two 32-bit halves: a 64-bit shift by a
/// variable amount costs a 32-bit target a library routine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Ring<const WORDS: usize> {
    bits: [[u32; 2]; WORDS],
    window: u32,
    len: u32,
    next: u32,
    failures: u32,
}

impl<const WORDS: usize> Ring<WORDS> {
    const fn new(window: u32) -> Ring<WORDS> {
        Ring {
            bits: [[0; 2]; WORDS],
            window,
            len: 0,
            next: 0,
            failures: 0,
        }
    }

    fn clear(&mut self) {
        *self = Ring::new(self.window);
    }

    fn push(&mut self, failed: bool) {
        if self.window == 0 {
            return;
        }
        // Bit `next mod 32` of half `next / 32` of the words laid end to end.
        let half = usize::try_from(self.next >> 5).unwrap_or(usize::MAX);
        let mask = 1u32 << (self.next & 31);
        let Some(word) = self.bits.as_flattened_mut().get_mut(half) else {
            return;
        };
        // The counts cannot leave their range (failures ≤ len ≤ window, a
        // set bit is a counted failure): wrapping is exact, and cheaper
        // than saturating on 32-bit targets.
        if self.len >= self.window {
            // Full: the slot being written holds the oldest result.
            if *word & mask != 0 {
                self.failures = self.failures.wrapping_sub(1);
            }
        } else {
            self.len = self.len.wrapping_add(1);
        }
        if failed {
            *word |= mask;
            self.failures = self.failures.wrapping_add(1);
        } else {
            *word &= !mask;
        }
        let next = self.next.wrapping_add(1);
        self.next = if next >= self.window { 0 } else { next };
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { since: Instant, probes: u32 },
    ForcedOpen,
}

/// A circuit breaker for one endpoint; see the [module docs](self).
///
/// `WORDS` sets the capacity of the failure-rate window: 64 calls per word.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Breaker<const WORDS: usize = 1> {
    config: BreakerConfig,
    phase: Phase,
    generation: u32,
    consecutive: u32,
    trips: u32,
    ring: Ring<WORDS>,
}

impl<const WORDS: usize> Breaker<WORDS> {
    /// The most calls the failure-rate window can hold.
    pub const CAPACITY: u32 = {
        let calls = WORDS.saturating_mul(64);
        if calls > u32::MAX as usize {
            u32::MAX
        } else {
            calls as u32
        }
    };

    /// A closed breaker, once `config` is checked against this capacity.
    ///
    /// ```
    /// use ratekeeper_core::{Breaker, BreakerConfig, BreakerError, Nanos};
    ///
    /// let config = BreakerConfig::failure_rate(5_000, 100, 10, Nanos::from_secs(30));
    /// assert_eq!(Breaker::<1>::new(config).unwrap_err(), BreakerError::WindowOutOfRange);
    /// assert!(Breaker::<2>::new(config).is_ok());
    /// ```
    pub const fn new(config: BreakerConfig) -> Result<Breaker<WORDS>, BreakerError> {
        if let Err(error) = config.validate(Self::CAPACITY) {
            return Err(error);
        }
        let window = if config.failure_rate_bp > 0 {
            config.window
        } else {
            0
        };
        Ok(Breaker {
            config,
            phase: Phase::Closed,
            generation: 0,
            consecutive: 0,
            trips: 0,
            ring: Ring::new(window),
        })
    }

    /// The configuration.
    pub const fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Asks to make a call at `now`: a [`Permit`] when it may go, else how
    /// long until one may.
    pub fn permit(&mut self, now: Instant) -> Result<Permit, Rejected> {
        // At most two turns: a half-open period whose probes never
        // answered in time trips again, into an open time that is not over,
        // or that half-opens (letting this call through as its probe).
        loop {
            let (state, until) = match self.phase {
                Phase::Closed => {
                    return Ok(Permit {
                        generation: self.generation,
                        probe: false,
                    });
                }
                Phase::ForcedOpen => (BreakerState::ForcedOpen, now),
                Phase::Open { until } => {
                    if now >= until {
                        // Half-open, and this call is its first probe (a
                        // validated configuration lets one through at least).
                        self.enter(Phase::HalfOpen {
                            since: now,
                            probes: 1,
                        });
                        return Ok(Permit {
                            generation: self.generation,
                            probe: true,
                        });
                    }
                    (BreakerState::Open, until)
                }
                Phase::HalfOpen { since, probes } => {
                    if probes < self.config.probes {
                        self.phase = Phase::HalfOpen {
                            since,
                            probes: probes.saturating_add(1),
                        };
                        return Ok(Permit {
                            generation: self.generation,
                            probe: true,
                        });
                    }
                    let probes_end = since.saturating_add(self.config.open_for);
                    if now >= probes_end {
                        // Every probe is out and none reported in time:
                        // take that as a failure rather than wait for
                        // them forever.
                        self.trip(now);
                        continue;
                    }
                    (BreakerState::HalfOpen, probes_end)
                }
            };
            return Err(Rejected {
                state,
                // `until ≥ now` in every arm above: exact.
                retry_after: Nanos::from_nanos(until.as_nanos().wrapping_sub(now.as_nanos())),
            });
        }
    }

    /// Records the result of the call made under `permit`, at `now`.
    /// Returns the new state when this result changed it.
    ///
    /// A permit from before the breaker last changed state is stale: its
    /// result is ignored, so a slow call can neither close a breaker that
    /// opened since nor count twice.
    pub fn record(&mut self, permit: Permit, result: CallResult, now: Instant) -> Option<BreakerState> {
        if permit.generation != self.generation {
            return None;
        }
        match (self.phase, result) {
            (Phase::Closed, CallResult::Success) => {
                self.consecutive = 0;
                self.ring.push(false);
                None
            }
            (Phase::Closed, CallResult::Failure) => {
                // Exact: a streak trips at its threshold, and without one
                // a window all failures trips (a validated failure rate is
                // at most 100%), so the count never passes either.
                self.consecutive = self.consecutive.wrapping_add(1);
                self.ring.push(true);
                if self.should_trip() {
                    self.trip(now);
                    Some(BreakerState::Open)
                } else {
                    None
                }
            }
            (Phase::HalfOpen { .. }, CallResult::Success) if permit.probe => {
                self.trips = 0;
                self.enter(Phase::Closed);
                Some(BreakerState::Closed)
            }
            (Phase::HalfOpen { .. }, CallResult::Failure) if permit.probe => {
                self.trip(now);
                Some(BreakerState::Open)
            }
            _ => None,
        }
    }

    /// Gives back a permit whose call says nothing about the endpoint's
    /// health (a 429, a cancelled call): a half-open probe slot is freed for
    /// another probe; nothing else changes.
    pub fn release(&mut self, permit: Permit) {
        if permit.generation != self.generation || !permit.probe {
            return;
        }
        if let Phase::HalfOpen { since, probes } = self.phase {
            self.phase = Phase::HalfOpen {
                since,
                probes: probes.saturating_sub(1),
            };
        }
    }

    /// Closes the breaker and forgets every result: for an operator who
    /// knows the endpoint is back.
    pub fn reset(&mut self) {
        self.trips = 0;
        self.enter(Phase::Closed);
    }

    /// Opens the breaker until [`Breaker::reset`]: for an operator who
    /// knows the endpoint is down, or wants it left alone.
    pub fn force_open(&mut self) {
        self.enter(Phase::ForcedOpen);
    }

    /// The state at `now`, for health checks: changes nothing.
    ///
    /// ```
    /// use ratekeeper_core::{Breaker, BreakerConfig, BreakerState, Instant};
    ///
    /// let mut breaker: Breaker = Breaker::new(BreakerConfig::SUPABASE).unwrap();
    /// breaker.force_open();
    /// assert_eq!(breaker.snapshot(Instant::ZERO).state.as_str(), "forced_open");
    /// breaker.reset();
    /// assert_eq!(breaker.snapshot(Instant::ZERO).state, BreakerState::Closed);
    /// ```
    pub fn snapshot(&self, now: Instant) -> BreakerSnapshot {
        let (state, open_for, probes_in_flight) = match self.phase {
            Phase::Closed => (BreakerState::Closed, None, 0),
            Phase::Open { until } if now < until => {
                (BreakerState::Open, Some(until.saturating_duration_since(now)), 0)
            }
            Phase::Open { .. } => (BreakerState::HalfOpen, None, 0),
            Phase::HalfOpen { probes, .. } => (BreakerState::HalfOpen, None, probes),
            Phase::ForcedOpen => (BreakerState::ForcedOpen, None, 0),
        };
        BreakerSnapshot {
            state,
            consecutive_failures: self.consecutive,
            window_calls: self.ring.len,
            window_failures: self.ring.failures,
            trips: self.trips,
            open_for,
            probes_in_flight,
        }
    }

    fn should_trip(&self) -> bool {
        let streak = self.config.consecutive_failures;
        if streak > 0 && self.consecutive >= streak {
            return true;
        }
        let rate = u64::from(self.config.failure_rate_bp);
        let calls = u64::from(self.ring.len);
        // A breaker without a window has no failure rate (its configuration
        // was refused): known at compile time.
        Self::CAPACITY > 0
            && rate > 0
            && self.ring.len >= self.config.min_calls
            && u64::from(self.ring.failures).saturating_mul(10_000) >= rate.saturating_mul(calls)
    }

    fn trip(&mut self, now: Instant) {
        // One growth per earlier trip, counted before this one is added
        // (so no subtraction); the count saturates at `u32::MAX` trips,
        // long after the open time reached its cap (each growth at least
        // doubles it).
        let mut growths = self.trips;
        self.trips = growths.saturating_add(1);
        // `BreakerConfig::open_time` of a validated configuration (growth
        // at least 1, an open time above zero): without the cases only an
        // invalid one reaches.
        let cap = self.config.max_open_for.as_nanos();
        let growth = u64::from(self.config.growth);
        let mut open = self.config.open_for.as_nanos();
        while growths > 0 && growth > 1 && open < cap {
            // Past `u64` is past the cap too.
            open = open.checked_mul(growth).unwrap_or(cap);
            growths = growths.wrapping_sub(1);
        }
        let open = Nanos::from_nanos(open.min(cap));
        let until = now.saturating_add(open);
        self.enter(Phase::Open { until });
    }

    /// Every transition goes through here: it invalidates outstanding
    /// permits and starts the counts afresh.
    // Inlined: a few stores, cheaper where they are made than the phase
    // handed to a call.
    #[inline(always)]
    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.generation = self.generation.wrapping_add(1);
        self.consecutive = 0;
        // Without a window, the ring stays empty: nothing to clear.
        if WORDS > 0 {
            self.ring.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn fail<const W: usize>(breaker: &mut Breaker<W>, now: Instant) -> Option<BreakerState> {
        let permit = breaker.permit(now).unwrap();
        breaker.record(permit, CallResult::Failure, now)
    }

    fn succeed<const W: usize>(breaker: &mut Breaker<W>, now: Instant) -> Option<BreakerState> {
        let permit = breaker.permit(now).unwrap();
        breaker.record(permit, CallResult::Success, now)
    }

    #[test]
    fn validation() {
        let s = Nanos::from_secs(1);
        let check = |c: BreakerConfig| Breaker::<1>::new(c).map(|_| ());
        assert_eq!(
            check(BreakerConfig::consecutive_failures(0, s)),
            Err(BreakerError::NoTripCondition)
        );
        assert_eq!(
            check(BreakerConfig::failure_rate(10_001, 10, 1, s)),
            Err(BreakerError::RateOutOfRange)
        );
        assert_eq!(
            check(BreakerConfig::failure_rate(5_000, 65, 1, s)),
            Err(BreakerError::WindowOutOfRange)
        );
        assert_eq!(
            check(BreakerConfig::failure_rate(5_000, 0, 1, s)),
            Err(BreakerError::WindowOutOfRange)
        );
        assert_eq!(
            check(BreakerConfig::failure_rate(5_000, 10, 11, s)),
            Err(BreakerError::MinCallsOutOfRange)
        );
        assert_eq!(
            check(BreakerConfig::consecutive_failures(1, Nanos::ZERO)),
            Err(BreakerError::ZeroOpenTime)
        );
        assert_eq!(
            check(BreakerConfig::consecutive_failures(1, s).with_growth(2, Nanos::ZERO)),
            Err(BreakerError::MaxOpenBelowOpen)
        );
        assert_eq!(
            check(BreakerConfig::consecutive_failures(1, s).with_growth(0, s)),
            Err(BreakerError::ZeroGrowth)
        );
        assert_eq!(
            check(BreakerConfig::consecutive_failures(1, s).with_probes(0)),
            Err(BreakerError::ZeroProbes)
        );
        assert!(check(BreakerConfig::failure_rate(5_000, 64, 64, s)).is_ok());
        assert_eq!(Breaker::<0>::CAPACITY, 0);
        assert_eq!(Breaker::<3>::CAPACITY, 192);
    }

    #[test]
    fn go_high_level_defaults() {
        let clock = ManualClock::new();
        let mut breaker: Breaker = Breaker::new(BreakerConfig::GO_HIGH_LEVEL).unwrap();
        for _ in 0..4 {
            assert_eq!(fail(&mut breaker, clock.now()), None);
        }
        // A success in between starts the streak over.
        assert_eq!(succeed(&mut breaker, clock.now()), None);
        for _ in 0..4 {
            assert_eq!(fail(&mut breaker, clock.now()), None);
        }
        assert_eq!(fail(&mut breaker, clock.now()), Some(BreakerState::Open));
        let snapshot = breaker.snapshot(clock.now());
        assert_eq!(snapshot.state, BreakerState::Open);
        assert_eq!(snapshot.open_for, Some(Nanos::from_secs(60)));
        clock.advance(Nanos::from_secs(60) - Nanos::from_nanos(1));
        let refused = breaker.permit(clock.now()).unwrap_err();
        assert_eq!(refused.retry_after, Nanos::from_nanos(1));
        assert_eq!(refused.error().code(), "RATE_LIMIT_CIRCUIT_OPEN");
        clock.advance(Nanos::from_nanos(1));
        let probe = breaker.permit(clock.now()).unwrap();
        assert!(probe.is_probe());
        // Only one probe at a time.
        assert_eq!(
            breaker.permit(clock.now()).unwrap_err().state,
            BreakerState::HalfOpen
        );
        // The probe fails: open again for another minute (no growth).
        assert_eq!(
            breaker.record(probe, CallResult::Failure, clock.now()),
            Some(BreakerState::Open)
        );
        assert_eq!(breaker.snapshot(clock.now()).open_for, Some(Nanos::from_secs(60)));
        clock.advance(Nanos::from_secs(60));
        assert_eq!(succeed(&mut breaker, clock.now()), Some(BreakerState::Closed));
        assert_eq!(breaker.snapshot(clock.now()).trips, 0);
    }

    #[test]
    fn supabase_defaults() {
        assert_eq!(BreakerConfig::SUPABASE.consecutive_failure_threshold(), 5);
        assert_eq!(BreakerConfig::SUPABASE.open_for(), Nanos::from_secs(60));
        let clock = ManualClock::new();
        let mut breaker: Breaker = Breaker::new(BreakerConfig::SUPABASE).unwrap();
        for _ in 0..5 {
            fail(&mut breaker, clock.now());
        }
        assert!(breaker.permit(clock.now()).is_err());
        breaker.reset();
        assert!(!breaker.permit(clock.now()).unwrap().is_probe());
    }

    #[test]
    fn failure_rate_over_the_window() {
        let now = Instant::ZERO;
        let config = BreakerConfig::failure_rate(5_000, 10, 4, Nanos::from_secs(1));
        let mut breaker: Breaker = Breaker::new(config).unwrap();
        // Alternating: 50% failures, but nothing counts before 4 calls.
        assert_eq!(fail(&mut breaker, now), None);
        assert_eq!(succeed(&mut breaker, now), None);
        assert_eq!(fail(&mut breaker, now), None);
        // 50% now, but only a failure can trip the breaker.
        assert_eq!(succeed(&mut breaker, now), None);
        assert_eq!(fail(&mut breaker, now), Some(BreakerState::Open));
        // The window slides: old failures fall out.
        let mut breaker: Breaker = Breaker::new(config).unwrap();
        // Three failures are not enough calls; the fourth is (100%).
        for _ in 0..3 {
            assert_eq!(fail(&mut breaker, now), None);
        }
        assert_eq!(fail(&mut breaker, now), Some(BreakerState::Open));
        assert_eq!(breaker.snapshot(now).state, BreakerState::Open);
        let config = BreakerConfig::failure_rate(6_000, 5, 5, Nanos::from_secs(1));
        let mut breaker: Breaker = Breaker::new(config).unwrap();
        for result in [true, true, false, false, false, false, false, true, true] {
            let permit = breaker.permit(now).unwrap();
            let verdict = if result {
                CallResult::Failure
            } else {
                CallResult::Success
            };
            assert_eq!(breaker.record(permit, verdict, now), None);
        }
        let snapshot = breaker.snapshot(now);
        assert_eq!((snapshot.window_calls, snapshot.window_failures), (5, 2));
        assert_eq!(fail(&mut breaker, now), Some(BreakerState::Open));
    }

    #[test]
    fn open_time_grows_and_is_capped() {
        let clock = ManualClock::new();
        let config =
            BreakerConfig::consecutive_failures(1, Nanos::from_secs(10)).with_growth(3, Nanos::from_secs(60));
        let mut breaker: Breaker = Breaker::new(config).unwrap();
        fail(&mut breaker, clock.now());
        for expected in [30u64, 60, 60] {
            clock.advance(breaker.snapshot(clock.now()).open_for.unwrap());
            assert_eq!(fail(&mut breaker, clock.now()), Some(BreakerState::Open));
            assert_eq!(
                breaker.snapshot(clock.now()).open_for,
                Some(Nanos::from_secs(expected))
            );
        }
    }

    #[test]
    fn stale_permits_are_ignored() {
        let now = Instant::ZERO;
        let mut breaker: Breaker =
            Breaker::new(BreakerConfig::consecutive_failures(1, Nanos::from_secs(1))).unwrap();
        let slow = breaker.permit(now).unwrap();
        fail(&mut breaker, now);
        let later = now + Nanos::from_secs(1);
        let probe = breaker.permit(later).unwrap();
        // The slow call from before the trip succeeds: it must not close.
        assert_eq!(breaker.record(slow, CallResult::Success, later), None);
        assert_eq!(breaker.snapshot(later).state, BreakerState::HalfOpen);
        assert_eq!(
            breaker.record(probe, CallResult::Success, later),
            Some(BreakerState::Closed)
        );
        // And the probe cannot count twice: `record` consumed it (a second
        // call does not compile).
    }

    #[test]
    fn released_and_lost_probes() {
        let clock = ManualClock::new();
        let config = BreakerConfig::consecutive_failures(1, Nanos::from_secs(10)).with_probes(2);
        let mut breaker: Breaker = Breaker::new(config).unwrap();
        fail(&mut breaker, clock.now());
        clock.advance(Nanos::from_secs(10));
        let a = breaker.permit(clock.now()).unwrap();
        let _b = breaker.permit(clock.now()).unwrap();
        assert!(breaker.permit(clock.now()).is_err());
        // A probe that met a 429 says nothing: its slot is given back.
        breaker.release(a);
        let _c = breaker.permit(clock.now()).unwrap();
        assert_eq!(breaker.snapshot(clock.now()).probes_in_flight, 2);
        // Neither reports within the open time: the breaker reopens.
        clock.advance(Nanos::from_secs(10));
        let refused = breaker.permit(clock.now()).unwrap_err();
        assert_eq!(refused.state, BreakerState::Open);
        assert_eq!(breaker.snapshot(clock.now()).trips, 2);
    }

    #[test]
    fn forced_open_waits_for_reset() {
        let mut breaker: Breaker = Breaker::new(BreakerConfig::GO_HIGH_LEVEL).unwrap();
        let permit = breaker.permit(Instant::ZERO).unwrap();
        breaker.force_open();
        assert_eq!(breaker.record(permit, CallResult::Success, Instant::ZERO), None);
        let refused = breaker.permit(Instant::MAX).unwrap_err();
        assert_eq!(refused.state, BreakerState::ForcedOpen);
        assert_eq!(refused.error().retry_after(), None);
        breaker.reset();
        assert!(breaker.permit(Instant::MAX).is_ok());
    }

    #[test]
    fn the_breaker_is_small() {
        assert!(core::mem::size_of::<Breaker>() <= 96);
    }

    mod open_time {
        use proptest::prelude::*;

        use super::*;

        /// `open_time` as first written, with `checked_pow`: the reference.
        fn with_pow(config: &BreakerConfig, trips: u32) -> Nanos {
            let open = match u64::from(config.growth()).checked_pow(trips.saturating_sub(1)) {
                Some(factor) => config.open_for().saturating_mul(factor),
                None => Nanos::MAX,
            };
            open.min(config.max_open_for())
        }

        fn nanos() -> impl Strategy<Value = Nanos> {
            prop_oneof![0..u64::MAX, 0..1u64 << 40, Just(0), Just(u64::MAX)].prop_map(Nanos::from_nanos)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(20_000))]

            /// Any configuration with an open time (the breaker checks
            /// for one), any number of trips. (With none, the reference
            /// answered the cap once the power overflowed; the product is
            /// zero, as `open_time` now says.)
            #[test]
            fn grows_as_the_power_does(
                open_for in nanos().prop_filter("an open time", |open| !open.is_zero()),
                max_open_for in nanos(),
                growth in prop_oneof![0..4u32, 0..u32::MAX, Just(u32::MAX)],
                trips in prop_oneof![0..80u32, 0..u32::MAX, Just(u32::MAX)],
            ) {
                let config = BreakerConfig::consecutive_failures(1, open_for).with_growth(growth, max_open_for);
                prop_assert_eq!(config.open_time(trips), with_pow(&config, trips));
            }

            /// A breaker's trip (whose configuration was validated) opens
            /// it for what `open_time` says, from `trips` trips before.
            #[test]
            fn a_trip_opens_for_the_open_time(
                open_for in nanos().prop_filter("an open time", |open| !open.is_zero()),
                extra in nanos(),
                growth in prop_oneof![1..4u32, 1..u32::MAX, Just(u32::MAX)],
                trips in prop_oneof![0..80u32, 0..u32::MAX, Just(u32::MAX - 1), Just(u32::MAX)],
                now in prop_oneof![0..u64::MAX, 0..1u64 << 40, Just(u64::MAX)],
            ) {
                let max_open_for = open_for.saturating_add(extra);
                let config = BreakerConfig::consecutive_failures(1, open_for).with_growth(growth, max_open_for);
                let mut breaker = Breaker::<0>::new(config).unwrap();
                breaker.trips = trips;
                let now = Instant::from_nanos(now);
                breaker.trip(now);
                let expected = now.saturating_add(config.open_time(trips.saturating_add(1)));
                prop_assert_eq!(breaker.phase, Phase::Open { until: expected });
                prop_assert_eq!(breaker.trips, trips.saturating_add(1));
            }

            #[test]
            fn no_open_time_stays_zero(max_open_for in nanos(), growth: u32, trips: u32) {
                let config = BreakerConfig::consecutive_failures(1, Nanos::ZERO).with_growth(growth, max_open_for);
                prop_assert_eq!(config.open_time(trips), Nanos::ZERO);
            }
        }
    }
}
