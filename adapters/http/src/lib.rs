//! # ratekeeper-http
//!
//! One gate for every HTTP call of an app: a [`Gate`] shared (in an `Arc`)
//! by a `reqwest-middleware` middleware ([`GateMiddleware`]) and a `tower`
//! layer ([`GateLayer`]), so no call bypasses the limiter.
//!
//! Each call goes:
//!
//! 1. **circuit breaker** (per endpoint key by default, per host with
//!    `breaker_scope = "host"`): an open breaker refuses at once with
//!    `RATE_LIMIT_CIRCUIT_OPEN`;
//! 2. **bucket wait** per endpoint key (host, tenant, path template; the
//!    tenant from a [`Tenant`] extension or the configured `tenant_header`):
//!    a reservation no further ahead than two emission intervals, then a
//!    re-check for a pause before sending; past `max_wait` in all the call
//!    fails with `RATE_LIMIT_WAIT_TOO_LONG` instead of waiting. On a store
//!    private to the process ([`Gate::memory`], or
//!    [`Gate::with_private_store`]) what the server states is left in a
//!    window of up to a minute is spent at once, and one request finds out
//!    what the next window allows while the others wait for its answer;
//! 3. **send**;
//! 4. **learn** from the response headers (every family the core reads) or
//!    from 429s alone; a new or changed limit goes to the store for the
//!    fleet, a pause (429/503, or nothing remaining) pauses the bucket for
//!    every caller;
//! 5. **retry** what is safe (an idempotent method, an idempotency-key
//!    header, a [`RetrySafe`] extension or `retry_any_method`) after an
//!    exponential backoff that never comes before `Retry-After`;
//! 6. **breaker records**: 5xx and lost connections are failures, a 429 is
//!    not (the endpoint is up, and busy).
//!
//! Policies are read from the store on an endpoint's first use and every
//! `policy_refresh_ms` after, so a new instance starts with what the fleet
//! knows. [`Config`] comes from a TOML file and `RATEKEEPER_*` variables;
//! `enabled = false` (`RATEKEEPER_ENABLED=false`) lets every call pass
//! straight through. Retry, breaker and pacing settings, and the switch,
//! can be set per host (`[hosts."api.close.com"]`) and per endpoint rule
//! (see [`config`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use ratekeeper_http::{gate_error, Config, Gate, GateMiddleware};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let gate = Arc::new(Gate::memory(&Config::from_env()?)?);
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(GateMiddleware::new(Arc::clone(&gate)))
//!     .build();
//! match client.get("https://api.close.com/api/v1/me/").send().await {
//!     Ok(response) => println!("{}", response.status()),
//!     Err(error) => match gate_error(&error) {
//!         Some(refused) => println!("{}: {}", refused.code(), refused.user_message()),
//!         None => println!("transport: {error}"),
//!     },
//! }
//! for endpoint in gate.endpoints() {
//!     println!("{} {}/{:?} {}", endpoint.key, endpoint.limit, endpoint.window, endpoint.source.as_str());
//! }
//! # Ok(()) }
//! ```
//!
//! Observability: a `tracing` span per call (`ratekeeper.call`, with the
//! endpoint, method, attempts and status), events for every limit learned
//! or adopted (with its source), pause, retry and breaker transition; and
//! metrics through the `metrics` facade, named in [`telemetry`].
#![forbid(unsafe_code)]

mod budget;
pub mod config;
mod error;
mod gate;
mod middleware;
pub mod telemetry;
pub mod tower;

pub use config::{BreakerScope, Config, ConfigError, EndpointRuleConfig, Overrides};
pub use error::Error;
pub use gate::{EndpointReport, Gate, GateTotals, RetrySafe, Tenant, TokioClock};
pub use middleware::{GateMiddleware, gate_error};
pub use ratekeeper_core::ErrorKind;
pub use tower::{BoxError, GateLayer, GateService, ResponseFuture};
