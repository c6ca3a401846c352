//! The keyed store: shards of open-addressing tables of cells.

use std::convert::Infallible;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::HashTable;
use ratekeeper_core::{Acquire, BucketState, Clock, Decision, Instant, Nanos, Policy, Store};

use crate::cell::Cell;

/// How many samples the store looks at to pick a victim when it is at its
/// cap and no bucket is idle.
const EVICTION_SAMPLE: usize = 16;

/// A key's identity in the store: two independent 64-bit hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    /// Places the key: its shard (bits 40..48) and its slot in the shard's
    /// table (the low bits and the top seven, as hashbrown uses them).
    hash: u64,
    /// Tells keys with the same `hash` apart.
    check: u64,
}

/// One bucket in a shard's table: 32 bytes, plus hashbrown's one control
/// byte per slot.
#[derive(Debug)]
struct Slot {
    hash: u64,
    check: u64,
    cell: Cell,
}

#[derive(Debug)]
struct PolicySlot {
    hash: u64,
    check: u64,
    policy: Policy,
}

#[derive(Debug, Default)]
struct Buckets {
    slots: HashTable<Slot>,
    /// No bucket of this shard becomes idle before this instant (nanos),
    /// as found by the last sweep: sweeping earlier would free nothing.
    next_idle_at: u64,
}

/// A shard, aligned to its own cache lines so that threads working on
/// different shards never contend on a lock word.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    buckets: RwLock<Buckets>,
    policies: Mutex<HashTable<PolicySlot>>,
}

/// How to build a [`MemoryStore`]: its caps and its sharding.
///
/// ```
/// use ratekeeper_core::ManualClock;
/// use ratekeeper_memory::MemoryStore;
///
/// let store = MemoryStore::builder()
///     .max_buckets(10_000)
///     .max_policies(1_000)
///     .build(ManualClock::new());
/// assert_eq!(store.max_buckets(), 10_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryStoreBuilder {
    max_buckets: usize,
    max_policies: usize,
    shards: Option<usize>,
    idle_grace: Nanos,
}

impl MemoryStoreBuilder {
    /// The defaults: see [`MemoryStore::DEFAULT_MAX_BUCKETS`] and
    /// [`MemoryStore::DEFAULT_MAX_POLICIES`]; shards chosen from the number
    /// of CPUs.
    pub const fn new() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_buckets: MemoryStore::<()>::DEFAULT_MAX_BUCKETS,
            max_policies: MemoryStore::<()>::DEFAULT_MAX_POLICIES,
            shards: None,
            idle_grace: MemoryStore::<()>::DEFAULT_IDLE_GRACE,
        }
    }

    /// How long a bucket stays idle before a shard about to grow forgets
    /// it (at the cap, idle buckets go at once). A key used now and then,
    /// slower than its rate, then keeps its bucket instead of having it
    /// forgotten and made again each time; memory stays bounded by the cap
    /// either way. Zero forgets idle buckets whenever a table would grow.
    ///
    /// ```
    /// use ratekeeper_core::{ManualClock, Nanos};
    /// use ratekeeper_memory::MemoryStore;
    ///
    /// let store = MemoryStore::builder().idle_grace(Nanos::ZERO).build(ManualClock::new());
    /// # drop(store);
    /// ```
    pub const fn idle_grace(mut self, idle_grace: Nanos) -> MemoryStoreBuilder {
        self.idle_grace = idle_grace;
        self
    }

    /// The most buckets held at once (at least 1). See [`MemoryStore`] for
    /// what happens at the cap.
    pub const fn max_buckets(mut self, max_buckets: usize) -> MemoryStoreBuilder {
        self.max_buckets = if max_buckets == 0 { 1 } else { max_buckets };
        self
    }

    /// The most policies held at once (at least 1).
    pub const fn max_policies(mut self, max_policies: usize) -> MemoryStoreBuilder {
        self.max_policies = if max_policies == 0 { 1 } else { max_policies };
        self
    }

    /// The number of shards, rounded down to a power of two between 1 and
    /// 256 and to at most the caps. More shards mean less contention
    /// between threads on different keys; the default is four per CPU.
    pub const fn shards(mut self, shards: usize) -> MemoryStoreBuilder {
        self.shards = Some(shards);
        self
    }

    /// The store, reading time from `clock`.
    pub fn build<C: Clock>(self, clock: C) -> MemoryStore<C> {
        let wanted = self.shards.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, usize::from)
                .saturating_mul(4)
        });
        let shards = floor_power_of_two(wanted.clamp(1, 256).min(self.max_buckets).min(self.max_policies));
        MemoryStore {
            clock,
            shards: (0..shards).map(|_| Shard::default()).collect(),
            shard_mask: shards.saturating_sub(1),
            buckets_per_shard: self.max_buckets.checked_div(shards).unwrap_or(1).max(1),
            policies_per_shard: self.max_policies.checked_div(shards).unwrap_or(1).max(1),
            idle_grace: self.idle_grace.as_nanos(),
            place: foldhash::fast::RandomState::default(),
            tell_apart: foldhash::fast::RandomState::default(),
        }
    }
}

