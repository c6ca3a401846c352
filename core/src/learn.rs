//! Learning each bucket's real limit from what the server says — or, when it
//! says nothing, from its 429s alone.
//!
//! A [`Learner`] holds what one client believes about one bucket. After each
//! response the caller hands it an [`Observation`] (status, and whatever the
//! headers stated) and gets back a [`Learned`]: the policy to store for the
//! fleet if it changed, a pause to apply to the bucket for everyone, and an
//! event to log. Before each request [`Learner::gcra`] gives the parameters
//! to pace with.
//!
//! # With headers
//!
//! A stated limit and window become a [`PolicySource::Header`] policy at
//! once. When a window is not stated it is inferred from the longest reset
//! seen (a fixed window's reset counts down from its length), until a
//! stated window replaces it; several stated windows (a burst limit and a
//! daily one) are reduced to the one with the slowest sustained rate.
//!
//! The server's `remaining` and `reset` are *reconciled* with the pacing:
//! `remaining = 0` pauses the bucket until the reset, for every instance;
//! and when what is left cannot last until the reset at the policy's pace
//! (other clients, or calls made outside ratekeeper, used part of the
//! window), the pace slows so the rest is spread until the reset.
//!
//! # Without headers
//!
//! An unknown endpoint starts at the conservative default. Each run of
//! successes that lasts a probe period doubles the rate (a slow start) until
//! the first 429; a 429 cuts the rate to a fraction of the rate that failed
//! and remembers that rate as a ceiling. From then on the rate probes up
//! carefully: a small step after each probe period without a 429, never
//! above just under the ceiling while the ceiling is fresh, and a probe that
//! fails doubles the probe period, so probing costs fewer 429s the longer
//! the limit stays put. The highest rate that held is remembered as a floor
//! that decreases never go below by much. Ceilings age out, so a limit that
//! was raised is found again.
//!
//! # 429 and 503
//!
//! Either pauses the bucket for every instance: until `Retry-After` when
//! given (it always wins), else until the stated reset when nothing remains,
//! else for an exponential backoff that grows with consecutive 429s.
//!
//! # Selecting capabilities
//!
//! [`Learner::new`] learns with everything above. A build whose API states
//! its limits in headers can leave out the discovery without headers and
//! the tracking of reset boundaries across responses, and not link their
//! code, with [`Learner::with_capabilities`] and a bit set of
//! [`LearnerCapabilities`]: one chosen at compile time, as the header
//! parser's families are. What a learner without a capability does instead
//! is described at each; where the capability would not have acted it
//! decides exactly as the full learner.

use crate::gcra::Gcra;
use crate::headers::{QuotaUnit, RateLimitInfo};
use crate::policy::{Policy, PolicyConfig, PolicySource, ServerView};
use crate::time::{Instant, Nanos};

/// The most windows an [`Observation`] carries: as many as the header
/// parser reads.
pub const MAX_WINDOWS: usize = crate::headers::QUOTA_CAPACITY;

/// One stated quota: `limit` per `window`, of which `remaining` is left until
/// `reset_after`. Any part may be missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StatedQuota {
    /// Requests allowed per window.
    pub limit: Option<u64>,
    /// The window's length.
    pub window: Option<Nanos>,
    /// Requests left in the current window.
    pub remaining: Option<u64>,
    /// Time until the current window resets.
    pub reset_after: Option<Nanos>,
}

/// What one response said, in the learner's terms.
///
/// ```
/// use ratekeeper_core::learn::{Observation, StatedQuota};
/// use ratekeeper_core::Nanos;
///
/// let ok = Observation::status(200).with_quota(StatedQuota {
///     limit: Some(16),
///     remaining: Some(14),
///     reset_after: Some(Nanos::from_secs(1)),
///     window: None,
/// });
/// assert_eq!(ok.quotas().len(), 1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Observation {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After`, if stated.
    pub retry_after: Option<Nanos>,
    /// How long the request took, from sending to the response: the server
    /// stated its figures somewhere in that span.
    pub round_trip: Nanos,
    quotas: [StatedQuota; MAX_WINDOWS],
    quota_count: u8,
}

impl Observation {
    /// A response with `status` and no rate-limit headers.
    pub const fn status(status: u16) -> Observation {
        Observation {
            status,
            retry_after: None,
            round_trip: Nanos::ZERO,
            quotas: [StatedQuota {
                limit: None,
                window: None,
                remaining: None,
                reset_after: None,
            }; MAX_WINDOWS],
            quota_count: 0,
        }
    }

    /// The same observation with a stated `Retry-After`.
    pub const fn with_retry_after(mut self, retry_after: Nanos) -> Observation {
        self.retry_after = Some(retry_after);
        self
    }

    /// The same observation, made `round_trip` after the request was sent.
    pub const fn with_round_trip(mut self, round_trip: Nanos) -> Observation {
        self.round_trip = round_trip;
        self
    }

    /// The same observation with one more stated quota; past
    /// [`MAX_WINDOWS`] further quotas are dropped.
    pub fn with_quota(mut self, quota: StatedQuota) -> Observation {
        self.push_quota(quota);
        self
    }

    /// [`Observation::with_quota`] in place: an observation is a few
    /// hundred bytes, not worth moving once per quota.
    fn push_quota(&mut self, quota: StatedQuota) {
        if let Some(slot) = self.quotas.get_mut(usize::from(self.quota_count)) {
            *slot = quota;
            self.quota_count = self.quota_count.saturating_add(1);
        }
    }

    /// The stated quotas.
    pub fn quotas(&self) -> &[StatedQuota] {
        self.quotas.get(..usize::from(self.quota_count)).unwrap_or(&[])
    }

    /// What a parsed response says, in the learner's terms: its status,
    /// its `Retry-After`, and every stated quota that counts requests
    /// (quotas of LLM tokens or bytes are not what ratekeeper paces).
    ///
    /// ```
    /// use ratekeeper_core::headers::{ParseOptions, RateLimitInfo};
    /// use ratekeeper_core::{Nanos, Observation};
    ///
    /// let headers: [(&[u8], &[u8]); 1] = [(b"ratelimit", b"limit=16; remaining=14; reset=1")];
    /// let info = RateLimitInfo::parse(Some(200), headers, &ParseOptions::new());
    /// let observation = Observation::from_info(&info).with_round_trip(Nanos::from_millis(40));
    /// assert_eq!(observation.quotas()[0].limit, Some(16));
    /// ```
    pub fn from_info(info: &RateLimitInfo) -> Observation {
        let mut observation = Observation::status(info.status().unwrap_or(0));
        observation.retry_after = info.retry_after();
        for quota in info.quotas() {
            if quota.unit == QuotaUnit::Requests {
                observation.push_quota(StatedQuota {
                    limit: quota.limit,
                    window: quota.window,
                    remaining: quota.remaining,
                    reset_after: quota.reset_after,
                });
            }
        }
        observation
    }

    /// Whether the server refused for rate (429) or overload (503).
    pub const fn is_throttled(&self) -> bool {
        is_throttled(self.status)
    }
}

/// Whether `status` refuses for rate (429) or overload (503).
const fn is_throttled(status: u16) -> bool {
    status == 429 || status == 503
}

/// A stated quota as the learner reads it: from an [`Observation`], or
/// from a parsed response where it was parsed.
trait Statement {
    fn limit(&self) -> Option<u64>;
    fn window(&self) -> Option<Nanos>;
    fn remaining(&self) -> Option<u64>;
    fn reset_after(&self) -> Option<Nanos>;
}

