//! The names of the scenario's checks, kept apart so that the baseline
//! build carries the same text and the size difference is ratekeeper's code
//! alone.

pub const BUCKET_BYTES: &str = "bucket: 16 bytes of RAM each";
pub const POLICY_STORED: &str = "policy: stored and read back";
pub const POLICY_INTERVAL: &str = "policy: 16/s paces one request per 64.432990 ms";
pub const RESERVE_EXACT: &str = "reserve: four requests wait exactly 0, T, 2T, 3T";
pub const CHECK_REFUSED: &str = "check: the spent bucket refuses, retry after exactly 4T";
pub const TIMER_SLEEPS: &str = "acquire: the fifth sleeps on the Timer for its wait (at most 4T)";
pub const TIMER_NEXT_SLOT: &str = "acquire: after the sleep, the next slot is at most T away";
pub const DELAY_SLEEPS: &str = "acquire_with_delay: sleeps on DelayNs for its wait (at most T)";
pub const PAUSE_REFUSES: &str = "pause: checks are refused for exactly the pause";
pub const PAUSE_QUEUES: &str = "pause: reservations queue behind it, one interval apart";
pub const PAUSE_SLEEPS: &str = "pause: the third reservation sleeps through the pause and two intervals";
pub const CAPACITY_FILLED: &str = "capacity: eight keys take the eight slots, stale buckets evicted";
pub const CAPACITY_FULL: &str = "capacity: a ninth key is told the store is full";
pub const CAPACITY_ROOM: &str = "capacity: once a bucket no longer matters, the ninth key gets its slot";

/// Every check of the limiter stage, in order (for the baseline).
#[cfg_attr(feature = "ratekeeper", allow(dead_code))]
pub const LIMITER: [&str; 14] = [
    BUCKET_BYTES,
    POLICY_STORED,
    POLICY_INTERVAL,
    RESERVE_EXACT,
    CHECK_REFUSED,
    TIMER_SLEEPS,
    TIMER_NEXT_SLOT,
    DELAY_SLEEPS,
    PAUSE_REFUSES,
    PAUSE_QUEUES,
    PAUSE_SLEEPS,
    CAPACITY_FILLED,
    CAPACITY_FULL,
    CAPACITY_ROOM,
];
