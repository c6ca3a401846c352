//! Reserve, then wait: [`acquire`] on the embassy-time timer, and
//! [`acquire_with_delay`] with any `embedded_hal_async` delay.
//!
//! Both ask the store once, with the caller's [`Acquire`] (a reservation
//! when its `max_wait` is above zero), and then sleep for the wait the
//! store answered, rounded up to what the timer can express: a wait is a
//! lower bound, so rounding down would send early. The store is never
//! polled; many tasks waiting on one bucket each hold their own slot.
//!
//! [`acquire`] is [`acquire_with_delay`] on `embassy_time::Delay`: one way
//! of waiting, so firmware that uses both links one copy of it.

use embedded_hal_async::delay::DelayNs;
use ratekeeper_core::{Acquire, Allowed, Decision, Denied, Store};

/// Decides `request` on `key` and, when it is admitted after a wait,
/// sleeps that wait on the embassy-time timer (`embassy_time::Delay`, as
/// [`acquire_with_delay`] sleeps: in one timer wait up to 4.294 s).
/// Returns the store's decision; on return from an [`Decision::Allowed`]
/// the request may be sent. Denied and impossible requests return at once.
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
pub fn acquire<'a, S: Store + ?Sized>(
    store: &'a S,
    key: &'a str,
    request: &'a Acquire,
) -> impl Future<Output = Result<Decision, S::Error>> + 'a {
    acquire_with_delay(store, embassy_time::Delay, key, request)
}

