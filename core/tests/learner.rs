//! The learner, with the manual clock: what it learns from each family of
//! statements, how it reacts to 429s with and without headers, and (as
//! properties over arbitrary response sequences) the rules it never breaks.

use proptest::prelude::*;
use ratekeeper_core::learn::{LearnEvent, Learner, LearnerConfig, Observation, StatedQuota};
use ratekeeper_core::{Instant, Nanos, Policy, PolicySource};

fn secs(s: u64) -> Nanos {
    Nanos::from_secs(s)
}

fn at(ms: u64) -> Instant {
    Instant::from_nanos(ms * 1_000_000)
}

fn quota(limit: u64, remaining: u64, reset: Nanos, window: Option<Nanos>) -> StatedQuota {
    StatedQuota {
        limit: Some(limit),
        window,
        remaining: Some(remaining),
        reset_after: Some(reset),
    }
}

fn learner() -> Learner {
    Learner::new(LearnerConfig::default(), Instant::ZERO)
}

#[test]
fn close_search_limit_is_discovered_from_its_ratelimit_header() {
    // Close, /api/v1/data/search/: `ratelimit: limit=16; remaining=14; reset=1`.
    let mut learner = learner();
    let learned = learner.observe(
        &Observation::status(200).with_quota(quota(16, 14, secs(1), None)),
        at(0),
    );
    assert_eq!(learned.event, LearnEvent::Discovered);
    let policy = learned.policy.expect("a discovery is stored for the fleet");
    assert_eq!(
        (policy.limit(), policy.window(), policy.source),
        (16, secs(1), PolicySource::Header)
    );
    // The same figures again change nothing.
    let again = learner.observe(
        &Observation::status(200).with_quota(quota(16, 13, secs(1), None)),
        at(60),
    );
    assert_eq!((again.event, again.policy), (LearnEvent::Unchanged, None));
}

#[test]
fn an_unstated_window_is_the_longest_reset_seen() {
    // Close, /api/v1/me/: `limit=160; remaining=159; reset=8`, first seen
    // mid-window with a shorter reset.
    let mut learner = learner();
    learner.observe(
        &Observation::status(200).with_quota(quota(160, 100, secs(3), None)),
        at(0),
    );
    assert_eq!(learner.policy().window(), secs(3));
    let learned = learner.observe(
        &Observation::status(200).with_quota(quota(160, 159, secs(8), None)),
        at(3_100),
    );
    assert_eq!(learned.event, LearnEvent::Changed);
    assert_eq!(learner.policy().window(), secs(8));
}

#[test]
fn a_stated_window_wins_over_any_reset() {
    // IETF draft-08: `RateLimit-Policy: "default";q=30;w=3`.
    let mut learner = learner();
    learner.observe(
        &Observation::status(200).with_quota(quota(30, 29, secs(3), Some(secs(3)))),
        at(0),
    );
    learner.observe(
        &Observation::status(200).with_quota(quota(30, 28, secs(1), None)),
        at(10),
    );
    assert_eq!(learner.policy().window(), secs(3));
}

#[test]
fn the_slowest_of_several_windows_governs() {
    // GoHighLevel: 100 per 10 s and 200,000 per day; the daily one is the
    // slower sustained rate (0.43 s per request against 0.1 s).
    let mut learner = learner();
    let response = Observation::status(200)
        .with_quota(StatedQuota {
            limit: Some(100),
            window: Some(secs(10)),
            remaining: Some(99),
            reset_after: None,
        })
        .with_quota(StatedQuota {
            limit: Some(200_000),
            window: Some(secs(86_400)),
            remaining: Some(199_999),
            reset_after: None,
        });
    learner.observe(&response, at(0));
    assert_eq!(
        (learner.policy().limit(), learner.policy().window()),
        (200_000, secs(86_400))
    );
}

#[test]
fn retry_after_always_wins() {
    let mut learner = learner();
    let throttled = Observation::status(429)
        .with_retry_after(secs(20))
        .with_quota(quota(100, 15, secs(5), None));
    let learned = learner.observe(&throttled, at(0));
    assert_eq!(learned.pause, Some(secs(20)));
    // 503 too.
    let learned = learner.observe(&Observation::status(503).with_retry_after(secs(7)), at(1));
    assert_eq!(learned.pause, Some(secs(7)));
    // On a success it is advice, not a pause.
    let learned = learner.observe(&Observation::status(200).with_retry_after(secs(9)), at(2));
    assert_eq!(learned.pause, None);
}

