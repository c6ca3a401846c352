//! GCRA against a reference model, over any sequence of requests and clock
//! steps.
//!
//! The model is a token bucket kept in exact `u128` arithmetic: `credit`
//! nanoseconds of budget, capped at `τ = T·B`, refilled one nanosecond per
//! nanosecond, and a request of cost `n` needs `n·T` of credit. It shares no
//! code with `Gcra`, so agreement on every decision is evidence for both.

use proptest::prelude::*;
use ratekeeper_core::{
    Acquire, BucketState, Decision, Gcra, Instant, Nanos, Policy, PolicyConfig, PolicySource, SafetyMargin,
};

const CASES: u32 = 10_000;

/// The independent model: a token bucket measured in nanoseconds of credit.
#[derive(Debug, Clone)]
struct TokenBucket {
    interval: u128,
    capacity: u128,
    credit: u128,
    last: u128,
}

impl TokenBucket {
    fn new(interval: u64, burst: u32, start: u64) -> TokenBucket {
        let capacity = u128::from(interval) * u128::from(burst);
        TokenBucket {
            interval: u128::from(interval),
            capacity,
            credit: capacity,
            last: u128::from(start),
        }
    }

    fn refill(&mut self, now: u128) {
        if now > self.last {
            self.credit = (self.credit + (now - self.last)).min(self.capacity);
            self.last = now;
        }
    }

    /// `Ok(remaining)` or `Err(retry_after)` for a check at `now`.
    fn check(&mut self, now: u64, cost: u32) -> Result<u128, u128> {
        self.refill(u128::from(now));
        let need = self.interval * u128::from(cost);
        if self.credit >= need {
            self.credit -= need;
            Ok(self.credit / self.interval)
        } else {
            Err(need - self.credit)
        }
    }
}

#[derive(Debug, Clone)]
struct Step {
    advance: u64,
    cost: u32,
}

fn params() -> impl Strategy<Value = (u64, u32)> {
    // Intervals from 1 ns to 10 s, bursts from 1 to 50: small enough that
    // sequences hit both the burst and the steady state.
    (1u64..=10_000_000_000, 1u32..=50)
}

fn steps(interval: u64) -> impl Strategy<Value = Vec<Step>> {
    let advance = prop_oneof![
        3 => Just(0u64),
        3 => 0..=interval.saturating_mul(2),
        1 => 0..=interval.saturating_mul(60),
    ];
    prop::collection::vec(
        (advance, 0u32..=60).prop_map(|(advance, cost)| Step { advance, cost }),
        1..80,
    )
}

