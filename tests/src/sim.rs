//! A deterministic simulator: clients that pace with ratekeeper against
//! upstream models that enforce limits the way real servers do, on one
//! manual clock. Nothing sleeps; a simulated day runs in about a second.
//!
//! Each client has a number of request slots (its concurrency). A free slot
//! asks the store for a reservation with the GCRA its learner gives, sends
//! when the reservation is due (after checking the bucket is not paused),
//! and the response arrives after a network latency; the learner reads it,
//! and any pause or new policy goes to the store, where every client of the
//! bucket sees it. Demand is unlimited, so what the clients achieve is the
//! most the limiter lets through.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use ratekeeper_core::headers::{ParseOptions, RateLimitInfo};
use ratekeeper_core::learn::{Learner, LearnerConfig, Observation};
use ratekeeper_core::{Acquire, Clock, Decision, Instant, ManualClock, Nanos, Store};
use ratekeeper_memory::MemoryStore;

/// One simulated response: a status and the header lines a real server of
/// that kind sends. The client reads them with ratekeeper's header parser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// Header lines, name and value.
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
        }
    }

    fn header(mut self, name: &'static str, value: impl ToString) -> Response {
        self.headers.push((name, value.to_string()));
        self
    }

    /// What the client learns from it, through the header parser.
    pub fn observe(&self) -> Observation {
        let pairs = self
            .headers
            .iter()
            .map(|(name, value)| (name.as_bytes(), value.as_bytes()));
        Observation::from_info(&RateLimitInfo::parse(
            Some(self.status),
            pairs,
            &ParseOptions::new(),
        ))
    }
}

/// An upstream API's rate limit, as the server enforces and reports it.
pub trait Upstream {
    /// Decides a request arriving at `now` and answers it.
    fn handle(&mut self, now: Instant) -> Response;
    /// The sustained limit that binds: `limit` requests per `window`.
    fn binding_limit(&self) -> (u64, Nanos);
}

/// How a fixed-window server states its quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Headers {
    /// Nothing at all.
    None,
    /// Close's `ratelimit: limit=16; remaining=14; reset=1`: the reset in
    /// whole seconds rounded up, no window.
    LimitRemainingReset,
    /// The IETF draft-08 pair, `RateLimit-Policy: "default";q=30;w=3` and
    /// `RateLimit: "default";r=29;t=3`: the window stated, the reset in
    /// seconds rounded up.
    IetfDraft,
}

/// A fixed window: `limit` requests per `window`, counted from multiples of
/// the window (Close, Instantly, most API gateways).
#[derive(Debug)]
pub struct FixedWindow {
    limit: u64,
    window: Nanos,
    headers: Headers,
    outside: u64,
    current: Option<u64>,
    used: u64,
}

impl FixedWindow {
    /// A fixed window stating its quota as `headers` says.
    pub fn new(limit: u64, window: Nanos, headers: Headers) -> FixedWindow {
        FixedWindow {
            limit,
            window,
            headers,
            outside: 0,
            current: None,
            used: 0,
        }
    }

    /// The same server, with `outside` requests of each window spent at its
    /// start by callers that do not use ratekeeper.
    pub fn with_outside_use(mut self, outside: u64) -> FixedWindow {
        self.outside = outside.min(self.limit);
        self
    }
}

impl Upstream for FixedWindow {
    fn handle(&mut self, now: Instant) -> Response {
        let index = now.as_nanos() / self.window.as_nanos();
        if self.current != Some(index) {
            self.current = Some(index);
            self.used = self.outside;
        }
        let allowed = self.used < self.limit;
        if allowed {
            self.used += 1;
        }
        let window_end = Instant::from_nanos((index + 1) * self.window.as_nanos());
        let reset = window_end.saturating_duration_since(now).as_secs_ceil();
        let remaining = self.limit - self.used;
        let response = Response::new(if allowed { 200 } else { 429 });
        match self.headers {
            Headers::None => response,
            Headers::LimitRemainingReset => response.header(
                "ratelimit",
                format!("limit={}; remaining={remaining}; reset={reset}", self.limit),
            ),
            Headers::IetfDraft => response
                .header(
                    "RateLimit-Policy",
                    format!("\"default\";q={};w={}", self.limit, self.window.as_secs_ceil()),
                )
                .header("RateLimit", format!("\"default\";r={remaining};t={reset}")),
        }
    }

    fn binding_limit(&self) -> (u64, Nanos) {
        (self.limit - self.outside, self.window)
    }
}

/// A sliding log: at most `limit` requests in any `window`, with
/// `X-RateLimit-Limit/-Remaining/-Reset` (reset: until the oldest counted
/// request leaves the window, whole seconds rounded up).
#[derive(Debug)]
pub struct SlidingWindow {
    limit: u64,
    window: Nanos,
    log: std::collections::VecDeque<Instant>,
}

impl SlidingWindow {
    /// `limit` requests in any `window`.
    pub fn new(limit: u64, window: Nanos) -> SlidingWindow {
        SlidingWindow {
            limit,
            window,
            log: Default::default(),
        }
    }
}

