//! The in-memory store against `governor`, side by side in this process.
//!
//! # What is compared
//!
//! - `direct`: one un-keyed check on one bucket: ratekeeper's [`Bucket`]
//!   (two atomic words) against governor's direct limiter (one atomic
//!   word).
//! - `keyed_10k`: keyed checks cycling over 10,000 keys already present:
//!   ratekeeper's [`MemoryStore`] with `&str` keys against governor's
//!   default keyed limiter (a `DashMap` with the standard hasher) with
//!   `String` keys, the type it would be given for endpoint keys. Neither
//!   allocates on the hot path: governor borrows the prepared `String`s.
//! - `contended_2_threads`: two threads hammering one bucket, nanoseconds
//!   of wall time per decision (both threads' decisions counted): the
//!   [`Bucket`] against governor's direct limiter, each shared by
//!   reference.
//!
//! # Fairness
//!
//! - The same clock on both sides: governor's default clock reads the
//!   CPU's time-stamp counter through `quanta` for every decision
//!   (`raw()`, then `delta_as_nanos`, a multiplication and a variable
//!   shift); ratekeeper runs on [`QuantaClock`], the same `raw()` reading,
//!   also once per decision, scaled with the same calibration read once
//!   into a fixed-point factor (a multiplication and a constant shift).
//!   governor's other clocks are a coarse one (a value an upkeep thread
//!   refreshes, not a reading per decision) and `std::time::Instant`
//!   (dearer): its default is the cheapest that reads the time per
//!   decision.
//! - The same quota: one cell per nanosecond, a burst of a million.
//!   Decisions take longer than a nanosecond, so every decision is admitted and stores a
//!   new TAT: the write path, the one that swaps and contends. The counts
//!   of admitted decisions are checked, so a side that refused (and so
//!   skipped its write) would be caught.
//! - Each round interleaves chunks of each side (101 of 10,000 decisions,
//!   about a tenth of a millisecond, with one thread; 41 of 10,000 per
//!   thread with two), alternating which goes first, so load from elsewhere
//!   falls on both. With one thread it keeps each side's fastest chunk: on a shared
//!   machine most chunks lose the CPU for part of their run, and the
//!   fastest is the one that did not. With two threads it keeps the median
//!   chunk, since there the fastest would be one in which a thread lost
//!   the CPU and the other ran uncontended. Each figure is the median of
//!   the rounds; ratios are ratekeeper / governor.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Barrier;
use std::time::{Duration, Instant as WallInstant};

use governor::{Quota, RateLimiter};
use ratekeeper_core::{Acquire, Gcra, Nanos, Store};
use ratekeeper_memory::{Bucket, MemoryStore, QuantaClock};

use crate::{Figure, median};

/// The chunks of a round of the single-threaded sections: many short
/// ones (about a tenth of a millisecond each), so that on a shared machine
/// some of each side run without losing the CPU.
const SINGLE_THREAD: Chunks = Chunks {
    count: 101,
    ops: 10_000,
};
/// The chunks of a round of the contended section (decisions per thread):
/// more than one thread's time slice apart would make the median a
/// measure of the scheduler.
const CONTENDED: Chunks = Chunks {
    count: 41,
    ops: 10_000,
};
/// Keys of the keyed section.
const KEYS: usize = 10_000;

/// The burst of every section, from `RK_BENCH_BURST` (default a
/// millisecond's worth, so that two threads reading the clock a few
/// nanoseconds apart are both admitted).
pub fn burst() -> u32 {
    std::env::var("RK_BENCH_BURST")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(1_000_000)
}

/// The quota of every section: one per nanosecond, a burst of [`burst`].
pub fn gcra() -> Gcra {
    Gcra::new(Nanos::from_nanos(1), burst()).unwrap_or(Gcra::SLOWEST)
}

/// governor's form of [`gcra`].
pub fn quota() -> Quota {
    let burst = NonZeroU32::new(burst()).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(Duration::from_nanos(1))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

/// Endpoint-like keys, as ratekeeper would build them.
pub fn keys(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            format!(
                "api.example.com/tenant/{}/v1/items/{{id}}/notes",
                i % 997 + i / 997 * 1_000
            )
        })
        .collect()
}

