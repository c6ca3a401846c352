//! The header parser on arbitrary bytes, read the way `ratekeeper parse`
//! reads them: an optional `HOST name` line, an optional status line, then
//! `Name: value` lines. Never a panic, and every output within its
//! documented bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratekeeper_core::headers::{MAX_COUNT, MAX_WAIT, QUOTA_CAPACITY, WARNING_CAPACITY};
use ratekeeper_core::{ParseOptions, Profile, RateLimitInfo, UnixTime};

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n').peekable();
    let mut profile = Profile::GENERIC;
    if let Some(host) = lines.peek().and_then(|line| line.strip_prefix(b"HOST ")) {
        profile = Profile::for_host(host);
        lines.next();
    }
    let mut status = None;
    if let Some(line) = lines.peek().filter(|line| line.starts_with(b"HTTP/")) {
        status = line
            .split(|&b| b == b' ')
            .nth(1)
            .and_then(|code| std::str::from_utf8(code).ok())
            .and_then(|code| code.parse::<u16>().ok());
        lines.next();
    }
    let headers: Vec<(&[u8], &[u8])> = lines
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            Some((&line[..colon], &line[colon + 1..]))
        })
        .collect();
    let choices = [
        ParseOptions::new().with_profile(profile),
        ParseOptions::new().with_now(UnixTime::from_secs(1_700_000_000)).with_profile(profile),
        ParseOptions::new().with_fixed_now(UnixTime::from_nanos(u64::MAX)),
    ];
    for options in choices {
        let info = RateLimitInfo::parse(status, headers.iter().copied(), &options);
        assert!(info.quotas().len() <= QUOTA_CAPACITY);
        assert!(info.warnings().len() <= WARNING_CAPACITY);
        for quota in info.quotas() {
            assert!(quota.limit.is_none_or(|l| l <= MAX_COUNT));
            assert!(quota.remaining.is_none_or(|r| r <= MAX_COUNT));
            if let (Some(limit), Some(remaining)) = (quota.limit, quota.remaining) {
                assert!(remaining <= limit);
            }
            assert!(quota.reset_after.is_none_or(|t| t <= MAX_WAIT));
            assert!(quota.window.is_none_or(|t| t <= MAX_WAIT));
        }
        assert!(info.retry_after().is_none_or(|t| t <= MAX_WAIT));
        assert_eq!(info.governing().is_some(), !info.quotas().is_empty());
    }
});
