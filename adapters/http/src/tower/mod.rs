//! The gate as a `tower` [`Layer`](tower_layer::Layer) over HTTP clients:
//! [`GateLayer`] makes [`GateService`]s, whose calls return a
//! [`ResponseFuture`]; their errors are [`BoxError`]s holding either the
//! inner service's error unchanged or the gate's [`Error`](crate::Error).
//!
//! The request body must be `Clone` so a call can be retried (`String`,
//! `Bytes`, `Full<Bytes>`, `()`); the inner service must be `Clone`, as
//! with most tower clients (each call drives its own clone).

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::GateLayer;
pub use service::GateService;

/// The error type of a [`GateService`]: the inner service's error, or the
/// gate's [`Error`](crate::Error) (find it with `downcast_ref`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
