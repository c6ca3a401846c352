//! The circuit breaker against its earlier form (`breaker_model`), answer
//! for answer: over any configuration and any sequence of permits,
//! results, releases, resets, forced opens and clock steps (up to the end
//! of time), both must grant and refuse alike, report the same
//! transitions and show the same snapshot.

mod breaker_model;

use proptest::prelude::*;
use ratekeeper_core::{Breaker, BreakerConfig, CallResult, Instant, Nanos, Permit};

/// Two words: windows of up to 128 calls.
const WORDS: usize = 2;

#[derive(Clone, Debug)]
enum Event {
    Permit,
    Record { slot: usize, failed: bool },
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
        prop_oneof![1u64..=10_000_000_000, any::<u64>().prop_map(|n| n.max(1))],
        prop_oneof![1u32..=4, any::<u32>().prop_map(|g| g.max(1))],
        prop_oneof![1u64..=100, any::<u64>().prop_map(|f| f.max(1))],
        1u32..=4,
    )
        .prop_map(
            |(streak, rate, window, min_calls, open_for, growth, max_factor, probes)| {
                let streak = if streak == 0 && rate == 0 { 1 } else { streak };
                let min_calls = min_calls.index(window as usize) as u32 + 1;
                BreakerConfig::consecutive_failures(streak, Nanos::from_nanos(open_for))
                    .with_failure_rate(rate, window, min_calls)
                    .with_growth(growth, Nanos::from_nanos(open_for.saturating_mul(max_factor)))
                    .with_probes(probes)
            },
        )
}

fn events(open_for: u64) -> impl Strategy<Value = Vec<Event>> {
    let event = prop_oneof![
        8 => Just(Event::Permit),
        8 => (any::<usize>(), prop::bool::weighted(0.6))
            .prop_map(|(slot, failed)| Event::Record { slot, failed }),
        1 => any::<usize>().prop_map(|slot| Event::Release { slot }),
        3 => prop_oneof![0..=open_for, 0..=open_for.saturating_mul(4), any::<u64>()].prop_map(Event::Advance),
        1 => Just(Event::Reset),
        1 => Just(Event::ForceOpen),
    ];
    prop::collection::vec(event, 1..150)
}

fn scenario() -> impl Strategy<Value = (BreakerConfig, u64, Vec<Event>)> {
    config().prop_flat_map(|c| {
        (
            Just(c),
            prop_oneof![0u64..=1u64 << 62, any::<u64>()],
            events(c.open_for().as_nanos()),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn the_breaker_answers_as_its_model((config, start, events) in scenario()) {
        answers_as_its_model::<WORDS>(config, start, events)?;
    }

    /// Without a window (`Breaker<0>`): only consecutive failures can trip
    /// it (a failure rate is refused).
    #[test]
    fn a_breaker_without_a_window_answers_as_its_model((config, start, events) in scenario()) {
        answers_as_its_model::<0>(config, start, events)?;
    }
}

/// Runs `events` through a breaker and its model from `start`, answer for
/// answer.
fn answers_as_its_model<const W: usize>(
    config: BreakerConfig,
    start: u64,
    events: Vec<Event>,
) -> Result<(), TestCaseError> {
    // The model does not validate: only a configuration the breaker
    // takes is compared (without a window, one with no failure rate).
    let Ok(mut breaker) = Breaker::<W>::new(config) else {
        prop_assert!(W == 0 && config.failure_rate_bp() > 0, "refused: {:?}", config);
        return Ok(());
    };
    let mut model = breaker_model::Breaker::<W>::new(config).unwrap();
    let mut now = start;
    let mut held: Vec<(Permit, breaker_model::Permit)> = Vec::new();
    for event in events {
        let at = Instant::from_nanos(now);
        match event {
            Event::Permit => match (breaker.permit(at), model.permit(at)) {
                (Ok(permit), Ok(model_permit)) => {
                    prop_assert_eq!(permit.is_probe(), model_permit.is_probe());
                    held.push((permit, model_permit));
                }
                (Err(rejected), Err(expected)) => prop_assert_eq!(rejected, expected),
                (real, expected) => prop_assert!(false, "breaker {:?}, model {:?}", real, expected),
            },
            Event::Record { slot, failed } => {
                if held.is_empty() {
                    continue;
                }
                let (permit, model_permit) = held.swap_remove(slot % held.len());
                let result = if failed {
                    CallResult::Failure
                } else {
                    CallResult::Success
                };
                prop_assert_eq!(
                    breaker.record(permit, result, at),
                    model.record(model_permit, result, at)
                );
            }
            Event::Release { slot } => {
                if held.is_empty() {
                    continue;
                }
                let (permit, model_permit) = held.swap_remove(slot % held.len());
                breaker.release(permit);
                model.release(model_permit);
            }
            Event::Advance(step) => now = now.saturating_add(step),
            Event::Reset => {
                breaker.reset();
                model.reset();
            }
            Event::ForceOpen => {
                breaker.force_open();
                model.force_open();
            }
        }
        let at = Instant::from_nanos(now);
        prop_assert_eq!(breaker.snapshot(at), model.snapshot(at));
    }
    Ok(())
}

/// Calls in a closed breaker that trips on its failure rate alone, at a
/// rate that a mix of results stays under: long runs of results that fill
/// the window and wrap around it many times over, where the window's count
/// of failures is what tells the oldest result apart from the others.
fn closed_runs() -> impl Strategy<Value = (BreakerConfig, Vec<bool>)> {
    (
        1u32..=(64 * WORDS as u32),
        prop_oneof![Just(10_000u16), 5_000u16..=10_000],
        prop::collection::vec(prop::bool::weighted(0.4), 1..600),
    )
        .prop_map(|(window, rate, results)| {
            (
                BreakerConfig::failure_rate(rate, window, window, Nanos::from_secs(1)),
                results,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn the_window_counts_as_its_model((config, results) in closed_runs()) {
        let mut breaker = Breaker::<WORDS>::new(config).unwrap();
        let mut model = breaker_model::Breaker::<WORDS>::new(config).unwrap();
        let at = Instant::from_nanos(1);
        for failed in results {
            let result = if failed { CallResult::Failure } else { CallResult::Success };
            match (breaker.permit(at), model.permit(at)) {
                (Ok(permit), Ok(model_permit)) => {
                    prop_assert_eq!(breaker.record(permit, result, at), model.record(model_permit, result, at));
                }
                (Err(rejected), Err(expected)) => prop_assert_eq!(rejected, expected),
                (real, expected) => prop_assert!(false, "breaker {:?}, model {:?}", real, expected),
            }
            prop_assert_eq!(breaker.snapshot(at), model.snapshot(at));
        }
    }
}
