//! [`FixedStore`]: buckets and policies in fixed-size tables behind an
//! `embassy_sync` blocking mutex.

use core::cell::Cell;

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::RawMutex;
use ratekeeper_core::{Acquire, Clock, Decision, Instant, Nanos, Policy, PolicySource, ServerView, Store};

use crate::EmbassyClock;
use crate::bucket::{Bucket, key_hash};

/// Why a [`FixedStore`] operation failed. A refused request is never an
/// error: it is a [`Decision`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FixedStoreError {
    /// Every bucket slot holds a bucket that still matters (a TAT or a
    /// pause in the future), so a new key has no room. Nothing changed.
    BucketsFull {
        /// The store's bucket capacity.
        capacity: usize,
    },
    /// Every policy slot holds a policy of another key. Nothing changed.
    PoliciesFull {
        /// The store's policy capacity.
        capacity: usize,
    },
    /// The tables were already in use by another call of the store. Never
    /// returned: every call reads and writes its slots in place, in one
    /// lock, and calls nothing that could call the store again.
    Busy,
}

impl core::fmt::Display for FixedStoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FixedStoreError::BucketsFull { capacity } => {
                write!(
                    f,
                    "all {capacity} bucket slots are in use by buckets that still matter"
                )
            }
            FixedStoreError::PoliciesFull { capacity } => {
                write!(f, "all {capacity} policy slots are in use")
            }
            FixedStoreError::Busy => f.write_str("the store was called from inside one of its own calls"),
        }
    }
}

impl core::error::Error for FixedStoreError {}

/// A key's policy, kept in its parts: written from them one by one, in
/// one place, and built again from them when read, never copied whole,
/// since a policy is larger than a 32-bit target copies inline at
/// opt-level "z", and a copy of it would cost firmware a block copy
/// routine. A limit of zero, which no policy has, marks a vacant slot.
/// Each part is a `Cell`, read and written inside the store's lock.
#[derive(Debug)]
struct PolicySlot {
    key: Cell<u32>,
    limit: Cell<u32>,
    window: Cell<Nanos>,
    source: Cell<PolicySource>,
    learned_at: Cell<Instant>,
    /// The server's view, in its parts too: whether there is one, then
    /// its figures (meaningless when there is none).
    has_server: Cell<bool>,
    server_remaining: Cell<u32>,
    server_reset_after: Cell<Nanos>,
    server_observed_at: Cell<Instant>,
}

impl PolicySlot {
    /// A slot holding no policy.
    const fn vacant() -> PolicySlot {
        PolicySlot {
            key: Cell::new(0),
            limit: Cell::new(0),
            window: Cell::new(Nanos::ZERO),
            source: Cell::new(PolicySource::Default),
            learned_at: Cell::new(Instant::ZERO),
            has_server: Cell::new(false),
            server_remaining: Cell::new(0),
            server_reset_after: Cell::new(Nanos::ZERO),
            server_observed_at: Cell::new(Instant::ZERO),
        }
    }

    /// Makes the slot hold `policy`, of key hash `key`.
    fn set(&self, key: u32, policy: &Policy) {
        self.key.set(key);
        self.limit.set(policy.limit());
        self.window.set(policy.window());
        self.source.set(policy.source);
        self.learned_at.set(policy.learned_at);
        self.has_server.set(policy.server.is_some());
        if let Some(server) = &policy.server {
            self.server_remaining.set(server.remaining);
            self.server_reset_after.set(server.reset_after);
            self.server_observed_at.set(server.observed_at);
        }
    }

    /// Whether the slot holds the policy of key hash `key`.
    fn holds(&self, key: u32) -> bool {
        // Both tested, without a branch between them: cheaper than
        // short-circuiting on 32-bit targets, and both reads are plain.
        (self.key.get() == key) & (self.limit.get() != 0)
    }

    /// The policy held, if any: the parts came from a policy, so they make
    /// one again.
    fn policy(&self) -> Option<Policy> {
        let mut policy = Policy::new(
            self.limit.get(),
            self.window.get(),
            self.source.get(),
            self.learned_at.get(),
        )
        .ok()?;
        if self.has_server.get() {
            policy.server = Some(ServerView {
                remaining: self.server_remaining.get(),
                reset_after: self.server_reset_after.get(),
                observed_at: self.server_observed_at.get(),
            });
        }
        Some(policy)
    }
}

