//! The learner as it was before its code was reshaped for size: the model
//! the differential properties compare the learner with, decision for
//! decision. Kept as it was but for its documentation, and for its own
//! copy of the configuration (whose fields the crate keeps private); not
//! to be changed.
#![allow(dead_code, unreachable_pub, clippy::all)]

use ratekeeper_core::learn::{LearnEvent, Learned, Observation, StatedQuota};
use ratekeeper_core::{Gcra, Instant, Nanos, Policy, PolicyConfig, PolicySource, ServerView};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

impl LearnerConfig {
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

    pub const fn with_policy(mut self, policy: PolicyConfig) -> LearnerConfig {
        self.policy = policy;
        self
    }

    pub const fn with_decrease_permille(mut self, permille: u16) -> Result<LearnerConfig, ()> {
        if permille == 0 || permille >= 1000 {
            return Err(());
        }
        self.decrease_permille = permille;
        Ok(self)
    }

    pub const fn with_probing(
        mut self,
        step_permille: u16,
        period: Nanos,
        max_period: Nanos,
        ceiling_memory: Nanos,
    ) -> Result<LearnerConfig, ()> {
        if step_permille == 0 || step_permille > 1000 {
            return Err(());
        }
        if period.is_zero() || max_period.as_nanos() < period.as_nanos() {
            return Err(());
        }
        self.probe_step_permille = step_permille;
        self.probe_period = period;
        self.max_probe_period = max_period;
        self.ceiling_memory = ceiling_memory;
        Ok(self)
    }

    pub const fn with_backoff(mut self, base: Nanos, cap: Nanos) -> Result<LearnerConfig, ()> {
        if base.is_zero() || cap.as_nanos() < base.as_nanos() {
            return Err(());
        }
        self.backoff_base = base;
        self.backoff_cap = cap;
        Ok(self)
    }

    pub const fn policy(&self) -> PolicyConfig {
        self.policy
    }

    pub const fn backoff_base(&self) -> Nanos {
        self.backoff_base
    }

    pub const fn backoff_cap(&self) -> Nanos {
        self.backoff_cap
    }

    pub const fn probe_period(&self) -> Nanos {
        self.probe_period
    }

    pub const fn max_probe_period(&self) -> Nanos {
        self.max_probe_period
    }
}

impl Default for LearnerConfig {
    fn default() -> LearnerConfig {
        LearnerConfig::DEFAULT
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Learner {
    config: LearnerConfig,
    policy: Policy,
    stated_window: bool,
    longest_reset: Nanos,
    ceiling: Option<(Nanos, Instant)>,
    floor: Option<Nanos>,
    streak_since: Instant,
    probe_period: Nanos,
    throttled_in_a_row: u32,
    slow_start: bool,
    last_decrease: Option<Instant>,
    boundary: Option<(Instant, Instant)>,
    last_statement: Option<(Instant, u32)>,
    governing_index: Option<usize>,
    fixed_windows: bool,
}

impl Learner {
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
            boundary: None,
            last_statement: None,
            governing_index: None,
            fixed_windows: false,
        }
    }

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

    pub const fn policy(&self) -> Policy {
        self.policy
    }

    pub fn gcra(&self, now: Instant) -> Gcra {
        let paced = self.policy.to_gcra(&self.config.policy);
        let Some(server) = self.policy.server else {
            return paced;
        };
        let (earliest, latest) = match self.next_boundary(now) {
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
        let until = if self.fixed_windows { latest } else { earliest };
        let spread = until
            .saturating_duration_since(now)
            .checked_div_ceil(u64::from(server.remaining))
            .unwrap_or(Nanos::ZERO);
        if spread > paced.emission_interval() {
            Gcra::new(spread, 1).unwrap_or(paced)
        } else {
            paced
        }
    }

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
            self.track_reset(now, observation.round_trip);
        }

