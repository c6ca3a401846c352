//! `Gcra::decide`, `Gcra::available` and `Policy::to_gcra` against the
//! earlier `u128` implementations, kept here verbatim as the reference.
//!
//! The library computes in `u64` (every quantity fits by construction);
//! these properties show that the change is bit-identical on every output
//! field, with extreme values (0, 1, the horizon, one past a boundary)
//! drawn often so the edges are covered, not just the middle.

use proptest::prelude::*;
use ratekeeper_core::{
    Allowed, Decision, DenialCause, Denied, Gcra, Instant, Nanos, Policy, PolicyConfig, PolicySource,
    SafetyMargin,
};

const CASES: u32 = 10_000;

/// The `u128` reference: `Gcra::decide` as it was.
fn reference_decide(gcra: &Gcra, tat: Option<Instant>, now: Instant, cost: u32, max_wait: Nanos) -> Decision {
    if cost > gcra.burst() {
        return Decision::Impossible {
            cost,
            burst: gcra.burst(),
        };
    }
    let now_ns = u128::from(now.as_nanos());
    let interval = u128::from(gcra.emission_interval().as_nanos());
    let tolerance = u128::from(gcra.tolerance().as_nanos());
    let base = match tat {
        Some(tat) => u128::from(tat.as_nanos()).max(now_ns),
        None => now_ns,
    };
    if cost == 0 {
        let in_bucket = units(now_ns.saturating_add(tolerance).saturating_sub(base), interval);
        return Decision::Allowed(Allowed {
            tat: Instant::from_nanos(saturate(base).as_nanos()),
            wait: Nanos::ZERO,
            remaining: saturate_u32(in_bucket),
            reset_after: saturate(base.saturating_sub(now_ns)),
        });
    }
    let new_tat = base.saturating_add(interval.saturating_mul(u128::from(cost)));
    let conforming_at = new_tat.saturating_sub(tolerance);
    let wait = conforming_at.saturating_sub(now_ns);
    let beyond_horizon = new_tat > u128::from(u64::MAX);
    if wait > u128::from(max_wait.as_nanos()) || beyond_horizon {
        let in_bucket = units(now_ns.saturating_add(tolerance).saturating_sub(base), interval);
        return Decision::Denied(Denied {
            // Beyond the horizon a refusal says "never".
            retry_after: if beyond_horizon {
                Nanos::MAX
            } else {
                saturate(wait)
            },
            remaining: saturate_u32(in_bucket),
            reset_after: saturate(base.saturating_sub(now_ns)),
            cause: DenialCause::Limit,
        });
    }
    let ready = now_ns.saturating_add(wait);
    let remaining = units(ready.saturating_add(tolerance).saturating_sub(new_tat), interval);
    Decision::Allowed(Allowed {
        tat: Instant::from_nanos(saturate(new_tat).as_nanos()),
        wait: saturate(wait),
        remaining: saturate_u32(remaining),
        reset_after: saturate(new_tat.saturating_sub(now_ns)),
    })
}

/// The `u128` reference: `Gcra::available` as it was.
fn reference_available(gcra: &Gcra, tat: Option<Instant>, now: Instant) -> u32 {
    let now_ns = u128::from(now.as_nanos());
    let base = tat.map_or(now_ns, |t| u128::from(t.as_nanos()).max(now_ns));
    let credit = now_ns
        .saturating_add(u128::from(gcra.tolerance().as_nanos()))
        .saturating_sub(base);
    saturate_u32(units(credit, u128::from(gcra.emission_interval().as_nanos())))
}

/// The `u128` reference: `Policy::to_gcra` as it was (basis points of 10⁴).
fn reference_to_gcra(limit: u32, window: Nanos, margin_bp: u16, burst: u32) -> Gcra {
    let burst = burst.min(limit);
    let intervals = u128::from(limit.saturating_sub(burst)).saturating_add(1);
    let usable_bp = u128::from(10_000u16.saturating_sub(margin_bp));
    let numerator = u128::from(window.as_nanos()).saturating_mul(10_000);
    let denominator = intervals.saturating_mul(usable_bp).max(1);
    let interval = numerator.div_ceil(denominator).max(1);
    // Past the horizon the burst gives way, never the interval.
    let interval = u64::try_from(interval).unwrap_or(u64::MAX);
    let burst = u32::try_from(u64::MAX / interval)
        .unwrap_or(u32::MAX)
        .clamp(1, burst);
    Gcra::new(Nanos::from_nanos(interval), burst).unwrap_or(Gcra::SLOWEST)
}

