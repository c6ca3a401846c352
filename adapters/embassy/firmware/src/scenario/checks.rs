//! The scenario's checks as data: each a name and the bounds its observed
//! values must fall within, all in one table that every build links
//! whichever stages it holds (the baseline included), and one routine,
//! [`Report::verify`](crate::report::Report::verify), that checks and
//! reports them. A stage only observes: it turns what ratekeeper returned
//! into numbers and hands them over. The harness (names, expected values,
//! comparisons, report lines) is then the same code and data in every
//! build, and the size difference between builds is ratekeeper's code and
//! the calls made to it.
//!
//! Observed values are `u64`: nanoseconds, counts, the [outcome](OUTCOME_ALLOWED)
//! of a store call, or `1` for a condition that held ([`HELD`]).

// Which constants a build refers to depends on the stages it holds.
#![allow(dead_code)]

/// An observed value must lie in `low..=high`.
#[derive(Clone, Copy)]
pub struct Bound {
    pub low: u64,
    pub high: u64,
}

/// A named check: its observed values, in order, must lie within `bounds`.
pub struct Check {
    pub name: &'static str,
    pub bounds: &'static [Bound],
}

const fn eq(value: u64) -> Bound {
    Bound {
        low: value,
        high: value,
    }
}

const fn at_most(value: u64) -> Bound {
    Bound { low: 0, high: value }
}

/// A condition that held, observed as `1`.
pub const HELD: Bound = eq(1);
/// Any value at all.
const ANY: Bound = at_most(u64::MAX);

/// A store call that admitted: the value after it is the wait.
pub const OUTCOME_ALLOWED: u64 = 0;
/// A refusal by the limit: the value after it is the retry-after.
pub const OUTCOME_LIMIT: u64 = 1;
/// A refusal by a pause: the value after it is the retry-after.
pub const OUTCOME_PAUSED: u64 = 2;
/// A request larger than the burst: the value after it is the cost.
pub const OUTCOME_IMPOSSIBLE: u64 = 3;
/// The store was full: the value after it is its capacity.
pub const OUTCOME_FULL: u64 = 4;
/// Another store error: the value after it is `0`.
pub const OUTCOME_ERROR: u64 = 5;

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000_000_000;
/// 16 per second under the default 3% margin: ⌈1 s / (16 × 0.97)⌉ ns.
pub const INTERVAL_NS: u64 = 64_432_990;
/// The pause the limiter stage sets (a 429's, shortened for the run).
pub const PAUSE_NS: u64 = 500 * MS;
/// The bytes a bucket may cost.
pub const BUCKET_BYTES: u64 = 16;
/// The buckets of the firmware's store.
pub const BUCKETS: u64 = 8;

/// The backoff stage's `Retry-After`.
pub const BACKOFF_RETRY_AFTER_NS: u64 = SECOND;
const NOT_BEFORE_RETRY_AFTER: Bound = Bound {
    low: BACKOFF_RETRY_AFTER_NS,
    high: u64::MAX,
};

const T: u64 = INTERVAL_NS;
const fn allowed_after(wait: u64) -> [Bound; 2] {
    [eq(OUTCOME_ALLOWED), eq(wait)]
}

#[cfg(not(feature = "break-a-check"))]
const FOURTH_WAIT: u64 = 3 * T;
/// Broken on purpose: one nanosecond off.
#[cfg(feature = "break-a-check")]
const FOURTH_WAIT: u64 = 3 * T + 1;
const fn reserve_exact() -> [Bound; 8] {
    let [a, b] = allowed_after(0);
    let [c, d] = allowed_after(T);
    let [e, f] = allowed_after(2 * T);
    let [g, h] = allowed_after(FOURTH_WAIT);
    [a, b, c, d, e, f, g, h]
}
const fn pause_queues() -> [Bound; 4] {
    let [a, b] = allowed_after(PAUSE_NS);
    let [c, d] = allowed_after(PAUSE_NS + T);
    [a, b, c, d]
}

