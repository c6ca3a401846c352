//! The [`Gate`]: the one path every call of an app takes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use ratekeeper_core::headers::{ParseOptions, Profile, RateLimitInfo, UnixTime};
use ratekeeper_core::{
    Acquire, AsyncStore, Breaker, BreakerSnapshot, BreakerState, Clock, Decision, EndpointKey, EndpointRule,
    EndpointRules, ErrorKind, Instant, LearnEvent, Learner, Method, Nanos, Observation, Outcome,
    PolicySource, RequestKind, RetryDecision, RetryState, SplitMix64,
};
use ratekeeper_memory::MemoryStore;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::budget::{Budgeting, Step};
use crate::config::{BreakerScope, CallSettings, Config, ConfigError, Settings};
use crate::error::Error;
use crate::telemetry;

/// A monotonic clock over `tokio::time::Instant`, so the gate's instants
/// and its sleeps agree, also under `tokio::time::pause`.
///
/// ```
/// use ratekeeper_core::Clock;
/// use ratekeeper_http::TokioClock;
///
/// let clock = TokioClock::new();
/// let a = clock.now();
/// assert!(clock.now() >= a);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose origin is now.
    pub fn new() -> TokioClock {
        TokioClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> TokioClock {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(Nanos::from_duration(self.origin.elapsed()).as_nanos())
    }
}

/// The tenant of a request, for APIs that limit per tenant (GoHighLevel
/// per location): put it in the request's extensions. It wins over the
/// configured `tenant_header`.
///
/// ```
/// use ratekeeper_http::Tenant;
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(Tenant::new("loc_123"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tenant(pub String);

impl Tenant {
    /// The tenant `name`.
    pub fn new(name: impl Into<String>) -> Tenant {
        Tenant(name.into())
    }
}

/// Put in a request's extensions, the caller vouches that the request is
/// safe to send twice (a `POST` the server deduplicates), so the gate
/// retries it like an idempotent one.
///
/// ```
/// use ratekeeper_http::RetrySafe;
///
/// let mut request = http::Request::post("https://api.example.com/items").body(()).unwrap();
/// request.extensions_mut().insert(RetrySafe);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RetrySafe;

/// What the gate knows of one endpoint, for reports (the CLI's summary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointReport {
    /// The bucket key: host, tenant and path template.
    pub key: String,
    /// The limit paced against: requests per `window`.
    pub limit: u32,
    /// The window of `limit`.
    pub window: Nanos,
    /// Where the limit came from (`default`, `observed`, `configured`,
    /// `header`).
    pub source: PolicySource,
    /// Requests sent (every attempt counts).
    pub requests: u64,
    /// Responses with status 429.
    pub responses_429: u64,
    /// Retries sent.
    pub retries: u64,
}

/// Counts over every endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GateTotals {
    /// Requests sent (every attempt counts).
    pub requests: u64,
    /// Responses with status 429.
    pub responses_429: u64,
    /// Retries sent.
    pub retries: u64,
    /// Calls refused or given up with a gate [`Error`].
    pub errors: u64,
    /// Time calls spent waiting for their bucket, in all.
    pub waited: Nanos,
}

/// A request let through and not yet answered: however its call ends
/// (answered, failed, or dropped mid-flight), it leaves the bucket's
/// count of requests in flight, and a probe's place is given up.
struct InFlight<'e> {
    endpoint: &'e Endpoint,
    seq: u64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        // After an answer this finds nothing left to release.
        lock(&self.endpoint.budgeting).release(self.seq);
        self.endpoint.answered.notify_waiters();
    }
}

/// A request waiting for the store's pace: dropped before it is let
/// through, it gives up its place (as the probe, if it was one).
struct Pacing<'e> {
    endpoint: &'e Endpoint,
    probe: bool,
    done: bool,
}

impl Drop for Pacing<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.endpoint.budgeting).gave_up_pacing(self.probe);
            self.endpoint.answered.notify_waiters();
        }
    }
}

/// A breaker permit held across the awaits of one attempt: an attempt
/// dropped before it reports (a timeout around the call, a client that went
/// away) gives its half-open probe slot back, rather than holding it until
/// the breaker counts the lost probe as a failure and opens again.
struct HeldPermit<'g> {
    breakers: &'g Mutex<HashMap<String, BreakerEntry>>,
    breaker_key: &'g str,
    permit: Option<ratekeeper_core::Permit>,
}

