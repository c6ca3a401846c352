//! `BucketState::decide` and `Gcra::decide`, now one rule that takes the
//! pause into account as it goes, against their earlier forms, kept here
//! verbatim as the reference: `Gcra::decide` at the pause's end, its
//! decision then turned into spans from now and into a refusal by the
//! pause.
//!
//! The same cases are decided against the form the rule had before a
//! refusal and an admission came to share one division of their span by
//! the interval, kept verbatim too.
//!
//! Cases are drawn near the boundaries where the two forms could part: a
//! pause ending just before, at or after now; a wait equal to the pause
//! left, one more or one less; a TAT around the pause's end; costs of 0, 1,
//! the burst and one more; and values near the 584-year horizon.

use proptest::prelude::*;
use ratekeeper_core::{Acquire, Allowed, BucketState, Decision, DenialCause, Denied, Gcra, Instant, Nanos};

const CASES: u32 = 10_000;

/// `Gcra::decide` as it was, before the pause became part of it.
fn previous_gcra_decide(
    gcra: &Gcra,
    tat: Option<Instant>,
    now: Instant,
    cost: u32,
    max_wait: Nanos,
) -> Decision {
    if cost > gcra.burst() {
        return Decision::Impossible {
            cost,
            burst: gcra.burst(),
        };
    }
    let now_ns = now.as_nanos();
    let interval = gcra.emission_interval().as_nanos();
    let tolerance = gcra.tolerance().as_nanos();
    let base = match tat {
        Some(tat) => tat.as_nanos().max(now_ns),
        None => now_ns,
    };
    let ahead = base.wrapping_sub(now_ns);
    if cost == 0 {
        return Decision::Allowed(Allowed {
            tat: Instant::from_nanos(base),
            wait: Nanos::ZERO,
            remaining: units(tolerance.saturating_sub(ahead), interval),
            reset_after: Nanos::from_nanos(ahead),
        });
    }
    let cost_ns = interval.wrapping_mul(u64::from(cost));
    let conforming_at = base.saturating_sub(tolerance.wrapping_sub(cost_ns));
    let wait = conforming_at.saturating_sub(now_ns);
    let new_tat = match base.checked_add(cost_ns) {
        Some(new_tat) if wait <= max_wait.as_nanos() => new_tat,
        refused => {
            let retry_after = if refused.is_none() { u64::MAX } else { wait };
            return Decision::Denied(Denied {
                retry_after: Nanos::from_nanos(retry_after),
                remaining: units(tolerance.saturating_sub(ahead), interval),
                reset_after: Nanos::from_nanos(ahead),
                cause: DenialCause::Limit,
            });
        }
    };
    let ready = now_ns.wrapping_add(wait);
    Decision::Allowed(Allowed {
        tat: Instant::from_nanos(new_tat),
        wait: Nanos::from_nanos(wait),
        remaining: units(tolerance.saturating_sub(new_tat.wrapping_sub(ready)), interval),
        reset_after: Nanos::from_nanos(new_tat.wrapping_sub(now_ns)),
    })
}

fn units(credit: u64, interval: u64) -> u32 {
    u32::try_from(credit.checked_div(interval).unwrap_or(0)).unwrap_or(u32::MAX)
}

/// `BucketState::decide` as it was: the GCRA decided at the pause's end,
/// then adjusted.
fn previous_decide(state: &BucketState, request: &Acquire, now: Instant) -> (Decision, Option<BucketState>) {
    let (pause_left, at) = match state.paused_until {
        Some(until) if until > now => (until.saturating_duration_since(now), until),
        _ => (Nanos::ZERO, now),
    };
    let max_wait = request.max_wait.checked_sub(pause_left);
    let decision = previous_gcra_decide(
        &request.gcra,
        state.tat,
        at,
        request.cost,
        max_wait.unwrap_or(Nanos::ZERO),
    );
    let from_now = |span: Nanos| Nanos::from_nanos(span.as_nanos().wrapping_add(pause_left.as_nanos()));
    match decision {
        Decision::Allowed(mut allowed) if max_wait.is_some() => {
            allowed.wait = from_now(allowed.wait);
            allowed.reset_after = from_now(allowed.reset_after);
            let next = BucketState {
                tat: Some(allowed.tat),
                paused_until: state.paused_until,
            };
            (Decision::Allowed(allowed), Some(next))
        }
        Decision::Allowed(allowed) => {
            let denied = Denied {
                retry_after: from_now(allowed.wait),
                remaining: 0,
                reset_after: from_now(state.tat.map_or(Nanos::ZERO, |t| t.saturating_duration_since(at))),
                cause: DenialCause::Paused,
            };
            (Decision::Denied(denied), None)
        }
        Decision::Denied(mut denied) => {
            if !pause_left.is_zero() {
                denied.retry_after = denied.retry_after.saturating_add(pause_left);
                denied.reset_after = from_now(denied.reset_after);
                denied.remaining = 0;
                denied.cause = DenialCause::Paused;
            }
            (Decision::Denied(denied), None)
        }
        impossible @ Decision::Impossible { .. } => (impossible, None),
    }
}

