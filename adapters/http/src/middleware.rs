//! The gate as a `reqwest-middleware` [`Middleware`].

use std::sync::Arc;

use http::Extensions;
use ratekeeper_core::{AsyncStore, Clock, Outcome};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use crate::error::Error;
use crate::gate::{Answer, CallFacts, Failure, Gate, TransportError};

/// Every call of a `reqwest_middleware::ClientWithMiddleware` through one
/// [`Gate`].
///
/// Gate errors come back as `reqwest_middleware::Error::Middleware`
/// holding an [`Error`]; [`gate_error`] finds it. Errors of the client
/// itself come back unchanged. A request whose body cannot be copied (a
/// stream) is sent once.
///
/// ```
/// use std::sync::Arc;
/// use ratekeeper_http::{Config, Gate, GateMiddleware};
///
/// let gate = Arc::new(Gate::memory(&Config::default()).unwrap());
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(GateMiddleware::new(Arc::clone(&gate)))
///     .build();
/// # drop(client);
/// ```
#[derive(Debug)]
pub struct GateMiddleware<S, C> {
    gate: Arc<Gate<S, C>>,
}

impl<S, C> GateMiddleware<S, C> {
    /// A middleware passing calls through `gate`.
    pub fn new(gate: Arc<Gate<S, C>>) -> GateMiddleware<S, C> {
        GateMiddleware { gate }
    }

    /// The gate.
    pub fn gate(&self) -> &Arc<Gate<S, C>> {
        &self.gate
    }
}

impl<S, C> Clone for GateMiddleware<S, C> {
    fn clone(&self) -> Self {
        GateMiddleware {
            gate: Arc::clone(&self.gate),
        }
    }
}

/// The gate's [`Error`] inside a `reqwest_middleware::Error`, if that is
/// what it is.
///
/// ```
/// use ratekeeper_http::{gate_error, Error, ErrorKind};
///
/// let error = reqwest_middleware::Error::middleware(Error::new(ErrorKind::CircuitOpen, "api.example.com/items"));
/// assert_eq!(gate_error(&error).unwrap().code(), "RATE_LIMIT_CIRCUIT_OPEN");
/// ```
pub fn gate_error(error: &reqwest_middleware::Error) -> Option<&Error> {
    match error {
        reqwest_middleware::Error::Middleware(error) => error.downcast_ref::<Error>(),
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}

impl Answer for Response {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }

    fn headers(&self) -> &http::HeaderMap {
        self.headers()
    }
}

impl TransportError for reqwest_middleware::Error {
    fn outcome(&self) -> Outcome {
        match self {
            reqwest_middleware::Error::Reqwest(error) if error.is_timeout() => Outcome::Timeout,
            reqwest_middleware::Error::Reqwest(error) if error.is_connect() => Outcome::ConnectionRefused,
            reqwest_middleware::Error::Reqwest(error) if error.is_request() || error.is_body() => {
                Outcome::ConnectionReset
            }
            _ => Outcome::OtherTransport,
        }
    }

    fn describe(&self) -> String {
        crate::gate::describe_chain(self)
    }
}

#[async_trait::async_trait]
impl<S, C> Middleware for GateMiddleware<S, C>
where
    S: AsyncStore + Send + Sync + 'static,
    S::Error: Send,
    C: Clock + Send + Sync + 'static,
{
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let facts = CallFacts::new(
            self.gate.settings(),
            request.method(),
            request.url().as_str().to_owned(),
            request.headers(),
            extensions,
        );
        let shared: &Extensions = extensions;
        let result = self
            .gate
            .call(facts, request, Request::try_clone, |request| {
                // Each attempt gets its own copy of the extensions, so the
                // attempt's future owns everything it borrows.
                let mut extensions = shared.clone();
                let next = next.clone();
                async move { next.run(request, &mut extensions).await }
            })
            .await;
        match result {
            Ok(response) => Ok(response),
            Err(Failure::Inner(error)) => Err(error),
            Err(Failure::Gate(error)) => Err(reqwest_middleware::Error::middleware(error)),
        }
    }
}
