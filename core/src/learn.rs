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

use crate::gcra::Gcra;
use crate::policy::{Policy, PolicyConfig, PolicySource, ServerView};
use crate::time::{Instant, Nanos};

/// The most windows an [`Observation`] carries.
pub const MAX_WINDOWS: usize = 4;

/// One stated quota: `limit` per `window`, of which `remaining` is left until
/// `reset_after`. Any part may be missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Quota {
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
/// use ratekeeper_core::learn::{Observation, Quota};
/// use ratekeeper_core::Nanos;
///
/// let ok = Observation::status(200).with_quota(Quota {
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
    quotas: [Quota; MAX_WINDOWS],
    quota_count: u8,
}

impl Observation {
    /// A response with `status` and no rate-limit headers.
    pub const fn status(status: u16) -> Observation {
        Observation {
            status,
            retry_after: None,
            quotas: [Quota {
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

    /// The same observation with one more stated quota; past
    /// [`MAX_WINDOWS`] further quotas are dropped.
    pub fn with_quota(mut self, quota: Quota) -> Observation {
        if let Some(slot) = self.quotas.get_mut(usize::from(self.quota_count)) {
            *slot = quota;
            self.quota_count = self.quota_count.saturating_add(1);
        }
        self
    }

    /// The stated quotas.
    pub fn quotas(&self) -> &[Quota] {
        self.quotas.get(..usize::from(self.quota_count)).unwrap_or(&[])
    }

    /// Whether the server refused for rate (429) or overload (503).
    pub const fn is_throttled(&self) -> bool {
        self.status == 429 || self.status == 503
    }
}

/// How the learner behaves; validated at construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LearnerConfig {
    /// Margin, burst and the default for unknown buckets.
    pub policy: PolicyConfig,
    /// After a 429 without headers, the new rate as parts per thousand of
    /// the rate that failed.
    pub decrease_permille: u16,
    /// Each probe's rate step, in parts per thousand.
    pub probe_step_permille: u16,
    /// How long a run of successes must last before the rate goes up.
    pub probe_period: Nanos,
    /// The longest probe period (it doubles after each failed probe).
    pub max_probe_period: Nanos,
    /// How long a ceiling (a rate that drew a 429) holds probes below it.
    pub ceiling_memory: Nanos,
    /// The first backoff after a 429 that says nothing of when to retry.
    pub backoff_base: Nanos,
    /// The longest such backoff.
    pub backoff_cap: Nanos,
}

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

/// One client's knowledge of one bucket. Small and `Copy`: a firmware keeps
/// a fixed table of them.
///
/// ```
/// use ratekeeper_core::learn::{Learner, LearnerConfig, Observation, Quota};
/// use ratekeeper_core::{Instant, Nanos, PolicySource};
///
/// let mut learner = Learner::new(LearnerConfig::default(), Instant::ZERO);
/// // Close's search endpoint answers with its limit.
/// let response = Observation::status(200).with_quota(Quota {
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
pub struct Learner {
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
}

impl Learner {
    /// A learner that knows nothing yet: the default policy.
    pub const fn new(config: LearnerConfig, now: Instant) -> Learner {
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
        }
    }

    /// Starts from what the fleet already knows (a policy read from the
    /// store). A stored policy replaces the default and any estimate less
    /// trusted than it.
    pub fn adopt(&mut self, policy: Policy) {
        if policy.source >= self.policy.source {
            self.policy = policy;
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
        let reset_at = server.observed_at.saturating_add(server.reset_after);
        let left = reset_at.saturating_duration_since(now);
        if left.is_zero() || server.remaining == 0 {
            // The window has reset (or the pause covers it).
            return paced;
        }
        // The shortest time the reset can mean, so the brake only acts when
        // the remaining requests surely cannot last.
        let spread = left
            .saturating_sub(rounding(server.reset_after))
            .checked_div_floor(u64::from(server.remaining))
            .unwrap_or(Nanos::ZERO);
        if spread > paced.emission_interval() {
            Gcra::new(spread, 1).unwrap_or(paced)
        } else {
            paced
        }
    }

    /// Learns from one response observed at `now`.
    pub fn observe(&mut self, observation: &Observation, now: Instant) -> Learned {
        let quotas = observation.quotas();
        let before = self.policy;
        let mut event = LearnEvent::Unchanged;

        if let Some(stated) = self.governing(quotas, now) {
            event = if before.source == PolicySource::Header {
                if (stated.limit(), stated.window()) == (before.limit(), before.window()) {
                    LearnEvent::Unchanged
                } else {
                    LearnEvent::Changed
                }
            } else {
                LearnEvent::Discovered
            };
            self.policy = stated;
        }

        let mut pause = None;
        if observation.is_throttled() {
            self.throttled_in_a_row = self.throttled_in_a_row.saturating_add(1);
            pause = Some(self.pause_for(observation, quotas));
            if quotas.is_empty() && self.policy.source <= PolicySource::Observed && self.decrease(now) {
                event = LearnEvent::Decreased;
            } else if event == LearnEvent::Unchanged {
                event = LearnEvent::Throttled;
            }
            self.streak_since = now;
        } else {
            self.throttled_in_a_row = 0;
            if let Some(reset) = exhausted(quotas) {
                pause = Some(reset);
                if event == LearnEvent::Unchanged {
                    event = LearnEvent::Exhausted;
                }
            }
            if quotas.is_empty() && self.policy.source <= PolicySource::Observed && self.probe(now) {
                event = LearnEvent::Probed;
            }
        }

        let changed = (self.policy.limit(), self.policy.window(), self.policy.source)
            != (before.limit(), before.window(), before.source);
        Learned {
            event,
            policy: changed.then_some(self.policy),
            pause,
        }
    }

    /// The stated quota that governs, as a header policy with the server's
    /// view attached; `None` when no quota states a limit.
    fn governing(&mut self, quotas: &[Quota], now: Instant) -> Option<Policy> {
        let mut best: Option<(Policy, u128)> = None;
        for quota in quotas {
            let Some(limit) = quota.limit.filter(|&l| l > 0) else {
                continue;
            };
            let limit = u32::try_from(limit).unwrap_or(u32::MAX);
            let window = match quota.window {
                Some(window) if !window.is_zero() => {
                    self.stated_window = true;
                    window
                }
                _ => {
                    // No stated window: a fixed window's reset counts down
                    // from its length, so the longest reset seen is the best
                    // estimate. Round up to whole seconds, since servers do.
                    if let Some(reset) = quota.reset_after {
                        self.longest_reset = self.longest_reset.max(reset);
                    }
                    let estimate = Nanos::from_secs(self.longest_reset.as_secs_ceil().max(1));
                    if self.stated_window && self.policy.source == PolicySource::Header {
                        self.policy.window()
                    } else {
                        estimate
                    }
                }
            };
            let Ok(mut policy) = Policy::new(limit, window, PolicySource::Header, now) else {
                continue;
            };
            if let (Some(remaining), Some(reset_after)) = (quota.remaining, quota.reset_after) {
                policy = policy.with_server(ServerView {
                    remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                    reset_after,
                    observed_at: now,
                });
            }
            // The slowest sustained rate governs: window per request.
            let per_request = u128::from(window.as_nanos())
                .checked_div(u128::from(limit))
                .unwrap_or(u128::MAX);
            if best.is_none_or(|(_, slowest)| per_request > slowest) {
                best = Some((policy, per_request));
            }
        }
        let (mut policy, _) = best?;
        if self.policy.source == PolicySource::Header
            && (policy.limit(), policy.window()) == (self.policy.limit(), self.policy.window())
        {
            // Same figures: keep when they were first learned.
            policy.learned_at = self.policy.learned_at;
        }
        Some(policy)
    }

    fn pause_for(&self, observation: &Observation, quotas: &[Quota]) -> Nanos {
        if let Some(retry_after) = observation.retry_after {
            return retry_after;
        }
        if let Some(reset) = exhausted(quotas) {
            return reset;
        }
        let doublings = self.throttled_in_a_row.saturating_sub(1).min(32);
        self.config
            .backoff_base
            .saturating_mul(1u64 << doublings)
            .min(self.config.backoff_cap)
    }

    fn interval(&self) -> Nanos {
        // Headerless estimates are stored as one request per interval.
        self.policy
            .window()
            .checked_div_ceil(u64::from(self.policy.limit()))
            .unwrap_or(Nanos::MAX)
    }

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

/// `value × numerator / denominator`, exactly rounded up, saturating.
fn scale(value: Nanos, numerator: u16, denominator: u16) -> Nanos {
    let scaled = u128::from(value.as_nanos())
        .saturating_mul(u128::from(numerator))
        .div_ceil(u128::from(denominator.max(1)));
    Nanos::from_nanos(u64::try_from(scaled).unwrap_or(u64::MAX))
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

/// The pause until the reset of a stated quota that is used up, if any: the
/// shortest time the stated reset can mean, since pacing spaces the next
/// request anyway and a 429 would say exactly how long to wait.
fn exhausted(quotas: &[Quota]) -> Option<Nanos> {
    quotas
        .iter()
        .filter(|q| q.remaining == Some(0))
        .filter_map(|q| q.reset_after)
        .map(|reset| reset.saturating_sub(rounding(reset)))
        .filter(|pause| !pause.is_zero())
        .max()
}
