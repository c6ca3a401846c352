//! The limiter: a policy, exact reservations, real waits on the timer and
//! on a `DelayNs`, a pause, and a store that fills up and makes room.
//!
//! Exact expectations are checked inside one critical section: the SysTick
//! cannot advance there, so every decision in it sees the same now. Real
//! waits are checked as "slept at least the wait the store gave", which no
//! amount of host load can break.

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

/// 16 per second under the default 3% margin: ⌈1 s / (16 × 0.97)⌉.
const INTERVAL: Nanos = Nanos::from_nanos(64_432_990);
/// The pause a 429 with `Retry-After` would set (shortened for the run).
const PAUSE: Nanos = Nanos::from_millis(500);
/// How long a request is willing to wait for its slot.
#[cfg_attr(not(feature = "learner"), allow(dead_code))]
pub(super) const MAX_WAIT: Nanos = Nanos::from_secs(5);

const BUCKETS: usize = 8;
/// The firmware's one store: eight buckets, one policy.
pub(super) static STORE: FixedStore<CriticalSectionRawMutex, BUCKETS, 1, EmbassyClock> =
    FixedStore::new(EmbassyClock);

pub async fn run(report: &mut Report) {
    sizes(report);
    policy(report);
    exact_reservations(report);
    timer_wait(report).await;
    delay_wait(report).await;
    pause(report).await;
    capacity(report).await;
}

fn sizes(report: &mut Report) {
    report.check(checks::BUCKET_BYTES, STORE_BUCKET_BYTES == 16);
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
    report.check(
        checks::POLICY_STORED,
        stored && STORE.policy(SEARCH).ok().flatten() == policy,
    );
    report.check(checks::POLICY_INTERVAL, gcra().emission_interval() == INTERVAL);
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

/// The waits of four reservations on a fresh bucket: 0, T, 2T, 3T.
const EXACT_WAITS: [Option<Nanos>; 4] = [
    Some(Nanos::ZERO),
    Some(INTERVAL),
    Some(INTERVAL.saturating_mul(2)),
    #[cfg(not(feature = "break-a-check"))]
    Some(INTERVAL.saturating_mul(3)),
    // Broken on purpose: one nanosecond off.
    #[cfg(feature = "break-a-check")]
    Some(INTERVAL.saturating_mul(3).saturating_add(Nanos::from_nanos(1))),
];

fn exact_reservations(report: &mut Report) {
    let (waits, refusal) = critical_section::with(|_| {
        let waits: [Option<Nanos>; 4] = core::array::from_fn(|_| wait_of(STORE.acquire(SEARCH, &reserve())));
        (waits, STORE.acquire(SEARCH, &check()))
    });
    report.check(checks::RESERVE_EXACT, waits == EXACT_WAITS);
    report.check(
        checks::CHECK_REFUSED,
        is_refused(refusal, DenialCause::Limit, INTERVAL * 4),
    );
}

/// The fifth request sleeps on the timer until its slot.
async fn timer_wait(report: &mut Report) {
    let start = Instant::now();
    let wait = wait_of(acquire(&STORE, SEARCH, &reserve()).await);
    let slept = nanos(start.elapsed());
    report.note(format_args!(
        "fifth request: wait {} ms, slept {} ms",
        wait.unwrap_or(Nanos::MAX).as_millis_ceil(),
        slept.as_millis_floor()
    ));
    report.check(
        checks::TIMER_SLEEPS,
        wait.is_some_and(|w| w <= INTERVAL * 4 && slept >= w),
    );
    // Woken in its slot, the next slot is at most T away (or here already,
    // had the host held QEMU up for longer than T).
    let next = STORE.acquire(SEARCH, &check());
    report.check(
        checks::TIMER_NEXT_SLOT,
        next.is_ok_and(|d| d.is_allowed() || d.denied().is_some_and(|d| d.retry_after <= INTERVAL)),
    );
}

/// The same on an `embedded_hal_async` delay, for HALs without Embassy.
async fn delay_wait(report: &mut Report) {
    let start = Instant::now();
    let wait = wait_of(acquire_with_delay(&STORE, &mut Delay, SEARCH, &reserve()).await);
    let slept = nanos(start.elapsed());
    report.check(
        checks::DELAY_SLEEPS,
        wait.is_some_and(|w| w <= INTERVAL && slept >= w),
    );
}

/// A 429 pauses the lead endpoint: checks are refused for exactly the
/// pause, reservations queue behind it at the bucket's rate.
async fn pause(report: &mut Report) {
    let (paused, refusal, queued) = critical_section::with(|_| {
        let paused = STORE.pause(LEADS, PAUSE);
        let refusal = STORE.acquire(LEADS, &check());
        let queued = [
            wait_of(STORE.acquire(LEADS, &reserve())),
            wait_of(STORE.acquire(LEADS, &reserve())),
        ];
        (paused, refusal, queued)
    });
    report.check(
        checks::PAUSE_REFUSES,
        paused.is_ok() && is_refused(refusal, DenialCause::Paused, PAUSE),
    );
    report.check(
        checks::PAUSE_QUEUES,
        queued == [Some(PAUSE), Some(PAUSE + INTERVAL)],
    );
    let start = Instant::now();
    let wait = wait_of(acquire(&STORE, LEADS, &reserve()).await);
    let slept = nanos(start.elapsed());
    report.check(
        checks::PAUSE_SLEEPS,
        wait.is_some_and(|w| w <= PAUSE + INTERVAL * 2 && slept >= w),
    );
}

/// Eight buckets that matter fill the store; a ninth key is an error
/// until one of them no longer matters.
async fn capacity(report: &mut Report) {
    // Let every bucket so far go stale: they make room for new keys.
    Timer::after(Duration::from_millis(INTERVAL.as_millis_ceil() + 1)).await;
    let (filled, full) = critical_section::with(|_| {
        let filled = FILL[..8]
            .iter()
            .all(|key| STORE.acquire(key, &check()).is_ok_and(|d| d.is_allowed()));
        (filled, STORE.acquire(FILL[8], &check()))
    });
    report.check(checks::CAPACITY_FILLED, filled);
    report.check(
        checks::CAPACITY_FULL,
        full == Err(FixedStoreError::BucketsFull { capacity: 8 }),
    );
    Timer::after(Duration::from_millis(INTERVAL.as_millis_ceil() + 1)).await;
    report.check(
        checks::CAPACITY_ROOM,
        STORE.acquire(FILL[8], &check()).is_ok_and(|d| d.is_allowed()),
    );
    report.note(format_args!(
        "limiter stage done at {} ms",
        millis(Instant::now().duration_since(Instant::MIN))
    ));
}

/// The wait of an admitted request.
pub(super) fn wait_of<E>(decision: Result<Decision, E>) -> Option<Nanos> {
    decision
        .ok()
        .and_then(Decision::allowed)
        .map(|allowed| allowed.wait)
}

/// Whether `decision` is a refusal for `cause`, to retry after exactly `after`.
fn is_refused<E>(decision: Result<Decision, E>, cause: DenialCause, after: Nanos) -> bool {
    decision
        .ok()
        .and_then(Decision::denied)
        .is_some_and(|denied| denied.cause == cause && denied.retry_after == after)
}

/// An embassy-time duration in nanoseconds.
pub(super) fn nanos(duration: Duration) -> Nanos {
    Nanos::from_micros(duration.as_micros())
}
