//! The circuit breaker against a reference model, over any configuration
//! and any sequence of calls, results, releases, resets, forced opens and
//! clock steps.
//!
//! The model keeps the failure-rate window as a `VecDeque<bool>` and times
//! in `u128`, and computes the open time by repeated multiplication: it
//! shares no code with `Breaker`. Besides agreeing with it on every answer
//! and snapshot, the breaker must keep two rules the model does not need
//! to be trusted for: no more probes out at once than configured, and no
//! closing without a probe's success (or a manual reset).

use std::collections::VecDeque;

use proptest::prelude::*;
use ratekeeper_core::{
    Breaker, BreakerConfig, BreakerSnapshot, BreakerState, CallResult, Instant, Nanos, Permit, Rejected,
};

const CASES: u32 = 10_000;
/// Two words: windows of up to 128 calls.
const WORDS: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq)]
enum ModelPhase {
    Closed,
    Open { until: u128 },
    HalfOpen { since: u128, probes: u32 },
    Forced,
}

#[derive(Debug, Clone)]
struct Model {
    streak_limit: u32,
    rate_bp: u32,
    window: usize,
    min_calls: usize,
    open_for: u128,
    max_open_for: u128,
    growth: u128,
    probes: u32,
    phase: ModelPhase,
    generation: u64,
    streak: u32,
    history: VecDeque<bool>,
    trips: u32,
}

/// What the model hands out for a permit: the generation and whether it is
/// a probe.
type ModelPermit = (u64, bool);

impl Model {
    fn new(c: &BreakerConfig) -> Model {
        Model {
            streak_limit: c.consecutive_failure_threshold(),
            rate_bp: u32::from(c.failure_rate_bp()),
            window: if c.failure_rate_bp() > 0 {
                c.window() as usize
            } else {
                0
            },
            min_calls: c.min_calls() as usize,
            open_for: u128::from(c.open_for().as_nanos()),
            max_open_for: u128::from(c.max_open_for().as_nanos()),
            growth: u128::from(c.growth()),
            probes: c.probes(),
            phase: ModelPhase::Closed,
            generation: 0,
            streak: 0,
            history: VecDeque::new(),
            trips: 0,
        }
    }

    fn enter(&mut self, phase: ModelPhase) {
        self.phase = phase;
        self.generation += 1;
        self.streak = 0;
        self.history.clear();
    }

    fn open_time(&self) -> u128 {
        let mut open = self.open_for;
        for _ in 1..self.trips {
            open = (open * self.growth).min(self.max_open_for);
        }
        open.min(self.max_open_for)
    }

    fn trip(&mut self, now: u128) {
        self.trips = self.trips.saturating_add(1);
        let until = (now + self.open_time()).min(u128::from(u64::MAX));
        self.enter(ModelPhase::Open { until });
    }

    fn permit(&mut self, now: u128) -> Result<ModelPermit, (BreakerState, u128)> {
        loop {
            match self.phase {
                ModelPhase::Closed => return Ok((self.generation, false)),
                ModelPhase::Open { until } if now < until => return Err((BreakerState::Open, until - now)),
                ModelPhase::Open { .. } => self.enter(ModelPhase::HalfOpen {
                    since: now,
                    probes: 0,
                }),
                ModelPhase::HalfOpen { since, probes } if probes < self.probes => {
                    self.phase = ModelPhase::HalfOpen {
                        since,
                        probes: probes + 1,
                    };
                    return Ok((self.generation, true));
                }
                ModelPhase::HalfOpen { since, .. } => {
                    let end = (since + self.open_for).min(u128::from(u64::MAX));
                    if now < end {
                        return Err((BreakerState::HalfOpen, end - now));
                    }
                    self.trip(now);
                }
                ModelPhase::Forced => return Err((BreakerState::ForcedOpen, 0)),
            }
        }
    }

