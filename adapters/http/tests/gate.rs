//! The gate against a real local HTTP server: every header family, none,
//! retries, the breaker, the switch. Every loop is bounded by a request
//! count; waits are bounded by `max_wait_ms` and the retry budget.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Behavior, Family, Result, Server, client, get_all, test_config};
use ratekeeper_core::{Nanos, PolicySource};
use ratekeeper_http::{Config, Gate, GateService, RetrySafe};
use tower::ServiceExt;

const SECOND: Duration = Duration::from_secs(1);

/// `requests` GETs against a fixed window of 5 per second stated in
/// `family`: nothing refused, and the limit learned from the headers.
async fn learns_and_never_exceeds(family: Family) {
    let path = "/items";
    let server = Server::start(&[(
        path,
        Behavior::Limited {
            limit: 5,
            window: SECOND,
            family,
        },
    )])
    .await;
    let gate = Arc::new(Gate::memory(&test_config()).unwrap());
    let results = get_all(&client(&gate), &server.url(path), 15, 4).await;

    assert!(
        results.iter().all(|result| *result == Result::Status(200)),
        "{results:?}"
    );
    // The first response states the limit before a second request goes
    // (an unknown bucket starts at one request per second): no 429 at all.
    assert_eq!(server.count(path, 429), 0);
    assert_eq!(server.hits(path).len(), 15);
    let endpoints = gate.endpoints();
    assert_eq!(endpoints.len(), 1);
    let endpoint = &endpoints[0];
    assert_eq!(endpoint.key, server.key(path));
    assert_eq!((endpoint.limit, endpoint.source), (5, PolicySource::Header));
    assert_eq!(endpoint.window, Nanos::from_secs(1));
    assert_eq!(
        (endpoint.requests, endpoint.responses_429, endpoint.retries),
        (15, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ratelimit_header() {
    learns_and_never_exceeds(Family::Close).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ietf_draft_08_headers() {
    learns_and_never_exceeds(Family::Ietf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_ratelimit_headers() {
    learns_and_never_exceeds(Family::XRateLimit).await;
}

/// A sliding window frees one slot at a time: what it states is left is
/// free now, and its reset frees only what the next answer states.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sliding_window_is_spent_without_a_429() {
    let path = "/sliding";
    let server = Server::start(&[(
        path,
        Behavior::Sliding {
            limit: 10,
            window: 2 * SECOND,
        },
    )])
    .await;
    let gate = Arc::new(Gate::memory(&test_config()).unwrap());
    let results = get_all(&client(&gate), &server.url(path), 35, 6).await;

    assert!(
        results.iter().all(|result| *result == Result::Status(200)),
        "{results:?}"
    );
    assert_eq!(server.count(path, 429), 0);
    assert_eq!(server.hits(path).len(), 35);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_headers_every_request_succeeds() {
    let path = "/quiet";
    let server = Server::start(&[(
        path,
        Behavior::Limited {
            limit: 4,
            window: SECOND,
            family: Family::None,
        },
    )])
    .await;
    let config = Config {
        default_limit: 2,
        ..test_config()
    };
    let gate = Arc::new(Gate::memory(&config).unwrap());
    let results = get_all(&client(&gate), &server.url(path), 20, 4).await;

    assert!(
        results.iter().all(|result| *result == Result::Status(200)),
        "{results:?}"
    );
    let refused = server.count(path, 429) as u64;
    let totals = gate.totals();
    // Every refusal was retried and counted.
    assert_eq!((totals.responses_429, totals.retries), (refused, refused));
    assert_eq!(server.hits(path).len() as u64, 20 + refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let path = "/later";
    let server = Server::start(&[(path, Behavior::RetryAfterOnce { secs: 1 })]).await;
    let gate = Arc::new(Gate::memory(&test_config()).unwrap());
    let result = common::classify(client(&gate).get(server.url(path)).send().await);

    assert_eq!(result, Result::Status(200));
    let hits = server.hits(path);
    assert_eq!(hits.len(), 2);
    // Received no earlier than the server asked, by the server's clock.
    assert!(hits[1].at.duration_since(hits[0].at) >= SECOND, "{hits:?}");
    assert_eq!(gate.totals().retries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_an_idempotency_key_is_not_retried() {
    let (refused, flaky, keyed, vouched) = ("/refused", "/flaky", "/keyed", "/vouched");
    let server = Server::start(&[
        (refused, Behavior::Always(429)),
        (
            flaky,
            Behavior::FailFirst {
                status: 503,
                times: 1,
            },
        ),
        (
            keyed,
            Behavior::FailFirst {
                status: 503,
                times: 1,
            },
        ),
        (
            vouched,
            Behavior::FailFirst {
                status: 503,
                times: 1,
            },
        ),
    ])
    .await;
    let gate = Arc::new(Gate::memory(&test_config()).unwrap());
    let client = client(&gate);

    // A refused POST is reported, not repeated.
    let result = common::classify(client.post(server.url(refused)).send().await);
    assert_eq!(result, Result::Gate("RATE_LIMIT_EXCEEDED"));
    assert_eq!(server.hits(refused).len(), 1);
    // A POST that met a 503 comes back as it is.
    let result = common::classify(client.post(server.url(flaky)).send().await);
    assert_eq!(result, Result::Status(503));
    assert_eq!(server.hits(flaky).len(), 1);
    // With an idempotency key, or vouched for, it is retried.
    let request = client.post(server.url(keyed)).header("Idempotency-Key", "k-1");
    assert_eq!(common::classify(request.send().await), Result::Status(200));
    assert_eq!(server.hits(keyed).len(), 2);
    let request = client.post(server.url(vouched)).with_extension(RetrySafe);
    assert_eq!(common::classify(request.send().await), Result::Status(200));
    assert_eq!(server.hits(vouched).len(), 2);
    assert!(server.hits(vouched).iter().all(|hit| hit.method == "POST"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_on_a_failing_endpoint() {
    let (broken, healthy) = ("/broken", "/healthy");
    let server = Server::start(&[(broken, Behavior::Always(500)), (healthy, Behavior::Always(200))]).await;
    let config = Config {
        max_attempts: 1,
        breaker_failures: 3,
        default_limit: 20,
        ..test_config()
    };
    let gate = Arc::new(Gate::memory(&config).unwrap());
    let client = client(&gate);
    for _ in 0..3 {
        let result = common::classify(client.get(server.url(broken)).send().await);
        assert_eq!(result, Result::Gate("RATE_LIMIT_MAX_RETRIES_EXCEEDED"));
    }
    let result = common::classify(client.get(server.url(broken)).send().await);
    assert_eq!(result, Result::Gate("RATE_LIMIT_CIRCUIT_OPEN"));
    // Refused without being sent; other endpoints are not affected.
    assert_eq!(server.hits(broken).len(), 3);
    let result = common::classify(client.get(server.url(healthy)).send().await);
    assert_eq!(result, Result::Status(200));
    let breakers = gate.breakers();
    let (key, snapshot) = breakers.iter().find(|(key, _)| key.ends_with(broken)).unwrap();
    assert_eq!(key, &server.key(broken));
    assert_eq!(snapshot.state.as_str(), "open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_not_a_failure_for_the_breaker() {
    let path = "/busy";
    let server = Server::start(&[(path, Behavior::Always(429))]).await;
    let config = Config {
        max_attempts: 1,
        breaker_failures: 1,
        default_limit: 20,
        ..test_config()
    };
    let gate = Arc::new(Gate::memory(&config).unwrap());
    let client = client(&gate);
    for _ in 0..2 {
        let result = common::classify(client.get(server.url(path)).send().await);
        assert_eq!(result, Result::Gate("RATE_LIMIT_MAX_RETRIES_EXCEEDED"));
    }
    assert_eq!(server.hits(path).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_passes_everything_through() {
    let path = "/anything";
    let server = Server::start(&[(path, Behavior::Always(429))]).await;
    let config = Config::default()
        .with_env([("RATEKEEPER_ENABLED", "false")])
        .unwrap();
    let gate = Arc::new(Gate::memory(&config).unwrap());
    let results = get_all(&client(&gate), &server.url(path), 20, 20).await;

    // Sent once each, unpaced, and answered as the server answered.
    assert!(results.iter().all(|result| *result == Result::Status(429)));
    assert_eq!(server.hits(path).len(), 20);
    assert_eq!(gate.totals().requests, 0);
    assert!(gate.endpoints().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_past_max_wait_fails_fast() {
    let path = "/slow";
    let server = Server::start(&[(path, Behavior::Always(200))]).await;
    let config = Config {
        max_wait_ms: 100,
        ..test_config()
    };
    let gate = Arc::new(Gate::memory(&config).unwrap());
    // An unknown bucket allows one request per second: of three at once,
    // one goes and the others would wait past 100 ms.
    let results = get_all(&client(&gate), &server.url(path), 3, 3).await;

    let sent = results
        .iter()
        .filter(|result| **result == Result::Status(200))
        .count();
    let refused = results
        .iter()
        .filter(|result| **result == Result::Gate("RATE_LIMIT_WAIT_TOO_LONG"))
        .count();
    assert_eq!((sent, refused), (1, 2), "{results:?}");
    assert_eq!(server.hits(path).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_have_their_own_buckets() {
    let path = "/contacts";
    let server = Server::start(&[(path, Behavior::Always(200))]).await;
    let config = Config {
        tenant_header: Some("x-location-id".into()),
        ..test_config()
    };
    let gate = Arc::new(Gate::memory(&config).unwrap());
    let client = client(&gate);
    for location in ["loc_a", "loc_b"] {
        let request = client.get(server.url(path)).header("x-location-id", location);
        assert_eq!(common::classify(request.send().await), Result::Status(200));
    }
    let keys: Vec<String> = gate
        .endpoints()
        .into_iter()
        .map(|endpoint| endpoint.key)
        .collect();
    let port = server.addr.port();
    assert_eq!(
        keys,
        [
            format!("127.0.0.1%3A{port}#loc_a{path}"),
            format!("127.0.0.1%3A{port}#loc_b{path}")
        ]
    );
}

/// The tower layer and the reqwest middleware share one gate: one bucket,
/// one learned limit, no 429 whichever path a call takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_and_reqwest_share_the_gate() {
    let path = "/shared";
    let server = Server::start(&[(
        path,
        Behavior::Limited {
            limit: 5,
            window: SECOND,
            family: Family::Close,
        },
    )])
    .await;
    let gate = Arc::new(Gate::memory(&test_config()).unwrap());
    let http = reqwest::Client::new();
    // A tower client service over reqwest.
    let tower_client = tower::service_fn(move |request: http::Request<String>| {
        let http = http.clone();
        async move {
            let response = http.execute(reqwest::Request::try_from(request)?).await?;
            Ok::<_, reqwest::Error>(http::Response::from(response))
        }
    });
    let service = GateService::new(tower_client, Arc::clone(&gate));
    let reqwest_client = client(&gate);
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..10 {
        let service = service.clone();
        let reqwest_client = reqwest_client.clone();
        let url = server.url(path);
        tasks.spawn(async move {
            if index % 2 == 0 {
                let request = http::Request::get(url).body(String::new()).unwrap();
                service.oneshot(request).await.unwrap().status().as_u16()
            } else {
                reqwest_client.get(url).send().await.unwrap().status().as_u16()
            }
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(server.count(path, 429), 0);
    let endpoints = gate.endpoints();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(
        (endpoints[0].requests, endpoints[0].source),
        (10, PolicySource::Header)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tower_service_reports_gate_errors() {
    let path = "/down";
    let server = Server::start(&[(path, Behavior::Always(503))]).await;
    let config = Config {
        max_attempts: 1,
        default_limit: 20,
        ..test_config()
    };
    let gate = Arc::new(Gate::memory(&config).unwrap());
    let http = reqwest::Client::new();
    let tower_client = tower::service_fn(move |request: http::Request<String>| {
        let http = http.clone();
        async move {
            let response = http.execute(reqwest::Request::try_from(request)?).await?;
            Ok::<_, reqwest::Error>(http::Response::from(response))
        }
    });
    let service = GateService::new(tower_client, gate);
    let request = http::Request::get(server.url(path)).body(String::new()).unwrap();
    let error = service.oneshot(request).await.unwrap_err();
    let error = error.downcast_ref::<ratekeeper_http::Error>().unwrap();
    assert_eq!(error.code(), "RATE_LIMIT_MAX_RETRIES_EXCEEDED");
    assert_eq!((error.attempts(), error.status()), (1, Some(503)));
}

/// A call dropped while it is the bucket's probe (a timeout around it, a
/// client that went away) gives its place up: the next call does not wait
/// for an answer that never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_dropped_mid_flight_does_not_hold_the_bucket() {
    let config = Config {
        max_wait_ms: 3_000,
        ..test_config()
    };
    let gate = Arc::new(Gate::memory(&config).unwrap());
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let tower_client = tower::service_fn(move |_request: http::Request<String>| {
        let first = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        async move {
            if first {
                std::future::pending::<()>().await;
            }
            let response = http::Response::builder()
                .status(200)
                .header("ratelimit-policy", "\"default\";q=30;w=3")
                .header("ratelimit", "\"default\";r=29;t=3")
                .body(String::new())
                .unwrap();
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let service = GateService::new(tower_client, gate);
    let request = || {
        http::Request::get("http://api.example.com/v1/items")
            .body(String::new())
            .unwrap()
    };
    let lost = tokio::time::timeout(Duration::from_millis(200), service.clone().oneshot(request())).await;
    assert!(lost.is_err(), "the first call never answers");
    let response = service.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// A half-open probe dropped before it reports gives its probe slot back:
/// the next call is let through as the probe at once, rather than refused
/// until the lost probe is counted as a failure (which would open the
/// breaker again). Tokio's paused clock: no real time passes.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_probe_dropped_mid_flight_gives_its_breaker_slot_back() {
    let config = Config {
        max_attempts: 1,
        breaker_failures: 1,
        breaker_open_ms: 1_000,
        breaker_probes: 1,
        default_limit: 100,
        ..test_config()
    };
    let gate = Arc::new(Gate::memory(&config).unwrap());
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let tower_client = tower::service_fn(move |_request: http::Request<String>| {
        let call = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            // The first call fails and opens the breaker; the second, the
            // probe, never answers; the third succeeds.
            if call == 1 {
                std::future::pending::<()>().await;
            }
            let status = if call == 0 { 500 } else { 200 };
            let response = http::Response::builder()
                .status(status)
                .body(String::new())
                .unwrap();
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let service = GateService::new(tower_client, Arc::clone(&gate));
    let request = || {
        http::Request::get("http://api.example.com/v1/items")
            .body(String::new())
            .unwrap()
    };
    let error = service.clone().oneshot(request()).await.unwrap_err();
    let error = error.downcast_ref::<ratekeeper_http::Error>().unwrap();
    assert_eq!(error.code(), "RATE_LIMIT_MAX_RETRIES_EXCEEDED");
    assert_eq!(gate.breakers()[0].1.state.as_str(), "open");

    tokio::time::advance(Duration::from_millis(1_001)).await;
    let lost = tokio::time::timeout(Duration::from_millis(100), service.clone().oneshot(request())).await;
    assert!(lost.is_err(), "the probe never answers");
    assert_eq!(gate.breakers()[0].1.state.as_str(), "half_open");

    let response = service.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(gate.breakers()[0].1.state.as_str(), "closed");
}

/// A call that never gets a response gives up with the last transport
/// failure in its detail, so a log says why (here: nothing listens).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_give_up_without_a_response_says_why() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let config = Config {
        max_attempts: 2,
        ..test_config()
    };
    let gate = Arc::new(Gate::memory(&config).unwrap());
    let error = client(&gate)
        .get(format!("http://{closed}/items"))
        .send()
        .await
        .unwrap_err();
    let refused = ratekeeper_http::gate_error(&error).unwrap();
    assert_eq!(refused.code(), "RATE_LIMIT_MAX_RETRIES_EXCEEDED");
    assert_eq!((refused.attempts(), refused.status()), (2, None));
    let detail = refused.detail().unwrap();
    assert!(detail.to_lowercase().contains("connection refused"), "{detail}");
}

#[test]
fn configuration_errors_name_the_field() {
    let field = |text: &str| Config::from_toml_str(text).unwrap_err().field().to_owned();
    assert_eq!(field("safety_margin_percent = 120"), "safety_margin_percent");
    assert_eq!(field("burst = 0"), "burst");
    assert_eq!(
        field("backoff_cap_ms = 1\nbackoff_base_ms = 10"),
        "backoff_cap_ms"
    );
    assert_eq!(field("tenant_header = \"bad header\""), "tenant_header");
    assert_eq!(field("[[endpoints]]\npattern = \"\""), "endpoints[0].pattern");
    assert_eq!(field("max_atempts = 3"), "max_atempts");
    let error = Config::default()
        .with_env([("RATEKEEPER_MAX_ATTEMPTS", "0")])
        .unwrap_err();
    assert_eq!(error.field(), "max_attempts");
    let config = Config::from_toml_str(
        "enabled = false\nstore_url = \"redis://127.0.0.1:6379/0\"\nbreaker_scope = \"host\"\n\
         [[endpoints]]\npattern = \"api.example.com/v1/search/**\"\nbucket = \"search\"",
    )
    .unwrap();
    assert!(!config.enabled);
    assert_eq!(config.endpoints[0].bucket.as_deref(), Some("search"));
}

/// A new instance starts with what the fleet stored, and picks up what the
/// fleet learns later at the next refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_come_from_the_store_on_first_use_and_refresh() {
    use ratekeeper_core::{Clock, Policy, Store};

    let path = "/fleet";
    let server = Server::start(&[(path, Behavior::Always(200))]).await;
    let clock = ratekeeper_http::TokioClock::new();
    let store = ratekeeper_memory::MemoryStore::new(clock);
    let key = server.key(path);
    let configured = Policy::new(5, Nanos::from_secs(1), PolicySource::Configured, clock.now()).unwrap();
    Store::set_policy(&store, &key, &configured).unwrap();
    let config = Config {
        policy_refresh_ms: 100,
        ..test_config()
    };
    let gate = Arc::new(Gate::with_clock(store, clock, &config).unwrap());
    let client = client(&gate);

    assert_eq!(
        common::classify(client.get(server.url(path)).send().await),
        Result::Status(200)
    );
    let endpoint = gate.endpoints().remove(0);
    assert_eq!((endpoint.limit, endpoint.source), (5, PolicySource::Configured));

    let stated = Policy::new(8, Nanos::from_secs(1), PolicySource::Header, clock.now()).unwrap();
    Store::set_policy(gate.store(), &key, &stated).unwrap();
    // Past the refresh period, the next call reads the store again.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        common::classify(client.get(server.url(path)).send().await),
        Result::Status(200)
    );
    let endpoint = gate.endpoints().remove(0);
    assert_eq!((endpoint.limit, endpoint.source), (8, PolicySource::Header));
}

/// With `breaker_scope = "host"`, failures on any endpoint of a host count
/// toward one breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_breaker_counts_every_endpoint() {
    let (first, second) = ("/first", "/second");
    let server = Server::start(&[(first, Behavior::Always(502)), (second, Behavior::Always(502))]).await;
    let config = Config::from_toml_str(
        "max_attempts = 1\nbreaker_failures = 2\nbreaker_scope = \"host\"\ndefault_limit = 20",
    )
    .unwrap();
    let gate = Arc::new(Gate::memory(&config).unwrap());
    let client = client(&gate);
    for path in [first, second] {
        let result = common::classify(client.get(server.url(path)).send().await);
        assert_eq!(result, Result::Gate("RATE_LIMIT_MAX_RETRIES_EXCEEDED"));
    }
    let result = common::classify(client.get(server.url(first)).send().await);
    assert_eq!(result, Result::Gate("RATE_LIMIT_CIRCUIT_OPEN"));
    assert_eq!(server.hits(first).len() + server.hits(second).len(), 2);
    let breakers = gate.breakers();
    assert_eq!(breakers.len(), 1);
    assert_eq!(breakers[0].0, format!("127.0.0.1%3A{}", server.addr.port()));
}
