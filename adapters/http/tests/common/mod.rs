//! A real HTTP server on 127.0.0.1 (axum) that enforces limits the way
//! APIs do, and records when each request arrived. Its clock is tokio's,
//! so the same server also runs in process on tokio's paused clock
//! ([`Server::in_process`]), where a test's schedule is exact.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Response, StatusCode};
use ratekeeper_http::{Config, Gate, GateMiddleware};
use reqwest_middleware::ClientWithMiddleware;
use tokio::time::Instant;

/// How a limited endpoint states its quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Close: `ratelimit: limit=5; remaining=4; reset=1`.
    Close,
    /// IETF draft-08: `RateLimit-Policy: "default";q=30;w=3` and
    /// `RateLimit: "default";r=29;t=3`.
    Ietf,
    /// `X-RateLimit-Limit`, `-Remaining`, `-Reset` (delta seconds).
    XRateLimit,
    /// Nothing: a bare 429 past the limit.
    None,
}

/// What an endpoint does.
#[derive(Clone, Copy, Debug)]
pub enum Behavior {
    /// A fixed window of `limit` requests per `window`, counted from the
    /// server's start, stated in `family`'s headers.
    Limited {
        limit: u64,
        window: Duration,
        family: Family,
    },
    /// A sliding window: at most `limit` accepted in any `window`, stated
    /// in IETF draft-08 headers (`t`: until the oldest accepted leaves).
    Sliding { limit: u64, window: Duration },
    /// 429 with `Retry-After: secs` on the first request, 200 after.
    RetryAfterOnce { secs: u64 },
    /// `status` on the first `times` requests, 200 after.
    FailFirst { status: u16, times: u64 },
    /// Always `status`, no headers.
    Always(u16),
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Hit {
    pub path: String,
    pub method: String,
    pub at: Instant,
    pub status: u16,
}

#[derive(Debug)]
struct Endpoint {
    behavior: Behavior,
    window_index: u64,
    used: u64,
    served: u64,
    accepted: std::collections::VecDeque<Instant>,
}

#[derive(Debug)]
struct Shared {
    start: Instant,
    endpoints: Mutex<HashMap<String, Endpoint>>,
    hits: Mutex<Vec<Hit>>,
}

impl Shared {
    fn new(routes: &[(&str, Behavior)]) -> Arc<Shared> {
        Arc::new(Shared {
            start: Instant::now(),
            endpoints: Mutex::new(
                routes
                    .iter()
                    .map(|&(path, behavior)| {
                        let endpoint = Endpoint {
                            behavior,
                            window_index: 0,
                            used: 0,
                            served: 0,
                            accepted: std::collections::VecDeque::new(),
                        };
                        (path.to_owned(), endpoint)
                    })
                    .collect(),
            ),
            hits: Mutex::new(Vec::new()),
        })
    }

    fn router(self: &Arc<Shared>) -> axum::Router {
        axum::Router::new().fallback(handle).with_state(Arc::clone(self))
    }
}

/// A running server; dropped with the test's runtime.
#[derive(Debug, Clone)]
pub struct Server {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Server {
    /// Starts a server with `routes` (path -> behavior) on a free port.
    pub async fn start(routes: &[(&str, Behavior)]) -> Server {
        let shared = Shared::new(routes);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = shared.router();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { addr, shared }
    }

