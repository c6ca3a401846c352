//! Settings per host and per endpoint rule, against a real local server:
//! a call takes the top-level value, then its host's, then its rule's.

mod common;

use std::sync::Arc;

use common::{Behavior, Result, Server, classify, client, test_config};
use ratekeeper_http::{Config, EndpointRuleConfig, Gate, Overrides};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_overrides_its_host_and_the_host_overrides_the_top_level() {
    let (hosted, ruled) = ("/hosted", "/ruled");
    let server = Server::start(&[(hosted, Behavior::Always(429)), (ruled, Behavior::Always(429))]).await;
    let config = Config {
        max_attempts: 4,
        ..test_config()
    }
    .with_host("127.0.0.1", Overrides::new().with_max_attempts(2))
    .with_endpoint(EndpointRuleConfig::template(ruled).with_overrides(Overrides::new().with_max_attempts(1)));
    let gate = Arc::new(Gate::memory(&config).unwrap());
    let client = client(&gate);

    let result = classify(client.get(server.url(hosted)).send().await);
    assert_eq!(result, Result::Gate("RATE_LIMIT_MAX_RETRIES_EXCEEDED"));
    assert_eq!(server.hits(hosted).len(), 2, "the host's max_attempts");
    let result = classify(client.get(server.url(ruled)).send().await);
    assert!(matches!(result, Result::Gate(_)), "{result:?}");
    assert_eq!(server.hits(ruled).len(), 1, "the rule's max_attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_switched_off_passes_straight_through_and_its_port_is_more_specific() {
    let path = "/refused";
    let server = Server::start(&[(path, Behavior::Always(429))]).await;
    let config = test_config()
        .with_host("127.0.0.1", Overrides::new().with_max_attempts(3))
        .with_host(
            format!("127.0.0.1:{}", server.addr.port()),
            Overrides::new().with_enabled(false),
        );
    let gate = Arc::new(Gate::memory(&config).unwrap());
    let client = client(&gate);
    for _ in 0..3 {
        let result = classify(client.get(server.url(path)).send().await);
        assert_eq!(result, Result::Status(429));
    }
    // Unpaced, unretried and unlearned.
    assert_eq!(server.hits(path).len(), 3);
    assert!(gate.endpoints().is_empty());
    assert_eq!(gate.totals().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_at_the_top_a_host_can_switch_itself_back_on() {
    let path = "/refused";
    let server = Server::start(&[(path, Behavior::Always(429))]).await;
    let config = Config {
        enabled: false,
        max_attempts: 2,
        ..test_config()
    }
    .with_host("127.0.0.1", Overrides::new().with_enabled(true));
    let gate = Arc::new(Gate::memory(&config).unwrap());
    assert!(!gate.is_enabled());
    let result = classify(client(&gate).get(server.url(path)).send().await);
    assert_eq!(result, Result::Gate("RATE_LIMIT_MAX_RETRIES_EXCEEDED"));
    assert_eq!(server.hits(path).len(), 2);
}

#[test]
fn bad_overrides_are_named_by_their_key() {
    let cases = [
        (
            "[hosts.\"api.close.com\"]\nbreaker_open_ms = 0",
            "hosts.\"api.close.com\".breaker_open_ms",
        ),
        (
            "[hosts.\"api.close.com\"]\nsafety_margin_percent = 120",
            "hosts.\"api.close.com\".safety_margin_percent",
        ),
        (
            "[hosts.\"api.close.com\"]\nmax_atempts = 3",
            "hosts.\"api.close.com\".max_atempts",
        ),
        (
            "[hosts.\"api.close.com\"]\nmax_attempts = \"3\"",
            "hosts.\"api.close.com\".max_attempts",
        ),
        ("[hosts.\"a b\"]\nmax_attempts = 3", "hosts.\"a b\""),
        (
            "[[endpoints]]\npattern = \"/v1/items/*\"\ndefault_window_ms = 0",
            "endpoints[0].default_window_ms",
        ),
        (
            "[[endpoints]]\npattern = \"/v1/items/*\"\nretries = 2",
            "endpoints[0].retries",
        ),
        (
            // Fine alone, wrong with the host's base: the combination is named.
            "[hosts.\"api.close.com\"]\nbackoff_base_ms = 5000\n\
             [[endpoints]]\npattern = \"/v1/items/*\"\nbackoff_cap_ms = 1000",
            "endpoints[0].backoff_cap_ms",
        ),
    ];
    for (text, field) in cases {
        let error = Config::from_toml_str(text).unwrap_err();
        assert_eq!(error.field(), field, "{text}: {error}");
        assert!(error.to_string().contains(field), "{error}");
    }
    let error = Config::from_toml_str(
        "[hosts.\"api.close.com\"]\nbackoff_base_ms = 5000\n\
         [[endpoints]]\npattern = \"/v1/items/*\"\nbackoff_cap_ms = 1000",
    )
    .unwrap_err();
    assert!(error.problem().contains("hosts.\"api.close.com\""), "{error}");
    let error = Config::from_toml_str("max_attempts = 1\n[hosts.\"h\"]\nmax_atempts = 3").unwrap_err();
    assert!(error.problem().starts_with("line 3"), "{error}");
}

#[test]
fn a_file_and_the_builder_say_the_same() {
    let file = Config::from_toml_str(
        r#"
        [hosts."api.close.com"]
        max_attempts = 3
        breaker_failures = 10
        default_limit = 16

        [[endpoints]]
        pattern = "api.close.com/api/v1/data/search/"
        bucket = "search"
        retry_budget_ms = 5000
        "#,
    )
    .unwrap();
    let built = Config::default()
        .with_host(
            "api.close.com",
            Overrides::new()
                .with_max_attempts(3)
                .with_breaker_failures(10)
                .with_default_limit(16),
        )
        .with_endpoint(
            EndpointRuleConfig::bucket("api.close.com/api/v1/data/search/", "search")
                .with_overrides(Overrides::new().with_retry_budget_ms(5_000)),
        );
    assert_eq!(file, built);
    // Variables set the top level and leave hosts alone.
    let with_env = file.clone().with_env([("RATEKEEPER_MAX_ATTEMPTS", "2")]).unwrap();
    assert_eq!(with_env.max_attempts, 2);
    assert_eq!(with_env.hosts, file.hosts);
}
