//! Cross-crate scenarios for ratekeeper: shared helpers for the tests in
//! `tests/tests/`.
#![forbid(unsafe_code)]
