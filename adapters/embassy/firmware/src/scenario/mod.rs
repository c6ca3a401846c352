//! The stages of the scenario.
//!
//! Each stage is `pub async fn run(report: &mut Report)`: it drives one part
//! of ratekeeper and records a named check per expected outcome. A new stage
//! is a new module here and one line in `main`.

#[cfg(not(feature = "ratekeeper"))]
pub mod baseline;
pub mod checks;
#[cfg(feature = "ratekeeper")]
pub mod limiter;

/// Milliseconds in an embassy-time duration (1 kHz ticks).
pub fn millis(duration: embassy_time::Duration) -> u64 {
    duration.as_millis()
}
