//! The learner in the simulator, scenario by scenario, against the targets:
//! with headers, no 429 after the first response and at least 95% of the
//! server's limit; without headers, at most 2% of requests see a 429 and at
//! least 85% of the limit; clients sharing a quota through one store never
//! exceed it together.

use ratekeeper_tests::scenarios::{Kind, SCENARIOS, run_scenario};

#[test]
fn every_scenario_meets_its_targets() {
    let mut failures = Vec::new();
    for scenario in SCENARIOS {
        let (report, limit) = run_scenario(scenario);
        let met = match scenario.kind {
            Kind::WithHeaders => {
                report.throttled_after_first_response == 0
                    && report.goodput >= 0.95
                    // Clients sharing a quota stay within it together, even
                    // counted over sliding windows (stricter than a fixed
                    // window server's own count).
                    && (scenario.run.clients == 1 || report.max_sent_in_window <= limit)
            }
            Kind::WithoutHeaders => report.throttled_share <= 0.02 && report.goodput >= 0.85,
        };
        if !met {
            failures.push(format!("{}: {report:?}", scenario.name));
        }
    }
    assert!(
        failures.is_empty(),
        "scenarios short of their targets:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_simulation_is_deterministic() {
    let scenario = &SCENARIOS[0];
    assert_eq!(run_scenario(scenario), run_scenario(scenario));
}
