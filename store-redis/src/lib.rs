//! # ratekeeper-redis
//!
//! The Redis/Valkey store of ratekeeper is not here yet: this crate holds
//! its place in the workspace. Until it lands, use `ratekeeper-memory`.
//! The store will implement [`ratekeeper_core::AsyncStore`] with one script
//! call per decision on the server's clock.
#![forbid(unsafe_code)]
