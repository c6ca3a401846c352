use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use ratekeeper_core::{AsyncStore, Clock, Outcome};
use tower_service::Service;

use super::{BoxError, ResponseFuture};
use crate::gate::{Answer, CallFacts, Failure, Gate, TransportError};

/// An HTTP client service whose calls pass a [`Gate`]: made by
/// [`GateLayer`](super::GateLayer).
///
/// ```
/// use std::convert::Infallible;
/// use std::sync::Arc;
/// use ratekeeper_http::{Config, Gate, GateService};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let gate = Arc::new(Gate::memory(&Config::default()).unwrap());
/// // Any HTTP client service; here, one answering 200 itself.
/// let client = tower::service_fn(|_: http::Request<String>| async {
///     Ok::<_, Infallible>(http::Response::new(String::new()))
/// });
/// let service = GateService::new(client, gate);
/// let request = http::Request::get("http://127.0.0.1:9/items").body(String::new()).unwrap();
/// let response = service.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 200);
/// # }
/// ```
#[derive(Debug)]
pub struct GateService<Inner, S, C> {
    inner: Inner,
    gate: Arc<Gate<S, C>>,
}

impl<Inner, S, C> GateService<Inner, S, C> {
    /// `inner` behind `gate`.
    pub fn new(inner: Inner, gate: Arc<Gate<S, C>>) -> GateService<Inner, S, C> {
        GateService { inner, gate }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &Inner {
        &self.inner
    }

    /// The gate.
    pub fn gate(&self) -> &Arc<Gate<S, C>> {
        &self.gate
    }
}

impl<Inner: Clone, S, C> Clone for GateService<Inner, S, C> {
    fn clone(&self) -> Self {
        GateService {
            inner: self.inner.clone(),
            gate: Arc::clone(&self.gate),
        }
    }
}

impl<B> Answer for Response<B> {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }

    fn headers(&self) -> &http::HeaderMap {
        self.headers()
    }
}

impl TransportError for BoxError {
    fn outcome(&self) -> Outcome {
        // The I/O error at the root of the chain, if any, names the failure.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(self.as_ref());
        while let Some(error) = source {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind as Io;
                return match io.kind() {
                    Io::ConnectionRefused => Outcome::ConnectionRefused,
                    Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof => {
                        Outcome::ConnectionReset
                    }
                    Io::TimedOut => Outcome::Timeout,
                    _ => Outcome::OtherTransport,
                };
            }
            source = error.source();
        }
        Outcome::OtherTransport
    }

    fn describe(&self) -> String {
        crate::gate::describe_chain(self.as_ref())
    }
}

fn copy_request<B: Clone>(request: &Request<B>) -> Option<Request<B>> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    Some(copy)
}

/// The URL to key the request by: its URI when absolute, else the `Host`
/// header and the path.
fn request_url<B>(request: &Request<B>) -> String {
    let uri = request.uri();
    if uri.authority().is_some() {
        return uri.to_string();
    }
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("");
    format!(
        "http://{host}{}",
        uri.path_and_query().map_or("/", |path| path.as_str())
    )
}

impl<Inner, S, C, B, RB> Service<Request<B>> for GateService<Inner, S, C>
where
    Inner: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    Inner::Future: Send,
    Inner::Error: Into<BoxError>,
    B: Clone + Send + 'static,
    RB: Send + 'static,
    S: AsyncStore + Send + Sync + 'static,
    S::Error: Send,
    C: Clock + Send + Sync + 'static,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = ResponseFuture<Response<RB>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call drives its own clone of the inner service to readiness,
        // once per attempt, after its wait at the bucket.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let gate = Arc::clone(&self.gate);
        let inner = self.inner.clone();
        ResponseFuture::new(Box::pin(async move {
            let facts = CallFacts::new(
                gate.settings(),
                request.method(),
                request_url(&request),
                request.headers(),
                request.extensions(),
            );
            let result = gate
                .call(facts, request, copy_request, move |request| {
                    let mut inner = inner.clone();
                    async move {
                        poll_fn(|cx| inner.poll_ready(cx)).await.map_err(Into::into)?;
                        inner.call(request).await.map_err(Into::into)
                    }
                })
                .await;
            match result {
                Ok(response) => Ok(response),
                Err(Failure::Inner(error)) => Err(error),
                Err(Failure::Gate(error)) => Err(Box::new(error) as BoxError),
            }
        }))
    }
}