/// [`Statement`] for quota types that hold its four figures as fields of
/// the same names.
macro_rules! statement_from_fields {
    ($($quota:ty),*) => {$(
        impl Statement for $quota {
            fn limit(&self) -> Option<u64> {
                self.limit
            }
            fn window(&self) -> Option<Nanos> {
                self.window
            }
            fn remaining(&self) -> Option<u64> {
                self.remaining
            }
            fn reset_after(&self) -> Option<Nanos> {
                self.reset_after
            }
        }
    )*};
}
statement_from_fields!(StatedQuota, crate::headers::Quota);

/// The stated quota with the slowest sustained rate among those read so
/// far: the one that governs.
struct Slowest<'q, S> {
    /// Its index among the stated quotas.
    index: usize,
    /// Its window per request.
    per_request: u64,
    limit: u32,
    window: Nanos,
    /// The quota, for the remaining count and reset it states.
    quota: &'q S,
}

/// What [`Learner::observe`] reads of a response besides its quotas, read
/// where each is needed rather than gathered first: a small target then
/// keeps none of it aside while the quotas are read.
trait Response {
    /// Whether the server refused for rate or overload.
    fn throttled(&self) -> bool;
    /// `Retry-After`, if stated.
    fn retry_after(&self) -> Option<Nanos>;
    /// From sending to the response.
    fn round_trip(&self) -> Nanos;
}

impl Response for Observation {
    fn throttled(&self) -> bool {
        self.is_throttled()
    }
    fn retry_after(&self) -> Option<Nanos> {
        self.retry_after
    }
    fn round_trip(&self) -> Nanos {
        self.round_trip
    }
}

/// A parsed response, and how long after its request was sent it came.
struct Parsed<'i> {
    info: &'i RateLimitInfo,
    round_trip: Nanos,
}

impl Response for Parsed<'_> {
    fn throttled(&self) -> bool {
        is_throttled(self.info.status().unwrap_or(0))
    }
    fn retry_after(&self) -> Option<Nanos> {
        self.info.retry_after()
    }
    fn round_trip(&self) -> Nanos {
        self.round_trip
    }
}

/// How the learner behaves. Built from [`LearnerConfig::DEFAULT`] with the
/// `with_*` methods, which validate what they are given, so every
/// configuration in existence is a sound one.
///
/// ```
/// use ratekeeper_core::{LearnerConfig, Nanos, PolicyConfig};
///
/// let config = LearnerConfig::DEFAULT
///     .with_policy(PolicyConfig::DEFAULT)
///     .with_backoff(Nanos::from_millis(500), Nanos::from_secs(10))
///     .unwrap();
/// assert_eq!(config.backoff_cap(), Nanos::from_secs(10));
/// // A "decrease" that would speed up is refused.
/// assert!(LearnerConfig::DEFAULT.with_decrease_permille(1_200).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LearnerConfig {
    policy: PolicyConfig,
    decrease_permille: u16,
    probe_step_permille: u16,
    probe_period: Nanos,
    max_probe_period: Nanos,
    ceiling_memory: Nanos,
    backoff_base: Nanos,
    backoff_cap: Nanos,
}

/// Why a [`LearnerConfig`] setting was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LearnerConfigError {
    /// A decrease must keep between 1 and 999 parts per thousand of the rate.
    Decrease,
    /// A probe step must be between 1 and 1,000 parts per thousand.
    ProbeStep,
    /// Probe periods must be longer than zero, the longest at least the first.
    ProbePeriod,
    /// A backoff must be longer than zero, its cap at least its base.
    Backoff,
}

impl core::fmt::Display for LearnerConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            LearnerConfigError::Decrease => "the decrease must keep 1 to 999 parts per thousand of the rate",
            LearnerConfigError::ProbeStep => "the probe step must be 1 to 1000 parts per thousand",
            LearnerConfigError::ProbePeriod => {
                "probe periods must be longer than zero, the longest at least the first"
            }
            LearnerConfigError::Backoff => "the backoff must be longer than zero, its cap at least its base",
        })
    }
}

impl core::error::Error for LearnerConfigError {}

impl LearnerConfig {
    /// The defaults: cut to 85% of a failing rate, probe 5% up every 2 s of
    /// successes (up to 64 s after failed probes), remember ceilings for 10
    /// minutes, back off from 1 s to 30 s.
    pub const DEFAULT: LearnerConfig = LearnerConfig {
        policy: PolicyConfig::DEFAULT,
        decrease_permille: 850,
        probe_step_permille: 50,
        probe_period: Nanos::from_secs(2),
        max_probe_period: Nanos::from_secs(64),
        ceiling_memory: Nanos::from_secs(600),
        backoff_base: Nanos::from_secs(1),
        backoff_cap: Nanos::from_secs(30),
    };

    /// The same configuration with another margin, burst and default
    /// policy (already validated by [`PolicyConfig::new`]).
    pub const fn with_policy(mut self, policy: PolicyConfig) -> LearnerConfig {
        self.policy = policy;
        self
    }

    /// After a 429 without headers, the new rate as parts per thousand of
    /// the rate that failed (1 to 999).
    pub const fn with_decrease_permille(
        mut self,
        permille: u16,
    ) -> Result<LearnerConfig, LearnerConfigError> {
        if permille == 0 || permille >= 1000 {
            return Err(LearnerConfigError::Decrease);
        }
        self.decrease_permille = permille;
        Ok(self)
    }

    /// Each probe's rate step (1 to 1,000 parts per thousand), how long a
    /// run of successes must last before a probe, the longest that period
    /// grows to after failed probes, and how long a rate that drew a 429
    /// holds probes below it.
    pub const fn with_probing(
        mut self,
        step_permille: u16,
        period: Nanos,
        max_period: Nanos,
        ceiling_memory: Nanos,
    ) -> Result<LearnerConfig, LearnerConfigError> {
        if step_permille == 0 || step_permille > 1000 {
            return Err(LearnerConfigError::ProbeStep);
        }
        if period.is_zero() || max_period.as_nanos() < period.as_nanos() {
            return Err(LearnerConfigError::ProbePeriod);
        }
        self.probe_step_permille = step_permille;
        self.probe_period = period;
        self.max_probe_period = max_period;
        self.ceiling_memory = ceiling_memory;
        Ok(self)
    }

    /// The backoff after a 429 that says nothing of when to retry: `base`,
    /// doubling up to `cap`.
    pub const fn with_backoff(
        mut self,
        base: Nanos,
        cap: Nanos,
    ) -> Result<LearnerConfig, LearnerConfigError> {
        if base.is_zero() || cap.as_nanos() < base.as_nanos() {
            return Err(LearnerConfigError::Backoff);
        }
        self.backoff_base = base;
        self.backoff_cap = cap;
        Ok(self)
    }

    /// Margin, burst and the default for unknown buckets.
    pub const fn policy(&self) -> PolicyConfig {
        self.policy
    }

    /// The first backoff after a 429 that says nothing of when to retry.
    pub const fn backoff_base(&self) -> Nanos {
        self.backoff_base
    }

    /// The longest such backoff.
    pub const fn backoff_cap(&self) -> Nanos {
        self.backoff_cap
    }

    /// How long a run of successes must last before the rate goes up.
    pub const fn probe_period(&self) -> Nanos {
        self.probe_period
    }

    /// The longest probe period.
    pub const fn max_probe_period(&self) -> Nanos {
        self.max_probe_period
    }
}

impl Default for LearnerConfig {
    fn default() -> LearnerConfig {
        LearnerConfig::DEFAULT
    }
}

