//! # ratekeeper-redis
//!
//! The Redis (and Valkey) store of ratekeeper: buckets, learned policies and
//! pauses shared by every instance of an app, with one script call per
//! decision on the server's own clock, and an in-process fallback that keeps
//! every call answered when Redis is away.
//!
//! ```no_run
//! use ratekeeper_core::{Acquire, AsyncStore, Gcra, Nanos};
//! use ratekeeper_redis::{RedisConfig, RedisStore};
//!
//! # async fn run() -> Result<(), ratekeeper_redis::Error> {
//! let store = RedisStore::connect("redis://127.0.0.1:6379/0", RedisConfig::default()).await?;
//! let gcra = Gcra::new(Nanos::from_millis(100), 1).unwrap();
//! let decision = store.acquire("api.close.com/api/v1/lead/{id}/", &Acquire::reserve(gcra, Nanos::from_secs(5))).await?;
//! if let Some(allowed) = decision.allowed() {
//!     tokio::time::sleep(allowed.wait.to_duration()).await;
//!     // send the request
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # How a decision is made
//!
//! Each bucket is one Redis string holding its TAT and the end of its pause
//! (see the [`script`] module for the layout), under
//! `<prefix>{<bucket key>}:b`; its learned policy sits under
//! `<prefix>{<bucket key>}:p`. The braces are a cluster hash tag, so both
//! keys of a bucket live in one slot. Every operation runs in one Lua
//! script that reads `TIME`, advances the bucket's state with the GCRA
//! admission rule, writes it back, sets the key to expire once the TAT and
//! the pause are both past, and replies with the state before and after.
//! The store then replays the operation with the core's own
//! [`BucketState::decide`] from the "before" state, and checks it lands on
//! the "after" state: the decision *is* the core's, and a property test runs
//! random sequences through the script and the core and compares every
//! state. Instance clocks never matter: the store answers with spans ("wait
//! this long"), and the only instant it returns, [`Allowed::tat`], is
//! converted to the caller's clock.
//!
//! Operations waiting at the same moment are sent together as one script
//! call (`EVALSHA`, reloaded on `NOSCRIPT`), decided one after the other in
//! the order they were made; identical ones on one bucket (many waiters on
//! one endpoint) travel as a single run. This divides the fixed cost of a
//! call (about 1.6 µs of Redis CPU, and 1.1 µs for `TIME`) among all the
//! waiters; a lone caller still gets one round trip per decision. On a
//! cluster a batch is split per bucket, since a script may only touch one
//! slot.
//!
//! A call that misses its deadline is decided on the fallback even if Redis
//! later records it: the slot is then spent twice, which errs on the side
//! of sending less, never more.
//!
//! # When Redis is away
//!
//! Every operation has a deadline ([`RedisConfig::with_deadline`], 50 ms by
//! default). When Redis errors or misses it, the store moves to an
//! in-process `ratekeeper-memory` store and logs so (`tracing`, at `warn`)
//! and counts so (`metrics`: `ratekeeper_redis_fallback_entered_total`,
//! `ratekeeper_redis_fallback_decisions_total`, the gauge
//! `ratekeeper_redis_on_fallback`). There each request is decided on a
//! *share* of its limit: the emission interval times the expected fleet
//! size ([`RedisConfig::with_fleet_size`]) and the burst divided by it, so
//! that a whole fleet on fallback together stays within the limit. Pauses
//! and policies are written through to the fallback too, so a pause seen
//! before Redis went away is still honoured. One call at a time probes
//! Redis, with a backoff doubling from [`RedisConfig::with_probe_backoff`]'s
//! minimum to its maximum; the first answer moves decisions back to Redis
//! (`ratekeeper_redis_recovered_total`, an `info` log). No call panics,
//! hangs past its deadline, or is lost: every one gets a decision.
//!
//! # Range
//!
//! Redis's Lua computes in doubles, so the script works on spans from now,
//! and requests are first brought within [`MAX_SPAN`] (2⁵¹ ns, about 26
//! days) by [`script::capped`]: intervals above it are capped, bursts whose
//! tolerance would exceed it shrink, waits and pauses are capped. Within
//! that range decisions are exactly the core's. The store must be used
//! within the tokio runtime that made it (it runs a task there that sends
//! the batches).
//!
//! # Connecting
//!
//! The URL carries everything the `redis` crate understands:
//! `redis://user:password@host:port/db` for AUTH and ACL users, and, with
//! the `tls` feature, `rediss://` for TLS (rustls with the system's roots).
//! A single server is reached through a connection manager that reconnects
//! on its own; [`RedisStore::connect_cluster`] takes a cluster's seed nodes.
//!
//! ## Features
//!
//! - `tls`: `rediss://` URLs, with rustls and its `ring` provider.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod config;
mod health;
mod policy_codec;
pub mod script;
mod store;
#[cfg(test)]
#[path = "../tests/support/mod.rs"]
mod test_support;

pub use config::RedisConfig;
pub use script::MAX_SPAN;
pub use store::{Error, RedisStore, StoreStatus};

#[cfg(doc)]
use ratekeeper_core::{Allowed, BucketState};

/// Entry points for the fuzz targets: the decoders of what Redis sends
/// back. Not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    use ratekeeper_core::{Acquire, Instant, Nanos};

    use crate::script::{self, Operation};

    /// Reads a stored policy value as if read at `server_now` and `local_now`.
    pub fn policy_value(value: &str, server_now: (u64, u64), local_now: u64) {
        let _ = crate::policy_codec::decode(value, server_now, Instant::from_nanos(local_now));
    }

    /// Replays `operations` (key index, then an acquire or a pause) against
    /// a script reply of `values`, for `keys` keys.
    pub fn script_reply(values: &[i64], operations: &[(usize, Result<Acquire, Nanos>)], keys: usize) {
        let operations: Vec<(usize, Operation)> = operations
            .iter()
            .map(|(key, op)| {
                let op = match op {
                    Ok(request) => Operation::Acquire(script::capped(request)),
                    Err(span) => Operation::Pause(*span),
                };
                (*key, op)
            })
            .collect();
        let _ = script::encode(&operations);
        let _ = script::replay(values, &operations, keys);
    }
}