/// `BucketState::decide` as it was before the refusal and the admission
/// shared one division: the rule of `Gcra::decide_paused` verbatim, on the
/// state's nanoseconds (`0` for `None`).
fn two_branch_decide(
    state: &BucketState,
    request: &Acquire,
    now: Instant,
) -> (Decision, Option<BucketState>) {
    let decision = two_branch_decide_paused(
        &request.gcra,
        state.tat.map_or(0, Instant::as_nanos),
        state.paused_until.map_or(0, Instant::as_nanos),
        now.as_nanos(),
        request.cost,
        request.max_wait.as_nanos(),
    );
    let next = match decision {
        Decision::Allowed(allowed) => Some(BucketState {
            tat: Some(allowed.tat),
            paused_until: state.paused_until,
        }),
        _ => None,
    };
    (decision, next)
}

fn two_branch_decide_paused(
    gcra: &Gcra,
    tat: u64,
    paused_until: u64,
    now: u64,
    cost: u32,
    max_wait: u64,
) -> Decision {
    if cost > gcra.burst() {
        return Decision::Impossible {
            cost,
            burst: gcra.burst(),
        };
    }
    let interval = gcra.emission_interval().as_nanos();
    let tolerance = gcra.tolerance().as_nanos();
    // `now ≤ at ≤ base ≤ new_tat`, and `at ≤ ready ≤ new_tat`, so every
    // difference of two of them is exact.
    let at = paused_until.max(now);
    let pause_left = at.wrapping_sub(now);
    // A TAT in the past is a full bucket; so is no TAT at all.
    let base = tat.max(at);
    // `cost ≤ B`, so `n·T ≤ T·B = τ`, which fits: exact.
    let cost_ns = interval.wrapping_mul(u64::from(cost));
    let ready = if cost == 0 {
        // A read goes at once (at the pause's end), changing nothing: a
        // reservation queue may have run the TAT far ahead; that is no
        // reason to refuse a question.
        at
    } else {
        // The earliest instant at which `new_tat − t ≤ τ` holds:
        // `base + n·T − τ = base − (τ − n·T)`, never below zero; or the
        // pause's end, if later.
        base.saturating_sub(tolerance.wrapping_sub(cost_ns)).max(at)
    };
    let wait = ready.wrapping_sub(now);
    // Beyond the horizon (584 years) the TAT cannot be stored.
    let new_tat = base.checked_add(cost_ns);
    let admitted = new_tat.filter(|_| wait <= max_wait);
    // What is left: after the request, from when it goes; or, refused,
    // at `at`.
    let ahead = match admitted {
        Some(new_tat) => new_tat.wrapping_sub(ready),
        None => base.wrapping_sub(at),
    };
    let remaining = units(tolerance.saturating_sub(ahead), interval);
    match admitted {
        Some(new_tat) => Decision::Allowed(Allowed {
            tat: Instant::from_nanos(new_tat),
            wait: Nanos::from_nanos(wait),
            remaining,
            reset_after: Nanos::from_nanos(new_tat.wrapping_sub(now)),
        }),
        None => {
            // Past the horizon the bucket counts as exhausted for good,
            // and "retry after" says never, so no caller spins on a
            // refusal that waiting cannot lift.
            let retry_after = Nanos::from_nanos(if new_tat.is_none() { u64::MAX } else { wait });
            let reset_after = Nanos::from_nanos(base.wrapping_sub(now));
            Decision::Denied(if pause_left == 0 {
                Denied {
                    retry_after,
                    remaining,
                    reset_after,
                    cause: DenialCause::Limit,
                }
            } else {
                // Nothing is available before the pause ends.
                Denied {
                    retry_after,
                    remaining: 0,
                    reset_after,
                    cause: DenialCause::Paused,
                }
            })
        }
    }
}