/// Nanoseconds per call of `op` over `ops` calls; `op` returns whether it
/// was admitted, and every call must be.
fn time_per_op(ops: u32, mut op: impl FnMut(u32) -> bool) -> f64 {
    let start = WallInstant::now();
    let mut admitted = 0u32;
    for i in 0..ops {
        admitted += u32::from(black_box(op(black_box(i))));
    }
    let elapsed = start.elapsed();
    assert_eq!(admitted, ops, "every decision of the benchmark is admitted");
    elapsed.as_nanos() as f64 / f64::from(ops)
}

/// Nanoseconds of wall time per decision with two threads running `op`
/// `ops` times each, started together.
fn time_two_threads(ops: u32, op: &(impl Fn() -> bool + Sync)) -> f64 {
    let barrier = Barrier::new(3);
    let elapsed = std::thread::scope(|scope| {
        let mut workers = Vec::new();
        for _ in 0..2 {
            workers.push(scope.spawn(|| {
                barrier.wait();
                let mut admitted = 0u32;
                for _ in 0..ops {
                    admitted += u32::from(black_box(op()));
                }
                barrier.wait();
                admitted
            }));
        }
        barrier.wait();
        let start = WallInstant::now();
        barrier.wait();
        let elapsed = start.elapsed();
        // Not asserted: a thread preempted between reading the clock and
        // deciding (2 shared cores) decides at an old `now` and may be
        // refused, on either side. Refusals are rare and write nothing.
        let admitted: u32 = workers.into_iter().filter_map(|worker| worker.join().ok()).sum();
        black_box(admitted);
        elapsed
    });
    elapsed.as_nanos() as f64 / (2.0 * f64::from(ops))
}

/// How a round is cut: each round alternates the two sides `count` times,
/// `ops` operations each, so a burst of load from elsewhere on the machine
/// falls on both, and keeps one chunk of each side ([`Pick`]).
#[derive(Clone, Copy, Debug)]
struct Chunks {
    count: u32,
    ops: u32,
}

/// Which chunk of a round stands for it.
#[derive(Clone, Copy, Debug)]
enum Pick {
    /// The fastest: for one thread, the chunk that kept the CPU throughout.
    Fastest,
    /// The median: for two threads, where the fastest chunk would be one
    /// in which a thread was descheduled and the other ran uncontended.
    Median,
}

impl Pick {
    fn of(self, chunks: &mut [f64]) -> f64 {
        match self {
            Pick::Fastest => chunks.iter().copied().fold(f64::INFINITY, f64::min),
            Pick::Median => median(chunks).unwrap_or(f64::NAN),
        }
    }
}

