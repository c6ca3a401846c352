//! Metric names and their recording, through the `metrics` facade: install
//! any recorder (the CLI serves Prometheus) to collect them.
//!
//! Every metric carries an `endpoint` label: the bucket key, bounded in
//! length. Keys with tenants multiply the series; configure endpoint rules
//! with `bucket` names to fold them where that matters.

use ratekeeper_core::{BreakerState, Nanos, Policy};

/// Counter: requests sent (every attempt), by `endpoint` and `status`
/// (`error` for a transport failure).
pub const REQUESTS: &str = "ratekeeper_requests_total";
/// Counter: responses with status 429, by `endpoint`.
pub const RESPONSES_429: &str = "ratekeeper_responses_429_total";
/// Counter: retries sent, by `endpoint`.
pub const RETRIES: &str = "ratekeeper_retries_total";
/// Histogram: seconds a call waited for its bucket, by `endpoint`.
pub const WAIT_SECONDS: &str = "ratekeeper_wait_seconds";
/// Counter: pauses of a bucket, by `endpoint`.
pub const PAUSES: &str = "ratekeeper_pauses_total";
/// Counter: circuit breaker transitions, by `breaker` and `state` (the new
/// state).
pub const BREAKER_TRANSITIONS: &str = "ratekeeper_breaker_transitions_total";
/// Counter: calls ended by a gate error, by `endpoint` and `code`.
pub const ERRORS: &str = "ratekeeper_errors_total";
/// Gauge: the limit paced against, by `endpoint` and `source`.
pub const LIMIT: &str = "ratekeeper_limit";
/// Gauge: the window of that limit in seconds, by `endpoint`.
pub const WINDOW_SECONDS: &str = "ratekeeper_window_seconds";

pub(crate) fn request(endpoint: &str, status: u16) {
    metrics::counter!(REQUESTS, "endpoint" => endpoint.to_owned(), "status" => status.to_string())
        .increment(1);
}

pub(crate) fn request_failed(endpoint: &str) {
    metrics::counter!(REQUESTS, "endpoint" => endpoint.to_owned(), "status" => "error").increment(1);
}

pub(crate) fn throttled(endpoint: &str) {
    metrics::counter!(RESPONSES_429, "endpoint" => endpoint.to_owned()).increment(1);
}

pub(crate) fn retry(endpoint: &str) {
    metrics::counter!(RETRIES, "endpoint" => endpoint.to_owned()).increment(1);
}

pub(crate) fn waited(endpoint: &str, wait: Nanos) {
    metrics::histogram!(WAIT_SECONDS, "endpoint" => endpoint.to_owned())
        .record(wait.to_duration().as_secs_f64());
}

pub(crate) fn paused(endpoint: &str, _pause: Nanos) {
    metrics::counter!(PAUSES, "endpoint" => endpoint.to_owned()).increment(1);
}

pub(crate) fn breaker(breaker: &str, state: BreakerState) {
    metrics::counter!(BREAKER_TRANSITIONS, "breaker" => breaker.to_owned(), "state" => state.as_str())
        .increment(1);
}

pub(crate) fn error(endpoint: &str, code: &'static str) {
    metrics::counter!(ERRORS, "endpoint" => endpoint.to_owned(), "code" => code).increment(1);
}

pub(crate) fn policy(endpoint: &str, policy: &Policy) {
    metrics::gauge!(LIMIT, "endpoint" => endpoint.to_owned(), "source" => policy.source.as_str())
        .set(f64::from(policy.limit()));
    metrics::gauge!(WINDOW_SECONDS, "endpoint" => endpoint.to_owned())
        .set(policy.window().to_duration().as_secs_f64());
}
