//! ratekeeper on a Cortex-M3 under Embassy, run by QEMU (`lm3s6965evb`).
//!
//! The firmware plays a scripted scenario against the limiter, checks every
//! outcome, prints each check over semihosting and exits with status 0 only
//! when all of them held (1 otherwise, and on a panic). `scripts/firmware-smoke`
//! builds it, runs it and sizes it.
//!
//! The scenario is a sequence of stages, each a list of named checks in its
//! own module under `scenario/`. Built without the `ratekeeper` feature,
//! the stages are replaced by `scenario::baseline`, which makes the same
//! timer waits and reports without calling ratekeeper: the difference in
//! size between the two builds is what ratekeeper costs.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use panic_semihosting as _;

mod report;
mod scenario;
mod time_driver;

use report::Report;

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        // Only taken here, once: unreachable, but a verdict either way.
        Report::new().exit();
    };
    time_driver::start(peripherals.SYST);

    let mut report = Report::new();
    #[cfg(feature = "ratekeeper")]
    {
        // Stages run in order; each appends its checks to `report`.
        scenario::limiter::run(&mut report).await;
    }
    #[cfg(not(feature = "ratekeeper"))]
    scenario::baseline::run(&mut report).await;
    report.exit();
}