/// The store's tables, in `Cell`s: the lock makes each call exclusive, and
/// a call reads and writes slots in place, so no borrow needs tracking.
#[derive(Debug)]
struct Tables<const BUCKETS: usize, const POLICIES: usize> {
    /// The buckets; a vacant slot holds [`Bucket::VACANT`]. Slots are
    /// taken in order, so the buckets written fill a prefix of the table.
    buckets: [Cell<Bucket>; BUCKETS],
    policies: [PolicySlot; POLICIES],
}

/// A [`Store`] of at most `BUCKETS` buckets and `POLICIES` policies, in
/// static memory, for firmware: no heap, one short lock per operation.
///
/// - **Atomicity.** Every operation runs inside one lock of the raw mutex
///   `M`: [`CriticalSectionRawMutex`] to share the store with interrupts
///   or between cores (and on thumbv6m, which has no compare-and-swap),
///   `ThreadModeRawMutex` (Cortex-M) or [`NoopRawMutex`] when only one executor
///   uses it. Decisions are the core's [`BucketState::decide`].
/// - **Memory.** A bucket is 16 bytes ([`FixedStore::BUCKET_BYTES`]): a
///   32-bit hash of its key (see [`key_hash`] for the collision rule), its
///   TAT in nanoseconds, and its pause's end in 32 bits (whole
///   milliseconds, rounded up: a pause may last up to 1 ms longer than
///   asked, never shorter). Policies sit in their own table of `POLICIES`
///   slots, since a firmware learns few limits but paces many buckets.
/// - **Capacity.** A new key takes the first slot that is free or holds a
///   bucket whose state no longer matters (TAT and pause both past:
///   forgetting it equals a full bucket). When every bucket still matters, the operation
///   fails with [`FixedStoreError::BucketsFull`] and changes nothing; a
///   refused check on a new key needs no slot and never fails this way.
/// - **Time.** It reads clock `C`: [`EmbassyClock`] in firmware, the core's
///   `ManualClock` in tests.
///
/// ```
/// use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
/// use ratekeeper_core::{Acquire, Gcra, ManualClock, Nanos, Store};
/// use ratekeeper_embassy::{EmbassyClock, FixedStore};
///
/// // In firmware: eight buckets and two policies, in a static.
/// static STORE: FixedStore<CriticalSectionRawMutex, 8, 2> = FixedStore::new(EmbassyClock);
///
/// // In a test, the same store on a manual clock.
/// let store: FixedStore<CriticalSectionRawMutex, 8, 2, ManualClock> = FixedStore::new(ManualClock::new());
/// let gcra = Gcra::new(Nanos::from_millis(100), 1).unwrap();
/// assert!(store.acquire("api.example.com/items", &Acquire::check(gcra)).unwrap().is_allowed());
/// assert!(!store.acquire("api.example.com/items", &Acquire::check(gcra)).unwrap().is_allowed());
/// store.clock().advance(Nanos::from_millis(100));
/// assert!(store.acquire("api.example.com/items", &Acquire::check(gcra)).unwrap().is_allowed());
/// assert_eq!(store.len(), 1);
/// ```
///
/// [`BucketState::decide`]: ratekeeper_core::BucketState::decide
/// [`CriticalSectionRawMutex`]: embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex
/// [`NoopRawMutex`]: embassy_sync::blocking_mutex::raw::NoopRawMutex
pub struct FixedStore<M: RawMutex, const BUCKETS: usize, const POLICIES: usize, C = EmbassyClock> {
    clock: C,
    tables: Mutex<M, Tables<BUCKETS, POLICIES>>,
}

impl<M: RawMutex, const BUCKETS: usize, const POLICIES: usize, C> core::fmt::Debug
    for FixedStore<M, BUCKETS, POLICIES, C>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FixedStore")
            .field("buckets", &BUCKETS)
            .field("policies", &POLICIES)
            .finish_non_exhaustive()
    }
}

