//! The scenario without ratekeeper: the limiter stage's timer waits, delay
//! and report lines, and a timer wait for each later stage that has one,
//! with the ratekeeper calls left out; every check of [`checks::ALL`] is
//! made, through the same [`Report::verify`]. Only built to measure what
//! ratekeeper adds to the firmware; its checks test the timer alone (each
//! is handed its own lower bounds when the timer slept, nothing otherwise).

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
    // By index: an iterator over the checks would sit in the task's future.
    for i in 0..checks::ALL.len() {
        let start = Instant::now();
        if i < checks::HEADERS {
            let wait = Duration::from_millis(black_box(65));
            Timer::after(wait).await;
            report.note(format_args!(
                "acquire: wait {} ms, slept {} ms",
                millis(wait),
                millis(start.elapsed())
            ));
            Delay.delay_ns(black_box(1_000_000)).await;
        } else if i == checks::LEARNER + 2 || i == checks::BREAKER + 2 {
            Timer::after(Duration::from_millis(black_box(200))).await;
        }
        if i == checks::HEADERS {
            report.note(format_args!(
                "limiter stage done at {} ms",
                millis(Instant::now().duration_since(Instant::MIN))
            ));
        }
        let slept = i >= checks::HEADERS || start.elapsed() >= Duration::from_millis(1);
        let bounds = black_box(&checks::ALL)
            .get(i)
            .map_or(&[][..], |check| check.bounds);
        let mut observed = [0; 8];
        for (value, bound) in observed.iter_mut().zip(bounds) {
            *value = bound.low;
        }
        let observed = if slept {
            observed.get(..bounds.len()).unwrap_or_default()
        } else {
            &[]
        };
        report.verify(observed);
    }
}
