//! The gate's configuration: a TOML file, `RATEKEEPER_*` environment
//! variables over it, validated once into the core's types.
//!
//! Every field has a default, so an empty file (or none) is a valid
//! configuration. Times are whole milliseconds.
//!
//! | field | variable | default | meaning |
//! | --- | --- | --- | --- |
//! | `enabled` | `RATEKEEPER_ENABLED` | `true` | `false`: every call passes straight through |
//! | `store_url` | `RATEKEEPER_STORE_URL` | `"memory"` | where buckets live (`memory`, `redis://...`), for the program that builds the store |
//! | `safety_margin_percent` | `RATEKEEPER_SAFETY_MARGIN_PERCENT` | `3` | share of each limit left unused (0 to 99, two decimals) |
//! | `default_limit` | `RATEKEEPER_DEFAULT_LIMIT` | `1` | requests per `default_window_ms` for a bucket never seen |
//! | `default_window_ms` | `RATEKEEPER_DEFAULT_WINDOW_MS` | `1000` | |
//! | `burst` | `RATEKEEPER_BURST` | `1` | requests sent back to back at most |
//! | `max_attempts` | `RATEKEEPER_MAX_ATTEMPTS` | `6` | requests per call, the first included (1: no retries) |
//! | `backoff_base_ms` / `backoff_cap_ms` | `RATEKEEPER_BACKOFF_BASE_MS` / `_CAP_MS` | `500` / `30000` | exponential backoff with full jitter, never before `Retry-After` |
//! | `retry_budget_ms` | `RATEKEEPER_RETRY_BUDGET_MS` | `120000` | no retry starts later than this after the first request |
//! | `retry_any_method` | `RATEKEEPER_RETRY_ANY_METHOD` | `false` | also retry `POST`/`PATCH` without an idempotency key |
//! | `idempotency_key_header` | `RATEKEEPER_IDEMPOTENCY_KEY_HEADER` | `"idempotency-key"` | a request carrying it may be retried whatever its method |
//! | `tenant_header` | `RATEKEEPER_TENANT_HEADER` | none | request header naming the tenant (GoHighLevel: the location) |
//! | `max_wait_ms` | `RATEKEEPER_MAX_WAIT_MS` | `60000` | longest wait for the bucket per call; past it the call fails with `RATE_LIMIT_WAIT_TOO_LONG` |
//! | `policy_refresh_ms` | `RATEKEEPER_POLICY_REFRESH_MS` | `30000` | how often learned policies are re-read from the store |
//! | `breaker_failures` | `RATEKEEPER_BREAKER_FAILURES` | `5` | consecutive failures that open the breaker (0: never) |
//! | `breaker_open_ms` | `RATEKEEPER_BREAKER_OPEN_MS` | `60000` | how long it stays open before a probe |
//! | `breaker_probes` | `RATEKEEPER_BREAKER_PROBES` | `1` | calls let through when half-open |
//! | `breaker_scope` | `RATEKEEPER_BREAKER_SCOPE` | `"endpoint"` | one breaker per `endpoint` key or per `host` |
//! | `[[endpoints]]` | | none | rules over the built-in endpoint keys: `pattern`, optional `bucket` |
//!
//! ```
//! use ratekeeper_http::Config;
//!
//! let config = Config::from_toml_str("max_attempts = 3\ntenant_header = \"x-location-id\"").unwrap();
//! assert_eq!(config.max_attempts, 3);
//! let error = Config::from_toml_str("max_attempts = 0").unwrap_err();
//! assert_eq!(error.field(), "max_attempts");
//! ```

use core::fmt;
use std::path::Path;

use ratekeeper_core::{
    BackoffConfig, BreakerConfig, Jitter, LearnerConfig, Nanos, PolicyConfig, RetryPolicy, SafetyMargin,
};
use serde::Deserialize;

/// One breaker per what.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BreakerScope {
    /// One per endpoint key (host, tenant and path template): a broken
    /// endpoint does not stop healthy ones of the same API.
    #[default]
    Endpoint,
    /// One per host (and tenant): a failing API is stopped as a whole after
    /// `breaker_failures` failures, whichever endpoints they hit.
    Host,
}

