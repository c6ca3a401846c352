//! Sending a run's requests through ratekeeper-http's [`Gate`]: the one
//! gate every HTTP call of ratekeeper passes, here wrapped around a
//! `reqwest` client. What is CLI-specific is here: a request as read from
//! the input, and a result as written to the output.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use http::Extensions;
use ratekeeper_core::{AsyncStore, Clock, ErrorKind, Nanos};
use ratekeeper_http::{Gate, GateMiddleware, gate_error};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

/// The longest a call that the gate refused to wait for (its bucket is
/// paused past `max_wait_ms`) waits before it is offered to the gate again:
/// a run waits as long as the limits need, and nothing is lost.
const REOFFER_AFTER_AT_MOST: Nanos = Nanos::from_secs(30);

/// One request as read from the input.
#[derive(Debug, Clone)]
pub(crate) struct RequestSpec {
    pub(crate) method: reqwest::Method,
    pub(crate) url: reqwest::Url,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Vec<u8>>,
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Completion {
    pub(crate) status: Option<u16>,
    pub(crate) attempts: u32,
    pub(crate) error: Option<String>,
}

/// Counts the requests sent for one call: the gate hands each attempt a
/// copy of the call's extensions, and the copies share the count.
#[derive(Debug, Clone, Default)]
struct Attempts(Arc<AtomicU32>);

/// The innermost middleware: counts each attempt as it is sent, and the
/// 429s that come back (also when the gate is switched off).
#[derive(Debug)]
struct CountAttempts {
    responses_429: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl Middleware for CountAttempts {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if let Some(attempts) = extensions.get::<Attempts>() {
            attempts.0.fetch_add(1, Ordering::Relaxed);
        }
        let result = next.run(request, extensions).await;
        if result
            .as_ref()
            .is_ok_and(|response| response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS)
        {
            self.responses_429.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

/// Sends requests through a gate and says how each ended.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    client: ClientWithMiddleware,
    max_attempts: u32,
    responses_429: Arc<AtomicU64>,
}

impl Sender {
    /// A sender through `gate`; `max_attempts` bounds the requests sent
    /// for one call when the gate's waits are too long and it is offered
    /// again (the gate's own retries obey the same setting).
    pub(crate) fn new<S, C>(gate: &Arc<Gate<S, C>>, max_attempts: u32) -> Result<Sender, String>
    where
        S: AsyncStore + Send + Sync + 'static,
        S::Error: Send,
        C: Clock + Send + Sync + 'static,
    {
        let inner = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let responses_429 = Arc::new(AtomicU64::new(0));
        let client = ClientBuilder::new(inner)
            .with(GateMiddleware::new(Arc::clone(gate)))
            .with(CountAttempts {
                responses_429: Arc::clone(&responses_429),
            })
            .build();
        Ok(Sender {
            client,
            max_attempts: max_attempts.max(1),
            responses_429,
        })
    }

    /// Responses with status 429 so far, every attempt counted.
    pub(crate) fn responses_429(&self) -> u64 {
        self.responses_429.load(Ordering::Relaxed)
    }

    /// Runs one request to its end through the gate: paced, learned from,
    /// retried as the gate's settings say.
    pub(crate) async fn execute(&self, request: &RequestSpec) -> Completion {
        let attempts = Attempts::default();
        loop {
            let mut builder = self
                .client
                .request(request.method.clone(), request.url.clone())
                .with_extension(attempts.clone());
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            let result = builder.send().await;
            let sent = attempts.0.load(Ordering::Relaxed);
            match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    // Read the body so the connection can be reused; its
                    // content is not part of the results.
                    let _ = response.bytes().await;
                    return Completion {
                        status: Some(status),
                        attempts: sent,
                        error: (status >= 400).then(|| format!("HTTP {status}")),
                    };
                }
                Err(error) => match gate_error(&error) {
                    Some(refused) if refused.kind() == ErrorKind::WaitTooLong && sent < self.max_attempts => {
                        // Nothing was sent for this turn: wait, and offer
                        // the call again.
                        let wait = refused
                            .retry_after()
                            .unwrap_or(Nanos::from_secs(1))
                            .min(REOFFER_AFTER_AT_MOST);
                        tokio::time::sleep(wait.to_duration()).await;
                    }
                    Some(refused) => {
                        let detail = match refused.status() {
                            Some(status) => format!("HTTP {status} on the last of {sent} attempts"),
                            None => match refused.detail() {
                                Some(failure) => format!("{failure}, on the last of {sent} attempts"),
                                None => refused.user_message().to_owned(),
                            },
                        };
                        return Completion {
                            status: refused.status(),
                            attempts: sent,
                            error: Some(format!("{}: {detail}", refused.code())),
                        };
                    }
                    None => {
                        return Completion {
                            status: None,
                            attempts: sent,
                            error: Some(format!("request failed: {error}")),
                        };
                    }
                },
            }
        }
    }
}
