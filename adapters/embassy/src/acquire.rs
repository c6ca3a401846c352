//! Reserve, then wait: [`acquire`] with `embassy_time::Timer`, and
//! [`acquire_with_delay`] with any `embedded_hal_async` delay.
//!
//! Both ask the store once, with the caller's [`Acquire`] (a reservation
//! when its `max_wait` is above zero), and then sleep for exactly the wait
//! the store answered, rounded up to what the timer can express: a wait is
//! a lower bound, so rounding down would send early. The store is never
//! polled; many tasks waiting on one bucket each hold their own slot.

use embassy_time::{Duration, Timer};
use embedded_hal_async::delay::DelayNs;
use ratekeeper_core::{Acquire, Allowed, Decision, Denied, Nanos, Store};

/// Decides `request` on `key` and, when it is admitted after a wait,
/// sleeps that wait with `embassy_time::Timer`. Returns the store's
/// decision; on return from an [`Decision::Allowed`] the request may be
/// sent. Denied and impossible requests return at once.
///
/// ```
/// use core::pin::pin;
/// use core::task::{Context, Poll, Waker};
/// use embassy_sync::blocking_mutex::raw::NoopRawMutex;
/// use ratekeeper_core::{Acquire, Gcra, Nanos};
/// use ratekeeper_embassy::{EmbassyClock, FixedStore, acquire};
///
/// let store: FixedStore<NoopRawMutex, 4, 1> = FixedStore::new(EmbassyClock);
/// let gcra = Gcra::new(Nanos::from_secs(1), 1).unwrap();
/// let request = Acquire::reserve(gcra, Nanos::from_secs(5));
/// let mut cx = Context::from_waker(Waker::noop());
///
/// // The first request of a full bucket goes at once.
/// let first = pin!(acquire(&store, "api.example.com/items", &request));
/// assert!(matches!(first.poll(&mut cx), Poll::Ready(Ok(d)) if d.is_allowed()));
///
/// // The second holds the next slot and sleeps until it comes.
/// let mut second = pin!(acquire(&store, "api.example.com/items", &request));
/// assert!(second.as_mut().poll(&mut cx).is_pending());
/// embassy_time::MockDriver::get().advance(embassy_time::Duration::from_secs(1));
/// assert!(matches!(second.poll(&mut cx), Poll::Ready(Ok(d)) if d.is_allowed()));
/// ```
pub async fn acquire<S: Store + ?Sized>(
    store: &S,
    key: &str,
    request: &Acquire,
) -> Result<Decision, S::Error> {
    // The result is kept whole and returned as it came: firmware pays for
    // every copy of it.
    let decision = store.acquire(key, request);
    if let Ok(Decision::Allowed(allowed)) = &decision
        && !allowed.wait.is_zero()
    {
        let deadline = embassy_time::Instant::now()
            .checked_add(ticks_ceil(allowed.wait))
            .unwrap_or(embassy_time::Instant::MAX);
        Timer::at(deadline).await;
    }
    rebuilt(decision)
}

