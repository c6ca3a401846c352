//! The learner against its earlier form (`learner_model`), decision for
//! decision: over random configurations and random sequences of responses,
//! adoptions and pacing queries, both must return the same `Learned`, the
//! same policy and the same GCRA at every step. And a learner without
//! discovery from 429s alone (`LearnerCapabilities::HEADERLESS`) against
//! the full learner, where that discovery would not have acted.

mod learner_model;

use proptest::prelude::*;
use ratekeeper_core::learn::{
    LearnEvent, Learner, LearnerCapabilities, LearnerConfig, Observation, StatedQuota,
};
use ratekeeper_core::{Instant, Nanos, Policy, PolicyConfig, PolicySource, SafetyMargin};

/// A span: small, realistic, or anywhere up to the end of time.
fn span() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..=5_000_000_000,
        2 => (0u64..=120).prop_map(|s| s * 1_000_000_000),
        1 => 0u64..=1_000,
        1 => any::<u64>(),
        1 => prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), Just(1u64 << 63), Just(0u64)],
    ]
}

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..=100,
        2 => 0u64..=100_000,
        1 => any::<u64>(),
        1 => prop_oneof![Just(0u64), Just(u64::from(u32::MAX)), Just(u64::from(u32::MAX) + 1), Just(u64::MAX)],
    ]
}

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
        prop_oneof![Just(200u16), Just(429), Just(503), Just(500), Just(204)],
        prop::option::of(span()),
        prop::collection::vec(quota(), 0..=7),
        span(),
    )
        .prop_map(|(status, retry_after, quotas, round_trip)| {
            let mut observation = Observation::status(status).with_round_trip(Nanos::from_nanos(round_trip));
            if let Some(retry_after) = retry_after {
                observation = observation.with_retry_after(Nanos::from_nanos(retry_after));
            }
            quotas.into_iter().fold(observation, Observation::with_quota)
        })
}

/// The same configuration for the learner and its model.
fn configs() -> impl Strategy<Value = (LearnerConfig, learner_model::LearnerConfig)> {
    (
        (0u16..=9_900, 1u32..=20, 1u32..=100, 1u64..=120_000_000_000),
        1u16..=999,
        (
            1u16..=1_000,
            1u64..=10_000_000_000,
            0u64..=100_000_000_000,
            span(),
        ),
        (1u64..=10_000_000_000, 0u64..=100_000_000_000),
        any::<bool>(),
    )
        .prop_map(
            |(
                (margin, burst, limit, window),
                decrease,
                (step, period, extra, memory),
                (base, cap_extra),
                default,
            )| {
                if default {
                    return (LearnerConfig::DEFAULT, learner_model::LearnerConfig::DEFAULT);
                }
                let margin = SafetyMargin::from_basis_points(margin).unwrap();
                let policy = PolicyConfig::new(margin, burst, limit, Nanos::from_nanos(window)).unwrap();
                let (period, max_period, memory) = (
                    Nanos::from_nanos(period),
                    Nanos::from_nanos(period + extra),
                    Nanos::from_nanos(memory),
                );
                let (base, cap) = (Nanos::from_nanos(base), Nanos::from_nanos(base + cap_extra));
                let config = LearnerConfig::DEFAULT
                    .with_policy(policy)
                    .with_decrease_permille(decrease)
                    .and_then(|c| c.with_probing(step, period, max_period, memory))
                    .and_then(|c| c.with_backoff(base, cap))
                    .unwrap();
                let model = learner_model::LearnerConfig::DEFAULT
                    .with_policy(policy)
                    .with_decrease_permille(decrease)
                    .and_then(|c| c.with_probing(step, period, max_period, memory))
                    .and_then(|c| c.with_backoff(base, cap))
                    .unwrap();
                (config, model)
            },
        )
}

#[derive(Clone, Debug)]
enum Step {
    Observe(Box<Observation>),
    Adopt(Policy),
}

fn step() -> impl Strategy<Value = (Step, u64, u64)> {
    let source = prop_oneof![
        Just(PolicySource::Default),
        Just(PolicySource::Observed),
        Just(PolicySource::Configured),
        Just(PolicySource::Header),
    ];
    let adopt =
        (1u32..=1_000, 1u64..=100_000_000_000, source, span()).prop_map(|(limit, window, source, at)| {
            Step::Adopt(
                Policy::new(limit, Nanos::from_nanos(window), source, Instant::from_nanos(at)).unwrap(),
            )
        });
    (
        prop_oneof![9 => observation().prop_map(|o| Step::Observe(Box::new(o))), 1 => adopt],
        span(),
        span(),
    )
}

