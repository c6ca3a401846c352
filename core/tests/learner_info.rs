//! Learning from a parsed response in place (`Learner::observe_info`)
//! against the two steps it stands for, an `Observation::from_info` with
//! the round trip and `Learner::observe` of it; and `from_info` against
//! its earlier form, an observation folded from the parsed requests
//! quotas. Over random header sets in every family the parser reads, for
//! every selection of learner capabilities.

use proptest::prelude::*;
use ratekeeper_core::headers::{ParseOptions, QuotaUnit, RateLimitInfo};
use ratekeeper_core::learn::{Learner, LearnerCapabilities, LearnerConfig, Observation, StatedQuota};
use ratekeeper_core::{Instant, Nanos};

/// A figure as servers write them: small, in whole seconds, or anything.
fn figure() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u64..=100).prop_map(|n| n.to_string()),
        2 => (0u64..=100_000).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => (0u64..=10_000).prop_map(|n| format!("{}.{}", n / 100, n % 100)),
        1 => Just(String::from("x")),
    ]
}

/// One header a rate-limited API may send, with random figures: requests
/// quotas, token quotas (which the learner leaves out), resets and
/// `Retry-After`.
fn header() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        Just("ratelimit"),
        Just("ratelimit-policy"),
        Just("x-ratelimit-limit"),
        Just("x-ratelimit-remaining"),
        Just("x-ratelimit-reset"),
        Just("x-ratelimit-limit-requests"),
        Just("x-ratelimit-remaining-requests"),
        Just("x-ratelimit-reset-requests"),
        Just("x-ratelimit-limit-tokens"),
        Just("x-ratelimit-remaining-tokens"),
        Just("x-ratelimit-reset-tokens"),
        Just("retry-after"),
    ];
    (name, figure(), figure(), figure(), 0..4u8).prop_map(|(name, a, b, c, form)| {
        let value = match (name, form) {
            ("ratelimit", 0) => format!("limit={a}, remaining={b}, reset={c}"),
            ("ratelimit", 1) => format!("limit={a}; remaining={b}; reset={c}"),
            ("ratelimit", _) => format!("\"default\";r={b};t={c}"),
            ("ratelimit-policy", 0 | 1) => format!("{a};w={c}"),
            ("ratelimit-policy", _) => format!("\"default\";q={a};w={c}"),
            ("x-ratelimit-reset-requests" | "x-ratelimit-reset-tokens", 0) => format!("{c}s"),
            ("x-ratelimit-reset-requests" | "x-ratelimit-reset-tokens", 1) => format!("{b}ms"),
            _ => a,
        };
        (String::from(name), value)
    })
}

fn span() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..=5_000_000_000,
        1 => any::<u64>(),
    ]
}

fn status() -> impl Strategy<Value = Option<u16>> {
    prop_oneof![Just(Some(200u16)), Just(Some(429)), Just(Some(503)), Just(None)]
}

/// One parsed response, the round trip it took and the time since the last.
fn response() -> impl Strategy<Value = (RateLimitInfo, u64, u64)> {
    (status(), prop::collection::vec(header(), 0..6), span(), span()).prop_map(
        |(status, headers, round_trip, advance)| {
            let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
            (
                RateLimitInfo::parse(status, pairs, &ParseOptions::new()),
                round_trip,
                advance,
            )
        },
    )
}

/// The earlier form of `Observation::from_info`: the parsed requests
/// quotas folded into an observation with the public builders.
fn folded(info: &RateLimitInfo) -> Observation {
    let mut observation = Observation::status(info.status().unwrap_or(0));
    if let Some(retry_after) = info.retry_after() {
        observation = observation.with_retry_after(retry_after);
    }
    info.quotas()
        .iter()
        .filter(|quota| quota.unit == QuotaUnit::Requests)
        .map(|quota| StatedQuota {
            limit: quota.limit,
            window: quota.window,
            remaining: quota.remaining,
            reset_after: quota.reset_after,
        })
        .fold(observation, Observation::with_quota)
}

/// Both learners, each response learned in place by one and as an
/// observation by the other, at every step.
fn learns_in_place_as_from_an_observation<const CAPABILITIES: u32>(
    start: u64,
    responses: &[(RateLimitInfo, u64, u64)],
) -> Result<(), TestCaseError> {
    let mut now = Instant::from_nanos(start);
    let mut in_place = Learner::<CAPABILITIES>::with_capabilities(LearnerConfig::DEFAULT, now);
    let mut observed = in_place;
    for (info, round_trip, advance) in responses {
        now = now.saturating_add(Nanos::from_nanos(*advance));
        let round_trip = Nanos::from_nanos(*round_trip);
        let observation = Observation::from_info(info).with_round_trip(round_trip);
        prop_assert_eq!(
            in_place.observe_info(info, round_trip, now),
            observed.observe(&observation, now)
        );
        prop_assert_eq!(in_place, observed);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn an_observation_from_a_parsed_response_is_its_requests_quotas_folded(
        (info, _, _) in response(),
    ) {
        prop_assert_eq!(Observation::from_info(&info), folded(&info));
    }

    #[test]
    fn learning_in_place_is_learning_from_the_observation(
        start in prop_oneof![Just(0u64), 0u64..=1u64 << 50],
        responses in prop::collection::vec(response(), 1..12),
    ) {
        learns_in_place_as_from_an_observation::<{ LearnerCapabilities::ALL }>(start, &responses)?;
        learns_in_place_as_from_an_observation::<{ LearnerCapabilities::STATED }>(start, &responses)?;
        learns_in_place_as_from_an_observation::<{ LearnerCapabilities::RESET_TRACKING }>(start, &responses)?;
    }
}

#[test]
fn a_status_alone_is_an_observation_without_statements() {
    let observation = Observation::status(429);
    assert_eq!(observation.status, 429);
    assert_eq!(
        (observation.retry_after, observation.round_trip),
        (None, Nanos::ZERO)
    );
    assert!(observation.quotas().is_empty());
    assert_eq!(Observation::status(0), Observation::default());
}

#[test]
fn only_requests_quotas_are_observed() {
    let headers: [(&[u8], &[u8]); 7] = [
        (b"x-ratelimit-limit-requests", b"60"),
        (b"x-ratelimit-remaining-requests", b"59"),
        (b"x-ratelimit-reset-requests", b"1s"),
        (b"x-ratelimit-limit-tokens", b"150000"),
        (b"x-ratelimit-remaining-tokens", b"149984"),
        (b"x-ratelimit-reset-tokens", b"6ms"),
        (b"retry-after", b"2"),
    ];
    let info = RateLimitInfo::parse(Some(429), headers, &ParseOptions::new());
    assert_eq!(info.quotas().len(), 2);
    let observation = Observation::from_info(&info);
    assert_eq!(
        (observation.status, observation.retry_after),
        (429, Some(Nanos::from_secs(2)))
    );
    assert_eq!(observation.quotas().len(), 1);
    assert_eq!(
        (observation.quotas()[0].limit, observation.quotas()[0].remaining),
        (Some(60), Some(59))
    );
    let mut learner = Learner::new(LearnerConfig::DEFAULT, Instant::ZERO);
    let learned = learner.observe_info(&info, Nanos::ZERO, Instant::ZERO);
    assert_eq!(learned.policy.map(|policy| policy.limit()), Some(60));
    assert_eq!(learned.pause, Some(Nanos::from_secs(2)));
}
