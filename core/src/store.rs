//! The store contracts: where bucket state, learned policies and pauses live.
//!
//! # Why the store owns atomicity
//!
//! A rate limit shared by many callers is only as good as its
//! read-decide-write step. "Get the TAT, decide, set the TAT" from the
//! outside races; so the one operation a store offers for pacing is
//! [`Store::acquire`]: *decide and update this bucket*, atomically, by
//! whatever means suits the store. The in-memory store does it with a
//! compare-and-swap on one word, the Redis store with one script call
//! (one round trip), the Embassy store inside a blocking mutex. All of them
//! decide with the same pure function, [`BucketState::decide`], so the
//! semantics cannot drift between them.
//!
//! # Why the store owns the clock
//!
//! `acquire` takes no "now": each store reads its own clock (the Redis store
//! reads the server's `TIME`, so instance clocks never matter) and answers
//! with spans ([`Nanos`]) only, never instants: "wait this long", "retry
//! after this long". Pauses go in as spans for the same reason.
//!
//! # Why two traits
//!
//! [`Store`] is blocking and synchronous: the in-memory and Embassy stores
//! decide in nanoseconds under a CAS or a critical section and have nothing
//! to await. [`AsyncStore`] is what a networked store (Redis) implements.
//! Every `Store` is also an `AsyncStore` through a blanket implementation
//! whose futures are ready at once, so code written against `AsyncStore`
//! (the HTTP middleware, the CLI) takes either, while firmware and blocking
//! callers use `Store` directly with no executor at all. Waiting is never
//! the store's job: it answers how long, and the caller sleeps with its own
//! timer (tokio, `embassy_time::Timer`, a thread sleep).
//!
//! # Keys
//!
//! Keys are the endpoint keys of the bucket (host, tenant, endpoint
//! template): short printable strings. Stores may hash them, prefix them or
//! bound them, but two different keys must never share a bucket unless the
//! store documents the collision rule.

use core::future::Future;

use crate::gcra::{Decision, Gcra};
use crate::policy::Policy;
use crate::time::{Instant, Nanos};

/// A request to pace: what it costs, under which GCRA, and how long the
/// caller is willing to wait.
///
/// ```
/// use ratekeeper_core::{Acquire, Gcra, Nanos};
///
/// let gcra = Gcra::new(Nanos::from_millis(100), 1).unwrap();
/// let check = Acquire::check(gcra);
/// let wait_up_to_5s = Acquire::reserve(gcra, Nanos::from_secs(5));
/// assert_eq!(check.max_wait, Nanos::ZERO);
/// assert_eq!(wait_up_to_5s.cost, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Acquire {
    /// The bucket's parameters, as the caller currently knows them.
    pub gcra: Gcra,
    /// The cost of the request (1 for one request).
    pub cost: u32,
    /// The longest wait the caller accepts: zero to admit now or not at
    /// all, more to reserve a slot and wait for it.
    pub max_wait: Nanos,
}

impl Acquire {
    /// Admit one request now, or say when to retry.
    pub const fn check(gcra: Gcra) -> Acquire {
        Acquire {
            gcra,
            cost: 1,
            max_wait: Nanos::ZERO,
        }
    }

    /// Reserve a slot for one request if it comes within `max_wait`.
    pub const fn reserve(gcra: Gcra, max_wait: Nanos) -> Acquire {
        Acquire {
            gcra,
            cost: 1,
            max_wait,
        }
    }

    /// The same request with another cost.
    pub const fn with_cost(mut self, cost: u32) -> Acquire {
        self.cost = cost;
        self
    }

    /// The decision of [`BucketState::decide`] at `now` for a bucket given
    /// as nanoseconds on the store's clock, `0` standing for "no TAT" and
    /// "not paused" (neither is after any `now`, so `0` decides exactly as
    /// `None`): for stores that keep a bucket in words rather than in a
    /// [`BucketState`]. When admitted, the bucket to store is the
    /// decision's TAT with the pause as it was.
    ///
    /// ```
    /// use ratekeeper_core::{Acquire, BucketState, Gcra, Instant, Nanos};
    ///
    /// let request = Acquire::reserve(Gcra::new(Nanos::from_millis(100), 1).unwrap(), Nanos::from_secs(5));
    /// let now = Instant::from_nanos(7);
    /// let state = BucketState { tat: Some(Instant::from_nanos(50_000_000)), paused_until: None };
    /// assert_eq!(request.decide_nanos(50_000_000, 0, now), state.decide(&request, now).0);
    /// ```
    pub fn decide_nanos(&self, tat: u64, paused_until: u64, now: Instant) -> Decision {
        self.gcra.decide_paused(
            tat,
            paused_until,
            now.as_nanos(),
            self.cost,
            self.max_wait.as_nanos(),
        )
    }
}