/// What a learner did with one observation, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LearnEvent {
    /// Nothing changed.
    Unchanged,
    /// A limit was learned for the first time.
    Discovered,
    /// A learned limit changed.
    Changed,
    /// A 429 without headers lowered the estimated rate.
    Decreased,
    /// A run of successes raised the estimated rate.
    Probed,
    /// The server's `remaining` was exhausted: paused until its reset.
    Exhausted,
    /// The server refused (429/503): paused.
    Throttled,
}

/// The result of [`Learner::observe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Learned {
    /// What happened.
    pub event: LearnEvent,
    /// The policy to store for the fleet, when it changed.
    pub policy: Option<Policy>,
    /// Pause the bucket (for every instance) for this long.
    pub pause: Option<Nanos>,
}

/// What a [`Learner`] can do beyond reading stated limits, selected at
/// compile time: the const argument of a [`Learner`] is a
/// bit set of these. [`Learner::new`] has them all; a build whose API
/// states its limits in headers can leave out what it never needs, and the
/// code for it is not linked (a firmware's flash).
///
/// Every learner, whatever its capabilities, takes the policy a header
/// states (limit and window, or a window inferred from the longest reset),
/// pauses on a spent quota until its stated reset, slows the pace when what
/// remains cannot last until the reset, and pauses on a 429 or 503: until
/// `Retry-After`, else a spent quota's reset, else an exponential backoff.
/// Where a capability would not have acted, a learner without it decides
/// exactly as the full one.
///
/// ```
/// use ratekeeper_core::learn::{LearnEvent, Learner, LearnerCapabilities, LearnerConfig, Observation};
/// use ratekeeper_core::{Instant, Nanos};
///
/// // An API that states its limits in headers needs no discovery without them.
/// const LEARNS: u32 = LearnerCapabilities::ALL & !LearnerCapabilities::HEADERLESS;
/// let mut learner = Learner::<LEARNS>::with_capabilities(LearnerConfig::DEFAULT, Instant::ZERO);
/// let mut full = Learner::new(LearnerConfig::DEFAULT, Instant::ZERO);
///
/// // A 429 with nothing else: both back off; only the full learner also
/// // lowers its estimate of the rate.
/// let refused = Observation::status(429);
/// let (learned, by_full) = (learner.observe(&refused, Instant::ZERO), full.observe(&refused, Instant::ZERO));
/// assert_eq!((learned.event, learned.policy, learned.pause), (LearnEvent::Throttled, None, Some(Nanos::from_secs(1))));
/// assert_eq!((by_full.event, by_full.pause), (LearnEvent::Decreased, Some(Nanos::from_secs(1))));
/// assert!(by_full.policy.is_some());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LearnerCapabilities(());

impl LearnerCapabilities {
    /// Learning a limit from 429s alone, for buckets no header speaks of:
    /// a slow start, a decrease after each 429, probes up after runs of
    /// successes, the ceiling and floor those leave, a probe period that
    /// grows after failed probes (see [the module](self)).
    ///
    /// Without it a learner never changes its policy but from a stated
    /// limit (or [`Learner::adopt`]): a 429 with no usable header still
    /// pauses (for `Retry-After`, else the backoff) but leaves the policy
    /// as it is, and successes never raise it, so [`LearnEvent::Decreased`]
    /// and [`LearnEvent::Probed`] never occur. Where every response states a
    /// limit it decides as the full learner.
    pub const HEADERLESS: u32 = 1 << 0;

    /// Tracking where the governing window's boundaries lie across
    /// responses: a reset stated in whole seconds may have been rounded up
    /// by up to a second, and the round trip blurs when it was stated, but
    /// a fixed window's boundaries recur a window apart, so successive
    /// statements narrow them; and a remaining count that jumps back up
    /// shows fixed windows, whose remaining can be spread until the latest
    /// the reset can be rather than the earliest.
    ///
    /// Without it a learner reads each response alone, as the full learner
    /// does until it has located a boundary (two statements narrower than
    /// the window) or seen the count jump back up: a spent quota pauses for
    /// its reset as stated, not until the tracked boundary; what remains is
    /// spread until the earliest the stated reset can be, as for a sliding
    /// window, never until the latest as for a fixed one (so a reset stated
    /// in whole seconds, a second ahead, slows nothing).
    ///
    /// ```
    /// use ratekeeper_core::learn::{Learner, LearnerCapabilities, LearnerConfig, Observation, StatedQuota};
    /// use ratekeeper_core::{Instant, Nanos};
    ///
    /// const LEARNS: u32 = LearnerCapabilities::ALL & !LearnerCapabilities::RESET_TRACKING;
    /// let start = Instant::from_nanos(Nanos::from_secs(60).as_nanos());
    /// let mut learner = Learner::<LEARNS>::with_capabilities(LearnerConfig::DEFAULT, start);
    /// let mut full = Learner::new(LearnerConfig::DEFAULT, start);
    /// let quota = |remaining, reset_after| StatedQuota {
    ///     limit: Some(100),
    ///     window: Some(Nanos::from_secs(10)),
    ///     remaining: Some(remaining),
    ///     reset_after: Some(reset_after),
    /// };
    /// // The window resets 7.3 s from now, to the round trip.
    /// let first = Observation::status(200)
    ///     .with_quota(quota(50, Nanos::from_millis(7_300)))
    ///     .with_round_trip(Nanos::from_millis(100));
    /// learner.observe(&first, start);
    /// full.observe(&first, start);
    /// // 4.5 s later the quota is spent; the reset, 2.8 s away at the
    /// // latest, is stated rounded up to whole seconds.
    /// let at = start.saturating_add(Nanos::from_millis(4_500));
    /// let spent = Observation::status(200).with_quota(quota(0, Nanos::from_secs(3)));
    /// assert_eq!(learner.observe(&spent, at).pause, Some(Nanos::from_secs(3)));
    /// assert_eq!(full.observe(&spent, at).pause, Some(Nanos::from_millis(2_800)));
    /// ```
    pub const RESET_TRACKING: u32 = 1 << 1;

    /// None of the above: limits as headers state them, each response read
    /// alone, and the pauses every learner makes.
    pub const STATED: u32 = 0;

    /// Every capability: what [`Learner::new`] learns with.
    pub const ALL: u32 = LearnerCapabilities::HEADERLESS | LearnerCapabilities::RESET_TRACKING;
}

/// One client's knowledge of one bucket. Small and `Copy`: a firmware keeps
/// a fixed table of them.
///
/// ```
/// use ratekeeper_core::learn::{Learner, LearnerConfig, Observation, StatedQuota};
/// use ratekeeper_core::{Instant, Nanos, PolicySource};
///
/// let mut learner = Learner::new(LearnerConfig::default(), Instant::ZERO);
/// // Close's search endpoint answers with its limit.
/// let response = Observation::status(200).with_quota(StatedQuota {
///     limit: Some(16),
///     remaining: Some(15),
///     reset_after: Some(Nanos::from_secs(1)),
///     window: None,
/// });
/// let learned = learner.observe(&response, Instant::ZERO);
/// let policy = learned.policy.unwrap();
/// assert_eq!((policy.limit(), policy.window(), policy.source), (16, Nanos::from_secs(1), PolicySource::Header));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Learner<const CAPABILITIES: u32 = { LearnerCapabilities::ALL }> {
    config: LearnerConfig,
    policy: Policy,
    /// The window stated by the server, when one was.
    stated_window: bool,
    /// The longest reset seen: a window's length, when none is stated.
    longest_reset: Nanos,
    /// Headerless: the interval that drew a 429 most recently, and when.
    ceiling: Option<(Nanos, Instant)>,
    /// Headerless: the shortest interval that held for a probe period.
    floor: Option<Nanos>,
    /// Headerless: since when requests have succeeded without a 429.
    streak_since: Instant,
    /// Headerless: how long a success run must last before probing.
    probe_period: Nanos,
    /// Consecutive throttled responses, for the backoff.
    throttled_in_a_row: u32,
    /// Headerless: doubling the rate until the first 429.
    slow_start: bool,
    /// Headerless: when the rate was last decreased.
    last_decrease: Option<Instant>,
    /// One of the governing window's boundaries lies in `(earliest,
    /// latest]`, and the others a whole number of windows from it: narrowed
    /// response by response, since a reset stated in whole seconds is
    /// rounded, but a fixed window's boundaries recur a window apart.
    boundary: Option<(Instant, Instant)>,
    /// The last statement of the governing quota: the earliest instant it
    /// can have been made, and the remaining it stated.
    last_statement: Option<(Instant, u32)>,
    /// Which stated quota governs (its index in the last observation).
    governing_index: Option<usize>,
    /// Whether the server's count has been seen jumping back up at a
    /// boundary: fixed windows, as opposed to a sliding one.
    fixed_windows: bool,
}