/// A rule over the built-in endpoint keys (see
/// [`ratekeeper_core::EndpointRule`]).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointRuleConfig {
    /// The pattern, in the syntax of [`ratekeeper_core::endpoint`]'s rules
    /// (`api.close.com/api/v1/data/search/`, `/v1/items/*`).
    pub pattern: String,
    /// A bucket name shared by every matching URL (key `host@name`);
    /// none: the pattern is a path template (`*` becomes `{id}`).
    pub bucket: Option<String>,
}

/// The gate's configuration, as read. See the [module docs](self) for
/// every field.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `false`: every call passes straight through, unpaced and unretried.
    pub enabled: bool,
    /// Where buckets live: `memory`, or a `redis://` URL. Read by the program that builds the store; the gate takes a store already made.
    pub store_url: String,
    /// Share of each limit left unused, in percent (0 to 99, to two decimals).
    pub safety_margin_percent: f64,
    /// Requests per `default_window_ms` for a bucket never seen.
    pub default_limit: u32,
    /// The window of `default_limit`, in milliseconds.
    pub default_window_ms: u64,
    /// Requests sent back to back at most (1: even pacing).
    pub burst: u32,
    /// Requests per call, the first included (1: no retries).
    pub max_attempts: u32,
    /// The first retry's backoff before jitter, in milliseconds.
    pub backoff_base_ms: u64,
    /// The longest backoff, in milliseconds.
    pub backoff_cap_ms: u64,
    /// No retry starts later than this after the call's first request.
    pub retry_budget_ms: u64,
    /// Retry `POST` and `PATCH` without an idempotency key too.
    pub retry_any_method: bool,
    /// A request carrying this header may be retried whatever its method (empty: none).
    pub idempotency_key_header: String,
    /// The request header naming the tenant, for per-tenant buckets.
    pub tenant_header: Option<String>,
    /// The longest a call waits for its bucket in all; past it the call fails with `RATE_LIMIT_WAIT_TOO_LONG`.
    pub max_wait_ms: u64,
    /// How often an endpoint's policy is read again from the store.
    pub policy_refresh_ms: u64,
    /// Consecutive failures that open a breaker (0: never).
    pub breaker_failures: u32,
    /// How long an open breaker refuses before it lets a probe through.
    pub breaker_open_ms: u64,
    /// Calls let through while half-open.
    pub breaker_probes: u32,
    /// One breaker per endpoint key, or per host.
    pub breaker_scope: BreakerScope,
    /// Rules over the built-in endpoint keys, tried in order.
    pub endpoints: Vec<EndpointRuleConfig>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            enabled: true,
            store_url: "memory".into(),
            safety_margin_percent: 3.0,
            default_limit: 1,
            default_window_ms: 1_000,
            burst: 1,
            max_attempts: 6,
            backoff_base_ms: 500,
            backoff_cap_ms: 30_000,
            retry_budget_ms: 120_000,
            retry_any_method: false,
            idempotency_key_header: "idempotency-key".into(),
            tenant_header: None,
            max_wait_ms: 60_000,
            policy_refresh_ms: 30_000,
            breaker_failures: 5,
            breaker_open_ms: 60_000,
            breaker_probes: 1,
            breaker_scope: BreakerScope::Endpoint,
            endpoints: Vec::new(),
        }
    }
}

/// A configuration that cannot be used, naming the field (or variable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    field: String,
    problem: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The field (`max_attempts`) or variable (`RATEKEEPER_MAX_ATTEMPTS`).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with it.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ratekeeper configuration: `{}`: {}", self.field, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// The configuration validated into the core's types.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) enabled: bool,
    pub(crate) learner: LearnerConfig,
    pub(crate) retry: RetryPolicy,
    pub(crate) breaker: BreakerConfig,
    pub(crate) breaker_scope: BreakerScope,
    pub(crate) idempotency_key_header: Option<http::HeaderName>,
    pub(crate) tenant_header: Option<http::HeaderName>,
    pub(crate) max_wait: Nanos,
    pub(crate) policy_refresh: Nanos,
    pub(crate) endpoints: Vec<EndpointRuleConfig>,
}