/// One bucket's whole state: its TAT and the end of its pause.
///
/// Both are instants on the store's clock. `None` means "never set", which
/// for the TAT is a full bucket and for the pause is not paused.
///
/// ```
/// use ratekeeper_core::{Acquire, BucketState, Gcra, Instant, Nanos};
///
/// let gcra = Gcra::new(Nanos::from_millis(100), 1).unwrap();
/// let now = Instant::from_nanos(0);
/// // A 429 paused the bucket for two seconds.
/// let state = BucketState::EMPTY.paused_for(now, Nanos::from_secs(2));
/// let (decision, next) = state.decide(&Acquire::reserve(gcra, Nanos::from_secs(10)), now);
/// assert_eq!(decision.allowed().unwrap().wait, Nanos::from_secs(2));
/// assert!(next.is_some());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BucketState {
    /// The theoretical arrival time.
    pub tat: Option<Instant>,
    /// No request is admitted before this instant.
    pub paused_until: Option<Instant>,
}

impl BucketState {
    /// A bucket never used: full, not paused.
    pub const EMPTY: BucketState = BucketState {
        tat: None,
        paused_until: None,
    };

    /// Decides `request` at `now`; returns the decision and, when it was
    /// admitted, the state to store (a refusal changes nothing).
    ///
    /// A paused bucket admits nothing before the pause ends. A reservation
    /// made during a pause queues behind it: it is decided as if at the
    /// pause's end, so waiters released by one pause are spread at the
    /// bucket's rate rather than all sent at once.
    pub fn decide(&self, request: &Acquire, now: Instant) -> (Decision, Option<BucketState>) {
        let decision = request.gcra.decide_paused(
            self.tat.map_or(0, Instant::as_nanos),
            self.paused_until.map_or(0, Instant::as_nanos),
            now.as_nanos(),
            request.cost,
            request.max_wait.as_nanos(),
        );
        let next = match decision {
            Decision::Allowed(allowed) => Some(BucketState {
                tat: Some(allowed.tat),
                paused_until: self.paused_until,
            }),
            _ => None,
        };
        (decision, next)
    }

    /// The state after pausing for `span` from `now`. A pause only ever
    /// grows: a shorter pause than one in force changes nothing.
    pub fn paused_for(&self, now: Instant, span: Nanos) -> BucketState {
        let until = now.saturating_add(span);
        BucketState {
            tat: self.tat,
            paused_until: Some(match self.paused_until {
                Some(current) => current.max(until),
                None => until,
            }),
        }
    }

    /// Whether the bucket is paused at `now`.
    pub fn is_paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|until| until > now)
    }
}

/// A blocking store of buckets, policies and pauses. See the
/// [module docs](self) for the design.
///
/// # Contract for implementors
///
/// - `acquire` MUST be atomic per key: concurrent calls on one key behave
///   as if made one after the other, each seeing the state the previous one
///   stored. It MUST decide with [`BucketState::decide`] (or an exact
///   equivalent, tested against it) at the store's own clock's now.
/// - `pause` MUST only extend a pause, never shorten it, and a pause MUST be
///   seen by every later `acquire` on that key.
/// - A store MAY forget a bucket whose state no longer matters (its TAT and
///   pause are both in the past: forgetting it equals a full bucket), and MAY
///   expire a policy; it MUST NOT forget a bucket that still matters, unless
///   it documents what it does at capacity.
/// - Errors are for the store failing, never for a request being refused.
///
/// ```
/// use ratekeeper_core::{Acquire, Decision, Gcra, Nanos, Store};
///
/// fn try_send<S: Store>(store: &S, key: &str, gcra: Gcra) -> Result<bool, S::Error> {
///     Ok(store.acquire(key, &Acquire::check(gcra))?.is_allowed())
/// }
/// ```
pub trait Store {
    /// Why the store itself failed.
    type Error: core::fmt::Debug;

    /// Decides and records one request on the bucket `key`.
    fn acquire(&self, key: &str, request: &Acquire) -> Result<Decision, Self::Error>;

    /// Admits nothing on `key` for `span` from the store's now (or longer,
    /// if a longer pause is in force).
    fn pause(&self, key: &str, span: Nanos) -> Result<(), Self::Error>;