impl Learner {
    /// A learner that knows nothing yet: the default policy.
    pub const fn new(config: LearnerConfig, now: Instant) -> Learner {
        Learner::with_capabilities(config, now)
    }
}

impl<const CAPABILITIES: u32> Learner<CAPABILITIES> {
    /// Whether 429s alone teach a limit: [`LearnerCapabilities::HEADERLESS`].
    const HEADERLESS: bool = CAPABILITIES & LearnerCapabilities::HEADERLESS != 0;
    /// Whether the governing window's boundary is tracked across
    /// responses: [`LearnerCapabilities::RESET_TRACKING`].
    const RESET_TRACKING: bool = CAPABILITIES & LearnerCapabilities::RESET_TRACKING != 0;

    /// A learner with only the [`LearnerCapabilities`] in `CAPABILITIES`
    /// (a bit set), that knows nothing yet: the default policy. What one
    /// without a capability does instead is described at each capability.
    ///
    /// ```
    /// use ratekeeper_core::learn::{Learner, LearnerCapabilities, LearnerConfig};
    /// use ratekeeper_core::Instant;
    ///
    /// // Limits stated in headers, each response read alone.
    /// type StatedLearner = Learner<{ LearnerCapabilities::STATED }>;
    /// let learner = StatedLearner::with_capabilities(LearnerConfig::DEFAULT, Instant::ZERO);
    /// assert_eq!(learner.policy(), Learner::new(LearnerConfig::DEFAULT, Instant::ZERO).policy());
    /// // The same, named at the call.
    /// let learner = Learner::<{ LearnerCapabilities::STATED }>::with_capabilities(LearnerConfig::DEFAULT, Instant::ZERO);
    /// ```
    pub const fn with_capabilities(config: LearnerConfig, now: Instant) -> Learner<CAPABILITIES> {
        Learner {
            config,
            policy: config.policy.default_policy(now),
            stated_window: false,
            longest_reset: Nanos::ZERO,
            ceiling: None,
            floor: None,
            streak_since: now,
            probe_period: config.probe_period,
            throttled_in_a_row: 0,
            slow_start: true,
            last_decrease: None,
            boundary: None,
            last_statement: None,
            governing_index: None,
            fixed_windows: false,
        }
    }

    /// Starts from what the fleet already knows: a policy read from the
    /// store at `now`. Its limit, window and source replace this learner's
    /// when they are at least as trusted; the instants in it (another
    /// instance's clock) and its server view are not taken, since this
    /// learner reconciles with what the server tells *it*.
    pub fn adopt(&mut self, policy: Policy, now: Instant) {
        let same = (policy.limit(), policy.window(), policy.source)
            == (self.policy.limit(), self.policy.window(), self.policy.source);
        if same || policy.source < self.policy.source {
            return;
        }
        let server = self.policy.server;
        if let Ok(mut adopted) = Policy::new(policy.limit(), policy.window(), policy.source, now) {
            adopted.server = server;
            self.policy = adopted;
        }
    }

    /// What this learner believes.
    pub const fn policy(&self) -> Policy {
        self.policy
    }

    /// The GCRA to pace the next request with at `now`: the policy's,
    /// slowed when the server's `remaining` cannot last until its reset.
    pub fn gcra(&self, now: Instant) -> Gcra {
        let paced = self.policy.to_gcra(&self.config.policy);
        let Some(server) = self.policy.server else {
            return paced;
        };
        let boundary = if Self::RESET_TRACKING {
            self.next_boundary(now)
        } else {
            None
        };
        let (earliest, latest) = match boundary {
            // The statement is about an earlier window: no brake.
            Some((_, _, true)) => return paced,
            Some((earliest, latest, false)) => (earliest, latest),
            None => {
                let stated = server.observed_at.saturating_add(server.reset_after);
                (stated.saturating_sub(rounding(server.reset_after)), stated)
            }
        };
        if now >= latest || server.remaining == 0 {
            // The window has reset (or the pause covers it).
            return paced;
        }
        // Spread what is left until the reset, rounding up. Where the server
        // has shown fixed windows (its count jumped back up at a boundary),
        // `remaining` is all there is until the latest the reset can be, so
        // spread until then: never more than `remaining` before the window
        // ends. Elsewhere (a sliding window frees a slot at a time, and its
        // reset is the next slot's) only the earliest reset is sure, and
        // spreading further would leave most of the limit unused.
        let until = if Self::RESET_TRACKING && self.fixed_windows {
            latest
        } else {
            earliest
        };
        let spread = until
            .saturating_duration_since(now)
            .checked_div_ceil(u64::from(server.remaining))
            .unwrap_or(Nanos::ZERO);
        if spread > paced.emission_interval() {
            // `spread` exceeds an interval of at least 1 ns, and a burst
            // of 1 always fits: no check can fail.
            Gcra::with_burst_at_most(spread, 1)
        } else {
            paced
        }
    }

    /// Learns from one response observed at `now`.
    pub fn observe(&mut self, observation: &Observation, now: Instant) -> Learned {
        self.learn(observation, observation.quotas().iter(), now)
    }

    /// [`Learner::observe`] of a response's `quotas`, whichever holds them
    /// (an observation, or a parsed response read in place).
    fn learn<'q, S: Statement + 'q>(
        &mut self,
        response: &impl Response,
        quotas: impl Iterator<Item = &'q S> + Clone,
        now: Instant,
    ) -> Learned {
        // What a change is judged on: not the whole policy.
        let before = (self.policy.limit(), self.policy.window(), self.policy.source);
        let mut event = LearnEvent::Unchanged;

        if let Some(stated) = self.governing(quotas.clone(), now) {
            event = if before.2 == PolicySource::Header {
                if (stated.limit(), stated.window()) == (before.0, before.1) {
                    LearnEvent::Unchanged
                } else {
                    LearnEvent::Changed
                }
            } else {
                LearnEvent::Discovered
            };
            self.policy = stated;
            if Self::RESET_TRACKING {
                self.track_reset(now, response.round_trip());
            }
        }

        // A spent quota's pause, whichever way the response went: one
        // reading of the quotas for both.
        let spent = self.exhausted(quotas, now);
        let mut pause = None;
        if response.throttled() {
            self.throttled_in_a_row = self.throttled_in_a_row.saturating_add(1);
            pause = Some(self.pause_for(response, spent));
            if Self::HEADERLESS && self.policy.source <= PolicySource::Observed && self.decrease(now) {
                event = LearnEvent::Decreased;
            } else if event == LearnEvent::Unchanged {
                event = LearnEvent::Throttled;
            }
            if Self::HEADERLESS {
                self.streak_since = now;
            }
        } else {
            self.throttled_in_a_row = 0;
            // A spent quota pauses even when its reset is due sooner than
            // the pace's next slot after this response: that slot follows
            // the last request let through, which may have been sent long
            // before this answer came back.
            if let Some(reset) = spent {
                pause = Some(reset);
                if event == LearnEvent::Unchanged {
                    event = LearnEvent::Exhausted;
                }
            }
            if Self::HEADERLESS && self.policy.source <= PolicySource::Observed && self.probe(now) {
                event = LearnEvent::Probed;
            }
        }

        let changed = (self.policy.limit(), self.policy.window(), self.policy.source) != before;
        Learned {
            event,
            policy: changed.then_some(self.policy),
            pause,
        }
    }

