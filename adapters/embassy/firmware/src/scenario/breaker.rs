//! The circuit breaker: three failures open it, calls are refused while
//! it is open, and after a Timer wait one half-open probe passes and its
//! success closes it.
//!
//! It trips on consecutive failures alone, so it keeps no failure-rate
//! window (`Breaker<0>`).

use embassy_time::Timer;
use ratekeeper_core::{Breaker, BreakerConfig, BreakerState, CallResult, Clock, Nanos};
use ratekeeper_embassy::EmbassyClock;

use super::checks;
use crate::report::Report;

/// Open for 200 ms after three consecutive failures (the default single
/// half-open probe).
const OPEN_FOR: Nanos = Nanos::from_millis(200);

/// Three consecutive failures open the breaker for [`OPEN_FOR`]. Built
/// where it is used, from immediates: a configuration (or a whole breaker)
/// copied from a constant in flash would cost a block copy routine.
#[inline(always)]
const fn config() -> BreakerConfig {
    BreakerConfig::consecutive_failures(3, OPEN_FOR)
}
// Validated at compile time, like the backoff stage's configuration.
const _: () = assert!(Breaker::<0>::new(config()).is_ok());

pub async fn run(report: &mut Report) {
    report.stage(checks::BREAKER);
    let Ok(mut breaker) = Breaker::<0>::new(config()) else {
        panic!("a valid breaker");
    };
    // One reading of the clock for the calls before the wait, one for
    // those after it.
    let now = EmbassyClock.now();
    // The transitions the three failures report must be exactly `[None,
    // None, Some(Open)]` (a refused call reports none): compared as they
    // come rather than kept.
    let mut as_expected = true;
    for call in 0..3 {
        let transition = match breaker.permit(now) {
            Ok(permit) => breaker.record(permit, CallResult::Failure, now),
            Err(_) => None,
        };
        as_expected &= transition == (call == 2).then_some(BreakerState::Open);
    }
    super::verify_held(report, as_expected);
    let (wait, refused) = match breaker.permit(now) {
        Err(r) => (
            r.retry_after,
            r.state == BreakerState::Open && r.retry_after <= OPEN_FOR,
        ),
        Ok(_) => (OPEN_FOR, false),
    };
    super::verify_held(report, refused);

    // Rounded up to the timer's tick, so never woken before the breaker
    // half-opens.
    Timer::after_nanos(wait.as_nanos()).await;

    let now = EmbassyClock.now();
    let probe = breaker.permit(now);
    let second = breaker.permit(now);
    super::verify_held(
        report,
        probe.as_ref().is_ok_and(|p| p.is_probe())
            && second.is_err_and(|r| r.state == BreakerState::HalfOpen),
    );
    let closed = probe
        .ok()
        .and_then(|p| breaker.record(p, CallResult::Success, now));
    super::verify_held(
        report,
        closed == Some(BreakerState::Closed) && breaker.snapshot(now).state == BreakerState::Closed,
    );
}
