//! The scenario without ratekeeper: the same stages' timer waits, delays
//! and reports, with the ratekeeper calls left out. Only built to measure
//! what ratekeeper adds to the firmware; its checks test the timer alone.

use core::hint::black_box;

use embassy_time::{Delay, Duration, Instant, Timer};
use embedded_hal_async::delay::DelayNs;

use super::millis;
use crate::report::Report;

pub async fn run(report: &mut Report) {
    report.note(format_args!("baseline: {} bytes", black_box(0usize)));
    for _ in 0..3 {
        let start = Instant::now();
        let wait = Duration::from_millis(black_box(65));
        Timer::after(wait).await;
        report.note(format_args!("wait {} ms, slept {} ms", millis(wait), millis(start.elapsed())));
        report.check("timer: slept at least the wait", start.elapsed() >= wait);
        let start = Instant::now();
        Delay.delay_ns(black_box(1_000_000)).await;
        report.check("delay: slept at least the wait", start.elapsed() >= Duration::from_millis(1));
    }
    report.note(format_args!("baseline done at {} ms", millis(Instant::now().duration_since(Instant::MIN))));
}