/// Runs `ours` and `theirs` (each timing `ops` operations and returning
/// nanoseconds per operation) for `rounds` rounds of `chunks` interleaved
/// chunks, alternating which side goes first, and returns the medians of
/// the rounds and their ratio.
fn side_by_side(
    name: (&'static str, &'static str, &'static str),
    rounds: usize,
    chunks: Chunks,
    pick: Pick,
    mut ours: impl FnMut(u32) -> f64,
    mut theirs: impl FnMut(u32) -> f64,
) -> Vec<Figure> {
    let chunk = chunks.ops;
    let (mut our_samples, mut their_samples) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (mut our_chunks, mut their_chunks) = (Vec::new(), Vec::new());
        for i in 0..chunks.count {
            if i % 2 == 0 {
                our_chunks.push(ours(chunk));
                their_chunks.push(theirs(chunk));
            } else {
                their_chunks.push(theirs(chunk));
                our_chunks.push(ours(chunk));
            }
        }
        our_samples.push(pick.of(&mut our_chunks));
        their_samples.push(pick.of(&mut their_chunks));
    }
    let ours = median(&mut our_samples).unwrap_or(f64::NAN);
    let theirs = median(&mut their_samples).unwrap_or(f64::NAN);
    vec![
        (name.0, round2(ours).into()),
        (name.1, round2(theirs).into()),
        (name.2, round3(ours / theirs).into()),
    ]
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Heap bytes per bucket of a store holding `count` idle buckets (used
/// once, then the clock moved past them), as its tables allocated them
/// ([`MemoryStore::heap_bytes`]).
pub fn bytes_per_idle_bucket(count: usize) -> f64 {
    let store = MemoryStore::builder()
        .max_buckets(count)
        .build(ratekeeper_core::ManualClock::new());
    let check = Acquire::check(gcra());
    for key in keys(count) {
        let _ = store.acquire(&key, &check);
    }
    store.clock().advance(Nanos::from_secs(1));
    store.heap_bytes() as f64 / store.len().max(1) as f64
}

/// One direct decision on ratekeeper's side (kept out of line on both
/// sides alike, so that neither benefits from being folded into the loop).
#[inline(never)]
pub fn direct_ratekeeper(bucket: &Bucket<QuantaClock>, check: &Acquire) -> bool {
    bucket.acquire(check).is_allowed()
}

/// One direct decision on governor's side.
#[inline(never)]
pub fn direct_governor(limiter: &governor::DefaultDirectRateLimiter) -> bool {
    limiter.check().is_ok()
}

/// Figures of the in-memory store against governor: medians of `rounds`
/// interleaved rounds.
pub fn figures(rounds: usize) -> Vec<Figure> {
    let mut figures = Vec::new();
    let check = Acquire::check(gcra());

    // Direct.
    let bucket = Bucket::new(QuantaClock::new());
    let direct = RateLimiter::direct(quota());
    figures.extend(side_by_side(
        ("ns_direct", "ns_direct_governor", "ratio_direct"),
        rounds,
        SINGLE_THREAD,
        Pick::Fastest,
        |ops| time_per_op(ops, |_| direct_ratekeeper(&bucket, &check)),
        |ops| time_per_op(ops, |_| direct_governor(&direct)),
    ));

    // Keyed over 10,000 keys, all present before the first measured run.
    let keys = keys(KEYS);
    let store = MemoryStore::new(QuantaClock::new());
    let keyed = RateLimiter::<String, _, _>::keyed(quota());
    for key in &keys {
        let _ = store.acquire(key, &check);
        let _ = keyed.check_key(key);
    }
    let key_at = |i: u32| keys.get(i as usize % KEYS).map_or("", String::as_str);
    figures.extend(side_by_side(
        ("ns_keyed_10k", "ns_keyed_10k_governor", "ratio_keyed_10k"),
        rounds,
        SINGLE_THREAD,
        Pick::Fastest,
        |ops| {
            time_per_op(ops, |i| {
                store.acquire(key_at(i), &check).is_ok_and(|d| d.is_allowed())
            })
        },
        |ops| {
            time_per_op(ops, |i| {
                keys.get(i as usize % KEYS)
                    .is_some_and(|key| keyed.check_key(key).is_ok())
            })
        },
    ));
    figures.push(("buckets_keyed_10k", store.len().into()));
    figures.push((
        "bytes_per_bucket_keyed_10k",
        round2(store.heap_bytes() as f64 / store.len() as f64).into(),
    ));
    figures.push((
        "bytes_per_idle_bucket_100k",
        round2(bytes_per_idle_bucket(100_000)).into(),
    ));

    // Two threads on one bucket.
    let bucket = Bucket::new(QuantaClock::new());
    let direct = RateLimiter::direct(quota());
    figures.extend(side_by_side(
        (
            "ns_contended_2_threads",
            "ns_contended_2_threads_governor",
            "ratio_contended_2_threads",
        ),
        rounds,
        CONTENDED,
        Pick::Median,
        |ops| time_two_threads(ops, &|| direct_ratekeeper(&bucket, &check)),
        |ops| time_two_threads(ops, &|| direct_governor(&direct)),
    ));

    figures
}
