//! Prints the simulator's report for every scenario: goodput as a share of
//! the server's limit, and 429s.
//!
//! `cargo run --release -p ratekeeper-tests --example simulate`

use ratekeeper_tests::scenarios::{SCENARIOS, run_scenario};

fn main() {
    println!(
        "{:<44} {:>8} {:>8} {:>9} {:>9}",
        "scenario", "goodput", "429s", "429 share", "sent/win"
    );
    for scenario in SCENARIOS {
        let (report, limit) = run_scenario(scenario);
        println!(
            "{:<44} {:>7.1}% {:>8} {:>8.2}% {:>5}/{:<4}",
            scenario.name,
            report.goodput * 100.0,
            report.throttled,
            report.throttled_share * 100.0,
            report.max_sent_in_window,
            limit
        );
    }
}
