//! The header parser on arbitrary bytes, read the way `ratekeeper parse`
//! reads them: an optional `HOST name` line, an optional status line, then
//! `Name: value` lines. Never a panic, and every output within its
//! documented bounds. Family selections read each input too: within the
//! same bounds, and as the full parser reads it with the other families'
//! headers renamed to a name no family has.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratekeeper_core::headers::{Families, MAX_COUNT, MAX_WAIT, QUOTA_CAPACITY, WARNING_CAPACITY};
use ratekeeper_core::{ParseOptions, Profile, RateLimitInfo, UnixTime};

/// `RateLimit`, `RateLimit-Policy` and `Retry-After`, every form.
const IETF: u32 = Families::IETF | Families::RETRY_AFTER | Families::ALL_FORMS;
/// What a firmware with no wall clock reads: the same without dates.
const FIRMWARE: u32 = Families::IETF | Families::RETRY_AFTER;
/// The used/limit families and `Date`, every form.
const RATIOS: u32 =
    Families::SHOPIFY | Families::SALESFORCE | Families::ZENDESK | Families::DATE | Families::ALL_FORMS;

/// The names each compared selection reads, lowercase.
fn names(selected: u32) -> &'static [&'static [u8]] {
    match selected {
        IETF => &[b"ratelimit", b"ratelimit-policy", b"retry-after"],
        _ => &[
            b"x-shopify-shop-api-call-limit",
            b"sforce-limit-info",
            b"zendesk-ratelimit-tickets-index",
            b"date",
        ],
    }
}

/// `headers` with the names `selected` does not read renamed.
fn renamed<'a>(headers: &[(&'a [u8], &'a [u8])], selected: u32) -> Vec<(&'a [u8], &'a [u8])> {
    headers
        .iter()
        .map(|&(name, value)| {
            let name = name.trim_ascii();
            let read = names(selected)
                .iter()
                .any(|known| known.eq_ignore_ascii_case(name));
            (if read { name } else { &b"x-not-selected"[..] }, value)
        })
        .collect()
}

fn check_bounds(info: &RateLimitInfo) {
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
        ParseOptions::new()
            .with_now(UnixTime::from_secs(1_700_000_000))
            .with_profile(profile),
        ParseOptions::new().with_fixed_now(UnixTime::from_nanos(u64::MAX)),
    ];
    for options in choices {
        let info = RateLimitInfo::parse(status, headers.iter().copied(), &options);
        check_bounds(&info);
        let ietf = RateLimitInfo::parse_families::<IETF>(status, headers.iter().copied(), &options);
        assert_eq!(
            ietf,
            RateLimitInfo::parse(status, renamed(&headers, IETF), &options)
        );
        let ratios = RateLimitInfo::parse_families::<RATIOS>(status, headers.iter().copied(), &options);
        assert_eq!(
            ratios,
            RateLimitInfo::parse(status, renamed(&headers, RATIOS), &options)
        );
        check_bounds(&RateLimitInfo::parse_families::<FIRMWARE>(
            status,
            headers.iter().copied(),
            &options,
        ));
    }
});
