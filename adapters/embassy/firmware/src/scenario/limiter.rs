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
/// Nine more endpoints, to fill the store: `api.example.com/0`,
/// `api.example.com/01`, ... `api.example.com/012345678`, the prefixes of
/// one path (nine keys in 25 bytes of flash, rather than nine strings and
/// a table of them).
const FILL_PATHS: &str = "api.example.com/012345678";
const FILL_KEYS: usize = 9;

/// Fill key `i` (from 0).
const fn fill_key(i: usize) -> &'static str {
    match FILL_PATHS.split_at_checked(FILL_PATHS.len() - (FILL_KEYS - 1) + i) {
        Some((key, _)) => key,
        None => FILL_PATHS,
    }
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

/// Awaits `$acquire`, a ratekeeper acquire, and hands its result to
/// `$then` where the acquire answers it, by reference: a decision is
/// larger than a 32-bit target copies inline at opt-level "z", and moving
/// it out of the await would cost a block copy routine. (A macro, so the
/// acquire is built in the stage's own future rather than moved into
/// another.)
macro_rules! awaited {
    ($acquire:expr, |$decision:ident| $then:expr) => {{
        let mut acquire = core::pin::pin!($acquire);
        core::future::poll_fn(|cx| match acquire.as_mut().poll(cx) {
            core::task::Poll::Ready(ref $decision) => core::task::Poll::Ready($then),
            core::task::Poll::Pending => core::task::Poll::Pending,
        })
        .await
    }};
}

/// What one step of the stage does, to the key the step names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    /// A check (the reservation's request, waiting for nothing): its
    /// [`outcome_of`].
    Check,
    /// A reservation: its [`outcome_of`].
    Reserve,
    /// A 429's pause of [`PAUSE`]: whether it was set.
    Pause,
    /// A check on each of the eight fill keys: how many were admitted.
    Fill,
    /// A reservation that sleeps in [`acquire`], on embassy-time (its
    /// `Delay`, a `Timer` underneath): its [`outcome_of`], and whether it
    /// slept at least its wait.
    Timer,
    /// The same on an `embedded_hal_async` delay.
    Delay,
    /// A wait of [`STALE`] on the timer: every bucket admitted before it
    /// no longer matters after it.
    Stale,
}

/// One step: what it does, to which key ([`key`]), and whether it is the
/// last step of a check, whose values are then checked together.
#[derive(Clone, Copy)]
struct Step {
    op: Op,
    key: u8,
    ends_check: bool,
}

const fn step(op: Op, key: u8, ends_check: bool) -> Step {
    Step { op, key, ends_check }
}

/// The keys the steps name by index.
const SEARCH_KEY: u8 = 0;
const LEADS_KEY: u8 = 1;
const NINTH_KEY: u8 = 2;

/// The steps of the stage, in order, one table run by one loop: each kind
/// of call is made from one place, whatever the number of times it is
/// made. Consecutive steps that neither sleep nor wait run in one critical
/// section, where the SysTick cannot advance, so that they all see the
/// same now and their expectations can be exact.
const STEPS: [Step; 18] = [
    // Four reservations on a fresh bucket wait exactly 0, T, 2T and 3T;
    // then a check is refused for exactly 4T.
    step(Op::Reserve, SEARCH_KEY, false),
    step(Op::Reserve, SEARCH_KEY, false),
    step(Op::Reserve, SEARCH_KEY, false),
    step(Op::Reserve, SEARCH_KEY, true),
    step(Op::Check, SEARCH_KEY, true),
    // The fifth request sleeps on the timer until its slot; woken in it,
    // the next slot is at most T away (or here already, had the host held
    // QEMU up for longer than T).
    step(Op::Timer, SEARCH_KEY, true),
    step(Op::Check, SEARCH_KEY, true),
    // The same on a `DelayNs`, for HALs without Embassy.
    step(Op::Delay, SEARCH_KEY, true),
    // A 429 pauses the lead endpoint: a check is refused for exactly the
    // pause, reservations queue behind it at the bucket's rate, and the
    // third sleeps through it.
    step(Op::Pause, LEADS_KEY, false),
    step(Op::Check, LEADS_KEY, true),
    step(Op::Reserve, LEADS_KEY, false),
    step(Op::Reserve, LEADS_KEY, true),
    step(Op::Timer, LEADS_KEY, true),
    // Eight buckets that matter fill the store; a ninth key is an error
    // until one of them no longer matters. Waiting one interval lets every
    // bucket so far go stale, making room for new keys.
    step(Op::Stale, 0, false),
    step(Op::Fill, 0, true),
    step(Op::Check, NINTH_KEY, true),
    // Once the fill keys have gone stale, the ninth key gets its slot.
    step(Op::Stale, 0, false),
    step(Op::Check, NINTH_KEY, true),
];

/// The key of index `index` in the steps: one copy, called from both
/// places that run steps.
#[inline(never)]
fn key(index: u8) -> &'static str {
    match index {
        SEARCH_KEY => SEARCH,
        LEADS_KEY => LEADS,
        _ => fill_key(FILL_KEYS - 1),
    }
}