#[test]
fn a_spent_quota_pauses_until_its_reset() {
    let mut learner = learner();
    let learned = learner.observe(
        &Observation::status(200).with_quota(quota(10, 0, Nanos::from_millis(4_500), None)),
        at(0),
    );
    assert_eq!(learned.pause, Some(Nanos::from_millis(4_500)));
    assert_eq!(learned.event, LearnEvent::Discovered);
}

/// The pace's next slot follows the last request let through, which may
/// have been sent long before its answer came back: a spent quota pauses
/// however soon its reset, or the requests already paced for that moment
/// would meet a window with nothing left.
#[test]
fn a_spent_quota_pauses_even_when_its_reset_comes_sooner_than_the_pace() {
    let mut learner = learner();
    let window = Some(secs(2));
    learner.observe(
        &Observation::status(200).with_quota(quota(2, 1, secs(2), window)),
        at(0),
    );
    // Paced a second apart (and a little more), and spent half a second
    // before its reset.
    assert!(learner.gcra(at(1_500)).emission_interval() > secs(1));
    let learned = learner.observe(
        &Observation::status(200).with_quota(quota(2, 0, Nanos::from_millis(500), window)),
        at(1_500),
    );
    assert_eq!(learned.pause, Some(Nanos::from_millis(500)));
    assert_eq!(learned.event, LearnEvent::Exhausted);
}

#[test]
fn a_bare_429_backs_off_exponentially_up_to_the_cap() {
    let config = LearnerConfig::default();
    let mut learner = Learner::new(config, Instant::ZERO);
    let pauses: Vec<Nanos> = (0..8)
        .map(|i| {
            learner
                .observe(&Observation::status(429), at(i * 100))
                .pause
                .unwrap()
        })
        .collect();
    assert_eq!(
        &pauses[..6],
        &[secs(1), secs(2), secs(4), secs(8), secs(16), secs(30)]
    );
    assert!(pauses.iter().all(|&p| p <= config.backoff_cap()));
    // A success resets the backoff.
    learner.observe(&Observation::status(200), at(1_000));
    assert_eq!(
        learner.observe(&Observation::status(429), at(1_100)).pause,
        Some(secs(1))
    );
}

#[test]
fn without_headers_the_rate_doubles_until_a_429_then_backs_off() {
    let config = LearnerConfig::default();
    let mut learner = Learner::new(config, Instant::ZERO);
    let interval = |l: &Learner| l.policy().window() / u64::from(l.policy().limit());
    assert_eq!(interval(&learner), secs(1));
    // Each probe period of successes doubles the rate.
    let mut now = 0;
    for expected_ms in [500, 250, 125] {
        now += config.probe_period().as_millis_floor();
        let learned = learner.observe(&Observation::status(200), at(now));
        assert_eq!(learned.event, LearnEvent::Probed);
        assert_eq!(interval(&learner), Nanos::from_millis(expected_ms));
        assert_eq!(learner.policy().source, PolicySource::Observed);
    }
    // A 429 cuts the rate to 85% of the one that failed.
    let learned = learner.observe(&Observation::status(429), at(now + 10));
    assert_eq!(learned.event, LearnEvent::Decreased);
    assert_eq!(interval(&learner), Nanos::from_nanos(147_058_824));
    // More 429s from requests already in flight do not cut it again.
    let learned = learner.observe(&Observation::status(429), at(now + 20));
    assert_eq!(learned.event, LearnEvent::Throttled);
    assert_eq!(interval(&learner), Nanos::from_nanos(147_058_824));
}

#[test]
fn probes_stay_under_a_fresh_ceiling() {
    let config = LearnerConfig::default();
    let mut learner = Learner::new(config, Instant::ZERO);
    let interval = |l: &Learner| l.policy().window() / u64::from(l.policy().limit());
    let mut now = 0;
    for _ in 0..3 {
        now += config.probe_period().as_millis_floor();
        learner.observe(&Observation::status(200), at(now));
    }
    let failed = interval(&learner);
    learner.observe(&Observation::status(429), at(now));
    // Runs of successes for most of the ceiling's memory (10 minutes).
    for _ in 0..100 {
        now += 5_000;
        learner.observe(&Observation::status(200), at(now));
        assert!(interval(&learner) > failed, "probed up to the rate that failed");
    }
    // Probing got close to it.
    assert!(
        interval(&learner) <= failed * 1_000 / 980,
        "{:?} vs failed {:?}: {learner:?}",
        interval(&learner),
        failed
    );
}