    /// Learns from a parsed response observed at `now`, `round_trip` after
    /// its request was sent: the same as [`Learner::observe`] of
    /// [`Observation::from_info`] with that round trip, with the response
    /// read where it was parsed rather than moved into an observation (a
    /// few hundred bytes, which a small target copies with a library
    /// routine).
    ///
    /// ```
    /// use ratekeeper_core::headers::{ParseOptions, RateLimitInfo};
    /// use ratekeeper_core::{Instant, Learner, LearnerConfig, Nanos};
    ///
    /// let headers: [(&[u8], &[u8]); 1] = [(b"ratelimit", b"limit=16; remaining=14; reset=1")];
    /// let info = RateLimitInfo::parse(Some(200), headers, &ParseOptions::new());
    /// let mut learner = Learner::new(LearnerConfig::DEFAULT, Instant::ZERO);
    /// let learned = learner.observe_info(&info, Nanos::from_millis(40), Instant::ZERO);
    /// assert_eq!(learned.policy.map(|policy| policy.limit()), Some(16));
    /// ```
    pub fn observe_info(&mut self, info: &RateLimitInfo, round_trip: Nanos, now: Instant) -> Learned {
        // Every requests quota (as many as an observation keeps, since
        // `MAX_WINDOWS` is the parser's capacity), read where it was parsed.
        let requests = info
            .quotas()
            .iter()
            .filter(|quota| quota.unit == QuotaUnit::Requests);
        self.learn(&Parsed { info, round_trip }, requests, now)
    }

    /// The stated quota that governs, as a header policy with the server's
    /// view attached; `None` when no quota states a limit.
    fn governing<'q, S: Statement + 'q>(
        &mut self,
        quotas: impl Iterator<Item = &'q S>,
        now: Instant,
    ) -> Option<Policy> {
        // The slowest so far. The policy is built once, for the one that
        // governs.
        let mut best: Option<Slowest<'q, S>> = None;
        // Counted by hand rather than enumerated: only reset tracking reads
        // the index, so a learner without it counts nothing, and reads the
        // quotas without an adapter's call per quota.
        let mut next_index = 0usize;
        for quota in quotas {
            let index = next_index;
            next_index = next_index.wrapping_add(1);
            let Some(limit) = quota.limit().filter(|&l| l > 0) else {
                continue;
            };
            let limit = u32::try_from(limit).unwrap_or(u32::MAX);
            let window = match quota.window() {
                Some(window) if !window.is_zero() => {
                    self.stated_window = true;
                    window
                }
                _ => {
                    // No stated window: a fixed window's reset counts down
                    // from its length, so the longest reset seen is the best
                    // estimate. Round up to whole seconds, since servers do.
                    if let Some(reset) = quota.reset_after() {
                        self.longest_reset = self.longest_reset.max(reset);
                    }
                    if self.stated_window && self.policy.source == PolicySource::Header {
                        self.policy.window()
                    } else if self.longest_reset.is_zero() {
                        // Nothing says how long the window is (Shopify's
                        // `32/40`, Salesforce's daily `api-usage`): a limit
                        // without a window is no rate, and guessing one
                        // (per second?) would be unsafe. The count still
                        // counts: a spent quota pauses.
                        continue;
                    } else {
                        // A reset above zero rounds up to a second at
                        // least: never a zero window.
                        whole_seconds_up(self.longest_reset)
                    }
                }
            };
            // The slowest sustained rate governs: window per request.
            let per_request = window
                .as_nanos()
                .checked_div(u64::from(limit))
                .unwrap_or(u64::MAX);
            if best
                .as_ref()
                .is_none_or(|slowest| per_request > slowest.per_request)
            {
                best = Some(Slowest {
                    index,
                    per_request,
                    limit,
                    window,
                    quota,
                });
            }
        }
        let Slowest {
            index,
            limit,
            window,
            quota,
            ..
        } = best?;
        // `limit > 0` and `window > 0` here: the policy is always valid.
        let mut policy = Policy::new(limit, window, PolicySource::Header, now).ok()?;
        if let Some((remaining, reset_after)) = quota.remaining().zip(quota.reset_after()) {
            policy = policy.with_server(ServerView {
                remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                reset_after,
                observed_at: now,
            });
        }
        if Self::RESET_TRACKING {
            self.governing_index = Some(index);
        }
        if self.policy.source == PolicySource::Header
            && (limit, window) == (self.policy.limit(), self.policy.window())
        {
            // Same figures: keep when they were first learned.
            policy.learned_at = self.policy.learned_at;
        }
        Some(policy)
    }

    /// Narrows where the governing window's boundaries lie, from what the
    /// server just stated: its reset (known to a second when rounded, and
    /// to the round trip), and a jump of its remaining count (a boundary
    /// passed since the last statement).
    fn track_reset(&mut self, now: Instant, round_trip: Nanos) {
        let Some(server) = self.policy.server else {
            return;
        };
        let window = self.policy.window();
        let made_after = now.saturating_sub(round_trip);
        let latest = now.saturating_add(server.reset_after);
        let earliest = made_after
            .saturating_add(server.reset_after)
            .saturating_sub(rounding(server.reset_after));
        self.narrow(earliest, latest, window);
        if let Some((previous, remaining)) = self.last_statement {
            // Out-of-order responses move the count by a few; a window
            // that began moves it by most of the limit.
            let jump = (self.policy.limit() / 4).max(1);
            if server.remaining >= remaining.saturating_add(jump) {
                self.fixed_windows = true;
                self.narrow(previous, now, window);
            }
        }
        self.last_statement = Some((made_after, server.remaining));
    }

    /// Keeps what both the estimate and a new `(earliest, latest]` allow,
    /// a whole number of windows apart. A candidate a window wide or more
    /// says nothing; one that fits nowhere means the windows are not what
    /// was thought, and it replaces the estimate.
    fn narrow(&mut self, earliest: Instant, latest: Instant, window: Nanos) {
        if latest.saturating_duration_since(earliest) >= window || latest <= earliest {
            return;
        }
        let Some((old_earliest, old_latest)) = self.boundary else {
            self.boundary = Some((earliest, latest));
            return;
        };
        // Move the estimate by the whole number of windows that brings its
        // middle nearest the candidate's.
        let shift = WindowShift::between(
            middle(old_earliest, old_latest),
            middle(earliest, latest),
            window.as_nanos().max(1),
        );
        let (lo, hi) = (
            shift.apply(old_earliest).max(earliest),
            shift.apply(old_latest).min(latest),
        );
        self.boundary = Some(if lo < hi { (lo, hi) } else { (earliest, latest) });
    }