pub async fn run(report: &mut Report) {
    report.stage(checks::LIMITER);
    sizes(report);
    // The reservation at the policy's pace is all that is kept across the
    // waits; the steps that neither sleep nor wait make theirs from it.
    let request = Acquire::reserve(policy(report), MAX_WAIT);
    let mut next = 0;
    while let Some(step) = STEPS.get(next) {
        match step.op {
            Op::Timer | Op::Delay => {
                let start = Instant::now();
                let key = key(step.key);
                if step.op == Op::Delay {
                    awaited!(acquire_with_delay(&STORE, Delay, key, &request), |decision| {
                        slept_through(report, decision, start)
                    });
                } else {
                    awaited!(acquire(&STORE, key, &request), |decision| {
                        slept_through(report, decision, start)
                    });
                }
                next += 1;
            }
            Op::Stale => {
                Timer::after(STALE).await;
                next += 1;
            }
            _ => next = decide_exactly(report, next, &request),
        }
    }
    report.note(format_args!(
        "limiter stage done at {} ms",
        millis(Instant::now().duration_since(Instant::MIN))
    ));
}

/// Runs the steps from `STEPS[from]` on that neither sleep nor wait, and
/// makes the checks they end, all in one critical section (the checks'
/// reports too: the SysTick cannot advance there while they print);
/// returns the index of the step after them. Their requests are made at
/// the pace of `reserve`, the stage's reservation.
#[inline(never)]
fn decide_exactly(report: &mut Report, from: usize, reserve: &Acquire) -> usize {
    critical_section::with(|_| {
        // The values of the check being made: at most eight.
        let mut observed = Observed {
            values: [0; 8],
            len: 0,
        };
        let mut next = from;
        while let Some(step) = STEPS.get(next) {
            let max_wait = if step.op == Op::Reserve {
                MAX_WAIT
            } else {
                Nanos::ZERO
            };
            let request = Acquire::reserve(reserve.gcra, max_wait);
            let key = key(step.key);
            match step.op {
                Op::Check | Op::Reserve => observed.push(&outcome_of(&STORE.acquire(key, &request))),
                Op::Pause => observed.push(&[u64::from(STORE.pause(key, PAUSE).is_ok())]),
                Op::Fill => {
                    let filled = (0..FILL_KEYS - 1)
                        .filter(|&i| matches!(STORE.acquire(fill_key(i), &request), Ok(Decision::Allowed(_))))
                        .count();
                    observed.push(&[filled as u64]);
                }
                Op::Timer | Op::Delay | Op::Stale => break,
            }
            if step.ends_check {
                report.verify(observed.values.get(..observed.len).unwrap_or_default());
                observed.len = 0;
            }
            next += 1;
        }
        next
    })
}

/// The values observed for the check being made.
struct Observed {
    values: [u64; 8],
    len: usize,
}

impl Observed {
    fn push(&mut self, values: &[u64]) {
        for &value in values {
            if let Some(slot) = self.values.get_mut(self.len) {
                *slot = value;
            }
            self.len += 1;
        }
    }
}

/// Longer than one interval: every bucket admitted before it is stale after.
const STALE: Duration = Duration::from_millis(INTERVAL.as_millis_ceil() + 1);

/// Checks and reports the store's sizes.
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
    let mut policy = None;
    #[cfg(feature = "learner")]
    super::learner::learn_from_close(&mut policy);
    #[cfg(not(feature = "learner"))]
    let policy = ratekeeper_core::Policy::new(
        16,
        Nanos::from_secs(1),
        ratekeeper_core::PolicySource::Configured,
        ratekeeper_core::Clock::now(&EmbassyClock),
    )
    .ok();
    let stored = policy
        .as_ref()
        .is_some_and(|p| STORE.set_policy(SEARCH, p).is_ok());
    // Read where the store answered, by reference: a policy is larger than
    // a 32-bit target copies cheaply, and each move of it costs code.
    let answer = STORE.policy(SEARCH);
    let read_back = match &answer {
        Ok(Some(read_back)) => Some(read_back),
        _ => None,
    };
    // Compared only when both are there (as when stored): an absent
    // pair needs no comparison code of its own.
    let read_as_set = read_back
        .zip(policy.as_ref())
        .is_some_and(|(read, set)| read == set);
    super::verify_held(report, stored && read_as_set);
    let gcra = read_back.map_or(Gcra::SLOWEST, |p| p.to_gcra(&PolicyConfig::default()));
    report.verify(&[gcra.emission_interval().as_nanos()]);
    gcra
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

/// Checks an acquire that slept since `start`, whose result is `decision`:
/// its outcome, and whether it slept at least its wait. The timer counts
/// whole milliseconds, so it slept at least `wait` nanoseconds exactly when
/// it slept at least `⌈wait / 1 ms⌉` milliseconds.
#[inline(never)]
fn slept_through(report: &mut Report, decision: &Result<Decision, FixedStoreError>, start: Instant) {
    let [kind, wait] = outcome_of(decision);
    let wait_ms = Nanos::from_nanos(wait).as_millis_ceil();
    let slept_ms = millis(start.elapsed());
    report.note(format_args!(
        "acquire: wait {} ms, slept {} ms",
        wait_ms, slept_ms
    ));
    report.verify(&[kind, wait, u64::from(slept_ms >= wait_ms)]);
}
