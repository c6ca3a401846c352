//! The stages of the scenario.
//!
//! Each stage is `pub async fn run(report: &mut Report)`, or a plain
//! `pub fn` when it never waits (no state machine to pay for in flash): it
//! drives one part of ratekeeper and records a named check per expected
//! outcome. A new stage
//! is a new module here and one line in `main`.

#[cfg(feature = "backoff")]
pub mod backoff;
#[cfg(not(feature = "ratekeeper"))]
pub mod baseline;
#[cfg(feature = "breaker")]
pub mod breaker;
pub mod checks;
#[cfg(feature = "headers")]
pub mod headers;
#[cfg(feature = "learner")]
pub mod learner;
#[cfg(feature = "ratekeeper")]
pub mod limiter;

/// Milliseconds in an embassy-time duration (1 kHz ticks).
pub fn millis(duration: embassy_time::Duration) -> u64 {
    duration.as_millis()
}

/// Makes the next check on one condition: observed as `1` when it held.
/// One call rather than a one-value array at each check of a condition.
#[cfg(feature = "ratekeeper")]
#[inline(never)]
pub fn verify_held(report: &mut crate::report::Report, held: bool) {
    report.verify(&[u64::from(held)]);
}
