//! The generic cell rate algorithm (GCRA): pacing with one integer of state.
//!
//! A bucket's whole state is its *theoretical arrival time* (TAT): the
//! instant at which the bucket would be fully replenished. With an
//! emission interval `T` (the time one unit of cost takes to replenish) and
//! a burst `B` (the most cost admitted at once from a full bucket), the
//! tolerance is `τ = T·B`, and a request of cost `n` arriving at `now` is
//! admitted when
//!
//! ```text
//! max(TAT, now) + n·T − now ≤ τ
//! ```
//!
//! after which the stored TAT becomes `max(TAT, now) + n·T`. This is exactly
//! a token bucket of capacity `B` refilled one token per `T`, without the
//! refill bookkeeping: the tokens present are `(τ − (TAT − now)) / T`.
//!
//! [`Gcra::decide`] is a pure function: it reads the stored TAT and returns
//! the new one, and the store (memory, Redis, Embassy) owns the atomicity of
//! "read, decide, write". Every quantity fits `u64` by construction
//! (`cost ≤ B` keeps `n·T ≤ τ`, and a TAT past the [`Instant`] horizon is
//! refused before it is formed), so the arithmetic is exact in `u64`
//! without a wider type, and no input overflows or panics.
//!
//! # Check and reserve
//!
//! `decide` takes a `max_wait`. With `max_wait == 0` it is a plain check:
//! admit now or say when to retry. With `max_wait > 0` it is a reservation:
//! when the request would conform within `max_wait`, the slot is taken *now*
//! (the TAT advances) and the caller is told how long to wait before
//! sending. Many waiters then queue on one bucket in arrival order without
//! polling, each sleeping exactly its own wait. A reservation that waits `w`
//! leaves the bucket in the same state as a check made at `now + w`.

use crate::time::{Instant, Nanos};

/// The parameters of one bucket's GCRA: an emission interval and a burst.
///
/// Built validated, so every `Gcra` in existence has `T ≥ 1 ns`, `B ≥ 1` and
/// `T·B` within the [`Nanos`] range.
///
/// ```
/// use ratekeeper_core::{Gcra, Instant, Nanos};
///
/// // 10 requests per second, bursts of up to 5.
/// let gcra = Gcra::new(Nanos::from_millis(100), 5).unwrap();
/// let now = Instant::from_nanos(0);
/// let mut tat = None;
/// for _ in 0..5 {
///     let allowed = gcra.decide(tat, now, 1, Nanos::ZERO).allowed().unwrap();
///     tat = Some(allowed.tat);
/// }
/// let denied = gcra.decide(tat, now, 1, Nanos::ZERO).denied().unwrap();
/// assert_eq!(denied.retry_after, Nanos::from_millis(100));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Gcra {
    // `τ = T·B` is worked out when needed (one multiplication), not kept:
    // a smaller `Gcra` is a smaller `Acquire`, copied on every request.
    emission_interval: Nanos,
    burst: u32,
}

/// Why a [`Gcra`] could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum GcraError {
    /// The emission interval was zero: an infinite rate is not a limit.
    ZeroInterval,
    /// The burst was zero: nothing could ever be admitted.
    ZeroBurst,
    /// `interval × burst` is longer than the [`Nanos`] range (~584 years).
    ToleranceOverflow,
}

impl core::fmt::Display for GcraError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            GcraError::ZeroInterval => "the emission interval must be at least 1 ns",
            GcraError::ZeroBurst => "the burst must be at least 1",
            GcraError::ToleranceOverflow => "interval × burst exceeds about 584 years",
        })
    }
}

impl core::error::Error for GcraError {}

impl Gcra {
    /// One request per ~292 years (half the time horizon, so that it still
    /// admits its one request within it): the answer when arithmetic
    /// elsewhere would otherwise have to panic or admit freely.
    pub const SLOWEST: Gcra = Gcra {
        emission_interval: Nanos::from_nanos(u64::MAX / 2),
        burst: 1,
    };

    /// A GCRA admitting one unit of cost per `emission_interval`, up to
    /// `burst` at once.
    pub const fn new(emission_interval: Nanos, burst: u32) -> Result<Gcra, GcraError> {
        if emission_interval.is_zero() {
            return Err(GcraError::ZeroInterval);
        }
        if burst == 0 {
            return Err(GcraError::ZeroBurst);
        }
        match emission_interval.checked_mul(burst as u64) {
            Some(_) => Ok(Gcra {
                emission_interval,
                burst,
            }),
            None => Err(GcraError::ToleranceOverflow),
        }
    }