fn start() -> impl Strategy<Value = u64> {
    prop_oneof![4 => Just(0u64), 2 => 0u64..=1u64 << 50, 1 => any::<u64>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn the_learner_decides_as_its_model(
        (config, model_config) in configs(),
        start in start(),
        steps in prop::collection::vec(step(), 1..40),
    ) {
        let mut now = Instant::from_nanos(start);
        let mut learner = Learner::new(config, now);
        let mut model = learner_model::Learner::new(model_config, now);
        for (step, advance, look_ahead) in steps {
            now = now.saturating_add(Nanos::from_nanos(advance));
            match step {
                Step::Observe(observation) => {
                    prop_assert_eq!(learner.observe(&observation, now), model.observe(&observation, now));
                }
                Step::Adopt(policy) => {
                    learner.adopt(policy, now);
                    model.adopt(policy, now);
                }
            }
            prop_assert_eq!(learner.policy(), model.policy());
            prop_assert_eq!(learner.gcra(now), model.gcra(now));
            let later = now.saturating_add(Nanos::from_nanos(look_ahead));
            prop_assert_eq!(learner.gcra(later), model.gcra(later));
        }
    }
}

/// A response that states at least one usable limit (limit and window above
/// zero), among other quotas, within the quotas an observation keeps.
fn stated_observation() -> impl Strategy<Value = Observation> {
    let stated = (
        1u64..=u64::MAX,
        1u64..=u64::MAX,
        prop::option::of(count()),
        prop::option::of(span()),
    )
        .prop_map(|(limit, window, remaining, reset)| StatedQuota {
            limit: Some(limit),
            window: Some(Nanos::from_nanos(window)),
            remaining,
            reset_after: reset.map(Nanos::from_nanos),
        });
    (
        prop_oneof![Just(200u16), Just(429), Just(503), Just(500), Just(204)],
        prop::option::of(span()),
        prop::collection::vec(quota(), 0..ratekeeper_core::learn::MAX_WINDOWS),
        (stated, any::<prop::sample::Index>()),
        span(),
    )
        .prop_map(|(status, retry_after, mut quotas, (stated, at), round_trip)| {
            let at = at.index(quotas.len() + 1);
            quotas.insert(at, stated);
            let mut observation = Observation::status(status).with_round_trip(Nanos::from_nanos(round_trip));
            if let Some(retry_after) = retry_after {
                observation = observation.with_retry_after(Nanos::from_nanos(retry_after));
            }
            quotas.into_iter().fold(observation, Observation::with_quota)
        })
}

/// Every capability but discovery without headers.
const WITHOUT_DISCOVERY: u32 = LearnerCapabilities::ALL & !LearnerCapabilities::HEADERLESS;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Where every response states a limit, the stated policy governs
    /// before a 429 or a run of successes is weighed: discovery without
    /// headers never acts, and leaving it out changes nothing.
    #[test]
    fn without_discovery_the_learner_decides_as_the_full_one_where_limits_are_stated(
        (config, _) in configs(),
        start in start(),
        steps in prop::collection::vec((stated_observation(), span(), span()), 1..40),
    ) {
        let mut now = Instant::from_nanos(start);
        let mut full = Learner::new(config, now);
        let mut learner = Learner::<WITHOUT_DISCOVERY>::with_capabilities(config, now);
        for (observation, advance, look_ahead) in steps {
            prop_assert!(observation.quotas().iter().any(|q| q.limit.is_some_and(|l| l > 0) && q.window.is_some_and(|w| !w.is_zero())));
            now = now.saturating_add(Nanos::from_nanos(advance));
            prop_assert_eq!(learner.observe(&observation, now), full.observe(&observation, now));
            prop_assert_eq!(learner.policy(), full.policy());
            prop_assert_eq!(learner.gcra(now), full.gcra(now));
            let later = now.saturating_add(Nanos::from_nanos(look_ahead));
            prop_assert_eq!(learner.gcra(later), full.gcra(later));
        }
    }

    /// Over any responses and adoptions: the same decisions until the full
    /// learner first decreases or probes. At that step the learner without
    /// discovery pauses alike but keeps its policy.
    #[test]
    fn without_discovery_the_learner_decides_as_the_full_one_until_discovery_acts(
        (config, _) in configs(),
        start in start(),
        steps in prop::collection::vec(step(), 1..40),
    ) {
        let mut now = Instant::from_nanos(start);
        let mut full = Learner::new(config, now);
        let mut learner = Learner::<WITHOUT_DISCOVERY>::with_capabilities(config, now);
        for (step, advance, look_ahead) in steps {
            now = now.saturating_add(Nanos::from_nanos(advance));
            match step {
                Step::Observe(observation) => {
                    let (by_full, learned) = (full.observe(&observation, now), learner.observe(&observation, now));
                    if matches!(by_full.event, LearnEvent::Decreased | LearnEvent::Probed) {
                        prop_assert_eq!(learned.pause, by_full.pause);
                        prop_assert_eq!(learned.policy, None);
                        prop_assert!(matches!(learned.event, LearnEvent::Throttled | LearnEvent::Unchanged | LearnEvent::Exhausted));
                        return Ok(());
                    }
                    prop_assert_eq!(learned, by_full);
                }
                Step::Adopt(policy) => {
                    full.adopt(policy, now);
                    learner.adopt(policy, now);
                }
            }
            prop_assert_eq!(learner.policy(), full.policy());
            prop_assert_eq!(learner.gcra(now), full.gcra(now));
            let later = now.saturating_add(Nanos::from_nanos(look_ahead));
            prop_assert_eq!(learner.gcra(later), full.gcra(later));
        }
    }
}