impl HeldPermit<'_> {
    /// The permit, to report the attempt's result with.
    fn take(mut self) -> Option<ratekeeper_core::Permit> {
        self.permit.take()
    }
}

impl Drop for HeldPermit<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take()
            && let Some(entry) = lock(self.breakers).get_mut(self.breaker_key)
        {
            entry.breaker.release(permit);
        }
    }
}

/// The bucket name a rule is tried with to see whether it matches.
const MATCH_PROBE: &str = "ratekeeper-rule-match";

/// Where a call goes: its bucket key, and the configured host and endpoint
/// rule whose settings apply.
#[derive(Debug)]
struct Route {
    key: String,
    host: Option<usize>,
    rule: Option<usize>,
}

/// One endpoint's state in this process.
#[derive(Debug)]
struct Endpoint {
    learner: Mutex<Learner>,
    /// The server's stated budget and the requests in flight.
    budgeting: Mutex<Budgeting>,
    /// Told when a response changes what waiting requests may do.
    answered: Notify,
    /// When the policy was last read from the store.
    refreshed_at: Mutex<Option<Instant>>,
    requests: AtomicU64,
    responses_429: AtomicU64,
    retries: AtomicU64,
}

/// A breaker and the state last reported in logs and metrics: the
/// breaker's own state moves from open to half-open by the clock alone, so
/// transitions are found by comparing.
#[derive(Debug)]
struct BreakerEntry {
    breaker: Breaker,
    reported: BreakerState,
}

impl BreakerEntry {
    /// The transition since the last report, if any.
    fn observe(&mut self, now: Instant) -> Option<(BreakerState, BreakerState)> {
        let state = self.breaker.snapshot(now).state;
        let before = core::mem::replace(&mut self.reported, state);
        (before != state).then_some((before, state))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent, so a panic in
    // another thread leaves nothing to repair.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a response offers the gate: its status and headers.
pub(crate) trait Answer {
    fn status(&self) -> u16;
    fn headers(&self) -> &HeaderMap;
}

/// What a transport error offers the gate: what became of the call.
pub(crate) trait TransportError {
    fn outcome(&self) -> Outcome;
    /// The failure in words, with its causes.
    fn describe(&self) -> String;
}

/// `error` and its chain of sources, `: `-separated, each said once (a
/// wrapper often repeats its source's words).
pub(crate) fn describe_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut words = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !words.contains(&said) {
            words.push_str(": ");
            words.push_str(&said);
        }
        source = cause.source();
    }
    words
}

/// A call's failure: the gate's own, or the inner client's, unchanged.
#[derive(Debug)]
pub(crate) enum Failure<E> {
    Gate(Error),
    Inner(E),
}

/// The facts of a request the gate decides on.
#[derive(Debug)]
pub(crate) struct CallFacts {
    pub(crate) url: String,
    pub(crate) method: Method,
    pub(crate) idempotency_key: bool,
    pub(crate) retry_safe: bool,
    pub(crate) tenant: Option<String>,
}

