//! The limiter: a policy, exact reservations, real waits on the timer and
//! on a `DelayNs`, a pause, and a store that fills up and makes room.
//!
//! Exact expectations are observed inside one critical section: the
//! SysTick cannot advance there, so every decision in it sees the same now.
//! Real waits are checked as "slept at least the wait the store gave",
//! which no amount of host load can break. The expected values are in
//! [`checks`].

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{Delay, Duration, Instant, Timer};
use ratekeeper_core::{Acquire, Decision, DenialCause, Gcra, Nanos, PolicyConfig, Store};
use ratekeeper_embassy::{EmbassyClock, FixedStore, FixedStoreError, acquire, acquire_with_delay, key_hash};

use super::{checks, millis};
use crate::report::Report;

/// Close's search endpoint: 16 requests per second.
const SEARCH: &str = "api.close.com/api/v1/data/search/";
/// Close's lead endpoint, here paused by a 429.
const LEADS: &str = "api.close.com/api/v1/lead/{id}/";
/// Eight more endpoints, to fill the store.
const FILL: [&str; 9] = [
    "api.example.com/0",
    "api.example.com/1",
    "api.example.com/2",
    "api.example.com/3",
    "api.example.com/4",
    "api.example.com/5",
    "api.example.com/6",
    "api.example.com/7",
    "api.example.com/8",
];
// Distinct keys must not share a bucket: proven at compile time.
const _: () = {
    let mut hashes = [key_hash(SEARCH), key_hash(LEADS), 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut i = 0;
    while i < FILL.len() {
        hashes[i + 2] = key_hash(FILL[i]);
        i += 1;
    }
    let mut a = 0;
    while a < hashes.len() {
        let mut b = a + 1;
        while b < hashes.len() {
            assert!(hashes[a] != hashes[b]);
            b += 1;
        }
        a += 1;
    }
};

/// 16 per second under the default 3% margin.
const INTERVAL: Nanos = Nanos::from_nanos(checks::INTERVAL_NS);
/// The pause a 429 with `Retry-After` would set (shortened for the run).
const PAUSE: Nanos = Nanos::from_nanos(checks::PAUSE_NS);
/// How long a request is willing to wait for its slot.
#[cfg_attr(not(feature = "learner"), allow(dead_code))]
pub(super) const MAX_WAIT: Nanos = Nanos::from_secs(5);

const BUCKETS: usize = 8;
/// The firmware's one store: eight buckets, one policy.
pub(super) static STORE: FixedStore<CriticalSectionRawMutex, BUCKETS, 1, EmbassyClock> =
    FixedStore::new(EmbassyClock);
const _: () = assert!(BUCKETS as u64 == checks::BUCKETS);

pub async fn run(report: &mut Report) {
    report.stage(checks::LIMITER);
    sizes(report);
    policy(report);
    exact_reservations(report);
    timer_wait(report).await;
    delay_wait(report).await;
    pause(report).await;
    capacity(report).await;
}

fn sizes(report: &mut Report) {
    report.verify(&[STORE_BUCKET_BYTES as u64]);
    report.note(format_args!(
        "bucket table: {} buckets x {} bytes = {} bytes; whole store: {} bytes",
        BUCKETS,
        STORE_BUCKET_BYTES,
        BUCKETS * STORE_BUCKET_BYTES,
        core::mem::size_of_val(&STORE)
    ));
}

const STORE_BUCKET_BYTES: usize =
    FixedStore::<CriticalSectionRawMutex, BUCKETS, 1, EmbassyClock>::BUCKET_BYTES;

/// The policy: learned from Close's `ratelimit: limit=16, remaining=15,
/// reset=1` header by the header parser and the learner, or configured
/// when the firmware is built without the learner.
fn policy(report: &mut Report) {
    #[cfg(feature = "learner")]
    let policy = super::learner::learn_from_close();
    #[cfg(not(feature = "learner"))]
    let policy = ratekeeper_core::Policy::new(
        16,
        Nanos::from_secs(1),
        ratekeeper_core::PolicySource::Configured,
        ratekeeper_core::Clock::now(&EmbassyClock),
    )
    .ok();
    let stored = policy.is_some_and(|p| STORE.set_policy(SEARCH, &p).is_ok());
    report.verify(&[u64::from(stored && STORE.policy(SEARCH).ok().flatten() == policy)]);
    report.verify(&[gcra().emission_interval().as_nanos()]);
}

/// The search endpoint's pacing, from its stored policy.
fn gcra() -> Gcra {
    STORE
        .policy(SEARCH)
        .ok()
        .flatten()
        .map_or(Gcra::SLOWEST, |p| p.to_gcra(&PolicyConfig::default()))
}

fn reserve() -> Acquire {
    Acquire::reserve(gcra(), MAX_WAIT)
}

fn check() -> Acquire {
    Acquire::check(gcra())
}

/// Four reservations on a fresh bucket, then a check.
fn exact_reservations(report: &mut Report) {
    let mut observed = [0; 10];
    critical_section::with(|_| {
        for (i, slot) in observed.chunks_exact_mut(2).enumerate() {
            let request = if i < 4 { reserve() } else { check() };
            slot.copy_from_slice(&outcome(STORE.acquire(SEARCH, &request)));
        }
    });
    let (waits, refusal) = observed.split_at(8);
    report.verify(waits);
    report.verify(refusal);
}

/// The fifth request sleeps on the timer until its slot.
async fn timer_wait(report: &mut Report) {
    let start = Instant::now();
    let decision = acquire(&STORE, SEARCH, &reserve()).await;
    let slept = nanos(start.elapsed());
    let [kind, wait] = outcome(decision);
    report.note(format_args!(
        "fifth request: wait {} ms, slept {} ms",
        Nanos::from_nanos(wait).as_millis_ceil(),
        slept.as_millis_floor()
    ));
    report.verify(&[kind, wait, u64::from(slept.as_nanos() >= wait)]);
    // Woken in its slot, the next slot is at most T away (or here already,
    // had the host held QEMU up for longer than T).
    report.verify(&outcome(STORE.acquire(SEARCH, &check())));
}

/// The same on an `embedded_hal_async` delay, for HALs without Embassy.
async fn delay_wait(report: &mut Report) {
    let start = Instant::now();
    let decision = acquire_with_delay(&STORE, &mut Delay, SEARCH, &reserve()).await;
    report.verify(&slept_through(decision, start));
}

/// A 429 pauses the lead endpoint: checks are refused for exactly the
/// pause, reservations queue behind it at the bucket's rate.
async fn pause(report: &mut Report) {
    paused(report);
    let start = Instant::now();
    let decision = acquire(&STORE, LEADS, &reserve()).await;
    report.verify(&slept_through(decision, start));
}

/// The pause's exact refusals and queue (a plain function: nothing of it
/// sits in the task's future).
fn paused(report: &mut Report) {
    let mut observed = [0; 7];
    critical_section::with(|_| {
        observed[0] = u64::from(STORE.pause(LEADS, PAUSE).is_ok());
        for (i, slot) in observed[1..].chunks_exact_mut(2).enumerate() {
            let request = if i == 0 { check() } else { reserve() };
            slot.copy_from_slice(&outcome(STORE.acquire(LEADS, &request)));
        }
    });
    let (refusal, queued) = observed.split_at(3);
    report.verify(refusal);
    report.verify(queued);
}

/// Eight buckets that matter fill the store; a ninth key is an error
/// until one of them no longer matters.
async fn capacity(report: &mut Report) {
    // Let every bucket so far go stale: they make room for new keys.
    Timer::after(Duration::from_millis(INTERVAL.as_millis_ceil() + 1)).await;
    fill(report);
    Timer::after(Duration::from_millis(INTERVAL.as_millis_ceil() + 1)).await;
    report.verify(&outcome(STORE.acquire(FILL[8], &check())));
    report.note(format_args!(
        "limiter stage done at {} ms",
        millis(Instant::now().duration_since(Instant::MIN))
    ));
}

/// Eight keys fill the store, a ninth finds it full.
fn fill(report: &mut Report) {
    let (filled, full) = critical_section::with(|_| {
        let filled = FILL[..8]
            .iter()
            .filter(|key| outcome(STORE.acquire(key, &check()))[0] == checks::OUTCOME_ALLOWED)
            .count();
        (filled, outcome(STORE.acquire(FILL[8], &check())))
    });
    report.verify(&[filled as u64]);
    report.verify(&full);
}

/// What a store call returned, as the outcome code of [`checks`] and the
/// figure that goes with it.
#[inline(never)]
pub(super) fn outcome(decision: Result<Decision, FixedStoreError>) -> [u64; 2] {
    match decision {
        Ok(Decision::Allowed(allowed)) => [checks::OUTCOME_ALLOWED, allowed.wait.as_nanos()],
        Ok(Decision::Denied(denied)) => [
            match denied.cause {
                DenialCause::Limit => checks::OUTCOME_LIMIT,
                DenialCause::Paused => checks::OUTCOME_PAUSED,
            },
            denied.retry_after.as_nanos(),
        ],
        Ok(Decision::Impossible { cost, .. }) => [checks::OUTCOME_IMPOSSIBLE, cost.into()],
        Err(FixedStoreError::BucketsFull { capacity }) => [checks::OUTCOME_FULL, capacity as u64],
        Err(_) => [checks::OUTCOME_ERROR, 0],
    }
}

/// The outcome of an acquire that slept since `start`, and whether it
/// slept at least its wait.
#[inline(never)]
fn slept_through(decision: Result<Decision, FixedStoreError>, start: Instant) -> [u64; 3] {
    let slept = nanos(start.elapsed()).as_nanos();
    let [kind, wait] = outcome(decision);
    [kind, wait, u64::from(slept >= wait)]
}

/// An embassy-time duration in nanoseconds.
pub(super) fn nanos(duration: Duration) -> Nanos {
    Nanos::from_micros(duration.as_micros())
}
