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
//! | `[[endpoints]]` | | none | rules over the built-in endpoint keys: `pattern`, optional `bucket`, and overrides |
//! | `[hosts."HOST"]` | | none | overrides for one host (`api.close.com`, `localhost:8080`, `*.example.com`) |
//!
//! # Per host and per endpoint
//!
//! A `[hosts."..."]` table and an `[[endpoints]]` rule may set, for their
//! own calls, any of `enabled`, `safety_margin_percent`, `default_limit`,
//! `default_window_ms`, `burst`, `max_attempts`, `backoff_base_ms`,
//! `backoff_cap_ms`, `retry_budget_ms`, `retry_any_method`, `max_wait_ms`,
//! `breaker_failures`, `breaker_open_ms` and `breaker_probes` (see
//! [`Overrides`]). A call takes the top-level value, then its host's, then
//! that of the first endpoint rule its URL matches. A host is matched as
//! `name:port` (when the URL names a port), then `name`, then the longest
//! `*.suffix`. A breaker is made with the settings of the first call that
//! needs it (with `breaker_scope = "host"`, one per host). Every
//! combination is checked when the configuration is read, and an error
//! names the key: `hosts."api.close.com".max_attempts`,
//! `endpoints[0].backoff_cap_ms`. `cargo run -p ratekeeper-http --example
//! per_host` shows it against a local server.
//!
//! ```
//! use ratekeeper_http::{Config, Gate};
//!
//! let config = Config::from_toml_str(r#"
//!     max_attempts = 6
//!
//!     [hosts."api.close.com"]
//!     default_limit = 16            # before a response states the real limit
//!     safety_margin_percent = 10
//!     breaker_failures = 10
//!
//!     [hosts."internal.example.com"]
//!     enabled = false               # not rate limited: straight through
//!
//!     [[endpoints]]
//!     pattern = "api.close.com/api/v1/data/search/"
//!     bucket = "search"
//!     max_attempts = 2              # searches are cheap to give up on
//!     retry_budget_ms = 10000
//! "#).unwrap();
//! assert_eq!(config.hosts["api.close.com"].breaker_failures, Some(10));
//! assert_eq!(config.endpoints[0].overrides.max_attempts, Some(2));
//! assert!(Gate::memory(&config).is_ok());
//!
//! let error = Config::from_toml_str("[hosts.\"api.close.com\"]\nmax_attempts = 0").unwrap_err();
//! assert_eq!(error.field(), "hosts.\"api.close.com\".max_attempts");
//! let error = Config::from_toml_str("[hosts.\"api.close.com\"]\nmax_atempts = 3").unwrap_err();
//! assert_eq!(error.field(), "hosts.\"api.close.com\".max_atempts");
//! ```
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
use std::collections::{BTreeMap, HashMap};
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

/// Settings that a host or an endpoint rule sets for its own calls, over
/// the top-level ones: every field left out keeps the value from the level
/// above (top level, then `[hosts."..."]`, then the matching `[[endpoints]]`
/// rule). The fields mean what the top-level fields of the same name mean.
///
/// ```
/// use ratekeeper_http::{Config, Overrides};
///
/// let config = Config::default()
///     .with_host("api.close.com", Overrides::new().with_max_attempts(3).with_breaker_failures(10));
/// assert_eq!(config.hosts["api.close.com"].max_attempts, Some(3));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Overrides {
    /// `false`: calls here pass straight through, unpaced and unretried.
    pub enabled: Option<bool>,
    /// Share of each limit left unused, in percent.
    pub safety_margin_percent: Option<f64>,
    /// Requests per `default_window_ms` for a bucket never seen.
    pub default_limit: Option<u32>,
    /// The window of `default_limit`, in milliseconds.
    pub default_window_ms: Option<u64>,
    /// Requests sent back to back at most.
    pub burst: Option<u32>,
    /// Requests per call, the first included (1: no retries).
    pub max_attempts: Option<u32>,
    /// The first retry's backoff before jitter, in milliseconds.
    pub backoff_base_ms: Option<u64>,
    /// The longest backoff, in milliseconds.
    pub backoff_cap_ms: Option<u64>,
    /// No retry starts later than this after the call's first request.
    pub retry_budget_ms: Option<u64>,
    /// Retry `POST` and `PATCH` without an idempotency key too.
    pub retry_any_method: Option<bool>,
    /// The longest a call waits for its bucket in all.
    pub max_wait_ms: Option<u64>,
    /// Consecutive failures that open a breaker (0: never).
    pub breaker_failures: Option<u32>,
    /// How long an open breaker refuses before it lets a probe through.
    pub breaker_open_ms: Option<u64>,
    /// Calls let through while half-open.
    pub breaker_probes: Option<u32>,
}