    /// The first boundary whose latest instant is after `now`, and whether
    /// the last statement was made before the window that ends there.
    fn next_boundary(&self, now: Instant) -> Option<(Instant, Instant, bool)> {
        let (earliest, latest) = self.boundary?;
        let window = self.policy.window();
        // The whole windows from `latest` past `now`: `window · (⌊behind /
        // window⌋ + 1)`, formed as `behind − behind mod window + window`
        // (the first part is at most `behind`), without a multiplication.
        let shift = match now.checked_duration_since(latest) {
            Some(behind) => {
                let behind = behind.as_nanos();
                let whole = behind.wrapping_sub(behind.checked_rem(window.as_nanos()).unwrap_or(behind));
                Nanos::from_nanos(whole).saturating_add(window)
            }
            None => Nanos::ZERO,
        };
        let (earliest, latest) = (earliest.saturating_add(shift), latest.saturating_add(shift));
        // Stale: the last statement may have been made before the window
        // that ends at `latest` began, so its count may be another window's.
        let stale = self
            .last_statement
            .is_none_or(|(made_after, _)| made_after <= latest.saturating_sub(window));
        Some((earliest, latest, stale))
    }

    /// How long to pause when a stated quota is used up: until the latest
    /// its reset can be, for the governing quota (whose reset is tracked
    /// most closely), or as stated for any other.
    fn exhausted<'q, S: Statement + 'q>(
        &self,
        quotas: impl Iterator<Item = &'q S>,
        now: Instant,
    ) -> Option<Nanos> {
        let mut longest = Nanos::ZERO;
        // Counted by hand, as in `governing`.
        let mut next_index = 0usize;
        for quota in quotas {
            let index = next_index;
            next_index = next_index.wrapping_add(1);
            if quota.remaining() != Some(0) {
                continue;
            }
            // A spent quota with no reset stated: wait a backoff step.
            let mut pause = quota.reset_after().unwrap_or(self.config.backoff_base);
            if Self::RESET_TRACKING && self.governing_index == Some(index) {
                // The boundary that ends the window the statement was
                // made in, which may have passed while it travelled.
                let made_after = self.last_statement.map_or(now, |(made_after, _)| made_after);
                if let Some((_, latest, _)) = self.next_boundary(made_after) {
                    pause = latest.saturating_duration_since(now);
                }
            }
            longest = longest.max(pause);
        }
        // Zero pauses are none.
        (!longest.is_zero()).then_some(longest)
    }

    /// The pause after a refusal: until `Retry-After` when stated, else
    /// until a `spent` quota's reset, else a backoff.
    fn pause_for(&self, response: &impl Response, spent: Option<Nanos>) -> Nanos {
        response.retry_after().or(spent).unwrap_or_else(|| {
            let doublings = self.throttled_in_a_row.saturating_sub(1).min(32);
            doubled(self.config.backoff_base, doublings).min(self.config.backoff_cap)
        })
    }

    fn interval(&self) -> Nanos {
        // Headerless estimates are stored as one request per interval.
        self.policy
            .window()
            .checked_div_ceil(u64::from(self.policy.limit()))
            .unwrap_or(Nanos::MAX)
    }

    // Called from two places: one copy, not one inlined into each.
    #[inline(never)]
    fn set_interval(&mut self, interval: Nanos, now: Instant) {
        if let Ok(policy) = Policy::new(1, interval.max(Nanos::from_nanos(1)), PolicySource::Observed, now) {
            self.policy = policy;
        }
    }

    /// Returns whether the rate went down.
    fn decrease(&mut self, now: Instant) -> bool {
        // Responses to requests sent before the last decrease say nothing
        // about the new rate: one decrease per backoff period.
        if self
            .last_decrease
            .is_some_and(|at| now.saturating_duration_since(at) < self.config.backoff_base)
        {
            return false;
        }
        self.last_decrease = Some(now);
        let failed = self.interval();
        self.ceiling = Some((failed, now));
        // A slower rate is a longer interval: divide by the kept share.
        let mut next = scale(failed, 1000, self.config.decrease_permille);
        match self.floor {
            // A slower rate held: fall back to it, not below it.
            Some(floor) if floor > failed => next = next.min(floor),
            // The rate that held has failed now: the limit went down.
            Some(_) => self.floor = None,
            None => {}
        }
        if !self.slow_start {
            // A probe that failed: wait longer before the next one.
            self.probe_period = self
                .probe_period
                .saturating_mul(2)
                .min(self.config.max_probe_period);
        }
        self.slow_start = false;
        self.set_interval(next, now);
        true
    }

    fn probe(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.streak_since) < self.probe_period {
            return false;
        }
        self.streak_since = now;
        let current = self.interval();
        // The fastest rate that held for a whole probe period.
        self.floor = Some(self.floor.map_or(current, |f| f.min(current)));
        let ceiling = self
            .ceiling
            .filter(|&(_, at)| now.saturating_duration_since(at) < self.config.ceiling_memory)
            .map(|(interval, _)| interval);
        let next = match ceiling {
            // Slow start: double the rate until the first 429.
            None if self.slow_start => current.checked_div_ceil(2).unwrap_or(current),
            None => scale(
                current,
                1000,
                1000u16.saturating_add(self.config.probe_step_permille),
            ),
            Some(ceiling) => {
                let step = scale(
                    current,
                    1000,
                    1000u16.saturating_add(self.config.probe_step_permille),
                );
                // Stay just under the rate that failed.
                let limit = scale(ceiling, 1000, 985);
                if current <= limit {
                    return false;
                }
                step.max(limit)
            }
        };
        if next >= current {
            return false;
        }
        self.set_interval(next, now);
        true
    }
}

/// `⌊(lo + hi) / 2⌋`, without overflow.
fn middle(lo: Instant, hi: Instant) -> u64 {
    let (lo, hi) = (lo.as_nanos(), hi.as_nanos());
    // At most `2·(2^63 − 1) + 1 < 2^64`: exact.
    (lo / 2).wrapping_add(hi / 2).wrapping_add(lo & hi & 1)
}

/// A whole number of windows to move an instant by, either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WindowShift {
    /// Later by this much (saturating: past the horizon is the horizon).
    Later(u64),
    /// Earlier by this much (saturating: before the origin is the origin).
    Earlier(u64),
}

impl WindowShift {
    /// The multiple of `width` (≥ 1) nearest `to − from`, halves rounding
    /// up: `⌊(to − from + ⌊width/2⌋) / width⌋ · width`, in `u64` with the
    /// sign apart rather than in `i128`, whose division costs a 32-bit
    /// target a kilobyte of code.
    fn between(from: u64, to: u64, width: u64) -> WindowShift {
        let half = width / 2;
        // Either way the whole windows are `⌊x / width⌋` plus a carry, for
        // some `x`, with the rest of that division deciding the carry:
        // one division for both directions.
        let (later, distance, carry_from) = match to.checked_sub(from) {
            // `⌊(d + half) / width⌋ = q + [r + half ≥ width]`, with
            // `d = q·width + r`, without forming `d + half`.
            Some(ahead) => (true, ahead, width.wrapping_sub(half)),
            // `⌊(half − d) / width⌋` is 0 for `d ≤ half` (as `half < width`),
            // else `−⌈(d − half) / width⌉`: a carry for any rest.
            // `to < from` here: exact.
            None => (false, from.wrapping_sub(to).saturating_sub(half), 1),
        };
        // Times `width`: `q·width = x − r` (exact), plus `width` on a
        // carry, saturating exactly where the product leaves `u64`.
        let rest = distance.checked_rem(width).unwrap_or(0);
        let carry = if rest >= carry_from { width } else { 0 };
        let span = distance.wrapping_sub(rest).saturating_add(carry);
        if later {
            WindowShift::Later(span)
        } else {
            WindowShift::Earlier(span)
        }
    }