impl Default for MemoryStoreBuilder {
    fn default() -> MemoryStoreBuilder {
        MemoryStoreBuilder::new()
    }
}

fn floor_power_of_two(n: usize) -> usize {
    match n.checked_ilog2() {
        Some(log) => 1usize.checked_shl(log).unwrap_or(1),
        None => 1,
    }
}

/// The in-process store of buckets, pauses and policies, on clock `C`.
///
/// See the [crate docs](crate) for the design, the memory bound and what
/// happens at the cap.
#[derive(Debug)]
pub struct MemoryStore<C> {
    clock: C,
    shards: Box<[Shard]>,
    shard_mask: usize,
    buckets_per_shard: usize,
    policies_per_shard: usize,
    idle_grace: u64,
    place: foldhash::fast::RandomState,
    tell_apart: foldhash::fast::RandomState,
}

impl<C> MemoryStore<C> {
    /// The default cap on buckets: 100,000, about 4 MiB when full.
    pub const DEFAULT_MAX_BUCKETS: usize = 100_000;
    /// The default cap on policies: 100,000.
    pub const DEFAULT_MAX_POLICIES: usize = 100_000;
    /// The default [idle grace](MemoryStoreBuilder::idle_grace): 10 s.
    pub const DEFAULT_IDLE_GRACE: Nanos = Nanos::from_secs(10);
}

impl MemoryStore<()> {
    /// A builder, to set the caps and the sharding.
    ///
    /// ```
    /// use ratekeeper_core::ManualClock;
    /// use ratekeeper_memory::MemoryStore;
    ///
    /// let store = MemoryStore::builder().max_buckets(1_000).build(ManualClock::new());
    /// assert!(store.is_empty());
    /// ```
    pub const fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::new()
    }
}

impl<C: Clock> MemoryStore<C> {
    /// An empty store with the default caps, reading time from `clock`.
    ///
    /// ```
    /// use ratekeeper_core::{Acquire, Gcra, ManualClock, Nanos, Store};
    /// use ratekeeper_memory::MemoryStore;
    ///
    /// let store = MemoryStore::new(ManualClock::new());
    /// let gcra = Gcra::new(Nanos::from_secs(1), 1).unwrap();
    /// assert!(store.acquire("api.example.com/items", &Acquire::check(gcra)).unwrap().is_allowed());
    /// ```
    pub fn new(clock: C) -> MemoryStore<C> {
        MemoryStoreBuilder::new().build(clock)
    }

    /// The store's clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The most buckets the store holds at once (the cap it was built
    /// with, rounded down to a multiple of the shard count).
    pub fn max_buckets(&self) -> usize {
        self.buckets_per_shard.saturating_mul(self.shards.len())
    }