/// [`acquire`] for HALs without Embassy: the same decision, with the wait
/// slept on `delay` by `delay_ns` alone: in one call when it is at most
/// 4.294 s (the most whole milliseconds a `u32` of nanoseconds holds),
/// else in calls of 4.294 s and then one of what is left.
///
/// ```
/// use core::pin::pin;
/// use core::task::{Context, Poll, Waker};
/// use embassy_sync::blocking_mutex::raw::NoopRawMutex;
/// use embedded_hal_async::delay::DelayNs;
/// use ratekeeper_core::{Acquire, Clock, Gcra, ManualClock, Nanos};
/// use ratekeeper_embassy::{FixedStore, acquire_with_delay};
///
/// /// A delay that moves a manual clock instead of sleeping.
/// struct Skip<'a>(&'a ManualClock);
/// impl DelayNs for Skip<'_> {
///     async fn delay_ns(&mut self, ns: u32) {
///         self.0.advance(Nanos::from_nanos(ns.into()));
///     }
/// }
///
/// let store: FixedStore<NoopRawMutex, 4, 1, ManualClock> = FixedStore::new(ManualClock::new());
/// let gcra = Gcra::new(Nanos::from_millis(250), 1).unwrap();
/// let request = Acquire::reserve(gcra, Nanos::from_secs(5));
/// let mut cx = Context::from_waker(Waker::noop());
/// for _ in 0..3 {
///     let mut delay = Skip(store.clock());
///     let sent = pin!(acquire_with_delay(&store, &mut delay, "k", &request));
///     assert!(matches!(sent.poll(&mut cx), Poll::Ready(Ok(d)) if d.is_allowed()));
/// }
/// // Three requests, paced 250 ms apart: the delay slept 500 ms in all.
/// assert_eq!(store.clock().now().since_origin(), Nanos::from_millis(500));
/// ```
pub async fn acquire_with_delay<S, D>(
    store: &S,
    delay: &mut D,
    key: &str,
    request: &Acquire,
) -> Result<Decision, S::Error>
where
    S: Store + ?Sized,
    D: DelayNs + ?Sized,
{
    let decision = store.acquire(key, request);
    if let Ok(Decision::Allowed(allowed)) = &decision {
        sleep(delay, allowed.wait).await;
    }
    rebuilt(decision)
}

/// `decision`, built again field by field rather than copied whole: a
/// decision is larger than a 32-bit target copies inline at opt-level
/// "z", and a copy of it would cost firmware a block copy routine.
#[inline(always)]
fn rebuilt<E>(decision: Result<Decision, E>) -> Result<Decision, E> {
    Ok(match decision? {
        Decision::Allowed(allowed) => Decision::Allowed(Allowed {
            tat: allowed.tat,
            wait: allowed.wait,
            remaining: allowed.remaining,
            reset_after: allowed.reset_after,
        }),
        Decision::Denied(denied) => Decision::Denied(Denied {
            retry_after: denied.retry_after,
            remaining: denied.remaining,
            reset_after: denied.reset_after,
            cause: denied.cause,
        }),
        Decision::Impossible { cost, burst } => Decision::Impossible { cost, burst },
    })
}

/// The longest span [`sleep`] asks of one `delay_ns` call: the most whole
/// milliseconds a `u32` of nanoseconds holds (4.294 s).
const SLEEP_CHUNK_NS: u64 = 4_294_000_000;

/// Sleeps exactly `span` on `delay`, in calls of `delay_ns`: of
/// [`SLEEP_CHUNK_NS`] each while more is left, then one of what is left.
/// Every call but the last is whole milliseconds, so a millisecond timer
/// rounds up the last alone. One way of waiting, so one await to pay for
/// in firmware.
async fn sleep<D: DelayNs + ?Sized>(delay: &mut D, span: Nanos) {
    let mut left = span.as_nanos();
    while left > 0 {
        let chunk = left.min(SLEEP_CHUNK_NS);
        // `chunk ≤ SLEEP_CHUNK_NS < 2³²`: the cast and the difference are
        // exact.
        delay.delay_ns(chunk as u32).await;
        left = left.wrapping_sub(chunk);
    }
}