impl CallFacts {
    /// Facts from the request line, headers and extensions.
    pub(crate) fn new(
        settings: &Settings,
        method: &http::Method,
        url: String,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> CallFacts {
        let tenant = extensions
            .get::<Tenant>()
            .map(|tenant| tenant.0.clone())
            .or_else(|| {
                let name = settings.tenant_header.as_ref()?;
                headers.get(name)?.to_str().ok().map(str::to_owned)
            });
        CallFacts {
            url,
            method: Method::parse(method.as_str().as_bytes()),
            idempotency_key: settings
                .idempotency_key_header
                .as_ref()
                .is_some_and(|name| headers.contains_key(name)),
            retry_safe: extensions.get::<RetrySafe>().is_some(),
            tenant,
        }
    }
}

/// The gate every call of an app passes: circuit breaker, bucket wait per
/// endpoint key, send, learn from the response, pause and retry on
/// 429/503, breaker record. Share one `Gate` (in an `Arc`) between the
/// reqwest middleware and the tower layer, and every instance of the app
/// through a shared store.
///
/// `S` is the store of buckets, policies and pauses (in-process
/// [`MemoryStore`], or Redis for a fleet); `C` the monotonic clock the
/// breaker and the learners read (the store keeps its own).
///
/// ```
/// use std::sync::Arc;
/// use ratekeeper_http::{Config, Gate};
///
/// let gate = Arc::new(Gate::memory(&Config::default()).unwrap());
/// assert!(gate.is_enabled());
/// assert!(gate.endpoints().is_empty());
/// ```
#[derive(Debug)]
pub struct Gate<S, C = TokioClock> {
    store: S,
    clock: C,
    settings: Settings,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    breakers: Mutex<HashMap<String, BreakerEntry>>,
    errors: AtomicU64,
    waited_nanos: AtomicU64,
    seed: AtomicU64,
    /// The store is this process's alone: see [`Gate::with_private_store`].
    spend_stated: bool,
}

impl Gate<MemoryStore<TokioClock>, TokioClock> {
    /// A gate on the in-process store: the choice for one instance. The
    /// store is private, so a server's stated `remaining` is spent at once
    /// (see [`Gate::with_private_store`]).
    pub fn memory(config: &Config) -> Result<Self, ConfigError> {
        let clock = TokioClock::new();
        Ok(Gate::with_clock(MemoryStore::new(clock), clock, config)?.with_private_store(true))
    }
}

impl<S: AsyncStore> Gate<S, TokioClock> {
    /// A gate on `store`, with a [`TokioClock`].
    pub fn new(store: S, config: &Config) -> Result<Self, ConfigError> {
        Gate::with_clock(store, TokioClock::new(), config)
    }
}

impl<S: AsyncStore, C: Clock> Gate<S, C> {
    /// A gate on `store`, reading `clock` (it MUST be monotonic).
    pub fn with_clock(store: S, clock: C, config: &Config) -> Result<Self, ConfigError> {
        let settings = config.settings()?;
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x5eed, |since| since.as_nanos() as u64);
        Ok(Gate {
            store,
            clock,
            settings,
            endpoints: Mutex::new(HashMap::new()),
            breakers: Mutex::new(HashMap::new()),
            errors: AtomicU64::new(0),
            waited_nanos: AtomicU64::new(0),
            seed: AtomicU64::new(seed),
            spend_stated: false,
        })
    }

    /// Says whether the store is this process's alone (an in-process
    /// store, or a Redis database no other instance uses). With a private
    /// store, what a server states is left in its current window is spent
    /// at once instead of paced, and one request finds out what the next
    /// window allows while the others wait for its answer: a fixed window
    /// of 30 per 3 s then carries 30 requests in each window, where even
    /// pacing would need the whole window for 30. With a shared store
    /// (the default for [`Gate::new`]) other instances spend the same
    /// `remaining`, so calls are paced with the fleet's GCRA instead.
    ///
    /// ```
    /// use ratekeeper_http::{Config, Gate};
    /// use ratekeeper_memory::MemoryStore;
    ///
    /// let store = MemoryStore::new(ratekeeper_core::MonotonicClock::new());
    /// let gate = Gate::new(store, &Config::default()).unwrap().with_private_store(true);
    /// # drop(gate);
    /// ```
    pub fn with_private_store(mut self, private: bool) -> Self {
        self.spend_stated = private;
        lock(&self.endpoints).clear();
        self
    }