    /// The GCRA of `emission_interval` (at least 1 ns) and `burst` (at
    /// least 1), the burst lowered as far as `T·B` needs to fit the time
    /// range (to `⌊u64::MAX / T⌋`, itself at least 1). Lowering the burst
    /// only ever admits less; never an error, so no error path to pay for.
    /// The caller vouches for the figures being at least 1 (a policy's
    /// interval and burst are, by construction), so there is no zero check
    /// to pay for either.
    pub(crate) const fn with_burst_at_most(emission_interval: Nanos, burst: u32) -> Gcra {
        let interval = emission_interval.as_nanos();
        let burst = match interval.checked_mul(burst as u64) {
            Some(_) => burst,
            // `u64::MAX / T < B ≤ u32::MAX` here (the product overflowed),
            // so the cast is exact, and `(u64::MAX / T) · T ≤ u64::MAX`.
            None => match u64::MAX.checked_div(interval) {
                Some(fits) => fits as u32,
                None => 1,
            },
        };
        Gcra {
            emission_interval: Nanos::from_nanos(interval),
            burst,
        }
    }

    /// The time one unit of cost takes to replenish (`T`).
    pub const fn emission_interval(&self) -> Nanos {
        self.emission_interval
    }

    /// The most cost admitted at once from a full bucket (`B`).
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    /// `τ = T·B`: how far ahead of now the TAT may run.
    pub const fn tolerance(&self) -> Nanos {
        // Construction keeps `T·B` within `u64`: exact.
        Nanos::from_nanos(self.emission_interval.as_nanos().wrapping_mul(self.burst as u64))
    }

    /// Decides a request of `cost` at `now` against the stored TAT
    /// (`None` for a bucket never used, which is a full bucket), waiting at
    /// most `max_wait`. See the [module docs](self) for the rule.
    ///
    /// A cost of zero is always allowed and changes nothing: it reads the
    /// bucket.
    ///
    /// ```
    /// use ratekeeper_core::{Decision, Gcra, Instant, Nanos};
    ///
    /// let gcra = Gcra::new(Nanos::from_secs(1), 1).unwrap();
    /// let now = Instant::from_nanos(0);
    /// let first = gcra.decide(None, now, 1, Nanos::ZERO).allowed().unwrap();
    /// // A reservation queues behind the first request instead of failing.
    /// let second = gcra.decide(Some(first.tat), now, 1, Nanos::from_secs(5));
    /// assert_eq!(second.allowed().unwrap().wait, Nanos::from_secs(1));
    /// // More than the burst can never pass.
    /// assert!(matches!(gcra.decide(None, now, 2, Nanos::MAX), Decision::Impossible { .. }));
    /// ```
    pub fn decide(&self, tat: Option<Instant>, now: Instant, cost: u32, max_wait: Nanos) -> Decision {
        self.decide_paused(
            tat.map_or(0, Instant::as_nanos),
            0,
            now.as_nanos(),
            cost,
            max_wait.as_nanos(),
        )
    }

