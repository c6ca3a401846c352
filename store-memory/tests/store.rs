//! The store under many threads, at its cap, and with a million keys, on
//! the manual clock: exact counts, no sleeps, no timing.
#![allow(missing_docs)]

use std::sync::Barrier;
use std::sync::atomic::{AtomicU32, Ordering};

use ratekeeper_core::{Acquire, BucketState, Clock, Decision, DenialCause, Gcra, ManualClock, Nanos, Store};
use ratekeeper_memory::{Bucket, MemoryStore};

const THREADS: usize = 8;
const TRIES_PER_THREAD: u32 = 2_000;
const KEY: &str = "api.example.com/v1/items";

fn gcra(interval_ms: u64, burst: u32) -> Gcra {
    Gcra::new(Nanos::from_millis(interval_ms), burst).unwrap()
}

/// Runs `tries` checks on each of `THREADS` threads, all started together,
/// and returns how many were admitted.
fn hammer(tries: u32, check: impl Fn() -> Decision + Sync) -> u32 {
    let admitted = AtomicU32::new(0);
    let start = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                start.wait();
                for _ in 0..tries {
                    if check().is_allowed() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    admitted.into_inner()
}

#[test]
fn many_threads_on_one_bucket_admit_exactly_what_gcra_allows() {
    let store = MemoryStore::new(ManualClock::new());
    let bucket = Bucket::new(ManualClock::new());
    let gcra = gcra(10, 50);
    let check = Acquire::check(gcra);
    // A full bucket: exactly the burst, however many threads race for it.
    assert_eq!(
        hammer(TRIES_PER_THREAD, || store.acquire(KEY, &check).unwrap()),
        50
    );
    assert_eq!(hammer(TRIES_PER_THREAD, || bucket.acquire(&check)), 50);
    // Then exactly one per interval elapsed, over several steps.
    for intervals in [1u32, 7, 50, 200] {
        let span = gcra.emission_interval() * u64::from(intervals);
        store.clock().advance(span);
        bucket.clock().advance(span);
        let expected = intervals.min(50);
        assert_eq!(
            hammer(TRIES_PER_THREAD, || store.acquire(KEY, &check).unwrap()),
            expected
        );
        assert_eq!(hammer(TRIES_PER_THREAD, || bucket.acquire(&check)), expected);
    }
}

#[test]
fn racing_reservations_queue_exactly_like_sequential_ones() {
    let store = MemoryStore::new(ManualClock::new());
    let gcra = gcra(10, 3);
    // Up to 10 s of waiting: 3 at once, then one per 10 ms, 1,003 in all.
    let reserve = Acquire::reserve(gcra, Nanos::from_secs(10));
    let waits = std::sync::Mutex::new(Vec::new());
    let admitted = hammer(200, || {
        let decision = store.acquire(KEY, &reserve).unwrap();
        if let Some(allowed) = decision.allowed() {
            waits.lock().unwrap().push(allowed.wait);
        }
        decision
    });
    let mut waits = waits.into_inner().unwrap();
    waits.sort();
    // The same waits, in some order, as one caller reserving in a row.
    let mut state = BucketState::EMPTY;
    let mut expected = Vec::new();
    while let (Decision::Allowed(allowed), Some(next)) = state.decide(&reserve, store.clock().now()) {
        expected.push(allowed.wait);
        state = next;
    }
    assert_eq!(admitted as usize, expected.len());
    assert_eq!(waits, expected);
}

#[test]
fn a_pause_is_seen_by_every_thread() {
    let store = MemoryStore::new(ManualClock::new());
    let check = Acquire::check(gcra(1, 1_000_000));
    let ready = Barrier::new(THREADS + 1);
    let paused = Barrier::new(THREADS + 1);
    let admitted_before = AtomicU32::new(0);
    let refused_paused = AtomicU32::new(0);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                // Admitted freely before the pause...
                if store.acquire(KEY, &check).unwrap().is_allowed() {
                    admitted_before.fetch_add(1, Ordering::Relaxed);
                }
                ready.wait();
                // (racing the pause here may go either way)
                let _ = store.acquire(KEY, &check).unwrap();
                paused.wait();
                // ...and refused by it on every thread after it returned.
                for _ in 0..100 {
                    let denied = store.acquire(KEY, &check).unwrap().denied().unwrap();
                    assert_eq!(denied.cause, DenialCause::Paused);
                    assert!(denied.retry_after >= Nanos::from_secs(5));
                    refused_paused.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        ready.wait();
        // Pause while other threads decide on the same bucket.
        store.pause(KEY, Nanos::from_secs(5)).unwrap();
        paused.wait();
    });
    assert_eq!(admitted_before.into_inner(), THREADS as u32);
    assert_eq!(refused_paused.into_inner(), THREADS as u32 * 100);
    store.clock().advance(Nanos::from_secs(5));
    assert!(store.acquire(KEY, &check).unwrap().is_allowed());
}

