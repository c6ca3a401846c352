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
use ratekeeper_core::{Acquire, Clock, Decision, DenialCause, Gcra, Nanos, PolicyConfig, Store};
use ratekeeper_embassy::{EmbassyClock, FixedStore, FixedStoreError, acquire, acquire_with_delay, key_hash};

use super::{checks, millis};
use crate::report::Report;

/// Close's search endpoint: 16 requests per second.
const SEARCH: &str = "api.close.com/api/v1/data/search/";
/// Close's lead endpoint, here paused by a 429.
const LEADS: &str = "api.close.com/api/v1/lead/{id}/";
/// Nine more endpoints, to fill the store: `api.example.com/0`,
/// `api.example.com/01`, ... `api.example.com/012345678`, the prefixes of
/// one path (nine keys in 25 bytes of flash, rather than nine strings and
/// a table of them).
const FILL_PATHS: &str = "api.example.com/012345678";
const FILL_KEYS: usize = 9;

/// Fill key `i` (from 0).
const fn fill_key(i: usize) -> &'static str {
    FILL_PATHS.split_at(FILL_PATHS.len() - (FILL_KEYS - 1) + i).0
}
// Distinct keys must not share a bucket: proven at compile time.
const _: () = {
    let mut hashes = [key_hash(SEARCH), key_hash(LEADS), 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut i = 0;
    while i < FILL_KEYS {
        hashes[i + 2] = key_hash(fill_key(i));
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

/// Awaits `$acquire`, a ratekeeper acquire, and gives its [`outcome_of`],
/// read where the acquire answers its decision, by reference: a decision
/// is larger than a 32-bit target copies inline at opt-level "z", and
/// moving it out of the await would cost a block copy routine. (A macro,
/// so the acquire is built in the stage's own future rather than moved
/// into another.)
macro_rules! awaited_outcome {
    ($acquire:expr) => {{
        let mut acquire = core::pin::pin!($acquire);
        core::future::poll_fn(|cx| match acquire.as_mut().poll(cx) {
            core::task::Poll::Ready(ref decision) => {
                core::task::Poll::Ready($crate::scenario::limiter::outcome_of(decision))
            }
            core::task::Poll::Pending => core::task::Poll::Pending,
        })
        .await
    }};
}

/// [`slept_through`] of `$acquire`, an acquire started at `$start`.
macro_rules! slept {
    ($acquire:expr, $start:expr) => {
        slept_through(awaited_outcome!($acquire), $start)
    };
}

pub async fn run(report: &mut Report) {
    report.stage(checks::LIMITER);
    sizes(report);
    // One reservation at the policy's pace is all that is kept across the
    // waits; checks are the same request with no wait.
    let reserve = Acquire::reserve(policy(report), MAX_WAIT);
    exact_reservations(report, &reserve);
    {
        // The fifth request sleeps on the timer until its slot.
        let start = EmbassyClock.now();
        let observed = slept!(acquire(&STORE, SEARCH, &reserve), start);
        timer_slept(report, &observed, start, &reserve);
    }
    {
        // The same on an `embedded_hal_async` delay, for HALs without Embassy.
        let start = EmbassyClock.now();
        let mut delay = Delay;
        let observed = slept!(acquire_with_delay(&STORE, &mut delay, SEARCH, &reserve), start);
        report.verify(&observed);
    }
    {
        // A 429 pauses the lead endpoint: checks are refused for exactly the
        // pause, reservations queue behind it at the bucket's rate.
        paused(report, &reserve);
        let start = EmbassyClock.now();
        let observed = slept!(acquire(&STORE, LEADS, &reserve), start);
        report.verify(&observed);
    }
    // Eight buckets that matter fill the store; a ninth key is an error
    // until one of them no longer matters. Waiting one interval lets every
    // bucket so far go stale, making room for new keys.
    Timer::after(STALE).await;
    fill(report, &reserve);
    Timer::after(STALE).await;
    report.verify(&outcome_of(&STORE.acquire(fill_key(8), &check(&reserve))));
    report.note(format_args!(
        "limiter stage done at {} ms",
        millis(Instant::now().duration_since(Instant::MIN))
    ));
}

/// Longer than one interval: every bucket admitted before it is stale after.
const STALE: Duration = Duration::from_millis(INTERVAL.as_millis_ceil() + 1);

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
/// when the firmware is built without the learner. Returns the search
/// endpoint's pacing, from the policy read back from the store.
fn policy(report: &mut Report) -> Gcra {
    #[cfg(feature = "learner")]
    let policy = super::learner::learn_from_close();
    #[cfg(not(feature = "learner"))]
    let policy = ratekeeper_core::Policy::new(
        16,
        Nanos::from_secs(1),
        ratekeeper_core::PolicySource::Configured,
        EmbassyClock.now(),
    )
    .ok();
    let stored = policy.is_some_and(|p| STORE.set_policy(SEARCH, &p).is_ok());
    let read_back = STORE.policy(SEARCH).ok().flatten();
    report.verify(&[u64::from(stored && read_back == policy)]);
    let gcra = read_back.map_or(Gcra::SLOWEST, |p| p.to_gcra(&PolicyConfig::default()));
    report.verify(&[gcra.emission_interval().as_nanos()]);
    gcra
}

/// Four reservations on a fresh bucket, then a check (a reservation that
/// waits for nothing).
fn exact_reservations(report: &mut Report, reserve: &Acquire) {
    let mut observed = [0; 10];
    critical_section::with(|_| {
        let check = check(reserve);
        for (i, slot) in observed.chunks_exact_mut(2).enumerate() {
            let request = if i < 4 { reserve } else { &check };
            slot.copy_from_slice(&outcome_of(&STORE.acquire(SEARCH, request)));
        }
    });
    let (waits, refusal) = observed.split_at(8);
    report.verify(waits);
    report.verify(refusal);
}

/// What the fifth request waited and slept; then, woken in its slot, the
/// next slot is at most T away (or here already, had the host held QEMU up
/// for longer than T).
fn timer_slept(report: &mut Report, observed: &[u64; 3], start: ratekeeper_core::Instant, reserve: &Acquire) {
    report.note(format_args!(
        "fifth request: wait {} ms, slept {} ms",
        Nanos::from_nanos(observed[1]).as_millis_ceil(),
        EmbassyClock
            .now()
            .saturating_duration_since(start)
            .as_millis_floor()
    ));
    report.verify(observed);
    report.verify(&outcome_of(&STORE.acquire(SEARCH, &check(reserve))));
}

/// The pause's exact refusals and queue.
fn paused(report: &mut Report, reserve: &Acquire) {
    let mut observed = [0; 7];
    critical_section::with(|_| {
        observed[0] = u64::from(STORE.pause(LEADS, PAUSE).is_ok());
        let check = check(reserve);
        for (i, slot) in observed[1..].chunks_exact_mut(2).enumerate() {
            let request = if i == 0 { &check } else { reserve };
            slot.copy_from_slice(&outcome_of(&STORE.acquire(LEADS, request)));
        }
    });
    let (refusal, queued) = observed.split_at(3);
    report.verify(refusal);
    report.verify(queued);
}

/// Eight keys fill the store, a ninth finds it full.
fn fill(report: &mut Report, reserve: &Acquire) {
    let check = check(reserve);
    let (filled, full) = critical_section::with(|_| {
        let filled = (0..8)
            .filter(|&i| outcome_of(&STORE.acquire(fill_key(i), &check))[0] == checks::OUTCOME_ALLOWED)
            .count();
        (filled, outcome_of(&STORE.acquire(fill_key(8), &check)))
    });
    report.verify(&[filled as u64]);
    report.verify(&full);
}

/// The check of `reserve`: the same request, admitted now or not at all.
fn check(reserve: &Acquire) -> Acquire {
    Acquire {
        max_wait: Nanos::ZERO,
        ..*reserve
    }
}

/// [`outcome_of`] a store call's result taken by value.
#[cfg_attr(not(feature = "learner"), allow(dead_code))]
pub(super) fn outcome(decision: Result<Decision, FixedStoreError>) -> [u64; 2] {
    outcome_of(&decision)
}

/// What a store call returned, as the outcome code of [`checks`] and the
/// figure that goes with it.
#[inline(never)]
pub(super) fn outcome_of(decision: &Result<Decision, FixedStoreError>) -> [u64; 2] {
    match decision {
        Ok(Decision::Allowed(allowed)) => [checks::OUTCOME_ALLOWED, allowed.wait.as_nanos()],
        Ok(Decision::Denied(denied)) => [
            match denied.cause {
                DenialCause::Limit => checks::OUTCOME_LIMIT,
                DenialCause::Paused => checks::OUTCOME_PAUSED,
            },
            denied.retry_after.as_nanos(),
        ],
        Ok(Decision::Impossible { cost, .. }) => [checks::OUTCOME_IMPOSSIBLE, u64::from(*cost)],
        Err(FixedStoreError::BucketsFull { capacity }) => [checks::OUTCOME_FULL, *capacity as u64],
        Err(_) => [checks::OUTCOME_ERROR, 0],
    }
}

/// The outcome of an acquire that slept since `start`, and whether it
/// slept at least its wait (both on the timer's clock, in nanoseconds).
#[inline(never)]
fn slept_through([kind, wait]: [u64; 2], start: ratekeeper_core::Instant) -> [u64; 3] {
    let slept = EmbassyClock.now().saturating_duration_since(start).as_nanos();
    [kind, wait, u64::from(slept >= wait)]
}

/// An embassy-time duration in nanoseconds.
#[cfg_attr(not(feature = "learner"), allow(dead_code))]
pub(super) fn nanos(duration: Duration) -> Nanos {
    Nanos::from_micros(duration.as_micros())
}