    /// How many buckets the store holds, idle ones not yet evicted
    /// included.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| read(&shard.buckets).slots.len())
            .sum()
    }

    /// Whether the store holds no bucket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many policies the store holds.
    pub fn policy_count(&self) -> usize {
        self.shards.iter().map(|shard| lock(&shard.policies).len()).sum()
    }

    /// The heap bytes held by the bucket and policy tables, exactly as
    /// allocated (hashbrown's `allocation_size`), plus the shards
    /// themselves.
    ///
    /// ```
    /// use ratekeeper_core::ManualClock;
    /// use ratekeeper_memory::MemoryStore;
    ///
    /// let store = MemoryStore::new(ManualClock::new());
    /// assert!(store.heap_bytes() > 0);
    /// ```
    pub fn heap_bytes(&self) -> usize {
        let tables: usize = self
            .shards
            .iter()
            .map(|shard| {
                read(&shard.buckets)
                    .slots
                    .allocation_size()
                    .saturating_add(lock(&shard.policies).allocation_size())
            })
            .sum();
        tables.saturating_add(std::mem::size_of_val::<[Shard]>(&self.shards))
    }

    /// The state of the bucket `key`, if the store holds it.
    ///
    /// ```
    /// use ratekeeper_core::{ManualClock, Nanos, Store};
    /// use ratekeeper_memory::MemoryStore;
    ///
    /// let store = MemoryStore::new(ManualClock::new());
    /// assert_eq!(store.state("k"), None);
    /// store.pause("k", Nanos::from_secs(1)).unwrap();
    /// assert!(store.state("k").unwrap().is_paused(store.clock().now()));
    /// # use ratekeeper_core::Clock;
    /// ```
    pub fn state(&self, key: &str) -> Option<BucketState> {
        let print = self.fingerprint(key);
        let buckets = read(&self.shard(print).buckets);
        buckets
            .slots
            .find(print.hash, |slot| slot.is(print))
            .map(|slot| slot.cell.state())
    }

    /// Forgets every idle bucket now (TAT and pause both at or before the
    /// clock's now), returning how many. The store also does this by
    /// itself, shard by shard, before a table would grow and at the cap;
    /// call this from a timer to hand memory back sooner.
    ///
    /// ```
    /// use ratekeeper_core::{Acquire, Gcra, ManualClock, Nanos, Store};
    /// use ratekeeper_memory::MemoryStore;
    ///
    /// let store = MemoryStore::new(ManualClock::new());
    /// let gcra = Gcra::new(Nanos::from_secs(1), 1).unwrap();
    /// store.acquire("k", &Acquire::check(gcra)).unwrap();
    /// assert_eq!(store.evict_idle(), 0, "full again only in a second");
    /// store.clock().advance(Nanos::from_secs(1));
    /// assert_eq!(store.evict_idle(), 1);
    /// assert!(store.is_empty());
    /// ```
    pub fn evict_idle(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let mut buckets = write(&shard.buckets);
                let before = buckets.slots.len();
                sweep(&mut buckets, self.clock.now().as_nanos());
                before.saturating_sub(buckets.slots.len())
            })
            .sum()
    }

    fn fingerprint(&self, key: &str) -> Fingerprint {
        Fingerprint {
            hash: self.place.hash_one(key),
            check: self.tell_apart.hash_one(key),
        }
    }

    fn shard(&self, print: Fingerprint) -> &Shard {
        let index = usize::try_from(print.hash >> 40).unwrap_or(0) & self.shard_mask;
        // The mask keeps the index in range; the fallback is never taken.
        self.shards.get(index).unwrap_or_else(|| self.first_shard())
    }

    fn first_shard(&self) -> &Shard {
        // `build` makes at least one shard.
        #[allow(clippy::indexing_slicing)]
        &self.shards[0]
    }

    /// Runs `op` on the cell of `key`, made if missing, with the clock's
    /// now read after the cell was found (so never before an eviction
    /// that forgot an earlier cell of the same key).
    fn with_cell<R>(&self, key: &str, op: impl FnOnce(&Cell, Instant) -> R) -> R {
        let print = self.fingerprint(key);
        let shard = self.shard(print);
        {
            let buckets = read(&shard.buckets);
            if let Some(slot) = buckets.slots.find(print.hash, |slot| slot.is(print)) {
                return op(&slot.cell, self.clock.now());
            }
        }
        let mut buckets = write(&shard.buckets);
        let now = self.clock.now();
        if buckets.slots.find(print.hash, |slot| slot.is(print)).is_none() {
            make_room(
                &mut buckets,
                self.buckets_per_shard,
                now.as_nanos(),
                self.idle_grace,
            );
        }
        let entry = buckets
            .slots
            .entry(print.hash, |slot| slot.is(print), |slot| slot.hash);
        let slot = entry
            .or_insert_with(|| Slot {
                hash: print.hash,
                check: print.check,
                cell: Cell::default(),
            })
            .into_mut();
        let result = op(&slot.cell, now);
        // Buckets already held only ever settle later than they did, but a
        // new one may settle before the shard's noted next idle instant.
        let settles_at = slot.cell.settles_at();
        buckets.next_idle_at = buckets.next_idle_at.min(settles_at);
        result
    }
}

impl Slot {
    fn is(&self, print: Fingerprint) -> bool {
        self.hash == print.hash && self.check == print.check
    }
}