impl Upstream for SlidingWindow {
    fn handle(&mut self, now: Instant) -> Response {
        while self
            .log
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= self.window)
        {
            self.log.pop_front();
        }
        let allowed = (self.log.len() as u64) < self.limit;
        if allowed {
            self.log.push_back(now);
        }
        let reset = self.log.front().map_or(Nanos::ZERO, |&oldest| {
            (oldest + self.window).saturating_duration_since(now)
        });
        Response::new(if allowed { 200 } else { 429 })
            .header("X-RateLimit-Limit", self.limit)
            .header("X-RateLimit-Remaining", self.limit - self.log.len() as u64)
            .header("X-RateLimit-Reset", reset.as_secs_ceil())
    }

    fn binding_limit(&self) -> (u64, Nanos) {
        (self.limit, self.window)
    }
}

/// nginx `limit_req` (a leaky bucket, `rate` per second, `burst` extra),
/// which sends no rate-limit headers and refuses with 429 (as set by
/// `limit_req_status 429`). Like nginx, it counts in milli-requests.
#[derive(Debug)]
pub struct LeakyBucket {
    rate_per_sec: u64,
    burst: u64,
    excess_milli: u64,
    last: Option<Instant>,
}

impl LeakyBucket {
    /// `rate_per_sec` requests per second with `burst` queued extra.
    pub fn new(rate_per_sec: u64, burst: u64) -> LeakyBucket {
        LeakyBucket {
            rate_per_sec,
            burst,
            excess_milli: 0,
            last: None,
        }
    }
}

impl Upstream for LeakyBucket {
    fn handle(&mut self, now: Instant) -> Response {
        let elapsed_ms = self.last.map_or(u64::MAX, |last| {
            now.saturating_duration_since(last).as_millis_floor()
        });
        let drained = self.rate_per_sec.saturating_mul(elapsed_ms);
        // nginx: excess = excess − rate·ms + 1000, clamped at zero.
        let excess = self.excess_milli.saturating_add(1000).saturating_sub(drained);
        let excess = if self.last.is_none() { 0 } else { excess };
        if excess > self.burst * 1000 {
            return Response::new(429);
        }
        self.excess_milli = excess;
        self.last = Some(now);
        Response::new(200)
    }

    fn binding_limit(&self) -> (u64, Nanos) {
        (self.rate_per_sec, Nanos::from_secs(1))
    }
}

/// GoHighLevel: a burst limit of 100 per 10 s and a daily limit of 200,000,
/// per location, reported as `X-RateLimit-Max`, `-Remaining`,
/// `-Interval-Milliseconds`, `-Limit-Daily` and `-Daily-Remaining` (no
/// reset header).
#[derive(Debug, Default)]
pub struct GoHighLevel {
    interval: u64,
    interval_used: u64,
    day: u64,
    day_used: u64,
}

impl GoHighLevel {
    const BURST: u64 = 100;
    const INTERVAL: Nanos = Nanos::from_secs(10);
    const DAILY: u64 = 200_000;
    const DAY: Nanos = Nanos::from_secs(86_400);

    /// The documented limits, nothing used yet.
    pub fn new() -> GoHighLevel {
        GoHighLevel::default()
    }
}

impl Upstream for GoHighLevel {
    fn handle(&mut self, now: Instant) -> Response {
        let interval = now.as_nanos() / Self::INTERVAL.as_nanos();
        if interval != self.interval {
            (self.interval, self.interval_used) = (interval, 0);
        }
        let day = now.as_nanos() / Self::DAY.as_nanos();
        if day != self.day {
            (self.day, self.day_used) = (day, 0);
        }
        // A request counts against both limits, and only when both allow it.
        let allowed = self.interval_used < Self::BURST && self.day_used < Self::DAILY;
        if allowed {
            self.interval_used += 1;
            self.day_used += 1;
        }
        Response::new(if allowed { 200 } else { 429 })
            .header("X-RateLimit-Max", Self::BURST)
            .header("X-RateLimit-Remaining", Self::BURST - self.interval_used)
            .header(
                "X-RateLimit-Interval-Milliseconds",
                Self::INTERVAL.as_millis_floor(),
            )
            .header("X-RateLimit-Limit-Daily", Self::DAILY)
            .header("X-RateLimit-Daily-Remaining", Self::DAILY - self.day_used)
    }

    fn binding_limit(&self) -> (u64, Nanos) {
        (Self::DAILY, Self::DAY)
    }
}

/// A simulated run's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Clients sharing the bucket through one store.
    pub clients: usize,
    /// Requests each client has in flight at most.
    pub concurrency: usize,
    /// Simulated time.
    pub duration: Nanos,
    /// One-way network latency, before jitter.
    pub latency: Nanos,
    /// Up to this much extra latency per response, drawn from a seeded
    /// generator.
    pub jitter: Nanos,
    /// The generator's seed.
    pub seed: u64,
}