/// Every check of the scenario, in the order the stages make them.
pub static ALL: [Check; 27] = [
    // The limiter.
    Check {
        name: "bucket: 16 bytes of RAM each",
        bounds: &[eq(BUCKET_BYTES)],
    },
    Check {
        name: "policy: stored and read back",
        bounds: &[HELD],
    },
    Check {
        name: "policy: 16/s paces one request per 64.432990 ms",
        bounds: &[eq(T)],
    },
    Check {
        name: "reserve: four requests wait exactly 0, T, 2T, 3T",
        bounds: &reserve_exact(),
    },
    Check {
        name: "check: the spent bucket refuses, retry after exactly 4T",
        bounds: &[eq(OUTCOME_LIMIT), eq(4 * T)],
    },
    Check {
        // The wait, and whether the sleep lasted at least that long.
        name: "acquire: the fifth sleeps on the Timer for its wait (at most 4T)",
        bounds: &[eq(OUTCOME_ALLOWED), at_most(4 * T), HELD],
    },
    Check {
        // Admitted, or refused for at most T.
        name: "acquire: after the sleep, the next slot is at most T away",
        bounds: &[
            Bound {
                low: OUTCOME_ALLOWED,
                high: OUTCOME_LIMIT,
            },
            at_most(T),
        ],
    },
    Check {
        name: "acquire_with_delay: sleeps on DelayNs for its wait (at most T)",
        bounds: &[eq(OUTCOME_ALLOWED), at_most(T), HELD],
    },
    Check {
        // The pause was set, and the check it refuses.
        name: "pause: checks are refused for exactly the pause",
        bounds: &[HELD, eq(OUTCOME_PAUSED), eq(PAUSE_NS)],
    },
    Check {
        name: "pause: reservations queue behind it, one interval apart",
        bounds: &pause_queues(),
    },
    Check {
        name: "pause: the third reservation sleeps through the pause and two intervals",
        bounds: &[eq(OUTCOME_ALLOWED), at_most(PAUSE_NS + 2 * T), HELD],
    },
    Check {
        // How many of the eight keys were admitted.
        name: "capacity: eight keys take the eight slots, stale buckets evicted",
        bounds: &[eq(BUCKETS)],
    },
    Check {
        name: "capacity: a ninth key is told the store is full",
        bounds: &[eq(OUTCOME_FULL), eq(BUCKETS)],
    },
    Check {
        name: "capacity: once a bucket no longer matters, the ninth key gets its slot",
        bounds: &[eq(OUTCOME_ALLOWED), ANY],
    },
    // The header parser.
    Check {
        name: "headers: Close `ratelimit` (`;` and `,` forms) gives limit 16, remaining 15, reset 1 s",
        // Per form: the format named, limit, remaining, reset.
        bounds: &[HELD, eq(16), eq(15), eq(SECOND), HELD, eq(16), eq(15), eq(SECOND)],
    },
    Check {
        name: "headers: IETF draft-08 pair gives limit 20, remaining 19, reset 2 s, window 2 s",
        bounds: &[HELD, eq(20), eq(19), eq(2 * SECOND), eq(2 * SECOND)],
    },
    Check {
        // The value, and whether it applies to the request.
        name: "headers: a 429's Retry-After is read as 1 s",
        bounds: &[eq(SECOND), HELD],
    },
    // The learner.
    Check {
        // Limit, window, and whether the source is the header.
        name: "learner: the Close header teaches 16 per 1 s, from the header",
        bounds: &[eq(16), eq(SECOND), HELD],
    },
    Check {
        // The server's Retry-After, and whether the pause lasts as long.
        name: "learner: a 429 with Retry-After pauses the bucket at least that long",
        bounds: &[eq(SECOND), HELD],
    },
    Check {
        // The wait within Retry-After, the sleep through it.
        name: "learner: the next acquire sleeps through the Retry-After",
        bounds: &[HELD, HELD],
    },
    // Backoff and retries.
    Check {
        // Four delays within 100 ms doubling to the 1.6 s cap, then none.
        name: "backoff: seeded full-jitter delays stay within step and cap",
        bounds: &[
            at_most(100 * MS),
            at_most(200 * MS),
            at_most(400 * MS),
            at_most(800 * MS),
            eq(u64::MAX),
        ],
    },
    Check {
        name: "backoff: no retry is scheduled before Retry-After",
        bounds: &[NOT_BEFORE_RETRY_AFTER; 4],
    },
    Check {
        // Whether it gave up for running out of attempts, and after how many.
        name: "backoff: after the last retry, the call gives up",
        bounds: &[HELD, eq(5)],
    },
    // The circuit breaker.
    Check {
        name: "breaker: three failures in a row open it",
        bounds: &[HELD],
    },
    Check {
        name: "breaker: while open, calls are refused for the open time",
        bounds: &[HELD],
    },
    Check {
        name: "breaker: after a Timer wait, one half-open probe passes, the next is refused",
        bounds: &[HELD],
    },
    Check {
        name: "breaker: the probe's success closes it",
        bounds: &[HELD],
    },
];

/// The first check of the limiter stage, and of each later stage.
pub const LIMITER: usize = 0;
pub const HEADERS: usize = 14;
pub const LEARNER: usize = 17;
pub const BACKOFF: usize = 20;
pub const BREAKER: usize = 23;
