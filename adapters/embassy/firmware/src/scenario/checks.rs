//! The names of the scenario's checks, kept apart so that the baseline
//! build carries the same text and the size difference is ratekeeper's code
//! alone. [`ALL`] keeps every name in every build, whichever stages are
//! built, so that builds with some stages left out size their code alone.

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

pub const HEADERS_CLOSE: &str =
    "headers: Close `ratelimit` (`;` and `,` forms) gives limit 16, remaining 15, reset 1 s";
pub const HEADERS_IETF: &str =
    "headers: IETF draft-08 pair gives limit 20, remaining 19, reset 2 s, window 2 s";
pub const HEADERS_RETRY_AFTER: &str = "headers: a 429's Retry-After is read as 1 s";
pub const LEARNER_LEARNS: &str = "learner: the Close header teaches 16 per 1 s, from the header";
pub const LEARNER_PAUSES: &str = "learner: a 429 with Retry-After pauses the bucket at least that long";
pub const LEARNER_WAITS: &str = "learner: the next acquire sleeps through the Retry-After";
pub const BACKOFF_BOUNDS: &str = "backoff: seeded full-jitter delays stay within step and cap";
pub const BACKOFF_RETRY_AFTER: &str = "backoff: no retry is scheduled before Retry-After";
pub const BACKOFF_EXHAUSTED: &str = "backoff: after the last retry, the call gives up";
pub const BREAKER_TRIPS: &str = "breaker: three failures in a row open it";
pub const BREAKER_REJECTS: &str = "breaker: while open, calls are refused for the open time";
pub const BREAKER_PROBES: &str =
    "breaker: after a Timer wait, one half-open probe passes, the next is refused";
pub const BREAKER_CLOSES: &str = "breaker: the probe's success closes it";

/// Every check after the limiter stage, in order (for the baseline).
pub const LATER: [&str; 13] = [
    HEADERS_CLOSE,
    HEADERS_IETF,
    HEADERS_RETRY_AFTER,
    LEARNER_LEARNS,
    LEARNER_PAUSES,
    LEARNER_WAITS,
    BACKOFF_BOUNDS,
    BACKOFF_RETRY_AFTER,
    BACKOFF_EXHAUSTED,
    BREAKER_TRIPS,
    BREAKER_REJECTS,
    BREAKER_PROBES,
    BREAKER_CLOSES,
];

/// Every name, linked into every build (see the module docs).
pub static ALL: [&[&str]; 2] = [&LIMITER, &LATER];
