//! `ratekeeper schedule`: the pacing plan for a batch, computed on a manual
//! clock with the same store and GCRA that a real run uses.

use std::io::Write;

use clap::Args;
use ratekeeper_core::{
    Acquire, Clock, Decision, ManualClock, Nanos, Policy, PolicyConfig, PolicySource, SafetyMargin, Store,
};
use ratekeeper_memory::MemoryStore;
use serde::Serialize;

/// Arguments of `ratekeeper schedule`.
#[derive(Debug, Args)]
pub(crate) struct ScheduleArgs {
    /// Requests allowed per window.
    #[arg(long)]
    limit: u32,
    /// The window, in milliseconds.
    #[arg(long)]
    window_ms: u64,
    /// How many requests to plan.
    #[arg(long, default_value_t = 10)]
    requests: u32,
    /// The share of the limit left unused, in percent (0 to 99).
    #[arg(long, default_value_t = 3)]
    margin_percent: u8,
    /// The most requests sent back to back.
    #[arg(long, default_value_t = 1)]
    burst: u32,
}

#[derive(Debug, Serialize)]
struct Slot {
    request: u32,
    send_at_ms: f64,
    remaining: u32,
}

pub(crate) fn run(args: &ScheduleArgs, out: &mut impl Write) -> Result<(), String> {
    let margin =
        SafetyMargin::from_percent(args.margin_percent).map_err(|e| format!("--margin-percent: {e}"))?;
    let config =
        PolicyConfig::new(margin, args.burst, 1, Nanos::from_secs(1)).map_err(|e| format!("--burst: {e}"))?;
    let clock = ManualClock::new();
    let policy = Policy::new(
        args.limit,
        Nanos::from_millis(args.window_ms),
        PolicySource::Configured,
        clock.now(),
    )
    .map_err(|e| format!("--limit/--window-ms: {e}"))?;
    let gcra = policy.to_gcra(&config);
    let store = MemoryStore::new(&clock);
    for request in 1..=args.requests {
        match store.acquire("schedule", &Acquire::reserve(gcra, Nanos::MAX)) {
            Ok(Decision::Allowed(allowed)) => {
                let slot = Slot {
                    request,
                    send_at_ms: allowed.wait.as_nanos() as f64 / 1e6,
                    remaining: allowed.remaining,
                };
                let line = serde_json::to_string(&slot).map_err(|e| e.to_string())?;
                writeln!(out, "{line}").map_err(|e| e.to_string())?;
            }
            Ok(other) => return Err(format!("request {request} cannot be scheduled: {other:?}")),
            Err(never) => match never {},
        }
    }
    Ok(())
}
