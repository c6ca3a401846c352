//! Backoff delays and retry decisions against their earlier forms, kept
//! here as models: the same configuration and the same random stream must
//! give the same delay, decision for decision, and draw the same number
//! of random values.

use proptest::prelude::*;
use ratekeeper_core::{
    Backoff, BackoffConfig, GiveUp, GiveUpReason, Instant, Jitter, Method, Nanos, Outcome, RandomSource,
    RequestKind, RetryDecision, RetryPolicy, RetryState, SplitMix64,
};

/// The earlier `uniform`: the product in `u128`.
fn model_uniform(rng: &mut impl RandomSource, low: Nanos, high: Nanos) -> Nanos {
    let draw = u128::from(rng.next_u64());
    let scaled = draw
        .wrapping_mul(u128::from(high.saturating_sub(low).as_nanos()))
        .wrapping_add(draw)
        >> 64;
    low.saturating_add(Nanos::from_nanos(u64::try_from(scaled).unwrap_or(u64::MAX)))
}

/// The earlier `proportion`: saturating operations throughout.
fn model_proportion(value: Nanos, bp: u16) -> Nanos {
    const BASIS_POINTS: u64 = 10_000;
    let value = value.as_nanos();
    let bp = u64::from(bp);
    let whole = (value / BASIS_POINTS).saturating_mul(bp);
    let rest = (value % BASIS_POINTS).saturating_mul(bp) / BASIS_POINTS;
    Nanos::from_nanos(whole.saturating_add(rest))
}

/// The earlier `BackoffConfig::delay`: a uniform draw per jitter.
fn model_delay(
    config: &BackoffConfig,
    retry: u32,
    previous: Option<Nanos>,
    rng: &mut impl RandomSource,
) -> Nanos {
    let window = |step: Nanos, spread: Nanos, rng: &mut dyn RandomSource| {
        let high = step.saturating_add(spread).min(config.cap());
        model_uniform(&mut &mut *rng, high.saturating_sub(spread), high)
    };
    let step = config.step(retry);
    let capped = step.min(config.cap());
    match config.jitter() {
        Jitter::None => capped,
        Jitter::Full => model_uniform(rng, Nanos::ZERO, capped),
        Jitter::Equal => model_uniform(
            rng,
            capped.saturating_sub(capped.checked_div_floor(2).unwrap_or(Nanos::ZERO)),
            capped,
        ),
        Jitter::Decorrelated => {
            let previous = previous.unwrap_or(config.base()).max(config.base());
            let high = previous.saturating_mul(3).min(config.cap());
            model_uniform(rng, config.base(), high)
        }
        Jitter::Additive(spread) => window(step, spread, rng),
        Jitter::Proportional(bp) => window(capped, model_proportion(capped, bp), rng),
    }
}

/// The earlier `Backoff`.
struct ModelBackoff {
    config: BackoffConfig,
    retries: u32,
    previous: Option<Nanos>,
}

impl ModelBackoff {
    fn next_delay(&mut self, rng: &mut impl RandomSource, retry_after: Option<Nanos>) -> Option<Nanos> {
        if self.retries >= self.config.max_retries() {
            return None;
        }
        let delay = model_delay(&self.config, self.retries, self.previous, rng);
        self.previous = Some(delay);
        self.retries = self.retries.saturating_add(1);
        Some(match retry_after {
            Some(server) => delay.max(server),
            None => delay,
        })
    }
}

/// The earlier `RetryState`: the policy and request kept whole.
struct ModelRetry {
    policy: RetryPolicy,
    request: RequestKind,
    started_at: Instant,
    backoff: ModelBackoff,
}

impl ModelRetry {
    fn decide(
        &mut self,
        outcome: Outcome,
        retry_after: Option<Nanos>,
        now: Instant,
        rng: &mut impl RandomSource,
    ) -> RetryDecision {
        if outcome.is_success() {
            return RetryDecision::Done;
        }
        let give_up = |reason, attempts, retry_after| {
            RetryDecision::GiveUp(GiveUp {
                reason,
                outcome,
                attempts,
                retry_after,
            })
        };
        let attempts = self.backoff.retries.saturating_add(1);
        if !outcome.is_retryable() {
            return give_up(GiveUpReason::NotRetryable, attempts, retry_after);
        }
        if !outcome.was_never_sent() && !self.request.may_repeat(&self.policy) {
            return give_up(GiveUpReason::NotRepeatable, attempts, retry_after);
        }
        let Some(wait) = self.backoff.next_delay(rng, retry_after) else {
            return give_up(GiveUpReason::AttemptsExhausted, attempts, retry_after);
        };
        match now.checked_add(wait) {
            Some(at) if at <= self.started_at.saturating_add(self.policy.budget()) => RetryDecision::Retry {
                wait,
                at,
                retry: self.backoff.retries,
            },
            _ => give_up(GiveUpReason::BudgetExhausted, attempts, Some(wait)),
        }
    }
}

