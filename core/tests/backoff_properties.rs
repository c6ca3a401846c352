//! Backoff and retry decisions against simple models, over any
//! configuration, random stream and sequence of server answers.
//!
//! The model states each jitter's bounds in exact `u128` arithmetic, from
//! the table in the `backoff` module docs, sharing no code with
//! `BackoffConfig::delay`: every delay must fall within them, never above
//! the cap, and a retry must never be scheduled before the server's
//! `Retry-After`.

use proptest::prelude::*;
use ratekeeper_core::{
    Backoff, BackoffConfig, Instant, Jitter, Method, Nanos, Outcome, RandomSource, RequestKind,
    RetryDecision, RetryPolicy, RetryState, SplitMix64,
};

const CASES: u32 = 10_000;
const MAX: u128 = u64::MAX as u128;
const METHODS: &[&[u8]] = &[
    b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"POST", b"PATCH", b"X",
];

/// The bounds `[low, high]` of retry `n`'s delay, by the table in the
/// module docs; `previous` is the last delay (decorrelated jitter only).
fn model_bounds(base: u64, cap: u64, jitter: Jitter, n: u32, previous: Option<u64>) -> (u128, u128) {
    let (base, cap) = (u128::from(base), u128::from(cap));
    let step = if n >= 64 { MAX } else { (base << n).min(MAX) };
    let m = step.min(cap);
    match jitter {
        Jitter::None => (m, m),
        Jitter::Full => (0, m),
        Jitter::Equal => (m - m / 2, m),
        Jitter::Decorrelated => {
            let previous = u128::from(previous.unwrap_or(0)).max(base);
            (base, (previous * 3).min(cap))
        }
        Jitter::Additive(spread) => {
            let spread = u128::from(spread.as_nanos());
            let high = (step + spread).min(cap);
            (high.saturating_sub(spread), high)
        }
        Jitter::Proportional(bp) => {
            let spread = m * u128::from(bp) / 10_000;
            let high = (m + spread).min(cap);
            (high.saturating_sub(spread), high)
        }
    }
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
        prop_oneof![0u64..=2_000_000_000, any::<u64>()].prop_map(|j| Jitter::Additive(Nanos::from_nanos(j))),
        (0u16..=10_000).prop_map(Jitter::Proportional),
    ]
}

/// Bases from 1 ns to 10 s, caps from the base up to 2⁴⁰ times it or to
/// the end of time, so sequences meet both the growth and the cap.
fn config() -> impl Strategy<Value = BackoffConfig> {
    (
        1u64..=10_000_000_000,
        0u32..=40,
        any::<bool>(),
        0u32..=24,
        jitter(),
    )
        .prop_map(|(base, cap_shift, endless, retries, jitter)| {
            let cap = if endless {
                u64::MAX
            } else {
                base.saturating_mul(1u64 << cap_shift)
            };
            BackoffConfig::new(Nanos::from_nanos(base), Nanos::from_nanos(cap), retries, jitter).unwrap()
        })
}