        let mut pause = None;
        if observation.is_throttled() {
            self.throttled_in_a_row = self.throttled_in_a_row.saturating_add(1);
            pause = Some(self.pause_for(observation, quotas, now));
            if self.policy.source <= PolicySource::Observed && self.decrease(now) {
                event = LearnEvent::Decreased;
            } else if event == LearnEvent::Unchanged {
                event = LearnEvent::Throttled;
            }
            self.streak_since = now;
        } else {
            self.throttled_in_a_row = 0;
            // A spent quota pauses, however soon its reset: the pace's next
            // slot follows the last request let through, not this answer.
            if let Some(reset) = self.exhausted(quotas, now) {
                pause = Some(reset);
                if event == LearnEvent::Unchanged {
                    event = LearnEvent::Exhausted;
                }
            }
            if self.policy.source <= PolicySource::Observed && self.probe(now) {
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

    fn governing(&mut self, quotas: &[StatedQuota], now: Instant) -> Option<Policy> {
        let mut best: Option<(Policy, u64, usize)> = None;
        for (index, quota) in quotas.iter().enumerate() {
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
                        whole_seconds_up(self.longest_reset).max(Nanos::from_secs(1))
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
            let per_request = window
                .as_nanos()
                .checked_div(u64::from(limit))
                .unwrap_or(u64::MAX);
            if best.is_none_or(|(_, slowest, _)| per_request > slowest) {
                best = Some((policy, per_request, index));
            }
        }
        let (mut policy, _, index) = best?;
        self.governing_index = Some(index);
        if self.policy.source == PolicySource::Header
            && (policy.limit(), policy.window()) == (self.policy.limit(), self.policy.window())
        {
            // Same figures: keep when they were first learned.
            policy.learned_at = self.policy.learned_at;
        }
        Some(policy)
    }

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

    fn next_boundary(&self, now: Instant) -> Option<(Instant, Instant, bool)> {
        let (earliest, latest) = self.boundary?;
        let window = self.policy.window();
        let windows = match now.checked_duration_since(latest) {
            Some(behind) => behind
                .as_nanos()
                .checked_div(window.as_nanos())
                .unwrap_or(0)
                .saturating_add(1),
            None => 0,
        };
        let shift = window.saturating_mul(windows);
        let (earliest, latest) = (earliest.saturating_add(shift), latest.saturating_add(shift));
        // Stale: the last statement may have been made before the window
        // that ends at `latest` began, so its count may be another window's.
        let stale = self
            .last_statement
            .is_none_or(|(made_after, _)| made_after <= latest.saturating_sub(window));
        Some((earliest, latest, stale))
    }

    fn exhausted(&self, quotas: &[StatedQuota], now: Instant) -> Option<Nanos> {
        quotas
            .iter()
            .enumerate()
            .filter(|(_, quota)| quota.remaining == Some(0))
            .map(|(index, quota)| {
                if self.governing_index == Some(index) {
                    // The boundary that ends the window the statement was
                    // made in, which may have passed while it travelled.
                    let made_after = self.last_statement.map_or(now, |(made_after, _)| made_after);
                    if let Some((_, latest, _)) = self.next_boundary(made_after) {
                        return latest.saturating_duration_since(now);
                    }
                }
                // A spent quota with no reset stated: wait a backoff step.
                quota.reset_after.unwrap_or(self.config.backoff_base)
            })
            .filter(|pause| !pause.is_zero())
            .max()
    }

    fn pause_for(&self, observation: &Observation, quotas: &[StatedQuota], now: Instant) -> Nanos {
        if let Some(retry_after) = observation.retry_after {
            return retry_after;
        }
        if let Some(reset) = self.exhausted(quotas, now) {
            return reset;
        }
        let doublings = self.throttled_in_a_row.saturating_sub(1).min(32);
        doubled(self.config.backoff_base, doublings).min(self.config.backoff_cap)
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

fn middle(lo: Instant, hi: Instant) -> u64 {
    let (lo, hi) = (lo.as_nanos(), hi.as_nanos());
    // At most `2·(2^63 − 1) + 1 < 2^64`: exact.
    (lo / 2).wrapping_add(hi / 2).wrapping_add(lo & hi & 1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WindowShift {
    Later(u64),
    Earlier(u64),
}

impl WindowShift {
    fn between(from: u64, to: u64, width: u64) -> WindowShift {
        let half = width / 2;
        if let Some(ahead) = to.checked_sub(from) {
            // `⌊(d + half) / width⌋ = q + [r + half ≥ width]`, with
            // `d = q·width + r`, without forming `d + half`.
            let whole = ahead.checked_div(width).unwrap_or(0);
            let rest = ahead.checked_rem(width).unwrap_or(0);
            // A carry needs `width ≥ 2` (`rest < 1` otherwise), when
            // `whole ≤ u64::MAX / 2`: exact, like `width − half`.
            let windows = whole.wrapping_add(u64::from(rest >= width.wrapping_sub(half)));
            WindowShift::Later(windows.saturating_mul(width))
        } else {
            // `⌊(half − d) / width⌋` is 0 for `d ≤ half` (as `half < width`),
            // else `−⌈(d − half) / width⌉`.
            // `to < from` here, and a rest needs `width ≥ 2`: exact.
            let behind = from.wrapping_sub(to).saturating_sub(half);
            let windows = behind
                .checked_div(width)
                .unwrap_or(0)
                .wrapping_add(u64::from(behind.checked_rem(width).is_some_and(|rest| rest > 0)));
            WindowShift::Earlier(windows.saturating_mul(width))
        }
    }

    fn apply(self, at: Instant) -> Instant {
        match self {
            WindowShift::Later(span) => at.saturating_add(Nanos::from_nanos(span)),
            WindowShift::Earlier(span) => at.saturating_sub(Nanos::from_nanos(span)),
        }
    }
}

fn whole_seconds_up(span: Nanos) -> Nanos {
    const SECOND: u64 = 1_000_000_000;
    let span = span.as_nanos();
    match span.checked_rem(SECOND) {
        Some(rest) if rest > 0 => Nanos::from_nanos(span.saturating_add(SECOND.wrapping_sub(rest))),
        _ => Nanos::from_nanos(span),
    }
}

fn doubled(span: Nanos, doublings: u32) -> Nanos {
    let span = span.as_nanos();
    match span.checked_shl(doublings) {
        Some(shifted) if span.leading_zeros() >= doublings => Nanos::from_nanos(shifted),
        _ => Nanos::MAX,
    }
}

fn scale(value: Nanos, numerator: u16, denominator: u16) -> Nanos {
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

fn rounding(reset: Nanos) -> Nanos {
    if reset.as_nanos().is_multiple_of(1_000_000_000) {
        Nanos::from_secs(1)
    } else {
        Nanos::ZERO
    }
}
