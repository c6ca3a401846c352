//! # ratekeeper-http
//!
//! The HTTP gate of ratekeeper (a `reqwest-middleware` middleware and a
//! `tower` layer) is not here yet: this crate holds its place in the
//! workspace.
#![forbid(unsafe_code)]
