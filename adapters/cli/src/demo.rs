//! `ratekeeper demo`: a local mock API with hidden limits, a batch run
//! through the gate on the in-memory store, and a table of what was
//! learned against the truth.
//!
//! Each endpoint's batch runs with its own workers, so requests waiting
//! for one slow endpoint never hold up another.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ratekeeper_http::{Config, EndpointReport, Gate};

use crate::client::{RequestSpec, Sender};
use crate::mock::{Family, Hidden, MockApi};
use crate::run::{Job, ResultsFile, drive, progress_bar};

/// Arguments of `ratekeeper demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Requests in flight at once, per endpoint.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    concurrency: u32,
}

/// The demo's endpoints: name, hidden limit, and how many requests the
/// batch sends to it.
const ENDPOINTS: [(&str, Hidden, u32); 4] = [
    (
        "leads",
        Hidden {
            family: Family::Close,
            limit: 20,
            window: Duration::from_secs(2),
        },
        100,
    ),
    (
        "contacts",
        Hidden {
            family: Family::IetfDraft08,
            limit: 30,
            window: Duration::from_secs(3),
        },
        120,
    ),
    (
        "deals",
        Hidden {
            family: Family::XRateLimit,
            limit: 15,
            window: Duration::from_secs(1),
        },
        120,
    ),
    (
        "notes",
        Hidden {
            family: Family::Silent,
            limit: 5,
            window: Duration::from_secs(1),
        },
        40,
    ),
];

/// `ratekeeper demo`.
pub(crate) fn run(args: &DemoArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(demo(args.concurrency))
}

async fn demo(concurrency: u32) -> Result<(), String> {
    let hidden: Vec<(&str, Hidden)> = ENDPOINTS
        .iter()
        .map(|&(name, hidden, _)| (name, hidden))
        .collect();
    let (addr, api) = MockApi::start(&hidden)
        .await
        .map_err(|e| format!("cannot start the mock API: {e}"))?;
    eprintln!(
        "ratekeeper demo: mock API on http://{addr} with hidden limits; learning them on the in-memory store"
    );
    let scratch = std::env::temp_dir().join(format!("ratekeeper-demo-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&scratch);
    let (results, _) = ResultsFile::open(&scratch)?;
    let results = Arc::new(results);
    // The demo shows the defaults at work, whatever the environment says;
    // only the attempts are raised, so the endpoint that states nothing
    // always gets its requests through.
    let config = Config {
        max_attempts: 20,
        ..Config::default()
    };
    let gate = Arc::new(Gate::memory(&config).map_err(|e| e.to_string())?);
    let sender = Sender::new(&gate, config.max_attempts)?;
    let total: u32 = ENDPOINTS.iter().map(|&(_, _, count)| count).sum();
    let progress = progress_bar(u64::from(total), "ratekeeper demo");
    let started = std::time::Instant::now();
    let mut batches = tokio::task::JoinSet::new();
    for &(name, _, count) in &ENDPOINTS {
        let mut jobs = Vec::new();
        for n in 0..count {
            let url = reqwest::Url::parse(&format!("http://{addr}/{name}/{}", 1000_u32.saturating_add(n)))
                .map_err(|e| e.to_string())?;
            jobs.push(Job {
                id: format!("{name}-{n}"),
                request: RequestSpec {
                    method: reqwest::Method::GET,
                    url,
                    headers: Vec::new(),
                    body: None,
                },
            });
        }
        batches.spawn(drive(
            sender.clone(),
            jobs,
            Arc::clone(&results),
            concurrency,
            progress.clone(),
        ));
    }
    while let Some(joined) = batches.join_next().await {
        joined.map_err(|e| format!("a batch failed: {e}"))??;
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed();
    let _ = std::fs::remove_file(&scratch);
    let tally = results.tally();
    let learned = gate.endpoints();
    println!(
        "{} requests in {:.1} s: {} succeeded, {} failed, {} answered 429 on the way\n",
        tally.total,
        elapsed.as_secs_f64(),
        tally.succeeded,
        tally.failed,
        gate.totals().responses_429
    );
    println!(
        "{:<10} {:<14} {:>12} {:>12} {:<9} {:>8} {:>6} {:>7}",
        "endpoint", "headers", "true limit", "learned", "source", "goodput", "429s", "time"
    );
    for &(name, hidden, _) in &ENDPOINTS {
        let report = learned
            .iter()
            .find(|report| report.key.contains(&format!("/{name}/")))
            .cloned();
        let seen = api.tally(name);
        let capacity = hidden.limit.saturating_mul(seen.windows_used).max(1);
        let goodput = seen.ok.saturating_mul(100) / capacity;
        println!(
            "{:<10} {:<14} {:>12} {:>12} {:<9} {:>7}% {:>6} {:>6.1}s",
            name,
            hidden.family.name(),
            rate(hidden.limit, hidden.window.as_millis()),
            report.as_ref().map_or_else(
                || "-".to_owned(),
                |r| rate(u64::from(r.limit), u128::from(r.window.as_millis_floor()))
            ),
            report
                .as_ref()
                .map_or("-", |r: &EndpointReport| r.source.as_str()),
            goodput,
            seen.rejected,
            seen.span.as_secs_f64()
        );
    }
    println!(
        "\ngoodput: accepted requests as a share of what the limit allowed over the windows the endpoint was used in.\n\
         \"notes\" states nothing: its rate is estimated from 429s alone (source \"observed\"), probing up and backing off."
    );
    Ok(())
}

fn rate(limit: u64, window_ms: u128) -> String {
    if window_ms.is_multiple_of(1000) {
        format!("{limit}/{}s", window_ms / 1000)
    } else {
        // An estimate from 429s is one request per interval: say it per second.
        let per_second = (limit as f64) * 1000.0 / (window_ms.max(1) as f64);
        format!("{per_second:.1}/s")
    }
}
