//! The gate every request of a run passes: wait for the bucket's slot,
//! send, learn from the response, pause the bucket on a 429, retry.
//!
//! Pacing comes from the core's [`Learner`] (what this process believes
//! about each bucket) and the store (the bucket's GCRA state and pauses,
//! shared by every process on the same store). One more source of pace is
//! the server itself: when it states how many requests remain until its
//! window resets, and the store is in-process (so no other instance spends
//! the same window), the gate spends exactly that many without pacing and
//! then waits for the reset. A fixed window of 30 per 3 s is then used as
//! the server allows it (30 at once), where even pacing would need the
//! whole window for 30. On a shared store other instances spend the same
//! `remaining`, so the gate paces with the fleet's GCRA instead.
//!
//! Sending is [`send`], one function: the single place where a request
//! leaves the process.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ratekeeper_core::learn::Quota;
use ratekeeper_core::{
    Acquire, AsyncStore, Clock, Decision, EndpointKey, Instant, Learner, LearnerConfig, MonotonicClock, Nanos,
    Observation, ParseOptions, Profile, RateLimitInfo, UnixTime,
};
use tokio::sync::Notify;

/// The longest a request reserves ahead: past it, it asks again later
/// rather than holding a slot far in the future.
const MAX_RESERVATION: Nanos = Nanos::from_secs(30);

/// One request as read from the input.
#[derive(Debug, Clone)]
pub(crate) struct RequestSpec {
    pub(crate) method: reqwest::Method,
    pub(crate) url: reqwest::Url,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Vec<u8>>,
}

impl RequestSpec {
    /// Whether sending the request twice is harmless, so a failure after
    /// it may have reached the server can be retried.
    fn is_idempotent(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE")
            || self
                .headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("idempotency-key"))
    }
}

/// A response, reduced to what the gate and the results need.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Completion {
    pub(crate) status: Option<u16>,
    pub(crate) attempts: u32,
    pub(crate) error: Option<String>,
}

/// Sends one request: the only place a request leaves the process.
pub(crate) async fn send(client: &reqwest::Client, request: &RequestSpec) -> Result<Response, reqwest::Error> {
    let mut builder = client.request(request.method.clone(), request.url.clone());
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    let response = builder.send().await?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    // Read the body so the connection can be reused; its content is not
    // part of the results.
    let _ = response.bytes().await;
    Ok(Response { status, headers })
}

/// What was learned about one endpoint, for the summary and the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndpointReport {
    pub(crate) limit: u32,
    pub(crate) window_ms: u64,
    pub(crate) source: &'static str,
}

/// Counters over a run.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) responses_429: AtomicU64,
    pub(crate) retries: AtomicU64,
}

/// A window's worth of requests the server said it still accepts.
#[derive(Debug, Clone, Copy)]
struct ServerBudget {
    credit: u64,
    until: Instant,
}

#[derive(Debug)]
struct BucketLocal {
    learner: Learner,
    budget: Option<ServerBudget>,
    in_flight: u64,
    /// Bumped on every pause this process applies, so a request that
    /// reserved its slot before the pause asks again.
    pause_generation: u64,
    paused_until: Instant,
    last_adopted: Option<Instant>,
}

#[derive(Debug)]
struct Bucket {
    key: EndpointKey,
    local: Mutex<BucketLocal>,
    budget_ready: Notify,
}

impl Bucket {
    fn lock(&self) -> MutexGuard<'_, BucketLocal> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The gate: one per run, shared by its workers.
#[derive(Debug)]
pub(crate) struct Gate<S> {
    store: S,
    clock: MonotonicClock,
    config: LearnerConfig,
    trust_server_budget: bool,
    buckets: Mutex<HashMap<EndpointKey, Arc<Bucket>>>,
    pub(crate) counters: Counters,
}

impl<S> Gate<S>
where
    S: AsyncStore + Send + Sync,
    S::Error: Display,
{
    /// A gate over `store`; `in_process` says no other instance shares it.
    pub(crate) fn new(store: S, in_process: bool) -> Gate<S> {
        Gate {
            store,
            clock: MonotonicClock::new(),
            config: LearnerConfig::default(),
            trust_server_budget: in_process,
            buckets: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        }
    }

    fn bucket(&self, key: &EndpointKey) -> Arc<Bucket> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now();
        Arc::clone(buckets.entry(key.clone()).or_insert_with(|| {
            Arc::new(Bucket {
                key: key.clone(),
                local: Mutex::new(BucketLocal {
                    learner: Learner::new(self.config, now),
                    budget: None,
                    in_flight: 0,
                    pause_generation: 0,
                    paused_until: now,
                    last_adopted: None,
                }),
                budget_ready: Notify::new(),
            })
        }))
    }

