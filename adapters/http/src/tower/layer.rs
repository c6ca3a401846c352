use std::sync::Arc;

use tower_layer::Layer;

use super::GateService;
use crate::gate::Gate;

/// Wraps services in a [`GateService`] sharing one [`Gate`].
///
/// ```
/// use std::sync::Arc;
/// use ratekeeper_http::{Config, Gate, GateLayer};
///
/// let gate = Arc::new(Gate::memory(&Config::default()).unwrap());
/// let layer = GateLayer::new(gate);
/// # drop(layer);
/// ```
#[derive(Debug)]
pub struct GateLayer<S, C> {
    gate: Arc<Gate<S, C>>,
}

impl<S, C> GateLayer<S, C> {
    /// A layer passing calls through `gate`.
    pub fn new(gate: Arc<Gate<S, C>>) -> GateLayer<S, C> {
        GateLayer { gate }
    }
}

impl<S, C> Clone for GateLayer<S, C> {
    fn clone(&self) -> Self {
        GateLayer {
            gate: Arc::clone(&self.gate),
        }
    }
}

impl<Inner, S, C> Layer<Inner> for GateLayer<S, C> {
    type Service = GateService<Inner, S, C>;

    fn layer(&self, inner: Inner) -> Self::Service {
        GateService::new(inner, Arc::clone(&self.gate))
    }
}