impl<M: RawMutex, const BUCKETS: usize, const POLICIES: usize, C: Clock> FixedStore<M, BUCKETS, POLICIES, C> {
    /// The RAM one bucket takes: 16 bytes.
    pub const BUCKET_BYTES: usize = core::mem::size_of::<Bucket>();

    /// An empty store reading time from `clock`; `const`, so it can be a
    /// `static`.
    pub const fn new(clock: C) -> Self {
        FixedStore {
            clock,
            tables: Mutex::new(Tables {
                buckets: [const { Cell::new(Bucket::VACANT) }; BUCKETS],
                policies: [const { PolicySlot::vacant() }; POLICIES],
            }),
        }
    }

    /// The store's clock.
    pub const fn clock(&self) -> &C {
        &self.clock
    }

    /// How many bucket slots are in use, stale ones included.
    pub fn len(&self) -> usize {
        self.tables.lock(|tables| {
            tables
                .buckets
                .iter()
                .filter(|slot| !slot.get().is_vacant())
                .count()
        })
    }

    /// Whether no bucket slot is in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies `change` to the bucket of `key`, in one lock: decides a
    /// request and stores the state it leaves, or extends a pause.
    ///
    /// One function for both, not generic over the change, so that there
    /// is one copy of it for every store, and the decision is made where
    /// it is returned rather than copied out of a closure: firmware pays
    /// for each copy in flash.
    #[inline(never)]
    fn change(&self, key: &str, change: Change<'_>) -> Result<Decision, FixedStoreError> {
        let hash = key_hash(key);
        self.tables.lock(|tables| {
            let now = self.clock.now();
            let now_nanos = now.as_nanos();
            // The key's slot, and until it is found, the first slot that
            // is vacant or stale: where a new key goes (a vacant slot is
            // stale too, its TAT of zero past), so that forgotten buckets
            // make room before the table grows.
            let mut slot = None;
            let mut free = None;
            for candidate in &tables.buckets {
                let held = candidate.get();
                if held.holds(hash) {
                    slot = Some(candidate);
                    break;
                }
                if free.is_none() && held.is_stale(now_nanos) {
                    free = Some(candidate);
                }
            }
            // A new key decides from a vacant bucket. The decision is made
            // on the bucket's own words, with no state decoded in between.
            let bucket = slot.map_or(Bucket::VACANT, Cell::get);
            let tat = bucket.tat();
            let paused_until = bucket.paused_until();
            let (decision, next) = match change {
                Change::Acquire(request) => {
                    let decision = request.decide_nanos(tat, paused_until, now);
                    let next = match &decision {
                        Decision::Allowed(allowed) => Some((allowed.tat.as_nanos(), paused_until)),
                        _ => None,
                    };
                    (decision, next)
                }
                // A pause only ever grows.
                Change::Pause(span) => (
                    PAUSED,
                    Some((tat, paused_until.max(now.saturating_add(*span).as_nanos()))),
                ),
            };
            if let Some((tat, paused_until)) = next {
                let bucket = Bucket::new(hash, tat, paused_until, now_nanos);
                // A bucket stale already is not stored: it decides as no
                // bucket at all, and the one it replaces was stale too (a
                // change never lowers a TAT).
                if !bucket.is_stale(now_nanos) {
                    slot.or(free)
                        .ok_or(FixedStoreError::BucketsFull { capacity: BUCKETS })?
                        .set(bucket);
                }
            }
            Ok(decision)
        })
    }
}