    /// What every endpoint seen so far is believed to allow.
    pub(crate) fn endpoints(&self) -> Vec<(String, EndpointReport)> {
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut reports: Vec<_> = buckets
            .values()
            .map(|bucket| {
                let policy = bucket.lock().learner.policy();
                (
                    bucket.key.as_str().to_owned(),
                    EndpointReport {
                        limit: policy.limit(),
                        window_ms: policy.window().as_millis_floor(),
                        source: policy.source.as_str(),
                    },
                )
            })
            .collect();
        reports.sort_by(|a, b| a.0.cmp(&b.0));
        reports
    }

    /// Takes what the fleet learned about `bucket` (at most every 2 s).
    async fn adopt(&self, bucket: &Bucket) {
        let now = self.clock.now();
        let due = bucket
            .lock()
            .last_adopted
            .is_none_or(|at| now.saturating_duration_since(at) >= Nanos::from_secs(2));
        if !due {
            return;
        }
        bucket.lock().last_adopted = Some(now);
        if let Ok(Some(policy)) = self.store.policy(bucket.key.as_str()).await {
            bucket.lock().learner.adopt(policy, self.clock.now());
        }
    }

    /// Waits until `bucket` admits one request; counts it in flight.
    async fn admit(&self, bucket: &Bucket) -> Result<(), String> {
        self.adopt(bucket).await;
        loop {
            let now = self.clock.now();
            let (gcra, generation) = {
                let mut local = bucket.lock();
                let paused = local.paused_until > now;
                if let Some(budget) = local.budget.as_mut().filter(|b| self.trust_server_budget && now < b.until) {
                    if budget.credit > 0 && !paused {
                        budget.credit = budget.credit.saturating_sub(1);
                        local.in_flight = local.in_flight.saturating_add(1);
                        return Ok(());
                    }
                }
                (local.learner.gcra(now), local.pause_generation)
            };
            let request = Acquire::reserve(gcra, MAX_RESERVATION);
            let decision = self
                .store
                .acquire(bucket.key.as_str(), &request)
                .await
                .map_err(|e| format!("the store failed: {e}"))?;
            match decision {
                Decision::Allowed(allowed) => {
                    if !allowed.wait.is_zero() {
                        metrics::histogram!("ratekeeper_wait_seconds", "endpoint" => bucket.key.as_str().to_owned())
                            .record(allowed.wait.to_duration().as_secs_f64());
                        let woken = bucket.budget_ready.notified();
                        tokio::select! {
                            () = tokio::time::sleep(allowed.wait.to_duration()) => {}
                            // The server stated a fresh budget: spend it
                            // rather than the slot reserved under pacing.
                            () = woken => continue,
                        }
                    }
                    let mut local = bucket.lock();
                    if local.pause_generation != generation && local.paused_until > self.clock.now() {
                        // Paused while this request waited: queue behind it.
                        continue;
                    }
                    local.in_flight = local.in_flight.saturating_add(1);
                    return Ok(());
                }
                Decision::Denied(denied) => {
                    tokio::time::sleep(denied.retry_after.min(MAX_RESERVATION).to_duration()).await;
                }
                Decision::Impossible { cost, burst } => {
                    return Err(format!("a request costing {cost} can never fit a burst of {burst}"));
                }
            }
        }
    }

    /// Learns from a response to a request admitted by [`Gate::admit`].
    async fn learn(&self, bucket: &Bucket, response: &Response, round_trip: Nanos) {
        let host = bucket.key.as_str().split('/').next().unwrap_or_default();
        let options = ParseOptions::new()
            .with_now(system_now())
            .with_profile(Profile::for_host(host.as_bytes()));
        let info = RateLimitInfo::parse(
            Some(response.status),
            response.headers.iter().map(|(n, v)| (n.as_bytes(), v.as_slice())),
            &options,
        );
        let observation = Observation::from_info(&info).with_round_trip(round_trip);
        let now = self.clock.now();
        let (learned, budget_ready) = {
            let mut local = bucket.lock();
            local.in_flight = local.in_flight.saturating_sub(1);
            let learned = local.learner.observe(&observation, now);
            local.budget = if observation.is_throttled() {
                None
            } else {
                server_budget(observation.quotas(), local.in_flight, now).or(local.budget)
            };
            if let Some(span) = learned.pause {
                local.paused_until = local.paused_until.max(now.saturating_add(span));
                local.pause_generation = local.pause_generation.wrapping_add(1);
            }
            (learned, local.budget.is_some_and(|b| b.credit > 0))
        };
        if budget_ready && self.trust_server_budget {
            bucket.budget_ready.notify_waiters();
        }
        if let Some(policy) = learned.policy {
            metrics::gauge!("ratekeeper_learned_limit", "endpoint" => bucket.key.as_str().to_owned())
                .set(f64::from(policy.limit()));
            let _ = self.store.set_policy(bucket.key.as_str(), &policy).await;
        }
        if let Some(span) = learned.pause {
            let _ = self.store.pause(bucket.key.as_str(), span).await;
        }
    }