/// [`acquire`] for HALs without Embassy: the same decision, with the wait
/// slept on `delay` by `delay_ns` alone: in one call when it is at most
/// 4.294 s (the most whole milliseconds a `u32` of nanoseconds holds),
/// else in calls of 4.294 s and then one of what is left. Every call but
/// the last is whole milliseconds, so a millisecond timer rounds up the
/// last alone. `delay` is taken by value: pass `&mut delay` to keep it.
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
///     let sent = pin!(acquire_with_delay(&store, Skip(store.clock()), "k", &request));
///     assert!(matches!(sent.poll(&mut cx), Poll::Ready(Ok(d)) if d.is_allowed()));
/// }
/// // Three requests, paced 250 ms apart: the delay slept 500 ms in all.
/// assert_eq!(store.clock().now().since_origin(), Nanos::from_millis(500));
/// ```
pub async fn acquire_with_delay<S, D>(
    store: &S,
    mut delay: D,
    key: &str,
    request: &Acquire,
) -> Result<Decision, S::Error>
where
    S: Store + ?Sized,
    D: DelayNs,
{
    // The result is kept whole and returned as it came: firmware pays for
    // every copy of it.
    let decision = store.acquire(key, request);
    if let Ok(Decision::Allowed(allowed)) = &decision {
        // Slept here rather than in a function of its own: a future nested
        // in this one would cost firmware its own state in flash and RAM.
        let mut left = allowed.wait.as_nanos();
        while left > 0 {
            let chunk = left.min(SLEEP_CHUNK_NS);
            // `chunk ≤ SLEEP_CHUNK_NS < 2³²`: the cast and the difference
            // are exact.
            delay.delay_ns(chunk as u32).await;
            left = left.wrapping_sub(chunk);
        }
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

/// The longest span [`acquire_with_delay`] asks of one `delay_ns` call:
/// the most whole milliseconds a `u32` of nanoseconds holds (4.294 s).
const SLEEP_CHUNK_NS: u64 = 4_294_000_000;

#[cfg(test)]
mod tests {
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};

    use embassy_sync::blocking_mutex::raw::NoopRawMutex;
    use ratekeeper_core::{Clock, DenialCause, Gcra, ManualClock, Nanos};

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

    /// What [`acquire_with_delay`] asks of a delay to sleep `span`, and
    /// how long the delay slept: the second of two reservations on a
    /// bucket whose interval is `span` waits exactly that (the first, all
    /// a zero span makes, goes at once).
    fn sleep(span: Nanos) -> (std::vec::Vec<(char, u32)>, Nanos) {
        let store: FixedStore<NoopRawMutex, 1, 1, ManualClock> = FixedStore::new(ManualClock::new());
        let mut delay = Recorder {
            clock: store.clock(),
            calls: std::vec::Vec::new(),
        };
        let interval = if span.is_zero() {
            Nanos::from_nanos(1)
        } else {
            span
        };
        let request = Acquire::reserve(Gcra::new(interval, 1).unwrap(), Nanos::MAX);
        let first = ready(acquire_with_delay(&store, &mut delay, "k", &request)).unwrap();
        assert_eq!(first.allowed().unwrap().wait, Nanos::ZERO);
        if !span.is_zero() {
            let second = ready(acquire_with_delay(&store, &mut delay, "k", &request)).unwrap();
            assert_eq!(second.allowed().unwrap().wait, span);
        }
        (delay.calls, store.clock().now().since_origin())
    }

    #[test]
    fn long_waits_are_slept_in_chunks() {
        let span = Nanos::from_millis(2 * 4_294 + 5) + Nanos::from_nanos(3);
        assert_eq!(
            sleep(span),
            (
                std::vec![('n', 4_294_000_000), ('n', 4_294_000_000), ('n', 5_000_003)],
                span
            )
        );
        let chunk = Nanos::from_nanos(SLEEP_CHUNK_NS);
        assert_eq!(sleep(chunk), (std::vec![('n', 4_294_000_000)], chunk));
        assert_eq!(sleep(Nanos::ZERO), (std::vec![], Nanos::ZERO));
    }

    /// The sleep of [`acquire_with_delay`] as it once was (whole
    /// milliseconds by `delay_ms`, at most `u32::MAX` at a time, then the
    /// nanoseconds left by `delay_ns`): the model it must match in the
    /// time it sleeps.
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
            let before = ManualClock::new();
            let mut model = Recorder { clock: &before, calls: std::vec::Vec::new() };
            let (calls, slept) = sleep(span);
            ready(previous_sleep(&mut model, span));
            proptest::prop_assert_eq!(slept, before.now().since_origin());
            proptest::prop_assert_eq!(slept, span);
            let (last, whole) = calls.split_last().map_or((None, &[][..]), |(l, w)| (Some(l), w));
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

    /// The ticks [`acquire`] once waited on `embassy_time::Timer` for a
    /// wait of `span`, from now: `span` in ticks, rounded up, saturating.
    /// The model the timer waits of `embassy_time::Delay` must add up to.
    fn previous_ticks(span: Nanos) -> u64 {
        let ticks = (u128::from(span.as_nanos()) * u128::from(embassy_time::TICK_HZ)).div_ceil(1_000_000_000);
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// [`acquire`] sleeps on `embassy_time::Delay` as long, in ticks,
        /// as it once did on one `Timer` (at the mock driver's 1 MHz): its
        /// chunks, each a `Timer` wait rounded up, add up to the wait
        /// rounded up, since every chunk but the last is whole ticks.
        #[test]
        fn delay_waits_add_up_to_the_timer_wait(
            nanos in proptest::prop_oneof![
                0..1u64 << 40,
                (0..1u64 << 30, 0..3u64).prop_map(|(ticks, ns)| (ticks * 1_000 + ns).saturating_sub(1)),
                (0..256u64, 0..3u64).prop_map(|(n, d)| (n * SLEEP_CHUNK_NS + d).saturating_sub(1)),
            ],
        ) {
            let (calls, _) = sleep(Nanos::from_nanos(nanos));
            let ticks: u64 = calls
                .iter()
                .map(|&(_, ns)| embassy_time::Duration::from_nanos(ns.into()).as_ticks())
                .sum();
            proptest::prop_assert_eq!(ticks, previous_ticks(Nanos::from_nanos(nanos)));
        }
    }

    #[test]
    fn acquire_sleeps_on_the_embassy_timer() {
        let _moving = crate::MOCK_DRIVER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let driver = embassy_time::MockDriver::get();
        let store: FixedStore<NoopRawMutex, 1, 1> = FixedStore::new(crate::EmbassyClock);
        let request = Acquire::reserve(
            Gcra::new(Nanos::from_nanos(2_500_000_001), 1).unwrap(),
            Nanos::MAX,
        );
        let mut cx = Context::from_waker(Waker::noop());
        assert!(ready(acquire(&store, "k", &request)).unwrap().is_allowed());
        let mut second = pin!(acquire(&store, "k", &request));
        assert!(second.as_mut().poll(&mut cx).is_pending());
        // 2.5 s and 1 ns, rounded up to the driver's microsecond: 2,500,001 µs.
        driver.advance(embassy_time::Duration::from_micros(2_500_000));
        assert!(second.as_mut().poll(&mut cx).is_pending());
        driver.advance(embassy_time::Duration::from_micros(1));
        let decision = second.poll(&mut cx);
        assert!(
            matches!(decision, Poll::Ready(Ok(d)) if d.allowed().unwrap().wait == Nanos::from_nanos(2_500_000_001))
        );
    }
}
