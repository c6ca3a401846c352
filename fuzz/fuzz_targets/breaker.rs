//! The circuit breaker, backoff and retry decisions under arbitrary
//! configurations and event sequences: never a panic, never more probes out
//! than allowed, never a close without a probe's success or a reset, never a
//! delay above the cap or a retry before `Retry-After`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ratekeeper_core::{
    Backoff, BackoffConfig, Breaker, BreakerConfig, BreakerState, CallResult, Instant, Jitter, Method, Nanos,
    Outcome, Permit, RequestKind, RetryDecision, RetryPolicy, RetryState, SplitMix64,
};

#[derive(Debug, Arbitrary)]
enum Event {
    Permit,
    Record { slot: u8, failed: bool, keep: bool },
    Release { slot: u8 },
    Advance(u64),
    Reset,
    ForceOpen,
}

#[derive(Debug, Arbitrary)]
struct BreakerInput {
    streak: u32,
    rate_bp: u16,
    window: u32,
    min_calls: u32,
    open_for: u64,
    growth: u32,
    max_open_for: u64,
    probes: u32,
    start: u64,
    events: Vec<Event>,
}

#[derive(Debug, Arbitrary)]
enum JitterChoice {
    None,
    Full,
    Equal,
    Decorrelated,
    Additive(u64),
    Proportional(u16),
}

#[derive(Debug, Arbitrary)]
struct BackoffInput {
    base: u64,
    cap: u64,
    retries: u8,
    jitter: JitterChoice,
    seed: u64,
    budget: u64,
    method: u8,
    idempotency_key: bool,
    answers: Vec<(u16, Option<u64>, u64)>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    breaker: BreakerInput,
    backoff: BackoffInput,
}

fn drive_breaker(input: &BreakerInput) {
    let config = BreakerConfig::consecutive_failures(input.streak, Nanos::from_nanos(input.open_for))
        .with_failure_rate(input.rate_bp, input.window, input.min_calls)
        .with_growth(input.growth, Nanos::from_nanos(input.max_open_for))
        .with_probes(input.probes);
    let Ok(mut breaker) = Breaker::<2>::new(config) else {
        return;
    };
    let mut now = Instant::from_nanos(input.start);
    let mut held: Vec<Permit> = Vec::new();
    let mut seen = breaker.snapshot(now);
    for event in input.events.iter().take(512) {
        let mut closed_by_success = false;
        let mut manual = false;
        match *event {
            Event::Permit => match breaker.permit(now) {
                Ok(permit) => held.push(permit),
                Err(rejected) => {
                    assert_ne!(rejected.state, BreakerState::Closed);
                    assert_eq!(rejected.error().code(), "RATE_LIMIT_CIRCUIT_OPEN");
                }
            },
            Event::Record { slot, failed, keep } => {
                if held.is_empty() {
                    continue;
                }
                let index = usize::from(slot) % held.len();
                let permit = if keep {
                    held[index]
                } else {
                    held.swap_remove(index)
                };
                let result = if failed {
                    CallResult::Failure
                } else {
                    CallResult::Success
                };
                breaker.record(permit, result, now);
                closed_by_success = !failed && permit.is_probe();
            }
            Event::Release { slot } => {
                if !held.is_empty() {
                    let permit = held.swap_remove(usize::from(slot) % held.len());
                    breaker.release(permit);
                }
            }
            Event::Advance(step) => now = now.saturating_add(Nanos::from_nanos(step)),
            Event::Reset => {
                breaker.reset();
                manual = true;
            }
            Event::ForceOpen => {
                breaker.force_open();
                manual = true;
            }
        }
        let snapshot = breaker.snapshot(now);
        assert!(snapshot.probes_in_flight <= config.probes());
        if snapshot.state == BreakerState::Closed && seen.state != BreakerState::Closed {
            assert!(closed_by_success || manual, "closed by {event:?}");
        }
        if let Some(open) = snapshot.open_for {
            assert!(open <= config.max_open_for());
            assert_eq!(snapshot.state, BreakerState::Open);
        }
        assert!(snapshot.window_failures <= snapshot.window_calls);
        assert!(snapshot.window_calls <= config.window());
        seen = snapshot;
    }
}

fn drive_backoff(input: &BackoffInput) {
    let jitter = match input.jitter {
        JitterChoice::None => Jitter::None,
        JitterChoice::Full => Jitter::Full,
        JitterChoice::Equal => Jitter::Equal,
        JitterChoice::Decorrelated => Jitter::Decorrelated,
        JitterChoice::Additive(spread) => Jitter::Additive(Nanos::from_nanos(spread)),
        JitterChoice::Proportional(bp) => Jitter::Proportional(bp),
    };
    let Ok(config) = BackoffConfig::new(
        Nanos::from_nanos(input.base),
        Nanos::from_nanos(input.cap),
        u32::from(input.retries),
        jitter,
    ) else {
        return;
    };
    let mut rng = SplitMix64::new(input.seed);
    let mut backoff = Backoff::new(config);
    for (_, retry_after, _) in input.answers.iter().take(300) {
        let before = backoff.retries();
        match backoff.next_delay(&mut rng, retry_after.map(Nanos::from_nanos)) {
            Some(wait) => {
                assert!(before < config.max_retries());
                assert!(retry_after.is_none_or(|ra| wait.as_nanos() >= ra));
                if retry_after.is_none() {
                    assert!(wait <= config.cap());
                }
                if jitter == Jitter::Decorrelated {
                    assert!(wait >= config.base());
                }
            }
            None => assert!(backoff.is_exhausted()),
        }
    }

    const METHODS: [Method; 8] = [
        Method::Get,
        Method::Head,
        Method::Options,
        Method::Put,
        Method::Delete,
        Method::Post,
        Method::Patch,
        Method::Other,
    ];
    let method = METHODS[usize::from(input.method) % METHODS.len()];
    let mut request = RequestKind::new(method);
    if input.idempotency_key {
        request = request.with_idempotency_key();
    }
    let policy = RetryPolicy::new(config, Nanos::from_nanos(input.budget));
    let start = Instant::from_nanos(input.seed);
    let mut retry = RetryState::new(policy, request, start);
    let mut now = start;
    for &(status, retry_after, late) in input.answers.iter().take(300) {
        now = now.saturating_add(Nanos::from_nanos(late));
        let outcome = match status {
            0 => Outcome::ConnectionRefused,
            1 => Outcome::ConnectionReset,
            2 => Outcome::Timeout,
            3 => Outcome::OtherTransport,
            status => Outcome::Response(status),
        };
        match retry.decide(outcome, retry_after.map(Nanos::from_nanos), now, &mut rng) {
            RetryDecision::Done => assert!(outcome.is_success()),
            RetryDecision::Retry { wait, at, .. } => {
                assert!(outcome.is_retryable());
                assert!(retry_after.is_none_or(|ra| wait.as_nanos() >= ra));
                assert!(at <= retry.deadline());
                assert!(retry.attempts() <= config.max_retries().saturating_add(1));
                now = at;
            }
            RetryDecision::GiveUp(give_up) => {
                if let Some(error) = give_up.error() {
                    assert!(error.code().starts_with("RATE_LIMIT_"));
                }
            }
        }
    }
}

fuzz_target!(|input: Input| {
    drive_breaker(&input.breaker);
    drive_backoff(&input.backoff);
});