    /// The rule of [`Gcra::decide`] for a bucket that admits nothing before
    /// `paused_until`, all in nanoseconds on one clock, `0` standing for
    /// "no TAT" and "not paused" (neither is after any `now`, so `0` decides
    /// exactly as `None`): the whole of
    /// [`BucketState::decide`](crate::BucketState::decide).
    ///
    /// While paused, the request is decided as if made at the pause's end
    /// `at`, and every span is told from `now`. Whether it is admitted then
    /// reads "`ready − now ≤ max_wait`", with `ready = max(conforming_at,
    /// at)`: a pause that alone outlasts `max_wait` refuses, saying how
    /// long, and a refusal in a pause is [`DenialCause::Paused`] with
    /// nothing available.
    pub(crate) fn decide_paused(
        &self,
        tat: u64,
        paused_until: u64,
        now: u64,
        cost: u32,
        max_wait: u64,
    ) -> Decision {
        if cost > self.burst {
            return Decision::Impossible {
                cost,
                burst: self.burst,
            };
        }
        let interval = self.emission_interval.as_nanos();
        let tolerance = self.tolerance().as_nanos();
        // `now ≤ at ≤ base ≤ new_tat`, and `at ≤ ready ≤ new_tat`, so every
        // difference of two of them is exact.
        let at = paused_until.max(now);
        let pause_left = at.wrapping_sub(now);
        // A TAT in the past is a full bucket; so is no TAT at all.
        let base = tat.max(at);
        // `cost ≤ B`, so `n·T ≤ T·B = τ`, which fits: exact.
        let cost_ns = interval.wrapping_mul(u64::from(cost));
        let ready = if cost == 0 {
            // A read goes at once (at the pause's end), changing nothing: a
            // reservation queue may have run the TAT far ahead; that is no
            // reason to refuse a question.
            at
        } else {
            // The earliest instant at which `new_tat − t ≤ τ` holds:
            // `base + n·T − τ = base − (τ − n·T)`, never below zero; or the
            // pause's end, if later.
            base.saturating_sub(tolerance.wrapping_sub(cost_ns)).max(at)
        };
        let wait = ready.wrapping_sub(now);
        // Beyond the horizon (584 years) the TAT cannot be stored.
        let new_tat = base.checked_add(cost_ns);
        let admitted = new_tat.is_some() && wait <= max_wait;
        // Admitted, the bucket runs to the new TAT from when the request
        // goes; refused, to the TAT as it stands from `at`. One span, one
        // division, whichever it is.
        let (end, from) = if admitted {
            (base.wrapping_add(cost_ns), ready)
        } else {
            (base, at)
        };
        let remaining = units(tolerance.saturating_sub(end.wrapping_sub(from)), interval);
        let reset_after = Nanos::from_nanos(end.wrapping_sub(now));
        if admitted {
            return Decision::Allowed(Allowed {
                tat: Instant::from_nanos(end),
                wait: Nanos::from_nanos(wait),
                remaining,
                reset_after,
            });
        }
        // Past the horizon the bucket counts as exhausted for good, and
        // "retry after" says never, so no caller spins on a refusal that
        // waiting cannot lift.
        let retry_after = Nanos::from_nanos(if new_tat.is_none() { u64::MAX } else { wait });
        let paused = pause_left != 0;
        Decision::Denied(Denied {
            retry_after,
            // Nothing is available before the pause ends.
            remaining: if paused { 0 } else { remaining },
            reset_after,
            cause: if paused {
                DenialCause::Paused
            } else {
                DenialCause::Limit
            },
        })
    }

    /// How much cost the bucket holds at `now` given its stored TAT,
    /// without changing anything.
    ///
    /// ```
    /// use ratekeeper_core::{Gcra, Instant, Nanos};
    ///
    /// let gcra = Gcra::new(Nanos::from_millis(10), 4).unwrap();
    /// assert_eq!(gcra.available(None, Instant::ZERO), 4);
    /// assert_eq!(gcra.available(Some(Instant::from_nanos(25_000_000)), Instant::ZERO), 1);
    /// ```
    pub fn available(&self, tat: Option<Instant>, now: Instant) -> u32 {
        let now_ns = now.as_nanos();
        let ahead = tat.map_or(0, |t| t.as_nanos().saturating_sub(now_ns));
        units(
            self.tolerance().as_nanos().saturating_sub(ahead),
            self.emission_interval.as_nanos(),
        )
    }
}

/// Whole units of cost in `credit` nanoseconds, saturating at `u32::MAX`
/// (the interval is never zero).
fn units(credit: u64, interval: u64) -> u32 {
    u32::try_from(credit.checked_div(interval).unwrap_or(0)).unwrap_or(u32::MAX)
}

/// The outcome of [`Gcra::decide`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Decision {
    /// The request conforms now, or after [`Allowed::wait`]; its slot is
    /// taken.
    Allowed(Allowed),
    /// The request would not conform within the allowed wait; nothing
    /// changed.
    Denied(Denied),
    /// The cost exceeds the burst: no amount of waiting admits it.
    Impossible {
        /// The cost asked for.
        cost: u32,
        /// The bucket's burst, the largest cost it can ever admit.
        burst: u32,
    },
}

impl Decision {
    /// The admission, if allowed.
    pub const fn allowed(self) -> Option<Allowed> {
        match self {
            Decision::Allowed(a) => Some(a),
            _ => None,
        }
    }

    /// The refusal, if denied.
    pub const fn denied(self) -> Option<Denied> {
        match self {
            Decision::Denied(d) => Some(d),
            _ => None,
        }
    }

    /// Whether the request was admitted (possibly after a wait).
    pub const fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed(_))
    }
}

/// An admitted request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Allowed {
    /// The TAT to store.
    pub tat: Instant,
    /// How long to wait before sending: zero for a check, up to `max_wait`
    /// for a reservation.
    pub wait: Nanos,
    /// Cost still available once the request is sent, rounded down.
    pub remaining: u32,
    /// Time from now until the bucket is full again.
    pub reset_after: Nanos,
}