    fn release(&self, bucket: &Bucket) {
        let mut local = bucket.lock();
        local.in_flight = local.in_flight.saturating_sub(1);
    }

    /// Runs one request to its end: admitted, sent, retried on 429/503
    /// (and, when repeating it is harmless, on 5xx and transport errors)
    /// up to `max_attempts` sends.
    pub(crate) async fn execute(
        &self,
        client: &reqwest::Client,
        request: &RequestSpec,
        max_attempts: u32,
    ) -> Completion {
        let key = match EndpointKey::from_url(request.url.as_str()) {
            Ok(key) => key,
            Err(e) => {
                return Completion {
                    status: None,
                    attempts: 0,
                    error: Some(format!("no endpoint key for the URL: {e}")),
                };
            }
        };
        let bucket = self.bucket(&key);
        let mut attempts = 0_u32;
        loop {
            if let Err(error) = self.admit(&bucket).await {
                return Completion {
                    status: None,
                    attempts,
                    error: Some(error),
                };
            }
            attempts = attempts.saturating_add(1);
            let sent = self.clock.now();
            let last = attempts >= max_attempts;
            let result = send(client, request).await;
            let round_trip = self.clock.now().saturating_duration_since(sent);
            let endpoint = key.as_str().to_owned();
            match result {
                Ok(response) => {
                    metrics::counter!("ratekeeper_requests_total", "endpoint" => endpoint.clone(), "status" => response.status.to_string())
                        .increment(1);
                    self.learn(&bucket, &response, round_trip).await;
                    let status = response.status;
                    let throttled = status == 429 || status == 503;
                    if status == 429 {
                        self.counters.responses_429.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("ratekeeper_429_total", "endpoint" => endpoint.clone()).increment(1);
                    }
                    let retryable =
                        throttled || (matches!(status, 500 | 502 | 504 | 408) && request.is_idempotent());
                    if retryable && !last {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("ratekeeper_retries_total", "endpoint" => endpoint).increment(1);
                        if !throttled {
                            tokio::time::sleep(backoff(attempts)).await;
                        }
                        continue;
                    }
                    let error = (status >= 400).then(|| {
                        if retryable {
                            format!("HTTP {status} on each of {attempts} attempts")
                        } else {
                            format!("HTTP {status}")
                        }
                    });
                    return Completion {
                        status: Some(status),
                        attempts,
                        error,
                    };
                }
                Err(error) => {
                    self.release(&bucket);
                    // A connection that never opened cannot have reached
                    // the server; anything else may have.
                    let retryable = error.is_connect() || request.is_idempotent();
                    if retryable && !last {
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("ratekeeper_retries_total", "endpoint" => endpoint).increment(1);
                        tokio::time::sleep(backoff(attempts)).await;
                        continue;
                    }
                    return Completion {
                        status: None,
                        attempts,
                        error: Some(format!("request failed: {error}")),
                    };
                }
            }
        }
    }
}

/// The budget a response states: the tightest `remaining` among its
/// quotas, less the requests still in flight (sent before the server
/// counted them, perhaps), until the earliest stated reset.
fn server_budget(quotas: &[Quota], in_flight: u64, now: Instant) -> Option<ServerBudget> {
    quotas
        .iter()
        .filter_map(|quota| Some((quota.remaining?, quota.reset_after?)))
        .min_by_key(|&(remaining, _)| remaining)
        .map(|(remaining, reset_after)| ServerBudget {
            credit: remaining.saturating_sub(in_flight),
            until: now.saturating_add(reset_after),
        })
}

/// Backoff before retrying a server error or a transport failure:
/// 100 ms doubling per attempt, at most 5 s.
fn backoff(attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(6);
    Duration::from_millis(100_u64.saturating_mul(1 << exponent)).min(Duration::from_secs(5))
}

/// Wall-clock now, for reading absolute times in headers.
fn system_now() -> UnixTime {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    UnixTime::from_nanos(Nanos::from_duration(since).as_nanos())
}
