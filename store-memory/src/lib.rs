//! # ratekeeper-memory
//!
//! The in-process [`Store`]: the default for a single instance and the
//! fallback of the Redis store when Redis is away. It sits on the hot path
//! of every call, so it is built to cost a few tens of nanoseconds per
//! decision from any number of threads, and to hold a bounded amount of
//! memory whatever the number of keys.
//!
//! ```
//! use ratekeeper_core::{Acquire, Gcra, ManualClock, Nanos, Store};
//! use ratekeeper_memory::MemoryStore;
//!
//! let store = MemoryStore::new(ManualClock::new());
//! let gcra = Gcra::new(Nanos::from_millis(100), 2).unwrap();
//! assert!(store.acquire("api.example.com/items", &Acquire::check(gcra)).unwrap().is_allowed());
//! assert!(store.acquire("api.example.com/items", &Acquire::check(gcra)).unwrap().is_allowed());
//! assert!(!store.acquire("api.example.com/items", &Acquire::check(gcra)).unwrap().is_allowed());
//! ```
//!
//! ## Design
//!
//! - **A bucket is two atomic words**: its TAT and the end of its pause,
//!   nanoseconds on the store's clock. A decision loads the TAT, loads the
//!   pause, decides with the core's [`BucketState::decide`] (the very
//!   function every ratekeeper store decides with) and stores the new TAT
//!   with one compare-and-swap, retrying on a lost race. A pause is a
//!   `fetch_max` on its own word: pauses only grow. Both words only ever
//!   grow, so a successful swap proves nothing moved in between, and each
//!   decision is the one a sequential store would make at the instant it
//!   read the pause: a pause that returned before a decision began is
//!   always seen by it.
//! - **The map is sharded**: a power-of-two number of shards (four per CPU
//!   by default), each a read-write lock over an open-addressing table
//!   (hashbrown) holding the buckets inline. A decision on a known key
//!   takes the shard's lock *shared* (many threads decide on the same shard
//!   at once, the atomics order them) and never allocates; only a new key
//!   takes it exclusively.
//! - **Keys are hashed, not stored.** A key is known by two independent
//!   64-bit foldhash hashes with per-store random seeds: one places it, the
//!   other tells apart keys placed alike. Two different keys share a bucket
//!   only if both hashes collide, with a chance of about `n² / 2¹²⁹` among
//!   `n` keys (below 10⁻²⁶ for a million keys). This is the collision rule
//!   of the [`Store`] contract; the seeds are secret to the process, so
//!   collisions cannot be aimed at. It keeps a bucket at 32 bytes
//!   whatever the key's length, and a lookup free of string copies.
//! - **Policies** live in their own small table per shard under a mutex:
//!   they change rarely and are read once per learned response, not on
//!   every decision.
//! - For a limit that is one bucket by nature, [`Bucket`] is the same two
//!   words and the same decision with no map at all.
//!
//! ## Memory, eviction and the cap
//!
//! A bucket is *idle* when its TAT and its pause are both at or before
//! now: it is then a full, unpaused bucket, exactly what a key never seen
//! gets, so forgetting it changes no decision. The store forgets idle
//! buckets by itself, one shard at a time:
//!
//! 1. before a shard's table would grow, it first sweeps the shard's
//!    buckets idle for longer than the [idle
//!    grace](MemoryStoreBuilder::idle_grace) (10 s by default, so that a
//!    key used now and then keeps its bucket rather than have it made
//!    again each time), and grows only if that freed less than half;
//! 2. at the cap ([`MemoryStoreBuilder::max_buckets`], split evenly over
//!    the shards), it sweeps every idle bucket of the shard, grace or not;
//! 3. at the cap with **no** idle bucket in the shard, it forgets, among a
//!    sample of 16 of the shard's buckets, the one whose state would have
//!    expired first (the least owed). That bucket's next request meets a
//!    full bucket: it may admit up to its burst early, once. This is the
//!    only case in which the store forgets a bucket that still matters; set
//!    the cap above the number of buckets busy at once (used within their
//!    last `burst × interval`, or paused) and it never happens.
//!
//! A sweep that finds nothing idle notes when the next bucket will be, and
//! the shard does not sweep again before then, so a full shard of busy
//! buckets costs a sample of 16 per new key, not a scan.
//! [`MemoryStore::evict_idle`] sweeps every shard on demand.
//!
//! Policies are capped the same way ([`MemoryStoreBuilder::max_policies`]):
//! at the cap, a new key's policy replaces the shard's policy learned
//! longest ago.
//!
//! A bucket costs 32 bytes in its table plus one control byte. hashbrown
//! keeps its tables between 7/16 and 7/8 full, so a held bucket costs
//! between about 38 and 75 bytes of heap depending on where the table is
//! in its growth: 43.5 bytes per bucket measured with 100,000 idle buckets
//! and 54 with 10,000 ([`MemoryStore::heap_bytes`] divided by
//! [`MemoryStore::len`]; the bench's `compare` prints both). Nothing is
//! allocated per key beyond that, and under churn at the cap a shard's
//! table is rebuilt at the size it needs rather than left to double.
//!
//! ## Features
//!
//! - `quanta`: `QuantaClock`, a monotonic clock read from the CPU's
//!   time-stamp counter, a few nanoseconds per reading.
#![forbid(unsafe_code)]

mod bucket;
mod cell;
#[cfg(feature = "quanta")]
mod quanta_clock;
mod store;

pub use bucket::Bucket;
#[cfg(feature = "quanta")]
pub use quanta_clock::QuantaClock;
pub use store::{MemoryStore, MemoryStoreBuilder};

#[doc(no_inline)]
pub use ratekeeper_core::{BucketState, Store};