    /// The policy stored for `key`, if any (and not expired).
    fn policy(&self, key: &str) -> Result<Option<Policy>, Self::Error>;

    /// Stores `policy` for `key`, replacing any earlier one.
    fn set_policy(&self, key: &str, policy: &Policy) -> Result<(), Self::Error>;
}

/// An asynchronous store: the same operations and contract as [`Store`],
/// for stores that cross a network. Every `Store` is an `AsyncStore`.
///
/// The futures are `Send` so a multi-threaded runtime can move them
/// between threads.
///
/// ```
/// use ratekeeper_core::{Acquire, AsyncStore, Decision, Gcra};
///
/// async fn admitted<S: AsyncStore>(store: &S, key: &str, gcra: Gcra) -> Result<bool, S::Error> {
///     Ok(store.acquire(key, &Acquire::check(gcra)).await?.is_allowed())
/// }
/// ```
pub trait AsyncStore {
    /// Why the store itself failed.
    type Error: core::fmt::Debug;

    /// Decides and records one request on the bucket `key`.
    fn acquire(
        &self,
        key: &str,
        request: &Acquire,
    ) -> impl Future<Output = Result<Decision, Self::Error>> + Send;

    /// Admits nothing on `key` for `span` from the store's now.
    fn pause(&self, key: &str, span: Nanos) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The policy stored for `key`, if any (and not expired).
    fn policy(&self, key: &str) -> impl Future<Output = Result<Option<Policy>, Self::Error>> + Send;