#[test]
fn fleet_knowledge_is_adopted_without_foreign_instants() {
    let mut learner = learner();
    let stored = Policy::new(
        120,
        secs(60),
        PolicySource::Header,
        Instant::from_nanos(u64::MAX / 2),
    )
    .unwrap();
    learner.adopt(stored, at(5));
    let policy = learner.policy();
    assert_eq!(
        (policy.limit(), policy.window(), policy.source),
        (120, secs(60), PolicySource::Header)
    );
    assert_eq!(policy.learned_at, at(5), "the instant is this learner's own");
    // A less trusted estimate does not replace a stated limit.
    let estimate = Policy::new(1, Nanos::from_millis(10), PolicySource::Observed, Instant::ZERO).unwrap();
    learner.adopt(estimate, at(6));
    assert_eq!(learner.policy().limit(), 120);
}

#[test]
fn the_pace_slows_when_the_remaining_cannot_last() {
    // 100 per 10 s, but another caller left only 10 of them with 8 s to go.
    let mut learner = learner();
    learner.observe(
        &Observation::status(200).with_quota(quota(100, 99, secs(10), Some(secs(10)))),
        at(0),
    );
    let paced = learner.gcra(at(0)).emission_interval();
    learner.observe(
        &Observation::status(200).with_quota(quota(100, 10, secs(8), Some(secs(10)))),
        at(2_000),
    );
    let braked = learner.gcra(at(2_000)).emission_interval();
    assert!(braked > paced);
    // Spread over the earliest the reset can be (8 s, maybe rounded up by 1).
    assert_eq!(braked, Nanos::from_millis(700));
}

fn observation() -> impl Strategy<Value = Observation> {
    let quota = (
        prop::option::of(0u64..=1_000_000),
        prop::option::of(0u64..=100_000_000_000),
        prop::option::of(0u64..=1_000_000),
        prop::option::of(0u64..=100_000_000_000),
    )
        .prop_map(|(limit, window, remaining, reset)| StatedQuota {
            limit,
            window: window.map(Nanos::from_nanos),
            remaining,
            reset_after: reset.map(Nanos::from_nanos),
        });
    (
        prop_oneof![Just(200u16), Just(429), Just(503), Just(500)],
        prop::option::of(0u64..=100_000_000_000),
        prop::collection::vec(quota, 0..4),
        0u64..=2_000_000_000,
    )
        .prop_map(|(status, retry_after, quotas, round_trip)| {
            let mut observation = Observation::status(status).with_round_trip(Nanos::from_nanos(round_trip));
            if let Some(retry_after) = retry_after {
                observation = observation.with_retry_after(Nanos::from_nanos(retry_after));
            }
            quotas.into_iter().fold(observation, Observation::with_quota)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Over any sequence of responses: Retry-After always wins on 429 and
    /// 503 (no pause shorter than it), a refusal always pauses, the pace is
    /// never faster than the policy's, and every policy is valid.
    #[test]
    fn the_learner_keeps_its_rules(steps in prop::collection::vec((observation(), 0u64..=5_000_000_000), 1..60)) {
        let config = LearnerConfig::default();
        let mut learner = Learner::new(config, Instant::ZERO);
        let mut now = Instant::ZERO;
        for (observation, advance) in steps {
            now = now.saturating_add(Nanos::from_nanos(advance));
            let learned = learner.observe(&observation, now);
            if observation.is_throttled() {
                let pause = learned.pause.expect("a refusal pauses");
                if let Some(retry_after) = observation.retry_after {
                    prop_assert_eq!(pause, retry_after);
                }
            }
            let policy = learner.policy();
            prop_assert!(policy.limit() >= 1 && !policy.window().is_zero());
            let paced = policy.to_gcra(&config.policy()).emission_interval();
            prop_assert!(learner.gcra(now).emission_interval() >= paced);
            if let Some(stored) = learned.policy {
                prop_assert_eq!(stored, policy);
            }
        }
    }

    /// Without headers, a 429 never makes the estimated rate faster, and a
    /// success never makes it slower.
    #[test]
    fn headerless_estimates_move_the_right_way(
        steps in prop::collection::vec((prop::bool::weighted(0.2), 0u64..=5_000_000_000), 1..200),
    ) {
        let mut learner = Learner::new(LearnerConfig::default(), Instant::ZERO);
        let mut now = Instant::ZERO;
        let interval = |l: &Learner| l.policy().window() / u64::from(l.policy().limit());
        for (throttled, advance) in steps {
            now = now.saturating_add(Nanos::from_nanos(advance));
            let before = interval(&learner);
            let status = if throttled { 429 } else { 200 };
            learner.observe(&Observation::status(status), now);
            let after = interval(&learner);
            if throttled {
                prop_assert!(after >= before, "a 429 sped up: {:?} -> {:?}", before, after);
            } else {
                prop_assert!(after <= before, "a success slowed down: {:?} -> {:?}", before, after);
            }
        }
    }
}
