//! The limiter: a policy, exact reservations, real waits on the timer and
//! on a `DelayNs`, a pause, and a store that fills up and makes room.
//!
//! Exact expectations are checked inside one critical section: the SysTick
//! cannot advance there, so every decision in it sees the same now. Real
//! waits are checked as "slept at least the wait the store gave", which no
//! amount of host load can break.

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{Delay, Duration, Instant, Timer};
use ratekeeper_core::{
    Acquire, Clock, Decision, DenialCause, Gcra, Nanos, Policy, PolicyConfig, PolicySource, Store,
};
use ratekeeper_embassy::{EmbassyClock, FixedStore, FixedStoreError, acquire, acquire_with_delay, key_hash};

use super::millis;
use crate::report::Report;

/// Close's search endpoint: 16 requests per second.
const SEARCH: &str = "api.close.com/api/v1/data/search/";
/// Close's lead endpoint, here paused by a 429.
const LEADS: &str = "api.close.com/api/v1/lead/{id}/";
// Distinct keys must not share a bucket: proven at compile time.
const _: () = assert!(key_hash(SEARCH) != key_hash(LEADS));

/// 16 per second under the default 3% margin: ⌈1 s / (16 × 0.97)⌉.
const INTERVAL: Nanos = Nanos::from_nanos(64_432_990);
/// The pause a 429 with `Retry-After` would set (shortened for the run).
const PAUSE: Nanos = Nanos::from_millis(500);

type Limiter<const BUCKETS: usize, const POLICIES: usize> =
    FixedStore<CriticalSectionRawMutex, BUCKETS, POLICIES, EmbassyClock>;

static STORE: Limiter<8, 2> = Limiter::new(EmbassyClock);
static ONE_BUCKET: Limiter<1, 1> = Limiter::new(EmbassyClock);

