//! The memory gate against servers that state their limits, on tokio's
//! paused clock, with a latency drawn for each request's way there and
//! back: requests overtake one another, answers come back out of order,
//! and some are still on their way when a window ends. Whatever the
//! schedule, a server that states its limit never answers 429 to a gate
//! whose store is its own. A gate on a shared store paces with the fleet's
//! GCRA instead of spending what is stated left (other instances spend it
//! too), and cannot count another instance's requests in flight: it is
//! held to no 429 when answers come back at once.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Behavior, Family};
use proptest::prelude::*;
use ratekeeper_http::{Config, Gate};

fn behavior() -> impl Strategy<Value = Behavior> {
    let family = prop_oneof![Just(Family::Close), Just(Family::Ietf), Just(Family::XRateLimit)];
    prop_oneof![
        (1u64..=30, 1u64..=3).prop_map(|(limit, secs)| Behavior::Sliding {
            limit,
            window: Duration::from_secs(secs),
        }),
        (1u64..=30, 1u64..=3, family).prop_map(|(limit, secs, family)| Behavior::Limited {
            limit,
            window: Duration::from_secs(secs),
            family,
        }),
    ]
}

/// Milliseconds there and back for each request, in the order they are
/// sent (repeated when there are more requests than entries).
fn latencies() -> impl Strategy<Value = Vec<(u16, u16)>> {
    prop::collection::vec((0u16..=1500, 0u16..=1500), 1..=48)
}

/// Whose the gate's store is.
#[derive(Clone, Copy, Debug)]
enum Store {
    /// This process's alone: what the server states left is spent.
    Private,
    /// Shared with other instances: calls are paced.
    Shared,
}

/// Runs `count` calls; returns the statuses and the server's 429 count.
fn run(
    store: Store,
    behavior: Behavior,
    count: usize,
    concurrency: usize,
    latencies: Vec<(u16, u16)>,
) -> (Vec<u16>, usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let path = "/v1/items";
        // Time is virtual: no call gives up waiting, so a refusal can only
        // be the server's.
        let config = Config {
            max_wait_ms: 3_600_000,
            ..Config::default()
        };
        let gate = Gate::memory(&config)
            .unwrap()
            .with_private_store(matches!(store, Store::Private));
        let gate = Arc::new(gate);
        let latency = move |index: usize| {
            let (there, back) = latencies[index % latencies.len()];
            (
                Duration::from_millis(there.into()),
                Duration::from_millis(back.into()),
            )
        };
        let (statuses, server) =
            common::in_process_run(&[(path, behavior)], path, gate, count, concurrency, latency).await;
        let refused = server.count(path, 429);
        (statuses, refused)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn a_stated_limit_is_never_exceeded_whatever_the_latencies(
        behavior in behavior(),
        count in 1usize..=60,
        concurrency in 1usize..=12,
        latencies in latencies(),
    ) {
        let (statuses, refused) = run(Store::Private, behavior, count, concurrency, latencies);
        prop_assert!(statuses.iter().all(|&status| status == 200), "{statuses:?}");
        prop_assert_eq!(refused, 0);
    }

    #[test]
    fn a_shared_store_keeps_to_a_stated_limit_when_answers_come_at_once(
        behavior in behavior(),
        count in 1usize..=60,
        concurrency in 1usize..=12,
    ) {
        let (statuses, refused) = run(Store::Shared, behavior, count, concurrency, vec![(0, 0)]);
        prop_assert!(statuses.iter().all(|&status| status == 200), "{statuses:?}");
        prop_assert_eq!(refused, 0);
    }
}

fn never_refused(behavior: Behavior, count: usize, concurrency: usize, latencies: &[(u16, u16)]) {
    never_refused_with(Store::Private, behavior, count, concurrency, latencies);
}

fn never_refused_with(
    store: Store,
    behavior: Behavior,
    count: usize,
    concurrency: usize,
    latencies: &[(u16, u16)],
) {
    let (statuses, refused) = run(store, behavior, count, concurrency, latencies.to_vec());
    assert!(statuses.iter().all(|&status| status == 200), "{statuses:?}");
    assert_eq!(refused, 0);
}

