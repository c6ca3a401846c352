//! Learners built without a capability (`LearnerCapabilities`), where the
//! capability would have acted: what each does instead, as documented.
//! Where it would not have acted they decide as the full learner: see
//! `learner_differential.rs` (discovery) and the reset-tracking properties
//! in the crate (which read the learner's private state).

use ratekeeper_core::learn::{
    LearnEvent, Learner, LearnerCapabilities, LearnerConfig, Observation, StatedQuota,
};
use ratekeeper_core::{Instant, Nanos, PolicySource};

/// Every capability but discovery without headers.
const WITHOUT_DISCOVERY: u32 = LearnerCapabilities::ALL & !LearnerCapabilities::HEADERLESS;
/// Every capability but reset tracking.
const WITHOUT_TRACKING: u32 = LearnerCapabilities::ALL & !LearnerCapabilities::RESET_TRACKING;

/// A minute in, so that no instant here saturates at zero.
fn at(ms: u64) -> Instant {
    Instant::from_nanos((60_000 + ms) * 1_000_000)
}

fn quota(limit: u64, window: Option<Nanos>, remaining: u64, reset: Nanos) -> StatedQuota {
    StatedQuota {
        limit: Some(limit),
        window,
        remaining: Some(remaining),
        reset_after: Some(reset),
    }
}

#[test]
fn the_default_type_is_the_full_learner() {
    let full: Learner<{ LearnerCapabilities::ALL }> = Learner::new(LearnerConfig::DEFAULT, at(0));
    let default: Learner = full;
    assert_eq!(default, Learner::new(LearnerConfig::DEFAULT, at(0)));
    assert_eq!(
        LearnerCapabilities::ALL,
        LearnerCapabilities::HEADERLESS | LearnerCapabilities::RESET_TRACKING
    );
    assert_eq!(LearnerCapabilities::STATED, 0);
}

#[test]
fn without_discovery_a_429_with_nothing_stated_backs_off_but_keeps_the_policy() {
    let config = LearnerConfig::DEFAULT;
    let mut full = Learner::new(config, at(0));
    let mut learner = Learner::<WITHOUT_DISCOVERY>::with_capabilities(config, at(0));
    let default = learner.policy();
    let refused = Observation::status(429);
    for (n, pause_secs) in [1, 2, 4, 8].into_iter().enumerate() {
        let now = at(n as u64 * 10_000);
        let by_full = full.observe(&refused, now);
        let learned = learner.observe(&refused, now);
        // The same backoff, doubling with each 429 in a row.
        assert_eq!(learned.pause, Some(Nanos::from_secs(pause_secs)));
        assert_eq!(by_full.pause, learned.pause);
        // Only the full learner lowers its estimate.
        assert_eq!(by_full.event, LearnEvent::Decreased);
        assert!(by_full.policy.is_some_and(|p| p.source == PolicySource::Observed));
        assert_eq!((learned.event, learned.policy), (LearnEvent::Throttled, None));
        assert_eq!(learner.policy(), default);
    }
    // `Retry-After` wins for both.
    let told = refused.with_retry_after(Nanos::from_secs(7));
    assert_eq!(
        learner.observe(&told, at(50_000)).pause,
        Some(Nanos::from_secs(7))
    );
    assert_eq!(full.observe(&told, at(50_000)).pause, Some(Nanos::from_secs(7)));
}

#[test]
fn without_discovery_successes_never_raise_the_rate() {
    let config = LearnerConfig::DEFAULT;
    let mut full = Learner::new(config, at(0));
    let mut learner = Learner::<WITHOUT_DISCOVERY>::with_capabilities(config, at(0));
    let default = learner.policy();
    let mut probes = 0;
    for second in 1..=120 {
        let now = at(second * 1_000);
        if full.observe(&Observation::status(200), now).event == LearnEvent::Probed {
            probes += 1;
        }
        let learned = learner.observe(&Observation::status(200), now);
        assert_eq!(
            (learned.event, learned.policy, learned.pause),
            (LearnEvent::Unchanged, None, None)
        );
    }
    assert!(
        probes > 0,
        "the full learner probes up over two minutes of successes"
    );
    assert_eq!(learner.policy(), default);
    assert!(full.gcra(at(120_000)).emission_interval() < learner.gcra(at(120_000)).emission_interval());
}