macro_rules! overrides {
    ($($field:ident: $ty:ty => $with:ident),* $(,)?) => {
        impl Overrides {
            /// Nothing overridden.
            pub fn new() -> Overrides {
                Overrides::default()
            }

            /// Whether nothing is overridden.
            pub fn is_empty(&self) -> bool {
                $(self.$field.is_none())&&*
            }

            /// `config` with every field set here put over it.
            pub(crate) fn apply(&self, config: &mut Config) {
                $(if let Some(value) = self.$field {
                    config.$field = value;
                })*
            }

            $(
                #[doc = concat!("The same overrides, with `", stringify!($field), "` set.")]
                pub fn $with(mut self, value: $ty) -> Overrides {
                    self.$field = Some(value);
                    self
                }
            )*
        }
    };
}

overrides! {
    enabled: bool => with_enabled,
    safety_margin_percent: f64 => with_safety_margin_percent,
    default_limit: u32 => with_default_limit,
    default_window_ms: u64 => with_default_window_ms,
    burst: u32 => with_burst,
    max_attempts: u32 => with_max_attempts,
    backoff_base_ms: u64 => with_backoff_base_ms,
    backoff_cap_ms: u64 => with_backoff_cap_ms,
    retry_budget_ms: u64 => with_retry_budget_ms,
    retry_any_method: bool => with_retry_any_method,
    max_wait_ms: u64 => with_max_wait_ms,
    breaker_failures: u32 => with_breaker_failures,
    breaker_open_ms: u64 => with_breaker_open_ms,
    breaker_probes: u32 => with_breaker_probes,
}

/// A rule over the built-in endpoint keys (see
/// [`ratekeeper_core::EndpointRule`]), with settings of its own for the
/// calls it matches.
///
/// ```
/// use ratekeeper_http::{EndpointRuleConfig, Overrides};
///
/// let search = EndpointRuleConfig::bucket("api.close.com/api/v1/data/search/", "search")
///     .with_overrides(Overrides::new().with_default_limit(16));
/// assert_eq!(search.overrides.default_limit, Some(16));
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "RawRule")]
pub struct EndpointRuleConfig {
    /// The pattern, in the syntax of [`ratekeeper_core::endpoint`]'s rules
    /// (`api.close.com/api/v1/data/search/`, `/v1/items/*`).
    pub pattern: String,
    /// A bucket name shared by every matching URL (key `host@name`);
    /// none: the pattern is a path template (`*` becomes `{id}`).
    pub bucket: Option<String>,
    /// Settings for the calls the rule matches, over the host's and the
    /// top-level ones. In a file, they sit beside `pattern`.
    pub overrides: Overrides,
}

impl EndpointRuleConfig {
    /// A path template rule (see [`ratekeeper_core::EndpointRule::template`]).
    pub fn template(pattern: impl Into<String>) -> EndpointRuleConfig {
        EndpointRuleConfig {
            pattern: pattern.into(),
            bucket: None,
            overrides: Overrides::default(),
        }
    }

    /// A shared-bucket rule (see [`ratekeeper_core::EndpointRule::bucket`]).
    pub fn bucket(pattern: impl Into<String>, name: impl Into<String>) -> EndpointRuleConfig {
        EndpointRuleConfig {
            pattern: pattern.into(),
            bucket: Some(name.into()),
            overrides: Overrides::default(),
        }
    }