    /// Stores `policy` for `key`, replacing any earlier one.
    fn set_policy(&self, key: &str, policy: &Policy) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

impl<S> AsyncStore for S
where
    S: Store,
    S::Error: Send,
{
    type Error = S::Error;

    fn acquire(
        &self,
        key: &str,
        request: &Acquire,
    ) -> impl Future<Output = Result<Decision, Self::Error>> + Send {
        core::future::ready(Store::acquire(self, key, request))
    }

    fn pause(&self, key: &str, span: Nanos) -> impl Future<Output = Result<(), Self::Error>> + Send {
        core::future::ready(Store::pause(self, key, span))
    }

    fn policy(&self, key: &str) -> impl Future<Output = Result<Option<Policy>, Self::Error>> + Send {
        core::future::ready(Store::policy(self, key))
    }

    fn set_policy(&self, key: &str, policy: &Policy) -> impl Future<Output = Result<(), Self::Error>> + Send {
        core::future::ready(Store::set_policy(self, key, policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcra::DenialCause;

    fn gcra() -> Gcra {
        Gcra::new(Nanos::from_millis(100), 2).unwrap()
    }

    #[test]
    fn a_pause_refuses_checks_and_says_how_long() {
        let now = Instant::from_nanos(1_000);
        let state = BucketState::EMPTY.paused_for(now, Nanos::from_secs(3));
        let (decision, next) = state.decide(&Acquire::check(gcra()), now);
        let denied = decision.denied().unwrap();
        assert_eq!(denied.cause, DenialCause::Paused);
        assert_eq!(denied.retry_after, Nanos::from_secs(3));
        assert_eq!(next, None);
        // Once the pause is over, the full bucket admits.
        let later = now + Nanos::from_secs(3);
        assert!(state.decide(&Acquire::check(gcra()), later).0.is_allowed());
    }

    #[test]
    fn pauses_only_grow() {
        let now = Instant::ZERO;
        let long = BucketState::EMPTY.paused_for(now, Nanos::from_secs(10));
        let short = long.paused_for(now, Nanos::from_secs(1));
        assert_eq!(short.paused_until, Some(Instant::ZERO + Nanos::from_secs(10)));
        assert!(short.is_paused(now + Nanos::from_secs(9)));
        assert!(!short.is_paused(now + Nanos::from_secs(10)));
    }

    #[test]
    fn reservations_during_a_pause_are_spread_after_it() {
        let now = Instant::ZERO;
        let mut state = BucketState::EMPTY.paused_for(now, Nanos::from_secs(1));
        let mut waits = [Nanos::ZERO; 4];
        for wait in &mut waits {
            let (decision, next) = state.decide(&Acquire::reserve(gcra(), Nanos::from_secs(5)), now);
            *wait = decision.allowed().unwrap().wait;
            state = next.unwrap();
        }
        // Burst of two at the pause's end, then one per 100 ms.
        let ms = |n| Nanos::from_millis(n);
        assert_eq!(waits, [ms(1000), ms(1000), ms(1100), ms(1200)]);
    }

    #[test]
    fn a_pause_longer_than_the_wait_is_refused() {
        let now = Instant::ZERO;
        let state = BucketState::EMPTY.paused_for(now, Nanos::from_secs(2));
        let (decision, next) = state.decide(&Acquire::reserve(gcra(), Nanos::from_secs(1)), now);
        let denied = decision.denied().unwrap();
        assert_eq!(
            (denied.retry_after, denied.cause),
            (Nanos::from_secs(2), DenialCause::Paused)
        );
        assert_eq!(next, None);
    }

    #[test]
    fn impossible_stays_impossible_when_paused() {
        let state = BucketState::EMPTY.paused_for(Instant::ZERO, Nanos::from_secs(2));
        let (decision, _) = state.decide(&Acquire::check(gcra()).with_cost(3), Instant::ZERO);
        assert_eq!(decision, Decision::Impossible { cost: 3, burst: 2 });
    }

    /// `decide` as it was written with saturating arithmetic throughout:
    /// the reference the exact arithmetic must match.
    fn saturating_decide(
        state: &BucketState,
        request: &Acquire,
        now: Instant,
    ) -> (Decision, Option<BucketState>) {
        let pause_left = match state.paused_until {
            Some(until) => until.saturating_duration_since(now),
            None => Nanos::ZERO,
        };
        let at = now.saturating_add(pause_left);
        let max_wait = request.max_wait.checked_sub(pause_left);
        let decision = request
            .gcra
            .decide(state.tat, at, request.cost, max_wait.unwrap_or(Nanos::ZERO));
        match decision {
            Decision::Allowed(mut allowed) if max_wait.is_some() => {
                allowed.wait = allowed.wait.saturating_add(pause_left);
                allowed.reset_after = allowed.reset_after.saturating_add(pause_left);
                let next = BucketState {
                    tat: Some(allowed.tat),
                    paused_until: state.paused_until,
                };
                (Decision::Allowed(allowed), Some(next))
            }
            Decision::Allowed(allowed) => {
                let denied = crate::gcra::Denied {
                    retry_after: pause_left.saturating_add(allowed.wait),
                    remaining: 0,
                    reset_after: pause_left
                        .saturating_add(state.tat.map_or(Nanos::ZERO, |t| t.saturating_duration_since(at))),
                    cause: DenialCause::Paused,
                };
                (Decision::Denied(denied), None)
            }
            Decision::Denied(mut denied) => {
                if !pause_left.is_zero() {
                    denied.retry_after = denied.retry_after.saturating_add(pause_left);
                    denied.reset_after = denied.reset_after.saturating_add(pause_left);
                    denied.remaining = 0;
                    denied.cause = DenialCause::Paused;
                }
                (Decision::Denied(denied), None)
            }
            impossible @ Decision::Impossible { .. } => (impossible, None),
        }
    }

    mod differential {
        use proptest::prelude::*;

        use super::*;

        fn nanos() -> impl Strategy<Value = u64> {
            prop_oneof![
                0..u64::MAX,
                0..1u64 << 40,
                Just(0),
                Just(u64::MAX),
                (u64::MAX - (1 << 20))..=u64::MAX,
            ]
        }

        fn instant() -> impl Strategy<Value = Option<Instant>> {
            proptest::option::of(nanos().prop_map(Instant::from_nanos))
        }

        fn request() -> impl Strategy<Value = Acquire> {
            (1..u64::MAX, 1..16u32, 0..20u32, nanos()).prop_map(|(interval, burst, cost, max_wait)| {
                let gcra =
                    Gcra::new(Nanos::from_nanos(interval / u64::from(burst)), burst).unwrap_or(Gcra::SLOWEST);
                Acquire::reserve(gcra, Nanos::from_nanos(max_wait)).with_cost(cost)
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(20_000))]

            /// Exact arithmetic decides exactly as saturating arithmetic.
            #[test]
            fn decides_as_with_saturating_arithmetic(
                tat in instant(),
                paused_until in instant(),
                now in nanos(),
                near in prop_oneof![Just(None), (0..1u64 << 36).prop_map(Some)],
                request in request(),
            ) {
                let state = BucketState { tat, paused_until };
                // Often near the state's own instants, where the cases meet.
                let now = match (near, tat.or(paused_until)) {
                    (Some(offset), Some(base)) => Instant::from_nanos(base.as_nanos().saturating_sub(1 << 35).saturating_add(offset)),
                    _ => Instant::from_nanos(now),
                };
                prop_assert_eq!(state.decide(&request, now), saturating_decide(&state, &request, now));
            }
        }
    }
}
