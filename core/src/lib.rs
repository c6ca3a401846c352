//! # ratekeeper-core
//!
//! The part of ratekeeper that runs everywhere, from a Linux service to a
//! Cortex-M0 gateway: `#![no_std]`, no `alloc` anywhere in its dependency
//! graph, no `unsafe`, and no panic on any input.
//!
//! - [`time`]: integer time, [`Nanos`] and [`Instant`], saturating at a
//!   584-year horizon;
//! - [`clock`]: the [`Clock`] contract and the [`ManualClock`] that every
//!   test and the simulator use;
//! - [`gcra`]: pacing as a pure function over one stored integer, with
//!   check and reserve forms;
//! - [`learn`]: limits learned from headers, or from 429s alone, and
//!   reconciled with what the server says is left;
//! - [`policy`]: what is known about a bucket's limit and how it becomes
//!   GCRA parameters under a safety margin;
//! - [`store`]: the [`Store`] and [`AsyncStore`] contracts that the memory,
//!   Redis and Embassy stores implement.
//! - [`backoff`], [`retry`], [`breaker`], [`error`]: exponential
//!   [`Backoff`] with jitter that never retries before `Retry-After`,
//!   [`RetryState`] deciding what is worth retrying and when to give up,
//!   the circuit [`Breaker`], and the stable error codes ([`ErrorKind`]).
//! - [`headers`]: what a response says about rate limits ([`RateLimitInfo`]),
//!   read from its header pairs in every family in use, without allocating.
//! - [`endpoint`]: URL -> [`EndpointKey`] (host, tenant and path template,
//!   ids as `{id}`), bounded and safe in a Redis key, with user
//!   [`EndpointRules`] over the guess.
//!
//! ```
//! use ratekeeper_core::{Acquire, BucketState, Clock, ManualClock, Nanos, Policy, PolicyConfig, PolicySource};
//!
//! // Close's search endpoint allows 16 requests per second.
//! let clock = ManualClock::new();
//! let policy = Policy::new(16, Nanos::from_secs(1), PolicySource::Header, clock.now()).unwrap();
//! let gcra = policy.to_gcra(&PolicyConfig::default());
//!
//! // Reserve 20 slots at once: each caller is told how long to wait.
//! let mut bucket = BucketState::EMPTY;
//! let mut last_wait = Nanos::ZERO;
//! for _ in 0..20 {
//!     let (decision, next) = bucket.decide(&Acquire::reserve(gcra, Nanos::from_secs(10)), clock.now());
//!     last_wait = decision.allowed().unwrap().wait;
//!     bucket = next.unwrap();
//! }
//! // The 20th request goes out after 19 intervals: a little over 1.18 s.
//! assert_eq!(last_wait, gcra.emission_interval() * 19);
//! ```
//!
//! ## Features
//!
//! - `std`: adds `MonotonicClock` (`std::time::Instant`). Nothing else
//!   changes.
//! - `defmt`: `defmt::Format` on every public data type.
//! - `json-body`: `RateLimitInfo::with_json_body`, limits carried in JSON
//!   response bodies (Shopify GraphQL, Close's legacy 429 body), read with
//!   `serde-json-core`, still without `alloc`.
//!
//! ## Never panics
//!
//! Every arithmetic step is checked, saturating, or done in `u128` where the
//! operands provably fit; construction is validated once (`Gcra::new`,
//! `Policy::new`, `PolicyConfig::new`), so the hot path has no error cases
//! left. Clippy's `arithmetic_side_effects`, `indexing_slicing`, `unwrap_used`,
//! `expect_used` and `panic` lints are on for this crate's library code.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    warn(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

#[cfg(feature = "std")]
extern crate std;

pub mod backoff;
pub mod breaker;
pub mod clock;
pub mod endpoint;
pub mod error;
pub mod gcra;
pub mod headers;
pub mod learn;
pub mod policy;
pub mod retry;
pub mod store;
pub mod time;

pub use backoff::{Backoff, BackoffConfig, BackoffError, Jitter, RandomSource, SplitMix64};
pub use breaker::{
    Breaker, BreakerConfig, BreakerError, BreakerSnapshot, BreakerState, CallResult, Permit, Rejected,
};
#[cfg(feature = "std")]
pub use clock::MonotonicClock;
pub use clock::{Clock, ManualClock};
pub use endpoint::{EndpointKey, EndpointKeyError, EndpointRule, EndpointRules};
pub use error::{Error, ErrorKind};
pub use gcra::{Allowed, Decision, DenialCause, Denied, Gcra, GcraError};
pub use headers::{
    Families, Format, ParseOptions, Profile, Quota, QuotaUnit, RateLimitInfo, UnixTime, Warning, WarningKind,
};
pub use learn::{
    LearnEvent, Learned, Learner, LearnerCapabilities, LearnerConfig, LearnerConfigError, Observation,
};
pub use policy::{Policy, PolicyConfig, PolicyError, PolicySource, SafetyMargin, ServerView};
pub use retry::{GiveUp, GiveUpReason, Method, Outcome, RequestKind, RetryDecision, RetryPolicy, RetryState};
pub use store::{Acquire, AsyncStore, BucketState, Store};
pub use time::{Instant, Nanos};
