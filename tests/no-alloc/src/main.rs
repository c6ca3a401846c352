//! Links ratekeeper-core into a bare-metal binary with no global allocator.
//!
//! Every public entry point of the core is reached through `black_box`, so
//! none of it is optimised away before the link: had any crate in the
//! core's graph linked `alloc`, the link would fail with "no global memory
//! allocator found".
#![no_std]
#![no_main]

use core::hint::black_box;
use core::panic::PanicInfo;

use ratekeeper_core::{
    Acquire, Backoff, BackoffConfig, Breaker, BreakerConfig, BucketState, CallResult, Clock, Gcra,
    ManualClock, Method, Nanos, Outcome, Policy, PolicyConfig, PolicySource, RequestKind, RetryPolicy,
    RetryState, SplitMix64,
};
use ratekeeper_core::{ParseOptions, RateLimitInfo, UnixTime};

fn exercise() -> u64 {
    let clock = ManualClock::new();
    clock.advance(Nanos::from_millis(black_box(5)));
    let policy = Policy::new(black_box(16), Nanos::from_secs(1), PolicySource::Header, clock.now());
    let gcra = match policy {
        Ok(policy) => policy.to_gcra(&PolicyConfig::default()),
        Err(_) => Gcra::SLOWEST,
    };
    let mut state = BucketState::EMPTY.paused_for(clock.now(), Nanos::from_millis(black_box(10)));
    let mut total = 0u64;
    for _ in 0..black_box(20) {
        let (decision, next) = state.decide(&Acquire::reserve(gcra, Nanos::from_secs(2)), clock.now());
        if let Some(allowed) = decision.allowed() {
            total = total.wrapping_add(allowed.wait.as_nanos());
        }
        if let Some(next) = next {
            state = next;
        }
    }
    total.wrapping_add(retry_and_break(&clock)).wrapping_add(read_headers())
}

fn read_headers() -> u64 {
    let headers: [(&[u8], &[u8]); 2] = [
        (b"date", b"Sun, 22 Nov 2026 12:00:00 GMT"),
        (b"ratelimit", b"limit=160; remaining=159; reset=8"),
    ];
    let options = ParseOptions::new().with_now(UnixTime::from_secs(black_box(0)));
    let info = RateLimitInfo::parse(black_box(Some(200)), black_box(headers), &options);
    info.limit().unwrap_or(0)
}

fn retry_and_break(clock: &ManualClock) -> u64 {
    let mut rng = SplitMix64::new(black_box(7));
    let mut total = 0u64;
    let mut backoff = Backoff::new(BackoffConfig::GO_HIGH_LEVEL);
    while let Some(delay) = backoff.next_delay(&mut rng, black_box(None)) {
        total = total.wrapping_add(delay.as_nanos());
    }
    let mut retry = RetryState::new(RetryPolicy::SUPABASE, RequestKind::new(Method::Get), clock.now());
    let decision = retry.decide(Outcome::Response(black_box(503)), None, clock.now(), &mut rng);
    if let Some(wait) = decision.wait() {
        total = total.wrapping_add(wait.as_nanos());
    }
    if let Ok(mut breaker) = Breaker::<1>::new(BreakerConfig::GO_HIGH_LEVEL) {
        for _ in 0..black_box(6) {
            match breaker.permit(clock.now()) {
                Ok(permit) => {
                    breaker.record(permit, CallResult::Failure, clock.now());
                }
                Err(rejected) => total = total.wrapping_add(rejected.error().attempts().into()),
            }
        }
        total = total.wrapping_add(u64::from(breaker.snapshot(clock.now()).trips));
    }
    total
}

/// The entry point the linker looks for; never run, only linked.
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    black_box(exercise());
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
