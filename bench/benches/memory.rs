//! Criterion benches of the in-memory store, next to governor.
//!
//! `cargo bench -p ratekeeper-bench --bench memory`
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use governor::RateLimiter;
use ratekeeper_bench::memory::{gcra, quota};
use ratekeeper_core::{Acquire, ManualClock, Nanos, Store};
use ratekeeper_memory::{Bucket, MemoryStore, QuantaClock};

fn direct(c: &mut Criterion) {
    let mut group = c.benchmark_group("direct");
    let check = Acquire::check(gcra());
    let bucket = Bucket::new(QuantaClock::new());
    group.bench_function("ratekeeper", |b| b.iter(|| black_box(bucket.acquire(&check))));
    let limiter = RateLimiter::direct(quota());
    group.bench_function("governor", |b| b.iter(|| black_box(limiter.check())));
    // The admitting decision without a counter reading: the manual clock
    // moves one cell (1 ns) per call, so every call is admitted and swaps,
    // as on a real clock (a clock that stood still would measure refusals).
    let clock = ManualClock::new();
    let bucket = Bucket::new(&clock);
    group.bench_function("ratekeeper_manual_clock", |b| {
        b.iter(|| {
            clock.advance(Nanos::from_nanos(1));
            black_box(bucket.acquire(&check))
        })
    });
    group.finish();
}

fn keyed(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyed_10k");
    let check = Acquire::check(gcra());
    let keys = ratekeeper_bench::memory::keys(10_000);
    let store = MemoryStore::new(QuantaClock::new());
    let limiter = RateLimiter::<String, _, _>::keyed(quota());
    for key in &keys {
        let _ = store.acquire(key, &check);
        let _ = limiter.check_key(key);
    }
    let mut cycle = keys.iter().cycle();
    group.bench_function("ratekeeper", |b| {
        b.iter(|| black_box(store.acquire(cycle.next().map_or("", String::as_str), &check)))
    });
    let mut cycle = keys.iter().cycle();
    group.bench_function("governor", |b| {
        b.iter(|| cycle.next().map(|key| black_box(limiter.check_key(key))))
    });
    // New keys into a store at its cap: the eviction path.
    let store = MemoryStore::builder()
        .max_buckets(1_000)
        .build(ManualClock::new());
    let mut cycle = keys.iter().cycle();
    group.bench_function("ratekeeper_at_cap_new_keys", |b| {
        b.iter(|| black_box(store.acquire(cycle.next().map_or("", String::as_str), &check)))
    });
    group.finish();
}

criterion_group!(benches, direct, keyed);
criterion_main!(benches);
