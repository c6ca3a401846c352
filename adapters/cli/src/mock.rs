//! A local mock API that enforces hidden per-endpoint limits in fixed
//! windows and states them in one header family (or none), for the demo
//! and the tests. It listens on 127.0.0.1 only.
//!
//! `GET /{endpoint}/...` is counted against `{endpoint}`'s limit: within
//! the limit a 200, past it a 429 (with `Retry-After` when the endpoint
//! states its limits; a bare 429 when it states nothing).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::IntoResponse;

/// How an endpoint states its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// Close: `ratelimit: limit=L; remaining=R; reset=S`.
    Close,
    /// IETF draft-08: `RateLimit-Policy: "default";q=L;w=W` and
    /// `RateLimit: "default";r=R;t=S`.
    IetfDraft08,
    /// `X-RateLimit-Limit/-Remaining/-Reset` (reset in delta seconds).
    XRateLimit,
    /// Nothing: only a bare 429 past the limit.
    Silent,
}

impl Family {
    /// A short name for tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Family::Close => "close",
            Family::IetfDraft08 => "ietf-draft-08",
            Family::XRateLimit => "x-ratelimit",
            Family::Silent => "none",
        }
    }
}

/// One endpoint's hidden limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hidden {
    pub(crate) family: Family,
    pub(crate) limit: u64,
    pub(crate) window: Duration,
}

/// What an endpoint saw.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    pub(crate) ok: u64,
    pub(crate) rejected: u64,
    /// Fixed windows from the first to the last accepted request.
    pub(crate) windows_used: u64,
    /// From the first request to the last accepted one.
    pub(crate) span: Duration,
}

#[derive(Debug)]
struct Endpoint {
    hidden: Hidden,
    state: Mutex<EndpointState>,
}

#[derive(Debug, Default)]
struct EndpointState {
    window_index: u64,
    count: u64,
    ok: u64,
    rejected: u64,
    first_ok_window: Option<u64>,
    last_ok_window: u64,
    /// Windows start at the endpoint's first request, as many fixed-window
    /// servers start them at a client's first call.
    origin: Option<Instant>,
    last_ok: Option<Instant>,
}

/// A running mock API.
#[derive(Debug)]
pub(crate) struct MockApi {
    endpoints: HashMap<String, Endpoint>,
}

impl MockApi {
    /// Starts serving `endpoints` (name, hidden limit) on a free loopback
    /// port, on the current tokio runtime.
    pub(crate) async fn start(endpoints: &[(&str, Hidden)]) -> std::io::Result<(SocketAddr, Arc<MockApi>)> {
        let api = Arc::new(MockApi {
            endpoints: endpoints
                .iter()
                .map(|&(name, hidden)| {
                    (
                        name.to_owned(),
                        Endpoint {
                            hidden,
                            state: Mutex::new(EndpointState::default()),
                        },
                    )
                })
                .collect(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().fallback(answer).with_state(Arc::clone(&api));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((addr, api))
    }

    /// What endpoint `name` saw so far.
    pub(crate) fn tally(&self, name: &str) -> Tally {
        self.endpoints.get(name).map_or_else(Tally::default, |endpoint| {
            let state = endpoint.state.lock().unwrap_or_else(PoisonError::into_inner);
            Tally {
                ok: state.ok,
                rejected: state.rejected,
                windows_used: state.first_ok_window.map_or(0, |first| {
                    state.last_ok_window.saturating_sub(first).saturating_add(1)
                }),
                span: match (state.origin, state.last_ok) {
                    (Some(origin), Some(last)) => last.saturating_duration_since(origin),
                    _ => Duration::ZERO,
                },
            }
        })
    }
}

fn header(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

async fn answer(State(api): State<Arc<MockApi>>, uri: Uri) -> impl IntoResponse {
    let name = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    let Some(endpoint) = api.endpoints.get(name) else {
        return (StatusCode::NOT_FOUND, HeaderMap::new());
    };
    let hidden = endpoint.hidden;
    let window_nanos = hidden.window.as_nanos().max(1);
    let now = Instant::now();
    let mut state = endpoint.state.lock().unwrap_or_else(PoisonError::into_inner);
    let origin = *state.origin.get_or_insert(now);
    let elapsed = now.saturating_duration_since(origin).as_nanos();
    let index = u64::try_from(elapsed / window_nanos).unwrap_or(u64::MAX);
    let window_end = u128::from(index).saturating_add(1).saturating_mul(window_nanos);
    // Whole seconds, rounded up: never earlier than the real reset.
    let reset_secs = window_end.saturating_sub(elapsed).div_ceil(1_000_000_000);
    if state.window_index != index {
        state.window_index = index;
        state.count = 0;
    }
    let accepted = state.count < hidden.limit;
    if accepted {
        state.count = state.count.saturating_add(1);
        state.ok = state.ok.saturating_add(1);
        state.first_ok_window.get_or_insert(index);
        state.last_ok_window = index;
        state.last_ok = Some(now);
    } else {
        state.rejected = state.rejected.saturating_add(1);
    }
    let remaining = hidden.limit.saturating_sub(state.count);
    drop(state);
    let mut headers = HeaderMap::new();
    let (limit, window_secs) = (hidden.limit, hidden.window.as_secs());
    match hidden.family {
        Family::Close => header(
            &mut headers,
            "ratelimit",
            format!("limit={limit}; remaining={remaining}; reset={reset_secs}"),
        ),
        Family::IetfDraft08 => {
            header(
                &mut headers,
                "ratelimit-policy",
                format!("\"default\";q={limit};w={window_secs}"),
            );
            header(
                &mut headers,
                "ratelimit",
                format!("\"default\";r={remaining};t={reset_secs}"),
            );
        }
        Family::XRateLimit => {
            header(&mut headers, "x-ratelimit-limit", limit.to_string());
            header(&mut headers, "x-ratelimit-remaining", remaining.to_string());
            header(&mut headers, "x-ratelimit-reset", reset_secs.to_string());
        }
        Family::Silent => {}
    }
    if accepted {
        (StatusCode::OK, headers)
    } else {
        if hidden.family != Family::Silent {
            header(&mut headers, "retry-after", reset_secs.to_string());
        }
        (StatusCode::TOO_MANY_REQUESTS, headers)
    }
}
