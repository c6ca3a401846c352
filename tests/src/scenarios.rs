//! The simulator's scenarios: the servers of the users' plans, one client
//! and several clients sharing a quota.

use ratekeeper_core::Nanos;
use ratekeeper_core::learn::LearnerConfig;

use crate::sim::{
    FixedWindow, GoHighLevel, Headers, LeakyBucket, Report, Run, SlidingWindow, Upstream, simulate,
};

/// What a scenario's server says about its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The server states its quota in headers.
    WithHeaders,
    /// The server says nothing but 429.
    WithoutHeaders,
}

/// One simulated scenario.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// A name for reports.
    pub name: &'static str,
    /// Headers or not.
    pub kind: Kind,
    /// Builds the server.
    pub upstream: fn() -> Box<dyn Upstream>,
    /// How the clients run.
    pub run: Run,
}

const fn run(clients: usize, concurrency: usize, secs: u64) -> Run {
    Run {
        clients,
        concurrency,
        duration: Nanos::from_secs(secs),
        latency: Nanos::from_millis(20),
        jitter: Nanos::from_millis(30),
        seed: 0x5eed,
    }
}

/// Every scenario the simulator reports on.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "Close search, 16 per 1 s (fixed window)",
        kind: Kind::WithHeaders,
        upstream: || {
            Box::new(FixedWindow::new(
                16,
                Nanos::from_secs(1),
                Headers::LimitRemainingReset,
            ))
        },
        run: run(1, 4, 600),
    },
    Scenario {
        name: "Close /me/, 160 per 8 s (fixed window)",
        kind: Kind::WithHeaders,
        upstream: || {
            Box::new(FixedWindow::new(
                160,
                Nanos::from_secs(8),
                Headers::LimitRemainingReset,
            ))
        },
        run: run(1, 8, 600),
    },
    Scenario {
        name: "Close search, 3 clients sharing the quota",
        kind: Kind::WithHeaders,
        upstream: || {
            Box::new(FixedWindow::new(
                16,
                Nanos::from_secs(1),
                Headers::LimitRemainingReset,
            ))
        },
        run: run(3, 4, 600),
    },
    Scenario {
        name: "sliding window, 50 per 10 s, X-RateLimit-*",
        kind: Kind::WithHeaders,
        upstream: || Box::new(SlidingWindow::new(50, Nanos::from_secs(10))),
        run: run(1, 4, 600),
    },
    Scenario {
        name: "IETF draft, 30 per 3 s, reset rounded up",
        kind: Kind::WithHeaders,
        upstream: || Box::new(FixedWindow::new(30, Nanos::from_secs(3), Headers::IetfDraft)),
        run: run(1, 4, 600),
    },
    Scenario {
        name: "IETF draft, 4 clients sharing the quota",
        kind: Kind::WithHeaders,
        upstream: || Box::new(FixedWindow::new(30, Nanos::from_secs(3), Headers::IetfDraft)),
        run: run(4, 4, 600),
    },
    Scenario {
        name: "Close /me/, half the quota used elsewhere",
        kind: Kind::WithHeaders,
        upstream: || {
            Box::new(
                FixedWindow::new(160, Nanos::from_secs(8), Headers::LimitRemainingReset).with_outside_use(80),
            )
        },
        run: run(1, 8, 600),
    },
    Scenario {
        name: "IETF draft 30 per 3 s, a third used elsewhere",
        kind: Kind::WithHeaders,
        upstream: || {
            Box::new(FixedWindow::new(30, Nanos::from_secs(3), Headers::IetfDraft).with_outside_use(10))
        },
        run: run(1, 4, 600),
    },
    Scenario {
        name: "GoHighLevel, 100 per 10 s and 200,000 a day",
        kind: Kind::WithHeaders,
        upstream: || Box::new(GoHighLevel::new()),
        run: run(1, 5, 86_400),
    },
    Scenario {
        name: "nginx limit_req 10 r/s, no headers",
        kind: Kind::WithoutHeaders,
        upstream: || Box::new(LeakyBucket::new(10, 0)),
        run: run(1, 4, 1_800),
    },
    Scenario {
        name: "Instantly, 600 per minute, no headers",
        kind: Kind::WithoutHeaders,
        upstream: || Box::new(FixedWindow::new(600, Nanos::from_secs(60), Headers::None)),
        run: run(1, 4, 3_600),
    },
    Scenario {
        name: "fixed window 16 per 1 s, no headers",
        kind: Kind::WithoutHeaders,
        upstream: || Box::new(FixedWindow::new(16, Nanos::from_secs(1), Headers::None)),
        run: run(1, 4, 1_800),
    },
    Scenario {
        name: "Instantly, 3 clients sharing, no headers",
        kind: Kind::WithoutHeaders,
        upstream: || Box::new(FixedWindow::new(600, Nanos::from_secs(60), Headers::None)),
        run: run(3, 4, 3_600),
    },
];

/// Runs one scenario with the default learner; returns its report and the
/// binding limit.
pub fn run_scenario(scenario: &Scenario) -> (Report, u64) {
    let mut upstream = (scenario.upstream)();
    let (limit, _) = upstream.binding_limit();
    (
        simulate(upstream.as_mut(), LearnerConfig::default(), scenario.run),
        limit,
    )
}