/// What a run achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Report {
    /// Requests the server accepted.
    pub succeeded: u64,
    /// Requests the server refused with 429.
    pub throttled: u64,
    /// Requests accepted after the first response had arrived.
    pub throttled_after_first_response: u64,
    /// Accepted requests as a share of what the binding limit allows over
    /// the run.
    pub goodput: f64,
    /// Refused requests as a share of all requests sent.
    pub throttled_share: f64,
    /// The most requests sent in any window of the binding limit's length
    /// (a sliding window, so stricter than any fixed one).
    pub max_sent_in_window: u64,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A client's slot is free to start a request.
    Ready { client: usize },
    /// A reserved request is due to be sent.
    Send { client: usize },
    /// A response reaches its client.
    Arrive {
        client: usize,
        status: u16,
        observation: usize,
    },
}

/// Runs `upstream` against `run.clients` clients that pace with ratekeeper.
pub fn simulate(upstream: &mut dyn Upstream, config: LearnerConfig, run: Run) -> Report {
    const KEY: &str = "api.example.com/items";
    let clock = ManualClock::new();
    let store = MemoryStore::new(&clock);
    let mut learners: Vec<Learner> = (0..run.clients)
        .map(|_| Learner::new(config, clock.now()))
        .collect();
    let mut queue = BinaryHeap::new();
    let mut sequence = 0u64;
    let mut push = |queue: &mut BinaryHeap<Reverse<(Instant, u64, Event)>>, at: Instant, event: Event| {
        sequence += 1;
        queue.push(Reverse((at, sequence, event)));
    };
    for client in 0..run.clients {
        for _ in 0..run.concurrency {
            push(&mut queue, Instant::ZERO, Event::Ready { client });
        }
    }
    let mut rng = run.seed | 1;
    let mut observations: Vec<Observation> = Vec::new();
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut report = Report::default();
    let mut first_response: Option<Instant> = None;
    let end = Instant::ZERO + run.duration;

    while let Some(Reverse((at, _, event))) = queue.pop() {
        if at >= end {
            break;
        }
        clock.set(at);
        match event {
            Event::Ready { client } => {
                let learner = &mut learners[client];
                if let Ok(Some(policy)) = store.policy(KEY) {
                    learner.adopt(policy, at);
                }
                // Reserve no further ahead than a couple of intervals: a slot
                // taken now is paced by what is known now, and a deep queue
                // would lock in a rate that the next response may change.
                let gcra = learner.gcra(at);
                let request = Acquire::reserve(gcra, gcra.emission_interval() * 2);
                match store.acquire(KEY, &request) {
                    Ok(Decision::Allowed(allowed)) => {
                        push(&mut queue, at + allowed.wait, Event::Send { client })
                    }
                    Ok(Decision::Denied(denied)) => {
                        push(&mut queue, at + denied.retry_after, Event::Ready { client })
                    }
                    Ok(Decision::Impossible { .. }) => unreachable!("cost 1 never exceeds a burst"),
                    Err(never) => match never {},
                }
            }
            Event::Send { client } => {
                // A pause that began while this request waited holds it back.
                let probe = Acquire::check(learners[client].gcra(at)).with_cost(0);
                if let Ok(Decision::Denied(denied)) = store.acquire(KEY, &probe) {
                    push(&mut queue, at + denied.retry_after, Event::Ready { client });
                    continue;
                }
                let observation = upstream.handle(at).observe();
                sent_at.push(at);
                if observation.status == 200 {
                    report.succeeded += 1;
                } else {
                    report.throttled += 1;
                    if first_response.is_some_and(|first| at > first) {
                        report.throttled_after_first_response += 1;
                    }
                }
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let jitter = Nanos::from_nanos(rng % run.jitter.as_nanos().max(1));
                let round_trip = run.latency * 2 + jitter;
                observations.push(observation.with_round_trip(round_trip));
                push(
                    &mut queue,
                    at + round_trip,
                    Event::Arrive {
                        client,
                        status: observation.status,
                        observation: observations.len() - 1,
                    },
                );
            }
            Event::Arrive {
                client, observation, ..
            } => {
                first_response.get_or_insert(at);
                let learned = learners[client].observe(&observations[observation], at);
                if let Some(pause) = learned.pause {
                    let _ = store.pause(KEY, pause);
                }
                if let Some(policy) = learned.policy {
                    let _ = store.set_policy(KEY, &policy);
                }
                push(&mut queue, at, Event::Ready { client });
            }
        }
    }

    let (limit, window) = upstream.binding_limit();
    let allowed_total = limit as f64 * run.duration.as_nanos() as f64 / window.as_nanos() as f64;
    report.goodput = report.succeeded as f64 / allowed_total;
    let sent = report.succeeded + report.throttled;
    report.throttled_share = if sent == 0 {
        0.0
    } else {
        report.throttled as f64 / sent as f64
    };
    let mut last = 0usize;
    for (i, &start) in sent_at.iter().enumerate() {
        last = last.max(i);
        while last + 1 < sent_at.len() && sent_at[last + 1] < start + window {
            last += 1;
        }
        report.max_sent_in_window = report.max_sent_in_window.max((last - i + 1) as u64);
    }
    report
}
