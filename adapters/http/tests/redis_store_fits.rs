//! The Redis store fits the gate: a fleet's gate is the same code as one
//! instance's. Checked by the compiler; no Redis is started here (the
//! Redis store's own tests run a real server).

use std::sync::Arc;

use ratekeeper_http::{Gate, GateLayer, GateMiddleware, TokioClock};
use ratekeeper_redis::RedisStore;

fn is_middleware<M: reqwest_middleware::Middleware>() {}

fn is_layer<L: tower_layer::Layer<S>, S>() {}

#[test]
fn a_gate_on_redis_makes_both_adapters() {
    is_middleware::<GateMiddleware<RedisStore, TokioClock>>();
    is_middleware::<GateMiddleware<RedisStore<TokioClock>, TokioClock>>();
    type Client =
        tower::util::BoxCloneService<http::Request<String>, http::Response<String>, std::convert::Infallible>;
    is_layer::<GateLayer<RedisStore, TokioClock>, Client>();
    let _ = |gate: Arc<Gate<RedisStore, TokioClock>>| GateMiddleware::new(gate);
}