/// A refused request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Denied {
    /// The shortest wait after which the same request would be admitted;
    /// one nanosecond less would still be refused.
    pub retry_after: Nanos,
    /// Cost available now, rounded down (less than the cost asked for).
    pub remaining: u32,
    /// Time from now until the bucket is full again.
    pub reset_after: Nanos,
    /// What stands in the way.
    pub cause: DenialCause,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DenialCause {
    /// The bucket's rate: the request does not conform yet.
    Limit,
    /// The bucket is paused (the server said 429 or 503 and when to come
    /// back); `retry_after` is at least the rest of the pause.
    Paused,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construction_is_validated() {
        assert_eq!(Gcra::new(Nanos::ZERO, 1), Err(GcraError::ZeroInterval));
        assert_eq!(Gcra::new(Nanos::from_nanos(1), 0), Err(GcraError::ZeroBurst));
        assert_eq!(Gcra::new(Nanos::MAX, 2), Err(GcraError::ToleranceOverflow));
        assert!(Gcra::new(Nanos::MAX, 1).is_ok());
    }

    #[test]
    fn burst_then_steady_rate() {
        let gcra = Gcra::new(Nanos::from_millis(100), 3).unwrap();
        let mut tat = None;
        let now = Instant::from_nanos(1_000_000_000);
        for expected_remaining in [2, 1, 0] {
            let a = gcra.decide(tat, now, 1, Nanos::ZERO).allowed().unwrap();
            assert_eq!(a.remaining, expected_remaining);
            tat = Some(a.tat);
        }
        let d = gcra.decide(tat, now, 1, Nanos::ZERO).denied().unwrap();
        assert_eq!(d.retry_after, Nanos::from_millis(100));
        assert_eq!(d.reset_after, Nanos::from_millis(300));
        // One nanosecond early is still too early.
        let early = now + Nanos::from_nanos(99_999_999);
        assert!(!gcra.decide(tat, early, 1, Nanos::ZERO).is_allowed());
        assert!(
            gcra.decide(tat, now + Nanos::from_millis(100), 1, Nanos::ZERO)
                .is_allowed()
        );
    }

    #[test]
    fn reservation_queues_waiters_in_order() {
        let gcra = Gcra::new(Nanos::from_millis(50), 1).unwrap();
        let now = Instant::ZERO;
        let mut tat = None;
        for i in 0..5u64 {
            let a = gcra.decide(tat, now, 1, Nanos::from_secs(1)).allowed().unwrap();
            assert_eq!(a.wait, Nanos::from_millis(50 * i));
            tat = Some(a.tat);
        }
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let gcra = Gcra::new(Nanos::MAX, 1).unwrap();
        let d = gcra.decide(Some(Instant::MAX), Instant::MAX, 1, Nanos::MAX);
        assert!(!d.is_allowed());
        let d = gcra.decide(None, Instant::ZERO, 1, Nanos::MAX);
        assert!(d.is_allowed());
        let tiny = Gcra::new(Nanos::from_nanos(1), u32::MAX).unwrap();
        let latest = Instant::MAX - tiny.tolerance();
        assert!(tiny.decide(None, latest, u32::MAX, Nanos::ZERO).is_allowed());
        // Past the horizon the new TAT cannot be stored: refused, not wrapped.
        let past = latest + Nanos::from_nanos(1);
        assert!(!tiny.decide(None, past, u32::MAX, Nanos::ZERO).is_allowed());
        assert_eq!(tiny.available(Some(Instant::ZERO), Instant::MAX), u32::MAX);
    }

    #[test]
    fn beyond_the_horizon_a_refusal_says_never() {
        // The slowest GCRA admits its one request; a second would fall
        // past the horizon, so it is refused for good.
        let first = Gcra::SLOWEST.decide(None, Instant::from_nanos(5), 1, Nanos::ZERO);
        let tat = first.allowed().unwrap().tat;
        let second = Gcra::SLOWEST.decide(Some(tat), Instant::from_nanos(5), 1, Nanos::ZERO);
        assert_eq!(second.denied().unwrap().retry_after, Nanos::MAX);
        // A TAT that cannot be stored is a refusal that waiting cannot lift.
        let gcra = Gcra::new(Nanos::MAX, 1).unwrap();
        let refused = gcra.decide(None, Instant::from_nanos(5), 1, Nanos::ZERO);
        assert_eq!(refused.denied().unwrap().retry_after, Nanos::MAX);
    }

    #[test]
    fn zero_cost_reads_without_changing() {
        let gcra = Gcra::new(Nanos::from_millis(10), 2).unwrap();
        let tat = Some(Instant::from_nanos(15_000_000));
        let a = gcra.decide(tat, Instant::ZERO, 0, Nanos::ZERO).allowed().unwrap();
        assert_eq!(a.tat, Instant::from_nanos(15_000_000));
        assert_eq!(a.remaining, 0);
    }
}