    /// The same rule with settings of its own.
    pub fn with_overrides(mut self, overrides: Overrides) -> EndpointRuleConfig {
        self.overrides = overrides;
        self
    }
}

/// A rule as written: `pattern`, `bucket`, and the overrides beside them.
#[derive(Deserialize)]
struct RawRule {
    pattern: String,
    bucket: Option<String>,
    #[serde(flatten)]
    rest: toml::Table,
}

impl TryFrom<RawRule> for EndpointRuleConfig {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<EndpointRuleConfig, String> {
        // `deny_unknown_fields` on `Overrides` names a misspelt key.
        let overrides = Overrides::deserialize(raw.rest).map_err(|error| error.message().to_owned())?;
        Ok(EndpointRuleConfig {
            pattern: raw.pattern,
            bucket: raw.bucket,
            overrides,
        })
    }
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
    /// Rules over the built-in endpoint keys, tried in order, each with
    /// settings of its own for the calls it matches.
    pub endpoints: Vec<EndpointRuleConfig>,
    /// Settings per host (`api.close.com`, `localhost:8080` with a port,
    /// `*.example.com` for every subdomain), over the top-level ones.
    pub hosts: BTreeMap<String, Overrides>,
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
            hosts: BTreeMap::new(),
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
    pub(crate) breaker_scope: BreakerScope,
    pub(crate) idempotency_key_header: Option<http::HeaderName>,
    pub(crate) tenant_header: Option<http::HeaderName>,
    pub(crate) policy_refresh: Nanos,
    pub(crate) endpoints: Vec<EndpointRuleConfig>,
    /// The hosts with settings of their own, lower-cased, in file order.
    hosts: Vec<String>,
    /// The top-level settings of a call.
    pub(crate) base: CallSettings,
    /// The settings of a call, by (host index, rule index): every
    /// combination, validated up front. A rule without overrides is `None`.
    calls: HashMap<(Option<usize>, Option<usize>), CallSettings>,
}

/// What a call is paced, retried and broken with: the top-level settings,
/// with its host's and its endpoint rule's overrides over them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallSettings {
    pub(crate) enabled: bool,
    pub(crate) learner: LearnerConfig,
    pub(crate) retry: RetryPolicy,
    pub(crate) breaker: BreakerConfig,
    pub(crate) max_wait: Nanos,
}

impl Settings {
    /// The settings of a call to `host` (`name` or `name:port`) whose URL
    /// matched endpoint rule `rule`, if any.
    pub(crate) fn call(&self, host: Option<usize>, rule: Option<usize>) -> &CallSettings {
        let rule = rule.filter(|&index| {
            self.endpoints
                .get(index)
                .is_some_and(|rule| !rule.overrides.is_empty())
        });
        // Every combination was made in `Config::settings`.
        self.calls
            .get(&(host, rule))
            .or_else(|| self.calls.get(&(host, None)))
            .unwrap_or(&self.base)
    }

    /// Whether any call can be limited: the top level, or a host or rule
    /// that turns limiting back on.
    pub(crate) fn any_enabled(&self) -> bool {
        self.base.enabled || self.calls.values().any(|call| call.enabled)
    }

    /// Which configured host a request's `host` (with `port`, if not the
    /// scheme's default) is: `name:port`, then `name`, then the longest
    /// `*.suffix` that matches.
    pub(crate) fn host_index(&self, host: &str, port: Option<u16>) -> Option<usize> {
        if self.hosts.is_empty() {
            return None;
        }
        let host = host.to_ascii_lowercase();
        let exact = |name: &str| self.hosts.iter().position(|h| h == name);
        port.and_then(|port| exact(&format!("{host}:{port}")))
            .or_else(|| exact(&host))
            .or_else(|| {
                self.hosts
                    .iter()
                    .enumerate()
                    .filter_map(|(index, name)| {
                        let suffix = name.strip_prefix('*')?;
                        host.ends_with(suffix).then_some((index, suffix.len()))
                    })
                    .max_by_key(|&(_, len)| len)
                    .map(|(index, _)| index)
            })
    }
}