fn scenario() -> impl Strategy<Value = (u64, u32, u64, Vec<Step>)> {
    params()
        .prop_flat_map(|(interval, burst)| (Just(interval), Just(burst), 0u64..=1u64 << 62, steps(interval)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Every check decides exactly as the token bucket does: a request that
    /// fits is never denied, one that does not is never admitted, and the
    /// remaining count and retry-after agree to the nanosecond.
    #[test]
    fn check_agrees_with_the_token_bucket_model((interval, burst, start, steps) in scenario()) {
        let gcra = Gcra::new(Nanos::from_nanos(interval), burst).unwrap();
        let mut model = TokenBucket::new(interval, burst, start);
        let mut tat = None;
        let mut now = start;
        for step in steps {
            now += step.advance;
            let decision = gcra.decide(tat, Instant::from_nanos(now), step.cost, Nanos::ZERO);
            if step.cost > burst {
                prop_assert_eq!(decision, Decision::Impossible { cost: step.cost, burst });
                continue;
            }
            match (decision, model.check(now, step.cost)) {
                (Decision::Allowed(a), Ok(remaining)) => {
                    prop_assert_eq!(u128::from(a.remaining), remaining);
                    prop_assert_eq!(a.wait, Nanos::ZERO);
                    tat = Some(a.tat);
                }
                (Decision::Denied(d), Err(retry_after)) => {
                    prop_assert_eq!(u128::from(d.retry_after.as_nanos()), retry_after);
                }
                (decision, model) => prop_assert!(false, "gcra {:?} but model {:?}", decision, model),
            }
        }
    }

    /// In every interval between two admissions the admitted cost is at
    /// most what rate and burst allow: `cost·T ≤ (t_j − t_i) + τ`.
    #[test]
    fn admitted_cost_never_exceeds_rate_and_burst((interval, burst, start, steps) in scenario()) {
        let gcra = Gcra::new(Nanos::from_nanos(interval), burst).unwrap();
        let mut tat = None;
        let mut now = start;
        let mut admitted: Vec<(u64, u32)> = Vec::new();
        for step in steps {
            now += step.advance;
            if let Decision::Allowed(a) = gcra.decide(tat, Instant::from_nanos(now), step.cost, Nanos::ZERO) {
                tat = Some(a.tat);
                admitted.push((now, step.cost));
            }
        }
        let tolerance = u128::from(interval) * u128::from(burst);
        for i in 0..admitted.len() {
            let mut total = 0u128;
            for &(t, cost) in &admitted[i..] {
                total += u128::from(cost);
                let span = u128::from(t - admitted[i].0);
                prop_assert!(total * u128::from(interval) <= span + tolerance,
                    "{} admitted within {} ns", total, span);
            }
        }
    }

    /// A denied request is admitted exactly `retry_after` later and not a
    /// nanosecond sooner.
    #[test]
    fn retry_after_is_exact((interval, burst, start, steps) in scenario()) {
        let gcra = Gcra::new(Nanos::from_nanos(interval), burst).unwrap();
        let mut tat = None;
        let mut now = start;
        for step in steps {
            now += step.advance;
            match gcra.decide(tat, Instant::from_nanos(now), step.cost, Nanos::ZERO) {
                Decision::Allowed(a) => tat = Some(a.tat),
                Decision::Denied(d) => {
                    let at = Instant::from_nanos(now) + d.retry_after;
                    prop_assert!(gcra.decide(tat, at, step.cost, Nanos::ZERO).is_allowed());
                    let before = at - Nanos::from_nanos(1);
                    prop_assert!(!gcra.decide(tat, before, step.cost, Nanos::ZERO).is_allowed());
                }
                Decision::Impossible { .. } => prop_assert!(step.cost > burst),
            }
        }
    }

    /// Reserve agrees with check: a reservation that waits `w` stores the
    /// same TAT as a check made at `now + w`, and one refused for waiting
    /// too long is refused with the same retry-after a check gives.
    #[test]
    fn reserve_agrees_with_check(
        (interval, burst, start, steps) in scenario(),
        max_waits in prop::collection::vec(0u64..=20_000_000_000, 80),
    ) {
        let gcra = Gcra::new(Nanos::from_nanos(interval), burst).unwrap();
        let mut tat = None;
        let mut now = start;
        for (step, max_wait) in steps.iter().zip(max_waits) {
            now += step.advance;
            let instant = Instant::from_nanos(now);
            let reserved = gcra.decide(tat, instant, step.cost, Nanos::from_nanos(max_wait));
            let checked_now = gcra.decide(tat, instant, step.cost, Nanos::ZERO);
            match reserved {
                Decision::Allowed(a) => {
                    prop_assert!(a.wait <= Nanos::from_nanos(max_wait));
                    let checked = gcra.decide(tat, instant + a.wait, step.cost, Nanos::ZERO);
                    prop_assert_eq!(checked.allowed().map(|c| c.tat), Some(a.tat));
                    match checked_now {
                        Decision::Allowed(c) => prop_assert_eq!(c, a),
                        Decision::Denied(d) => prop_assert_eq!(d.retry_after, a.wait),
                        Decision::Impossible { .. } => prop_assert!(false, "reserve admitted the impossible"),
                    }
                    tat = Some(a.tat);
                }
                Decision::Denied(d) => {
                    prop_assert!(d.retry_after > Nanos::from_nanos(max_wait));
                    prop_assert_eq!(checked_now.denied().map(|c| c.retry_after), Some(d.retry_after));
                }
                Decision::Impossible { .. } => prop_assert_eq!(checked_now, reserved),
            }
        }
    }

    /// The same properties hold through `BucketState::decide` with pauses:
    /// nothing is admitted to be sent before a pause ends.
    #[test]
    fn nothing_is_sent_during_a_pause(
        (interval, burst, start, steps) in scenario(),
        pauses in prop::collection::vec(prop::option::weighted(0.2, 0u64..=30_000_000_000), 80),
        max_wait in 0u64..=60_000_000_000,
    ) {
        let gcra = Gcra::new(Nanos::from_nanos(interval), burst).unwrap();
        let mut state = BucketState::EMPTY;
        let mut now = Instant::from_nanos(start);
        for (step, pause) in steps.iter().zip(pauses) {
            now = now + Nanos::from_nanos(step.advance);
            if let Some(pause) = pause {
                state = state.paused_for(now, Nanos::from_nanos(pause));
            }
            let request = Acquire::reserve(gcra, Nanos::from_nanos(max_wait)).with_cost(step.cost);
            let (decision, next) = state.decide(&request, now);
            match decision {
                Decision::Allowed(a) => {
                    let send_at = now + a.wait;
                    prop_assert!(state.paused_until.is_none_or(|until| send_at >= until));
                    prop_assert!(a.wait <= Nanos::from_nanos(max_wait));
                    state = next.unwrap();
                }
                Decision::Denied(d) => {
                    prop_assert!(next.is_none());
                    prop_assert!(d.retry_after > Nanos::from_nanos(max_wait));
                }
                Decision::Impossible { .. } => prop_assert!(step.cost > burst),
            }
        }
    }

    /// No input panics, however extreme.
    #[test]
    fn any_input_is_decided_without_panic(
        interval in 1u64..,
        burst in 1u32..,
        tat in any::<Option<u64>>(),
        now in any::<u64>(),
        cost in any::<u32>(),
        max_wait in any::<u64>(),
    ) {
        if let Ok(gcra) = Gcra::new(Nanos::from_nanos(interval), burst) {
            let decision = gcra.decide(tat.map(Instant::from_nanos), Instant::from_nanos(now), cost, Nanos::from_nanos(max_wait));
            if let Decision::Allowed(a) = decision {
                prop_assert!(a.wait <= Nanos::from_nanos(max_wait));
                prop_assert!(a.tat >= Instant::from_nanos(now));
            }
        }
    }

    /// A policy's GCRA never lets more than `limit` requests into any
    /// half-open window of the policy's length, whatever the margin and
    /// burst; and the margin leaves no more than it says unused.
    #[test]
    fn policy_conversion_respects_the_limit_and_the_margin(
        limit in 1u32..=500,
        window_ms in 1u64..=3_600_000,
        margin_bp in 0u16..=9_900,
        burst in 1u32..=600,
    ) {
        let window = Nanos::from_millis(window_ms);
        let policy = Policy::new(limit, window, PolicySource::Header, Instant::ZERO).unwrap();
        let config = PolicyConfig::new(SafetyMargin::from_basis_points(margin_bp).unwrap(), burst, 1, Nanos::from_secs(1)).unwrap();
        let gcra = policy.to_gcra(&config);
        let b = u128::from(gcra.burst());
        let t = u128::from(gcra.emission_interval().as_nanos());
        let w = u128::from(window.as_nanos());
        prop_assert_eq!(gcra.burst(), burst.min(limit));
        // The most a GCRA admits in a half-open window of length W is
        // B + ⌈W/T⌉ − 1: at most `limit`.
        prop_assert!(b + w.div_ceil(t) - 1 <= u128::from(limit));
        // The sustained rate, (limit − B + 1) per T·(limit − B + 1), is the
        // usable share of the limit, rounded down by at most 1 ns per T.
        let intervals = u128::from(limit) - b + 1;
        let usable = 10_000 - u128::from(margin_bp);
        prop_assert!(intervals * t * usable >= w * 10_000);
        prop_assert!(intervals * (t - 1) * usable < w * 10_000);
    }

    /// The guarantee above, checked by brute force: a greedy client that
    /// sends whenever allowed never puts more than `limit` requests into any
    /// window of length W.
    #[test]
    fn greedy_client_stays_within_every_window(
        limit in 1u32..=40,
        window_ms in 1u64..=10_000,
        burst in 1u32..=40,
        gaps in prop::collection::vec(0u64..=400_000_000, 1..200),
    ) {
        let window = Nanos::from_millis(window_ms);
        let policy = Policy::new(limit, window, PolicySource::Header, Instant::ZERO).unwrap();
        let config = PolicyConfig::new(SafetyMargin::NONE, burst, 1, Nanos::from_secs(1)).unwrap();
        let gcra = policy.to_gcra(&config);
        let mut tat = None;
        let mut now = Instant::ZERO;
        let mut sent = Vec::new();
        for gap in gaps {
            now = now + Nanos::from_nanos(gap);
            while let Decision::Allowed(a) = gcra.decide(tat, now, 1, Nanos::ZERO) {
                tat = Some(a.tat);
                sent.push(now);
            }
        }
        for (i, &first) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().take_while(|&&t| t < first + window).count();
            prop_assert!(in_window <= limit as usize, "{} requests in one window of {:?}", in_window, window);
        }
    }
}
