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
    Acquire, BucketState, Clock, Gcra, ManualClock, Nanos, ParseOptions, Policy, PolicyConfig, PolicySource,
    RateLimitInfo, UnixTime,
};

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
    let headers: [(&[u8], &[u8]); 2] = [
        (b"date", b"Sun, 22 Nov 2026 12:00:00 GMT"),
        (b"ratelimit", b"limit=160; remaining=159; reset=8"),
    ];
    let options = ParseOptions::new().with_now(UnixTime::from_secs(black_box(0)));
    let info = RateLimitInfo::parse(black_box(Some(200)), black_box(headers), &options);
    total.wrapping_add(info.limit().unwrap_or(0))
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