impl Config {
    /// The same configuration with settings of its own for `host`
    /// (`api.close.com`, `localhost:8080`, `*.example.com`), replacing
    /// any it had.
    pub fn with_host(mut self, host: impl Into<String>, overrides: Overrides) -> Config {
        self.hosts.insert(host.into(), overrides);
        self
    }

    /// The same configuration with one more endpoint rule, tried after
    /// the ones it has.
    ///
    /// ```
    /// use ratekeeper_http::{Config, EndpointRuleConfig, Gate, Overrides};
    ///
    /// let config = Config::default()
    ///     .with_endpoint(EndpointRuleConfig::template("api.close.com/api/v1/export/*")
    ///         .with_overrides(Overrides::new().with_max_attempts(1)));
    /// let gate = Gate::memory(&config).unwrap();
    /// let key = gate.endpoint_key("https://api.close.com/api/v1/export/exp_1", None);
    /// assert_eq!(key.as_deref(), Some("api.close.com/api/v1/export/{id}"));
    /// ```
    pub fn with_endpoint(mut self, rule: EndpointRuleConfig) -> Config {
        self.endpoints.push(rule);
        self
    }

    /// Reads a TOML document; unknown fields are errors.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| {
            let named = error.message().split('`').nth(1);
            let located = error.span().and_then(|span| key_path_at(text, span.start, named));
            // The key's own line when it was found, else where the error points.
            let at = located
                .as_ref()
                .map(|(_, at)| *at)
                .or(error.span().map(|span| span.start));
            let field = located
                .map(|(path, _)| path)
                .or_else(|| named.map(str::to_owned))
                .unwrap_or_else(|| "(file)".to_owned());
            let line = at.map(|at| {
                let before = text.get(..at).unwrap_or_default();
                before.matches('\n').count().saturating_add(1)
            });
            let problem = match line {
                Some(line) => format!("line {line}: {}", error.message().trim_end()),
                None => error.message().trim_end().to_owned(),
            };
            ConfigError::new(field, problem)
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

    /// The settings of one call, from this configuration's fields.
    fn call_settings(&self) -> Result<CallSettings, ConfigError> {
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
        Ok(CallSettings {
            enabled: self.enabled,
            learner: LearnerConfig::DEFAULT.with_policy(policy),
            retry,
            breaker,
            max_wait: Nanos::from_millis(self.max_wait_ms),
        })
    }

    pub(crate) fn settings(&self) -> Result<Settings, ConfigError> {
        let base = self.call_settings()?;
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
        let mut hosts = Vec::new();
        let mut calls = HashMap::new();
        for (name, overrides) in &self.hosts {
            let field = |key: &str| format!("hosts.\"{name}\".{key}");
            let host = name.trim().to_ascii_lowercase();
            if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
                return Err(ConfigError::new(
                    format!("hosts.\"{name}\""),
                    "must be a host name (`api.example.com`, `localhost:8080`, `*.example.com`)",
                ));
            }
            if hosts.contains(&host) {
                return Err(ConfigError::new(
                    format!("hosts.\"{name}\""),
                    "the same host is configured twice",
                ));
            }
            let index = hosts.len();
            hosts.push(host);
            let mut merged = self.clone();
            overrides.apply(&mut merged);
            let settings = merged
                .call_settings()
                .map_err(|error| ConfigError::new(field(&error.field), error.problem))?;
            calls.insert((Some(index), None), settings);
        }
        let host_overrides: Vec<&Overrides> = self.hosts.values().collect();
        for (index, rule) in self.endpoints.iter().enumerate() {
            if rule.overrides.is_empty() {
                continue;
            }
            for host in std::iter::once(None).chain((0..hosts.len()).map(Some)) {
                let mut merged = self.clone();
                if let Some(overrides) = host.and_then(|host| host_overrides.get(host)) {
                    overrides.apply(&mut merged);
                }
                rule.overrides.apply(&mut merged);
                let settings = merged.call_settings().map_err(|error| {
                    let problem = match host.and_then(|host| hosts.get(host)) {
                        Some(name) => format!("{} (with the settings of hosts.\"{name}\")", error.problem),
                        None => error.problem,
                    };
                    ConfigError::new(format!("endpoints[{index}].{}", error.field), problem)
                })?;
                calls.insert((host, Some(index)), settings);
            }
        }
        if self.store_url.trim().is_empty() {
            return Err(ConfigError::new(
                "store_url",
                "must not be empty (use \"memory\")",
            ));
        }
        Ok(Settings {
            breaker_scope: self.breaker_scope,
            idempotency_key_header,
            tenant_header,
            policy_refresh: Nanos::from_millis(self.policy_refresh_ms),
            endpoints: self.endpoints.clone(),
            hosts,
            calls,
            base,
        })
    }
}

