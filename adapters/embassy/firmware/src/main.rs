//! ratekeeper on a Cortex-M3 under Embassy, run by QEMU (`lm3s6965evb`).
//!
//! The firmware plays a scripted scenario against the limiter, checks every
//! outcome, prints each check over semihosting and exits with status 0 only
//! when all of them held (1 otherwise, and on a panic). `scripts/firmware-smoke`
//! builds it, runs it and sizes it.
//!
//! The scenario is a sequence of stages, each in its own module under
//! `scenario/`, observing what ratekeeper does; the checks those
//! observations must pass are one table, `scenario::checks::ALL`. Built without the `ratekeeper` feature,
//! the stages are replaced by `scenario::baseline`, which makes the same
//! timer waits and reports without calling ratekeeper: the difference in
//! size between the two builds is what ratekeeper costs. Each stage after
//! the limiter has its own feature (all on by default), so that
//! `scripts/firmware-smoke` can size each component on its own.
#![no_std]
#![no_main]

use cortex_m_semihosting::{debug, hio};
use embassy_executor::Spawner;

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

    // Every check in every build, whichever stages are left out: the sizes
    // then differ by code alone.
    core::hint::black_box(&scenario::checks::ALL);
    let mut report = Report::new();
    #[cfg(feature = "ratekeeper")]
    {
        // Stages run in order; each appends its checks to `report`.
        scenario::limiter::run(&mut report).await;
        #[cfg(feature = "headers")]
        scenario::headers::run(&mut report);
        #[cfg(feature = "learner")]
        scenario::learner::run(&mut report).await;
        #[cfg(feature = "backoff")]
        scenario::backoff::run(&mut report);
        #[cfg(feature = "breaker")]
        scenario::breaker::run(&mut report).await;
    }
    #[cfg(not(feature = "ratekeeper"))]
    scenario::baseline::run(&mut report).await;
    report.exit();
}

/// Ends the run with status 1 on a panic, without formatting its message:
/// the formatting machinery would cost more flash than everything else the
/// handler does, and the verdict is what the smoke test reads.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    if let Ok(mut out) = hio::hstdout() {
        let _ = out.write_all(b"panicked\n");
    }
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
