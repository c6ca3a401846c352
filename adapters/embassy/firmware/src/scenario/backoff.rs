//! Backoff and retries with a seeded `SplitMix64`: every delay within its
//! bounds, never before the server's `Retry-After`, and a give-up once the
//! retries run out.

use ratekeeper_core::{
    Backoff, BackoffConfig, Clock, GiveUpReason, Jitter, Method, Nanos, Outcome, RequestKind, RetryDecision,
    RetryPolicy, RetryState, SplitMix64,
};
use ratekeeper_embassy::EmbassyClock;

use super::checks;
use crate::report::Report;

/// 100 ms doubling to a 1.6 s cap, four retries, full jitter. Built where
/// it is used, from immediates (the arguments are constants, so the
/// validation folds away): a configuration copied from a constant in flash
/// would cost a block copy routine. Validated at compile time below.
#[inline(always)]
const fn config() -> BackoffConfig {
    match BackoffConfig::new(
        Nanos::from_millis(100),
        Nanos::from_millis(1_600),
        4,
        Jitter::Full,
    ) {
        Ok(config) => config,
        Err(_) => panic!("a valid backoff"),
    }
}
const SEED: u64 = 0x5EED_2026;
const RETRY_AFTER: Nanos = Nanos::from_secs(1);
const _: () =
    assert!(config().max_retries() == 4 && RETRY_AFTER.as_nanos() == checks::BACKOFF_RETRY_AFTER_NS);

#[inline(never)]
pub fn run(report: &mut Report) {
    report.stage(checks::BACKOFF);
    // Two uses of one seeded generator, drawn in turn in one loop:
    // - the backoff alone, with full jitter: retry `i` waits at most
    //   `min(cap, base · 2^i)` (the bounds are in `checks`); the fifth
    //   draw finds the retries spent;
    // - a GET answered 429 with `Retry-After: 1`, every time: each wait at
    //   least that (`0` for anything but a retry); five decisions, four
    //   retries, then the give-up.
    let mut rng = SplitMix64::new(SEED);
    let mut backoff = Backoff::new(config());
    let now = EmbassyClock.now();
    let policy = RetryPolicy::new(config(), Nanos::from_secs(60));
    let mut retry = RetryState::new(policy, RequestKind::new(Method::Get), now);
    // Filled in place: arrays built elsewhere and moved here would cost a
    // block copy routine.
    let mut delays = [0; 5];
    let mut waits = [0; 5];
    let mut last = RetryDecision::Done;
    for (delay, wait) in delays.iter_mut().zip(&mut waits) {
        *delay = backoff
            .next_delay(&mut rng, None)
            .map_or(u64::MAX, Nanos::as_nanos);
        last = retry.decide(Outcome::Response(429), Some(RETRY_AFTER), now, &mut rng);
        *wait = last.wait().map_or(0, Nanos::as_nanos);
    }
    report.verify(&delays);
    report.verify(&waits[..4]);
    let stop = last.give_up();
    report.verify(&[
        stop.as_ref()
            .is_some_and(|stop| stop.reason == GiveUpReason::AttemptsExhausted)
            .into(),
        stop.as_ref().map_or(0, |stop| stop.attempts.into()),
    ]);
}