    /// Whether limiting is on at the top level; when off (`enabled =
    /// false`), every call passes straight through, but for hosts or
    /// endpoint rules that turn it back on.
    pub fn is_enabled(&self) -> bool {
        self.settings.base.enabled
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The bucket key of `url` within `tenant`, as the gate makes it (the
    /// configured endpoint rules first), or `None` for a URL it cannot key
    /// (such calls pass through unpaced).
    ///
    /// ```
    /// use ratekeeper_http::{Config, Gate};
    ///
    /// let gate = Gate::memory(&Config::default()).unwrap();
    /// let key = gate.endpoint_key("https://api.close.com/api/v1/lead/lead_123/?x=1", None);
    /// assert_eq!(key.as_deref(), Some("api.close.com/api/v1/lead/{id}/"));
    /// ```
    pub fn endpoint_key(&self, url: &str, tenant: Option<&str>) -> Option<String> {
        self.route(url, tenant).map(|route| route.key)
    }

    /// The key of `url` within `tenant`, and which configured host and
    /// endpoint rule it falls under.
    fn route(&self, url: &str, tenant: Option<&str>) -> Option<Route> {
        let rules: Vec<EndpointRule<'_>> = self
            .settings
            .endpoints
            .iter()
            .map(|rule| match &rule.bucket {
                Some(bucket) => EndpointRule::bucket(&rule.pattern, bucket),
                None => EndpointRule::template(&rule.pattern),
            })
            .collect();
        let key: Result<EndpointKey, _> =
            EndpointRules::new(&rules).key_for_tenant(url, tenant.unwrap_or(""));
        let key = key.ok()?.as_str().to_owned();
        let rule = if self
            .settings
            .endpoints
            .iter()
            .any(|rule| !rule.overrides.is_empty())
        {
            // The first rule that matches is the one the key was made by: a
            // rule matches when, alone and naming a bucket, it makes a
            // bucket key (`host@name`, which holds no slash).
            rules.iter().position(|rule| {
                let alone = [EndpointRule::bucket(rule.pattern(), MATCH_PROBE)];
                EndpointRules::new(&alone)
                    .key(url)
                    .is_ok_and(|key| !key.as_str().contains('/') && key.as_str().ends_with(MATCH_PROBE))
            })
        } else {
            None
        };
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|url| self.settings.host_index(url.host_str()?, url.port()));
        Some(Route { key, host, rule })
    }

    /// What is known of every endpoint called so far, sorted by key.
    pub fn endpoints(&self) -> Vec<EndpointReport> {
        let endpoints: Vec<(String, Arc<Endpoint>)> = lock(&self.endpoints)
            .iter()
            .map(|(key, endpoint)| (key.clone(), Arc::clone(endpoint)))
            .collect();
        let mut reports: Vec<EndpointReport> = endpoints
            .into_iter()
            .map(|(key, endpoint)| {
                let policy = lock(&endpoint.learner).policy();
                EndpointReport {
                    key,
                    limit: policy.limit(),
                    window: policy.window(),
                    source: policy.source,
                    requests: endpoint.requests.load(Ordering::Relaxed),
                    responses_429: endpoint.responses_429.load(Ordering::Relaxed),
                    retries: endpoint.retries.load(Ordering::Relaxed),
                }
            })
            .collect();
        reports.sort_by(|a, b| a.key.cmp(&b.key));
        reports
    }

    /// Counts over every endpoint.
    pub fn totals(&self) -> GateTotals {
        let mut totals = GateTotals {
            errors: self.errors.load(Ordering::Relaxed),
            waited: Nanos::from_nanos(self.waited_nanos.load(Ordering::Relaxed)),
            ..GateTotals::default()
        };
        for endpoint in lock(&self.endpoints).values() {
            totals.requests += endpoint.requests.load(Ordering::Relaxed);
            totals.responses_429 += endpoint.responses_429.load(Ordering::Relaxed);
            totals.retries += endpoint.retries.load(Ordering::Relaxed);
        }
        totals
    }

    /// The breakers' states, by breaker key (endpoint key, or host and
    /// tenant with `breaker_scope = "host"`), sorted.
    pub fn breakers(&self) -> Vec<(String, BreakerSnapshot)> {
        let now = self.clock.now();
        let mut breakers: Vec<(String, BreakerSnapshot)> = lock(&self.breakers)
            .iter()
            .map(|(key, entry)| (key.clone(), entry.breaker.snapshot(now)))
            .collect();
        breakers.sort_by(|a, b| a.0.cmp(&b.0));
        breakers
    }

    /// Closes every breaker: for an operator who knows the API is back.
    pub fn reset_breakers(&self) {
        lock(&self.breakers)
            .values_mut()
            .for_each(|entry| entry.breaker.reset());
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    fn endpoint(&self, key: &str, call: &CallSettings) -> Arc<Endpoint> {
        let mut endpoints = lock(&self.endpoints);
        if let Some(endpoint) = endpoints.get(key) {
            return Arc::clone(endpoint);
        }
        let endpoint = Arc::new(Endpoint {
            learner: Mutex::new(Learner::new(call.learner, self.clock.now())),
            budgeting: Mutex::new(Budgeting::new(self.spend_stated, self.clock.now())),
            answered: Notify::new(),
            refreshed_at: Mutex::new(None),
            requests: AtomicU64::new(0),
            responses_429: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        });
        endpoints.insert(key.to_owned(), Arc::clone(&endpoint));
        endpoint
    }

    fn breaker_key(&self, key: &str) -> String {
        match self.settings.breaker_scope {
            BreakerScope::Endpoint => key.to_owned(),
            // The key is `host[#tenant]/path` or `host[#tenant]@bucket`:
            // the host part is up to the first slash or `@`.
            BreakerScope::Host => key.split(['/', '@']).next().unwrap_or(key).to_owned(),
        }
    }

    /// Runs one call through the gate. `send` sends one attempt; `clone`
    /// copies the request for a retry (`None`: it cannot be sent twice).
    pub(crate) async fn call<Req, Resp, E, Fut>(
        &self,
        facts: CallFacts,
        request: Req,
        clone: impl Fn(&Req) -> Option<Req>,
        mut send: impl FnMut(Req) -> Fut,
    ) -> Result<Resp, Failure<E>>
    where
        Fut: Future<Output = Result<Resp, E>>,
        Resp: Answer,
        E: TransportError,
    {
        if !self.settings.any_enabled() {
            return send(request).await.map_err(Failure::Inner);
        }
        let Some(Route { key, host, rule }) = self.route(&facts.url, facts.tenant.as_deref()) else {
            tracing::debug!(url = %facts.url, "no endpoint key: sent unpaced");
            return send(request).await.map_err(Failure::Inner);
        };
        let call = *self.settings.call(host, rule);
        if !call.enabled {
            return send(request).await.map_err(Failure::Inner);
        }
        let span = tracing::info_span!(
            "ratekeeper.call",
            endpoint = %key,
            method = ?facts.method,
            attempts = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        let result = self
            .call_keyed(&key, &call, facts, request, clone, &mut send)
            .instrument(span)
            .await;
        if let Err(Failure::Gate(error)) = &result {
            self.errors.fetch_add(1, Ordering::Relaxed);
            telemetry::error(&key, error.code());
            tracing::warn!(endpoint = %key, code = error.code(), attempts = error.attempts(), "call failed");
        }
        result
    }

    async fn call_keyed<Req, Resp, E, Fut>(
        &self,
        key: &str,
        call: &CallSettings,
        facts: CallFacts,
        request: Req,
        clone: impl Fn(&Req) -> Option<Req>,
        send: &mut impl FnMut(Req) -> Fut,
    ) -> Result<Resp, Failure<E>>
    where
        Fut: Future<Output = Result<Resp, E>>,
        Resp: Answer,
        E: TransportError,
    {
        let endpoint = self.endpoint(key, call);
        let breaker_key = self.breaker_key(key);
        let host = facts
            .url
            .split("://")
            .nth(1)
            .unwrap_or("")
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("");
        let profile = Profile::for_host(host.as_bytes());
        let mut kind = RequestKind::new(facts.method);
        if facts.idempotency_key || facts.retry_safe {
            kind = kind.with_idempotency_key();
        }
        let mut retry = RetryState::new(call.retry, kind, self.clock.now());
        let mut rng = SplitMix64::new(self.seed.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed));
        let mut waited = Nanos::ZERO;
        let mut request = Some(request);
        let mut attempts = 0u32;
        loop {
            let Some(current) = request.take() else {
                // Unreachable: a retry is only scheduled with a copy at hand.
                return Err(Failure::Gate(
                    Error::new(ErrorKind::MaxRetriesExceeded, key).with_attempts(attempts),
                ));
            };
            self.refresh_policy(key, &endpoint).await;
            let permit = HeldPermit {
                breakers: &self.breakers,
                breaker_key: &breaker_key,
                permit: Some(
                    self.permit(&breaker_key, key, call)
                        .map_err(|error| Failure::Gate(error.with_attempts(attempts)))?,
                ),
            };
            // Refused by the bucket: the permit goes back as it drops.
            let in_flight = match self.admit(key, &endpoint, call.max_wait, &mut waited).await {
                Ok(seq) => InFlight {
                    endpoint: &endpoint,
                    seq,
                },
                Err(error) => return Err(Failure::Gate(error.with_attempts(attempts))),
            };
            let copy = clone(&current);
            attempts = attempts.saturating_add(1);
            tracing::Span::current().record("attempts", attempts);
            let sent_at = self.clock.now();
            let result = send(current).await;
            let now = self.clock.now();
            let round_trip = now.saturating_duration_since(sent_at);
            endpoint.requests.fetch_add(1, Ordering::Relaxed);
            let (outcome, retry_after) = match &result {
                Ok(response) => {
                    let status = response.status();
                    tracing::Span::current().record("status", status);
                    telemetry::request(key, status);
                    if status == 429 {
                        endpoint.responses_429.fetch_add(1, Ordering::Relaxed);
                        telemetry::throttled(key);
                    }
                    let retry_after = self
                        .learn(
                            key,
                            &endpoint,
                            in_flight.seq,
                            profile,
                            status,
                            response.headers(),
                            round_trip,
                            now,
                        )
                        .await;
                    (Outcome::Response(status), retry_after)
                }
                Err(error) => {
                    telemetry::request_failed(key);
                    (error.outcome(), None)
                }
            };
            // Answered or failed: no longer in flight, whatever comes next.
            drop(in_flight);
            if let Some(permit) = permit.take() {
                self.record(&breaker_key, permit, outcome, now);
            }
            match retry.decide(outcome, retry_after, now, &mut rng) {
                RetryDecision::Done => return result.map_err(Failure::Inner),
                RetryDecision::Retry {
                    wait, retry: number, ..
                } => {
                    let Some(copy) = copy else {
                        tracing::debug!(endpoint = %key, "the request cannot be copied: not retried");
                        return result.map_err(Failure::Inner);
                    };
                    endpoint.retries.fetch_add(1, Ordering::Relaxed);
                    telemetry::retry(key);
                    tracing::info!(
                        endpoint = %key,
                        retry = number,
                        outcome = ?outcome,
                        wait_ms = wait.as_millis_ceil(),
                        "retrying"
                    );
                    tokio::time::sleep(wait.to_duration()).await;
                    request = Some(copy);
                }
                RetryDecision::GiveUp(give_up) => {
                    return match give_up.error() {
                        None => result.map_err(Failure::Inner),
                        Some(error) => {
                            let status = match outcome {
                                Outcome::Response(status) => Some(status),
                                _ => None,
                            };
                            let mut error = Error::from_core(error, key).with_status(status);
                            // No response to show: the last transport
                            // failure says what went wrong.
                            if let Err(transport) = &result {
                                error = error.with_detail(transport.describe());
                            }
                            Err(Failure::Gate(error))
                        }
                    };
                }
            }
        }
    }

    /// Reads the fleet's policy for `key` on first use and every
    /// `policy_refresh` after.
    async fn refresh_policy(&self, key: &str, endpoint: &Endpoint) {
        let now = self.clock.now();
        let due = {
            let mut refreshed_at = lock(&endpoint.refreshed_at);
            let due = refreshed_at
                .is_none_or(|at| now.saturating_duration_since(at) >= self.settings.policy_refresh);
            if due {
                *refreshed_at = Some(now);
            }
            due
        };
        if !due {
            return;
        }
        match self.store.policy(key).await {
            Ok(Some(policy)) => {
                let (before, after) = {
                    let mut learner = lock(&endpoint.learner);
                    let before = learner.policy();
                    learner.adopt(policy, now);
                    (before, learner.policy())
                };
                if (before.limit(), before.window(), before.source)
                    != (after.limit(), after.window(), after.source)
                {
                    tracing::info!(
                        endpoint = %key,
                        limit = after.limit(),
                        window_ms = after.window().as_millis_floor(),
                        source = after.source.as_str(),
                        "limit adopted from the store"
                    );
                    telemetry::policy(key, &after);
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(endpoint = %key, error = ?error, "store: reading the policy failed"),
        }
    }

    fn permit(
        &self,
        breaker_key: &str,
        key: &str,
        call: &CallSettings,
    ) -> Result<ratekeeper_core::Permit, Error> {
        let now = self.clock.now();
        let mut breakers = lock(&self.breakers);
        let entry = match breakers.get_mut(breaker_key) {
            Some(entry) => entry,
            None => {
                // Validated in `Config::settings`, so this always builds.
                let Ok(breaker) = Breaker::new(call.breaker) else {
                    return Err(Error::new(ErrorKind::CircuitOpen, key));
                };
                let entry = BreakerEntry {
                    breaker,
                    reported: BreakerState::Closed,
                };
                breakers.entry(breaker_key.to_owned()).or_insert(entry)
            }
        };
        let result = entry.breaker.permit(now);
        let transition = entry.observe(now);
        drop(breakers);
        if let Some((before, after)) = transition {
            breaker_transition(breaker_key, before, after);
        }
        result.map_err(|rejected| Error::from_core(rejected.error(), key))
    }

    fn record(&self, breaker_key: &str, permit: ratekeeper_core::Permit, outcome: Outcome, now: Instant) {
        let mut breakers = lock(&self.breakers);
        let Some(entry) = breakers.get_mut(breaker_key) else {
            return;
        };
        match outcome.for_breaker() {
            Some(result) => {
                entry.breaker.record(permit, result, now);
            }
            None => entry.breaker.release(permit),
        }
        let transition = entry.observe(now);
        drop(breakers);
        if let Some((before, after)) = transition {
            breaker_transition(breaker_key, before, after);
        }
    }

    /// Waits until the bucket admits one request: on the server's stated
    /// budget (with a private store), or paced by the store. Returns the
    /// request's admission number.
    async fn admit(
        &self,
        key: &str,
        endpoint: &Endpoint,
        max_wait: Nanos,
        waited: &mut Nanos,
    ) -> Result<u64, Error> {
        // Bounded: every round goes, or waits a positive span counted
        // against `max_wait`.
        loop {
            // Registered before the state is read, so an answer that comes
            // in between still wakes this request.
            let answered = endpoint.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let now = self.clock.now();
            let step = lock(&endpoint.budgeting).step(now);
            match step {
                Step::Go(seq) => return Ok(seq),
                Step::Pace { probe } => {
                    // Should this call be dropped while it waits, the
                    // probe's place is given up, so others do not wait on
                    // a probe that never comes.
                    let mut pacing = Pacing {
                        endpoint,
                        probe,
                        done: false,
                    };
                    let paced = self.wait_turn(key, endpoint, max_wait, waited).await;
                    pacing.done = true;
                    let seq = match paced {
                        Ok(()) => lock(&endpoint.budgeting).paced(probe, self.clock.now()),
                        Err(_) => {
                            lock(&endpoint.budgeting).gave_up_pacing(probe);
                            None
                        }
                    };
                    if probe {
                        endpoint.answered.notify_waiters();
                    }
                    paced?;
                    match seq {
                        Some(seq) => return Ok(seq),
                        // A window began, or a pause, while it waited: the
                        // next round waits for it.
                        None => continue,
                    }
                }
                Step::Wait(until) | Step::AwaitProbe(until) => {
                    let span = until.saturating_duration_since(now);
                    let left = max_wait.saturating_sub(*waited);
                    // A probe may answer at any moment; a pause or a reset
                    // will not come sooner than it says.
                    let hopeless = match step {
                        Step::Wait(_) => span > left,
                        _ => left.is_zero(),
                    };
                    if hopeless {
                        return Err(Error::new(ErrorKind::WaitTooLong, key).with_retry_after(span));
                    }
                    tokio::select! {
                        () = tokio::time::sleep(span.min(left).to_duration()) => {}
                        () = answered => {}
                    }
                    let slept = self.clock.now().saturating_duration_since(now);
                    *waited = waited.saturating_add(slept);
                    self.waited_nanos.fetch_add(slept.as_nanos(), Ordering::Relaxed);
                    telemetry::waited(key, slept);
                }
            }
        }
    }

    /// Waits until the store admits one request, as the simulator proved:
    /// reserve no further ahead than two intervals, and re-check for a
    /// pause before sending.
    async fn wait_turn(
        &self,
        key: &str,
        endpoint: &Endpoint,
        max_wait: Nanos,
        waited: &mut Nanos,
    ) -> Result<(), Error> {
        // Bounded: every round either returns or sleeps a positive span
        // counted against `max_wait`, and a zero span ends the wait.
        loop {
            let now = self.clock.now();
            let (gcra, known) = {
                let learner = lock(&endpoint.learner);
                (
                    learner.gcra(now),
                    learner.policy().source != PolicySource::Default,
                )
            };
            let left = max_wait.saturating_sub(*waited);
            // Under the default guess nothing is reserved ahead: the first
            // response usually states the real limit, and slots queued at
            // the guessed pace would hold every later call behind them.
            let ahead = if known {
                (gcra.emission_interval() * 2).min(left)
            } else {
                Nanos::ZERO
            };
            let decision = self
                .store
                .acquire(key, &Acquire::reserve(gcra, ahead))
                .await
                .map_err(|error| store_error(key, &error))?;
            let wait = match decision {
                Decision::Allowed(allowed) => {
                    self.sleep(key, allowed.wait, waited).await;
                    let probe = Acquire::check(lock(&endpoint.learner).gcra(self.clock.now())).with_cost(0);
                    match self
                        .store
                        .acquire(key, &probe)
                        .await
                        .map_err(|error| store_error(key, &error))?
                    {
                        Decision::Denied(denied) => denied.retry_after,
                        _ => return Ok(()),
                    }
                }
                Decision::Denied(denied) => denied.retry_after,
                // A cost of one never exceeds a burst of one or more.
                Decision::Impossible { .. } => return Ok(()),
            };
            if waited.saturating_add(wait) > max_wait {
                return Err(Error::new(ErrorKind::WaitTooLong, key).with_retry_after(wait));
            }
            if wait.is_zero() {
                return Ok(());
            }
            self.sleep(key, wait, waited).await;
        }
    }

    async fn sleep(&self, key: &str, wait: Nanos, waited: &mut Nanos) {
        if wait.is_zero() {
            return;
        }
        *waited = waited.saturating_add(wait);
        self.waited_nanos.fetch_add(wait.as_nanos(), Ordering::Relaxed);
        telemetry::waited(key, wait);
        tokio::time::sleep(wait.to_duration()).await;
    }

    /// Learns from one response; returns the `Retry-After` to honour.
    #[allow(clippy::too_many_arguments)]
    async fn learn(
        &self,
        key: &str,
        endpoint: &Endpoint,
        seq: u64,
        profile: Profile,
        status: u16,
        headers: &HeaderMap,
        round_trip: Nanos,
        now: Instant,
    ) -> Option<Nanos> {
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(UnixTime::from_secs(0), |since| {
                UnixTime::from_nanos(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
            });
        let options = ParseOptions::new().with_now(unix_now).with_profile(profile);
        let pairs = headers
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()));
        let info = RateLimitInfo::parse(Some(status), pairs, &options);
        let observation = Observation::from_info(&info).with_round_trip(round_trip);
        let (learned, policy) = {
            let mut learner = lock(&endpoint.learner);
            let learned = learner.observe(&observation, now);
            (learned, learner.policy())
        };
        lock(&endpoint.budgeting).answered(
            seq,
            observation.quotas(),
            observation.is_throttled(),
            learned.pause,
            now,
        );
        endpoint.answered.notify_waiters();
        match learned.event {
            LearnEvent::Discovered | LearnEvent::Changed | LearnEvent::Decreased | LearnEvent::Probed => {
                tracing::info!(
                    endpoint = %key,
                    event = ?learned.event,
                    limit = policy.limit(),
                    window_ms = policy.window().as_millis_floor(),
                    source = policy.source.as_str(),
                    format = info.format().map(|format| format.as_str()),
                    "limit learned"
                );
                telemetry::policy(key, &policy);
            }
            LearnEvent::Unchanged | LearnEvent::Exhausted | LearnEvent::Throttled => {}
        }
        if let Some(pause) = learned.pause {
            tracing::info!(endpoint = %key, status, event = ?learned.event, pause_ms = pause.as_millis_ceil(), "bucket paused");
            telemetry::paused(key, pause);
            if let Err(error) = self.store.pause(key, pause).await {
                tracing::warn!(endpoint = %key, error = ?error, "store: pausing failed");
            }
        }
        if let Some(policy) = learned.policy
            && let Err(error) = self.store.set_policy(key, &policy).await
        {
            tracing::warn!(endpoint = %key, error = ?error, "store: saving the policy failed");
        }
        // Honoured on a refusal; on a success it is advice, not a wait.
        info.retry_after()
            .filter(|_| observation.is_throttled() || info.retry_after_applies())
    }
}

fn store_error(key: &str, error: &impl core::fmt::Debug) -> Error {
    tracing::warn!(endpoint = %key, error = ?error, "store failed");
    Error::new(ErrorKind::StoreUnavailable, key).with_detail(format!("{error:?}"))
}

fn breaker_transition(breaker_key: &str, before: BreakerState, after: BreakerState) {
    tracing::warn!(breaker = %breaker_key, from = before.as_str(), to = after.as_str(), "circuit breaker changed state");
    telemetry::breaker(breaker_key, after);
}