/// A `u64` that is often an edge: 0, 1, small, around 2^32, near the top.
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        0u64..10_000,
        0u64..10_000_000_000,
        (u64::MAX - 10_000_000_000)..=u64::MAX,
        any::<u64>(),
    ]
}

/// A valid GCRA, often at its limits.
fn gcra() -> impl Strategy<Value = Gcra> {
    (
        edgy_u64(),
        prop_oneof![Just(1u32), Just(2u32), 1u32..16, Just(u32::MAX), any::<u32>()],
    )
        .prop_map(|(interval, burst)| {
            let burst = burst.max(1);
            let interval = interval.clamp(1, u64::MAX / u64::from(burst));
            Gcra::new(Nanos::from_nanos(interval), burst).unwrap_or(Gcra::SLOWEST)
        })
}

/// `anchor` moved by a few intervals or nanoseconds either way, or
/// anywhere at all.
fn around(anchor: u64, interval: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        (0u64..4, 0u64..3, any::<bool>()).prop_map(move |(k, ns, later)| {
            let step = interval.saturating_mul(k).saturating_add(ns);
            if later {
                anchor.saturating_add(step)
            } else {
                anchor.saturating_sub(step)
            }
        }),
        edgy_u64(),
    ]
}

fn case() -> impl Strategy<Value = (BucketState, Acquire, Instant)> {
    (gcra(), edgy_u64()).prop_flat_map(|(gcra, now)| {
        let interval = gcra.emission_interval().as_nanos();
        let burst = gcra.burst();
        (
            proptest::option::of(around(now, interval)),
            proptest::option::of(around(now, interval)),
            prop_oneof![
                Just(0u32),
                Just(1u32),
                Just(burst),
                Just(burst.saturating_add(1)),
                0..=burst
            ],
            around(0, interval),
        )
            .prop_flat_map(move |(tat, paused_until, cost, max_wait)| {
                // The wait often right at the pause left, or the TAT right at
                // the pause's end.
                let pause_left = paused_until.map_or(0, |until| until.saturating_sub(now));
                let max_wait = prop_oneof![
                    Just(max_wait),
                    around(pause_left, interval),
                    (0u64..3).prop_map(move |ns| pause_left.saturating_add(ns).saturating_sub(1)),
                ];
                let tat = match paused_until {
                    Some(until) => prop_oneof![Just(tat), around(until, interval).prop_map(Some)].boxed(),
                    None => Just(tat).boxed(),
                };
                (tat, Just(paused_until), Just(cost), max_wait)
            })
            .prop_map(move |(tat, paused_until, cost, max_wait)| {
                let state = BucketState {
                    tat: tat.map(Instant::from_nanos),
                    paused_until: paused_until.map(Instant::from_nanos),
                };
                let request = Acquire::reserve(gcra, Nanos::from_nanos(max_wait)).with_cost(cost);
                (state, request, Instant::from_nanos(now))
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The one rule decides every case exactly as the earlier two steps,
    /// and stores the same next state.
    #[test]
    fn bucket_decide_is_identical_to_the_previous_form((state, request, now) in case()) {
        prop_assert_eq!(state.decide(&request, now), previous_decide(&state, &request, now));
    }

    /// Admission and refusal sharing one division decide every case
    /// exactly as the two branches did.
    #[test]
    fn bucket_decide_is_identical_to_the_two_branch_form((state, request, now) in case()) {
        prop_assert_eq!(state.decide(&request, now), two_branch_decide(&state, &request, now));
    }

    /// Without a pause, `Gcra::decide` is the rule it always was.
    #[test]
    fn gcra_decide_is_identical_to_the_previous_form((state, request, now) in case()) {
        prop_assert_eq!(
            request.gcra.decide(state.tat, now, request.cost, request.max_wait),
            previous_gcra_decide(&request.gcra, state.tat, now, request.cost, request.max_wait)
        );
    }
}