    // Applied twice per narrowing: one copy, not one inlined into each.
    #[inline(never)]
    fn apply(self, at: Instant) -> Instant {
        match self {
            WindowShift::Later(span) => at.saturating_add(Nanos::from_nanos(span)),
            WindowShift::Earlier(span) => at.saturating_sub(Nanos::from_nanos(span)),
        }
    }
}

/// `span` rounded up to whole seconds, saturating: the same as
/// `Nanos::from_secs(span.as_secs_ceil())`, with one division and no 64-bit
/// multiplication.
fn whole_seconds_up(span: Nanos) -> Nanos {
    const SECOND: u64 = 1_000_000_000;
    // `⌈n / s⌉·s = (n − 1) − (n − 1) mod s + s` for `n > 0`: the rest of
    // one division, and no branch on it.
    match span.as_nanos().checked_sub(1) {
        Some(less) => {
            let whole = less.wrapping_sub(less.checked_rem(SECOND).unwrap_or(0));
            Nanos::from_nanos(whole.saturating_add(SECOND))
        }
        None => Nanos::ZERO,
    }
}

/// `span · 2^doublings`, saturating: doubled one step at a time (at most
/// 32 here, one per 429 in a row), since a 64-bit shift by a variable
/// amount costs a 32-bit target a library routine, and a multiplication
/// more. Once saturated it stays so: the same as the saturating product.
fn doubled(span: Nanos, doublings: u32) -> Nanos {
    let mut span = span;
    for _ in 0..doublings {
        span = span.saturating_add(span);
    }
    span
}

/// `value × numerator / denominator`, exactly rounded up, saturating.
///
/// Without a 128-bit product: with `value = q·d + r`, the result is
/// `q·n + ⌈r·n / d⌉`, where `r·n < 2^16 · 2^16` fits a `u32` (a 32-bit
/// division, not a 64-bit one); only `q·n` can leave `u64`, and then so
/// does the exact result.
fn scale(value: Nanos, numerator: u16, denominator: u16) -> Nanos {
    let value = value.as_nanos();
    let denominator = denominator.max(1);
    let whole = value.checked_div(u64::from(denominator)).unwrap_or(0);
    // `r < d ≤ 2^16 − 1`: fits a `u32`, and `r·n ≤ (2^16 − 2)(2^16 − 1) < 2^32`.
    let rest = value
        .checked_rem(u64::from(denominator))
        .and_then(|rest| u32::try_from(rest).ok())
        .unwrap_or(0);
    let rest_scaled = rest
        .wrapping_mul(u32::from(numerator))
        .div_ceil(u32::from(denominator));
    Nanos::from_nanos(
        whole
            .checked_mul(u64::from(numerator))
            .and_then(|scaled| scaled.checked_add(u64::from(rest_scaled)))
            .unwrap_or(u64::MAX),
    )
}

/// How much a stated reset may have been rounded up: servers state whole
/// seconds rounded up (the IETF drafts say so), so a whole number of seconds
/// may mean up to a second less.
fn rounding(reset: Nanos) -> Nanos {
    if reset.as_nanos().is_multiple_of(1_000_000_000) {
        Nanos::from_secs(1)
    } else {
        Nanos::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn whole_seconds_up_is_the_ceiling(
            span in prop_oneof![
                0..u64::MAX,
                0..1u64 << 40,
                Just(u64::MAX),
                Just(0u64),
                (u64::MAX - 2_000_000_000)..=u64::MAX,
                (0..u64::MAX / 1_000_000_000, 0..3u64).prop_map(|(s, off)| (s * 1_000_000_000 + off).saturating_sub(1)),
            ],
        ) {
            let span = Nanos::from_nanos(span);
            prop_assert_eq!(whole_seconds_up(span), Nanos::from_secs(span.as_secs_ceil()));
            prop_assert_eq!(whole_seconds_up(span), whole_seconds_up_by_rest(span));
            // A reset above zero rounds to a second at least: the window
            // inferred from one is never zero.
            if !span.is_zero() {
                prop_assert!(whole_seconds_up(span) >= Nanos::from_secs(1));
            }
        }

        /// A shift where it fits, the saturated product where it does not.
        #[test]
        fn doubling_is_the_saturating_product(
            span in prop_oneof![0..u64::MAX, 0..1u64 << 40, Just(u64::MAX), Just(0u64), Just(1u64)],
            doublings in 0..=32u32,
        ) {
            let span = Nanos::from_nanos(span);
            prop_assert_eq!(doubled(span, doublings), span.saturating_mul(1u64 << doublings));
            prop_assert_eq!(doubled(span, doublings), doubled_by_shift(span, doublings));
        }
    }

    /// The earlier form of [`whole_seconds_up`], adding what the rest of
    /// `span` lacks of a second.
    fn whole_seconds_up_by_rest(span: Nanos) -> Nanos {
        const SECOND: u64 = 1_000_000_000;
        let span = span.as_nanos();
        match span.checked_rem(SECOND) {
            Some(rest) if rest > 0 => Nanos::from_nanos(span.saturating_add(SECOND - rest)),
            _ => Nanos::from_nanos(span),
        }
    }

    /// The earlier shifting form of [`doubled`], as the reference.
    fn doubled_by_shift(span: Nanos, doublings: u32) -> Nanos {
        let span = span.as_nanos();
        match span.checked_shl(doublings) {
            Some(shifted) if span.leading_zeros() >= doublings => Nanos::from_nanos(shifted),
            _ => Nanos::MAX,
        }
    }

    /// The earlier all-`u64` form of [`scale`].
    fn scale_u64(value: Nanos, numerator: u16, denominator: u16) -> Nanos {
        let value = value.as_nanos();
        let denominator = u64::from(denominator.max(1));
        let numerator = u64::from(numerator);
        let whole = value.checked_div(denominator).unwrap_or(0);
        let rest = value.checked_rem(denominator).unwrap_or(0);
        let rest_scaled = rest.saturating_mul(numerator).div_ceil(denominator);
        Nanos::from_nanos(
            whole
                .checked_mul(numerator)
                .and_then(|scaled| scaled.checked_add(rest_scaled))
                .unwrap_or(u64::MAX),
        )
    }

    /// The earlier `u128` form of [`scale`], as the reference.
    fn scale_u128(value: Nanos, numerator: u16, denominator: u16) -> Nanos {
        let scaled = u128::from(value.as_nanos())
            .saturating_mul(u128::from(numerator))
            .div_ceil(u128::from(denominator.max(1)));
        Nanos::from_nanos(u64::try_from(scaled).unwrap_or(u64::MAX))
    }

    /// What `Learner::narrow` computed before `WindowShift`: the shift in
    /// `i128`, then the moved instant clamped to the time range.
    fn moved_i128(at: Instant, from: (Instant, Instant), to: (Instant, Instant), window: Nanos) -> Instant {
        let middle =
            |(lo, hi): (Instant, Instant)| (i128::from(lo.as_nanos()) + i128::from(hi.as_nanos())) / 2;
        let width = i128::from(window.as_nanos()).max(1);
        let distance = middle(to) - middle(from);
        let shift = (distance + width / 2).div_euclid(width) * width;
        let at = i128::from(at.as_nanos()) + shift;
        Instant::from_nanos(u64::try_from(at.max(0)).unwrap_or(u64::MAX))
    }

    fn nanos_edge() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(1u64),
            Just(2u64),
            Just(u64::MAX),
            Just(u64::MAX - 1),
            Just(u64::MAX / 2),
            0u64..1_000,
            0u64..10_000_000_000,
            any::<u64>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn window_shift_is_bit_identical_to_the_i128_form(
            old in (nanos_edge(), nanos_edge()),
            new in (nanos_edge(), nanos_edge()),
            window in nanos_edge(),
            at in nanos_edge(),
        ) {
            let i = Instant::from_nanos;
            let (old, new, window, at) = ((i(old.0), i(old.1)), (i(new.0), i(new.1)), Nanos::from_nanos(window), i(at));
            let shift = WindowShift::between(middle(old.0, old.1), middle(new.0, new.1), window.as_nanos().max(1));
            prop_assert_eq!(shift.apply(at), moved_i128(at, old, new, window));
        }

        #[test]
        fn scale_is_bit_identical_to_the_u128_form(
            value in prop_oneof![Just(0u64), Just(1u64), Just(u64::MAX), Just(u64::MAX - 1), 0u64..100_000, any::<u64>()],
            numerator in prop_oneof![Just(0u16), Just(1u16), Just(u16::MAX), Just(1000u16), any::<u16>()],
            denominator in prop_oneof![Just(0u16), Just(1u16), Just(u16::MAX), Just(985u16), any::<u16>()],
        ) {
            let value = Nanos::from_nanos(value);
            prop_assert_eq!(scale(value, numerator, denominator), scale_u128(value, numerator, denominator));
            prop_assert_eq!(scale(value, numerator, denominator), scale_u64(value, numerator, denominator));
        }
    }
}