/// What [`FixedStore::change`] does to a bucket.
#[derive(Clone, Copy)]
enum Change<'a> {
    /// Decide this request.
    Acquire(&'a Acquire),
    /// Extend the pause by this span from now (by reference, so that a
    /// change is two words, passed in registers).
    Pause(&'a Nanos),
}

/// What [`FixedStore::change`] answers for a pause, which decides
/// nothing: [`Store::pause`] drops it.
const PAUSED: Decision = Decision::Impossible { cost: 0, burst: 0 };

impl<M: RawMutex, const BUCKETS: usize, const POLICIES: usize, C: Clock> Store
    for FixedStore<M, BUCKETS, POLICIES, C>
{
    type Error = FixedStoreError;

    // Both inlined where they are called: the call of `change` they make
    // costs no more than a call of them.
    #[inline(always)]
    fn acquire(&self, key: &str, request: &Acquire) -> Result<Decision, FixedStoreError> {
        self.change(key, Change::Acquire(request))
    }

    #[inline(always)]
    fn pause(&self, key: &str, span: Nanos) -> Result<(), FixedStoreError> {
        self.change(key, Change::Pause(&span)).map(drop)
    }

    fn policy(&self, key: &str) -> Result<Option<Policy>, FixedStoreError> {
        let hash = key_hash(key);
        self.tables.lock(|tables| {
            Ok(tables
                .policies
                .iter()
                .find(|slot| slot.holds(hash))
                .and_then(PolicySlot::policy))
        })
    }

    fn set_policy(&self, key: &str, policy: &Policy) -> Result<(), FixedStoreError> {
        let hash = key_hash(key);
        self.tables.lock(|tables| {
            let policies = &tables.policies;
            // The key's own slot, or else a vacant one.
            let slot = policies
                .iter()
                .find(|slot| slot.holds(hash))
                .or_else(|| policies.iter().find(|slot| slot.limit.get() == 0))
                .ok_or(FixedStoreError::PoliciesFull { capacity: POLICIES })?;
            slot.set(hash, policy);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, NoopRawMutex};
    use proptest::prelude::*;
    use ratekeeper_core::{BucketState, DenialCause, Gcra, ManualClock, PolicyConfig};

    use super::*;

    type TestStore<const B: usize> = FixedStore<NoopRawMutex, B, 2, ManualClock>;

    fn gcra() -> Gcra {
        Gcra::new(Nanos::from_millis(100), 2).unwrap()
    }

    #[test]
    fn a_bucket_costs_16_bytes() {
        assert_eq!(TestStore::<4>::BUCKET_BYTES, 16);
    }

    #[test]
    fn decides_like_the_core() {
        let store = TestStore::<4>::new(ManualClock::new());
        let reserve = Acquire::reserve(gcra(), Nanos::from_secs(1));
        let waits: [u64; 4] = core::array::from_fn(|_| {
            store
                .acquire("k", &reserve)
                .unwrap()
                .allowed()
                .unwrap()
                .wait
                .as_nanos()
                / 1_000_000
        });
        assert_eq!(waits, [0, 0, 100, 200]);
        let denied = store
            .acquire("k", &Acquire::check(gcra()))
            .unwrap()
            .denied()
            .unwrap();
        assert_eq!(denied.retry_after, Nanos::from_millis(300));
    }

    #[test]
    fn pauses_hold_and_end() {
        let store = TestStore::<4>::new(ManualClock::new());
        store.pause("k", Nanos::from_secs(2)).unwrap();
        let denied = store
            .acquire("k", &Acquire::check(gcra()))
            .unwrap()
            .denied()
            .unwrap();
        assert_eq!(
            (denied.cause, denied.retry_after),
            (DenialCause::Paused, Nanos::from_secs(2))
        );
        store.clock().advance(Nanos::from_secs(2));
        assert!(store.acquire("k", &Acquire::check(gcra())).unwrap().is_allowed());
    }

    #[test]
    fn a_zero_pause_takes_no_slot() {
        let store = TestStore::<1>::new(ManualClock::new());
        store.pause("k", Nanos::ZERO).unwrap();
        assert!(store.is_empty());
    }

    #[test]
    fn full_is_an_error_until_a_bucket_goes_stale() {
        let store = TestStore::<2>::new(ManualClock::new());
        let check = Acquire::check(gcra());
        assert!(store.acquire("a", &check).unwrap().is_allowed());
        store.pause("b", Nanos::from_millis(150)).unwrap();
        assert_eq!(
            store.acquire("c", &check),
            Err(FixedStoreError::BucketsFull { capacity: 2 })
        );
        // A check refused on a new key stores nothing, so needs no slot:
        // here the new key is refused because its cost exceeds the burst.
        assert!(matches!(
            store.acquire("c", &check.with_cost(3)),
            Ok(Decision::Impossible { .. })
        ));
        // "a" is full again after 100 ms: its slot is reused.
        store.clock().advance(Nanos::from_millis(100));
        assert!(store.acquire("c", &check).unwrap().is_allowed());
        assert_eq!(store.len(), 2);
        // "b" is still paused, "c" just spent: full again.
        assert_eq!(
            store.pause("d", Nanos::from_secs(1)),
            Err(FixedStoreError::BucketsFull { capacity: 2 })
        );
        // The paused bucket survived all of this.
        assert!(!store.acquire("b", &check).unwrap().is_allowed());
    }

    #[test]
    fn a_stale_bucket_makes_room_before_the_table_grows() {
        let store = TestStore::<4>::new(ManualClock::new());
        let check = Acquire::check(gcra());
        assert!(store.acquire("a", &check).unwrap().is_allowed());
        assert!(store.acquire("b", &check).unwrap().is_allowed());
        // Both full again after 100 ms: "c" takes the first of their slots.
        store.clock().advance(Nanos::from_millis(100));
        assert!(store.acquire("c", &check).unwrap().is_allowed());
        assert_eq!(store.len(), 2);
        assert_eq!(store.tables.lock(|t| t.buckets[0].get().key()), key_hash("c"));
        // "a" was forgotten, which changes nothing: it is admitted as before.
        assert!(store.acquire("a", &check).unwrap().is_allowed());
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn policies_round_trip_and_fill_up() {
        let store = TestStore::<2>::new(ManualClock::new());
        let policy =
            |limit| Policy::new(limit, Nanos::from_secs(1), PolicySource::Header, Instant::ZERO).unwrap();
        assert_eq!(store.policy("a"), Ok(None));
        store.set_policy("a", &policy(16)).unwrap();
        store.set_policy("a", &policy(20)).unwrap();
        store.set_policy("b", &policy(5)).unwrap();
        assert_eq!(store.policy("a"), Ok(Some(policy(20))));
        assert_eq!(store.policy("b"), Ok(Some(policy(5))));
        assert_eq!(
            store.set_policy("c", &policy(1)),
            Err(FixedStoreError::PoliciesFull { capacity: 2 })
        );
        // Policies take no bucket slot.
        assert!(store.is_empty());
    }

    #[test]
    fn errors_say_what_happened() {
        use std::string::ToString;
        let full = FixedStoreError::BucketsFull { capacity: 8 };
        assert_eq!(
            full.to_string(),
            "all 8 bucket slots are in use by buckets that still matter"
        );
    }

    /// A policy of any limit, window and source, with or without the
    /// server's view.
    fn any_policy() -> impl Strategy<Value = Policy> {
        let source = prop_oneof![
            Just(PolicySource::Default),
            Just(PolicySource::Observed),
            Just(PolicySource::Configured),
            Just(PolicySource::Header),
        ];
        let server = proptest::option::of((any::<u32>(), any::<u64>(), any::<u64>()).prop_map(
            |(remaining, reset, observed)| ServerView {
                remaining,
                reset_after: Nanos::from_nanos(reset),
                observed_at: Instant::from_nanos(observed),
            },
        ));
        (
            prop_oneof![Just(1u32), Just(u32::MAX), 1..=u32::MAX],
            1..=u64::MAX,
            source,
            any::<u64>(),
            server,
        )
            .prop_map(|(limit, window, source, learned_at, server)| {
                let mut policy = Policy::new(
                    limit,
                    Nanos::from_nanos(window),
                    source,
                    Instant::from_nanos(learned_at),
                )
                .unwrap_or(PolicyConfig::DEFAULT.default_policy(Instant::ZERO));
                policy.server = server;
                policy
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// The policy table against the one it was (a list that grows, each
        /// key's policy replaced in place): the same answers to every write
        /// and read, the same policies read back, field for field.
        #[test]
        fn policies_are_kept_as_by_a_growing_list(
            steps in proptest::collection::vec((0..5usize, proptest::option::of(any_policy())), 1..24),
        ) {
            let store = TestStore::<1>::new(ManualClock::new());
            let mut model: std::vec::Vec<(&str, Policy)> = std::vec::Vec::new();
            for (key, write) in steps {
                let key = KEYS[key];
                match write {
                    Some(policy) => {
                        let expected = match model.iter().position(|(k, _)| *k == key) {
                            Some(index) => {
                                model[index].1 = policy;
                                Ok(())
                            }
                            None if model.len() < 2 => {
                                model.push((key, policy));
                                Ok(())
                            }
                            None => Err(FixedStoreError::PoliciesFull { capacity: 2 }),
                        };
                        prop_assert_eq!(store.set_policy(key, &policy), expected);
                    }
                    None => {
                        let expected = model.iter().find(|(k, _)| *k == key).map(|(_, p)| *p);
                        prop_assert_eq!(store.policy(key), Ok(expected));
                    }
                }
            }
        }
    }

    /// The store as it was, kept as the model of the one above: buckets in
    /// a growing list, each decided through a decoded [`BucketState`] and
    /// encoded again.
    struct PreviousStore {
        buckets: std::vec::Vec<Bucket>,
        capacity: usize,
    }

    impl PreviousStore {
        fn change(
            &mut self,
            key: &str,
            change: Change<'_>,
            now: Instant,
        ) -> Result<Decision, FixedStoreError> {
            let hash = key_hash(key);
            let slot = self.buckets.iter().position(|b| b.key() == hash);
            let state = slot.map_or(Bucket::VACANT, |index| self.buckets[index]).state();
            let (decision, next) = match change {
                Change::Acquire(request) => state.decide(request, now),
                Change::Pause(span) => (PAUSED, Some(state.paused_for(now, *span))),
            };
            if let Some(next) = next {
                let bucket = Bucket::from_state(hash, &next, now);
                match slot {
                    Some(index) => self.buckets[index] = bucket,
                    None if bucket.is_stale(now.as_nanos()) => {}
                    None if self.buckets.len() < self.capacity => self.buckets.push(bucket),
                    None => match self.buckets.iter_mut().find(|b| b.is_stale(now.as_nanos())) {
                        Some(stale) => *stale = bucket,
                        None => {
                            return Err(FixedStoreError::BucketsFull {
                                capacity: self.capacity,
                            });
                        }
                    },
                }
            }
            Ok(decision)
        }
    }

    /// Any instant, often near the horizon or near another.
    fn edgy_nanos() -> impl Strategy<Value = u64> {
        prop_oneof![
            0..u64::MAX,
            0..1u64 << 40,
            u64::MAX - (1 << 40)..=u64::MAX,
            Just(0u64),
            Just(u64::MAX)
        ]
    }

    #[derive(Clone, Debug)]
    enum AnyStep {
        Acquire {
            key: u8,
            interval: u64,
            burst: u32,
            cost: u32,
            max_wait: u64,
        },
        Pause {
            key: u8,
            span: u64,
        },
        Set {
            now: u64,
        },
    }

    fn any_step() -> impl Strategy<Value = AnyStep> {
        prop_oneof![
            (
                0..6u8,
                prop_oneof![1..u64::MAX / 8, 1..1u64 << 36],
                1..4u32,
                0..5u32,
                edgy_nanos()
            )
                .prop_map(|(key, interval, burst, cost, max_wait)| AnyStep::Acquire {
                    key,
                    interval,
                    burst,
                    cost,
                    max_wait
                }),
            (0..6u8, edgy_nanos()).prop_map(|(key, span)| AnyStep::Pause { key, span }),
            edgy_nanos().prop_map(|now| AnyStep::Set { now }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// The store it was, which put a new key in a vacant slot before
        /// a stale one: every answer the same, bit for bit, and so every
        /// bucket that still matters, with never more slots in use, after
        /// any steps at any instants and with any parameters. (Only the
        /// slots of buckets that no longer matter may differ: a stale
        /// bucket decides as a vacant one, and the clock never goes back.)
        #[test]
        fn the_store_is_the_one_it_was(steps in proptest::collection::vec(any_step(), 1..40)) {
            let store = TestStore::<4>::new(ManualClock::new());
            let mut model = PreviousStore { buckets: std::vec::Vec::new(), capacity: 4 };
            for step in steps {
                let now = store.clock().now();
                let (got, expected) = match step {
                    AnyStep::Acquire { key, interval, burst, cost, max_wait } => {
                        let gcra = Gcra::new(Nanos::from_nanos(interval), burst).unwrap_or(Gcra::SLOWEST);
                        let request = Acquire::reserve(gcra, Nanos::from_nanos(max_wait)).with_cost(cost);
                        let key = KEYS[usize::from(key)];
                        (store.acquire(key, &request), model.change(key, Change::Acquire(&request), now))
                    }
                    AnyStep::Pause { key, span } => {
                        let key = KEYS[usize::from(key)];
                        let span = Nanos::from_nanos(span);
                        (store.pause(key, span).map(|()| PAUSED), model.change(key, Change::Pause(&span), now))
                    }
                    AnyStep::Set { now } => {
                        store.clock().set(Instant::from_nanos(now));
                        continue;
                    }
                };
                prop_assert_eq!(got, expected);
                let now = now.as_nanos();
                let table: std::vec::Vec<Bucket> = store.tables.lock(|t| t.buckets.iter().map(Cell::get).collect());
                let mattering = |buckets: &[Bucket]| {
                    let mut live: std::vec::Vec<Bucket> =
                        buckets.iter().copied().filter(|b| !b.is_stale(now)).collect();
                    live.sort_by_key(Bucket::key);
                    live
                };
                prop_assert_eq!(mattering(&table), mattering(&model.buckets));
                // The slots in use are a prefix of the table.
                prop_assert!(table[store.len()..].iter().all(|b| *b == Bucket::VACANT));
                prop_assert!(store.len() <= model.buckets.len());
            }
        }
    }

    #[test]
    fn works_behind_a_critical_section() {
        static STORE: FixedStore<CriticalSectionRawMutex, 2, 1, ManualClock> =
            FixedStore::new(ManualClock::new());
        assert!(STORE.acquire("k", &Acquire::check(gcra())).unwrap().is_allowed());
    }

    #[derive(Clone, Debug)]
    enum Step {
        Acquire { key: u8, cost: u32, max_wait_ms: u64 },
        Pause { key: u8, ms: u64 },
        Advance { ms: u64 },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..6u8, 0..4u32, 0..500u64).prop_map(|(key, cost, max_wait_ms)| Step::Acquire {
                key,
                cost,
                max_wait_ms
            }),
            (0..6u8, 0..3_000u64).prop_map(|(key, ms)| Step::Pause { key, ms }),
            (0..300u64).prop_map(|ms| Step::Advance { ms }),
        ]
    }

    const KEYS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// The store against a model that keeps every bucket's full
        /// `BucketState`: with pauses in whole milliseconds (the store's
        /// granularity), every decision is the same, and the store fails
        /// only when more buckets matter at once than it has slots.
        #[test]
        fn the_store_is_the_core_in_16_bytes(steps in proptest::collection::vec(step(), 1..40)) {
            let store = TestStore::<4>::new(ManualClock::new());
            let mut model = [BucketState::EMPTY; 6];
            let gcra = Gcra::new(Nanos::from_micros(70_001), 3).unwrap();
            for step in steps {
                let now = store.clock().now();
                let live = model.iter().filter(|s| s.is_paused(now) || s.tat.is_some_and(|t| t > now)).count();
                match step {
                    Step::Acquire { key, cost, max_wait_ms } => {
                        let request = Acquire::reserve(gcra, Nanos::from_millis(max_wait_ms)).with_cost(cost);
                        let slot = &mut model[usize::from(key)];
                        let (expected, next) = slot.decide(&request, now);
                        match store.acquire(KEYS[usize::from(key)], &request) {
                            Ok(decision) => {
                                prop_assert_eq!(decision, expected);
                                if let Some(next) = next { *slot = next; }
                            }
                            Err(FixedStoreError::BucketsFull { .. }) => prop_assert!(live >= 4),
                            Err(other) => prop_assert!(false, "unexpected {:?}", other),
                        }
                    }
                    Step::Pause { key, ms } => {
                        let slot = &mut model[usize::from(key)];
                        match store.pause(KEYS[usize::from(key)], Nanos::from_millis(ms)) {
                            Ok(()) => *slot = slot.paused_for(now, Nanos::from_millis(ms)),
                            Err(FixedStoreError::BucketsFull { .. }) => prop_assert!(live >= 4),
                            Err(other) => prop_assert!(false, "unexpected {:?}", other),
                        }
                    }
                    Step::Advance { ms } => {
                        store.clock().advance(Nanos::from_millis(ms));
                    }
                }
            }
        }
    }
}
