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

use ratekeeper_core::learn::StatedQuota;
use ratekeeper_core::{
    Acquire, AsyncStore, Clock, Decision, EndpointKey, Instant, Learner, LearnerConfig, MonotonicClock,
    Nanos, Observation, ParseOptions, Profile, RateLimitInfo, UnixTime,
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
        matches!(
            self.method.as_str(),
            "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
        ) || self
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
pub(crate) async fn send(
    client: &reqwest::Client,
    request: &RequestSpec,
) -> Result<Response, reqwest::Error> {
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

/// See [`Gate::in_process_step`].
#[derive(Debug, Clone, Copy)]
enum Step {
    Go,
    Wait(Instant),
    Pace { probe: bool },
}

#[derive(Debug)]
struct BucketLocal {
    /// The request finding out what a new window allows, by its admission
    /// number; `probe_reserving` while it waits for its slot.
    probe: Option<u64>,
    probe_reserving: bool,
    learner: Learner,
    budget: Option<ServerBudget>,
    /// Admission numbers of the requests sent and not yet answered.
    in_flight: std::collections::BTreeSet<u64>,
    /// Whether any response came back yet.
    answered: bool,
    paused_until: Instant,
    /// Admissions so far: each request's sequence number.
    admitted: u64,
    last_adopted: Option<Instant>,
}

#[derive(Debug)]
struct Bucket {
    key: EndpointKey,
    local: Mutex<BucketLocal>,
    budget_ready: Notify,
}

impl BucketLocal {
    fn enter(&mut self) -> u64 {
        self.admitted = self.admitted.saturating_add(1);
        self.in_flight.insert(self.admitted);
        self.admitted
    }
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
                    probe: None,
                    probe_reserving: false,
                    learner: Learner::new(self.config, now),
                    budget: None,
                    in_flight: std::collections::BTreeSet::new(),
                    answered: false,
                    paused_until: now,
                    admitted: 0,
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

    /// Waits until `bucket` admits one request; counts it in flight and
    /// returns its admission number.
    async fn admit(&self, bucket: &Bucket) -> Result<u64, String> {
        self.adopt(bucket).await;
        loop {
            let now = self.clock.now();
            let step = {
                let mut local = bucket.lock();
                match self.in_process_step(&mut local, now) {
                    Step::Go => return Ok(local.enter()),
                    Step::Wait(until) => Err(until),
                    Step::Pace { probe } => Ok((local.learner.gcra(now), probe)),
                }
            };
            let (gcra, probe) = match step {
                Ok(pace) => pace,
                Err(until) => {
                    let span = until.saturating_duration_since(now).min(MAX_RESERVATION);
                    let woken = bucket.budget_ready.notified();
                    tokio::select! {
                        () = tokio::time::sleep(span.to_duration()) => {}
                        () = woken => {}
                    }
                    continue;
                }
            };
            // A check, not a reservation: a waiter asks again when its
            // turn may have come, with the pace known then, so slots taken
            // under an old estimate never hold requests back.
            let decision = self
                .store
                .acquire(bucket.key.as_str(), &Acquire::check(gcra))
                .await
                .map_err(|e| format!("the store failed: {e}"));
            let admitted = {
                let mut local = bucket.lock();
                if probe {
                    local.probe_reserving = false;
                }
                match &decision {
                    Ok(Decision::Allowed(_)) => {
                        let seq = local.enter();
                        if probe {
                            local.probe = Some(seq);
                        }
                        Some(seq)
                    }
                    _ => None,
                }
            };
            if let Some(seq) = admitted {
                return Ok(seq);
            }
            match decision? {
                Decision::Allowed(_) => {}
                Decision::Denied(denied) => {
                    metrics::histogram!("ratekeeper_wait_seconds", "endpoint" => bucket.key.as_str().to_owned())
                        .record(denied.retry_after.to_duration().as_secs_f64());
                    let woken = bucket.budget_ready.notified();
                    tokio::select! {
                        () = tokio::time::sleep(denied.retry_after.min(MAX_RESERVATION).to_duration()) => {}
                        // The server stated a fresh budget.
                        () = woken => {}
                    }
                }
                Decision::Impossible { cost, burst } => {
                    return Err(format!(
                        "a request costing {cost} can never fit a burst of {burst}"
                    ));
                }
            }
        }
    }

    /// What a request does next, before asking the store: go on the
    /// server's budget, wait (for a pause, a reset or a probe's answer), or
    /// be paced by the store (as the probe of a new window, when the server
    /// states budgets).
    fn in_process_step(&self, local: &mut BucketLocal, now: Instant) -> Step {
        if local.paused_until > now {
            return Step::Wait(local.paused_until);
        }
        if !local.answered {
            // Nothing known yet: one request asks while the others wait
            // for what its answer says.
            if local.probe.is_some() || local.probe_reserving {
                return Step::Wait(now.saturating_add(Nanos::from_secs(1)));
            }
            local.probe_reserving = true;
            return Step::Pace { probe: true };
        }
        if !self.trust_server_budget {
            return Step::Pace { probe: false };
        }
        match local.budget {
            None => Step::Pace { probe: false },
            Some(budget) if now < budget.until => {
                if budget.credit > 0 {
                    local.budget = Some(ServerBudget {
                        credit: budget.credit.saturating_sub(1),
                        until: budget.until,
                    });
                    Step::Go
                } else {
                    Step::Wait(budget.until)
                }
            }
            // The stated window is over: one request finds out what the
            // next one allows while the others wait for its answer.
            Some(_) if local.probe.is_some() || local.probe_reserving => {
                Step::Wait(now.saturating_add(Nanos::from_secs(1)))
            }
            Some(_) => {
                local.probe_reserving = true;
                Step::Pace { probe: true }
            }
        }
    }

    /// Learns from a response to a request admitted by [`Gate::admit`].
    async fn learn(&self, bucket: &Bucket, seq: u64, response: &Response, round_trip: Nanos) {
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
            local.in_flight.remove(&seq);
            local.answered = true;
            let learned = local.learner.observe(&observation, now);
            if local.probe == Some(seq) {
                local.probe = None;
            }
            // Requests sent after this one may not have been counted in
            // what it states; those sent before are taken as counted, and
            // the budget only shrinks within a window, so a response that
            // overtook an earlier one costs nothing.
            let sent_after = u64::try_from(local.in_flight.range(seq..).count()).unwrap_or(u64::MAX);
            if let Some(stated) = server_budget(observation.quotas(), sent_after, now) {
                local.budget = Some(match local.budget {
                    // Within a window what is left only shrinks: responses
                    // overtake each other, and a late one states too much.
                    Some(budget) if now < budget.until => ServerBudget {
                        credit: budget.credit.min(stated.credit),
                        until: budget.until.min(stated.until),
                    },
                    _ => stated,
                });
            }
            if let Some(budget) = local.budget.as_mut().filter(|_| observation.is_throttled()) {
                budget.credit = 0;
            }
            if let Some(span) = learned.pause {
                local.paused_until = local.paused_until.max(now.saturating_add(span));
            }
            let paused_until = local.paused_until;
            if let (Some(budget), Some(_)) = (local.budget.as_mut(), learned.pause) {
                // The learner knows the window's boundary better than one
                // rounded `reset`: the next window starts when it ends.
                budget.until = budget.until.min(paused_until);
            }
            (learned, true)
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

    fn release(&self, bucket: &Bucket, seq: u64) {
        {
            let mut local = bucket.lock();
            local.in_flight.remove(&seq);
            if local.probe == Some(seq) {
                local.probe = None;
            }
        }
        bucket.budget_ready.notify_waiters();
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
            let seq = match self.admit(&bucket).await {
                Ok(seq) => seq,
                Err(error) => {
                    return Completion {
                        status: None,
                        attempts,
                        error: Some(error),
                    };
                }
            };
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
                    self.learn(&bucket, seq, &response, round_trip).await;
                    let status = response.status;
                    let throttled = status == 429 || status == 503;
                    if status == 429 {
                        self.counters.responses_429.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("ratekeeper_429_total", "endpoint" => endpoint.clone())
                            .increment(1);
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
                    self.release(&bucket, seq);
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
/// quotas, less `sent_after` requests the server may not have counted
/// yet, until the earliest stated reset.
fn server_budget(quotas: &[StatedQuota], sent_after: u64, now: Instant) -> Option<ServerBudget> {
    quotas
        .iter()
        .filter_map(|quota| Some((quota.remaining?, quota.reset_after?)))
        .min_by_key(|&(remaining, _)| remaining)
        .map(|(remaining, reset_after)| ServerBudget {
            credit: remaining.saturating_sub(sent_after),
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