fn retry_afters() -> impl Strategy<Value = Vec<Option<u64>>> {
    prop::collection::vec(
        prop::option::weighted(0.3, prop_oneof![0u64..=120_000_000_000, any::<u64>()]),
        30,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Every delay lies within its model bounds (so never above the cap),
    /// the retry limit holds exactly, and with a `Retry-After` the wait is
    /// the later of the backoff and the server's word: never before it.
    #[test]
    fn every_delay_is_within_bounds_and_never_before_retry_after(
        config in config(),
        seed in any::<u64>(),
        retry_afters in retry_afters(),
    ) {
        let mut plain = Backoff::new(config);
        let mut told = Backoff::new(config);
        let mut plain_rng = SplitMix64::new(seed);
        let mut told_rng = SplitMix64::new(seed);
        let mut previous = None;
        for (n, retry_after) in (0u32..).zip(retry_afters) {
            let delay = plain.next_delay(&mut plain_rng, None);
            let waited = told.next_delay(&mut told_rng, retry_after.map(Nanos::from_nanos));
            if n >= config.max_retries() {
                prop_assert_eq!(delay, None);
                prop_assert_eq!(waited, None);
                continue;
            }
            let delay = delay.unwrap().as_nanos();
            let waited = waited.unwrap().as_nanos();
            let (low, high) = model_bounds(
                config.base().as_nanos(), config.cap().as_nanos(), config.jitter(), n, previous,
            );
            prop_assert!(low <= u128::from(delay) && u128::from(delay) <= high,
                "retry {}: {} outside [{}, {}]", n, delay, low, high);
            prop_assert!(delay <= config.cap().as_nanos());
            prop_assert_eq!(waited, delay.max(retry_after.unwrap_or(0)));
            prop_assert!(waited >= retry_after.unwrap_or(0));
            previous = Some(delay);
        }
    }

    /// Decorrelated jitter never leaves `[base, cap]`, however long it runs
    /// and however extreme base and cap are.
    #[test]
    fn decorrelated_jitter_stays_within_base_and_cap(
        base in prop_oneof![1u64..=1_000_000_000, any::<u64>().prop_map(|b| b.max(1))],
        cap_extra in prop_oneof![0u64..=1_000_000_000_000, any::<u64>()],
        seed in any::<u64>(),
    ) {
        let cap = base.saturating_add(cap_extra);
        let config = BackoffConfig::new(Nanos::from_nanos(base), Nanos::from_nanos(cap), 200, Jitter::Decorrelated).unwrap();
        let mut backoff = Backoff::new(config);
        let mut rng = SplitMix64::new(seed);
        let mut previous = base;
        while let Some(delay) = backoff.next_delay(&mut rng, None) {
            let delay = delay.as_nanos();
            prop_assert!(base <= delay && delay <= cap, "{} outside [{}, {}]", delay, base, cap);
            prop_assert!(u128::from(delay) <= u128::from(previous) * 3);
            previous = delay;
        }
        prop_assert_eq!(backoff.retries(), 200);
    }

    /// Any random value, any retry number: no panic, and within bounds.
    #[test]
    fn any_random_value_and_retry_number(
        config in config(),
        value in any::<u64>(),
        n in any::<u32>(),
        previous in any::<Option<u64>>(),
    ) {
        /// A source that always answers the same value.
        struct Fixed(u64);
        impl RandomSource for Fixed {
            fn next_u64(&mut self) -> u64 {
                self.0
            }
        }
        let delay = config.delay(n, previous.map(Nanos::from_nanos), &mut Fixed(value)).as_nanos();
        let (low, high) = model_bounds(config.base().as_nanos(), config.cap().as_nanos(), config.jitter(), n, previous);
        prop_assert!(low <= u128::from(delay) && u128::from(delay) <= high);
    }

    /// A retry decision never schedules a retry before the server's
    /// `Retry-After` or past the budget, retries only what is worth it and
    /// safe to repeat, stops after the retry limit, and counts attempts.
    #[test]
    fn retry_decisions_keep_every_rule(
        config in config(),
        budget in prop_oneof![0u64..=300_000_000_000, Just(u64::MAX)],
        method in prop::sample::select(METHODS),
        idempotency_key in any::<bool>(),
        any_method in any::<bool>(),
        start in 0u64..=1u64 << 62,
        seed in any::<u64>(),
        answers in prop::collection::vec((
            prop_oneof![
                4 => prop::sample::select(&[408u16, 425, 429, 500, 502, 503, 504][..]).prop_map(Outcome::Response),
                1 => (100u16..=599).prop_map(Outcome::Response),
                1 => prop::sample::select(&[Outcome::ConnectionRefused, Outcome::ConnectionReset, Outcome::Timeout, Outcome::OtherTransport][..]),
            ],
            prop::option::weighted(0.3, 0u64..=200_000_000_000),
            0u64..=5_000_000_000,
        ), 1..30),
    ) {
        let mut policy = RetryPolicy::new(config, Nanos::from_nanos(budget));
        if any_method {
            policy = policy.retrying_any_method();
        }
        let mut request = RequestKind::new(Method::parse(method));
        if idempotency_key {
            request = request.with_idempotency_key();
        }
        let start = Instant::from_nanos(start);
        let deadline = start + Nanos::from_nanos(budget);
        let mut retry = RetryState::new(policy, request, start);
        let mut rng = SplitMix64::new(seed);
        let mut now = start;
        let mut retries = 0u32;
        for (outcome, retry_after, late) in answers {
            now = now + Nanos::from_nanos(late);
            let attempts_before = retry.attempts();
            prop_assert_eq!(attempts_before, retries + 1);
            match retry.decide(outcome, retry_after.map(Nanos::from_nanos), now, &mut rng) {
                RetryDecision::Done => {
                    prop_assert!(outcome.is_success());
                    break;
                }
                RetryDecision::Retry { wait, at, retry: number } => {
                    retries += 1;
                    prop_assert!(outcome.is_retryable());
                    prop_assert!(outcome == Outcome::ConnectionRefused || request.may_repeat(&policy));
                    prop_assert!(retry_after.is_none_or(|ra| wait.as_nanos() >= ra));
                    prop_assert_eq!(at, now + wait);
                    prop_assert!(at <= deadline);
                    prop_assert!(retries <= config.max_retries());
                    prop_assert_eq!(number, retries);
                    now = at;
                }
                RetryDecision::GiveUp(give_up) => {
                    prop_assert!(!outcome.is_success());
                    prop_assert_eq!(give_up.outcome, outcome);
                    prop_assert_eq!(give_up.attempts, attempts_before);
                    if let Some(error) = give_up.error() {
                        prop_assert!(error.code().starts_with("RATE_LIMIT_"));
                        prop_assert_eq!(error.attempts(), attempts_before);
                    }
                    break;
                }
            }
        }
    }
}