pub async fn run(report: &mut Report) {
    report.check(
        "bucket: 16 bytes of RAM each",
        Limiter::<8, 2>::BUCKET_BYTES == 16,
    );
    report.note(format_args!(
        "store of 8 buckets and 2 policies: {} bytes",
        core::mem::size_of_val(&STORE)
    ));

    // The policy. Once the header parser and the learner land, it is learned
    // from a Close `ratelimit: limit=16, remaining=15, reset=1` header here
    // instead of configured.
    let policy = Policy::new(16, Nanos::from_secs(1), PolicySource::Configured, EmbassyClock.now());
    let stored = policy.map_err(drop).and_then(|p| STORE.set_policy(SEARCH, &p).map_err(drop));
    report.check(
        "policy: stored and read back",
        stored.is_ok() && STORE.policy(SEARCH).ok().flatten() == policy.ok(),
    );
    let gcra = STORE
        .policy(SEARCH)
        .ok()
        .flatten()
        .map_or(Gcra::SLOWEST, |p| p.to_gcra(&PolicyConfig::default()));
    report.check("policy: 16/s paces one request per 64.432990 ms", gcra.emission_interval() == INTERVAL);

    let reserve = Acquire::reserve(gcra, Nanos::from_secs(5));
    let check = Acquire::check(gcra);
    let (waits, refusal) = critical_section::with(|_| {
        let waits: [Option<Nanos>; 4] = core::array::from_fn(|_| wait_of(STORE.acquire(SEARCH, &reserve)));
        (waits, STORE.acquire(SEARCH, &check))
    });
    #[allow(unused_mut)]
    let mut expected = [0, 1, 2, 3].map(|k| Some(INTERVAL * k));
    #[cfg(feature = "break-a-check")]
    {
        // Broken on purpose: one nanosecond off.
        expected[3] = Some(INTERVAL * 3 + Nanos::from_nanos(1));
    }
    report.check("reserve: four requests wait exactly 0, T, 2T, 3T", waits == expected);
    report.check(
        "check: the spent bucket refuses, retry after exactly 4T",
        is_refused(refusal, DenialCause::Limit, INTERVAL * 4),
    );

    // Real waits: the fifth request sleeps on the timer until its slot.
    let start = Instant::now();
    let wait = wait_of(acquire(&STORE, SEARCH, &reserve).await);
    let slept = nanos(start.elapsed());
    report.note(format_args!(
        "fifth request: wait {} ms, slept {} ms",
        wait.unwrap_or(Nanos::MAX).as_millis_ceil(),
        slept.as_millis_floor()
    ));
    report.check(
        "acquire: the fifth sleeps on the Timer for its wait (at most 4T)",
        wait.is_some_and(|w| w <= INTERVAL * 4 && slept >= w),
    );
    // Woken in its slot, the next slot is at most T away (or here already,
    // had the host held QEMU up for longer than T).
    let next = STORE.acquire(SEARCH, &check);
    report.check(
        "acquire: after the sleep, the next slot is at most T away",
        next.is_ok_and(|d| d.is_allowed() || d.denied().is_some_and(|d| d.retry_after <= INTERVAL)),
    );

    // The same on an `embedded_hal_async` delay, for HALs without Embassy.
    let start = Instant::now();
    let wait = wait_of(acquire_with_delay(&STORE, &mut Delay, SEARCH, &reserve).await);
    let slept = nanos(start.elapsed());
    report.check(
        "acquire_with_delay: sleeps on DelayNs for its wait (at most T)",
        wait.is_some_and(|w| w <= INTERVAL && slept >= w),
    );

    // A 429 pauses the lead endpoint: checks are refused for exactly the
    // pause, reservations queue behind it at the bucket's rate.
    let (paused, refusal, queued) = critical_section::with(|_| {
        let paused = STORE.pause(LEADS, PAUSE);
        let refusal = STORE.acquire(LEADS, &check);
        let queued = [wait_of(STORE.acquire(LEADS, &reserve)), wait_of(STORE.acquire(LEADS, &reserve))];
        (paused, refusal, queued)
    });
    report.check(
        "pause: checks are refused for exactly the pause",
        paused.is_ok() && is_refused(refusal, DenialCause::Paused, PAUSE),
    );
    report.check(
        "pause: reservations queue behind it, one interval apart",
        queued == [Some(PAUSE), Some(PAUSE + INTERVAL)],
    );
    let start = Instant::now();
    let wait = wait_of(acquire(&STORE, LEADS, &reserve).await);
    let slept = nanos(start.elapsed());
    report.check(
        "pause: the third reservation sleeps through the pause and two intervals",
        wait.is_some_and(|w| w <= PAUSE + INTERVAL * 2 && slept >= w),
    );

    // Capacity: one bucket slot, taken by a bucket that still matters.
    let (first, second) = critical_section::with(|_| {
        (ONE_BUCKET.acquire(SEARCH, &check), ONE_BUCKET.acquire(LEADS, &check))
    });
    report.check(
        "capacity: a full store says so and changes nothing",
        first.is_ok_and(|d| d.is_allowed()) && second == Err(FixedStoreError::BucketsFull { capacity: 1 }),
    );
    Timer::after(Duration::from_millis(INTERVAL.as_millis_ceil() + 1)).await;
    report.check(
        "capacity: a bucket whose state no longer matters makes room",
        ONE_BUCKET.acquire(LEADS, &check).is_ok_and(|d| d.is_allowed()),
    );
    report.note(format_args!("limiter stage done at {} ms", millis(Instant::now().duration_since(Instant::MIN))));
}

/// The wait of an admitted request.
fn wait_of<E>(decision: Result<Decision, E>) -> Option<Nanos> {
    decision.ok().and_then(Decision::allowed).map(|allowed| allowed.wait)
}

/// Whether `decision` is a refusal for `cause`, to retry after exactly `after`.
fn is_refused<E>(decision: Result<Decision, E>, cause: DenialCause, after: Nanos) -> bool {
    decision
        .ok()
        .and_then(Decision::denied)
        .is_some_and(|denied| denied.cause == cause && denied.retry_after == after)
}

/// An embassy-time duration in nanoseconds.
fn nanos(duration: Duration) -> Nanos {
    Nanos::from_micros(duration.as_micros())
}