/// The dotted path of the key an error at byte `at` of `text` is about,
/// with the table it sits in (`hosts."api.close.com".max_attempts`,
/// `endpoints[1].pattern`), so an error names the key wherever it is. The
/// key is the one on the line at `at`, else `named` (the key the error
/// message names), found on its own line when the error is reported at a
/// table's header; with the byte where the key's line starts. `None`
/// when neither is known.
fn key_path_at(text: &str, at: usize, named: Option<&str>) -> Option<(String, usize)> {
    let line_start = text
        .get(..at)?
        .rfind('\n')
        .map_or(0, |newline| newline.saturating_add(1));
    let line = text
        .get(line_start..)?
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start();
    let is_header = line.starts_with('[');
    if is_header {
        // An unknown field is reported at its table (for an array of
        // tables, at the array's first header): the named key's own line,
        // from here on, places it.
        let named = named?;
        let mut offset = line_start;
        for candidate in text.get(line_start..)?.split_inclusive('\n') {
            let key = candidate.split_once('=').map(|(key, _)| key.trim());
            if key == Some(named) && !candidate.trim_start().starts_with('[') {
                return key_path_at(text, offset, None);
            }
            offset = offset.saturating_add(candidate.len());
        }
        return None;
    }
    let key = match line.split_once('=') {
        Some((key, _)) if !line.starts_with('#') && !key.trim().is_empty() => key.trim(),
        _ => named?,
    };
    // The table: the last header before the key's line.
    let mut table = String::new();
    let mut arrays: Vec<(String, usize)> = Vec::new();
    for header in text.get(..line_start)?.lines().map(str::trim) {
        if let Some((name, _)) = header.strip_prefix("[[").and_then(|rest| rest.split_once("]]")) {
            let name = name.trim().to_owned();
            let index = match arrays.iter_mut().find(|(array, _)| *array == name) {
                Some((_, count)) => {
                    *count = count.saturating_add(1);
                    *count
                }
                None => {
                    arrays.push((name.clone(), 0));
                    0
                }
            };
            table = format!("{name}[{index}]");
        } else if let Some((name, _)) = header.strip_prefix('[').and_then(|rest| rest.split_once(']')) {
            table = name.trim().to_owned();
        }
    }
    let path = if table.is_empty() {
        key.to_owned()
    } else {
        format!("{table}.{key}")
    };
    Some((path, line_start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_key_with_its_table() {
        let field = |text: &str| Config::from_toml_str(text).unwrap_err().field().to_owned();
        assert_eq!(
            field("max_attempts = 2\n[hosts.\"api.close.com\"]\nbreaker_failurez = 3\n"),
            "hosts.\"api.close.com\".breaker_failurez"
        );
        assert_eq!(field("max_attempts = \"three\""), "max_attempts");
        assert_eq!(
            field("[[endpoints]]\npattern = \"a/**\"\n[[endpoints]]\npattern = 7\n"),
            "endpoints[1].pattern"
        );
        assert_eq!(
            field("[[endpoints]]\npattern = \"a/**\"\n[[endpoints]]\npattern = \"b/**\"\nretries = 2\n"),
            "endpoints[1].retries"
        );
        let error = Config::from_toml_str(
            "[[endpoints]]\npattern = \"a/**\"\n\n[[endpoints]]\npattern = \"b/**\"\nretries = 2\n",
        )
        .unwrap_err();
        assert!(error.problem().starts_with("line 6:"), "{error}");
    }
}