/// `span` in embassy-time ticks, rounded up, saturating.
fn ticks_ceil(span: Nanos) -> Duration {
    const NANOS_PER_SEC: u64 = 1_000_000_000;
    let hz = embassy_time::TICK_HZ;
    // Every usual tick rate divides a second into whole nanoseconds: then
    // `⌈span · hz / 10^9⌉ = ⌈span / (10^9 / hz)⌉`, in `u64` (the branch is
    // decided at compile time; the 128-bit form costs 32-bit targets code).
    // `⌈n / d⌉ = (n − 1) / d + 1` for `n > 0`: one division, and no
    // remainder to work out.
    if NANOS_PER_SEC.is_multiple_of(hz) {
        return Duration::from_ticks(match span.as_nanos().checked_sub(1) {
            Some(less) => less / (NANOS_PER_SEC / hz) + 1,
            None => 0,
        });
    }
    let ticks = (u128::from(span.as_nanos()) * u128::from(hz)).div_ceil(u128::from(NANOS_PER_SEC));
    Duration::from_ticks(u64::try_from(ticks).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};

    use embassy_sync::blocking_mutex::raw::NoopRawMutex;
    use ratekeeper_core::{Clock, DenialCause, Gcra, ManualClock};

    use super::*;
    use crate::FixedStore;

    /// A delay that records what it was asked and moves a manual clock.
    struct Recorder<'a> {
        clock: &'a ManualClock,
        calls: std::vec::Vec<(char, u32)>,
    }

    impl DelayNs for Recorder<'_> {
        async fn delay_ns(&mut self, ns: u32) {
            self.calls.push(('n', ns));
            self.clock.advance(Nanos::from_nanos(ns.into()));
        }

        async fn delay_ms(&mut self, ms: u32) {
            self.calls.push(('m', ms));
            self.clock.advance(Nanos::from_millis(ms.into()));
        }
    }

    fn ready<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("a delay that never sleeps left the future pending"),
        }
    }

    #[test]
    fn delays_sleep_the_exact_wait() {
        let store: FixedStore<NoopRawMutex, 2, 1, ManualClock> = FixedStore::new(ManualClock::new());
        let gcra = Gcra::new(Nanos::from_nanos(1_500_000_007), 1).unwrap();
        let request = Acquire::reserve(gcra, Nanos::from_secs(10));
        let mut delay = Recorder {
            clock: store.clock(),
            calls: std::vec::Vec::new(),
        };
        ready(acquire_with_delay(&store, &mut delay, "k", &request)).unwrap();
        assert!(delay.calls.is_empty(), "the first request goes at once");
        let decision = ready(acquire_with_delay(&store, &mut delay, "k", &request)).unwrap();
        assert_eq!(decision.allowed().unwrap().wait, Nanos::from_nanos(1_500_000_007));
        assert_eq!(delay.calls, [('n', 1_500_000_007)]);
    }

    #[test]
    fn refusals_do_not_sleep() {
        let store: FixedStore<NoopRawMutex, 2, 1, ManualClock> = FixedStore::new(ManualClock::new());
        let gcra = Gcra::new(Nanos::from_secs(1), 1).unwrap();
        let mut delay = Recorder {
            clock: store.clock(),
            calls: std::vec::Vec::new(),
        };
        ready(acquire_with_delay(&store, &mut delay, "k", &Acquire::check(gcra))).unwrap();
        let second = ready(acquire_with_delay(&store, &mut delay, "k", &Acquire::check(gcra))).unwrap();
        assert!(!second.is_allowed());
        assert!(delay.calls.is_empty());
        assert_eq!(store.clock().now().since_origin(), Nanos::ZERO);
    }

    #[test]
    fn long_waits_are_slept_in_chunks() {
        let clock = ManualClock::new();
        let mut delay = Recorder {
            clock: &clock,
            calls: std::vec::Vec::new(),
        };
        let span = Nanos::from_millis(2 * 4_294 + 5) + Nanos::from_nanos(3);
        ready(sleep(&mut delay, span));
        assert_eq!(
            delay.calls,
            [('n', 4_294_000_000), ('n', 4_294_000_000), ('n', 5_000_003)]
        );
        assert_eq!(clock.now().since_origin(), span);
        delay.calls.clear();
        ready(sleep(&mut delay, Nanos::from_nanos(SLEEP_CHUNK_NS)));
        assert_eq!(delay.calls, [('n', 4_294_000_000)]);
        delay.calls.clear();
        ready(sleep(&mut delay, Nanos::ZERO));
        assert!(delay.calls.is_empty());
    }

    /// `sleep` as it was (whole milliseconds by `delay_ms`, at most
    /// `u32::MAX` at a time, then the nanoseconds left by `delay_ns`): the
    /// model the one above must match in the time it sleeps.
    async fn previous_sleep<D: DelayNs + ?Sized>(delay: &mut D, span: Nanos) {
        let mut millis = span.as_millis_floor();
        while millis > 0 {
            let chunk = u32::try_from(millis).unwrap_or(u32::MAX);
            delay.delay_ms(chunk).await;
            millis -= u64::from(chunk);
        }
        let rest = span.as_nanos() % 1_000_000;
        if rest > 0 {
            delay.delay_ns(u32::try_from(rest).unwrap()).await;
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// The same time slept as before, to the nanosecond, in calls of
        /// whole milliseconds but the last, none of them empty.
        #[test]
        fn sleeps_as_long_as_before(
            nanos in proptest::prop_oneof![
                0..1u64 << 40,
                (0..1u64 << 20).prop_map(|ms| ms * 1_000_000),
                (0..256u64, 0..3u64).prop_map(|(n, d)| (n * SLEEP_CHUNK_NS + d).saturating_sub(1)),
            ],
        ) {
            let span = Nanos::from_nanos(nanos);
            let (now, before) = (ManualClock::new(), ManualClock::new());
            let mut delay = Recorder { clock: &now, calls: std::vec::Vec::new() };
            let mut model = Recorder { clock: &before, calls: std::vec::Vec::new() };
            ready(sleep(&mut delay, span));
            ready(previous_sleep(&mut model, span));
            proptest::prop_assert_eq!(now.now(), before.now());
            proptest::prop_assert_eq!(now.now().since_origin(), span);
            let (last, whole) = delay.calls.split_last().map_or((None, &[][..]), |(l, w)| (Some(l), w));
            proptest::prop_assert!(whole.iter().all(|&(kind, ns)| kind == 'n' && u64::from(ns) == SLEEP_CHUNK_NS));
            proptest::prop_assert!(last.is_none_or(|&(kind, ns)| kind == 'n' && ns > 0 && u64::from(ns) <= SLEEP_CHUNK_NS));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// Rebuilding a decision field by field gives back the same
        /// decision, whatever it is.
        #[test]
        fn a_rebuilt_decision_is_the_same(
            words in proptest::prelude::any::<[u64; 3]>(),
            counts in proptest::prelude::any::<[u32; 2]>(),
            kind in 0..5u8,
        ) {
            let [a, b, c] = words.map(Nanos::from_nanos);
            let decision: Result<Decision, u8> = match kind {
                0 => Ok(Decision::Allowed(Allowed {
                    tat: ratekeeper_core::Instant::from_nanos(words[0]),
                    wait: b,
                    remaining: counts[0],
                    reset_after: c,
                })),
                1 | 2 => Ok(Decision::Denied(Denied {
                    retry_after: a,
                    remaining: counts[0],
                    reset_after: b,
                    cause: if kind == 1 { DenialCause::Limit } else { DenialCause::Paused },
                })),
                3 => Ok(Decision::Impossible { cost: counts[0], burst: counts[1] }),
                _ => Err(counts[1].to_le_bytes()[0]),
            };
            proptest::prop_assert_eq!(rebuilt(decision), decision);
        }
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// Ticks rounded up by one division are the ticks rounded up by
        /// division and remainder, as they were, at the mock driver's
        /// 1 MHz: on whole ticks, one off them, and up to the horizon.
        #[test]
        fn ticks_ceil_is_div_ceil(
            nanos in proptest::prop_oneof![
                0..u64::MAX,
                (0..u64::MAX / 1_000, 0..3u64).prop_map(|(ticks, ns)| (ticks * 1_000 + ns).saturating_sub(1)),
                (u64::MAX - 3_000)..=u64::MAX,
                proptest::strategy::Just(0),
            ],
        ) {
            proptest::prop_assert_eq!(ticks_ceil(Nanos::from_nanos(nanos)).as_ticks(), nanos.div_ceil(1_000));
        }
    }

    #[test]
    fn ticks_round_up() {
        // The mock driver ticks at 1 MHz.
        assert_eq!(ticks_ceil(Nanos::from_nanos(1)).as_ticks(), 1);
        assert_eq!(ticks_ceil(Nanos::from_micros(3)).as_ticks(), 3);
        assert_eq!(ticks_ceil(Nanos::MAX).as_ticks(), 18_446_744_073_709_552);
    }
}
