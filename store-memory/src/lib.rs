//! # ratekeeper-memory
//!
//! The in-process [`Store`]: the default for a single instance and the
//! fallback of the Redis store when Redis is away.
//!
//! Every operation takes one short lock on the map of buckets and decides
//! with the core's [`BucketState::decide`], so it is exactly as strict as
//! every other ratekeeper store.
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

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Mutex, MutexGuard, PoisonError};

use ratekeeper_core::{Acquire, BucketState, Clock, Decision, Nanos, Policy, Store};

#[derive(Debug, Default)]
struct Entry {
    state: BucketState,
    policy: Option<Policy>,
}

/// An in-process store of buckets, pauses and policies, on clock `C`.
#[derive(Debug)]
pub struct MemoryStore<C> {
    clock: C,
    entries: Mutex<HashMap<Box<str>, Entry>>,
}

impl<C: Clock> MemoryStore<C> {
    /// An empty store reading time from `clock`.
    pub fn new(clock: C) -> MemoryStore<C> {
        MemoryStore {
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The store's clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// How many buckets the store holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no bucket.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Entry>> {
        // A panic elsewhere while holding the lock leaves every entry whole
        // (each update is a single assignment), so poisoning is ignored.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn with_entry<R>(&self, key: &str, f: impl FnOnce(&mut Entry) -> R) -> R {
        let mut entries = self.lock();
        match entries.get_mut(key) {
            Some(entry) => f(entry),
            None => f(entries.entry(Box::from(key)).or_default()),
        }
    }
}

impl<C: Clock> Store for MemoryStore<C> {
    type Error = Infallible;

    fn acquire(&self, key: &str, request: &Acquire) -> Result<Decision, Infallible> {
        let now = self.clock.now();
        Ok(self.with_entry(key, |entry| {
            let (decision, next) = entry.state.decide(request, now);
            if let Some(next) = next {
                entry.state = next;
            }
            decision
        }))
    }

    fn pause(&self, key: &str, span: Nanos) -> Result<(), Infallible> {
        let now = self.clock.now();
        self.with_entry(key, |entry| entry.state = entry.state.paused_for(now, span));
        Ok(())
    }

    fn policy(&self, key: &str) -> Result<Option<Policy>, Infallible> {
        Ok(self.lock().get(key).and_then(|entry| entry.policy))
    }

    fn set_policy(&self, key: &str, policy: &Policy) -> Result<(), Infallible> {
        self.with_entry(key, |entry| entry.policy = Some(*policy));
        Ok(())
    }
}
