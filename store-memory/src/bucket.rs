//! A single bucket on its own: the un-keyed limiter.

use ratekeeper_core::{Acquire, BucketState, Clock, Decision, Nanos};

use crate::cell::Cell;

/// One bucket, no key and no map: two atomic words and a clock.
///
/// For a limit that is one bucket by nature (a whole process's budget
/// against one API, a worker pool's pace) there is nothing to look up, so
/// a `Bucket` skips the hashing and the shard lock of [`MemoryStore`] and
/// decides with one compare-and-swap. The decisions are the same as the
/// store's, and so [`BucketState::decide`]'s: the same code makes them.
///
/// `Bucket` is `Sync`: share it by reference or in an `Arc` between
/// threads.
///
/// ```
/// use ratekeeper_core::{Acquire, Gcra, ManualClock, Nanos};
/// use ratekeeper_memory::Bucket;
///
/// let bucket = Bucket::new(ManualClock::new());
/// let gcra = Gcra::new(Nanos::from_millis(100), 1).unwrap();
/// assert!(bucket.acquire(&Acquire::check(gcra)).is_allowed());
/// assert!(!bucket.acquire(&Acquire::check(gcra)).is_allowed());
/// bucket.clock().advance(Nanos::from_millis(100));
/// assert!(bucket.acquire(&Acquire::check(gcra)).is_allowed());
/// ```
///
/// [`MemoryStore`]: crate::MemoryStore
#[derive(Debug)]
pub struct Bucket<C> {
    cell: OwnLine,
    clock: C,
}

/// The cell on cache lines of its own: when threads contend for the TAT,
/// the clock's fields (read by every decision) stay out of the line that
/// bounces between cores.
#[derive(Debug, Default)]
#[repr(align(128))]
struct OwnLine(Cell);

impl<C: Clock> Bucket<C> {
    /// A full, unpaused bucket reading time from `clock`.
    pub fn new(clock: C) -> Bucket<C> {
        Bucket {
            cell: OwnLine::default(),
            clock,
        }
    }

    /// Decides and records one request, atomically.
    ///
    /// ```
    /// use ratekeeper_core::{Acquire, Gcra, ManualClock, Nanos};
    /// use ratekeeper_memory::Bucket;
    ///
    /// let bucket = Bucket::new(ManualClock::new());
    /// let gcra = Gcra::new(Nanos::from_millis(100), 1).unwrap();
    /// bucket.acquire(&Acquire::check(gcra));
    /// // A reservation takes the next slot and says how long to wait for it.
    /// let reserved = bucket.acquire(&Acquire::reserve(gcra, Nanos::from_secs(1)));
    /// assert_eq!(reserved.allowed().unwrap().wait, Nanos::from_millis(100));
    /// ```
    #[inline]
    pub fn acquire(&self, request: &Acquire) -> Decision {
        self.cell.0.acquire_by(request, &self.clock)
    }

    /// Admits nothing for `span` from now (or longer, if a longer pause is
    /// in force).
    ///
    /// ```
    /// use ratekeeper_core::{Acquire, Gcra, ManualClock, Nanos};
    /// use ratekeeper_memory::Bucket;
    ///
    /// let bucket = Bucket::new(ManualClock::new());
    /// let gcra = Gcra::new(Nanos::from_millis(100), 1).unwrap();
    /// bucket.pause(Nanos::from_secs(2));
    /// let denied = bucket.acquire(&Acquire::check(gcra)).denied().unwrap();
    /// assert_eq!(denied.retry_after, Nanos::from_secs(2));
    /// ```
    pub fn pause(&self, span: Nanos) {
        self.cell.0.pause(self.clock.now(), span);
    }

    /// The bucket's state at this moment.
    ///
    /// ```
    /// use ratekeeper_core::{BucketState, ManualClock};
    /// use ratekeeper_memory::Bucket;
    ///
    /// assert_eq!(Bucket::new(ManualClock::new()).state(), BucketState::EMPTY);
    /// ```
    pub fn state(&self) -> BucketState {
        self.cell.0.state()
    }

    /// The bucket's clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }
}