    fn record(&mut self, (generation, probe): ModelPermit, failed: bool, now: u128) -> Option<BreakerState> {
        if generation != self.generation {
            return None;
        }
        match self.phase {
            ModelPhase::Closed => {
                if self.window > 0 {
                    if self.history.len() == self.window {
                        self.history.pop_front();
                    }
                    self.history.push_back(failed);
                }
                if !failed {
                    self.streak = 0;
                    return None;
                }
                self.streak += 1;
                let failures = self.history.iter().filter(|&&f| f).count() as u128;
                let calls = self.history.len() as u128;
                let by_streak = self.streak_limit > 0 && self.streak >= self.streak_limit;
                let by_rate = self.rate_bp > 0
                    && self.history.len() >= self.min_calls
                    && failures * 10_000 >= u128::from(self.rate_bp) * calls;
                if by_streak || by_rate {
                    self.trip(now);
                    Some(BreakerState::Open)
                } else {
                    None
                }
            }
            ModelPhase::HalfOpen { .. } if probe => {
                if failed {
                    self.trip(now);
                    Some(BreakerState::Open)
                } else {
                    self.trips = 0;
                    self.enter(ModelPhase::Closed);
                    Some(BreakerState::Closed)
                }
            }
            _ => None,
        }
    }

    fn release(&mut self, (generation, probe): ModelPermit) {
        if generation == self.generation
            && probe
            && let ModelPhase::HalfOpen { since, probes } = self.phase
        {
            self.phase = ModelPhase::HalfOpen {
                since,
                probes: probes - 1,
            };
        }
    }

    fn snapshot(&self, now: u128) -> BreakerSnapshot {
        let (state, open_for, probes_in_flight) = match self.phase {
            ModelPhase::Closed => (BreakerState::Closed, None, 0),
            ModelPhase::Open { until } if now < until => (
                BreakerState::Open,
                Some(Nanos::from_nanos((until - now) as u64)),
                0,
            ),
            ModelPhase::Open { .. } => (BreakerState::HalfOpen, None, 0),
            ModelPhase::HalfOpen { probes, .. } => (BreakerState::HalfOpen, None, probes),
            ModelPhase::Forced => (BreakerState::ForcedOpen, None, 0),
        };
        BreakerSnapshot {
            state,
            consecutive_failures: self.streak,
            window_calls: self.history.len() as u32,
            window_failures: self.history.iter().filter(|&&f| f).count() as u32,
            trips: self.trips,
            open_for,
            probes_in_flight,
        }
    }
}

#[derive(Debug, Clone)]
enum Event {
    Permit,
    Record { slot: usize, failed: bool, keep: bool },
    Release { slot: usize },
    Advance(u64),
    Reset,
    ForceOpen,
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    (
        0u32..=8,
        prop_oneof![Just(0u16), 1u16..=10_000],
        1u32..=(64 * WORDS as u32),
        any::<prop::sample::Index>(),
        1u64..=10_000_000_000,
        1u32..=4,
        1u64..=100,
        1u32..=4,
    )
        .prop_map(
            |(streak, rate, window, min_calls, open_for, growth, max_factor, probes)| {
                let streak = if streak == 0 && rate == 0 { 1 } else { streak };
                let min_calls = min_calls.index(window as usize) as u32 + 1;
                BreakerConfig::consecutive_failures(streak, Nanos::from_nanos(open_for))
                    .with_failure_rate(rate, window, min_calls)
                    .with_growth(growth, Nanos::from_nanos(open_for * max_factor))
                    .with_probes(probes)
            },
        )
}

fn events(open_for: u64) -> impl Strategy<Value = Vec<Event>> {
    let event = prop_oneof![
        8 => Just(Event::Permit),
        8 => (any::<usize>(), prop::bool::weighted(0.6), prop::bool::weighted(0.1))
            .prop_map(|(slot, failed, keep)| Event::Record { slot, failed, keep }),
        1 => any::<usize>().prop_map(|slot| Event::Release { slot }),
        3 => prop_oneof![0..=open_for, 0..=open_for.saturating_mul(4)].prop_map(Event::Advance),
        1 => prop::bool::weighted(0.05).prop_map(|_| Event::Reset),
        1 => prop::bool::weighted(0.05).prop_map(|_| Event::ForceOpen),
    ];
    prop::collection::vec(event, 1..150)
}

fn scenario() -> impl Strategy<Value = (BreakerConfig, u64, Vec<Event>)> {
    config().prop_flat_map(|c| (Just(c), 0u64..=1u64 << 62, events(c.open_for().as_nanos())))
}