/// Learners without [`LearnerCapabilities::RESET_TRACKING`] against the full
/// learner: the same decisions until the full learner has located a
/// boundary or seen fixed windows (its private state says when), the
/// documented difference after.
#[cfg(test)]
mod without_reset_tracking {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn span() -> impl Strategy<Value = u64> {
        prop_oneof![
            4 => 0u64..=5_000_000_000,
            2 => (0u64..=120).prop_map(|s| s * 1_000_000_000),
            1 => 0u64..=1_000,
            1 => any::<u64>(),
        ]
    }

    fn count() -> impl Strategy<Value = u64> {
        prop_oneof![4 => 0u64..=100, 1 => 0u64..=100_000, 1 => any::<u64>()]
    }

    /// Any quota.
    fn quota() -> impl Strategy<Value = StatedQuota> {
        (
            prop::option::of(count()),
            prop::option::of(span()),
            prop::option::of(count()),
            prop::option::of(span()),
        )
            .prop_map(|(limit, window, remaining, reset)| StatedQuota {
                limit,
                window: window.map(Nanos::from_nanos),
                remaining,
                reset_after: reset.map(Nanos::from_nanos),
            })
    }

    fn observation() -> impl Strategy<Value = Observation> {
        (
            prop_oneof![Just(200u16), Just(429), Just(503), Just(204)],
            prop::option::of(span()),
            prop::collection::vec(quota(), 0..=3),
            span(),
        )
            .prop_map(|(status, retry_after, quotas, round_trip)| {
                let mut observation =
                    Observation::status(status).with_round_trip(Nanos::from_nanos(round_trip));
                observation.retry_after = retry_after.map(Nanos::from_nanos);
                quotas.into_iter().fold(observation, Observation::with_quota)
            })
    }

    /// Responses of an API with a per-second limit, its resets stated in
    /// whole seconds, its count going down (as within one window, or a
    /// sliding one): tracking has nothing to narrow.
    fn per_second_run() -> impl Strategy<Value = Vec<(Observation, u64, u64)>> {
        let response = (
            prop_oneof![3 => Just(200u16), 1 => Just(429)],
            prop::option::of(0u64..=3_000_000_000),
            (0u64..=3, 0u64..=1, any::<bool>()),
            0u64..=200_000_000,
            (span(), span()),
        );
        (1u64..=100, prop::collection::vec(response, 1..30)).prop_map(|(limit, responses)| {
            let mut remaining = limit;
            responses
                .into_iter()
                .map(
                    |(status, retry_after, (used, reset, window), round_trip, (advance, look_ahead))| {
                        remaining = remaining.saturating_sub(used);
                        let mut observation = Observation::status(status)
                            .with_round_trip(Nanos::from_nanos(round_trip))
                            .with_quota(StatedQuota {
                                limit: Some(limit),
                                window: window.then_some(Nanos::from_secs(1)),
                                remaining: Some(remaining),
                                reset_after: Some(Nanos::from_secs(reset)),
                            });
                        observation.retry_after = retry_after.map(Nanos::from_nanos);
                        (observation, advance, look_ahead)
                    },
                )
                .collect()
        })
    }

    fn steps() -> impl Strategy<Value = Vec<(Observation, u64, u64)>> {
        prop_oneof![
            prop::collection::vec((observation(), span(), span()), 1..30),
            per_second_run(),
        ]
    }

    /// Whether a learner's reset tracking has acted.
    fn tracked<const C: u32>(full: &Learner<C>) -> bool {
        full.boundary.is_some() || full.fixed_windows
    }

    /// Runs `steps` on the full learner and one with capabilities `C`,
    /// comparing every decision until the full learner's tracking (or, for
    /// `C` without it, discovery) acts; returns how many steps agreed.
    fn agree<const C: u32>(start: u64, steps: &[(Observation, u64, u64)]) -> Result<usize, TestCaseError> {
        let mut now = Instant::from_nanos(start);
        let mut full = Learner::new(LearnerConfig::DEFAULT, now);
        let mut learner = Learner::<C>::with_capabilities(LearnerConfig::DEFAULT, now);
        for (index, (observation, advance, look_ahead)) in steps.iter().enumerate() {
            now = now.saturating_add(Nanos::from_nanos(*advance));
            let (by_full, learned) = (full.observe(observation, now), learner.observe(observation, now));
            let discovered = matches!(by_full.event, LearnEvent::Decreased | LearnEvent::Probed);
            if tracked(&full) || (C & LearnerCapabilities::HEADERLESS == 0 && discovered) {
                return Ok(index);
            }
            prop_assert_eq!(learned, by_full);
            prop_assert_eq!(learner.policy(), full.policy());
            prop_assert_eq!(learner.gcra(now), full.gcra(now));
            let later = now.saturating_add(Nanos::from_nanos(*look_ahead));
            prop_assert_eq!(learner.gcra(later), full.gcra(later));
            // Nothing of the tracking's state is kept without it.
            prop_assert!(!tracked(&learner));
        }
        Ok(steps.len())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn decides_as_the_full_learner_until_tracking_acts(
            start in prop_oneof![Just(0u64), 0u64..=1u64 << 50],
            steps in steps(),
        ) {
            agree::<{ LearnerCapabilities::ALL & !LearnerCapabilities::RESET_TRACKING }>(start, &steps)?;
            agree::<{ LearnerCapabilities::STATED }>(start, &steps)?;
        }
    }

    /// The generated runs are not all cut short: many steps are compared.
    #[test]
    fn many_steps_are_compared() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let (mut compared, mut total) = (0, 0);
        for _ in 0..1_000 {
            let steps = steps().new_tree(&mut runner).unwrap().current();
            total += steps.len();
            compared += agree::<{ LearnerCapabilities::STATED }>(0, &steps).unwrap();
        }
        std::println!("{compared} of {total} steps compared");
        assert!(compared * 4 > total, "{compared} of {total} steps compared");
    }
}