/// Makes room for one more bucket in a shard holding at most `cap`: sweeps
/// buckets idle for `grace` when the table has no room left, every idle
/// bucket when the shard is at the cap; at the cap with none idle, forgets the sampled bucket that settles
/// first; and when the table still has no room, rebuilds it at the size
/// the shard needs rather than let hashbrown double it.
fn make_room(buckets: &mut Buckets, cap: usize, now: u64, grace: u64) {
    // hashbrown's `capacity()` is what it holds plus what it can still take
    // without growing; removed buckets' tombstones count against the latter.
    let at_cap = buckets.slots.len() >= cap;
    if buckets.slots.len() < buckets.slots.capacity() && !at_cap {
        return;
    }
    let idle_since = if at_cap { now } else { now.saturating_sub(grace) };
    if idle_since >= buckets.next_idle_at {
        sweep(buckets, idle_since);
    }
    if buckets.slots.len() >= cap {
        evict_soonest_settled(buckets);
    }
    let len = buckets.slots.len();
    if len < buckets.slots.capacity() {
        return;
    }
    // No room without growing. Growing by doubling would, under churn at
    // the cap, settle at tables four times the cap's size (tombstones push
    // hashbrown to grow rather than rehash once more than half full);
    // rebuilding at twice the live count, never past the cap, keeps the
    // table the size a fresh one of the same buckets would have.
    let wanted = len.saturating_mul(2).min(cap).max(len.saturating_add(1));
    let old = std::mem::replace(&mut buckets.slots, HashTable::with_capacity(wanted));
    for slot in old {
        buckets.slots.insert_unique(slot.hash, slot, |slot| slot.hash);
    }
}

/// Forgets every bucket idle since `idle_since` (settled at or before it)
/// and notes when the next one settles.
fn sweep(buckets: &mut Buckets, idle_since: u64) {
    let mut next_idle_at = u64::MAX;
    buckets.slots.retain(|slot| {
        let settles_at = slot.cell.settles_at();
        if settles_at <= idle_since {
            false
        } else {
            next_idle_at = next_idle_at.min(settles_at);
            true
        }
    });
    buckets.next_idle_at = next_idle_at;
}

/// At the cap with nothing idle: forgets, of a sample of buckets, the one
/// whose state would have expired first (the least owed).
fn evict_soonest_settled(buckets: &mut Buckets) {
    let victim = buckets
        .slots
        .iter()
        .take(EVICTION_SAMPLE)
        .min_by_key(|slot| slot.cell.settles_at())
        .map(|slot| (slot.hash, slot.check));
    if let Some((hash, check)) = victim
        && let Ok(entry) = buckets
            .slots
            .find_entry(hash, |slot| slot.hash == hash && slot.check == check)
    {
        entry.remove();
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // Every update under these locks is a single insertion, removal or
    // atomic operation: a panic elsewhere leaves the data whole.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<C: Clock> Store for MemoryStore<C> {
    type Error = Infallible;

    fn acquire(&self, key: &str, request: &Acquire) -> Result<Decision, Infallible> {
        Ok(self.with_cell(key, |cell, now| cell.acquire(request, now)))
    }

    fn pause(&self, key: &str, span: Nanos) -> Result<(), Infallible> {
        self.with_cell(key, |cell, now| cell.pause(now, span));
        Ok(())
    }

    fn policy(&self, key: &str) -> Result<Option<Policy>, Infallible> {
        let print = self.fingerprint(key);
        let policies = lock(&self.shard(print).policies);
        Ok(policies
            .find(print.hash, |slot| {
                slot.hash == print.hash && slot.check == print.check
            })
            .map(|slot| slot.policy))
    }

    fn set_policy(&self, key: &str, policy: &Policy) -> Result<(), Infallible> {
        let print = self.fingerprint(key);
        let mut policies = lock(&self.shard(print).policies);
        let is = |slot: &PolicySlot| slot.hash == print.hash && slot.check == print.check;
        if let Some(slot) = policies.find_mut(print.hash, is) {
            slot.policy = *policy;
            return Ok(());
        }
        if policies.len() >= self.policies_per_shard {
            // At the cap: the policy learned longest ago makes way.
            let oldest = policies
                .iter()
                .min_by_key(|slot| slot.policy.learned_at)
                .map(|slot| (slot.hash, slot.check));
            if let Some((hash, check)) = oldest
                && let Ok(entry) = policies.find_entry(hash, |slot| slot.hash == hash && slot.check == check)
            {
                entry.remove();
            }
        }
        policies.insert_unique(
            print.hash,
            PolicySlot {
                hash: print.hash,
                check: print.check,
                policy: *policy,
            },
            |slot| slot.hash,
        );
        Ok(())
    }
}
