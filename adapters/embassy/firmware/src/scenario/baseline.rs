//! The scenario without ratekeeper: the limiter stage's timer waits, delay
//! and report lines (the same check names), with the ratekeeper calls left
//! out. Only built to measure what ratekeeper adds to the firmware; its
//! checks test the timer alone.

use core::hint::black_box;

use embassy_time::{Delay, Duration, Instant, Timer};
use embedded_hal_async::delay::DelayNs;

use super::{checks, millis};
use crate::report::Report;

pub async fn run(report: &mut Report) {
    let zero = black_box(0usize);
    report.note(format_args!(
        "bucket table: {} buckets x {} bytes = {} bytes; whole store: {} bytes",
        zero, zero, zero, zero
    ));
    // By index: an iterator over the names would sit in the task's future.
    for i in 0..checks::LIMITER.len() {
        let start = Instant::now();
        let wait = Duration::from_millis(black_box(65));
        Timer::after(wait).await;
        report.note(format_args!(
            "fifth request: wait {} ms, slept {} ms",
            millis(wait),
            millis(start.elapsed())
        ));
        let start = Instant::now();
        Delay.delay_ns(black_box(1_000_000)).await;
        let held = start.elapsed() >= Duration::from_millis(1);
        report.check(checks::LIMITER.get(i).copied().unwrap_or_default(), held);
    }
    report.note(format_args!(
        "limiter stage done at {} ms",
        millis(Instant::now().duration_since(Instant::MIN))
    ));
}