#[test]
fn without_discovery_a_stated_limit_is_learned_as_by_the_full_learner() {
    let config = LearnerConfig::DEFAULT;
    let mut full = Learner::new(config, at(0));
    let mut learner = Learner::<{ LearnerCapabilities::STATED }>::with_capabilities(config, at(0));
    // Close's search endpoint, then a 429 that says when to come back.
    let close = Observation::status(200).with_quota(quota(16, None, 15, Nanos::from_secs(1)));
    let learned = learner.observe(&close, at(0));
    assert_eq!(learned, full.observe(&close, at(0)));
    assert_eq!(learned.event, LearnEvent::Discovered);
    let policy = learned.policy.unwrap();
    assert_eq!((policy.limit(), policy.window()), (16, Nanos::from_secs(1)));
    let refused = Observation::status(429).with_retry_after(Nanos::from_secs(1));
    let learned = learner.observe(&refused, at(100));
    assert_eq!(learned, full.observe(&refused, at(100)));
    assert_eq!(
        (learned.event, learned.pause),
        (LearnEvent::Throttled, Some(Nanos::from_secs(1)))
    );
}

#[test]
fn without_tracking_a_spent_quota_pauses_for_its_reset_as_stated() {
    let config = LearnerConfig::DEFAULT;
    let mut full = Learner::new(config, at(0));
    let mut learner = Learner::<WITHOUT_TRACKING>::with_capabilities(config, at(0));
    let window = Some(Nanos::from_secs(10));
    // The window resets 7.3 s from now, to the 100 ms round trip.
    let first = Observation::status(200)
        .with_quota(quota(100, window, 50, Nanos::from_millis(7_300)))
        .with_round_trip(Nanos::from_millis(100));
    assert_eq!(learner.observe(&first, at(0)), full.observe(&first, at(0)));
    // Spent 4.5 s later, the reset stated rounded up to whole seconds: the
    // full learner knows it is 2.8 s away at the latest.
    let spent = Observation::status(200).with_quota(quota(100, window, 0, Nanos::from_secs(3)));
    let learned = learner.observe(&spent, at(4_500));
    let by_full = full.observe(&spent, at(4_500));
    assert_eq!(
        (learned.event, learned.pause),
        (LearnEvent::Exhausted, Some(Nanos::from_secs(3)))
    );
    assert_eq!(
        (by_full.event, by_full.pause),
        (LearnEvent::Exhausted, Some(Nanos::from_millis(2_800)))
    );
}

#[test]
fn without_tracking_what_remains_is_spread_until_the_earliest_reset() {
    let config = LearnerConfig::DEFAULT;
    let mut full = Learner::new(config, at(0));
    let mut learner = Learner::<WITHOUT_TRACKING>::with_capabilities(config, at(0));
    let window = Some(Nanos::from_secs(10));
    // 10 of 100 left, the reset stated as 5 s (4 to 5 s away): both spread
    // the 10 over the 4 s that are sure.
    let first = Observation::status(200).with_quota(quota(100, window, 10, Nanos::from_secs(5)));
    assert_eq!(learner.observe(&first, at(0)), full.observe(&first, at(0)));
    assert_eq!(learner.gcra(at(0)), full.gcra(at(0)));
    assert_eq!(learner.gcra(at(0)).emission_interval(), Nanos::from_millis(400));
    // After the reset the count jumps back up: fixed windows. The full
    // learner spreads the 40 left until the latest the next reset can be
    // (15 s in), the other until the earliest (14 s in), as for a sliding
    // window.
    let next = Observation::status(200).with_quota(quota(100, window, 40, Nanos::from_secs(9)));
    assert_eq!(learner.observe(&next, at(6_000)), full.observe(&next, at(6_000)));
    assert_eq!(full.gcra(at(6_000)).emission_interval(), Nanos::from_millis(225));
    assert_eq!(
        learner.gcra(at(6_000)).emission_interval(),
        Nanos::from_millis(200)
    );
}
