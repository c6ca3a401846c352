//! Configuration from outside input: whatever the variables or the file
//! say, reading them never panics, and whatever passes validation makes a
//! working gate.

use proptest::prelude::*;
use ratekeeper_http::{Config, Gate};

const NAMES: [&str; 21] = [
    "RATEKEEPER_ENABLED",
    "RATEKEEPER_STORE_URL",
    "RATEKEEPER_SAFETY_MARGIN_PERCENT",
    "RATEKEEPER_DEFAULT_LIMIT",
    "RATEKEEPER_DEFAULT_WINDOW_MS",
    "RATEKEEPER_BURST",
    "RATEKEEPER_MAX_ATTEMPTS",
    "RATEKEEPER_BACKOFF_BASE_MS",
    "RATEKEEPER_BACKOFF_CAP_MS",
    "RATEKEEPER_RETRY_BUDGET_MS",
    "RATEKEEPER_RETRY_ANY_METHOD",
    "RATEKEEPER_IDEMPOTENCY_KEY_HEADER",
    "RATEKEEPER_TENANT_HEADER",
    "RATEKEEPER_MAX_WAIT_MS",
    "RATEKEEPER_POLICY_REFRESH_MS",
    "RATEKEEPER_BREAKER_FAILURES",
    "RATEKEEPER_BREAKER_OPEN_MS",
    "RATEKEEPER_BREAKER_PROBES",
    "RATEKEEPER_BREAKER_SCOPE",
    "RATEKEEPER_CONFIG",
    "OTHER_VARIABLE",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        (0u64..200).prop_map(|n| n.to_string()),
        (-1.0e3f64..1.0e3).prop_map(|x| x.to_string()),
        prop::sample::select(vec![
            "true", "false", "off", "host", "endpoint", "", "nan", "inf", "-1", "x y"
        ])
        .prop_map(str::to_owned),
        ".{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn any_variables_read_without_panic(vars in prop::collection::vec((prop::sample::select(NAMES.to_vec()), value()), 0..6)) {
        match Config::default().with_env(vars) {
            Ok(config) => {
                prop_assert!(config.validate().is_ok());
                prop_assert!(Gate::memory(&config).is_ok());
            }
            Err(error) => prop_assert!(!error.field().is_empty()),
        }
    }

    #[test]
    fn any_file_reads_without_panic(text in ".{0,80}") {
        if let Err(error) = Config::from_toml_str(&text) {
            prop_assert!(!error.field().is_empty());
        }
    }

    #[test]
    fn any_numbers_in_a_file_read_without_panic(
        margin in -10.0f64..200.0,
        burst in any::<u32>(),
        limit in any::<u32>(),
        window in any::<u64>(),
        attempts in any::<u32>(),
        base in any::<u64>(),
        cap in any::<u64>(),
    ) {
        let text = format!(
            "safety_margin_percent = {margin}\nburst = {burst}\ndefault_limit = {limit}\n\
             default_window_ms = {}\nmax_attempts = {attempts}\nbackoff_base_ms = {}\nbackoff_cap_ms = {}",
            window % (i64::MAX as u64), base % (i64::MAX as u64), cap % (i64::MAX as u64)
        );
        match Config::from_toml_str(&text) {
            Ok(config) => prop_assert!(Gate::memory(&config).is_ok()),
            Err(error) => prop_assert!(!error.field().is_empty()),
        }
    }

    #[test]
    fn any_numbers_per_host_and_rule_read_without_panic(
        host_attempts in 0u32..5,
        host_base in 0u64..3_000,
        rule_cap in 0u64..3_000,
        rule_margin in -10.0f64..120.0,
        rule_enabled in any::<bool>(),
    ) {
        let text = format!(
            "[hosts.\"api.example.com\"]\nmax_attempts = {host_attempts}\nbackoff_base_ms = {host_base}\n\
             [[endpoints]]\npattern = \"/v1/*\"\nbackoff_cap_ms = {rule_cap}\n\
             safety_margin_percent = {rule_margin}\nenabled = {rule_enabled}"
        );
        match Config::from_toml_str(&text) {
            Ok(config) => prop_assert!(Gate::memory(&config).is_ok()),
            Err(error) => prop_assert!(
                error.field().starts_with("hosts.") || error.field().starts_with("endpoints[0]."),
                "{}", error
            ),
        }
    }
}