#[test]
fn pauses_racing_decisions_never_shorten_and_never_leak() {
    // Threads pause with different spans while others decide: the pause
    // in force at the end is the longest, and nothing is admitted after
    // every pause has returned.
    let store = MemoryStore::new(ManualClock::new());
    let check = Acquire::check(gcra(1, 1_000_000));
    std::thread::scope(|scope| {
        for thread in 0..THREADS as u64 {
            let store = &store;
            scope.spawn(move || {
                for i in 0..200u64 {
                    if i % 10 == 0 {
                        store.pause(KEY, Nanos::from_millis(thread * 100 + i)).unwrap();
                    } else {
                        let _ = store.acquire(KEY, &check).unwrap();
                    }
                }
            });
        }
    });
    let longest = Nanos::from_millis((THREADS as u64 - 1) * 100 + 190);
    let state = store.state(KEY).unwrap();
    assert_eq!(state.paused_until, Some(store.clock().now() + longest));
    let denied = store.acquire(KEY, &check).unwrap().denied().unwrap();
    assert_eq!(denied.retry_after, longest);
}

#[test]
fn eviction_never_forgets_a_bucket_that_still_matters() {
    let store = MemoryStore::builder()
        .max_buckets(256)
        .shards(4)
        .build(ManualClock::new());
    let check = Acquire::check(gcra(1_000, 2));
    // Buckets that matter: one drained (TAT two seconds ahead), one paused.
    for _ in 0..2 {
        assert!(store.acquire("drained", &check).unwrap().is_allowed());
    }
    store.pause("paused", Nanos::from_secs(3_600)).unwrap();
    let drained = store.state("drained").unwrap();
    let paused = store.state("paused").unwrap();
    // Churn: 100,000 other keys, each used once, the clock moving on so that
    // they go idle; many sweeps and cap evictions happen meanwhile.
    let quick = Acquire::check(gcra(1, 1));
    for i in 0..100_000u32 {
        store.acquire(&format!("churn/{i}"), &quick).unwrap();
        store.clock().advance(Nanos::from_nanos(10_000));
        assert!(store.len() <= store.max_buckets());
        if i == 100 {
            // The drained bucket is still drained 1 ms in: its TAT is 2 s ahead.
            assert_eq!(store.state("drained"), Some(drained));
        }
    }
    // One second went by: the drained bucket is back to one in hand, the
    // paused one still paused, and both were kept throughout.
    assert_eq!(store.state("paused"), Some(paused));
    assert_eq!(store.state("drained"), Some(drained));
    assert!(store.acquire("drained", &check).unwrap().is_allowed());
    assert!(!store.acquire("drained", &check).unwrap().is_allowed());
    let denied = store.acquire("paused", &check).unwrap().denied().unwrap();
    assert_eq!(denied.cause, DenialCause::Paused);
}