fn rejected_as_model(rejected: Rejected) -> (BreakerState, u128) {
    (rejected.state, u128::from(rejected.retry_after.as_nanos()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The breaker and the model agree on every permit, every result and
    /// every snapshot; no more probes are ever out than configured; and the
    /// breaker closes only on a probe's success or a reset.
    #[test]
    fn breaker_agrees_with_the_model_and_keeps_its_rules((config, start, events) in scenario()) {
        let mut breaker = Breaker::<WORDS>::new(config).unwrap();
        let mut model = Model::new(&config);
        let mut now = start;
        let mut held: Vec<(Permit, ModelPermit, u64)> = Vec::new();
        // Probes out in the current half-open period, counted here from the
        // permits alone: a period ends whenever the state or the trip count
        // changes, or on a reset or a forced open.
        let mut period = 0u64;
        let mut probes_out = 0u32;
        let mut seen = breaker.snapshot(Instant::from_nanos(now));
        for event in events {
            let t = u128::from(now);
            let at = Instant::from_nanos(now);
            let mut closed_by_success = false;
            let mut manual = false;
            let mut granted_probe = false;
            match event {
                Event::Permit => {
                    let real = breaker.permit(at);
                    let expected = model.permit(t);
                    match (real, expected) {
                        (Ok(permit), Ok(model_permit)) => {
                            prop_assert_eq!(permit.is_probe(), model_permit.1);
                            granted_probe = permit.is_probe();
                            held.push((permit, model_permit, period));
                        }
                        (Err(rejected), Err(expected)) => prop_assert_eq!(rejected_as_model(rejected), expected),
                        (real, expected) => prop_assert!(false, "breaker {:?}, model {:?}", real, expected),
                    }
                }
                Event::Record { slot, failed, keep } => {
                    if held.is_empty() {
                        continue;
                    }
                    let index = slot % held.len();
                    let (permit, model_permit, _) = held[index];
                    if !keep {
                        let _ = held.swap_remove(index);
                    }
                    let result = if failed { CallResult::Failure } else { CallResult::Success };
                    let changed = breaker.record(permit, result, at);
                    prop_assert_eq!(changed, model.record(model_permit, failed, t));
                    closed_by_success = !failed && permit.is_probe();
                }
                Event::Release { slot } => {
                    if held.is_empty() {
                        continue;
                    }
                    let (permit, model_permit, granted_in) = held.swap_remove(slot % held.len());
                    breaker.release(permit);
                    model.release(model_permit);
                    if permit.is_probe() && granted_in == period {
                        probes_out -= 1;
                    }
                }
                Event::Advance(step) => now = now.saturating_add(step),
                Event::Reset => {
                    breaker.reset();
                    model.trips = 0;
                    model.enter(ModelPhase::Closed);
                    manual = true;
                }
                Event::ForceOpen => {
                    breaker.force_open();
                    model.enter(ModelPhase::Forced);
                    manual = true;
                }
            }
            let at = Instant::from_nanos(now);
            let snapshot = breaker.snapshot(at);
            prop_assert_eq!(snapshot, model.snapshot(u128::from(now)));

            // Never closes without a success.
            if snapshot.state == BreakerState::Closed && seen.state != BreakerState::Closed {
                prop_assert!(closed_by_success || manual, "closed by {:?}", event);
            }
            // Never more probes out than allowed, counted from the permits.
            if manual || snapshot.state != seen.state || snapshot.trips != seen.trips {
                period += 1;
                probes_out = 0;
            }
            if granted_probe {
                if let Some(last) = held.last_mut() {
                    last.2 = period;
                }
                probes_out += 1;
            }
            prop_assert!(probes_out <= config.probes(), "{} probes out, {} allowed", probes_out, config.probes());
            prop_assert_eq!(snapshot.probes_in_flight, probes_out);
            seen = snapshot;
        }
    }

    /// Extreme times and configurations: no panic, and an open breaker
    /// never refuses past the end of time.
    #[test]
    fn extreme_inputs_do_not_panic(
        open_for in 1u64..,
        growth in 1u32..,
        max_extra in any::<u64>(),
        nows in prop::collection::vec(any::<u64>(), 1..40),
    ) {
        let config = BreakerConfig::consecutive_failures(1, Nanos::from_nanos(open_for))
            .with_growth(growth, Nanos::from_nanos(open_for.saturating_add(max_extra)))
            .with_failure_rate(1, 64, 1);
        let mut breaker: Breaker = Breaker::new(config).unwrap();
        let mut sorted = nows;
        sorted.sort_unstable();
        for now in sorted {
            let now = Instant::from_nanos(now);
            match breaker.permit(now) {
                Ok(permit) => {
                    breaker.record(permit, CallResult::Failure, now);
                }
                Err(rejected) => {
                    prop_assert!(now.checked_add(rejected.retry_after).is_some());
                }
            }
            let _ = breaker.snapshot(now);
        }
    }
}