fn span() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..=10_000_000_000,
        1 => any::<u64>(),
        1 => prop_oneof![Just(0u64), Just(1u64), Just(u64::MAX), Just(u64::MAX - 1), Just(1u64 << 63)],
    ]
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
        span().prop_map(|j| Jitter::Additive(Nanos::from_nanos(j))),
        prop_oneof![0u16..=10_000, Just(0u16), Just(10_000u16)].prop_map(Jitter::Proportional),
    ]
}

fn config() -> impl Strategy<Value = BackoffConfig> {
    (span(), span(), 0u32..=70, jitter()).prop_filter_map(
        "a valid backoff",
        |(base, extra, retries, jitter)| {
            let base = base.max(1);
            BackoffConfig::new(
                Nanos::from_nanos(base),
                Nanos::from_nanos(base.saturating_add(extra)),
                retries,
                jitter,
            )
            .ok()
        },
    )
}

const METHODS: &[&[u8]] = &[b"GET", b"PUT", b"POST", b"PATCH"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn delays_are_the_earlier_forms(
        config in config(),
        seed in any::<u64>(),
        retry_afters in prop::collection::vec(prop::option::weighted(0.3, span()), 1..80),
    ) {
        let mut backoff = Backoff::new(config);
        let mut model = ModelBackoff { config, retries: 0, previous: None };
        let (mut rng, mut model_rng) = (SplitMix64::new(seed), SplitMix64::new(seed));
        for retry_after in retry_afters {
            let retry_after = retry_after.map(Nanos::from_nanos);
            prop_assert_eq!(backoff.next_delay(&mut rng, retry_after), model.next_delay(&mut model_rng, retry_after));
            prop_assert_eq!(&rng, &model_rng);
        }
    }

    #[test]
    fn any_single_delay_is_the_earlier_form(
        config in config(),
        retry in prop_oneof![0u32..=70, any::<u32>()],
        previous in prop::option::of(span()),
        draw in span(),
    ) {
        struct Fixed(u64);
        impl RandomSource for Fixed {
            fn next_u64(&mut self) -> u64 {
                self.0
            }
        }
        let previous = previous.map(Nanos::from_nanos);
        prop_assert_eq!(
            config.delay(retry, previous, &mut Fixed(draw)),
            model_delay(&config, retry, previous, &mut Fixed(draw))
        );
    }

    #[test]
    fn retry_decisions_are_the_earlier_forms(
        config in config(),
        budget in span(),
        method in prop::sample::select(METHODS),
        idempotency_key in any::<bool>(),
        any_method in any::<bool>(),
        start in span(),
        seed in any::<u64>(),
        answers in prop::collection::vec((
            prop_oneof![
                3 => prop::sample::select(&[408u16, 429, 500, 503, 200][..]).prop_map(Outcome::Response),
                1 => (100u16..=599).prop_map(Outcome::Response),
                1 => prop::sample::select(&[Outcome::ConnectionRefused, Outcome::ConnectionReset, Outcome::Timeout, Outcome::OtherTransport][..]),
            ],
            prop::option::weighted(0.3, span()),
            span(),
        ), 1..40),
    ) {
        let mut policy = RetryPolicy::new(config, Nanos::from_nanos(budget));
        if any_method {
            policy = policy.retrying_any_method();
        }
        let mut request = RequestKind::new(Method::parse(method));
        if idempotency_key {
            request = request.with_idempotency_key();
        }
        let started_at = Instant::from_nanos(start);
        let mut retry = RetryState::new(policy, request, started_at);
        let mut model = ModelRetry {
            policy,
            request,
            started_at,
            backoff: ModelBackoff { config, retries: 0, previous: None },
        };
        prop_assert_eq!(retry.deadline(), started_at.saturating_add(policy.budget()));
        let (mut rng, mut model_rng) = (SplitMix64::new(seed), SplitMix64::new(seed));
        let mut now = started_at;
        for (outcome, retry_after, late) in answers {
            now = now.saturating_add(Nanos::from_nanos(late));
            prop_assert_eq!(retry.attempts(), model.backoff.retries.saturating_add(1));
            let retry_after = retry_after.map(Nanos::from_nanos);
            prop_assert_eq!(
                retry.decide(outcome, retry_after, now, &mut rng),
                model.decide(outcome, retry_after, now, &mut model_rng)
            );
            prop_assert_eq!(&rng, &model_rng);
        }
    }
}
