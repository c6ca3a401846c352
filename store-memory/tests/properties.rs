//! The store against the core's sequential `BucketState::decide`, over
//! random sequences of decisions, pauses, clock steps and evictions on a
//! few keys.
#![allow(missing_docs)]

use std::collections::HashMap;

use proptest::prelude::*;
use ratekeeper_core::{Acquire, BucketState, Clock, Gcra, ManualClock, Nanos, Store};
use ratekeeper_memory::{Bucket, MemoryStore};

const KEYS: [&str; 5] = [
    "api.example.com/v1/items",
    "api.example.com/v1/items/{id}",
    "api.example.com/t/42/search",
    "other.example.org/",
    "",
];

#[derive(Clone, Debug)]
enum Op {
    Acquire { key: usize, cost: u32, max_wait: u64 },
    Pause { key: usize, span: u64 },
    Advance(u64),
    EvictIdle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..KEYS.len(), 0u32..4, prop_oneof![Just(0u64), 0u64..1_000]).prop_map(|(key, cost, max_wait)| Op::Acquire { key, cost, max_wait }),
        1 => (0..KEYS.len(), 0u64..1_000).prop_map(|(key, span)| Op::Pause { key, span }),
        2 => prop_oneof![0u64..50, 0u64..2_000].prop_map(Op::Advance),
        1 => Just(Op::EvictIdle),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Every decision equals the sequential core's (the store's for every
    /// key, a `Bucket`'s for the first); forgetting idle buckets
    /// (at a cap exactly the number of keys, one shard, so sweeps happen
    /// all the time) changes none of them.
    #[test]
    fn store_decides_as_the_sequential_core(
        interval in 1u64..200,
        burst in 1u32..4,
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let gcra = Gcra::new(Nanos::from_nanos(interval), burst).unwrap();
        let store = MemoryStore::builder().max_buckets(KEYS.len()).shards(1).build(ManualClock::new());
        let mut model: HashMap<&str, BucketState> = HashMap::new();
        // The single-bucket limiter follows the first key's operations.
        let bucket = Bucket::new(store.clock());
        for op in ops {
            let now = store.clock().now();
            match op {
                Op::Acquire { key, cost, max_wait } => {
                    let key = KEYS[key];
                    let request = Acquire::reserve(gcra, Nanos::from_nanos(max_wait)).with_cost(cost);
                    let state = model.entry(key).or_default();
                    let (expected, next) = state.decide(&request, now);
                    if let Some(next) = next {
                        *state = next;
                    }
                    prop_assert_eq!(store.acquire(key, &request).unwrap(), expected);
                    if key == KEYS[0] {
                        prop_assert_eq!(bucket.acquire(&request), expected);
                    }
                }
                Op::Pause { key, span } => {
                    let key = KEYS[key];
                    let state = model.entry(key).or_default();
                    *state = state.paused_for(now, Nanos::from_nanos(span));
                    store.pause(key, Nanos::from_nanos(span)).unwrap();
                    if key == KEYS[0] {
                        bucket.pause(Nanos::from_nanos(span));
                    }
                }
                Op::Advance(span) => {
                    store.clock().advance(Nanos::from_nanos(span));
                }
                Op::EvictIdle => {
                    store.evict_idle();
                }
            }
            prop_assert!(store.len() <= KEYS.len());
        }
    }
}