fn units(credit: u128, interval: u128) -> u128 {
    credit.checked_div(interval).unwrap_or(0)
}

fn saturate(value: u128) -> Nanos {
    Nanos::from_nanos(u64::try_from(value).unwrap_or(u64::MAX))
}

fn saturate_u32(value: u128) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// A `u64` that is often an edge: 0, 1, small, around 2^32, near the top.
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(u64::from(u32::MAX)),
        Just(u64::from(u32::MAX) + 1),
        0u64..10_000,
        0u64..10_000_000_000,
        (u64::MAX - 10_000_000_000)..=u64::MAX,
        any::<u64>(),
    ]
}

fn edgy_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1u32),
        Just(2u32),
        Just(u32::MAX),
        Just(u32::MAX - 1),
        0u32..64,
        any::<u32>(),
    ]
}

/// A valid GCRA, often at its limits: `T = 1 ns`, `B = u32::MAX`, `T·B`
/// just under the horizon.
fn gcra() -> impl Strategy<Value = Gcra> {
    (edgy_u64(), edgy_u32()).prop_map(|(interval, burst)| {
        let burst = burst.max(1);
        // Clamp `T` so that `T·B` fits; keep `T ≥ 1`.
        let interval = interval.clamp(1, u64::MAX / u64::from(burst));
        Gcra::new(Nanos::from_nanos(interval), burst).unwrap()
    })
}

/// A stored TAT near `now` (within a few intervals either way) or anywhere.
fn tat_near(gcra: Gcra, now: u64) -> impl Strategy<Value = Option<Instant>> {
    let interval = gcra.emission_interval().as_nanos();
    prop_oneof![
        Just(None),
        edgy_u64().prop_map(|t| Some(Instant::from_nanos(t))),
        (0u64..8, any::<bool>()).prop_map(move |(k, later)| {
            let step = interval.saturating_mul(k);
            let t = if later {
                now.saturating_add(step)
            } else {
                now.saturating_sub(step)
            };
            Some(Instant::from_nanos(t))
        }),
        (0u32..=gcra.burst().min(1 << 20)).prop_map(move |k| {
            // Exactly `k` units below full: the boundary of every cost.
            let ahead = interval.saturating_mul(u64::from(k));
            Some(Instant::from_nanos(now.saturating_add(ahead)))
        }),
    ]
}

fn cost_for(gcra: Gcra) -> impl Strategy<Value = u32> {
    let burst = gcra.burst();
    prop_oneof![
        Just(0u32),
        Just(1u32),
        Just(burst),
        Just(burst.saturating_add(1)),
        0..=burst,
        edgy_u32(),
    ]
}

fn case() -> impl Strategy<Value = (Gcra, Option<Instant>, Instant, u32, Nanos)> {
    (gcra(), edgy_u64()).prop_flat_map(|(gcra, now)| {
        (
            Just(gcra),
            tat_near(gcra, now),
            Just(Instant::from_nanos(now)),
            cost_for(gcra),
            edgy_u64().prop_map(Nanos::from_nanos),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn decide_is_bit_identical_to_the_u128_reference((gcra, tat, now, cost, max_wait) in case()) {
        prop_assert_eq!(
            gcra.decide(tat, now, cost, max_wait),
            reference_decide(&gcra, tat, now, cost, max_wait)
        );
    }

    #[test]
    fn available_is_bit_identical_to_the_u128_reference((gcra, tat, now, _cost, _wait) in case()) {
        prop_assert_eq!(gcra.available(tat, now), reference_available(&gcra, tat, now));
    }

    #[test]
    fn policy_conversion_is_bit_identical_to_the_u128_reference(
        limit in edgy_u32(),
        window in edgy_u64(),
        margin_bp in prop_oneof![Just(0u16), Just(300u16), Just(9_900u16), 0u16..=9_900],
        burst in edgy_u32(),
    ) {
        let limit = limit.max(1);
        let window = Nanos::from_nanos(window.max(1));
        let burst = burst.max(1);
        let policy = Policy::new(limit, window, PolicySource::Configured, Instant::ZERO).unwrap();
        let margin = SafetyMargin::from_basis_points(margin_bp).unwrap();
        let config = PolicyConfig::new(margin, burst, 1, Nanos::from_secs(1)).unwrap();
        prop_assert_eq!(policy.to_gcra(&config), reference_to_gcra(limit, window, margin_bp, burst));
    }
}
