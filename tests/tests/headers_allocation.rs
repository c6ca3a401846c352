//! Parsing a response's headers allocates nothing: a counting global
//! allocator watches this thread while every family is parsed.
// A global allocator can only be written with `unsafe impl GlobalAlloc`;
// it forwards to `System` and only counts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ratekeeper_core::{ParseOptions, Profile, RateLimitInfo, UnixTime};

thread_local! {
    // Const-initialised and without a destructor, so reading it never
    // allocates (which would recurse into the allocator).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// `System`, counting allocations made by the current thread.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; counting touches only a
// thread-local `Cell`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

type Headers = [(&'static [u8], &'static [u8])];

/// Typical responses of several families, and some hostile ones.
const RESPONSES: [&Headers; 7] = [
    &[
        (b"Content-Type", b"application/json"),
        (b"ratelimit", b"limit=160; remaining=159; reset=8"),
    ],
    &[
        (b"date", b"Sun, 22 Nov 2026 12:00:00 GMT"),
        (
            b"ratelimit-policy",
            b"\"burst\";q=100;w=60, \"day\";q=5000;w=86400",
        ),
        (b"ratelimit", b"\"burst\";r=50;t=30, \"day\";r=4000;t=40000"),
    ],
    &[
        (b"date", b"Sun, 22 Nov 2026 12:00:00 GMT"),
        (b"x-ratelimit-limit", b"5000"),
        (b"x-ratelimit-remaining", b"4987"),
        (b"x-ratelimit-reset", b"1795348800"),
        (b"x-ratelimit-used", b"13"),
    ],
    &[
        (b"x-ratelimit-limit-requests", b"10000"),
        (b"x-ratelimit-reset-tokens", b"6m0s"),
        (b"anthropic-ratelimit-requests-reset", b"2026-11-22T12:00:01Z"),
        (b"Sforce-Limit-Info", b"api-usage=10018/100000; api-bursts=1/750"),
        (b"Retry-After", b"Sunday, 22-Nov-26 12:00:30 GMT"),
    ],
    &[
        (b"X-RateLimit-Limit", b"100, 100;window=60, 10000;window=86400"),
        (
            b"X-RateLimit-Reset",
            b"Mon Jan 01 2024 13:00:10 GMT+0100 (Central European Standard Time)",
        ),
    ],
    &[
        (b"x-ratelimit-remaining", b"991, 98"),
        (b"X-RateLimit-Limit", b"NaN"),
        (b"Retry-After", b"-1"),
    ],
    &[
        (b"RateLimit", b"\"\\\"\";r=;t=,,,;;\""),
        (b"\xff\xfe", b"\x00"),
        (b"", b""),
    ],
];

#[test]
fn parsing_allocates_nothing() {
    let options = ParseOptions::new()
        .with_now(UnixTime::from_secs(1_795_348_000))
        .with_profile(Profile::for_host(b"api.github.com"));
    for (index, headers) in RESPONSES.iter().enumerate() {
        let mut info = None;
        let count = allocations_during(|| {
            info = Some(RateLimitInfo::parse(Some(429), headers.iter().copied(), &options));
        });
        assert_eq!(count, 0, "response {index} allocated");
        assert!(info.is_some_and(|info| info.quotas().len() + info.warnings().len() > 0 || index == 6));
    }
    // The counter does count: a Vec allocates.
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 16]))) > 0);
}
