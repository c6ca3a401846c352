//! GCRA and bucket state under arbitrary parameters, clocks, costs, waits
//! and pauses: never a panic, never a wait beyond what was allowed, never a
//! send before a pause ends.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ratekeeper_core::{Acquire, BucketState, Decision, Gcra, Instant, Nanos};

#[derive(Debug, Arbitrary)]
struct Step {
    advance: u64,
    cost: u32,
    max_wait: u64,
    pause: Option<u64>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    interval: u64,
    burst: u32,
    start: u64,
    steps: Vec<Step>,
}

fuzz_target!(|input: Input| {
    let Ok(gcra) = Gcra::new(Nanos::from_nanos(input.interval), input.burst) else {
        return;
    };
    let mut state = BucketState::EMPTY;
    let mut now = Instant::from_nanos(input.start);
    for step in input.steps.iter().take(256) {
        now = now.saturating_add(Nanos::from_nanos(step.advance));
        if let Some(pause) = step.pause {
            state = state.paused_for(now, Nanos::from_nanos(pause));
        }
        let request = Acquire::reserve(gcra, Nanos::from_nanos(step.max_wait)).with_cost(step.cost);
        let (decision, next) = state.decide(&request, now);
        match decision {
            Decision::Allowed(allowed) => {
                assert!(allowed.wait <= request.max_wait);
                let send_at = now.saturating_add(allowed.wait);
                assert!(state.paused_until.is_none_or(|until| send_at >= until));
                state = next.expect("an admission stores a state");
            }
            Decision::Denied(denied) => {
                assert!(next.is_none());
                // Within the time horizon a refusal always means "longer
                // than you would wait"; past it, refusing is the safe answer.
                let small = 1u64 << 62;
                let within_horizon = now.as_nanos() < small
                    && state.tat.is_none_or(|tat| tat.as_nanos() < small)
                    && state.paused_until.is_none_or(|until| until.as_nanos() < small)
                    && gcra.tolerance().as_nanos() < small;
                assert!(!within_horizon || denied.retry_after > request.max_wait);
            }
            Decision::Impossible { cost, burst } => assert!(cost > burst),
        }
    }
});