    /// The same server with no socket: the router to call as a `tower`
    /// service, and the server for its records (its `addr` is only a name
    /// for URLs). On tokio's paused clock every arrival time is exact.
    pub fn in_process(routes: &[(&str, Behavior)]) -> (Server, axum::Router) {
        let shared = Shared::new(routes);
        let app = shared.router();
        let addr = SocketAddr::from(([127, 0, 0, 1], 80));
        (Server { addr, shared }, app)
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The endpoint key the gate makes for `path` (no id segments).
    pub fn key(&self, path: &str) -> String {
        format!("127.0.0.1%3A{}{path}", self.addr.port())
    }

    /// Every request received on `path`, in arrival order.
    pub fn hits(&self, path: &str) -> Vec<Hit> {
        let hits = self.shared.hits.lock().unwrap();
        hits.iter().filter(|hit| hit.path == path).cloned().collect()
    }

    /// Responses with `status` on `path`.
    pub fn count(&self, path: &str, status: u16) -> usize {
        self.hits(path).iter().filter(|hit| hit.status == status).count()
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response<Body> {
    let now = Instant::now();
    let path = request.uri().path().to_owned();
    let method = request.method().to_string();
    let mut headers: Vec<(&'static str, String)> = Vec::new();
    let status = {
        let mut endpoints = shared.endpoints.lock().unwrap();
        let Some(endpoint) = endpoints.get_mut(&path) else {
            return Response::builder().status(404).body(Body::empty()).unwrap();
        };
        endpoint.served += 1;
        match endpoint.behavior {
            Behavior::Limited {
                limit,
                window,
                family,
            } => {
                let since = now.duration_since(shared.start).as_nanos() as u64;
                let window_nanos = window.as_nanos() as u64;
                let index = since / window_nanos;
                if index != endpoint.window_index {
                    endpoint.window_index = index;
                    endpoint.used = 0;
                }
                let allowed = endpoint.used < limit;
                if allowed {
                    endpoint.used += 1;
                }
                let remaining = limit - endpoint.used;
                let reset = ((index + 1) * window_nanos - since).div_ceil(1_000_000_000);
                match family {
                    Family::Close => headers.push((
                        "ratelimit",
                        format!("limit={limit}; remaining={remaining}; reset={reset}"),
                    )),
                    Family::Ietf => {
                        let window_secs = window.as_secs();
                        headers.push((
                            "ratelimit-policy",
                            format!("\"default\";q={limit};w={window_secs}"),
                        ));
                        headers.push(("ratelimit", format!("\"default\";r={remaining};t={reset}")));
                    }
                    Family::XRateLimit => {
                        headers.push(("x-ratelimit-limit", limit.to_string()));
                        headers.push(("x-ratelimit-remaining", remaining.to_string()));
                        headers.push(("x-ratelimit-reset", reset.to_string()));
                    }
                    Family::None => {}
                }
                if allowed { 200 } else { 429 }
            }
            Behavior::Sliding { limit, window } => {
                while endpoint
                    .accepted
                    .front()
                    .is_some_and(|&at| now.duration_since(at) >= window)
                {
                    endpoint.accepted.pop_front();
                }
                let allowed = (endpoint.accepted.len() as u64) < limit;
                if allowed {
                    endpoint.accepted.push_back(now);
                }
                let remaining = limit - endpoint.accepted.len() as u64;
                let reset = endpoint.accepted.front().map_or(0, |&at| {
                    (window - now.duration_since(at))
                        .as_nanos()
                        .div_ceil(1_000_000_000)
                });
                headers.push((
                    "ratelimit-policy",
                    format!("\"default\";q={limit};w={}", window.as_secs()),
                ));
                headers.push(("ratelimit", format!("\"default\";r={remaining};t={reset}")));
                if allowed { 200 } else { 429 }
            }
            Behavior::RetryAfterOnce { secs } => {
                if endpoint.served == 1 {
                    headers.push(("retry-after", secs.to_string()));
                    429
                } else {
                    200
                }
            }
            Behavior::FailFirst { status, times } => {
                if endpoint.served <= times {
                    status
                } else {
                    200
                }
            }
            Behavior::Always(status) => status,
        }
    };
    shared.hits.lock().unwrap().push(Hit {
        path,
        method,
        at: now,
        status,
    });
    let mut response = Response::builder().status(StatusCode::from_u16(status).unwrap());
    for (name, value) in headers {
        response = response.header(name, HeaderValue::from_str(&value).unwrap());
    }
    response.body(Body::empty()).unwrap()
}

/// The configuration the tests start from: a wider safety margin than the
/// default, so a busy test machine's late timers cannot push a request
/// into the next window.
pub fn test_config() -> Config {
    Config {
        safety_margin_percent: 10.0,
        backoff_base_ms: 50,
        backoff_cap_ms: 2_000,
        max_wait_ms: 20_000,
        ..Config::default()
    }
}

/// A reqwest client through `gate`.
pub fn client<S, C>(gate: &Arc<Gate<S, C>>) -> ClientWithMiddleware
where
    S: ratekeeper_core::AsyncStore + Send + Sync + 'static,
    S::Error: Send,
    C: ratekeeper_core::Clock + Send + Sync + 'static,
{
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(GateMiddleware::new(Arc::clone(gate)))
        .build()
}

/// What became of one call, client side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Result {
    Status(u16),
    Gate(&'static str),
    Transport(String),
}

/// Sends `count` GETs of `url` through `client`, `concurrency` at a time.
pub async fn get_all(
    client: &ClientWithMiddleware,
    url: &str,
    count: usize,
    concurrency: usize,
) -> Vec<Result> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let client = client.clone();
        let url = url.to_owned();
        let semaphore = Arc::clone(&semaphore);
        tasks.spawn(async move {
            let _slot = semaphore.acquire_owned().await.unwrap();
            (index, classify(client.get(url).send().await))
        });
    }
    let mut results = vec![Result::Transport("not run".into()); count];
    while let Some(done) = tasks.join_next().await {
        let (index, result) = done.unwrap();
        results[index] = result;
    }
    results
}

/// The call's result, client side.
pub fn classify(result: reqwest_middleware::Result<reqwest::Response>) -> Result {
    match result {
        Ok(response) => Result::Status(response.status().as_u16()),
        Err(error) => match ratekeeper_http::gate_error(&error) {
            Some(refused) => Result::Gate(refused.code()),
            None => Result::Transport(error.to_string()),
        },
    }
}

/// Sends `count` GETs of `path` to `routes` served in process (call on
/// tokio's paused clock, where every arrival time is exact), through
/// `gate`'s tower service, `concurrency` at a time. Request `i` spends
/// `latency(i)` on its way to the server and on its way back. Returns the
/// statuses in the order the calls ended, and the server's record.
pub async fn in_process_run(
    routes: &[(&str, Behavior)],
    path: &str,
    gate: Arc<Gate<ratekeeper_memory::MemoryStore<ratekeeper_http::TokioClock>>>,
    count: usize,
    concurrency: usize,
    latency: impl Fn(usize) -> (Duration, Duration) + Send + Sync + 'static,
) -> (Vec<u16>, Server) {
    use tower::ServiceExt;

    let (server, router) = Server::in_process(routes);
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let latency = Arc::new(latency);
    let upstream = tower::service_fn(move |request: http::Request<String>| {
        let router = router.clone();
        let index = sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (there, back) = latency(index);
        async move {
            tokio::time::sleep(there).await;
            let response = router.oneshot(request.map(axum::body::Body::from)).await;
            tokio::time::sleep(back).await;
            response
        }
    });
    let service = ratekeeper_http::GateService::new(upstream, gate);
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let service = service.clone();
        let semaphore = Arc::clone(&semaphore);
        let request = http::Request::get(server.url(path)).body(String::new()).unwrap();
        tasks.spawn(async move {
            let _slot = semaphore.acquire_owned().await.unwrap();
            service
                .oneshot(request)
                .await
                .map(|response| response.status().as_u16())
        });
    }
    let mut statuses = Vec::new();
    while let Some(done) = tasks.join_next().await {
        statuses.push(done.unwrap().unwrap_or_else(|error| panic!("{error}")));
    }
    (statuses, server)
}