impl Config {
    /// Reads a TOML document; unknown fields are errors.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| {
            let field = error.message().split('`').nth(1).unwrap_or("(file)").to_owned();
            ConfigError::new(field, error.message().to_owned())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigError::new("(file)", format!("cannot read {}: {error}", path.display()))
        })?;
        Config::from_toml_str(&text)
    }

    /// The file named by `RATEKEEPER_CONFIG` (if set), then every
    /// `RATEKEEPER_*` variable of the process over it.
    pub fn from_env() -> Result<Config, ConfigError> {
        let config = match std::env::var_os("RATEKEEPER_CONFIG") {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.with_env(std::env::vars())
    }

    /// This configuration with `RATEKEEPER_*` variables from `vars` over it
    /// (others are ignored), validated.
    ///
    /// ```
    /// use ratekeeper_http::Config;
    ///
    /// let vars = [("RATEKEEPER_ENABLED", "false"), ("RATEKEEPER_MAX_WAIT_MS", "250")];
    /// let config = Config::default().with_env(vars).unwrap();
    /// assert!(!config.enabled);
    /// assert_eq!(config.max_wait_ms, 250);
    /// let error = Config::default().with_env([("RATEKEEPER_BURST", "many")]).unwrap_err();
    /// assert_eq!(error.field(), "RATEKEEPER_BURST");
    /// ```
    pub fn with_env<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Result<Config, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
            value
                .trim()
                .parse()
                .map_err(|_| ConfigError::new(name, format!("cannot read {value:?}")))
        }
        for (name, value) in vars {
            let (name, value) = (name.as_ref(), value.as_ref());
            let Some(field) = name.strip_prefix("RATEKEEPER_") else {
                continue;
            };
            match field {
                "ENABLED" => {
                    self.enabled = match value.trim().to_ascii_lowercase().as_str() {
                        "1" | "true" | "yes" | "on" => true,
                        "0" | "false" | "no" | "off" => false,
                        _ => return Err(ConfigError::new(name, "expected true or false")),
                    }
                }
                "STORE_URL" => self.store_url = value.to_owned(),
                "SAFETY_MARGIN_PERCENT" => self.safety_margin_percent = parse(name, value)?,
                "DEFAULT_LIMIT" => self.default_limit = parse(name, value)?,
                "DEFAULT_WINDOW_MS" => self.default_window_ms = parse(name, value)?,
                "BURST" => self.burst = parse(name, value)?,
                "MAX_ATTEMPTS" => self.max_attempts = parse(name, value)?,
                "BACKOFF_BASE_MS" => self.backoff_base_ms = parse(name, value)?,
                "BACKOFF_CAP_MS" => self.backoff_cap_ms = parse(name, value)?,
                "RETRY_BUDGET_MS" => self.retry_budget_ms = parse(name, value)?,
                "RETRY_ANY_METHOD" => self.retry_any_method = parse(name, value)?,
                "IDEMPOTENCY_KEY_HEADER" => self.idempotency_key_header = value.to_owned(),
                "TENANT_HEADER" => self.tenant_header = Some(value.to_owned()).filter(|v| !v.is_empty()),
                "MAX_WAIT_MS" => self.max_wait_ms = parse(name, value)?,
                "POLICY_REFRESH_MS" => self.policy_refresh_ms = parse(name, value)?,
                "BREAKER_FAILURES" => self.breaker_failures = parse(name, value)?,
                "BREAKER_OPEN_MS" => self.breaker_open_ms = parse(name, value)?,
                "BREAKER_PROBES" => self.breaker_probes = parse(name, value)?,
                "BREAKER_SCOPE" => {
                    self.breaker_scope = match value.trim() {
                        "endpoint" => BreakerScope::Endpoint,
                        "host" => BreakerScope::Host,
                        _ => return Err(ConfigError::new(name, "expected endpoint or host")),
                    }
                }
                // RATEKEEPER_CONFIG names the file; other names belong to
                // other parts of ratekeeper.
                _ => {}
            }
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.settings().map(|_| ())
    }

    pub(crate) fn settings(&self) -> Result<Settings, ConfigError> {
        let margin = self.safety_margin_percent;
        if !(0.0..=99.0).contains(&margin) {
            return Err(ConfigError::new(
                "safety_margin_percent",
                "must be between 0 and 99",
            ));
        }
        // In range, so the rounded basis points fit a u16.
        let margin = SafetyMargin::from_basis_points((margin * 100.0).round() as u16)
            .map_err(|error| ConfigError::new("safety_margin_percent", error.to_string()))?;
        let policy = PolicyConfig::new(
            margin,
            self.burst,
            self.default_limit,
            Nanos::from_millis(self.default_window_ms),
        )
        .map_err(|error| {
            let field = match error {
                ratekeeper_core::PolicyError::ZeroBurst => "burst",
                ratekeeper_core::PolicyError::ZeroWindow => "default_window_ms",
                _ => "default_limit",
            };
            ConfigError::new(field, error.to_string())
        })?;
        if self.max_attempts == 0 {
            return Err(ConfigError::new(
                "max_attempts",
                "must be at least 1 (the first request)",
            ));
        }
        let backoff = BackoffConfig::new(
            Nanos::from_millis(self.backoff_base_ms),
            Nanos::from_millis(self.backoff_cap_ms),
            self.max_attempts.saturating_sub(1),
            Jitter::Full,
        )
        .map_err(|error| {
            let field = match error {
                ratekeeper_core::BackoffError::ZeroBase => "backoff_base_ms",
                _ => "backoff_cap_ms",
            };
            ConfigError::new(field, error.to_string())
        })?;
        let mut retry = RetryPolicy::new(backoff, Nanos::from_millis(self.retry_budget_ms));
        if self.retry_any_method {
            retry = retry.retrying_any_method();
        }
        if self.breaker_open_ms == 0 {
            return Err(ConfigError::new("breaker_open_ms", "must be longer than zero"));
        }
        if self.breaker_probes == 0 {
            return Err(ConfigError::new("breaker_probes", "must be at least 1"));
        }
        let breaker = BreakerConfig::consecutive_failures(
            self.breaker_failures,
            Nanos::from_millis(self.breaker_open_ms),
        )
        .with_probes(self.breaker_probes);
        ratekeeper_core::Breaker::<1>::new(breaker)
            .map_err(|error| ConfigError::new("breaker_failures", error.to_string()))?;
        let header = |field: &str, name: &str| {
            http::HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| ConfigError::new(field, format!("{name:?} is not a header name")))
        };
        let idempotency_key_header = match self.idempotency_key_header.trim() {
            "" => None,
            name => Some(header("idempotency_key_header", name)?),
        };
        let tenant_header = match self.tenant_header.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) => Some(header("tenant_header", name)?),
        };
        if self.policy_refresh_ms == 0 {
            return Err(ConfigError::new("policy_refresh_ms", "must be longer than zero"));
        }
        for (index, rule) in self.endpoints.iter().enumerate() {
            if rule.pattern.trim().is_empty() {
                return Err(ConfigError::new(
                    format!("endpoints[{index}].pattern"),
                    "must not be empty",
                ));
            }
        }
        if self.store_url.trim().is_empty() {
            return Err(ConfigError::new(
                "store_url",
                "must not be empty (use \"memory\")",
            ));
        }
        Ok(Settings {
            enabled: self.enabled,
            learner: LearnerConfig {
                policy,
                ..LearnerConfig::DEFAULT
            },
            retry,
            breaker,
            breaker_scope: self.breaker_scope,
            idempotency_key_header,
            tenant_header,
            max_wait: Nanos::from_millis(self.max_wait_ms),
            policy_refresh: Nanos::from_millis(self.policy_refresh_ms),
            endpoints: self.endpoints.clone(),
        })
    }
}