/// The shape of the real-time test that once saw a 429 on a loaded
/// machine (a sliding window of 10 per 2 s, 35 calls, 6 at a time), with
/// answers slowed unevenly.
#[test]
fn a_sliding_window_with_uneven_answers() {
    let behavior = Behavior::Sliding {
        limit: 10,
        window: Duration::from_secs(2),
    };
    let latencies: Vec<(u16, u16)> = (0..35u16).map(|i| (i * 7 % 50, i * 37 % 300)).collect();
    never_refused(behavior, 35, 6, &latencies);
}

/// A request let through in one window, answered in the next, tells of
/// that next window: what it states left is not the probe's to spend
/// again, nor is what it was counted before.
#[test]
fn an_answer_from_across_a_window_end_is_counted_once() {
    let behavior = Behavior::Sliding {
        limit: 8,
        window: Duration::from_secs(2),
    };
    let latencies = [
        (0, 179),
        (60, 233),
        (61, 119),
        (375, 258),
        (358, 162),
        (8, 0),
        (0, 0),
        (0, 0),
        (0, 77),
        (353, 208),
        (362, 167),
        (236, 134),
        (197, 222),
        (159, 60),
        (187, 65),
        (146, 66),
        (0, 2),
        (0, 0),
        (0, 0),
    ];
    never_refused(behavior, 19, 2, &latencies);
}

/// A sliding window spent in one burst resets a window after the burst,
/// not at the boundary its earlier windows suggested.
#[test]
fn a_burst_in_a_sliding_window_is_waited_out_as_stated() {
    let behavior = Behavior::Sliding {
        limit: 3,
        window: Duration::from_secs(2),
    };
    let latencies = [(0, 0), (0, 0), (0, 0), (174, 0), (0, 0), (0, 0), (0, 0)];
    never_refused(behavior, 7, 2, &latencies);
}

/// The probe of a new window waits for the store's pace; an answer that
/// comes meanwhile may begin the window, and the probe keeps to it.
#[test]
fn a_probe_let_through_late_keeps_to_the_window_an_answer_began() {
    let behavior = Behavior::Limited {
        limit: 2,
        window: Duration::from_secs(3),
        family: Family::Close,
    };
    let latencies = [
        (281, 1084),
        (50, 78),
        (840, 462),
        (0, 117),
        (239, 825),
        (614, 1109),
        (1085, 1211),
        (1055, 878),
        (655, 880),
        (1101, 274),
        (1411, 539),
        (476, 1247),
        (1212, 1135),
        (514, 1477),
        (1106, 1208),
        (0, 1001),
        (898, 1280),
        (183, 834),
        (554, 1065),
        (940, 307),
        (665, 617),
        (306, 109),
        (1224, 225),
        (989, 1011),
        (790, 725),
        (1434, 1205),
        (0, 0),
    ];
    never_refused(behavior, 65, 2, &latencies);
}

/// A sliding window's earlier reset frees a slot that a later answer
/// already counted as left: the window ends at the reset of the answer
/// its budget is spent on.
#[test]
fn a_sliding_window_ends_at_the_reset_of_the_answer_it_is_spent_on() {
    let behavior = Behavior::Sliding {
        limit: 11,
        window: Duration::from_secs(3),
    };
    let latencies = [
        (739, 647),
        (852, 257),
        (968, 806),
        (406, 0),
        (0, 0),
        (406, 0),
        (406, 0),
        (968, 1032),
        (406, 0),
        (169, 0),
        (406, 0),
        (594, 0),
        (194, 705),
        (270, 836),
        (746, 0),
        (1165, 0),
        (164, 1224),
        (0, 88),
        (0, 88),
        (0, 88),
        (0, 88),
    ];
    never_refused(behavior, 68, 9, &latencies);
}

/// A shared store's bucket took its first request at the default pace (one
/// a second); the answer teaches one per 3 s with nothing left: the next
/// request waits for the reset, not for the default pace's next slot.
#[test]
fn a_shared_store_waits_out_a_spent_quota_after_learning_a_slower_limit() {
    let behavior = Behavior::Sliding {
        limit: 1,
        window: Duration::from_secs(3),
    };
    never_refused_with(Store::Shared, behavior, 25, 1, &[(0, 0)]);
}
