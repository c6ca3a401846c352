//! Cross-crate scenarios for ratekeeper, and the deterministic simulator
//! ([`sim`]) that measures how much of a server's limit the learner uses.
#![forbid(unsafe_code)]

pub mod scenarios;
pub mod sim;