#[test]
fn at_the_cap_idle_buckets_go_first() {
    let store = MemoryStore::builder()
        .max_buckets(64)
        .shards(1)
        .build(ManualClock::new());
    let slow = Acquire::check(gcra(1_000, 1));
    // 32 buckets busy for a second, then 32 that will be idle.
    for i in 0..32 {
        store.acquire(&format!("busy/{i}"), &slow).unwrap();
    }
    let quick = Acquire::check(gcra(1, 1));
    for i in 0..32 {
        store.acquire(&format!("idle/{i}"), &quick).unwrap();
    }
    assert_eq!(store.len(), 64);
    store.clock().advance(Nanos::from_millis(1));
    // New keys at the cap take the idle buckets' room; every busy one stays.
    for i in 0..32 {
        store.acquire(&format!("new/{i}"), &quick).unwrap();
    }
    assert!(store.len() <= 64);
    for i in 0..32 {
        assert!(
            store.state(&format!("busy/{i}")).is_some(),
            "busy/{i} was forgotten"
        );
    }
}

#[test]
fn a_million_keys_stay_within_the_cap() {
    const CAP: usize = 10_000;
    let quick = Acquire::check(gcra(1, 1));
    // First with the clock moving (old keys go idle), then with it stopped
    // (nothing is ever idle: the cap evicts busy buckets).
    for step in [Nanos::from_micros(1), Nanos::ZERO] {
        let store = MemoryStore::builder().max_buckets(CAP).build(ManualClock::new());
        let mut peak_bytes = 0;
        for i in 0..1_000_000u32 {
            store
                .acquire(&format!("api.example.com/tenant/{i}/items"), &quick)
                .unwrap();
            store.clock().advance(step);
            if i % 10_000 == 0 {
                assert!(store.len() <= CAP);
                peak_bytes = peak_bytes.max(store.heap_bytes());
            }
        }
        assert!(store.len() <= CAP);
        // The tables never hold more than a full store's worth.
        assert!(peak_bytes <= 80 * CAP, "{peak_bytes} bytes for a cap of {CAP}");
    }
}

#[test]
fn an_idle_bucket_costs_at_most_64_bytes() {
    const BUCKETS: usize = 100_000;
    let store = MemoryStore::builder()
        .max_buckets(BUCKETS)
        .build(ManualClock::new());
    let check = Acquire::check(gcra(1, 1));
    for i in 0..BUCKETS {
        store
            .acquire(&format!("api.example.com/tenant/{i}/items"), &check)
            .unwrap();
    }
    // All idle now, none forgotten yet.
    store.clock().advance(Nanos::from_secs(1));
    let held = store.len();
    assert!(held > BUCKETS * 9 / 10, "{held}");
    let bytes = store.heap_bytes();
    assert!(bytes <= 64 * held, "{bytes} bytes for {held} buckets");
    assert_eq!(store.evict_idle(), held);
}

#[test]
fn policies_are_per_key_and_capped() {
    use ratekeeper_core::{Instant, Policy, PolicySource};
    let store = MemoryStore::builder()
        .max_policies(4)
        .shards(1)
        .build(ManualClock::new());
    let policy = |limit, at| {
        Policy::new(
            limit,
            Nanos::from_secs(1),
            PolicySource::Header,
            Instant::from_nanos(at),
        )
        .unwrap()
    };
    assert_eq!(store.policy("a").unwrap(), None);
    for (i, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
        store.set_policy(key, &policy(10 + i as u32, i as u64)).unwrap();
    }
    assert_eq!(store.policy("c").unwrap(), Some(policy(12, 2)));
    store.set_policy("a", &policy(99, 10)).unwrap();
    assert_eq!(store.policy("a").unwrap(), Some(policy(99, 10)));
    // At the cap: the policy learned longest ago ("b") makes way.
    store.set_policy("e", &policy(5, 11)).unwrap();
    assert_eq!(store.policy_count(), 4);
    assert_eq!(store.policy("b").unwrap(), None);
    assert_eq!(store.policy("e").unwrap(), Some(policy(5, 11)));
}
