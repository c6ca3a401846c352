//! The library-level figures of the HTTP gate's acceptance: a server that
//! states 30 requests per 3 s in IETF headers, and one that states nothing
//! and refuses past 10 requests per second. Run with `--nocapture` to see
//! the figures.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Behavior, Family, Result, Server, client, get_all};
use ratekeeper_http::{Config, Gate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ietf_30_per_3s_85_requests_without_a_429() {
    let path = "/v1/leads";
    let server = Server::start(&[(
        path,
        Behavior::Limited {
            limit: 30,
            window: Duration::from_secs(3),
            family: Family::Ietf,
        },
    )])
    .await;
    let gate = Arc::new(Gate::memory(&Config::default()).unwrap());
    let started = Instant::now();
    let results = get_all(&client(&gate), &server.url(path), 85, 8).await;
    let elapsed = started.elapsed();

    assert!(
        results.iter().all(|result| *result == Result::Status(200)),
        "{results:?}"
    );
    let hits = server.hits(path);
    // From the first request the server saw to the last: three windows.
    let span = hits[hits.len() - 1].at.duration_since(hits[0].at);
    assert_eq!(server.count(path, 429), 0);
    let endpoint = &gate.endpoints()[0];
    assert_eq!((endpoint.limit, endpoint.window.as_millis_floor()), (30, 3_000));
    // Three windows, the last one opening at 6 s, would be the ideal.
    println!(
        "ietf 30/3s: 85 requests, 0 429s, {:.2} s against the ideal 6 s ({:.2}x); {:.2} s from the first request to the last",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() / 6.0,
        span.as_secs_f64()
    );
    // The stated remaining is spent at once: a window each for 30, 30
    // and 25. Paced evenly it would take 9 s (1.5x).
    assert!(span <= Duration::from_millis(7_500), "took {span:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_headers_10_per_second_every_request_succeeds() {
    let path = "/v1/quiet";
    let server = Server::start(&[(
        path,
        Behavior::Limited {
            limit: 10,
            window: Duration::from_secs(1),
            family: Family::None,
        },
    )])
    .await;
    let gate = Arc::new(Gate::memory(&Config::default()).unwrap());
    let calls = 100;
    let started = Instant::now();
    let results = get_all(&client(&gate), &server.url(path), calls, 8).await;
    let elapsed = started.elapsed();

    assert!(
        results.iter().all(|result| *result == Result::Status(200)),
        "{results:?}"
    );
    // Each 429 is one call that saw one (or a call that saw several).
    let refused = server.count(path, 429);
    let share = refused as f64 / calls as f64;
    let endpoint = &gate.endpoints()[0];
    println!(
        "no headers 10/s: {calls} requests, all succeeded, {refused} 429s ({:.1}%), {:.2} s; learned {} per {} ms ({})",
        share * 100.0,
        elapsed.as_secs_f64(),
        endpoint.limit,
        endpoint.window.as_millis_floor(),
        endpoint.source.as_str()
    );
    assert!(share < 0.10, "{refused} of {calls} calls saw a 429");
}
